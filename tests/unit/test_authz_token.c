/*
 * test_authz_token.c: az_token_verify / check_time / check_binding against
 * keys generated here and tokens signed here (clocks and keys injected).
 * Every hostile token of the brief is one test asserting the exact reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jwt.h>

#include "authz_test_keys.h"

#define NOW INT64_C(1700000000)
#define ISS "https://idp.example"

static struct tkey k_rs256, k_rs384, k_rs512, k_es256, k_es384, k_other_ec;
static struct az_jwks *g_keys;
static struct az_issuer g_iss;
static uint8_t cert_a[32]; /* SHA-256 of "certificate A" DER (any bytes will do) */
static char thumb_a[48];   /* base64url(cert_a) */
static char tok[16384];
static size_t tok_len;

static int group_setup(void **state)
{
    (void)state;
    tk_rsa(&k_rs256, 2048, "rs256", AZ_ALG_RS256, 0); /* no "alg": RS256 by default */
    tk_rsa(&k_rs384, 2048, "rs384", AZ_ALG_RS384, 1);
    tk_rsa(&k_rs512, 3072, "rs512", AZ_ALG_RS512, 1);
    tk_ec(&k_es256, NID_X9_62_prime256v1, "es256", 1);
    tk_ec(&k_es384, NID_secp384r1, "es384", 0);           /* no "alg": the curve decides */
    tk_ec(&k_other_ec, NID_X9_62_prime256v1, "es256", 1); /* same kid, other key */
    const char *jw[] = {k_rs256.jwk, k_rs384.jwk, k_rs512.jwk, k_es256.jwk, k_es384.jwk};
    char doc[32768];
    tk_jwks(doc, sizeof(doc), jw, 5);
    struct gh_err err;
    g_keys = az_jwks_parse(doc, strlen(doc), &err);
    if (g_keys == NULL || az_jwks_count(g_keys) != 5) {
        return -1;
    }
    memset(&g_iss, 0, sizeof(g_iss));
    strcpy(g_iss.issuer, ISS);
    strcpy(g_iss.audiences[0], "gatehouse");
    strcpy(g_iss.audiences[1], "other-api");
    g_iss.n_aud = 2;
    g_iss.skew_s = 60;
    SHA256((const uint8_t *)"certificate A", 13, cert_a);
    tk_b64u(cert_a, 32, thumb_a);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    az_jwks_unref(g_keys);
    tk_free(&k_rs256);
    tk_free(&k_rs384);
    tk_free(&k_rs512);
    tk_free(&k_es256);
    tk_free(&k_es384);
    tk_free(&k_other_ec);
    return 0;
}

static int reset(void **state)
{
    (void)state;
    g_iss.allow_jwt_typ = 0;
    g_iss.skew_s = 60;
    return 0;
}

/* Header for key k with typ at+jwt. */
static const char *hdr_for(const struct tkey *k)
{
    static char h[256];
    snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
             az_alg_name(k->alg), k->kid);
    return h;
}

/* The standard claim set; extra (may be "") is appended inside the object. */
static const char *claims_with(const char *extra)
{
    static char p[12000];
    snprintf(p, sizeof(p),
             "{\"iss\":\"" ISS "\",\"aud\":\"gatehouse\",\"sub\":\"alice\",\"exp\":%lld,"
             "\"iat\":%lld,\"nbf\":%lld,\"jti\":\"jti-1\",\"sid\":\"sid-1\","
             "\"email\":\"alice@example.com\",\"client_id\":\"cli\",\"scope\":\"openid read\","
             "\"groups\":[\"admins\",\"dev\"],\"cnf\":{\"x5t#S256\":\"%s\"}%s}",
             (long long)(NOW + 300), (long long)(NOW - 10), (long long)(NOW - 10), thumb_a, extra);
    return p;
}

/* Claims built from parts: any part NULL is left out. */
static const char *claims_parts(const char *iss, const char *aud, const char *sub, const char *exp,
                                const char *cnf, const char *extra)
{
    static char p[12000];
    size_t o = (size_t)snprintf(p, sizeof(p), "{\"ver\":1");
    if (iss) {
        o += (size_t)snprintf(p + o, sizeof(p) - o, ",\"iss\":%s", iss);
    }
    if (aud) {
        o += (size_t)snprintf(p + o, sizeof(p) - o, ",\"aud\":%s", aud);
    }
    if (sub) {
        o += (size_t)snprintf(p + o, sizeof(p) - o, ",\"sub\":%s", sub);
    }
    if (exp) {
        o += (size_t)snprintf(p + o, sizeof(p) - o, ",\"exp\":%s", exp);
    }
    if (cnf) {
        o += (size_t)snprintf(p + o, sizeof(p) - o, ",\"cnf\":%s", cnf);
    }
    snprintf(p + o, sizeof(p) - o, "%s}", extra ? extra : "");
    return p;
}

#define STD_ISS "\"" ISS "\""
#define STD_AUD "\"gatehouse\""
#define STD_SUB "\"alice\""
#define STD_EXP "1700000300"

static const char *std_cnf(void)
{
    static char c[96];
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%s\"}", thumb_a);
    return c;
}

static void sign_std(const struct tkey *k, const char *payload)
{
    tok_len = tk_token(tok, sizeof(tok), hdr_for(k), payload, k);
}

/* Verify tok and require reason r; on failure *out must stay NULL and the
 * error message must not contain any piece of the token. */
static struct az_token *expect(const char *t, size_t len, enum gh_reason r)
{
    struct az_token *out = (struct az_token *)1;
    struct gh_err err;
    gh_err_clear(&err);
    enum gh_reason got = az_token_verify(&g_iss, g_keys, t, len, &out, &err);
    if (got != r) {
        print_error("want %s got %s (%s)\n", gh_reason_name(r), gh_reason_name(got), err.msg);
    }
    assert_int_equal(got, r);
    if (r != GH_R_ALLOW) {
        assert_null(out);
        assert_int_equal(err.reason, r);
        assert_true(err.msg[0] != '\0');
        /* never echo the token: no 12-char window of it appears in msg */
        for (size_t i = 0; len >= 12 && i + 12 <= len; i += 6) {
            char win[13];
            memcpy(win, t + i, 12);
            win[12] = '\0';
            assert_null(strstr(err.msg, win));
        }
        return NULL;
    }
    assert_non_null(out);
    return out;
}

