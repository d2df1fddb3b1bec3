/*
 * log.c: the decision-log writer -- a bounded queue, one writer thread, group
 * commit and the hash chain.
 *
 * Why this shape: workers must never wait for SQLite, and strict mode must
 * not release a response before its row is durable. So a worker copies its
 * row by value into a fixed ring (no allocation, O(1) under one mutex) and
 * returns; the writer thread takes up to max_batch rows, writes them in one
 * BEGIN IMMEDIATE ... COMMIT with a reused prepared INSERT (one fsync for the
 * whole batch in strict mode), and only then runs each row's callback.
 * While the writer waits on the disk, more rows queue up and form the next
 * batch: the busier the gateway, the bigger the batches.
 *
 * The writer processes rows in place: slots [head, head+count) belong to the
 * writer, producers only write the slot after them. A batch leaves the ring
 * only after its COMMIT returned, so a failed write loses nothing: the rows
 * stay queued and are retried with backoff (100 ms doubling to 1 s). While
 * writes fail the log is unhealthy: strict mode refuses new rows
 * (GH_R_LOG_UNAVAILABLE, fail closed) and answers every queued row that has
 * a callback with ok=0 at once -- the gateway then sends 503 -- after
 * rewriting that row to what the client got (deny, 503,
 * decision_log_unavailable, the original verdict kept in detail). The row is
 * still written once the disk recovers. Async mode keeps accepting rows until
 * the queue is full and says loudly how many are at risk.
 *
 * WAL checkpoints (copying committed pages from the WAL into the database
 * file, with its fsync) run on a second thread with its own connection, not
 * after a commit on the writer: SQLite's PASSIVE checkpoint works alongside
 * a writer, so the writer only ever appends to the WAL. On a small VM this
 * doubled the rows per second the writer sustains (bench/db_bench.c).
 *
 * The hash chain is computed here, on the writer thread, in id order: the
 * writer assigns ids itself (last id + 1), so chain order is id order. A
 * failed batch rolls the chain state back with the transaction. A lock file
 * (path-writer.lock, flock) keeps a second writer process off the chain.
 */
#include "db/db_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"

#define DEF_QUEUE 8192
#define MAX_QUEUE (1 << 20)
#define DEF_WINDOW_MS 50
#define DEF_BATCH 512
#define DEF_CKPT 10000
#define DEF_CLOSE_MS 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
/* WAL growth (pages) that wakes the checkpointer: SQLite's own default
 * auto-checkpoint size, counted from the last wake-up, not from the start of
 * the WAL (see wal_hook). */
#define CKPT_WAL_PAGES 1000
/* WAL size at which the writer checkpoints too, so the WAL can restart. */
#define RESTART_WAL_PAGES 8000

struct slot {
    struct db_decision d;
    db_commit_cb cb;
    void *arg;
    int64_t enq_us;            /* monotonic, for the async window */
    uint8_t hash[DB_HASH_LEN]; /* row_hash, filled by the writer */
};

struct db_log {
    char *path;
    enum db_mode mode;
    int cap, max_batch, window_ms, ckpt_every, busy_ms, close_ms;
    int fsync_commits; /* synchronous=FULL on the writer (strict + sync full) */
    void (*batch_done)(void *arg);
    void *batch_arg;

    /* Shared state, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot *ring;
    int head, count;
    int stopping;
    int64_t stop_deadline; /* monotonic µs, set by db_log_close */
    int healthy;
    int64_t retry_at; /* monotonic µs of the next retry; 0 = none */
    struct db_log_stats st;
    int mu_init, cv_init;

    _Atomic int64_t max_pages; /* test hook; 0 = nothing to apply */

    /* WAL checkpointer thread: its own connection, woken by the writer's
     * WAL hook; ck_kick/ck_stop under ck_mu. */
    pthread_t ck_thr;
    int ck_started, ck_init;
    pthread_mutex_t ck_mu;
    pthread_cond_t ck_cv;
    int ck_kick, ck_stop;
    int ck_kicked_at; /* WAL pages at the last wake-up; writer thread only */
    sqlite3 *ck_db;
    pthread_mutex_t ck_run; /* held while a checkpoint of this log runs */

