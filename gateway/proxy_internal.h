/*
 * proxy_internal.h: the downstream and upstream connection structs, shared
 * by proxy.c (the state machine) and authz_glue.c (identity on the request
 * path). Not used outside gateway/.
 *
 * Lifetime: a struct gw_conn is created on accept, lives on its worker's
 * list, is marked CS_CLOSED by conn_close() and freed by the worker's reap
 * event once no decision-row commit is pending for it.
 */
#ifndef GW_PROXY_INTERNAL_H
#define GW_PROXY_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <http_parser.h>

#include "authz/identity.h"
#include "gateway/gateway.h"
#include "gateway/http.h"
#include "gateway/transport.h"

enum conn_state {
    CS_HANDSHAKE = 0, /* TLS handshake, client certificate verification */
    CS_IDLE,          /* keep-alive: waiting for the first byte of a request */
    CS_HEAD,          /* reading the request head */
    CS_UPSTREAM,      /* request forwarded, waiting for the response head */
    CS_LOGWAIT,       /* response ready, waiting for its decision row to commit */
    CS_STREAM,        /* streaming the upstream response */
    CS_RESPOND,       /* writing a local response (deny or error) */
    CS_CLOSING,       /* flushing, then close */
    CS_CLOSED,
    CS__COUNT
};
const char *gw_conn_state_name(enum conn_state s);

struct gw_upconn {
    struct gw_worker *w;
    struct gw_conn *owner;        /* NULL when pooled */
    struct gw_upconn *pool_next, *reap_next;
    int route_idx;
    uint64_t gen;
    struct gw_transport t;
    struct event *rd, *wr, *timer;
    int rd_on, wr_on;
    struct evbuffer *in, *out;
    http_parser parser;
    size_t scan;
    int lines;
    int resp_status;
    struct evbuffer *decode_into;
    unsigned connecting : 1, handshaking : 1, ready : 1, closed : 1, pooled : 1, reused : 1,
        keep_alive : 1, eof : 1, got_any : 1, sent_any : 1, connect_failed : 1, req_is_head : 1,
        resp_complete : 1, raw_body : 1, read_wants_write : 1, write_wants_read : 1;
    int hs_want;
};

struct gw_authz_conn; /* authz_glue.c */

struct gw_conn {
    struct gw_worker *w;
    struct gw_conn *prev, *next, *reap_next, *done_next;
    uint64_t id;
    enum conn_state state, prelog_state;
    struct gw_transport t;
    struct event *rd, *wr, *timer;
    int rd_on, wr_on, hs_want;
    struct evbuffer *in, *out, *held;
    struct sockaddr_storage peer;
    char peer_ip[64];
    int peer_port;
    struct az_cert_info cert;
    int has_cert;
    struct gw_state *st;
    int64_t accepted_mono;
    uint64_t bytes_in, bytes_out;

    /* current request */
    uint64_t req_no;
    int64_t req_start_mono;
    char *head;
    size_t head_cap, head_len, scan, path_len;
    int lines;
    struct gw_req_head rh;
    http_parser rp;
    const struct gw_route *route;
    int route_idx;
    int64_t body_bytes;
    uint64_t bytes_in_req;
    int resp_status;
    int64_t resp_declared_len;
    struct gw_upconn *up;
    int up_attempts;
    int log_pending;
    int commit_ok;
    const char *close_reason;
    unsigned head_ok : 1, keep_alive : 1, body_done : 1, body_started : 1, body_too_large : 1,
        resp_head_done : 1, resp_done : 1, logged : 1, peer_eof : 1,
        read_wants_write : 1, write_wants_read : 1,
        processing : 1,    /* inside conn_process: a nested call only asks for another pass */
        process_again : 1; /* ... which the outer call then makes (no recursion per request) */

    struct gw_authz_conn *az; /* identity state for this connection */
    int special;              /* GW_SPECIAL_* endpoint served by the gateway itself */
    int special_result;       /* set by the control thread before the mailbox hand-back */
};

enum { GW_SPECIAL_NONE = 0, GW_SPECIAL_LOGOUT = 1 };

/* Control thread -> worker: the deferred work for c is done (result in
 * c->special_result); the worker answers the request. */
void gw_conn_special_done(struct gw_conn *c);

/* Answer the current request locally with a decision row (proxy.c). */
void gw_conn_respond(struct gw_conn *c, int status, enum gh_reason reason, const char *extra_hdrs);
void gw_conn_respond_body(struct gw_conn *c, int status, enum gh_reason reason,
                          const char *extra_hdrs, const char *ctype, const char *body, size_t bl);
/* Revocation: log the in-flight request (if its row is not written yet)
 * with reason, then close the connection now. */
void gw_conn_revoke_close(struct gw_conn *c, enum gh_reason reason);
/* Close now, with a reason for the log (used by revocation). */
void gw_conn_close_reason(struct gw_conn *c, const char *why);

#endif
