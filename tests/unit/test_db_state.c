/*
 * test_db_state.c: sessions, revocations, policy versions and the kv table
 * -- what the control thread persists and reloads at start.
 */
#include "db/state.h"
#include "test_db_util.h"

static char dbp[300];

static int setup(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "state.db");
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

static void mk_session(struct db_session *s, int i, const char *state)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%032x", i);
    snprintf(s->issuer, sizeof(s->issuer), "https://idp.example");
    snprintf(s->subject, sizeof(s->subject), "user-%d", i % 2);
    snprintf(s->cert_thumb, sizeof(s->cert_thumb), "%064x", i);
    snprintf(s->cert_subject, sizeof(s->cert_subject), "CN=dev-%d", i);
    s->first_seen_us = 1000 + i;
    s->last_seen_us = 2000 + i;
    s->requests = 10 * (uint64_t)i;
    s->bytes_in = 100;
    s->bytes_out = 200;
    snprintf(s->last_addr, sizeof(s->last_addr), "198.51.100.%d", i);
    snprintf(s->state, sizeof(s->state), "%s", state);
}

struct sess_acc {
    int n;
    struct db_session s[16];
};

static int sess_cb(void *arg, const struct db_session *s)
{
    struct sess_acc *a = arg;
    if (a->n < 16) {
        a->s[a->n] = *s;
    }
    a->n++;
    return 0;
}

static void sessions(void **state)
{
    struct gh_err err = {0};
    struct db_session s[4];
    for (int i = 0; i < 4; i++) {
        mk_session(&s[i], i + 1, "active");
    }
    assert_int_equal(db_session_upsert(dbp, s, 4, &err), 0);
    assert_int_equal(db_session_upsert(dbp, s, 0, &err), 0);

    struct sess_acc a = {0};
    assert_int_equal(db_session_list(dbp, NULL, sess_cb, &a, &err), 0);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.s[0].id, s[3].id); /* most recently seen first */
    assert_string_equal(a.s[0].cert_subject, "CN=dev-4");
    assert_int_equal(a.s[0].requests, 40);

    /* Update: counters overwrite, first_seen keeps the earliest, last_seen
     * the latest. */
    struct db_session u = s[0];
    u.first_seen_us = 5000;
    u.last_seen_us = 9000;
    u.requests = 77;
    assert_int_equal(db_session_upsert(dbp, &u, 1, &err), 0);
    struct db_session got;
    assert_int_equal(db_session_get(dbp, u.id, &got, &err), 0);
    assert_int_equal(got.first_seen_us, 1001);
    assert_int_equal(got.last_seen_us, 9000);
    assert_int_equal(got.requests, 77);

    /* Revoked is sticky: a stale "active" upsert cannot revive it. */
    u.revoked_us = 9500;
    snprintf(u.state, sizeof(u.state), "revoked");
    assert_int_equal(db_session_upsert(dbp, &u, 1, &err), 0);
    u.revoked_us = 0;
    snprintf(u.state, sizeof(u.state), "active");
    u.requests = 78;
    assert_int_equal(db_session_upsert(dbp, &u, 1, &err), 0);
    assert_int_equal(db_session_get(dbp, u.id, &got, &err), 0);
    assert_string_equal(got.state, "revoked");
    assert_int_equal(got.revoked_us, 9500);
    assert_int_equal(got.requests, 78);

    /* Filters. */
    struct db_session_query q = {.subject = "user-1"};
    a.n = 0;
    assert_int_equal(db_session_list(dbp, &q, sess_cb, &a, &err), 0);
    assert_int_equal(a.n, 2);
    q = (struct db_session_query){.state = "revoked"};
    a.n = 0;
    assert_int_equal(db_session_list(dbp, &q, sess_cb, &a, &err), 0);
    assert_int_equal(a.n, 1);
    q = (struct db_session_query){.seen_since_us = 2003};
    a.n = 0;
    assert_int_equal(db_session_list(dbp, &q, sess_cb, &a, &err), 0);
    assert_int_equal(a.n, 3); /* 2003, 2004 and the updated 9000 */
    q = (struct db_session_query){.limit = 1};
    a.n = 0;
    assert_int_equal(db_session_list(dbp, &q, sess_cb, &a, &err), 0);
    assert_int_equal(a.n, 1);

    assert_int_equal(db_session_get(dbp, "nope", &got, &err), 1);

    /* A bad state rejects the whole batch, nothing written. */
    struct db_session bad[2];
    mk_session(&bad[0], 10, "active");
    mk_session(&bad[1], 11, "zombie");
    assert_int_equal(db_session_upsert(dbp, bad, 2, &err), -1);
    assert_int_equal(db_session_get(dbp, bad[0].id, &got, &err), 1);
}

struct rev_acc {
    int n;
    struct db_revocation r[16];
};

static int rev_cb(void *arg, const struct db_revocation *r)
{
    struct rev_acc *a = arg;
    if (a->n < 16) {
        a->r[a->n] = *r;
    }
    a->n++;
    return 0;
}

