/*
 * policy_cli.c: `gatehouse policy check` and `gatehouse policy test`.
 *
 * The test command builds exactly the values the gateway hands the engine --
 * a struct az_cert_info and a struct az_token -- from JSON, then calls the
 * same az_policy_eval the gateway calls, so a verdict here is the verdict in
 * production for the same facts. The token is filled the way token.c fills a
 * verified one (sub/iss/email/jti/sid/client_id/scope strings, groups or else
 * roles as an array of at most AZ_MAX_GROUPS strings, the whole object as
 * claims) but no signature, issuer, audience, expiry or binding is checked:
 * the claims are taken as given, which the help text states. Input that a
 * real verification would refuse (too long, wrong type) is refused here too
 * rather than truncated, so a test cannot pass on facts production never sees.
 */
#include "authz/policy_cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "authz/identity.h"
#include "authz/policy.h"
#include "gateway/base/err.h"
#include "gateway/base/reason.h"
#include "gateway/base/util.h"


#define CLI_MAX_INPUT (1024 * 1024)
#define CLI_WHY_LEN (64 * 1024)
#define CLI_MAX_ROUTES 256

static const char usage_text[] =
    "usage: gatehouse policy check -p FILE [--routes ID[,ID...]] [--json]\n"
    "       gatehouse policy test  -p FILE --identity JSON|@FILE --request JSON|@FILE [--json]\n"
    "\n"
    "check  load and compile the policy; print every error as file:line:col.\n"
    "       --routes: also report rules that name a route not in this list.\n"
    "test   evaluate the policy for one identity and one request and explain\n"
    "       which rules matched and why.\n"
    "\n"
    "identity JSON (all optional; a missing part is unknown to the policy):\n"
    "  {\"cert\": {\"subject\": \"CN=alice,O=Example\", \"cn\": \"alice\", \"issuer\": \"CN=CA\",\n"
    "            \"thumbprint\": \"<64 hex or 43 base64url>\", \"san_dns\": [..],\n"
    "            \"san_email\": [..], \"san_uri\": [\"spiffe://example.org/x\"]},\n"
    "   \"claims\": {\"sub\": \"alice\", \"groups\": [\"engineering\"], \"scope\": \"a b\", ...}}\n"
    "  Omit \"claims\" to model a route with authz off (no token).\n"
    "  NOTE: the claims are taken as given. No token signature, issuer, audience,\n"
    "  expiry or certificate binding is checked here; this command tests the\n"
    "  policy, not the token.\n"
    "request JSON:\n"
    "  {\"route\": \"wiki\", \"method\": \"GET\", \"path\": \"/wiki/x\", \"source\": "
    "\"10.1.2.3\",\n"
    "   \"time\": \"2026-11-22T10:00:00Z\"}   (time: RFC 3339 or epoch seconds;\n"
    "   default now)\n"
    "\n"
    "exit status: test: 0 allow, 1 deny; check: 0 valid; 2 usage, input or policy error.\n";

struct cli {
    const char *cmd;
    const char *policy;
    const char *identity;
    const char *request;
    const char *routes;
    int json;
    FILE *out;
    FILE *err;
};

static int usage(struct cli *c, const char *msg)
{
    if (msg != NULL) {
        fprintf(c->err, "gatehouse policy: %s\n", msg);
    }
    fputs(usage_text, c->err);
    return 2;
}

/* Inline JSON, or @FILE (at most CLI_MAX_INPUT bytes). Duplicate keys are
 * refused: two "groups" keys must not silently pick one. */
static json_t *load_json_arg(struct cli *c, const char *what, const char *arg)
{
    json_error_t je;
    json_t *j = NULL;
    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        char *buf = NULL;
        if (f == NULL) {
            fprintf(c->err, "%s: cannot open %s: %s\n", what, arg + 1, strerror(errno));
            return NULL;
        }
        buf = malloc(CLI_MAX_INPUT + 1);
        if (buf == NULL) {
            fclose(f);
            fprintf(c->err, "%s: out of memory\n", what);
            return NULL;
        }
        size_t n = fread(buf, 1, CLI_MAX_INPUT + 1, f);
        int rerr = ferror(f);
        fclose(f);
        if (rerr || n > CLI_MAX_INPUT) {
            fprintf(c->err, "%s: %s: %s\n", what, arg + 1, rerr ? "read error" : "file too large");
            free(buf);
            return NULL;
        }
        j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
        free(buf);
    } else {
        j = json_loads(arg, JSON_REJECT_DUPLICATES, &je);
    }
    if (j == NULL) {
        fprintf(c->err, "%s: invalid JSON at line %d column %d: %s\n", what, je.line, je.column,
                je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        fprintf(c->err, "%s: expected a JSON object\n", what);
        json_decref(j);
        return NULL;
    }
    return j;
}

