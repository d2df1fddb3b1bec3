/* test_gw_diff.c: the policy line diff (gateway/control.c) never hides a
 * change, however long the files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "gateway/control.h"

static char *diff(const char *a, const char *b)
{
    struct evbuffer *o = evbuffer_new();
    gw_ctl_line_diff(a, b, o);
    size_t n = evbuffer_get_length(o);
    char *s = malloc(n + 1);
    evbuffer_remove(o, s, n);
    s[n] = '\0';
    evbuffer_free(o);
    return s;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void test_small(void **state)
{
    (void)state;
    char *d = diff("a\nb\nc\n", "a\nB\nc\nd\n");
    assert_string_equal(d, " a\n-b\n+B\n c\n+d\n");
    free(d);
    d = diff("same\n", "same\n");
    assert_string_equal(d, " same\n");
    free(d);
    d = diff("", "new\n");
    assert_string_equal(d, "+new\n");
    free(d);
    d = diff("no newline", "no newline\nmore");
    assert_string_equal(d, " no newline\n+more\n");
    free(d);
}

/* The review's case: a widening change after 2100 lines of comments. */
static void test_change_after_many_lines(void **state)
{
    (void)state;
    size_t cap = 64 * 4000;
    char *a = malloc(cap), *b = malloc(cap);
    size_t o = 0;
    for (int i = 0; i < 2100; i++) {
        o += (size_t)snprintf(a + o, cap - o, "# comment %d\n", i);
    }
    memcpy(b, a, o);
    snprintf(a + o, cap - o, "    routes: [wiki]\n    methods: [GET]\n");
    snprintf(b + o, cap - o, "    routes: [\"*\"]\n    methods: [GET, POST, PUT, DELETE]\n");
    char *d = diff(a, b);
    assert_non_null(strstr(d, "\n-    routes: [wiki]\n"));
    assert_non_null(strstr(d, "\n+    routes: [\"*\"]\n"));
    assert_non_null(strstr(d, "\n+    methods: [GET, POST, PUT, DELETE]\n"));
    assert_int_equal(count(d, "\n-"), 2);
    assert_int_equal(count(d, "\n+"), 2);
    free(d);
    free(a);
    free(b);
}

/* A middle too large for the LCS table: every line still shows. */
static void test_huge_middle(void **state)
{
    (void)state;
    size_t cap = 32 * 6000;
    char *a = malloc(cap), *b = malloc(cap);
    size_t oa = 0, ob = 0;
    for (int i = 0; i < 5000; i++) {
        oa += (size_t)snprintf(a + oa, cap - oa, "old %d\n", i);
        ob += (size_t)snprintf(b + ob, cap - ob, "new %d\n", i);
    }
    char *d = diff(a, b);
    assert_int_equal(count(d, "-old "), 5000);
    assert_int_equal(count(d, "+new "), 5000);
    assert_non_null(strstr(d, "-old 4999\n"));
    assert_non_null(strstr(d, "+new 4999\n"));
    free(d);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_change_after_many_lines),
        cmocka_unit_test(test_huge_middle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
