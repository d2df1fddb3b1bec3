/*
 * admin_http.c: the pure half of the admin API server -- what a request
 * means, decided without a socket so that every byte an admin client can
 * send is unit-tested and fuzzed (tests/unit/test_gw_admin.c,
 * tests/fuzz/fuzz_admin.c).
 *
 * The head goes through the same strict scanner and parser as user traffic
 * (gateway/http.c), only with the admin limits, so the admin plane has no
 * second, laxer HTTP parser. Routing is one table of method + path pattern
 * + the query parameters that route accepts; anything not in the table is a
 * 404/405/400, never a guess. Query values are percent-decoded into bounded
 * copies and refused when they carry control bytes, because they end up in
 * SQL parameters, log rows and the console. JSON bodies are parsed with
 * jansson (duplicate keys refused, NUL refused) and checked key by key:
 * unknown keys are errors, so a typo ("expire_in_s") fails loudly instead of
 * silently revoking forever.
 */
#include "gateway/admin_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/base/util.h"
#include "gateway/http.h"

/* ---- names ------------------------------------------------------------------ */

static const char *const op_names[GW_ADM__COUNT] = {
    [GW_ADM_NONE] = "none",
    [GW_ADM_HEALTH] = "health",
    [GW_ADM_STATS] = "stats",
    [GW_ADM_METRICS] = "metrics",
    [GW_ADM_SESSIONS] = "sessions",
    [GW_ADM_SESSION] = "session",
    [GW_ADM_REVOCATIONS] = "revocations",
    [GW_ADM_REVOKE] = "revoke",
    [GW_ADM_UNREVOKE] = "unrevoke",
    [GW_ADM_DECISIONS] = "decisions",
    [GW_ADM_STREAM] = "decision_stream",
    [GW_ADM_POLICY] = "policy",
    [GW_ADM_POLICY_VALIDATE] = "policy_validate",
    [GW_ADM_POLICY_APPLY] = "policy_apply",
    [GW_ADM_POLICY_VERSIONS] = "policy_versions",
    [GW_ADM_POLICY_DIFF] = "policy_diff",
    [GW_ADM_POLICY_ROLLBACK] = "policy_rollback",
};

const char *gw_admin_op_name(enum gw_admin_op op)
{
    return (unsigned)op < GW_ADM__COUNT ? op_names[op] : "none";
}

