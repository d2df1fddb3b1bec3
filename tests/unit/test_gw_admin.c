/*
 * test_gw_admin.c: the admin API's pure half (gateway/admin_http.c) without
 * sockets: request heads and their limits, routing (path parameters, 404 vs
 * 405), query strings (percent-decoding, unknown/duplicate/control bytes),
 * the decision-query builder, and JSON body validation for revocations and
 * rollbacks -- including an allocation-failure loop over the JSON parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/admin_internal.h"
#include "gateway/config.h"

static struct gw_admin_req req; /* ~10 KiB: keep it off the stack */

/* Parse a complete request given as a C string; returns the parser's rc. */
static int parse(const char *s)
{
    struct gw_admin_scan st = {0};
    memset(&req, 0xa5, sizeof(req)); /* stale bytes must not leak through */
    return gw_admin_parse_request(s, strlen(s), &st, &req);
}

#define H "Host: localhost\r\n"

/* ---- heads and routing ------------------------------------------------------------ */

static void test_simple_routes(void **state)
{
    static const struct {
        const char *method, *target;
        enum gw_admin_op op;
    } cases[] = {
        {"GET", "/v1/health", GW_ADM_HEALTH},
        {"GET", "/v1/stats", GW_ADM_STATS},
        {"GET", "/metrics", GW_ADM_METRICS},
        {"GET", "/v1/sessions", GW_ADM_SESSIONS},
        {"GET", "/v1/sessions?limit=5", GW_ADM_SESSIONS},
        {"GET", "/v1/sessions/0123abcd", GW_ADM_SESSION},
        {"GET", "/v1/revocations", GW_ADM_REVOCATIONS},
        {"POST", "/v1/revocations", GW_ADM_REVOKE},
        {"DELETE", "/v1/revocations/17", GW_ADM_UNREVOKE},
        {"GET", "/v1/decisions", GW_ADM_DECISIONS},
        {"GET", "/v1/decisions/stream?after_id=9", GW_ADM_STREAM},
        {"GET", "/v1/policy", GW_ADM_POLICY},
        {"POST", "/v1/policy/validate", GW_ADM_POLICY_VALIDATE},
        {"POST", "/v1/policy/apply", GW_ADM_POLICY_APPLY},
        {"GET", "/v1/policy/versions", GW_ADM_POLICY_VERSIONS},
        {"GET", "/v1/policy/diff?from=a&to=b", GW_ADM_POLICY_DIFF},
        {"POST", "/v1/policy/rollback", GW_ADM_POLICY_ROLLBACK},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\n" H "\r\n", cases[i].method,
                 cases[i].target);
        assert_int_equal(parse(buf), 1);
        assert_int_equal(req.status, 0);
        assert_int_equal(req.op, cases[i].op);
        assert_string_equal(req.method, cases[i].method);
        assert_true(req.keep_alive);
        assert_int_equal(req.content_length, 0);
        assert_int_equal(req.head_len, strlen(buf));
        /* the logged path never carries the query */
        assert_null(strchr(req.path, '?'));
    }
    assert_string_equal(gw_admin_op_name(GW_ADM_REVOKE), "revoke");
    assert_string_equal(gw_admin_op_name((enum gw_admin_op)999), "none");
}

static void test_incremental(void **state)
{
    const char *s = "GET /v1/stats HTTP/1.1\r\n" H "Connection: close\r\n\r\n";
    size_t n = strlen(s);
    struct gw_admin_scan st = {0};
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(gw_admin_parse_request(s, i, &st, &req), 0);
    }
    assert_int_equal(gw_admin_parse_request(s, n, &st, &req), 1);
    assert_int_equal(req.status, 0);
    assert_int_equal(req.op, GW_ADM_STATS);
    assert_false(req.keep_alive);
}

