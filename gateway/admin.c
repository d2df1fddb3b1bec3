/*
 * admin.c: the admin API server (docs/ADMIN-API.md) -- the sockets half.
 * What a request means is decided by the pure half (admin_http.c); this
 * file owns the listeners, authenticates each admin, runs one small state
 * machine per client on the control thread's event_base, and turns control
 * plane answers (gateway/control.h) into HTTP/1.1 + JSON.
 *
 * Two doors, two proofs. The Unix socket is created 0600 (umask during
 * bind, chmod after) so only the gateway's user and root can connect at
 * all, and each client is checked again with SO_PEERCRED (uid == our euid
 * or 0) in case someone loosens the file mode. The optional TCP listener
 * speaks TLS with client certificates REQUIRED and verified against the
 * admin CA alone (never the users' CA), without session resumption so
 * every connection verifies its chain, plus an optional subject allow-list.
 *
 * Hostile-client rules (OpenBSD smtpd's control.c): every buffer has a
 * maximum, every state has a deadline, a malformed or oversized request
 * gets a JSON error and closes that one client, never the daemon. Clients
 * are never freed inside their own callback chain: client_close() unhooks
 * them and the reap event frees them after the loop pass. After an error
 * that closes, the response is flushed, the write side shut, and input
 * drained briefly (a "lingering close") so the peer reads the error
 * instead of a TCP reset.
 *
 * Every request -- refused ones included -- becomes one decision row
 * through gw_ctl_log_admin (route "admin").
 */
#include "gateway/admin.h"
#include "gateway/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gateway/admin_internal.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/control.h"
#include "gateway/gateway.h"
#include "gateway/http.h"
#include "gateway/tls.h"
#include "gateway/transport.h"

#define ADMIN_MAX_CLIENTS 64       /* per door: the Unix socket and the mTLS listener each */
#define ADMIN_OVERFLOW 16          /* extra clients told "503 too many" before plain closes */
#define ADMIN_HANDSHAKE_MS 10000
#define ADMIN_HEAD_MS 10000        /* whole head, from its first byte */
#define ADMIN_BODY_MS 60000
#define ADMIN_IDLE_MS 60000        /* keep-alive idle */
#define ADMIN_WRITE_MS 60000       /* a response must drain within this */
#define ADMIN_LINGER_MS 2000
#define ADMIN_LINGER_BYTES (4 * 1024 * 1024)
#define ADMIN_IN_CAP (GW_ADMIN_MAX_HEAD + GW_ADMIN_MAX_BODY + 16384)
#define ADMIN_READ_CHUNK 16384
#define ADMIN_STREAM_POLL_MS 250
#define ADMIN_STREAM_BATCH 500
#define ADMIN_STREAM_HIGH_WATER (256 * 1024)
#define ADMIN_STREAM_BEAT_US (15 * 1000000LL)
#define ADMIN_STREAM_STALL_US (60 * 1000000LL)


static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* ---- types ------------------------------------------------------------------- */

enum ac_state {
    AC_HANDSHAKE, /* TLS handshake in progress */
    AC_IDLE,      /* between requests (keep-alive) */
    AC_HEAD,      /* reading a request head */
    AC_BODY,      /* reading a request body */
    AC_RESPOND,   /* writing a response */
    AC_STREAM,    /* decision stream: chunked NDJSON until the client leaves */
    AC_LINGER,    /* response sent, write side shut, draining input before close */
    AC_CLOSED,
    AC__COUNT
};

struct gw_admin;

struct admin_client {
    struct gw_admin *a;
    struct admin_client *prev, *next; /* a->clients; a->reap uses next only */
    uint64_t id;
    enum ac_state state;
    struct gw_transport t;
    int is_tls;
    struct event *rd, *wr, *timer, *poll;
    int rd_on, wr_on;
    int hs_want, read_wants_write, write_wants_read;
    int peer_eof;
    struct evbuffer *in, *out;
    struct gw_admin_scan scan;
    struct gw_admin_req req;

    /* who */
    int authed;
    int overflow;
    char deny_detail[256];
    char name[512];   /* actor: "uid:N" or the certificate subject */
    char addr[64];    /* "unix" or the peer ip */
    char thumb[65];   /* certificate thumbprint (hex), "" for unix */
    struct gw_actor actor;

    int requests;     /* requests answered on this connection */
    int close_after;
    size_t linger_bytes;
    int64_t last_write_us;

    /* decision stream */
    struct db_query sq;
    int64_t stream_after;
    int64_t stream_beat_us;
    int stream_ending;
};

struct gw_admin {
    struct gw_server *srv;
    struct event_base *base;
    uid_t euid;
    int unix_fd;
    struct event *unix_ev;
    char *sock_path;
    dev_t sock_dev;
    ino_t sock_ino;
    int tls_fd;
    struct event *tls_ev;
    SSL_CTX *tls_ctx;
    uint64_t tls_gen;
    struct admin_client *clients;
    /* Clients per door, [0] Unix socket, [1] mTLS. Separate budgets: anyone
     * who can reach the TCP port can hold handshakes open, and must not be
     * able to shut root out of the local socket by doing so. */
    int n_clients[2];
    struct admin_client *reap;
    struct event *reap_ev;
    uint64_t next_id;
};

/* ---- state machine ------------------------------------------------------------- */

static const char *const state_names[AC__COUNT] = {
    [AC_HANDSHAKE] = "handshake", [AC_IDLE] = "idle",     [AC_HEAD] = "head",
    [AC_BODY] = "body",           [AC_RESPOND] = "respond", [AC_STREAM] = "stream",
    [AC_LINGER] = "linger",       [AC_CLOSED] = "closed",
};

static const char *state_name(enum ac_state s)
{
    return (unsigned)s < AC__COUNT ? state_names[s] : "?";
}

#define B(s) (1u << (s))
static const unsigned allowed[AC__COUNT] = {
    [AC_HANDSHAKE] = B(AC_IDLE) | B(AC_CLOSED),
    [AC_IDLE] = B(AC_HEAD) | B(AC_CLOSED),
    [AC_HEAD] = B(AC_BODY) | B(AC_RESPOND) | B(AC_STREAM) | B(AC_CLOSED),
    [AC_BODY] = B(AC_RESPOND) | B(AC_STREAM) | B(AC_CLOSED),
    [AC_RESPOND] = B(AC_IDLE) | B(AC_LINGER) | B(AC_CLOSED),
    [AC_STREAM] = B(AC_LINGER) | B(AC_CLOSED),
    [AC_LINGER] = B(AC_CLOSED),
    [AC_CLOSED] = 0,
};

