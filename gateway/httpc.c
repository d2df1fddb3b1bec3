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

struct gw_httpc_reader {
    http_parser p;
    http_parser_settings s;
    char *body;
    size_t len, cap, max, total;
    int done, too_big, bad;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct gw_httpc_reader *r = p->data;
    if (len > r->max || r->len > r->max - len) {
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
    struct gw_httpc_reader *r = p->data;
    r->done = 1;
    return 0;
}

struct gw_httpc_reader *gw_httpc_reader_new(size_t max_body)
{
    struct gw_httpc_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    http_parser_init(&r->p, HTTP_RESPONSE);
    r->p.data = r;
    http_parser_settings_init(&r->s);
    r->s.on_body = on_body;
    r->s.on_message_complete = on_complete;
    r->max = max_body;
    return r;
}

int gw_httpc_reader_feed(struct gw_httpc_reader *r, const char *buf, size_t len)
{
    if (r->done) {
        return 1;
    }
    if (r->bad) {
        return -1;
    }
    r->total += len;
    size_t used = http_parser_execute(&r->p, &r->s, buf, len);
    if (r->done) {
        return 1; /* bytes after the message (Connection: close) are ignored */
    }
    if (used != len || HTTP_PARSER_ERRNO(&r->p) != HPE_OK || r->total > r->max + 65536) {
        r->bad = 1;
        return -1;
    }
    return 0;
}

int gw_httpc_reader_finish(struct gw_httpc_reader *r, int eof, struct gw_httpc_resp *out,
                           const char *who, struct gh_err *err)
{
    memset(out, 0, sizeof(*out));
    if (eof && !r->done && !r->bad) {
        http_parser_execute(&r->p, &r->s, NULL, 0); /* body delimited by close */
    }
    if (!r->done) {
        int too_big = r->too_big || r->total > r->max + 65536;
        free(r->body);
        free(r);
        return gh_err_set(err, GH_R_INTERNAL, "%s from %s",
                          too_big ? "response too large" : "incomplete response", who);
    }
    if (r->body == NULL) {
        r->body = calloc(1, 1);
        if (r->body == NULL) {
            free(r);
            return gh_err_set(err, GH_R_INTERNAL, "out of memory");
        }
    } else {
        r->body[r->len] = '\0';
    }
    out->status = (int)r->p.status_code;
    out->body = r->body;
    out->body_len = r->len;
    free(r);
    return 0;
}

static int copy_part(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap) {
        return -1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int gw_httpc_split_url(const char *url, struct gw_httpc_url *out, struct gh_err *err)
{
    memset(out, 0, sizeof(*out));
    struct http_parser_url u;
    http_parser_url_init(&u);
    size_t ulen = strlen(url);
    if (http_parser_parse_url(url, ulen, 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
        !(u.field_set & (1 << UF_SCHEMA))) {
        return gh_err_set(err, GH_R_INTERNAL, "bad URL");
    }
    char scheme[8];
    if (copy_part(scheme, sizeof(scheme), url + u.field_data[UF_SCHEMA].off,
                  u.field_data[UF_SCHEMA].len) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "unsupported scheme");
    }
    if (strcmp(scheme, "https") == 0) {
        out->tls = 1;
    } else if (strcmp(scheme, "http") != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "unsupported scheme %s", scheme);
    }
    if (u.field_data[UF_HOST].len == 0 ||
        copy_part(out->host, sizeof(out->host), url + u.field_data[UF_HOST].off,
                  u.field_data[UF_HOST].len) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "bad URL host");
    }
    if (u.field_set & (1 << UF_PORT)) {
        if (u.port == 0) {
            return gh_err_set(err, GH_R_INTERNAL, "bad URL port");
        }
        snprintf(out->port, sizeof(out->port), "%u", u.port);
        out->has_port = 1;
    } else {
        snprintf(out->port, sizeof(out->port), "%s", out->tls ? "443" : "80");
    }
    if (u.field_set & (1 << UF_PATH)) {
        size_t pl = u.field_data[UF_PATH].len;
        if (u.field_set & (1 << UF_QUERY)) {
            pl += (size_t)u.field_data[UF_QUERY].len + 1;
        }
        if (u.field_data[UF_PATH].off + pl > ulen ||
            copy_part(out->path, sizeof(out->path), url + u.field_data[UF_PATH].off, pl) != 0) {
            return gh_err_set(err, GH_R_INTERNAL, "URL path too long");
        }
    } else {
        snprintf(out->path, sizeof(out->path), "/");
    }
    /* The path goes into a request line: no control characters or spaces. */
    for (const char *c = out->path; *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            return gh_err_set(err, GH_R_INTERNAL, "bad URL path");
        }
    }
    return 0;
}

int gw_httpc_get(SSL_CTX *ctx, const char *url, int timeout_ms, size_t max_body,
                 struct gw_httpc_resp *out, struct gh_err *err)
{
    memset(out, 0, sizeof(*out));
    struct gw_httpc_url u;
    if (gw_httpc_split_url(url, &u, err) != 0) {
        return -1;
    }
    const char *host = u.host, *port = u.port;
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
    if (u.tls) {
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
    if (u.has_port) {
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]:%s" : "%s:%s", host, port);
    } else {
        snprintf(hosthdr, sizeof(hosthdr), v6 ? "[%s]" : "%s", host);
    }
    char req[1400];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n"
                      "User-Agent: gatehouse/%s\r\nConnection: close\r\n\r\n",
                      u.path, hosthdr, GH_VERSION);
    if (rl < 0 || (size_t)rl >= sizeof(req)) {
        gw_transport_close(&t);
        return gh_err_set(err, GH_R_INTERNAL, "request for %s too long", host);
    }
    size_t off = 0;
    while (off < (size_t)rl) {
        ssize_t w = gw_transport_write(&t, req + off, (size_t)rl - off, &want);
        if (w <= 0) {
            gw_transport_close(&t);
            return gh_err_set(err, GH_R_INTERNAL, "write to %s failed", host);
        }
        off += (size_t)w;
    }
    struct gw_httpc_reader *r = gw_httpc_reader_new(max_body);
    if (r == NULL) {
        gw_transport_close(&t);
        return gh_err_set(err, GH_R_INTERNAL, "out of memory");
    }
    char buf[16384];
    int eof = 0;
    for (;;) {
        ssize_t n = gw_transport_read(&t, buf, sizeof(buf), &want);
        if (n == GW_IO_EOF) {
            eof = 1;
            break;
        }
        if (n < 0 || gw_httpc_reader_feed(r, buf, (size_t)n) != 0) {
            break;
        }
    }
    gw_transport_close(&t);
    return gw_httpc_reader_finish(r, eof, out, host, err);
}