static struct az_token *expect_tok(enum gh_reason r)
{
    return expect(tok, tok_len, r);
}

/* ---- positives ------------------------------------------------------- */

static void check_std_claims(const struct az_token *t)
{
    assert_string_equal(t->iss, ISS);
    assert_string_equal(t->sub, "alice");
    assert_string_equal(t->jti, "jti-1");
    assert_string_equal(t->sid, "sid-1");
    assert_string_equal(t->email, "alice@example.com");
    assert_string_equal(t->client_id, "cli");
    assert_string_equal(t->scope, "openid read");
    assert_string_equal(t->cnf_x5t_s256, thumb_a);
    assert_int_equal(t->exp, NOW + 300);
    assert_int_equal(t->iat, NOW - 10);
    assert_int_equal(t->nbf, NOW - 10);
    assert_int_equal(t->n_groups, 2);
    assert_string_equal(t->groups[0], "admins");
    assert_string_equal(t->groups[1], "dev");
    assert_true(json_is_object(t->claims));
}

static void positive_for(const struct tkey *k)
{
    sign_std(k, claims_with(""));
    struct az_token *t = expect_tok(GH_R_ALLOW);
    check_std_claims(t);
    assert_int_equal(t->alg, k->alg);
    assert_string_equal(t->kid, k->kid);
    uint8_t h[32];
    SHA256((const uint8_t *)tok, tok_len, h);
    assert_memory_equal(t->token_sha256, h, 32);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW), GH_R_ALLOW);
    assert_int_equal(az_token_check_binding(t, cert_a), GH_R_ALLOW);
    az_token_unref(t);
}

static void test_ok_rs256(void **s)
{
    (void)s;
    positive_for(&k_rs256);
}
static void test_ok_rs384(void **s)
{
    (void)s;
    positive_for(&k_rs384);
}
static void test_ok_rs512(void **s)
{
    (void)s;
    positive_for(&k_rs512);
}
static void test_ok_es256(void **s)
{
    (void)s;
    positive_for(&k_es256);
}
static void test_ok_es384(void **s)
{
    (void)s;
    positive_for(&k_es384);
}

/* typ "JWT" is refused by default and accepted when the issuer allows it;
 * on that path libjwt cross-checks too, so this also proves libjwt agrees
 * with BoringSSL for every alg. */
static void test_typ_jwt_each_alg(void **s)
{
    (void)s;
    const struct tkey *ks[] = {&k_rs256, &k_rs384, &k_rs512, &k_es256, &k_es384};
    for (size_t i = 0; i < 5; i++) {
        char h[256];
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
                 az_alg_name(ks[i]->alg), ks[i]->kid);
        tok_len = tk_token(tok, sizeof(tok), h, claims_with(""), ks[i]);
        g_iss.allow_jwt_typ = 0;
        expect_tok(GH_R_TOKEN_BAD_TYP);
        g_iss.allow_jwt_typ = 1;
        az_token_unref(expect_tok(GH_R_ALLOW));
    }
}

static void test_typ_variants(void **s)
{
    (void)s;
    const char *ok[] = {"at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"};
    const char *bad[] = {"jwt+at", "application/jwt", "JOSE", "", "at+jwt ", "id_token"};
    char h[256];
    for (size_t i = 0; i < 4; i++) {
        snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"typ\":\"%s\",\"kid\":\"es256\"}", ok[i]);
        tok_len = tk_token(tok, sizeof(tok), h, claims_with(""), &k_es256);
        az_token_unref(expect_tok(GH_R_ALLOW));
    }
    g_iss.allow_jwt_typ = 1; /* even then, only "JWT" is added */
    for (size_t i = 0; i < 6; i++) {
        snprintf(h, sizeof(h), "{\"alg\":\"ES256\",\"typ\":\"%s\",\"kid\":\"es256\"}", bad[i]);
        tok_len = tk_token(tok, sizeof(tok), h, claims_with(""), &k_es256);
        expect_tok(GH_R_TOKEN_BAD_TYP);
    }
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"kid\":\"es256\"}", claims_with(""),
                       &k_es256);
    expect_tok(GH_R_TOKEN_BAD_TYP); /* typ missing */
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":7,\"kid\":\"es256\"}",
                       claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_BAD_TYP);
}

/* ---- algorithm attacks ----------------------------------------------- */

static void test_alg_none(void **s)
{
    (void)s;
    char p[8192];
    size_t o;
    /* The classic unsigned token: empty third segment. */
    o = tk_signing_input("{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"rs256\"}", claims_with(""),
                         tok, sizeof(tok));
    tok[o++] = '.';
    tok_len = o;
    expect_tok(GH_R_TOKEN_BAD_ALG);
    /* With some signature bytes, and in other spellings. */
    const char *names[] = {"none", "None", "NONE", "nOnE"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"rs256\"}", names[i]);
        tok_len = tk_token_alg(tok, sizeof(tok), p, claims_with(""), &k_rs256, AZ_ALG_RS256);
        expect_tok(GH_R_TOKEN_BAD_ALG);
    }
    /* alg missing or not a string */
    tok_len = tk_token(tok, sizeof(tok), "{\"typ\":\"at+jwt\",\"kid\":\"rs256\"}", claims_with(""),
                       &k_rs256);
    expect_tok(GH_R_TOKEN_BAD_ALG);
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":null,\"typ\":\"at+jwt\",\"kid\":\"rs256\"}",
                       claims_with(""), &k_rs256);
    expect_tok(GH_R_TOKEN_BAD_ALG);
}

/* The libjwt 1.10 trap (DESIGN.md section 8): an HS256 token whose HMAC key
 * is the issuer's public key PEM text. First show libjwt alone accepts the
 * forgery; then that az_token_verify refuses it with BAD_ALG, on both typ
 * paths (at+jwt, and JWT where libjwt is consulted). */
