/*
 * test_db_alloc.c: allocation-failure ("torture") runs. SQLite's allocator
 * is replaced (SQLITE_CONFIG_MALLOC) by one that fails exactly the Nth
 * allocation; for N = 1, 2, ... each operation must fail cleanly (error
 * message, nothing half-done) or succeed, until it succeeds without hitting
 * the failure. After every run all SQLite memory is back to the baseline
 * (no connection or statement leaked); the ASan build checks the rest.
 *
 * Properties checked per run:
 *   migrate      -1 or 0, and the file holds no schema or all of it (never
 *                half a migration); a clean migrate then finishes the job.
 *   log          open fails cleanly, or every appended row is in the
 *                database after close (a failed write is retried, not lost)
 *                and the chain verifies.
 *   audit/query  -1 (error) or the right answer -- an allocation failure is
 *                never reported as tampering, and a success is never a
 *                short answer.
 *   revocation   committed (row present, 0) or not (row absent, -1).
 */
#include "db/state.h"
#include "gateway/base/log.h"
#include "test_db_util.h"

static sqlite3_mem_methods orig;
static atomic_long alloc_count;
static atomic_long fail_at; /* 0 = never */
static atomic_int failed_once;

static int should_fail(void)
{
    long n = atomic_fetch_add(&alloc_count, 1) + 1;
    long f = atomic_load(&fail_at);
    if (f > 0 && n == f) {
        atomic_store(&failed_once, 1);
        return 1;
    }
    return 0;
}

static void *x_malloc(int n)
{
    return should_fail() ? NULL : orig.xMalloc(n);
}

static void *x_realloc(void *p, int n)
{
    return should_fail() ? NULL : orig.xRealloc(p, n);
}

static void arm(long n)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&failed_once, 0);
    atomic_store(&fail_at, n);
}

static void disarm(void)
{
    atomic_store(&fail_at, 0);
}

static sqlite3_int64 baseline;

static int group_setup(void **state)
{
    static sqlite3_mem_methods wrap;
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &orig), SQLITE_OK);
    wrap = orig;
    wrap.xMalloc = x_malloc;
    wrap.xRealloc = x_realloc;
    assert_int_equal(sqlite3_config(SQLITE_CONFIG_MALLOC, &wrap), SQLITE_OK);
    assert_int_equal(sqlite3_initialize(), SQLITE_OK);
    gh_log_set_level(GH_LOG_ERROR);
    tdir_make_fast();
    /* Warm up (one-time global allocations), then take the baseline. */
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "warm.db");
    assert_int_equal(db_migrate(p, &err), 0);
    baseline = sqlite3_memory_used();
    return 0;
}

static int group_teardown(void **state)
{
    tdir_remove();
    return 0;
}

static void no_leak(void)
{
    assert_int_equal(sqlite3_memory_used(), baseline);
}

static void rm_db(const char *p)
{
    const char *sfx[] = {"", "-wal", "-shm", "-writer.lock"};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        char f[400];
        snprintf(f, sizeof(f), "%s%s", p, sfx[i]);
        unlink(f);
    }
}

static void migrate_under_alloc_failure(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "mig.db");
    rm_db(p);
    assert_int_equal(db_migrate(p, &err), 0);
    const int64_t full = sql_int(p, "SELECT count(*) FROM sqlite_schema");
    long n;
    for (n = 1; n < 100000; n++) {
        rm_db(p);
        arm(n);
        int rc = db_migrate(p, &err);
        disarm();
        no_leak();
        if (rc != 0) {
            assert_int_equal(rc, -1);
            assert_true(err.msg[0] != '\0');
        }
        /* All or nothing: no file, an empty one, or the complete schema --
         * never a half-applied migration. */
        int64_t ver = sql_int(p, "PRAGMA user_version");
        int64_t objs = sql_int(p, "SELECT count(*) FROM sqlite_schema");
        assert_true(ver == -1 || (ver == 0 && objs == 0) || (ver == 1 && objs == full));
        if (n % 25 == 0 || !atomic_load(&failed_once)) {
            /* And migrate finishes the job from there. */
            struct gh_err e2 = {0};
            assert_int_equal(db_migrate(p, &e2), 0);
            struct db_audit_result r;
            assert_int_equal(db_audit_verify(p, &r, &e2), 0);
            assert_int_equal(sql_int(p, "SELECT count(*) FROM sqlite_schema"), full);
            no_leak();
        }
        if (!atomic_load(&failed_once)) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    print_message("migrate: %ld allocation points failed cleanly\n", n - 1);
    assert_true(n > 10);
}

