/*
 * client.c: the admin API client behind both faces of gatehousectl.
 *
 * It is one small non-blocking state machine (connect, TLS handshake, send,
 * receive) over one connection, because the console must keep drawing and
 * reading keys while the gateway is slow or gone: every socket is
 * O_NONBLOCK, every step does only the I/O that is possible now, and every
 * request has a deadline. The CLI's blocking call is the same machine driven
 * by poll(2) until it finishes, so both paths are exercised by the tests.
 *
 * Remote admin uses mutual TLS on BoringSSL directly (no libevent, no
 * libcurl: nothing that could pull OpenSSL into the process). The server
 * certificate must chain to --ca and match the host of --connect
 * (X509_VERIFY_PARAM host or IP check); TLS 1.2 is the floor.
 *
 * A keep-alive connection the server has closed while idle is detected
 * before reuse (a zero-timeout poll plus a non-blocking read), and a GET
 * that still meets a dead connection is retried once; state-changing
 * requests always start a new connection so they are never sent twice.
 */
#include "tui/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define REQ_HEAD_MAX 4096
#define REQ_BODY_MAX (4u * 1024u * 1024u)
#define READ_CHUNK 16384

enum rstate {
    R_NONE = 0,
    R_CONNECT,
    R_HANDSHAKE,
    R_SEND,
    R_RECV,
    R_DONE,
    R_FAILED,
};

struct tui_client {
    int remote;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char host[256];
    int host_is_ip;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    SSL_CTX *ctx;
    char target[320];

    /* connection */
    int fd;
    SSL *ssl;
    int conn_ready;  /* connected (and handshaken): usable for a request */
    int conn_reused; /* has completed at least one response */

    /* request */
    enum rstate rs;
    int want_write; /* TLS: the last call wanted POLLOUT */
    char *out;
    size_t out_len;
    size_t out_off;
    int64_t deadline_ms;
    int timeout_ms;
    int is_get;
    int retried;
    int got_bytes;
    int stream;
    struct tui_resp *resp;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tls_errstr(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, len, "unknown TLS error");
        return;
    }
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* Split "host:port" / "[v6]:port". */
static int split_hostport(const char *s, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    const char *hs = s;
    size_t hn;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':') {
            return -1;
        }
        hs = s + 1;
        hn = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return -1;
        }
        hn = (size_t)(colon - s);
        if (memchr(s, ':', hn) != NULL) {
            return -1; /* bare IPv6 without brackets */
        }
    }
    size_t pn = strlen(colon + 1);
    if (hn == 0 || hn >= hl || pn == 0 || pn >= pl) {
        return -1;
    }
    for (size_t i = 0; i < pn; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9') {
            return -1;
        }
    }
    if (atoi(colon + 1) < 1 || atoi(colon + 1) > 65535 || pn > 5) {
        return -1;
    }
    memcpy(host, hs, hn);
    host[hn] = '\0';
    memcpy(port, colon + 1, pn + 1);
    return 0;
}

static int setup_tls(struct tui_client *c, const struct tui_client_opts *o, struct gh_err *err)
{
    char e[200];
    if (o->cert_file == NULL || o->key_file == NULL || o->ca_file == NULL) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "--connect needs --cert, --key and --ca");
    }
    c->ctx = SSL_CTX_new(TLS_method());
    if (c->ctx == NULL) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "cannot create a TLS context");
    }
    if (!SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION)) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "cannot set the TLS version floor");
    }
    if (SSL_CTX_use_certificate_chain_file(c->ctx, o->cert_file) != 1) {
        tls_errstr(e, sizeof(e));
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "cannot load --cert %s: %s", o->cert_file,
                          e);
    }
    if (SSL_CTX_use_PrivateKey_file(c->ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
        tls_errstr(e, sizeof(e));
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "cannot load --key %s: %s", o->key_file, e);
    }
    if (SSL_CTX_check_private_key(c->ctx) != 1) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "--key does not match --cert");
    }
    if (SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL) != 1) {
        tls_errstr(e, sizeof(e));
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "cannot load --ca %s: %s", o->ca_file, e);
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    static const uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if (SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof(alpn)) != 0) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "cannot set ALPN");
    }
    return 0;
}

