/*
 * retention.c: delete old decision rows without breaking the chain or
 * stalling the writer.
 *
 * The chain can only lose a prefix: retention deletes the oldest rows in id
 * order, stopping at the first row that is not older than the cutoff (ids are
 * commit order, so one late timestamp only delays retention, it never punches
 * a hole). Each batch is one short BEGIN IMMEDIATE transaction on this
 * function's own connection that deletes ids up to L and records an anchor --
 * (L, row_hash of L) -- in chain_anchor; audit then starts from the newest
 * anchor instead of the genesis, so what remains still verifies end to end.
 * Between batches the write lock is free for a few milliseconds and the
 * writer (which polls for the lock every millisecond) gets its turn, so a
 * commit waits at most about one batch. secure_delete overwrites the deleted
 * content in the file: retention is also a privacy promise.
 *
 * The anchor vouches for everything before it, so retention must never
 * anchor on rows that would not verify: deleting rows 5..7 and then purging
 * 1..15 would otherwise leave a log that audits as intact. Retention
 * therefore runs audit's own per-row checks (db_chain_walk_*, audit.c) over
 * the rows it is about to delete -- ids contiguous from the newest anchor,
 * each prev_hash the previous row_hash, each row_hash the hash of its
 * content -- and compares every checkpoint among them. It does so once over
 * the whole eligible prefix before the first batch (a broken chain deletes
 * nothing), and again inside every batch's write transaction, over exactly
 * the rows that batch deletes (nothing can change between that check and the
 * DELETE). A failed check refuses: the batch rolls back, the rows stay, and
 * the error names the first bad row.
 */
#include "db/db_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"

#define DEF_BATCH 1000
#define MAX_BATCH 100000
#define PAUSE_US 5000

/* One retention run over several batches. */
struct run {
    int64_t cutoff;
    int batch;
    int64_t anchor_rowid; /* chain_anchor row of this run, 0 before the first batch */
    int64_t last;         /* newest deleted id and its hash */
    uint8_t hash[DB_HASH_LEN];
    long deleted; /* rows deleted by the batches committed so far */
};

/* The rows retention may delete next: from + 1 .. last, verified. */
struct span {
    int64_t from; /* the newest anchor (0: the genesis) */
    int64_t last; /* newest row to delete; == from when there is none */
    uint8_t hash[DB_HASH_LEN];
    long n;
};

/* Compare every checkpoint that names a row of the span (or its anchor)
 * with that row's hash, as audit does: a chain recomputed from some row on
 * is consistent row by row, only a checkpoint shows it, and deleting the
 * checkpoint with the rows would hide it for good. 0 ok, 1 mismatch (msg
 * names the row), -1 error. The span's rows have verified, so their stored
 * row_hash is their hash. */
static int check_checkpoints(sqlite3 *db, const struct db_chain_walk *w, const struct span *sp,
                             char *msg, size_t len, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT c.row_id FROM chain_checkpoints c"
                           " LEFT JOIN decisions d ON d.id = c.row_id"
                           " WHERE c.row_id >= ?1 AND c.row_id > 0 AND c.row_id <= ?2"
                           " AND c.row_hash IS NOT"
                           " (CASE WHEN c.row_id = ?1 THEN ?3 ELSE d.row_hash END)"
                           " ORDER BY c.row_id LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "retention checkpoints");
        goto out;
    }
    sqlite3_bind_int64(st, 1, sp->from);
    sqlite3_bind_int64(st, 2, sp->last);
    sqlite3_bind_blob(st, 3, w->anchor_hash, DB_HASH_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(msg, len, "row %lld does not match a checkpoint: the chain was rewritten at or "
                           "before it",
                 (long long)sqlite3_column_int64(st, 0));
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        db_sql_err(db, err, "retention checkpoints");
    }
out:
    sqlite3_finalize(st);
    return ret;
}

/*
 * Walk the rows retention may delete next -- from the newest anchor on, in id
 * order, while older than the cutoff, at most limit rows (-1: all) -- with
 * audit's checks, inside the caller's transaction. Returns 0 with *sp filled
 * (sp->n may be 0); 1 when a check failed (msg names the first bad row);
 * -1 with err on a database error.
 */
static int verify_span(sqlite3 *db, const struct run *run, long limit, struct span *sp,
                       char *msg, size_t len, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    struct db_chain_walk w;
    int ret = -1;
    memset(sp, 0, sizeof(*sp));
    int rc = db_chain_walk_start(db, &w, err);
    if (rc != 0) {
        if (rc > 0) {
            snprintf(msg, len, "%s", w.msg);
        }
        return rc;
    }
    sp->from = w.anchor_id;
    sp->last = w.anchor_id;
    memcpy(sp->hash, w.anchor_hash, DB_HASH_LEN);

    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT %s, prev_hash, row_hash FROM decisions ORDER BY id LIMIT ?",
             db_cols_sql);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "retention select");
        goto out;
    }
    sqlite3_bind_int64(st, 1, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, DB_C_ts_us) >= run->cutoff) {
            break;
        }
        if (db_chain_walk_row(&w, st, 0) != 0) {
            snprintf(msg, len, "%s", w.msg);
            ret = 1;
            goto out;
        }
        sp->n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_sql_err(db, err, "retention select");
        goto out;
    }
    sp->last = w.next_id - 1;
    memcpy(sp->hash, w.prev, DB_HASH_LEN);
    ret = check_checkpoints(db, &w, sp, msg, len, err);
out:
    sqlite3_finalize(st);
    return ret;
}

/* Fill err for a refusal: the chain does not verify where retention would
 * delete. */
