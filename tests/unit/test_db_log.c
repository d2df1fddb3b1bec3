/*
 * test_db_log.c: the writer thread -- rows land with every field, strict
 * callbacks run only after COMMIT, a full queue refuses with OVERLOADED, the
 * async window bounds the commit delay, NOOP writes nothing, a concurrent
 * reader does not block the writer, and a second writer is locked out.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "test_db_util.h"

static char dbp[300];

static int setup(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "log.db");
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

struct collect {
    int n;
    int64_t ids[64];
    struct db_decision rows[64];
};

static int collect_cb(void *arg, int64_t id, const struct db_decision *d)
{
    struct collect *c = arg;
    if (c->n < 64) {
        c->ids[c->n] = id;
        c->rows[c->n] = *d;
        c->n++;
    }
    return 0;
}

static void assert_row_equal(const struct db_decision *a, const struct db_decision *b)
{
    assert_int_equal(a->ts_us, b->ts_us);
    assert_int_equal(a->worker, b->worker);
    assert_int_equal(a->conn_id, b->conn_id);
    assert_int_equal(a->request_id, b->request_id);
    assert_string_equal(a->session_id, b->session_id);
    assert_string_equal(a->client_addr, b->client_addr);
    assert_int_equal(a->client_port, b->client_port);
    assert_string_equal(a->cert_thumb, b->cert_thumb);
    assert_string_equal(a->cert_subject, b->cert_subject);
    assert_string_equal(a->token_sub, b->token_sub);
    assert_string_equal(a->token_iss, b->token_iss);
    assert_string_equal(a->token_jti, b->token_jti);
    assert_string_equal(a->route, b->route);
    assert_string_equal(a->method, b->method);
    assert_string_equal(a->host, b->host);
    assert_string_equal(a->path, b->path);
    assert_int_equal(a->decision, b->decision);
    assert_int_equal(a->reason, b->reason);
    assert_string_equal(a->rule_id, b->rule_id);
    assert_string_equal(a->policy_version, b->policy_version);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->bytes_in, b->bytes_in);
    assert_int_equal(a->bytes_out, b->bytes_out);
    assert_int_equal(a->latency_us, b->latency_us);
    assert_string_equal(a->detail, b->detail);
}

static void append_n_rows_all_fields(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        struct db_decision d;
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    }
    db_log_close(l);
    assert_int_equal(atomic_load(&c.ok), N);
    assert_int_equal(atomic_load(&c.fail), 0);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), N);
    assert_int_equal(sql_int(dbp, "SELECT min(id) FROM decisions"), 1);
    assert_int_equal(sql_int(dbp, "SELECT max(id) FROM decisions"), N);
    /* Stored as names, readable by auditors without the enum. */
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions WHERE decision='deny' AND "
                                  "reason='policy_deny' AND status=403"),
                     17);

    struct collect got = {0};
    struct db_query q = {.decision = -1, .oldest_first = 1, .limit = 64};
    assert_int_equal(db_decisions_query(dbp, &q, collect_cb, &got, &err), 0);
    assert_int_equal(got.n, N);
    for (int i = 0; i < N; i++) {
        struct db_decision want;
        make_row(&want, i);
        assert_int_equal(got.ids[i], i + 1);
        assert_row_equal(&got.rows[i], &want);
    }
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, N);
}

static void unterminated_and_maximal_fields(void **state)
{
    /* A producer that fills a field to the brim without a NUL must not make
     * the writer read into the next field. */
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    make_row(&d, 1);
    memset(d.path, 'p', sizeof(d.path));
    memset(d.detail, 'd', sizeof(d.detail));
    memset(d.session_id, 's', sizeof(d.session_id));
    d.reason = (enum gh_reason)9999;  /* out of range: stored as "unknown" */
    d.decision = (enum gh_decision)7; /* not an explicit allow: a deny */
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    db_log_close(l);
    assert_int_equal(sql_int(dbp, "SELECT length(path) FROM decisions"), sizeof(d.path) - 1);
    assert_int_equal(sql_int(dbp, "SELECT length(detail) FROM decisions"), sizeof(d.detail) - 1);
    assert_int_equal(sql_int(dbp, "SELECT length(session_id) FROM decisions"), 32);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions WHERE reason='unknown' AND "
                                  "decision='deny'"),
                     1);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
}

