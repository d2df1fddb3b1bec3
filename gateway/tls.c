/*
 * tls.c: BoringSSL contexts. The server context is rebuilt from files on
 * reload and swapped under a mutex; connections already open keep theirs
 * (SSL objects hold a reference to their SSL_CTX), so rotating the server
 * certificate or the client CA/CRL never drops a live connection.
 *
 * Session resumption uses tickets whose keys live outside any one SSL_CTX
 * and rotate on a timer (current key encrypts, previous still decrypts), so
 * a certificate reload does not invalidate every client's ticket. A resumed
 * session skips chain verification in the handshake, so gw_tls_recheck()
 * re-verifies the client chain against the CURRENT store (CRL included)
 * before any request on a resumed connection is served.
 */
#include "gateway/tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"

/* TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are fixed by BoringSSL. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

#define N_WATCH 4

struct file_stamp {
    char *path;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct gw_tls_server {
    pthread_mutex_t mu;
    SSL_CTX *ctx; /* current; guarded by mu */
    uint64_t gen; /* trust-material generation of ctx (chain cache key) */
    struct file_stamp watch[N_WATCH];
};

/* ---- session ticket keys (process-wide, rotating) ---------------------- */

struct ticket_key {
    uint8_t name[16];
    uint8_t aes[32];
    uint8_t hmac[32];
    int valid;
};

static pthread_mutex_t ticket_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ticket_key ticket_cur, ticket_prev;

static void ticket_new_key(struct ticket_key *k)
{
    gh_random(k->name, sizeof(k->name));
    gh_random(k->aes, sizeof(k->aes));
    gh_random(k->hmac, sizeof(k->hmac));
    k->valid = 1;
}

void gw_tls_server_rotate_tickets(struct gw_tls_server *s)
{
    (void)s;
    pthread_mutex_lock(&ticket_mu);
    ticket_prev = ticket_cur;
    ticket_new_key(&ticket_cur);
    pthread_mutex_unlock(&ticket_mu);
}

/* RFC 5077-style ticket protection: AES-256-CBC + HMAC-SHA256, keyed by name.
 * Returns 1 (use), 2 (decrypted with an old key: renew), 0 (unknown: full
 * handshake), -1 error. */
