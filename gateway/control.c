/*
 * control.c: the gateway side of every admin operation (gateway/control.h).
 *
 * Runs on the control thread only. Revocation is the one latency-critical
 * path: the revocation is committed to SQLite first (so an acknowledged
 * revocation survives a crash), then a new immutable revocation snapshot is
 * swapped in and every worker is woken through its mailbox; each worker
 * closes its matching live connections and acknowledges, and the admin call
 * returns how many connections were dropped (waiting at most 500 ms).
 */
#include "gateway/control.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz/policy.h"
#include "db/state.h"
#include "gateway/authz_glue.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/gateway.h"
#include "gateway/proxy_internal.h"
#include "gateway/session.h"

const char *gw_ctl_db_path(struct gw_server *srv)
{
    return srv->state->cfg->db_path;
}

/* ---- stats & metrics ------------------------------------------------------ */

json_t *gw_ctl_stats(struct gw_server *srv)
{
    struct gw_counters *c = &srv->ctr;
    int64_t now = gh_now_us();
    uint64_t allowed = atomic_load(&c->allowed), denied = atomic_load(&c->denied);
    uint64_t req = allowed + denied; /* every request ends in one decision */
    struct db_log_stats ls = {0};
    if (srv->log != NULL) {
        db_log_stats(srv->log, &ls);
    }
    int64_t age = -1;
    size_t nkeys = 0;
    char kerr[256] = "";
    gw_authz_key_status(srv, &age, &nkeys, kerr, sizeof(kerr));
    double decided = (double)(allowed + denied);
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:i}", "name",
        srv->state->cfg->server_name ? srv->state->cfg->server_name : "gatehouse", "version",
        GH_VERSION, "uptime_s", (json_int_t)((now - srv->started_us) / 1000000), "requests",
        (json_int_t)req, "allowed", (json_int_t)allowed, "denied", (json_int_t)denied, "req_per_s",
        srv->req_rate, "deny_rate", decided > 0 ? (double)denied / decided : 0.0,
        "live_connections", (json_int_t)atomic_load(&c->live_conns), "active_sessions",
        (json_int_t)(srv->sessions ? gw_sessions_count(srv->sessions, 1) : 0), "workers",
        srv->n_workers);
    json_object_set_new(o, "log",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:b, s:I, s:s}",
                                  "queued", (json_int_t)ls.queued, "committed",
                                  (json_int_t)ls.committed, "batches", (json_int_t)ls.batches,
                                  "commit_us", (json_int_t)ls.commit_us, "wal_checkpoints",
                                  (json_int_t)ls.wal_checkpoints,
                                  "failed", (json_int_t)ls.failed, "queue_depth", ls.queue_depth,
                                  "queue_size", ls.queue_size, "healthy", ls.healthy, "at_risk",
                                  (json_int_t)ls.at_risk, "mode",
                                  srv->state->cfg->log_mode == GW_LOG_ASYNC ? "async" : "strict"));
    json_object_set_new(o, "upstream",
                        json_pack("{s:I, s:I}", "connections_opened",
                                  (json_int_t)atomic_load(&c->upstream_connects), "errors",
                                  (json_int_t)atomic_load(&c->upstream_errors)));
    json_object_set_new(o, "keys",
                        json_pack("{s:I, s:I, s:s}", "count", (json_int_t)nkeys, "age_s",
                                  (json_int_t)age, "last_error", kerr));
    json_t *hs = json_object();
    for (int r = 0; r < GH_R__COUNT; r++) {
        uint64_t v = atomic_load(&c->refused_by_reason[r]);
        if (v > 0) {
            json_object_set_new(hs, gh_reason_name((enum gh_reason)r), json_integer((json_int_t)v));
        }
    }
    json_object_set_new(o, "handshakes_refused", hs);
    return o;
}

