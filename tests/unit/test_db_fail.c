/*
 * test_db_fail.c: write failures. A full disk (PRAGMA max_page_count) and a
 * lock held by another connection (SQLITE_BUSY) make the log unhealthy:
 * strict mode answers waiting rows with ok=0 and refuses new ones
 * (LOG_UNAVAILABLE), async mode keeps rows at risk; once writes succeed the
 * log is healthy again and no accepted row is missing. Rows whose client got
 * 503 say so. Only a shutdown that cannot write gives rows up, and counts.
 */
#include "test_db_util.h"

static char dbp[300];

static int setup(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "fail.db");
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

static int is_healthy(void *arg)
{
    struct db_log_stats st;
    db_log_stats(arg, &st);
    return st.healthy;
}

static int is_unhealthy(void *arg)
{
    return !is_healthy(arg);
}

struct one {
    atomic_int done, ok;
};

static void one_cb(void *arg, int ok)
{
    struct one *o = arg;
    atomic_store(&o->ok, ok);
    atomic_store(&o->done, 1);
}

static int one_done(void *arg)
{
    return atomic_load(&((struct one *)arg)->done);
}

static int fails_done(void *arg)
{
    struct cb_count *c = arg;
    return atomic_load(&c->fail) >= 3;
}

static void disk_full_strict_recovers_without_loss(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .max_batch = 1};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    struct one first = {0};
    make_row(&d, 0);
    assert_int_equal(db_log_append(l, &d, one_cb, &first, &err), 0);
    assert_true(wait_for(one_done, &first, 5000));
    assert_int_equal(atomic_load(&first.ok), 1);

    /* "Disk full": no page beyond the current size. */
    assert_int_equal(db_log_test_set_max_pages(l, 1), 0);
    int accepted = 1, failed_at = -1;
    static struct one res[2000];
    memset(res, 0, sizeof(res));
    for (int i = 1; i < 2000; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, one_cb, &res[i], &err), 0);
        accepted++;
        assert_true(wait_for(one_done, &res[i], 10000));
        if (!atomic_load(&res[i].ok)) {
            failed_at = i;
            break;
        }
    }
    assert_true(failed_at > 0);
    struct db_log_stats st;
    db_log_stats(l, &st);
    assert_int_equal(st.healthy, 0);
    assert_true(st.write_errors >= 1);
    assert_int_equal(st.failed, 1);

    /* Fail closed: new rows are refused while the disk is full. */
    make_row(&d, 5000);
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), -1);
    assert_int_equal(err.reason, GH_R_LOG_UNAVAILABLE);
    db_log_stats(l, &st);
    assert_int_equal(st.refused, 1);
    /* Still failing after a few retries; nothing lost meanwhile. */
    usleep(400000);
    assert_int_equal(is_healthy(l), 0);

    /* Space returns: the held row is written and the log recovers. */
    assert_int_equal(db_log_test_set_max_pages(l, 1000000), 0);
    assert_true(wait_for(is_healthy, l, 5000));
    struct one after = {0};
    make_row(&d, 6000);
    assert_int_equal(db_log_append(l, &d, one_cb, &after, &err), 0);
    accepted++;
    assert_true(wait_for(one_done, &after, 5000));
    assert_int_equal(atomic_load(&after.ok), 1);
    db_log_close(l);

    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), accepted);
    /* The row whose client got 503 records exactly that. */
    assert_int_equal(sql_int(dbp,
                             "SELECT count(*) FROM decisions WHERE request_id = %d AND "
                             "status = 503 AND reason = 'decision_log_unavailable' AND "
                             "decision = 'deny' AND detail LIKE 'log write failed%%'",
                             5000 + failed_at),
                     1);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions WHERE status = 503"), 1);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, (uint64_t)accepted);
}

