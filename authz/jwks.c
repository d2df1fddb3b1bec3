/*
 * jwks.c: turns an issuer's JWKS document (RFC 7517) into an immutable,
 * refcounted set of public keys, each pinned to exactly one algorithm.
 *
 * Why it is built this way: the JWKS is fetched from the network, so it is
 * hostile input like a token. It goes through the same strict JSON entry
 * point (size, depth, duplicate names), and every key that is not plainly a
 * public signature key we support is skipped and counted rather than
 * "interpreted": symmetric keys (an "oct" key would turn the JWKS into a
 * shared secret), keys with private members, encryption keys, unknown curves
 * or algorithms, RSA moduli under 2048 bits. The key's own kty/crv/alg decide
 * its algorithm (RFC 8725 section 3.1); the token header is never asked.
 * Each key is kept twice: as a BoringSSL EVP_PKEY (our verifier) and as a
 * PEM string (for libjwt's cross-check).
 *
 * Duplicate kids among usable keys make the whole set invalid: a kid must
 * select one key, and refusing the document keeps the running snapshot,
 * which is safer than guessing which of two keys the issuer meant.
 */
#include "authz/jwks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "authz/token_internal.h"
#include "gateway/base/util.h"

#define JWKS_MAX_BYTES (256 * 1024)
#define JWKS_MAX_KEYS 64
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192 /* bounds the cost of one verification */

struct az_jwks {
    int refs; /* atomic */
    size_t n;
    size_t skipped;
    struct az_jwk keys[];
};

static const char *const alg_names[] = {
    [AZ_ALG_NONE] = NULL,     [AZ_ALG_RS256] = "RS256", [AZ_ALG_RS384] = "RS384",
    [AZ_ALG_RS512] = "RS512", [AZ_ALG_ES256] = "ES256", [AZ_ALG_ES384] = "ES384",
};

const char *az_alg_name(enum az_alg a)
{
    if ((int)a <= AZ_ALG_NONE || (int)a > AZ_ALG_ES384) {
        return NULL;
    }
    return alg_names[a];
}

enum az_alg az_alg_from_name(const char *name)
{
    if (name == NULL) {
        return AZ_ALG_NONE;
    }
    for (int a = AZ_ALG_RS256; a <= AZ_ALG_ES384; a++) {
        if (strcmp(name, alg_names[a]) == 0) {
            return (enum az_alg)a;
        }
    }
    return AZ_ALG_NONE;
}

int az_json_depth_ok(const char *s, size_t len, int max_depth)
{
    int depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') {
                i++; /* skip the escaped character, whatever it is */
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > max_depth) {
                return 0;
            }
        } else if (c == '}' || c == ']') {
            depth--;
            if (depth < 0) {
                return 0; /* unbalanced: invalid anyway, and must not buy depth */
            }
        }
    }
    return 1;
}

json_t *az_json_parse_object(const char *s, size_t len, int max_depth, const char **why)
{
    const char *dummy;
    if (why == NULL) {
        why = &dummy;
    }
    /* Depth first: a 100k-deep "[[[[" never reaches the recursive parser. */
    if (!az_json_depth_ok(s, len, max_depth)) {
        *why = "JSON nested too deeply";
        return NULL;
    }
    json_error_t jerr;
    /* Duplicate member names are refused: two "sub" members would let the
     * signer and a second parser disagree about who the token names. */
    json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        *why = "invalid JSON or duplicate member name";
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *why = "JSON is not an object";
        return NULL;
    }
    return j;
}

/* Decode a base64url member strictly into out (cap bytes). Returns the
 * decoded length, or -1 if absent, not a string, too long or not canonical. */
static long b64_member(json_t *jk, const char *name, uint8_t *out, size_t cap)
{
    json_t *v = json_object_get(jk, name);
    if (!json_is_string(v)) {
        return -1;
    }
    size_t l = json_string_length(v);
    if (l == 0 || (l / 4) * 3 + 3 > cap) {
        return -1;
    }
    return gh_b64url_decode(json_string_value(v), l, out);
}

static EVP_PKEY *rsa_key(json_t *jk, const char **why)
{
    uint8_t nbuf[RSA_MAX_BITS / 8 + 8];
    uint8_t ebuf[16];
    EVP_PKEY *pkey = NULL;
    RSA *rsa = NULL;
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;

    long nl = b64_member(jk, "n", nbuf, sizeof(nbuf));
    long el = b64_member(jk, "e", ebuf, sizeof(ebuf));
    if (nl <= 0 || el <= 0) {
        *why = "RSA key without valid n/e";
        goto out;
    }
    n = BN_bin2bn(nbuf, (size_t)nl, NULL);
    e = BN_bin2bn(ebuf, (size_t)el, NULL);
    if (n == NULL || e == NULL) {
        *why = "out of memory";
        goto out;
    }
    unsigned bits = BN_num_bits(n);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        *why = "RSA modulus size outside 2048..8192 bits";
        goto out;
    }
    /* e odd, 3 <= e < 2^33 (BoringSSL's own verifier limit). */
    if (!BN_is_odd(e) || BN_num_bits(e) < 2 || BN_num_bits(e) > 33) {
        *why = "RSA public exponent unacceptable";
        goto out;
    }
    rsa = RSA_new();
    if (rsa == NULL || !RSA_set0_key(rsa, n, e, NULL)) {
        *why = "out of memory";
        goto out;
    }
    n = NULL; /* owned by rsa now */
    e = NULL;
    pkey = EVP_PKEY_new();
    if (pkey == NULL || !EVP_PKEY_assign_RSA(pkey, rsa)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        *why = "out of memory";
        goto out;
    }
    rsa = NULL; /* owned by pkey now */