static void arm_timer(struct admin_client *c, int ms)
{
    if (ms <= 0) {
        event_del(c->timer);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(c->timer, &tv);
}

/* Enter hooks: each state owns its deadline. */
static void set_state(struct admin_client *c, enum ac_state to)
{
    if (c->state == to) {
        return;
    }
    if (!(allowed[c->state] & B(to))) {
        GH_ERROR("admin client %llu: illegal transition %s -> %s", (unsigned long long)c->id,
                 state_name(c->state), state_name(to));
        abort(); /* a logic error, caught by tests; never reachable from input */
    }
    c->state = to;
    switch (to) {
    case AC_IDLE:
        memset(&c->scan, 0, sizeof(c->scan));
        arm_timer(c, ADMIN_IDLE_MS);
        break;
    case AC_HEAD:
        memset(&c->req, 0, sizeof(c->req)); /* nothing of the previous request survives */
        arm_timer(c, ADMIN_HEAD_MS);
        break;
    case AC_BODY:
        arm_timer(c, ADMIN_BODY_MS);
        break;
    case AC_RESPOND:
        arm_timer(c, ADMIN_WRITE_MS);
        break;
    case AC_STREAM: {
        arm_timer(c, 0);
        struct timeval tv = {0, ADMIN_STREAM_POLL_MS * 1000};
        event_add(c->poll, &tv);
        break;
    }
    case AC_LINGER:
        event_del(c->poll);
        if (c->t.ssl != NULL) {
            (void)SSL_shutdown(c->t.ssl); /* close_notify, best effort */
            ERR_clear_error();
        }
        shutdown(c->t.fd, SHUT_WR);
        arm_timer(c, ADMIN_LINGER_MS);
        break;
    default:
        break;
    }
}

/* ---- small helpers ---------------------------------------------------------------- */

static void client_run(struct admin_client *c);
static void client_close(struct admin_client *c, const char *why);

static const char *status_text(int status)
{
    return gw_http_status_text(status);
}

static void admin_log(struct admin_client *c, int status, enum gh_reason r, const char *fmt, ...)
    GH_PRINTF(4, 5);

/* The admin operations that change state (and so need their row durable). */
static int admin_changes(int op)
{
    return op == GW_ADM_REVOKE || op == GW_ADM_UNREVOKE || op == GW_ADM_POLICY_APPLY ||
           op == GW_ADM_POLICY_ROLLBACK;
}

static void admin_log(struct admin_client *c, int status, enum gh_reason r, const char *fmt, ...)
{
    char raw[256], detail[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    gw_admin_printable(detail, sizeof(detail), raw, strlen(raw));
    if (admin_changes(c->req.op) && status >= 200 && status < 300) {
        /* The change is made: its row is committed before the answer
         * leaves (the control thread waits here; the response is only
         * queued so far). */
        (void)gw_ctl_log_admin_durable(c->a->srv, &c->actor, c->req.method, c->req.path, status, r,
                                       detail);
    } else {
        gw_ctl_log_admin(c->a->srv, &c->actor, c->req.method, c->req.path, status, r, detail);
    }
    int loud = status >= 400 || status == 0 || strcmp(c->req.method, "GET") != 0;
    gh_log(loud ? GH_LOG_INFO : GH_LOG_DEBUG, "admin %s (%s) %s %s -> %d %s: %s", c->name,
           c->addr, c->req.method[0] ? c->req.method : "-", c->req.path[0] ? c->req.path : "-",
           status, gh_reason_name(r), detail);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* Queue a complete response. Takes the contents of body (may be NULL). */
static void respond_raw(struct admin_client *c, int status, const char *ctype,
                        struct evbuffer *body, const char *extra)
{
    const struct gw_admin_req *r = &c->req;
    if (r->close || !r->keep_alive || c->peer_eof || c->overflow || !c->authed) {
        c->close_after = 1;
    }
    size_t blen = body ? evbuffer_get_length(body) : 0;
    const char *conn = "";
    if (c->close_after) {
        conn = "Connection: close\r\n";
    } else if (r->http_minor == 0) {
        conn = "Connection: keep-alive\r\n";
    }
    evbuffer_add_printf(c->out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
                        status, status_text(status), ctype, blen, conn, extra ? extra : "");
    if (body != NULL) {
        evbuffer_add_buffer(c->out, body);
    }
    set_state(c, AC_RESPOND);
}

/* Queue j (reference stolen) as a JSON response. */
static void respond_json(struct admin_client *c, int status, json_t *j, const char *extra)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || j == NULL || json_dump_callback(j, dump_cb, b, JSON_COMPACT) != 0 ||
        evbuffer_add(b, "\n", 1) != 0) {
        if (b != NULL) {
            evbuffer_drain(b, evbuffer_get_length(b));
            evbuffer_add_printf(b, "{\"error\":\"cannot encode the response\",\"reason\":\"%s\"}\n",
                                gh_reason_name(GH_R_INTERNAL));
        }
        status = 500;
    }
    json_decref(j);
    respond_raw(c, status, "application/json", b, extra);
    evbuffer_free(b);
}

/* An error answer plus its decision row. */
static void fail(struct admin_client *c, int status, enum gh_reason r, const char *msg,
                 const char *extra)
{
    respond_json(c, status, gw_admin_error_json(msg, r), extra);
    admin_log(c, status, r, "%s", msg);
}

/* A control-plane error: caller mistakes (GH_R_ADMIN_BAD_REQUEST) are 4xx,
 * anything else is ours (500). */
static void ctl_fail(struct admin_client *c, const struct gh_err *err, int bad_status)
{
    int bad = err->reason == GH_R_ADMIN_BAD_REQUEST;
    const char *msg = err->msg[0] ? err->msg : (bad ? "bad request" : "internal error");
    fail(c, bad ? bad_status : 500, bad ? GH_R_ADMIN_BAD_REQUEST : GH_R_INTERNAL, msg, NULL);
}

/* A 200 JSON answer from a control call (NULL -> 500) with its row. */
static void ok_json(struct admin_client *c, int status, json_t *j, const char *what)
{
    if (j == NULL) {
        char m[96];
        snprintf(m, sizeof(m), "%s unavailable", what);
        fail(c, 500, GH_R_INTERNAL, m, NULL);
        return;
    }
    respond_json(c, status, j, NULL);
    admin_log(c, status, GH_R_ADMIN_OK, "%s", what);
}

/* Policy calls report their own status (422 for a rejected policy). Error
 * bodies get "error" and "reason" like every other admin error. */
static void policy_result(struct admin_client *c, json_t *j, int status, const char *detail)
{
    if (j == NULL) {
        if (status < 400) {
            status = 500;
        }
        fail(c, status, status >= 500 ? GH_R_INTERNAL : GH_R_ADMIN_BAD_REQUEST,
             status >= 500 ? "policy operation failed" : "policy request refused", NULL);
        return;
    }
    enum gh_reason r = status < 400 ? GH_R_ADMIN_OK
                                    : (status >= 500 ? GH_R_INTERNAL : GH_R_ADMIN_BAD_REQUEST);
    if (status >= 400 && json_is_object(j)) {
        if (json_object_get(j, "error") == NULL) {
            const char *e = status == 422 ? "policy rejected" : status_text(status);
            json_object_set_new(j, "error", json_string(e));
        }
        if (json_object_get(j, "reason") == NULL) {
            json_object_set_new(j, "reason", json_string(gh_reason_name(r)));
        }
    }
    respond_json(c, status, j, NULL);
    admin_log(c, status, r, "%s", detail);
}

/* ---- the decision stream ------------------------------------------------------------ */

static void add_chunk(struct evbuffer *out, struct evbuffer *data)
{
    size_t n = evbuffer_get_length(data);
    if (n == 0) {
        return;
    }
    evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add_buffer(out, data);
    evbuffer_add(out, "\r\n", 2);
}

static int64_t row_id(json_t *row)
{
    json_t *v = json_object_get(row, "id");
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Append rows newer than the cursor, oldest first (whatever order the
 * control plane returned them in), advancing the cursor. */
static void stream_rows(struct admin_client *c, json_t *rows, struct evbuffer *tmp)
{
    size_t n = json_array_size(rows);
    if (n == 0) {
        return;
    }
    int reverse = n > 1 && row_id(json_array_get(rows, 0)) > row_id(json_array_get(rows, n - 1));
    for (size_t k = 0; k < n; k++) {
        json_t *row = json_array_get(rows, reverse ? n - 1 - k : k);
        int64_t id = row_id(row);
        if (id <= c->stream_after) {
            continue;
        }
        if (json_dump_callback(row, dump_cb, tmp, JSON_COMPACT) == 0) {
            evbuffer_add(tmp, "\n", 1);
        }
        c->stream_after = id;
    }
}

static void stream_end(struct admin_client *c, const char *msg, enum gh_reason r)
{
    if (msg != NULL) {
        struct evbuffer *tmp = evbuffer_new();
        json_t *e = gw_admin_error_json(msg, r);
        if (tmp != NULL && e != NULL && json_dump_callback(e, dump_cb, tmp, JSON_COMPACT) == 0) {
            evbuffer_add(tmp, "\n", 1);
            add_chunk(c->out, tmp);
        }
        json_decref(e);
        evbuffer_free(tmp);
    }
    evbuffer_add(c->out, "0\r\n\r\n", 5);
    c->stream_ending = 1;
    event_del(c->poll);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin_client *c = arg;
    if (c->state != AC_STREAM || c->stream_ending) {
        return;
    }
    int64_t now = gh_mono_us();
    size_t pending = evbuffer_get_length(c->out);
    if (pending > 0 && now - c->last_write_us > ADMIN_STREAM_STALL_US) {
        client_close(c, "decision stream client stopped reading");
        return;
    }
    if (pending < ADMIN_STREAM_HIGH_WATER) {
        struct gh_err err = {0};
        c->sq.after_id = c->stream_after;
        json_t *j = gw_ctl_decisions(c->a->srv, &c->sq, &err);
        if (j == NULL) {
            GH_WARN("admin decision stream %llu: %s", (unsigned long long)c->id, err.msg);
            stream_end(c, err.msg[0] ? err.msg : "decision query failed",
                       err.reason == GH_R_ADMIN_BAD_REQUEST ? err.reason : GH_R_INTERNAL);
        } else {
            struct evbuffer *tmp = evbuffer_new();
            if (tmp != NULL) {
                stream_rows(c, json_object_get(j, "decisions"), tmp);
                if (evbuffer_get_length(tmp) == 0 &&
                    now - c->stream_beat_us > ADMIN_STREAM_BEAT_US) {
                    evbuffer_add(tmp, "\n", 1); /* heartbeat: also detects a vanished client */
                }
                if (evbuffer_get_length(tmp) > 0) {
                    c->stream_beat_us = now;
                    if (pending == 0) {
                        c->last_write_us = now;
                    }
                    add_chunk(c->out, tmp);
                }
                evbuffer_free(tmp);
            }
            json_decref(j);
        }
    }
    client_run(c);
}

static void start_stream(struct admin_client *c)
{
    struct gh_err err = {0};
    if (gw_admin_decisions_query(&c->req, &c->sq, &err) != 0) {
        fail(c, 400, GH_R_ADMIN_BAD_REQUEST, err.msg, NULL);
        return;
    }
    if (c->req.http_minor == 0) {
        fail(c, 400, GH_R_ADMIN_BAD_REQUEST, "the decision stream needs HTTP/1.1 (chunked)", NULL);
        return;
    }
    if (gw_admin_query(&c->req, "after_id") == NULL) {
        /* No cursor: start at the newest row, i.e. show only what happens next. */
        struct db_query last = {.decision = -1, .limit = 1};
        json_t *j = gw_ctl_decisions(c->a->srv, &last, &err);
        if (j == NULL) {
            ctl_fail(c, &err, 400);
            return;
        }
        json_t *rows = json_object_get(j, "decisions");
        int64_t id = json_array_size(rows) > 0 ? row_id(json_array_get(rows, 0)) : 0;
        c->sq.after_id = id > 0 ? id : 0;
        json_decref(j);
    }
    c->stream_after = c->sq.after_id;
    c->sq.oldest_first = 1;
    c->sq.limit = ADMIN_STREAM_BATCH;
    c->stream_beat_us = gh_mono_us();
    c->last_write_us = c->stream_beat_us;
    evbuffer_add_printf(c->out, "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                                "Transfer-Encoding: chunked\r\nCache-Control: no-store\r\n"
                                "X-Content-Type-Options: nosniff\r\n\r\n");
    admin_log(c, 200, GH_R_ADMIN_OK, "decision stream after_id=%lld", (long long)c->stream_after);
    set_state(c, AC_STREAM);
    event_active(c->poll, EV_TIMEOUT, 0); /* the backlog after after_id goes out at once */
}

/* ---- dispatch ------------------------------------------------------------------------- */

static void do_revoke(struct admin_client *c, const char *body, size_t blen)
{
    struct gh_err err = {0};
    struct gw_admin_revoke rv;
    if (gw_admin_parse_revoke(body, blen, &rv, &err) != 0) {
        fail(c, 400, GH_R_ADMIN_BAD_REQUEST, err.msg, NULL);
        return;
    }
    int64_t expires_us = rv.expires_in_s > 0 ? gh_now_us() + rv.expires_in_s * 1000000 : 0;
    json_t *j = gw_ctl_revoke(c->a->srv, &c->actor, rv.kind, rv.target, rv.reason, expires_us,
                              &err);
    if (j == NULL) {
        ctl_fail(c, &err, 400);
        return;
    }
    respond_json(c, 201, j, NULL);
    admin_log(c, 201, GH_R_ADMIN_OK, "revoke %s %.48s%s", rv.kind, rv.target,
              strlen(rv.target) > 48 ? "..." : "");
}

static void do_unrevoke(struct admin_client *c)
{
    struct gh_err err = {0};
    int64_t id;
    if (gw_admin_parse_i64(c->req.id, 1, INT64_MAX, &id) != 0) {
        fail(c, 400, GH_R_ADMIN_BAD_REQUEST, "revocation id must be a positive integer", NULL);
        return;
    }
    if (gw_ctl_unrevoke(c->a->srv, &c->actor, id, &err) != 0) {
        ctl_fail(c, &err, 404);
        return;
    }
    respond_json(c, 200, json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)id), NULL);
    admin_log(c, 200, GH_R_ADMIN_OK, "lift revocation %lld", (long long)id);
}

