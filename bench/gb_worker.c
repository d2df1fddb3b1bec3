/*
 * gb_worker.c: one load-generating thread: an epoll loop over a fixed set
 * of connection slots, each a small state machine (connect, TLS handshake,
 * send, receive, and hold for --idle).
 *
 * Why it looks like this: the tool has to push tens of thousands of
 * requests a second from one core while the server under test gets the
 * other, so the hot path makes the fewest system calls it can. Sockets are
 * non-blocking and registered once, edge-triggered, for both directions;
 * a slot is driven until the socket would block (EAGAIN, or BoringSSL's
 * WANT_READ/WANT_WRITE, which only arise from EAGAIN on a socket BIO), so
 * no epoll_ctl call is needed per request. The request bytes are shared and
 * each slot has a fixed input buffer, so a keep-alive request allocates
 * nothing. Every epoll registration carries the slot's generation number:
 * an event queued for a connection that has since been closed and reopened
 * on the same slot is recognised and dropped.
 *
 * Failures are statistics, not fatal: a failed slot is counted under one
 * error kind (the first message of each kind is kept for the report), then
 * retried after a short back-off so a dead server does not turn the tool
 * into a busy loop. Time bounds are enforced here: nothing starts after
 * the end of the window, and every worker leaves at the hard deadline.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gb.h"

#define RETRY_NS (10ull * 1000 * 1000) /* back-off after a failed connection */
#define SCAN_NS (10ull * 1000 * 1000)  /* timeout / retry scan cadence */
#define IDLE_BURST 64                  /* --idle: connections opening at once per worker */
#define MAX_EVENTS 256

enum cstate {
    C_FREE,       /* never started (--idle) */
    C_WAIT,       /* back-off after an error; retry_at */
    C_CONNECTING, /* non-blocking connect in progress */
    C_HANDSHAKE,  /* TLS handshake */
    C_SEND,       /* writing the request */
    C_RECV,       /* reading the response */
    C_HOLD,       /* --idle: response received, connection held open */
    C_DONE,       /* slot finished for this run */
};

struct conn {
    int fd;
    uint32_t gen; /* bumped on open and close; tags epoll events */
    uint32_t idx;
    enum cstate state;
    SSL *ssl;
    SSL_SESSION *sess;     /* resume mode: newest session seen on this slot */
    uint64_t t_conn;       /* ns: connect started */
    uint64_t t_req;        /* ns: current request started */
    uint64_t deadline;     /* ns: timeout for the current step */
    uint64_t retry_at;     /* ns: C_WAIT ends */
    size_t sent;           /* request bytes written */
    uint32_t reqs_on_conn; /* responses completed on this connection */
    int rx_any;            /* any byte received on this connection */
    int counted;           /* current request began inside the measured window */
    struct gb_resp resp;
    size_t in_len;
    char *in; /* GB_IN_CAP bytes, part of the worker's slab */
};

struct worker {
    struct gb_run *run;
    const struct gb_opts *o;
    int ep;
    struct conn *c;
    int n;
    char *slab;
    int active;    /* slots not C_DONE (timed modes) */
    int opening;   /* --idle: slots between connect and first response */
    int next_free; /* --idle: first slot never started */
    int measuring;
    uint64_t timeout_ns;
    struct gb_stats *st;
};

uint64_t gb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *gb_err_name(enum gb_errkind k)
{
    static const char *const names[GB_E_COUNT] = {
        [GB_E_CONNECT] = "connect",
        [GB_E_TLS_HANDSHAKE] = "tls_handshake",
        [GB_E_TLS_READ] = "tls_read",
        [GB_E_TLS_WRITE] = "tls_write",
        [GB_E_READ] = "read",
        [GB_E_WRITE] = "write",
        [GB_E_CLOSED] = "closed",
        [GB_E_TIMEOUT] = "timeout",
        [GB_E_BAD_RESPONSE] = "bad_response",
    };
    return (unsigned)k < GB_E_COUNT ? names[k] : "?";
}

static void conn_open(struct worker *w, struct conn *c);
static int drive(struct worker *w, struct conn *c, uint32_t ev);