void gw_ctl_metrics(struct gw_server *srv, struct evbuffer *b)
{
    struct gw_counters *c = &srv->ctr;
    struct db_log_stats ls = {0};
    if (srv->log != NULL) {
        db_log_stats(srv->log, &ls);
    }
    evbuffer_add_printf(b, "# HELP gatehouse_requests_total Requests completed.\n"
                           "# TYPE gatehouse_requests_total counter\n"
                           "gatehouse_requests_total %llu\n",
                        (unsigned long long)atomic_load(&c->requests));
    evbuffer_add_printf(b, "# HELP gatehouse_decisions_total Decisions by reason code.\n"
                           "# TYPE gatehouse_decisions_total counter\n");
    for (int r = 0; r < GH_R__COUNT; r++) {
        uint64_t v = atomic_load(&c->decisions_by_reason[r]);
        if (v > 0) {
            evbuffer_add_printf(b, "gatehouse_decisions_total{reason=\"%s\"} %llu\n",
                                gh_reason_name((enum gh_reason)r), (unsigned long long)v);
        }
    }
    evbuffer_add_printf(b, "# TYPE gatehouse_connections_accepted_total counter\n"
                           "gatehouse_connections_accepted_total %llu\n"
                           "# TYPE gatehouse_live_connections gauge\n"
                           "gatehouse_live_connections %lld\n"
                           "# TYPE gatehouse_sessions_active gauge\n"
                           "gatehouse_sessions_active %zu\n"
                           "# TYPE gatehouse_upstream_errors_total counter\n"
                           "gatehouse_upstream_errors_total %llu\n"
                           "# HELP gatehouse_upstream_connections_opened_total Upstream "
                           "connections opened (not taken from the keep-alive pool).\n"
                           "# TYPE gatehouse_upstream_connections_opened_total counter\n"
                           "gatehouse_upstream_connections_opened_total %llu\n"
                           "# TYPE gatehouse_decision_log_queue_depth gauge\n"
                           "gatehouse_decision_log_queue_depth %d\n"
                           "# TYPE gatehouse_decision_log_committed_total counter\n"
                           "gatehouse_decision_log_committed_total %llu\n"
                           "# TYPE gatehouse_decision_log_failed_total counter\n"
                           "gatehouse_decision_log_failed_total %llu\n"
                           "# TYPE gatehouse_decision_log_healthy gauge\n"
                           "gatehouse_decision_log_healthy %d\n"
                           "# HELP gatehouse_decision_log_commits_total Decision-log transactions "
                           "committed.\n"
                           "# TYPE gatehouse_decision_log_commits_total counter\n"
                           "gatehouse_decision_log_commits_total %llu\n"
                           "# HELP gatehouse_decision_log_commit_seconds_total Time spent in "
                           "them, fsync included.\n"
                           "# TYPE gatehouse_decision_log_commit_seconds_total counter\n"
                           "gatehouse_decision_log_commit_seconds_total %.6f\n",
                        (unsigned long long)atomic_load(&c->accepted),
                        (long long)atomic_load(&c->live_conns),
                        srv->sessions ? gw_sessions_count(srv->sessions, 1) : (size_t)0,
                        (unsigned long long)atomic_load(&c->upstream_errors),
                        (unsigned long long)atomic_load(&c->upstream_connects), ls.queue_depth,
                        (unsigned long long)ls.committed, (unsigned long long)ls.failed,
                        ls.healthy, (unsigned long long)ls.batches, (double)ls.commit_us / 1e6);
    int64_t age = -1;
    size_t nkeys = 0;
    char kerr[256];
    if (gw_authz_key_status(srv, &age, &nkeys, kerr, sizeof(kerr)) == 0) {
        evbuffer_add_printf(b, "# TYPE gatehouse_issuer_keys gauge\ngatehouse_issuer_keys %zu\n"
                               "# TYPE gatehouse_issuer_keys_age_seconds gauge\n"
                               "gatehouse_issuer_keys_age_seconds %lld\n",
                            nkeys, (long long)age);
    }
}

/* ---- sessions ------------------------------------------------------------- */

static json_t *session_json(const struct gw_session *s)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:s}", "id",
                     s->id, "issuer", s->issuer, "subject", s->subject, "cert_thumbprint",
                     s->cert_thumb, "cert_subject", s->cert_subject, "client_addr", s->last_addr,
                     "first_seen_us", (json_int_t)s->first_seen_us, "last_seen_us",
                     (json_int_t)s->last_seen_us, "requests", (json_int_t)s->requests,
                     "bytes_in", (json_int_t)s->bytes_in, "bytes_out", (json_int_t)s->bytes_out,
                     "live_connections", s->live_conns, "state",
                     s->revoked ? "revoked" : (s->live_conns > 0 ? "active" : "idle"));
}

json_t *gw_ctl_sessions(struct gw_server *srv, int limit)
{
    json_t *arr = json_array();
    if (srv->sessions != NULL) {
        struct gw_session *snap = NULL;
        size_t n = gw_sessions_snapshot(srv->sessions, &snap, limit > 0 ? (size_t)limit : 500);
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(arr, session_json(&snap[i]));
        }
        free(snap);
    }
    return json_pack("{s:o}", "sessions", arr);
}

static json_t *row_json(int64_t id, const struct db_decision *d)
{
    return json_pack("{s:I, s:I, s:i, s:I, s:I, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, "
                     "s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s}",
                     "id", (json_int_t)id, "ts_us", (json_int_t)d->ts_us, "worker", d->worker,
                     "conn_id", (json_int_t)d->conn_id, "request_id", (json_int_t)d->request_id,
                     "session_id", d->session_id, "client_addr", d->client_addr, "client_port",
                     d->client_port, "cert_thumb", d->cert_thumb, "cert_subject", d->cert_subject,
                     "token_sub", d->token_sub, "token_iss", d->token_iss, "token_jti",
                     d->token_jti, "route", d->route, "method", d->method, "host", d->host,
                     "path", d->path, "decision", d->decision == GH_ALLOW ? "allow" : "deny",
                     "reason", gh_reason_name(d->reason), "rule_id", d->rule_id, "status",
                     d->status, "bytes_in", (json_int_t)d->bytes_in, "bytes_out",
                     (json_int_t)d->bytes_out, "latency_us", (json_int_t)d->latency_us, "detail",
                     d->detail);
}

