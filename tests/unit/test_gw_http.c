/*
 * test_gw_http.c: the strict HTTP/1.1 edge (gateway/http.c) without sockets:
 * every smuggling vector the gateway refuses, the limits, and that ordinary
 * requests pass with the framing facts extracted correctly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/http.h"

static int scan(const char *s, enum gh_reason *r, size_t *hl)
{
    size_t off = 0;
    int lines = 0;
    return gw_http_scan_head(s, strlen(s), &off, &lines, 1024, 128, 10, hl, r);
}

static int parse(const char *s, struct gw_req_head *rh, enum gh_reason *r)
{
    const char *d = NULL;
    size_t hl = 0;
    enum gh_reason sr;
    if (scan(s, &sr, &hl) != 1) {
        *r = sr;
        return -2;
    }
    return gw_http_parse_request(s, hl, rh, r, &d);
}

static void test_scan_ok_and_incremental(void **st)
{
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    size_t off = 0, hl = 0;
    int lines = 0;
    enum gh_reason r;
    assert_int_equal(gw_http_scan_head(req, 10, &off, &lines, 1024, 128, 10, &hl, &r), 0);
    assert_int_equal(gw_http_scan_head(req, strlen(req), &off, &lines, 1024, 128, 10, &hl, &r), 1);
    assert_int_equal(hl, strlen(req) - 4);
}

static void test_scan_refusals(void **st)
{
    enum gh_reason r;
    size_t hl;
    assert_int_equal(scan("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", &r, &hl), -1);
    assert_int_equal(r, GH_R_HTTP_SMUGGLING); /* bare LF */
    assert_int_equal(scan("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", &r, &hl), -1);
    assert_int_equal(r, GH_R_HTTP_SMUGGLING); /* bare CR */
    assert_int_equal(scan("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &r, &hl), -1);
    assert_int_equal(r, GH_R_HTTP_SMUGGLING); /* obs-fold */
    /* the same fold split across two reads right after the LF: the scan
     * resumes at the SP and must still see that it starts a line */
    {
        const char *f = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n X-Gatehouse-User: admin\r\n\r\n";
        size_t cut = strlen("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n");
        size_t o = 0;
        int ln = 0;
        assert_int_equal(gw_http_scan_head(f, cut, &o, &ln, 1024, 128, 10, &hl, &r), 0);
        assert_int_equal(gw_http_scan_head(f, strlen(f), &o, &ln, 1024, 128, 10, &hl, &r), -1);
        assert_int_equal(r, GH_R_HTTP_SMUGGLING);
        /* and split after every byte */
        o = 0;
        ln = 0;
        int rc = 0;
        for (size_t k = 1; k <= strlen(f) && rc == 0; k++) {
            rc = gw_http_scan_head(f, k, &o, &ln, 1024, 128, 10, &hl, &r);
        }
        assert_int_equal(rc, -1);
        assert_int_equal(r, GH_R_HTTP_SMUGGLING);
        /* a tab as well */
        assert_int_equal(scan("GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", &r, &hl), -1);
    }
    char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    size_t off = 0;
    int lines = 0;
    assert_int_equal(gw_http_scan_head(nul, sizeof(nul) - 1, &off, &lines, 1024, 128, 10, &hl, &r),
                     -1);
    assert_int_equal(r, GH_R_HTTP_SMUGGLING);
    char longline[300];
    memset(longline, 'a', sizeof(longline));
    memcpy(longline, "GET /", 5);
    longline[sizeof(longline) - 1] = '\0';
    assert_int_equal(scan(longline, &r, &hl), -1);
    assert_int_equal(r, GH_R_HTTP_URI_TOO_LONG);
    char many[1024] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 12; i++) {
        strcat(many, "X: y\r\n");
    }
    strcat(many, "\r\n");
    assert_int_equal(scan(many, &r, &hl), -1);
    assert_int_equal(r, GH_R_HTTP_TOO_MANY_HEADERS);
    char big[2000] = "GET / HTTP/1.1\r\nX: ";
    memset(big + strlen(big), 'b', 1500);
    big[1600] = '\0';
    assert_int_equal(scan(big, &r, &hl), -1);
    assert_int_equal(r, GH_R_HTTP_HEADER_TOO_LARGE);
}