static long refuse(struct gh_err *err, const char *why, long deleted)
{
    if (deleted == 0) {
        gh_err_set(err, GH_R_INTERNAL,
                   "chain broken: %s; no rows deleted (run gatehouse audit verify)", why);
    } else {
        gh_err_set(err, GH_R_INTERNAL,
                   "chain broken: %s; stopped after deleting %ld verified rows (run gatehouse "
                   "audit verify)",
                   why, deleted);
    }
    return DB_RETENTION_BROKEN;
}

/* Check the whole eligible prefix before deleting anything, in a read
 * transaction (the writer is not held up). Returns rows eligible (0:
 * nothing to do), -1 on error, DB_RETENTION_BROKEN. */
static long verify_all(sqlite3 *db, const struct run *run, struct gh_err *err)
{
    struct span sp;
    char why[200];
    if (db_exec(db, "BEGIN", err) != 0) {
        return -1;
    }
    int rc = verify_span(db, run, -1, &sp, why, sizeof(why), err);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc < 0) {
        return -1;
    }
    if (rc > 0) {
        return refuse(err, why, 0);
    }
    return sp.n;
}

/* One batch, one transaction. Returns rows deleted (0 = nothing left to
 * delete), -1 (rolled back) or DB_RETENTION_BROKEN (rolled back: the rows
 * it would delete do not verify). */
static long one_batch(sqlite3 *db, struct run *run, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    long ret = -1;
    struct span sp;
    char why[200];
    if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
        return -1;
    }
    /* The rows this batch deletes, checked inside the write transaction. */
    int rc = verify_span(db, run, run->batch, &sp, why, sizeof(why), err);
    if (rc < 0) {
        goto out;
    }
    if (rc > 0) {
        ret = refuse(err, why, run->deleted);
        goto out;
    }
    if (sp.n == 0) {
        ret = 0;
        goto out;
    }
    /* Delete the verified span, move the anchor, drop checkpoints it
     * supersedes. */
    if (sqlite3_prepare_v2(db, "DELETE FROM decisions WHERE id > ? AND id <= ?", -1, &st, NULL) !=
        SQLITE_OK) {
        db_sql_err(db, err, "retention delete");
        goto out;
    }
    sqlite3_bind_int64(st, 1, sp.from);
    sqlite3_bind_int64(st, 2, sp.last);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "retention delete");
        goto out;
    }
    int64_t deleted = sqlite3_changes64(db);
    sqlite3_finalize(st);
    st = NULL;
    if (deleted != sp.n) { /* cannot happen inside the transaction; be safe */
        gh_err_set(err, GH_R_INTERNAL, "retention: deleted %lld rows, verified %ld",
                   (long long)deleted, sp.n);
        goto out;
    }
    /* One anchor row per retention run (history for auditors: when, which
     * cutoff, how many rows); later batches of the run move it forward. */
    const char *asql = run->anchor_rowid == 0
                           ? "INSERT INTO chain_anchor (row_id, row_hash, ts_us, cutoff_us, "
                             "rows_deleted) VALUES (?1, ?2, ?3, ?4, ?5)"
                           : "UPDATE chain_anchor SET row_id = ?1, row_hash = ?2, ts_us = ?3, "
                             "cutoff_us = ?4, rows_deleted = rows_deleted + ?5 WHERE id = ?6";
    if (sqlite3_prepare_v2(db, asql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "retention anchor");
        goto out;
    }
    sqlite3_bind_int64(st, 1, sp.last);
    sqlite3_bind_blob(st, 2, sp.hash, DB_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, gh_now_us());
    sqlite3_bind_int64(st, 4, run->cutoff);
    sqlite3_bind_int64(st, 5, deleted);
    if (run->anchor_rowid != 0) {
        sqlite3_bind_int64(st, 6, run->anchor_rowid);
    }
    if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) != 1) {
        db_sql_err(db, err, "retention anchor");
        goto out;
    }
    int64_t arow = run->anchor_rowid != 0 ? run->anchor_rowid : sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    st = NULL;
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM chain_checkpoints WHERE row_id < %lld",
             (long long)sp.last);
    if (db_exec(db, sql, err) != 0 || db_exec(db, "COMMIT", err) != 0) {
        goto out;
    }
    run->anchor_rowid = arow;
    run->last = sp.last;
    memcpy(run->hash, sp.hash, DB_HASH_LEN);
    run->deleted += (long)deleted;
    ret = (long)deleted;
out:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(db)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return ret;
}

long db_retention_run(const char *path, int days, int batch, struct gh_err *err)
{
    if (days < 1) {
        return gh_err_set(err, GH_R_INTERNAL, "retention: days must be at least 1");
    }
    if (batch <= 0) {
        batch = DEF_BATCH;
    }
    if (batch > MAX_BATCH) {
        batch = MAX_BATCH;
    }
    sqlite3 *db = db_conn_open(path, DB_CONN_WRITE, 1, 0, err);
    if (db == NULL) {
        return -1;
    }
    long ret = -1;
    struct run run = {.cutoff = gh_now_us() - (int64_t)days * 86400 * 1000000, .batch = batch};
    if (db_exec(db, "PRAGMA secure_delete = ON", err) != 0) {
        goto out;
    }
    long n = verify_all(db, &run, err);
    while (n > 0) {
        n = one_batch(db, &run, err);
        if (n > 0) {
            usleep(PAUSE_US);
        }
    }
    ret = n < 0 ? n : run.deleted;
out:
    if (run.deleted > 0) {
        char hex[2 * DB_HASH_LEN + 1];
        gh_hex(run.hash, DB_HASH_LEN, hex);
        GH_INFO("retention: deleted %ld rows older than %d days; chain anchor id=%lld hash=%s",
                run.deleted, days, (long long)run.last, hex);
    }
    db_conn_close(db);
    return ret;
}
