/*
 * chain.c: where the hash chain continues, and who may extend it.
 *
 * Exactly one appender may extend the chain at a time (ids and prev_hash are
 * assigned by the appender, not by SQLite), so the writer thread and the bulk
 * loader both take an exclusive flock on "<db>-writer.lock" first -- a second
 * gateway on the same file, or an import while one runs, fails at open
 * instead of forking the chain.
 *
 * The head is the last row (its id and row_hash), else the newest retention
 * anchor, else the genesis (id 0, 32 zero bytes). Ids continue after the
 * highest id the database ever vouched for: a checkpoint or anchor beyond the
 * last row means rows were cut off while no writer ran, and new rows then
 * leave that gap visible to audit instead of reusing the ids.
 */
#include "db/db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int db_writer_lock(const char *path, struct gh_err *err)
{
    char lp[4096];
    int k = snprintf(lp, sizeof(lp), "%s-writer.lock", path);
    if (k < 0 || (size_t)k >= sizeof(lp)) {
        return gh_err_set(err, GH_R_INTERNAL, "database path too long");
    }
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return gh_err_set(err, GH_R_INTERNAL, "open %s: %s", lp, strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return gh_err_set(err, GH_R_INTERNAL,
                          "%s is already open for writing by another gatehouse (%s)", path,
                          e == EWOULDBLOCK ? "lock held" : strerror(e));
    }
    return fd;
}

/* Single-row query helper: 1 row, 0 none, -1 error. */
static int step_one(sqlite3 *db, sqlite3_stmt *st, struct gh_err *err, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return db_sql_err(db, err, what);
}

int db_chain_head_load(sqlite3 *db, struct db_chain_head *h, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    memset(h, 0, sizeof(*h));
    h->head_verifies = 1;
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT %s, prev_hash, row_hash FROM decisions ORDER BY id DESC LIMIT 1", db_cols_sql);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "read chain head");
        goto out;
    }
    int rc = step_one(db, st, err, "read chain head");
    if (rc < 0) {
        goto out;
    }
    if (rc == 1) {
        struct db_val v[DB_NCOLS];
        db_row_from_stmt(st, 0, v);
        h->row_id = v[DB_C_id].i;
        const void *ph = sqlite3_column_blob(st, DB_NCOLS);
        int phn = sqlite3_column_bytes(st, DB_NCOLS);
        const void *rh = sqlite3_column_blob(st, DB_NCOLS + 1);
        int rhn = sqlite3_column_bytes(st, DB_NCOLS + 1);
        if (rhn != DB_HASH_LEN || phn != DB_HASH_LEN) {
            gh_err_set(err, GH_R_INTERNAL,
                       "chain head row %lld has a malformed hash: run gatehouse audit verify",
                       (long long)h->row_id);
            goto out;
        }
        uint8_t x[DB_HASH_LEN];
        db_row_hash(ph, v, x);
        h->head_verifies = memcmp(x, rh, DB_HASH_LEN) == 0;
        memcpy(h->prev, rh, DB_HASH_LEN);
    }
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(db,
                           "SELECT row_id, row_hash FROM chain_anchor ORDER BY row_id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "read chain anchor");
        goto out;
    }
    rc = step_one(db, st, err, "read chain anchor");
    if (rc < 0) {
        goto out;
    }
    if (rc == 1) {
        h->anchor_id = sqlite3_column_int64(st, 0);
        if (h->row_id == 0 && sqlite3_column_bytes(st, 1) == DB_HASH_LEN) {
            memcpy(h->prev, sqlite3_column_blob(st, 1), DB_HASH_LEN);
        }
    }
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(row_id), 0) FROM chain_checkpoints", -1, &st,
                           NULL) != SQLITE_OK ||
        step_one(db, st, err, "read chain checkpoints") != 1) {
        db_sql_err(db, err, "read chain checkpoints");
        goto out;
    }
    h->ckpt_id = sqlite3_column_int64(st, 0);

    h->last_id = h->row_id;
    if (h->anchor_id > h->last_id) {
        h->last_id = h->anchor_id;
    }
    if (h->ckpt_id > h->last_id) {
        h->last_id = h->ckpt_id;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

int db_appender_prepare(struct db_appender *a, sqlite3 *db, int ckpt_every, struct gh_err *err)
{
    char sql[1024];
    char qs[2 * (DB_NCOLS + 2)];
    for (int i = 0; i < DB_NCOLS + 2; i++) {
        qs[2 * i] = '?';
        qs[2 * i + 1] = i + 1 < DB_NCOLS + 2 ? ',' : '\0';
    }
    memset(a, 0, sizeof(*a));
    a->db = db;
    a->ckpt_every = ckpt_every > 0 ? ckpt_every : 1;
    snprintf(sql, sizeof(sql), "INSERT INTO decisions (%s, prev_hash, row_hash) VALUES (%s)",
             db_cols_sql, qs);
    /* The multi-row form is an optimisation: without it (a SQLite built
     * with few variables, or no memory) rows go one at a time. */
    char msql[4096];
    int ml = snprintf(msql, sizeof(msql), "INSERT INTO decisions (%s, prev_hash, row_hash) VALUES ",
                      db_cols_sql);
    for (int k = 0; k < DB_APPEND_MULTI && ml > 0 && (size_t)ml < sizeof(msql); k++) {
        ml += snprintf(msql + ml, sizeof(msql) - (size_t)ml, "%s(%s)", k ? "," : "", qs);
    }
    if (ml > 0 && (size_t)ml < sizeof(msql) &&
        sqlite3_prepare_v3(db, msql, -1, SQLITE_PREPARE_PERSISTENT, &a->ins_multi, NULL) !=
            SQLITE_OK) {
        sqlite3_finalize(a->ins_multi);
        a->ins_multi = NULL;
    }
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &a->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db,
                           "INSERT INTO chain_checkpoints (row_id, row_hash, ts_us)"
                           " VALUES (?, ?, ?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &a->ckpt, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "prepare insert");
        db_appender_finalize(a);
        return -1;
    }
    return 0;
}

