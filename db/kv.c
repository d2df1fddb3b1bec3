/*
 * kv.c: a small durable key/value table for gateway state that is not a
 * decision -- chiefly the last good JWKS per issuer, so a restart while the
 * identity provider is unreachable can still verify tokens.
 *
 * One connection per call (control thread only; it may wait for the write
 * lock up to the busy timeout). Values are stored as BLOBs, byte for byte;
 * keys and values have maxima so a runaway caller cannot fill the disk.
 */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/base/util.h"

#define KV_MAX_KEY 1024
#define KV_MAX_VAL (16 * 1024 * 1024)

static int check_key(const char *key, struct gh_err *err)
{
    if (key == NULL || key[0] == '\0' || strlen(key) > KV_MAX_KEY) {
        return gh_err_set(err, GH_R_INTERNAL, "kv: key empty or longer than %d bytes", KV_MAX_KEY);
    }
    return 0;
}

int db_kv_put(const char *path, const char *key, const char *val, size_t len, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (check_key(key, err) != 0) {
        return -1;
    }
    if ((val == NULL && len > 0) || len > KV_MAX_VAL) {
        return gh_err_set(err, GH_R_INTERNAL, "kv: value missing or larger than %d bytes",
                          KV_MAX_VAL);
    }
    db = db_conn_open(path, DB_CONN_WRITE, 1, 0, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO kv (key, value, updated_us) VALUES (?, ?, ?)"
                           " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                           " updated_us = excluded.updated_us",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "kv put");
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    /* zeroblob for an empty value: a NULL pointer would bind SQL NULL. */
    if (len == 0) {
        sqlite3_bind_zeroblob(st, 2, 0);
    } else {
        sqlite3_bind_blob(st, 2, val, (int)len, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 3, gh_now_us());
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "kv put");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

char *db_kv_get(const char *path, const char *key, size_t *len, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *ret = NULL;
    gh_err_clear(err);
    if (len != NULL) {
        *len = 0;
    }
    if (check_key(key, err) != 0) {
        return NULL;
    }
    db = db_conn_open(path, DB_CONN_WRITE, 1, 0, err);
    if (db == NULL) {
        return NULL;
    }
    if (sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE key = ?", -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "kv get");
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        goto out; /* absent: NULL with err cleared */
    }
    if (rc != SQLITE_ROW) {
        db_sql_err(db, err, "kv get");
        goto out;
    }
    const void *b = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    if (b == NULL && n > 0) {
        db_sql_err(db, err, "kv get");
        goto out;
    }
    ret = malloc(n + 1);
    if (ret == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "kv get: out of memory");
        goto out;
    }
    if (n > 0) {
        memcpy(ret, b, n);
    }
    ret[n] = '\0';
    if (len != NULL) {
        *len = n;
    }
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}