    /* Writer thread only (and open/close while it is not running). */
    pthread_t thr;
    int thr_started;
    int lock_fd;
    sqlite3 *db;
    struct db_appender app; /* prepared INSERTs + chain position */
    sqlite3_stmt *begin, *commit, *rollback;
    int64_t last_ckpt_id;
    int64_t busy_start;
    int backoff_ms;
    uint64_t fail_streak;
    int64_t last_warn_us;
    struct gh_err werr;
};

/* ---- setup --------------------------------------------------------------- */

/* Writer busy handler: poll every millisecond (SQLite's default sleeps grow
 * to 100 ms) so a short retention transaction delays commits by about its own
 * length, and give up after busy_ms so the failure path takes over. */
static int busy_cb(void *arg, int n)
{
    struct db_log *l = arg;
    int64_t now = gh_mono_us();
    if (n == 0) {
        l->busy_start = now;
    }
    if (now - l->busy_start >= (int64_t)l->busy_ms * 1000) {
        return 0;
    }
    usleep(1000);
    return 1;
}

static int prepare(struct db_log *l, struct gh_err *err)
{
    if (db_appender_prepare(&l->app, l->db, l->ckpt_every, err) != 0) {
        return -1;
    }
    if (sqlite3_prepare_v3(l->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &l->begin,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &l->commit, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(l->db, "ROLLBACK", -1, SQLITE_PREPARE_PERSISTENT, &l->rollback, NULL) !=
            SQLITE_OK) {
        return db_sql_err(l->db, err, "prepare decision log statements");
    }
    return 0;
}

/* Position the appender at the chain head; loud: log what looks wrong. */
static int load_head(struct db_log *l, int loud, struct gh_err *err)
{
    struct db_chain_head h;
    if (db_chain_head_load(l->db, &h, err) != 0) {
        return -1;
    }
    if (loud && !h.head_verifies) {
        GH_ERROR("db: chain head row %lld does not verify (edited?): run gatehouse audit "
                 "verify; new rows chain after it",
                 (long long)h.row_id);
    }
    if (loud && h.ckpt_id > h.row_id && h.ckpt_id > h.anchor_id) {
        GH_ERROR("db: tail truncated: checkpoint row %lld but the last row is %lld: run "
                 "gatehouse audit verify; new rows start after the gap",
                 (long long)h.ckpt_id, (long long)h.row_id);
    }
    l->app.last_id = h.last_id;
    memcpy(l->app.prev, h.prev, DB_HASH_LEN);
    l->last_ckpt_id = h.ckpt_id;
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static struct slot *slot_at(struct db_log *l, int start, int i)
{
    return &l->ring[(start + i) % l->cap];
}

/* Write rows [start, start+n) in one transaction. On failure nothing is
 * written, the chain position is as before and werr says why. */
static int commit_batch(struct db_log *l, int start, int n)
{
    int64_t saved_last = l->app.last_id;
    uint8_t saved_prev[DB_HASH_LEN];
    memcpy(saved_prev, l->app.prev, DB_HASH_LEN);
    const char *what = "begin";

    int64_t pages = atomic_exchange(&l->max_pages, 0);
    if (pages > 0) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages);
        if (sqlite3_exec(l->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            what = "max_page_count";
            goto fail;
        }
    }
    if (!sqlite3_get_autocommit(l->db)) {
        /* A ROLLBACK that failed (out of memory) left a transaction open. */
        sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (step_done(l->begin) != 0) {
        goto fail;
    }
    what = "insert";
    int64_t now = gh_now_us();
    for (int i = 0; i < n;) {
        enum { CHUNK = 4 * DB_APPEND_MULTI };
        const struct db_decision *ds[CHUNK];
        uint8_t *hs[CHUNK];
        int m = n - i < CHUNK ? n - i : CHUNK;
        for (int k = 0; k < m; k++) {
            struct slot *s = slot_at(l, start, i + k);
            ds[k] = &s->d;
            hs[k] = s->hash;
        }
        if (db_appender_add_many(&l->app, ds, m, now, hs) != 0) {
            goto fail;
        }
        i += m;
    }
    what = "commit";
    if (step_done(l->commit) != 0) {
        goto fail;
    }
    return 0;
fail:
    db_sql_err(l->db, &l->werr, what);
    l->werr.reason = GH_R_LOG_UNAVAILABLE;
    int code = sqlite3_extended_errcode(l->db);
    if (!sqlite3_get_autocommit(l->db)) {
        step_done(l->rollback);
    }
    l->app.last_id = saved_last;
    memcpy(l->app.prev, saved_prev, DB_HASH_LEN);
    if ((code & 0xff) == SQLITE_CONSTRAINT) {
        /* Someone wrote rows behind our back (a manual INSERT): chain on
         * top of them; audit will judge them. */
        struct gh_err e2;
        if (load_head(l, 0, &e2) != 0) {
            l->app.last_id = saved_last;
            memcpy(l->app.prev, saved_prev, DB_HASH_LEN);
        }
    }
    return -1;
}

static void log_checkpoints(struct db_log *l, int start, int n, int64_t first_id)
{
    for (int i = 0; i < n; i++) {
        int64_t id = first_id + i;
        if (id % l->ckpt_every == 0) {
            char hex[2 * DB_HASH_LEN + 1];
            gh_hex(slot_at(l, start, i)->hash, DB_HASH_LEN, hex);
            GH_INFO("chain checkpoint id=%lld hash=%s", (long long)id, hex);
            l->last_ckpt_id = id;
        }
    }
}

/* The client of a row with a pending callback is about to get 503: make the
 * row say so, keeping the verdict it would have had in detail. */
static void rewrite_unavailable(struct db_decision *d)
{
    char was[sizeof(d->detail)];
    int k = snprintf(was, sizeof(was), "log write failed, answered 503; was %s %s %d%s%s",
                     d->decision == GH_ALLOW ? "allow" : "deny", gh_reason_name(d->reason),
                     d->status, d->detail[0] != '\0' ? "; " : "", d->detail);
    if (k >= (int)sizeof(was)) {
        /* The original detail is cut: the verdict part comes first and fits. */
        memcpy(was + sizeof(was) - 4, "...", 4);
    }
    memcpy(d->detail, was, sizeof(d->detail));
    d->decision = GH_DENY;
    d->reason = GH_R_LOG_UNAVAILABLE;
    d->status = gh_reason_status(GH_R_LOG_UNAVAILABLE);
}

static void on_failure(struct db_log *l)
{
    pthread_mutex_lock(&l->mu);
    int was_healthy = l->healthy;
    l->healthy = 0;
    int total = l->count;
    int head = l->head;
    pthread_mutex_unlock(&l->mu);

    /* Every queued row whose client still waits gets its answer now. */
    uint64_t fired = 0;
    for (int i = 0; i < total; i++) {
        struct slot *s = slot_at(l, head, i);
        if (s->cb != NULL) {
            /* A request's client is answered 503 now, and its row says so.
             * An admin action (worker -1) has already taken effect and was
             * answered: its row keeps what happened, and is still written. */
            if (s->d.worker >= 0) {
                rewrite_unavailable(&s->d);
            }
            db_commit_cb cb = s->cb;
            s->cb = NULL;
            cb(s->arg, 0);
            fired++;
        }
    }
    if (fired > 0 && l->batch_done != NULL) {
        l->batch_done(l->batch_arg);
    }

    l->fail_streak++;
    l->backoff_ms = l->backoff_ms == 0 ? BACKOFF_MIN_MS : l->backoff_ms * 2;
    if (l->backoff_ms > BACKOFF_MAX_MS) {
        l->backoff_ms = BACKOFF_MAX_MS;
    }
    int64_t now = gh_mono_us();
    pthread_mutex_lock(&l->mu);
    l->st.failed += fired;
    l->st.write_errors++;
    l->retry_at = now + (int64_t)l->backoff_ms * 1000;
    int depth = l->count;
    pthread_mutex_unlock(&l->mu);

    if (was_healthy) {
        GH_ERROR("decision log write failed: %s; %d rows kept in memory and retried; %s",
                 l->werr.msg, depth,
                 l->mode == DB_STRICT ? "refusing new requests until the log recovers (503)"
                                      : "rows are at risk until the log recovers");
        l->last_warn_us = now;
    } else if (now - l->last_warn_us >= 1000000) {
        GH_WARN("decision log still failing (%llu attempts): %s; %d rows %s",
                (unsigned long long)l->fail_streak, l->werr.msg, depth,
                l->mode == DB_ASYNC ? "accepted but not committed are at risk" : "held for retry");
        l->last_warn_us = now;
    }
}

static void on_success(struct db_log *l, int start, int n, int64_t first_id, int64_t took_us)
{
    if (l->mode != DB_NOOP) {
        log_checkpoints(l, start, n, first_id);
    }
    int fired = 0;
    for (int i = 0; i < n; i++) {
        struct slot *s = slot_at(l, start, i);
        if (s->cb != NULL) {
            db_commit_cb cb = s->cb;
            s->cb = NULL;
            cb(s->arg, 1);
            fired = 1;
        }
    }
    if (fired && l->batch_done != NULL) {
        l->batch_done(l->batch_arg);
    }
    pthread_mutex_lock(&l->mu);
    l->head = (l->head + n) % l->cap;
    l->count -= n;
    l->st.committed += (uint64_t)n;
    l->st.batches++;
    l->st.commit_us += took_us > 0 ? (uint64_t)took_us : 0;
    l->st.last_id = l->app.last_id;
    int recovered = !l->healthy;
    l->healthy = 1;
    l->retry_at = 0;
    pthread_mutex_unlock(&l->mu);
    if (recovered) {
        GH_INFO("decision log recovered after %llu failed attempts; writing again",
                (unsigned long long)l->fail_streak);
    }
    l->fail_streak = 0;
    l->backoff_ms = 0;
}

/* Shutdown with a write that keeps failing: the one place rows are lost,
 * after close_timeout_ms of retries, counted and logged. Called with mu held
 * and returns with it held; callbacks run unlocked (appends are already
 * refused: stopping is set). */
static void give_up_locked(struct db_log *l)
{
    int n = l->count;
    int head = l->head;
    pthread_mutex_unlock(&l->mu);
    uint64_t fired = 0;
    for (int i = 0; i < n; i++) {
        struct slot *s = slot_at(l, head, i);
        if (s->cb != NULL) {
            db_commit_cb cb = s->cb;
            s->cb = NULL;
            cb(s->arg, 0);
            fired++;
        }
    }
    if (fired > 0 && l->batch_done != NULL) {
        l->batch_done(l->batch_arg);
    }
    GH_ERROR("decision log: giving up at shutdown after %d ms of write failures: %d rows LOST "
             "(%s)",
             l->close_ms, n, l->werr.msg);
    pthread_mutex_lock(&l->mu);
    l->head = (l->head + n) % l->cap;
    l->count -= n;
    l->st.failed += fired;
    l->st.lost += (uint64_t)n;
}

static void final_checkpoint(struct db_log *l)
{
    if (l->db == NULL || l->app.last_id == 0 || l->app.last_id == l->last_ckpt_id || !l->healthy) {
        return;
    }
    if (db_appender_checkpoint(&l->app, gh_now_us()) != 0) {
        GH_WARN("decision log: shutdown checkpoint not written: %s", sqlite3_errmsg(l->db));
        return;
    }
    char hex[2 * DB_HASH_LEN + 1];
    gh_hex(l->app.prev, DB_HASH_LEN, hex);
    GH_INFO("chain checkpoint id=%lld hash=%s (shutdown)", (long long)l->app.last_id, hex);
    l->last_ckpt_id = l->app.last_id;
}

static void wait_until(struct db_log *l, int64_t mono_us)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(mono_us / 1000000);
    ts.tv_nsec = (long)(mono_us % 1000000) * 1000;
    pthread_cond_timedwait(&l->cv, &l->mu, &ts);
}

static void *writer_main(void *arg)
{
    struct db_log *l = arg;
    pthread_setname_np(pthread_self(), "gh-logwriter");
    if (l->mode == DB_STRICT) {
        /* Every strict response waits for this thread: on a busy machine it
         * must not queue behind workers, clients and the checkpointer. Needs
         * CAP_SYS_NICE; without it the default priority stays (no error). */
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), -5);
    }
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int64_t now = gh_mono_us();
        if (l->count == 0) {
            if (l->stopping) {
                break;
            }
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        if (l->retry_at != 0) {
            /* Failing: retry after the backoff; at shutdown, until the deadline. */
            if (l->stopping && now >= l->stop_deadline) {
                give_up_locked(l);
                continue;
            }
            if (now < l->retry_at) {
                int64_t until = l->retry_at;
                if (l->stopping && l->stop_deadline < until) {
                    until = l->stop_deadline;
                }
                wait_until(l, until);
                continue;
            }
        }
        if (l->mode == DB_ASYNC && !l->stopping && l->count < l->max_batch) {
            int64_t due = l->ring[l->head].enq_us + (int64_t)l->window_ms * 1000;
            if (now < due) {
                wait_until(l, due);
                continue;
            }
        }
        int start = l->head;
        int n = l->count < l->max_batch ? l->count : l->max_batch;
        pthread_mutex_unlock(&l->mu);

        int64_t first_id = l->app.last_id + 1;
        int64_t t0 = gh_mono_us();
        int rc = l->mode == DB_NOOP ? 0 : commit_batch(l, start, n);
        if (rc == 0) {
            on_success(l, start, n, first_id, gh_mono_us() - t0);
        } else {
            on_failure(l);
        }
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    final_checkpoint(l);
    return NULL;
}