static void do_policy(struct admin_client *c, const char *body, size_t blen)
{
    struct gw_server *srv = c->a->srv;
    int status = 200;
    struct gh_err err = {0};
    switch (c->req.op) {
    case GW_ADM_POLICY_VALIDATE: {
        if (blen == 0) {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, "empty policy body (send the YAML)", NULL);
            return;
        }
        json_t *j = gw_ctl_policy_validate(srv, body, blen);
        if (j != NULL && json_is_false(json_object_get(j, "ok"))) {
            status = 422;
        }
        policy_result(c, j, status,
                      status == 200 ? "policy validate: ok" : "policy validate: invalid");
        return;
    }
    case GW_ADM_POLICY_APPLY: {
        if (blen == 0) {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, "empty policy body (send the YAML)", NULL);
            return;
        }
        json_t *j = gw_ctl_policy_apply(srv, &c->actor, body, blen, &status);
        char d[128];
        json_t *v = j ? json_object_get(j, "version") : NULL;
        if (status < 400 && json_is_string(v)) {
            snprintf(d, sizeof(d), "policy apply: version %.64s", json_string_value(v));
        } else if (status < 400 && json_is_integer(v)) {
            snprintf(d, sizeof(d), "policy apply: version %lld", (long long)json_integer_value(v));
        } else {
            snprintf(d, sizeof(d), "policy apply: %s", status < 400 ? "ok" : "rejected");
        }
        policy_result(c, j, status, d);
        return;
    }
    case GW_ADM_POLICY_DIFF: {
        const char *from = gw_admin_query(&c->req, "from");
        const char *to = gw_admin_query(&c->req, "to");
        if (from == NULL || from[0] == '\0') {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, "missing query parameter 'from'", NULL);
            return;
        }
        if (to != NULL && to[0] == '\0') {
            to = NULL;
        }
        json_t *j = gw_ctl_policy_diff(srv, from, to, &status);
        char d[128];
        snprintf(d, sizeof(d), "policy diff %.40s..%.40s", from, to ? to : "active");
        policy_result(c, j, status, d);
        return;
    }
    case GW_ADM_POLICY_ROLLBACK: {
        char version[GW_ADMIN_MAX_TEXT + 1];
        if (gw_admin_parse_rollback(body, blen, version, sizeof(version), &err) != 0) {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, err.msg, NULL);
            return;
        }
        json_t *j = gw_ctl_policy_rollback(srv, &c->actor, version, &status);
        char d[128];
        snprintf(d, sizeof(d), "policy rollback to %.64s", version);
        policy_result(c, j, status, d);
        return;
    }
    default:
        fail(c, 500, GH_R_INTERNAL, "unhandled policy route", NULL);
        return;
    }
}

