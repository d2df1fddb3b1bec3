/*
 * test_authz_assertion.c: the gateway's signed identity assertion -- key
 * load/create (0600, refusals), JWKS with an RFC 7638 kid, signing, and
 * verification with our own verifier using the signer's published JWKS.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "authz/assertion.h"
#include "authz_test_keys.h"

#define NOW INT64_C(1700000000)
#define GW "https://gatehouse.internal"

static char g_dir[256];

static int setup_dir(void **s)
{
    (void)s;
    snprintf(g_dir, sizeof(g_dir), "/tmp/gh-assert-XXXXXX");
    return mkdtemp(g_dir) != NULL ? 0 : -1;
}

static int teardown_dir(void **s)
{
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A verified access token to build assertions from. */
static struct az_token *access_token(void)
{
    struct tkey k;
    tk_ec(&k, NID_X9_62_prime256v1, "idp", 1);
    char doc[2048], tok[4096];
    const char *one[] = {k.jwk};
    tk_jwks(doc, sizeof(doc), one, 1);
    struct az_jwks *ks = az_jwks_parse(doc, strlen(doc), NULL);
    uint8_t c[32];
    char th[48], claims[1024];
    SHA256((const uint8_t *)"cert", 4, c);
    tk_b64u(c, 32, th);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"https://idp\",\"aud\":\"gh\",\"sub\":\"alice\",\"exp\":%lld,"
             "\"email\":\"alice@example.com\",\"groups\":[\"admins\",\"dev\"],"
             "\"cnf\":{\"x5t#S256\":\"%s\"}}",
             (long long)NOW + 600, th);
    size_t tl = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"idp\"}",
                         claims, &k);
    struct az_issuer iss;
    memset(&iss, 0, sizeof(iss));
    strcpy(iss.issuer, "https://idp");
    strcpy(iss.audiences[0], "gh");
    iss.n_aud = 1;
    struct az_token *t = NULL;
    if (az_token_verify(&iss, ks, tok, tl, &t, NULL) != GH_R_ALLOW) {
        abort();
    }
    az_jwks_unref(ks);
    tk_free(&k);
    return t;
}

static void test_jwks_and_kid(void **s)
{
    (void)s;
    struct gh_err err;
    struct az_signer *sg = az_signer_load_or_create(NULL, &err);
    assert_non_null(sg);
    const char *doc = az_signer_jwks(sg);
    struct az_jwks *ks = az_jwks_parse(doc, strlen(doc), &err);
    assert_non_null(ks);
    assert_int_equal(az_jwks_count(ks), 1);
    assert_int_equal(az_jwks_skipped(ks), 0);
    assert_true(az_jwks_has_kid(ks, az_signer_kid(sg)));
    assert_int_equal(az_jwks_find(ks, az_signer_kid(sg))->alg, AZ_ALG_ES256);

    /* recompute the RFC 7638 thumbprint independently from the JWK */
    json_t *j = json_loads(doc, 0, NULL);
    json_t *k = json_array_get(json_object_get(j, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(k, "alg")), "ES256");
    assert_null(json_object_get(k, "d")); /* never the private part */
    json_t *req = json_pack("{s:O,s:O,s:O,s:O}", "crv", json_object_get(k, "crv"), "kty",
                            json_object_get(k, "kty"), "x", json_object_get(k, "x"), "y",
                            json_object_get(k, "y"));
    char *canon = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
    uint8_t md[32];
    char kid[48];
    SHA256((const uint8_t *)canon, strlen(canon), md);
    tk_b64u(md, 32, kid);
    assert_string_equal(kid, az_signer_kid(sg));
    assert_string_equal(kid, json_string_value(json_object_get(k, "kid")));
    free(canon);
    json_decref(req);
    json_decref(j);
    az_jwks_unref(ks);
    az_signer_free(sg);
    az_signer_free(NULL);
}