void gw_admin_printable(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0) {
        return;
    }
    size_t o = 0;
    size_t i = 0;
    for (; i < len && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (i < len && cap >= 4) {
        o = o > cap - 4 ? cap - 4 : o;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void req_error(struct gw_admin_req *req, int status, enum gh_reason reason, int close,
                      const char *fmt, ...) GH_PRINTF(5, 6);

static void req_error(struct gw_admin_req *req, int status, enum gh_reason reason, int close,
                      const char *fmt, ...)
{
    req->status = status;
    req->reason = reason;
    req->close = req->close || close;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->error, sizeof(req->error), fmt, ap);
    va_end(ap);
}

/* ---- route table -------------------------------------------------------------- */

struct route {
    const char *method;
    const char *pattern; /* "{}" = one path segment, the {id} parameter */
    enum gw_admin_op op;
    const char *params;  /* accepted query parameters, comma separated */
};

#define DECISION_FILTERS "after_id,subject,route,decision,reason,session"

static const struct route routes[] = {
    {"GET", "/v1/health", GW_ADM_HEALTH, ""},
    {"GET", "/v1/stats", GW_ADM_STATS, ""},
    {"GET", "/metrics", GW_ADM_METRICS, ""},
    {"GET", "/v1/sessions", GW_ADM_SESSIONS, "limit"},
    {"GET", "/v1/sessions/{}", GW_ADM_SESSION, ""},
    {"GET", "/v1/revocations", GW_ADM_REVOCATIONS, "limit"},
    {"POST", "/v1/revocations", GW_ADM_REVOKE, ""},
    {"DELETE", "/v1/revocations/{}", GW_ADM_UNREVOKE, ""},
    {"GET", "/v1/decisions", GW_ADM_DECISIONS, "since_us,limit," DECISION_FILTERS},
    {"GET", "/v1/decisions/stream", GW_ADM_STREAM, DECISION_FILTERS},
    {"GET", "/v1/policy", GW_ADM_POLICY, ""},
    {"POST", "/v1/policy/validate", GW_ADM_POLICY_VALIDATE, ""},
    {"POST", "/v1/policy/apply", GW_ADM_POLICY_APPLY, ""},
    {"GET", "/v1/policy/versions", GW_ADM_POLICY_VERSIONS, ""},
    {"GET", "/v1/policy/diff", GW_ADM_POLICY_DIFF, "from,to"},
    {"POST", "/v1/policy/rollback", GW_ADM_POLICY_ROLLBACK, ""},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Does path match pattern? On a match the raw {} segment is returned in
 * *seg / *seg_len. Segments compare byte for byte (no case folding, no
 * trailing-slash forgiveness: one spelling per resource). */
static int pattern_match(const char *pattern, const char *path, size_t len, const char **seg,
                         size_t *seg_len)
{
    size_t pl = strlen(pattern);
    size_t i = 0, j = 0;
    while (i < pl && j < len) {
        if (pattern[i] == '{') {
            size_t s = j;
            while (j < len && path[j] != '/') {
                j++;
            }
            if (j == s) {
                return 0; /* empty segment */
            }
            *seg = path + s;
            *seg_len = j - s;
            i += 2;
            continue;
        }
        if (pattern[i] != path[j]) {
            return 0;
        }
        i++;
        j++;
    }
    return i == pl && j == len;
}

static int param_allowed(const char *list, const char *key)
{
    size_t kl = strlen(key);
    const char *p = list;
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == kl && memcmp(p, key, kl) == 0) {
            return 1;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return 0;
}

long gw_admin_pct_decode(const char *in, size_t len, int plus_space, char *out, size_t cap)
{
    if (cap == 0) {
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)in[i];
        if (ch == '%') {
            if (len - i < 3 || gh_hexval((unsigned char)in[i + 1]) < 0 ||
                gh_hexval((unsigned char)in[i + 2]) < 0) {
                return -1;
            }
            ch = gh_hexval((unsigned char)in[i + 1]) * 16 + gh_hexval((unsigned char)in[i + 2]);
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (ch < 0x20 || ch == 0x7f) {
            return -1; /* NUL, CR, LF, ESC...: never into SQL, logs or a terminal */
        }
        if (o + 1 >= cap) {
            return -1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (long)o;
}

static int parse_query(const char *qs, size_t len, const struct route *rt,
                       struct gw_admin_req *req)
{
    size_t i = 0;
    while (i < len) {
        size_t s = i;
        while (i < len && qs[i] != '&') {
            i++;
        }
        size_t e = i;
        i++; /* skip '&' */
        if (e == s) {
            continue; /* "a=1&&b=2" */
        }
        const char *eq = memchr(qs + s, '=', e - s);
        size_t kl = eq ? (size_t)(eq - (qs + s)) : e - s;
        char key[32];
        char shown[40];
        gw_admin_printable(shown, sizeof(shown), qs + s, kl);
        if (gw_admin_pct_decode(qs + s, kl, 1, key, sizeof(key)) <= 0 ||
            !param_allowed(rt->params, key)) {
            req_error(req, 400, GH_R_ADMIN_BAD_REQUEST, 0,
                      "unknown query parameter '%s' for %s %s", shown, rt->method,
                      rt->pattern);
            return -1;
        }
        if (gw_admin_query(req, key) != NULL) {
            req_error(req, 400, GH_R_ADMIN_BAD_REQUEST, 0, "query parameter '%s' given twice",
                      key);
            return -1;
        }
        if (req->n_q >= GW_ADMIN_MAX_PARAMS) {
            req_error(req, 400, GH_R_ADMIN_BAD_REQUEST, 0, "more than %d query parameters",
                      GW_ADMIN_MAX_PARAMS);
            return -1;
        }
        struct gw_admin_param *p = &req->q[req->n_q];
        const char *v = eq ? eq + 1 : qs + e;
        size_t vl = (size_t)(qs + e - v);
        if (gw_admin_pct_decode(v, vl, 1, p->val, sizeof(p->val)) < 0) {
            req_error(req, 400, GH_R_ADMIN_BAD_REQUEST, 0,
                      "query parameter '%s': bad percent-encoding, control character or "
                      "longer than %d bytes",
                      key, GW_ADMIN_MAX_VALUE);
            return -1;
        }
        memcpy(p->key, key, sizeof(p->key));
        req->n_q++;
    }
    return 0;
}

int gw_admin_route(const char *method, const char *path, size_t path_len, const char *query,
                   size_t query_len, struct gw_admin_req *req)
{
    const struct route *hit = NULL;
    const char *seg = NULL;
    size_t seg_len = 0;
    req->op = GW_ADM_NONE;
    req->allow[0] = '\0';
    req->n_q = 0;
    req->id[0] = '\0';
    for (size_t i = 0; i < N_ROUTES; i++) {
        const char *s = NULL;
        size_t sl = 0;
        if (!pattern_match(routes[i].pattern, path, path_len, &s, &sl)) {
            continue;
        }
        if (strcmp(routes[i].method, method) == 0) {
            hit = &routes[i];
            seg = s;
            seg_len = sl;
            break;
        }
        size_t al = strlen(req->allow);
        snprintf(req->allow + al, sizeof(req->allow) - al, "%s%s", al ? ", " : "",
                 routes[i].method);
    }
    if (hit == NULL) {
        if (req->allow[0] != '\0') {
            char m[16];
            gw_admin_printable(m, sizeof(m), method, strlen(method));
            req_error(req, 405, GH_R_ADMIN_BAD_REQUEST, 0, "method %s not allowed (allowed: %s)",
                      m, req->allow);
        } else {
            req_error(req, 404, GH_R_ADMIN_BAD_REQUEST, 0, "no such admin endpoint");
        }
        return -1;
    }
    if (seg != NULL) {
        long n = gw_admin_pct_decode(seg, seg_len, 0, req->id, sizeof(req->id));
        if (n <= 0) {
            req_error(req, 400, GH_R_ADMIN_BAD_REQUEST, 0,
                      "bad path parameter (percent-encoding, control character or too long)");
            return -1;
        }
    }
    if (query != NULL && parse_query(query, query_len, hit, req) != 0) {
        return -1;
    }
    req->op = hit->op;
    return 0;
}

const char *gw_admin_query(const struct gw_admin_req *req, const char *key)
{
    for (int i = 0; i < req->n_q; i++) {
        if (strcmp(req->q[i].key, key) == 0) {
            return req->q[i].val;
        }
    }
    return NULL;
}

int gw_admin_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0') {
        return -1;
    }
    const char *p = s;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p == '\0' || strlen(p) > 19) {
        return -1;
    }
    uint64_t v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX) {
        return -1;
    }
    int64_t r = neg ? -(int64_t)v : (int64_t)v;
    if (r < min || r > max) {
        return -1;
    }
    *out = r;
    return 0;
}