static void dispatch(struct admin_client *c, const char *body, size_t blen)
{
    struct gw_server *srv = c->a->srv;
    struct gw_admin_req *r = &c->req;
    struct gh_err err = {0};
    c->requests++;
    if (c->overflow) {
        fail(c, 503, GH_R_OVERLOADED, "too many admin clients; try again later", NULL);
        return;
    }
    if (!c->authed) {
        respond_json(c, 403, gw_admin_error_json("not an admin", GH_R_ADMIN_DENIED), NULL);
        admin_log(c, 403, GH_R_ADMIN_DENIED, "%s", c->deny_detail);
        return;
    }
    if (r->status != 0) {
        char extra[80] = "";
        if (r->status == 405 && r->allow[0] != '\0') {
            snprintf(extra, sizeof(extra), "Allow: %s\r\n", r->allow);
        }
        fail(c, r->status, r->reason, r->error, extra);
        return;
    }
    if (admin_changes(r->op) && !gw_ctl_log_accepting(srv)) {
        /* Every admin action is a logged decision: with the log unable to
         * take the row, the change is refused before it is made. */
        fail(c, 503, GH_R_LOG_UNAVAILABLE,
             "decision log unavailable: admin changes are refused until it recovers", NULL);
        return;
    }
    switch (r->op) {
    case GW_ADM_HEALTH:
        respond_json(c, 200, json_pack("{s:b}", "ok", 1), NULL);
        admin_log(c, 200, GH_R_ADMIN_OK, "health");
        return;
    case GW_ADM_STATS:
        ok_json(c, 200, gw_ctl_stats(srv), "stats");
        return;
    case GW_ADM_METRICS: {
        struct evbuffer *b = evbuffer_new();
        if (b == NULL) {
            fail(c, 500, GH_R_INTERNAL, "out of memory", NULL);
            return;
        }
        gw_ctl_metrics(srv, b);
        respond_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", b, NULL);
        evbuffer_free(b);
        admin_log(c, 200, GH_R_ADMIN_OK, "metrics");
        return;
    }
    case GW_ADM_SESSIONS: {
        int limit = 0;
        if (gw_admin_sessions_limit(r, &limit, &err) != 0) {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, err.msg, NULL);
            return;
        }
        ok_json(c, 200, gw_ctl_sessions(srv, limit), "list sessions");
        return;
    }
    case GW_ADM_SESSION: {
        json_t *j = gw_ctl_session(srv, r->id);
        if (j == NULL) {
            fail(c, 404, GH_R_ADMIN_BAD_REQUEST, "no such session", NULL);
            return;
        }
        respond_json(c, 200, j, NULL);
        admin_log(c, 200, GH_R_ADMIN_OK, "session %.40s", r->id);
        return;
    }
    case GW_ADM_REVOCATIONS: {
        int limit = 0;
        if (gw_admin_sessions_limit(r, &limit, &err) != 0) {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, err.msg, NULL);
            return;
        }
        json_t *j = gw_ctl_revocations(srv, limit, &err);
        if (j == NULL) {
            ctl_fail(c, &err, 500);
            return;
        }
        respond_json(c, 200, j, NULL);
        admin_log(c, 200, GH_R_ADMIN_OK, "list revocations");
        return;
    }
    case GW_ADM_REVOKE:
        do_revoke(c, body, blen);
        return;
    case GW_ADM_UNREVOKE:
        do_unrevoke(c);
        return;
    case GW_ADM_DECISIONS: {
        struct db_query q;
        if (gw_admin_decisions_query(r, &q, &err) != 0) {
            fail(c, 400, GH_R_ADMIN_BAD_REQUEST, err.msg, NULL);
            return;
        }
        json_t *j = gw_ctl_decisions(srv, &q, &err);
        if (j == NULL) {
            ctl_fail(c, &err, 400);
            return;
        }
        respond_json(c, 200, j, NULL);
        admin_log(c, 200, GH_R_ADMIN_OK, "query decisions");
        return;
    }
    case GW_ADM_STREAM:
        start_stream(c);
        return;
    case GW_ADM_POLICY:
        ok_json(c, 200, gw_ctl_policy_get(srv), "policy");
        return;
    case GW_ADM_POLICY_VERSIONS:
        ok_json(c, 200, gw_ctl_policy_versions(srv), "policy versions");
        return;
    case GW_ADM_POLICY_VALIDATE:
    case GW_ADM_POLICY_APPLY:
    case GW_ADM_POLICY_DIFF:
    case GW_ADM_POLICY_ROLLBACK:
        do_policy(c, body, blen);
        return;
    default:
        fail(c, 404, GH_R_ADMIN_BAD_REQUEST, "no such admin endpoint", NULL);
        return;
    }
}

