/*
 * devissuer.c: the demo's development issuer -- just enough of an OAuth 2.0
 * authorization server for the gateway to do real work against: discovery,
 * a JWKS, and certificate-bound access tokens from the client_credentials
 * grant with mTLS client authentication (RFC 8705 section 2.1,
 * tls_client_auth).
 *
 * Why it exists: a newcomer should see the whole zero-trust flow -- device
 * certificate, bound token, policy, revocation -- in five minutes, without
 * installing and configuring a real identity provider. Why it is safe to
 * ship: it is only ever started by `gatehouse demo` (gw_demo_main), there is
 * no configuration key for it, and it logs loudly that it is development
 * only. It trusts one thing, "this TLS client holds a certificate from the
 * demo client CA", and maps the certificate's CN to a fixed user table.
 *
 * Tokens are built and signed here with BoringSSL directly (ECDSA P-256 over
 * SHA-256; the DER signature converted to the JOSE raw R||S form of RFC 7518
 * section 3.4), the claims with jansson. The token shape is the one the
 * gateway checks (RFC 9068): header typ "at+jwt" and kid; claims iss, sub,
 * aud, client_id, iat, exp, jti, groups, email, cnf.x5t#S256.
 */
#include "gateway/devissuer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/demosrv.h"

#define KEY_FILE_MAX 16384
#define FORM_MAX_PARAMS 16
#define FORM_MAX_NAME 64
#define FORM_MAX_VALUE 512
#define TOKEN_MAX 4096

/* The development user table: the certificate CN is the subject. */
struct dev_user {
    const char *sub;
    const char *email;
    const char *groups[4]; /* NULL-terminated */
};

static const struct dev_user dev_users[] = {
    {"alice", "alice@example.com", {"engineering", NULL}},
    {"bob", "bob@example.com", {"sales", NULL}},
};

struct gw_devissuer {
    char url[96];
    char audience[256];
    int ttl_s;
    EC_KEY *ec;
    char kid[48];
    char hdr_b64[160]; /* base64url of the constant JOSE header */
    char jwks[512];
    char discovery[1536];
    struct gw_demosrv *srv;
};

/* ---- keys ----------------------------------------------------------------- */

static EC_KEY *load_signing_key(const char *path, struct gh_err *err)
{
    EC_KEY *ec = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *b = NULL;
    uint8_t buf[KEY_FILE_MAX];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: signing key %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        gh_err_set(err, GH_R_INTERNAL,
                   "dev issuer: signing key %s must be a regular file with mode 0600", path);
        goto out;
    }
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
    }
    b = BIO_new_mem_buf(buf, n);
    pkey = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    if (pkey == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: %s is not a PEM private key", path);
        goto out;
    }
    ec = EVP_PKEY_get1_EC_KEY(pkey);
    if (ec == NULL || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: %s is not an EC P-256 key", path);
        EC_KEY_free(ec);
        ec = NULL;
    }
out:
    EVP_PKEY_free(pkey);
    BIO_free(b);
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return ec;
}

