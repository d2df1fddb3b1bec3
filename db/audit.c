/*
 * audit.c: verify the decision log's hash chain.
 *
 * One read transaction (a WAL snapshot, so the writer keeps going and the
 * walk sees one consistent state) walks the rows in id order from the
 * retention anchor (or from the genesis: id 1, 32 zero bytes) and checks, for
 * each row, that
 *   - its id is the next one (a gap = rows deleted),
 *   - its prev_hash is the previous row's row_hash (a row removed and the
 *     ids renumbered, or the chain spliced),
 *   - its row_hash is the hash of its own content (a row edited).
 * A consistent walk can still hide a cut-off tail or a chain recomputed from
 * some row on, so every checkpoint the writer recorded (and optionally one
 * copied from the process log) is compared with the row it names: a
 * checkpoint beyond the last row means the tail was truncated, a different
 * hash means the chain was rewritten. The first problem found is reported.
 *
 * The per-row checks are a small walker (db_chain_walk_*) that retention
 * runs too, over the rows it is about to delete: a gap or an edit in the
 * purged range must stop retention, not vanish with the rows.
 */
#include "db/db_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gateway/base/util.h"

static int hex_decode32(const char *s, uint8_t out[DB_HASH_LEN])
{
    if (s == NULL || strlen(s) != 2 * DB_HASH_LEN) {
        return -1;
    }
    for (int i = 0; i < DB_HASH_LEN; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            int d;
            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                d = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                d = c - 'A' + 10;
            } else {
                return -1;
            }
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return 0;
}

static int bad(struct db_audit_result *r, int64_t id, const char *fmt, ...) GH_PRINTF(3, 4);
static int bad(struct db_audit_result *r, int64_t id, const char *fmt, ...)
{
    r->first_bad_id = id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    return 1;
}

