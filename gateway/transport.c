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