static int collect_row(void *arg, int64_t id, const struct db_decision *d)
{
    json_array_append_new(arg, row_json(id, d));
    return 0;
}

json_t *gw_ctl_decisions(struct gw_server *srv, const struct db_query *q, struct gh_err *err)
{
    json_t *arr = json_array();
    if (db_decisions_query(gw_ctl_db_path(srv), q, collect_row, arr, err) != 0) {
        json_decref(arr);
        return NULL;
    }
    return json_pack("{s:o}", "decisions", arr);
}

json_t *gw_ctl_session(struct gw_server *srv, const char *id)
{
    struct gw_session s;
    if (srv->sessions == NULL || gw_sessions_get(srv->sessions, id, &s) != 0) {
        return NULL;
    }
    json_t *o = session_json(&s);
    if (s.last_token != NULL) {
        json_object_set(o, "claims", s.last_token->claims);
        az_token_unref(s.last_token);
    } else {
        json_object_set_new(o, "claims", json_object());
    }
    struct db_query q = {.decision = -1, .session_id = id, .limit = 50};
    struct gh_err err;
    json_t *d = gw_ctl_decisions(srv, &q, &err);
    json_object_set_new(o, "recent_decisions",
                        d ? json_incref(json_object_get(d, "decisions")) : json_array());
    json_decref(d);
    json_object_set_new(o, "connections", json_integer(s.live_conns));
    return o;
}

/* ---- revocations ------------------------------------------------------------ */

struct rev_collect {
    struct db_revocation *rows;
    size_t n, cap;
    int oom; /* the list stopped early: the snapshot would be partial */
};

static int collect_rev(void *arg, const struct db_revocation *r)
{
    struct rev_collect *c = arg;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        struct db_revocation *nr = realloc(c->rows, nc * sizeof(*nr));
        if (nr == NULL) {
            c->oom = 1;
            return 1;
        }
        c->rows = nr;
        c->cap = nc;
    }
    c->rows[c->n++] = *r;
    return 0;
}

/* Rebuild the revocation snapshot from the database and hand it to every
 * worker; wait (bounded) until each has applied it. Returns the number of
 * live connections the workers closed. */
static int revocations_apply(struct gw_server *srv, const struct db_revocation *extra,
                             struct gh_err *err);

int gw_ctl_revocations_reload(struct gw_server *srv, struct gh_err *err)
{
    return revocations_apply(srv, NULL, err);
}

/* The snapshot is what the database holds, plus `extra` (a revocation being
 * made right now, applied before it is persisted so live connections drop
 * without waiting for the disk). */
static int revocations_apply(struct gw_server *srv, const struct db_revocation *extra,
                             struct gh_err *err)
{
    struct rev_collect c = {0};
    if (db_revocation_list(gw_ctl_db_path(srv), 1, gh_now_us(), collect_rev, &c, err) != 0) {
        free(c.rows);
        return -1;
    }
    if (c.oom) { /* never install a partial set: the old one stays */
        free(c.rows);
        return gh_err_set(err, GH_R_INTERNAL, "out of memory listing revocations");
    }
    if (extra != NULL && collect_rev(&c, extra) != 0) {
        free(c.rows);
        return gh_err_set(err, GH_R_INTERNAL, "out of memory");
    }
    pthread_mutex_lock(&srv->rev_mu);
    struct gw_revset *ns = gw_revset_new(c.rows, c.n, ++srv->rev_gen);
    free(c.rows);
    if (ns == NULL) {
        pthread_mutex_unlock(&srv->rev_mu);
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return -1;
    }
    struct gw_revset *old = srv->revset;
    srv->revset = ns;
    uint64_t gen = srv->rev_gen;
    uint64_t closed_before = srv->rev_closed;
    pthread_mutex_unlock(&srv->rev_mu);
    gw_revset_unref(old);
    for (int i = 0; i < srv->n_workers; i++) {
        gw_worker_wake(&srv->workers[i]);
    }
    /* Bounded wait for every worker to apply this generation. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += 500 * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->rev_mu);
    for (;;) {
        int done = 1;
        for (int i = 0; i < srv->n_workers; i++) {
            done &= srv->workers[i].rev_applied >= gen;
        }
        if (done || pthread_cond_timedwait(&srv->rev_cv, &srv->rev_mu, &dl) != 0) {
            break;
        }
    }
    uint64_t closed = srv->rev_closed - closed_before;
    pthread_mutex_unlock(&srv->rev_mu);
    return (int)closed;
}

static int valid_target(const char *kind, const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 255) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* A certificate target is a SHA-256 thumbprint: 64 hex digits (any case)
 * or the 43-character base64url x5t#S256 form. Either becomes lower-case
 * hex, the form sessions and rows use. Anything else is refused (-1): a
 * target that can never match a certificate would look blocked and block
 * nothing. */
static int cert_target_hex(const char *in, char out[65])
{
    size_t n = strlen(in);
    if (n == 43) {
        uint8_t raw[33];
        if (gh_b64url_decode(in, 43, raw) != 32) {
            return -1;
        }
        gh_hex(raw, 32, out);
        return 0;
    }
    if (n != 64) {
        return -1;
    }
    for (size_t i = 0; i < 64; i++) {
        char ch = in[i];
        if (ch >= 'A' && ch <= 'F') {
            ch = (char)(ch - 'A' + 'a');
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return -1;
        }
        out[i] = ch;
    }
    out[64] = '\0';
    return 0;
}

static json_t *rev_json(const struct db_revocation *r, int64_t now)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "id", (json_int_t)r->id,
                     "kind", db_revocation_kind_name(r->kind), "target", r->target, "reason",
                     r->reason, "actor", r->actor, "created_us", (json_int_t)r->created_us,
                     "expires_us", (json_int_t)r->expires_us, "lifted_us",
                     (json_int_t)r->lifted_us, "active",
                     r->lifted_us == 0 && (r->expires_us == 0 || r->expires_us > now));
}

