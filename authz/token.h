/*
 * token.h: verification of OAuth 2.0 JWT access tokens bound to client
 * certificates (RFC 9068 access tokens, RFC 8705 binding, RFC 8725 BCP).
 *
 * Owns: the compact-JWS parser, signature verification with the algorithm
 * pinned to the key (libjwt 1.10 trusts the header alg; we do not), claim
 * checks, and struct az_token (the verified claims). Must not: do I/O,
 * read clocks (callers pass `now`), or log a raw token.
 *
 * Verification is split so a per-worker cache can skip signatures:
 *   az_token_verify()        structure, header, signature, iss/aud/typ/sub,
 *                            claim shapes: the part that depends only on the
 *                            token bytes and the key set -> cacheable;
 *   az_token_check_time()    exp/nbf/iat against now with skew: every request;
 *   az_token_check_binding() cnf.x5t#S256 vs the connection's certificate
 *                            thumbprint (constant time): every request.
 *
 * Lifetime: struct az_token is refcounted (atomic); az_token_verify hands the
 * caller one reference. Thread rules: a verified token is immutable and may
 * be shared across threads.
 */
#ifndef AZ_TOKEN_H
#define AZ_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "authz/jwks.h"
#include "gateway/base/err.h"

#define AZ_TOKEN_MAX_LEN 8192
#define AZ_MAX_AUD 8
#define AZ_MAX_GROUPS 64

struct az_issuer {
    char issuer[512];
    char audiences[AZ_MAX_AUD][256];
    int n_aud;
    int skew_s;        /* default 60, max 300 */
    int allow_jwt_typ; /* accept typ "JWT" too (default 0: only "at+jwt") */
};

struct az_token {
    int refs; /* atomic */
    char kid[128];
    enum az_alg alg;
    char iss[512];
    char sub[256];
    char jti[128];
    char sid[128];
    char email[256];
    char client_id[256];
    char scope[1024];
    char cnf_x5t_s256[64]; /* as in the token: base64url, no padding (43 chars) */
    int64_t exp, nbf, iat; /* 0 when absent (exp is required) */
    char *groups[AZ_MAX_GROUPS]; /* "groups" (or "roles") string array */
    int n_groups;
    json_t *claims; /* the whole payload, for policy JSON-path conditions */
    uint8_t token_sha256[32];
};

/* Verify a compact JWS access token. On success returns GH_R_ALLOW and sets
 * *out (caller owns one reference). On failure returns the specific reason
 * (GH_R_TOKEN_*, GH_R_BINDING_MISSING/MALFORMED) and *out is NULL; err->msg
 * (may be NULL) gets a log-safe detail (never the token). */
enum gh_reason az_token_verify(const struct az_issuer *iss, const struct az_jwks *keys,
                               const char *tok, size_t len, struct az_token **out,
                               struct gh_err *err) GH_WUR;

/* exp (required), nbf, iat against now_s with iss->skew_s. */
enum gh_reason az_token_check_time(const struct az_token *t, const struct az_issuer *iss,
                                   int64_t now_s);

/* RFC 8705 section 3.1: base64url(SHA-256(cert DER)) == cnf.x5t#S256,
 * constant-time. GH_R_ALLOW or GH_R_BINDING_MISMATCH. */
enum gh_reason az_token_check_binding(const struct az_token *t, const uint8_t cert_sha256[32]);

struct az_token *az_token_ref(struct az_token *t);
void az_token_unref(struct az_token *t);

/*
 * Bearer extraction, RFC 6750 section 2.1. values are the Authorization
 * header values of one request (n of them). Exactly one header, scheme
 * "Bearer" case-insensitive, one space, b64token syntax. Sets *tok and *len to a
 * slice of the value. GH_R_ALLOW, GH_R_TOKEN_MISSING (none, or other scheme),
 * GH_R_TOKEN_MULTIPLE_AUTH (n > 1), GH_R_TOKEN_MALFORMED,
 * GH_R_TOKEN_TOO_LARGE (> AZ_TOKEN_MAX_LEN).
 */
enum gh_reason az_bearer_extract(const char *const *values, const size_t *lens, int n,
                                 const char **tok, size_t *len);

/*
 * Per-worker cache of verified tokens keyed by SHA-256 of the token bytes.
 * Not thread-safe: one per worker. Entries hold a token reference and the
 * key-set generation they were verified under; a lookup with another
 * generation misses (a JWKS swap invalidates). Bounded (capacity entries,
 * LRU-ish replacement); expired tokens are evicted on lookup.
 */
struct az_token_cache;
struct az_token_cache *az_token_cache_new(size_t capacity);
void az_token_cache_free(struct az_token_cache *c);
/* Returns a borrowed token (valid until the next cache call) or NULL. */
struct az_token *az_token_cache_get(struct az_token_cache *c, const uint8_t sha256[32],
                                    uint64_t keys_gen, int64_t now_s);
/* Stores a new reference to t. */
void az_token_cache_put(struct az_token_cache *c, const uint8_t sha256[32], uint64_t keys_gen,
                        struct az_token *t);

#endif