/* kid = RFC 7638 JWK thumbprint; the JWKS and the constant JOSE header. */
static int derive_public(struct gw_devissuer *d, struct gh_err *err)
{
    uint8_t xb[32], yb[32], md[SHA256_DIGEST_LENGTH];
    char x[48], y[48], buf[256];
    int rc = -1;
    BIGNUM *bx = BN_new();
    BIGNUM *by = BN_new();
    const EC_POINT *pub = EC_KEY_get0_public_key(d->ec);
    if (bx == NULL || by == NULL || pub == NULL ||
        !EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(d->ec), pub, bx, by, NULL) ||
        !BN_bn2bin_padded(xb, sizeof(xb), bx) || !BN_bn2bin_padded(yb, sizeof(yb), by)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: cannot read the public key");
        goto out;
    }
    gh_b64url_encode(xb, sizeof(xb), x);
    gh_b64url_encode(yb, sizeof(yb), y);
    /* RFC 7638 3.2: required members, lexicographic order, no whitespace. */
    int k = snprintf(buf, sizeof(buf),
                     "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    if (k < 0 || (size_t)k >= sizeof(buf)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: thumbprint overflow");
        goto out;
    }
    SHA256((const uint8_t *)buf, (size_t)k, md);
    gh_b64url_encode(md, sizeof(md), d->kid);
    k = snprintf(buf, sizeof(buf), "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", d->kid);
    if (k < 0 || (size_t)k >= sizeof(buf)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: header overflow");
        goto out;
    }
    gh_b64url_encode((const uint8_t *)buf, (size_t)k, d->hdr_b64);
    k = snprintf(d->jwks, sizeof(d->jwks),
                 "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\","
                 "\"kid\":\"%s\",\"alg\":\"ES256\",\"use\":\"sig\"}]}",
                 x, y, d->kid);
    if (k < 0 || (size_t)k >= sizeof(d->jwks)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: jwks overflow");
        goto out;
    }
    rc = 0;
out:
    BN_free(bx);
    BN_free(by);
    return rc;
}

/* ---- tokens --------------------------------------------------------------- */

static const struct dev_user *find_user(const char *sub)
{
    for (size_t i = 0; i < sizeof(dev_users) / sizeof(dev_users[0]); i++) {
        if (strcmp(dev_users[i].sub, sub) == 0) {
            return &dev_users[i];
        }
    }
    return NULL;
}

int gw_devissuer_mint(const struct gw_devissuer *d, const char *sub, const char *x5t_b64u,
                      int64_t now_s, char *out, size_t out_len)
{
    int rc = -1;
    json_t *claims = NULL;
    char *payload = NULL;
    ECDSA_SIG *sig = NULL;
    char *input = NULL;
    const struct dev_user *u = find_user(sub);

    if (out_len > 0) {
        out[0] = '\0';
    }
    if (u == NULL || x5t_b64u == NULL || strlen(x5t_b64u) != 43) {
        goto out;
    }
    uint8_t rnd[16];
    char jti[33];
    gh_random(rnd, sizeof(rnd));
    gh_hex(rnd, sizeof(rnd), jti);
    json_t *groups = json_array();
    for (int i = 0; groups != NULL && u->groups[i] != NULL; i++) {
        json_array_append_new(groups, json_string(u->groups[i]));
    }
    claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:s, s:{s:s}}", "iss", d->url,
                       "sub", u->sub, "aud", d->audience, "client_id", u->sub, "iat",
                       (json_int_t)now_s, "exp", (json_int_t)(now_s + d->ttl_s), "jti", jti,
                       "groups", groups, "email", u->email, "cnf", "x5t#S256", x5t_b64u);
    if (claims == NULL) {
        goto out;
    }
    payload = json_dumps(claims, JSON_COMPACT);
    if (payload == NULL) {
        goto out;
    }
    size_t pl = strlen(payload);
    size_t hl = strlen(d->hdr_b64);
    size_t need = hl + 1 + (pl + 2) / 3 * 4 + 1 + 88 + 1;
    if (need > out_len || need > TOKEN_MAX) {
        goto out;
    }
    input = malloc(need);
    if (input == NULL) {
        goto out;
    }
    memcpy(input, d->hdr_b64, hl);
    input[hl] = '.';
    size_t in_len = hl + 1 + gh_b64url_encode((const uint8_t *)payload, pl, input + hl + 1);

    /* JWS ES256 (RFC 7518 3.4): ECDSA P-256 over SHA-256 of the signing
     * input; the signature is R || S, each left-padded to 32 bytes. */
    uint8_t md[SHA256_DIGEST_LENGTH];
    uint8_t rs[64];
    SHA256((const uint8_t *)input, in_len, md);
    sig = ECDSA_do_sign(md, sizeof(md), d->ec);
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;
    if (sig == NULL) {
        goto out;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (!BN_bn2bin_padded(rs, 32, r) || !BN_bn2bin_padded(rs + 32, 32, s)) {
        goto out;
    }
    memcpy(out, input, in_len);
    out[in_len] = '.';
    size_t sl = gh_b64url_encode(rs, sizeof(rs), out + in_len + 1);
    out[in_len + 1 + sl] = '\0';
    rc = 0;
out:
    ECDSA_SIG_free(sig);
    free(input);
    free(payload);
    json_decref(claims);
    return rc;
}

