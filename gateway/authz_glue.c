/*
 * authz_glue.c: the request path's identity checks, in the order that
 * fails cheapest first: token syntax (RFC 6750), the per-worker cache of
 * verified tokens (so a keep-alive connection pays one signature check per
 * token), expiry, the RFC 8705 certificate binding (every request: the
 * token is only as good as the key of the certificate on THIS connection),
 * then the policy. Each refusal returns one stable reason code.
 *
 * Issuer keys come from a fetcher thread (discovery + JWKS over the
 * gateway's own BoringSSL client), never from a worker: a worker only reads
 * the current immutable key-set snapshot. An unknown `kid` asks the fetcher
 * for a refresh, rate-limited so a flood of random kids cannot hammer the
 * issuer. The last good JWKS is persisted (db kv table, and optionally a
 * file) so a restart while the issuer is down keeps serving.
 */
#include "gateway/authz_glue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "authz/assertion.h"
#include "authz/jwks.h"
#include "authz/logout.h"
#include "authz/policy.h"
#include "authz/token.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/gateway.h"
#include "gateway/httpc.h"
#include "gateway/proxy_internal.h"
#include "gateway/session.h"

struct gw_authz {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stop, want_refresh;
    struct az_jwks *keys;      /* guarded by mu */
    uint64_t keys_gen;         /* bumps on every swap */
    int64_t keys_fetched_us;   /* wall time of the last successful fetch (0 = never) */
    int64_t last_attempt_mono, last_kid_refresh_mono;
    char last_error[256];
    uint64_t fetch_ok, fetch_fail, kid_refresh_refused;
    SSL_CTX *ctx;
    char jwks_uri[1024];
    struct az_signer *signer;
    char iss_url[512];
    char fingerprint[3072]; /* issuer_fingerprint() ctx was built for (fetcher thread only) */
    char want_fp[3072];     /* ... of the newest config, guarded by mu: keys from a fetch
                             * made for another one are never installed */
};

struct gw_authz_conn {
    /* identity of the connection, kept across its requests so a revocation
     * can find and close it while it idles between requests */
    char conn_session[33];
    char conn_sub[256];
    char conn_jti[128];
    struct az_token *tok;      /* reference for the current request */
    struct az_verdict verdict;
    char session_id[33];
    int binding;               /* 1 verified, 0 not required */
    char policy_version[65];
    /* Identity header cache: the X-Gatehouse-* lines (assertion included)
     * rendered once and reused while token, route, session, configuration
     * snapshot and the assertion's freshness stay the same; re-signed and
     * re-rendered otherwise. Heap-held, sized to fit, so an idle connection keeps only
     * what it used. */
    char *hdrs;
    size_t hdrs_len, hdrs_cap;
    char hdrs_sid[33];
    uint8_t assert_tok[32]; /* SHA-256 of the token the block was made for */
    int assert_has_tok;
    int assert_route;
    uint64_t assert_gen; /* config snapshot: a reload may rename routes, the gateway */
    int64_t assert_exp;
};

/* ---- issuer keys ---------------------------------------------------------- */

static struct az_jwks *keys_get(struct gw_authz *a, uint64_t *gen)
{
    pthread_mutex_lock(&a->mu);
    struct az_jwks *k = a->keys ? az_jwks_ref(a->keys) : NULL;
    *gen = a->keys_gen;
    pthread_mutex_unlock(&a->mu);
    return k;
}

static void keys_swap(struct gw_authz *a, struct az_jwks *k, int64_t fetched_us)
{
    pthread_mutex_lock(&a->mu);
    struct az_jwks *old = a->keys;
    a->keys = k;
    a->keys_gen++;
    a->keys_fetched_us = fetched_us;
    pthread_mutex_unlock(&a->mu);
    az_jwks_unref(old);
}

static void issuer_fingerprint(const struct gw_issuer_config *ic, char *out, size_t cap);