/* ---- input ------------------------------------------------------------------------------- */

/* Advance through complete requests in c->in. Returns 1 if anything moved. */
static int process_input(struct admin_client *c)
{
    int did = 0;
    for (;;) {
        size_t len = evbuffer_get_length(c->in);
        switch (c->state) {
        case AC_IDLE:
            if (len == 0) {
                return did;
            }
            set_state(c, AC_HEAD);
            did = 1;
            break;
        case AC_HEAD: {
            size_t n = len < GW_ADMIN_MAX_HEAD ? len : GW_ADMIN_MAX_HEAD;
            const char *p = (const char *)evbuffer_pullup(c->in, (ssize_t)n);
            if (p == NULL) {
                return did;
            }
            if (gw_admin_parse_request(p, n, &c->scan, &c->req) == 0) {
                return did;
            }
            did = 1;
            struct gw_admin_req *r = &c->req;
            if (r->status != 0 && r->close) {
                c->close_after = 1;
                dispatch(c, NULL, 0); /* framing error: answer, then close */
                return did;
            }
            evbuffer_drain(c->in, r->head_len);
            if (r->content_length > 0) {
                if (r->status != 0 || !c->authed || c->overflow) {
                    /* Answer now instead of reading a body we would discard. */
                    c->close_after = 1;
                    dispatch(c, NULL, 0);
                    return did;
                }
                if (r->expect_continue) {
                    evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                }
                set_state(c, AC_BODY);
                break;
            }
            dispatch(c, NULL, 0);
            break;
        }
        case AC_BODY: {
            size_t cl = (size_t)c->req.content_length;
            if (len < cl) {
                return did;
            }
            const char *body = (const char *)evbuffer_pullup(c->in, (ssize_t)cl);
            if (body == NULL) {
                c->close_after = 1;
                fail(c, 500, GH_R_INTERNAL, "out of memory", NULL);
                return 1;
            }
            dispatch(c, body, cl);
            evbuffer_drain(c->in, cl);
            did = 1;
            break;
        }
        case AC_STREAM:
            evbuffer_drain(c->in, len); /* nothing more is expected from a stream client */
            return did;
        default:
            return did;
        }
    }
}

static int wants_read(const struct admin_client *c)
{
    if (c->peer_eof) {
        return 0;
    }
    switch (c->state) {
    case AC_IDLE:
    case AC_HEAD:
    case AC_BODY:
        return evbuffer_get_length(c->in) < ADMIN_IN_CAP;
    case AC_STREAM:
    case AC_LINGER:
        return 1;
    default:
        return 0;
    }
}

/* Read what the socket has. Returns bytes read; sets peer_eof at the end of
 * the stream; closes the client on a read error. */
static ssize_t read_some(struct admin_client *c)
{
    char buf[ADMIN_READ_CHUNK];
    ssize_t total = 0;
    for (int i = 0; i < 8 && wants_read(c); i++) {
        if (c->state == AC_LINGER) {
            ssize_t n = read(c->t.fd, buf, sizeof(buf));
            if (n > 0) {
                c->linger_bytes += (size_t)n;
                if (c->linger_bytes > ADMIN_LINGER_BYTES) {
                    client_close(c, "linger limit");
                    return total;
                }
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                return total;
            }
            client_close(c, "closed after the response");
            return total;
        }
        int want;
        ssize_t n = gw_transport_read(&c->t, buf, sizeof(buf), &want);
        if (n > 0) {
            c->read_wants_write = 0;
            if (c->state != AC_STREAM) {
                evbuffer_add(c->in, buf, (size_t)n);
            }
            total += n;
            continue;
        }
        if (n == GW_IO_AGAIN) {
            c->read_wants_write = want == GW_WANT_WRITE;
            return total;
        }
        c->read_wants_write = 0;
        if (n == GW_IO_EOF) {
            c->peer_eof = 1;
            return total;
        }
        client_close(c, "read error");
        return total;
    }
    return total;
}

/* Write what c->out holds. -1 on a write error. */
static int flush_out(struct admin_client *c)
{
    int wr_rd = 0;
    uint64_t n = 0;
    int rc = gw_transport_flush(&c->t, c->out, &n, &wr_rd);
    c->write_wants_read = wr_rd;
    if (n > 0) {
        c->last_write_us = gh_mono_us();
    }
    return rc;
}

static void update_events(struct admin_client *c)
{
    if (c->state == AC_CLOSED) {
        return;
    }
    int rd = 0, wr = 0;
    if (c->state == AC_HANDSHAKE) {
        rd = c->hs_want != GW_WANT_WRITE;
        wr = c->hs_want == GW_WANT_WRITE;
    } else {
        rd = wants_read(c);
        wr = evbuffer_get_length(c->out) > 0;
        if (c->state != AC_LINGER) {
            wr |= c->read_wants_write;
            rd |= c->write_wants_read;
        }
    }
    gw_event_interest(c->rd, &c->rd_on, rd, c->wr, &c->wr_on, wr);
}

/* ---- authentication ------------------------------------------------------------------------ */

/* An entry matches the whole one-line subject (RFC 4514 style, values
 * escaped, so "CN=a\,O=b" never equals "CN=a,O=b"), or -- only when it
 * names a single CN ("ops-admin" or "CN=ops-admin": no ',', '+' or '='
 * after the prefix) -- the certificate's CN. A multi-RDN entry is never
 * compared with a CN: a CN spelled "ops-admin,O=Example" must not pass for
 * the subject CN=ops-admin,O=Example. */
int gw_admin_subject_allowed(const struct gw_config *cfg, const char *subject, const char *cn)
{
    if (cfg->n_admin_subjects == 0) {
        return 1; /* any certificate the admin CA issued */
    }
    for (int i = 0; i < cfg->n_admin_subjects; i++) {
        const char *s = cfg->admin_subjects[i];
        if (s == NULL) {
            continue;
        }
        if (strcmp(s, subject) == 0) {
            return 1;
        }
        const char *want = strncmp(s, "CN=", 3) == 0 ? s + 3 : s;
        if (cn[0] != '\0' && strpbrk(want, ",+=") == NULL && strcmp(want, cn) == 0) {
            return 1;
        }
    }
    return 0;
}

