/*
 * gateway.h: the running gateway -- server, workers, connections -- shared
 * by the gateway's own .c files (not a public API of another module).
 *
 * Owns: struct gw_server (one per process), struct gw_worker (one per worker
 * thread, each with its own event_base and SO_REUSEPORT listener),
 * struct gw_state (an immutable snapshot of config + resolved upstreams +
 * policy + issuer settings, refcounted, swapped on reload).
 *
 * Thread rules (DESIGN.md section 3): a connection never leaves its worker.
 * Other threads talk to a worker only through its mailbox (mutex-protected
 * lists + event_active on the worker's notify event). The db writer thread
 * calls back into a worker only through that mailbox.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "authz/policy.h"
#include "authz/token.h"
#include "db/db.h"
#include "gateway/config.h"
#include "gateway/tls.h"

struct gw_conn;
struct gw_upconn;
struct gw_authz;
struct gw_sessions;
struct gw_revset;
struct gw_admin;
struct gw_logout_req;

/* Resolved per-route runtime: the upstream address (resolved on the control
 * thread, never on a worker) and its TLS client context. */
struct gw_route_rt {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    SSL_CTX *tls; /* NULL for http:// */
};

struct gw_state {
    atomic_int refs;
    uint64_t generation;
    struct gw_config *cfg;
    struct gw_route_rt rt[GW_MAX_ROUTES];
    struct az_policy *policy;  /* NULL when no route needs authz */
    struct az_issuer issuer;
};

struct gw_state *gw_state_ref(struct gw_state *s);
void gw_state_unref(struct gw_state *s);
/* Build a state from a loaded config: resolve upstreams, load the policy,
 * build upstream TLS contexts. NULL + err on failure (nothing half-applied). */
struct gw_state *gw_state_new(struct gw_config *cfg, uint64_t gen, struct gh_err *err) GH_WUR;

struct gw_counters {
    atomic_ullong accepted, handshakes_ok, requests, allowed, denied;
    atomic_ullong refused_by_reason[GH_R__COUNT];
    atomic_ullong decisions_by_reason[GH_R__COUNT];
    atomic_ullong upstream_errors, upstream_connects, log_waits;
    atomic_llong live_conns;
};

struct gw_worker {
    int id;
    struct gw_server *srv;
    pthread_t thread;
    struct event_base *base;
    int listen_fd;
    struct event *accept_ev;
    struct event *accept_pause_ev; /* re-arms accept_ev after running out of descriptors */
    int64_t accept_warned_us;      /* last "pausing accepts" warning (rate limit) */
    uint64_t accept_pauses;
    struct event *notify_ev; /* mailbox wake-up */
    struct event *reap_ev;   /* frees closed connections after the callback chain */
    struct event *tick_ev;   /* 1 s housekeeping */

    pthread_mutex_t mu; /* guards the mailbox below */
    struct gw_conn *done_head; /* connections whose decision row committed */
    int wake_drain;
    /* Rows committed in the batch the log writer is finishing: touched only
     * by the writer thread, moved to done_head once per batch. */
    struct gw_conn *staged;
    struct event *log_wake_ev; /* wakes the log writer at the end of a loop pass */
    int log_wake;

    struct gw_state *state; /* this worker's reference to the current snapshot */
    struct gw_conn *conns;  /* all live downstream connections (doubly linked) */
    struct gw_conn *reap;   /* closed, to free at the end of the loop pass */
    struct gw_upconn *upreap;
    struct gw_upconn *idle[GW_MAX_ROUTES]; /* upstream keep-alive pools, per route */
    int n_idle[GW_MAX_ROUTES];
    uint64_t idle_gen; /* state generation the pools belong to */
    uint64_t next_conn;
    int draining;
    struct az_token_cache *token_cache;
    struct gw_revset *revset;  /* this worker's reference to the revocation snapshot */
    uint64_t rev_applied;      /* generation applied to live connections (under srv->rev_mu) */
    uint8_t scratch[65536]; /* read buffer for this worker's thread */
    /* Request-head buffers lent to connections only while a request is in
     * progress, so an idle keep-alive connection holds none (issue 8: RSS
     * per idle connection). Bounded free list; extras are freed. */
    char *head_pool[256];
    size_t head_pool_cap[256];
    int n_head_pool;
};

struct gw_server {
    char *config_path;
    pthread_mutex_t state_mu;
    struct gw_state *state; /* current snapshot; take with gw_server_state() */
    struct gw_tls_server *tls;
    struct db_log *log;
    struct gw_authz *authz; /* issuer keys & refresher; NULL when no issuer */
    struct gw_sessions *sessions;
    pthread_mutex_t rev_mu;  /* guards revset, rev_gen, rev_closed, workers' rev_applied */
    pthread_cond_t rev_cv;
    struct gw_revset *revset;
    uint64_t rev_gen;
    uint64_t rev_closed;
    struct gw_admin *admin;
    double req_rate;         /* requests/s over the last control tick */
    pthread_mutex_t logout_mu; /* back-channel logouts handed to the control thread */
    struct gw_logout_req *logout_head;
    struct event *logout_ev;
    int n_workers;
    struct gw_worker *workers;
    struct event_base *ctl_base;
    atomic_int draining;
    int64_t started_us;
    struct gw_counters ctr;
};

/* A copy of the current snapshot with another policy; swapped in at once. */
int gw_ctl_policy_activate(struct gw_server *srv, struct az_policy *p, struct gh_err *err);
/* Worker -> control thread: revoke the sessions a verified logout token
 * names (sub and/or sid); the answer comes back through c's worker mailbox. */
void gw_ctl_logout_submit(struct gw_server *srv, struct gw_conn *c, const char *sub,
                          const char *sid);
void gw_ctl_logout_init(struct gw_server *srv, struct event_base *ctl);
/* Re-read revocations from the database into a new snapshot for the workers. */
int gw_ctl_revocations_reload(struct gw_server *srv, struct gh_err *err);

/* A new reference to the current snapshot (thread-safe). */
struct gw_state *gw_server_state(struct gw_server *srv);

/* Worker lifecycle (worker.c). */
int gw_worker_start(struct gw_worker *w, struct gw_server *srv, int id, int listen_fd,
                    struct gh_err *err) GH_WUR;
void gw_worker_wake(struct gw_worker *w);

/* Connection entry points (proxy.c). */
void gw_conn_accept(struct gw_worker *w, int fd, const struct sockaddr *sa, socklen_t salen);
void gw_conn_commit_done(struct gw_worker *w); /* drain the done mailbox */
/* db_log batch_done hook (log writer thread): hand staged commits to workers. */
void gw_log_batch_done(void *srv);
void gw_conn_reap(struct gw_worker *w);
void gw_worker_drain(struct gw_worker *w); /* close idle connections, stop keep-alive */
void gw_upstream_reap(struct gw_worker *w);
void gw_upstream_pool_flush(struct gw_worker *w);

/* Decision logging helper: queue a row; logs loudly on refusal. */
/* Queue a decision row. w: the calling worker (its writer wake-up is
 * deferred to the end of the loop pass), or NULL off the worker threads. */
int gw_log_decision(struct gw_server *srv, struct gw_worker *w, struct db_decision *d,
                    db_commit_cb cb, void *arg);

#endif
