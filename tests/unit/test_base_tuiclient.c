/*
 * test_base_tuiclient.c: gatehousectl's pure parts -- the admin API response
 * parser (tui/resp.c) and the policy diff (tui/diff.c). They are compiled
 * into this test directly (the tui target is an executable, and these two
 * files need nothing but libc and gh_base), with malloc/calloc/realloc
 * routed through a counter so every allocation can be made to fail in turn
 * ("torture" runs: fail the Nth allocation for N = 1.. until the call
 * succeeds; each failure must be a clean error, and ASan checks nothing
 * leaks).
 *
 * The parser cases are the framing an attacker-controlled or broken gateway
 * could send: conflicting lengths, smuggling-style CL+TE, bare LFs, folded
 * headers, oversized heads/bodies/chunks, truncation, and streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static long g_allocs;
static long g_fail_at; /* 0 = never */
static int g_failed;

static int should_fail(void)
{
    g_allocs++;
    if (g_fail_at > 0 && g_allocs == g_fail_at) {
        g_failed = 1;
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

static void *t_calloc(size_t a, size_t b)
{
    return should_fail() ? NULL : calloc(a, b);
}

static void *t_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

static void arm(long n)
{
    g_allocs = 0;
    g_failed = 0;
    g_fail_at = n;
}

static void disarm(void)
{
    g_fail_at = 0;
}

#define malloc(n) t_malloc(n)
#define calloc(a, b) t_calloc(a, b)
#define realloc(p, n) t_realloc(p, n)
#include "tui/diff.c"
#include "tui/resp.c"
#undef malloc
#undef calloc
#undef realloc

/* ---- response parser --------------------------------------------------------- */

struct parsed {
    int rc; /* tui_resp_feed/eof result */
    size_t used;
    struct gh_err err;
};

/* Feed all of s (in pieces of step bytes; 0 = at once), then EOF if eof. */
static struct parsed feed(struct tui_resp *r, const char *s, size_t len, size_t step, int eof)
{
    struct parsed p = {0};
    size_t off = 0;
    while (off < len && r->state != TUI_RS_DONE) {
        size_t n = step == 0 ? len - off : (len - off < step ? len - off : step);
        size_t used = 0;
        p.rc = tui_resp_feed(r, s + off, n, &used, &p.err);
        if (p.rc != 0) {
            return p;
        }
        off += used;
        p.used = off;
        if (used < n) {
            break;
        }
    }
    if (eof && r->state != TUI_RS_DONE) {
        p.rc = tui_resp_eof(r, &p.err);
    }
    return p;
}

static void parse_ok(const char *raw, int status, const char *body, size_t step)
{
    struct tui_resp *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    tui_resp_init(r, 0, 0);
    struct parsed p = feed(r, raw, strlen(raw), step, 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(r->state, TUI_RS_DONE);
    assert_int_equal(r->status, status);
    assert_non_null(r->body);
    assert_int_equal(r->body_len, strlen(body));
    assert_memory_equal(r->body, body, r->body_len);
    assert_int_equal(r->body[r->body_len], '\0');
    tui_resp_cleanup(r);
    free(r);
}

static void test_content_length(void **state)
{
    (void)state;
    const char *raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: 11\r\n\r\n{\"ok\":true}";
    for (size_t step = 0; step < 4; step++) {
        parse_ok(raw, 200, "{\"ok\":true}", step);
    }
    parse_ok("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404, "", 0);
    parse_ok("HTTP/1.1 204 No Content\r\n\r\n", 204, "", 0);
    /* An empty reason phrase is allowed. */
    parse_ok("HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nhi", 200, "hi", 1);
}

static void test_chunked(void **state)
{
    (void)state;
    const char *raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                      "0\r\nX-Trailer: yes\r\n\r\n";
    for (size_t step = 0; step < 5; step++) {
        parse_ok(raw, 200, "Wikipedia in\r\n\r\nchunks.", step);
    }
}

static void test_head_fields(void **state)
{
    (void)state;
    struct tui_resp r;
    tui_resp_init(&r, 0, 0);
    const char *raw = "HTTP/1.1 422 Unprocessable\r\ncontent-type: application/json\r\n"
                      "CONNECTION: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}EXTRA";
    struct parsed p = feed(&r, raw, strlen(raw), 0, 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(r.state, TUI_RS_DONE);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.conn_close, 1);
    /* Bytes after the response are not consumed: the caller closes. */
    assert_int_equal(p.used, strlen(raw) - 5);
    tui_resp_cleanup(&r);

    tui_resp_init(&r, 0, 0);
    raw = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
    p = feed(&r, raw, strlen(raw), 0, 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(r.conn_close, 1); /* HTTP/1.0 closes by default */
    tui_resp_cleanup(&r);
}

static void test_interim_and_close_delimited(void **state)
{
    (void)state;
    parse_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
             201, "new", 2);
    struct tui_resp r;
    tui_resp_init(&r, 0, 0);
    const char *raw = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
    struct parsed p = feed(&r, raw, strlen(raw), 3, 1);
    assert_int_equal(p.rc, 0);
    assert_int_equal(r.state, TUI_RS_DONE);
    assert_string_equal(r.body, "until the end");
    assert_int_equal(r.conn_close, 1);
    tui_resp_cleanup(&r);
}

static void parse_bad(const char *raw, size_t len, size_t max_body, int eof, const char *why)
{
    struct tui_resp *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    for (size_t step = 0; step < 3; step++) {
        tui_resp_init(r, max_body, 0);
        struct parsed p = feed(r, raw, len, step == 2 ? 7 : step, eof);
        if (p.rc != -1) {
            fail_msg("accepted (%s): %.60s", why, raw);
        }
        assert_int_equal(r->state, TUI_RS_ERROR);
        assert_true(p.err.reason == GH_R_UPSTREAM_ERROR || p.err.reason == GH_R_UPSTREAM_CONNECT);
        assert_non_null(strstr(p.err.msg, why));
        /* A failed parser stays failed. */
        size_t used;
        struct gh_err e2;
        if (r->state == TUI_RS_ERROR) {
            assert_int_equal(tui_resp_feed(r, "x", 1, &used, &e2), -1);
        }
        tui_resp_cleanup(r);
    }
    free(r);
}

#define BAD(raw, why) parse_bad(raw, strlen(raw), 0, 0, why)

static void test_malformed(void **state)
{
    (void)state;
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both Transfer-Encoding and Content-Length");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", "conflicting");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", "bad Content-Length");
    BAD("HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999\r\n\r\n", "bad Content-Length");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "unsupported Transfer-Encoding");
    BAD("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare");
    BAD("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "bare");
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "folding");
    BAD("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header name");
    BAD("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "bad header");
    BAD("HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n", "control byte");
    BAD("HTTP/2 200 OK\r\n\r\n", "bad status line");
    BAD("HTTP/1.1 999 OK\r\n\r\n", "bad status code");
    BAD("HTTP/1.1 20x OK\r\n\r\n", "bad status code");
    BAD("HTTP/1.1 200OK\r\n\r\n", "bad status line");
    BAD("HTTP/1.1 101 Switching\r\n\r\n", "protocol switch");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "empty chunk size");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n123456789\r\n", "too large");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
        "longer than its size");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n", "bare LF");
    BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n", "bad chunk size");
    /* NUL inside the head. */
    parse_bad("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27, 0, 0, "NUL");
}

static void test_limits_and_truncation(void **state)
{
    (void)state;
    /* Body limit: declared, chunked, and close-delimited. */
    parse_bad("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 40, 10, 0, "limit");
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6\r\n123456\r\n6\r\n123456\r\n0\r\n\r\n";
    parse_bad(ch, strlen(ch), 10, 0, "limit");
    const char *cl = "HTTP/1.1 200 OK\r\n\r\n0123456789A";
    parse_bad(cl, strlen(cl), 10, 0, "limit");
    /* Head limit and header count. */
    size_t big = TUI_RESP_MAX_HEAD + 100;
    char *h = malloc(big);
    assert_non_null(h);
    memset(h, 'a', big);
    memcpy(h, "HTTP/1.1 200 OK\r\nX: ", 20);
    parse_bad(h, big, 0, 0, "head too large");
    size_t o = (size_t)snprintf(h, big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= TUI_RESP_MAX_HEADERS; i++) {
        o += (size_t)snprintf(h + o, big - o, "X-%d: y\r\n", i);
    }
    o += (size_t)snprintf(h + o, big - o, "\r\n");
    parse_bad(h, o, 0, 0, "too many headers");
    free(h);
    /* Truncation: EOF before the end of the body or the head. */
    parse_bad("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
              strlen("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), 0, 1, "mid-response");
    parse_bad("HTTP/1.1 200 O", 14, 0, 1, "mid-response");
    parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 52, 0, 1,
              "mid-response");
    /* EOF before any byte: the gateway closed (a connection problem). */
    struct tui_resp r;
    struct gh_err e;
    tui_resp_init(&r, 0, 0);
    assert_int_equal(tui_resp_eof(&r, &e), -1);
    assert_int_equal(e.reason, GH_R_UPSTREAM_CONNECT);
    tui_resp_cleanup(&r);
}

static void test_stream_lines(void **state)
{
    (void)state;
    struct tui_resp r;
    struct gh_err e;
    size_t used;
    tui_resp_init(&r, 64, 1);
    const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(tui_resp_feed(&r, head, strlen(head), &used, &e), 0);
    assert_int_equal(r.state, TUI_RS_CHUNK_SIZE);
    const char *c1 = "e\r\n{\"id\":1}\n{\"id\"\r\n";
    assert_int_equal(tui_resp_feed(&r, c1, strlen(c1), &used, &e), 0);
    const char *line;
    size_t adv = 0;
    assert_int_equal(tui_resp_line(&r, &line, &adv), 8);
    assert_string_equal(line, "{\"id\":1}");
    tui_resp_consume(&r, adv);
    assert_int_equal(tui_resp_line(&r, &line, &adv), -1); /* partial line stays */
    const char *c2 = "5\r\n:2}\r\n\r\n1\r\n\n\r\n";
    assert_int_equal(tui_resp_feed(&r, c2, strlen(c2), &used, &e), 0);
    assert_int_equal(tui_resp_line(&r, &line, &adv), 8);
    assert_string_equal(line, "{\"id\":2}"); /* CR stripped */
    tui_resp_consume(&r, adv);
    assert_int_equal(tui_resp_line(&r, &line, &adv), 0); /* heartbeat: empty line */
    tui_resp_consume(&r, adv);
    /* Consumed lines free room: far more than max_body passes in total. */
    for (int i = 0; i < 100; i++) {
        const char *c3 = "a\r\n{\"id\":99}\n\r\n";
        assert_int_equal(tui_resp_feed(&r, c3, strlen(c3), &used, &e), 0);
        assert_int_equal(tui_resp_line(&r, &line, &adv), 9);
        tui_resp_consume(&r, adv);
    }
    assert_true(r.body_total > 64);
    /* One line longer than max_body is an error, not truncation. */
    char chunk[200];
    memset(chunk, 'x', sizeof(chunk));
    char sz[16];
    snprintf(sz, sizeof(sz), "%zx\r\n", sizeof(chunk));
    assert_int_equal(tui_resp_feed(&r, sz, strlen(sz), &used, &e), 0);
    assert_int_equal(tui_resp_feed(&r, chunk, sizeof(chunk), &used, &e), -1);
    assert_non_null(strstr(e.msg, "stream line too long"));
    tui_resp_cleanup(&r);
}

static void test_resp_alloc_failures(void **state)
{
    (void)state;
    const char *raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "1000\r\n";
    char *full = malloc(strlen(raw) + 0x1000 + 64);
    assert_non_null(full);
    size_t o = (size_t)sprintf(full, "%s", raw);
    memset(full + o, 'q', 0x1000);
    o += 0x1000;
    o += (size_t)sprintf(full + o, "\r\n3\r\nend\r\n0\r\n\r\n");
    int done = 0;
    for (long n = 1; n < 100 && !done; n++) {
        struct tui_resp *r = malloc(sizeof(*r));
        assert_non_null(r);
        tui_resp_init(r, 0, 0);
        arm(n);
        struct parsed p = feed(r, full, o, 100, 0);
        disarm();
        if (p.rc == 0) {
            assert_int_equal(r->state, TUI_RS_DONE);
            assert_int_equal(r->body_len, 0x1000 + 3);
            done = !g_failed;
        } else {
            assert_true(g_failed);
            assert_non_null(strstr(p.err.msg, "out of memory"));
        }
        tui_resp_cleanup(r);
        free(r);
    }
    assert_true(done);
    free(full);
}

/* ---- diff ---------------------------------------------------------------------- */

static char *dif(const char *a, const char *b)
{
    struct gh_err e;
    char *d = tui_diff(a, strlen(a), b, strlen(b), "a", "b", &e);
    assert_non_null(d);
    return d;
}

static void test_diff(void **state)
{
    (void)state;
    char *d = dif("x\ny\n", "x\ny\n");
    assert_string_equal(d, "");
    free(d);
    d = dif("a\nb\nc\n", "a\nB\nc\n");
    assert_string_equal(d, "--- a\n+++ b\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    free(d);
    d = dif("", "new\n");
    assert_string_equal(d, "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+new\n");
    free(d);
    d = dif("gone\n", "");
    assert_string_equal(d, "--- a\n+++ b\n@@ -1,1 +0,0 @@\n-gone\n");
    free(d);
    /* No trailing newline still diffs by line. */
    d = dif("a\nb", "a\nc");
    assert_string_equal(d, "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
    free(d);
    /* Two changes far apart make two hunks with 3 lines of context. */
    d = dif("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\nY\n12\n");
    assert_string_equal(d, "--- a\n+++ b\n"
                           "@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n"
                           "@@ -8,5 +8,5 @@\n 8\n 9\n 10\n-11\n+Y\n 12\n");
    free(d);
    /* An insertion in the middle. */
    d = dif("a\nb\n", "a\nnew\nb\n");
    assert_string_equal(d, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n a\n+new\n b\n");
    free(d);
}

static void test_diff_limits(void **state)
{
    (void)state;
    /* Two texts that differ everywhere in 5000 x 5000 lines: over the cell
     * limit, so a clear error instead of a 100 MB table. */
    size_t n = 5000;
    char *a = malloc(n * 8 + 1);
    char *b = malloc(n * 8 + 1);
    assert_non_null(a);
    assert_non_null(b);
    size_t oa = 0, ob = 0;
    for (size_t i = 0; i < n; i++) {
        oa += (size_t)sprintf(a + oa, "a%05zu\n", i);
        ob += (size_t)sprintf(b + ob, "b%05zu\n", i);
    }
    struct gh_err e;
    assert_null(tui_diff(a, oa, b, ob, "a", "b", &e));
    assert_non_null(strstr(e.msg, "too different"));
    /* The same sizes with a shared head and tail are fine (trimmed first). */
    char *d = tui_diff(a, oa, a, oa, "a", "a", &e);
    assert_non_null(d);
    assert_string_equal(d, "");
    free(d);
    free(a);
    free(b);
}

static void test_diff_alloc_failures(void **state)
{
    (void)state;
    const char *a = "version: 1\nrules:\n  - id: one\n    effect: allow\n";
    const char *b = "version: 1\nrules:\n  - id: two\n    effect: deny\n  - id: three\n";
    int done = 0;
    for (long n = 1; n < 200 && !done; n++) {
        struct gh_err e;
        arm(n);
        char *d = tui_diff(a, strlen(a), b, strlen(b), "x", "y", &e);
        disarm();
        if (d != NULL) {
            assert_non_null(strstr(d, "+  - id: three\n"));
            done = !g_failed;
            free(d);
        } else {
            assert_true(g_failed);
        }
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_head_fields),
        cmocka_unit_test(test_interim_and_close_delimited),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits_and_truncation),
        cmocka_unit_test(test_stream_lines),
        cmocka_unit_test(test_resp_alloc_failures),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_diff_limits),
        cmocka_unit_test(test_diff_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
