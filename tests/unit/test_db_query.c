/*
 * test_db_query.c: every filter of db_decisions_query, ordering, limits,
 * early stop, bad filters, values that look like SQL, that the common
 * auditor queries use an index (EXPLAIN QUERY PLAN) rather than a scan, and
 * that a follower paging by id (the admin decision stream) loses no row
 * when timestamps are not in commit order.
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
    /* oldest first is id order, a time range still starts where it starts:
     * a rowid range from the time index, not a scan from row 1 */
    q = (struct db_query){.decision = -1, .since_us = BASE_TS, .oldest_first = 1};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "rowid>?"));
    assert_non_null(strstr(plan, "decisions_ts"));
    assert_null(strstr(plan, "SCAN decisions\n"));
}

/* ---- following the log ----
 * Ids are commit order; ts_us is decision time, and rows of several
 * workers reach the writer in a different order. Here the timestamps run
 * backwards in places: row i (id i + 1) is decided at BASE_TS + ts_of(i). */
#define FOLLOW_ROWS 40

static int64_t ts_of(int i)
{
    return (int64_t)((i * 7919) % FOLLOW_ROWS) * 1000; /* a permutation of 0..39 ms */
}

static void follow_db(char *path, size_t len)
{
    tpath(path, len, "follow.db");
    if (access(path, F_OK) == 0) {
        return;
    }
    struct gh_err err = {0};
    struct db_log_opts o = {.path = path, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < FOLLOW_ROWS; i++) {
        struct db_decision d;
        make_row(&d, i);
        d.ts_us = BASE_TS + ts_of(i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
}

/* What gateway/admin.c does for GET /v1/decisions/stream?after_id=N: query
 * {after_id = cursor, oldest_first, limit = page}, send the rows above the
 * cursor (reordered oldest first by id if the page came newest first),
 * advance the cursor to the last id sent, repeat. Returns rows sent; their
 * ids go to sent[]. */
static int follow(const char *path, int64_t after, int page, const char *route, int64_t *sent,
                  int max)
{
    int n = 0;
    for (int polls = 0; polls < 100; polls++) {
        struct db_query q = {
            .decision = -1, .after_id = after, .oldest_first = 1, .limit = page, .route = route};
        struct acc a = {0};
        struct gh_err err = {0};
        assert_int_equal(db_decisions_query(path, &q, acc_cb, &a, &err), 0);
        if (a.n == 0) {
            break;
        }
        int rev = a.n > 1 && a.ids[0] > a.ids[a.n - 1];
        for (int k = 0; k < a.n; k++) {
            int64_t id = a.ids[rev ? a.n - 1 - k : k];
            if (id <= after) {
                continue;
            }
            if (n < max) {
                sent[n] = id;
            }
            n++;
            after = id;
        }
    }
    return n;
}

static void follow_loses_nothing(void **state)
{
    char path[300];
    follow_db(path, sizeof(path));
    int64_t sent[FOLLOW_ROWS + 10];
    /* From the start of the log (after_id=0), in pages of 5: every row,
     * once, in id order -- the first page included. */
    for (int page = 1; page <= 7; page += 3) {
        int n = follow(path, 0, page, NULL, sent, FOLLOW_ROWS + 10);
        assert_int_equal(n, FOLLOW_ROWS);
        for (int i = 0; i < n; i++) {
            assert_int_equal(sent[i], i + 1);
        }
    }
    /* From a cursor, and with a filter (route wiki = odd i = even ids). */
    assert_int_equal(follow(path, 17, 4, NULL, sent, FOLLOW_ROWS), FOLLOW_ROWS - 17);
    assert_int_equal(sent[0], 18);
    assert_int_equal(follow(path, 0, 3, "wiki", sent, FOLLOW_ROWS), FOLLOW_ROWS / 2);
    for (int i = 0; i < FOLLOW_ROWS / 2; i++) {
        assert_int_equal(sent[i], 2 * (i + 1));
    }
    /* The first page by itself: ids 1..5, not the five earliest times. */
    struct acc a = {0};
    struct gh_err err = {0};
    struct db_query q = {.decision = -1, .after_id = 0, .oldest_first = 1, .limit = 5};
    assert_int_equal(db_decisions_query(path, &q, acc_cb, &a, &err), 0);
    assert_int_equal(a.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a.ids[i], i + 1);
    }
    /* Oldest first with a time range: the rows at or after BASE_TS + 20 ms,
     * in id order (the id lower bound derived from the range is a hint, not
     * a filter). */
    q = (struct db_query){
        .decision = -1, .oldest_first = 1, .since_us = BASE_TS + 20 * 1000, .limit = 100};
    a = (struct acc){0};
    assert_int_equal(db_decisions_query(path, &q, acc_cb, &a, &err), 0);
    int want = 0;
    int64_t prev = 0;
    for (int i = 0; i < FOLLOW_ROWS; i++) {
        want += ts_of(i) >= 20 * 1000;
    }
    assert_int_equal(a.n, want);
    for (int k = 0; k < a.n; k++) {
        assert_true(a.ids[k] > prev);
        assert_true(ts_of((int)a.ids[k] - 1) >= 20 * 1000);
        prev = a.ids[k];
    }
    /* Newest first (the console, `gatehouse decisions`) stays time order. */
    q = (struct db_query){.decision = -1, .limit = 3};
    a = (struct acc){0};
    assert_int_equal(db_decisions_query(path, &q, acc_cb, &a, &err), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(ts_of((int)a.ids[k] - 1), (FOLLOW_ROWS - 1 - k) * 1000);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filters),           cmocka_unit_test(values_are_bound_not_spliced),
        cmocka_unit_test(order_limit_stop),  cmocka_unit_test(bad_filters),
        cmocka_unit_test(plan_uses_indexes), cmocka_unit_test(follow_loses_nothing),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
