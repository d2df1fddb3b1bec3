/*
 * test_db_cli.c: `gatehouse db|decisions|audit` -- exit codes, output that
 * is safe for a terminal and valid JSON, strict --since parsing.
 */
#include <fcntl.h>

#include "db/cli.h"
#include "test_db_util.h"

static char dbp[300];
static char out[1 << 16];
static char errout[1 << 14];

static int setup(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "cli.db");
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

/* Read file path into buf (NUL-terminated). */
static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run db_cli_main with stdout captured into out, stderr into errout. */
static int cli(const char *a0, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a != NULL && argc < 31; a = va_arg(ap, const char *)) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    char cap[320], ecap[320];
    tpath(cap, sizeof(cap), "stdout.txt");
    tpath(ecap, sizeof(ecap), "stderr.txt");
    fflush(stdout);
    fflush(stderr);
    int saved = dup(1), esaved = dup(2);
    int fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int efd = open(ecap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0 && esaved >= 0 && efd >= 0);
    dup2(fd, 1);
    dup2(efd, 2);
    close(fd);
    close(efd);
    int rc = db_cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(esaved, 2);
    close(saved);
    close(esaved);
    slurp(cap, out, sizeof(out));
    slurp(ecap, errout, sizeof(errout));
    return rc;
}

static void fill(int n)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < n; i++) {
        struct db_decision d;
        make_row(&d, i);
        if (i == 1) {
            /* hostile path: terminal escape, quote, backslash, bad UTF-8 */
            snprintf(d.path, sizeof(d.path), "/x\x1b[2J\"\\\xff\xc3\xa9");
        }
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
}

static void since_parsing(void **state)
{
    const int64_t now = 1714564800000000LL; /* 2024-05-01T12:00:00Z */
    int64_t v = 0;
    assert_int_equal(db_cli_parse_since("1h", now, &v), 0);
    assert_int_equal(v, now - 3600000000LL);
    assert_int_equal(db_cli_parse_since("90s", now, &v), 0);
    assert_int_equal(v, now - 90000000LL);
    assert_int_equal(db_cli_parse_since("15m", now, &v), 0);
    assert_int_equal(v, now - 900000000LL);
    assert_int_equal(db_cli_parse_since("7d", now, &v), 0);
    assert_int_equal(v, now - 7 * 86400000000LL);
    assert_int_equal(db_cli_parse_since("2w", now, &v), 0);
    assert_int_equal(v, now - 14 * 86400000000LL);
    assert_int_equal(db_cli_parse_since("2024-05-01", now, &v), 0);
    assert_int_equal(v, 1714521600000000LL);
    assert_int_equal(db_cli_parse_since("2024-05-01T12:00:00Z", now, &v), 0);
    assert_int_equal(v, 1714564800000000LL);
    assert_int_equal(db_cli_parse_since("2024-05-01T12:00", now, &v), 0);
    assert_int_equal(v, 1714564800000000LL);
    assert_int_equal(db_cli_parse_since("2024-05-01 12:00:00+02:00", now, &v), 0);
    assert_int_equal(v, 1714557600000000LL);
    assert_int_equal(db_cli_parse_since("2024-05-01T12:00:00-0130", now, &v), 0);
    assert_int_equal(v, 1714570200000000LL);
    assert_int_equal(db_cli_parse_since("2024-05-01T12:00:00.5Z", now, &v), 0);
    assert_int_equal(v, 1714564800500000LL);
    assert_int_equal(db_cli_parse_since("2024-02-29T00:00:00Z", now, &v), 0);
    assert_int_equal(v, 1709164800000000LL);
    assert_int_equal(db_cli_parse_since("5200w", now, &v), 0); /* ~100 years: still fine */
    assert_int_equal(v, now - 5200 * 604800000000LL);
    assert_int_equal(db_cli_parse_since("1714521600000000", now, &v), 0);
    assert_int_equal(v, 1714521600000000LL);

    const char *bad[] = {"",
                         "h",
                         "1x",
                         "-1h",
                         "1h ",
                         " 1h",
                         "1.5h",
                         "yesterday",
                         "2024-13-01",
                         "2024-02-30",
                         "2023-02-29",
                         "2024-05-01T25:00",
                         "2024-05-01T12:60",
                         "2024-05-01T12",
                         "2024-05-01T12:00:00+",
                         "2024-05-01T12:00:00+2",
                         "2024-05-01T12:00:00.Z",
                         "2024-05-01T12:00:00ZZ",
                         "2024-5-1",
                         "1969-12-31",
                         "99999999999999999999",
                         "12345678901h",
                         "333331331w", /* overflowed before the 100-year bound */
                         "5300w",
                         NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        v = 42;
        if (db_cli_parse_since(bad[i], now, &v) != -1) {
            fail_msg("accepted bad --since '%s'", bad[i]);
        }
    }
    assert_int_equal(db_cli_parse_since(NULL, now, &v), -1);
}