static void test_path_params(void **state)
{
    assert_int_equal(parse("GET /v1/sessions/ab%3Acd HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 0);
    assert_string_equal(req.id, "ab:cd");
    assert_string_equal(req.path, "/v1/sessions/ab%3Acd");
    /* an encoded unreserved character has a plain spelling: refused by the
     * strict HTTP layer, like every other second spelling */
    assert_int_equal(parse("GET /v1/sessions/ab%41cd HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);

    assert_int_equal(parse("DELETE /v1/revocations/42 HTTP/1.1\r\n" H "\r\n"), 1);
    assert_string_equal(req.id, "42");

    /* empty segment, trailing slash, extra segment, case: 404 (one spelling) */
    assert_int_equal(parse("GET /v1/sessions/ HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 404);
    assert_int_equal(parse("GET /v1/stats/ HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 404);
    assert_int_equal(parse("GET /v1/sessions/a/b HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 404);
    assert_int_equal(parse("GET /V1/STATS HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 404);
    assert_int_equal(req.reason, GH_R_ADMIN_BAD_REQUEST);
    assert_false(req.close); /* a 404 keeps the connection */

    /* bad escapes and control bytes in the parameter */
    assert_int_equal(parse("GET /v1/sessions/ab%4 HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_int_equal(parse("GET /v1/sessions/ab%0A HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    /* encoded slash/dot/NUL never reach the router (strict HTTP layer) */
    assert_int_equal(parse("GET /v1/sessions/a%2Fb HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_true(req.close);
    assert_int_equal(parse("GET /v1/sessions/%00 HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
}

static void test_methods(void **state)
{
    assert_int_equal(parse("PUT /v1/revocations HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 405);
    assert_string_equal(req.allow, "GET, POST");
    assert_false(req.close);
    assert_int_equal(parse("POST /v1/stats HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 405);
    assert_string_equal(req.allow, "GET");
    assert_int_equal(parse("GET /v1/revocations/3 HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 405);
    assert_string_equal(req.allow, "DELETE");
    assert_int_equal(parse("HEAD /v1/health HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 405);
    /* not a method at all: http-parser refuses, connection closes */
    assert_int_equal(parse("FROB /v1/health HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_true(req.close);
    /* route table is direct: gw_admin_route on its own */
    memset(&req, 0, sizeof(req));
    assert_int_equal(gw_admin_route("GET", "/v1/health", 10, NULL, 0, &req), 0);
    assert_int_equal(req.op, GW_ADM_HEALTH);
    assert_int_equal(gw_admin_route("GET", "/nope", 5, NULL, 0, &req), -1);
    assert_int_equal(req.status, 404);
}

static void test_head_refusals(void **state)
{
    /* framing errors: 400 and close */
    assert_int_equal(parse("GET /v1/health HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_int_equal(req.reason, GH_R_HTTP_SMUGGLING);
    assert_true(req.close);
    assert_int_equal(parse("GET /v1/health HTTP/1.1\r\n\r\n"), 1); /* missing Host */
    assert_int_equal(req.status, 400);
    assert_true(req.close);
    assert_int_equal(parse("GET http://evil/v1/health HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_int_equal(parse("GET /v1/../v1/health HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_int_equal(parse("GET /v1/health HTTP/2.0\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_int_equal(parse("\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03\r\n\r\n"), 1);
    assert_int_equal(req.status, 400);
    assert_true(req.close);

    /* limits: request line, head size, header count */
    static char big[GW_ADMIN_MAX_HEAD + 4096];
    memset(big, 0, sizeof(big));
    strcpy(big, "GET /v1/decisions?subject=");
    memset(big + strlen(big), 'a', GW_ADMIN_MAX_LINE);
    strcat(big, " HTTP/1.1\r\n" H "\r\n");
    assert_int_equal(parse(big), 1);
    assert_int_equal(req.status, 414);
    assert_true(req.close);

    memset(big, 0, sizeof(big));
    strcpy(big, "GET /v1/health HTTP/1.1\r\n" H "X-Big: ");
    memset(big + strlen(big), 'b', GW_ADMIN_MAX_HEAD);
    strcat(big, "\r\n\r\n");
    assert_int_equal(parse(big), 1);
    assert_int_equal(req.status, 431);
    assert_int_equal(req.reason, GH_R_HTTP_HEADER_TOO_LARGE);
    assert_true(req.close);

    memset(big, 0, sizeof(big));
    strcpy(big, "GET /v1/health HTTP/1.1\r\n" H);
    for (int i = 0; i < GW_ADMIN_MAX_HEADERS + 2; i++) {
        char line[32];
        snprintf(line, sizeof(line), "X-H%d: v\r\n", i);
        strcat(big, line);
    }
    strcat(big, "\r\n");
    assert_int_equal(parse(big), 1);
    assert_int_equal(req.status, 431);
    assert_int_equal(req.reason, GH_R_HTTP_TOO_MANY_HEADERS);

    /* an incomplete head below the limits just needs more bytes */
    assert_int_equal(parse("GET /v1/health HTTP/1.1\r\nHost: a\r\n"), 0);
}

static void test_body_framing(void **state)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "POST /v1/policy/apply HTTP/1.1\r\n" H "Content-Length: %d\r\n\r\n",
             GW_ADMIN_MAX_BODY);
    assert_int_equal(parse(buf), 1);
    assert_int_equal(req.status, 0);
    assert_int_equal(req.content_length, GW_ADMIN_MAX_BODY);

    snprintf(buf, sizeof(buf), "POST /v1/policy/apply HTTP/1.1\r\n" H "Content-Length: %d\r\n\r\n",
             GW_ADMIN_MAX_BODY + 1);
    assert_int_equal(parse(buf), 1);
    assert_int_equal(req.status, 413);
    assert_int_equal(req.reason, GH_R_HTTP_BODY_TOO_LARGE);
    assert_true(req.close);
    assert_string_equal(req.path, "/v1/policy/apply"); /* still logged with its path */

    assert_int_equal(parse("POST /v1/revocations HTTP/1.1\r\n" H
                           "Content-Length: 99999999999999999\r\n\r\n"),
                     1);
    assert_int_equal(req.status, 413);

    assert_int_equal(parse("POST /v1/revocations HTTP/1.1\r\n" H
                           "Transfer-Encoding: chunked\r\n\r\n"),
                     1);
    assert_int_equal(req.status, 411);
    assert_true(req.close);

    assert_int_equal(parse("POST /v1/revocations HTTP/1.1\r\n" H
                           "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"),
                     1);
    assert_int_equal(req.status, 400);
    assert_int_equal(req.reason, GH_R_HTTP_SMUGGLING);
    assert_true(req.close);

    assert_int_equal(parse("POST /v1/revocations HTTP/1.1\r\n" H
                           "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n"),
                     1);
    assert_int_equal(req.status, 0);
    assert_true(req.expect_continue);
    assert_int_equal(req.content_length, 10);

    /* HTTP/1.0: keep-alive only when asked */
    assert_int_equal(parse("GET /v1/health HTTP/1.0\r\n" H "\r\n"), 1);
    assert_false(req.keep_alive);
    assert_int_equal(req.http_minor, 0);
    assert_int_equal(parse("GET /v1/health HTTP/1.0\r\n" H "Connection: keep-alive\r\n\r\n"), 1);
    assert_true(req.keep_alive);
}

/* ---- query strings ------------------------------------------------------------------ */

static void test_query_decoding(void **state)
{
    assert_int_equal(parse("GET /v1/decisions?subject=CN%3Dalice%2CO%3DExample+Org&route=wiki"
                           "&decision=deny HTTP/1.1\r\n" H "\r\n"),
                     1);
    assert_int_equal(req.status, 0);
    assert_int_equal(req.n_q, 3);
    assert_string_equal(gw_admin_query(&req, "subject"), "CN=alice,O=Example Org");
    assert_string_equal(gw_admin_query(&req, "route"), "wiki");
    assert_null(gw_admin_query(&req, "reason"));

    /* key without value and empty pairs */
    assert_int_equal(parse("GET /v1/policy/diff?&from=v1&&to HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(req.status, 0);
    assert_string_equal(gw_admin_query(&req, "from"), "v1");
    assert_string_equal(gw_admin_query(&req, "to"), "");

    /* refusals: unknown, per-route, duplicate, bad escape, control, fragment */
    const char *bad[] = {
        "GET /v1/decisions?bogus=1 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/stats?limit=1 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions/stream?since_us=1 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?route=a&route=b HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?route=a%zz HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?route=a% HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?route=a%0d%0aX:1 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?route=a%00 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?route=a%7f HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?%72oute=x&route=y HTTP/1.1\r\n" H "\r\n", /* encoded key, duplicate */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i]), 1);
        assert_int_equal(req.status, 400);
        assert_int_equal(req.reason, GH_R_ADMIN_BAD_REQUEST);
        assert_false(req.close); /* the framing is fine: keep-alive survives */
        assert_true(strlen(req.error) > 0);
    }

    /* too many parameters */
    char buf[1024] = "GET /v1/decisions?";
    for (int i = 0; i <= GW_ADMIN_MAX_PARAMS; i++) {
        strcat(buf, "limit=1&");
    }
    strcat(buf, " HTTP/1.1\r\n" H "\r\n");
    assert_int_equal(parse(buf), 1);
    assert_int_equal(req.status, 400);

    /* a value longer than the maximum */
    static char lng[GW_ADMIN_MAX_VALUE + 200];
    strcpy(lng, "GET /v1/decisions?subject=");
    memset(lng + strlen(lng), 'x', GW_ADMIN_MAX_VALUE + 1);
    strcat(lng, " HTTP/1.1\r\n" H "\r\n");
    assert_int_equal(parse(lng), 1);
    assert_int_equal(req.status, 400);
}

static void test_pct_decode(void **state)
{
    char out[16];
    assert_int_equal(gw_admin_pct_decode("a%20b+c", 7, 1, out, sizeof(out)), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(gw_admin_pct_decode("a%20b+c", 7, 0, out, sizeof(out)), 5);
    assert_string_equal(out, "a b+c");
    assert_int_equal(gw_admin_pct_decode("%C3%A9", 6, 1, out, sizeof(out)), 2); /* UTF-8 kept */
    assert_int_equal(gw_admin_pct_decode("%", 1, 1, out, sizeof(out)), -1);
    assert_int_equal(gw_admin_pct_decode("%4", 2, 1, out, sizeof(out)), -1);
    assert_int_equal(gw_admin_pct_decode("%g0", 3, 1, out, sizeof(out)), -1);
    assert_int_equal(gw_admin_pct_decode("%09", 3, 1, out, sizeof(out)), -1);
    assert_int_equal(gw_admin_pct_decode("\x1b", 1, 1, out, sizeof(out)), -1);
    assert_int_equal(gw_admin_pct_decode("0123456789abcdef", 16, 1, out, sizeof(out)), -1);
    assert_int_equal(gw_admin_pct_decode("0123456789abcde", 15, 1, out, sizeof(out)), 15);
    assert_int_equal(gw_admin_pct_decode("", 0, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

static void test_parse_i64(void **state)
{
    int64_t v = 0;
    assert_int_equal(gw_admin_parse_i64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(gw_admin_parse_i64("9223372036854775807", 0, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(gw_admin_parse_i64("9223372036854775808", 0, INT64_MAX, &v), -1);
    assert_int_equal(gw_admin_parse_i64("99999999999999999999", 0, INT64_MAX, &v), -1);
    assert_int_equal(gw_admin_parse_i64("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(gw_admin_parse_i64("-5", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64("11", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64("", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64("-", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64(" 1", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64("1x", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64("+1", 0, 10, &v), -1);
    assert_int_equal(gw_admin_parse_i64(NULL, 0, 10, &v), -1);
}

static void test_decisions_query(void **state)
{
    struct db_query q;
    struct gh_err err = {0};
    assert_int_equal(parse("GET /v1/decisions?since_us=100&after_id=7&subject=alice&route=wiki"
                           "&decision=allow&reason=policy_deny&session=abc&limit=50 HTTP/1.1\r\n" H
                           "\r\n"),
                     1);
    assert_int_equal(req.status, 0);
    assert_int_equal(gw_admin_decisions_query(&req, &q, &err), 0);
    assert_int_equal(q.since_us, 100);
    assert_int_equal(q.after_id, 7);
    assert_string_equal(q.subject, "alice");
    assert_string_equal(q.route, "wiki");
    assert_int_equal(q.decision, 1);
    assert_string_equal(q.reason, "policy_deny");
    assert_string_equal(q.session_id, "abc");
    assert_int_equal(q.limit, 50);
    assert_int_equal(q.oldest_first, 0);

    assert_int_equal(parse("GET /v1/decisions HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(gw_admin_decisions_query(&req, &q, &err), 0);
    assert_int_equal(q.decision, -1);
    assert_null(q.subject);
    assert_null(q.reason);
    assert_int_equal(q.limit, 0);

    assert_int_equal(parse("GET /v1/decisions?decision=deny HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(gw_admin_decisions_query(&req, &q, &err), 0);
    assert_int_equal(q.decision, 0);

    const char *bad[] = {
        "GET /v1/decisions?decision=maybe HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?decision=1 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?reason=not_a_reason HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?limit=0 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?limit=10001 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?limit=ten HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?since_us=-1 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?after_id=1.5 HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions?subject= HTTP/1.1\r\n" H "\r\n",
        "GET /v1/decisions/stream?after_id=x HTTP/1.1\r\n" H "\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i]), 1);
        assert_int_equal(req.status, 0);
        gh_err_clear(&err);
        assert_int_equal(gw_admin_decisions_query(&req, &q, &err), -1);
        assert_int_equal(err.reason, GH_R_ADMIN_BAD_REQUEST);
        assert_true(strlen(err.msg) > 0);
    }

    int limit = -1;
    assert_int_equal(parse("GET /v1/sessions?limit=25 HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(gw_admin_sessions_limit(&req, &limit, &err), 0);
    assert_int_equal(limit, 25);
    assert_int_equal(parse("GET /v1/sessions HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(gw_admin_sessions_limit(&req, &limit, &err), 0);
    assert_int_equal(limit, 0);
    assert_int_equal(parse("GET /v1/sessions?limit=-3 HTTP/1.1\r\n" H "\r\n"), 1);
    assert_int_equal(gw_admin_sessions_limit(&req, &limit, &err), -1);
}

/* ---- JSON bodies --------------------------------------------------------------------- */

static int revoke(const char *body, struct gw_admin_revoke *rv, struct gh_err *err)
{
    gh_err_clear(err);
    return gw_admin_parse_revoke(body, strlen(body), rv, err);
}

static void test_revoke_body(void **state)
{
    struct gw_admin_revoke rv;
    struct gh_err err = {0};
    assert_int_equal(revoke("{\"kind\":\"session\",\"target\":\"0123abcd\","
                            "\"reason\":\"lost laptop\",\"expires_in_s\":3600}",
                            &rv, &err),
                     0);
    assert_string_equal(rv.kind, "session");
    assert_string_equal(rv.target, "0123abcd");
    assert_string_equal(rv.reason, "lost laptop");
    assert_int_equal(rv.expires_in_s, 3600);

    assert_int_equal(
        revoke("{\"kind\":\"subject\",\"target\":\"alice\",\"reason\":\"\"}", &rv, &err), 0);
    assert_int_equal(rv.expires_in_s, 0);
    assert_int_equal(revoke("{\"kind\":\"token\",\"target\":\"jti-1\",\"reason\":\"r\","
                            "\"expires_in_s\":null}",
                            &rv, &err),
                     0);
    assert_int_equal(revoke("{\"kind\":\"cert\",\"target\":\"0123456789abcdef0123456789abcdef"
                            "0123456789abcdef0123456789ABCDEF\",\"reason\":\"stolen\"}",
                            &rv, &err),
                     0);
    assert_int_equal(revoke("{\"kind\":\"cert\",\"target\":\"qL3SZ5m6GZG8yF6rM3Hc-5e7h0yGg5bJx1k2"
                            "Zt3_AbC\",\"reason\":\"stolen\"}",
                            &rv, &err),
                     0);

    static const struct {
        const char *body;
        const char *msg_part;
    } bad[] = {
        {"", "JSON object"},
        {"[]", "JSON object"},
        {"\"kind\"", "JSON"},
        {"{\"kind\":\"session\"", "malformed JSON"},
        {"{\"kind\":\"session\",\"target\":\"a\",\"reason\":\"r\"} trailing", "malformed JSON"},
        {"{\"target\":\"a\",\"reason\":\"r\"}", "missing field 'kind'"},
        {"{\"kind\":\"session\",\"reason\":\"r\"}", "missing field 'target'"},
        {"{\"kind\":\"session\",\"target\":\"a\"}", "missing field 'reason'"},
        {"{\"kind\":5,\"target\":\"a\",\"reason\":\"r\"}", "'kind' must be a string"},
        {"{\"kind\":\"user\",\"target\":\"a\",\"reason\":\"r\"}", "one of session"},
        {"{\"kind\":\"session\",\"target\":\"\",\"reason\":\"r\"}", "must not be empty"},
        {"{\"kind\":\"session\",\"target\":[\"a\"],\"reason\":\"r\"}", "must be a string"},
        {"{\"kind\":\"session\",\"target\":\"a\",\"reason\":\"r\",\"expire_in_s\":5}",
         "unknown field 'expire_in_s'"},
        {"{\"kind\":\"session\",\"target\":\"a\",\"reason\":\"r\",\"expires_in_s\":-1}",
         "expires_in_s"},
        {"{\"kind\":\"session\",\"target\":\"a\",\"reason\":\"r\",\"expires_in_s\":\"60\"}",
         "expires_in_s"},
        {"{\"kind\":\"session\",\"target\":\"a\",\"reason\":\"r\",\"expires_in_s\":1.5}",
         "expires_in_s"},
        {"{\"kind\":\"session\",\"target\":\"a\",\"reason\":\"r\",\"expires_in_s\":99999999999}",
         "expires_in_s"},
        {"{\"kind\":\"session\",\"kind\":\"subject\",\"target\":\"a\",\"reason\":\"r\"}",
         "malformed JSON"}, /* duplicate key */
        {"{\"kind\":\"session\",\"target\":\"a\\nb\",\"reason\":\"r\"}", "control character"},
        {"{\"kind\":\"session\",\"target\":\"a\\u0000b\",\"reason\":\"r\"}", "malformed JSON"},
        {"{\"kind\":\"cert\",\"target\":\"abc\",\"reason\":\"r\"}", "thumbprint"},
        {"{\"kind\":\"cert\",\"target\":\"zz23456789abcdef0123456789abcdef0123456789abcdef01"
         "23456789abcdef\",\"reason\":\"r\"}",
         "thumbprint"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(revoke(bad[i].body, &rv, &err), -1);
        assert_int_equal(err.reason, GH_R_ADMIN_BAD_REQUEST);
        if (strstr(err.msg, bad[i].msg_part) == NULL) {
            fail_msg("body %zu: '%s' does not mention '%s'", i, err.msg, bad[i].msg_part);
        }
    }

    /* a target longer than the maximum */
    char big[600];
    char tgt[GW_ADMIN_MAX_TEXT + 2];
    memset(tgt, 'a', sizeof(tgt) - 1);
    tgt[sizeof(tgt) - 1] = '\0';
    snprintf(big, sizeof(big), "{\"kind\":\"subject\",\"target\":\"%s\",\"reason\":\"r\"}", tgt);
    assert_int_equal(revoke(big, &rv, &err), -1);
    assert_non_null(strstr(err.msg, "longer than"));
    tgt[sizeof(tgt) - 2] = '\0'; /* exactly the maximum is fine */
    snprintf(big, sizeof(big), "{\"kind\":\"subject\",\"target\":\"%s\",\"reason\":\"r\"}", tgt);
    assert_int_equal(revoke(big, &rv, &err), 0);

    /* deep nesting is refused without recursion trouble */
    static char deep[40000];
    memset(deep, '[', sizeof(deep) - 1);
    assert_int_equal(gw_admin_parse_revoke(deep, sizeof(deep) - 1, &rv, &err), -1);
}

static void test_rollback_body(void **state)
{
    char v[GW_ADMIN_MAX_TEXT + 1];
    struct gh_err err = {0};
    const char *ok1 = "{\"version\":\"3f2a\"}";
    assert_int_equal(gw_admin_parse_rollback(ok1, strlen(ok1), v, sizeof(v), &err), 0);
    assert_string_equal(v, "3f2a");
    const char *ok2 = "{\"version\":12}";
    assert_int_equal(gw_admin_parse_rollback(ok2, strlen(ok2), v, sizeof(v), &err), 0);
    assert_string_equal(v, "12");
    const char *bad[] = {
        "{}", "{\"version\":\"\"}", "{\"version\":-1}", "{\"version\":true}",
        "{\"version\":\"a\",\"x\":1}", "{\"version\":[1]}", "nope", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gh_err_clear(&err);
        assert_int_equal(gw_admin_parse_rollback(bad[i], strlen(bad[i]), v, sizeof(v), &err), -1);
        assert_int_equal(err.reason, GH_R_ADMIN_BAD_REQUEST);
        assert_true(strlen(err.msg) > 0);
    }
}

/* Allocation failure: fail the Nth allocation jansson makes, for N = 1..
 * until the parse succeeds. Every failure must be a clean -1 (ASan checks
 * nothing leaks). */
static long alloc_budget = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0) {
        return NULL;
    }
    if (alloc_budget > 0) {
        alloc_budget--;
    }
    return malloc(n);
}

static void test_alloc_failure(void **state)
{
    json_set_alloc_funcs(failing_malloc, free);
    const char *body = "{\"kind\":\"session\",\"target\":\"0123abcd\",\"reason\":\"lost laptop\","
                       "\"expires_in_s\":3600}";
    struct gw_admin_revoke rv;
    int ok_at = -1;
    for (long n = 0; n < 200; n++) {
        struct gh_err err = {0};
        alloc_budget = n;
        int rc = gw_admin_parse_revoke(body, strlen(body), &rv, &err);
        if (rc == 0) {
            ok_at = (int)n;
            break;
        }
        assert_int_equal(rc, -1);
        assert_int_equal(err.reason, GH_R_ADMIN_BAD_REQUEST);
    }
    alloc_budget = -1;
    for (long n = 0; n < 50; n++) {
        alloc_budget = n;
        json_t *e = gw_admin_error_json("boom", GH_R_INTERNAL);
        alloc_budget = -1;
        if (e != NULL) {
            json_decref(e);
            break;
        }
    }
    alloc_budget = -1;
    json_set_alloc_funcs(malloc, free);
    assert_true(ok_at > 0);
    assert_string_equal(rv.target, "0123abcd");
}

static void test_error_json_and_printable(void **state)
{
    json_t *e = gw_admin_error_json("bad \xff input\n", GH_R_ADMIN_BAD_REQUEST);
    assert_non_null(e); /* invalid UTF-8 in a message cannot make the error vanish */
    assert_string_equal(json_string_value(json_object_get(e, "error")), "bad ? input?");
    assert_string_equal(json_string_value(json_object_get(e, "reason")), "admin_bad_request");
    json_decref(e);

    char out[8];
    gw_admin_printable(out, sizeof(out), "abc", 3);
    assert_string_equal(out, "abc");
    gw_admin_printable(out, sizeof(out), "abcdefghijk", 11);
    assert_string_equal(out, "abcd...");
    gw_admin_printable(out, sizeof(out), "a\x01\x7f", 3);
    assert_string_equal(out, "a??");
}

static void test_admin_subjects(void **state)
{
    (void)state;
    struct gw_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    char full[] = "CN=ops-admin,O=Gatehouse Test";
    char bare[] = "CN=alice";
    cfg.admin_subjects[0] = full;
    cfg.admin_subjects[1] = bare;
    cfg.n_admin_subjects = 2;
    /* the real subjects */
    assert_true(gw_admin_subject_allowed(&cfg, "CN=ops-admin,O=Gatehouse Test", "ops-admin"));
    assert_true(gw_admin_subject_allowed(&cfg, "CN=alice,O=Anything", "alice"));
    /* a CN spelled like the whole allowed subject, from another organisation */
    assert_false(gw_admin_subject_allowed(&cfg, "CN=ops-admin\\,O=Gatehouse Test,O=Evil Corp",
                                          "ops-admin,O=Gatehouse Test"));
    /* a CN equal to the full entry minus "CN=" */
    assert_false(gw_admin_subject_allowed(&cfg, "CN=x", "ops-admin,O=Gatehouse Test"));
    /* the multi-RDN entry's CN alone is not enough either */
    assert_false(gw_admin_subject_allowed(&cfg, "CN=ops-admin,O=Evil Corp", "ops-admin"));
    assert_false(gw_admin_subject_allowed(&cfg, "CN=bob", "bob"));
    cfg.n_admin_subjects = 0;
    assert_true(gw_admin_subject_allowed(&cfg, "CN=bob", "bob")); /* empty list: the CA decides */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin_subjects),
        cmocka_unit_test(test_simple_routes),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_head_refusals),
        cmocka_unit_test(test_body_framing),
        cmocka_unit_test(test_query_decoding),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_parse_i64),
        cmocka_unit_test(test_decisions_query),
        cmocka_unit_test(test_revoke_body),
        cmocka_unit_test(test_rollback_body),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_error_json_and_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