static void test_hs256_keyed_with_public_pem(void **s)
{
    (void)s;
    char pem[4096];
    const struct az_jwk *k = az_jwks_find(g_keys, "rs256");
    assert_non_null(k);
    size_t pl = tk_pubkey_pem(k_rs256.pkey, pem, sizeof(pem));
    assert_int_equal(pl, k->pem_len);
    assert_string_equal(pem, k->pem); /* exactly the text we hand libjwt */

    const char *hdr_jwt = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rs256\"}";
    tok_len = tk_token_hs256(tok, sizeof(tok), hdr_jwt, claims_with(""), pem, pl);
    jwt_t *j = NULL;
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)k->pem, (int)k->pem_len), 0);
    assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256); /* libjwt: "valid" */
    jwt_free(j);

    g_iss.allow_jwt_typ = 1;
    expect_tok(GH_R_TOKEN_BAD_ALG);
    g_iss.allow_jwt_typ = 0;
    tok_len =
        tk_token_hs256(tok, sizeof(tok), "{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"rs256\"}",
                       claims_with(""), pem, pl);
    expect_tok(GH_R_TOKEN_BAD_ALG);
    /* HS384/HS512 and an EC key's PEM: same answer. */
    const struct az_jwk *ke = az_jwks_find(g_keys, "es256");
    tok_len =
        tk_token_hs256(tok, sizeof(tok), "{\"alg\":\"HS384\",\"typ\":\"at+jwt\",\"kid\":\"es256\"}",
                       claims_with(""), ke->pem, ke->pem_len);
    expect_tok(GH_R_TOKEN_BAD_ALG);
}

/* Why libjwt only cross-checks typ "JWT" tokens: libjwt 1.10 refuses a
 * correctly signed RFC 9068 "at+jwt" token outright. If a libjwt upgrade
 * changes this, this test fails and the cross-check can be widened. */
static void test_libjwt_refuses_at_jwt_typ(void **s)
{
    (void)s;
    const struct az_jwk *k = az_jwks_find(g_keys, "rs256");
    sign_std(&k_rs256, claims_with(""));
    az_token_unref(expect_tok(GH_R_ALLOW)); /* valid */
    jwt_t *j = NULL;
    assert_int_not_equal(jwt_decode(&j, tok, (const unsigned char *)k->pem, (int)k->pem_len), 0);
    assert_null(j);
    /* the same claims typed "JWT": libjwt accepts */
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rs256\"}",
                       claims_with(""), &k_rs256);
    assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)k->pem, (int)k->pem_len), 0);
    jwt_free(j);
}

static void test_alg_key_mismatch(void **s)
{
    (void)s;
    /* RS256 header naming an EC key. */
    tok_len =
        tk_token_alg(tok, sizeof(tok), "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"es256\"}",
                     claims_with(""), &k_rs256, AZ_ALG_RS256);
    expect_tok(GH_R_TOKEN_BAD_ALG);
    /* ES256 header naming the P-384 key; ES384 naming the P-256 key. */
    tok_len =
        tk_token_alg(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"es384\"}",
                     claims_with(""), &k_es256, AZ_ALG_ES256);
    expect_tok(GH_R_TOKEN_BAD_ALG);
    tok_len =
        tk_token_alg(tok, sizeof(tok), "{\"alg\":\"ES384\",\"typ\":\"at+jwt\",\"kid\":\"es256\"}",
                     claims_with(""), &k_es384, AZ_ALG_ES384);
    expect_tok(GH_R_TOKEN_BAD_ALG);
    /* RS384 signed with the RS256 key's private key: the key says RS256. */
    tok_len =
        tk_token_alg(tok, sizeof(tok), "{\"alg\":\"RS384\",\"typ\":\"at+jwt\",\"kid\":\"rs256\"}",
                     claims_with(""), &k_rs256, AZ_ALG_RS384);
    expect_tok(GH_R_TOKEN_BAD_ALG);
    /* Unsupported but real algorithms. */
    const char *algs[] = {"PS256", "ES512", "EdDSA", "RSA-OAEP", "rs256"};
    for (size_t i = 0; i < 5; i++) {
        char h[128];
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"rs256\"}", algs[i]);
        tok_len = tk_token_alg(tok, sizeof(tok), h, claims_with(""), &k_rs256, AZ_ALG_RS256);
        expect_tok(GH_R_TOKEN_BAD_ALG);
    }
}

/* ---- time ------------------------------------------------------------ */

static struct az_token *verified_with(const char *extra_claims, const char *exp)
{
    tok_len =
        tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                 claims_parts(STD_ISS, STD_AUD, STD_SUB, exp, std_cnf(), extra_claims), &k_es256);
    return expect_tok(GH_R_ALLOW);
}

static void test_expired(void **s)
{
    (void)s;
    struct az_token *t = verified_with("", "1700000000");
    g_iss.skew_s = 0;
    assert_int_equal(az_token_check_time(t, &g_iss, NOW - 1), GH_R_ALLOW);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW), GH_R_TOKEN_EXPIRED); /* RFC 7519 4.1.4 */
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 3600), GH_R_TOKEN_EXPIRED);
    g_iss.skew_s = 60;
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 59), GH_R_ALLOW);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 60), GH_R_TOKEN_EXPIRED);
    g_iss.skew_s = 100000; /* clamped to 300 */
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 299), GH_R_ALLOW);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 300), GH_R_TOKEN_EXPIRED);
    g_iss.skew_s = -5; /* treated as 0 */
    assert_int_equal(az_token_check_time(t, &g_iss, NOW), GH_R_TOKEN_EXPIRED);
    az_token_unref(t);
}

static void test_nbf_in_future(void **s)
{
    (void)s;
    struct az_token *t = verified_with(",\"nbf\":1700000100", "1700009999");
    assert_int_equal(az_token_check_time(t, &g_iss, NOW), GH_R_TOKEN_NOT_YET_VALID);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 39), GH_R_TOKEN_NOT_YET_VALID);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 40), GH_R_ALLOW); /* nbf - skew */
    az_token_unref(t);
}

static void test_iat_in_future(void **s)
{
    (void)s;
    struct az_token *t = verified_with(",\"iat\":1700000500", "1700009999");
    assert_int_equal(az_token_check_time(t, &g_iss, NOW), GH_R_TOKEN_IAT_FUTURE);
    assert_int_equal(az_token_check_time(t, &g_iss, NOW + 440), GH_R_ALLOW);
    az_token_unref(t);
}