struct tui_client *tui_client_new(const struct tui_client_opts *o, struct gh_err *err)
{
    struct tui_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    c->fd = -1;
    c->resp = calloc(1, sizeof(*c->resp));
    if (c->resp == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        goto fail;
    }
    if (o->connect != NULL) {
        char port[16];
        c->remote = 1;
        if (split_hostport(o->connect, c->host, sizeof(c->host), port, sizeof(port)) != 0) {
            gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "--connect wants HOST:PORT, got '%s'",
                       o->connect);
            goto fail;
        }
        struct addrinfo hints;
        struct addrinfo *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = getaddrinfo(c->host, port, &hints, &res);
        if (rc != 0 || res == NULL) {
            gh_err_set(err, GH_R_UPSTREAM_CONNECT, "cannot resolve %s: %s", c->host,
                       gai_strerror(rc));
            goto fail;
        }
        memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
        c->addrlen = res->ai_addrlen;
        freeaddrinfo(res);
        struct in6_addr a6;
        c->host_is_ip =
            inet_pton(AF_INET, c->host, &a6) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
        snprintf(c->target, sizeof(c->target), "tls:%s", o->connect);
        if (setup_tls(c, o, err) != 0) {
            goto fail;
        }
    } else {
        const char *p = o->socket_path != NULL ? o->socket_path : "gatehouse.sock";
        if (strlen(p) >= sizeof(c->sock_path)) {
            gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "socket path too long (max %zu bytes)",
                       sizeof(c->sock_path) - 1);
            goto fail;
        }
        snprintf(c->sock_path, sizeof(c->sock_path), "%s", p);
        snprintf(c->target, sizeof(c->target), "unix:%s", p);
    }
    return c;
fail:
    tui_client_free(c);
    return NULL;
}

static void conn_close(struct tui_client *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->conn_ready = 0;
    c->conn_reused = 0;
}

void tui_client_free(struct tui_client *c)
{
    if (c == NULL) {
        return;
    }
    conn_close(c);
    if (c->resp != NULL) {
        tui_resp_cleanup(c->resp);
        free(c->resp);
    }
    free(c->out);
    if (c->ctx != NULL) {
        SSL_CTX_free(c->ctx);
    }
    free(c);
}

const char *tui_client_target(const struct tui_client *c)
{
    return c->target;
}

/* Is the idle keep-alive connection still usable? A readable socket means
 * EOF, unexpected bytes, or (TLS 1.3) post-handshake messages such as
 * session tickets, which SSL_read absorbs. */
static int conn_alive(struct tui_client *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 0) == 0) {
        return 1;
    }
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
        return 0;
    }
    if (c->ssl != NULL) {
        char b;
        int n = SSL_read(c->ssl, &b, 1);
        if (n > 0) {
            return 0;
        }
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        return e == SSL_ERROR_WANT_READ;
    }
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int start_connect(struct tui_client *c, struct gh_err *err)
{
    conn_close(c);
    int fam = c->remote ? c->addr.ss_family : AF_UNIX;
    c->fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return gh_err_set(err, GH_R_UPSTREAM_CONNECT, "socket: %s", strerror(errno));
    }
    int rc;
    if (c->remote) {
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        rc = connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen);
    } else {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path, c->sock_path, strlen(c->sock_path));
        rc = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    }
    if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN) {
        int e = errno;
        conn_close(c);
        return gh_err_set(err, GH_R_UPSTREAM_CONNECT, "cannot connect to %s: %s", c->target,
                          strerror(e));
    }
    c->rs = R_CONNECT;
    return 0;
}

static int tls_start(struct tui_client *c, struct gh_err *err)
{
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        return gh_err_set(err, GH_R_UPSTREAM_TLS, "cannot create a TLS connection");
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (c->host_is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) != 1) {
            return gh_err_set(err, GH_R_UPSTREAM_TLS, "bad IP address %s", c->host);
        }
    } else {
        /* SNI, and the name the certificate must carry (RFC 6125). */
        if (SSL_set_tlsext_host_name(c->ssl, c->host) != 1 ||
            X509_VERIFY_PARAM_set1_host(vp, c->host, strlen(c->host)) != 1) {
            return gh_err_set(err, GH_R_UPSTREAM_TLS, "bad host name %s", c->host);
        }
    }
    SSL_set_connect_state(c->ssl);
    c->rs = R_HANDSHAKE;
    return 0;
}

