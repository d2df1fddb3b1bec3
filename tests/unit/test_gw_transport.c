/*
 * test_gw_transport.c: the TLS read-ahead of gateway/transport.c over real
 * BoringSSL connections on socketpairs (certificates from the demo PKI).
 *
 * What can go wrong with read-ahead, and is checked here:
 *   - a record is read with one read() instead of two (the point of it);
 *   - bytes read ahead are reported by gw_transport_pending (epoll cannot
 *     see them, so a caller that stops reading must be told they exist);
 *   - two connections of one thread interleaving their reads: one's
 *     leftovers move to its own buffer and arrive intact and in order;
 *   - a connection freed while holding leftovers leaves nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "gateway/demopki.h"
#include "gateway/transport.h"

static char pki_dir[64];
static SSL_CTX *srv_ctx, *cli_ctx;

struct pair {
    struct gw_transport srv; /* under test: read-ahead BIO installed */
    SSL *cli;                /* plain BoringSSL client, blocking */
    int cli_fd;
};

static int setup(void **state)
{
    (void)state;
    snprintf(pki_dir, sizeof(pki_dir), "/tmp/gh-ttransport-XXXXXX");
    if (mkdtemp(pki_dir) == NULL) {
        return -1;
    }
    struct gh_err err;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/pki", pki_dir);
    if (gw_demopki_ensure(sub, NULL, &err) != 0) {
        fprintf(stderr, "pki: %s\n", err.msg);
        return -1;
    }
    char crt[160], key[160];
    snprintf(crt, sizeof(crt), "%s/server.crt", sub);
    snprintf(key, sizeof(key), "%s/server.key", sub);
    srv_ctx = SSL_CTX_new(TLS_method());
    cli_ctx = SSL_CTX_new(TLS_method());
    if (srv_ctx == NULL || cli_ctx == NULL ||
        SSL_CTX_use_certificate_chain_file(srv_ctx, crt) != 1 ||
        SSL_CTX_use_PrivateKey_file(srv_ctx, key, SSL_FILETYPE_PEM) != 1) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(srv_ctx);
    SSL_CTX_free(cli_ctx);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Handshake both ends in this thread: the server side non-blocking through
 * gw_transport, the client side blocking (it never waits on the server
 * because the socketpair buffers each flight). */
static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SSL *s = SSL_new(srv_ctx);
    assert_non_null(s);
    SSL_set_fd(s, sv[0]);
    SSL_set_accept_state(s);
    gw_transport_init_tls(&p->srv, sv[0], s);
    p->cli = SSL_new(cli_ctx);
    assert_non_null(p->cli);
    p->cli_fd = sv[1];
    SSL_set_fd(p->cli, sv[1]);
    SSL_set_connect_state(p->cli);
    int srv_done = 0, cli_done = 0;
    for (int i = 0; i < 100 && !(srv_done && cli_done); i++) {
        if (!cli_done) {
            int rc = SSL_do_handshake(p->cli);
            if (rc == 1) {
                cli_done = 1;
            } else {
                int e = SSL_get_error(p->cli, rc);
                assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
            }
        }
        if (!srv_done) {
            int want;
            int rc = gw_transport_handshake(&p->srv, &want);
            if (rc == 1) {
                srv_done = 1;
            } else {
                assert_int_equal(rc, GW_IO_AGAIN);
            }
        }
    }
    assert_true(srv_done && cli_done);
}

static void pair_close(struct pair *p)
{
    gw_transport_close(&p->srv);
    SSL_free(p->cli);
    close(p->cli_fd);
}

static void cli_send(struct pair *p, const char *s)
{
    assert_int_equal(SSL_write(p->cli, s, (int)strlen(s)), (int)strlen(s));
}

/* Read exactly n bytes from the server side (non-blocking; the client has
 * already written everything). */