static int ticket_cb(SSL *ssl, uint8_t *key_name, uint8_t *iv, EVP_CIPHER_CTX *cctx,
                     HMAC_CTX *hctx, int encrypt)
{
    struct ticket_key k;
    int rc = 1;
    pthread_mutex_lock(&ticket_mu);
    if (!ticket_cur.valid) {
        ticket_new_key(&ticket_cur);
    }
    if (encrypt) {
        k = ticket_cur;
    } else if (memcmp(key_name, ticket_cur.name, 16) == 0) {
        k = ticket_cur;
    } else if (ticket_prev.valid && memcmp(key_name, ticket_prev.name, 16) == 0) {
        k = ticket_prev;
        rc = 2;
    } else {
        pthread_mutex_unlock(&ticket_mu);
        return 0;
    }
    pthread_mutex_unlock(&ticket_mu);
    if (encrypt) {
        memcpy(key_name, k.name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
            !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv)) {
            rc = -1;
        }
    } else if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv)) {
        rc = -1;
    }
    if (rc >= 0 && !HMAC_Init_ex(hctx, k.hmac, sizeof(k.hmac), EVP_sha256(), NULL)) {
        rc = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

/* ---- verified-chain cache ------------------------------------------------ */

/* A returning device should not pay chain verification again (issue 8):
 * once a client chain verified against a given trust generation (CA bundle
 * + CRL as loaded), its hash is remembered with the chain's validity
 * window. A hit re-checks only the clock; a reload of the CA or CRL bumps
 * the generation, so every entry is re-verified against the new material.
 * Blocked devices are refused separately (revocation set), every request. */
#define CHAIN_SLOTS 4096

struct chain_entry {
    uint8_t key[32];
    uint64_t gen;
    int64_t not_before, not_after;
};

static pthread_mutex_t chain_mu = PTHREAD_MUTEX_INITIALIZER;
static struct chain_entry chain_cache[CHAIN_SLOTS];
static atomic_ullong chain_hits, chain_misses;
static atomic_ullong ctx_gen;

static int chain_key(X509 *leaf, STACK_OF(X509) *rest, uint8_t key[32])
{
    SHA256_CTX h;
    uint8_t md[32];
    unsigned ml = 0;
    SHA256_Init(&h);
    if (!X509_digest(leaf, EVP_sha256(), md, &ml)) {
        return -1;
    }
    SHA256_Update(&h, md, ml);
    for (size_t i = 0; rest != NULL && i < sk_X509_num(rest); i++) {
        X509 *x = sk_X509_value(rest, i);
        if (X509_cmp(x, leaf) == 0) {
            continue; /* some stacks include the leaf */
        }
        if (!X509_digest(x, EVP_sha256(), md, &ml)) {
            return -1;
        }
        SHA256_Update(&h, md, ml);
    }
    SHA256_Final(key, &h);
    return 0;
}

static int chain_lookup(const uint8_t key[32], uint64_t gen, int64_t now)
{
    struct chain_entry *e = &chain_cache[(key[0] | key[1] << 8) % CHAIN_SLOTS];
    pthread_mutex_lock(&chain_mu);
    int hit = e->gen == gen && memcmp(e->key, key, 32) == 0 && now >= e->not_before &&
              now < e->not_after;
    pthread_mutex_unlock(&chain_mu);
    atomic_fetch_add(hit ? &chain_hits : &chain_misses, 1);
    return hit;
}

static void chain_insert(const uint8_t key[32], uint64_t gen, STACK_OF(X509) *chain)
{
    int64_t now = (int64_t)time(NULL), nb = 0, na = INT64_MAX;
    for (size_t i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        int days, secs;
        if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x))) {
            int64_t t = now + (int64_t)days * 86400 + secs;
            na = t < na ? t : na;
        }
        if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(x))) {
            int64_t t = now + (int64_t)days * 86400 + secs;
            nb = t > nb ? t : nb;
        }
    }
    struct chain_entry *e = &chain_cache[(key[0] | key[1] << 8) % CHAIN_SLOTS];
    pthread_mutex_lock(&chain_mu);
    memcpy(e->key, key, 32);
    e->gen = gen;
    e->not_before = nb;
    e->not_after = na;
    pthread_mutex_unlock(&chain_mu);
}

/* Handshake verification through the cache (SSL_CTX_set_cert_verify_callback). */
static int verify_cb(X509_STORE_CTX *xs, void *arg)
{
    uint64_t gen = (uint64_t)(uintptr_t)arg;
    uint8_t key[32];
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    int keyed = leaf != NULL && chain_key(leaf, X509_STORE_CTX_get0_untrusted(xs), key) == 0;
    if (keyed && chain_lookup(key, gen, (int64_t)time(NULL))) {
        return 1;
    }
    int rc = X509_verify_cert(xs);
    if (rc == 1 && keyed) {
        chain_insert(key, gen, X509_STORE_CTX_get0_chain(xs));
    }
    return rc;
}

void gw_tls_chain_cache_stats(uint64_t *hits, uint64_t *misses)
{
    *hits = atomic_load(&chain_hits);
    *misses = atomic_load(&chain_misses);
}

/* ---- server context ------------------------------------------------------ */