/* ---- the head ----------------------------------------------------------------- */

int gw_admin_parse_request(const char *buf, size_t len, struct gw_admin_scan *st,
                           struct gw_admin_req *req)
{
    size_t head_len = 0;
    enum gh_reason r = GH_R_HTTP_BAD_REQUEST;
    int rc = gw_http_scan_head(buf, len, &st->scan, &st->lines, GW_ADMIN_MAX_HEAD,
                               GW_ADMIN_MAX_LINE, GW_ADMIN_MAX_HEADERS, &head_len, &r);
    if (rc == 0) {
        return 0;
    }
    memset(req, 0, sizeof(*req));
    if (rc < 0) {
        req->method[0] = '\0';
        gw_admin_printable(req->path, sizeof(req->path), "", 0);
        switch (r) {
        case GH_R_HTTP_URI_TOO_LONG:
            req_error(req, 414, r, 1, "request line longer than %d bytes", GW_ADMIN_MAX_LINE);
            break;
        case GH_R_HTTP_HEADER_TOO_LARGE:
            req_error(req, 431, r, 1, "request head larger than %d bytes", GW_ADMIN_MAX_HEAD);
            break;
        case GH_R_HTTP_TOO_MANY_HEADERS:
            req_error(req, 431, r, 1, "more than %d header lines", GW_ADMIN_MAX_HEADERS);
            break;
        default:
            req_error(req, 400, r, 1, "malformed request head (bare CR/LF, NUL or obs-fold)");
            break;
        }
        return 1;
    }
    req->head_len = head_len;
    /* http-parser keeps pointers into this array: a static would not be
     * thread-safe and 256 headers of stack is ~4 KiB, well within bounds. */
    struct gw_req_head rh;
    const char *detail = "bad request";
    if (gw_http_parse_request(buf, head_len, &rh, &r, &detail) != 0) {
        req_error(req, r == GH_R_HTTP_TOO_MANY_HEADERS ? 431 : 400, r, 1, "malformed request: %s",
                  detail);
        return 1;
    }
    req->http_minor = rh.http_minor;
    req->keep_alive = rh.keep_alive;
    req->expect_continue = rh.expect_continue;
    req->content_length = rh.content_length > 0 ? rh.content_length : 0;
    gw_admin_printable(req->method, sizeof(req->method), rh.method, rh.method_len);
    const char *q = memchr(rh.target, '?', rh.target_len);
    size_t path_len = q ? (size_t)(q - rh.target) : rh.target_len;
    gw_admin_printable(req->path, sizeof(req->path), rh.target, path_len);
    if (rh.chunked) {
        /* Admin clients send small bodies with a length; refusing chunked
         * keeps a second body framing out of the admin plane. */
        req_error(req, 411, GH_R_HTTP_BAD_REQUEST, 1,
                  "chunked request bodies are not accepted; send Content-Length");
        return 1;
    }
    if (rh.content_length > GW_ADMIN_MAX_BODY) {
        req_error(req, 413, GH_R_HTTP_BODY_TOO_LARGE, 1, "request body larger than %d bytes",
                  GW_ADMIN_MAX_BODY);
        return 1;
    }
    const char *qs = NULL;
    size_t ql = 0;
    if (q != NULL) {
        qs = q + 1;
        ql = rh.target_len - path_len - 1;
        if (memchr(qs, '#', ql) != NULL) {
            req_error(req, 400, GH_R_ADMIN_BAD_REQUEST, 0, "fragment in request target");
            return 1;
        }
    }
    (void)gw_admin_route(req->method, rh.target, path_len, qs, ql, req);
    return 1;
}

