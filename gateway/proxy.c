/*
 * proxy.c: the downstream connection state machine and the HTTP/1.1
 * reverse proxy.
 *
 * One enum names every state; conn_set_state() checks a table of allowed
 * transitions so an impossible path is caught in tests rather than turning
 * into a use-after-free in production. libevent callbacks only translate
 * readiness into calls of the machine. Connections are never freed inside
 * their own callback chain: conn_close() marks them and the worker's reap
 * event frees them after the loop pass (Redis' freeClientAsync).
 *
 * Bodies stream in both directions with bounded buffers: when the buffer
 * toward one side exceeds GW_HIGH_WATER we stop reading from the other side
 * until it drains, so a 1 GiB upload or download uses flat memory. The raw
 * message framing (Content-Length or chunked) is validated by http-parser
 * and forwarded byte for byte, so the upstream frames exactly what we framed.
 *
 * Every request ends in exactly one decision row. In strict logging mode the
 * response head (allowed or denied) is held in `held` until the writer thread
 * reports the row committed; async mode releases it at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>

#include "authz/logout.h"
#include "gateway/authz_glue.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/gateway.h"
#include "gateway/http.h"
#include "gateway/proxy_internal.h"
#include "gateway/transport.h"

#define GW_HIGH_WATER (256 * 1024)
#define GW_READ_CHUNK (64 * 1024)
#define GW_RESP_HEAD_MAX (64 * 1024)

/* ---- state machine -------------------------------------------------------- */

static const char *const state_names[] = {
    [CS_HANDSHAKE] = "handshake", [CS_IDLE] = "idle",         [CS_HEAD] = "head",
    [CS_UPSTREAM] = "upstream",   [CS_LOGWAIT] = "logwait",   [CS_STREAM] = "stream",
    [CS_RESPOND] = "respond",     [CS_CLOSING] = "closing",   [CS_CLOSED] = "closed",
};

const char *gw_conn_state_name(enum conn_state s)
{
    return (unsigned)s < CS__COUNT ? state_names[s] : "?";
}

/* allowed[from] is a bit set of states reachable from `from`. */
#define B(s) (1u << (s))
static const unsigned allowed[CS__COUNT] = {
    [CS_HANDSHAKE] = B(CS_IDLE) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_IDLE] = B(CS_HEAD) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_HEAD] = B(CS_UPSTREAM) | B(CS_LOGWAIT) | B(CS_RESPOND) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_UPSTREAM] = B(CS_LOGWAIT) | B(CS_STREAM) | B(CS_RESPOND) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_LOGWAIT] = B(CS_STREAM) | B(CS_RESPOND) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_STREAM] = B(CS_IDLE) | B(CS_HEAD) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_RESPOND] = B(CS_IDLE) | B(CS_HEAD) | B(CS_CLOSING) | B(CS_CLOSED),
    [CS_CLOSING] = B(CS_CLOSED),
    [CS_CLOSED] = 0,
};

static void conn_set_state(struct gw_conn *c, enum conn_state to)
{
    if (c->state == to) {
        return;
    }
    if (!(allowed[c->state] & B(to))) {
        GH_ERROR("conn=%llu illegal transition %s -> %s", (unsigned long long)c->id,
                 gw_conn_state_name(c->state), gw_conn_state_name(to));
        abort(); /* a logic error, caught by tests; never reachable from input */
    }
    c->state = to;
}

/* ---- forward declarations ------------------------------------------------ */

static void conn_update_events(struct gw_conn *c);
static int conn_flush(struct gw_conn *c);
static void conn_process(struct gw_conn *c);
static void conn_close(struct gw_conn *c, const char *why);
static void conn_arm_timer(struct gw_conn *c, int ms);
static void request_finished(struct gw_conn *c);
static void up_close(struct gw_upconn *u, const char *why);
static void up_update_events(struct gw_upconn *u);
static void pump_request_body(struct gw_conn *c);
static void pump_response(struct gw_conn *c);
static int up_flush(struct gw_upconn *u);

/* ---- decision rows -------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const char *src, size_t len)
{
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    if (len >= cap) {
        /* documented truncation of long fields: mark it */
        if (cap > 4) {
            memcpy(dst, src, cap - 4);
            memcpy(dst + cap - 4, "...", 4);
        } else {
            dst[0] = '\0';
        }
        return;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void row_base(struct gw_conn *c, struct db_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->ts_us = gh_now_us();
    d->worker = c->w->id;
    d->conn_id = c->id;
    d->request_id = c->req_no;
    copy_str(d->client_addr, sizeof(d->client_addr), c->peer_ip, strlen(c->peer_ip));
    d->client_port = c->peer_port;
    if (c->has_cert) {
        copy_str(d->cert_thumb, sizeof(d->cert_thumb), c->cert.thumbprint_hex, 64);
        copy_str(d->cert_subject, sizeof(d->cert_subject), c->cert.subject,
                 strlen(c->cert.subject));
    }
}

static void row_request(struct gw_conn *c, struct db_decision *d)
{
    row_base(c, d);
    if (c->head_ok) {
        const struct gw_req_head *rh = &c->rh;
        copy_str(d->method, sizeof(d->method), rh->method, rh->method_len);
        const struct gw_hdr *hh = &rh->hdrs[rh->host_idx];
        copy_str(d->host, sizeof(d->host), c->head + hh->val_off, hh->val_len);
        size_t pl = c->path_len;
        copy_str(d->path, sizeof(d->path), rh->target, pl);
    }
    if (c->route != NULL) {
        copy_str(d->route, sizeof(d->route), c->route->id, strlen(c->route->id));
    }
    gw_authz_fill_row(c, d);
    d->bytes_in = c->bytes_in_req;
    d->latency_us = gh_mono_us() - c->req_start_mono;
}

int gw_log_decision(struct gw_server *srv, struct gw_worker *w, struct db_decision *d,
                    db_commit_cb cb, void *arg)
{
    if (d->reason >= 0 && d->reason < GH_R__COUNT) {
        atomic_fetch_add(&srv->ctr.decisions_by_reason[d->reason], 1);
    }
    /* allowed/denied count requests only: not admin calls (worker -1) and
     * not refused handshakes (no method), which have their own counters. */
    if (d->worker >= 0 && d->method[0] != '\0') {
        if (d->decision == GH_ALLOW) {
            atomic_fetch_add(&srv->ctr.allowed, 1);
        } else {
            atomic_fetch_add(&srv->ctr.denied, 1);
        }
    }
    if (srv->log == NULL) {
        if (cb != NULL) {
            cb(arg, 1);
        }
        return 0;
    }
    struct gh_err err;
    int wake = 0;
    int rc = w != NULL ? db_log_append_nowake(srv->log, d, cb, arg, &wake, &err)
                       : db_log_append(srv->log, d, cb, arg, &err);
    if (wake && !w->log_wake) {
        /* Runs after the I/O callbacks already active in this loop pass:
         * the rows of the whole pass reach the writer as one batch. */
        w->log_wake = 1;
        event_active(w->log_wake_ev, EV_READ, 0);
    }
    if (rc != 0) {
        GH_ERROR("decision row refused (%s): %s; conn=%llu reason=%s", gh_reason_name(err.reason),
                 err.msg, (unsigned long long)d->conn_id, gh_reason_name(d->reason));
        return -1;
    }
    return 0;
}

/* Writer thread: the row for c committed (or failed). Hand off to c's worker.
 * Also used by the control thread to hand back deferred work. */
void gw_conn_mailbox_done(void *arg, int ok);
void gw_conn_mailbox_done(void *arg, int ok)
{
    struct gw_conn *c = arg;
    struct gw_worker *w = c->w;
    pthread_mutex_lock(&w->mu);
    c->commit_ok = ok;
    c->done_next = w->done_head;
    int was_empty = w->done_head == NULL;
    w->done_head = c;
    pthread_mutex_unlock(&w->mu);
    /* One wake-up per batch: the worker drains the whole list. */
    if (was_empty) {
        event_active(w->notify_ev, EV_READ, 0);
    }
}

/* Log writer thread, strict mode: the row for c committed (or failed). Only
 * staged here; gw_log_batch_done hands a whole batch to each worker with one
 * lock and at most one wake-up. (Woken per row, a worker busy draining its
 * mailbox on the other core saw it empty again after every row: one eventfd
 * write and one extra loop pass per row.) */
static void conn_commit_staged(void *arg, int ok)
{
    struct gw_conn *c = arg;
    c->commit_ok = ok;
    c->done_next = c->w->staged;
    c->w->staged = c;
}

void gw_log_batch_done(void *arg)
{
    struct gw_server *srv = arg;
    for (int i = 0; i < srv->n_workers; i++) {
        struct gw_worker *w = &srv->workers[i];
        struct gw_conn *list = w->staged;
        if (list == NULL) {
            continue;
        }
        w->staged = NULL;
        struct gw_conn *tail = list;
        while (tail->done_next != NULL) {
            tail = tail->done_next;
        }
        pthread_mutex_lock(&w->mu);
        int was_empty = w->done_head == NULL;
        tail->done_next = w->done_head;
        w->done_head = list;
        pthread_mutex_unlock(&w->mu);
        if (was_empty) {
            event_active(w->notify_ev, EV_READ, 0);
        }
    }
}

/* Fail closed: drop the held response and answer 503 instead (the row was
 * refused or could not be committed); the connection closes after it. */