/* Build the request bytes. */
static int build_request(struct tui_client *c, const struct tui_request *rq, struct gh_err *err)
{
    const char *m = rq->method;
    const char *p = rq->path;
    if (m == NULL || p == NULL || p[0] != '/' || strlen(m) > 16 || strlen(p) > 2048) {
        return gh_err_set(err, GH_R_INTERNAL, "bad request line");
    }
    for (const char *s = p; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
            return gh_err_set(err, GH_R_INTERNAL, "bad request path");
        }
    }
    for (const char *s = m; *s != '\0'; s++) {
        if (*s < 'A' || *s > 'Z') {
            return gh_err_set(err, GH_R_INTERNAL, "bad request method");
        }
    }
    if (rq->body_len > REQ_BODY_MAX) {
        return gh_err_set(err, GH_R_INTERNAL, "request body larger than %u bytes", REQ_BODY_MAX);
    }
    const char *host = c->remote ? c->host : "localhost";
    const char *ct = rq->content_type != NULL ? rq->content_type : "application/json";
    char head[REQ_HEAD_MAX];
    int n;
    if (rq->body != NULL) {
        n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehousectl/%s\r\n"
                     "Accept: application/json\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     m, p, host, GH_VERSION, ct, rq->body_len);
    } else {
        n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehousectl/%s\r\n"
                     "Accept: application/json\r\n%s\r\n",
                     m, p, host, GH_VERSION, strcmp(m, "GET") == 0 ? "" : "Content-Length: 0\r\n");
    }
    if (n < 0 || (size_t)n >= sizeof(head)) {
        return gh_err_set(err, GH_R_INTERNAL, "request head too long");
    }
    size_t total = (size_t)n + (rq->body != NULL ? rq->body_len : 0);
    free(c->out);
    c->out = malloc(total + 1);
    if (c->out == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "out of memory");
    }
    memcpy(c->out, head, (size_t)n);
    if (rq->body != NULL && rq->body_len > 0) {
        memcpy(c->out + n, rq->body, rq->body_len);
    }
    c->out_len = total;
    c->out_off = 0;
    return 0;
}

int tui_client_begin(struct tui_client *c, const struct tui_request *rq, struct gh_err *err)
{
    if (c->rs != R_NONE) {
        return gh_err_set(err, GH_R_INTERNAL, "a request is already in flight");
    }
    if (build_request(c, rq, err) != 0) {
        return -1;
    }
    tui_resp_cleanup(c->resp);
    tui_resp_init(c->resp, TUI_RESP_MAX_BODY, rq->stream);
    c->is_get = strcmp(rq->method, "GET") == 0;
    c->stream = rq->stream;
    c->retried = 0;
    c->got_bytes = 0;
    c->want_write = 0;
    c->timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms : 10000;
    c->deadline_ms = mono_ms() + c->timeout_ms;
    if (!c->is_get || !c->conn_ready || !conn_alive(c)) {
        if (start_connect(c, err) != 0) {
            c->rs = R_FAILED;
            return -1;
        }
    } else {
        c->rs = R_SEND;
    }
    return 0;
}

int tui_client_busy(const struct tui_client *c)
{
    return c->rs != R_NONE && c->rs != R_DONE && c->rs != R_FAILED;
}

int tui_client_pollfd(const struct tui_client *c, struct pollfd *pfd)
{
    if (!tui_client_busy(c) || c->fd < 0) {
        return 0;
    }
    pfd->fd = c->fd;
    pfd->revents = 0;
    switch (c->rs) {
    case R_CONNECT:
        pfd->events = POLLOUT;
        break;
    case R_HANDSHAKE:
        pfd->events = c->want_write ? POLLOUT : POLLIN;
        break;
    case R_SEND:
        pfd->events = (c->ssl != NULL && !c->want_write) ? POLLIN : POLLOUT;
        break;
    case R_RECV:
    default:
        pfd->events = (c->ssl != NULL && c->want_write) ? POLLOUT : POLLIN;
        break;
    }
    return 1;
}

int tui_client_timeout_ms(const struct tui_client *c)
{
    if (!tui_client_busy(c)) {
        return -1;
    }
    if (c->stream && c->resp->state != TUI_RS_HEAD) {
        return -1;
    }
    int64_t left = c->deadline_ms - mono_ms();
    return left < 0 ? 0 : (int)(left > 0x7fffffff ? 0x7fffffff : left);
}

struct tui_resp *tui_client_resp(struct tui_client *c)
{
    return c->resp;
}