static void test_sign_and_verify(void **s)
{
    (void)s;
    struct az_signer *sg = az_signer_load_or_create(NULL, NULL);
    struct az_token *at = access_token();
    struct az_jwks *ks = az_jwks_parse(az_signer_jwks(sg), strlen(az_signer_jwks(sg)), NULL);
    char out[4096], out2[4096];
    const char *thumb = at->cnf_x5t_s256;
    assert_int_equal(
        az_assertion_sign(sg, "route-1", GW, at, thumb, 1, "sess-42", NOW, 30, out, sizeof(out)), 0);
    int n = (int)strlen(out);
    assert_true(n > 0);

    /* header: alg ES256, our typ, our kid */
    uint8_t hb[512];
    long hl = gh_b64url_decode(out, (size_t)(strchr(out, '.') - out), hb);
    assert_true(hl > 0);
    json_t *h = json_loadb((const char *)hb, (size_t)hl, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "typ")), "gatehouse-assertion+jwt");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), az_signer_kid(sg));
    json_decref(h);

    struct az_token *t = NULL;
    struct gh_err err;
    assert_int_equal(az_assertion_verify(ks, GW, "route-1", out, (size_t)n, NOW + 1, &t, &err),
                     GH_R_ALLOW);
    assert_string_equal(t->iss, GW);
    assert_string_equal(t->sub, "alice");
    assert_string_equal(t->email, "alice@example.com");
    assert_string_equal(t->sid, "sess-42");
    assert_string_equal(t->cnf_x5t_s256, thumb);
    assert_int_equal(t->n_groups, 2);
    assert_string_equal(t->groups[1], "dev");
    assert_int_equal(t->iat, NOW);
    assert_int_equal(t->exp, NOW + 30);
    assert_int_equal(strlen(t->jti), 22);
    assert_string_equal(json_string_value(json_object_get(t->claims, "aud")), "route-1");
    assert_string_equal(json_string_value(json_object_get(t->claims, "binding")), "verified");
    char jti1[128];
    strcpy(jti1, t->jti);
    az_token_unref(t);

    /* a second assertion has a fresh jti */
    assert_int_equal(
        az_assertion_sign(sg, "route-1", GW, at, thumb, 1, "sess-42", NOW, 30, out2, sizeof(out2)),
        0);
    n = (int)strlen(out2);
    assert_int_equal(az_assertion_verify(ks, GW, "route-1", out2, (size_t)n, NOW, &t, NULL),
                     GH_R_ALLOW);
    assert_string_not_equal(t->jti, jti1);
    az_token_unref(t);

    /* refusals: other route, other gateway, expired, tampered */
    n = (int)strlen(out);
    assert_int_equal(az_assertion_verify(ks, GW, "route-2", out, (size_t)n, NOW, &t, NULL),
                     GH_R_TOKEN_BAD_AUDIENCE);
    assert_null(t);
    assert_int_equal(
        az_assertion_verify(ks, "https://other", "route-1", out, (size_t)n, NOW, &t, NULL),
        GH_R_TOKEN_BAD_ISSUER);
    assert_int_equal(
        az_assertion_verify(ks, GW, "route-1", out, (size_t)n, NOW + 30 + 60, &t, NULL),
        GH_R_TOKEN_EXPIRED);
    assert_int_equal(az_assertion_verify(ks, GW, "route-1", out, (size_t)n, NOW + 89, &t, NULL),
                     GH_R_ALLOW);
    az_token_unref(t);
    char *p = strchr(out, '.') + 5;
    *p = *p == 'A' ? 'B' : 'A';
    assert_int_equal(az_assertion_verify(ks, GW, "route-1", out, (size_t)n, NOW, &t, NULL),
                     GH_R_TOKEN_BAD_SIGNATURE);

    /* another gateway's key does not verify ours */
    struct az_signer *sg2 = az_signer_load_or_create(NULL, NULL);
    struct az_jwks *ks2 = az_jwks_parse(az_signer_jwks(sg2), strlen(az_signer_jwks(sg2)), NULL);
    assert_int_equal(
        az_assertion_sign(sg, "route-1", GW, at, thumb, 1, NULL, NOW, 30, out, sizeof(out)), 0);
    n = (int)strlen(out);
    assert_int_equal(az_assertion_verify(ks2, GW, "route-1", out, (size_t)n, NOW, &t, NULL),
                     GH_R_TOKEN_UNKNOWN_KID);

    /* never confusable with an access token: the access-token verifier
     * refuses an assertion by typ, even with the gateway's keys */
    struct az_issuer iss;
    memset(&iss, 0, sizeof(iss));
    strcpy(iss.issuer, GW);
    strcpy(iss.audiences[0], "route-1");
    iss.n_aud = 1;
    iss.allow_jwt_typ = 1;
    assert_int_equal(az_token_verify(&iss, ks, out, (size_t)n, &t, NULL), GH_R_TOKEN_BAD_TYP);

    az_jwks_unref(ks2);
    az_signer_free(sg2);
    az_jwks_unref(ks);
    az_token_unref(at);
    az_signer_free(sg);
}

