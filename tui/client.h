/*
 * client.h: gatehousectl's connection to the gateway's admin API
 * (docs/ADMIN-API.md): HTTP/1.1 + JSON over the local Unix socket, or over
 * mutual TLS to a remote admin listener (BoringSSL; the server is verified
 * against --ca and the host name given in --connect).
 *
 * Owns: one connection (kept alive between requests when the server allows)
 * and at most one request in flight on it, with its response buffer.
 * Must not: block, except in tui_client_call (the CLI's helper); open the
 * database; link gateway or authz code (DESIGN.md section 2).
 *
 * Non-blocking use (the console): tui_client_begin() a request, then put
 * tui_client_pollfd() into poll(2) and call tui_client_step() whenever poll
 * says so (or the deadline passes) until it returns TUI_IO_DONE or
 * TUI_IO_ERROR; read the response with tui_client_resp(); tui_client_end()
 * before the next request. Streams (tui_client_begin with stream=1) also
 * return TUI_IO_DATA whenever body bytes arrived; take lines with
 * tui_resp_line()/tui_resp_consume() on tui_client_resp().
 *
 * Retry rule: a GET that fails on a reused keep-alive connection before any
 * response byte arrived is retried once on a fresh connection (the server
 * may have closed the idle connection). A request that changes state (POST,
 * DELETE) always goes out on a fresh connection and is never retried.
 *
 * Threads: a client belongs to one thread. Errors: gh_err with reason
 * GH_R_UPSTREAM_CONNECT (cannot connect, timed out, connection lost),
 * GH_R_UPSTREAM_TLS (handshake or certificate verification failed) or
 * GH_R_UPSTREAM_ERROR (malformed or oversized response).
 */
#ifndef TUI_CLIENT_H
#define TUI_CLIENT_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/base/err.h"
#include "tui/resp.h"

struct tui_client_opts {
    const char *socket_path; /* Unix socket (used when connect is NULL) */
    const char *connect;     /* "HOST:PORT" or "[V6]:PORT" for remote mTLS */
    const char *cert_file;   /* admin client certificate (PEM), remote only */
    const char *key_file;    /* its private key (PEM) */
    const char *ca_file;     /* CA that must have issued the server's certificate */
};

struct tui_client;

/* Validate options, resolve the remote host (once, now: the only step that
 * may block) and load the TLS files. No connection is made yet. NULL + err:
 * GH_R_ADMIN_BAD_REQUEST for a bad option or unusable TLS files (the
 * operator's mistake), GH_R_UPSTREAM_CONNECT for an unresolvable host. */
struct tui_client *tui_client_new(const struct tui_client_opts *o, struct gh_err *err) GH_WUR;
/* Close the connection and free everything. NULL is a no-op. */
void tui_client_free(struct tui_client *c);

/* "unix:/path" or "tls:host:port", for status lines. */
const char *tui_client_target(const struct tui_client *c);

enum tui_io {
    TUI_IO_AGAIN = 0, /* in progress: poll and step again */
    TUI_IO_DONE = 1,  /* response complete */
    TUI_IO_DATA = 2,  /* stream: new body bytes buffered */
    TUI_IO_ERROR = -1,
};

struct tui_request {
    const char *method;       /* "GET", "POST", "DELETE" */
    const char *path;         /* "/v1/sessions?limit=10" (already escaped) */
    const char *content_type; /* NULL: application/json when body is set */
    const char *body;
    size_t body_len;
    int timeout_ms; /* whole exchange (stream: until the head) */
    int stream;     /* endless chunked body, delivered as it comes */
};

/* Start a request. Fails (-1) if one is already in flight, the request is
 * malformed (CR/LF or space in path/method), or the connection cannot even
 * be started (socket(2) failed); otherwise the rest happens in step(). */
int tui_client_begin(struct tui_client *c, const struct tui_request *rq, struct gh_err *err) GH_WUR;
/* Fill pfd with what to wait for; returns 0 if nothing is in flight. */
int tui_client_pollfd(const struct tui_client *c, struct pollfd *pfd);
/* Milliseconds until the request's deadline (-1: none, 0: passed). */
int tui_client_timeout_ms(const struct tui_client *c);
/* Do whatever I/O is possible now. On TUI_IO_ERROR err is set and the
 * connection is closed; call tui_client_end() before the next begin. */
int tui_client_step(struct tui_client *c, struct gh_err *err);
/* The response being read (valid after begin until end). */
struct tui_resp *tui_client_resp(struct tui_client *c);
/* Is a request in flight? */
int tui_client_busy(const struct tui_client *c);
/* Finish the current request (also abandons one in flight: the connection
 * is then closed). Frees the response body. */
void tui_client_end(struct tui_client *c);

/* Blocking helper for the CLI: begin + poll + step until done. On success
 * returns 0 with out->status, out->body (malloc'd, NUL-terminated, caller
 * frees) and out->body_len; -1 + err when the exchange failed. */
struct tui_reply {
    int status;
    char *body;
    size_t body_len;
    char content_type[128];
};
int tui_client_call(struct tui_client *c, const struct tui_request *rq, struct tui_reply *out,
                    struct gh_err *err) GH_WUR;
void tui_reply_cleanup(struct tui_reply *r);

/* Percent-encode s for a query value into out (always NUL-terminated).
 * Returns 0, or -1 if it does not fit. */
int tui_url_escape(const char *s, char *out, size_t outlen) GH_WUR;

#endif