out:
    RSA_free(rsa);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *ec_key(json_t *jk, int nid, size_t coord_len, const char **why)
{
    uint8_t xb[64];
    uint8_t yb[64];
    EVP_PKEY *pkey = NULL;
    EC_KEY *ec = NULL;
    BIGNUM *x = NULL;
    BIGNUM *y = NULL;

    /* RFC 7518 section 6.2.1.2/6.2.1.3: x and y are full-length octet
     * strings for the curve; anything shorter or longer is refused. */
    long xl = b64_member(jk, "x", xb, sizeof(xb));
    long yl = b64_member(jk, "y", yb, sizeof(yb));
    if (xl != (long)coord_len || yl != (long)coord_len) {
        *why = "EC key with bad x/y";
        goto out;
    }
    x = BN_bin2bn(xb, coord_len, NULL);
    y = BN_bin2bn(yb, coord_len, NULL);
    ec = EC_KEY_new_by_curve_name(nid);
    if (x == NULL || y == NULL || ec == NULL) {
        *why = "out of memory";
        goto out;
    }
    /* Checks the point is on the curve (invalid-curve attacks). */
    if (!EC_KEY_set_public_key_affine_coordinates(ec, x, y)) {
        *why = "EC point not on curve";
        goto out;
    }
    pkey = EVP_PKEY_new();
    if (pkey == NULL || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        *why = "out of memory";
        goto out;
    }
    ec = NULL;
out:
    EC_KEY_free(ec);
    BN_free(x);
    BN_free(y);
    return pkey;
}

static char *pem_of(EVP_PKEY *pkey, size_t *len)
{
    char *pem = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    const uint8_t *data;
    size_t dlen;
    if (b == NULL || !PEM_write_bio_PUBKEY(b, pkey) || !BIO_mem_contents(b, &data, &dlen)) {
        goto out;
    }
    pem = malloc(dlen + 1);
    if (pem == NULL) {
        goto out;
    }
    memcpy(pem, data, dlen);
    pem[dlen] = '\0';
    *len = dlen;
out:
    BIO_free(b);
    return pem;
}

/* Members whose presence means the JWK carries private or secret material
 * (RFC 7518 sections 6.2.2, 6.3.2, 6.4). Such a key is never used. */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

/* Fill *out from one JWK. Returns 0 when the key is usable, -1 to skip it
 * (why says which rule). Never fails the whole set. */
static int parse_key(json_t *jk, struct az_jwk *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(jk)) {
        *why = "key is not an object";
        return -1;
    }
    const char *kty = json_string_value(json_object_get(jk, "kty"));
    if (kty == NULL) {
        *why = "kty missing";
        return -1;
    }
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++) {
        if (json_object_get(jk, private_members[i]) != NULL) {
            *why = "key has private members";
            return -1;
        }
    }
    /* RFC 7517 section 4.2: "use" other than "sig" is not a signing key. */
    json_t *use = json_object_get(jk, "use");
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
        *why = "use is not sig";
        return -1;
    }
    /* RFC 7517 section 4.3: if key_ops is given it must allow "verify". */
    json_t *ops = json_object_get(jk, "key_ops");
    if (ops != NULL) {
        int verify = 0;
        size_t i;
        json_t *op;
        if (!json_is_array(ops)) {
            *why = "key_ops is not an array";
            return -1;
        }
        json_array_foreach (ops, i, op) {
            if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0) {
                verify = 1;
            }
        }
        if (!verify) {
            *why = "key_ops without verify";
            return -1;
        }
    }
    json_t *kid = json_object_get(jk, "kid");
    if (!json_is_string(kid) || json_string_length(kid) == 0 ||
        json_string_length(kid) >= sizeof(out->kid) ||
        strlen(json_string_value(kid)) != json_string_length(kid)) {
        *why = "kid missing, empty or too long";
        return -1;
    }
    enum az_alg alg = AZ_ALG_NONE;
    json_t *jalg = json_object_get(jk, "alg");
    if (jalg != NULL) {
        alg = az_alg_from_name(json_string_value(jalg));
        if (alg == AZ_ALG_NONE) {
            *why = "alg unsupported";
            return -1;
        }
    }

    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "RSA") == 0) {
        if (alg == AZ_ALG_NONE) {
            alg = AZ_ALG_RS256;
        }
        if (alg != AZ_ALG_RS256 && alg != AZ_ALG_RS384 && alg != AZ_ALG_RS512) {
            *why = "RSA key with a non-RSA alg";
            return -1;
        }
        pkey = rsa_key(jk, why);
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = json_string_value(json_object_get(jk, "crv"));
        enum az_alg want;
        int nid;
        size_t clen;
        if (crv != NULL && strcmp(crv, "P-256") == 0) {
            want = AZ_ALG_ES256;
            nid = NID_X9_62_prime256v1;
            clen = 32;
        } else if (crv != NULL && strcmp(crv, "P-384") == 0) {
            want = AZ_ALG_ES384;
            nid = NID_secp384r1;
            clen = 48;
        } else {
            *why = "EC curve unsupported";
            return -1;
        }
        /* The curve decides: ES256 only on P-256, ES384 only on P-384. */
        if (alg != AZ_ALG_NONE && alg != want) {
            *why = "EC alg does not match curve";
            return -1;
        }
        alg = want;
        pkey = ec_key(jk, nid, clen, why);
    } else {
        *why = "kty unsupported";
        return -1;
    }
    if (pkey == NULL) {
        return -1;
    }
    out->pem = pem_of(pkey, &out->pem_len);
    if (out->pem == NULL) {
        EVP_PKEY_free(pkey);
        *why = "out of memory";
        return -1;
    }
    out->pkey = pkey;
    out->alg = alg;
    memcpy(out->kid, json_string_value(kid), json_string_length(kid) + 1);
    return 0;
}

