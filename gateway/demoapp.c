/*
 * demoapp.c: the "internal app" of the demo. It does what a real upstream
 * behind Gatehouse should do: take the caller's identity from the gateway,
 * and trust the signed X-Gatehouse-Assertion rather than plain headers
 * (plain headers are only as good as the network path; the assertion is
 * signed by the gateway, names this route as its audience and expires in a
 * minute). It verifies the assertion with authz/'s az_assertion_verify,
 * the same code a test or a C upstream would use, and prints both views so
 * a newcomer can see them agree.
 */
#include "gateway/demoapp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "authz/assertion.h"
#include "authz/jwks.h"
#include "authz/token.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/demosrv.h"

#define VALUE_MAX 512 /* longest header value shown on the page */

struct gw_demoapp {
    struct az_jwks *keys;
    char iss[256];
    char route[64];
    char listen[96];
    struct gw_demosrv *srv;
};

static const char *const shown_headers[] = {
    "X-Gatehouse-User",    "X-Gatehouse-Email",        "X-Gatehouse-Groups",
    "X-Gatehouse-Session", "X-Gatehouse-Cert-Subject", "X-Gatehouse-Cert-Thumbprint",
};

/* The value of header name as printable text (control bytes dropped,
 * clipped to VALUE_MAX), or "" if absent. 1 if present. */
static int get_header(const struct gw_demosrv_req *req, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    for (int i = 0; i < req->rh->n_hdrs; i++) {
        const struct gw_hdr *h = &req->rh->hdrs[i];
        if (!gw_http_name_is(req->head, h, name)) {
            continue;
        }
        size_t o = 0;
        for (uint32_t k = 0; k < h->val_len && o + 1 < cap; k++) {
            unsigned char ch = (unsigned char)req->head[h->val_off + k];
            if (ch >= 0x20 && ch != 0x7f) {
                out[o++] = (char)ch;
            }
        }
        out[o] = '\0';
        return 1;
    }
    return 0;
}

static void print_assertion(struct gw_demoapp *a, const struct gw_demosrv_req *req, FILE *f)
{
    char *tok = malloc(AZ_TOKEN_MAX_LEN + 1);
    if (tok == NULL) {
        fprintf(f, "X-Gatehouse-Assertion: (out of memory)\n");
        return;
    }
    if (!get_header(req, "X-Gatehouse-Assertion", tok, AZ_TOKEN_MAX_LEN + 1)) {
        fprintf(f, "X-Gatehouse-Assertion: MISSING -- this request did not come through the "
                   "gateway\n");
        free(tok);
        return;
    }
    struct az_token *t = NULL;
    struct gh_err err = {0};
    int64_t now = gh_now_us() / 1000000;
    enum gh_reason r =
        az_assertion_verify(a->keys, a->iss, a->route, tok, strlen(tok), now, &t, &err);
    free(tok);
    if (r != GH_R_ALLOW) {
        fprintf(f, "X-Gatehouse-Assertion: REJECTED (%s: %s) -- do not trust the headers above\n",
                gh_reason_name(r), err.msg);
        return;
    }
    const char *binding = json_string_value(json_object_get(t->claims, "binding"));
    const char *aud = json_string_value(json_object_get(t->claims, "aud"));
    fprintf(
        f,
        "X-Gatehouse-Assertion: signature VERIFIED with the gateway's key (ES256, kid %.16s...)\n",
        t->kid);
    fprintf(f, "  %-9s %s\n", "iss", t->iss);
    fprintf(f, "  %-9s %s\n", "aud", aud != NULL ? aud : "-");
    fprintf(f, "  %-9s %s\n", "sub", t->sub[0] ? t->sub : "-");
    fprintf(f, "  %-9s %s\n", "email", t->email[0] ? t->email : "-");
    fprintf(f, "  %-9s ", "groups");
    for (int i = 0; i < t->n_groups; i++) {
        fprintf(f, "%s%s", i > 0 ? "," : "", t->groups[i]);
    }
    fprintf(f, "%s\n", t->n_groups == 0 ? "-" : "");
    fprintf(f, "  %-9s x5t#S256=%s\n", "cnf", t->cnf_x5t_s256[0] ? t->cnf_x5t_s256 : "-");
    fprintf(f, "  %-9s %s\n", "binding", binding != NULL ? binding : "-");
    fprintf(f, "  %-9s %s\n", "sid", t->sid[0] ? t->sid : "-");
    fprintf(f, "  %-9s in %lld s\n", "expires", (long long)(t->exp - now));
    az_token_unref(t);
}

static void handle(void *arg, const struct gw_demosrv_req *req, struct gw_demosrv_resp *resp)
{
    struct gw_demoapp *a = arg;
    char *page = NULL;
    size_t page_len = 0;
    char v[VALUE_MAX + 1];
    FILE *f = open_memstream(&page, &page_len);
    if (f == NULL) {
        gw_demosrv_resp_set(resp, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    int have_user = get_header(req, "X-Gatehouse-User", v, sizeof(v));
    fprintf(f, "Hello %s! This is the Gatehouse demo app (%s, loopback only).\n",
            have_user ? v : "stranger", a->listen);
    fprintf(f, "Gatehouse let this request through after checking your client certificate,\n"
               "an access token bound to it (RFC 8705) and the policy.\n\n");
    fprintf(f, "Identity headers set by the gateway (it strips client-sent X-Gatehouse-*):\n");
    for (size_t i = 0; i < sizeof(shown_headers) / sizeof(shown_headers[0]); i++) {
        int have = get_header(req, shown_headers[i], v, sizeof(v));
        fprintf(f, "  %-28s %s\n", shown_headers[i], have ? v : "(absent)");
    }
    fprintf(f, "\n");
    print_assertion(a, req, f);
    fprintf(f, "\nRequest: %s %s\n", req->method, req->path);
    if (fclose(f) != 0 || page == NULL) {
        free(page);
        gw_demosrv_resp_set(resp, 500, "text/plain; charset=utf-8", "out of memory\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
    if (strcmp(req->method, "HEAD") == 0) {
        free(page);
        return;
    }
    resp->body = page;
    resp->body_len = page_len;
}

struct gw_demoapp *gw_demoapp_start(const struct gw_demoapp_opts *o, struct gh_err *err)
{
    struct gw_demoapp *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    snprintf(a->iss, sizeof(a->iss), "%s", o->gateway_iss);
    snprintf(a->route, sizeof(a->route), "%s", o->route_id);
    snprintf(a->listen, sizeof(a->listen), "http://%s:%d", o->host, o->port);
    a->keys = az_jwks_parse(o->jwks_json, strlen(o->jwks_json), err);
    if (a->keys == NULL) {
        goto fail;
    }
    a->srv = gw_demosrv_start("demo-app", o->host, o->port, NULL, handle, a, err);
    if (a->srv == NULL) {
        goto fail;
    }
    GH_INFO("demo-app: listening on %s (plain HTTP, loopback only; reach it through the gateway)",
            a->listen);
    return a;
fail:
    az_jwks_unref(a->keys);
    free(a);
    return NULL;
}

void gw_demoapp_stop(struct gw_demoapp *a)
{
    if (a == NULL) {
        return;
    }
    gw_demosrv_stop(a->srv);
    az_jwks_unref(a->keys);
    free(a);
}