json_t *gw_ctl_revoke(struct gw_server *srv, const struct gw_actor *who, const char *kind,
                      const char *target, const char *reason, int64_t expires_us,
                      struct gh_err *err)
{
    int k = db_revocation_kind_parse(kind ? kind : "");
    if (k < 0) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "kind must be session, subject, cert or token");
        return NULL;
    }
    if (target == NULL || !valid_target(kind, target)) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "invalid target for kind %s", kind);
        return NULL;
    }
    struct db_revocation r = {0};
    r.kind = (enum db_revocation_kind)k;
    if (k == DB_REVOKE_CERT) {
        if (cert_target_hex(target, r.target) != 0) {
            gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                       "cert target must be the certificate's SHA-256 thumbprint: 64 hex digits "
                       "or 43 base64url characters (x5t#S256)");
            return NULL;
        }
    } else {
        snprintf(r.target, sizeof(r.target), "%s", target);
    }
    snprintf(r.reason, sizeof(r.reason), "%.*s", (int)sizeof(r.reason) - 1, reason ? reason : "");
    snprintf(r.actor, sizeof(r.actor), "%.*s", (int)sizeof(r.actor) - 1,
             who && who->name ? who->name : "?");
    r.created_us = gh_now_us();
    r.expires_us = expires_us;
    /* Apply first, so live connections drop within milliseconds even when
     * the disk is slow (the commit below can wait behind the decision
     * writer's WAL); acknowledge only after the revocation is durable. If
     * persisting fails, the snapshot is rebuilt from the database (the
     * revocation is withdrawn) and the caller gets an error: the dropped
     * connections stay dropped, nothing claims a revocation that a restart
     * would forget. */
    int64_t t0 = gh_mono_us();
    struct gh_err aerr = {0};
    int closed = revocations_apply(srv, &r, &aerr);
    int64_t t1 = gh_mono_us();
    if (db_revocation_add(gw_ctl_db_path(srv), &r, &r.id, err) != 0) {
        struct gh_err e2;
        (void)gw_ctl_revocations_reload(srv, &e2);
        GH_ERROR("revocation of %s %s NOT persisted (%s); withdrawn", kind, r.target, err->msg);
        return NULL;
    }
    if (closed < 0) {
        /* Stored, but the snapshot the workers enforce could not be built
         * (reading the revocations failed): try once more from the
         * database, and never answer "done" for a revocation not enforced. */
        closed = gw_ctl_revocations_reload(srv, &aerr);
        if (closed < 0) {
            GH_ERROR("revocation %lld of %s %s is stored but NOT enforced yet: %s",
                     (long long)r.id, kind, r.target, aerr.msg);
            gh_err_set(err, GH_R_INTERNAL,
                       "revocation %lld is stored but not enforced yet (%s); it takes effect at "
                       "the next revocation or reload -- retry",
                       (long long)r.id, aerr.msg);
            return NULL;
        }
    }
    if (k == DB_REVOKE_SESSION && srv->sessions != NULL) {
        gw_sessions_revoke(srv->sessions, r.target, r.created_us);
    }
    GH_INFO("revoked %s %s by %s: %d live connections closed in %lld us", kind, r.target, r.actor,
            closed, (long long)(t1 - t0));
    return json_pack("{s:o, s:i, s:I}", "revocation", rev_json(&r, r.created_us),
                     "closed_connections", closed < 0 ? 0 : closed, "apply_us",
                     (json_int_t)(t1 - t0));
}

