/*
 * server.c: start-up, the control thread, reload and drain.
 *
 * The control thread owns every slow or blocking action so workers never
 * wait: config/policy/TLS reload (SIGHUP or a changed file), ticket-key
 * rotation, and the orderly drain on SIGTERM. A reload builds a complete new
 * snapshot first; only when everything in it loaded does one pointer swap,
 * so a bad file leaves the gateway running on the old snapshot and the log
 * says why.
 */
#include "gateway/server.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "db/state.h"
#include "gateway/admin.h"
#include "gateway/authz_glue.h"
#include "gateway/control.h"
#include "gateway/sdnotify.h"
#include "gateway/session.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/gateway.h"

/* ---- snapshots ------------------------------------------------------------ */

struct gw_state *gw_state_ref(struct gw_state *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void gw_state_unref(struct gw_state *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1) {
        return;
    }
    for (int i = 0; i < GW_MAX_ROUTES; i++) {
        SSL_CTX_free(s->rt[i].tls);
    }
    az_policy_unref(s->policy);
    gw_config_unref(s->cfg);
    free(s);
}

static int resolve(const char *host, const char *port, struct sockaddr_storage *ss,
                   socklen_t *sl, struct gh_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "cannot resolve %s:%s: %s", host, port,
                          gai_strerror(rc));
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

struct gw_state *gw_state_new(struct gw_config *cfg, uint64_t gen, struct gh_err *err)
{
    struct gw_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->generation = gen;
    s->cfg = gw_config_ref(cfg);
    int need_policy = 0;
    for (int i = 0; i < cfg->n_routes; i++) {
        const struct gw_route *r = &cfg->routes[i];
        if (resolve(r->upstream.host, r->upstream.port, &s->rt[i].addr, &s->rt[i].addr_len,
                    err) != 0) {
            goto fail;
        }
        if (r->upstream.tls) {
            s->rt[i].tls = gw_tls_client_ctx_new(r->upstream.ca_file, r->upstream.cert_file,
                                                 r->upstream.key_file, err);
            if (s->rt[i].tls == NULL) {
                goto fail;
            }
        }
        need_policy |= r->authz;
    }
    if (cfg->policy_file != NULL) {
        struct gh_errlist el = {0};
        s->policy = az_policy_load_file(cfg->policy_file, &el);
        if (s->policy != NULL) {
            const char *ids[GW_MAX_ROUTES];
            for (int i = 0; i < cfg->n_routes; i++) {
                ids[i] = cfg->routes[i].id;
            }
            if (az_policy_check_routes(s->policy, ids, cfg->n_routes, &el) != 0) {
                az_policy_unref(s->policy);
                s->policy = NULL;
            }
        }
        if (s->policy == NULL) {
            char buf[2048];
            gh_errlist_format(&el, buf, sizeof(buf));
            gh_err_set(err, GH_R_INTERNAL, "policy: %s", buf);
            goto fail;
        }
    } else if (need_policy) {
        gh_err_set(err, GH_R_INTERNAL, "routes require authz but no policy file is configured");
        goto fail;
    }
    if (cfg->has_issuer) {
        const struct gw_issuer_config *ic = &cfg->issuer;
        snprintf(s->issuer.issuer, sizeof(s->issuer.issuer), "%s", ic->issuer);
        for (int i = 0; i < ic->n_aud && i < AZ_MAX_AUD; i++) {
            snprintf(s->issuer.audiences[i], sizeof(s->issuer.audiences[i]), "%s",
                     ic->audiences[i]);
        }
        s->issuer.n_aud = ic->n_aud < AZ_MAX_AUD ? ic->n_aud : AZ_MAX_AUD;
        s->issuer.skew_s = ic->skew_s;
        s->issuer.allow_jwt_typ = ic->allow_jwt_typ;
    }
    return s;
fail:
    gw_state_unref(s);
    return NULL;
}

static struct gw_state *state_with_policy(const struct gw_state *cur, struct az_policy *p,
                                          uint64_t gen)
{
    struct gw_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->generation = gen;
    s->cfg = gw_config_ref(cur->cfg);
    for (int i = 0; i < GW_MAX_ROUTES; i++) {
        s->rt[i] = cur->rt[i];
        if (s->rt[i].tls != NULL) {
            SSL_CTX_up_ref(s->rt[i].tls);
        }
    }
    s->policy = az_policy_ref(p);
    s->issuer = cur->issuer;
    return s;
}

