/*
 * assertion.h: the gateway's own signed identity assertion, handed to
 * upstreams with every allowed request (issue 3, "Identity to upstreams").
 *
 * Owns: the gateway's EC P-256 signing key (loaded from a PEM file, created
 * with mode 0600 on first start, or ephemeral), its public JWKS (kid = RFC
 * 7638 thumbprint, alg ES256, use sig) for upstreams to fetch, and the
 * compact ES256 JWT itself: header typ "gatehouse-assertion+jwt"; claims iss
 * (the gateway), aud (the route id), sub, groups, email (from the verified
 * access token), cnf {x5t#S256} (the client certificate), binding
 * ("verified" | "not_required"), sid, iat, exp, jti (random). Upstreams can
 * trust these headers-in-a-signature instead of spoofable plain headers.
 * Must not: do network I/O; the gateway serves az_signer_jwks() itself.
 *
 * Thread rules: a signer is immutable after load; az_assertion_sign may be
 * called from every worker at once. The caller frees it with az_signer_free
 * after the last worker stopped using it.
 */
#ifndef AZ_ASSERTION_H
#define AZ_ASSERTION_H

#include <stddef.h>
#include <stdint.h>

#include "authz/jwks.h"
#include "authz/token.h"
#include "gateway/base/err.h"

#define AZ_ASSERTION_TYP "gatehouse-assertion+jwt"

struct az_signer;

/* Load the EC P-256 private key PEM at pem_path. If the file does not exist,
 * generate a key and write it there (created exclusively, mode 0600). A file
 * readable or writable by group/others, not a regular file, or holding
 * anything but a P-256 key is refused. pem_path NULL: an ephemeral key that
 * lives in memory only. Returns NULL and fills err on failure; the caller
 * owns the result (az_signer_free). */
struct az_signer *az_signer_load_or_create(const char *pem_path, struct gh_err *err) GH_WUR;
void az_signer_free(struct az_signer *s);

/* The public JWKS document, NUL-terminated JSON; borrowed, lives as long as s. */
const char *az_signer_jwks(const struct az_signer *s);
/* The key id (base64url SHA-256 JWK thumbprint, RFC 7638); borrowed. */
const char *az_signer_kid(const struct az_signer *s);

/* Sign an assertion for route_id (aud) into out (NUL-terminated compact
 * JWT). t may be NULL (route without token: no sub/groups/email);
 * cert_thumb_b64u and session_id may be NULL (claim omitted). binding_ok
 * non-zero: "binding":"verified", else "not_required". iat = now_s,
 * exp = now_s + ttl_s (ttl_s >= 1). Returns 0 on success, or -1 if out_len
 * is too small, an argument is invalid (e.g. not UTF-8) or signing failed
 * (out is then ""). Size: about 700 bytes without groups; 16 KiB covers any
 * token az_token_verify accepts (route id, issuer, session id < 512 bytes). */
int az_assertion_sign(const struct az_signer *s, const char *route_id, const char *gateway_iss,
                      const struct az_token *t, const char *cert_thumb_b64u, int binding_ok,
                      const char *session_id, int64_t now_s, int ttl_s, char *out,
                      size_t out_len) GH_WUR;

/* What an upstream (or a test) does with an assertion: verify it with the
 * gateway's JWKS (parsed with az_jwks_parse), require typ
 * "gatehouse-assertion+jwt", iss == gateway_iss, aud == route_id, a valid
 * "binding" claim, and the time window (60 s skew). On success returns
 * GH_R_ALLOW and *out holds one reference (sub/groups/email/cnf/sid filled
 * like an access token). Otherwise the GH_R_TOKEN_* reason. */
enum gh_reason az_assertion_verify(const struct az_jwks *keys, const char *gateway_iss,
                                   const char *route_id, const char *tok, size_t len, int64_t now_s,
                                   struct az_token **out, struct gh_err *err) GH_WUR;

#endif