static void jwks_free(struct az_jwks *k)
{
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        EVP_PKEY_free(k->keys[i].pkey);
        free(k->keys[i].pem);
    }
    free(k);
}

struct az_jwks *az_jwks_parse(const char *json, size_t len, struct gh_err *err)
{
    struct az_jwks *k = NULL;
    struct az_jwks *ret = NULL;
    json_t *root = NULL;
    const char *why = NULL;

    if (json == NULL || len == 0) {
        gh_err_set(err, GH_R_TOKEN_NO_KEYS, "jwks: empty document");
        goto out;
    }
    if (len > JWKS_MAX_BYTES) {
        gh_err_set(err, GH_R_TOKEN_NO_KEYS, "jwks: document larger than %d bytes", JWKS_MAX_BYTES);
        goto out;
    }
    root = az_json_parse_object(json, len, AZ_JSON_MAX_DEPTH, &why);
    if (root == NULL) {
        gh_err_set(err, GH_R_TOKEN_NO_KEYS, "jwks: %s", why);
        goto out;
    }
    json_t *arr = json_object_get(root, "keys");
    if (!json_is_array(arr)) {
        gh_err_set(err, GH_R_TOKEN_NO_KEYS, "jwks: \"keys\" array missing");
        goto out;
    }
    size_t total = json_array_size(arr);
    size_t cap = total < JWKS_MAX_KEYS ? total : JWKS_MAX_KEYS;
    k = calloc(1, sizeof(*k) + cap * sizeof(k->keys[0]));
    if (k == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "jwks: out of memory");
        goto out;
    }
    k->refs = 1;
    for (size_t i = 0; i < total; i++) {
        if (k->n >= cap) {
            k->skipped++; /* beyond JWKS_MAX_KEYS: counted, not trusted */
            continue;
        }
        if (parse_key(json_array_get(arr, i), &k->keys[k->n], &why) != 0) {
            k->skipped++;
            continue;
        }
        for (size_t j = 0; j < k->n; j++) {
            if (strcmp(k->keys[j].kid, k->keys[k->n].kid) == 0) {
                gh_err_set(err, GH_R_TOKEN_NO_KEYS, "jwks: duplicate kid \"%.64s\"",
                           k->keys[j].kid);
                k->n++; /* so jwks_free releases it too */
                goto out;
            }
        }
        k->n++;
    }
    if (k->n == 0) {
        gh_err_set(err, GH_R_TOKEN_NO_KEYS, "jwks: no usable key (%zu skipped)", k->skipped);
        goto out;
    }
    ret = k;
    k = NULL;
out:
    jwks_free(k);
    json_decref(root);
    return ret;
}

struct az_jwks *az_jwks_ref(struct az_jwks *k)
{
    if (k != NULL) {
        __atomic_fetch_add(&k->refs, 1, __ATOMIC_RELAXED);
    }
    return k;
}

void az_jwks_unref(struct az_jwks *k)
{
    if (k != NULL && __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        jwks_free(k);
    }
}

size_t az_jwks_count(const struct az_jwks *k)
{
    return k != NULL ? k->n : 0;
}

size_t az_jwks_skipped(const struct az_jwks *k)
{
    return k != NULL ? k->skipped : 0;
}

const struct az_jwk *az_jwks_find(const struct az_jwks *keys, const char *kid)
{
    if (keys == NULL || kid == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < keys->n; i++) {
        if (strcmp(keys->keys[i].kid, kid) == 0) {
            return &keys->keys[i];
        }
    }
    return NULL;
}

int az_jwks_has_kid(const struct az_jwks *k, const char *kid)
{
    return az_jwks_find(k, kid) != NULL;
}
