/*
 * test_authz_logout.c: OIDC Back-Channel Logout 1.0 logout tokens
 * (authz/logout.c): a valid one passes; forged, unsigned, expired, wrong
 * typ, nonce-bearing, event-less and sub/sid-less ones are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "authz/logout.h"
#include "authz_test_keys.h"

#define NOW 1900000000
static struct tkey key, other;
static struct az_jwks *keys;
static struct az_issuer iss = {.issuer = "https://idp.test", .audiences = {"gatehouse"}, .n_aud = 1,
                               .skew_s = 60};

static int setup(void **st)
{
    tk_ec(&key, NID_X9_62_prime256v1, "k1", 1);
    tk_ec(&other, NID_X9_62_prime256v1, "k1", 1);
    char js[8192];
    const char *j[] = {key.jwk};
    tk_jwks(js, sizeof(js), j, 1);
    struct gh_err err;
    keys = az_jwks_parse(js, strlen(js), &err);
    return keys ? 0 : -1;
}

static int teardown(void **st)
{
    az_jwks_unref(keys);
    tk_free(&key);
    tk_free(&other);
    return 0;
}

static enum gh_reason run(const char *hdr, const char *claims, const struct tkey *k,
                          struct az_logout *out)
{
    char tok[8192];
    size_t n = tk_token(tok, sizeof(tok), hdr, claims, k);
    struct gh_err err = {0};
    return az_logout_verify(&iss, keys, tok, n, NOW, out, &err);
}

#define HDR "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"logout+jwt\"}"
#define EV "\"events\":{\"http://schemas.openid.net/event/backchannel-logout\":{}}"
#define BASE "\"iss\":\"https://idp.test\",\"aud\":\"gatehouse\",\"iat\":1900000000,\"exp\":1900000120,\"jti\":\"j1\""

static void test_valid(void **st)
{
    struct az_logout lo;
    assert_int_equal(run(HDR, "{" BASE ",\"sub\":\"alice\",\"sid\":\"s1\"," EV "}", &key, &lo),
                     GH_R_ALLOW);
    assert_string_equal(lo.sub, "alice");
    assert_string_equal(lo.sid, "s1");
    assert_int_equal(run(HDR, "{" BASE ",\"sid\":\"s2\"," EV "}", &key, &lo), GH_R_ALLOW);
    assert_string_equal(lo.sub, "");
}

static void test_refused(void **st)
{
    struct az_logout lo;
    /* signed by another key with the same kid: forged */
    assert_int_equal(run(HDR, "{" BASE ",\"sub\":\"alice\"," EV "}", &other, &lo),
                     GH_R_LOGOUT_INVALID);
    /* wrong typ: an access token or ID token is not a logout token */
    assert_int_equal(run("{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"at+jwt\"}",
                         "{" BASE ",\"sub\":\"alice\"," EV "}", &key, &lo),
                     GH_R_LOGOUT_INVALID);
    /* expired */
    assert_int_equal(run(HDR,
                         "{\"iss\":\"https://idp.test\",\"aud\":\"gatehouse\",\"iat\":1899990000,"
                         "\"exp\":1899990100,\"jti\":\"j\",\"sub\":\"alice\"," EV "}",
                         &key, &lo),
                     GH_R_LOGOUT_INVALID);
    /* nonce present */
    assert_int_equal(run(HDR, "{" BASE ",\"sub\":\"alice\",\"nonce\":\"n\"," EV "}", &key, &lo),
                     GH_R_LOGOUT_INVALID);
    /* no events / wrong event */
    assert_int_equal(run(HDR, "{" BASE ",\"sub\":\"alice\"}", &key, &lo), GH_R_LOGOUT_INVALID);
    assert_int_equal(run(HDR, "{" BASE ",\"sub\":\"alice\",\"events\":{\"x\":{}}}", &key, &lo),
                     GH_R_LOGOUT_INVALID);
    /* neither sub nor sid */
    assert_int_equal(run(HDR, "{" BASE "," EV "}", &key, &lo), GH_R_LOGOUT_INVALID);
    /* no jti */
    assert_int_equal(run(HDR,
                         "{\"iss\":\"https://idp.test\",\"aud\":\"gatehouse\",\"iat\":1900000000,"
                         "\"exp\":1900000120,\"sub\":\"alice\"," EV "}",
                         &key, &lo),
                     GH_R_LOGOUT_INVALID);
    /* wrong audience */
    assert_int_equal(run(HDR,
                         "{\"iss\":\"https://idp.test\",\"aud\":\"other\",\"iat\":1900000000,"
                         "\"exp\":1900000120,\"jti\":\"j\",\"sub\":\"alice\"," EV "}",
                         &key, &lo),
                     GH_R_LOGOUT_INVALID);
    /* unsigned */
    struct gh_err err;
    const char *none = "eyJhbGciOiJub25lIiwidHlwIjoibG9nb3V0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.";
    assert_int_equal(az_logout_verify(&iss, keys, none, strlen(none), NOW, &lo, &err),
                     GH_R_LOGOUT_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_valid), cmocka_unit_test(test_refused)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
