/*
 * test_db_schema.c: migrations run once, are idempotent, set WAL, and refuse
 * files that are not (or not yet / no longer) a Gatehouse database.
 */
#include "test_db_util.h"

static int setup(void **state)
{
    tdir_make();
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

static void migrate_is_idempotent(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "m.db");
    assert_int_equal(db_migrate(p, &err), 0);
    assert_int_equal(sql_int(p, "PRAGMA user_version"), 1);
    assert_int_equal(sql_int(p, "PRAGMA application_id"), 0x47484442);
    assert_int_equal(sql_int(p, "SELECT count(*) FROM schema_migrations"), 1);
    int64_t objects = sql_int(p, "SELECT count(*) FROM sqlite_schema");
    assert_true(objects > 10);

    /* Second and third run change nothing. */
    assert_int_equal(db_migrate(p, &err), 0);
    assert_int_equal(db_migrate(p, &err), 0);
    assert_int_equal(sql_int(p, "SELECT count(*) FROM schema_migrations"), 1);
    assert_int_equal(sql_int(p, "SELECT count(*) FROM sqlite_schema"), objects);

    /* WAL is a property of the file. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Every table the design names exists, with the decision columns. */
    const char *tables[] = {"decisions", "chain_checkpoints", "chain_anchor",
                            "sessions",  "revocations",       "policy_versions",
                            "kv"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        assert_int_equal(
            sql_int(p, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='%s'",
                    tables[i]),
            1);
    }
    assert_int_equal(sql_int(p, "SELECT count(*) FROM pragma_table_info('decisions')"), 28);
    assert_int_equal(
        sql_int(p, "SELECT count(*) FROM pragma_index_list('decisions') WHERE origin='c'"), 6);
}

static void migrate_rebuilds_missing_index(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "idx.db");
    assert_int_equal(db_migrate(p, &err), 0);
    /* What an interrupted bulk load leaves behind. */
    assert_int_equal(sql_exec(p, "CREATE TABLE keep AS SELECT name, sql FROM sqlite_schema "
                                 "WHERE type = 'index' AND tbl_name = 'decisions' AND sql IS "
                                 "NOT NULL; DROP INDEX decisions_sub_ts; DROP INDEX "
                                 "decisions_session_ts"),
                     SQLITE_OK);
    assert_int_equal(sql_int(p, "SELECT count(*) FROM keep"), 6);
    assert_int_equal(db_migrate(p, &err), 0);
    /* Back, and defined exactly as the migration defined them. */
    assert_int_equal(sql_int(p, "SELECT count(*) FROM keep k JOIN sqlite_schema s ON "
                                "s.name = k.name AND s.sql = k.sql"),
                     6);
}

static void refuses_foreign_database(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "other.db");
    assert_int_equal(sql_exec(p, "CREATE TABLE customers (id INTEGER PRIMARY KEY)"), SQLITE_OK);
    assert_int_equal(db_migrate(p, &err), -1);
    assert_non_null(strstr(err.msg, "not a gatehouse database"));
    /* And it was not touched. */
    assert_int_equal(sql_int(p, "SELECT count(*) FROM sqlite_schema"), 1);
    assert_int_equal(sql_int(p, "PRAGMA user_version"), 0);

    tpath(p, sizeof(p), "appid.db");
    assert_int_equal(sql_exec(p, "PRAGMA application_id = 1234"), SQLITE_OK);
    assert_int_equal(db_migrate(p, &err), -1);
    assert_non_null(strstr(err.msg, "not a gatehouse database"));
}

static void refuses_newer_schema(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "new.db");
    assert_int_equal(db_migrate(p, &err), 0);
    assert_int_equal(sql_exec(p, "PRAGMA user_version = 99"), SQLITE_OK);
    assert_int_equal(db_migrate(p, &err), -1);
    assert_non_null(strstr(err.msg, "newer"));
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(p, &r, &err), -1);
    assert_non_null(strstr(err.msg, "newer"));
}

static void refuses_garbage_and_missing(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "garbage.db");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++) {
        fputs("this is not a database file at all. ", f);
    }
    fclose(f);
    assert_int_equal(db_migrate(p, &err), -1);
    assert_true(strlen(err.msg) > 0);

    /* Readers never create a database. */
    tpath(p, sizeof(p), "missing.db");
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(p, &r, &err), -1);
    assert_int_equal(access(p, F_OK), -1);

    assert_int_equal(db_migrate(NULL, &err), -1);
    assert_int_equal(db_migrate("", &err), -1);
}

static void reader_needs_migrated_file(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "empty.db");
    assert_int_equal(sql_exec(p, "PRAGMA user_version = 0"), SQLITE_OK);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(p, &r, &err), -1);
    assert_non_null(strstr(err.msg, "migrate"));
}

static void read_only_open_after_writer_closed(void **state)
{
    /* WAL readers open with SQLITE_OPEN_READONLY; that must work when no
     * -wal/-shm file exists (gateway stopped) too. */
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "ro.db");
    assert_int_equal(db_migrate(p, &err), 0);
    char wal[320];
    snprintf(wal, sizeof(wal), "%s-wal", p);
    assert_int_equal(access(wal, F_OK), -1);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(p, &r, &err), 0);
    assert_int_equal(r.checked, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrate_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_rebuilds_missing_index, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_foreign_database, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_garbage_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_needs_migrated_file, setup, teardown),
        cmocka_unit_test_setup_teardown(read_only_open_after_writer_closed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
