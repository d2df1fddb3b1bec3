/*
 * authz_test_keys.h: test-only helpers shared by the test_authz_* token,
 * JWKS and assertion tests: generate RSA/EC keys with BoringSSL, publish
 * them as JWKs, and sign compact JWS tokens from literal header/payload JSON
 * (so a test can write exactly the hostile JSON it means: duplicates, deep
 * nesting, odd types). Header-only with static functions: each test
 * executable is one translation unit.
 */
#ifndef AUTHZ_TEST_KEYS_H
#define AUTHZ_TEST_KEYS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "authz/token_internal.h"
#include "gateway/base/util.h"

#define TK_UNUSED __attribute__((unused))

struct tkey {
    EVP_PKEY *pkey;
    enum az_alg alg; /* the alg the key is published with */
    char kid[64];
    char jwk[4096]; /* public JWK JSON */
};

static TK_UNUSED void tk_b64u(const void *in, size_t len, char *out)
{
    gh_b64url_encode(in, len, out);
}

static TK_UNUSED void tk_bn_b64u(const BIGNUM *bn, size_t pad, char *out)
{
    uint8_t buf[1024];
    size_t n = pad ? pad : BN_num_bytes(bn);
    if (n > sizeof(buf) || !BN_bn2bin_padded(buf, n, bn)) {
        abort();
    }
    tk_b64u(buf, n, out);
}

/* JWK members beyond kty/key material: alg_member NULL = no "alg". */
static TK_UNUSED void tk_rsa_jwk(struct tkey *k, const char *alg_member, const char *extra)
{
    const RSA *rsa = EVP_PKEY_get0_RSA(k->pkey);
    const BIGNUM *n, *e;
    char nb[1500], eb[16];
    RSA_get0_key(rsa, &n, &e, NULL);
    tk_bn_b64u(n, 0, nb);
    tk_bn_b64u(e, 0, eb);
    snprintf(k->jwk, sizeof(k->jwk),
             "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s%s%s%s}", k->kid, nb, eb,
             alg_member ? ",\"alg\":\"" : "", alg_member ? alg_member : "", alg_member ? "\"" : "",
             extra ? extra : "");
}

static TK_UNUSED void tk_ec_jwk(struct tkey *k, const char *alg_member, const char *extra)
{
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k->pkey);
    const EC_GROUP *g = EC_KEY_get0_group(ec);
    int nid = EC_GROUP_get_curve_name(g);
    size_t cl = nid == NID_X9_62_prime256v1 ? 32 : nid == NID_secp384r1 ? 48 : 66;
    const char *crv = cl == 32 ? "P-256" : cl == 48 ? "P-384" : "P-521";
    BIGNUM *x = BN_new(), *y = BN_new();
    char xb[128], yb[128];
    if (!EC_POINT_get_affine_coordinates_GFp(g, EC_KEY_get0_public_key(ec), x, y, NULL)) {
        abort();
    }
    tk_bn_b64u(x, cl, xb);
    tk_bn_b64u(y, cl, yb);
    BN_free(x);
    BN_free(y);
    snprintf(k->jwk, sizeof(k->jwk),
             "{\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s%s%s%s}",
             k->kid, crv, xb, yb, alg_member ? ",\"alg\":\"" : "", alg_member ? alg_member : "",
             alg_member ? "\"" : "", extra ? extra : "");
}

static TK_UNUSED void tk_rsa(struct tkey *k, int bits, const char *kid, enum az_alg alg,
                             int alg_member)
{
    memset(k, 0, sizeof(*k));
    RSA *rsa = RSA_new();
    BIGNUM *e = BN_new();
    if (rsa == NULL || e == NULL || !BN_set_word(e, RSA_F4) ||
        !RSA_generate_key_ex(rsa, bits, e, NULL)) {
        abort();
    }
    BN_free(e);
    k->pkey = EVP_PKEY_new();
    EVP_PKEY_assign_RSA(k->pkey, rsa);
    k->alg = alg;
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    tk_rsa_jwk(k, alg_member ? az_alg_name(alg) : NULL, NULL);
}

static TK_UNUSED void tk_ec(struct tkey *k, int nid, const char *kid, int alg_member)
{
    memset(k, 0, sizeof(*k));
    EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
    if (ec == NULL || !EC_KEY_generate_key(ec)) {
        abort();
    }
    k->pkey = EVP_PKEY_new();
    EVP_PKEY_assign_EC_KEY(k->pkey, ec);
    k->alg = nid == NID_X9_62_prime256v1 ? AZ_ALG_ES256
             : nid == NID_secp384r1      ? AZ_ALG_ES384
                                         : AZ_ALG_NONE;
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    tk_ec_jwk(k, alg_member ? az_alg_name(k->alg) : NULL, NULL);
}