static void test_numeric_dates(void **s)
{
    (void)s;
    /* a real NumericDate is accepted (truncated) */
    struct az_token *t = verified_with("", "1700000300.75");
    assert_int_equal(t->exp, NOW + 300);
    az_token_unref(t);
    const char *bad_exp[] = {"\"1700000300\"", "null", "true",        "-1", "0",
                             "1e300",          "[1]",  "253402300800"};
    for (size_t i = 0; i < sizeof(bad_exp) / sizeof(bad_exp[0]); i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                     claims_parts(STD_ISS, STD_AUD, STD_SUB, bad_exp[i], std_cnf(), ""), &k_es256);
        expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    }
    /* exp missing */
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, NULL, std_cnf(), ""), &k_es256);
    expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    /* nbf / iat of the wrong type */
    tok_len = tk_token(
        tok, sizeof(tok), hdr_for(&k_es256),
        claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), ",\"nbf\":\"x\""), &k_es256);
    expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), ",\"iat\":-3"),
                       &k_es256);
    expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    /* check_time on a token without exp (not produced by verify) */
    struct az_token fake;
    memset(&fake, 0, sizeof(fake));
    assert_int_equal(az_token_check_time(&fake, &g_iss, NOW), GH_R_TOKEN_BAD_CLAIMS);
    assert_int_equal(az_token_check_time(NULL, &g_iss, NOW), GH_R_TOKEN_BAD_CLAIMS);
}

/* ---- issuer and audience --------------------------------------------- */

static void test_wrong_iss(void **s)
{
    (void)s;
    const char *bad[] = {"\"https://evil.example\"",
                         "\"https://idp.example/\"",
                         "\"https://IDP.example\"",
                         "\"https://idp.exampl\"",
                         "\"\"",
                         "17",
                         "[\"https://idp.example\"]",
                         "null"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_rs256),
                     claims_parts(bad[i], STD_AUD, STD_SUB, STD_EXP, std_cnf(), ""), &k_rs256);
        expect_tok(GH_R_TOKEN_BAD_ISSUER);
    }
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_rs256),
                       claims_parts(NULL, STD_AUD, STD_SUB, STD_EXP, std_cnf(), ""), &k_rs256);
    expect_tok(GH_R_TOKEN_BAD_ISSUER);
    /* a misconfigured issuer (empty, or not NUL-terminated) matches nothing */
    struct az_issuer saved = g_iss;
    g_iss.issuer[0] = '\0';
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_rs256),
                       claims_parts("\"\"", STD_AUD, STD_SUB, STD_EXP, std_cnf(), ""), &k_rs256);
    expect_tok(GH_R_TOKEN_BAD_ISSUER);
    memset(g_iss.issuer, 'x', sizeof(g_iss.issuer));
    memset(g_iss.audiences[0], 'y', sizeof(g_iss.audiences[0]));
    sign_std(&k_rs256, claims_with(""));
    expect_tok(GH_R_TOKEN_BAD_ISSUER);
    g_iss = saved;
}

static void test_wrong_aud(void **s)
{
    (void)s;
    const char *bad[] = {"\"gatehouse2\"", "\"\"", "[]", "[\"x\",\"y\"]", "\"GATEHOUSE\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es384),
                     claims_parts(STD_ISS, bad[i], STD_SUB, STD_EXP, std_cnf(), ""), &k_es384);
        expect_tok(GH_R_TOKEN_BAD_AUDIENCE);
    }
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es384),
                       claims_parts(STD_ISS, NULL, STD_SUB, STD_EXP, std_cnf(), ""), &k_es384);
    expect_tok(GH_R_TOKEN_BAD_AUDIENCE);
    /* wrong shapes */
    const char *shape[] = {"42", "{\"a\":1}", "[\"gatehouse\",3]"};
    for (size_t i = 0; i < 3; i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es384),
                     claims_parts(STD_ISS, shape[i], STD_SUB, STD_EXP, std_cnf(), ""), &k_es384);
        expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    }
    /* arrays containing one of ours; the second configured audience */
    const char *good[] = {"[\"x\",\"gatehouse\"]", "\"other-api\"", "[\"other-api\"]"};
    for (size_t i = 0; i < 3; i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es384),
                     claims_parts(STD_ISS, good[i], STD_SUB, STD_EXP, std_cnf(), ""), &k_es384);
        az_token_unref(expect_tok(GH_R_ALLOW));
    }
    /* an issuer with no audience configured accepts nothing */
    g_iss.n_aud = 0;
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es384),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), ""), &k_es384);
    expect_tok(GH_R_TOKEN_BAD_AUDIENCE);
    g_iss.n_aud = 2;
}

/* ---- key selection --------------------------------------------------- */

static void test_unknown_kid(void **s)
{
    (void)s;
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"nope\"}",
                       claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_UNKNOWN_KID);
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\"}", claims_with(""),
                       &k_es256);
    expect_tok(GH_R_TOKEN_UNKNOWN_KID); /* kid missing */
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ES256\"}",
                       claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_UNKNOWN_KID); /* kids are case-sensitive */
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":1}",
                       claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED); /* kid not a string */
}

static void test_no_keys(void **s)
{
    (void)s;
    sign_std(&k_es256, claims_with(""));
    struct az_token *out = (struct az_token *)1;
    struct gh_err err;
    assert_int_equal(az_token_verify(&g_iss, NULL, tok, tok_len, &out, &err), GH_R_TOKEN_NO_KEYS);
    assert_null(out);
    assert_int_equal(err.reason, GH_R_TOKEN_NO_KEYS);
}

static void test_signed_by_other_key_same_kid(void **s)
{
    (void)s;
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256), claims_with(""), &k_other_ec);
    expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
}

/* ---- forbidden headers ----------------------------------------------- */

static void forbidden_header(const char *member)
{
    char h[512];
    snprintf(h, sizeof(h), "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rs256\",%s}", member);
    tok_len = tk_token(tok, sizeof(tok), h, claims_with(""), &k_rs256);
    expect_tok(GH_R_TOKEN_FORBIDDEN_HEADER);
}

static void test_jku(void **s)
{
    (void)s;
    forbidden_header("\"jku\":\"https://evil.example/jwks.json\"");
}
static void test_x5u(void **s)
{
    (void)s;
    forbidden_header("\"x5u\":\"https://evil.example/cert.pem\"");
}
static void test_jwk(void **s)
{
    (void)s;
    char m[4200];
    snprintf(m, sizeof(m), "\"jwk\":%s", k_es256.jwk); /* even a key we trust */
    forbidden_header(m);
}
static void test_x5c(void **s)
{
    (void)s;
    forbidden_header("\"x5c\":[\"MIIBszCCAVmgAwIBAgIUQ==\"]");
    forbidden_header("\"x5c\":null");
}
static void test_crit(void **s)
{
    (void)s;
    forbidden_header("\"crit\":[\"exp\"],\"exp\":1");
    forbidden_header("\"crit\":[\"b64\"],\"b64\":false");
    forbidden_header("\"crit\":[]");
}