static int fetch_keys(struct gw_server *srv, struct gw_authz *a)
{
    struct gw_state *st = gw_server_state(srv);
    const struct gw_issuer_config *ic = &st->cfg->issuer;
    struct gh_err err = {0};
    struct gw_httpc_resp r = {0};
    int rc = -1;
    char fp[sizeof(a->want_fp)];
    issuer_fingerprint(ic, fp, sizeof(fp));
    if (ic->jwks_uri != NULL) {
        snprintf(a->jwks_uri, sizeof(a->jwks_uri), "%s", ic->jwks_uri);
    } else {
        char url[1200];
        size_t il = strlen(ic->issuer);
        snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
                 (int)(il > 0 && ic->issuer[il - 1] == '/' ? il - 1 : il), ic->issuer);
        if (gw_httpc_get(a->ctx, url, 5000, 256 * 1024, &r, &err) != 0) {
            goto out;
        }
        if (r.status != 200) {
            gh_err_set(&err, GH_R_INTERNAL, "discovery answered %d", r.status);
            goto out;
        }
        json_error_t je;
        json_t *d = json_loadb(r.body, r.body_len, JSON_REJECT_DUPLICATES, &je);
        const char *iss = json_string_value(json_object_get(d, "issuer"));
        const char *ju = json_string_value(json_object_get(d, "jwks_uri"));
        /* RFC 8414 3.3: the document's issuer must be the one we asked. */
        if (iss == NULL || strcmp(iss, ic->issuer) != 0 || ju == NULL ||
            strncmp(ju, "https://", 8) != 0) {
            gh_err_set(&err, GH_R_INTERNAL, "discovery document: issuer mismatch or bad jwks_uri");
            json_decref(d);
            goto out;
        }
        snprintf(a->jwks_uri, sizeof(a->jwks_uri), "%s", ju);
        json_decref(d);
        free(r.body);
        r.body = NULL;
    }
    if (gw_httpc_get(a->ctx, a->jwks_uri, 5000, 256 * 1024, &r, &err) != 0) {
        goto out;
    }
    if (r.status != 200) {
        gh_err_set(&err, GH_R_INTERNAL, "JWKS answered %d", r.status);
        goto out;
    }
    struct az_jwks *k = az_jwks_parse(r.body, r.body_len, &err);
    if (k == NULL) {
        goto out;
    }
    /* A reload may have changed where keys come from while this fetch ran:
     * keys fetched for the old settings are dropped, not installed. */
    pthread_mutex_lock(&a->mu);
    int current = strcmp(fp, a->want_fp) == 0;
    pthread_mutex_unlock(&a->mu);
    if (!current) {
        az_jwks_unref(k);
        gh_err_set(&err, GH_R_INTERNAL, "issuer settings changed during the fetch");
        goto out;
    }
    keys_swap(a, k, gh_now_us());
    GH_INFO("issuer keys refreshed: %zu keys (%zu skipped) from %s", az_jwks_count(k),
            az_jwks_skipped(k), a->jwks_uri);
    char kvkey[600];
    snprintf(kvkey, sizeof(kvkey), "jwks:%s", ic->issuer);
    struct gh_err kerr;
    if (db_kv_put(st->cfg->db_path, kvkey, r.body, r.body_len, &kerr) != 0) {
        GH_WARN("could not persist JWKS: %s", kerr.msg);
    }
    if (ic->jwks_cache_file != NULL) {
        FILE *f = fopen(ic->jwks_cache_file, "w");
        if (f != NULL) {
            fwrite(r.body, 1, r.body_len, f);
            fclose(f);
        }
    }
    a->fetch_ok++;
    rc = 0;
out:
    if (rc != 0) {
        a->fetch_fail++;
        snprintf(a->last_error, sizeof(a->last_error), "%s", err.msg);
        GH_WARN("issuer key refresh failed: %s (keeping %s keys)", err.msg,
                a->keys ? "the last good" : "no");
    }
    free(r.body);
    gw_state_unref(st);
    return rc;
}

static void load_persisted_keys(struct gw_server *srv, struct gw_authz *a)
{
    const struct gw_config *cfg = srv->state->cfg;
    char kvkey[600];
    snprintf(kvkey, sizeof(kvkey), "jwks:%s", cfg->issuer.issuer);
    size_t len = 0;
    struct gh_err err;
    char *js = db_kv_get(cfg->db_path, kvkey, &len, &err);
    if (js == NULL) {
        return;
    }
    struct az_jwks *k = az_jwks_parse(js, len, &err);
    free(js);
    if (k != NULL) {
        keys_swap(a, k, 0);
        GH_INFO("loaded %zu persisted issuer keys (staleness unknown until the first refresh)",
                az_jwks_count(k));
    }
}

/* The issuer settings the keys and the TLS context were made for. */
static void issuer_fingerprint(const struct gw_issuer_config *ic, char *out, size_t cap)
{
    snprintf(out, cap, "%s\n%s\n%s\n%s\n%s", ic->issuer, ic->jwks_uri ? ic->jwks_uri : "",
             ic->ca_file ? ic->ca_file : "", ic->cert_file ? ic->cert_file : "",
             ic->key_file ? ic->key_file : "");
}