static void test_parse_good(void **st)
{
    struct gw_req_head rh;
    enum gh_reason r;
    assert_int_equal(parse("POST /a?b=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n"
                           "Authorization: Bearer x\r\nExpect: 100-continue\r\n\r\n",
                           &rh, &r),
                     0);
    assert_int_equal(rh.content_length, 12);
    assert_false(rh.chunked);
    assert_true(rh.expect_continue);
    assert_int_equal(rh.n_auth, 1);
    assert_true(rh.keep_alive);
    assert_int_equal(rh.target_len, 6);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                           &rh, &r),
                     0);
    assert_true(rh.chunked);
    assert_int_equal(parse("GET / HTTP/1.0\r\nHost: h\r\n\r\n", &rh, &r), 0);
    assert_false(rh.keep_alive);
}

static void expect_refused(const char *req, enum gh_reason want)
{
    struct gw_req_head rh;
    enum gh_reason r = GH_R_ALLOW;
    assert_int_equal(parse(req, &rh, &r), -1);
    assert_int_equal(r, want);
}

static void test_parse_smuggling(void **st)
{
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n",
                   GH_R_HTTP_SMUGGLING);
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                   GH_R_HTTP_SMUGGLING);
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                   GH_R_HTTP_SMUGGLING);
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
                   GH_R_HTTP_SMUGGLING);
    expect_refused("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                   GH_R_HTTP_SMUGGLING);
    expect_refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", GH_R_HTTP_SMUGGLING);
}

static void test_parse_bad_requests(void **st)
{
    expect_refused("GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET * HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/../admin HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/./b HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/%2e%2E/admin HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a%2fb HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/.. HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    /* one spelling per path: what a decoding, slash-merging or ';'-stripping
     * upstream would read as /admin never reaches it under another name */
    expect_refused("GET /%61dmin/users HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /adm%69N HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/%7e HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/%2D HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET //admin HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a//b HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /admin;x/users HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /a/100%25 HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET /admin%3bx/users HTTP/1.1\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    /* Host: a name or IP literal and a port, nothing else */
    expect_refused("GET / HTTP/1.1\r\nHost: app.test:@evil.example\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: app.test:65536\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: app.test:123456\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: :443\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    expect_refused("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", GH_R_HTTP_BAD_REQUEST);
    /* dots inside a segment name are fine */
    struct gw_req_head rh;
    enum gh_reason r;
    assert_int_equal(parse("GET /a/..b/.c/file.txt?x=/../ HTTP/1.1\r\nHost: h\r\n\r\n", &rh, &r), 0);
    static const char *const hosts[] = {"localhost", "localhost:8443", "example.com.",
                                        "[::1]", "[::1]:8443", "[::ffff:127.0.0.1]:443",
                                        "a_b.example", "10.0.0.1:65535"};
    for (size_t k = 0; k < sizeof(hosts) / sizeof(hosts[0]); k++) {
        char req[128];
        snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", hosts[k]);
        assert_int_equal(parse(req, &rh, &r), 0);
    }
    /* reserved and non-ASCII octets stay encoded; the query is not a path */
    assert_int_equal(
        parse("GET /a%20b/%C3%A9/%3a/%40?q=%61//;x HTTP/1.1\r\nHost: h\r\n\r\n", &rh, &r), 0);
}

static void test_helpers(void **st)
{
    assert_true(gw_http_list_has("keep-alive, X-Secret", 20, "x-secret"));
    assert_false(gw_http_list_has("keep-alive, X-Secretive", 23, "x-secret"));
    assert_true(gw_http_is_hop_or_owned("X-Gatehouse-User", 16));
    assert_true(gw_http_is_hop_or_owned("Transfer-Encoding", 17));
    assert_false(gw_http_is_hop_or_owned("Accept", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_ok_and_incremental), cmocka_unit_test(test_scan_refusals),
        cmocka_unit_test(test_parse_good),              cmocka_unit_test(test_parse_smuggling),
        cmocka_unit_test(test_parse_bad_requests),      cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