static void handshake_refused(struct admin_client *c, enum gh_reason why)
{
    char subj[200] = "";
    struct az_cert_info ci;
    if (c->t.ssl != NULL && gw_tls_peer_info(c->t.ssl, &ci) == 0) {
        /* Unverified: shown to help an operator, never trusted. */
        gw_admin_printable(subj, sizeof(subj), ci.subject, strlen(ci.subject));
        snprintf(c->thumb, sizeof(c->thumb), "%s", ci.thumbprint_hex);
        gw_tls_cert_info_cleanup(&ci);
    }
    snprintf(c->name, sizeof(c->name), "unauthenticated");
    admin_log(c, 0, GH_R_ADMIN_DENIED, "tls handshake refused: %s%s%s", gh_reason_name(why),
              subj[0] ? " subject=" : "", subj);
    client_close(c, gh_reason_name(why));
}

static void handshake_step(struct admin_client *c)
{
    int want;
    int rc = gw_transport_handshake(&c->t, &want);
    if (rc == GW_IO_AGAIN) {
        c->hs_want = want;
        return;
    }
    if (rc != 1) {
        handshake_refused(c, gw_tls_refusal_reason(c->t.ssl));
        return;
    }
    struct az_cert_info ci;
    if (gw_tls_peer_info(c->t.ssl, &ci) != 0) {
        handshake_refused(c, GH_R_TLS_NO_CERT);
        return;
    }
    snprintf(c->name, sizeof(c->name), "%s", ci.subject);
    snprintf(c->thumb, sizeof(c->thumb), "%s", ci.thumbprint_hex);
    struct gw_state *st = gw_server_state(c->a->srv);
    c->authed = gw_admin_subject_allowed(st->cfg, ci.subject, ci.cn);
    gw_state_unref(st);
    if (!c->authed) {
        char s[120];
        gw_admin_printable(s, sizeof(s), ci.subject, strlen(ci.subject));
        snprintf(c->deny_detail, sizeof(c->deny_detail),
                 "certificate subject %s is not in admin.allowed_subjects", s);
    }
    gw_tls_cert_info_cleanup(&ci);
    c->hs_want = 0;
    set_state(c, AC_IDLE);
}

/* ---- client lifecycle ------------------------------------------------------------------------ */

static void client_free(struct admin_client *c)
{
    if (c->rd != NULL) {
        event_free(c->rd);
    }
    if (c->wr != NULL) {
        event_free(c->wr);
    }
    if (c->timer != NULL) {
        event_free(c->timer);
    }
    if (c->poll != NULL) {
        event_free(c->poll);
    }
    if (c->in != NULL) {
        evbuffer_free(c->in);
    }
    if (c->out != NULL) {
        evbuffer_free(c->out);
    }
    free(c);
}

/* Unhook now, free at the end of the loop pass (never inside c's own
 * callback chain). */
static void client_close(struct admin_client *c, const char *why)
{
    if (c->state == AC_CLOSED) {
        return;
    }
    GH_DEBUG("admin client %llu (%s) closed in %s: %s", (unsigned long long)c->id, c->name,
             state_name(c->state), why);
    c->state = AC_CLOSED; /* every state may close */
    event_del(c->rd);
    event_del(c->wr);
    event_del(c->timer);
    event_del(c->poll);
    gw_transport_close(&c->t);
    struct gw_admin *a = c->a;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        a->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    a->n_clients[c->is_tls ? 1 : 0]--;
    c->prev = NULL;
    c->next = a->reap;
    a->reap = c;
    event_active(a->reap_ev, EV_TIMEOUT, 0);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_admin *a = arg;
    while (a->reap != NULL) {
        struct admin_client *c = a->reap;
        a->reap = c->next;
        client_free(c);
    }
}

/* The peer finished sending while we wait for (more of) a request. */
static void peer_gone(struct admin_client *c)
{
    if (!c->authed && c->requests == 0) {
        admin_log(c, 0, GH_R_ADMIN_DENIED, "%s (closed before a request)", c->deny_detail);
    } else if (c->state == AC_HEAD || c->state == AC_BODY) {
        admin_log(c, 0, GH_R_HTTP_CLIENT_ABORT, "client closed during the request %s",
                  state_name(c->state));
    }
    client_close(c, "peer closed");
}

static void client_run(struct admin_client *c)
{
    if (c->state == AC_HANDSHAKE) {
        handshake_step(c);
        if (c->state == AC_HANDSHAKE) {
            update_events(c);
            return;
        }
    }
    for (int round = 0; round < 16 && c->state != AC_CLOSED; round++) {
        int progress = 0;
        if (flush_out(c) != 0) {
            client_close(c, "write error");
            return;
        }
        if (evbuffer_get_length(c->out) == 0) {
            if (c->state == AC_RESPOND) {
                if (c->close_after || c->peer_eof) {
                    if (c->peer_eof) {
                        client_close(c, "response sent, peer done");
                        return;
                    }
                    set_state(c, AC_LINGER);
                } else {
                    set_state(c, AC_IDLE);
                }
                progress = 1;
            } else if (c->state == AC_STREAM && c->stream_ending) {
                set_state(c, AC_LINGER);
                progress = 1;
            }
        }
        if (read_some(c) > 0) {
            progress = 1;
        }
        if (c->state == AC_CLOSED) {
            return;
        }
        if (process_input(c)) {
            progress = 1;
        }
        if (c->peer_eof) {
            if (c->state == AC_IDLE || c->state == AC_HEAD || c->state == AC_BODY) {
                peer_gone(c);
                return;
            }
            if (c->state == AC_STREAM || c->state == AC_LINGER) {
                client_close(c, "peer closed");
                return;
            }
        }
        if (!progress) {
            break;
        }
    }
    if (c->state == AC_CLOSED) {
        return;
    }
    update_events(c);
    if (c->is_tls && wants_read(c) && gw_transport_pending(&c->t) > 0) {
        event_active(c->rd, EV_READ, 0); /* TLS holds decrypted bytes the fd won't signal */
    }
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    client_run(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct admin_client *c = arg;
    switch (c->state) {
    case AC_HANDSHAKE:
        handshake_refused(c, GH_R_TLS_TIMEOUT);
        return;
    case AC_IDLE:
        if (!c->authed && c->requests == 0) {
            admin_log(c, 0, GH_R_ADMIN_DENIED, "%s (no request before the idle timeout)",
                      c->deny_detail);
        }
        client_close(c, "idle timeout");
        return;
    case AC_HEAD:
    case AC_BODY: {
        /* Slow or stalled request (slowloris): 408 and close. */
        int ms = c->state == AC_HEAD ? ADMIN_HEAD_MS : ADMIN_BODY_MS;
        c->close_after = 1;
        c->req.close = 1;
        c->requests++;
        respond_json(c, 408, gw_admin_error_json("request not received in time", GH_R_HTTP_TIMEOUT),
                     NULL);
        admin_log(c, 408, GH_R_HTTP_TIMEOUT, "request not received within %d ms", ms);
        client_run(c);
        return;
    }
    case AC_RESPOND:
        client_close(c, "write timeout");
        return;
    default:
        client_close(c, "timeout");
        return;
    }
}

static void peer_ip(const struct sockaddr_storage *ss, char *out, size_t len)
{
    out[0] = '\0';
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)len);
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)len);
    }
    if (out[0] == '\0') {
        snprintf(out, len, "?");
    }
}