/* ---- binding (RFC 8705) ---------------------------------------------- */

static void cnf_case(const char *cnf, enum gh_reason r)
{
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, cnf, ""), &k_es256);
    az_token_unref(expect_tok(r));
}

static void test_cnf_missing(void **s)
{
    (void)s;
    cnf_case(NULL, GH_R_BINDING_MISSING);
    cnf_case("{}", GH_R_BINDING_MISSING);
    cnf_case("{\"jkt\":\"abc\"}", GH_R_BINDING_MISSING); /* DPoP binding is not ours */
    cnf_case("\"x\"", GH_R_BINDING_MALFORMED);
    cnf_case("[]", GH_R_BINDING_MALFORMED);
}

static void test_cnf_other_cert(void **s)
{
    (void)s;
    struct az_token *t = verified_with("", STD_EXP);
    uint8_t other[32];
    SHA256((const uint8_t *)"certificate B", 13, other);
    assert_int_equal(az_token_check_binding(t, other), GH_R_BINDING_MISMATCH);
    other[0] = cert_a[0];
    memcpy(other, cert_a, 31); /* differs only in the last byte */
    other[31] = (uint8_t)(cert_a[31] ^ 1);
    assert_int_equal(az_token_check_binding(t, other), GH_R_BINDING_MISMATCH);
    assert_int_equal(az_token_check_binding(t, cert_a), GH_R_ALLOW);
    assert_int_equal(az_token_check_binding(NULL, cert_a), GH_R_BINDING_MISMATCH);
    az_token_unref(t);
}

static void test_cnf_hex(void **s)
{
    (void)s;
    char hex[65], c[128];
    gh_hex(cert_a, 32, hex);
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%s\"}", hex);
    cnf_case(c, GH_R_BINDING_MALFORMED);
}

static void test_cnf_padded(void **s)
{
    (void)s;
    char c[128];
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%s=\"}", thumb_a);
    cnf_case(c, GH_R_BINDING_MALFORMED);
}

static void test_cnf_std_base64(void **s)
{
    (void)s;
    /* Find a certificate whose thumbprint has '-' or '_', then write it the
     * standard-base64 way ('+', '/'): same bytes, wrong alphabet. */
    uint8_t h[32];
    char b[48], c[128];
    int found = 0;
    for (int i = 0; i < 1000 && !found; i++) {
        char in[32];
        snprintf(in, sizeof(in), "cert-%d", i);
        SHA256((const uint8_t *)in, strlen(in), h);
        tk_b64u(h, 32, b);
        found = strpbrk(b, "-_") != NULL;
    }
    assert_true(found);
    for (char *p = b; *p; p++) {
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    }
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%s\"}", b);
    cnf_case(c, GH_R_BINDING_MALFORMED);
}

static void test_cnf_other_malformed(void **s)
{
    (void)s;
    char c[128];
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%.42s\"}", thumb_a); /* 42 chars */
    cnf_case(c, GH_R_BINDING_MALFORMED);
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%sA\"}", thumb_a); /* 44 chars */
    cnf_case(c, GH_R_BINDING_MALFORMED);
    /* non-canonical: the 43rd char carries 2 unused bits; set them */
    char nc[48];
    strcpy(nc, thumb_a);
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(a, nc[42]) - a);
    nc[42] = a[v | 1];
    snprintf(c, sizeof(c), "{\"x5t#S256\":\"%s\"}", nc);
    cnf_case(c, GH_R_BINDING_MALFORMED);
    cnf_case("{\"x5t#S256\":42}", GH_R_BINDING_MALFORMED);
    cnf_case("{\"x5t#S256\":null}", GH_R_BINDING_MALFORMED);
}

/* ---- signature attacks ----------------------------------------------- */

static void test_tampered_payload(void **s)
{
    (void)s;
    sign_std(&k_rs256, claims_with(""));
    /* Replace the payload segment with one naming another subject. */
    char *d1 = strchr(tok, '.');
    char *d2 = strchr(d1 + 1, '.');
    static char evil[16400], rebuilt[40000];
    const char *p = claims_with("");
    static char pp[12000];
    snprintf(pp, sizeof(pp), "%s", p);
    char *sub = strstr(pp, "\"alice\"");
    memcpy(sub, "\"admin\"", 7);
    gh_b64url_encode((const uint8_t *)pp, strlen(pp), evil);
    snprintf(rebuilt, sizeof(rebuilt), "%.*s.%s%s", (int)(d1 - tok), tok, evil, d2);
    expect(rebuilt, strlen(rebuilt), GH_R_TOKEN_BAD_SIGNATURE);
    /* Flip one bit of the signature / of the header's signed bytes. */
    sign_std(&k_es256, claims_with(""));
    char *last = tok + tok_len - 2; /* not the final char: keep canonical */
    *last = *last == 'A' ? 'B' : 'A';
    expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
}

/* Rebuild tok with a raw signature. */
static void with_sig(const uint8_t *sig, size_t sl)
{
    char *d2 = strrchr(tok, '.');
    size_t o = (size_t)(d2 - tok) + 1;
    o += gh_b64url_encode(sig, sl, tok + o);
    tok_len = o;
}