static void swap_state(struct gw_server *srv, struct gw_state *ns);
static uint64_t g_gen;

int gw_ctl_policy_activate(struct gw_server *srv, struct az_policy *p, struct gh_err *err)
{
    struct gw_state *cur = gw_server_state(srv);
    struct gw_state *ns = state_with_policy(cur, p, ++g_gen);
    gw_state_unref(cur);
    if (ns == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "out of memory");
    }
    swap_state(srv, ns);
    GH_INFO("policy %s active (generation %llu)", az_policy_version(p),
            (unsigned long long)ns->generation);
    return 0;
}

/* The policy file is the source of truth at start and on reload; it is
 * recorded as a version so the admin API's history and diff include it. */
static void record_file_policy(struct gw_server *srv, const struct gw_state *st)
{
    if (st->policy == NULL) {
        return;
    }
    size_t len = 0;
    const char *src = az_policy_source(st->policy, &len);
    char by[600];
    snprintf(by, sizeof(by), "file:%s", st->cfg->policy_file ? st->cfg->policy_file : "?");
    struct gh_err err;
    if (db_policy_version_add(st->cfg->db_path, src, len, by, "loaded from the policy file",
                              gh_now_us(), 1, NULL, &err) != 0) {
        GH_WARN("could not record the policy version: %s", err.msg);
    }
}

struct gw_state *gw_server_state(struct gw_server *srv)
{
    pthread_mutex_lock(&srv->state_mu);
    struct gw_state *s = gw_state_ref(srv->state);
    pthread_mutex_unlock(&srv->state_mu);
    return s;
}

/* ---- listeners ------------------------------------------------------------ */

static int split_hostport(const char *hp, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    if (hp[0] == '[') {
        const char *rb = strchr(hp, ']');
        if (rb == NULL || rb[1] != ':') {
            return -1;
        }
        snprintf(host, hl, "%.*s", (int)(rb - hp - 1), hp + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL) {
            return -1;
        }
        snprintf(host, hl, "%.*s", (int)(colon - hp), hp);
    }
    snprintf(port, pl, "%s", colon + 1);
    return 0;
}

int gw_listen_socket(const char *hostport, int reuseport, struct gh_err *err)
{
    char host[256], port[32];
    if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "bad listen address %s", hostport);
    }
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (resolve(host, port, &ss, &sl, err) != 0) {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return gh_err_set(err, GH_R_INTERNAL, "socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return gh_err_set(err, GH_R_INTERNAL, "cannot listen on %s: %s", hostport, strerror(e));
    }
    return fd;
}

/* ---- control thread ------------------------------------------------------- */

static struct gw_server *g_srv;

static void swap_state(struct gw_server *srv, struct gw_state *ns)
{
    pthread_mutex_lock(&srv->state_mu);
    struct gw_state *old = srv->state;
    srv->state = ns;
    pthread_mutex_unlock(&srv->state_mu);
    gw_state_unref(old);
    for (int i = 0; i < srv->n_workers; i++) {
        gw_worker_wake(&srv->workers[i]);
    }
    gw_authz_config_changed(srv);
}

static void do_reload_inner(struct gw_server *srv, const char *why);

static void do_reload(struct gw_server *srv, const char *why)
{
    gw_sd_notify("RELOADING=1");
    do_reload_inner(srv, why);
    gw_sd_notify("READY=1");
}