/* ---- WAL checkpointer ---------------------------------------------------- */

/* Runs on the writer thread after each commit (SQLite's WAL hook, which
 * replaces the built-in auto-checkpoint). Normally only a wake-up for the
 * checkpointer, once per CKPT_WAL_PAGES of WAL growth: a pass after every
 * commit would copy the same hot pages (the right-most leaves, rewritten by
 * every batch) and sync the database file once per commit -- measured at 5x
 * the checkpointer's CPU per row in strict mode.
 *
 * But the WAL file only starts over from its beginning when a write
 * transaction begins with every frame already checkpointed, which a
 * background checkpointer racing a busy writer rarely sees -- the file would
 * grow without bound (it reached gigabytes). So past RESTART_WAL_PAGES the
 * writer waits for a background pass in progress, then checkpoints itself,
 * here, between its transactions: the background has copied most frames, the
 * rest is short, and the next BEGIN restarts the WAL. That bounds the WAL to
 * about RESTART_WAL_PAGES plus one batch. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct db_log *l = arg;
    (void)name;
    if (pages < l->ck_kicked_at) {
        l->ck_kicked_at = 0; /* the WAL started over */
    }
    if (pages >= RESTART_WAL_PAGES) {
        pthread_mutex_lock(&l->ck_run);
        /* BUSY (another process checkpointing): again after the next commit. */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_unlock(&l->ck_run);
    } else if (pages - l->ck_kicked_at >= CKPT_WAL_PAGES) {
        l->ck_kicked_at = pages;
        pthread_mutex_lock(&l->ck_mu);
        l->ck_kick = 1;
        pthread_cond_signal(&l->ck_cv);
        pthread_mutex_unlock(&l->ck_mu);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    struct db_log *l = arg;
    int warned = 0;
    pthread_setname_np(pthread_self(), "gh-checkpoint");
    /* Default priority on purpose: past RESTART_WAL_PAGES the writer waits
     * for a pass of this thread (wal_hook), so a starved checkpointer would
     * stall every strict response (priority inversion). */
    pthread_mutex_lock(&l->ck_mu);
    while (!l->ck_stop) {
        if (!l->ck_kick) {
            pthread_cond_wait(&l->ck_cv, &l->ck_mu);
            continue;
        }
        l->ck_kick = 0;
        pthread_mutex_unlock(&l->ck_mu);
        /* PASSIVE: copies what it can, waits for no reader or writer. */
        pthread_mutex_lock(&l->ck_run);
        int rc = sqlite3_wal_checkpoint_v2(l->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_unlock(&l->ck_run);
        pthread_mutex_lock(&l->mu);
        l->st.wal_checkpoints++;
        pthread_mutex_unlock(&l->mu);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && !warned) {
            GH_WARN("decision log: WAL checkpoint failed: %s (retried on the next commit)",
                    sqlite3_errmsg(l->ck_db));
            warned = 1;
        }
        pthread_mutex_lock(&l->ck_mu);
    }
    pthread_mutex_unlock(&l->ck_mu);
    return NULL;
}

