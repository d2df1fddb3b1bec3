/*
 * transport.c: plain TCP and TLS behind one set of calls. TLS is driven by
 * BoringSSL directly on the fd (SSL_set_fd) instead of libevent's
 * bufferevent_openssl, which links OpenSSL and must never share a process
 * with BoringSSL (DESIGN.md section 8). Errors are folded into three
 * outcomes (data, again-with-want, error) so the connection state machine
 * stays protocol-agnostic.
 */
#include "gateway/transport.h"

#include <errno.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>

void gw_transport_init_plain(struct gw_transport *t, int fd)
{
    t->fd = fd;
    t->ssl = NULL;
    t->err_detail = 0;
}

void gw_transport_init_tls(struct gw_transport *t, int fd, SSL *ssl)
{
    t->fd = fd;
    t->ssl = ssl;
    t->err_detail = 0;
}

static int ssl_outcome(struct gw_transport *t, int rc, int *want)
{
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = GW_WANT_READ;
        return GW_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = GW_WANT_WRITE;
        return GW_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return GW_IO_EOF;
    case SSL_ERROR_SYSCALL:
        if (rc == 0 && ERR_peek_error() == 0 && errno == 0) {
            return GW_IO_EOF; /* peer closed without close_notify */
        }
        t->err_detail = errno;
        ERR_clear_error();
        return GW_IO_ERR;
    default:
        t->err_detail = (int)ERR_peek_last_error();
        ERR_clear_error();
        return GW_IO_ERR;
    }
}

int gw_transport_handshake(struct gw_transport *t, int *want)
{
    *want = GW_WANT_NONE;
    if (t->ssl == NULL) {
        return 1;
    }
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        return 1;
    }
    int o = ssl_outcome(t, rc, want);
    return o == GW_IO_EOF ? GW_IO_ERR : o;
}

ssize_t gw_transport_read(struct gw_transport *t, void *buf, size_t len, int *want)
{
    *want = GW_WANT_NONE;
    if (t->ssl == NULL) {
        ssize_t n = read(t->fd, buf, len);
        if (n > 0) {
            return n;
        }
        if (n == 0) {
            return GW_IO_EOF;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            *want = GW_WANT_READ;
            return GW_IO_AGAIN;
        }
        t->err_detail = errno;
        return GW_IO_ERR;
    }
    if (len > 0x7fffffff) {
        len = 0x7fffffff;
    }
    errno = 0;
    int rc = SSL_read(t->ssl, buf, (int)len);
    if (rc > 0) {
        return rc;
    }
    return ssl_outcome(t, rc, want);
}

ssize_t gw_transport_write(struct gw_transport *t, const void *buf, size_t len, int *want)
{
    *want = GW_WANT_NONE;
    if (t->ssl == NULL) {
        ssize_t n = write(t->fd, buf, len);
        if (n >= 0) {
            return n;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            *want = GW_WANT_WRITE;
            return GW_IO_AGAIN;
        }
        t->err_detail = errno;
        return GW_IO_ERR;
    }
    if (len > 0x7fffffff) {
        len = 0x7fffffff;
    }
    errno = 0;
    int rc = SSL_write(t->ssl, buf, (int)len);
    if (rc > 0) {
        return rc;
    }
    int o = ssl_outcome(t, rc, want);
    return o == GW_IO_EOF ? GW_IO_ERR : o;
}

size_t gw_transport_pending(const struct gw_transport *t)
{
    return t->ssl ? (size_t)SSL_pending(t->ssl) : 0;
}

void gw_transport_close(struct gw_transport *t)
{
    if (t->ssl != NULL) {
        /* One non-blocking close_notify attempt; never wait for the peer's. */
        SSL_set_quiet_shutdown(t->ssl, 0);
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
}

int gw_transport_flush(struct gw_transport *t, struct evbuffer *out, uint64_t *written,
                       int *wants_read)
{
    while (evbuffer_get_length(out) > 0) {
        size_t n = evbuffer_get_length(out);
        if (n > 16384) {
            n = 16384; /* one TLS record; the same length again on a retry */
        }
        const void *p = evbuffer_pullup(out, (ssize_t)n);
        if (p == NULL) {
            return -1;
        }
        int want;
        ssize_t w = gw_transport_write(t, p, n, &want);
        if (w > 0) {
            evbuffer_drain(out, (size_t)w);
            if (written != NULL) {
                *written += (uint64_t)w;
            }
            continue;
        }
        if (w == GW_IO_AGAIN) {
            *wants_read = want == GW_WANT_READ;
            return 0;
        }
        return -1;
    }
    *wants_read = 0;
    return 0;
}

int gw_transport_fill(struct gw_transport *t, struct evbuffer *in, size_t limit, int rounds,
                      uint64_t *nread, int *eof, int *wants_write)
{
    for (int r = 0; r < rounds; r++) {
        if (evbuffer_get_length(in) >= limit) {
            return 0;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, 16384, &v, 1) < 1) {
            return -1;
        }
        int want;
        ssize_t n = gw_transport_read(t, v.iov_base, v.iov_len, &want);
        if (n > 0) {
            size_t asked = v.iov_len;
            v.iov_len = (size_t)n;
            evbuffer_commit_space(in, &v, 1);
            if (nread != NULL) {
                *nread += (uint64_t)n;
            }
            /* A short read means the socket (or the TLS record) is drained:
             * skip the read that would only return EAGAIN. Level-triggered
             * epoll wakes us again if more arrived meanwhile. */
            if ((size_t)n < asked && gw_transport_pending(t) == 0) {
                return 0;
            }
            continue;
        }
        evbuffer_commit_space(in, &v, 0);
        if (n == GW_IO_AGAIN) {
            *wants_write = want == GW_WANT_WRITE;
            return 0;
        }
        if (n == GW_IO_EOF) {
            *eof = 1;
            return 0;
        }
        return -1;
    }
    return 0;
}

void gw_event_interest(struct event *rd_ev, int *rd_on, int rd, struct event *wr_ev, int *wr_on,
                       int wr)
{
    if (rd != *rd_on) {
        if (rd) {
            event_add(rd_ev, NULL);
        } else {
            event_del(rd_ev);
        }
        *rd_on = rd;
    }
    if (wr != *wr_on) {
        if (wr) {
            event_add(wr_ev, NULL);
        } else {
            event_del(wr_ev);
        }
        *wr_on = wr;
    }
}
