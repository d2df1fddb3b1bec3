/*
 * demopki.c: generates (or reuses) the demo's certificates and keys with
 * BoringSSL's X509 API.
 *
 * Why in C: the newcomer path must work on a fresh machine with one
 * command, and the demo must not depend on the openssl CLI or a shell
 * script whose flags differ between versions. The certificates carry the
 * extensions a strict verifier expects (basicConstraints, keyUsage,
 * extendedKeyUsage, SKI/AKI, subjectAltName), so the gateway verifies them
 * exactly as it would verify a real PKI's. Every key is EC P-256 and every
 * signature ECDSA with SHA-256.
 *
 * Files are replaced atomically (temporary file, fsync, rename) and keys are
 * created with mode 0600: a demo still should not teach people to leave
 * private keys world-readable.
 */
#include "gateway/demopki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"

#define PKI_PATH_MAX 4096
#define PKI_FILE_MAX (64 * 1024)
#define CA_DAYS 3650
#define LEAF_DAYS 825

enum leaf_kind { LEAF_SERVER, LEAF_CLIENT };

struct leaf_spec {
    const char *file; /* base name: FILE.crt / FILE.key */
    const char *cn;
    enum leaf_kind kind;
    const char *san; /* subjectAltName value, or NULL */
};

struct ca_spec {
    const char *file;
    const char *cn;
    const struct leaf_spec *leaves;
    int n_leaves;
};

static const struct leaf_spec server_leaves[] = {
    {"server", "localhost", LEAF_SERVER, "DNS:localhost,IP:127.0.0.1,IP:::1"},
};
static const struct leaf_spec client_leaves[] = {
    {"alice", "alice", LEAF_CLIENT, "email:alice@example.com"},
    {"bob", "bob", LEAF_CLIENT, "email:bob@example.com"},
    {"gateway-client", "gatehouse-gateway", LEAF_CLIENT, NULL},
};
static const struct leaf_spec admin_leaves[] = {
    {"admin", "admin", LEAF_CLIENT, NULL},
};
static const struct ca_spec cas[] = {
    {"server-ca", "Gatehouse Demo Server CA", server_leaves, 1},
    {"client-ca", "Gatehouse Demo Client CA", client_leaves, 3},
    {"admin-ca", "Gatehouse Demo Admin CA", admin_leaves, 1},
};

struct pki {
    const char *dir;
    int generated;
    struct gh_err *err;
};

static int path_of(const struct pki *p, const char *base, const char *ext, char *out, size_t len)
{
    int k = snprintf(out, len, "%s/%s%s", p->dir, base, ext);
    if (k < 0 || (size_t)k >= len) {
        return gh_err_set(p->err, GH_R_INTERNAL, "demo pki: path too long under %s", p->dir);
    }
    return 0;
}

/* ---- files ---------------------------------------------------------------- */

static int write_file(const struct pki *p, const char *path, const uint8_t *data, size_t len,
                      mode_t mode)
{
    char tmp[PKI_PATH_MAX + 8];
    int k = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (k < 0 || (size_t)k >= sizeof(tmp)) {
        return gh_err_set(p->err, GH_R_INTERNAL, "demo pki: path too long: %s", path);
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        return gh_err_set(p->err, GH_R_INTERNAL, "demo pki: cannot create %s: %s", tmp,
                          strerror(errno));
    }
    int rc = 0;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    if (rc != 0 || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = -1;
    }
    if (close(fd) != 0) {
        rc = -1;
    }
    if (rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return gh_err_set(p->err, GH_R_INTERNAL, "demo pki: cannot write %s: %s", path,
                          strerror(e));
    }
    return 0;
}

static int write_pem_cert(struct pki *p, const char *path, X509 *x)
{
    int rc = -1;
    const uint8_t *data = NULL;
    size_t len = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_X509(b, x) || !BIO_mem_contents(b, &data, &len)) {
        gh_err_set(p->err, GH_R_INTERNAL, "demo pki: cannot encode %s", path);
        goto out;
    }
    rc = write_file(p, path, data, len, 0644);
    p->generated += rc == 0;
out:
    BIO_free(b);
    return rc;
}