static void srv_expect(struct pair *p, const char *want)
{
    size_t n = strlen(want), got = 0;
    char buf[256];
    assert_true(n < sizeof(buf));
    for (int i = 0; i < 16 && got < n; i++) {
        int w;
        ssize_t r = gw_transport_read(&p->srv, buf + got, n - got, &w);
        if (r > 0) {
            got += (size_t)r;
        }
    }
    buf[got] = '\0';
    assert_string_equal(buf, want);
}

/* Three records sent at once are read off the socket by the first read:
 * after it, the socket is empty and the rest is pending in the transport. */
static void test_readahead_one_read(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    cli_send(&p, "one.");
    cli_send(&p, "two.");
    cli_send(&p, "three.");
    srv_expect(&p, "one.");
    /* Nothing left in the socket... */
    char peek;
    assert_int_equal(recv(p.srv.fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT), -1);
    /* ...and the two records are pending in the transport. */
    assert_true(gw_transport_pending(&p.srv) >= strlen("two.three."));
    srv_expect(&p, "two.");
    srv_expect(&p, "three.");
    assert_int_equal(gw_transport_pending(&p.srv), 0);
    int w;
    char b[8];
    assert_int_equal(gw_transport_read(&p.srv, b, sizeof(b), &w), GW_IO_AGAIN);
    assert_int_equal(w, GW_WANT_READ);
    pair_close(&p);
}

/* A and B on one thread: A leaves read-ahead bytes, B reads (taking the
 * scratch), then A reads again: its bytes come back whole and in order. */
static void test_interleaved_connections(void **state)
{
    (void)state;
    struct pair a, b;
    pair_open(&a);
    pair_open(&b);
    cli_send(&a, "a1.");
    cli_send(&a, "a2.");
    cli_send(&b, "b1.");
    cli_send(&b, "b2.");
    srv_expect(&a, "a1.");
    size_t a_pending = gw_transport_pending(&a.srv);
    assert_true(a_pending >= strlen("a2."));
    srv_expect(&b, "b1.");
    assert_int_equal(gw_transport_pending(&a.srv), a_pending); /* moved, not lost */
    cli_send(&a, "a3.");
    srv_expect(&a, "a2.");
    srv_expect(&b, "b2.");
    srv_expect(&a, "a3.");
    assert_int_equal(gw_transport_pending(&a.srv), 0);
    assert_int_equal(gw_transport_pending(&b.srv), 0);
    pair_close(&a);
    pair_close(&b);
}

/* Closing a connection that holds read-ahead bytes (in the thread's scratch
 * or in its own buffer) frees them; the next connection is unaffected.
 * (Leaks are caught by the sanitizer build.) */
static void test_close_with_leftovers(void **state)
{
    (void)state;
    struct pair a, b, c;
    pair_open(&a);
    pair_open(&b);
    cli_send(&a, "x1.");
    cli_send(&a, "x2.");
    cli_send(&b, "y1.");
    cli_send(&b, "y2.");
    srv_expect(&a, "x1."); /* a's leftovers in the scratch */
    srv_expect(&b, "y1."); /* a's moved to its buffer; b's in the scratch */
    pair_close(&a);
    pair_close(&b);
    pair_open(&c);
    cli_send(&c, "z1.");
    srv_expect(&c, "z1.");
    assert_int_equal(gw_transport_pending(&c.srv), 0);
    pair_close(&c);
}

/* End of stream after read-ahead bytes: the bytes first, then EOF. */
static void test_eof_after_leftovers(void **state)
{
    (void)state;
    struct pair p;
    pair_open(&p);
    cli_send(&p, "last1.");
    cli_send(&p, "last2.");
    SSL_shutdown(p.cli);
    srv_expect(&p, "last1.");
    srv_expect(&p, "last2.");
    int w;
    char b[8];
    assert_int_equal(gw_transport_read(&p.srv, b, sizeof(b), &w), GW_IO_EOF);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readahead_one_read),
        cmocka_unit_test(test_interleaved_connections),
        cmocka_unit_test(test_close_with_leftovers),
        cmocka_unit_test(test_eof_after_leftovers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
