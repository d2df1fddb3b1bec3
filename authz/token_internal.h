/*
 * token_internal.h: private glue between jwks.c, token.c and assertion.c.
 * Not part of the public API: nothing outside authz/ may include it.
 *
 * Owns: the strict JSON entry point every authz JSON parser goes through
 * (size, depth and duplicate-name limits), key lookup by kid, and the
 * verification core shared by access tokens (token.h) and the gateway's own
 * identity assertions (assertion.h).
 *
 * Thread rules: as for the public headers; key sets and tokens are immutable.
 */
#ifndef AZ_TOKEN_INTERNAL_H
#define AZ_TOKEN_INTERNAL_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "authz/jwks.h"
#include "authz/token.h"
#include "gateway/base/err.h"

/* Maximum nesting of objects/arrays in any JSON we parse (root = 1). */
#define AZ_JSON_MAX_DEPTH 16

/* One usable public key of a set. Immutable once the set is built. */
struct az_jwk {
    char kid[128];
    enum az_alg alg; /* the ONE algorithm this key verifies */
    EVP_PKEY *pkey;  /* BoringSSL key */
    char *pem;       /* SubjectPublicKeyInfo PEM, NUL-terminated (for libjwt) */
    size_t pem_len;  /* strlen(pem) */
};

/* Returns 1 when the nesting of objects/arrays in s[0..len) never exceeds
 * max_depth (strings and escapes are skipped), 0 otherwise. Exact for every
 * document jansson accepts; cheap enough to run before the parser so hostile
 * input never reaches jansson's recursion. */
int az_json_depth_ok(const char *s, size_t len, int max_depth);

/* Parse s[0..len) as one JSON object: depth limit, duplicate member names
 * refused (JSON_REJECT_DUPLICATES). Returns a new reference or NULL (with a
 * log-safe reason in why, which may be NULL). */
json_t *az_json_parse_object(const char *s, size_t len, int max_depth, const char **why);

/* Borrowed key for kid, or NULL. keys may be NULL. */
const struct az_jwk *az_jwks_find(const struct az_jwks *keys, const char *kid);

/* Algorithm for an exact JOSE alg name (RS256..ES384), AZ_ALG_NONE otherwise. */
enum az_alg az_alg_from_name(const char *name);

/* What the verification core checks beyond the common structure/signature
 * rules; az_token_verify and az_assertion_verify differ only here. */
struct az_verify_opts {
    const char *typ; /* the one accepted typ (case-insensitive); NULL = RFC 9068
                      * access-token rules ("at+jwt", "application/at+jwt",
                      * "JWT" only if iss->allow_jwt_typ) */
    int use_libjwt;  /* cross-check the signature with libjwt where it can */
    int require_sub; /* sub required non-empty */
    int require_cnf; /* cnf.x5t#S256 required (GH_R_BINDING_MISSING) */
};

enum gh_reason az_token_verify_opts(const struct az_issuer *iss, const struct az_jwks *keys,
                                    const char *tok, size_t len, const struct az_verify_opts *opts,
                                    struct az_token **out, struct gh_err *err);

#endif