static int write_pem_key(struct pki *p, const char *path, EVP_PKEY *k)
{
    int rc = -1;
    const uint8_t *data = NULL;
    size_t len = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) ||
        !BIO_mem_contents(b, &data, &len)) {
        gh_err_set(p->err, GH_R_INTERNAL, "demo pki: cannot encode %s", path);
        goto out;
    }
    rc = write_file(p, path, data, len, 0600);
    p->generated += rc == 0;
out:
    if (data != NULL) {
        OPENSSL_cleanse((void *)data, len);
    }
    BIO_free(b);
    return rc;
}

/* A BIO over the whole file (bounded), or NULL if it is missing/unreadable. */
static BIO *read_file_bio(const char *path)
{
    BIO *b = NULL;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > PKI_FILE_MAX) {
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        goto out;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            goto out;
        }
        n += (size_t)r;
    }
    /* BIO_new_mem_buf does not copy; a memory BIO that owns a copy does. */
    b = BIO_new(BIO_s_mem());
    if (b != NULL && BIO_write(b, buf, (int)n) != (int)n) {
        BIO_free(b);
        b = NULL;
    }
    OPENSSL_cleanse(buf, n);
out:
    free(buf);
    close(fd);
    return b;
}

static X509 *load_cert(const char *path)
{
    BIO *b = read_file_bio(path);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    BIO *b = read_file_bio(path);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (k != NULL) {
        const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k);
        if (ec == NULL || EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_X9_62_prime256v1) {
            EVP_PKEY_free(k);
            k = NULL;
        }
    }
    return k;
}

/* ---- generation ----------------------------------------------------------- */

static EVP_PKEY *new_p256(void)
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

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (e == NULL) {
        return -1;
    }
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

/* A certificate for key `key` named CN=cn, signed by (ca, ca_key), or
 * self-signed when ca is NULL. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, int is_ca,
                       enum leaf_kind kind, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *serial = BN_new();
    ASN1_INTEGER *ai = NULL;
    uint8_t rnd[16];
    int ok = 0;

    if (x == NULL || name == NULL || serial == NULL) {
        goto out;
    }
    gh_random(rnd, sizeof(rnd));
    rnd[0] &= 0x7f; /* a positive serial of at most 127 bits (RFC 5280 4.1.2.2) */
    if (BN_bin2bn(rnd, sizeof(rnd), serial) == NULL ||
        (ai = BN_to_ASN1_INTEGER(serial, NULL)) == NULL || !X509_set_serialNumber(x, ai) ||
        !X509_set_version(x, X509_VERSION_3)) {
        goto out;
    }
    if (is_ca && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                             (const uint8_t *)"Gatehouse Demo", -1, -1, 0)) {
        goto out;
    }
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const uint8_t *)cn, -1, -1, 0) ||
        !X509_set_subject_name(x, name) ||
        !X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name)) {
        goto out;
    }
    /* Backdated five minutes so a slightly slow clock elsewhere still accepts it. */
    if (X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), (long)(is_ca ? CA_DAYS : LEAF_DAYS) * 24 * 3600) ==
            NULL ||
        !X509_set_pubkey(x, key)) {
        goto out;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca != NULL ? ca : x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0) {
        goto out;
    }
    if (is_ca) {
        if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
            add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0) {
            goto out;
        }
    } else {
        if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
            add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
            add_ext(x, &ctx, NID_ext_key_usage,
                    kind == LEAF_SERVER ? "serverAuth" : "clientAuth") != 0) {
            goto out;
        }
        if (san != NULL && add_ext(x, &ctx, NID_subject_alt_name, san) != 0) {
            goto out;
        }
    }
    if (!X509_sign(x, ca_key != NULL ? ca_key : key, EVP_sha256())) {
        goto out;
    }
    ok = 1;
out:
    ASN1_INTEGER_free(ai);
    BN_free(serial);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* A certificate is reusable if it has not expired (one day of margin), its
 * key matches, and it is signed by the expected issuer key. */
static int reusable(X509 *x, EVP_PKEY *key, EVP_PKEY *issuer_key)
{
    if (x == NULL || key == NULL) {
        return 0;
    }
    time_t limit = time(NULL) + 24 * 3600;
    int ok = X509_cmp_time(X509_get0_notAfter(x), &limit) > 0 &&
             X509_check_private_key(x, key) == 1 && X509_verify(x, issuer_key) == 1;
    return ok;
}