/* In the callback, the row must already be visible to another connection. */
struct visible_ctx {
    int64_t want_id;
    atomic_int seen, missing;
};

static int count_rows_cb(void *arg, int64_t id, const struct db_decision *d)
{
    (*(int *)arg)++;
    return 0;
}

static void visible_cb(void *arg, int ok)
{
    struct visible_ctx *v = arg;
    struct gh_err err = {0};
    int n = 0;
    struct db_query q = {.decision = -1, .after_id = v->want_id - 1, .limit = 1, .oldest_first = 1};
    if (ok && db_decisions_query(dbp, &q, count_rows_cb, &n, &err) == 0 && n == 1) {
        atomic_fetch_add(&v->seen, 1);
    } else {
        atomic_fetch_add(&v->missing, 1);
    }
}

static void strict_callback_after_commit(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .max_batch = 4};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    enum { N = 20 };
    struct visible_ctx v[N];
    memset(v, 0, sizeof(v));
    for (int i = 0; i < N; i++) {
        struct db_decision d;
        make_row(&d, i);
        v[i].want_id = i + 1; /* ids are assigned in append order */
        assert_int_equal(db_log_append(l, &d, visible_cb, &v[i], &err), 0);
    }
    db_log_close(l);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&v[i].seen), 1);
        assert_int_equal(atomic_load(&v[i].missing), 0);
    }
}

static void wait_committed(struct db_log *l, uint64_t n, int timeout_ms, struct db_log_stats *st);

/* Another connection holds the write lock: the writer is stuck, the queue
 * fills, and the next append is refused -- counted, never dropped. */
static void queue_full_overloaded(void **state)
{
    struct gh_err err = {0};
    assert_int_equal(db_migrate(dbp, &err), 0);
    sqlite3 *blocker = NULL;
    assert_int_equal(sqlite3_open(dbp, &blocker), SQLITE_OK);
    assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    struct db_log_opts o = {
        .path = dbp, .mode = DB_STRICT, .queue_size = 4, .busy_timeout_ms = 20000};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    struct db_decision d;
    for (int i = 0; i < 4; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    }
    make_row(&d, 4);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), -1);
    assert_int_equal(err.reason, GH_R_OVERLOADED);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), -1);
    struct db_log_stats st;
    db_log_stats(l, &st);
    assert_int_equal(st.queued, 4);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.queue_depth, 4);
    assert_int_equal(st.queue_size, 4);
    assert_int_equal(st.committed, 0);
    assert_int_equal(st.commit_us, 0);
    assert_int_equal(atomic_load(&c.ok), 0);

    /* The writer sits in its transaction, waiting for the lock: that wait
     * is commit time too (log.commit_us), as a strict response sees it. */
    usleep(300 * 1000);
    assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(blocker);
    wait_committed(l, 4, 10000, &st);
    assert_int_equal(st.committed, 4);
    assert_true(st.batches >= 1);
    assert_true(st.commit_us >= 250 * 1000);
    assert_true(st.commit_us < 20 * 1000 * 1000);
    db_log_close(l);
    assert_int_equal(atomic_load(&c.ok), 4);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 4);
}

static int committed_1(void *arg)
{
    struct db_log_stats st;
    db_log_stats(arg, &st);
    return st.committed >= 1;
}

/* Poll the stats until n rows are committed or timeout_ms pass; the last
 * snapshot is left in *st. */
static void wait_committed(struct db_log *l, uint64_t n, int timeout_ms, struct db_log_stats *st)
{
    for (int waited = 0;; waited += 5) {
        db_log_stats(l, st);
        if (st->committed >= n || waited >= timeout_ms) {
            return;
        }
        usleep(5000);
    }
}