static void ckpt_stop(struct db_log *l)
{
    if (l->ck_started) {
        pthread_mutex_lock(&l->ck_mu);
        l->ck_stop = 1;
        pthread_cond_signal(&l->ck_cv);
        pthread_mutex_unlock(&l->ck_mu);
        pthread_join(l->ck_thr, NULL);
        l->ck_started = 0;
    }
}

static int ckpt_start(struct db_log *l, struct gh_err *err)
{
    if (pthread_mutex_init(&l->ck_mu, NULL) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "decision log: mutex init failed");
    }
    if (pthread_mutex_init(&l->ck_run, NULL) != 0) {
        pthread_mutex_destroy(&l->ck_mu);
        return gh_err_set(err, GH_R_INTERNAL, "decision log: mutex init failed");
    }
    if (pthread_cond_init(&l->ck_cv, NULL) != 0) {
        pthread_mutex_destroy(&l->ck_run);
        pthread_mutex_destroy(&l->ck_mu);
        return gh_err_set(err, GH_R_INTERNAL, "decision log: cond init failed");
    }
    l->ck_init = 1;
    l->ck_db = db_conn_open(l->path, DB_CONN_WRITE, l->fsync_commits, l->busy_ms, err);
    if (l->ck_db == NULL) {
        return -1;
    }
    if (pthread_create(&l->ck_thr, NULL, ckpt_main, l) != 0) {
        return gh_err_set(err, GH_R_INTERNAL, "decision log: cannot start checkpoint thread");
    }
    l->ck_started = 1;
    sqlite3_wal_hook(l->db, wal_hook, l);
    return 0;
}