static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                       unsigned in_len, void *arg)
{
    static const uint8_t h11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    uint8_t *sel = NULL;
    if (SSL_select_next_proto(&sel, out_len, h11, sizeof(h11), in, in_len) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    /* The client offered only protocols we do not speak (e.g. h2 alone):
     * refuse rather than talk HTTP/1.1 to an h2-only client. */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void ssl_err_msg(struct gh_err *err, enum gh_reason r, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[160];
    ERR_error_string_n(e, buf, sizeof(buf));
    gh_err_set(err, r, "%s %s: %s", what, path ? path : "", e ? buf : "failed");
    ERR_clear_error();
}

static int load_crls(X509_STORE *store, const char *path, struct gh_err *err)
{
    BIO *b = BIO_new_file(path, "r");
    if (b == NULL) {
        ssl_err_msg(err, GH_R_INTERNAL, "cannot open CRL", path);
        return -1;
    }
    int n = 0;
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        n++;
    }
    ERR_clear_error();
    BIO_free(b);
    if (n == 0) {
        gh_err_set(err, GH_R_INTERNAL, "no CRL found in %s", path);
        return -1;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return 0;
}

static SSL_CTX *build_server_ctx(const struct gw_config *cfg, uint64_t *gen_out,
                                 struct gh_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        ssl_err_msg(err, GH_R_INTERNAL, "SSL_CTX_new", NULL);
        return NULL;
    }
    uint16_t minv = cfg->tls_min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, minv) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_strict_cipher_list(ctx, tls12_ciphers)) {
        ssl_err_msg(err, GH_R_INTERNAL, "TLS parameters", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        ssl_err_msg(err, GH_R_INTERNAL, "cannot load certificate", cfg->tls_cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err_msg(err, GH_R_INTERNAL, "cannot load key", cfg->tls_key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err_msg(err, GH_R_INTERNAL, "key does not match certificate", cfg->tls_key_file);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca_file, NULL) != 1) {
        ssl_err_msg(err, GH_R_INTERNAL, "cannot load client CA", cfg->tls_client_ca_file);
        goto fail;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca_file);
    if (names == NULL) {
        ssl_err_msg(err, GH_R_INTERNAL, "no CA certificate in", cfg->tls_client_ca_file);
        goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    if (cfg->tls_crl_file != NULL &&
        load_crls(SSL_CTX_get_cert_store(ctx), cfg->tls_crl_file, err) != 0) {
        goto fail;
    }
    /* Client certificates are REQUIRED (zero trust: no anonymous clients). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    uint64_t gen = atomic_fetch_add(&ctx_gen, 1) + 1;
    SSL_CTX_set_cert_verify_callback(ctx, verify_cb, (void *)(uintptr_t)gen);
    *gen_out = gen;
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    static const uint8_t sid_ctx[] = "gatehouse";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, (uint32_t)(cfg->tls_ticket_rotate_s > 0 ? cfg->tls_ticket_rotate_s : 3600));
    SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_cb);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void stamp(struct file_stamp *f, const char *path)
{
    free(f->path);
    memset(f, 0, sizeof(*f));
    if (path == NULL) {
        return;
    }
    f->path = strdup(path);
    struct stat st;
    if (stat(path, &st) == 0) {
        f->ino = st.st_ino;
        f->size = st.st_size;
        f->mtime = st.st_mtim;
    }
}

static void stamp_all(struct gw_tls_server *s, const struct gw_config *cfg)
{
    stamp(&s->watch[0], cfg->tls_cert_file);
    stamp(&s->watch[1], cfg->tls_key_file);
    stamp(&s->watch[2], cfg->tls_client_ca_file);
    stamp(&s->watch[3], cfg->tls_crl_file);
}

struct gw_tls_server *gw_tls_server_new(const struct gw_config *cfg, struct gh_err *err)
{
    uint64_t gen = 0;
    SSL_CTX *ctx = build_server_ctx(cfg, &gen, err);
    if (ctx == NULL) {
        return NULL;
    }
    struct gw_tls_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        SSL_CTX_free(ctx);
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->ctx = ctx;
    s->gen = gen;
    stamp_all(s, cfg);
    pthread_mutex_lock(&ticket_mu);
    if (!ticket_cur.valid) {
        ticket_new_key(&ticket_cur);
    }
    pthread_mutex_unlock(&ticket_mu);
    return s;
}

void gw_tls_server_free(struct gw_tls_server *s)
{
    if (s == NULL) {
        return;
    }
    SSL_CTX_free(s->ctx);
    for (int i = 0; i < N_WATCH; i++) {
        free(s->watch[i].path);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

SSL *gw_tls_server_new_ssl(struct gw_tls_server *s)
{
    pthread_mutex_lock(&s->mu);
    SSL *ssl = SSL_new(s->ctx);
    pthread_mutex_unlock(&s->mu);
    if (ssl != NULL) {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}

int gw_tls_server_reload(struct gw_tls_server *s, const struct gw_config *cfg, struct gh_err *err)
{
    uint64_t gen = 0;
    SSL_CTX *ctx = build_server_ctx(cfg, &gen, err);
    if (ctx == NULL) {
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    SSL_CTX *old = s->ctx;
    s->ctx = ctx;
    s->gen = gen;
    pthread_mutex_unlock(&s->mu);
    SSL_CTX_free(old); /* live connections hold their own references */
    stamp_all(s, cfg);
    return 0;
}

int gw_tls_server_files_changed(struct gw_tls_server *s)
{
    for (int i = 0; i < N_WATCH; i++) {
        struct file_stamp *f = &s->watch[i];
        if (f->path == NULL) {
            continue;
        }
        struct stat st;
        if (stat(f->path, &st) != 0) {
            continue; /* missing right now (mid-rotation): keep what we have */
        }
        if (st.st_ino != f->ino || st.st_size != f->size ||
            st.st_mtim.tv_sec != f->mtime.tv_sec || st.st_mtim.tv_nsec != f->mtime.tv_nsec) {
            return 1;
        }
    }
    return 0;
}

void gw_tls_server_describe(struct gw_tls_server *s, char *buf, size_t len)
{
    buf[0] = '\0';
    pthread_mutex_lock(&s->mu);
    X509 *x = SSL_CTX_get0_certificate(s->ctx);
    if (x != NULL) {
        const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        snprintf(buf, len, "serial=%s", hex ? hex : "?");
        OPENSSL_free(hex);
        BN_free(bn);
    }
    pthread_mutex_unlock(&s->mu);
}

static enum gh_reason verify_code_reason(long v);

enum gh_reason gw_tls_refusal_reason(SSL *ssl)
{
    if (SSL_get0_peer_certificates(ssl) == NULL) {
        return GH_R_TLS_NO_CERT;
    }
    enum gh_reason r = verify_code_reason(SSL_get_verify_result(ssl));
    return r != GH_R_ALLOW ? r : GH_R_TLS_HANDSHAKE;
}

static enum gh_reason verify_code_reason(long v)
{
    switch (v) {
    case X509_V_OK:
        return GH_R_ALLOW;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return GH_R_TLS_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return GH_R_TLS_NOT_YET_VALID;
    case X509_V_ERR_CERT_REVOKED:
        return GH_R_TLS_CRL_REVOKED;
    default:
        return GH_R_TLS_UNTRUSTED;
    }
}

enum gh_reason gw_tls_recheck(struct gw_tls_server *s, SSL *ssl)
{
    if (!SSL_session_reused(ssl)) {
        return GH_R_ALLOW;
    }
    X509 *leaf = SSL_get_peer_certificate(ssl);
    if (leaf == NULL) {
        return GH_R_TLS_NO_CERT;
    }
    enum gh_reason r = GH_R_TLS_UNTRUSTED;
    pthread_mutex_lock(&s->mu);
    SSL_CTX *ctx = s->ctx;
    uint64_t gen = s->gen;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&s->mu);
    uint8_t key[32];
    int keyed = chain_key(leaf, SSL_get_peer_cert_chain(ssl), key) == 0;
    if (keyed && chain_lookup(key, gen, (int64_t)time(NULL))) {
        SSL_CTX_free(ctx);
        X509_free(leaf);
        return GH_R_ALLOW;
    }
    X509_STORE_CTX *xs = X509_STORE_CTX_new();
    if (xs != NULL &&
        X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx), leaf, SSL_get_peer_cert_chain(ssl))) {
        X509_STORE_CTX_set_default(xs, "ssl_client");
        if (X509_verify_cert(xs) == 1) {
            r = GH_R_ALLOW;
            if (keyed) {
                chain_insert(key, gen, X509_STORE_CTX_get0_chain(xs));
            }
        } else {
            r = verify_code_reason(X509_STORE_CTX_get_error(xs));
            if (r == GH_R_ALLOW) {
                r = GH_R_TLS_UNTRUSTED;
            }
        }
    }
    ERR_clear_error();
    X509_STORE_CTX_free(xs);
    SSL_CTX_free(ctx);
    X509_free(leaf);
    return r;
}