int gw_ctl_unrevoke(struct gw_server *srv, const struct gw_actor *who, int64_t id,
                    struct gh_err *err)
{
    int rc = db_revocation_lift(gw_ctl_db_path(srv), id, who && who->name ? who->name : "?",
                                gh_now_us(), err);
    if (rc == 1) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "no revocation %lld in force",
                          (long long)id);
    }
    if (rc != 0) {
        return -1;
    }
    return gw_ctl_revocations_reload(srv, err) < 0 ? -1 : 0;
}

struct rev_page {
    json_t *arr;
    size_t limit;
    int truncated;
};

static int collect_rev_json(void *arg, const struct db_revocation *r)
{
    struct rev_page *p = arg;
    if (json_array_size(p->arr) >= p->limit) {
        p->truncated = 1; /* one more exists: stop the listing */
        return 1;
    }
    json_array_append_new(p->arr, rev_json(r, gh_now_us()));
    return 0;
}

json_t *gw_ctl_revocations(struct gw_server *srv, int limit, struct gh_err *err)
{
    struct rev_page p = {.arr = json_array(), .limit = limit > 0 ? (size_t)limit : 1000};
    if (db_revocation_list(gw_ctl_db_path(srv), 0, gh_now_us(), collect_rev_json, &p, err) != 0) {
        json_decref(p.arr);
        return NULL;
    }
    return json_pack("{s:o, s:b}", "revocations", p.arr, "truncated", p.truncated);
}

/* ---- policy ------------------------------------------------------------------ */

json_t *gw_ctl_policy_get(struct gw_server *srv)
{
    struct gw_state *st = gw_server_state(srv);
    json_t *o;
    if (st->policy == NULL) {
        o = json_pack("{s:n, s:s, s:i}", "version", "source", "", "rules", 0);
    } else {
        size_t len = 0;
        const char *src = az_policy_source(st->policy, &len);
        o = json_pack("{s:s, s:s%, s:I}", "version", az_policy_version(st->policy), "source", src,
                      len, "rules", (json_int_t)az_policy_rule_count(st->policy));
    }
    gw_state_unref(st);
    return o;
}

static json_t *errors_json(const struct gh_errlist *el)
{
    json_t *arr = json_array();
    for (int i = 0; i < el->n; i++) {
        json_array_append_new(arr, json_string(el->msg[i]));
    }
    if (el->dropped > 0) {
        char m[64];
        snprintf(m, sizeof(m), "(%d more errors)", el->dropped);
        json_array_append_new(arr, json_string(m));
    }
    return arr;
}

static struct az_policy *compile(struct gw_server *srv, const char *yaml, size_t len,
                                 struct gh_errlist *el)
{
    struct az_policy *p = az_policy_load_buf("policy.yaml", yaml, len, el);
    if (p == NULL) {
        return NULL;
    }
    const struct gw_config *cfg = srv->state->cfg;
    const char *ids[GW_MAX_ROUTES];
    for (int i = 0; i < cfg->n_routes; i++) {
        ids[i] = cfg->routes[i].id;
    }
    if (az_policy_check_routes(p, ids, cfg->n_routes, el) != 0) {
        az_policy_unref(p);
        return NULL;
    }
    return p;
}

json_t *gw_ctl_policy_validate(struct gw_server *srv, const char *yaml, size_t len)
{
    struct gh_errlist el = {0};
    struct az_policy *p = compile(srv, yaml, len, &el);
    if (p == NULL) {
        return json_pack("{s:b, s:o}", "ok", 0, "errors", errors_json(&el));
    }
    json_t *o = json_pack("{s:b, s:s, s:I}", "ok", 1, "version", az_policy_version(p), "rules",
                          (json_int_t)az_policy_rule_count(p));
    az_policy_unref(p);
    return o;
}

/* Swap a new policy into a copy of the current snapshot (config unchanged). */
int gw_ctl_policy_activate(struct gw_server *srv, struct az_policy *p, struct gh_err *err);

json_t *gw_ctl_policy_apply(struct gw_server *srv, const struct gw_actor *who, const char *yaml,
                            size_t len, int *status)
{
    struct gh_errlist el = {0};
    struct az_policy *p = compile(srv, yaml, len, &el);
    if (p == NULL) {
        *status = 422;
        return json_pack("{s:b, s:o}", "ok", 0, "errors", errors_json(&el));
    }
    struct gh_err err = {0};
    struct gw_state *cur = gw_server_state(srv);
    const char *prev = cur->policy ? az_policy_version(cur->policy) : "";
    char prevbuf[65];
    snprintf(prevbuf, sizeof(prevbuf), "%s", prev);
    gw_state_unref(cur);
    struct db_policy_version v;
    if (db_policy_version_add(gw_ctl_db_path(srv), yaml, len, who && who->name ? who->name : "?",
                              "applied via admin API", gh_now_us(), 1, &v, &err) != 0 ||
        gw_ctl_policy_activate(srv, p, &err) != 0) {
        az_policy_unref(p);
        *status = 500;
        return json_pack("{s:b, s:s}", "ok", 0, "error", err.msg);
    }
    *status = 200;
    json_t *o = json_pack("{s:b, s:s, s:s}", "ok", 1, "version", az_policy_version(p), "previous",
                          prevbuf);
    az_policy_unref(p);
    return o;
}