/* ---- public -------------------------------------------------------------- */

static void log_free(struct db_log *l)
{
    ckpt_stop(l);
    if (l->db != NULL) {
        sqlite3_wal_hook(l->db, NULL, NULL);
    }
    db_conn_close(l->ck_db);
    if (l->ck_init) {
        pthread_cond_destroy(&l->ck_cv);
        pthread_mutex_destroy(&l->ck_run);
        pthread_mutex_destroy(&l->ck_mu);
    }
    db_appender_finalize(&l->app);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    sqlite3_finalize(l->rollback);
    db_conn_close(l->db);
    if (l->lock_fd >= 0) {
        close(l->lock_fd);
    }
    if (l->cv_init) {
        pthread_cond_destroy(&l->cv);
    }
    if (l->mu_init) {
        pthread_mutex_destroy(&l->mu);
    }
    free(l->ring);
    free(l->path);
    free(l);
}

static int def(int v, int d)
{
    return v > 0 ? v : d;
}

struct db_log *db_log_open(const struct db_log_opts *o, struct gh_err *err)
{
    struct db_log *l = NULL;
    if (o == NULL || (int)o->mode < DB_STRICT || o->mode > DB_NOOP) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: bad options");
        return NULL;
    }
    if (o->mode != DB_NOOP && (o->path == NULL || o->path[0] == '\0')) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: no database path");
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: out of memory");
        return NULL;
    }
    l->lock_fd = -1;
    l->mode = o->mode;
    l->fsync_commits = o->mode == DB_STRICT && !o->no_fsync;
    l->batch_done = o->batch_done;
    l->batch_arg = o->batch_arg;
    l->cap = def(o->queue_size, DEF_QUEUE);
    if (l->cap > MAX_QUEUE) {
        l->cap = MAX_QUEUE;
    }
    l->max_batch = def(o->max_batch, DEF_BATCH);
    if (l->max_batch > l->cap) {
        l->max_batch = l->cap;
    }
    l->window_ms = def(o->async_window_ms, DEF_WINDOW_MS);
    l->ckpt_every = def(o->checkpoint_every, DEF_CKPT);
    l->busy_ms = def(o->busy_timeout_ms, DB_BUSY_TIMEOUT_MS);
    l->close_ms = def(o->close_timeout_ms, DEF_CLOSE_MS);
    l->healthy = 1;
    l->st.queue_size = l->cap;
    l->path = strdup(o->path != NULL ? o->path : "");
    l->ring = calloc((size_t)l->cap, sizeof(struct slot));
    if (l->path == NULL || l->ring == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: mutex init failed");
        goto fail;
    }
    l->mu_init = 1;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: condattr init failed");
        goto fail;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int crc = pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (crc != 0) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: cond init failed");
        goto fail;
    }
    l->cv_init = 1;

    if (l->mode != DB_NOOP) {
        l->lock_fd = db_writer_lock(l->path, err);
        if (l->lock_fd < 0) {
            goto fail;
        }
        l->db = db_conn_open(l->path, DB_CONN_WRITE, l->fsync_commits, l->busy_ms, err);
        if (l->db == NULL) {
            goto fail;
        }
        sqlite3_busy_handler(l->db, busy_cb, l);
        if (db_schema_repair_indexes(l->db, 1, err) != 0 || prepare(l, err) != 0 ||
            load_head(l, 1, err) != 0 || ckpt_start(l, err) != 0) {
            goto fail;
        }
        l->st.last_id = l->app.last_id;
        char hex[2 * DB_HASH_LEN + 1];
        gh_hex(l->app.prev, DB_HASH_LEN, hex);
        GH_INFO("decision log open: %s mode=%s head id=%lld hash=%s", l->path,
                l->mode == DB_STRICT ? "strict" : "async", (long long)l->app.last_id, hex);
    }
    if (pthread_create(&l->thr, NULL, writer_main, l) != 0) {
        gh_err_set(err, GH_R_INTERNAL, "decision log: cannot start writer thread");
        goto fail;
    }
    l->thr_started = 1;
    return l;
