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

/* GET url. ctx is used for https:// (may be NULL for http://). */
int gw_httpc_get(SSL_CTX *ctx, const char *url, int timeout_ms, size_t max_body,
                 struct gw_httpc_resp *out, struct gh_err *err) GH_WUR;

#endif