/* Make the TLS context match the settings keys now come from. 0 when it
 * does; -1 when it cannot be built (logged): no fetch then -- never the new
 * issuer over the old CA -- and it is tried again on the next pass. */
static int issuer_follow_config(struct gw_server *srv, struct gw_authz *a)
{
    struct gw_state *st = gw_server_state(srv);
    const struct gw_issuer_config *ic = &st->cfg->issuer;
    char fp[sizeof(a->fingerprint)];
    issuer_fingerprint(ic, fp, sizeof(fp));
    int rc = 0;
    if (strcmp(fp, a->fingerprint) != 0) {
        struct gh_err err = {0};
        SSL_CTX *ctx = gw_tls_client_ctx_new(ic->ca_file, ic->cert_file, ic->key_file, &err);
        if (ctx == NULL) {
            GH_ERROR("issuer TLS settings for %s: %s (no key fetch until they load)", ic->issuer,
                     err.msg);
            rc = -1;
        } else {
            SSL_CTX_free(a->ctx);
            a->ctx = ctx;
            snprintf(a->iss_url, sizeof(a->iss_url), "%s", ic->issuer);
            snprintf(a->fingerprint, sizeof(a->fingerprint), "%s", fp);
        }
    }
    gw_state_unref(st);
    return rc;
}

/* Called on the control thread right after a new snapshot is in place. If
 * it changed where keys come from (issuer, jwks_uri, CA, client
 * certificate) or removed the issuer, the keys of the old source are
 * dropped at once -- tokens are refused (token_no_issuer_keys) until keys
 * from the new source arrive, never checked against the old ones -- and the
 * fetcher is woken. Any other reload (a policy apply, a route) leaves the
 * keys and the fetch schedule alone. */
