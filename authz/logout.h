/*
 * logout.h: OpenID Connect Back-Channel Logout 1.0 logout tokens.
 *
 * Owns: verification of a logout_token against the issuer's keys with the
 * same pinned-algorithm core as access tokens, plus the rules of OIDC BCL
 * 1.0 section 2.6: typ "logout+jwt", iss/aud/iat/exp, a jti, an `events`
 * object holding the back-channel-logout member, sub and/or sid, and NO
 * nonce (so an ID token cannot be replayed as a logout token).
 * Must not: do I/O or act on the result (the gateway revokes).
 */
#ifndef AZ_LOGOUT_H
#define AZ_LOGOUT_H

#include <stddef.h>
#include <stdint.h>

#include "authz/jwks.h"
#include "authz/token.h"
#include "gateway/base/err.h"

struct az_logout {
    char sub[256]; /* "" when absent */
    char sid[128]; /* "" when absent */
    char jti[128];
};

/* GH_R_ALLOW and *out filled, or GH_R_LOGOUT_INVALID (err says why). */
enum gh_reason az_logout_verify(const struct az_issuer *iss, const struct az_jwks *keys,
                                const char *tok, size_t len, int64_t now_s, struct az_logout *out,
                                struct gh_err *err);

#endif