static void do_reload_inner(struct gw_server *srv, const char *why)
{
    GH_INFO("reload (%s): loading %s", why, srv->config_path);
    struct gh_errlist el = {0};
    struct gw_config *cfg = gw_config_load(srv->config_path, &el);
    if (cfg == NULL) {
        char buf[4096];
        gh_errlist_format(&el, buf, sizeof(buf));
        GH_ERROR("reload refused, keeping the running configuration:\n%s", buf);
        return;
    }
    struct gh_err err = {0};
    struct gw_state *ns = gw_state_new(cfg, ++g_gen, &err);
    if (ns == NULL) {
        GH_ERROR("reload refused, keeping the running configuration: %s", err.msg);
        gw_config_unref(cfg);
        return;
    }
    if (gw_tls_server_reload(srv->tls, cfg, &err) != 0) {
        GH_ERROR("reload refused (TLS), keeping the running configuration: %s", err.msg);
        gw_state_unref(ns);
        gw_config_unref(cfg);
        return;
    }
    gw_config_unref(cfg);
    swap_state(srv, ns);
    record_file_policy(srv, ns);
    char desc[128];
    gw_tls_server_describe(srv->tls, desc, sizeof(desc));
    GH_INFO("reload ok: generation %llu, server certificate %s, policy %s",
            (unsigned long long)ns->generation, desc,
            ns->policy ? az_policy_version(ns->policy) : "-");
}

static void do_reload_inner(struct gw_server *srv, const char *why);
static void do_reload(struct gw_server *srv, const char *why);

static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    do_reload(arg, "SIGHUP");
}

static struct event *drain_timer;

static void drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    GH_WARN("drain deadline passed; closing remaining connections");
    for (int i = 0; i < srv->n_workers; i++) {
        event_base_loopbreak(srv->workers[i].base);
    }
    event_base_loopbreak(srv->ctl_base);
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    struct gw_server *srv = arg;
    if (atomic_exchange(&srv->draining, 1)) {
        return;
    }
    gw_sd_notify("STOPPING=1");
    GH_INFO("signal %d: draining (deadline %d ms)", (int)sig, srv->state->cfg->drain_timeout_ms);
    for (int i = 0; i < srv->n_workers; i++) {
        struct gw_worker *w = &srv->workers[i];
        pthread_mutex_lock(&w->mu);
        w->wake_drain = 1;
        pthread_mutex_unlock(&w->mu);
        gw_worker_wake(w);
    }
    int ms = srv->state->cfg->drain_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    drain_timer = evtimer_new(srv->ctl_base, drain_deadline_cb, srv);
    event_add(drain_timer, &tv);
}

static int64_t last_ticket_rotate;

/* Write-behind of session counters: dirty sessions, once a second. */
static void flush_sessions(struct gw_server *srv)
{
    if (srv->sessions == NULL) {
        return;
    }
    enum { BATCH = 512 };
    static struct db_session rows[BATCH];
    for (int rounds = 0; rounds < 64; rounds++) {
        size_t n = gw_sessions_take_dirty(srv->sessions, rows, BATCH);
        if (n == 0) {
            break;
        }
        struct gh_err err;
        if (db_session_upsert(srv->state->cfg->db_path, rows, n, &err) != 0) {
            GH_WARN("session write-behind failed (%zu sessions, retried next tick): %s", n,
                    err.msg);
            break;
        }
        if (n < BATCH) {
            /* Drained. Busy sessions are dirtied again while we write; they
             * wait for the next tick instead of keeping this loop (and a
             * connection open per round) going. */
            break;
        }
    }
}

static void ctl_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    const struct gw_config *cfg = srv->state->cfg;
    int64_t now = gh_mono_us();
    static int64_t last_rate_t;
    static uint64_t last_rate_n;
    uint64_t nreq = atomic_load(&srv->ctr.allowed) + atomic_load(&srv->ctr.denied);
    if (last_rate_t != 0 && now > last_rate_t) {
        srv->req_rate = (double)(nreq - last_rate_n) * 1e6 / (double)(now - last_rate_t);
    }
    last_rate_t = now;
    last_rate_n = nreq;
    flush_sessions(srv);
    if (cfg->tls_ticket_rotate_s > 0 && now - last_ticket_rotate > (int64_t)cfg->tls_ticket_rotate_s * 1000000) {
        gw_tls_server_rotate_tickets(srv->tls);
        last_ticket_rotate = now;
    }
    static int64_t last_check;
    if (cfg->tls_reload_check_s > 0 && now - last_check > (int64_t)cfg->tls_reload_check_s * 1000000) {
        last_check = now;
        if (gw_tls_server_files_changed(srv->tls)) {
            do_reload(srv, "TLS file changed");
        }
    }
}

static void *ctl_join_thread(void *arg)
{
    struct gw_server *srv = arg;
    for (int i = 0; i < srv->n_workers; i++) {
        pthread_join(srv->workers[i].thread, NULL);
    }
    event_base_loopbreak(srv->ctl_base);
    return NULL;
}

