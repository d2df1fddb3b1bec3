/*
 * test_authz_jwks.c: az_jwks_parse -- which keys are kept, which are
 * skipped (and counted), the one-alg-per-key pin, limits, duplicate kids,
 * snapshot semantics (a removed kid stops verifying) and atomic refcounts.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "authz_test_keys.h"

static struct tkey k_rsa, k_rsa2, k_p256, k_p384, k_p521, k_rsa1024;

static int group_setup(void **state)
{
    (void)state;
    tk_rsa(&k_rsa, 2048, "rsa-a", AZ_ALG_RS256, 0);
    tk_rsa(&k_rsa2, 2048, "rsa-b", AZ_ALG_RS512, 1);
    tk_ec(&k_p256, NID_X9_62_prime256v1, "p256", 0);
    tk_ec(&k_p384, NID_secp384r1, "p384", 1);
    tk_ec(&k_p521, NID_secp521r1, "p521", 0);
    tk_rsa(&k_rsa1024, 1024, "rsa-small", AZ_ALG_RS256, 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tk_free(&k_rsa);
    tk_free(&k_rsa2);
    tk_free(&k_p256);
    tk_free(&k_p384);
    tk_free(&k_p521);
    tk_free(&k_rsa1024);
    return 0;
}

static struct az_jwks *parse(const char *doc, struct gh_err *err)
{
    gh_err_clear(err);
    return az_jwks_parse(doc, strlen(doc), err);
}

/* A copy of k's JWK with extra members spliced in before the closing brace. */
static const char *jwk_plus(const struct tkey *k, const char *extra)
{
    static char buf[16][4400];
    static int slot;
    char *b = buf[slot++ % 16];
    size_t l = strlen(k->jwk);
    snprintf(b, 4400, "%.*s%s}", (int)(l - 1), k->jwk, extra);
    return b;
}

static const char *jwk_with_kid(const struct tkey *k, const char *kid)
{
    static char buf[4][4400];
    static int slot;
    char *b = buf[slot++ % 4];
    const char *p = strstr(k->jwk, "\"kid\":\"");
    const char *q = strchr(p + 7, '"');
    snprintf(b, 4400, "%.*s\"kid\":\"%s\"%s", (int)(p - k->jwk), k->jwk, kid, q + 1);
    return b;
}

static void test_alg_names(void **s)
{
    (void)s;
    assert_string_equal(az_alg_name(AZ_ALG_RS256), "RS256");
    assert_string_equal(az_alg_name(AZ_ALG_RS384), "RS384");
    assert_string_equal(az_alg_name(AZ_ALG_RS512), "RS512");
    assert_string_equal(az_alg_name(AZ_ALG_ES256), "ES256");
    assert_string_equal(az_alg_name(AZ_ALG_ES384), "ES384");
    assert_null(az_alg_name(AZ_ALG_NONE));
    assert_null(az_alg_name((enum az_alg)99));
    assert_int_equal(az_alg_from_name("ES384"), AZ_ALG_ES384);
    assert_int_equal(az_alg_from_name("es384"), AZ_ALG_NONE);
    assert_int_equal(az_alg_from_name("HS256"), AZ_ALG_NONE);
    assert_int_equal(az_alg_from_name("none"), AZ_ALG_NONE);
    assert_int_equal(az_alg_from_name(NULL), AZ_ALG_NONE);
}

