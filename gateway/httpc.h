/*
 * httpc.h: a small blocking HTTPS/HTTP client for the issuer (discovery,
 * JWKS). Runs only on the fetcher thread, never on a worker. Built on the
 * shared transport (BoringSSL), never on a library that links OpenSSL.
 *
 * Bounded: response head <= 16 KiB, body <= max_body, whole exchange
 * bounded by timeout_ms per socket operation. Content-Length and chunked
 * bodies are read through http-parser.
 */
#ifndef GW_HTTPC_H
#define GW_HTTPC_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "gateway/base/err.h"

struct gw_httpc_resp {
    int status;
    char *body; /* malloc'd, NUL-terminated; caller frees */
    size_t body_len;
};

/* The parts of an http:// or https:// URL, each bounded (a longer part is
 * an error, never silently cut). Returns 0, or -1 with err. */
struct gw_httpc_url {
    int tls;
    char host[256]; /* without brackets for IPv6 */
    char port[8];
    char path[1024]; /* path and query; "/" when absent */
    int has_port;
};
int gw_httpc_split_url(const char *url, struct gw_httpc_url *u, struct gh_err *err) GH_WUR;

/* The response reader of gw_httpc_get, on its own so it can be fuzzed:
 * feed it the bytes as they arrive, then finish. The body is bounded by
 * max_body, the whole response by max_body + 64 KiB. */
struct gw_httpc_reader;
struct gw_httpc_reader *gw_httpc_reader_new(size_t max_body);
/* 1 complete (stop reading), 0 more wanted, -1 malformed or too large. */
int gw_httpc_reader_feed(struct gw_httpc_reader *r, const char *buf, size_t len);
/* At end of input (len 0 = EOF): 0 with *out filled (body owned by the
 * caller), or -1 with err. Frees r either way. */
int gw_httpc_reader_finish(struct gw_httpc_reader *r, int eof, struct gw_httpc_resp *out,
                           const char *who, struct gh_err *err) GH_WUR;

/* GET url. ctx is used for https:// (may be NULL for http://). */
int gw_httpc_get(SSL_CTX *ctx, const char *url, int timeout_ms, size_t max_body,
                 struct gw_httpc_resp *out, struct gh_err *err) GH_WUR;

#endif