static void test_ecdsa_bad_signatures(void **s)
{
    (void)s;
    const struct tkey *ks[] = {&k_es256, &k_es384};
    for (int i = 0; i < 2; i++) {
        const struct tkey *k = ks[i];
        size_t cl = k->alg == AZ_ALG_ES256 ? 32 : 48;
        sign_std(k, claims_with(""));
        char *d2 = strrchr(tok, '.');
        uint8_t raw[200];
        long rl = gh_b64url_decode(d2 + 1, tok_len - (size_t)(d2 + 1 - tok), raw);
        assert_int_equal(rl, (long)(2 * cl));

        /* truncated: drop the last byte, and drop half */
        with_sig(raw, 2 * cl - 1);
        expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
        with_sig(raw, cl);
        expect_tok(GH_R_TOKEN_BAD_SIGNATURE);

        /* DER-encoded: the SAME valid (r, s), as OpenSSL would emit it */
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(raw, cl, NULL), BN_bin2bn(raw + cl, cl, NULL));
        uint8_t *der;
        size_t dl;
        assert_true(ECDSA_SIG_to_bytes(&der, &dl, es));
        with_sig(der, dl);
        expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
        OPENSSL_free(der);
        ECDSA_SIG_free(es);

        /* all zero (r = s = 0: "psychic signature") */
        uint8_t zero[96] = {0};
        with_sig(zero, 2 * cl);
        expect_tok(GH_R_TOKEN_BAD_SIGNATURE);

        /* r, s swapped; one extra byte */
        uint8_t sw[96];
        memcpy(sw, raw + cl, cl);
        memcpy(sw + cl, raw, cl);
        with_sig(sw, 2 * cl);
        expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
        raw[2 * cl] = 0;
        with_sig(raw, 2 * cl + 1);
        expect_tok(GH_R_TOKEN_BAD_SIGNATURE);

        /* restored: the original verifies (the helpers above are honest) */
        with_sig(raw, 2 * cl);
        az_token_unref(expect_tok(GH_R_ALLOW));
    }
}

static void test_rsa_bad_signatures(void **s)
{
    (void)s;
    sign_std(&k_rs256, claims_with(""));
    char *d2 = strrchr(tok, '.');
    uint8_t raw[600];
    long rl = gh_b64url_decode(d2 + 1, tok_len - (size_t)(d2 + 1 - tok), raw);
    assert_int_equal(rl, 256);
    with_sig(raw, 255);
    expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
    uint8_t zero[256] = {0};
    with_sig(zero, 256);
    expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
    /* leading zero byte prepended: same integer, wrong length */
    uint8_t lz[257];
    lz[0] = 0;
    memcpy(lz + 1, raw, 256);
    with_sig(lz, 257);
    expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
    /* absurdly long signature segment */
    uint8_t big[1100];
    memset(big, 0x41, sizeof(big));
    with_sig(big, sizeof(big));
    expect_tok(GH_R_TOKEN_BAD_SIGNATURE);
    with_sig(raw, 256);
    az_token_unref(expect_tok(GH_R_ALLOW));
}

/* ---- structure ------------------------------------------------------- */

static void test_non_canonical_base64url(void **s)
{
    (void)s;
    static char t2[40000];
    sign_std(&k_es256, claims_with(""));
    char *d1 = strchr(tok, '.');
    char *d2 = strchr(d1 + 1, '.');
    size_t hl = (size_t)(d1 - tok), pl = (size_t)(d2 - d1 - 1);

    /* padding on the payload / signature */
    snprintf(t2, sizeof(t2), "%.*s.%.*s=.%s", (int)hl, tok, (int)pl, d1 + 1, d2 + 1);
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%s==", tok);
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    /* standard-alphabet chars and whitespace */
    snprintf(t2, sizeof(t2), "%s", tok);
    t2[hl + 3] = '+';
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%s", tok);
    t2[tok_len - 5] = '/';
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%s ", tok);
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%.*s\n%s", (int)hl, tok, d1);
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    /* non-zero trailing bits: a second spelling of the same bytes. The
     * ES256 signature is 64 bytes = 86 chars, the last char holds 4 unused
     * bits (64 % 3 == 1). */
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    snprintf(t2, sizeof(t2), "%s", tok);
    char *lastc = t2 + tok_len - 1;
    int v = (int)(strchr(a, *lastc) - a);
    *lastc = a[v | 1];
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    /* header whose last char has unused bits set */
    const char *hj = "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"es256\"}"; /* 44 bytes */
    assert_int_equal(strlen(hj) % 3, 2);
    snprintf(t2, sizeof(t2), "%s", tok);
    lastc = t2 + hl - 1;
    v = (int)(strchr(a, *lastc) - a);
    *lastc = a[v | 1];
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    /* the untouched token still verifies */
    az_token_unref(expect_tok(GH_R_ALLOW));
}

static void test_segment_count(void **s)
{
    (void)s;
    static char t2[40000];
    sign_std(&k_es256, claims_with(""));
    char *d2 = strrchr(tok, '.');
    snprintf(t2, sizeof(t2), "%.*s", (int)(d2 - tok), tok); /* 2 segments */
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%s.%s", tok, d2 + 1); /* 4 segments */
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%s.", tok); /* 4, last empty */
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%.*s.", (int)(d2 - tok), tok); /* empty signature */
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    char *d1 = strchr(tok, '.');
    snprintf(t2, sizeof(t2), "%.*s..%s", (int)(d1 - tok), tok, d2 + 1); /* empty payload */
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    snprintf(t2, sizeof(t2), "%s", d1); /* empty header */
    expect(t2, strlen(t2), GH_R_TOKEN_MALFORMED);
    expect("..", 2, GH_R_TOKEN_MALFORMED);
    expect("abc", 3, GH_R_TOKEN_MALFORMED);
    expect("", 0, GH_R_TOKEN_MALFORMED);
    struct az_token *out;
    assert_int_equal(az_token_verify(&g_iss, g_keys, NULL, 10, &out, NULL), GH_R_TOKEN_MALFORMED);
    /* the length is honoured: a NUL-free buffer beyond len is not read */
    memcpy(t2, tok, tok_len);
    memcpy(t2 + tok_len, ".AAAA", 6);
    az_token_unref(expect(t2, tok_len, GH_R_ALLOW));
}

static void test_oversized(void **s)
{
    (void)s;
    /* Exactly 8192 bytes and valid: accepted; one pad byte more: TOO_LARGE.
     * ES384 is used because its lengths can hit 8192 exactly (base64url
     * lengths never end in 4k+1). */
    static char pad[8192], extra[8300];
    size_t n = 5000;
    for (;; n++) {
        memset(pad, 'x', n);
        pad[n] = '\0';
        snprintf(extra, sizeof(extra), ",\"pad\":\"%s\"", pad);
        sign_std(&k_es384, claims_with(extra));
        if (tok_len >= AZ_TOKEN_MAX_LEN) {
            break;
        }
    }
    assert_int_equal(tok_len, AZ_TOKEN_MAX_LEN);
    az_token_unref(expect_tok(GH_R_ALLOW));
    pad[n] = 'x';
    pad[n + 1] = '\0';
    snprintf(extra, sizeof(extra), ",\"pad\":\"%s\"", pad);
    sign_std(&k_es384, claims_with(extra));
    assert_true(tok_len > AZ_TOKEN_MAX_LEN);
    expect_tok(GH_R_TOKEN_TOO_LARGE);
    /* garbage of 100 KiB */
    char *big = malloc(100 * 1024);
    memset(big, 'A', 100 * 1024);
    expect(big, 100 * 1024, GH_R_TOKEN_TOO_LARGE);
    free(big);
}