static void async_window(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_ASYNC, .async_window_ms = 300};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    make_row(&d, 0);
    int64_t t0 = gh_mono_us();
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    usleep(50000);
    struct db_log_stats st;
    db_log_stats(l, &st);
    /* Held back for the window (a bigger batch), at risk meanwhile. */
    assert_int_equal(st.committed, 0);
    assert_int_equal(st.at_risk, 1);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 0);
    assert_true(wait_for(committed_1, l, 5000));
    int64_t dt = gh_mono_us() - t0;
    assert_true(dt >= 300000);
    assert_true(dt < 3000000);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 1);
    db_log_stats(l, &st);
    assert_int_equal(st.at_risk, 0);
    db_log_close(l);
}

static void async_full_batch_commits_early_and_close_flushes(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {
        .path = dbp, .mode = DB_ASYNC, .async_window_ms = 60000, .max_batch = 4};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    for (int i = 0; i < 4; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    assert_true(wait_for(committed_1, l, 5000));
    make_row(&d, 4);
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    int64_t t0 = gh_mono_us();
    db_log_close(l); /* must not wait out the 60 s window */
    assert_true(gh_mono_us() - t0 < 5000000);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 5);
}

static void noop_mode_writes_nothing(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_NOOP};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    struct db_decision d;
    for (int i = 0; i < 100; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    }
    db_log_close(l);
    assert_int_equal(atomic_load(&c.ok), 100);
    assert_int_equal(access(dbp, F_OK), -1);
    o.path = NULL; /* NOOP needs no path */
    l = db_log_open(&o, &err);
    assert_non_null(l);
    assert_int_equal(db_log_test_set_max_pages(l, 10), -1);
    db_log_close(l);
}

static void second_writer_locked_out(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_log *l2 = db_log_open(&o, &err);
    assert_null(l2);
    assert_non_null(strstr(err.msg, "already open"));
    db_log_close(l);
    l2 = db_log_open(&o, &err);
    assert_non_null(l2);
    db_log_close(l2);
    db_log_close(NULL);
}

static void bad_options(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = NULL, .mode = DB_STRICT};
    assert_null(db_log_open(&o, &err));
    assert_null(db_log_open(NULL, &err));
    o.path = dbp;
    o.mode = (enum db_mode)7;
    assert_null(db_log_open(&o, &err));
    struct db_decision d;
    make_row(&d, 0);
    assert_int_equal(db_log_append(NULL, &d, NULL, NULL, &err), -1);
    assert_int_equal(err.reason, GH_R_LOG_UNAVAILABLE);
}

/* A reader holding a read transaction (a snapshot) does not stop commits. */
static void reader_does_not_block_writer(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    struct db_decision d;
    make_row(&d, 0);
    assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);

    sqlite3 *rd = NULL;
    sqlite3_stmt *st = NULL;
    struct db_log_stats s;
    do {
        usleep(1000);
        db_log_stats(l, &s);
    } while (s.committed < 1);
    assert_int_equal(sqlite3_open_v2(dbp, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(rd, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(rd, "SELECT count(*) FROM decisions", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_reset(st);

    int64_t t0 = gh_mono_us();
    for (int i = 1; i <= 200; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
    }
    while (atomic_load(&c.ok) < 201 && gh_mono_us() - t0 < 10000000) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&c.ok), 201);
    assert_true(gh_mono_us() - t0 < 10000000);
    /* The reader still sees its snapshot... */
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_reset(st);
    assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    /* ...and the new state after it ends its transaction. */
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 201);
    sqlite3_finalize(st);
    sqlite3_close(rd);
    db_log_close(l);
}

/* One batch of 100 rows goes in as multi-row INSERTs (16 rows a statement,
 * then single rows); one row per commit goes in one at a time. Both must
 * give the same ids, the same chain (every prev_hash and row_hash) and the
 * same chain checkpoints -- including checkpoints that fall inside a
 * multi-row statement. */
struct one_ctx {
    struct cb_count *c;
    int want;
};

static int reached(void *arg)
{
    struct one_ctx *o = arg;
    return atomic_load(&o->c->ok) >= o->want;
}

