/*
 * token.c: verification of compact-JWS access tokens (RFC 7515, RFC 7519,
 * RFC 9068) bound to client certificates (RFC 8705), following the JWT BCP
 * (RFC 8725).
 *
 * Why it is built this way. The order of checks is the security argument:
 *   1. structure: size cap, exactly three non-empty canonical base64url
 *      segments (one token has one spelling, so its SHA-256 is a stable cache
 *      and revocation key);
 *   2. header (strict JSON): alg from a fixed allow-list, no key-carrying or
 *      key-locating headers (jku/x5u/jwk/x5c), no crit, typ, kid;
 *   3. key by kid, and the header alg must equal the KEY's alg. This pin is
 *      what defeats alg confusion: libjwt 1.10 verifies with whatever alg the
 *      header names, so an "HS256" token checked against an RSA public key PEM
 *      is an HMAC keyed with the PEM text -- forgeable by anyone;
 *   4. signature with BoringSSL (EVP_DigestVerify; JOSE R||S converted to DER
 *      with the exact length required), then the payload is parsed -- only
 *      signed bytes reach the claims parser -- and libjwt re-checks the
 *      signature where libjwt 1.10 can (it refuses every typ but "JWT", so
 *      RFC 9068 "at+jwt" tokens rest on BoringSSL alone; docs/TOKENS.md);
 *   5. claims: iss, aud, exp present, sub, optional strings, groups, cnf.
 * Time and binding are separate calls so a verified token can be cached.
 *
 * Performance: the token is decoded once into stack buffers; no heap copy of
 * the token is made; the only allocations are jansson's and struct az_token.
 * The raw token is never logged or stored (only its SHA-256).
 */
#include "authz/token.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/digest.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "authz/token_internal.h"
#include "gateway/base/util.h"

/* Largest decoded segment: 8192 base64url chars decode to 6144 bytes. */
#define SEG_MAX (AZ_TOKEN_MAX_LEN / 4 * 3 + 3)
/* Largest signature we accept: RSA-8192 (the JWKS cap) is 1024 bytes. */
#define SIG_MAX 1024
/* NumericDate claims must lie in [0, 9999-12-31T23:59:59Z]: no overflow
 * when a skew is added, no nonsense dates. */
#define NUMERIC_DATE_MAX INT64_C(253402300799)
#define SKEW_MAX 300
#define CNF_LEN 43 /* base64url of 32 bytes, no padding */

static enum gh_reason fail(struct gh_err *err, enum gh_reason r, const char *msg)
{
    gh_err_set(err, r, "%s", msg);
    return r;
}

static enum gh_reason typ_check(const json_t *hdr, const struct az_issuer *iss,
                                const struct az_verify_opts *o, int *is_plain_jwt)
{
    const char *typ = json_string_value(json_object_get(hdr, "typ"));
    *is_plain_jwt = 0;
    if (typ == NULL) {
        return GH_R_TOKEN_BAD_TYP;
    }
    if (o->typ != NULL) {
        return strcasecmp(typ, o->typ) == 0 ? GH_R_ALLOW : GH_R_TOKEN_BAD_TYP;
    }
    /* RFC 9068 section 2.1 / 4: an access token says "at+jwt" so an ID token
     * or any other JWT from the same issuer cannot be replayed as one (RFC
     * 8725 section 3.11). Media types compare case-insensitively (RFC 7515
     * section 4.1.9). */
    if (strcasecmp(typ, "at+jwt") == 0 || strcasecmp(typ, "application/at+jwt") == 0) {
        return GH_R_ALLOW;
    }
    if (iss->allow_jwt_typ && strcasecmp(typ, "JWT") == 0) {
        *is_plain_jwt = 1;
        return GH_R_ALLOW;
    }
    return GH_R_TOKEN_BAD_TYP;
}

/* BoringSSL verification of sig over msg with k (whose alg the caller has
 * already matched to the header). Returns 1 if valid. */
