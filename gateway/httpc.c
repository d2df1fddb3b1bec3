/*
 * httpc.c: blocking HTTP/1.1 GET for the issuer's discovery document and
 * JWKS. Deliberately tiny: one request per connection ("Connection: close"),
 * strict size limits, TLS verification with the configured CA and the URL's
 * host name. Errors are log-safe strings.
 */
#include "gateway/httpc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <http_parser.h>

#include "gateway/tls.h"
#include "gateway/transport.h"

struct rctx {
    char *body;
    size_t len, cap, max;
    int done, too_big;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct rctx *r = p->data;
    if (r->len + len > r->max) {
        r->too_big = 1;
        return -1;
    }
    if (r->len + len + 1 > r->cap) {
        size_t nc = (r->len + len + 1) * 2;
        if (nc > r->max + 1) {
            nc = r->max + 1;
        }
        char *nb = realloc(r->body, nc);
        if (nb == NULL) {
            return -1;
        }
        r->body = nb;
        r->cap = nc;
    }
    memcpy(r->body + r->len, at, len);
    r->len += len;
    return 0;
}

static int on_complete(http_parser *p)
{
    struct rctx *r = p->data;
    r->done = 1;
    return 0;
}

int gw_httpc_get(SSL_CTX *ctx, const char *url, int timeout_ms, size_t max_body,
                 struct gw_httpc_resp *out, struct gh_err *err)
{
    memset(out, 0, sizeof(*out));
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
        !(u.field_set & (1 << UF_SCHEMA))) {
        return gh_err_set(err, GH_R_INTERNAL, "bad URL");
    }
    char scheme[8], host[256], port[8], path[1024];
    snprintf(scheme, sizeof(scheme), "%.*s", (int)u.field_data[UF_SCHEMA].len,
             url + u.field_data[UF_SCHEMA].off);
    snprintf(host, sizeof(host), "%.*s", (int)u.field_data[UF_HOST].len,
             url + u.field_data[UF_HOST].off);
    int tls = strcmp(scheme, "https") == 0;
    if (!tls && strcmp(scheme, "http") != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "unsupported scheme %s", scheme);
    }
    if (u.field_set & (1 << UF_PORT)) {
        snprintf(port, sizeof(port), "%u", u.port);
    } else {
        snprintf(port, sizeof(port), "%s", tls ? "443" : "80");
    }
    if (u.field_set & (1 << UF_PATH)) {
        int ql = (u.field_set & (1 << UF_QUERY)) ? (int)u.field_data[UF_QUERY].len + 1 : 0;
        snprintf(path, sizeof(path), "%.*s", (int)u.field_data[UF_PATH].len + ql,
                 url + u.field_data[UF_PATH].off);
    } else {
        snprintf(path, sizeof(path), "/");
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "cannot resolve %s", host);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return gh_err_set(err, GH_R_INTERNAL, "socket: %s", strerror(errno));
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0) {
        int e = errno;
        close(fd);
        return gh_err_set(err, GH_R_INTERNAL, "connect %s:%s: %s", host, port, strerror(e));
    }
    struct gw_transport t;
    if (tls) {
        SSL *ssl = ctx ? gw_tls_client_new_ssl(ctx, fd, host) : NULL;
        if (ssl == NULL) {
            close(fd);
            return gh_err_set(err, GH_R_INTERNAL, "no TLS context for %s", host);
        }
        gw_transport_init_tls(&t, fd, ssl);
    } else {
        gw_transport_init_plain(&t, fd);
    }
    int want;
    if (gw_transport_handshake(&t, &want) != 1) {
        gw_transport_close(&t);
        return gh_err_set(err, GH_R_INTERNAL, "TLS handshake with %s failed", host);
    }
    /* Host carries the port when the URL names one (RFC 9110 7.2): issuers
     * build their metadata URLs from it. */
    char hosthdr[300];
    int v6 = strchr(host, ':') != NULL;
    if (u.field_set & (1 << UF_PORT)) {
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]:%s" : "%s:%s", host, port);
    } else {
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]" : "%s", host);
    }
    char req[1400];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                      "User-Agent: gatehouse/%s\r\nConnection: close\r\n\r\n",
                      path, hosthdr, GH_VERSION);
    size_t off = 0;
    while (off < (size_t)rl) {
        ssize_t w = gw_transport_write(&t, req + off, (size_t)rl - off, &want);
        if (w <= 0) {
            gw_transport_close(&t);
            return gh_err_set(err, GH_R_INTERNAL, "write to %s failed", host);
        }
        off += (size_t)w;
    }
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    struct rctx r = {.max = max_body};
    p.data = &r;
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_body = on_body;
    s.on_message_complete = on_complete;
    char buf[16384];
    size_t total = 0;
    while (!r.done) {
        ssize_t n = gw_transport_read(&t, buf, sizeof(buf), &want);
        if (n == GW_IO_EOF) {
            http_parser_execute(&p, &s, NULL, 0);
            break;
        }
        if (n < 0) {
            break;
        }
        total += (size_t)n;
        size_t used = http_parser_execute(&p, &s, buf, (size_t)n);
        if (used != (size_t)n || HTTP_PARSER_ERRNO(&p) != HPE_OK || total > max_body + 65536) {
            break;
        }
    }
    gw_transport_close(&t);
    if (!r.done) {
        free(r.body);
        return gh_err_set(err, GH_R_INTERNAL, "%s from %s",
                          r.too_big ? "response too large" : "incomplete response", host);
    }
    if (r.body == NULL) {
        r.body = calloc(1, 1);
    } else {
        r.body[r.len] = '\0';
    }
    out->status = (int)p.status_code;
    out->body = r.body;
    out->body_len = r.len;
    return 0;
}