/* ---- query parameters ------------------------------------------------------------ */

static int int_param(const struct gw_admin_req *req, const char *key, int64_t min, int64_t max,
                     int64_t *out, struct gh_err *err)
{
    const char *v = gw_admin_query(req, key);
    if (v == NULL) {
        return 0;
    }
    if (gw_admin_parse_i64(v, min, max, out) != 0) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                          "query parameter '%s' must be an integer in %lld..%lld", key,
                          (long long)min, (long long)max);
    }
    return 0;
}

int gw_admin_sessions_limit(const struct gw_admin_req *req, int *limit, struct gh_err *err)
{
    int64_t v = 0;
    if (int_param(req, "limit", 1, 10000, &v, err) != 0) {
        return -1;
    }
    *limit = (int)v;
    return 0;
}

static int str_param(const struct gw_admin_req *req, const char *key, const char **out,
                     struct gh_err *err)
{
    const char *v = gw_admin_query(req, key);
    if (v == NULL) {
        return 0;
    }
    if (*v == '\0') {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "query parameter '%s' is empty", key);
    }
    *out = v;
    return 0;
}

int gw_admin_decisions_query(const struct gw_admin_req *req, struct db_query *q,
                             struct gh_err *err)
{
    memset(q, 0, sizeof(*q));
    q->decision = -1;
    int64_t limit = 0;
    if (int_param(req, "since_us", 0, INT64_MAX, &q->since_us, err) != 0 ||
        int_param(req, "after_id", 0, INT64_MAX, &q->after_id, err) != 0 ||
        int_param(req, "limit", 1, 10000, &limit, err) != 0 ||
        str_param(req, "subject", &q->subject, err) != 0 ||
        str_param(req, "route", &q->route, err) != 0 ||
        str_param(req, "session", &q->session_id, err) != 0) {
        return -1;
    }
    q->limit = (int)limit;
    const char *d = gw_admin_query(req, "decision");
    if (d != NULL) {
        if (strcmp(d, "allow") == 0) {
            q->decision = 1;
        } else if (strcmp(d, "deny") == 0) {
            q->decision = 0;
        } else {
            return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                              "query parameter 'decision' must be allow or deny");
        }
    }
    const char *rn = gw_admin_query(req, "reason");
    if (rn != NULL) {
        if (gh_reason_from_name(rn) < 0) {
            char shown[64];
            gw_admin_printable(shown, sizeof(shown), rn, strlen(rn));
            return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                              "unknown reason '%s' (docs/DECISION-LOG.md lists them)", shown);
        }
        q->reason = rn;
    }
    return 0;
}

/* ---- JSON bodies --------------------------------------------------------------- */

static json_t *load_object(const char *body, size_t len, struct gh_err *err)
{
    if (len == 0) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        char t[96];
        gw_admin_printable(t, sizeof(t), je.text, strlen(je.text));
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "malformed JSON at line %d column %d: %s",
                   je.line, je.column, t);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Unknown keys are refused: a misspelt optional field must not be ignored. */
static int only_keys(json_t *obj, const char *const *keys, size_t n, struct gh_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int known = 0;
        for (size_t i = 0; i < n; i++) {
            known |= strcmp(k, keys[i]) == 0;
        }
        if (!known) {
            char shown[48];
            gw_admin_printable(shown, sizeof(shown), k, strlen(k));
            return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "unknown field '%s'", shown);
        }
    }
    return 0;
}

