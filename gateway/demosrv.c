/*
 * demosrv.c: the blocking thread-per-connection server behind the demo's
 * development issuer and demo app.
 *
 * Why blocking threads and not the gateway's event loop: these two servers
 * exist only inside `gatehouse demo`, see a handful of requests from one
 * person's curl, and must not share any state or code path with the
 * gateway's workers -- so that nothing of the development issuer can leak
 * into `gatehouse serve`. A blocking accept loop with one short-lived thread
 * per connection is the simplest thing that is obviously correct. It still
 * keeps the house rules for network input: the head goes through the
 * gateway's strict scanner and parser (bounded size, header count, no
 * smuggling vectors), the body is bounded, every socket has a timeout, and
 * the number of connection threads is capped.
 */
#include "gateway/demosrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "gateway/base/log.h"
#include "gateway/tls.h"
#include "gateway/transport.h"

#define IO_TIMEOUT_S 10

struct gw_demosrv {
    char name[32];
    int listen_fd;
    SSL_CTX *tls;
    gw_demosrv_handler handler;
    void *arg;
    pthread_t accept_thread;
    atomic_int stop;

    pthread_mutex_t mu;                 /* guards conn_fds and n_conns */
    pthread_cond_t cv;                  /* signalled when n_conns drops */
    int conn_fds[GW_DEMOSRV_MAX_CONNS]; /* -1 = free slot */
    int n_conns;
};

struct conn {
    struct gw_demosrv *srv;
    int slot;
    int fd;
    char peer[64];
};

void gw_demosrv_resp_set(struct gw_demosrv_resp *resp, int status, const char *content_type,
                         const char *body)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->content_type = content_type;
    if (body == NULL) {
        return;
    }
    size_t n = strlen(body);
    resp->body = malloc(n + 1);
    if (resp->body == NULL) {
        resp->status = 500;
        resp->content_type = NULL;
        return;
    }
    memcpy(resp->body, body, n + 1);
    resp->body_len = n;
}