/* Every usable kind plus every kind that must be skipped, in one set. */
static void test_mixed_set(void **s)
{
    (void)s;
    /* 4 usable keys and 15 that must be skipped. Skipped variants of real
     * keys get their own kids so the duplicate-kid rule does not interfere. */
    char doc[65536];
    const char *set[] = {
        k_rsa.jwk,
        jwk_plus(&k_rsa2, ",\"use\":\"sig\""),
        jwk_plus(&k_p256, ",\"key_ops\":[\"verify\"]"),
        k_p384.jwk,
        "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0\",\"alg\":\"HS256\"}",
        k_p521.jwk,
        k_rsa1024.jwk,
        NULL, /* priv, below */
        "\"not an object\"",
        "{\"kid\":\"nokty\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
        "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_"
        "7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
        "{\"kty\":\"RSA\",\"kid\":\"no-n\",\"e\":\"AQAB\"}",
    };
    static char priv[4400], enc[4400], ps[4400], ecrs[4400], rses[4400], ops[4400], nokid[4400],
        p256as384[4400];
    /* private member d on an EC key, other kid */
    snprintf(priv, sizeof(priv), "%s", jwk_plus(&k_p256, ",\"d\":\"AAAA\""));
    memcpy(strstr(priv, "\"p256\""), "\"priv\"", 6);
    /* use enc */
    snprintf(enc, sizeof(enc), "%s", jwk_plus(&k_p256, ",\"use\":\"enc\""));
    memcpy(strstr(enc, "\"p256\""), "\"encr\"", 6);
    /* alg PS256 on an RSA key: unsupported alg */
    snprintf(ps, sizeof(ps), "%s", jwk_plus(&k_rsa, ",\"alg\":\"PS256\""));
    memcpy(strstr(ps, "\"rsa-a\""), "\"ps256\"", 7);
    /* EC key claiming RS256 */
    snprintf(ecrs, sizeof(ecrs), "%s", jwk_plus(&k_p256, ",\"alg\":\"RS256\""));
    memcpy(strstr(ecrs, "\"p256\""), "\"ecrs\"", 6);
    /* RSA key claiming ES256 */
    snprintf(rses, sizeof(rses), "%s", jwk_plus(&k_rsa, ",\"alg\":\"ES256\""));
    memcpy(strstr(rses, "\"rsa-a\""), "\"rsaes\"", 7);
    /* key_ops without verify */
    snprintf(ops, sizeof(ops), "%s", jwk_plus(&k_p256, ",\"key_ops\":[\"encrypt\"]"));
    memcpy(strstr(ops, "\"p256\""), "\"opsx\"", 6);
    /* no kid */
    snprintf(nokid, sizeof(nokid), "%s", k_p256.jwk);
    memcpy(strstr(nokid, "\"kid\""), "\"kix\"", 5);
    /* P-256 key labelled ES384 */
    snprintf(p256as384, sizeof(p256as384), "%s", jwk_plus(&k_p256, ",\"alg\":\"ES384\""));
    memcpy(strstr(p256as384, "\"p256\""), "\"p2x4\"", 6);
    set[7] = priv;
    const char *more[] = {enc, ps, ecrs, rses, ops, nokid, p256as384};
    const char *all[19];
    memcpy(all, set, sizeof(set));
    memcpy(all + 12, more, sizeof(more));
    tk_jwks(doc, sizeof(doc), all, 19);

    struct gh_err err;
    struct az_jwks *k = parse(doc, &err);
    assert_non_null(k);
    assert_int_equal(az_jwks_count(k), 4);
    assert_int_equal(az_jwks_skipped(k), 15);
    assert_true(az_jwks_has_kid(k, "rsa-a"));
    assert_true(az_jwks_has_kid(k, "rsa-b"));
    assert_true(az_jwks_has_kid(k, "p256"));
    assert_true(az_jwks_has_kid(k, "p384"));
    const char *gone[] = {"hmac",  "p521", "rsa-small", "priv", "encr",  "ps256", "ecrs",
                          "rsaes", "opsx", "p2x4",      "ed",   "nokty", "no-n",  ""};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        assert_false(az_jwks_has_kid(k, gone[i]));
    }
    assert_false(az_jwks_has_kid(k, NULL));
    /* each key's one algorithm, and its PEM for libjwt */
    assert_int_equal(az_jwks_find(k, "rsa-a")->alg, AZ_ALG_RS256);
    assert_int_equal(az_jwks_find(k, "rsa-b")->alg, AZ_ALG_RS512);
    assert_int_equal(az_jwks_find(k, "p256")->alg, AZ_ALG_ES256);
    assert_int_equal(az_jwks_find(k, "p384")->alg, AZ_ALG_ES384);
    const struct az_jwk *j = az_jwks_find(k, "p384");
    assert_true(strncmp(j->pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    assert_int_equal(strlen(j->pem), j->pem_len);
    assert_int_equal(EVP_PKEY_id(j->pkey), EVP_PKEY_EC);
    char pem[4096];
    tk_pubkey_pem(k_p384.pkey, pem, sizeof(pem));
    assert_string_equal(pem, j->pem); /* the published key, not another */
    az_jwks_unref(k);
}

static void test_ec_point_checks(void **s)
{
    (void)s;
    struct gh_err err;
    char doc[8192], jwk[4400];
    /* y flipped: (x, y') is not on the curve (invalid-curve attack) */
    snprintf(jwk, sizeof(jwk), "%s", k_p256.jwk);
    char *y = strstr(jwk, "\"y\":\"") + 5;
    y[3] = y[3] == 'A' ? 'B' : 'A';
    const char *one[] = {jwk};
    tk_jwks(doc, sizeof(doc), one, 1);
    assert_null(parse(doc, &err));
    assert_int_equal(err.reason, GH_R_TOKEN_NO_KEYS);
    assert_non_null(strstr(err.msg, "1 skipped"));
    /* x one byte short (leading zero stripped): RFC 7518 wants full length */
    const char *short_x = "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"s\",\"crv\":\"P-256\","
                          "\"x\":\"AAAA\",\"y\":\"AAAA\"}]}";
    assert_null(parse(short_x, &err));
    /* non-canonical base64url in n */
    snprintf(jwk, sizeof(jwk), "%s", k_rsa.jwk);
    char *n = strstr(jwk, "\"n\":\"") + 5;
    char *nend = strchr(n, '"');
    nend[-1] = '+';
    one[0] = jwk;
    tk_jwks(doc, sizeof(doc), one, 1);
    assert_null(parse(doc, &err));
    /* RSA exponent 1, even, or wider than 33 bits (2^40 + 1) */
    const char *bad_e[] = {"AQ", "Ag", "AQAAAAAB"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(jwk, sizeof(jwk), "%s", k_rsa.jwk);
        char *e = strstr(jwk, "\"e\":\"AQAB\"");
        assert_non_null(e);
        char fixed[4400];
        snprintf(fixed, sizeof(fixed), "%.*s\"e\":\"%s\"%s", (int)(e - jwk), jwk, bad_e[i], e + 10);
        one[0] = fixed;
        tk_jwks(doc, sizeof(doc), one, 1);
        assert_null(parse(doc, &err));
    }
}

static void test_document_rules(void **s)
{
    (void)s;
    struct gh_err err;
    assert_null(parse("", &err));
    assert_int_equal(err.reason, GH_R_TOKEN_NO_KEYS);
    assert_null(az_jwks_parse(NULL, 10, &err));
    assert_null(parse("not json", &err));
    assert_null(parse("[]", &err));
    assert_null(parse("{}", &err));
    assert_null(parse("{\"keys\":{}}", &err));
    assert_null(parse("{\"keys\":[]}", &err));
    assert_non_null(strstr(err.msg, "no usable key"));
    assert_null(parse("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"AAAA\"}]}", &err));
    /* duplicate member names anywhere */
    char doc[16384];
    snprintf(doc, sizeof(doc), "{\"keys\":[%s],\"keys\":[]}", k_p256.jwk);
    assert_null(parse(doc, &err));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", jwk_plus(&k_p256, ",\"crv\":\"P-384\""));
    assert_null(parse(doc, &err));
    assert_non_null(strstr(err.msg, "duplicate"));
    /* err may be NULL */
    assert_null(az_jwks_parse("{}", 2, NULL));
    /* unknown members are fine */
    snprintf(doc, sizeof(doc), "{\"keys\":[%s],\"x\":{\"y\":[1,2]}}",
             jwk_plus(&k_p256, ",\"x5t\":\"abc\",\"ext\":true"));
    struct az_jwks *k = parse(doc, &err);
    assert_non_null(k);
    az_jwks_unref(k);
}