static void revocations(void **state)
{
    struct gh_err err = {0};
    struct db_revocation r = {.kind = DB_REVOKE_SUBJECT, .created_us = 100};
    snprintf(r.target, sizeof(r.target), "alice");
    snprintf(r.reason, sizeof(r.reason), "left the company");
    snprintf(r.actor, sizeof(r.actor), "CN=admin");
    int64_t id1 = 0, id2 = 0, id3 = 0;
    assert_int_equal(db_revocation_add(dbp, &r, &id1, &err), 0);
    r.kind = DB_REVOKE_TOKEN;
    snprintf(r.target, sizeof(r.target), "jti-1");
    r.expires_us = 500; /* token exp */
    assert_int_equal(db_revocation_add(dbp, &r, &id2, &err), 0);
    r.kind = DB_REVOKE_CERT;
    r.expires_us = 0;
    snprintf(r.target, sizeof(r.target), "%064x", 9);
    assert_int_equal(db_revocation_add(dbp, &r, &id3, &err), 0);
    assert_true(id1 > 0 && id2 > id1 && id3 > id2);

    struct rev_acc a = {0};
    assert_int_equal(db_revocation_list(dbp, 1, 400, rev_cb, &a, &err), 0);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.r[0].id, id3);
    assert_int_equal(a.r[0].kind, DB_REVOKE_CERT);
    assert_int_equal(a.r[2].kind, DB_REVOKE_SUBJECT);
    assert_string_equal(a.r[2].target, "alice");
    assert_string_equal(a.r[2].reason, "left the company");
    assert_string_equal(a.r[2].actor, "CN=admin");
    /* After the token's exp it is no longer in force. */
    a.n = 0;
    assert_int_equal(db_revocation_list(dbp, 1, 600, rev_cb, &a, &err), 0);
    assert_int_equal(a.n, 2);

    assert_int_equal(db_revocation_lift(dbp, id1, "CN=admin2", 700, &err), 0);
    assert_int_equal(db_revocation_lift(dbp, id1, "CN=admin2", 800, &err), 1);
    assert_int_equal(db_revocation_lift(dbp, 9999, "CN=admin2", 800, &err), 1);
    /* the token revocation expired at 500: not in force, so nothing to lift
     * (the API answers 404, as documented) */
    assert_int_equal(db_revocation_lift(dbp, id2, "CN=admin2", 800, &err), 1);
    a.n = 0;
    assert_int_equal(db_revocation_list(dbp, 1, 600, rev_cb, &a, &err), 0);
    assert_int_equal(a.n, 1);
    a.n = 0;
    assert_int_equal(db_revocation_list(dbp, 0, 600, rev_cb, &a, &err), 0);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.r[2].lifted_us, 700);
    assert_string_equal(a.r[2].lifted_by, "CN=admin2");

    r.target[0] = '\0';
    assert_int_equal(db_revocation_add(dbp, &r, NULL, &err), -1);
    r.kind = (enum db_revocation_kind)9;
    snprintf(r.target, sizeof(r.target), "x");
    assert_int_equal(db_revocation_add(dbp, &r, NULL, &err), -1);
    assert_int_equal(db_revocation_kind_parse("session"), DB_REVOKE_SESSION);
    assert_int_equal(db_revocation_kind_parse("bogus"), -1);
    assert_string_equal(db_revocation_kind_name(DB_REVOKE_TOKEN), "token");
}

struct pol_acc {
    int n;
    struct db_policy_version v[8];
};

static int pol_cb(void *arg, const struct db_policy_version *v)
{
    struct pol_acc *a = arg;
    if (a->n < 8) {
        a->v[a->n] = *v;
    }
    a->n++;
    return 0;
}