static int collect_ver(void *arg, const struct db_policy_version *v)
{
    json_array_append_new(arg, json_pack("{s:s, s:s, s:I, s:I, s:b, s:s}", "version", v->hash,
                                         "applied_by", v->applied_by, "applied_us",
                                         (json_int_t)v->applied_us, "activated_us",
                                         (json_int_t)v->activated_us, "active", v->active,
                                         "comment", v->comment));
    return 0;
}

json_t *gw_ctl_policy_versions(struct gw_server *srv)
{
    json_t *arr = json_array();
    struct gh_err err;
    if (db_policy_version_list(gw_ctl_db_path(srv), 100, collect_ver, arr, &err) != 0) {
        GH_WARN("listing policy versions: %s", err.msg);
    }
    return json_pack("{s:o}", "versions", arr);
}

/* Lines of s (a trailing text without '\n' is a line too). Heap arrays;
 * returns the count, or -1 when out of memory. */
static long split_lines(const char *s, const char ***lines, size_t **lens)
{
    long n = 0;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '\n');
        n++;
        p = e ? e + 1 : p + strlen(p);
    }
    *lines = calloc((size_t)n + 1, sizeof(**lines));
    *lens = calloc((size_t)n + 1, sizeof(**lens));
    if (*lines == NULL || *lens == NULL) {
        free(*lines);
        free(*lens);
        return -1;
    }
    long i = 0;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        (*lines)[i] = p;
        (*lens)[i++] = l;
        p += l + (e ? 1 : 0);
    }
    return n;
}

/* A line diff for policy files: common leading and trailing lines as
 * context, an LCS diff of the changed middle when it is at most
 * GW_DIFF_LCS_MAX lines a side, otherwise every old middle line removed and
 * every new one added -- longer than minimal, never wrong. (It used to cut
 * both files at 2000 lines, so a change further down showed as no change.) */
void gw_ctl_line_diff(const char *a, const char *b, struct evbuffer *out)
{
    const char **al = NULL, **bl = NULL;
    size_t *alen = NULL, *blen = NULL;
    long na = split_lines(a, &al, &alen);
    long nb = na < 0 ? -1 : split_lines(b, &bl, &blen);
    if (na < 0 || nb < 0) {
        evbuffer_add_printf(out, "(out of memory: no diff)\n");
        if (na >= 0) {
            free(al);
            free(alen);
        }
        return;
    }
#define SAME(i, j) (alen[i] == blen[j] && memcmp(al[i], bl[j], alen[i]) == 0)
    long pre = 0;
    while (pre < na && pre < nb && SAME(pre, pre)) {
        pre++;
    }
    long suf = 0;
    while (suf < na - pre && suf < nb - pre && SAME(na - 1 - suf, nb - 1 - suf)) {
        suf++;
    }
    for (long k = 0; k < pre; k++) {
        evbuffer_add_printf(out, " %.*s\n", (int)alen[k], al[k]);
    }
    long ma = na - pre - suf, mb = nb - pre - suf;
    unsigned short *t = NULL;
    if (ma <= GW_DIFF_LCS_MAX && mb <= GW_DIFF_LCS_MAX) {
        t = calloc((size_t)(ma + 1) * (size_t)(mb + 1), sizeof(*t));
    }
    if (t == NULL) {
        for (long k = pre; k < pre + ma; k++) {
            evbuffer_add_printf(out, "-%.*s\n", (int)alen[k], al[k]);
        }
        for (long k = pre; k < pre + mb; k++) {
            evbuffer_add_printf(out, "+%.*s\n", (int)blen[k], bl[k]);
        }
    } else {
#define T(i, j) t[(size_t)(i) * (size_t)(mb + 1) + (size_t)(j)]
        for (long i = ma - 1; i >= 0; i--) {
            for (long j = mb - 1; j >= 0; j--) {
                if (SAME(pre + i, pre + j)) {
                    T(i, j) = (unsigned short)(T(i + 1, j + 1) + 1);
                } else {
                    T(i, j) = T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) : T(i, j + 1);
                }
            }
        }
        long i = 0, j = 0;
        while (i < ma || j < mb) {
            if (i < ma && j < mb && SAME(pre + i, pre + j)) {
                evbuffer_add_printf(out, " %.*s\n", (int)alen[pre + i], al[pre + i]);
                i++;
                j++;
            } else if (j < mb && (i == ma || T(i, j + 1) > T(i + 1, j))) {
                evbuffer_add_printf(out, "+%.*s\n", (int)blen[pre + j], bl[pre + j]);
                j++;
            } else {
                evbuffer_add_printf(out, "-%.*s\n", (int)alen[pre + i], al[pre + i]);
                i++;
            }
        }
#undef T
        free(t);
    }
    for (long k = na - suf; k < na; k++) {
        evbuffer_add_printf(out, " %.*s\n", (int)alen[k], al[k]);
    }