/* Failure path: close, maybe retry a GET on a fresh connection. */
static int io_fail(struct tui_client *c, struct gh_err *err)
{
    int reused = c->conn_reused;
    conn_close(c);
    if (c->is_get && reused && !c->retried && !c->got_bytes) {
        struct gh_err e2;
        c->retried = 1;
        c->out_off = 0;
        tui_resp_cleanup(c->resp);
        tui_resp_init(c->resp, TUI_RESP_MAX_BODY, c->stream);
        if (start_connect(c, &e2) == 0) {
            return TUI_IO_AGAIN;
        }
        if (err != NULL) {
            *err = e2;
        }
    }
    c->rs = R_FAILED;
    return TUI_IO_ERROR;
}

static int step_connect(struct tui_client *c, struct gh_err *err)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    if (poll(&p, 1, 0) == 0) {
        return TUI_IO_AGAIN;
    }
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        gh_err_set(err, GH_R_UPSTREAM_CONNECT, "cannot connect to %s: %s", c->target,
                   strerror(soerr));
        return io_fail(c, err);
    }
    if (c->remote) {
        if (tls_start(c, err) != 0) {
            return io_fail(c, err);
        }
        return TUI_IO_AGAIN;
    }
    c->conn_ready = 1;
    c->rs = R_SEND;
    return TUI_IO_AGAIN;
}

static int step_handshake(struct tui_client *c, struct gh_err *err)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->conn_ready = 1;
        c->rs = R_SEND;
        c->want_write = 0;
        return TUI_IO_AGAIN;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->want_write = e == SSL_ERROR_WANT_WRITE;
        return TUI_IO_AGAIN;
    }
    char buf[200];
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK) {
        snprintf(buf, sizeof(buf), "server certificate: %s", X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(buf, sizeof(buf), "connection closed during the handshake");
    } else {
        tls_errstr(buf, sizeof(buf));
    }
    gh_err_set(err, GH_R_UPSTREAM_TLS, "TLS handshake with %s failed: %s", c->target, buf);
    c->retried = 1; /* a handshake failure is not a stale connection */
    return io_fail(c, err);
}

static int step_send(struct tui_client *c, struct gh_err *err)
{
    while (c->out_off < c->out_len) {
        size_t n = c->out_len - c->out_off;
        if (c->ssl != NULL) {
            ERR_clear_error();
            int w = SSL_write(c->ssl, c->out + c->out_off, n > 0x40000000 ? 0x40000000 : (int)n);
            if (w <= 0) {
                int e = SSL_get_error(c->ssl, w);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    c->want_write = e == SSL_ERROR_WANT_WRITE;
                    return TUI_IO_AGAIN;
                }
                ERR_clear_error();
                gh_err_set(err, GH_R_UPSTREAM_CONNECT, "connection to %s lost while sending",
                           c->target);
                return io_fail(c, err);
            }
            c->out_off += (size_t)w;
        } else {
            ssize_t w = send(c->fd, c->out + c->out_off, n, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    return TUI_IO_AGAIN;
                }
                gh_err_set(err, GH_R_UPSTREAM_CONNECT, "connection to %s lost while sending: %s",
                           c->target, strerror(errno));
                return io_fail(c, err);
            }
            c->out_off += (size_t)w;
        }
    }
    c->rs = R_RECV;
    c->want_write = 0;
    return TUI_IO_AGAIN;
}

/* Read what is there. Returns TUI_IO_AGAIN/DATA/DONE/ERROR. */
static int step_recv(struct tui_client *c, struct gh_err *err)
{
    char buf[READ_CHUNK];
    int data = 0;
    for (;;) {
        ssize_t n;
        int eof = 0;
        if (c->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r > 0) {
                n = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    c->want_write = e == SSL_ERROR_WANT_WRITE;
                    return data ? TUI_IO_DATA : TUI_IO_AGAIN;
                }
                if (e == SSL_ERROR_ZERO_RETURN ||
                    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                    ERR_clear_error();
                    eof = 1;
                    n = 0;
                } else {
                    char eb[200];
                    tls_errstr(eb, sizeof(eb));
                    gh_err_set(err, GH_R_UPSTREAM_CONNECT, "TLS read from %s failed: %s", c->target,
                               eb);
                    return io_fail(c, err);
                }
            }
        } else {
            n = recv(c->fd, buf, sizeof(buf), 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    return data ? TUI_IO_DATA : TUI_IO_AGAIN;
                }
                gh_err_set(err, GH_R_UPSTREAM_CONNECT, "read from %s failed: %s", c->target,
                           strerror(errno));
                return io_fail(c, err);
            }
            eof = n == 0;
        }
        if (eof) {
            if (c->got_bytes == 0) {
                gh_err_set(err, GH_R_UPSTREAM_CONNECT, "%s closed the connection", c->target);
                return io_fail(c, err);
            }
            if (tui_resp_eof(c->resp, err) != 0) {
                c->retried = 1;
                return io_fail(c, err);
            }
            conn_close(c);
            c->rs = R_DONE;
            return TUI_IO_DONE;
        }
        c->got_bytes = 1;
        size_t used = 0;
        size_t before = c->resp->body_total;
        if (tui_resp_feed(c->resp, buf, (size_t)n, &used, err) != 0) {
            c->retried = 1;
            return io_fail(c, err);
        }
        if (c->resp->body_total != before) {
            data = 1;
        }
        if (c->resp->state == TUI_RS_DONE) {
            if (used < (size_t)n || c->resp->conn_close || c->stream) {
                conn_close(c); /* trailing garbage or server wants close */
            } else {
                c->conn_reused = 1;
            }
            c->rs = R_DONE;
            return TUI_IO_DONE;
        }
        if (c->stream && data && c->resp->state != TUI_RS_HEAD) {
            return TUI_IO_DATA;
        }
    }
}

