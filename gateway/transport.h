/*
 * transport.h: one byte-stream interface over plain TCP and TLS (BoringSSL).
 *
 * Owns: the socket fd and, for TLS, the SSL object. Used by downstream
 * client connections, upstream connections and the IdP client alike, so
 * protocol code never touches an SSL* or a raw fd (STYLE.md).
 * Must not: know HTTP or buffer data; callers own buffers.
 *
 * Non-blocking use: every call returns GW_IO_AGAIN with *want set to
 * GW_WANT_READ or GW_WANT_WRITE when the socket must become readable or
 * writable before the same call is retried (TLS may need to write to read).
 * Blocking use (IdP client thread): the same calls on a blocking fd simply
 * block (with SO_RCVTIMEO/SO_SNDTIMEO as the timeout).
 *
 * Thread rules: a transport belongs to one thread. gw_transport_close frees
 * the SSL and closes the fd; the struct itself is embedded in its owner.
 */
#ifndef GW_TRANSPORT_H
#define GW_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

enum { GW_WANT_NONE = 0, GW_WANT_READ = 1, GW_WANT_WRITE = 2 };
enum { GW_IO_EOF = 0, GW_IO_AGAIN = -1, GW_IO_ERR = -2 };

struct gw_transport {
    int fd;
    SSL *ssl; /* NULL for plain TCP */
    int err_detail; /* last SSL error / errno for logs */
};

void gw_transport_init_plain(struct gw_transport *t, int fd);
/* Takes ownership of ssl (already bound to fd with SSL_set_fd). */
void gw_transport_init_tls(struct gw_transport *t, int fd, SSL *ssl);

/* TLS handshake step: 1 done, GW_IO_AGAIN (with *want), GW_IO_ERR. Plain: 1. */
int gw_transport_handshake(struct gw_transport *t, int *want);
/* > 0 bytes read, GW_IO_EOF on orderly close, GW_IO_AGAIN, GW_IO_ERR. */
ssize_t gw_transport_read(struct gw_transport *t, void *buf, size_t len, int *want);
/* > 0 bytes written (may be partial), GW_IO_AGAIN, GW_IO_ERR. */
ssize_t gw_transport_write(struct gw_transport *t, const void *buf, size_t len, int *want);
/* Bytes TLS has decrypted and buffered but not yet returned (0 for plain). */
size_t gw_transport_pending(const struct gw_transport *t);
struct evbuffer;

/* Write as much of out as the socket takes, one TLS record (16 KiB) per
 * call, draining what was written. 0 when out is empty or the socket would
 * block (*wants_read set if TLS needs the socket readable first), -1 on a
 * write error. *written (may be NULL) is increased by the bytes written. */
int gw_transport_flush(struct gw_transport *t, struct evbuffer *out, uint64_t *written,
                       int *wants_read);
/* Read into in until the socket would block, in reaches `limit` bytes, or
 * `rounds` reads were made. 0 on success (*eof set at orderly close,
 * *wants_write set if TLS needs the socket writable), -1 on a read error.
 * *nread (may be NULL) is increased by the bytes read. */
int gw_transport_fill(struct gw_transport *t, struct evbuffer *in, size_t limit, int rounds,
                      uint64_t *nread, int *eof, int *wants_write);

struct event;
/* Enable or disable a connection's read and write events to match rd/wr,
 * touching libevent (an epoll_ctl) only when the interest changes. */
void gw_event_interest(struct event *rd_ev, int *rd_on, int rd, struct event *wr_ev, int *wr_on,
                       int wr);

/* Best-effort close_notify, then close the fd and free the SSL. Idempotent. */
void gw_transport_close(struct gw_transport *t);

#endif