/* Load FILE.crt/FILE.key, or create them. *cert_out and *key_out get references
 * the caller frees. *fresh is set when new files were written. */
static int ensure_pair(struct pki *p, const char *file, const char *cn, X509 *ca, EVP_PKEY *ca_key,
                       int is_ca, enum leaf_kind kind, const char *san, int force, X509 **cert_out,
                       EVP_PKEY **key_out, int *fresh)
{
    char crt_path[PKI_PATH_MAX];
    char key_path[PKI_PATH_MAX];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = -1;

    *fresh = 0;
    if (path_of(p, file, ".crt", crt_path, sizeof(crt_path)) != 0 ||
        path_of(p, file, ".key", key_path, sizeof(key_path)) != 0) {
        return -1;
    }
    if (!force) {
        x = load_cert(crt_path);
        k = load_key(key_path);
        if (reusable(x, k, ca_key != NULL ? ca_key : k)) {
            rc = 0;
            goto out;
        }
        X509_free(x);
        x = NULL;
    }
    if (k == NULL) {
        k = new_p256();
        if (k == NULL) {
            gh_err_set(p->err, GH_R_INTERNAL, "demo pki: key generation failed for %s", file);
            goto out;
        }
        if (write_pem_key(p, key_path, k) != 0) {
            goto out;
        }
    }
    x = make_cert(cn, k, ca, ca_key, is_ca, kind, san);
    if (x == NULL) {
        gh_err_set(p->err, GH_R_INTERNAL, "demo pki: cannot build the certificate %s", file);
        goto out;
    }
    if (write_pem_cert(p, crt_path, x) != 0) {
        goto out;
    }
    *fresh = 1;
    rc = 0;
out:
    if (rc == 0) {
        *cert_out = x;
        *key_out = k;
    } else {
        X509_free(x);
        EVP_PKEY_free(k);
    }
    return rc;
}

static int ensure_signing_key(struct pki *p)
{
    char path[PKI_PATH_MAX];
    if (path_of(p, "issuer-signing", ".key", path, sizeof(path)) != 0) {
        return -1;
    }
    EVP_PKEY *k = load_key(path);
    if (k != NULL) {
        EVP_PKEY_free(k);
        return 0;
    }
    k = new_p256();
    if (k == NULL) {
        return gh_err_set(p->err, GH_R_INTERNAL, "demo pki: key generation failed");
    }
    int rc = write_pem_key(p, path, k);
    EVP_PKEY_free(k);
    return rc;
}

int gw_demopki_ensure(const char *dir, int *generated, struct gh_err *err)
{
    struct pki p = {.dir = dir, .generated = 0, .err = err};
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return gh_err_set(err, GH_R_INTERNAL, "demo pki: cannot create %s: %s", dir,
                          strerror(errno));
    }
    for (size_t i = 0; i < sizeof(cas) / sizeof(cas[0]); i++) {
        const struct ca_spec *c = &cas[i];
        X509 *ca = NULL;
        EVP_PKEY *ca_key = NULL;
        int fresh_ca = 0;
        if (ensure_pair(&p, c->file, c->cn, NULL, NULL, 1, LEAF_CLIENT, NULL, 0, &ca, &ca_key,
                        &fresh_ca) != 0) {
            return -1;
        }
        int rc = 0;
        for (int j = 0; j < c->n_leaves && rc == 0; j++) {
            const struct leaf_spec *l = &c->leaves[j];
            X509 *x = NULL;
            EVP_PKEY *k = NULL;
            int fresh = 0;
            rc = ensure_pair(&p, l->file, l->cn, ca, ca_key, 0, l->kind, l->san, fresh_ca, &x, &k,
                             &fresh);
            X509_free(x);
            EVP_PKEY_free(k);
        }
        X509_free(ca);
        EVP_PKEY_free(ca_key);
        if (rc != 0) {
            return -1;
        }
    }
    if (ensure_signing_key(&p) != 0) {
        return -1;
    }
    if (generated != NULL) {
        *generated = p.generated;
    }
    return 0;
}