static void conn_close(struct worker *w, struct conn *c, int clean)
{
    if (c->ssl != NULL) {
        if (clean) {
            (void)SSL_shutdown(c->ssl); /* one close_notify, never wait for the peer's */
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (c->fd >= 0) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->gen++;
    c->in_len = 0;
    c->rx_any = 0;
    c->reqs_on_conn = 0;
    c->sent = 0;
}

static void slot_done(struct worker *w, struct conn *c)
{
    if (c->state != C_DONE) {
        c->state = C_DONE;
        w->active--;
    }
}

/* --idle: a slot stopped opening (held, or failed). The last one across all
 * workers starts the hold period. */
static void idle_settled(struct worker *w)
{
    w->opening--;
    if (atomic_fetch_sub(&w->run->idle_pending, 1) == 1) {
        uint64_t until = gb_now_ns() + (uint64_t)(w->o->secs * 1e9);
        atomic_store(&w->run->hold_until, until);
        printf("HOLDING open=%d secs=%.1f\n", w->o->conns, w->o->secs);
        fflush(stdout);
    }
}

static void conn_fail(struct worker *w, struct conn *c, enum gb_errkind k, const char *fmt, ...)
    GB_PRINTF(4, 5);

static void conn_fail(struct worker *w, struct conn *c, enum gb_errkind k, const char *fmt, ...)
{
    w->st->err[k]++;
    if (w->st->err_first[k][0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->st->err_first[k], GB_ERRMSG, fmt, ap);
        va_end(ap);
    }
    enum cstate was = c->state;
    conn_close(w, c, 0);
    if (w->o->mode == GB_MODE_IDLE) {
        if (was != C_HOLD) {
            idle_settled(w);
        }
        slot_done(w, c);
        return;
    }
    c->state = C_WAIT;
    c->retry_at = gb_now_ns() + RETRY_NS;
}

/* Text for a failed BoringSSL call; drains the thread's error queue. Sets
 * *alert when the peer sent a fatal alert. */
static void ssl_errtext(char *buf, size_t len, int sslerr, int ret, int saved_errno, int *alert)
{
    uint32_t e = ERR_get_error();
    *alert = 0;
    if (e != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET) {
            *alert = 1;
        }
        ERR_error_string_n(e, buf, len);
        ERR_clear_error();
        return;
    }
    if (sslerr == SSL_ERROR_SYSCALL) {
        if (ret == 0 || saved_errno == 0) {
            snprintf(buf, len, "connection closed by peer");
        } else {
            snprintf(buf, len, "%s", strerror(saved_errno));
        }
        return;
    }
    snprintf(buf, len, "SSL error %d", sslerr);
}

static void tls_fail(struct worker *w, struct conn *c, enum gb_errkind k, int sslerr, int ret)
{
    char txt[GB_ERRMSG];
    int alert = 0;
    ssl_errtext(txt, sizeof(txt), sslerr, ret, errno, &alert);
    /* In TLS 1.3 the client finishes its handshake before the server has
     * checked the client certificate, so a refused certificate arrives as an
     * alert on the first read. Count it where an operator looks for it. */
    if (alert && !c->rx_any && c->reqs_on_conn == 0) {
        k = GB_E_TLS_HANDSHAKE;
        if (c->state != C_HANDSHAKE && w->st->handshakes > 0) {
            w->st->handshakes--; /* it only looked complete from our side */
            if (SSL_session_reused(c->ssl) && w->st->resumed > 0) {
                w->st->resumed--;
            }
        }
    }
    conn_fail(w, c, k, "%s", txt);
}

/* Whether a new request may start now; consumes one unit of the -n budget. */
static GB_WUR int may_begin(struct worker *w)
{
    const struct gb_run *run = w->run;
    if (w->o->mode == GB_MODE_IDLE) {
        return 1;
    }
    if (*run->interrupted || gb_now_ns() >= run->t_end) {
        return 0;
    }
    if (w->o->max_reqs > 0 && w->measuring) {
        if (atomic_fetch_add(&w->run->issued, 1) >= w->o->max_reqs) {
            return 0;
        }
    }
    return 1;
}

static void begin_request(struct worker *w, struct conn *c, uint64_t now)
{
    c->t_req = now;
    c->deadline = now + w->timeout_ns;
    c->sent = 0;
    c->state = C_SEND;
}

/* Starts a connection on slot c: one request's worth of budget. */
static void conn_open(struct worker *w, struct conn *c)
{
    const struct gb_opts *o = w->o;
    if (!may_begin(w)) {
        slot_done(w, c);
        return;
    }
    uint64_t now = gb_now_ns();
    c->t_conn = now;
    c->t_req = now;
    c->deadline = now + w->timeout_ns;
    c->counted = w->measuring;
    c->state = C_CONNECTING;
    c->gen++;
    c->fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(w, c, GB_E_CONNECT, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)c->gen << 32) | c->idx,
    };
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(w, c, GB_E_CONNECT, "epoll_ctl: %s", strerror(errno));
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)&o->addr, o->addrlen) != 0) {
        if (errno != EINPROGRESS) {
            conn_fail(w, c, GB_E_CONNECT, "connect: %s", strerror(errno));
        }
        return; /* EPOLLOUT says when it is done */
    }
    (void)drive(w, c, EPOLLOUT);
}