void gw_authz_config_changed(struct gw_server *srv)
{
    struct gw_authz *a = srv->authz;
    if (a == NULL || !a->running) {
        return;
    }
    struct gw_state *st = gw_server_state(srv);
    char fp[sizeof(a->want_fp)] = "";
    if (st->cfg->has_issuer) {
        issuer_fingerprint(&st->cfg->issuer, fp, sizeof(fp));
    }
    gw_state_unref(st);
    pthread_mutex_lock(&a->mu);
    int changed = strcmp(fp, a->want_fp) != 0;
    struct az_jwks *old = NULL;
    if (changed) {
        snprintf(a->want_fp, sizeof(a->want_fp), "%s", fp);
        old = a->keys;
        a->keys = NULL;
        a->keys_gen++;
        a->keys_fetched_us = 0;
        a->want_refresh = 1;
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    if (changed) {
        GH_WARN("issuer settings changed on reload (%s): cached keys dropped, fetching anew",
                fp[0] ? "new source" : "issuer removed");
        az_jwks_unref(old);
    }
}

static void *fetcher_main(void *arg)
{
    struct gw_server *srv = arg;
    struct gw_authz *a = srv->authz;
    pthread_setname_np(pthread_self(), "gh-keyfetch");
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        /* Cleared before the fetch: a reload during it sets it again and
         * the loop goes round at once instead of sleeping a period. */
        a->want_refresh = 0;
        pthread_mutex_unlock(&a->mu);
        a->last_attempt_mono = gh_mono_us();
        struct gw_state *st = gw_server_state(srv); /* a reference: a reload may free it */
        int has_issuer = st->cfg->has_issuer;
        int period = st->cfg->issuer.jwks_refresh_s > 0 ? st->cfg->issuer.jwks_refresh_s : 300;
        gw_state_unref(st);
        int ok = 1;
        if (has_issuer) { /* a reload may have removed it: nothing to fetch then */
            ok = issuer_follow_config(srv, a) == 0 && fetch_keys(srv, a) == 0;
        }
        pthread_mutex_lock(&a->mu);
        if (!ok) {
            period = period > 5 ? 5 : period; /* retry sooner while failing */
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += period;
        while (!a->stop && !a->want_refresh) {
            if (pthread_cond_timedwait(&a->cv, &a->mu, &ts) != 0) {
                break;
            }
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Unknown kid seen on a worker: ask for a refresh, at most once per
 * jwks_min_refresh seconds (a flood of random kids costs the issuer one
 * request per period). */
static void request_refresh(struct gw_server *srv, const struct gw_config *cfg)
{
    struct gw_authz *a = srv->authz;
    int64_t now = gh_mono_us();
    int64_t gap = (int64_t)(cfg->issuer.jwks_min_refresh_s > 0 ? cfg->issuer.jwks_min_refresh_s
                                                                 : 30) * 1000000;
    pthread_mutex_lock(&a->mu);
    if (now - a->last_kid_refresh_mono >= gap) {
        a->last_kid_refresh_mono = now;
        a->want_refresh = 1;
        pthread_cond_signal(&a->cv);
    } else {
        a->kid_refresh_refused++;
    }
    pthread_mutex_unlock(&a->mu);
}

int gw_authz_server_start(struct gw_server *srv, struct gh_err *err)
{
    const struct gw_config *cfg = srv->state->cfg;
    struct gw_authz *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "out of memory");
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    srv->authz = a;
    a->signer = az_signer_load_or_create(cfg->assertion_key_file, err);
    if (a->signer == NULL) {
        return -1;
    }
    if (!cfg->has_issuer) {
        return 0;
    }
    snprintf(a->iss_url, sizeof(a->iss_url), "%s", cfg->issuer.issuer);
    issuer_fingerprint(&cfg->issuer, a->fingerprint, sizeof(a->fingerprint));
    snprintf(a->want_fp, sizeof(a->want_fp), "%s", a->fingerprint);
    a->ctx = gw_tls_client_ctx_new(cfg->issuer.ca_file, cfg->issuer.cert_file,
                                   cfg->issuer.key_file, err);
    if (a->ctx == NULL) {
        return -1;
    }
    load_persisted_keys(srv, a);
    if (pthread_create(&a->thread, NULL, fetcher_main, srv) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "cannot start the issuer key fetcher");
    }
    a->running = 1;
    return 0;
}

void gw_authz_server_stop(struct gw_server *srv)
{
    struct gw_authz *a = srv->authz;
    if (a == NULL) {
        return;
    }
    if (a->running) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    az_jwks_unref(a->keys);
    SSL_CTX_free(a->ctx);
    az_signer_free(a->signer);
    free(a);
    srv->authz = NULL;
}

const char *gw_authz_assertion_jwks(struct gw_server *srv)
{
    return srv->authz && srv->authz->signer ? az_signer_jwks(srv->authz->signer) : "{\"keys\":[]}";
}

int gw_authz_key_status(struct gw_server *srv, int64_t *age_s, size_t *n_keys, char *last_err,
                        size_t len)
{
    struct gw_authz *a = srv->authz;
    if (a == NULL) {
        return -1;
    }
    pthread_mutex_lock(&a->mu);
    *age_s = a->keys_fetched_us ? (gh_now_us() - a->keys_fetched_us) / 1000000 : -1;
    *n_keys = a->keys ? az_jwks_count(a->keys) : 0;
    snprintf(last_err, len, "%s", a->last_error);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

/* ---- per connection -------------------------------------------------------- */

void gw_authz_conn_init(struct gw_conn *c)
{
    c->az = calloc(1, sizeof(*c->az));
}

void gw_authz_reset(struct gw_conn *c)
{
    if (c->az == NULL) {
        return;
    }
    if (c->az->tok != NULL) {
        az_token_unref(c->az->tok);
        c->az->tok = NULL;
    }
    memset(&c->az->verdict, 0, sizeof(c->az->verdict));
    c->az->session_id[0] = '\0';
    c->az->binding = 0;
    c->az->policy_version[0] = '\0';
}

void gw_authz_conn_cleanup(struct gw_conn *c)
{
    if (c->az == NULL) {
        return;
    }
    gw_authz_reset(c);
    if (c->w->srv->sessions != NULL && c->az->conn_session[0] != '\0') {
        gw_sessions_conn(c->w->srv->sessions, c->az->conn_session, -1);
    }
    free(c->az->hdrs);
    free(c->az);
    c->az = NULL;
}

enum gh_reason gw_authz_check_cert(struct gw_conn *c)
{
    /* A blocked device is refused at the handshake, whatever token it holds. */
    return gw_revset_check_cert(c->w->revset, c->cert.thumbprint_hex, gh_now_us());
}

static enum gh_reason conn_revocation(struct gw_conn *c, const struct gw_revset *r)
{
    if (c->az == NULL || !c->has_cert) {
        return GH_R_ALLOW;
    }
    return gw_revset_check(r, c->az->conn_session, c->az->conn_sub, c->az->conn_jti,
                           c->cert.thumbprint_hex, gh_now_us());
}

int gw_authz_conn_revoked(struct gw_conn *c)
{
    return conn_revocation(c, c->w->revset) != GH_R_ALLOW;
}

/* Mailbox: a new revocation snapshot. Close every live connection it
 * covers, now -- not at its next request -- then acknowledge. */
void gw_authz_worker_notify(struct gw_worker *w)
{
    struct gw_server *srv = w->srv;
    pthread_mutex_lock(&srv->rev_mu);
    struct gw_revset *cur = srv->revset;
    if (cur == NULL || (w->revset != NULL && gw_revset_gen(w->revset) == gw_revset_gen(cur))) {
        pthread_mutex_unlock(&srv->rev_mu);
        return;
    }
    gw_revset_ref(cur);
    pthread_mutex_unlock(&srv->rev_mu);
    gw_revset_unref(w->revset);
    w->revset = cur;
    uint64_t closed = 0;
    struct gw_conn *c = w->conns;
    while (c != NULL) {
        struct gw_conn *next = c->next;
        enum gh_reason r = conn_revocation(c, cur);
        if (r != GH_R_ALLOW) {
            gw_conn_revoke_close(c, r);
            closed++;
        }
        c = next;
    }
    pthread_mutex_lock(&srv->rev_mu);
    srv->rev_closed += closed;
    w->rev_applied = gw_revset_gen(cur);
    pthread_cond_broadcast(&srv->rev_cv);
    pthread_mutex_unlock(&srv->rev_mu);
}

static int query_has_token(const char *target, size_t len)
{
    const char *q = memchr(target, '?', len);
    if (q == NULL) {
        return 0;
    }
    const char *end = target + len;
    for (const char *p = q + 1; p < end;) {
        if ((size_t)(end - p) >= 13 && strncmp(p, "access_token=", 13) == 0) {
            return 1;
        }
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL) {
            break;
        }
        p = amp + 1;
    }
    return 0;
}

static void session_id_of(const struct az_token *t, const struct az_cert_info *ci, char out[33])
{
    /* Session = (issuer, subject, certificate): a person or service on one
     * device (DESIGN.md section 4). */
    SHA256_CTX h;
    uint8_t md[32];
    SHA256_Init(&h);
    SHA256_Update(&h, t->iss, strlen(t->iss));
    SHA256_Update(&h, "\n", 1);
    SHA256_Update(&h, t->sub, strlen(t->sub));
    SHA256_Update(&h, "\n", 1);
    SHA256_Update(&h, ci->sha256, 32);
    SHA256_Final(md, &h);
    gh_hex(md, 16, out);
}

/* The policy's verdict for this request; t is NULL on an mTLS-only route. */
static enum gh_reason eval_policy(struct gw_conn *c, const struct az_token *t, int64_t now_s)
{
    struct gw_authz_conn *az = c->az;
    /* The policy sees the whole path, never a truncated one: terminate it in
     * place (the byte after the path is '?' or the SP before the version)
     * and restore it after evaluation. */
    char *path_end = (char *)c->rh.target + c->path_len;
    char saved = *path_end;
    *path_end = '\0';
    struct az_identity id = {.cert = &c->cert, .token = t};
    struct az_request_info req = {
        .route_id = c->route->id,
        .method = c->rh.method,
        .path = c->rh.target,
        .client = (const struct sockaddr *)&c->peer,
        .now_s = now_s,
    };
    az_policy_eval(c->st->policy, &id, &req, &az->verdict, NULL, 0);
    *path_end = saved;
    if (az->verdict.decision != GH_ALLOW) {
        return az->verdict.reason == GH_R_ALLOW ? GH_R_POLICY_NO_MATCH : az->verdict.reason;
    }
    return GH_R_ALLOW;
}

enum gh_reason gw_authz_request(struct gw_conn *c, char *extra, size_t extra_len)
{
    struct gw_authz_conn *az = c->az;
    const struct gw_route *route = c->route;
    struct gw_state *st = c->st;
    struct gw_server *srv = c->w->srv;
    if (az == NULL) {
        return GH_R_INTERNAL;
    }
    if (st->policy != NULL) {
        snprintf(az->policy_version, sizeof(az->policy_version), "%s",
                 az_policy_version(st->policy));
    }
    if (!route->authz) {
        /* mTLS-only route (explicit config): the certificate is the identity.
         * With a policy configured, the policy still decides, with no token
         * (POLICY.md section 4: token conditions are unknown, so deny rules
         * that need them apply and allow rules that need them do not). With
         * no policy at all -- only possible when no route requires tokens --
         * a certificate from tls.client_ca is enough. */
        enum gh_reason br = gw_revset_check_cert(c->w->revset, c->cert.thumbprint_hex, gh_now_us());
        if (br != GH_R_ALLOW) {
            return br;
        }
        if (st->policy == NULL) {
            snprintf(az->verdict.rule_id, sizeof(az->verdict.rule_id), "mtls-only");
            az->verdict.decision = GH_ALLOW;
            return GH_R_ALLOW;
        }
        return eval_policy(c, NULL, gh_now_us() / 1000000);
    }
    static const char hdr_invalid[] =
        "WWW-Authenticate: Bearer realm=\"gatehouse\", error=\"invalid_token\"\r\n";
    if (query_has_token(c->rh.target, c->rh.target_len)) {
        snprintf(extra, extra_len,
                 "WWW-Authenticate: Bearer realm=\"gatehouse\", error=\"invalid_request\"\r\n");
        return GH_R_TOKEN_IN_QUERY;
    }
    const char *vals[4];
    size_t lens[4];
    int n = c->rh.n_auth < 4 ? c->rh.n_auth : 4;
    for (int i = 0; i < n; i++) {
        const struct gw_hdr *h = &c->rh.hdrs[c->rh.auth_idx[i]];
        vals[i] = c->head + h->val_off;
        lens[i] = h->val_len;
    }
    const char *tok = NULL;
    size_t tl = 0;
    enum gh_reason r = az_bearer_extract(vals, lens, c->rh.n_auth, &tok, &tl);
    if (r != GH_R_ALLOW) {
        if (r == GH_R_TOKEN_MISSING) {
            snprintf(extra, extra_len, "WWW-Authenticate: Bearer realm=\"gatehouse\"\r\n");
        } else if (r == GH_R_TOKEN_MULTIPLE_AUTH) {
            snprintf(extra, extra_len,
                     "WWW-Authenticate: Bearer realm=\"gatehouse\", error=\"invalid_request\"\r\n");
        } else {
            snprintf(extra, extra_len, "%s", hdr_invalid);
        }
        return r;
    }
    uint64_t gen = 0;
    struct az_jwks *keys = srv->authz ? keys_get(srv->authz, &gen) : NULL;
    uint8_t th[32];
    SHA256((const uint8_t *)tok, tl, th);
    int64_t now_s = gh_now_us() / 1000000;
    /* A cached verification holds for one key set and one config snapshot:
     * a reload can change the audiences, the typ rule or the skew. */
    uint64_t cgen = (st->generation << 32) ^ (gen & 0xffffffffu);
    struct az_token *t = az_token_cache_get(c->w->token_cache, th, cgen, now_s);
    if (t != NULL) {
        t = az_token_ref(t);
    } else {
        struct gh_err err = {0};
        r = az_token_verify(&st->issuer, keys, tok, tl, &t, &err);
        if (r == GH_R_TOKEN_UNKNOWN_KID && srv->authz != NULL) {
            request_refresh(srv, st->cfg);
        }
        if (r != GH_R_ALLOW) {
            char hp[13];
            gh_hash_prefix(tok, tl, hp);
            GH_INFO("conn=%llu token %s refused: %s (%s)", (unsigned long long)c->id, hp,
                    gh_reason_name(r), err.msg);
            az_jwks_unref(keys);
            snprintf(extra, extra_len, "%s", hdr_invalid);
            return r;
        }
        az_token_cache_put(c->w->token_cache, th, cgen, t);
    }
    az_jwks_unref(keys);
    az->tok = t; /* our reference until gw_authz_reset */
    r = az_token_check_time(t, &st->issuer, now_s);
    if (r != GH_R_ALLOW) {
        snprintf(extra, extra_len, "%s", hdr_invalid);
        return r;
    }
    if (route->require_binding) {
        /* RFC 8705 3.1: the token must be bound to THIS connection's certificate. */
        r = az_token_check_binding(t, c->cert.sha256);
        if (r != GH_R_ALLOW) {
            snprintf(extra, extra_len, "%s", hdr_invalid);
            return r;
        }
        az->binding = 1;
    }
    if (srv->sessions != NULL) {
        char prev[33];
        memcpy(prev, az->conn_session, sizeof(prev));
        int newbind = 0;
        r = gw_sessions_touch(srv->sessions, t, c->cert.sha256, c->cert.thumbprint_hex,
                              c->cert.subject, c->peer_ip, gh_now_us(), c->bytes_in_req,
                              az->conn_session, &newbind);
        if (r != GH_R_ALLOW) {
            snprintf(extra, extra_len, "%s", hdr_invalid);
            return r;
        }
        if (newbind && prev[0] != '\0') {
            gw_sessions_conn(srv->sessions, prev, -1);
        }
        memcpy(az->session_id, az->conn_session, sizeof(az->session_id));
    } else {
        session_id_of(t, &c->cert, az->session_id);
    }
    snprintf(az->conn_sub, sizeof(az->conn_sub), "%.*s", (int)sizeof(az->conn_sub) - 1, t->sub);
    snprintf(az->conn_jti, sizeof(az->conn_jti), "%.*s", (int)sizeof(az->conn_jti) - 1, t->jti);
    /* Revocations: session, subject (locked user), certificate (blocked
     * device), token jti -- every request, against this worker's snapshot. */
    r = gw_revset_check(c->w->revset, az->session_id, t->sub, t->jti, c->cert.thumbprint_hex,
                        gh_now_us());
    if (r != GH_R_ALLOW) {
        snprintf(extra, extra_len, "%s", hdr_invalid);
        return r;
    }
    if (st->policy == NULL) {
        return GH_R_POLICY_NO_MATCH;
    }
    r = eval_policy(c, t, now_s);
    if (r != GH_R_ALLOW) {
        snprintf(extra, extra_len,
                 "WWW-Authenticate: Bearer realm=\"gatehouse\", error=\"insufficient_scope\"\r\n");
    }
    return r;
}

int gw_authz_strips(struct gw_conn *c, const char *name, size_t len)
{
    /* The bearer token stays at the gateway: upstreams get the signed
     * assertion instead, so an internal app never holds a replayable token. */
    return c->route != NULL && c->route->authz && len == 13 &&
           strncasecmp(name, "authorization", 13) == 0;
}

/* Bounded copy that always terminates (snprintf("%s") was a visible share
 * of a request's CPU here). */
static void copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Appends "Name: value\r\n" to line[*o..cap) with control characters
 * dropped (claims are verified, but a value must never split a header).
 * Returns -1, leaving *o unchanged, if it does not fit. */
static int hdr_line(char *line, size_t cap, size_t *o, const char *name, const char *v)
{
    size_t nl = strlen(name);
    size_t vl = strlen(v);
    size_t at = *o;
    if (nl + vl + 4 > cap - at) {
        return -1;
    }
    memcpy(line + at, name, nl);
    at += nl;
    line[at++] = ':';
    line[at++] = ' ';
    for (size_t i = 0; i < vl; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch >= 0x20 && ch != 0x7f) {
            line[at++] = (char)ch;
        }
    }
    line[at++] = '\r';
    line[at++] = '\n';
    *o = at;
    return 0;
}

/* Renders the identity block into buf. Returns its length, or 0 if it did
 * not fit. With the field sizes bounded (subject, sub and email 256 bytes,
 * groups 1 KiB, assertion 4 KiB) the 8 KiB buffer always holds it; were it
 * ever exceeded, no identity at all is sent rather than a cut one. */
static size_t render_identity(struct gw_conn *c, const char *assertion, char *buf, size_t cap)
{
    struct gw_authz_conn *az = c->az;
    const struct az_token *t = az ? az->tok : NULL;
    size_t o = 0;
    int bad = hdr_line(buf, cap, &o, "X-Gatehouse-Cert-Thumbprint", c->cert.thumbprint_b64u);
    bad |= hdr_line(buf, cap, &o, "X-Gatehouse-Cert-Subject", c->cert.subject);
    if (t != NULL) {
        bad |= hdr_line(buf, cap, &o, "X-Gatehouse-User", t->sub);
        if (t->email[0]) {
            bad |= hdr_line(buf, cap, &o, "X-Gatehouse-Email", t->email);
        }
        char groups[1024];
        size_t off = 0;
        groups[0] = '\0';
        for (int i = 0; i < t->n_groups; i++) {
            size_t gl = strlen(t->groups[i]);
            if (off + (i ? 1 : 0) + gl >= sizeof(groups)) {
                break; /* the list is cut at 1 KiB, at a group boundary */
            }
            if (i) {
                groups[off++] = ',';
            }
            memcpy(groups + off, t->groups[i], gl);
            off += gl;
            groups[off] = '\0';
        }
        bad |= hdr_line(buf, cap, &o, "X-Gatehouse-Groups", groups);
        bad |= hdr_line(buf, cap, &o, "X-Gatehouse-Session", az->session_id);
    }
    if (assertion != NULL) {
        bad |= hdr_line(buf, cap, &o, "X-Gatehouse-Assertion", assertion);
    }
    return bad ? 0 : o;
}

void gw_authz_add_headers(struct gw_conn *c, struct evbuffer *b)
{
    struct gw_authz_conn *az = c->az;
    char buf[8192];
    if (az == NULL) {
        size_t n = render_identity(c, NULL, buf, sizeof(buf));
        evbuffer_add(b, buf, n);
        return;
    }
    const struct az_token *t = az->tok;
    struct gw_authz *a = c->w->srv->authz;
    const struct az_signer *signer = a != NULL ? a->signer : NULL;
    int64_t now = gh_now_us() / 1000000;
    int ttl = c->st->cfg->assertion_ttl_s > 0 ? c->st->cfg->assertion_ttl_s : 60;
    int same_tok = t != NULL ? (az->assert_has_tok && memcmp(az->assert_tok, t->token_sha256, 32) == 0)
                             : !az->assert_has_tok;
    if (az->hdrs_len > 0 && same_tok && az->assert_route == c->route_idx &&
        az->assert_gen == c->st->generation && strcmp(az->hdrs_sid, az->session_id) == 0 &&
        (signer == NULL || az->assert_exp - now >= ttl / 2)) {
        evbuffer_add(b, az->hdrs, az->hdrs_len); /* the steady state */
        return;
    }
    az->hdrs_len = 0;
    char assertion[4096];
    const char *as = NULL;
    if (signer != NULL) {
        const char *iss = c->st->cfg->server_name ? c->st->cfg->server_name : "gatehouse";
        if (az_assertion_sign(signer, c->route->id, iss, t, c->cert.thumbprint_b64u, az->binding,
                              az->session_id, now, ttl, assertion, sizeof(assertion)) == 0) {
            as = assertion;
        }
    }
    size_t n = render_identity(c, as, buf, sizeof(buf));
    evbuffer_add(b, buf, n);
    if (n == 0 || (signer != NULL && as == NULL)) {
        return; /* not cached: tried again on the next request */
    }
    if (n > az->hdrs_cap) {
        char *p = realloc(az->hdrs, n);
        if (p == NULL) {
            return;
        }
        az->hdrs = p;
        az->hdrs_cap = n;
    }
    memcpy(az->hdrs, buf, n);
    az->hdrs_len = n;
    copy_cstr(az->hdrs_sid, sizeof(az->hdrs_sid), az->session_id);
    az->assert_has_tok = t != NULL;
    if (t != NULL) {
        memcpy(az->assert_tok, t->token_sha256, 32);
    }
    az->assert_route = c->route_idx;
    az->assert_gen = c->st->generation;
    az->assert_exp = now + ttl;
}

void gw_authz_fill_row(struct gw_conn *c, struct db_decision *d)
{
    struct gw_authz_conn *az = c->az;
    if (az == NULL) {
        return;
    }
    if (az->tok != NULL) {
        copy_cstr(d->token_sub, sizeof(d->token_sub), az->tok->sub);
        copy_cstr(d->token_iss, sizeof(d->token_iss), az->tok->iss);
        copy_cstr(d->token_jti, sizeof(d->token_jti), az->tok->jti);
    }
    copy_cstr(d->session_id, sizeof(d->session_id), az->session_id);
    copy_cstr(d->rule_id, sizeof(d->rule_id), az->verdict.rule_id);
    copy_cstr(d->policy_version, sizeof(d->policy_version), az->policy_version);
}

enum gh_reason gw_authz_logout_verify(struct gw_conn *c, const char *tok, size_t len,
                                      struct az_logout *out, struct gh_err *err)
{
    struct gw_server *srv = c->w->srv;
    if (srv->authz == NULL || !c->st->cfg->has_issuer) {
        gh_err_set(err, GH_R_LOGOUT_INVALID, "no issuer configured");
        return GH_R_LOGOUT_INVALID;
    }
    uint64_t gen;
    struct az_jwks *keys = keys_get(srv->authz, &gen);
    enum gh_reason r =
        az_logout_verify(&c->st->issuer, keys, tok, len, gh_now_us() / 1000000, out, err);
    az_jwks_unref(keys);
    return r;
}