static void test_size_and_depth_limits(void **s)
{
    (void)s;
    struct gh_err err;
    /* 256 KiB accepted (whitespace padding), one byte more refused */
    size_t cap = 256 * 1024;
    char *doc = malloc(cap + 2);
    int l = snprintf(doc, cap, "{\"keys\":[%s]}", k_p256.jwk);
    memset(doc + l, ' ', cap - (size_t)l);
    struct az_jwks *k = az_jwks_parse(doc, cap, &err);
    assert_non_null(k);
    az_jwks_unref(k);
    doc[cap] = ' ';
    assert_null(az_jwks_parse(doc, cap + 1, &err));
    assert_non_null(strstr(err.msg, "larger"));
    free(doc);

    /* depth 16 accepted, 17 refused; root + "x" chain */
    char buf[8192];
    for (int depth = 16; depth <= 17; depth++) {
        size_t o = (size_t)snprintf(buf, sizeof(buf), "{\"keys\":[%s],\"x\":", k_p256.jwk);
        for (int i = 1; i < depth; i++) {
            buf[o++] = '[';
        }
        buf[o++] = '1';
        for (int i = 1; i < depth; i++) {
            buf[o++] = ']';
        }
        buf[o++] = '}';
        buf[o] = '\0';
        k = parse(buf, &err);
        if (depth == 16) {
            assert_non_null(k);
            az_jwks_unref(k);
        } else {
            assert_null(k);
            assert_non_null(strstr(err.msg, "deep"));
        }
    }
    /* 100000 brackets: refused before the parser recurses */
    char *deep = malloc(200001);
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    deep[200000] = '\0';
    assert_null(az_jwks_parse(deep, 200000, &err));
    free(deep);
}

