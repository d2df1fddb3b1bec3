/*
 * test_db_bulk.c: db_bulk_append writes the same rows and hashes the writer
 * would, continues the writer's chain (and the writer continues its), keeps
 * out while a writer runs, and leaves indexes and chain intact on abort.
 */
#include "test_db_util.h"

static char dbp[300];

static int setup(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "bulk.db");
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

struct src {
    int i, n, fail_at;
};

static int next_row(void *arg, struct db_decision *d)
{
    struct src *s = arg;
    if (s->fail_at > 0 && s->i == s->fail_at) {
        return -1;
    }
    if (s->i >= s->n) {
        return 0;
    }
    make_row(d, s->i++);
    return 1;
}

static void writer_rows(const char *path, int from, int to)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = path, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = from; i < to; i++) {
        struct db_decision d;
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
}

static int64_t n_indexes(void)
{
    return sql_int(dbp, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
                        "tbl_name = 'decisions' AND sql IS NOT NULL");
}

static void same_chain_as_writer(void **state)
{
    struct gh_err err = {0};
    char wp[300];
    tpath(wp, sizeof(wp), "writer.db");
    writer_rows(wp, 0, 100);
    struct src s = {.n = 100};
    assert_int_equal(db_bulk_append(dbp, next_row, &s, &err), 100);
    /* Row for row, byte for byte the same hashes. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    char sql[600];
    snprintf(sql, sizeof(sql), "ATTACH '%s' AS w", wp);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM decisions b JOIN w.decisions a "
                                        "USING (id) WHERE a.row_hash = b.row_hash",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 100);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(n_indexes(), 6);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, 100);
}

static void continues_and_is_continued(void **state)
{
    struct gh_err err = {0};
    writer_rows(dbp, 0, 10);
    struct src s = {.i = 10, .n = 25010};
    assert_int_equal(db_bulk_append(dbp, next_row, &s, &err), 25000);
    writer_rows(dbp, 25010, 25015);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 25015);
    assert_int_equal(sql_int(dbp, "SELECT max(id) FROM decisions"), 25015);
    /* checkpoints: writer shutdown at 10, bulk at 10000 and 20000 and its
     * end (25010), writer shutdown at 25015 */
    assert_int_equal(sql_int(dbp, "SELECT group_concat(row_id) = '10,10000,20000,25010,25015' "
                                  "FROM (SELECT row_id FROM chain_checkpoints ORDER BY row_id)"),
                     1);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, 25015);
    assert_int_equal(r.checkpoints, 5);
    assert_int_equal(n_indexes(), 6);
    /* Queries use the rebuilt indexes. */
    char plan[1024];
    struct db_query q = {.decision = 0, .subject = "user-0", .since_us = 1};
    assert_int_equal(db_decisions_explain(dbp, &q, plan, sizeof(plan), &err), 0);
    assert_non_null(strstr(plan, "decisions_sub_ts"));
}

static void refused_while_writer_runs(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct src s = {.n = 10};
    assert_int_equal(db_bulk_append(dbp, next_row, &s, &err), -1);
    assert_non_null(strstr(err.msg, "already open"));
    assert_int_equal(s.i, 0);
    db_log_close(l);
    assert_int_equal(db_bulk_append(dbp, NULL, &s, &err), -1);
}

static void abort_keeps_chain_and_indexes(void **state)
{
    struct gh_err err = {0};
    writer_rows(dbp, 0, 5);
    struct src s = {.i = 5, .n = 1000, .fail_at = 50};
    assert_int_equal(db_bulk_append(dbp, next_row, &s, &err), -1);
    assert_non_null(strstr(err.msg, "row source failed"));
    /* The open transaction was rolled back; the committed rows stand. */
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 5);
    assert_int_equal(n_indexes(), 6);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    writer_rows(dbp, 5, 7);
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(same_chain_as_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(continues_and_is_continued, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_while_writer_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_keeps_chain_and_indexes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