struct sess_load {
    struct db_session *rows;
    size_t n, cap;
};

static int load_session_cb(void *arg, const struct db_session *s)
{
    struct sess_load *l = arg;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        struct db_session *nr = realloc(l->rows, nc * sizeof(*nr));
        if (nr == NULL) {
            return 1;
        }
        l->rows = nr;
        l->cap = nc;
    }
    l->rows[l->n++] = *s;
    return 0;
}

static struct gw_config *load_or_print(const char *path)
{
    struct gh_errlist el = {0};
    struct gw_config *cfg = gw_config_load(path, &el);
    if (cfg == NULL) {
        char buf[8192];
        gh_errlist_format(&el, buf, sizeof(buf));
        fprintf(stderr, "%s", buf);
    }
    return cfg;
}

int gw_check_config(const char *path)
{
    struct gw_config *cfg = load_or_print(path);
    if (cfg == NULL) {
        return 1;
    }
    struct gh_err err = {0};
    struct gw_state *st = gw_state_new(cfg, 1, &err);
    int rc = 0;
    if (st == NULL) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        rc = 1;
    } else {
        struct gw_tls_server *tls = gw_tls_server_new(cfg, &err);
        if (tls == NULL) {
            fprintf(stderr, "%s: %s\n", path, err.msg);
            rc = 1;
        }
        gw_tls_server_free(tls);
        gw_state_unref(st);
    }
    int n_routes = cfg->n_routes;
    gw_config_unref(cfg);
    if (rc == 0) {
        printf("%s: configuration ok (%d routes)\n", path, n_routes);
    }
    return rc;
}

