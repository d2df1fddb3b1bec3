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
};

/* One batch, one transaction. Returns rows deleted (0 = nothing left to
 * delete) or -1 (rolled back). */
static long one_batch(sqlite3 *db, struct run *run, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    long ret = -1;
    int64_t last = 0, n = 0;
    uint8_t hash[DB_HASH_LEN];
    if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
        return -1;
    }
    if (sqlite3_prepare_v2(db, "SELECT id, ts_us, row_hash FROM decisions ORDER BY id LIMIT ?", -1,
                           &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "retention select");
        goto out;
    }
    sqlite3_bind_int(st, 1, run->batch);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 1) >= run->cutoff) {
            break;
        }
        if (sqlite3_column_bytes(st, 2) != DB_HASH_LEN) {
            gh_err_set(err, GH_R_INTERNAL,
                       "retention: row %lld has a malformed hash; run gatehouse audit verify",
                       (long long)sqlite3_column_int64(st, 0));
            goto out;
        }
        last = sqlite3_column_int64(st, 0);
        memcpy(hash, sqlite3_column_blob(st, 2), DB_HASH_LEN);
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_sql_err(db, err, "retention select");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (n == 0) {
        ret = 0;
        goto out;
    }
    /* Delete the prefix, move the anchor, drop checkpoints it supersedes. */
    if (sqlite3_prepare_v2(db, "DELETE FROM decisions WHERE id <= ?", -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "retention delete");
        goto out;
    }
    sqlite3_bind_int64(st, 1, last);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "retention delete");
        goto out;
    }
    int64_t deleted = sqlite3_changes64(db);
    sqlite3_finalize(st);
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
    sqlite3_bind_int64(st, 1, last);
    sqlite3_bind_blob(st, 2, hash, DB_HASH_LEN, SQLITE_STATIC);
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
             (long long)last);
    if (db_exec(db, sql, err) != 0 || db_exec(db, "COMMIT", err) != 0) {
        goto out;
    }
    run->anchor_rowid = arow;
    run->last = last;
    memcpy(run->hash, hash, DB_HASH_LEN);
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
    long total = 0;
    if (db_exec(db, "PRAGMA secure_delete = ON", err) != 0) {
        total = -1;
        goto out;
    }
    struct run run = {.cutoff = gh_now_us() - (int64_t)days * 86400 * 1000000, .batch = batch};
    for (;;) {
        long n = one_batch(db, &run, err);
        if (n < 0) {
            total = -1;
            break;
        }
        if (n == 0) {
            break;
        }
        total += n;
        usleep(PAUSE_US);
    }
    if (total > 0) {
        char hex[2 * DB_HASH_LEN + 1];
        gh_hex(run.hash, DB_HASH_LEN, hex);
        GH_INFO("retention: deleted %ld rows older than %d days; chain anchor id=%lld hash=%s",
                total, days, (long long)run.last, hex);
    }
out:
    db_conn_close(db);
    return total;
}
