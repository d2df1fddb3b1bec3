/*
 * fuzz_policy.c: libFuzzer target for the policy loader (az_policy_load_buf)
 * and, for every input that loads, the evaluator and the route check.
 *
 * Besides memory safety (ASan/UBSan) it asserts the loader's contract: a
 * failed load always reports at least one error and every error names the
 * file; a loaded policy evaluates to one of its three documented verdicts,
 * and asking for an explanation never changes the verdict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>

#include "authz/identity.h"
#include "authz/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_verdict(const struct az_policy *p, const struct az_identity *id,
                          const struct az_request_info *req)
{
    static char why[8192];
    struct az_verdict a, b;
    az_policy_eval(p, id, req, &a, why, sizeof(why));
    az_policy_eval(p, id, req, &b, NULL, 0);
    if (a.decision != b.decision || a.reason != b.reason || strcmp(a.rule_id, b.rule_id) != 0) {
        abort();
    }
    if (strlen(why) >= sizeof(why)) {
        abort();
    }
    if (a.decision == GH_ALLOW ? a.reason != GH_R_ALLOW || a.rule_id[0] == '\0'
                               : (a.reason != GH_R_POLICY_DENY || a.rule_id[0] == '\0') &&
                                     (a.reason != GH_R_POLICY_NO_MATCH || a.rule_id[0] != '\0')) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *p = az_policy_load_buf("fuzz.yaml", (const char *)data, size, &errs);
    if (p == NULL) {
        if (errs.n == 0) {
            abort(); /* a refused policy must say why */
        }
        for (int i = 0; i < errs.n; i++) {
            if (strncmp(errs.msg[i], "fuzz.yaml:", 10) != 0) {
                abort();
            }
        }
        return 0;
    }

    static struct az_cert_info ci;
    static struct az_token tok;
    static json_t *claims;
    static char g0[] = "engineering", g1[] = "ops";
    static char uri[] = "spiffe://example.org/ci/deployer", dns[] = "a.example.com";
    if (claims == NULL) {
        claims = json_loads("{\"sub\":\"alice\",\"groups\":[\"engineering\",\"ops\"],"
                            "\"realm_access\":{\"roles\":[\"admin\"]},\"n\":3,\"b\":true}",
                            0, NULL);
        strcpy(ci.subject, "CN=alice,O=Example");
        strcpy(ci.cn, "alice");
        strcpy(ci.issuer, "CN=CA");
        for (int i = 0; i < 32; i++) {
            ci.sha256[i] = (uint8_t)i;
        }
        ci.san_uri[0] = uri;
        ci.n_uri = 1;
        ci.san_dns[0] = dns;
        ci.n_dns = 1;
        tok.refs = 1;
        strcpy(tok.sub, "alice");
        strcpy(tok.email, "alice@example.com");
        strcpy(tok.scope, "openid admin");
        tok.groups[0] = g0;
        tok.groups[1] = g1;
        tok.n_groups = 2;
        tok.claims = claims;
    }
    struct sockaddr_in in4;
    memset(&in4, 0, sizeof(in4));
    in4.sin_family = AF_INET;
    in4.sin_addr.s_addr = htonl(0x0a010203);
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);

    struct az_identity full = {&ci, &tok}, certonly = {&ci, NULL}, none = {NULL, NULL};
    static const char *const routes[] = {"wiki", "admin", "deploy"};
    static const char *const paths[] = {"/wiki/a/b", "/deploy/x", "/a/../b", NULL};
    static const char *const methods[] = {"GET", "POST", NULL};
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < 4; k++) {
            struct az_request_info req = {
                routes[r],
                methods[k % 3],
                paths[k],
                k % 2 == 0 ? (const struct sockaddr *)&in4 : (const struct sockaddr *)&in6,
                1795431600 + (int64_t)k * 40000,
            };
            if (k == 3) {
                req.client = NULL;
            }
            check_verdict(p, &full, &req);
            check_verdict(p, &certonly, &req);
            check_verdict(p, &none, &req);
        }
    }
    memset(&errs, 0, sizeof(errs));
    (void)az_policy_check_routes(p, routes, 3, &errs);
    az_policy_unref(p);
    return 0;
}
