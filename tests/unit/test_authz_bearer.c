/*
 * test_authz_bearer.c: az_bearer_extract, RFC 6750 section 2.1 -- one
 * Authorization header, scheme "Bearer" (any case), exactly one SP, then a
 * b64token and nothing else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/token_internal.h"

static enum gh_reason one(const char *v, const char **tok, size_t *len)
{
    const char *vals[1] = {v};
    size_t lens[1] = {strlen(v)};
    return az_bearer_extract(vals, lens, 1, tok, len);
}

static void test_ok(void **s)
{
    (void)s;
    const char *tok;
    size_t len;
    const char *v = "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    assert_int_equal(one(v, &tok, &len), GH_R_ALLOW);
    assert_ptr_equal(tok, v + 7); /* a slice, not a copy */
    assert_int_equal(len, strlen(v) - 7);
    const char *ok[] = {"bearer abc",  "BEARER abc",   "BeArEr abc", "Bearer A-._~+/z09",
                        "Bearer abc=", "Bearer abc==", "Bearer x"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(one(ok[i], &tok, &len), GH_R_ALLOW);
        assert_int_equal(len, strlen(ok[i]) - 7);
    }
    /* the length is honoured: bytes after lens[0] are not looked at */
    const char *vals[1] = {"Bearer abc, junk"};
    size_t lens[1] = {10};
    assert_int_equal(az_bearer_extract(vals, lens, 1, &tok, &len), GH_R_ALLOW);
    assert_int_equal(len, 3);
}

static void test_malformed(void **s)
{
    (void)s;
    const char *tok = (const char *)1;
    size_t len = 7;
    const char *bad[] = {
        "Bearer",         /* no token */
        "Bearer ",        /* empty token */
        "Bearer  abc",    /* two spaces */
        "Bearer\tabc",    /* tab */
        "Bearer abc def", /* space inside */
        "Bearer abc ",    /* trailing space */
        "Bearer =abc",    /* '=' only at the end */
        "Bearer abc=d",   /* ... really only at the end */
        "Bearer ab,c",    /* comma */
        "Bearer abc\r\n", /* CRLF */
        "Bearer a\"b",    /* quote */
        "Bearer ===",     /* padding only */
        " Bearer abc",    /* leading space: no scheme */
        "Bearer,abc",
        "Bearer:abc",
        "Bearer token=\"abc\"", /* auth-param form is not a b64token */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(one(bad[i], &tok, &len), GH_R_TOKEN_MALFORMED);
        assert_null(tok);
        assert_int_equal(len, 0);
    }
    /* NUL byte inside the value */
    const char v[] = "Bearer ab\0c";
    const char *vals[1] = {v};
    size_t lens[1] = {sizeof(v) - 1};
    assert_int_equal(az_bearer_extract(vals, lens, 1, &tok, &len), GH_R_TOKEN_MALFORMED);
}

static void test_other_scheme_or_none(void **s)
{
    (void)s;
    const char *tok;
    size_t len;
    const char *other[] = {
        "Basic dXNlcjpwYXNz", "DPoP eyJ.eyJ.sig", "Bearerx abc", "Digest username=\"a\"",
        "Token abc",          "Bear abc",         "Bearer-abc"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        assert_int_equal(one(other[i], &tok, &len), GH_R_TOKEN_MISSING);
        assert_null(tok);
    }
    assert_int_equal(one("", &tok, &len), GH_R_TOKEN_MISSING);
    assert_int_equal(az_bearer_extract(NULL, NULL, 0, &tok, &len), GH_R_TOKEN_MISSING);
    const char *vals[1] = {"Bearer a"};
    size_t lens[1] = {8};
    assert_int_equal(az_bearer_extract(vals, lens, 0, &tok, &len), GH_R_TOKEN_MISSING);
    assert_int_equal(az_bearer_extract(vals, NULL, 1, &tok, &len), GH_R_TOKEN_MISSING);
}

static void test_multiple(void **s)
{
    (void)s;
    const char *tok;
    size_t len;
    const char *vals[2] = {"Bearer a", "Bearer a"};
    size_t lens[2] = {8, 8};
    assert_int_equal(az_bearer_extract(vals, lens, 2, &tok, &len), GH_R_TOKEN_MULTIPLE_AUTH);
    const char *mix[2] = {"Basic x", "Bearer a"};
    assert_int_equal(az_bearer_extract(mix, lens, 2, &tok, &len), GH_R_TOKEN_MULTIPLE_AUTH);
}

static void test_too_large(void **s)
{
    (void)s;
    const char *tok;
    size_t len;
    char *v = malloc(7 + AZ_TOKEN_MAX_LEN + 2);
    memcpy(v, "Bearer ", 7);
    memset(v + 7, 'a', AZ_TOKEN_MAX_LEN + 1);
    v[7 + AZ_TOKEN_MAX_LEN + 1] = '\0';
    const char *vals[1] = {v};
    size_t lens[1] = {7 + AZ_TOKEN_MAX_LEN};
    assert_int_equal(az_bearer_extract(vals, lens, 1, &tok, &len), GH_R_ALLOW);
    assert_int_equal(len, AZ_TOKEN_MAX_LEN);
    lens[0]++;
    assert_int_equal(az_bearer_extract(vals, lens, 1, &tok, &len), GH_R_TOKEN_TOO_LARGE);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_other_scheme_or_none),
        cmocka_unit_test(test_multiple),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