static int check_keys(struct cli *c, const char *what, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(key, *a) == 0) {
                ok = 1;
            }
        }
        if (!ok) {
            fprintf(c->err, "%s: unknown key \"%s\"\n", what, key);
            rc = -1;
        }
    }
    return rc;
}

/* A JSON string without embedded NUL that fits dst (never truncated). */
static int copy_str(struct cli *c, const char *what, json_t *obj, const char *key, char *dst,
                    size_t cap)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return 0;
    }
    if (!json_is_string(v)) {
        fprintf(c->err, "%s: \"%s\" must be a string\n", what, key);
        return -1;
    }
    size_t l = json_string_length(v);
    if (l >= cap || strlen(json_string_value(v)) != l) {
        fprintf(c->err, "%s: \"%s\" is too long (max %zu) or contains NUL\n", what, key, cap - 1);
        return -1;
    }
    memcpy(dst, json_string_value(v), l + 1);
    return 0;
}

static int str_array(struct cli *c, const char *what, json_t *v, char **dst, int max, int *n)
{
    if (!json_is_array(v) || json_array_size(v) > (size_t)max) {
        fprintf(c->err, "%s: expected an array of at most %d strings\n", what, max);
        return -1;
    }
    size_t i;
    json_t *e;
    *n = 0;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
            fprintf(c->err, "%s: element %zu is not a string (or contains NUL)\n", what, i);
            return -1;
        }
        dst[(*n)++] = (char *)json_string_value(e);
    }
    return 0;
}