/* Every connection is a descriptor (two while proxied): raise the soft
 * limit to the hard one, as far as the administrator allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t before = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            GH_INFO("file descriptor limit raised from %llu to %llu", (unsigned long long)before,
                    (unsigned long long)rl.rlim_max);
        }
    }
}

int gw_serve(const char *config_path)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    evthread_use_pthreads();
    struct gw_config *cfg = load_or_print(config_path);
    if (cfg == NULL) {
        return 1;
    }
    if (cfg->log_level != NULL) {
        int lvl = gh_log_level_parse(cfg->log_level);
        if (lvl >= 0) {
            gh_log_set_level((enum gh_log_level)lvl);
        }
    }
    struct gw_server *srv = calloc(1, sizeof(*srv));
    struct gh_err err = {0};
    int rc = 1;
    g_srv = srv;
    srv->config_path = strdup(config_path);
    srv->started_us = gh_now_us();
    pthread_mutex_init(&srv->state_mu, NULL);
    srv->state = gw_state_new(cfg, ++g_gen, &err);
    gw_config_unref(cfg);
    if (srv->state == NULL) {
        fprintf(stderr, "gatehouse: %s\n", err.msg);
        return 1;
    }
    cfg = srv->state->cfg;
    srv->tls = gw_tls_server_new(cfg, &err);
    if (srv->tls == NULL) {
        fprintf(stderr, "gatehouse: %s\n", err.msg);
        return 1;
    }
    struct db_log_opts lo = {
        .path = cfg->db_path,
        .mode = cfg->log_mode == GW_LOG_ASYNC ? DB_ASYNC : DB_STRICT,
        .queue_size = cfg->log_queue_size,
        .async_window_ms = cfg->log_async_window_ms,
        .no_fsync = cfg->log_sync_normal,
        .batch_done = gw_log_batch_done,
        .batch_arg = srv,
    };
    const char *noop = getenv("GATEHOUSE_BENCH_NOOP_LOG");
    if (noop != NULL && strcmp(noop, "1") == 0) {
        lo.mode = DB_NOOP; /* bench-only knob, see docs/BENCHMARKS.md */
        GH_WARN("GATEHOUSE_BENCH_NOOP_LOG=1: decisions are NOT written (benchmark only)");
    }
    srv->log = db_log_open(&lo, &err);
    if (srv->log == NULL) {
        fprintf(stderr, "gatehouse: decision log %s: %s\n", cfg->db_path, err.msg);
        return 1;
    }
    /* Durable state first: revocations in force and known sessions are
     * loaded before the first connection is accepted. */
    pthread_mutex_init(&srv->rev_mu, NULL);
    pthread_cond_init(&srv->rev_cv, NULL);
    srv->sessions = gw_sessions_new();
    if (srv->sessions == NULL || gw_ctl_revocations_reload(srv, &err) < 0) {
        fprintf(stderr, "gatehouse: loading revocations: %s\n", err.msg);
        goto out;
    }
    {
        struct db_session_query q = {.limit = 10000};
        struct sess_load sl = {0};
        if (db_session_list(cfg->db_path, &q, load_session_cb, &sl, &err) == 0) {
            gw_sessions_load(srv->sessions, sl.rows, sl.n);
            GH_INFO("loaded %zu sessions and the revocations in force", sl.n);
        } else {
            GH_WARN("loading sessions: %s", err.msg);
        }
        free(sl.rows);
    }
    record_file_policy(srv, srv->state);
    if (gw_authz_server_start(srv, &err) != 0) {
        fprintf(stderr, "gatehouse: %s\n", err.msg);
        goto out;
    }
    /* The control loop exists before any worker can hand it work. */
    srv->ctl_base = event_base_new();
    if (srv->ctl_base == NULL) {
        fprintf(stderr, "gatehouse: event_base_new failed\n");
        goto out;
    }
    gw_ctl_logout_init(srv, srv->ctl_base);
    int n = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    srv->n_workers = n;
    srv->workers = calloc((size_t)n, sizeof(*srv->workers));
    /* SO_REUSEPORT would let a second process (same uid) silently share the
     * port and half the traffic: bind once without it to prove it is ours. */
    int probe = gw_listen_socket(cfg->listen, 0, &err);
    if (probe < 0) {
        fprintf(stderr, "gatehouse: %s\n", err.msg);
        goto out;
    }
    close(probe);
    for (int i = 0; i < n; i++) {
        int fd = gw_listen_socket(cfg->listen, 1, &err);
        if (fd < 0) {
            fprintf(stderr, "gatehouse: %s\n", err.msg);
            goto out;
        }
        if (gw_worker_start(&srv->workers[i], srv, i, fd, &err) != 0) {
            fprintf(stderr, "gatehouse: %s\n", err.msg);
            goto out;
        }
    }
    struct event *ev_hup = evsignal_new(srv->ctl_base, SIGHUP, sighup_cb, srv);
    struct event *ev_term = evsignal_new(srv->ctl_base, SIGTERM, sigterm_cb, srv);
    struct event *ev_int = evsignal_new(srv->ctl_base, SIGINT, sigterm_cb, srv);
    struct event *ev_tick = event_new(srv->ctl_base, -1, EV_PERSIST, ctl_tick_cb, srv);
    struct timeval one = {1, 0};
    event_add(ev_hup, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_tick, &one);
    last_ticket_rotate = gh_mono_us();
    srv->admin = gw_admin_start(srv, srv->ctl_base, &err);
    if (srv->admin == NULL) {
        fprintf(stderr, "gatehouse: admin API: %s\n", err.msg);
        goto out;
    }
    pthread_t joiner;
    pthread_create(&joiner, NULL, ctl_join_thread, srv);
    GH_INFO("gatehouse %s listening on %s (%d workers, log %s%s %s)", GH_VERSION, cfg->listen, n,
            cfg->log_mode == GW_LOG_ASYNC ? "async" : "strict",
            cfg->log_mode == GW_LOG_STRICT && cfg->log_sync_normal ? " sync=normal" : "",
            cfg->db_path);
    gw_sd_notify("READY=1");
    event_base_dispatch(srv->ctl_base);
    /* Either all workers exited (drained) or the deadline broke the loops. */
    for (int i = 0; i < n; i++) {
        event_base_loopbreak(srv->workers[i].base);
    }
    pthread_join(joiner, NULL);
    GH_INFO("drained; flushing decision log");
    rc = 0;
out:
    gw_admin_stop(srv->admin);
    srv->admin = NULL;
    flush_sessions(srv);
    gw_authz_server_stop(srv);
    db_log_close(srv->log);
    srv->log = NULL;
    GH_INFO("exit %d", rc);
    return rc;
}