/* A required (or optional) string field: printable, no control bytes, at
 * most max bytes; empty allowed only when allow_empty. */
static int text_field(json_t *obj, const char *key, int required, int allow_empty, char *out,
                      size_t cap, struct gh_err *err)
{
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (v == NULL) {
        return required ? gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "missing field '%s'", key) : 0;
    }
    if (!json_is_string(v)) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "field '%s' must be a string", key);
    }
    const char *s = json_string_value(v);
    size_t l = json_string_length(v);
    if (l == 0 && !allow_empty) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "field '%s' must not be empty", key);
    }
    if (l >= cap) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "field '%s' is longer than %zu bytes",
                          key, cap - 1);
    }
    for (size_t i = 0; i < l; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                              "field '%s' contains a control character", key);
        }
    }
    memcpy(out, s, l);
    out[l] = '\0';
    return 0;
}

static int is_thumbprint(const char *s)
{
    size_t l = strlen(s);
    if (l == 64) {
        for (size_t i = 0; i < l; i++) {
            if (gh_hexval((unsigned char)s[i]) < 0) {
                return 0;
            }
        }
        return 1;
    }
    if (l == 43) { /* base64url of 32 bytes, no padding: the x5t#S256 form */
        for (size_t i = 0; i < l; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (!isalnum(ch) && ch != '-' && ch != '_') {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

#define MAX_EXPIRES_S (10LL * 366 * 24 * 3600)

int gw_admin_parse_revoke(const char *body, size_t len, struct gw_admin_revoke *out,
                          struct gh_err *err)
{
    static const char *const keys[] = {"kind", "target", "reason", "expires_in_s"};
    int rc = -1;
    memset(out, 0, sizeof(*out));
    json_t *j = load_object(body, len, err);
    if (j == NULL) {
        return -1;
    }
    if (only_keys(j, keys, sizeof(keys) / sizeof(keys[0]), err) != 0 ||
        text_field(j, "kind", 1, 0, out->kind, sizeof(out->kind), err) != 0) {
        goto out;
    }
    if (strcmp(out->kind, "session") != 0 && strcmp(out->kind, "subject") != 0 &&
        strcmp(out->kind, "cert") != 0 && strcmp(out->kind, "token") != 0) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                   "field 'kind' must be one of session, subject, cert, token");
        goto out;
    }
    if (text_field(j, "target", 1, 0, out->target, sizeof(out->target), err) != 0 ||
        text_field(j, "reason", 1, 1, out->reason, sizeof(out->reason), err) != 0) {
        goto out;
    }
    if (strcmp(out->kind, "cert") == 0 && !is_thumbprint(out->target)) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                   "a cert target is the SHA-256 thumbprint: 64 hex characters or 43 base64url");
        goto out;
    }
    json_t *e = json_object_get(j, "expires_in_s");
    if (e != NULL && !json_is_null(e)) {
        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
            json_integer_value(e) > MAX_EXPIRES_S) {
            gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                       "field 'expires_in_s' must be an integer number of seconds in 0..%lld "
                       "(0 or absent: never expires)",
                       MAX_EXPIRES_S);
            goto out;
        }
        out->expires_in_s = (int64_t)json_integer_value(e);
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

int gw_admin_parse_rollback(const char *body, size_t len, char *version, size_t cap,
                            struct gh_err *err)
{
    static const char *const keys[] = {"version"};
    int rc = -1;
    version[0] = '\0';
    json_t *j = load_object(body, len, err);
    if (j == NULL) {
        return -1;
    }
    if (only_keys(j, keys, 1, err) != 0) {
        goto out;
    }
    json_t *v = json_object_get(j, "version");
    if (v == NULL) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "missing field 'version'");
        goto out;
    }
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "field 'version' must not be negative");
            goto out;
        }
        snprintf(version, cap, "%lld", (long long)json_integer_value(v));
        rc = 0;
        goto out;
    }
    if (text_field(j, "version", 1, 0, version, cap, err) != 0) {
        if (!json_is_string(v)) {
            gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                       "field 'version' must be a string or an integer");
        }
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

json_t *gw_admin_error_json(const char *msg, enum gh_reason reason)
{
    char safe[256];
    gw_admin_printable(safe, sizeof(safe), msg, strlen(msg));
    return json_pack("{s:s, s:s}", "error", safe, "reason", gh_reason_name(reason));
}
