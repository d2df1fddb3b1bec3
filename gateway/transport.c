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
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- read-ahead BIO --------------------------------------------------------
 *
 * BoringSSL reads a record in two exact reads (the 5-byte header, then the
 * body): two read() calls per request. The read side of every TLS transport
 * is this BIO instead, which reads as much as the socket has into a scratch
 * buffer of the calling thread and hands BoringSSL the bytes it asks for.
 *
 * The scratch belongs to one BIO at a time. Bytes left in it (the next
 * record, already read) stay there; when another connection of the same
 * thread needs the scratch, the leftovers move to a heap buffer of their own
 * BIO ("spill"; rare: BoringSSL almost always consumes a whole read within
 * one SSL_read). No memory per idle connection beyond a small struct.
 *
 * Bytes held here are invisible to epoll: gw_transport_pending() counts them
 * and callers that poll must run their read path while it is non-zero
 * (proxy.c does so in its update-events functions). */

enum { RA_SCRATCH = 32 * 1024 };

struct ra_state {
    int fd;
    uint8_t *spill;
    size_t spill_off, spill_len;
};

struct ra_scratch {
    struct ra_state *owner;
    size_t off, len;
    uint8_t buf[RA_SCRATCH];
};

/* In the thread's static TLS block: no allocation, nothing to free. */
static _Thread_local struct ra_scratch ra_tls;

static size_t ra_buffered(const struct ra_state *st)
{
    size_t n = st->spill_len - st->spill_off;
    if (ra_tls.owner == st) {
        n += ra_tls.len - ra_tls.off;
    }
    return n;
}

static int ra_read(BIO *b, char *out, int outl)
{
    struct ra_state *st = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (outl <= 0) {
        return 0;
    }
    size_t want = (size_t)outl;
    if (st->spill_len > st->spill_off) {
        size_t n = st->spill_len - st->spill_off;
        n = n < want ? n : want;
        memcpy(out, st->spill + st->spill_off, n);
        st->spill_off += n;
        if (st->spill_off == st->spill_len) {
            free(st->spill);
            st->spill = NULL;
            st->spill_off = st->spill_len = 0;
        }
        return (int)n;
    }
    struct ra_scratch *sc = &ra_tls;
    if (sc->owner == st && sc->len > sc->off) {
        size_t n = sc->len - sc->off;
        n = n < want ? n : want;
        memcpy(out, sc->buf + sc->off, n);
        sc->off += n;
        return (int)n;
    }
    if (sc->owner != NULL && sc->owner != st && sc->len > sc->off) {
        /* Another connection's next bytes: give them a buffer of their own
         * (it has none: a BIO reads its spill empty before the scratch). */
        struct ra_state *o = sc->owner;
        size_t n = sc->len - sc->off;
        uint8_t *p = malloc(n);
        if (p == NULL) {
            sc = NULL; /* keep theirs; read exactly what is asked, no read-ahead */
        } else {
            memcpy(p, sc->buf + sc->off, n);
            o->spill = p;
            o->spill_off = 0;
            o->spill_len = n;
            sc->owner = NULL;
            sc->off = sc->len = 0;
        }
    }
    ssize_t r;
    if (sc == NULL) {
        r = read(st->fd, out, want);
    } else {
        r = read(st->fd, sc->buf, sizeof(sc->buf));
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            BIO_set_retry_read(b);
        }
        return -1;
    }
    if (r == 0 || sc == NULL) {
        return (int)r;
    }
    size_t n = (size_t)r < want ? (size_t)r : want;
    memcpy(out, sc->buf, n);
    sc->owner = st;
    sc->off = n;
    sc->len = (size_t)r;
    return (int)n;
}

static long ra_ctrl(BIO *b, int cmd, long larg, void *parg)
{
    (void)b;
    (void)larg;
    (void)parg;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int ra_destroy(BIO *b)
{
    struct ra_state *st = BIO_get_data(b);
    if (st == NULL) {
        return 1;
    }
    if (ra_tls.owner == st) {
        ra_tls.owner = NULL;
        ra_tls.off = ra_tls.len = 0;
    }
    free(st->spill);
    free(st);
    BIO_set_data(b, NULL);
    return 1;
}

static pthread_once_t ra_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *ra_method;
static int ra_type;

static void ra_method_init(void)
{
    int type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK;
    BIO_METHOD *m = BIO_meth_new(type, "gh-readahead");
    if (m == NULL || !BIO_meth_set_read(m, ra_read) || !BIO_meth_set_ctrl(m, ra_ctrl) ||
        !BIO_meth_set_destroy(m, ra_destroy)) {
        BIO_meth_free(m);
        return;
    }
    ra_type = type;
    ra_method = m;
}

/* Replace ssl's read BIO by a read-ahead BIO on fd. On failure the socket
 * BIO stays: correct, one read() more per record. */
static void ra_install(SSL *ssl, int fd)
{
    pthread_once(&ra_once, ra_method_init);
    if (ra_method == NULL) {
        return;
    }
    struct ra_state *st = calloc(1, sizeof(*st));
    BIO *b = st != NULL ? BIO_new(ra_method) : NULL;
    if (b == NULL) {
        free(st);
        return;
    }
    st->fd = fd;
    BIO_set_data(b, st);
    BIO_set_init(b, 1);
    SSL_set0_rbio(ssl, b);
}

void gw_transport_init_tls(struct gw_transport *t, int fd, SSL *ssl)
{
    t->fd = fd;
    t->ssl = ssl;
    t->err_detail = 0;
    if (ssl != NULL && fd >= 0) {
        ra_install(ssl, fd);
    }
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
    if (t->ssl == NULL) {
        return 0;
    }
    size_t n = (size_t)SSL_pending(t->ssl);
    BIO *b = SSL_get_rbio(t->ssl);
    if (b != NULL && ra_method != NULL && BIO_method_type(b) == ra_type) {
        n += ra_buffered(BIO_get_data(b));
    }
    return n;
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

/* Staging for gw_transport_flush when the bytes span evbuffer chains. */
static _Thread_local uint8_t flush_scratch[16384];

int gw_transport_flush(struct gw_transport *t, struct evbuffer *out, uint64_t *written,
                       int *wants_read)
{
    while (evbuffer_get_length(out) > 0) {
        size_t n = evbuffer_get_length(out);
        if (n > sizeof(flush_scratch)) {
            n = sizeof(flush_scratch); /* one TLS record; the same length again on a retry */
        }
        /* The first chain usually holds it all: write from there. Otherwise
         * copy into the thread's scratch (evbuffer_pullup would allocate a
         * new chain per call; TLS accepts a moved buffer on retry). */
        const void *p;
        struct evbuffer_iovec v;
        if (evbuffer_peek(out, (ssize_t)n, NULL, &v, 1) == 1 && v.iov_len >= n) {
            p = v.iov_base;
        } else {
            if (evbuffer_copyout(out, flush_scratch, n) != (ev_ssize_t)n) {
                return -1;
            }
            p = flush_scratch;
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
        /* 16 KiB less the chain's own header: libevent rounds a chain up
         * to a power of two, so asking for a full 16 KiB took a 32 KiB chain
         * per read buffer. A full-size TLS record is read in two calls. */
        if (evbuffer_reserve_space(in, 16384 - 256, &v, 1) < 1) {
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