/* ---- the token endpoint's form (application/x-www-form-urlencoded) ---------- */

struct form {
    int n;
    char name[FORM_MAX_PARAMS][FORM_MAX_NAME + 1];
    char value[FORM_MAX_PARAMS][FORM_MAX_VALUE + 1];
};

/* Percent-decode s[0..n) into out (max cap bytes + NUL); '+' is a space.
 * Refuses bad escapes, NUL and control characters. */
static int form_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            int hi = gh_hexval(s[i + 1]);
            int lo = gh_hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch < 0x20 || ch == 0x7f || o >= cap) {
            return -1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

/* 0, or -1 with *why for a malformed body, a repeated parameter (RFC 6749
 * section 3.2: parameters MUST NOT be included more than once) or too many. */
static int form_parse(const char *body, size_t len, struct form *f, const char **why)
{
    f->n = 0;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&') {
            end++;
        }
        if (end > i) {
            const char *eq = memchr(body + i, '=', end - i);
            size_t nl = eq != NULL ? (size_t)(eq - (body + i)) : end - i;
            const char *v = eq != NULL ? eq + 1 : body + end;
            size_t vl = eq != NULL ? (size_t)(body + end - v) : 0;
            if (f->n >= FORM_MAX_PARAMS) {
                *why = "too many parameters";
                return -1;
            }
            if (form_decode(body + i, nl, f->name[f->n], FORM_MAX_NAME) != 0 ||
                form_decode(v, vl, f->value[f->n], FORM_MAX_VALUE) != 0) {
                *why = "malformed or oversized parameter";
                return -1;
            }
            for (int k = 0; k < f->n; k++) {
                if (strcmp(f->name[k], f->name[f->n]) == 0) {
                    *why = "repeated parameter";
                    return -1;
                }
            }
            f->n++;
        }
        i = end + 1;
    }
    return 0;
}

static const char *form_get(const struct form *f, const char *name)
{
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->name[i], name) == 0) {
            return f->value[i];
        }
    }
    return NULL;
}

/* ---- HTTP ------------------------------------------------------------------- */

static void oauth_error(struct gw_demosrv_resp *resp, int status, const char *error,
                        const char *desc)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"error\":\"%s\",\"error_description\":\"%s\"}\n", error, desc);
    gw_demosrv_resp_set(resp, status, "application/json", body);
    snprintf(resp->extra_headers, sizeof(resp->extra_headers),
             "Cache-Control: no-store\r\nPragma: no-cache\r\n");
}

static int header_value(const struct gw_demosrv_req *req, const char *name, const char **v,
                        size_t *vl)
{
    for (int i = 0; i < req->rh->n_hdrs; i++) {
        const struct gw_hdr *h = &req->rh->hdrs[i];
        if (gw_http_name_is(req->head, h, name)) {
            *v = req->head + h->val_off;
            *vl = h->val_len;
            return 0;
        }
    }
    return -1;
}

