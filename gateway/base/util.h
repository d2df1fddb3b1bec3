/*
 * util.h: small shared helpers: clocks, hex/base64url, hash prefixes for
 * logging secrets safely, constant-time compare.
 *
 * Owns nothing long-lived. Thread-safe (pure functions).
 */
#ifndef GH_UTIL_H
#define GH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/base/err.h"

/* Wall clock in microseconds since the epoch. */
int64_t gh_now_us(void);
/* Monotonic clock in microseconds. */
int64_t gh_mono_us(void);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void gh_hex(const uint8_t *in, size_t len, char *out);
/* Value of one hex digit, either case; -1 for anything else. */
int gh_hexval(int c);
/* RFC 3986 section 2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
int gh_uri_unreserved(int c);

/* base64url without padding (RFC 4648 section 5). out needs 4*ceil(len/3)+1. */
size_t gh_b64url_encode(const uint8_t *in, size_t len, char *out);
/* Strict decode: only [A-Za-z0-9_-], no padding, no whitespace, and the
 * unused trailing bits must be zero (canonical encoding, so one token has one
 * spelling). Returns decoded length or -1. out must hold len*3/4+1 bytes. */
long gh_b64url_decode(const char *in, size_t len, uint8_t *out);

/* SHA-256 of data as 64 lowercase hex chars + NUL. */
void gh_sha256_hex(const void *data, size_t len, char out[65]);
/* First 12 hex chars of SHA-256(secret): what the logs show for a token. */
void gh_hash_prefix(const void *secret, size_t len, char out[13]);

/* Constant-time equality of two equal-length buffers (CRYPTO_memcmp). */
int gh_ct_equal(const void *a, const void *b, size_t len);

/* Fill buf with len cryptographically random bytes; aborts on failure. */
void gh_random(void *buf, size_t len);

#endif
