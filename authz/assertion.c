/*
 * assertion.c: the gateway's signed identity assertion for upstreams.
 *
 * Why it is built this way: plain identity headers (X-User, X-Groups) are
 * only as good as the network between gateway and upstream; a short-lived
 * ES256 JWT signed by the gateway lets an upstream check that the identity
 * really came from us, for its own route (aud), recently (iat/exp), bound to
 * which certificate (cnf). ES256 on P-256 because signatures are small (64
 * bytes) and fast to make per request; the key never leaves this process
 * except in the 0600 PEM file an operator chose. Signing uses BoringSSL
 * directly (ECDSA, then JOSE's raw R||S, RFC 7518 section 3.4); libjwt is not
 * needed to mint a token. The header is base64url-encoded once at load; per
 * request only the claims are serialized and signed.
 *
 * The verifier side (az_assertion_verify) reuses the access-token core with
 * its own typ, so an assertion can never be replayed to us as an access
 * token (typ differs) nor an access token to an upstream as an assertion.
 */
#include "authz/assertion.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "authz/token_internal.h"
#include "gateway/base/util.h"

#define KEY_FILE_MAX 16384
#define ASSERTION_SKEW 60

struct az_signer {
    EVP_PKEY *pkey;
    const EC_KEY *ec; /* borrowed from pkey */
    char kid[48];
    char hdr_b64[256]; /* base64url of the fixed header JSON */
    size_t hdr_b64_len;
    char jwks[512];
};

static EVP_PKEY *generate_key(void)
{
    EVP_PKEY *pkey = NULL;
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    if (ec == NULL || !EC_KEY_generate_key(ec)) {
        goto out;
    }
    pkey = EVP_PKEY_new();
    if (pkey == NULL || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        goto out;
    }
    ec = NULL;
out:
    EC_KEY_free(ec);
    return pkey;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Create path exclusively with mode 0600 and write pkey as PKCS#8 PEM. */
static int save_key(const char *path, EVP_PKEY *pkey, struct gh_err *err)
{
    int rc = -1;
    int fd = -1;
    const uint8_t *data = NULL;
    size_t len = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL) ||
        !BIO_mem_contents(b, &data, &len)) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: cannot encode");
        goto out;
    }
    /* O_EXCL: never overwrite, never follow a planted symlink. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key %s: cannot create: %s", path,
                   strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key %s: write failed: %s", path, strerror(errno));
        close(fd);
        fd = -1;
        unlink(path);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0 && close(fd) != 0 && rc == 0) {
        rc = gh_err_set(err, GH_R_INTERNAL, "assertion key %s: close failed", path);
        unlink(path);
    }
    if (data != NULL) {
        OPENSSL_cleanse((void *)data, len);
    }
    BIO_free(b);
    return rc;
}

static EVP_PKEY *load_key(const char *path, int fd, struct gh_err *err)
{
    EVP_PKEY *pkey = NULL;
    BIO *b = NULL;
    uint8_t buf[KEY_FILE_MAX];
    size_t n = 0;
    struct stat st;

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key %s: not a regular file", path);
        goto out;
    }
    /* Like ssh: a private key others can read is already compromised. */
    if ((st.st_mode & 077) != 0) {
        gh_err_set(err, GH_R_INTERNAL,
                   "assertion key %s: mode %03o, must not be accessible to group/others "
                   "(chmod 600)",
                   path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key %s: size out of range", path);
        goto out;
    }
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            gh_err_set(err, GH_R_INTERNAL, "assertion key %s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    b = BIO_new_mem_buf(buf, n);
    if (b == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: out of memory");
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    if (pkey == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key %s: not a PEM private key", path);
        goto out;
    }
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(pkey);
    if (ec == NULL || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key %s: not an EC P-256 key", path);
        EVP_PKEY_free(pkey);
        pkey = NULL;
        goto out;
    }
out:
    BIO_free(b);
    OPENSSL_cleanse(buf, n);
    return pkey;
}

/* kid (RFC 7638 thumbprint), header and JWKS from the public key. */
static int derive_public(struct az_signer *s, struct gh_err *err)
{
    uint8_t xb[32];
    uint8_t yb[32];
    char x[48];
    char y[48];
    char thumb_in[160];
    uint8_t md[SHA256_DIGEST_LENGTH];
    int rc = -1;
    BIGNUM *bx = BN_new();
    BIGNUM *by = BN_new();
    const EC_POINT *pub = EC_KEY_get0_public_key(s->ec);

    if (bx == NULL || by == NULL || pub == NULL ||
        !EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(s->ec), pub, bx, by, NULL) ||
        !BN_bn2bin_padded(xb, sizeof(xb), bx) || !BN_bn2bin_padded(yb, sizeof(yb), by)) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: cannot read public point");
        goto out;
    }
    gh_b64url_encode(xb, sizeof(xb), x);
    gh_b64url_encode(yb, sizeof(yb), y);
    /* RFC 7638 section 3.2: required members only, lexicographic order, no
     * whitespace. */
    int k = snprintf(thumb_in, sizeof(thumb_in),
                     "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    if (k < 0 || (size_t)k >= sizeof(thumb_in)) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: thumbprint overflow");
        goto out;
    }
    SHA256((const uint8_t *)thumb_in, (size_t)k, md);
    gh_b64url_encode(md, sizeof(md), s->kid);

    char hdr[160];
    k = snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"%s\",\"kid\":\"%s\"}",
                 AZ_ASSERTION_TYP, s->kid);
    if (k < 0 || (size_t)k >= sizeof(hdr)) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: header overflow");
        goto out;
    }
    s->hdr_b64_len = gh_b64url_encode((const uint8_t *)hdr, (size_t)k, s->hdr_b64);

    k = snprintf(s->jwks, sizeof(s->jwks),
                 "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                 "\"kid\":\"%s\",\"alg\":\"ES256\",\"use\":\"sig\"}]}",
                 x, y, s->kid);
    if (k < 0 || (size_t)k >= sizeof(s->jwks)) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: jwks overflow");
        goto out;
    }
    rc = 0;
