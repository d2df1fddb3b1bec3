/*
 * worker.c: one worker thread = one event_base + one SO_REUSEPORT listener
 * (DESIGN.md section 3). The kernel spreads new connections across the
 * workers' listeners; a connection then never leaves its worker, so the
 * request path needs no locks. Other threads reach a worker only through
 * its mailbox: they push under w->mu and event_active() the notify event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/authz_glue.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/gateway.h"
#include "gateway/proxy_internal.h"
#include "gateway/session.h"

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    (void)fd;
    (void)what;
    if (!w->draining) {
        event_add(w->accept_ev, NULL);
    }
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            int e = errno;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* The connection stays in the backlog and the level-triggered
                 * listener would fire again at once: a busy loop at 100 % CPU
                 * writing a warning per turn. Pause accepting for 100 ms and
                 * warn at most once a second. */
                w->accept_pauses++;
                int64_t now = gh_mono_us();
                if (w->accept_warned_us == 0 || now - w->accept_warned_us >= 1000000) {
                    GH_WARN("worker %d accept: %s; not accepting for 100 ms (%llu pauses so far; "
                            "raise the descriptor limit, LimitNOFILE)",
                            w->id, strerror(e), (unsigned long long)w->accept_pauses);
                    w->accept_warned_us = now;
                }
                event_del(w->accept_ev);
                struct timeval pause = {0, 100000};
                event_add(w->accept_pause_ev, &pause);
            } else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
                GH_WARN("worker %d accept: %s", w->id, strerror(e));
            }
            return;
        }
        if (w->draining) {
            close(cfd);
            continue;
        }
        gw_conn_accept(w, cfd, (struct sockaddr *)&ss, sl);
    }
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    gw_conn_commit_done(w);
    pthread_mutex_lock(&w->mu);
    int drain = w->wake_drain;
    pthread_mutex_unlock(&w->mu);
    /* pick up a new snapshot if the control thread swapped one in */
    struct gw_state *cur = gw_server_state(w->srv);
    if (cur != w->state) {
        gw_state_unref(w->state);
        w->state = cur;
    } else {
        gw_state_unref(cur);
    }
    gw_authz_worker_notify(w);
    if (drain && !w->draining) {
        if (w->accept_ev) {
            event_del(w->accept_ev);
        }
        gw_worker_drain(w);
    }
    if (w->draining && w->conns == NULL) {
        event_base_loopexit(w->base, NULL);
    }
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    gw_conn_reap(w);
    if (w->draining && w->conns == NULL) {
        event_base_loopexit(w->base, NULL);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    if (w->draining && w->conns == NULL) {
        event_base_loopexit(w->base, NULL);
    }
}

static void *worker_main(void *arg)
{
    struct gw_worker *w = arg;
    pthread_setname_np(pthread_self(), "gh-worker");
    event_base_dispatch(w->base);
    /* drained or deadline passed: close whatever is left */
    while (w->conns != NULL) {
        gw_conn_close_reason(w->conns, "shutdown");
    }
    gw_upstream_pool_flush(w);
    /* Rows queued in the last pass (or by the closes above) whose wake-up
     * event will not run any more. */
    w->log_wake = 0;
    db_log_wake(w->srv->log);
    gw_conn_commit_done(w);
    gw_conn_reap(w);
    while (w->n_head_pool > 0) {
        free(w->head_pool[--w->n_head_pool]);
    }
    return NULL;
}

static void log_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    (void)fd;
    (void)what;
    w->log_wake = 0;
    db_log_wake(w->srv->log);
}

void gw_worker_wake(struct gw_worker *w)
{
    if (w->notify_ev != NULL) {
        event_active(w->notify_ev, EV_READ, 0);
    }
}

int gw_worker_start(struct gw_worker *w, struct gw_server *srv, int id, int listen_fd,
                    struct gh_err *err)
{
    w->id = id;
    w->srv = srv;
    w->listen_fd = listen_fd;
    pthread_mutex_init(&w->mu, NULL);
    w->state = gw_server_state(srv);
    w->idle_gen = w->state->generation;
    /* The epoll changelist folds the add/del of one request's write
     * interest (armed, then flushed in the same loop turn) into nothing:
     * two epoll_ctl calls fewer per request. Its documented hazard is fds
     * cloned with dup(), which workers never make; an fd closed and reused
     * within one turn is handled by libevent (MOD -> ENOENT -> ADD). */
    struct event_config *ecfg = event_config_new();
    if (ecfg != NULL) {
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
    }
    if (w->base == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "event_base_new failed");
    }
    w->accept_ev = event_new(w->base, listen_fd, EV_READ | EV_PERSIST, accept_cb, w);
    w->accept_pause_ev = evtimer_new(w->base, accept_resume_cb, w);
    w->notify_ev = event_new(w->base, -1, 0, notify_cb, w);
    w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    w->log_wake_ev = event_new(w->base, -1, 0, log_wake_cb, w);
    w->token_cache = az_token_cache_new(4096);
    pthread_mutex_lock(&srv->rev_mu);
    if (srv->revset != NULL) {
        w->revset = gw_revset_ref(srv->revset);
        w->rev_applied = gw_revset_gen(srv->revset);
    }
    pthread_mutex_unlock(&srv->rev_mu);
    if (w->accept_ev == NULL || w->accept_pause_ev == NULL || w->notify_ev == NULL ||
        w->reap_ev == NULL ||
        w->tick_ev == NULL || w->log_wake_ev == NULL || w->token_cache == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "worker %d: out of memory", id);
    }
    struct timeval one = {1, 0};
    event_add(w->accept_ev, NULL);
    event_add(w->tick_ev, &one);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "worker %d: pthread_create failed", id);
    }
    return 0;
}