static void migrate_and_retention(void **state)
{
    assert_int_equal(cli("db", "migrate", "--db", dbp, NULL), 0);
    assert_int_equal(access(dbp, F_OK), 0);
    assert_int_equal(sql_int(dbp, "PRAGMA user_version"), 1);
    fill(5); /* 2023 timestamps */
    assert_int_equal(cli("db", "retention", "--db", dbp, "--days", "0", NULL), 2);
    assert_int_equal(cli("db", "retention", "--db", dbp, NULL), 2);
    assert_int_equal(cli("db", "retention",
                         "--db="
                         "x",
                         "--days", "abc", NULL),
                     2);
    char arg[320];
    snprintf(arg, sizeof(arg), "--db=%s", dbp);
    assert_int_equal(cli("db", "retention", arg, "--days", "30", "--batch", "2", NULL), 0);
    assert_non_null(strstr(out, "deleted 5 rows"));
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 0);
    assert_int_equal(cli("db", "frobnicate", "--db", dbp, NULL), 2);
    assert_int_equal(cli("nothing", NULL), 2);
    assert_int_equal(db_cli_main(0, NULL), 2);
}

/* The review's case through the CLI: rows 5..7 deleted inside the range
 * retention would purge. Retention exits 1 (like audit finding the chain
 * broken) naming row 5, deletes nothing, and audit still reports row 5. */
static void retention_refuses_broken_chain(void **state)
{
    fill(20); /* 2023 timestamps: all older than a day */
    assert_int_equal(sql_exec(dbp, "DELETE FROM decisions WHERE id BETWEEN 5 AND 7"), SQLITE_OK);
    assert_int_equal(cli("audit", "verify", "--db", dbp, NULL), 1);
    assert_non_null(strstr(out, "CHAIN BROKEN at row 5"));
    assert_int_equal(cli("db", "retention", "--db", dbp, "--days", "1", NULL), 1);
    assert_non_null(strstr(errout, "gatehouse: db retention: chain broken: rows 5..7 are missing"));
    assert_non_null(strstr(errout, "no rows deleted"));
    assert_null(strstr(out, "deleted"));
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 17);
    assert_int_equal(cli("audit", "verify", "--db", dbp, NULL), 1);
    assert_non_null(strstr(out, "CHAIN BROKEN at row 5"));
}