static void test_key_count_limit(void **s)
{
    (void)s;
    /* 70 usable keys: the first 64 are kept, 6 counted as skipped */
    struct tkey ks[70];
    const char *jw[70];
    for (int i = 0; i < 70; i++) {
        char kid[16];
        snprintf(kid, sizeof(kid), "k%d", i);
        tk_ec(&ks[i], NID_X9_62_prime256v1, kid, 1);
        jw[i] = ks[i].jwk;
    }
    char *doc = malloc(70 * 400 + 64);
    tk_jwks(doc, 70 * 400 + 64, jw, 70);
    struct az_jwks *k = az_jwks_parse(doc, strlen(doc), NULL);
    assert_non_null(k);
    assert_int_equal(az_jwks_count(k), 64);
    assert_int_equal(az_jwks_skipped(k), 6);
    assert_true(az_jwks_has_kid(k, "k63"));
    assert_false(az_jwks_has_kid(k, "k64"));
    az_jwks_unref(k);
    free(doc);
    for (int i = 0; i < 70; i++) {
        tk_free(&ks[i]);
    }
}

/* Duplicate kids among usable keys: the whole document is refused (the
 * gateway keeps its previous snapshot). A duplicate of a skipped key (e.g.
 * the same kid published for "enc") does not count. */
static void test_duplicate_kids(void **s)
{
    (void)s;
    struct gh_err err;
    char doc[16384];
    const char *dup[] = {k_p256.jwk, jwk_with_kid(&k_p384, "p256")};
    tk_jwks(doc, sizeof(doc), dup, 2);
    assert_null(parse(doc, &err));
    assert_int_equal(err.reason, GH_R_TOKEN_NO_KEYS);
    assert_non_null(strstr(err.msg, "duplicate kid"));
    const char *same[] = {k_p256.jwk, k_p256.jwk};
    tk_jwks(doc, sizeof(doc), same, 2);
    assert_null(parse(doc, &err));
    char enc[4400];
    snprintf(enc, sizeof(enc), "%s", jwk_plus(&k_rsa, ",\"use\":\"enc\""));
    const char *ok[] = {jwk_with_kid(&k_rsa2, "rsa-a"), enc};
    tk_jwks(doc, sizeof(doc), ok, 2);
    struct az_jwks *k = parse(doc, &err);
    assert_non_null(k);
    assert_int_equal(az_jwks_count(k), 1);
    assert_int_equal(az_jwks_skipped(k), 1);
    az_jwks_unref(k);
}

/* Snapshot semantics: a token verifies under snapshot 1; snapshot 2 drops
 * its kid (key rotation/removal) and the same token is refused. */