void db_appender_finalize(struct db_appender *a)
{
    sqlite3_finalize(a->ins);
    sqlite3_finalize(a->ins_multi);
    sqlite3_finalize(a->ckpt);
    a->ins = NULL;
    a->ins_multi = NULL;
    a->ckpt = NULL;
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int insert_ckpt(struct db_appender *a, int64_t id, const uint8_t hash[DB_HASH_LEN],
                       int64_t now_us)
{
    sqlite3_bind_int64(a->ckpt, 1, id);
    sqlite3_bind_blob(a->ckpt, 2, hash, DB_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(a->ckpt, 3, now_us);
    return step_reset(a->ckpt);
}

/* Insert rows ds[0..k) with statement st (k rows of DB_NCOLS + 2
 * parameters), chained on a->prev; then their chain checkpoints. Advances
 * last_id/prev and fills hash_out only when all of it succeeded. */
static int add_rows(struct db_appender *a, sqlite3_stmt *st, const struct db_decision *const *ds,
                    int k, int64_t now_us, uint8_t *const *hash_out)
{
    enum { P = DB_NCOLS + 2 };
    struct db_val v[DB_APPEND_MULTI][DB_NCOLS];
    uint8_t prev[DB_APPEND_MULTI][DB_HASH_LEN], h[DB_APPEND_MULTI][DB_HASH_LEN];
    int64_t id0 = a->last_id + 1;
    for (int i = 0; i < k; i++) {
        db_row_from_decision(id0 + i, ds[i], v[i]);
        memcpy(prev[i], i == 0 ? a->prev : h[i - 1], DB_HASH_LEN);
        db_row_hash(prev[i], v[i], h[i]);
        int base = 1 + i * P;
        if (db_row_bind(st, base, v[i]) != 0 ||
            sqlite3_bind_blob(st, base + DB_NCOLS, prev[i], DB_HASH_LEN, SQLITE_STATIC) !=
                SQLITE_OK ||
            sqlite3_bind_blob(st, base + DB_NCOLS + 1, h[i], DB_HASH_LEN, SQLITE_STATIC) !=
                SQLITE_OK) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return -1;
        }
    }
    if (step_reset(st) != 0) {
        return -1;
    }
    for (int i = 0; i < k; i++) {
        int64_t id = id0 + i;
        if (id % a->ckpt_every == 0 && insert_ckpt(a, id, h[i], now_us) != 0) {
            return -1;
        }
    }
    for (int i = 0; i < k; i++) {
        memcpy(hash_out[i], h[i], DB_HASH_LEN);
    }
    a->last_id = id0 + k - 1;
    memcpy(a->prev, h[k - 1], DB_HASH_LEN);
    return 0;
}

int db_appender_add(struct db_appender *a, const struct db_decision *d, int64_t now_us,
                    uint8_t hash_out[DB_HASH_LEN])
{
    return add_rows(a, a->ins, &d, 1, now_us, &hash_out);
}

int db_appender_add_many(struct db_appender *a, const struct db_decision *const *ds, int n,
                         int64_t now_us, uint8_t *const *hash_out)
{
    int i = 0;
    while (i < n) {
        int multi = a->ins_multi != NULL && n - i >= DB_APPEND_MULTI;
        int k = multi ? DB_APPEND_MULTI : 1;
        if (add_rows(a, multi ? a->ins_multi : a->ins, ds + i, k, now_us, hash_out + i) != 0) {
            return -1;
        }
        i += k;
    }
    return 0;
}

int db_appender_checkpoint(struct db_appender *a, int64_t now_us)
{
    return insert_ckpt(a, a->last_id, a->prev, now_us);
}