static int hexv(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static int fill_thumbprint(const char *s, struct az_cert_info *ci)
{
    size_t len = strlen(s);
    if (len == 64) {
        for (size_t i = 0; i < 32; i++) {
            int a = hexv(s[2 * i]), b = hexv(s[2 * i + 1]);
            if (a < 0 || b < 0) {
                return -1;
            }
            ci->sha256[i] = (uint8_t)(a << 4 | b);
        }
    } else if (len == 43) {
        uint8_t tmp[33];
        if (gh_b64url_decode(s, len, tmp) != 32) {
            return -1;
        }
        memcpy(ci->sha256, tmp, 32);
    } else {
        return -1;
    }
    gh_hex(ci->sha256, 32, ci->thumbprint_hex);
    gh_b64url_encode(ci->sha256, 32, ci->thumbprint_b64u);
    return 0;
}

static int build_cert(struct cli *c, json_t *cj, struct az_cert_info *ci)
{
    static const char *const keys[] = {"subject", "cn",        "issuer",  "thumbprint",
                                       "san_dns", "san_email", "san_uri", NULL};
    const char *w = "identity.cert";
    if (!json_is_object(cj)) {
        fprintf(c->err, "%s: expected an object\n", w);
        return -1;
    }
    if (check_keys(c, w, cj, keys) < 0 ||
        copy_str(c, w, cj, "subject", ci->subject, sizeof(ci->subject)) < 0 ||
        copy_str(c, w, cj, "cn", ci->cn, sizeof(ci->cn)) < 0 ||
        copy_str(c, w, cj, "issuer", ci->issuer, sizeof(ci->issuer)) < 0) {
        return -1;
    }
    json_t *v = json_object_get(cj, "thumbprint");
    if (v != NULL && (!json_is_string(v) || fill_thumbprint(json_string_value(v), ci) < 0)) {
        fprintf(c->err, "%s: thumbprint must be SHA-256 as 64 hex or 43 base64url characters\n", w);
        return -1;
    }
    if ((v = json_object_get(cj, "san_dns")) != NULL &&
        str_array(c, "identity.cert.san_dns", v, ci->san_dns, AZ_MAX_SANS, &ci->n_dns) < 0) {
        return -1;
    }
    if ((v = json_object_get(cj, "san_email")) != NULL &&
        str_array(c, "identity.cert.san_email", v, ci->san_email, AZ_MAX_SANS, &ci->n_email) < 0) {
        return -1;
    }
    if ((v = json_object_get(cj, "san_uri")) != NULL &&
        str_array(c, "identity.cert.san_uri", v, ci->san_uri, AZ_MAX_SANS, &ci->n_uri) < 0) {
        return -1;
    }
    return 0;
}

/* As token.c does for a verified token, minus every verification. */
static int build_token(struct cli *c, json_t *claims, struct az_token *t)
{
    const char *w = "identity.claims";
    if (!json_is_object(claims)) {
        fprintf(c->err, "%s: expected an object\n", w);
        return -1;
    }
    t->refs = 1;
    t->claims = claims;
    if (copy_str(c, w, claims, "iss", t->iss, sizeof(t->iss)) < 0 ||
        copy_str(c, w, claims, "sub", t->sub, sizeof(t->sub)) < 0 ||
        copy_str(c, w, claims, "jti", t->jti, sizeof(t->jti)) < 0 ||
        copy_str(c, w, claims, "sid", t->sid, sizeof(t->sid)) < 0 ||
        copy_str(c, w, claims, "email", t->email, sizeof(t->email)) < 0 ||
        copy_str(c, w, claims, "client_id", t->client_id, sizeof(t->client_id)) < 0 ||
        copy_str(c, w, claims, "scope", t->scope, sizeof(t->scope)) < 0) {
        return -1;
    }
    json_t *g = json_object_get(claims, "groups");
    json_t *roles = json_object_get(claims, "roles");
    if (roles != NULL && !json_is_array(roles)) {
        fprintf(c->err, "%s: roles must be an array of strings\n", w);
        return -1;
    }
    if (g == NULL) {
        g = roles;
    }
    if (g != NULL && str_array(c, "identity.claims.groups/roles", g, t->groups, AZ_MAX_GROUPS,
                               &t->n_groups) < 0) {
        return -1;
    }
    return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static int parse_rfc3339(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, oh = 0, om = 0;
    size_t len = strlen(s);
    if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se)) {
        return -1;
    }
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return -1;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (strlen(p) != 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om)) {
            return -1;
        }
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 ||
        oh > 23 || om > 59) {
        return -1;
    }
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    *out = t;
    return 0;
}

struct reqbuf {
    struct az_request_info ri;
    struct sockaddr_storage ss;
};

static int build_request(struct cli *c, json_t *rj, struct reqbuf *rb)
{
    static const char *const keys[] = {"route", "method", "path", "source", "time", NULL};
    const char *w = "request";
    memset(rb, 0, sizeof(*rb));
    if (check_keys(c, w, rj, keys) < 0) {
        return -1;
    }
    json_t *v = json_object_get(rj, "route");
    if (v == NULL || !json_is_string(v)) {
        fprintf(c->err, "request: \"route\" (the route id) is required and must be a string\n");
        return -1;
    }
    rb->ri.route_id = json_string_value(v);
    static const char *const strs[] = {"method", "path", NULL};
    for (const char *const *k = strs; *k != NULL; k++) {
        v = json_object_get(rj, *k);
        if (v != NULL && !json_is_string(v)) {
            fprintf(c->err, "request: \"%s\" must be a string\n", *k);
            return -1;
        }
    }
    v = json_object_get(rj, "method");
    rb->ri.method = v != NULL ? json_string_value(v) : NULL;
    v = json_object_get(rj, "path");
    rb->ri.path = v != NULL ? json_string_value(v) : NULL;
    v = json_object_get(rj, "source");
    if (v != NULL) {
        const char *a = json_is_string(v) ? json_string_value(v) : "";
        struct sockaddr_in *in4 = (struct sockaddr_in *)&rb->ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&rb->ss;
        if (inet_pton(AF_INET, a, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
        } else if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
        } else {
            fprintf(c->err, "request: \"source\" must be an IPv4 or IPv6 address\n");
            return -1;
        }
        rb->ri.client = (const struct sockaddr *)&rb->ss;
    }
    v = json_object_get(rj, "time");
    if (v == NULL) {
        rb->ri.now_s = (int64_t)time(NULL);
    } else if (json_is_integer(v)) {
        rb->ri.now_s = (int64_t)json_integer_value(v);
    } else if (!json_is_string(v) || parse_rfc3339(json_string_value(v), &rb->ri.now_s) < 0) {
        fprintf(c->err, "request: \"time\" must be RFC 3339 (2026-11-22T10:00:00Z) or epoch "
                        "seconds\n");
        return -1;
    }
    return 0;
}