static GB_WUR int on_connected(struct worker *w, struct conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        conn_fail(w, c, GB_E_CONNECT, "connect: %s", strerror(soerr));
        return -1;
    }
    w->st->connects++;
    if (w->run->ctx == NULL) {
        uint64_t now = gb_now_ns();
        gb_hist_record(&w->st->hs, (now - c->t_conn) / 1000);
        if (w->o->mode == GB_MODE_KEEPALIVE || w->o->mode == GB_MODE_IDLE) {
            begin_request(w, c, now);
        } else {
            begin_request(w, c, c->t_req);
        }
        return 1;
    }
    c->ssl = SSL_new(w->run->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(w, c, GB_E_TLS_HANDSHAKE, "SSL_new/SSL_set_fd failed");
        return -1;
    }
    SSL_set_app_data(c->ssl, c);
    SSL_set_connect_state(c->ssl);
    if (w->o->verify_name[0] != '\0' && !w->o->verify_name_is_ip) {
        (void)SSL_set_tlsext_host_name(c->ssl, w->o->verify_name);
    }
    if (w->o->mode == GB_MODE_RESUME && c->sess != NULL) {
        (void)SSL_set_session(c->ssl, c->sess);
    }
    c->state = C_HANDSHAKE;
    return 1;
}

static GB_WUR int do_handshake(struct worker *w, struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return 0;
        }
        tls_fail(w, c, GB_E_TLS_HANDSHAKE, e, r);
        return -1;
    }
    uint64_t now = gb_now_ns();
    w->st->handshakes++;
    if (SSL_session_reused(c->ssl)) {
        w->st->resumed++;
    }
    gb_hist_record(&w->st->hs, (now - c->t_conn) / 1000);
    if (w->o->mode == GB_MODE_KEEPALIVE || w->o->mode == GB_MODE_IDLE) {
        begin_request(w, c, now);
    } else {
        begin_request(w, c, c->t_req); /* latency includes connect + handshake */
    }
    return 1;
}

static GB_WUR int do_send(struct worker *w, struct conn *c)
{
    const struct gb_run *run = w->run;
    while (c->sent < run->req_len) {
        size_t left = run->req_len - c->sent;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, run->req + c->sent, left > INT_MAX ? INT_MAX : (int)left);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    return 0;
                }
                tls_fail(w, c, GB_E_TLS_WRITE, e, r);
                return -1;
            }
            c->sent += (size_t)r;
            w->st->bytes_out += (uint64_t)r;
        } else {
            ssize_t n = send(c->fd, run->req + c->sent, left, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return 0;
                }
                if (errno == EINTR) {
                    continue;
                }
                conn_fail(w, c, GB_E_WRITE, "send: %s", strerror(errno));
                return -1;
            }
            c->sent += (size_t)n;
            w->st->bytes_out += (uint64_t)n;
        }
    }
    gb_resp_reset(&c->resp, run->no_body_expected);
    c->state = C_RECV;
    return 0; /* the response raises a fresh EPOLLIN edge */
}

/* A complete response. Returns 1 to keep driving c, -1 when c was closed
 * or reopened (its pending event no longer applies), 0 to wait. */