/* ---- peer certificate facts ---------------------------------------------- */

static void name_oneline(X509_NAME *n, char *out, size_t len)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL) {
        return;
    }
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        const uint8_t *p;
        size_t l;
        if (BIO_mem_contents(b, &p, &l)) {
            if (l >= len) {
                l = len - 1;
            }
            memcpy(out, p, l);
            out[l] = '\0';
        }
    }
    BIO_free(b);
}

static char *asn1_str_dup(const ASN1_STRING *s)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int l = ASN1_STRING_length(s);
    if (d == NULL || l < 0 || l > 2048 || memchr(d, '\0', (size_t)l) != NULL) {
        return NULL; /* embedded NUL: a classic name-spoofing trick */
    }
    char *c = malloc((size_t)l + 1);
    if (c != NULL) {
        memcpy(c, d, (size_t)l);
        c[l] = '\0';
    }
    return c;
}

int gw_tls_peer_info(SSL *ssl, struct az_cert_info *info)
{
    memset(info, 0, sizeof(*info));
    X509 *x = SSL_get_peer_certificate(ssl);
    if (x == NULL) {
        return -1;
    }
    uint8_t *der = NULL;
    int dl = i2d_X509(x, &der);
    if (dl <= 0) {
        X509_free(x);
        return -1;
    }
    SHA256(der, (size_t)dl, info->sha256);
    OPENSSL_free(der);
    gh_hex(info->sha256, 32, info->thumbprint_hex);
    gh_b64url_encode(info->sha256, 32, info->thumbprint_b64u);
    name_oneline(X509_get_subject_name(x), info->subject, sizeof(info->subject));
    name_oneline(X509_get_issuer_name(x), info->issuer, sizeof(info->issuer));
    int cl = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, info->cn,
                                       sizeof(info->cn));
    if (cl < 0 || memchr(info->cn, '\0', (size_t)cl) != NULL) {
        info->cn[0] = '\0';
    }
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (size_t i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char *v;
        switch (g->type) {
        case GEN_DNS:
            if (info->n_dns < AZ_MAX_SANS && (v = asn1_str_dup(g->d.dNSName)) != NULL) {
                info->san_dns[info->n_dns++] = v;
            }
            break;
        case GEN_EMAIL:
            if (info->n_email < AZ_MAX_SANS && (v = asn1_str_dup(g->d.rfc822Name)) != NULL) {
                info->san_email[info->n_email++] = v;
            }
            break;
        case GEN_URI:
            if (info->n_uri < AZ_MAX_SANS &&
                (v = asn1_str_dup(g->d.uniformResourceIdentifier)) != NULL) {
                info->san_uri[info->n_uri++] = v;
            }
            break;
        default:
            break;
        }
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return 0;
}

