/*
 * jwks.h: an issuer's JSON Web Key Set (RFC 7517) as an immutable snapshot.
 *
 * Owns: parsed public keys (RSA, EC P-256/P-384) each with its kid and the ONE
 * algorithm it may verify (DESIGN.md section 8: the key decides the alg, not
 * the token header). Keys with kty "oct" (symmetric), private members ("d"),
 * unknown kty/crv, use other than "sig", or alg outside RS256/RS384/RS512/
 * ES256/ES384 are skipped (counted in az_jwks_skipped), never trusted.
 * Must not: do I/O; the gateway fetches bytes and hands them here.
 *
 * Lifetime: az_jwks_parse returns refcount 1; az_jwks_ref/unref are atomic so
 * workers can hold a snapshot while the control thread swaps in a new one.
 */
#ifndef AZ_JWKS_H
#define AZ_JWKS_H

#include <stddef.h>

#include "gateway/base/err.h"

struct az_jwks;

enum az_alg { AZ_ALG_NONE = 0, AZ_ALG_RS256, AZ_ALG_RS384, AZ_ALG_RS512, AZ_ALG_ES256, AZ_ALG_ES384 };

/* Parse a JWKS document (max 256 KiB, JSON depth <= 16, duplicate member names
 * refused). Returns NULL and fills err on malformed input or if no usable key
 * remains. */
struct az_jwks *az_jwks_parse(const char *json, size_t len, struct gh_err *err) GH_WUR;
struct az_jwks *az_jwks_ref(struct az_jwks *k);
void az_jwks_unref(struct az_jwks *k);

size_t az_jwks_count(const struct az_jwks *k);
size_t az_jwks_skipped(const struct az_jwks *k);
int az_jwks_has_kid(const struct az_jwks *k, const char *kid);
/* Name of the alg ("ES256"), or NULL for AZ_ALG_NONE. */
const char *az_alg_name(enum az_alg a);

#endif