out:
    BN_free(bx);
    BN_free(by);
    return rc;
}

struct az_signer *az_signer_load_or_create(const char *pem_path, struct gh_err *err)
{
    struct az_signer *s = calloc(1, sizeof(*s));
    struct az_signer *ret = NULL;
    if (s == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "assertion key: out of memory");
        return NULL;
    }
    if (pem_path == NULL) {
        s->pkey = generate_key();
        if (s->pkey == NULL) {
            gh_err_set(err, GH_R_INTERNAL, "assertion key: generation failed");
            goto out;
        }
    } else {
        int fd = open(pem_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            s->pkey = load_key(pem_path, fd, err);
            close(fd);
            if (s->pkey == NULL) {
                goto out;
            }
        } else if (errno == ENOENT) {
            s->pkey = generate_key();
            if (s->pkey == NULL) {
                gh_err_set(err, GH_R_INTERNAL, "assertion key: generation failed");
                goto out;
            }
            if (save_key(pem_path, s->pkey, err) != 0) {
                goto out;
            }
        } else {
            gh_err_set(err, GH_R_INTERNAL, "assertion key %s: %s", pem_path, strerror(errno));
            goto out;
        }
    }
    s->ec = EVP_PKEY_get0_EC_KEY(s->pkey);
    if (s->ec == NULL || derive_public(s, err) != 0) {
        goto out;
    }
    ret = s;
    s = NULL;
out:
    az_signer_free(s);
    return ret;
}

void az_signer_free(struct az_signer *s)
{
    if (s == NULL) {
        return;
    }
    EVP_PKEY_free(s->pkey);
    free(s);
}

const char *az_signer_jwks(const struct az_signer *s)
{
    return s != NULL ? s->jwks : NULL;
}

const char *az_signer_kid(const struct az_signer *s)
{
    return s != NULL ? s->kid : NULL;
}

static json_t *build_claims(const char *route_id, const char *gateway_iss, const struct az_token *t,
                            const char *cert_thumb_b64u, int binding_ok, const char *session_id,
                            int64_t now_s, int ttl_s)
{
    uint8_t rnd[16];
    char jti[32];
    json_t *c = json_object();
    json_t *ret = NULL;
    if (c == NULL) {
        return NULL;
    }
    gh_random(rnd, sizeof(rnd));
    gh_b64url_encode(rnd, sizeof(rnd), jti);
    int bad = 0;
    bad |= json_object_set_new(c, "iss", json_string(gateway_iss));
    bad |= json_object_set_new(c, "aud", json_string(route_id));
    if (t != NULL) {
        if (t->sub[0] != '\0') {
            bad |= json_object_set_new(c, "sub", json_string(t->sub));
        }
        if (t->n_groups > 0) {
            json_t *g = json_array();
            for (int i = 0; g != NULL && i < t->n_groups; i++) {
                bad |= json_array_append_new(g, json_string(t->groups[i]));
            }
            bad |= json_object_set_new(c, "groups", g);
        }
        if (t->email[0] != '\0') {
            bad |= json_object_set_new(c, "email", json_string(t->email));
        }
    }
    if (cert_thumb_b64u != NULL && cert_thumb_b64u[0] != '\0') {
        json_t *cnf = json_object();
        if (cnf != NULL) {
            bad |= json_object_set_new(cnf, "x5t#S256", json_string(cert_thumb_b64u));
        }
        bad |= json_object_set_new(c, "cnf", cnf);
    }
    bad |= json_object_set_new(c, "binding", json_string(binding_ok ? "verified" : "not_required"));
    if (session_id != NULL && session_id[0] != '\0') {
        bad |= json_object_set_new(c, "sid", json_string(session_id));
    }
    bad |= json_object_set_new(c, "iat", json_integer((json_int_t)now_s));
    bad |= json_object_set_new(c, "exp", json_integer((json_int_t)(now_s + ttl_s)));
    bad |= json_object_set_new(c, "jti", json_string(jti));
    if (bad == 0) {
        ret = c;
        c = NULL;
    }
    json_decref(c);
    return ret;
}