#undef SAME
    free(al);
    free(alen);
    free(bl);
    free(blen);
}

json_t *gw_ctl_policy_diff(struct gw_server *srv, const char *from, const char *to, int *status)
{
    struct gh_err err = {0};
    struct db_policy_version m;
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    if (from == NULL || db_policy_version_get(gw_ctl_db_path(srv), from, &m, &a, &la, &err) != 0) {
        *status = 404;
        return json_pack("{s:s}", "error", from ? "unknown 'from' version" : "'from' is required");
    }
    if (db_policy_version_get(gw_ctl_db_path(srv), to, &m, &b, &lb, &err) != 0) {
        free(a);
        *status = 404;
        return json_pack("{s:s}", "error", "unknown 'to' version");
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "--- %s\n+++ %s\n", from, to ? to : m.hash);
    gw_ctl_line_diff(a, b, out);
    size_t n = evbuffer_get_length(out);
    json_t *o = json_pack("{s:s%}", "diff", (const char *)evbuffer_pullup(out, -1), n);
    evbuffer_free(out);
    free(a);
    free(b);
    *status = 200;
    return o;
}

json_t *gw_ctl_policy_rollback(struct gw_server *srv, const struct gw_actor *who,
                               const char *version, int *status)
{
    struct gh_err err = {0};
    struct db_policy_version m;
    char *src = NULL;
    size_t len = 0;
    if (version == NULL ||
        db_policy_version_get(gw_ctl_db_path(srv), version, &m, &src, &len, &err) != 0) {
        *status = 404;
        return json_pack("{s:s}", "error", "unknown version");
    }
    json_t *o = gw_ctl_policy_apply(srv, who, src, len, status);
    free(src);
    return o;
}

/* ---- admin actions as decision rows --------------------------------------- */

static void admin_row(struct db_decision *d, const struct gw_actor *who, const char *method,
                      const char *path, int status, enum gh_reason reason, const char *detail);

void gw_ctl_log_admin(struct gw_server *srv, const struct gw_actor *who, const char *method,
                      const char *path, int status, enum gh_reason reason, const char *detail)
{
    struct db_decision d;
    admin_row(&d, who, method, path, status, reason, detail);
    (void)gw_log_decision(srv, NULL, &d, NULL, NULL);
}

int gw_ctl_log_accepting(struct gw_server *srv)
{
    if (srv->log == NULL) {
        return 1;
    }
    struct db_log_stats ls;
    db_log_stats(srv->log, &ls);
    return ls.healthy && ls.queue_depth < ls.queue_size;
}

/* Shared by the control thread (waiting) and the log writer (signalling):
 * freed by whichever lets go last, so a waiter that gave up is safe. */
struct durable_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, refs;
};

static void durable_release(struct durable_wait *w)
{
    pthread_mutex_lock(&w->mu);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
}

static void durable_cb(void *arg, int ok)
{
    struct durable_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->ok = ok;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    durable_release(w);
}

int gw_ctl_log_admin_durable(struct gw_server *srv, const struct gw_actor *who,
                             const char *method, const char *path, int status,
                             enum gh_reason reason, const char *detail)
{
    struct db_decision d;
    admin_row(&d, who, method, path, status, reason, detail);
    struct durable_wait *w = calloc(1, sizeof(*w));
    if (w == NULL || srv->log == NULL) {
        free(w);
        return gw_log_decision(srv, NULL, &d, NULL, NULL);
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->refs = 2;
    if (gw_log_decision(srv, NULL, &d, durable_cb, w) != 0) {
        GH_ERROR("admin action took effect but its decision row was refused: %s %s (%s)",
                 d.method, d.path, d.detail);
        w->refs = 1;
        durable_release(w);
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0) {
            break;
        }
    }
    int ok = w->done && w->ok;
    pthread_mutex_unlock(&w->mu);
    durable_release(w);
    if (!ok) {
        GH_ERROR("admin action took effect but its decision row is not committed (it stays "
                 "queued and is retried): %s %s (%s)",
                 d.method, d.path, d.detail);
        return -1;
    }
    return 0;
}