static void test_removed_kid(void **s)
{
    (void)s;
    struct az_issuer iss;
    memset(&iss, 0, sizeof(iss));
    strcpy(iss.issuer, "https://idp");
    strcpy(iss.audiences[0], "gh");
    iss.n_aud = 1;
    uint8_t c[32] = {1};
    char thumb[48], claims[512], tok[4096];
    tk_b64u(c, 32, thumb);
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"https://idp\",\"aud\":\"gh\",\"sub\":\"u\",\"exp\":2000000000,"
             "\"cnf\":{\"x5t#S256\":\"%s\"}}",
             thumb);
    size_t tl =
        tk_token(tok, sizeof(tok), "{\"alg\":\"ES384\",\"typ\":\"at+jwt\",\"kid\":\"p384\"}",
                 claims, &k_p384);
    char doc[16384];
    const char *v1[] = {k_p256.jwk, k_p384.jwk};
    const char *v2[] = {k_p256.jwk};
    tk_jwks(doc, sizeof(doc), v1, 2);
    struct az_jwks *s1 = az_jwks_parse(doc, strlen(doc), NULL);
    tk_jwks(doc, sizeof(doc), v2, 1);
    struct az_jwks *s2 = az_jwks_parse(doc, strlen(doc), NULL);
    assert_non_null(s1);
    assert_non_null(s2);
    struct az_token *t = NULL;
    assert_int_equal(az_token_verify(&iss, s1, tok, tl, &t, NULL), GH_R_ALLOW);
    az_token_unref(t);
    assert_int_equal(az_token_verify(&iss, s2, tok, tl, &t, NULL), GH_R_TOKEN_UNKNOWN_KID);
    assert_null(t);
    /* a worker still holding s1 keeps verifying with it until it lets go */
    struct az_jwks *held = az_jwks_ref(s1);
    az_jwks_unref(s1);
    assert_int_equal(az_token_verify(&iss, held, tok, tl, &t, NULL), GH_R_ALLOW);
    az_token_unref(t);
    az_jwks_unref(held);
    az_jwks_unref(s2);
}

static struct az_jwks *g_shared;

static void *ref_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        struct az_jwks *k = az_jwks_ref(g_shared);
        if (!az_jwks_has_kid(k, "p256")) {
            abort();
        }
        az_jwks_unref(k);
    }
    return NULL;
}

static void test_refcount_threads(void **s)
{
    (void)s;
    char doc[8192];
    const char *one[] = {k_p256.jwk};
    tk_jwks(doc, sizeof(doc), one, 1);
    g_shared = az_jwks_parse(doc, strlen(doc), NULL);
    assert_non_null(g_shared);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, ref_worker, NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(__atomic_load_n((int *)g_shared, __ATOMIC_SEQ_CST), 1); /* refs is first */
    az_jwks_unref(g_shared);
    az_jwks_unref(NULL);
    assert_null(az_jwks_ref(NULL));
    assert_int_equal(az_jwks_count(NULL), 0);
    assert_int_equal(az_jwks_skipped(NULL), 0);
}

static void test_depth_scanner(void **s)
{
    (void)s;
    assert_true(az_json_depth_ok("{}", 2, 1));
    assert_false(az_json_depth_ok("{\"a\":{}}", 8, 1));
    assert_true(az_json_depth_ok("{\"a\":\"{{{{\"}", 12, 1));
    assert_true(az_json_depth_ok("{\"a\":\"\\\"{{{{\"}", 14, 1));         /* escaped quote */
    assert_false(az_json_depth_ok("{\"a\":\"\\\\\",\"b\":[[]]}", 20, 2)); /* escaped backslash */
    assert_true(az_json_depth_ok("", 0, 0));
    /* closing first must not buy extra depth for later openings */
    assert_false(az_json_depth_ok("]]]{{{", 6, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_mixed_set),
        cmocka_unit_test(test_ec_point_checks),
        cmocka_unit_test(test_document_rules),
        cmocka_unit_test(test_size_and_depth_limits),
        cmocka_unit_test(test_key_count_limit),
        cmocka_unit_test(test_duplicate_kids),
        cmocka_unit_test(test_removed_kid),
        cmocka_unit_test(test_refcount_threads),
        cmocka_unit_test(test_depth_scanner),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