int gw_devissuer_check_request(const char *body, size_t len, const char *cert_cn, int *status,
                               const char **error, const char **desc)
{
    int rc = -1;
    *status = 400;
    *error = "invalid_request";
    *desc = "";
    struct form *f = malloc(sizeof(*f));
    if (f == NULL) {
        *status = 500;
        *error = "server_error";
        *desc = "out of memory";
        return -1;
    }
    if (form_parse(body, len, f, desc) != 0) {
        goto out;
    }
    const char *grant = form_get(f, "grant_type");
    if (grant == NULL) {
        *desc = "grant_type is required";
        goto out;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        *error = "unsupported_grant_type";
        *desc = "the development issuer only knows client_credentials";
        goto out;
    }
    /* RFC 8705 2.1: with tls_client_auth the certificate authenticates the
     * client; a client_id naming someone else is refused. */
    const char *client_id = form_get(f, "client_id");
    if (client_id != NULL && strcmp(client_id, cert_cn) != 0) {
        *status = 401;
        *error = "invalid_client";
        *desc = "client_id does not match the client certificate";
        goto out;
    }
    if (find_user(cert_cn) == NULL) {
        *status = 401;
        *error = "invalid_client";
        *desc = "no development user for this client certificate";
        goto out;
    }
    *status = 200;
    *error = NULL;
    *desc = NULL;
    rc = 0;
out:
    free(f);
    return rc;
}

static void token_endpoint(struct gw_devissuer *d, const struct gw_demosrv_req *req,
                           struct gw_demosrv_resp *resp)
{
    static const char form_type[] = "application/x-www-form-urlencoded";
    const char *ct = NULL;
    size_t ctl = 0;
    if (header_value(req, "content-type", &ct, &ctl) != 0 || ctl < sizeof(form_type) - 1 ||
        strncasecmp(ct, form_type, sizeof(form_type) - 1) != 0) {
        oauth_error(resp, 400, "invalid_request",
                    "the body must be application/x-www-form-urlencoded");
        return;
    }
    const char *cn = req->cert->cn;
    int status = 500;
    const char *error = NULL;
    const char *desc = NULL;
    if (gw_devissuer_check_request(req->body, req->body_len, cn, &status, &error, &desc) != 0) {
        GH_WARN("dev-issuer: %s (CN '%s'): token refused: %s: %s", req->peer, cn, error, desc);
        oauth_error(resp, status, error, desc);
        return;
    }
    char tok[TOKEN_MAX];
    if (gw_devissuer_mint(d, cn, req->cert->thumbprint_b64u, gh_now_us() / 1000000, tok,
                          sizeof(tok)) != 0) {
        oauth_error(resp, 500, "server_error", "cannot sign the token");
        return;
    }
    char hp[13];
    gh_hash_prefix(tok, strlen(tok), hp);
    GH_INFO("dev-issuer: issued a token for sub=%s bound to x5t#S256=%s (token sha256 %s); "
            "DEVELOPMENT ONLY",
            cn, req->cert->thumbprint_b64u, hp);
    char body[TOKEN_MAX + 128];
    snprintf(body, sizeof(body),
             "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%d}\n", tok,
             d->ttl_s);
    OPENSSL_cleanse(tok, sizeof(tok));
    gw_demosrv_resp_set(resp, 200, "application/json", body);
    OPENSSL_cleanse(body, sizeof(body));
    snprintf(resp->extra_headers, sizeof(resp->extra_headers),
             "Cache-Control: no-store\r\nPragma: no-cache\r\n");
}

static void handle(void *arg, const struct gw_demosrv_req *req, struct gw_demosrv_resp *resp)
{
    struct gw_devissuer *d = arg;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->path, "/.well-known/openid-configuration") == 0 ||
        strcmp(req->path, "/.well-known/oauth-authorization-server") == 0) {
        if (!get) {
            oauth_error(resp, 405, "invalid_request", "use GET");
            return;
        }
        gw_demosrv_resp_set(resp, 200, "application/json", d->discovery);
        return;
    }
    if (strcmp(req->path, "/jwks.json") == 0) {
        if (!get) {
            oauth_error(resp, 405, "invalid_request", "use GET");
            return;
        }
        gw_demosrv_resp_set(resp, 200, "application/jwk-set+json", d->jwks);
        return;
    }
    if (strcmp(req->path, "/token") == 0) {
        if (strcmp(req->method, "POST") != 0) {
            oauth_error(resp, 405, "invalid_request", "use POST");
            return;
        }
        token_endpoint(d, req, resp);
        return;
    }
    oauth_error(resp, 404, "not_found",
                "this development issuer serves /.well-known/openid-configuration, "
                "/jwks.json and POST /token");
}

