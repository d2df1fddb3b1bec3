/*
 * logout.c: logout-token checks (OIDC Back-Channel Logout 1.0, 2.4-2.6).
 * The signature, alg pinning, iss and aud checks are the access-token core
 * (token_internal.h) with the logout token's own typ; what differs is here.
 */
#include "authz/logout.h"

#include <stdio.h>
#include <string.h>

#include "authz/token_internal.h"

#define BCL_EVENT "http://schemas.openid.net/event/backchannel-logout"

static enum gh_reason bad(struct gh_err *err, const char *why)
{
    gh_err_set(err, GH_R_LOGOUT_INVALID, "logout token: %s", why);
    return GH_R_LOGOUT_INVALID;
}

enum gh_reason az_logout_verify(const struct az_issuer *iss, const struct az_jwks *keys,
                                const char *tok, size_t len, int64_t now_s, struct az_logout *out,
                                struct gh_err *err)
{
    memset(out, 0, sizeof(*out));
    struct az_verify_opts o = {.typ = "logout+jwt", .use_libjwt = 0, .require_sub = 0,
                               .require_cnf = 0};
    struct az_token *t = NULL;
    enum gh_reason r = az_token_verify_opts(iss, keys, tok, len, &o, &t, err);
    if (r != GH_R_ALLOW) {
        return bad(err, gh_reason_name(r));
    }
    enum gh_reason out_r = GH_R_ALLOW;
    if (az_token_check_time(t, iss, now_s) != GH_R_ALLOW || t->iat == 0) {
        out_r = bad(err, "expired, not yet valid or without iat");
        goto out;
    }
    const json_t *ev = json_object_get(t->claims, "events");
    if (!json_is_object(ev) || !json_is_object(json_object_get(ev, BCL_EVENT))) {
        out_r = bad(err, "events lacks the back-channel-logout member");
        goto out;
    }
    if (json_object_get(t->claims, "nonce") != NULL) {
        out_r = bad(err, "nonce present (not a logout token)");
        goto out;
    }
    if (t->jti[0] == '\0') {
        out_r = bad(err, "jti missing");
        goto out;
    }
    if (t->sub[0] == '\0' && t->sid[0] == '\0') {
        out_r = bad(err, "neither sub nor sid");
        goto out;
    }
    snprintf(out->sub, sizeof(out->sub), "%s", t->sub);
    snprintf(out->sid, sizeof(out->sid), "%s", t->sid);
    snprintf(out->jti, sizeof(out->jti), "%s", t->jti);
out:
    az_token_unref(t);
    return out_r;
}