int az_assertion_sign(const struct az_signer *s, const char *route_id, const char *gateway_iss,
                      const struct az_token *t, const char *cert_thumb_b64u, int binding_ok,
                      const char *session_id, int64_t now_s, int ttl_s, char *out, size_t out_len)
{
    int rc = -1;
    json_t *c = NULL;
    char *cj = NULL;
    ECDSA_SIG *sig = NULL;

    if (out != NULL && out_len > 0) {
        out[0] = '\0';
    }
    if (s == NULL || route_id == NULL || gateway_iss == NULL || out == NULL || ttl_s < 1) {
        goto out;
    }
    c = build_claims(route_id, gateway_iss, t, cert_thumb_b64u, binding_ok, session_id, now_s,
                     ttl_s);
    if (c == NULL) {
        goto out;
    }
    cj = json_dumps(c, JSON_COMPACT);
    if (cj == NULL) {
        goto out;
    }
    size_t cl = strlen(cj);
    size_t pay_b64 = (cl * 4 + 2) / 3; /* unpadded base64url length */
    /* header . payload . signature(86) NUL */
    if (s->hdr_b64_len + 1 + pay_b64 + 1 + 86 + 1 > out_len) {
        goto out;
    }
    size_t o = s->hdr_b64_len;
    memcpy(out, s->hdr_b64, o);
    out[o++] = '.';
    o += gh_b64url_encode((const uint8_t *)cj, cl, out + o);

    uint8_t md[SHA256_DIGEST_LENGTH];
    uint8_t raw[64];
    SHA256((const uint8_t *)out, o, md);
    sig = ECDSA_do_sign(md, sizeof(md), s->ec);
    if (sig == NULL || !BN_bn2bin_padded(raw, 32, ECDSA_SIG_get0_r(sig)) ||
        !BN_bn2bin_padded(raw + 32, 32, ECDSA_SIG_get0_s(sig))) {
        out[0] = '\0';
        goto out;
    }
    out[o++] = '.';
    gh_b64url_encode(raw, sizeof(raw), out + o);
    rc = 0;
out:
    ECDSA_SIG_free(sig);
    free(cj);
    json_decref(c);
    return rc;
}

enum gh_reason az_assertion_verify(const struct az_jwks *keys, const char *gateway_iss,
                                   const char *route_id, const char *tok, size_t len, int64_t now_s,
                                   struct az_token **out, struct gh_err *err)
{
    static const struct az_verify_opts opts = {
        .typ = AZ_ASSERTION_TYP,
        .use_libjwt = 0, /* libjwt 1.10 refuses every typ but "JWT" */
        .require_sub = 0,
        .require_cnf = 0,
    };
    struct az_issuer iss;
    struct az_token *t = NULL;
    enum gh_reason r;

    if (out != NULL) {
        *out = NULL;
    }
    if (gateway_iss == NULL || route_id == NULL || out == NULL ||
        strlen(gateway_iss) >= sizeof(iss.issuer) || strlen(route_id) >= sizeof(iss.audiences[0])) {
        gh_err_set(err, GH_R_INTERNAL, "assertion: bad arguments");
        return GH_R_INTERNAL;
    }
    memset(&iss, 0, sizeof(iss));
    memcpy(iss.issuer, gateway_iss, strlen(gateway_iss) + 1);
    memcpy(iss.audiences[0], route_id, strlen(route_id) + 1);
    iss.n_aud = 1;
    iss.skew_s = ASSERTION_SKEW;

    r = az_token_verify_opts(&iss, keys, tok, len, &opts, &t, err);
    if (r != GH_R_ALLOW) {
        return r;
    }
    const char *b = json_string_value(json_object_get(t->claims, "binding"));
    /* "verified" without the certificate it was verified against is a lie. */
    if (b == NULL || (strcmp(b, "verified") != 0 && strcmp(b, "not_required") != 0) ||
        (strcmp(b, "verified") == 0 && t->cnf_x5t_s256[0] == '\0')) {
        gh_err_set(err, GH_R_TOKEN_BAD_CLAIMS, "assertion: binding claim missing or unknown");
        az_token_unref(t);
        return GH_R_TOKEN_BAD_CLAIMS;
    }
    r = az_token_check_time(t, &iss, now_s);
    if (r != GH_R_ALLOW) {
        gh_err_set(err, r, "assertion: %s", gh_reason_name(r));
        az_token_unref(t);
        return r;
    }
    *out = t;
    return GH_R_ALLOW;
}