static void decisions_text_and_json(void **state)
{
    fill(10);
    assert_int_equal(cli("decisions", "--db", dbp, NULL), 0);
    /* header + 10 rows, no raw escape byte reaches the terminal */
    int lines = 0;
    for (char *p = out; *p; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 11);
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out, "/x?[2J"));

    assert_int_equal(
        cli("decisions", "--db", dbp, "--json", "--limit", "3", "--oldest-first", NULL), 0);
    char *l1 = out, *l2 = strchr(l1, '\n');
    assert_non_null(l2);
    assert_int_equal(strncmp(l1, "{\"id\":1,", 8), 0);
    l2++;
    assert_int_equal(strncmp(l2, "{\"id\":2,", 8), 0);
    assert_non_null(strstr(l2, "\"path\":\"/x\\u001b[2J\\\"\\\\\\ufffd\xc3\xa9\""));
    assert_non_null(strstr(l1, "\"decision\":\"deny\",\"reason\":\"policy_deny\""));
    assert_non_null(strstr(l1, "\"time\":\"2023-11-14T22:13:20.000Z\""));

    assert_int_equal(cli("decisions", "--db", dbp, "--json", "--subject", "user-1", "--decision",
                         "allow", "--route", "wiki", NULL),
                     0);
    lines = 0;
    for (char *p = out; *p; p++) {
        lines += *p == '\n';
    }
    /* i % 3 == 1 and odd i: 1, 7 */
    assert_int_equal(lines, 2);
    assert_int_equal(cli("decisions", "--db", dbp, "--json", "--reason", "policy_deny", "--since",
                         "2023-11-14T22:13:20.005Z", NULL),
                     0);
    lines = 0;
    for (char *p = out; *p; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, 2); /* denies are i % 3 == 0; after 5 ms: i = 6, 9 */
    assert_int_equal(cli("decisions", "--db", dbp, "--explain", "--subject", "x", NULL), 0);
    assert_non_null(strstr(out, "decisions_sub_ts"));

    assert_int_equal(cli("decisions", "--db", dbp, "--decision", "maybe", NULL), 2);
    assert_int_equal(cli("decisions", "--db", dbp, "--reason", "bogus", NULL), 2);
    assert_int_equal(cli("decisions", "--db", dbp, "--since", "last tuesday", NULL), 2);
    assert_int_equal(cli("decisions", "--db", dbp, "--limit", "0", NULL), 2);
    assert_int_equal(cli("decisions", "--db", dbp, "--limit", NULL), 2);
    assert_int_equal(cli("decisions", "--db", dbp, "--frob", "1", NULL), 2);
    assert_int_equal(cli("decisions", "stray", NULL), 2);
    assert_int_equal(cli("decisions", NULL), 2);
    char missing[320];
    tpath(missing, sizeof(missing), "missing.db");
    assert_int_equal(cli("decisions", "--db", missing, NULL), 2);
}

static void audit_exit_codes(void **state)
{
    fill(12);
    assert_int_equal(cli("audit", "verify", "--db", dbp, NULL), 0);
    assert_non_null(strstr(out, "intact: 12 rows checked"));
    assert_int_equal(cli("audit", "verify", "--db", dbp, "--json", NULL), 0);
    assert_non_null(strstr(out, "\"result\":\"intact\",\"rows_checked\":12,\"first_bad_id\":null"));

    char hex[65], arg[100];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT row_hash FROM decisions WHERE id = 12", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    gh_hex(sqlite3_column_blob(st, 0), 32, hex);
    sqlite3_finalize(st);
    sqlite3_close(db);
    snprintf(arg, sizeof(arg), "12:%s", hex);
    assert_int_equal(cli("audit", "verify", "--db", dbp, "--checkpoint", arg, NULL), 0);
    snprintf(arg, sizeof(arg), "11:%s", hex);
    assert_int_equal(cli("audit", "verify", "--db", dbp, "--checkpoint", arg, NULL), 1);
    assert_int_equal(cli("audit", "verify", "--db", dbp, "--checkpoint", "12", NULL), 2);
    assert_int_equal(cli("audit", "verify", "--db", dbp, "--checkpoint", "x:abc", NULL), 2);

    assert_int_equal(sql_exec(dbp, "DROP TRIGGER decisions_append_only;"
                                   " UPDATE decisions SET status = 299 WHERE id = 5"),
                     SQLITE_OK);
    assert_int_equal(cli("audit", "verify", "--db", dbp, NULL), 1);
    assert_non_null(strstr(out, "CHAIN BROKEN at row 5"));
    assert_non_null(strstr(out, "4 rows checked"));
    assert_int_equal(cli("audit", "verify", "--db", dbp, "--json", NULL), 1);
    assert_non_null(strstr(out, "\"result\":\"broken\",\"rows_checked\":4,\"first_bad_id\":5"));

    char missing[320];
    tpath(missing, sizeof(missing), "missing.db");
    assert_int_equal(cli("audit", "verify", "--db", missing, NULL), 2);
    assert_int_equal(cli("audit", "verify", "--db", missing, "--json", NULL), 2);
    assert_non_null(strstr(out, "\"result\":\"error\""));
    assert_int_equal(cli("audit", NULL), 2);
    assert_int_equal(cli("audit", "frob", "--db", dbp, NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(since_parsing),
        cmocka_unit_test_setup_teardown(migrate_and_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_refuses_broken_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(decisions_text_and_json, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_exit_codes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