static int sig_ok(const struct az_jwk *k, const uint8_t *msg, size_t mlen, const uint8_t *sig,
                  size_t slen)
{
    const EVP_MD *md = NULL;
    size_t clen = 0; /* EC coordinate length; 0 for RSA */
    int want_type;
    switch (k->alg) {
    case AZ_ALG_RS256:
        md = EVP_sha256();
        want_type = EVP_PKEY_RSA;
        break;
    case AZ_ALG_RS384:
        md = EVP_sha384();
        want_type = EVP_PKEY_RSA;
        break;
    case AZ_ALG_RS512:
        md = EVP_sha512();
        want_type = EVP_PKEY_RSA;
        break;
    case AZ_ALG_ES256:
        md = EVP_sha256();
        want_type = EVP_PKEY_EC;
        clen = 32;
        break;
    case AZ_ALG_ES384:
        md = EVP_sha384();
        want_type = EVP_PKEY_EC;
        clen = 48;
        break;
    default:
        return 0;
    }
    if (EVP_PKEY_id(k->pkey) != want_type) {
        return 0;
    }

    int ok = 0;
    uint8_t *der = NULL;
    size_t der_len = 0;
    ECDSA_SIG *es = NULL;
    EVP_MD_CTX ctx;
    EVP_MD_CTX_init(&ctx);

    if (clen != 0) {
        /* RFC 7518 section 3.4: the JWS signature is R || S, each exactly
         * the curve's octet length. A DER signature, a truncated one or one
         * for the other curve has another length and is refused here. */
        if (slen != 2 * clen) {
            goto out;
        }
        es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, clen, NULL);
        BIGNUM *s = BN_bin2bn(sig + clen, clen, NULL);
        if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            goto out;
        }
        if (!ECDSA_SIG_to_bytes(&der, &der_len, es)) {
            goto out;
        }
        sig = der;
        slen = der_len;
    } else if (slen != (size_t)EVP_PKEY_size(k->pkey)) {
        /* RFC 8017 section 8.2.2 step 1: length must be the modulus size. */
        goto out;
    }
    if (EVP_DigestVerifyInit(&ctx, NULL, md, NULL, k->pkey) != 1) {
        goto out;
    }
    /* ECDSA verification also refuses r or s outside [1, n-1], so an
     * all-zero signature (CVE-2022-21449 "psychic signatures") fails. */
    ok = EVP_DigestVerify(&ctx, sig, slen, msg, mlen) == 1;
out:
    EVP_MD_CTX_cleanup(&ctx);
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    return ok;
}

static jwt_alg_t jwt_alg_of(enum az_alg a)
{
    switch (a) {
    case AZ_ALG_RS256:
        return JWT_ALG_RS256;
    case AZ_ALG_RS384:
        return JWT_ALG_RS384;
    case AZ_ALG_RS512:
        return JWT_ALG_RS512;
    case AZ_ALG_ES256:
        return JWT_ALG_ES256;
    case AZ_ALG_ES384:
        return JWT_ALG_ES384;
    default:
        return JWT_ALG_INVAL;
    }
}

/* libjwt cross-check: jwt_decode with the key's PEM. Only reached after the
 * alg pin and BoringSSL verification, and only for typ "JWT": libjwt 1.10
 * refuses any other typ before looking at the signature. Returns 1 if
 * libjwt also accepts the signature (and decoded the alg we pinned). */
static int libjwt_ok(const struct az_jwk *k, const char *tok, size_t len)
{
    char tokz[AZ_TOKEN_MAX_LEN + 1];
    jwt_t *jwt = NULL;
    memcpy(tokz, tok, len);
    tokz[len] = '\0';
    int rc = jwt_decode(&jwt, tokz, (const unsigned char *)k->pem, (int)k->pem_len);
    int ok = rc == 0 && jwt != NULL && jwt_get_alg(jwt) == jwt_alg_of(k->alg);
    jwt_free(jwt);
    OPENSSL_cleanse(tokz, len); /* a bearer token is a secret */
    return ok;
}

/* Optional string claim copied into dst (cap bytes incl. NUL). Absent is
 * fine (dst stays ""); wrong type, too long or empty-when-required -> -1. */
static int str_claim(const json_t *claims, const char *name, char *dst, size_t cap, int required)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL) {
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        return -1;
    }
    size_t l = json_string_length(v);
    if (l >= cap || (required && l == 0)) {
        return -1; /* never truncate an identity */
    }
    memcpy(dst, json_string_value(v), l + 1);
    return 0;
}

/* NumericDate (RFC 7519 section 2): integer or real seconds. Absent -> 0
 * with *present = 0. Wrong type or out of range -> -1. */
static int date_claim(const json_t *claims, const char *name, int64_t *out, int *present)
{
    json_t *v = json_object_get(claims, name);
    *out = 0;
    *present = 0;
    if (v == NULL) {
        return 0;
    }
    int64_t val;
    if (json_is_integer(v)) {
        val = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < 0 || d > (double)NUMERIC_DATE_MAX) {
            return -1;
        }
        val = (int64_t)d; /* d >= 0: truncation is floor */
    } else {
        return -1;
    }
    if (val < 0 || val > NUMERIC_DATE_MAX) {
        return -1;
    }
    *out = val;
    *present = 1;
    return 0;
}