static SSL_CTX *admin_ctx_new(const struct gw_config *cfg, struct gh_err *err);

/* The admin CA may change on reload (admin.client_ca is reloadable): rebuild
 * the context when the gateway's snapshot generation moved. A failed
 * rebuild keeps the old context and says why. */
static void refresh_tls_ctx(struct gw_admin *a)
{
    struct gw_state *st = gw_server_state(a->srv);
    if (st->generation != a->tls_gen) {
        a->tls_gen = st->generation;
        if (st->cfg->admin_client_ca_file != NULL) {
            struct gh_err err = {0};
            SSL_CTX *ctx = admin_ctx_new(st->cfg, &err);
            if (ctx == NULL) {
                GH_ERROR("admin TLS: keeping the previous context: %s", err.msg);
            } else {
                SSL_CTX_free(a->tls_ctx); /* live SSLs hold their own reference */
                a->tls_ctx = ctx;
            }
        }
    }
    gw_state_unref(st);
}

static void client_new(struct gw_admin *a, int fd, int is_tls, const struct sockaddr_storage *ss)
{
    struct admin_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->a = a;
    c->id = ++a->next_id;
    c->is_tls = is_tls;
    c->t.fd = -1;
    c->actor.name = c->name;
    c->actor.address = c->addr;
    c->actor.cert_thumb = c->thumb;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rd = event_new(a->base, fd, EV_READ | EV_PERSIST, io_cb, c);
    c->wr = event_new(a->base, fd, EV_WRITE | EV_PERSIST, io_cb, c);
    c->timer = evtimer_new(a->base, timer_cb, c);
    c->poll = event_new(a->base, -1, EV_PERSIST, poll_cb, c);
    if (c->in == NULL || c->out == NULL || c->rd == NULL || c->wr == NULL || c->timer == NULL ||
        c->poll == NULL) {
        GH_ERROR("admin: out of memory for a client");
        close(fd);
        client_free(c);
        return;
    }
    if (is_tls) {
        peer_ip(ss, c->addr, sizeof(c->addr));
        snprintf(c->name, sizeof(c->name), "unauthenticated");
        refresh_tls_ctx(a);
        SSL *ssl = SSL_new(a->tls_ctx);
        if (ssl == NULL || !SSL_set_fd(ssl, fd)) {
            GH_ERROR("admin: SSL_new failed");
            SSL_free(ssl);
            ERR_clear_error();
            close(fd);
            client_free(c);
            return;
        }
        SSL_set_accept_state(ssl);
        gw_transport_init_tls(&c->t, fd, ssl);
        c->state = AC_HANDSHAKE;
        arm_timer(c, ADMIN_HANDSHAKE_MS);
    } else {
        gw_transport_init_plain(&c->t, fd);
        snprintf(c->addr, sizeof(c->addr), "unix");
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
            snprintf(c->name, sizeof(c->name), "uid:?");
            snprintf(c->deny_detail, sizeof(c->deny_detail), "SO_PEERCRED failed: %s",
                     strerror(errno));
        } else {
            snprintf(c->name, sizeof(c->name), "uid:%u", (unsigned)cred.uid);
            /* The socket mode already keeps others out; this holds even if
             * someone loosens it. Only our own user and root are admins. */
            c->authed = cred.uid == a->euid || cred.uid == 0;
            if (!c->authed) {
                snprintf(c->deny_detail, sizeof(c->deny_detail),
                         "peer uid %u (pid %d) is neither the gateway's user (uid %u) nor root",
                         (unsigned)cred.uid, (int)cred.pid, (unsigned)a->euid);
            }
        }
        c->state = AC_HANDSHAKE; /* so the IDLE enter hook runs */
        set_state(c, AC_IDLE);
    }
    if (a->n_clients[is_tls ? 1 : 0] >= ADMIN_MAX_CLIENTS) {
        c->overflow = 1;
    }
    c->next = a->clients;
    if (a->clients != NULL) {
        a->clients->prev = c;
    }
    a->clients = c;
    a->n_clients[is_tls ? 1 : 0]++;
    update_events(c);
}

/* Log and drop a connection we cannot even take on. */
static void refuse_now(struct gw_admin *a, int fd, int is_tls, const struct sockaddr_storage *ss)
{
    char addr[64];
    char name[32] = "unauthenticated";
    if (is_tls) {
        peer_ip(ss, addr, sizeof(addr));
    } else {
        snprintf(addr, sizeof(addr), "unix");
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
            snprintf(name, sizeof(name), "uid:%u", (unsigned)cred.uid);
        }
    }
    close(fd);
    struct gw_actor who = {.name = name, .address = addr, .cert_thumb = ""};
    gw_ctl_log_admin(a->srv, &who, "", "", 0, GH_R_OVERLOADED,
                     "too many admin clients; connection closed");
    GH_WARN("admin: %d %s clients, refusing a connection from %s", a->n_clients[is_tls ? 1 : 0],
            is_tls ? "mTLS" : "Unix-socket", addr);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct gw_admin *a = arg;
    int is_tls = lfd == a->tls_fd;
    for (int i = 0; i < 32; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                GH_WARN("admin: accept: %s", strerror(errno));
            }
            return;
        }
        if (a->n_clients[is_tls ? 1 : 0] >= ADMIN_MAX_CLIENTS + ADMIN_OVERFLOW) {
            refuse_now(a, fd, is_tls, &ss);
            continue;
        }
        client_new(a, fd, is_tls, &ss);
    }
}

/* ---- listeners ----------------------------------------------------------------------------- */

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
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* e.g. h2 only: we speak HTTP/1.1 */
}

static void ssl_err(struct gh_err *err, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[160];
    ERR_error_string_n(e, buf, sizeof(buf));
    gh_err_set(err, GH_R_INTERNAL, "admin TLS: %s %s: %s", what, path ? path : "",
               e ? buf : "failed");
    ERR_clear_error();
}

/* Server certificate: the gateway's own (tls.cert/tls.key). Client
 * certificates: REQUIRED, chained to admin.client_ca ONLY -- a user
 * certificate from tls.client_ca fails the handshake. No session cache or
 * tickets: every admin connection verifies its chain against the current
 * admin CA. */