static GB_WUR int response_done(struct worker *w, struct conn *c, int eof)
{
    const struct gb_opts *o = w->o;
    uint64_t now = gb_now_ns();
    struct gb_stats *st = w->st;
    if (c->counted) {
        st->reqs++;
        gb_hist_record(&st->lat, (now - c->t_req) / 1000);
        st->status[c->resp.status]++;
        if (o->expect_status != 0 && c->resp.status != o->expect_status) {
            st->mismatched++;
        }
    }
    c->reqs_on_conn++;
    if (o->mode == GB_MODE_IDLE) {
        c->state = C_HOLD;
        idle_settled(w);
        return 0;
    }
    if (o->mode == GB_MODE_KEEPALIVE && !eof && !c->resp.close) {
        if (!may_begin(w)) {
            conn_close(w, c, 1);
            slot_done(w, c);
            return -1;
        }
        c->counted = w->measuring;
        begin_request(w, c, now);
        return 1;
    }
    if (o->mode == GB_MODE_KEEPALIVE) {
        st->server_closes++;
    }
    conn_close(w, c, !eof);
    conn_open(w, c);
    return -1;
}

/* Reads what the socket has. In C_RECV feeds the parser; in C_HOLD only
 * notices the peer closing. */
static GB_WUR int do_recv(struct worker *w, struct conn *c)
{
    for (;;) {
        size_t space = GB_IN_CAP - c->in_len;
        ssize_t n;
        int eof = 0;
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, c->in + c->in_len, (int)space);
            if (r > 0) {
                n = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    return 0;
                }
                if (e == SSL_ERROR_ZERO_RETURN ||
                    (e == SSL_ERROR_SYSCALL && r == 0 && ERR_peek_error() == 0)) {
                    eof = 1;
                    n = 0;
                } else {
                    tls_fail(w, c, GB_E_TLS_READ, e, r);
                    return -1;
                }
            }
        } else {
            n = read(c->fd, c->in + c->in_len, space);
            if (n == 0) {
                eof = 1;
            } else if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return 0;
                }
                if (errno == EINTR) {
                    continue;
                }
                conn_fail(w, c, GB_E_READ, "read: %s", strerror(errno));
                return -1;
            }
        }
        if (eof) {
            if (c->state == C_RECV && gb_resp_eof(&c->resp)) {
                return response_done(w, c, 1);
            }
            if (c->state == C_HOLD) {
                conn_fail(w, c, GB_E_CLOSED, "peer closed an idle connection");
            } else if (c->resp.state == GB_R_HEAD && c->in_len == 0) {
                conn_fail(w, c, GB_E_CLOSED, "peer closed before responding");
            } else {
                conn_fail(w, c, GB_E_CLOSED, "peer closed mid-response");
            }
            return -1;
        }
        w->st->bytes_in += (uint64_t)n;
        c->rx_any = 1;
        if (c->state == C_HOLD) {
            continue; /* discard; keep reading to EAGAIN */
        }
        c->in_len += (size_t)n;
        size_t used = 0;
        int rc = gb_resp_feed(&c->resp, c->in, c->in_len, &used);
        if (used > 0) {
            memmove(c->in, c->in + used, c->in_len - used);
            c->in_len -= used;
        }
        if (rc == GB_FEED_BAD) {
            conn_fail(w, c, GB_E_BAD_RESPONSE, "%s", c->resp.why);
            return -1;
        }
        if (rc == GB_FEED_DONE) {
            if (c->in_len > 0) {
                conn_fail(w, c, GB_E_BAD_RESPONSE, "bytes after the end of the response");
                return -1;
            }
            return response_done(w, c, 0);
        }
        if (c->ssl == NULL && (size_t)n < space) {
            return 0; /* plain socket drained: the next bytes raise a new edge */
        }
    }
}

/* Runs slot c's state machine until it has to wait. Returns -1 when the
 * connection the event was for is gone. */
static int drive(struct worker *w, struct conn *c, uint32_t ev)
{
    for (;;) {
        int r;
        switch (c->state) {
        case C_CONNECTING:
            if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
                return 0;
            }
            r = on_connected(w, c);
            break;
        case C_HANDSHAKE:
            r = do_handshake(w, c);
            break;
        case C_SEND:
            r = do_send(w, c);
            break;
        case C_RECV:
        case C_HOLD:
            r = do_recv(w, c);
            break;
        default:
            return 0;
        }
        if (r <= 0) {
            return r;
        }
    }
}

static const char *step_name(enum cstate st)
{
    switch (st) {
    case C_CONNECTING:
        return "TCP connect";
    case C_HANDSHAKE:
        return "TLS handshake";
    case C_SEND:
        return "sending the request";
    case C_RECV:
        return "response";
    default:
        return "step";
    }
}