static int write_all(struct gw_transport *t, const char *p, size_t n)
{
    while (n > 0) {
        int want;
        ssize_t w = gw_transport_write(t, p, n, &want);
        if (w <= 0) {
            return -1; /* blocking socket: AGAIN means the send timeout expired */
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void send_response(struct gw_transport *t, const struct gw_demosrv_resp *r)
{
    char head[1024];
    int status = r->status > 0 ? r->status : 500;
    const char *text = gw_http_status_text(status);
    int k = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s%s%s"
                     "%s"
                     "Connection: close\r\n\r\n",
                     status, text != NULL ? text : "Unknown", r->body != NULL ? r->body_len : 0,
                     r->content_type != NULL ? "Content-Type: " : "",
                     r->content_type != NULL ? r->content_type : "",
                     r->content_type != NULL ? "\r\n" : "", r->extra_headers);
    if (k < 0 || (size_t)k >= sizeof(head)) {
        return;
    }
    if (write_all(t, head, (size_t)k) != 0) {
        return;
    }
    if (r->body != NULL && r->body_len > 0) {
        (void)write_all(t, r->body, r->body_len);
    }
}

static void simple_error(struct gw_transport *t, int status, const char *msg)
{
    struct gw_demosrv_resp r = {0};
    gw_demosrv_resp_set(&r, status, "text/plain; charset=utf-8", msg);
    send_response(t, &r);
    free(r.body);
}

/* Reads one request and answers it. Everything the peer sends is bounded:
 * head <= GW_DEMOSRV_MAX_HEAD, body <= GW_DEMOSRV_MAX_BODY. */
static void serve_one(struct conn *c, struct gw_transport *t, const struct az_cert_info *cert)
{
    struct gw_demosrv *s = c->srv;
    char *buf = malloc(GW_DEMOSRV_MAX_HEAD + GW_DEMOSRV_MAX_BODY + 1);
    struct gw_req_head *rh = malloc(sizeof(*rh));
    struct gw_demosrv_resp resp = {0};
    if (buf == NULL || rh == NULL) {
        goto out;
    }
    size_t len = 0, scan = 0, head_len = 0;
    int lines = 0;
    enum gh_reason reason = GH_R_HTTP_BAD_REQUEST;
    for (;;) {
        int rc = gw_http_scan_head(buf, len, &scan, &lines, GW_DEMOSRV_MAX_HEAD, 8192, 100,
                                   &head_len, &reason);
        if (rc == 1) {
            break;
        }
        if (rc < 0) {
            simple_error(t, gh_reason_status(reason), gh_reason_name(reason));
            goto out;
        }
        if (len >= GW_DEMOSRV_MAX_HEAD) {
            simple_error(t, 431, "request head too large\n");
            goto out;
        }
        int want;
        ssize_t n = gw_transport_read(t, buf + len, GW_DEMOSRV_MAX_HEAD - len, &want);
        if (n <= 0) {
            goto out; /* closed, error, or the read timeout expired */
        }
        len += (size_t)n;
    }
    const char *detail = NULL;
    if (gw_http_parse_request(buf, head_len, rh, &reason, &detail) != 0) {
        GH_INFO("%s: %s refused a request: %s", s->name, c->peer, detail ? detail : "bad request");
        simple_error(t, 400, "bad request\n");
        goto out;
    }
    if (rh->chunked || rh->content_length > GW_DEMOSRV_MAX_BODY) {
        simple_error(t, 413, "request body too large (or chunked)\n");
        goto out;
    }
    size_t body_len = rh->content_length > 0 ? (size_t)rh->content_length : 0;
    while (len < head_len + body_len) {
        int want;
        ssize_t n = gw_transport_read(t, buf + len, head_len + body_len - len, &want);
        if (n <= 0) {
            goto out;
        }
        len += (size_t)n;
    }
    buf[head_len + body_len] = '\0';

    struct gw_demosrv_req req = {
        .head = buf,
        .head_len = head_len,
        .rh = rh,
        .body = buf + head_len,
        .body_len = body_len,
        .cert = cert,
        .peer = c->peer,
    };
    snprintf(req.method, sizeof(req.method), "%.*s", (int)rh->method_len, rh->method);
    const char *q = memchr(rh->target, '?', rh->target_len);
    size_t pl = q != NULL ? (size_t)(q - rh->target) : rh->target_len;
    if (pl >= sizeof(req.path)) {
        simple_error(t, 414, "request target too long\n");
        goto out;
    }
    memcpy(req.path, rh->target, pl);
    req.path[pl] = '\0';

    resp.status = 500;
    s->handler(s->arg, &req, &resp);
    send_response(t, &resp);
out:
    free(resp.body);
    free(rh);
    free(buf);
}

static void release_slot(struct conn *c)
{
    struct gw_demosrv *s = c->srv;
    pthread_mutex_lock(&s->mu);
    s->conn_fds[c->slot] = -1;
    s->n_conns--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct gw_demosrv *s = c->srv;
    struct gw_transport t;
    struct az_cert_info info;
    int have_cert = 0;

    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (s->tls != NULL) {
        SSL *ssl = SSL_new(s->tls);
        if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1) {
            SSL_free(ssl);
            gw_transport_init_plain(&t, c->fd);
            goto done;
        }
        SSL_set_accept_state(ssl);
        gw_transport_init_tls(&t, c->fd, ssl);
        int want;
        if (gw_transport_handshake(&t, &want) != 1) {
            char e[128];
            ERR_error_string_n((uint32_t)t.err_detail, e, sizeof(e));
            GH_INFO("%s: TLS handshake with %s refused (%s)", s->name, c->peer,
                    t.err_detail != 0 ? e : "no client certificate or timeout");
            goto done;
        }
        if (gw_tls_peer_info(ssl, &info) != 0) {
            GH_INFO("%s: %s presented no client certificate", s->name, c->peer);
            goto done;
        }
        have_cert = 1;
    } else {
        gw_transport_init_plain(&t, c->fd);
    }
    serve_one(c, &t, have_cert ? &info : NULL);
done:
    if (have_cert) {
        gw_tls_cert_info_cleanup(&info);
    }
    /* Leave the slot first, then close: gw_demosrv_stop shuts down fds in
     * slots under the mutex and must never hit a number already reused. */
    int fd = t.fd;
    t.fd = -1;
    release_slot(c);
    gw_transport_close(&t);
    if (fd >= 0) {
        close(fd);
    }
    free(c);
    return NULL;
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, len, "%s:%d", host, port);
}