void gw_tls_cert_info_cleanup(struct az_cert_info *info)
{
    for (int i = 0; i < info->n_dns; i++) {
        free(info->san_dns[i]);
    }
    for (int i = 0; i < info->n_email; i++) {
        free(info->san_email[i]);
    }
    for (int i = 0; i < info->n_uri; i++) {
        free(info->san_uri[i]);
    }
    info->n_dns = info->n_email = info->n_uri = 0;
}

/* ---- outbound ------------------------------------------------------------ */

SSL_CTX *gw_tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                               struct gh_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        ssl_err_msg(err, GH_R_INTERNAL, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    if (!SSL_CTX_set_strict_cipher_list(ctx, tls12_ciphers)) {
        ssl_err_msg(err, GH_R_INTERNAL, "cipher list", NULL);
        goto fail;
    }
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            ssl_err_msg(err, GH_R_INTERNAL, "cannot load CA", ca_file);
            goto fail;
        }
    } else if (SSL_CTX_load_verify_locations(ctx, "/etc/ssl/certs/ca-certificates.crt", NULL) !=
               1) {
        ssl_err_msg(err, GH_R_INTERNAL, "cannot load system CA bundle", NULL);
        goto fail;
    }
    if (cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ssl_err_msg(err, GH_R_INTERNAL, "cannot load client certificate/key", cert_file);
            goto fail;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *gw_tls_client_new_ssl(SSL_CTX *ctx, int fd, const char *name)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        return NULL;
    }
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(p, name) != 1) {
        ERR_clear_error();
        SSL_set_tlsext_host_name(ssl, name);
        X509_VERIFY_PARAM_set1_host(p, name, strlen(name));
    }
    return ssl;
}