static void print_errors(struct cli *c, const struct gh_errlist *errs)
{
    for (int i = 0; i < errs->n; i++) {
        fprintf(c->err, "%s\n", errs->msg[i]);
    }
    if (errs->dropped > 0) {
        fprintf(c->err, "(%d more errors)\n", errs->dropped);
    }
}

static void print_json(struct cli *c, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s != NULL) {
        fprintf(c->out, "%s\n", s);
        free(s);
    }
}

static json_t *errors_json(const struct gh_errlist *errs)
{
    json_t *a = json_array();
    for (int i = 0; a != NULL && i < errs->n; i++) {
        json_array_append_new(a, json_string(errs->msg[i]));
    }
    return a;
}

static int split_routes(char *list, const char **ids, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (n >= max) {
            return -1;
        }
        ids[n++] = t;
    }
    return n;
}

static int cmd_check(struct cli *c)
{
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *p = az_policy_load_file(c->policy, &errs);
    int rc = 2;
    char *rl = NULL;
    if (p != NULL && c->routes != NULL) {
        const char *ids[CLI_MAX_ROUTES];
        rl = strdup(c->routes);
        int n = rl != NULL ? split_routes(rl, ids, CLI_MAX_ROUTES) : -1;
        if (n < 0) {
            fprintf(c->err, "--routes: too many routes (max %d)\n", CLI_MAX_ROUTES);
            goto out;
        }
        if (az_policy_check_routes(p, ids, n, &errs) < 0) {
            az_policy_unref(p);
            p = NULL;
        }
    }
    if (c->json) {
        json_t *j = p != NULL ? json_pack("{s:b, s:I, s:s}", "ok", 1, "rules",
                                          (json_int_t)az_policy_rule_count(p), "policy_version",
                                          az_policy_version(p))
                              : json_pack("{s:b, s:o}", "ok", 0, "errors", errors_json(&errs));
        if (j != NULL) {
            print_json(c, j);
            json_decref(j);
        }
    } else if (p != NULL) {
        fprintf(c->out, "ok: %zu rules, policy_version %s\n", az_policy_rule_count(p),
                az_policy_version(p));
    }
    if (p == NULL) {
        print_errors(c, &errs);
        goto out;
    }
    rc = 0;
out:
    free(rl);
    az_policy_unref(p);
    return rc;
}

