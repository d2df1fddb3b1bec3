/*
 * test_db_query.c: every filter of db_decisions_query, ordering, limits,
 * early stop, bad filters, values that look like SQL, and that the common
 * auditor queries use an index (EXPLAIN QUERY PLAN) rather than a scan.
 */
#include "test_db_util.h"

static char dbp[300];
#define BASE_TS 1700000000000000LL

static int setup_group(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "query.db");
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < 60; i++) {
        struct db_decision d;
        make_row(&d, i); /* ts = BASE_TS + i ms */
        if (i == 59) {
            snprintf(d.token_sub, sizeof(d.token_sub), "o'brien\"; DROP TABLE decisions; --");
        }
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
    return 0;
}

static int teardown_group(void **state)
{
    tdir_remove();
    return 0;
}

struct acc {
    int n;
    int stop_after;
    int64_t ids[200];
};

static int acc_cb(void *arg, int64_t id, const struct db_decision *d)
{
    struct acc *a = arg;
    if (a->n < 200) {
        a->ids[a->n] = id;
    }
    a->n++;
    return a->stop_after > 0 && a->n >= a->stop_after;
}

static int run(const struct db_query *q, struct acc *a)
{
    struct gh_err err = {0};
    memset(a->ids, 0, sizeof(a->ids));
    a->n = 0;
    int rc = db_decisions_query(dbp, q, acc_cb, a, &err);
    return rc == 0 ? a->n : -1;
}

static void filters(void **state)
{
    struct acc a = {0};
    struct db_query q = {.decision = -1};
    assert_int_equal(run(&q, &a), 60);
    assert_int_equal(run(NULL, &a), 60);

    q = (struct db_query){.decision = -1, .since_us = BASE_TS + 30 * 1000};
    assert_int_equal(run(&q, &a), 30);
    q = (struct db_query){.decision = -1, .after_id = 50};
    assert_int_equal(run(&q, &a), 10);
    q = (struct db_query){.decision = -1, .subject = "user-1"};
    assert_int_equal(run(&q, &a), 20);
    /* subject matches the certificate subject too */
    q = (struct db_query){.decision = -1, .subject = "CN=device-2,O=Example"};
    assert_int_equal(run(&q, &a), 12);
    q = (struct db_query){.decision = -1, .route = "wiki"};
    assert_int_equal(run(&q, &a), 30);
    q = (struct db_query){.decision = 0};
    assert_int_equal(run(&q, &a), 20);
    q = (struct db_query){.decision = 1};
    assert_int_equal(run(&q, &a), 40);
    q = (struct db_query){.decision = -1, .reason = "policy_deny"};
    assert_int_equal(run(&q, &a), 20);
    q = (struct db_query){.decision = -1, .reason = "token_expired"};
    assert_int_equal(run(&q, &a), 0);
    char sid[33];
    snprintf(sid, sizeof(sid), "%032x", 3);
    q = (struct db_query){.decision = -1, .session_id = sid};
    assert_int_equal(run(&q, &a), 9);
    /* combined: denies (i % 3 == 0) of user-0 (i % 3 == 0) since row 30 */
    q = (struct db_query){.decision = 0, .subject = "user-0", .since_us = BASE_TS + 30 * 1000};
    assert_int_equal(run(&q, &a), 10);
    assert_int_equal(a.ids[0], 58); /* newest first: i = 57 -> id 58 */
    q = (struct db_query){.decision = 1, .subject = "user-0"};
    assert_int_equal(run(&q, &a), 0);
}

static void values_are_bound_not_spliced(void **state)
{
    struct acc a = {0};
    struct db_query q = {.decision = -1, .subject = "o'brien\"; DROP TABLE decisions; --"};
    assert_int_equal(run(&q, &a), 1);
    assert_int_equal(a.ids[0], 60);
    q = (struct db_query){.decision = -1, .subject = "' OR 1=1 --"};
    assert_int_equal(run(&q, &a), 0);
    q = (struct db_query){.decision = -1, .route = "wiki' OR 'a'='a"};
    assert_int_equal(run(&q, &a), 0);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 60);
}

static void order_limit_stop(void **state)
{
    struct acc a = {0};
    struct db_query q = {.decision = -1, .limit = 5};
    assert_int_equal(run(&q, &a), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a.ids[i], 60 - i);
    }
    q.oldest_first = 1;
    assert_int_equal(run(&q, &a), 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a.ids[i], 1 + i);
    }
    q = (struct db_query){.decision = -1, .limit = 1000000};
    assert_int_equal(run(&q, &a), 60); /* clamped to 10000, 60 exist */
    a.stop_after = 3;
    q = (struct db_query){.decision = -1};
    assert_int_equal(run(&q, &a), 3);
    a.stop_after = 0;
}

static void bad_filters(void **state)
{
    struct gh_err err = {0};
    struct acc a = {0};
    struct db_query q = {.decision = -1, .reason = "no_such_reason"};
    assert_int_equal(db_decisions_query(dbp, &q, acc_cb, &a, &err), -1);
    assert_int_equal(err.reason, GH_R_ADMIN_BAD_REQUEST);
    q = (struct db_query){.decision = 2};
    assert_int_equal(db_decisions_query(dbp, &q, acc_cb, &a, &err), -1);
    assert_int_equal(err.reason, GH_R_ADMIN_BAD_REQUEST);
    q = (struct db_query){.decision = -1};
    assert_int_equal(db_decisions_query(dbp, &q, NULL, &a, &err), -1);
    char missing[300];
    tpath(missing, sizeof(missing), "nope.db");
    assert_int_equal(db_decisions_query(missing, &q, acc_cb, &a, &err), -1);
}

static void plan_uses_indexes(void **state)
{
    struct gh_err err = {0};
    char plan[2048];
    /* "all denies for subject Y in the last hour" */
    struct db_query q = {.decision = 0, .subject = "user-0", .since_us = BASE_TS};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "decisions_sub_ts"));
    assert_non_null(strstr(plan, "decisions_cert_sub_ts"));
    assert_null(strstr(plan, "SCAN decisions\n"));
    /* "who reached route X last week" */
    q = (struct db_query){.decision = 1, .route = "wiki", .since_us = BASE_TS};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "decisions_route_ts"));
    assert_null(strstr(plan, "SCAN decisions\n"));
    assert_null(strstr(plan, "TEMP B-TREE")); /* index order = result order */
    q = (struct db_query){.decision = -1, .session_id = "abc"};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "decisions_session_ts"));
    q = (struct db_query){.decision = 0, .reason = "token_expired", .since_us = BASE_TS};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "decisions_reason_ts"));
    assert_null(strstr(plan, "TEMP B-TREE"));
    /* "what happened in the last hour": the time index, no sort */
    q = (struct db_query){.decision = -1, .since_us = BASE_TS};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "decisions_ts"));
    assert_null(strstr(plan, "TEMP B-TREE"));
    /* follow mode pages by id: a rowid range */
    q = (struct db_query){.decision = -1, .after_id = 10, .oldest_first = 1};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "rowid>?"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filters),           cmocka_unit_test(values_are_bound_not_spliced),
        cmocka_unit_test(order_limit_stop),  cmocka_unit_test(bad_filters),
        cmocka_unit_test(plan_uses_indexes),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