static void policy_versions(void **state)
{
    struct gh_err err = {0};
    const char *p1 = "rules:\n  - id: a\n    allow: true\n";
    const char *p2 = "rules:\n  - id: b\n    allow: false\n";
    struct db_policy_version v1, v2, v;
    assert_int_equal(db_policy_version_get(dbp, NULL, &v, NULL, NULL, &err), 1);
    assert_int_equal(
        db_policy_version_add(dbp, p1, strlen(p1), "CN=ops", "first", 10, 1, &v1, &err), 0);
    char want[65];
    gh_sha256_hex(p1, strlen(p1), want);
    assert_string_equal(v1.hash, want);
    assert_int_equal(v1.active, 1);
    assert_int_equal(v1.source_len, strlen(p1));
    assert_int_equal(
        db_policy_version_add(dbp, p2, strlen(p2), "CN=ops", "second", 20, 0, &v2, &err), 0);
    assert_int_equal(v2.active, 0);
    /* Same text again: same version, stored once. */
    assert_int_equal(
        db_policy_version_add(dbp, p1, strlen(p1), "CN=other", "again", 30, 0, &v, &err), 0);
    assert_int_equal(v.id, v1.id);
    assert_string_equal(v.applied_by, "CN=ops");

    char *src = NULL;
    size_t len = 0;
    assert_int_equal(db_policy_version_get(dbp, NULL, &v, &src, &len, &err), 0);
    assert_string_equal(v.hash, v1.hash);
    assert_int_equal(len, strlen(p1));
    assert_string_equal(src, p1);
    free(src);

    /* Activate by prefix (rollback/forward): exactly one active. */
    char prefix[9];
    memcpy(prefix, v2.hash, 8);
    prefix[8] = '\0';
    assert_int_equal(db_policy_version_set_active(dbp, prefix, 40, &err), 0);
    assert_int_equal(db_policy_version_get(dbp, NULL, &v, &src, &len, &err), 0);
    assert_string_equal(v.hash, v2.hash);
    assert_int_equal(v.activated_us, 40);
    assert_string_equal(src, p2);
    free(src);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM policy_versions WHERE active = 1"), 1);
    assert_int_equal(db_policy_version_get(dbp, v1.hash, &v, NULL, NULL, &err), 0);
    assert_int_equal(v.active, 0);

    struct pol_acc a = {0};
    assert_int_equal(db_policy_version_list(dbp, 0, pol_cb, &a, &err), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.v[0].id, v2.id);
    assert_string_equal(a.v[1].comment, "first");

    assert_int_equal(db_policy_version_set_active(dbp, "00000000", 50, &err), 1);
    assert_int_equal(db_policy_version_set_active(dbp, "abc", 50, &err), -1);
    assert_int_equal(db_policy_version_set_active(dbp, "ZZZZZZZZ", 50, &err), -1);
    assert_int_equal(db_policy_version_set_active(dbp, "'; DROP TABLE x; --", 50, &err), -1);
    /* Still the same active version after the failures. */
    assert_int_equal(db_policy_version_get(dbp, NULL, &v, NULL, NULL, &err), 0);
    assert_string_equal(v.hash, v2.hash);
}

static void policy_prefix_ambiguous(void **state)
{
    struct gh_err err = {0};
    struct db_policy_version a, b, cur;
    assert_int_equal(db_policy_version_add(dbp, "A", 1, "t", "", 1, 0, &a, &err), 0);
    assert_int_equal(db_policy_version_add(dbp, "B", 1, "t", "", 2, 1, &b, &err), 0);
    char p8[9];
    memcpy(p8, a.hash, 8);
    p8[8] = '\0';
    assert_int_equal(db_policy_version_set_active(dbp, p8, 3, &err), 0);
    assert_int_equal(db_policy_version_get(dbp, NULL, &cur, NULL, NULL, &err), 0);
    assert_int_equal(cur.id, a.id);
    /* Plant a version whose hash shares the prefix (raw SQL: finding a real
     * SHA-256 collision on 32 bits is not a unit test's job). */
    assert_int_equal(sql_exec(dbp,
                              "INSERT INTO policy_versions (hash, source, applied_by, applied_us,"
                              " activated_us, active, comment) VALUES ('%s%056d', 'x', 't', 0,"
                              " 0, 0, '')",
                              p8, 0),
                     SQLITE_OK);
    assert_int_equal(db_policy_version_set_active(dbp, p8, 4, &err), 1);
    assert_non_null(strstr(err.msg, "ambiguous"));
    assert_int_equal(db_policy_version_get(dbp, p8, &cur, NULL, NULL, &err), 1);
    /* The full hash is still exact. */
    assert_int_equal(db_policy_version_set_active(dbp, b.hash, 5, &err), 0);
    assert_int_equal(db_policy_version_get(dbp, NULL, &cur, NULL, NULL, &err), 0);
    assert_int_equal(cur.id, b.id);
}

static void kv(void **state)
{
    struct gh_err err = {0};
    size_t len = 99;
    char *v = db_kv_get(dbp, "jwks:https://idp.example", &len, &err);
    assert_null(v);
    assert_int_equal(err.msg[0], '\0'); /* absent, not an error */
    assert_int_equal(len, 0);
    const char bin[] = {'{', 0, '"', 'k', '"', '}'};
    assert_int_equal(db_kv_put(dbp, "jwks:https://idp.example", bin, sizeof(bin), &err), 0);
    v = db_kv_get(dbp, "jwks:https://idp.example", &len, &err);
    assert_non_null(v);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(v, bin, sizeof(bin));
    assert_int_equal(v[len], '\0');
    free(v);
    assert_int_equal(db_kv_put(dbp, "jwks:https://idp.example", "{}", 2, &err), 0);
    v = db_kv_get(dbp, "jwks:https://idp.example", &len, &err);
    assert_string_equal(v, "{}");
    free(v);
    assert_int_equal(db_kv_put(dbp, "empty", "", 0, &err), 0);
    v = db_kv_get(dbp, "empty", &len, &err);
    assert_non_null(v);
    assert_int_equal(len, 0);
    free(v);
    assert_int_equal(db_kv_put(dbp, "", "x", 1, &err), -1);
    assert_int_equal(db_kv_put(dbp, NULL, "x", 1, &err), -1);
    assert_int_equal(db_kv_put(dbp, "k", NULL, 5, &err), -1);
    char missing[300];
    tpath(missing, sizeof(missing), "no/such/dir/x.db");
    v = db_kv_get(missing, "k", &len, &err);
    assert_null(v);
    assert_true(err.msg[0] != '\0'); /* an error, distinguishable from absent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(policy_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(policy_prefix_ambiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(kv, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