int db_chain_walk_start(sqlite3 *db, struct db_chain_walk *w, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    memset(w, 0, sizeof(*w));
    w->next_id = 1;
    if (sqlite3_prepare_v2(db,
                           "SELECT row_id, row_hash FROM chain_anchor ORDER BY row_id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "read chain anchor");
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        w->anchor_id = sqlite3_column_int64(st, 0);
        w->next_id = w->anchor_id + 1;
        if (sqlite3_column_bytes(st, 1) != DB_HASH_LEN) {
            w->bad_id = w->next_id;
            snprintf(w->msg, sizeof(w->msg), "retention anchor at row %lld is malformed",
                     (long long)w->anchor_id);
            ret = 1;
            goto out;
        }
        memcpy(w->anchor_hash, sqlite3_column_blob(st, 1), DB_HASH_LEN);
        memcpy(w->prev, w->anchor_hash, DB_HASH_LEN);
    } else if (rc != SQLITE_DONE) {
        db_sql_err(db, err, "read chain anchor");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

static int walk_bad(struct db_chain_walk *w, int64_t id, const char *fmt, ...) GH_PRINTF(3, 4);
static int walk_bad(struct db_chain_walk *w, int64_t id, const char *fmt, ...)
{
    w->bad_id = id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
    va_end(ap);
    return 1;
}

int db_chain_walk_row(struct db_chain_walk *w, sqlite3_stmt *st, int first)
{
    struct db_val v[DB_NCOLS];
    db_row_from_stmt(st, first, v);
    int64_t id = v[DB_C_id].i;
    int64_t expect = w->next_id;
    if (id < expect) {
        return walk_bad(w, id, "row %lld is out of sequence (expected row %lld)", (long long)id,
                        (long long)expect);
    }
    if (id > expect) {
        if (id == expect + 1) {
            return walk_bad(w, expect, "row %lld is missing (deleted; next row is %lld)",
                            (long long)expect, (long long)id);
        }
        return walk_bad(w, expect, "rows %lld..%lld are missing (deleted)", (long long)expect,
                        (long long)(id - 1));
    }
    const void *ph = sqlite3_column_blob(st, first + DB_NCOLS);
    int phn = sqlite3_column_bytes(st, first + DB_NCOLS);
    if (phn != DB_HASH_LEN || memcmp(ph, w->prev, DB_HASH_LEN) != 0) {
        return walk_bad(w, id,
                        "row %lld: prev_hash does not match row %lld's hash (rows removed or "
                        "chain spliced)",
                        (long long)id, (long long)(id - 1));
    }
    uint8_t h[DB_HASH_LEN];
    db_row_hash(w->prev, v, h);
    const void *rh = sqlite3_column_blob(st, first + DB_NCOLS + 1);
    int rhn = sqlite3_column_bytes(st, first + DB_NCOLS + 1);
    if (rhn != DB_HASH_LEN || memcmp(rh, h, DB_HASH_LEN) != 0) {
        return walk_bad(w, id, "row %lld: content does not match its hash (row edited)",
                        (long long)id);
    }
    memcpy(w->prev, h, DB_HASH_LEN);
    w->next_id = id + 1;
    return 0;
}

/* Hash stored for row id (0 found, 1 absent, -1 error). */
static int row_hash_of(sqlite3_stmt *st, int64_t id, uint8_t out[DB_HASH_LEN])
{
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        return 1;
    }
    if (rc != SQLITE_ROW) {
        return -1;
    }
    memset(out, 0, DB_HASH_LEN);
    if (sqlite3_column_bytes(st, 0) == DB_HASH_LEN) {
        memcpy(out, sqlite3_column_blob(st, 0), DB_HASH_LEN);
    }
    return 0;
}

/* Compare checkpoint (id, hash) with the verified chain. 0 ok, 1 broken. */
static int check_point(struct db_audit_result *r, sqlite3_stmt *byid, int64_t id,
                       const uint8_t hash[DB_HASH_LEN], const uint8_t anchor_hash[DB_HASH_LEN],
                       const char *what, int *err)
{
    uint8_t h[DB_HASH_LEN];
    if (id < r->anchor_id) {
        return 0; /* deleted by retention: nothing left to compare */
    }
    if (id == r->anchor_id && id > 0) {
        memcpy(h, anchor_hash, DB_HASH_LEN);
    } else if (id > r->last_id) {
        return bad(r, r->last_id + 1,
                   "tail truncated: %s names row %lld but the last row is %lld (rows %lld.. "
                   "deleted)",
                   what, (long long)id, (long long)r->last_id, (long long)(r->last_id + 1));
    } else {
        int rc = row_hash_of(byid, id, h);
        if (rc < 0) {
            *err = 1;
            return 0;
        }
        if (rc > 0) { /* cannot happen after a clean walk; be safe */
            return bad(r, id, "row %lld named by %s is missing", (long long)id, what);
        }
    }
    if (memcmp(h, hash, DB_HASH_LEN) != 0) {
        return bad(r, id, "row %lld does not match %s: the chain was rewritten at or before it",
                   (long long)id, what);
    }
    r->checkpoints++;
    return 0;
}

static int audit_run(const char *path, int64_t ext_id, const uint8_t *ext_hash,
                     struct db_audit_result *r, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL, *byid = NULL;
    int ret = -1;
    struct db_chain_walk w;
    memset(r, 0, sizeof(*r));

    db = db_conn_open(path, DB_CONN_READ, 0, 0, err);
    if (db == NULL) {
        goto out;
    }
    if (db_exec(db, "BEGIN", err) != 0) {
        goto out;
    }
    int rc = db_chain_walk_start(db, &w, err);
    r->anchor_id = w.anchor_id;
    if (rc < 0) {
        goto out;
    }
    if (rc > 0) {
        ret = bad(r, w.bad_id, "%s", w.msg);
        goto out;
    }

    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT %s, prev_hash, row_hash FROM decisions ORDER BY id",
             db_cols_sql);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "read decisions");
        goto out;
    }
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            db_sql_err(db, err, "read decisions");
            goto out;
        }
        if (db_chain_walk_row(&w, st, 0) != 0) {
            ret = bad(r, w.bad_id, "%s", w.msg);
            goto out;
        }
        r->checked++;
    }
    r->last_id = w.next_id - 1;
    sqlite3_finalize(st);
    st = NULL;

    if (sqlite3_prepare_v2(db, "SELECT row_hash FROM decisions WHERE id = ?", -1, &byid, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT row_id, row_hash FROM chain_checkpoints ORDER BY row_id", -1,
                           &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "read chain checkpoints");
        goto out;
    }
    int qerr = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint8_t ch[DB_HASH_LEN] = {0};
        if (sqlite3_column_bytes(st, 1) == DB_HASH_LEN) {
            memcpy(ch, sqlite3_column_blob(st, 1), DB_HASH_LEN);
        }
        int64_t cid = sqlite3_column_int64(st, 0);
        if (check_point(r, byid, cid, ch, w.anchor_hash, "a checkpoint", &qerr) != 0) {
            ret = 1;
            goto out;
        }
        if (qerr) {
            break;
        }
    }
    if (qerr || rc != SQLITE_DONE) {
        db_sql_err(db, err, "read chain checkpoints");
        goto out;
    }
    if (ext_hash != NULL) {
        if (ext_id < r->anchor_id) {
            gh_err_set(err, GH_R_INTERNAL,
                       "row %lld was removed by retention (anchor %lld): the given checkpoint "
                       "cannot be checked",
                       (long long)ext_id, (long long)r->anchor_id);
            goto out;
        }
        if (check_point(r, byid, ext_id, ext_hash, w.anchor_hash, "the given checkpoint", &qerr) !=
            0) {
            ret = 1;
            goto out;
        }
        if (qerr) {
            db_sql_err(db, err, "read checkpoint row");
            goto out;
        }
    }
    r->first_bad_id = 0;
    if (r->checked == 0) {
        snprintf(r->msg, sizeof(r->msg), "intact: no rows%s",
                 r->anchor_id ? " after the retention anchor" : "");
    } else {
        snprintf(r->msg, sizeof(r->msg), "intact: %llu rows (ids %lld..%lld), %llu checkpoints",
                 (unsigned long long)r->checked, (long long)(r->anchor_id + 1),
                 (long long)r->last_id, (unsigned long long)r->checkpoints);
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(byid);
    if (db != NULL && !sqlite3_get_autocommit(db)) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    db_conn_close(db);
    return ret;
}

int db_audit_verify(const char *path, struct db_audit_result *r, struct gh_err *err)
{
    return audit_run(path, 0, NULL, r, err);
}

int db_audit_verify_checkpoint(const char *path, int64_t id, const char *hash_hex,
                               struct db_audit_result *r, struct gh_err *err)
{
    uint8_t h[DB_HASH_LEN];
    if (id <= 0 || hex_decode32(hash_hex, h) != 0) {
        memset(r, 0, sizeof(*r));
        return gh_err_set(err, GH_R_INTERNAL, "checkpoint must be ID and 64 hex chars");
    }
    return audit_run(path, id, h, r, err);
}