fail:
    log_free(l);
    return NULL;
}

void db_log_close(struct db_log *l)
{
    if (l == NULL) {
        return;
    }
    if (l->thr_started) {
        pthread_mutex_lock(&l->mu);
        l->stopping = 1;
        l->stop_deadline = gh_mono_us() + (int64_t)l->close_ms * 1000;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thr, NULL);
    }
    log_free(l);
}

/* Producers may hand us fields without a terminator; never let one run
 * into the next field (or off the struct) when the writer measures it. */
static void terminate_fields(struct db_decision *d)
{
#define TERM(f) d->f[sizeof(d->f) - 1] = '\0'
    TERM(session_id);
    TERM(client_addr);
    TERM(cert_thumb);
    TERM(cert_subject);
    TERM(token_sub);
    TERM(token_iss);
    TERM(token_jti);
    TERM(route);
    TERM(method);
    TERM(host);
    TERM(path);
    TERM(rule_id);
    TERM(policy_version);
    TERM(detail);
#undef TERM
}

static int append(struct db_log *l, const struct db_decision *d, db_commit_cb cb, void *arg,
                  int *wake, struct gh_err *err)
{
    if (l == NULL || d == NULL) {
        return gh_err_set(err, GH_R_LOG_UNAVAILABLE, "decision log not open");
    }
    int64_t now = gh_mono_us();
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        return gh_err_set(err, GH_R_SHUTDOWN, "decision log closing");
    }
    if (l->mode == DB_STRICT && !l->healthy) {
        l->st.refused++;
        pthread_mutex_unlock(&l->mu);
        return gh_err_set(err, GH_R_LOG_UNAVAILABLE, "decision log unavailable (writes failing)");
    }
    if (l->count >= l->cap) {
        l->st.rejected++;
        pthread_mutex_unlock(&l->mu);
        return gh_err_set(err, GH_R_OVERLOADED, "decision log queue full (%d rows)", l->cap);
    }
    struct slot *s = slot_at(l, l->head, l->count);
    memcpy(&s->d, d, sizeof(*d));
    terminate_fields(&s->d);
    s->cb = cb;
    s->arg = arg;
    s->enq_us = now;
    l->count++;
    l->st.queued++;
    if (l->count == 1 || l->count == l->max_batch) {
        if (wake != NULL) {
            *wake = 1;
        } else {
            pthread_cond_signal(&l->cv);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int db_log_append(struct db_log *l, const struct db_decision *d, db_commit_cb cb, void *arg,
                  struct gh_err *err)
{
    return append(l, d, cb, arg, NULL, err);
}

int db_log_append_nowake(struct db_log *l, const struct db_decision *d, db_commit_cb cb, void *arg,
                         int *wake, struct gh_err *err)
{
    *wake = 0;
    return append(l, d, cb, arg, wake, err);
}

void db_log_wake(struct db_log *l)
{
    if (l == NULL) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void db_log_stats(struct db_log *l, struct db_log_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (l == NULL) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    *out = l->st;
    out->queue_depth = l->count;
    out->queue_size = l->cap;
    out->healthy = l->healthy;
    out->at_risk = l->mode == DB_ASYNC ? (uint64_t)l->count : 0;
    pthread_mutex_unlock(&l->mu);
}

int db_log_test_set_max_pages(struct db_log *l, int64_t pages)
{
    if (l == NULL || l->mode == DB_NOOP || pages <= 0) {
        return -1;
    }
    atomic_store(&l->max_pages, pages);
    return 0;
}