static void multi_row_batches_chain_like_single_rows(void **state)
{
    enum { N = 100 };
    char single[300];
    tpath(single, sizeof(single), "single.db");
    struct gh_err err = {0};
    struct db_decision d;

    /* Everything in one async batch: the writer flushes it at close. */
    struct db_log_opts o = {.path = dbp, .mode = DB_ASYNC, .async_window_ms = 60000,
                            .max_batch = 512, .checkpoint_every = 7};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < N; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);

    /* One row per commit: wait for each row's callback before the next. */
    struct db_log_opts o1 = {.path = single, .mode = DB_STRICT, .checkpoint_every = 7};
    l = db_log_open(&o1, &err);
    assert_non_null(l);
    struct cb_count c = {0};
    for (int i = 0; i < N; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, count_cb, &c, &err), 0);
        struct one_ctx oc = {&c, i + 1};
        assert_true(wait_for(reached, &oc, 10000));
    }
    db_log_close(l);

    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), N);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof(sql), "ATTACH '%s' AS s", single);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT count(*), sum(a.row_hash = b.row_hash AND a.prev_hash = "
                           "b.prev_hash AND a.token_jti = b.token_jti),"
                           " (SELECT group_concat(row_id) FROM (SELECT row_id FROM "
                           "main.chain_checkpoints ORDER BY row_id)),"
                           " (SELECT group_concat(row_id) FROM (SELECT row_id FROM "
                           "s.chain_checkpoints ORDER BY row_id))"
                           " FROM main.decisions a JOIN s.decisions b USING (id)",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), N);
    assert_int_equal(sqlite3_column_int(st, 1), N);
    /* 7, 14, ..., 98 plus the shutdown checkpoint at 100, in both. */
    assert_string_equal((const char *)sqlite3_column_text(st, 2),
                        "7,14,21,28,35,42,49,56,63,70,77,84,91,98,100");
    assert_string_equal((const char *)sqlite3_column_text(st, 2),
                        (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, N);
}

static void checkpoints_every_n(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .checkpoint_every = 10};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    for (int i = 0; i < 35; i++) {
        make_row(&d, i);
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
    /* 10, 20, 30 and the shutdown checkpoint at 35. */
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM chain_checkpoints"), 4);
    assert_int_equal(sql_int(dbp, "SELECT group_concat(row_id) = '10,20,30,35' FROM "
                                  "(SELECT row_id FROM chain_checkpoints ORDER BY row_id)"),
                     1);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM chain_checkpoints c JOIN decisions d ON "
                                  "d.id = c.row_id AND d.row_hash = c.row_hash"),
                     4);
    /* Reopen: ids continue, the chain continues. */
    l = db_log_open(&o, &err);
    assert_non_null(l);
    make_row(&d, 99);
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    db_log_close(l);
    assert_int_equal(sql_int(dbp, "SELECT max(id) FROM decisions"), 36);
    assert_int_equal(sql_int(dbp, "SELECT a.row_hash = b.prev_hash FROM decisions a, decisions b "
                                  "WHERE a.id = 35 AND b.id = 36"),
                     1);
    struct db_audit_result r;
    assert_int_equal(db_audit_verify(dbp, &r, &err), 0);
    assert_int_equal(r.checked, 36);
    assert_int_equal(r.checkpoints, 5);
}

struct wal_watch {
    atomic_int done;
    long long max;
};

static void *watch_wal(void *arg)
{
    struct wal_watch *w = arg;
    char wal[320];
    snprintf(wal, sizeof(wal), "%s-wal", dbp);
    while (!atomic_load(&w->done)) {
        struct stat st;
        if (stat(wal, &st) == 0 && st.st_size > w->max) {
            w->max = st.st_size;
        }
        usleep(5000);
    }
    return NULL;
}

/* Under sustained writes the WAL must start over now and then; a
 * checkpointer that only ever runs alongside the writer never lets it (the
 * file grew to gigabytes before the writer took part). */
static void wal_stays_bounded(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_ASYNC, .queue_size = 16384, .max_batch = 1024};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct wal_watch w = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, watch_wal, &w), 0);
    for (int i = 0; i < 150000; i++) {
        struct db_decision d;
        make_row(&d, i);
        snprintf(d.session_id, sizeof(d.session_id), "%032x", (unsigned)(i * 2654435761u));
        while (db_log_append(l, &d, NULL, NULL, &err) != 0) {
            assert_int_equal(err.reason, GH_R_OVERLOADED);
            usleep(200);
        }
    }
    db_log_close(l);
    atomic_store(&w.done, 1);
    pthread_join(t, NULL);
    print_message("max WAL size %lld bytes\n", w.max);
    assert_true(w.max > 0);
    assert_true(w.max < 128LL * 1024 * 1024);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 150000);
}