static int cmd_test(struct cli *c)
{
    struct gh_errlist errs;
    struct az_cert_info ci;
    struct az_token tok;
    struct reqbuf rb;
    struct az_identity ident = {NULL, NULL};
    struct az_verdict v;
    json_t *ij = NULL, *rj = NULL;
    char *why = NULL;
    struct az_policy *p = NULL;
    int rc = 2;
    static const char *const id_keys[] = {"cert", "claims", NULL};

    memset(&errs, 0, sizeof(errs));
    memset(&ci, 0, sizeof(ci));
    memset(&tok, 0, sizeof(tok));
    if (c->identity == NULL || c->request == NULL) {
        return usage(c, "test needs --identity and --request");
    }
    ij = load_json_arg(c, "identity", c->identity);
    rj = load_json_arg(c, "request", c->request);
    if (ij == NULL || rj == NULL || check_keys(c, "identity", ij, id_keys) < 0) {
        goto out;
    }
    json_t *cj = json_object_get(ij, "cert");
    if (cj != NULL) {
        if (build_cert(c, cj, &ci) < 0) {
            goto out;
        }
        ident.cert = &ci;
    }
    json_t *claims = json_object_get(ij, "claims");
    if (claims != NULL) {
        if (build_token(c, claims, &tok) < 0) {
            goto out;
        }
        ident.token = &tok;
    }
    if (build_request(c, rj, &rb) < 0) {
        goto out;
    }
    p = az_policy_load_file(c->policy, &errs);
    if (p == NULL) {
        print_errors(c, &errs);
        goto out;
    }
    why = malloc(CLI_WHY_LEN);
    if (why == NULL) {
        fprintf(c->err, "out of memory\n");
        goto out;
    }
    az_policy_eval(p, &ident, &rb.ri, &v, why, CLI_WHY_LEN);
    const char *dec = v.decision == GH_ALLOW ? "allow" : "deny";
    if (c->json) {
        json_t *lines = json_array();
        for (char *s = why, *nl; lines != NULL && *s != '\0'; s = nl + 1) {
            nl = strchr(s, '\n');
            if (nl == NULL) {
                json_array_append_new(lines, json_string(s));
                break;
            }
            json_array_append_new(lines, json_stringn(s, (size_t)(nl - s)));
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "decision", dec, "reason",
                              gh_reason_name(v.reason), "rule", v.rule_id, "policy_version",
                              az_policy_version(p), "why", lines != NULL ? lines : json_array());
        if (j != NULL) {
            print_json(c, j);
            json_decref(j);
        }
    } else {
        fprintf(c->out, "decision: %s\nreason: %s\nrule: %s\npolicy_version: %s\nwhy:\n", dec,
                gh_reason_name(v.reason), v.rule_id[0] != '\0' ? v.rule_id : "-",
                az_policy_version(p));
        for (char *s = why, *nl; *s != '\0'; s = nl + 1) {
            nl = strchr(s, '\n');
            if (nl == NULL) {
                fprintf(c->out, "  %s\n", s);
                break;
            }
            fprintf(c->out, "  %.*s\n", (int)(nl - s), s);
        }
    }
    rc = v.decision == GH_ALLOW ? 0 : 1;
out:
    free(why);
    az_policy_unref(p);
    json_decref(ij);
    json_decref(rj);
    return rc;
}

/* "--opt VALUE" or "--opt=VALUE". Returns 1 and sets *val when argv[*i] is
 * opt; -1 when its value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *s, const char *l, const char **val)
{
    const char *a = argv[*i];
    size_t ll = strlen(l);
    if ((s != NULL && strcmp(a, s) == 0) || strcmp(a, l) == 0) {
        if (*i + 1 >= argc) {
            return -1;
        }
        *val = argv[++*i];
        return 1;
    }
    if (strncmp(a, l, ll) == 0 && a[ll] == '=') {
        *val = a + ll + 1;
        return 1;
    }
    return 0;
}

int az_policy_cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    struct cli c;
    memset(&c, 0, sizeof(c));
    c.out = out;
    c.err = err;
    if (argc < 1 || argv[0] == NULL) {
        return usage(&c, NULL);
    }
    c.cmd = argv[0];
    if (strcmp(c.cmd, "help") == 0 || strcmp(c.cmd, "-h") == 0 || strcmp(c.cmd, "--help") == 0) {
        fputs(usage_text, out);
        return 0;
    }
    if (strcmp(c.cmd, "test") != 0 && strcmp(c.cmd, "check") != 0) {
        return usage(&c, "unknown subcommand (expected check or test)");
    }
    for (int i = 1; i < argc; i++) {
        int k;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, out);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
            continue;
        }
        if ((k = opt_value(argc, argv, &i, "-p", "--policy", &c.policy)) != 0 ||
            (k = opt_value(argc, argv, &i, NULL, "--identity", &c.identity)) != 0 ||
            (k = opt_value(argc, argv, &i, NULL, "--request", &c.request)) != 0 ||
            (k = opt_value(argc, argv, &i, NULL, "--routes", &c.routes)) != 0) {
            if (k < 0) {
                return usage(&c, "option needs a value");
            }
            continue;
        }
        fprintf(err, "gatehouse policy: unknown option '%s'\n", argv[i]);
        return usage(&c, NULL);
    }
    if (c.policy == NULL) {
        return usage(&c, "-p FILE is required");
    }
    if (strcmp(c.cmd, "check") == 0) {
        if (c.identity != NULL || c.request != NULL) {
            return usage(&c, "check takes no --identity/--request");
        }
        return cmd_check(&c);
    }
    if (c.routes != NULL) {
        return usage(&c, "--routes belongs to check");
    }
    return cmd_test(&c);
}

int az_policy_test_main(int argc, char **argv)
{
    int rc = az_policy_cli_run(argc, argv, stdout, stderr);
    fflush(stdout);
    return rc;
}