static void nested(char *out, int depth, const char *leaf)
{
    size_t o = 0;
    for (int i = 0; i < depth; i++) {
        out[o++] = i % 2 ? '[' : '{';
        if (i % 2 == 0) {
            o += (size_t)sprintf(out + o, "\"a\":");
        }
    }
    o += (size_t)sprintf(out + o, "%s", leaf);
    for (int i = depth - 1; i >= 0; i--) {
        out[o++] = i % 2 ? ']' : '}';
    }
    out[o] = '\0';
}

static void test_deep_json(void **s)
{
    (void)s;
    char deep[4096], extra[4200];
    /* payload root is depth 1; a claim nested 15 more = 16: accepted */
    nested(deep, 15, "1");
    snprintf(extra, sizeof(extra), ",\"deep\":%s", deep);
    sign_std(&k_es256, claims_with(extra));
    az_token_unref(expect_tok(GH_R_ALLOW));
    /* 17: refused */
    nested(deep, 16, "1");
    snprintf(extra, sizeof(extra), ",\"deep\":%s", deep);
    sign_std(&k_es256, claims_with(extra));
    expect_tok(GH_R_TOKEN_MALFORMED);
    /* 500 levels, in the header */
    char hugeh[4200];
    nested(deep, 500, "1");
    snprintf(hugeh, sizeof(hugeh),
             "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"es256\",\"x\":%s}", deep);
    tok_len = tk_token(tok, sizeof(tok), hugeh, claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    /* brackets inside strings do not count */
    snprintf(extra, sizeof(extra), ",\"s\":\"[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{\\\"[[[[[[\"");
    sign_std(&k_es256, claims_with(extra));
    az_token_unref(expect_tok(GH_R_ALLOW));
}

static void test_duplicate_claims(void **s)
{
    (void)s;
    sign_std(&k_es256, claims_with(",\"sub\":\"admin\""));
    expect_tok(GH_R_TOKEN_MALFORMED);
    sign_std(&k_es256, claims_with(",\"iss\":\"https://idp.example\""));
    expect_tok(GH_R_TOKEN_MALFORMED);
    /* nested duplicates too */
    sign_std(&k_es256, claims_with(",\"x\":{\"a\":1,\"a\":2}"));
    expect_tok(GH_R_TOKEN_MALFORMED);
    /* duplicate header member: two algs */
    tok_len = tk_token(tok, sizeof(tok),
                       "{\"alg\":\"HS256\",\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"es256\"}",
                       claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
}

static void test_not_json(void **s)
{
    (void)s;
    tok_len = tk_token(tok, sizeof(tok), "[\"alg\",\"ES256\"]", claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    tok_len = tk_token(tok, sizeof(tok), "{\"alg\":\"ES256\",", claims_with(""), &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256), "[1,2]", &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256), "not json", &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256), "{\"sub\":\"a\"} trailing", &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256), "{\"sub\":\"\\u0000\"}", &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256), "{\"sub\":\"\xff\xfe\"}", &k_es256);
    expect_tok(GH_R_TOKEN_MALFORMED); /* invalid UTF-8 */
}

/* ---- claim shapes ---------------------------------------------------- */

static void test_sub_rules(void **s)
{
    (void)s;
    const char *bad[] = {"\"\"", "42", "null", "[\"alice\"]"};
    for (size_t i = 0; i < 4; i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                     claims_parts(STD_ISS, STD_AUD, bad[i], STD_EXP, std_cnf(), ""), &k_es256);
        expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    }
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, NULL, STD_EXP, std_cnf(), ""), &k_es256);
    expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    /* 255 chars fit, 256 do not (never truncated) */
    char sub[300], q[310];
    memset(sub, 's', 255);
    sub[255] = '\0';
    snprintf(q, sizeof(q), "\"%s\"", sub);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, q, STD_EXP, std_cnf(), ""), &k_es256);
    struct az_token *t = expect_tok(GH_R_ALLOW);
    assert_string_equal(t->sub, sub);
    az_token_unref(t);
    snprintf(q, sizeof(q), "\"%ss\"", sub);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, q, STD_EXP, std_cnf(), ""), &k_es256);
    expect_tok(GH_R_TOKEN_BAD_CLAIMS);
}

static void test_optional_string_claims(void **s)
{
    (void)s;
    /* only the required claims: optional ones stay empty */
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), ""), &k_es256);
    struct az_token *t = expect_tok(GH_R_ALLOW);
    assert_string_equal(t->email, "");
    assert_string_equal(t->scope, "");
    assert_string_equal(t->sid, "");
    assert_int_equal(t->n_groups, 0);
    assert_int_equal(t->nbf, 0);
    assert_int_equal(t->iat, 0);
    az_token_unref(t);
    const char *bad[] = {",\"email\":1", ",\"scope\":[\"a\"]", ",\"jti\":{}", ",\"sid\":true",
                         ",\"client_id\":2"};
    for (size_t i = 0; i < 5; i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                     claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), bad[i]), &k_es256);
        expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    }
    char big[1100], e[1200];
    memset(big, 'r', 1024);
    big[1024] = '\0';
    snprintf(e, sizeof(e), ",\"scope\":\"%s\"", big);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), e), &k_es256);
    expect_tok(GH_R_TOKEN_BAD_CLAIMS);
}

