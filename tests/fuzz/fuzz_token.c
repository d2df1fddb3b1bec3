/*
 * fuzz_token.c: libFuzzer target for the access-token verifier.
 *
 * Two modes, chosen by the first byte:
 *   - anything not starting with '{': the input is the token bytes (and,
 *     independently, an Authorization header value), verified against a
 *     fixed key set (RSA-2048, P-256, P-384; public keys only, so mutations
 *     of the seed tokens in tests/fuzz/corpus/token/ exercise structure,
 *     header and signature checks);
 *   - input starting with '{': the input is a claims payload; the target
 *     signs it (ES256, a key generated at start-up) so the claims parser is
 *     fuzzed behind a valid signature.
 * Every outcome must be a reason code with no crash, leak or sanitizer
 * report; an accepted token must have passed every rule, which the target
 * re-checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/sha.h>

#include "authz/token_internal.h"
#include "gateway/base/util.h"

static const char fixed_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"fz-rsa\",\"n\":\"3XLDt00vUT_B2PM6TQ32-59iFJOiG"
    "GcAyHHAz_-kmdnpCiBRseLpH1RJ6So7z5EFYDDhRwx-yHBbVqa6V0ybXjPqKPnCtM8A8_6WfE2dcjVoud5Mi"
    "TKaqdYQmuzL1_momCPk7kVvP59JK81FfR01Be645zA53KYEJW01p7xzQa0Urh_4I6t3o_r-nezzuxabV_u5W"
    "3oyVJXWiBaX1oJ7-4MwZDez1MyRaPMvBLqgHVd9xIkU5oKczprEHIOG8di57fpELSQz0FmnoUvzAdtglwlKf"
    "abyIEGo3eQZ90d8IPgB8_oZZXxgZuQsKpbgRoQoQIhrrWdrCB4sX665wJ9gCw\",\"e\":\"AQAB\"},{\"k"
    "ty\":\"EC\",\"kid\":\"fz-p256\",\"crv\":\"P-256\",\"x\":\"gnQJldXPfj8j4J0js2VMfeQala"
    "idUTD75Yvc1AhN_wQ\",\"y\":\"WQIWKTxD7kXvqcvndp3qfrG0CLt1rC9BEOSkggo0neM\",\"alg\":\""
    "ES256\"},{\"kty\":\"EC\",\"kid\":\"fz-p384\",\"crv\":\"P-384\",\"x\":\"K-0ozKXiRNja0"
    "T24tqJX1slVL7Iqj6G3RL-qntDfE8779BocRdDnD31BpFYaaY9F\",\"y\":\"gRrhRBM6OQiePL6MfSnTgF"
    "3rpQNba-vFsMdl6CQyXt-2cetj_10YXey5yeUwUK0t\",\"alg\":\"ES384\"}]}";

static struct az_jwks *keys;
static struct az_jwks *gen_keys;
static EC_KEY *gen;
static struct az_issuer iss;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void init(void)
{
    keys = az_jwks_parse(fixed_jwks, sizeof(fixed_jwks) - 1, NULL);
    if (keys == NULL || az_jwks_count(keys) != 3) {
        abort();
    }
    /* The signing key for payload mode: generated here, never stored. */
    uint8_t xb[32], yb[32];
    char x[48], y[48], doc[512];
    BIGNUM *bx = BN_new(), *by = BN_new();
    gen = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    if (gen == NULL || !EC_KEY_generate_key(gen) ||
        !EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(gen), EC_KEY_get0_public_key(gen),
                                             bx, by, NULL) ||
        !BN_bn2bin_padded(xb, 32, bx) || !BN_bn2bin_padded(yb, 32, by)) {
        abort();
    }
    BN_free(bx);
    BN_free(by);
    gh_b64url_encode(xb, 32, x);
    gh_b64url_encode(yb, 32, y);
    snprintf(doc, sizeof(doc),
             "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"fz-gen\",\"crv\":\"P-256\",\"x\":\"%s\","
             "\"y\":\"%s\"}]}",
             x, y);
    gen_keys = az_jwks_parse(doc, strlen(doc), NULL);
    if (gen_keys == NULL) {
        abort();
    }
    memset(&iss, 0, sizeof(iss));
    strcpy(iss.issuer, "https://idp.fuzz");
    strcpy(iss.audiences[0], "gatehouse");
    iss.n_aud = 1;
    iss.skew_s = 60;
    iss.allow_jwt_typ = 1; /* also reach the libjwt cross-check */
}

static void check(const struct az_jwks *ks, const char *tok, size_t len)
{
    struct az_token *t = NULL;
    struct gh_err err;
    enum gh_reason r = az_token_verify(&iss, ks, tok, len, &t, &err);
    if (r == GH_R_ALLOW) {
        uint8_t c[32] = {0};
        if (t == NULL || t->exp <= 0 || t->sub[0] == '\0' || strlen(t->cnf_x5t_s256) != 43 ||
            strcmp(t->iss, iss.issuer) != 0 || len > AZ_TOKEN_MAX_LEN ||
            t->n_groups > AZ_MAX_GROUPS) {
            abort();
        }
        (void)az_token_check_time(t, &iss, 1700000000);
        (void)az_token_check_binding(t, c);
        az_token_unref(t);
    } else if (t != NULL) {
        abort();
    }
}

/* Payload mode: "hdr.b64(payload).sig" signed with gen. */
static void signed_payload(const uint8_t *data, size_t size)
{
    static const char hdr[] = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImZ6LWdlbiJ9";
    static char tok[AZ_TOKEN_MAX_LEN * 2];
    if (size > 6000) {
        return;
    }
    size_t o = sizeof(hdr) - 1;
    memcpy(tok, hdr, o);
    tok[o++] = '.';
    o += gh_b64url_encode(data, size, tok + o);
    uint8_t md[32], raw[64];
    SHA256((const uint8_t *)tok, o, md);
    ECDSA_SIG *sig = ECDSA_do_sign(md, sizeof(md), gen);
    if (sig == NULL || !BN_bn2bin_padded(raw, 32, ECDSA_SIG_get0_r(sig)) ||
        !BN_bn2bin_padded(raw + 32, 32, ECDSA_SIG_get0_s(sig))) {
        abort();
    }
    ECDSA_SIG_free(sig);
    tok[o++] = '.';
    o += gh_b64url_encode(raw, sizeof(raw), tok + o);
    check(gen_keys, tok, o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keys == NULL) {
        init();
    }
    if (size > 0 && data[0] == '{') {
        signed_payload(data, size);
        return 0;
    }
    check(keys, (const char *)data, size);

    const char *v = (const char *)data;
    const char *tok = NULL;
    size_t tl = 0;
    if (az_bearer_extract(&v, &size, 1, &tok, &tl) == GH_R_ALLOW) {
        if (tok < v || tok + tl > v + size || tl == 0 || tl > AZ_TOKEN_MAX_LEN) {
            abort();
        }
    }
    return 0;
}