static void log_under_alloc_failure(void **state)
{
    char p[300];
    struct gh_err err = {0};
    tpath(p, sizeof(p), "log.db");
    rm_db(p);
    assert_int_equal(db_migrate(p, &err), 0);
    long n;
    long opens_failed = 0;
    int64_t rows = 0;
    for (n = 1; n < 100000; n++) {
        /* The same file throughout: each run appends 3 rows to the chain. */
        struct db_log_opts o = {
            .path = p, .mode = DB_STRICT, .checkpoint_every = 2, .close_timeout_ms = 30000};
        struct cb_count c = {0};
        arm(n);
        struct db_log *l = db_log_open(&o, &err);
        if (l == NULL) {
            disarm();
            opens_failed++;
            assert_true(err.msg[0] != '\0');
            no_leak();
            continue;
        }
        int accepted = 0;
        for (int i = 0; i < 3; i++) {
            struct db_decision d;
            make_row(&d, i);
            if (db_log_append(l, &d, count_cb, &c, &err) == 0) {
                accepted++;
            } else {
                /* A failed write (this run's allocation failure) made the
                 * log unhealthy: strict refuses, fail closed. */
                assert_int_equal(err.reason, GH_R_LOG_UNAVAILABLE);
            }
        }
        db_log_close(l);
        disarm();
        no_leak();
        rows += accepted;
        /* No accepted row lost: each was committed (ok=1) or answered 503
         * (ok=0) and then written anyway. */
        assert_int_equal(atomic_load(&c.ok) + atomic_load(&c.fail), accepted);
        assert_int_equal(sql_int(p, "SELECT count(*) FROM decisions"), rows);
        if (!atomic_load(&failed_once)) {
            break;
        }
    }
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(p, &r, &err), 0);
    assert_int_equal(r.checked, (uint64_t)rows);
    no_leak();
    print_message("log: %ld allocation points (%ld in open) failed cleanly, %lld rows kept\n",
                  n - 1, opens_failed, (long long)rows);
    assert_true(n > 10);
}

struct cnt {
    int n;
};

static int cnt_cb(void *arg, int64_t id, const struct db_decision *d)
{
    ((struct cnt *)arg)->n++;
    return 0;
}

static void make_read_db(char *p, size_t len)
{
    struct gh_err err = {0};
    tpath(p, len, "read.db");
    if (access(p, F_OK) == 0) {
        return;
    }
    struct db_log_opts o = {.path = p, .mode = DB_STRICT, .checkpoint_every = 5};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < 20; i++) {
        struct db_decision d;
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
    no_leak();
}

static void audit_under_alloc_failure(void **state)
{
    char p[300];
    make_read_db(p, sizeof(p));
    long n;
    for (n = 1; n < 100000; n++) {
        struct gh_err err = {0};
        struct db_audit_result r;
        arm(n);
        int rc = db_audit_verify(p, &r, &err);
        disarm();
        no_leak();
        assert_true(rc == 0 || rc == -1); /* never "tampered" */
        if (rc == 0) {
            assert_int_equal(r.checked, 20);
        } else {
            assert_true(err.msg[0] != '\0');
        }
        if (!atomic_load(&failed_once)) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    print_message("audit: %ld allocation points failed cleanly\n", n - 1);
    assert_true(n > 10);
}

static void query_under_alloc_failure(void **state)
{
    char p[300];
    make_read_db(p, sizeof(p));
    long n;
    for (n = 1; n < 100000; n++) {
        struct gh_err err = {0};
        struct cnt c = {0};
        struct db_query q = {.decision = -1, .subject = "user-1"};
        arm(n);
        int rc = db_decisions_query(p, &q, cnt_cb, &c, &err);
        disarm();
        no_leak();
        if (rc == 0) {
            assert_int_equal(c.n, 7); /* success is always the full answer */
        } else {
            assert_int_equal(rc, -1);
            assert_true(err.msg[0] != '\0');
        }
        if (!atomic_load(&failed_once)) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    print_message("query: %ld allocation points failed cleanly\n", n - 1);
    assert_true(n > 10);
}

static void revocation_under_alloc_failure(void **state)
{
    char p[300];
    make_read_db(p, sizeof(p));
    long n;
    for (n = 1; n < 100000; n++) {
        struct gh_err err = {0};
        struct db_revocation rv = {.kind = DB_REVOKE_TOKEN, .created_us = n};
        snprintf(rv.target, sizeof(rv.target), "jti-%ld", n);
        arm(n);
        int rc = db_revocation_add(p, &rv, NULL, &err);
        disarm();
        no_leak();
        /* Committed and reported, or neither. */
        int64_t present =
            sql_int(p, "SELECT count(*) FROM revocations WHERE target = 'jti-%ld'", n);
        assert_int_equal(present, rc == 0 ? 1 : 0);
        if (!atomic_load(&failed_once)) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    print_message("revocation: %ld allocation points failed cleanly\n", n - 1);
    assert_true(n > 10);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]); /* e.g. "log_*" */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrate_under_alloc_failure),
        cmocka_unit_test(log_under_alloc_failure),
        cmocka_unit_test(audit_under_alloc_failure),
        cmocka_unit_test(query_under_alloc_failure),
        cmocka_unit_test(revocation_under_alloc_failure),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