static TK_UNUSED void tk_free(struct tkey *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

/* {"keys":[jwk, ...]} from n JWK strings into out. */
static TK_UNUSED void tk_jwks(char *out, size_t cap, const char *const *jwks, int n)
{
    size_t o = (size_t)snprintf(out, cap, "{\"keys\":[");
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", jwks[i]);
    }
    snprintf(out + o, cap - o, "]}");
}

/* Raw signature over msg with pkey as alg would (ES*: JOSE R||S). */
static TK_UNUSED size_t tk_sign_raw(EVP_PKEY *pkey, enum az_alg alg, const uint8_t *msg,
                                    size_t mlen, uint8_t *sig, size_t cap)
{
    const EVP_MD *md = alg == AZ_ALG_RS384 || alg == AZ_ALG_ES384 ? EVP_sha384()
                       : alg == AZ_ALG_RS512                      ? EVP_sha512()
                                                                  : EVP_sha256();
    if (alg == AZ_ALG_ES256 || alg == AZ_ALG_ES384) {
        uint8_t dg[64];
        unsigned dl;
        size_t cl = alg == AZ_ALG_ES256 ? 32 : 48;
        EVP_Digest(msg, mlen, dg, &dl, md, NULL);
        ECDSA_SIG *s = ECDSA_do_sign(dg, dl, EVP_PKEY_get0_EC_KEY(pkey));
        if (s == NULL || 2 * cl > cap || !BN_bn2bin_padded(sig, cl, ECDSA_SIG_get0_r(s)) ||
            !BN_bn2bin_padded(sig + cl, cl, ECDSA_SIG_get0_s(s))) {
            abort();
        }
        ECDSA_SIG_free(s);
        return 2 * cl;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = cap;
    if (EVP_DigestSignInit(ctx, NULL, md, NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &sl, msg, mlen) != 1) {
        abort();
    }
    EVP_MD_CTX_free(ctx);
    return sl;
}

/* "b64(hdr).b64(payload)" into out; returns its length. */
static TK_UNUSED size_t tk_signing_input(const char *hdr, const char *payload, char *out,
                                         size_t cap)
{
    size_t hl = strlen(hdr), pl = strlen(payload);
    if ((hl + pl) / 3 * 4 + 16 > cap) {
        abort();
    }
    size_t o = gh_b64url_encode((const uint8_t *)hdr, hl, out);
    out[o++] = '.';
    o += gh_b64url_encode((const uint8_t *)payload, pl, out + o);
    return o;
}

/* Compact JWS signed with k as alg (alg may differ from k->alg on purpose). */
static TK_UNUSED size_t tk_token_alg(char *out, size_t cap, const char *hdr, const char *payload,
                                     const struct tkey *k, enum az_alg alg)
{
    uint8_t sig[1100];
    size_t o = tk_signing_input(hdr, payload, out, cap);
    size_t sl = tk_sign_raw(k->pkey, alg, (const uint8_t *)out, o, sig, sizeof(sig));
    if (o + 1 + sl / 3 * 4 + 8 > cap) {
        abort();
    }
    out[o++] = '.';
    o += gh_b64url_encode(sig, sl, out + o);
    return o;
}

static TK_UNUSED size_t tk_token(char *out, size_t cap, const char *hdr, const char *payload,
                                 const struct tkey *k)
{
    return tk_token_alg(out, cap, hdr, payload, k, k->alg);
}

/* HS256 over the signing input, keyed with secret (e.g. a public key PEM). */
static TK_UNUSED size_t tk_token_hs256(char *out, size_t cap, const char *hdr, const char *payload,
                                       const void *secret, size_t slen)
{
    uint8_t mac[32];
    unsigned ml;
    size_t o = tk_signing_input(hdr, payload, out, cap);
    HMAC(EVP_sha256(), secret, slen, (const uint8_t *)out, o, mac, &ml);
    out[o++] = '.';
    o += gh_b64url_encode(mac, ml, out + o);
    return o;
}

/* PEM of the public key exactly as jwks.c produces it (PEM_write_bio_PUBKEY). */
static TK_UNUSED size_t tk_pubkey_pem(EVP_PKEY *pkey, char *out, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    const uint8_t *d;
    size_t l;
    if (!PEM_write_bio_PUBKEY(b, pkey) || !BIO_mem_contents(b, &d, &l) || l + 1 > cap) {
        abort();
    }
    memcpy(out, d, l);
    out[l] = '\0';
    BIO_free(b);
    return l;
}

#endif
