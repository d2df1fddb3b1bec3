/*
 * demosrv.h: a tiny blocking HTTP/1.1 server for `gatehouse demo` only -- it
 * carries the development issuer (HTTPS, client certificate required) and
 * the demo upstream app (plain HTTP on loopback).
 *
 * Owns: one listening socket, one accept thread, one thread per connection
 * (at most GW_DEMOSRV_MAX_CONNS at once; more are closed at accept), each
 * connection's transport, and the request/response buffers. One request per
 * connection (responses say `Connection: close`).
 * Must not: be used by `gatehouse serve` (the gateway's request path is the
 * event-driven worker in proxy.c), or parse HTTP itself: request heads go
 * through gateway/http.h (the same strict scanner and parser the gateway
 * uses), bodies are read by Content-Length only (no chunked uploads).
 *
 * Thread rules: the handler runs on connection threads, concurrently, and
 * must be thread-safe. gw_demosrv_start returns once the socket listens;
 * gw_demosrv_stop (any one thread) stops accepting, shuts down live
 * connections and waits for every connection thread to finish.
 */
#ifndef GW_DEMOSRV_H
#define GW_DEMOSRV_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "authz/identity.h"
#include "gateway/base/err.h"
#include "gateway/http.h"

#define GW_DEMOSRV_MAX_CONNS 64
#define GW_DEMOSRV_MAX_HEAD 16384
#define GW_DEMOSRV_MAX_BODY 65536

/* One request, valid during the handler call only (everything borrowed). */
struct gw_demosrv_req {
    const char *head; /* the raw head, head_len bytes */
    size_t head_len;
    const struct gw_req_head *rh; /* parsed; pointers into head */
    char method[16];
    char path[2048];  /* request target up to '?', NUL-terminated */
    const char *body; /* NUL-terminated copy, body_len bytes */
    size_t body_len;
    const struct az_cert_info *cert; /* verified client certificate, NULL on plain HTTP */
    const char *peer;                /* "127.0.0.1:40000" */
};

/* What the handler answers. body is malloc'd by the handler (or NULL) and
 * freed by the server; extra_headers are complete "Name: value\r\n" lines. */
struct gw_demosrv_resp {
    int status;
    const char *content_type;
    char *body;
    size_t body_len;
    char extra_headers[512];
};

typedef void (*gw_demosrv_handler)(void *arg, const struct gw_demosrv_req *req,
                                   struct gw_demosrv_resp *resp);

struct gw_demosrv;

/* Listen on host:port (numeric IPv4/IPv6 literal) and serve with handler.
 * tls: NULL for plain HTTP, else a server SSL_CTX (the server takes its own
 * reference; it should require and verify client certificates). name is
 * used in log lines. Returns NULL + err if the socket cannot be opened. */
struct gw_demosrv *gw_demosrv_start(const char *name, const char *host, int port, SSL_CTX *tls,
                                    gw_demosrv_handler handler, void *arg,
                                    struct gh_err *err) GH_WUR;

/* Stop and free (see thread rules). NULL is a no-op. */
void gw_demosrv_stop(struct gw_demosrv *s);

/* Set a JSON/text body from a NUL-terminated string (copied). On allocation
 * failure the response becomes a bodiless 500. */
void gw_demosrv_resp_set(struct gw_demosrv_resp *resp, int status, const char *content_type,
                         const char *body);

#endif