static void admin_row(struct db_decision *out, const struct gw_actor *who, const char *method,
                      const char *path, int status, enum gh_reason reason, const char *detail)
{
    struct db_decision d;
    memset(&d, 0, sizeof(d));
    d.ts_us = gh_now_us();
    d.worker = -1;
    snprintf(d.client_addr, sizeof(d.client_addr), "%s", who && who->address ? who->address : "");
    snprintf(d.cert_thumb, sizeof(d.cert_thumb), "%s",
             who && who->cert_thumb ? who->cert_thumb : "");
    snprintf(d.cert_subject, sizeof(d.cert_subject), "%.*s", (int)sizeof(d.cert_subject) - 1,
             who && who->name ? who->name : "");
    snprintf(d.route, sizeof(d.route), "admin");
    snprintf(d.method, sizeof(d.method), "%.*s", (int)sizeof(d.method) - 1, method ? method : "");
    snprintf(d.path, sizeof(d.path), "%.*s", (int)sizeof(d.path) - 1, path ? path : "");
    d.decision = reason == GH_R_ADMIN_OK ? GH_ALLOW : GH_DENY;
    d.reason = reason;
    d.status = status;
    snprintf(d.detail, sizeof(d.detail), "%.*s", (int)sizeof(d.detail) - 1, detail ? detail : "");
    *out = d;
}

/* ---- back-channel logout ------------------------------------------------- */

struct gw_logout_req {
    struct gw_conn *c;
    struct gw_worker *w;
    char sub[256];
    char sid[128];
    struct gw_logout_req *next;
};

void gw_conn_mailbox_done(void *arg, int ok);

void gw_ctl_logout_submit(struct gw_server *srv, struct gw_conn *c, const char *sub,
                          const char *sid)
{
    struct gw_logout_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        c->special_result = -1;
        gw_conn_mailbox_done(c, 0);
        return;
    }
    r->c = c;
    snprintf(r->sub, sizeof(r->sub), "%s", sub);
    snprintf(r->sid, sizeof(r->sid), "%s", sid);
    pthread_mutex_lock(&srv->logout_mu);
    r->next = srv->logout_head;
    srv->logout_head = r;
    pthread_mutex_unlock(&srv->logout_mu);
    event_active(srv->logout_ev, EV_READ, 0);
}

/* Revoke every session of sub (and/or with token sid): a later fresh login
 * starts a new session (DESIGN.md section 4). Returns sessions revoked or -1. */
static int logout_apply(struct gw_server *srv, const char *sub, const char *sid)
{
    struct gw_session *snap = NULL;
    size_t n = gw_sessions_snapshot(srv->sessions, &snap, 100000);
    int count = 0;
    struct gw_actor who = {.name = "backchannel_logout", .address = "issuer", .cert_thumb = ""};
    for (size_t i = 0; i < n; i++) {
        struct gw_session *s = &snap[i];
        int match = sub[0] != '\0' && strcmp(s->subject, sub) == 0;
        if (!match && sid[0] != '\0') {
            struct gw_session full;
            if (gw_sessions_get(srv->sessions, s->id, &full) == 0) {
                match = full.last_token != NULL && strcmp(full.last_token->sid, sid) == 0;
                if (full.last_token != NULL) {
                    az_token_unref(full.last_token);
                }
            }
        }
        if (!match || s->revoked) {
            continue;
        }
        struct db_revocation r = {0};
        r.kind = DB_REVOKE_SESSION;
        snprintf(r.target, sizeof(r.target), "%s", s->id);
        snprintf(r.reason, sizeof(r.reason), "OIDC back-channel logout");
        snprintf(r.actor, sizeof(r.actor), "%s", who.name);
        r.created_us = gh_now_us();
        struct gh_err err;
        if (db_revocation_add(gw_ctl_db_path(srv), &r, NULL, &err) != 0) {
            GH_ERROR("logout: persisting the revocation failed: %s", err.msg);
            free(snap);
            return -1;
        }
        gw_sessions_revoke(srv->sessions, s->id, r.created_us);
        count++;
    }
    free(snap);
    struct gh_err err;
    int closed = count > 0 ? gw_ctl_revocations_reload(srv, &err) : 0;
    GH_INFO("back-channel logout sub=%s sid=%s: %d sessions revoked, %d connections closed",
            sub[0] ? sub : "-", sid[0] ? sid : "-", count, closed < 0 ? 0 : closed);
    return count;
}

static void logout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_server *srv = arg;
    pthread_mutex_lock(&srv->logout_mu);
    struct gw_logout_req *list = srv->logout_head;
    srv->logout_head = NULL;
    pthread_mutex_unlock(&srv->logout_mu);
    while (list != NULL) {
        struct gw_logout_req *r = list;
        list = r->next;
        r->c->special_result = logout_apply(srv, r->sub, r->sid);
        gw_conn_mailbox_done(r->c, 1);
        free(r);
    }
}

void gw_ctl_logout_init(struct gw_server *srv, struct event_base *ctl)
{
    pthread_mutex_init(&srv->logout_mu, NULL);
    srv->logout_ev = event_new(ctl, -1, 0, logout_cb, srv);
}