static void *accept_main(void *arg)
{
    struct gw_demosrv *s = arg;
    while (!atomic_load(&s->stop)) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (atomic_load(&s->stop)) {
                break;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
                usleep(100 * 1000);
            }
            continue; /* EINTR, ECONNABORTED, ... */
        }
        struct conn *c = calloc(1, sizeof(*c));
        int slot = -1;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; c != NULL && i < GW_DEMOSRV_MAX_CONNS; i++) {
            if (s->conn_fds[i] < 0) {
                slot = i;
                s->conn_fds[i] = fd;
                s->n_conns++;
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (slot < 0) {
            GH_WARN("%s: too many connections, closing one", s->name);
            free(c);
            close(fd);
            continue;
        }
        c->srv = s;
        c->slot = slot;
        c->fd = fd;
        format_peer(&ss, c->peer, sizeof(c->peer));
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_t th;
        int rc = pthread_create(&th, &attr, conn_main, c);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            GH_WARN("%s: cannot start a connection thread: %s", s->name, strerror(rc));
            release_slot(c);
            close(fd);
            free(c);
        }
    }
    return NULL;
}

static int listen_on(const char *host, int port, struct gh_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*a6);
    } else {
        return gh_err_set(err, GH_R_INTERNAL, "not an IP address: %s", host);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return gh_err_set(err, GH_R_INTERNAL, "socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        return gh_err_set(err, GH_R_INTERNAL, "cannot listen on %s:%d: %s", host, port,
                          strerror(e));
    }
    return fd;
}

struct gw_demosrv *gw_demosrv_start(const char *name, const char *host, int port, SSL_CTX *tls,
                                    gw_demosrv_handler handler, void *arg, struct gh_err *err)
{
    struct gw_demosrv *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        return NULL;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->handler = handler;
    s->arg = arg;
    atomic_init(&s->stop, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < GW_DEMOSRV_MAX_CONNS; i++) {
        s->conn_fds[i] = -1;
    }
    s->listen_fd = listen_on(host, port, err);
    if (s->listen_fd < 0) {
        goto fail;
    }
    if (tls != NULL) {
        SSL_CTX_up_ref(tls);
        s->tls = tls;
    }
    int rc = pthread_create(&s->accept_thread, NULL, accept_main, s);
    if (rc != 0) {
        gh_err_set(err, GH_R_INTERNAL, "cannot start the accept thread: %s", strerror(rc));
        goto fail;
    }
    return s;
fail:
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
    }
    SSL_CTX_free(s->tls);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

void gw_demosrv_stop(struct gw_demosrv *s)
{
    if (s == NULL) {
        return;
    }
    atomic_store(&s->stop, 1);
    /* shutdown(2) on a listening socket makes a blocked accept(2) return. */
    shutdown(s->listen_fd, SHUT_RDWR);
    pthread_join(s->accept_thread, NULL);
    close(s->listen_fd);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < GW_DEMOSRV_MAX_CONNS; i++) {
        if (s->conn_fds[i] >= 0) {
            shutdown(s->conn_fds[i], SHUT_RDWR);
        }
    }
    while (s->n_conns > 0) {
        pthread_cond_wait(&s->cv, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    SSL_CTX_free(s->tls);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