static void test_groups_rules(void **s)
{
    (void)s;
    char e[4096];
    size_t o;
    /* 64 groups: accepted; 65: refused */
    for (int n = 64; n <= 65; n++) {
        o = (size_t)snprintf(e, sizeof(e), ",\"groups\":[");
        for (int i = 0; i < n; i++) {
            o += (size_t)snprintf(e + o, sizeof(e) - o, "%s\"g%d\"", i ? "," : "", i);
        }
        snprintf(e + o, sizeof(e) - o, "]");
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                     claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), e), &k_es256);
        if (n == 64) {
            struct az_token *t = expect_tok(GH_R_ALLOW);
            assert_int_equal(t->n_groups, 64);
            assert_string_equal(t->groups[63], "g63");
            az_token_unref(t);
        } else {
            expect_tok(GH_R_TOKEN_BAD_CLAIMS);
        }
    }
    const char *bad[] = {",\"groups\":\"admins\"", ",\"groups\":[\"a\",1]", ",\"groups\":[null]",
                         ",\"roles\":\"r\"", ",\"groups\":[\"a\"],\"roles\":{}"};
    for (size_t i = 0; i < 5; i++) {
        tok_len =
            tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                     claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), bad[i]), &k_es256);
        expect_tok(GH_R_TOKEN_BAD_CLAIMS);
    }
    /* roles when groups is absent; groups wins when both are present */
    tok_len = tk_token(
        tok, sizeof(tok), hdr_for(&k_es256),
        claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(), ",\"roles\":[\"ops\"]"),
        &k_es256);
    struct az_token *t = expect_tok(GH_R_ALLOW);
    assert_int_equal(t->n_groups, 1);
    assert_string_equal(t->groups[0], "ops");
    az_token_unref(t);
    tok_len = tk_token(tok, sizeof(tok), hdr_for(&k_es256),
                       claims_parts(STD_ISS, STD_AUD, STD_SUB, STD_EXP, std_cnf(),
                                    ",\"roles\":[\"ops\"],\"groups\":[\"dev\",\"qa\"]"),
                       &k_es256);
    t = expect_tok(GH_R_ALLOW);
    assert_int_equal(t->n_groups, 2);
    assert_string_equal(t->groups[1], "qa");
    az_token_unref(t);
}

/* ---- lifetime -------------------------------------------------------- */

static void test_refcount_and_key_swap(void **s)
{
    (void)s;
    sign_std(&k_es384, claims_with(""));
    struct az_token *t = expect_tok(GH_R_ALLOW);
    assert_ptr_equal(az_token_ref(t), t);
    az_token_unref(t);
    /* the token outlives the key set it was verified with */
    const char *jw[] = {k_es384.jwk};
    char doc[4096];
    tk_jwks(doc, sizeof(doc), jw, 1);
    struct az_jwks *ks = az_jwks_parse(doc, strlen(doc), NULL);
    assert_non_null(ks);
    struct az_token *t2 = NULL;
    assert_int_equal(az_token_verify(&g_iss, ks, tok, tok_len, &t2, NULL), GH_R_ALLOW);
    az_jwks_unref(ks);
    assert_string_equal(t2->sub, "alice");
    assert_string_equal(t2->groups[1], "dev");
    az_token_unref(t2);
    az_token_unref(t);
    az_token_unref(NULL);
    assert_null(az_token_ref(NULL));
    /* bad arguments */
    assert_int_equal(az_token_verify(NULL, g_keys, tok, tok_len, &t2, NULL), GH_R_INTERNAL);
    assert_int_equal(az_token_verify(&g_iss, g_keys, tok, tok_len, NULL, NULL), GH_R_INTERNAL);
}

/* Every error path, many times: the ASan build's leak checker at exit
 * reports anything one of them leaks. */
static void test_error_paths_do_not_leak(void **s)
{
    (void)s;
    for (int i = 0; i < 20; i++) {
        test_alg_none(s);
        test_duplicate_claims(s);
        test_not_json(s);
        test_cnf_missing(s);
        test_groups_rules(s);
        test_wrong_aud(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_ok_rs256, reset),
        cmocka_unit_test_setup(test_ok_rs384, reset),
        cmocka_unit_test_setup(test_ok_rs512, reset),
        cmocka_unit_test_setup(test_ok_es256, reset),
        cmocka_unit_test_setup(test_ok_es384, reset),
        cmocka_unit_test_setup(test_typ_jwt_each_alg, reset),
        cmocka_unit_test_setup(test_typ_variants, reset),
        cmocka_unit_test_setup(test_alg_none, reset),
        cmocka_unit_test_setup(test_hs256_keyed_with_public_pem, reset),
        cmocka_unit_test_setup(test_libjwt_refuses_at_jwt_typ, reset),
        cmocka_unit_test_setup(test_alg_key_mismatch, reset),
        cmocka_unit_test_setup(test_expired, reset),
        cmocka_unit_test_setup(test_nbf_in_future, reset),
        cmocka_unit_test_setup(test_iat_in_future, reset),
        cmocka_unit_test_setup(test_numeric_dates, reset),
        cmocka_unit_test_setup(test_wrong_iss, reset),
        cmocka_unit_test_setup(test_wrong_aud, reset),
        cmocka_unit_test_setup(test_unknown_kid, reset),
        cmocka_unit_test_setup(test_no_keys, reset),
        cmocka_unit_test_setup(test_signed_by_other_key_same_kid, reset),
        cmocka_unit_test_setup(test_jku, reset),
        cmocka_unit_test_setup(test_x5u, reset),
        cmocka_unit_test_setup(test_jwk, reset),
        cmocka_unit_test_setup(test_x5c, reset),
        cmocka_unit_test_setup(test_crit, reset),
        cmocka_unit_test_setup(test_cnf_missing, reset),
        cmocka_unit_test_setup(test_cnf_other_cert, reset),
        cmocka_unit_test_setup(test_cnf_hex, reset),
        cmocka_unit_test_setup(test_cnf_padded, reset),
        cmocka_unit_test_setup(test_cnf_std_base64, reset),
        cmocka_unit_test_setup(test_cnf_other_malformed, reset),
        cmocka_unit_test_setup(test_tampered_payload, reset),
        cmocka_unit_test_setup(test_ecdsa_bad_signatures, reset),
        cmocka_unit_test_setup(test_rsa_bad_signatures, reset),
        cmocka_unit_test_setup(test_non_canonical_base64url, reset),
        cmocka_unit_test_setup(test_segment_count, reset),
        cmocka_unit_test_setup(test_oversized, reset),
        cmocka_unit_test_setup(test_deep_json, reset),
        cmocka_unit_test_setup(test_duplicate_claims, reset),
        cmocka_unit_test_setup(test_not_json, reset),
        cmocka_unit_test_setup(test_sub_rules, reset),
        cmocka_unit_test_setup(test_optional_string_claims, reset),
        cmocka_unit_test_setup(test_groups_rules, reset),
        cmocka_unit_test_setup(test_refcount_and_key_swap, reset),
        cmocka_unit_test_setup(test_error_paths_do_not_leak, reset),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