static SSL_CTX *admin_ctx_new(const struct gw_config *cfg, struct gh_err *err)
{
    if (cfg->admin_client_ca_file == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "admin.listen needs admin.client_ca");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        ssl_err(err, "SSL_CTX_new", NULL);
        return NULL;
    }
    uint16_t minv = cfg->tls_min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, minv) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_strict_cipher_list(ctx, tls12_ciphers)) {
        ssl_err(err, "TLS parameters", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        ssl_err(err, "cannot load certificate", cfg->tls_cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, "cannot load key", cfg->tls_key_file);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->admin_client_ca_file, NULL) != 1) {
        ssl_err(err, "cannot load admin CA", cfg->admin_client_ca_file);
        goto fail;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->admin_client_ca_file);
    if (names == NULL) {
        ssl_err(err, "no CA certificate in", cfg->admin_client_ca_file);
        goto fail;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Create the Unix socket: a stale socket file (no listener) is replaced; a
 * live one (another gatehouse) or a non-socket file is an error, never
 * clobbered. Mode 0600 from the moment it exists (umask around bind). */
static int open_unix(struct gw_admin *a, const char *path, struct gh_err *err)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        return gh_err_set(err, GH_R_INTERNAL, "admin socket path longer than %zu bytes: %s",
                          sizeof(sun.sun_path) - 1, path);
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return gh_err_set(err, GH_R_INTERNAL,
                              "admin socket %s exists and is not a socket; not replacing it",
                              path);
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            return gh_err_set(err, GH_R_INTERNAL, "socket: %s", strerror(errno));
        }
        int rc = connect(probe, (struct sockaddr *)&sun, sizeof(sun));
        int e = errno;
        close(probe);
        if (rc == 0 || e == EAGAIN) {
            return gh_err_set(err, GH_R_INTERNAL,
                              "admin socket %s is in use by a running process", path);
        }
        if (e != ECONNREFUSED) {
            return gh_err_set(err, GH_R_INTERNAL, "admin socket %s: %s", path, strerror(e));
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            return gh_err_set(err, GH_R_INTERNAL, "cannot remove stale admin socket %s: %s",
                              path, strerror(errno));
        }
        GH_INFO("admin: removed stale socket %s", path);
    } else if (errno != ENOENT) {
        return gh_err_set(err, GH_R_INTERNAL, "admin socket %s: %s", path, strerror(errno));
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return gh_err_set(err, GH_R_INTERNAL, "socket: %s", strerror(errno));
    }
    /* umask is process-wide: other threads creating files in this instant
     * get a stricter mode, never a looser one. */
    mode_t old = umask(0177);
    int brc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    int e = errno;
    umask(old);
    if (brc != 0) {
        close(fd);
        return gh_err_set(err, GH_R_INTERNAL, "cannot bind admin socket %s: %s", path,
                          strerror(e));
    }
    /* The backlog is deeper than the client cap (64 served, 16 more told
     * 503): a burst while the control thread is busy must reach that rule,
     * not fail in connect() with EAGAIN because the queue was full. */
    if (chmod(path, 0600) != 0 || listen(fd, 1024) != 0 || stat(path, &st) != 0) {
        e = errno;
        close(fd);
        unlink(path);
        return gh_err_set(err, GH_R_INTERNAL, "admin socket %s: %s", path, strerror(e));
    }
    a->unix_fd = fd;
    a->sock_path = strdup(path);
    a->sock_dev = st.st_dev;
    a->sock_ino = st.st_ino;
    if (a->sock_path == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "out of memory");
    }
    return 0;
}

struct gw_admin *gw_admin_start(struct gw_server *srv, struct event_base *ctl, struct gh_err *err)
{
    struct gw_admin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    a->srv = srv;
    a->base = ctl;
    a->euid = geteuid();
    a->unix_fd = -1;
    a->tls_fd = -1;
    struct gw_state *st = gw_server_state(srv);
    const struct gw_config *cfg = st->cfg;
    a->reap_ev = event_new(ctl, -1, 0, reap_cb, a);
    if (a->reap_ev == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        goto fail;
    }
    if (cfg->admin_socket != NULL) {
        if (open_unix(a, cfg->admin_socket, err) != 0) {
            goto fail;
        }
        a->unix_ev = event_new(ctl, a->unix_fd, EV_READ | EV_PERSIST, accept_cb, a);
        if (a->unix_ev == NULL || event_add(a->unix_ev, NULL) != 0) {
            gh_err_set(err, GH_R_INTERNAL, "admin: cannot watch the socket");
            goto fail;
        }
    }
    if (cfg->admin_listen != NULL) {
        a->tls_ctx = admin_ctx_new(cfg, err);
        if (a->tls_ctx == NULL) {
            goto fail;
        }
        a->tls_gen = st->generation;
        a->tls_fd = gw_listen_socket(cfg->admin_listen, 0, err);
        if (a->tls_fd < 0) {
            goto fail;
        }
        a->tls_ev = event_new(ctl, a->tls_fd, EV_READ | EV_PERSIST, accept_cb, a);
        if (a->tls_ev == NULL || event_add(a->tls_ev, NULL) != 0) {
            gh_err_set(err, GH_R_INTERNAL, "admin: cannot watch the listener");
            goto fail;
        }
    }
    GH_INFO("admin API v1: socket %s (mode 0600, uid %u or root)%s%s%s",
            cfg->admin_socket ? cfg->admin_socket : "(none)", (unsigned)a->euid,
            cfg->admin_listen ? ", mTLS on " : "", cfg->admin_listen ? cfg->admin_listen : "",
            cfg->admin_listen ? " (admin CA only)" : "");
    gw_state_unref(st);
    return a;
fail:
    gw_state_unref(st);
    gw_admin_stop(a);
    return NULL;
}

void gw_admin_stop(struct gw_admin *a)
{
    if (a == NULL) {
        return;
    }
    while (a->clients != NULL) {
        client_close(a->clients, "admin server stopping");
    }
    if (a->reap_ev != NULL) {
        reap_cb(-1, 0, a);
        event_free(a->reap_ev);
    }
    if (a->unix_ev != NULL) {
        event_free(a->unix_ev);
    }
    if (a->tls_ev != NULL) {
        event_free(a->tls_ev);
    }
    if (a->unix_fd >= 0) {
        close(a->unix_fd);
    }
    if (a->tls_fd >= 0) {
        close(a->tls_fd);
    }
    if (a->sock_path != NULL) {
        /* Remove the socket only if it is still ours (not a successor's). */
        struct stat st;
        if (lstat(a->sock_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == a->sock_dev &&
            st.st_ino == a->sock_ino) {
            unlink(a->sock_path);
        }
        free(a->sock_path);
    }
    SSL_CTX_free(a->tls_ctx);
    free(a);
}