static void busy_strict_fails_closed_then_recovers(void **state)
{
    struct gh_err err = {0};
    assert_int_equal(db_migrate(dbp, &err), 0);
    sqlite3 *blocker = NULL;
    assert_int_equal(sqlite3_open(dbp, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .busy_timeout_ms = 100};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    struct db_decision d;
    for (int i = 0; i < 3; i++) {
        make_row(&d, i * 3 + 1); /* allow rows */
        assert_int_equal(d.decision, GH_ALLOW);
        assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    }
    /* Each waiting client is answered (ok=0 -> 503) without waiting for the
     * lock to go away. */
    assert_true(wait_for(fails_done, &c, 5000));
    assert_int_equal(atomic_load(&c.ok), 0);
    assert_true(wait_for(is_unhealthy, l, 1000));
    make_row(&d, 10);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), -1);
    assert_int_equal(err.reason, GH_R_LOG_UNAVAILABLE);
    struct db_log_stats st;
    db_log_stats(l, &st);
    assert_int_equal(st.failed, 3);
    assert_int_equal(st.queue_depth, 3);
    assert_int_equal(st.committed, 0);

    usleep(300000);
    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    assert_true(wait_for(is_healthy, l, 5000));
    db_log_stats(l, &st);
    assert_int_equal(st.committed, 3);
    assert_int_equal(st.queue_depth, 0);
    /* Callbacks already ran (ok=0); they do not run a second time. */
    assert_int_equal(atomic_load(&c.ok), 0);
    assert_int_equal(atomic_load(&c.fail), 3);
    make_row(&d, 11);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    db_log_close(l);
    assert_int_equal(atomic_load(&c.ok), 1);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 4);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions WHERE status = 503 AND "
                                  "reason = 'decision_log_unavailable' AND "
                                  "detail LIKE '%%was allow allow 200%%'"),
                     3);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
}

static void busy_async_keeps_rows_at_risk(void **state)
{
    struct gh_err err = {0};
    assert_int_equal(db_migrate(dbp, &err), 0);
    sqlite3 *blocker = NULL;
    assert_int_equal(sqlite3_open(dbp, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct db_log_opts o = {
        .path = dbp, .mode = DB_ASYNC, .async_window_ms = 10, .busy_timeout_ms = 50};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    make_row(&d, 1);
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    assert_true(wait_for(is_unhealthy, l, 5000));
    /* Async keeps accepting (the client was answered already). */
    for (int i = 2; i <= 5; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    struct db_log_stats st;
    db_log_stats(l, &st);
    assert_int_equal(st.at_risk, 5);
    assert_int_equal(st.failed, 0);

    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    assert_true(wait_for(is_healthy, l, 5000));
    db_log_close(l);
    /* Rows without a waiting client keep their real verdict. */
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 5);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions WHERE status = 503"), 0);
}

static void shutdown_gives_up_and_counts(void **state)
{
    struct gh_err err = {0};
    assert_int_equal(db_migrate(dbp, &err), 0);
    sqlite3 *blocker = NULL;
    assert_int_equal(sqlite3_open(dbp, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct db_log_opts o = {.path = dbp,
                            .mode = DB_ASYNC,
                            .async_window_ms = 10,
                            .busy_timeout_ms = 50,
                            .close_timeout_ms = 300};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    struct db_decision d;
    make_row(&d, 1);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    make_row(&d, 2);
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    assert_true(wait_for(is_unhealthy, l, 5000));
    int64_t t0 = gh_mono_us();
    db_log_close(l);
    int64_t dt = gh_mono_us() - t0;
    assert_true(dt >= 250000);
    assert_true(dt < 3000000);
    assert_int_equal(atomic_load(&c.fail), 1);
    assert_int_equal(atomic_load(&c.ok), 0);
    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 0);
}

/* A row inserted behind the writer's back (same id it would use next) must
 * not wedge the writer: it chains on and audit flags the intruder. */
static void foreign_insert_does_not_wedge(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    struct db_decision d;
    make_row(&d, 0);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    while (atomic_load(&c.ok) < 1) {
        usleep(1000);
    }
    assert_int_equal(sql_exec(dbp, "INSERT INTO decisions SELECT 2, ts_us, worker, conn_id, "
                                   "request_id, session_id, client_addr, client_port, cert_thumb, "
                                   "cert_subject, token_sub, token_iss, token_jti, route, method, "
                                   "host, '/forged', decision, reason, rule_id, policy_version, "
                                   "status, bytes_in, bytes_out, latency_us, detail, row_hash, "
                                   "row_hash FROM decisions WHERE id = 1"),
                     SQLITE_OK);
    make_row(&d, 1);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    db_log_close(l);
    assert_int_equal(atomic_load(&c.ok) + atomic_load(&c.fail), 2);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 3);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 1);
    assert_int_equal(r.first_bad_id, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(disk_full_strict_recovers_without_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_strict_fails_closed_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_async_keeps_rows_at_risk, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_gives_up_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_insert_does_not_wedge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
