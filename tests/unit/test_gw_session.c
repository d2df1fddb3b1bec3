/*
 * test_gw_session.c: the session registry and revocation snapshots
 * (gateway/session.c) without sockets: session identity by triple, the
 * fail-closed iat rule after a session revocation (including across a
 * reload from the database), and every revocation kind with expiry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/base/util.h"
#include "gateway/session.h"

#define T0 1900000000LL

static struct az_token *tok(const char *sub, int64_t iat, uint8_t tag)
{
    struct az_token *t = calloc(1, sizeof(*t));
    t->refs = 1;
    snprintf(t->iss, sizeof(t->iss), "https://idp");
    snprintf(t->sub, sizeof(t->sub), "%s", sub);
    t->iat = iat;
    t->exp = iat + 300;
    t->token_sha256[0] = tag;
    return t;
}

static const uint8_t cert_a[32] = {1}, cert_b[32] = {2};

static enum gh_reason touch(struct gw_sessions *s, struct az_token *t, const uint8_t *cert,
                            int64_t now_s, char id[33])
{
    int nb = 0;
    char hex[65];
    gh_hex(cert, 32, hex);
    return gw_sessions_touch(s, t, cert, hex, "CN=x", "127.0.0.1", now_s * 1000000, 10, id, &nb);
}

static void test_identity_and_revocation(void **st)
{
    struct gw_sessions *s = gw_sessions_new();
    struct az_token *t1 = tok("alice", T0, 1), *t1b = tok("alice", T0 + 1, 2);
    char a[33] = "", b[33] = "", c[33] = "";
    assert_int_equal(touch(s, t1, cert_a, T0, a), GH_R_ALLOW);
    assert_int_equal(touch(s, t1b, cert_a, T0 + 1, b), GH_R_ALLOW);
    assert_string_equal(a, b); /* same person, same device: one session */
    assert_int_equal(touch(s, t1, cert_b, T0, c), GH_R_ALLOW);
    assert_string_not_equal(a, c); /* other device: other session */
    assert_int_equal(gw_sessions_revoke(s, a, (T0 + 10) * 1000000 + 500000), 1);
    char d[33] = "";
    /* a token issued before (or in the second of) the revocation is refused */
    struct az_token *same_sec = tok("alice", T0 + 10, 3);
    assert_int_equal(touch(s, t1b, cert_a, T0 + 11, d), GH_R_SESSION_REVOKED);
    assert_int_equal(touch(s, same_sec, cert_a, T0 + 11, d), GH_R_SESSION_REVOKED);
    /* a fresh login starts a new session ... */
    struct az_token *fresh = tok("alice", T0 + 11, 4);
    assert_int_equal(touch(s, fresh, cert_a, T0 + 11, d), GH_R_ALLOW);
    assert_string_not_equal(d, a);
    /* ... and the old tokens stay refused even though the new session owns the triple */
    char e[33] = "";
    assert_int_equal(touch(s, t1b, cert_a, T0 + 12, e), GH_R_SESSION_REVOKED);

    /* persistence round trip: the floor survives a reload */
    struct db_session rows[8];
    size_t n = gw_sessions_take_dirty(s, rows, 8);
    assert_true(n >= 3);
    struct gw_sessions *s2 = gw_sessions_new();
    gw_sessions_load(s2, rows, n);
    char f[33] = "";
    assert_int_equal(touch(s2, t1b, cert_a, T0 + 13, f), GH_R_SESSION_REVOKED);
    assert_int_equal(touch(s2, fresh, cert_a, T0 + 13, f), GH_R_ALLOW);
    assert_string_equal(f, d);
    gw_sessions_free(s2);
    gw_sessions_free(s);
    az_token_unref(t1);
    az_token_unref(t1b);
    az_token_unref(same_sec);
    az_token_unref(fresh);
}

static void test_revset(void **st)
{
    struct db_revocation r[5];
    memset(r, 0, sizeof(r));
    r[0].kind = DB_REVOKE_SESSION;
    snprintf(r[0].target, sizeof(r[0].target), "sess1");
    r[1].kind = DB_REVOKE_SUBJECT;
    snprintf(r[1].target, sizeof(r[1].target), "carol");
    r[1].expires_us = 2000;
    r[2].kind = DB_REVOKE_CERT;
    snprintf(r[2].target, sizeof(r[2].target), "ABCDEF");
    r[3].kind = DB_REVOKE_TOKEN;
    snprintf(r[3].target, sizeof(r[3].target), "jti-9");
    r[4].kind = DB_REVOKE_SUBJECT;
    snprintf(r[4].target, sizeof(r[4].target), "dave");
    r[4].lifted_us = 5; /* lifted: not in force */
    struct gw_revset *rs = gw_revset_new(r, 5, 7);
    assert_int_equal(gw_revset_gen(rs), 7);
    assert_int_equal(gw_revset_check(rs, "sess1", "x", "", "00", 1000), GH_R_SESSION_REVOKED);
    assert_int_equal(gw_revset_check(rs, "s", "carol", "", "00", 1000), GH_R_SUBJECT_LOCKED);
    assert_int_equal(gw_revset_check(rs, "s", "carol", "", "00", 3000), GH_R_ALLOW); /* expired */
    assert_int_equal(gw_revset_check(rs, "s", "x", "", "abcdef", 1000), GH_R_CERT_BLOCKED);
    assert_int_equal(gw_revset_check_cert(rs, "abcdef", 1000), GH_R_CERT_BLOCKED);
    assert_int_equal(gw_revset_check(rs, "s", "x", "jti-9", "00", 1000), GH_R_TOKEN_REVOKED);
    assert_int_equal(gw_revset_check(rs, "s", "dave", "", "00", 1000), GH_R_ALLOW);
    assert_int_equal(gw_revset_check(rs, "", "", "", "", 1000), GH_R_ALLOW);
    gw_revset_unref(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_identity_and_revocation),
                                       cmocka_unit_test(test_revset)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