/* ---- life cycle -------------------------------------------------------------- */

static SSL_CTX *server_ctx(const struct gw_devissuer_opts *o, struct gh_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    STACK_OF(X509_NAME) *names = NULL;
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: out of memory");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: cannot load %s / %s", o->cert_file,
                   o->key_file);
        goto fail;
    }
    /* Client certificates are required and must chain to the demo client CA:
     * the certificate IS the client's credential (RFC 8705 2.1). */
    names = SSL_load_client_CA_file(o->client_ca_file);
    if (SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1 || names == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: cannot load the client CA %s",
                   o->client_ca_file);
        goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    names = NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 4);
    ERR_clear_error();
    return ctx;
fail:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

struct gw_devissuer *gw_devissuer_start(const struct gw_devissuer_opts *o, struct gh_err *err)
{
    SSL_CTX *ctx = NULL;
    struct gw_devissuer *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    d->ttl_s = o->token_ttl_s > 0 ? o->token_ttl_s : 600;
    snprintf(d->audience, sizeof(d->audience), "%s", o->audience);
    int k = snprintf(d->url, sizeof(d->url),
                     strchr(o->host, ':') ? "https://[%s]:%d" : "https://%s:%d", o->host, o->port);
    if (k < 0 || (size_t)k >= sizeof(d->url)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: listen address too long");
        goto fail;
    }
    d->ec = load_signing_key(o->signing_key_file, err);
    if (d->ec == NULL || derive_public(d, err) != 0) {
        goto fail;
    }
    k = snprintf(d->discovery, sizeof(d->discovery),
                 "{\"issuer\":\"%s\",\"jwks_uri\":\"%s/jwks.json\","
                 "\"token_endpoint\":\"%s/token\","
                 "\"grant_types_supported\":[\"client_credentials\"],"
                 "\"response_types_supported\":[],"
                 "\"token_endpoint_auth_methods_supported\":[\"tls_client_auth\"],"
                 "\"tls_client_certificate_bound_access_tokens\":true,"
                 "\"mtls_endpoint_aliases\":{\"token_endpoint\":\"%s/token\"},"
                 "\"id_token_signing_alg_values_supported\":[\"ES256\"],"
                 "\"subject_types_supported\":[\"public\"],"
                 "\"gatehouse_development_only\":true}\n",
                 d->url, d->url, d->url, d->url);
    if (k < 0 || (size_t)k >= sizeof(d->discovery)) {
        gh_err_set(err, GH_R_INTERNAL, "dev issuer: discovery document overflow");
        goto fail;
    }
    ctx = server_ctx(o, err);
    if (ctx == NULL) {
        goto fail;
    }
    d->srv = gw_demosrv_start("dev-issuer", o->host, o->port, ctx, handle, d, err);
    SSL_CTX_free(ctx);
    if (d->srv == NULL) {
        goto fail;
    }
    GH_WARN("dev-issuer: DEVELOPMENT ONLY issuer listening on %s (kid %s): it gives a token "
            "to anyone holding a demo client certificate; never use it for real traffic",
            d->url, d->kid);
    return d;
fail:
    EC_KEY_free(d->ec);
    free(d);
    return NULL;
}

void gw_devissuer_stop(struct gw_devissuer *d)
{
    if (d == NULL) {
        return;
    }
    gw_demosrv_stop(d->srv);
    EC_KEY_free(d->ec);
    free(d);
}

const char *gw_devissuer_url(const struct gw_devissuer *d)
{
    return d->url;
}