/* 1 if v equals one of the configured audiences (empty or unterminated
 * configuration entries never match). */
static int is_our_aud(const char *v, const struct az_issuer *iss, int n_aud)
{
    for (int i = 0; i < n_aud; i++) {
        size_t l = strnlen(iss->audiences[i], sizeof(iss->audiences[i]));
        if (l > 0 && l < sizeof(iss->audiences[i]) && strcmp(v, iss->audiences[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static enum gh_reason aud_check(const json_t *claims, const struct az_issuer *iss)
{
    json_t *aud = json_object_get(claims, "aud");
    int n_aud = iss->n_aud < 0 ? 0 : (iss->n_aud > AZ_MAX_AUD ? AZ_MAX_AUD : iss->n_aud);
    enum gh_reason r = GH_R_TOKEN_BAD_AUDIENCE;
    if (aud == NULL) {
        return GH_R_TOKEN_BAD_AUDIENCE;
    }
    /* RFC 7519 section 4.1.3: a string or an array of strings; the token is
     * for us only if one value is one of our configured audiences. */
    if (json_is_string(aud)) {
        return is_our_aud(json_string_value(aud), iss, n_aud) ? GH_R_ALLOW
                                                              : GH_R_TOKEN_BAD_AUDIENCE;
    }
    if (!json_is_array(aud)) {
        return GH_R_TOKEN_BAD_CLAIMS;
    }
    size_t idx;
    json_t *v;
    json_array_foreach (aud, idx, v) {
        if (!json_is_string(v)) {
            return GH_R_TOKEN_BAD_CLAIMS;
        }
        if (is_our_aud(json_string_value(v), iss, n_aud)) {
            r = GH_R_ALLOW;
        }
    }
    return r;
}

/* groups (or roles when groups is absent): array of at most AZ_MAX_GROUPS
 * strings. The pointers borrow from t->claims, which lives as long as t. */
static int groups_claim(struct az_token *t)
{
    json_t *g = json_object_get(t->claims, "groups");
    json_t *roles = json_object_get(t->claims, "roles");
    if (roles != NULL && !json_is_array(roles)) {
        return -1;
    }
    if (g == NULL) {
        g = roles;
    }
    if (g == NULL) {
        return 0;
    }
    if (!json_is_array(g) || json_array_size(g) > AZ_MAX_GROUPS) {
        return -1; /* more groups than we can evaluate: refuse, never truncate */
    }
    size_t i;
    json_t *v;
    json_array_foreach (g, i, v) {
        if (!json_is_string(v)) {
            return -1;
        }
        t->groups[t->n_groups++] = (char *)json_string_value(v);
    }
    return 0;
}

/* RFC 8705 section 3.1: cnf.x5t#S256 is base64url(SHA-256(cert DER)), no
 * padding: exactly 43 characters decoding canonically to 32 bytes. */
static enum gh_reason cnf_claim(struct az_token *t, int required)
{
    json_t *cnf = json_object_get(t->claims, "cnf");
    if (cnf == NULL) {
        return required ? GH_R_BINDING_MISSING : GH_R_ALLOW;
    }
    if (!json_is_object(cnf)) {
        return GH_R_BINDING_MALFORMED;
    }
    json_t *x = json_object_get(cnf, "x5t#S256");
    if (x == NULL) {
        return required ? GH_R_BINDING_MISSING : GH_R_ALLOW;
    }
    if (!json_is_string(x) || json_string_length(x) != CNF_LEN) {
        return GH_R_BINDING_MALFORMED; /* hex (64), padded (44), ... */
    }
    uint8_t d[CNF_LEN];
    if (gh_b64url_decode(json_string_value(x), CNF_LEN, d) != 32) {
        return GH_R_BINDING_MALFORMED; /* standard base64 '+' '/', bad bits */
    }
    memcpy(t->cnf_x5t_s256, json_string_value(x), CNF_LEN + 1);
    return GH_R_ALLOW;
}

static enum gh_reason claims_check(struct az_token *t, const struct az_issuer *iss,
                                   const struct az_verify_opts *o, struct gh_err *err)
{
    const json_t *c = t->claims;
    int present;

    /* RFC 9068 section 4: iss must exactly match the configured issuer
     * (RFC 8725 section 3.8: never trust a key for another issuer). */
    const char *ti = json_string_value(json_object_get(c, "iss"));
    size_t il = strnlen(iss->issuer, sizeof(iss->issuer));
    if (ti == NULL || il == 0 || il == sizeof(iss->issuer) || strcmp(ti, iss->issuer) != 0) {
        return fail(err, GH_R_TOKEN_BAD_ISSUER, "token: iss does not match the issuer");
    }
    memcpy(t->iss, iss->issuer, il + 1);

    /* RFC 9068 section 4 / RFC 8725 section 3.9: audience restriction. */
    enum gh_reason r = aud_check(c, iss);
    if (r != GH_R_ALLOW) {
        return fail(err, r,
                    r == GH_R_TOKEN_BAD_AUDIENCE ? "token: aud is not ours"
                                                 : "token: aud has a non-string value");
    }
    if (date_claim(c, "exp", &t->exp, &present) != 0 || !present || t->exp == 0) {
        return fail(err, GH_R_TOKEN_BAD_CLAIMS, "token: exp missing or not a NumericDate");
    }
    if (date_claim(c, "nbf", &t->nbf, &present) != 0 ||
        date_claim(c, "iat", &t->iat, &present) != 0) {
        return fail(err, GH_R_TOKEN_BAD_CLAIMS, "token: nbf/iat not a NumericDate");
    }
    if (str_claim(c, "sub", t->sub, sizeof(t->sub), o->require_sub) != 0) {
        return fail(err, GH_R_TOKEN_BAD_CLAIMS,
                    "token: sub missing, empty, too long or not a string");
    }
    if (str_claim(c, "jti", t->jti, sizeof(t->jti), 0) != 0 ||
        str_claim(c, "sid", t->sid, sizeof(t->sid), 0) != 0 ||
        str_claim(c, "email", t->email, sizeof(t->email), 0) != 0 ||
        str_claim(c, "client_id", t->client_id, sizeof(t->client_id), 0) != 0 ||
        str_claim(c, "scope", t->scope, sizeof(t->scope), 0) != 0) {
        return fail(err, GH_R_TOKEN_BAD_CLAIMS,
                    "token: jti/sid/email/client_id/scope not a string or too long");
    }
    if (groups_claim(t) != 0) {
        return fail(err, GH_R_TOKEN_BAD_CLAIMS,
                    "token: groups/roles not an array of at most 64 strings");
    }
    r = cnf_claim(t, o->require_cnf);
    if (r != GH_R_ALLOW) {
        return fail(err, r,
                    r == GH_R_BINDING_MISSING ? "token: cnf.x5t#S256 missing"
                                              : "token: cnf.x5t#S256 malformed");
    }
    return GH_R_ALLOW;
}

enum gh_reason az_token_verify_opts(const struct az_issuer *iss, const struct az_jwks *keys,
                                    const char *tok, size_t len, const struct az_verify_opts *o,
                                    struct az_token **out, struct gh_err *err)
{
    uint8_t hbuf[SEG_MAX];
    uint8_t pbuf[SEG_MAX];
    uint8_t sbuf[SIG_MAX + 4];
    json_t *hdr = NULL;
    json_t *claims = NULL;
    struct az_token *t = NULL;
    enum gh_reason r;
    const char *why = NULL;

    if (out != NULL) {
        *out = NULL;
    }
    if (iss == NULL || o == NULL || out == NULL) {
        return fail(err, GH_R_INTERNAL, "token: bad arguments");
    }
    if (tok == NULL || len == 0) {
        return fail(err, GH_R_TOKEN_MALFORMED, "token: empty");
    }
    if (len > AZ_TOKEN_MAX_LEN) {
        return fail(err, GH_R_TOKEN_TOO_LARGE, "token: longer than 8192 bytes");
    }

    /* RFC 7515 section 7.1 / RFC 7519 section 7.2: compact serialization is
     * exactly three base64url segments separated by two dots. */
    const char *d1 = memchr(tok, '.', len);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL) {
        return fail(err, GH_R_TOKEN_MALFORMED, "token: not three segments");
    }
    size_t hl = (size_t)(d1 - tok);
    size_t pl = (size_t)(d2 - d1 - 1);
    size_t sl = len - (size_t)(d2 + 1 - tok);
    /* Strict decoding: no padding, no whitespace, no '+' '/', zero trailing
     * bits. The header is examined before the other segments so that an
     * unsigned "alg":"none" token (empty third segment) is named for what it
     * is: a bad alg. */
    long hlen = hl == 0 ? -1 : gh_b64url_decode(tok, hl, hbuf);
    if (hlen <= 0) {
        return fail(err, GH_R_TOKEN_MALFORMED, "token: header not canonical base64url");
    }
    hdr = az_json_parse_object((const char *)hbuf, (size_t)hlen, AZ_JSON_MAX_DEPTH, &why);
    if (hdr == NULL) {
        gh_err_set(err, GH_R_TOKEN_MALFORMED, "token header: %s", why);
        r = GH_R_TOKEN_MALFORMED;
        goto out;
    }

    /* RFC 8725 sections 2.1, 3.1: only the asymmetric algorithms we support;
     * "none" and every HMAC alg are refused whatever the key set holds. */
    enum az_alg alg = az_alg_from_name(json_string_value(json_object_get(hdr, "alg")));
    if (alg == AZ_ALG_NONE) {
        r = fail(err, GH_R_TOKEN_BAD_ALG, "token: alg missing or not allowed");
        goto out;
    }
    /* RFC 7515 sections 4.1.2-4.1.6, RFC 8725 section 3.10: headers that
     * carry or locate a key would let the token choose its own verifier. We
     * never fetch or trust them; their presence alone refuses the token. */
    static const char *const forbidden[] = {"jku", "x5u", "jwk", "x5c"};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        if (json_object_get(hdr, forbidden[i]) != NULL) {
            gh_err_set(err, GH_R_TOKEN_FORBIDDEN_HEADER, "token: header \"%s\" refused",
                       forbidden[i]);
            r = GH_R_TOKEN_FORBIDDEN_HEADER;
            goto out;
        }
    }
    /* RFC 7515 section 4.1.11: we understand no extension, so any "crit"
     * must make the token invalid. */
    if (json_object_get(hdr, "crit") != NULL) {
        r = fail(err, GH_R_TOKEN_FORBIDDEN_HEADER, "token: header \"crit\" refused");
        goto out;
    }
    int plain_jwt = 0;
    r = typ_check(hdr, iss, o, &plain_jwt);
    if (r != GH_R_ALLOW) {
        r = fail(err, r, "token: typ missing or not an access-token type");
        goto out;
    }
    json_t *jkid = json_object_get(hdr, "kid");
    if (jkid == NULL) {
        r = fail(err, GH_R_TOKEN_UNKNOWN_KID, "token: kid missing");
        goto out;
    }
    if (!json_is_string(jkid)) {
        r = fail(err, GH_R_TOKEN_MALFORMED, "token: kid not a string");
        goto out;
    }
    const char *kid = json_string_value(jkid);

    long plen = pl == 0 ? -1 : gh_b64url_decode(d1 + 1, pl, pbuf);
    if (plen <= 0) {
        r = fail(err, GH_R_TOKEN_MALFORMED, "token: payload empty or not canonical base64url");
        goto out;
    }
    if (sl == 0) {
        r = fail(err, GH_R_TOKEN_MALFORMED, "token: signature segment empty");
        goto out;
    }
    /* A signature longer than any key we accept can produce is not decoded. */
    if (sl / 4 * 3 + 3 > sizeof(sbuf)) {
        r = fail(err, GH_R_TOKEN_BAD_SIGNATURE, "token: signature too long");
        goto out;
    }
    long slen = gh_b64url_decode(d2 + 1, sl, sbuf);
    if (slen <= 0) {
        r = fail(err, GH_R_TOKEN_MALFORMED, "token: signature not canonical base64url");
        goto out;
    }

    if (az_jwks_count(keys) == 0) {
        r = fail(err, GH_R_TOKEN_NO_KEYS, "token: no keys for the issuer");
        goto out;
    }
    const struct az_jwk *key = az_jwks_find(keys, kid);
    if (key == NULL) {
        r = fail(err, GH_R_TOKEN_UNKNOWN_KID, "token: kid not in the issuer key set");
        goto out;
    }
    /* The pin (DESIGN.md section 8, RFC 8725 section 3.1): the key decides
     * the algorithm. An HS256 or otherwise mismatched header stops here,
     * before libjwt could be asked to "verify" it. */
    if (alg != key->alg) {
        r = fail(err, GH_R_TOKEN_BAD_ALG, "token: alg does not match the key's alg");
        goto out;
    }
    if (!sig_ok(key, (const uint8_t *)tok, (size_t)(d2 - tok), sbuf, (size_t)slen)) {
        r = fail(err, GH_R_TOKEN_BAD_SIGNATURE, "token: signature invalid");
        goto out;
    }

    claims = az_json_parse_object((const char *)pbuf, (size_t)plen, AZ_JSON_MAX_DEPTH, &why);
    if (claims == NULL) {
        gh_err_set(err, GH_R_TOKEN_MALFORMED, "token payload: %s", why);
        r = GH_R_TOKEN_MALFORMED;
        goto out;
    }
    if (o->use_libjwt && plain_jwt && !libjwt_ok(key, tok, len)) {
        r = fail(err, GH_R_TOKEN_BAD_SIGNATURE, "token: libjwt cross-check failed");
        goto out;
    }

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        r = fail(err, GH_R_INTERNAL, "token: out of memory");
        goto out;
    }
    t->refs = 1;
    t->alg = alg;
    t->claims = claims;
    claims = NULL;
    if (strlen(kid) >= sizeof(t->kid)) {
        r = fail(err, GH_R_TOKEN_UNKNOWN_KID, "token: kid too long"); /* unreachable: set caps */
        goto out;
    }
    memcpy(t->kid, kid, strlen(kid) + 1);
    r = claims_check(t, iss, o, err);
    if (r != GH_R_ALLOW) {
        goto out;
    }
    SHA256((const uint8_t *)tok, len, t->token_sha256);
    *out = t;
    t = NULL;
    r = GH_R_ALLOW;
out:
    az_token_unref(t);
    json_decref(claims);
    json_decref(hdr);
    return r;
}

enum gh_reason az_token_verify(const struct az_issuer *iss, const struct az_jwks *keys,
                               const char *tok, size_t len, struct az_token **out,
                               struct gh_err *err)
{
    static const struct az_verify_opts access_token = {
        .typ = NULL,
        .use_libjwt = 1,
        .require_sub = 1,
        .require_cnf = 1,
    };
    return az_token_verify_opts(iss, keys, tok, len, &access_token, out, err);
}

static int64_t skew_of(const struct az_issuer *iss)
{
    if (iss == NULL || iss->skew_s < 0) {
        return 0;
    }
    return iss->skew_s > SKEW_MAX ? SKEW_MAX : iss->skew_s;
}

enum gh_reason az_token_check_time(const struct az_token *t, const struct az_issuer *iss,
                                   int64_t now_s)
{
    if (t == NULL || t->exp <= 0) {
        return GH_R_TOKEN_BAD_CLAIMS; /* exp is required (RFC 9068 section 2.2) */
    }
    int64_t skew = skew_of(iss);
    /* RFC 7519 section 4.1.4: valid only while now is before exp (plus the
     * configured skew, RFC 7519 "small leeway"). Claims are range-checked to
     * year 9999 at verification, so these sums cannot overflow. */
    if (now_s >= t->exp + skew) {
        return GH_R_TOKEN_EXPIRED;
    }
    /* RFC 7519 section 4.1.5: not before nbf (minus skew). */
    if (t->nbf > 0 && t->nbf > now_s + skew) {
        return GH_R_TOKEN_NOT_YET_VALID;
    }
    /* RFC 7519 section 4.1.6: a token issued in the future comes from a
     * skewed or compromised issuer clock; refuse it. */
    if (t->iat > 0 && t->iat > now_s + skew) {
        return GH_R_TOKEN_IAT_FUTURE;
    }
    return GH_R_ALLOW;
}

enum gh_reason az_token_check_binding(const struct az_token *t, const uint8_t cert_sha256[32])
{
    char want[CNF_LEN + 2];
    if (t == NULL || cert_sha256 == NULL || t->cnf_x5t_s256[0] == '\0') {
        return GH_R_BINDING_MISMATCH;
    }
    /* RFC 8705 section 3.1: compare base64url(SHA-256(DER)) with the token's
     * cnf.x5t#S256. Both are canonical 43-char strings, so string equality
     * is thumbprint equality; CRYPTO_memcmp keeps it constant-time. */
    if (gh_b64url_encode(cert_sha256, 32, want) != CNF_LEN) {
        return GH_R_BINDING_MISMATCH;
    }
    if (CRYPTO_memcmp(want, t->cnf_x5t_s256, CNF_LEN) != 0) {
        return GH_R_BINDING_MISMATCH;
    }
    return GH_R_ALLOW;
}

struct az_token *az_token_ref(struct az_token *t)
{
    if (t != NULL) {
        __atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
    }
    return t;
}

void az_token_unref(struct az_token *t)
{
    if (t != NULL && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        json_decref(t->claims);
        free(t);
    }
}