int tui_client_step(struct tui_client *c, struct gh_err *err)
{
    for (int guard = 0; guard < 8; guard++) {
        if (tui_client_busy(c) && tui_client_timeout_ms(c) == 0) {
            gh_err_set(err, GH_R_UPSTREAM_CONNECT, "no answer from %s within %d ms", c->target,
                       c->timeout_ms);
            c->retried = 1;
            return io_fail(c, err);
        }
        enum rstate before = c->rs;
        int rc;
        switch (c->rs) {
        case R_CONNECT:
            rc = step_connect(c, err);
            break;
        case R_HANDSHAKE:
            rc = step_handshake(c, err);
            break;
        case R_SEND:
            rc = step_send(c, err);
            break;
        case R_RECV:
            return step_recv(c, err);
        case R_DONE:
            return TUI_IO_DONE;
        case R_FAILED:
            gh_err_set(err, GH_R_UPSTREAM_CONNECT, "request failed");
            return TUI_IO_ERROR;
        case R_NONE:
        default:
            gh_err_set(err, GH_R_INTERNAL, "no request in flight");
            return TUI_IO_ERROR;
        }
        if (rc != TUI_IO_AGAIN || c->rs == before) {
            return rc;
        }
    }
    return TUI_IO_AGAIN;
}

void tui_client_end(struct tui_client *c)
{
    if (tui_client_busy(c) || c->stream) {
        conn_close(c);
    }
    c->rs = R_NONE;
    c->stream = 0;
    tui_resp_cleanup(c->resp);
    tui_resp_init(c->resp, TUI_RESP_MAX_BODY, 0);
    free(c->out);
    c->out = NULL;
    c->out_len = 0;
    c->out_off = 0;
}

int tui_client_call(struct tui_client *c, const struct tui_request *rq, struct tui_reply *out,
                    struct gh_err *err)
{
    memset(out, 0, sizeof(*out));
    if (tui_client_begin(c, rq, err) != 0) {
        tui_client_end(c);
        return -1;
    }
    int ret = -1;
    for (;;) {
        int rc = tui_client_step(c, err);
        if (rc == TUI_IO_DONE) {
            break;
        }
        if (rc == TUI_IO_ERROR) {
            goto out;
        }
        struct pollfd p;
        if (!tui_client_pollfd(c, &p)) {
            continue;
        }
        int to = tui_client_timeout_ms(c);
        if (poll(&p, 1, to) < 0 && errno != EINTR) {
            gh_err_set(err, GH_R_INTERNAL, "poll: %s", strerror(errno));
            goto out;
        }
    }
    struct tui_resp *r = c->resp;
    out->status = r->status;
    out->body = r->body;
    out->body_len = r->body_len;
    snprintf(out->content_type, sizeof(out->content_type), "%s", r->content_type);
    r->body = NULL; /* handed over */
    r->body_len = 0;
    r->body_cap = 0;
    if (out->body == NULL) {
        out->body = calloc(1, 1);
        if (out->body == NULL) {
            gh_err_set(err, GH_R_INTERNAL, "out of memory");
            goto out;
        }
    }
    ret = 0;
out:
    tui_client_end(c);
    return ret;
}

void tui_reply_cleanup(struct tui_reply *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

int tui_url_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~';
        size_t need = plain ? 1 : 3;
        if (o + need >= outlen) {
            if (outlen > 0) {
                out[0] = '\0';
            }
            return -1;
        }
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return 0;
}