/* Times out slow steps and restarts slots whose back-off is over. */
static void scan(struct worker *w, uint64_t now)
{
    for (int i = 0; i < w->n; i++) {
        struct conn *c = &w->c[i];
        switch (c->state) {
        case C_CONNECTING:
        case C_HANDSHAKE:
        case C_SEND:
        case C_RECV:
            if (now >= c->deadline) {
                conn_fail(w, c, GB_E_TIMEOUT, "%s not done within --timeout-ms",
                          step_name(c->state));
            }
            break;
        case C_WAIT:
            if (now >= c->retry_at) {
                conn_open(w, c);
            }
            break;
        default:
            break;
        }
    }
}

static void idle_fill(struct worker *w)
{
    while (w->opening < IDLE_BURST && w->next_free < w->n) {
        struct conn *c = &w->c[w->next_free++];
        w->opening++;
        conn_open(w, c);
    }
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct conn *c = SSL_get_app_data(ssl);
    if (c == NULL) {
        return 0;
    }
    SSL_SESSION_free(c->sess);
    c->sess = sess; /* returning 1 hands us the reference */
    return 1;
}

void gb_tls_enable_resume(SSL_CTX *ctx)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
}

int gb_worker_run(struct gb_run *run, int id, int n, struct gb_worker_result *res, char *msg,
                  size_t msglen)
{
    int ret = -1;
    struct worker w = {
        .run = run,
        .o = run->o,
        .ep = -1,
        .n = n,
        .active = n,
        .timeout_ns = (uint64_t)run->o->timeout_ms * 1000000ull,
        .st = &res->st,
    };
    struct epoll_event evs[MAX_EVENTS];
    int idle = run->o->mode == GB_MODE_IDLE;

    gb_stats_reset(w.st);
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    w.c = calloc((size_t)n, sizeof(*w.c));
    w.slab = calloc((size_t)n, GB_IN_CAP); /* large: mmap'd, pages touched on use */
    if (w.ep < 0 || w.c == NULL || w.slab == NULL) {
        snprintf(msg, msglen, "worker %d: cannot set up (%s)", id, strerror(errno));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        w.c[i].fd = -1;
        w.c[i].idx = (uint32_t)i;
        w.c[i].in = w.slab + (size_t)i * GB_IN_CAP;
        w.c[i].state = C_FREE;
    }
    w.measuring = idle || gb_now_ns() >= run->t_measure;
    if (idle) {
        idle_fill(&w);
    } else {
        for (int i = 0; i < n; i++) {
            conn_open(&w, &w.c[i]);
        }
    }
    uint64_t next_scan = gb_now_ns() + SCAN_NS;
    uint64_t now;
    for (;;) {
        now = gb_now_ns();
        if (!w.measuring && now >= run->t_measure) {
            gb_stats_reset(w.st); /* warmup over: drop what it recorded */
            w.measuring = 1;
        }
        if (*run->interrupted || now >= run->t_hard) {
            break;
        }
        if (idle) {
            uint64_t until = atomic_load(&run->hold_until);
            if (until != 0 && now >= until) {
                break;
            }
            idle_fill(&w);
        } else if (now >= run->t_end || w.active == 0) {
            break;
        }
        if (now >= next_scan) {
            scan(&w, now);
            next_scan = now + SCAN_NS;
        }
        int k = epoll_wait(w.ep, evs, MAX_EVENTS, 10);
        if (k < 0 && errno != EINTR) {
            snprintf(msg, msglen, "worker %d: epoll_wait: %s", id, strerror(errno));
            goto out;
        }
        for (int i = 0; i < k; i++) {
            uint32_t idx = (uint32_t)evs[i].data.u64;
            uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
            struct conn *c = &w.c[idx];
            if (c->gen != gen || c->fd < 0) {
                continue; /* stale event for a connection already gone */
            }
            (void)drive(&w, c, evs[i].events);
        }
    }
    res->t_finish = now;
    ret = 0;
out:
    for (int i = 0; w.c != NULL && i < n; i++) {
        if (w.c[i].state == C_HOLD && w.c[i].fd >= 0) {
            w.st->idle_open++;
        } else if (w.c[i].state >= C_CONNECTING && w.c[i].state <= C_RECV && w.c[i].counted) {
            w.st->unfinished++; /* in flight when the window closed: not an error */
        }
        conn_close(&w, &w.c[i], 0);
        SSL_SESSION_free(w.c[i].sess);
    }
    if (w.ep >= 0) {
        close(w.ep);
    }
    free(w.c);
    free(w.slab);
    return ret;
}
