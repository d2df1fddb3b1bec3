/*
 * bulk.c: append many rows fast, offline -- imports and benchmarks.
 *
 * The rows, ids, hash chain and checkpoints are exactly what the writer
 * thread would produce (same appender code), so audit cannot tell the
 * difference. What differs is the cost: with six secondary indexes every
 * insert touches seven B-trees at random places, which caps the writer at a
 * few tens of thousands of rows per second on small machines. Here the
 * indexes are dropped, rows go in 100 000 per transaction with
 * synchronous=OFF, and the indexes are rebuilt at the end by sorting, which
 * is two to three times faster. Durability is restored before returning: a
 * full WAL checkpoint with synchronous=FULL. If the process dies mid-way the rows
 * committed so far are a valid chain, and the next db_migrate or
 * db_log_open rebuilds the missing indexes.
 *
 * It takes the appender lock, so it refuses to run while a gateway has the
 * log open; readers keep working (slowly, without indexes) meanwhile.
 */
#include "db/db_int.h"

#include <string.h>
#include <unistd.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"

#define BULK_TXN_ROWS 100000
#define BULK_CKPT_EVERY 10000

long db_bulk_append(const char *path, int (*next)(void *arg, struct db_decision *d), void *arg,
                    struct gh_err *err)
{
    struct db_appender app = {0};
    sqlite3 *db = NULL;
    long n = 0;
    int ok = 0, dropped = 0;
    gh_err_clear(err);
    if (next == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "bulk append without a row source");
    }
    int fd = db_writer_lock(path, err);
    if (fd < 0) {
        return -1;
    }
    db = db_conn_open(path, DB_CONN_WRITE, 0, 0, err);
    if (db == NULL) {
        goto out;
    }
    struct db_chain_head h;
    if (db_exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144", err) != 0 ||
        db_chain_head_load(db, &h, err) != 0 ||
        db_appender_prepare(&app, db, BULK_CKPT_EVERY, err) != 0) {
        goto out;
    }
    app.last_id = h.last_id;
    memcpy(app.prev, h.prev, DB_HASH_LEN);
    if (db_schema_drop_indexes(db, err) != 0) {
        goto out;
    }
    dropped = 1;
    int more = 1;
    while (more) {
        if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
            goto out;
        }
        int64_t now = gh_now_us();
        for (int i = 0; i < BULK_TXN_ROWS; i++) {
            struct db_decision d;
            memset(&d, 0, sizeof(d));
            int rc = next(arg, &d);
            if (rc == 0) {
                more = 0;
                break;
            }
            if (rc < 0) {
                gh_err_set(err, GH_R_INTERNAL, "bulk append: row source failed after %ld rows", n);
                goto out;
            }
            uint8_t hash[DB_HASH_LEN];
            if (db_appender_add(&app, &d, now, hash) != 0) {
                db_sql_err(db, err, "bulk append");
                goto out;
            }
            n++;
            if (app.last_id % BULK_CKPT_EVERY == 0) {
                char hex[2 * DB_HASH_LEN + 1];
                gh_hex(hash, DB_HASH_LEN, hex);
                GH_INFO("chain checkpoint id=%lld hash=%s", (long long)app.last_id, hex);
            }
        }
        if (db_exec(db, "COMMIT", err) != 0) {
            goto out;
        }
    }
    if (n > 0 && app.last_id % BULK_CKPT_EVERY != 0) {
        if (db_appender_checkpoint(&app, gh_now_us()) != 0) {
            db_sql_err(db, err, "bulk append checkpoint");
            goto out;
        }
        char hex[2 * DB_HASH_LEN + 1];
        gh_hex(app.prev, DB_HASH_LEN, hex);
        GH_INFO("chain checkpoint id=%lld hash=%s (bulk append end)", (long long)app.last_id, hex);
    }
    ok = 1;
out:
    if (db != NULL) {
        if (!sqlite3_get_autocommit(db)) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        }
        /* Rebuild the indexes and make everything durable, also after an
         * error: the rows committed so far stay. */
        struct gh_err e2;
        if (dropped && db_schema_repair_indexes(db, 0, &e2) != 0) {
            GH_ERROR("bulk append: index rebuild failed (%s); db migrate will retry", e2.msg);
            ok = 0;
            if (err != NULL && err->msg[0] == '\0') {
                *err = e2;
            }
        }
        if (db_exec(db, "PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(TRUNCATE)", &e2) != 0) {
            GH_ERROR("bulk append: final checkpoint failed: %s", e2.msg);
            ok = 0;
            if (err != NULL && err->msg[0] == '\0') {
                *err = e2;
            }
        }
    }
    db_appender_finalize(&app);
    db_conn_close(db);
    close(fd);
    return ok ? n : -1;
}