/* The checkpointer is woken once per CKPT_WAL_PAGES (1000) pages of WAL
 * growth, not after every commit: a pass per commit copied the same hot
 * pages and synced the database file once per small strict batch. 2000
 * one-row commits write several pages each (table leaf, index leaves,
 * header); woken per commit, the checkpointer ran 69 passes here (wake-ups
 * coalesce while a pass runs), woken per 1000 pages 13. */
static void checkpointer_runs_per_wal_growth_not_per_commit(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .no_fsync = 1, .max_batch = 1};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < 2000; i++) {
        struct db_decision d;
        make_row(&d, i);
        snprintf(d.session_id, sizeof(d.session_id), "%032x", (unsigned)(i * 2654435761u));
        while (db_log_append(l, &d, NULL, NULL, &err) != 0) {
            assert_int_equal(err.reason, GH_R_OVERLOADED);
            usleep(200);
        }
    }
    struct db_log_stats st;
    wait_committed(l, 2000, 30000, &st);
    assert_int_equal(st.committed, 2000);
    print_message("%llu commits, %llu checkpointer passes\n", (unsigned long long)st.batches,
                  (unsigned long long)st.wal_checkpoints);
    assert_true(st.batches >= 1000); /* small batches, as intended */
    assert_true(st.wal_checkpoints >= 1);
    assert_true(st.wal_checkpoints <= st.batches / 50); /* 13 measured; 69 when woken per commit */
    db_log_close(l);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 2000);
    (void)state;
}

/* The gateway queues a loop pass's rows without waking the writer and wakes
 * it once at the end of the pass: the rows form one transaction. */
static void nowake_rows_wait_for_one_wake_and_share_a_commit(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .no_fsync = 1};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    /* One ordinary row first, so the writer is past its start-up and waits. */
    struct db_decision d0;
    make_row(&d0, 0);
    assert_int_equal(db_log_append(l, &d0, NULL, NULL, &err), 0);
    struct db_log_stats st;
    wait_committed(l, 1, 5000, &st);
    assert_int_equal(st.committed, 1);
    int wakes[3];
    for (int i = 0; i < 3; i++) {
        struct db_decision d;
        make_row(&d, i + 1);
        assert_int_equal(db_log_append_nowake(l, &d, NULL, NULL, &wakes[i], &err), 0);
    }
    assert_int_equal(wakes[0], 1); /* the writer may be waiting for the first row */
    assert_int_equal(wakes[1], 0);
    assert_int_equal(wakes[2], 0);
    usleep(100000);
    db_log_stats(l, &st);
    assert_int_equal(st.committed, 1); /* nobody woke the writer */
    db_log_wake(l);
    wait_committed(l, 4, 5000, &st);
    assert_int_equal(st.committed, 4);
    assert_int_equal(st.batches, 2);
    db_log_close(l);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 4);
    (void)state;
}

static void update_is_refused_by_trigger(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct db_decision d;
    make_row(&d, 0);
    assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    db_log_close(l);
    assert_int_equal(d.status, 403);
    assert_int_not_equal(sql_exec(dbp, "UPDATE decisions SET status = 200"), SQLITE_OK);
    assert_int_equal(sql_int(dbp, "SELECT status FROM decisions"), 403);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(append_n_rows_all_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(unterminated_and_maximal_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(strict_callback_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_full_overloaded, setup, teardown),
        cmocka_unit_test_setup_teardown(async_window, setup, teardown),
        cmocka_unit_test_setup_teardown(async_full_batch_commits_early_and_close_flushes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(noop_mode_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(second_writer_locked_out, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(reader_does_not_block_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(checkpoints_every_n, setup, teardown),
        cmocka_unit_test_setup_teardown(nowake_rows_wait_for_one_wake_and_share_a_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(checkpointer_runs_per_wal_growth_not_per_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(multi_row_batches_chain_like_single_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(wal_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(update_is_refused_by_trigger, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