static void test_without_token_and_limits(void **s)
{
    (void)s;
    struct az_signer *sg = az_signer_load_or_create(NULL, NULL);
    struct az_jwks *ks = az_jwks_parse(az_signer_jwks(sg), strlen(az_signer_jwks(sg)), NULL);
    char out[2048];
    assert_int_equal(az_assertion_sign(sg, "r", GW, NULL, NULL, 0, NULL, NOW, 10, out, sizeof(out)),
                     0);
    int n = (int)strlen(out);
    struct az_token *t = NULL;
    assert_int_equal(az_assertion_verify(ks, GW, "r", out, (size_t)n, NOW, &t, NULL), GH_R_ALLOW);
    assert_string_equal(t->sub, "");
    assert_null(json_object_get(t->claims, "cnf"));
    assert_string_equal(json_string_value(json_object_get(t->claims, "binding")), "not_required");
    az_token_unref(t);
    /* out too small: -1 and an empty string; every size up to the needed one */
    for (size_t cap = 0; cap < (size_t)n + 1; cap += 7) {
        char small[2048];
        memset(small, 'Z', sizeof(small));
        assert_int_equal(az_assertion_sign(sg, "r", GW, NULL, NULL, 0, NULL, NOW, 10, small, cap),
                         -1);
        if (cap > 0) {
            assert_int_equal(small[0], '\0');
        }
    }
    assert_int_equal(
        az_assertion_sign(sg, "r", GW, NULL, NULL, 0, NULL, NOW, 10, out, (size_t)n + 1), 0);
    /* bad arguments */
    assert_int_equal(az_assertion_sign(NULL, "r", GW, NULL, NULL, 0, NULL, NOW, 10, out, 2048), -1);
    assert_int_equal(az_assertion_sign(sg, NULL, GW, NULL, NULL, 0, NULL, NOW, 10, out, 2048), -1);
    assert_int_equal(az_assertion_sign(sg, "r", GW, NULL, NULL, 0, NULL, NOW, 0, out, 2048), -1);
    /* a route id that is not valid UTF-8 cannot be serialized: refused */
    assert_int_equal(az_assertion_sign(sg, "r\xff", GW, NULL, NULL, 0, NULL, NOW, 10, out, 2048),
                     -1);
    az_jwks_unref(ks);
    az_signer_free(sg);
}

static void test_key_file(void **s)
{
    (void)s;
    char path[512];
    struct stat st;
    struct gh_err err;
    snprintf(path, sizeof(path), "%s/assert.pem", g_dir);

    struct az_signer *a = az_signer_load_or_create(path, &err);
    assert_non_null(a);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char kid[64];
    strcpy(kid, az_signer_kid(a));
    az_signer_free(a);

    /* reloaded: the same key */
    struct az_signer *b = az_signer_load_or_create(path, &err);
    assert_non_null(b);
    assert_string_equal(az_signer_kid(b), kid);
    az_signer_free(b);

    /* group/other readable: refused */
    assert_int_equal(chmod(path, 0644), 0);
    assert_null(az_signer_load_or_create(path, &err));
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);

    /* a symlink is not followed */
    char link[512];
    snprintf(link, sizeof(link), "%s/link.pem", g_dir);
    assert_int_equal(symlink(path, link), 0);
    assert_null(az_signer_load_or_create(link, &err));

    /* garbage, an RSA key, a P-384 key: refused, file untouched */
    char junk[512];
    snprintf(junk, sizeof(junk), "%s/junk.pem", g_dir);
    FILE *f = fopen(junk, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    chmod(junk, 0600);
    assert_null(az_signer_load_or_create(junk, &err));
    struct tkey rk, ek;
    tk_rsa(&rk, 2048, "r", AZ_ALG_RS256, 0);
    tk_ec(&ek, NID_secp384r1, "e", 0);
    struct tkey *wrong[] = {&rk, &ek};
    for (int i = 0; i < 2; i++) {
        char wp[512];
        snprintf(wp, sizeof(wp), "%s/wrong%d.pem", g_dir, i);
        f = fopen(wp, "w");
        PEM_write_PrivateKey(f, wrong[i]->pkey, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        chmod(wp, 0600);
        assert_null(az_signer_load_or_create(wp, &err));
        assert_non_null(strstr(err.msg, "P-256"));
    }
    tk_free(&rk);
    tk_free(&ek);
    /* a directory that does not exist: cannot create */
    char nodir[512];
    snprintf(nodir, sizeof(nodir), "%s/missing/dir/key.pem", g_dir);
    assert_null(az_signer_load_or_create(nodir, &err));
    /* a directory instead of a file */
    assert_null(az_signer_load_or_create(g_dir, &err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwks_and_kid),
        cmocka_unit_test(test_sign_and_verify),
        cmocka_unit_test(test_without_token_and_limits),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