static void respond_log_down(struct gw_conn *c, const char *why)
{
    evbuffer_drain(c->held, evbuffer_get_length(c->held));
    static const char r503[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                               "text/plain\r\nContent-Length: 20\r\nConnection: "
                               "close\r\n\r\ndecision log is down\n";
    evbuffer_add(c->out, r503, sizeof(r503) - 1);
    c->keep_alive = 0;
    if (c->up != NULL) {
        up_close(c->up, why);
        c->up = NULL;
    }
    c->resp_done = 1;
    conn_set_state(c, CS_RESPOND);
}

/* Queue the decision row for the current request, then release `held`
 * (async) or wait for the commit (strict). A row the log refuses (writer
 * down, queue full) fails the request closed in both modes: async must not
 * turn a flood into unlogged responses. */
static void decide_and_release(struct gw_conn *c, struct db_decision *d, enum conn_state next)
{
    db_commit_cb commit_cb = conn_commit_staged;
    struct gw_server *srv = c->w->srv;
    int strict = srv->log != NULL && c->st->cfg->log_mode == GW_LOG_STRICT;
    c->logged = 1;
    if (strict) {
        c->log_pending++;
    }
    if (gw_log_decision(srv, c->w, d, strict ? commit_cb : NULL, strict ? c : NULL) != 0) {
        if (strict) {
            c->log_pending--;
        }
        respond_log_down(c, "log refused"); /* nothing is released without its row */
        conn_update_events(c);
        return;
    }
    if (strict) {
        atomic_fetch_add(&srv->ctr.log_waits, 1);
        c->prelog_state = next;
        conn_set_state(c, CS_LOGWAIT);
        conn_update_events(c);
        return;
    }
    conn_set_state(c, next);
    evbuffer_add_buffer(c->out, c->held);
}

/* ---- local responses ------------------------------------------------------ */

/* Answer the current request ourselves (deny or error) with `status` and
 * the decision row's reason. Closes after the response unless the request
 * was fully read and keep-alive is allowed. */
void gw_conn_respond_body(struct gw_conn *c, int status, enum gh_reason reason,
                          const char *extra_hdrs, const char *ctype, const char *body, size_t bl)
{
    if (c->up != NULL) {
        up_close(c->up, "local response");
        c->up = NULL;
    }
    if (!c->body_done || c->w->draining) {
        c->keep_alive = 0; /* unread body: the connection cannot be reused */
    }
    char text[96];
    if (body == NULL) {
        int n = snprintf(text, sizeof(text), "%d %s (%s)\n", status, gw_http_status_text(status),
                         gh_reason_name(reason));
        body = text;
        bl = (size_t)n;
        ctype = "text/plain";
    }
    evbuffer_drain(c->held, evbuffer_get_length(c->held));
    evbuffer_add_printf(c->held,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\n%s%s\r\n",
                        status, gw_http_status_text(status), ctype, bl,
                        extra_hdrs ? extra_hdrs : "", c->keep_alive ? "" : "Connection: close\r\n");
    if (c->rh.method == NULL || strcmp(c->rh.method, "HEAD") != 0) {
        evbuffer_add(c->held, body, bl);
    }
    c->resp_status = status;
    c->resp_done = 1;
    struct db_decision d;
    row_request(c, &d);
    d.decision = reason == GH_R_ALLOW ? GH_ALLOW : GH_DENY;
    d.reason = reason;
    d.status = status;
    d.bytes_out = evbuffer_get_length(c->held);
    decide_and_release(c, &d, CS_RESPOND);
    if (c->state == CS_RESPOND) {
        /* async log: write now instead of waiting for a writable event */
        if (conn_flush(c) != 0) {
            conn_close(c, "client write failed");
            return;
        }
        if (evbuffer_get_length(c->out) == 0) {
            request_finished(c);
            return;
        }
    }
    conn_update_events(c);
}

/* Answer the current request ourselves (deny or error) with `status` and
 * the decision row's reason. Closes after the response unless the request
 * was fully read and keep-alive is allowed. */
void gw_conn_respond(struct gw_conn *c, int status, enum gh_reason reason, const char *extra_hdrs)
{
    gw_conn_respond_body(c, status, reason, extra_hdrs, NULL, NULL, 0);
}

/* ---- connection I/O -------------------------------------------------------- */

static int conn_flush(struct gw_conn *c)
{
    int wr_rd = 0;
    int rc = gw_transport_flush(&c->t, c->out, &c->bytes_out, &wr_rd);
    c->write_wants_read = wr_rd;
    return rc;
}

static int conn_read(struct gw_conn *c)
{
    /* At most four reads per wake-up, stopping at the high-water mark. */
    int eof = 0, rd_wr = 0;
    int rc = gw_transport_fill(&c->t, c->in, GW_HIGH_WATER, 4, &c->bytes_in, &eof, &rd_wr);
    c->read_wants_write = rd_wr;
    if (eof) {
        c->peer_eof = 1;
    }
    return rc;
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Read interest: in handshake always; otherwise when we are waiting for a
 * request head, or streaming a request body that the upstream can take. */
static void conn_update_events(struct gw_conn *c)
{
    if (c->state == CS_CLOSED) {
        return;
    }
    int rd = 0, wr = 0;
    switch (c->state) {
    case CS_HANDSHAKE:
        rd = c->hs_want != GW_WANT_WRITE;
        wr = c->hs_want == GW_WANT_WRITE;
        break;
    case CS_IDLE:
    case CS_HEAD:
        rd = 1;
        break;
    case CS_UPSTREAM:
    case CS_STREAM:
    case CS_LOGWAIT:
    case CS_RESPOND:
        if (c->body_done) {
            /* Request fully read: keep read interest (no epoll_ctl churn per
             * request); early pipelined bytes are buffered up to the mark. */
            rd = evbuffer_get_length(c->in) < GW_HIGH_WATER;
        } else if (c->special == GW_SPECIAL_LOGOUT) {
            /* the gateway reads a back-channel logout body itself (no
             * upstream): keep reading until it is all here (<= 16 KiB) */
            rd = c->state == CS_UPSTREAM;
        } else {
            rd = c->state != CS_RESPOND && c->up != NULL && c->up->ready &&
                 evbuffer_get_length(c->up->out) < GW_HIGH_WATER;
        }
        break;
    default:
        break;
    }
    if (c->peer_eof) {
        rd = 0;
    }
    if (evbuffer_get_length(c->out) > 0) {
        wr = 1;
    }
    if (c->read_wants_write) {
        wr = 1;
    }
    if (c->write_wants_read) {
        rd = 1;
    }
    gw_event_interest(c->rd, &c->rd_on, rd, c->wr, &c->wr_on, wr);
    if (rd && gw_transport_pending(&c->t) > 0) {
        /* Bytes already read off the socket (TLS read-ahead): epoll will
         * not report them, so run the read path now. */
        event_active(c->rd, EV_READ, 1);
    }
}

static void conn_arm_timer(struct gw_conn *c, int ms)
{
    if (ms <= 0) {
        event_del(c->timer);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(c->timer, &tv);
}

/* ---- handshake ------------------------------------------------------------ */

static void handshake_refused(struct gw_conn *c, enum gh_reason r)
{
    struct gw_server *srv = c->w->srv;
    atomic_fetch_add(&srv->ctr.refused_by_reason[r], 1);
    struct db_decision d;
    row_base(c, &d);
    d.decision = GH_DENY;
    d.reason = r;
    d.status = 0;
    if (c->t.ssl != NULL) {
        /* The chain failed, but a peer certificate may still be known. */
        struct az_cert_info ci;
        if (gw_tls_peer_info(c->t.ssl, &ci) == 0) {
            copy_str(d.cert_thumb, sizeof(d.cert_thumb), ci.thumbprint_hex, 64);
            copy_str(d.cert_subject, sizeof(d.cert_subject), ci.subject, strlen(ci.subject));
            gw_tls_cert_info_cleanup(&ci);
        }
    }
    d.latency_us = gh_mono_us() - c->accepted_mono;
    (void)gw_log_decision(srv, c->w, &d, NULL, NULL);
    GH_INFO("handshake refused conn=%llu peer=%s:%d reason=%s", (unsigned long long)c->id,
            c->peer_ip, c->peer_port, gh_reason_name(r));
    conn_close(c, gh_reason_name(r));
}

static void do_handshake(struct gw_conn *c)
{
    int want;
    int rc = gw_transport_handshake(&c->t, &want);
    if (rc == GW_IO_AGAIN) {
        c->hs_want = want;
        conn_update_events(c);
        return;
    }
    if (rc != 1) {
        handshake_refused(c, gw_tls_refusal_reason(c->t.ssl));
        return;
    }
    enum gh_reason r = gw_tls_recheck(c->w->srv->tls, c->t.ssl);
    if (r != GH_R_ALLOW) {
        handshake_refused(c, r);
        return;
    }
    if (gw_tls_peer_info(c->t.ssl, &c->cert) != 0) {
        handshake_refused(c, GH_R_TLS_NO_CERT);
        return;
    }
    c->has_cert = 1;
    r = gw_authz_check_cert(c);
    if (r != GH_R_ALLOW) {
        handshake_refused(c, r);
        return;
    }
    atomic_fetch_add(&c->w->srv->ctr.handshakes_ok, 1);
    c->hs_want = 0;
    conn_set_state(c, CS_IDLE);
    conn_arm_timer(c, c->w->state->cfg->idle_timeout_ms);
    conn_update_events(c);
    conn_process(c); /* TLS may already hold request bytes */
}

/* ---- request head ---------------------------------------------------------- */

static int head_acquire(struct gw_conn *c)
{
    if (c->head != NULL) {
        return 0;
    }
    struct gw_worker *w = c->w;
    while (w->n_head_pool > 0) {
        w->n_head_pool--;
        char *b = w->head_pool[w->n_head_pool];
        if (w->head_pool_cap[w->n_head_pool] == c->head_cap) {
            c->head = b;
            return 0;
        }
        free(b); /* sized for an older configuration */
    }
    c->head = malloc(c->head_cap + 1);
    return c->head != NULL ? 0 : -1;
}

static void head_release(struct gw_conn *c)
{
    struct gw_worker *w = c->w;
    if (c->head == NULL) {
        return;
    }
    c->head_ok = 0;
    if (w->n_head_pool < (int)(sizeof(w->head_pool) / sizeof(w->head_pool[0]))) {
        w->head_pool[w->n_head_pool] = c->head;
        w->head_pool_cap[w->n_head_pool] = c->head_cap;
        w->n_head_pool++;
    } else {
        free(c->head);
    }
    c->head = NULL;
}

static void start_request(struct gw_conn *c)
{
    c->req_no++;
    c->req_start_mono = gh_mono_us();
    c->scan = 0;
    c->lines = 0;
    c->head_ok = 0;
    c->route = NULL;
    c->route_idx = -1;
    c->body_done = 0;
    c->body_started = 0;
    c->up_attempts = 0; /* a stale pooled connection may be retried once per request */
    c->body_bytes = 0;
    c->bytes_in_req = 0;
    c->resp_status = 0;
    c->resp_head_done = 0;
    c->resp_done = 0;
    c->logged = 0;
    c->path_len = 0;
    c->special = GW_SPECIAL_NONE;
    memset(&c->rh, 0, sizeof(c->rh));
    gw_authz_reset(c);
    /* A request keeps the snapshot it started with. */
    if (c->st != c->w->state) {
        gw_state_unref(c->st);
        c->st = gw_state_ref(c->w->state);
    }
}

/* A chunked request body is forwarded re-framed, not as received: the
 * upstream gets "<hex size>CRLF data CRLF" per piece and "0" CRLF CRLF, and
 * never the client's chunk extensions, odd size spellings or trailers --
 * framing bytes that http-parser skips over but another parser could read
 * differently (request smuggling). */
static int on_body_req(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    c->body_bytes += (int64_t)len;
    if (c->route != NULL && c->route->max_body_bytes >= 0 &&
        c->body_bytes > c->route->max_body_bytes) {
        c->body_too_large = 1;
        return -1;
    }
    if (c->rh.chunked && c->up != NULL && len > 0) {
        evbuffer_add_printf(c->up->out, "%zx\r\n", len);
        evbuffer_add(c->up->out, at, len);
        evbuffer_add(c->up->out, "\r\n", 2);
    }
    return 0;
}

static int on_msg_complete_req(http_parser *p)
{
    struct gw_conn *c = p->data;
    c->body_done = 1;
    if (c->rh.chunked && c->up != NULL) {
        evbuffer_add(c->up->out, "0\r\n\r\n", 5); /* the client's trailers are not forwarded */
    }
    http_parser_pause(p, 1);
    return 0;
}

static http_parser_settings req_body_settings = {
    .on_body = on_body_req,
    .on_message_complete = on_msg_complete_req,
};

static int build_upstream_head(struct gw_conn *c, struct evbuffer *b) GH_WUR;
static void logout_body(struct gw_conn *c);
static int up_start(struct gw_conn *c);

static void handle_head(struct gw_conn *c, size_t head_len)
{
    const struct gw_config *cfg = c->st->cfg;
    if (head_len > (size_t)c->head_cap) {
        gw_conn_respond(c, 431, GH_R_HTTP_HEADER_TOO_LARGE, NULL);
        return;
    }
    if (head_acquire(c) != 0) {
        /* allocation failure sheds this request (STYLE.md), logged */
        c->keep_alive = 0;
        gw_conn_respond(c, 503, GH_R_OVERLOADED, NULL);
        return;
    }
    evbuffer_remove(c->in, c->head, head_len);
    c->head[head_len] = '\0';
    c->head_len = head_len;
    c->bytes_in_req = head_len;
    enum gh_reason r;
    const char *detail = "";
    if (gw_http_parse_request(c->head, head_len, &c->rh, &r, &detail) != 0) {
        GH_INFO("conn=%llu bad request: %s", (unsigned long long)c->id, detail);
        c->keep_alive = 0;
        gw_conn_respond(c, gh_reason_status(r), r, NULL);
        return;
    }
    c->head_ok = 1;
    c->keep_alive = c->rh.keep_alive && !c->w->draining;
    if (c->rh.target_len > (size_t)cfg->max_uri_bytes) {
        c->keep_alive = 0;
        gw_conn_respond(c, 414, GH_R_HTTP_URI_TOO_LONG, NULL);
        return;
    }
    const char *q = memchr(c->rh.target, '?', c->rh.target_len);
    c->path_len = q ? (size_t)(q - c->rh.target) : c->rh.target_len;
    c->body_done = !c->rh.chunked && c->rh.content_length <= 0;

    /* The gateway's own assertion keys, for upstreams that verify
     * X-Gatehouse-Assertion (reached over mTLS like everything else). */
    static const char jwks_path[] = "/.well-known/gatehouse/jwks.json";
    if (c->path_len == sizeof(jwks_path) - 1 && memcmp(c->rh.target, jwks_path, c->path_len) == 0 &&
        strcmp(c->rh.method, "GET") == 0) {
        const char *j = gw_authz_assertion_jwks(c->w->srv);
        gw_conn_respond_body(c, 200, GH_R_ALLOW, NULL, "application/jwk-set+json", j, strlen(j));
        return;
    }

    /* OIDC Back-Channel Logout 1.0: the issuer POSTs a logout_token here. */
    static const char logout_path[] = "/.well-known/gatehouse/backchannel-logout";
    if (c->path_len == sizeof(logout_path) - 1 &&
        memcmp(c->rh.target, logout_path, c->path_len) == 0) {
        if (strcmp(c->rh.method, "POST") != 0 || c->rh.chunked || c->rh.content_length <= 0 ||
            c->rh.content_length > 16384) {
            c->keep_alive = 0;
            gw_conn_respond(c, 400, GH_R_LOGOUT_INVALID, NULL);
            return;
        }
        c->special = GW_SPECIAL_LOGOUT;
        conn_set_state(c, CS_UPSTREAM);
        conn_arm_timer(c, cfg->header_timeout_ms);
        logout_body(c);
        return;
    }

    /* route: Host (port stripped) + path prefix */
    const struct gw_hdr *hh = &c->rh.hdrs[c->rh.host_idx];
    const char *host = c->head + hh->val_off;
    size_t hl = hh->val_len;
    c->route = gw_config_route(cfg, host, hl, c->rh.target, c->path_len);
    if (c->route == NULL) {
        gw_conn_respond(c, 404, GH_R_ROUTE_NOT_FOUND, NULL);
        return;
    }
    c->route_idx = (int)(c->route - cfg->routes);
    if (c->route->max_body_bytes >= 0 && c->rh.content_length > c->route->max_body_bytes) {
        c->keep_alive = 0;
        gw_conn_respond(c, 413, GH_R_HTTP_BODY_TOO_LARGE, NULL);
        return;
    }

    /* identity + policy */
    char extra[512];
    extra[0] = '\0';
    r = gw_authz_request(c, extra, sizeof(extra));
    if (r != GH_R_ALLOW) {
        gw_conn_respond(c, gh_reason_status(r), r, extra[0] ? extra : NULL);
        return;
    }

    /* body framing continues with the same parser */
    http_parser_init(&c->rp, HTTP_REQUEST);
    c->rp.data = c;
    if (!c->body_done) {
        /* Re-feed the head so http-parser knows the framing, then stream. */
        size_t n = http_parser_execute(&c->rp, &req_body_settings, c->head, head_len);
        if (n != head_len || HTTP_PARSER_ERRNO(&c->rp) != HPE_OK) {
            if (HTTP_PARSER_ERRNO(&c->rp) != HPE_PAUSED) {
                c->keep_alive = 0;
                gw_conn_respond(c, 400, GH_R_HTTP_BAD_REQUEST, NULL);
                return;
            }
        }
    }
    conn_set_state(c, CS_UPSTREAM);
    if (up_start(c) != 0 || c->state != CS_UPSTREAM) {
        return; /* responded */
    }
    if (c->rh.expect_continue && !c->body_done) {
        /* Authorized: now invite the body (RFC 9110 10.1.1). */
        evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    conn_arm_timer(c, 0);
    pump_request_body(c);
    conn_update_events(c);
}

/* The logout endpoint's body is small and bounded: wait for all of it,
 * verify the token here (pure authz code), then hand the revocation to the
 * control thread, which owns SQLite. */
static void logout_body(struct gw_conn *c)
{
    size_t need = (size_t)c->rh.content_length;
    if (evbuffer_get_length(c->in) < need) {
        if (c->peer_eof) {
            conn_close(c, "eof in logout body");
        }
        return;
    }
    char body[16385];
    evbuffer_remove(c->in, body, need);
    body[need] = '\0';
    c->body_done = 1;
    c->bytes_in_req += need;
    conn_arm_timer(c, 0);
    const char *tok = NULL;
    size_t tl = 0;
    for (char *p = body; p != NULL && *p;) {
        if (strncmp(p, "logout_token=", 13) == 0) {
            tok = p + 13;
            char *amp = strchr(tok, '&');
            tl = amp ? (size_t)(amp - tok) : strlen(tok);
            break;
        }
        char *amp = strchr(p, '&');
        p = amp ? amp + 1 : NULL;
    }
    struct az_logout lo;
    struct gh_err err = {0};
    enum gh_reason r = GH_R_LOGOUT_INVALID;
    if (tok != NULL && tl > 0) {
        r = gw_authz_logout_verify(c, tok, tl, &lo, &err);
    }
    if (r != GH_R_ALLOW) {
        GH_INFO("conn=%llu back-channel logout refused: %s", (unsigned long long)c->id,
                err.msg[0] ? err.msg : "no logout_token");
        gw_conn_respond_body(c, 400, GH_R_LOGOUT_INVALID, NULL, "application/json",
                             "{\"error\":\"invalid_request\"}", 27);
        return;
    }
    c->log_pending++; /* keeps c alive until the control thread answers */
    gw_ctl_logout_submit(c->w->srv, c, lo.sub, lo.sid);
}

void gw_conn_special_done(struct gw_conn *c)
{
    if (c->state != CS_UPSTREAM || c->special != GW_SPECIAL_LOGOUT) {
        return;
    }
    if (c->special_result >= 0) {
        gw_conn_respond_body(c, 200, GH_R_LOGOUT_OK, NULL, "application/json", "{}", 2);
    } else {
        gw_conn_respond(c, 503, GH_R_LOG_UNAVAILABLE, NULL);
    }
}

static void process_head(struct gw_conn *c)
{
    const struct gw_config *cfg = c->st->cfg;
    size_t len = evbuffer_get_length(c->in);
    if (len == 0) {
        return;
    }
    if (c->state == CS_IDLE) {
        conn_set_state(c, CS_HEAD);
        start_request(c);
        cfg = c->st->cfg;
        conn_arm_timer(c, cfg->header_timeout_ms);
    }
    size_t want = len < (size_t)cfg->max_header_bytes + 1 ? len : (size_t)cfg->max_header_bytes + 1;
    const char *p = (const char *)evbuffer_pullup(c->in, (ssize_t)want);
    size_t head_len = 0;
    enum gh_reason r;
    int rc = gw_http_scan_head(p, want, &c->scan, &c->lines, (size_t)cfg->max_header_bytes,
                               (size_t)cfg->max_uri_bytes + 16, cfg->max_headers, &head_len, &r);
    if (rc == 0) {
        if (c->peer_eof) {
            conn_close(c, "eof in request head");
        }
        return;
    }
    if (rc < 0) {
        c->keep_alive = 0;
        gw_conn_respond(c, gh_reason_status(r), r, NULL);
        return;
    }
    handle_head(c, head_len);
}

/* ---- upstream side -------------------------------------------------------- */

static void up_io_cb(evutil_socket_t fd, short what, void *arg);
static void up_retry(struct gw_conn *c, struct gw_upconn *u);
static int up_can_retry(struct gw_conn *c, struct gw_upconn *u);
static void up_timer_cb(evutil_socket_t fd, short what, void *arg);

static void up_arm_timer(struct gw_upconn *u, int ms)
{
    if (ms <= 0) {
        event_del(u->timer);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(u->timer, &tv);
}

/* A new upstream connection for route_idx of st, the snapshot the request
 * was routed with (the worker's current one may be newer after a reload,
 * with another upstream at that index). */
static struct gw_upconn *up_new(struct gw_worker *w, struct gw_state *st, int route_idx)
{
    const struct gw_route_rt *rt = &st->rt[route_idx];
    int fd = socket(rt->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct gw_upconn *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        close(fd);
        return NULL;
    }
    u->w = w;
    u->route_idx = route_idx;
    u->gen = st->generation;
    u->in = evbuffer_new();
    u->out = evbuffer_new();
    u->rd = event_new(w->base, fd, EV_READ | EV_PERSIST, up_io_cb, u);
    u->wr = event_new(w->base, fd, EV_WRITE | EV_PERSIST, up_io_cb, u);
    u->timer = evtimer_new(w->base, up_timer_cb, u);
    gw_transport_init_plain(&u->t, fd);
    if (u->in == NULL || u->out == NULL || u->rd == NULL || u->wr == NULL || u->timer == NULL) {
        up_close(u, "alloc");
        return NULL;
    }
    atomic_fetch_add(&w->srv->ctr.upstream_connects, 1);
    int rc = connect(fd, (const struct sockaddr *)&rt->addr, rt->addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
        u->connect_failed = 1;
        return u;
    }
    u->connecting = 1;
    return u;
}

static void up_close(struct gw_upconn *u, const char *why)
{
    if (u->closed) {
        return;
    }
    u->closed = 1;
    if (u->rd) {
        event_del(u->rd);
    }
    if (u->wr) {
        event_del(u->wr);
    }
    if (u->timer) {
        event_del(u->timer);
    }
    gw_transport_close(&u->t);
    u->owner = NULL;
    u->reap_next = u->w->upreap;
    u->w->upreap = u;
    event_active(u->w->reap_ev, EV_READ, 0);
}

void gw_upstream_reap(struct gw_worker *w)
{
    while (w->upreap != NULL) {
        struct gw_upconn *u = w->upreap;
        w->upreap = u->reap_next;
        if (u->rd) {
            event_free(u->rd);
        }
        if (u->wr) {
            event_free(u->wr);
        }
        if (u->timer) {
            event_free(u->timer);
        }
        if (u->in) {
            evbuffer_free(u->in);
        }
        if (u->out) {
            evbuffer_free(u->out);
        }
        free(u);
    }
}

static void pool_remove(struct gw_worker *w, struct gw_upconn *u)
{
    struct gw_upconn **pp = &w->idle[u->route_idx];
    while (*pp != NULL) {
        if (*pp == u) {
            *pp = u->pool_next;
            w->n_idle[u->route_idx]--;
            break;
        }
        pp = &(*pp)->pool_next;
    }
    u->pooled = 0;
}

void gw_upstream_pool_flush(struct gw_worker *w)
{
    for (int i = 0; i < GW_MAX_ROUTES; i++) {
        while (w->idle[i] != NULL) {
            struct gw_upconn *u = w->idle[i];
            pool_remove(w, u);
            up_close(u, "pool flush");
        }
    }
}

static void up_release(struct gw_conn *c)
{
    struct gw_upconn *u = c->up;
    c->up = NULL;
    if (u == NULL) {
        return;
    }
    u->owner = NULL;
    struct gw_worker *w = c->w;
    const struct gw_route *rt = &w->state->cfg->routes[u->route_idx];
    if (!u->keep_alive || evbuffer_get_length(u->in) > 0 || evbuffer_get_length(u->out) > 0 ||
        u->gen != w->state->generation || w->draining || w->n_idle[u->route_idx] >= rt->upstream.pool_size) {
        up_close(u, "not reusable");
        return;
    }
    u->pooled = 1;
    u->pool_next = w->idle[u->route_idx];
    w->idle[u->route_idx] = u;
    w->n_idle[u->route_idx]++;
    up_arm_timer(u, 60000);
    up_update_events(u);
}

static void up_fail(struct gw_conn *c, enum gh_reason r, const char *why)
{
    atomic_fetch_add(&c->w->srv->ctr.upstream_errors, 1);
    GH_WARN("conn=%llu route=%s upstream %s: %s", (unsigned long long)c->id,
            c->route ? c->route->id : "-", gh_reason_name(r), why);
    if (c->up != NULL) {
        up_close(c->up, why);
        c->up = NULL;
    }
    if (c->resp_head_done) {
        /* Mid-response: we cannot change the status any more. */
        conn_close(c, why);
        return;
    }
    c->keep_alive = 0;
    gw_conn_respond(c, gh_reason_status(r), r, NULL);
}

static void up_ready(struct gw_upconn *u)
{
    u->ready = 1;
    struct gw_conn *c = u->owner;
    const struct gw_route *rt = &c->st->cfg->routes[u->route_idx];
    up_arm_timer(u, rt->upstream.read_timeout_ms);
    up_update_events(u);
    pump_request_body(c);
    conn_update_events(c);
}

static int up_start(struct gw_conn *c)
{
    struct gw_worker *w = c->w;
    if (w->idle_gen != w->state->generation) {
        gw_upstream_pool_flush(w);
        w->idle_gen = w->state->generation;
    }
    struct gw_upconn *u = NULL;
    while (w->idle[c->route_idx] != NULL) {
        u = w->idle[c->route_idx];
        pool_remove(w, u);
        if (u->gen == c->st->generation) {
            break;
        }
        up_close(u, "stale generation");
        u = NULL;
    }
    int reused = u != NULL;
    if (u == NULL) {
        u = up_new(w, c->st, c->route_idx);
        if (u == NULL) {
            up_fail(c, GH_R_UPSTREAM_CONNECT, "cannot create socket");
            return -1;
        }
    }
    u->owner = c;
    u->reused = reused;
    u->keep_alive = 1;
    /* a pooled connection starts a fresh response */
    u->scan = 0;
    u->lines = 0;
    u->resp_complete = 0;
    u->resp_status = 0;
    u->got_any = 0;
    u->eof = 0;
    u->decode_into = NULL;
    u->req_is_head = strcmp(c->rh.method, "HEAD") == 0;
    c->up = u;
    c->up_attempts++;
    evbuffer_drain(u->in, evbuffer_get_length(u->in));
    if (build_upstream_head(c, u->out) != 0) {
        up_fail(c, GH_R_INTERNAL, "cannot build the upstream request head");
        return -1;
    }
    if (u->connect_failed) {
        up_fail(c, GH_R_UPSTREAM_CONNECT, strerror(errno));
        return -1;
    }
    const struct gw_route *rt = &c->st->cfg->routes[c->route_idx];
    if (reused) {
        up_ready(u);
    } else {
        up_arm_timer(u, rt->upstream.connect_timeout_ms);
        up_update_events(u);
    }
    return 0;
}

/* Finish connect (and TLS handshake for https upstreams). */
static void up_connect_step(struct gw_upconn *u)
{
    struct gw_conn *c = u->owner;
    if (u->connecting) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(u->t.fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err == EINPROGRESS || err == EALREADY) {
            return;
        }
        if (err != 0) {
            up_fail(c, GH_R_UPSTREAM_CONNECT, strerror(err));
            return;
        }
        u->connecting = 0;
        const struct gw_route_rt *rt = &c->st->rt[u->route_idx];
        if (rt->tls != NULL) {
            const struct gw_upstream *us = &c->st->cfg->routes[u->route_idx].upstream;
            SSL *ssl = gw_tls_client_new_ssl(rt->tls, u->t.fd,
                                             us->server_name ? us->server_name : us->host);
            if (ssl == NULL) {
                up_fail(c, GH_R_UPSTREAM_TLS, "SSL_new");
                return;
            }
            gw_transport_init_tls(&u->t, u->t.fd, ssl);
            u->handshaking = 1;
        }
    }
    if (u->handshaking) {
        int want;
        int rc = gw_transport_handshake(&u->t, &want);
        if (rc == GW_IO_AGAIN) {
            u->hs_want = want;
            up_update_events(u);
            return;
        }
        if (rc != 1) {
            up_fail(c, GH_R_UPSTREAM_TLS, "TLS handshake with upstream failed");
            return;
        }
        u->handshaking = 0;
        u->hs_want = 0;
    }
    up_ready(u);
}

static void up_update_events(struct gw_upconn *u)
{
    if (u->closed) {
        return;
    }
    int rd = 0, wr = 0;
    if (u->pooled) {
        rd = 1; /* detect the upstream closing an idle connection */
    } else if (u->connecting) {
        wr = 1;
    } else if (u->handshaking) {
        rd = u->hs_want != GW_WANT_WRITE;
        wr = u->hs_want == GW_WANT_WRITE;
    } else if (u->ready && u->owner != NULL) {
        struct gw_conn *c = u->owner;
        /* While the row commits (CS_LOGWAIT) body bytes are only buffered,
         * up to the mark: keeping read interest saves two epoll_ctl per
         * strict request. At EOF it must go (level-triggered: it would
         * fire until the response moves on). */
        rd = evbuffer_get_length(u->in) < GW_HIGH_WATER &&
             evbuffer_get_length(c->out) < GW_HIGH_WATER && !(c->state == CS_LOGWAIT && u->eof);
        wr = evbuffer_get_length(u->out) > 0;
    }
    if (u->read_wants_write) {
        wr = 1;
    }
    if (u->write_wants_read) {
        rd = 1;
    }
    gw_event_interest(u->rd, &u->rd_on, rd, u->wr, &u->wr_on, wr);
    if (rd && gw_transport_pending(&u->t) > 0) {
        event_active(u->rd, EV_READ, 1); /* TLS read-ahead, see conn_update_events */
    }
}

static int up_flush(struct gw_upconn *u)
{
    int wr_rd = 0;
    uint64_t n = 0;
    int rc = gw_transport_flush(&u->t, u->out, &n, &wr_rd);
    u->write_wants_read = wr_rd;
    if (n > 0) {
        u->sent_any = 1;
    }
    return rc;
}

static int up_read(struct gw_upconn *u)
{
    int eof = 0, rd_wr = 0;
    uint64_t n = 0;
    int rc = gw_transport_fill(&u->t, u->in, GW_HIGH_WATER, 4, &n, &eof, &rd_wr);
    u->read_wants_write = rd_wr;
    if (n > 0) {
        u->got_any = 1;
    }
    if (eof) {
        u->eof = 1;
    }
    return rc;
}

/* A pooled keep-alive connection died under us before any response byte
 * and before any body byte was sent: retry once on a fresh connection. */
static int up_can_retry(struct gw_conn *c, struct gw_upconn *u)
{
    return u->reused && !u->got_any && c->up_attempts < 2 && !c->body_started;
}

static void up_retry(struct gw_conn *c, struct gw_upconn *u)
{
    up_close(u, "stale pooled connection");
    c->up = NULL;
    struct gw_upconn *nu = up_new(c->w, c->st, c->route_idx);
    if (nu == NULL || nu->connect_failed) {
        if (nu) {
            up_close(nu, "connect failed");
        }
        up_fail(c, GH_R_UPSTREAM_CONNECT, "reconnect failed");
        return;
    }
    nu->owner = c;
    nu->keep_alive = 1;
    nu->req_is_head = strcmp(c->rh.method, "HEAD") == 0;
    c->up = nu;
    c->up_attempts++;
    if (build_upstream_head(c, nu->out) != 0) {
        up_fail(c, GH_R_INTERNAL, "cannot build the upstream request head");
        return;
    }
    up_arm_timer(nu, c->st->cfg->routes[c->route_idx].upstream.connect_timeout_ms);
    up_update_events(nu);
}

static void up_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_upconn *u = arg;
    if (u->closed) {
        return;
    }
    if (u->pooled) {
        /* Idle pooled connection became readable: closed or junk. Drop it. */
        pool_remove(u->w, u);
        up_close(u, "idle upstream closed");
        return;
    }
    struct gw_conn *c = u->owner;
    if (c == NULL) {
        up_close(u, "orphan");
        return;
    }
    if (u->connecting || u->handshaking) {
        up_connect_step(u);
        return;
    }
    if (what & EV_WRITE || u->write_wants_read) {
        if (up_flush(u) != 0) {
            if (up_can_retry(c, u)) {
                goto retry;
            }
            up_fail(c, GH_R_UPSTREAM_ERROR, "write to upstream failed");
            return;
        }
        const struct gw_route *rt = &c->st->cfg->routes[u->route_idx];
        up_arm_timer(u, rt->upstream.read_timeout_ms);
        pump_request_body(c);
        conn_update_events(c);
    }
    if (what & EV_READ || u->read_wants_write) {
        if (up_read(u) != 0) {
            if (up_can_retry(c, u)) {
                goto retry;
            }
            up_fail(c, GH_R_UPSTREAM_ERROR, "read from upstream failed");
            return;
        }
        if (u->eof && up_can_retry(c, u)) {
            goto retry;
        }
        const struct gw_route *rt = &c->st->cfg->routes[u->route_idx];
        up_arm_timer(u, rt->upstream.read_timeout_ms);
        pump_response(c);
        if (c->up == u) {
            up_update_events(u);
        }
        return;
    }
    up_update_events(u);
    return;
retry:
    up_retry(c, u);
}

static void up_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_upconn *u = arg;
    if (u->pooled) {
        pool_remove(u->w, u);
        up_close(u, "idle timeout");
        return;
    }
    struct gw_conn *c = u->owner;
    if (c == NULL) {
        up_close(u, "orphan timeout");
        return;
    }
    up_fail(c, GH_R_UPSTREAM_TIMEOUT, u->ready ? "upstream read timeout" : "upstream connect timeout");
}

/* ---- request forwarding ---------------------------------------------------- */

/* The upstream request head is assembled in one stack buffer and handed to
 * the evbuffer in one call (the profile showed per-header evbuffer_add). */
struct hbuf {
    char *p;
    size_t n, cap;
    int overflow;
};

static void hb_add(struct hbuf *h, const char *s, size_t l)
{
    if (h->n + l > h->cap) {
        h->overflow = 1;
        return;
    }
    memcpy(h->p + h->n, s, l);
    h->n += l;
}

static void hb_str(struct hbuf *h, const char *s)
{
    hb_add(h, s, strlen(s));
}

static void hb_hdr(struct hbuf *h, const char *n, const char *v, size_t vl)
{
    hb_str(h, n);
    hb_add(h, ": ", 2);
    hb_add(h, v, vl);
    hb_add(h, "\r\n", 2);
}

/* Writes the upstream request head into b. -1 (and nothing written) if it
 * cannot be built: the caller must then answer the client itself and never
 * forward anything -- a missing head would make the upstream read the
 * request body as a request. */
static int build_upstream_head(struct gw_conn *c, struct evbuffer *b)
{
    const struct gw_req_head *rh = &c->rh;
    const struct gw_route *rt = c->route;
    const struct gw_config *cfg = c->st->cfg;
    /* Bound on the rewritten head: the received header lines (<= head_len),
     * plus values we copy a second time (a trusted X-Forwarded-For and
     * X-Forwarded-Host, each <= head_len), plus the base path and the few
     * fixed headers we add (< 1 KiB). Small heads fit the stack buffer. */
    size_t base_len = rt->upstream.base_path != NULL ? strlen(rt->upstream.base_path) : 0;
    size_t need = 3 * (size_t)c->head_len + base_len + 2048;
    char stack[24576];
    struct hbuf h = {.p = stack, .cap = sizeof(stack)};
    char *heap = NULL;
    if (need > sizeof(stack)) {
        heap = malloc(need);
        if (heap == NULL) {
            GH_ERROR("conn=%llu: no memory for a %zu-byte upstream request head",
                     (unsigned long long)c->id, need);
            return -1;
        }
        h.p = heap;
        h.cap = need;
    }
    const char *conn_hdr = NULL;
    size_t conn_len = 0;
    const char *xff = NULL;
    size_t xff_len = 0;
    for (int i = 0; i < rh->n_hdrs; i++) {
        if (gw_http_name_is(c->head, &rh->hdrs[i], "connection")) {
            conn_hdr = c->head + rh->hdrs[i].val_off;
            conn_len = rh->hdrs[i].val_len;
        } else if (gw_http_name_is(c->head, &rh->hdrs[i], "x-forwarded-for")) {
            xff = c->head + rh->hdrs[i].val_off;
            xff_len = rh->hdrs[i].val_len;
        }
    }
    hb_add(&h, rh->method, rh->method_len);
    hb_add(&h, " ", 1);
    if (rt->upstream.base_path != NULL && rt->upstream.base_path[0] != '\0') {
        size_t bl = strlen(rt->upstream.base_path);
        if (rt->upstream.base_path[bl - 1] == '/') {
            bl--;
        }
        hb_add(&h, rt->upstream.base_path, bl);
    }
    hb_add(&h, rh->target, rh->target_len);
    hb_add(&h, " HTTP/1.1\r\n", 11);
    int trusted = 0;
    for (int i = 0; i < cfg->n_trusted; i++) {
        if (gw_cidr_match(&cfg->trusted_proxies[i], (const struct sockaddr *)&c->peer)) {
            trusted = 1;
            break;
        }
    }
    for (int i = 0; i < rh->n_hdrs; i++) {
        const struct gw_hdr *hd = &rh->hdrs[i];
        const char *name = c->head + hd->name_off;
        if (gw_http_is_hop_or_owned(name, hd->name_len) ||
            gw_http_is_client_override(name, hd->name_len)) {
            continue;
        }
        if (gw_authz_strips(c, name, hd->name_len)) {
            continue;
        }
        int skip = 0;
        for (int k = 0; k < rt->n_strip; k++) {
            if (strlen(rt->strip_headers[k]) == hd->name_len &&
                strncasecmp(rt->strip_headers[k], name, hd->name_len) == 0) {
                skip = 1;
                break;
            }
        }
        /* headers named in Connection are hop-by-hop too (RFC 9110 7.6.1),
         * except Host: "Connection: host" must not send a request without it */
        if (!skip && conn_hdr != NULL && (int)i != rh->host_idx) {
            char nm[64];
            if (hd->name_len < sizeof(nm)) {
                memcpy(nm, name, hd->name_len);
                nm[hd->name_len] = '\0';
                skip = gw_http_list_has(conn_hdr, conn_len, nm);
            }
        }
        if (skip) {
            continue;
        }
        /* name, ": ", value are contiguous in the head except for OWS */
        hb_add(&h, name, hd->name_len);
        hb_add(&h, ": ", 2);
        hb_add(&h, c->head + hd->val_off, hd->val_len);
        hb_add(&h, "\r\n", 2);
    }
    /* framing: exactly one, as validated */
    char num[64];
    if (rh->chunked) {
        hb_str(&h, "Transfer-Encoding: chunked\r\n");
    } else if (rh->content_length >= 0) {
        int k = snprintf(num, sizeof(num), "Content-Length: %lld\r\n",
                         (long long)rh->content_length);
        hb_add(&h, num, (size_t)k);
    }
    /* X-Forwarded-*: replaced, unless the peer is a configured trusted proxy */
    if (trusted && xff != NULL) {
        hb_str(&h, "X-Forwarded-For: ");
        hb_add(&h, xff, xff_len);
        hb_str(&h, ", ");
        hb_str(&h, c->peer_ip);
        hb_str(&h, "\r\n");
    } else {
        hb_hdr(&h, "X-Forwarded-For", c->peer_ip, strlen(c->peer_ip));
    }
    hb_hdr(&h, "X-Forwarded-Proto", "https", 5);
    const struct gw_hdr *hh = &rh->hdrs[rh->host_idx];
    hb_hdr(&h, "X-Forwarded-Host", c->head + hh->val_off, hh->val_len);
    if (h.overflow) {
        /* Not reachable with the bound above; if it ever is, send nothing
         * (never a cut head) and let the caller refuse the request. */
        GH_ERROR("conn=%llu: upstream request head overflow (%zu bytes)",
                 (unsigned long long)c->id, h.cap);
        free(heap);
        return -1;
    }
    evbuffer_add(b, h.p, h.n);
    free(heap);
    gw_authz_add_headers(c, b);
    evbuffer_add(b, "\r\n", 2);
    return 0;
}

static void pump_request_body(struct gw_conn *c)
{
    struct gw_upconn *u = c->up;
    if (u == NULL || !u->ready) {
        return;
    }
    while (!c->body_done && evbuffer_get_length(c->in) > 0 &&
           evbuffer_get_length(u->out) < GW_HIGH_WATER) {
        size_t n = evbuffer_get_length(c->in);
        if (n > GW_READ_CHUNK) {
            n = GW_READ_CHUNK;
        }
        const char *p = (const char *)evbuffer_pullup(c->in, (ssize_t)n);
        size_t used = http_parser_execute(&c->rp, &req_body_settings, p, n);
        enum http_errno he = HTTP_PARSER_ERRNO(&c->rp);
        if (he != HPE_OK && he != HPE_PAUSED) {
            enum gh_reason r = c->body_too_large ? GH_R_HTTP_BODY_TOO_LARGE
                                                 : (he == HPE_INVALID_CHUNK_SIZE
                                                        ? GH_R_HTTP_SMUGGLING
                                                        : GH_R_HTTP_BAD_REQUEST);
            c->keep_alive = 0;
            if (c->resp_head_done) {
                conn_close(c, gh_reason_name(r));
            } else {
                gw_conn_respond(c, gh_reason_status(r), r, NULL);
            }
            return;
        }
        c->body_started = 1;
        c->bytes_in_req += used;
        if (c->rh.chunked) {
            evbuffer_drain(c->in, used); /* re-framed by on_body_req */
        } else {
            evbuffer_remove_buffer(c->in, u->out, used);
        }
    }
    if (evbuffer_get_length(u->out) > 0 && up_flush(u) != 0) {
        if (up_can_retry(c, u)) {
            up_retry(c, u);
            return;
        }
        up_fail(c, GH_R_UPSTREAM_ERROR, "write to upstream failed");
        return;
    }
    if (c->up != NULL) {
        up_update_events(c->up);
    }
}

/* ---- response forwarding ------------------------------------------------- */

static int on_resp_headers(http_parser *p)
{
    struct gw_upconn *u = p->data;
    u->resp_status = (int)p->status_code;
    /* RFC 9112 6.3: HEAD, 1xx, 204 and 304 responses have no body. */
    if (u->req_is_head || p->status_code == 204 || p->status_code == 304 ||
        (p->status_code >= 100 && p->status_code < 200)) {
        return 1;
    }
    return 0;
}

static int on_resp_body(http_parser *p, const char *at, size_t len)
{
    struct gw_upconn *u = p->data;
    if (u->decode_into != NULL) {
        evbuffer_add(u->decode_into, at, len);
    }
    return 0;
}

static int on_resp_complete(http_parser *p)
{
    struct gw_upconn *u = p->data;
    u->resp_complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static http_parser_settings resp_settings = {
    .on_headers_complete = on_resp_headers,
    .on_body = on_resp_body,
    .on_message_complete = on_resp_complete,
};

/* Parse and rewrite the upstream response head into c->held. 1 done, 0 need
 * more, -1 bad upstream response, 2 an interim (1xx) response was dropped. */
static int response_head_once(struct gw_conn *c, struct gw_upconn *u)
{
    size_t len = evbuffer_get_length(u->in);
    size_t want = len < GW_RESP_HEAD_MAX ? len : GW_RESP_HEAD_MAX;
    const char *p = (const char *)evbuffer_pullup(u->in, (ssize_t)want);
    size_t head_len = 0;
    enum gh_reason r;
    int rc = gw_http_scan_head(p, want, &u->scan, &u->lines, GW_RESP_HEAD_MAX, 8192,
                               GW_HTTP_MAX_HEADERS, &head_len, &r);
    if (rc <= 0) {
        return rc < 0 ? -1 : 0;
    }
    http_parser_init(&u->parser, HTTP_RESPONSE);
    u->parser.data = u;
    u->resp_complete = 0;
    u->decode_into = NULL;
    size_t n = http_parser_execute(&u->parser, &resp_settings, p, head_len);
    enum http_errno he = HTTP_PARSER_ERRNO(&u->parser);
    if ((he != HPE_OK && he != HPE_PAUSED) || n != head_len) {
        return -1;
    }
    int status = u->resp_status;
    if (status >= 100 && status < 200) {
        /* Interim responses: we answered 100-continue ourselves; drop them. */
        evbuffer_drain(u->in, head_len);
        u->scan = 0;
        u->lines = 0;
        if (status == 101) {
            return -1; /* no protocol switching through the gateway */
        }
        return 2;
    }
    /* Collect header slices of the head (second pass, simple line split). */
    struct evbuffer *h = c->held;
    evbuffer_drain(h, evbuffer_get_length(h));
    const char *line_end = memchr(p, '\n', head_len);
    const char *sp1 = memchr(p, ' ', (size_t)(line_end - p));
    const char *reason = "";
    size_t reason_len = 0;
    if (sp1 != NULL) {
        const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
        if (sp2 != NULL) {
            reason = sp2 + 1;
            reason_len = (size_t)(line_end - 1 - reason);
        }
    }
    int http10_client = c->rh.http_minor == 0;
    int chunked = (u->parser.flags & F_CHUNKED) != 0;
    int has_cl = (u->parser.flags & F_CONTENTLENGTH) != 0;
    int body_allowed = !(u->req_is_head || status == 204 || status == 304);
    u->keep_alive = http_should_keep_alive(&u->parser);
    u->raw_body = 1;
    if (body_allowed && !chunked && !has_cl) {
        c->keep_alive = 0; /* close-delimited body */
    }
    if (body_allowed && chunked && http10_client) {
        u->raw_body = 0; /* HTTP/1.0 client: decode chunks, delimit by close */
        c->keep_alive = 0;
    }
    if (c->w->draining) {
        c->keep_alive = 0;
    }
    evbuffer_add_printf(h, "HTTP/1.1 %d ", status);
    evbuffer_add(h, reason, reason_len);
    evbuffer_add(h, "\r\n", 2);
    const char *q = line_end + 1;
    const char *end = p + head_len - 2;
    const char *conn_hdr = NULL;
    size_t conn_len = 0;
    /* find Connection first (its tokens name more hop-by-hop headers) */
    for (const char *s = q; s < end;) {
        const char *e = memchr(s, '\r', (size_t)(end - s));
        if (e == NULL) {
            break;
        }
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon && (size_t)(colon - s) == 10 && strncasecmp(s, "connection", 10) == 0) {
            conn_hdr = colon + 1;
            conn_len = (size_t)(e - conn_hdr);
        }
        s = e + 2;
    }
    for (const char *s = q; s < end;) {
        const char *e = memchr(s, '\r', (size_t)(end - s));
        if (e == NULL) {
            break;
        }
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (colon != NULL) {
            size_t nl = (size_t)(colon - s);
            int skip = gw_http_is_hop_or_owned(s, nl);
            int framing = u->raw_body && ((nl == 14 && strncasecmp(s, "content-length", 14) == 0) ||
                                          (nl == 17 && strncasecmp(s, "transfer-encoding", 17) == 0));
            if (framing) {
                skip = 0; /* framing passes through unchanged */
            }
            /* Connection tokens name hop-by-hop headers, never the framing:
             * "Connection: content-length" must not leave a keep-alive
             * client unable to find the end of the body. */
            if (!skip && !framing && conn_hdr != NULL && nl < 64) {
                char nm[64];
                memcpy(nm, s, nl);
                nm[nl] = '\0';
                skip = gw_http_list_has(conn_hdr, conn_len, nm);
            }
            if (!skip) {
                evbuffer_add(h, s, (size_t)(e - s) + 2);
            }
        }
        s = e + 2;
    }
    if (!c->keep_alive) {
        evbuffer_add(h, "Connection: close\r\n", 19);
    }
    evbuffer_add(h, "\r\n", 2);
    evbuffer_drain(u->in, head_len);
    c->resp_status = status;
    c->resp_head_done = 1;
    c->resp_declared_len = has_cl ? (int64_t)u->parser.content_length : -1;
    if (!u->raw_body) {
        u->decode_into = c->out;
    }
    return 1;
}

/* response_head_once until a final response head: interim responses (a
 * 103 Early Hints and the 200 in one read) are dropped and the bytes after
 * them parsed at once, instead of waiting for more bytes that may never
 * come. At most 16 in a row. */
static int response_head(struct gw_conn *c, struct gw_upconn *u)
{
    for (int i = 0; i < 16; i++) {
        int rc = response_head_once(c, u);
        if (rc != 2) {
            return rc;
        }
    }
    return -1;
}

static void pump_response(struct gw_conn *c)
{
    struct gw_upconn *u = c->up;
    if (u == NULL) {
        return;
    }
    if (!c->resp_head_done) {
        int rc = response_head(c, u);
        if (rc < 0) {
            up_fail(c, GH_R_UPSTREAM_ERROR, "malformed response head");
            return;
        }
        if (rc == 0) {
            if (u->eof) {
                up_fail(c, GH_R_UPSTREAM_ERROR, "upstream closed before responding");
            }
            return;
        }
        struct db_decision d;
        row_request(c, &d);
        d.decision = GH_ALLOW;
        d.reason = GH_R_ALLOW;
        d.status = c->resp_status;
        d.bytes_out = c->resp_declared_len > 0 ? (uint64_t)c->resp_declared_len : 0;
        decide_and_release(c, &d, CS_STREAM);
        if (c->state == CS_LOGWAIT || c->state == CS_RESPOND) {
            up_update_events(u);
            return;
        }
    }
    if (c->state != CS_STREAM) {
        return;
    }
    /* body: feed the parser, forward exactly the bytes it consumed */
    if (!u->resp_complete) {
        while (evbuffer_get_length(u->in) > 0 && evbuffer_get_length(c->out) < GW_HIGH_WATER) {
            size_t n = evbuffer_get_length(u->in);
            if (n > GW_READ_CHUNK) {
                n = GW_READ_CHUNK;
            }
            const char *p = (const char *)evbuffer_pullup(u->in, (ssize_t)n);
            size_t used = http_parser_execute(&u->parser, &resp_settings, p, n);
            enum http_errno he = HTTP_PARSER_ERRNO(&u->parser);
            if (he != HPE_OK && he != HPE_PAUSED) {
                up_fail(c, GH_R_UPSTREAM_ERROR, http_errno_name(he));
                return;
            }
            if (u->raw_body) {
                evbuffer_remove_buffer(u->in, c->out, used);
            } else {
                evbuffer_drain(u->in, used);
            }
            if (u->resp_complete) {
                break;
            }
        }
        if (!u->resp_complete && u->eof && evbuffer_get_length(u->in) == 0) {
            /* EOF: completes a close-delimited body, truncates any other. */
            http_parser_execute(&u->parser, &resp_settings, NULL, 0);
            if (!u->resp_complete) {
                up_fail(c, GH_R_UPSTREAM_ERROR, "upstream closed mid-body");
                return;
            }
            u->keep_alive = 0;
        }
    }
    if (conn_flush(c) != 0) {
        conn_close(c, "client write failed");
        return;
    }
    if (u->resp_complete) {
        if (!c->body_done) {
            /* Upstream answered before reading the whole request body. */
            u->keep_alive = 0;
            c->keep_alive = 0;
        }
        c->resp_done = 1;
        up_release(c);
    }
    conn_update_events(c);
    if (c->resp_done && evbuffer_get_length(c->out) == 0) {
        request_finished(c);
    }
}

/* ---- request end, keep-alive, close -------------------------------------- */

static void request_finished(struct gw_conn *c)
{
    atomic_fetch_add(&c->w->srv->ctr.requests, 1);
    head_release(c);
    if (!c->keep_alive || c->peer_eof || c->w->draining || gw_authz_conn_revoked(c)) {
        conn_close(c, "request done, not keep-alive");
        return;
    }
    conn_set_state(c, CS_IDLE);
    conn_arm_timer(c, c->st->cfg->idle_timeout_ms);
    conn_update_events(c);
    if (evbuffer_get_length(c->in) > 0) {
        conn_process(c); /* pipelined request */
    }
}

static void conn_process_once(struct gw_conn *c);

/* A request the gateway answers itself (404, 401, the JWKS) finishes inside
 * conn_process and would process the next pipelined request from there:
 * one stack frame chain per request, and 4,000 pipelined requests crashed
 * the worker. A nested call only marks another pass, made here in a loop. */
static void conn_process(struct gw_conn *c)
{
    if (c->processing) {
        c->process_again = 1;
        return;
    }
    c->processing = 1;
    do {
        c->process_again = 0;
        conn_process_once(c);
    } while (c->process_again && c->state != CS_CLOSED);
    c->processing = 0;
}

static void conn_process_once(struct gw_conn *c)
{
    switch (c->state) {
    case CS_IDLE:
    case CS_HEAD:
        process_head(c);
        break;
    case CS_UPSTREAM:
        if (c->special == GW_SPECIAL_LOGOUT) {
            if (!c->body_done) {
                logout_body(c);
            }
            break;
        }
        __attribute__((fallthrough)); /* GCC and clang both understand it */
    case CS_STREAM:
        pump_request_body(c);
        if (c->state == CS_STREAM && c->up != NULL) {
            pump_response(c);
        }
        break;
    case CS_RESPOND:
        if (c->resp_done && evbuffer_get_length(c->out) == 0) {
            request_finished(c);
        }
        break;
    case CS_CLOSING:
        if (evbuffer_get_length(c->out) == 0) {
            conn_close(c, c->close_reason ? c->close_reason : "closing");
        }
        break;
    default:
        break;
    }
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    if (c->state == CS_CLOSED) {
        return;
    }
    if (c->state == CS_HANDSHAKE) {
        do_handshake(c);
        return;
    }
    if ((what & EV_WRITE) || c->read_wants_write) {
        c->read_wants_write = 0;
        if (conn_flush(c) != 0) {
            conn_close(c, "client write failed");
            return;
        }
        if (c->up != NULL && c->state == CS_STREAM) {
            pump_response(c);
            if (c->state == CS_CLOSED) {
                return;
            }
            if (c->up != NULL) {
                up_update_events(c->up);
            }
        }
    }
    if ((what & EV_READ) || c->write_wants_read) {
        if (conn_read(c) != 0) {
            conn_close(c, "client read failed");
            return;
        }
        if (c->write_wants_read && conn_flush(c) != 0) {
            conn_close(c, "client write failed");
            return;
        }
    }
    conn_process(c);
    if (c->state == CS_CLOSED) {
        return;
    }
    if (c->peer_eof && evbuffer_get_length(c->in) == 0 &&
        (c->state == CS_IDLE || (c->state == CS_HEAD && c->scan == 0))) {
        conn_close(c, "client closed");
        return;
    }
    conn_update_events(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_conn *c = arg;
    switch (c->state) {
    case CS_HANDSHAKE:
        handshake_refused(c, GH_R_TLS_TIMEOUT);
        break;
    case CS_IDLE:
        conn_close(c, "idle timeout");
        break;
    case CS_HEAD:
        /* Slow request head (slowloris): 408, logged, closed. */
        c->keep_alive = 0;
        gw_conn_respond(c, 408, GH_R_HTTP_TIMEOUT, NULL);
        conn_arm_timer(c, 2000);
        break;
    default:
        conn_close(c, "timeout");
        break;
    }
}

/* Mark closed, detach, and schedule the free after the current loop pass. */
static void conn_close(struct gw_conn *c, const char *why)
{
    if (c->state == CS_CLOSED) {
        return;
    }
    GH_DEBUG("conn=%llu close: %s", (unsigned long long)c->id, why);
    conn_set_state(c, CS_CLOSED);
    if (c->rd) {
        event_del(c->rd);
    }
    if (c->wr) {
        event_del(c->wr);
    }
    if (c->timer) {
        event_del(c->timer);
    }
    if (c->up != NULL) {
        up_close(c->up, "downstream closed");
        c->up = NULL;
    }
    gw_transport_close(&c->t);
    atomic_fetch_sub(&c->w->srv->ctr.live_conns, 1);
    /* unlink from the live list */
    struct gw_worker *w = c->w;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    c->reap_next = w->reap;
    w->reap = c;
    event_active(w->reap_ev, EV_READ, 0);
}

void gw_conn_revoke_close(struct gw_conn *c, enum gh_reason reason)
{
    if ((c->state == CS_HEAD || c->state == CS_UPSTREAM) && c->head_ok && !c->logged) {
        struct db_decision d;
        row_request(c, &d);
        d.decision = GH_DENY;
        d.reason = reason;
        d.status = 0;
        snprintf(d.detail, sizeof(d.detail), "connection closed by revocation");
        c->logged = 1;
        (void)gw_log_decision(c->w->srv, c->w, &d, NULL, NULL);
    }
    GH_INFO("conn=%llu closed by revocation (%s)", (unsigned long long)c->id,
            gh_reason_name(reason));
    conn_close(c, gh_reason_name(reason));
}

void gw_conn_close_reason(struct gw_conn *c, const char *why)
{
    conn_close(c, why);
}

static void conn_free(struct gw_conn *c)
{
    if (c->rd) {
        event_free(c->rd);
    }
    if (c->wr) {
        event_free(c->wr);
    }
    if (c->timer) {
        event_free(c->timer);
    }
    if (c->in) {
        evbuffer_free(c->in);
    }
    if (c->out) {
        evbuffer_free(c->out);
    }
    if (c->held) {
        evbuffer_free(c->held);
    }
    gw_tls_cert_info_cleanup(&c->cert);
    gw_authz_conn_cleanup(c);
    if (c->st) {
        gw_state_unref(c->st);
    }
    head_release(c);
    free(c);
}

void gw_conn_reap(struct gw_worker *w)
{
    struct gw_conn **pp = &w->reap;
    while (*pp != NULL) {
        struct gw_conn *c = *pp;
        if (c->log_pending > 0) {
            pp = &c->reap_next; /* freed when its commit callback arrives */
            continue;
        }
        *pp = c->reap_next;
        conn_free(c);
    }
    gw_upstream_reap(w);
}

/* Worker mailbox: rows committed for these connections; release responses. */
void gw_conn_commit_done(struct gw_worker *w)
{
    pthread_mutex_lock(&w->mu);
    struct gw_conn *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->mu);
    int reap = 0;
    while (list != NULL) {
        struct gw_conn *c = list;
        list = c->done_next;
        c->log_pending--;
        if (c->state == CS_CLOSED) {
            reap = 1;
            continue;
        }
        if (c->special != GW_SPECIAL_NONE && c->state == CS_UPSTREAM) {
            gw_conn_special_done(c);
            if (c->state != CS_CLOSED) {
                conn_update_events(c);
            }
            continue;
        }
        if (c->state != CS_LOGWAIT) {
            continue;
        }
        if (!c->commit_ok) {
            respond_log_down(c, "log failed"); /* the row could not be committed */
        } else {
            evbuffer_add_buffer(c->out, c->held);
            conn_set_state(c, c->prelog_state == CS_RESPOND ? CS_RESPOND : CS_STREAM);
        }
        if (c->state == CS_STREAM && c->up != NULL) {
            /* Adds the body bytes already buffered, then flushes: head and
             * body leave in one write, as in async mode. */
            pump_response(c);
        } else {
            if (conn_flush(c) != 0) {
                conn_close(c, "client write failed");
                continue;
            }
            if (c->state == CS_STREAM) {
                pump_response(c);
            } else {
                conn_process(c);
            }
        }
        if (c->state != CS_CLOSED) {
            conn_update_events(c);
            if (c->up != NULL) {
                up_update_events(c->up);
            }
        }
    }
    if (reap) {
        gw_conn_reap(w);
    }
}

/* Close idle keep-alive connections; in-flight ones finish with Connection: close. */
void gw_worker_drain(struct gw_worker *w)
{
    w->draining = 1;
    struct gw_conn *c = w->conns;
    while (c != NULL) {
        struct gw_conn *n = c->next;
        if (c->state == CS_IDLE || c->state == CS_HANDSHAKE ||
            (c->state == CS_HEAD && evbuffer_get_length(c->in) == 0)) {
            conn_close(c, "draining");
        }
        c = n;
    }
    gw_upstream_pool_flush(w);
}

void gw_conn_accept(struct gw_worker *w, int fd, const struct sockaddr *sa, socklen_t salen)
{
    struct gw_server *srv = w->srv;
    const struct gw_config *cfg = w->state->cfg;
    struct gw_conn *c = calloc(1, sizeof(*c));
    SSL *ssl = gw_tls_server_new_ssl(srv->tls);
    if (c == NULL || ssl == NULL) {
        free(c);
        SSL_free(ssl);
        close(fd);
        GH_ERROR("out of memory accepting a connection");
        return;
    }
    c->w = w;
    c->id = ((uint64_t)w->id << 48) | ++w->next_conn;
    c->state = CS_HANDSHAKE;
    c->accepted_mono = gh_mono_us();
    memcpy(&c->peer, sa, salen);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, c->peer_ip, sizeof(c->peer_ip));
        c->peer_port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, c->peer_ip, sizeof(c->peer_ip));
        c->peer_port = ntohs(s6->sin6_port);
    }
    SSL_set_fd(ssl, fd);
    gw_transport_init_tls(&c->t, fd, ssl);
    c->st = gw_state_ref(w->state);
    c->head_cap = (size_t)cfg->max_header_bytes;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->held = evbuffer_new();
    c->rd = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_io_cb, c);
    c->wr = event_new(w->base, fd, EV_WRITE | EV_PERSIST, conn_io_cb, c);
    c->timer = evtimer_new(w->base, conn_timer_cb, c);
    c->next = w->conns;
    if (w->conns) {
        w->conns->prev = c;
    }
    w->conns = c;
    atomic_fetch_add(&srv->ctr.accepted, 1);
    atomic_fetch_add(&srv->ctr.live_conns, 1);
    if (c->in == NULL || c->out == NULL || c->held == NULL || c->rd == NULL ||
        c->wr == NULL || c->timer == NULL) {
        GH_ERROR("out of memory setting up conn=%llu", (unsigned long long)c->id);
        conn_close(c, "alloc");
        return;
    }
    gw_authz_conn_init(c);
    conn_arm_timer(c, cfg->handshake_timeout_ms);
    do_handshake(c);
}
