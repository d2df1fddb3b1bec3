/*
 * state.c: sessions, revocations and policy versions (see state.h).
 *
 * These are control-plane writes: rare compared with decisions, but each one
 * matters on its own (a revocation that is lost on restart would let a
 * revoked session back in). So every call is one transaction on its own
 * synchronous=FULL connection and returns only after COMMIT -- except the
 * session counter upsert, which is write-behind and uses NORMAL (no fsync)
 * so it cannot hold the control thread behind a busy WAL. Connections are
 * opened per call with DB_CONN_WRITE, which also creates and migrates the
 * file: the control thread may load revocations before anything else has
 * touched the database.
 */
#include "db/state.h"

#include <stdlib.h>
#include <string.h>

#include "db/db_int.h"
#include "gateway/base/util.h"

#define DEF_LIMIT 100
#define MAX_LIMIT 10000
#define MAX_POLICY (16 * 1024 * 1024)

static int clamp_limit(int limit)
{
    return limit <= 0 ? DEF_LIMIT : (limit > MAX_LIMIT ? MAX_LIMIT : limit);
}

static void col_str(sqlite3_stmt *st, int c, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(st, c);
    db_copy_str(dst, dstlen, t != NULL ? (const char *)t : "",
                t != NULL ? (size_t)sqlite3_column_bytes(st, c) : 0);
}

static int bind_str(sqlite3_stmt *st, int i, const char *s, size_t cap)
{
    const char *v = s != NULL ? s : "";
    return sqlite3_bind_text(st, i, v, (int)strnlen(v, cap), SQLITE_STATIC);
}

static sqlite3 *open_rw(const char *path, struct gh_err *err)
{
    return db_conn_open(path, DB_CONN_WRITE, 1, 0, err);
}

static void rollback(sqlite3 *db)
{
    if (db != NULL && !sqlite3_get_autocommit(db)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* ---- sessions ------------------------------------------------------------ */

static int valid_state(const char *s)
{
    return strcmp(s, "active") == 0 || strcmp(s, "ended") == 0 || strcmp(s, "revoked") == 0;
}

/* Session counters are written behind (once a second) and rebuilt from
 * traffic anyway: no fsync for them (synchronous=NORMAL still survives a
 * process crash). Revocations and policy versions keep FULL. */
static sqlite3 *open_rw_nosync(const char *path, struct gh_err *err)
{
    return db_conn_open(path, DB_CONN_WRITE, 0, 0, err);
}

int db_session_upsert(const char *path, const struct db_session *s, size_t n, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    for (size_t i = 0; i < n; i++) {
        char state[sizeof(s[i].state)];
        db_copy_str(state, sizeof(state), s[i].state, strnlen(s[i].state, sizeof(state)));
        if (!valid_state(state) || s[i].id[0] == '\0') {
            return gh_err_set(err, GH_R_INTERNAL, "session %zu: empty id or bad state", i);
        }
    }
    if (n == 0) {
        return 0;
    }
    db = open_rw_nosync(path, err);
    if (db == NULL) {
        return -1;
    }
    if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
        goto out;
    }
    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO sessions (id, issuer, subject, cert_thumb, cert_subject, first_seen_us,"
            " last_seen_us, requests, bytes_in, bytes_out, last_addr, state, revoked_us)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            " ON CONFLICT (id) DO UPDATE SET"
            "  first_seen_us = min(first_seen_us, excluded.first_seen_us),"
            "  last_seen_us = max(last_seen_us, excluded.last_seen_us),"
            "  requests = excluded.requests, bytes_in = excluded.bytes_in,"
            "  bytes_out = excluded.bytes_out, last_addr = excluded.last_addr,"
            "  state = CASE WHEN state = 'revoked' THEN 'revoked' ELSE excluded.state END,"
            "  revoked_us = CASE WHEN state = 'revoked' THEN revoked_us"
            "               ELSE excluded.revoked_us END",
            -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "session upsert");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct db_session *x = &s[i];
        sqlite3_reset(st);
        bind_str(st, 1, x->id, sizeof(x->id));
        bind_str(st, 2, x->issuer, sizeof(x->issuer));
        bind_str(st, 3, x->subject, sizeof(x->subject));
        bind_str(st, 4, x->cert_thumb, sizeof(x->cert_thumb));
        bind_str(st, 5, x->cert_subject, sizeof(x->cert_subject));
        sqlite3_bind_int64(st, 6, x->first_seen_us);
        sqlite3_bind_int64(st, 7, x->last_seen_us);
        sqlite3_bind_int64(st, 8, (int64_t)x->requests);
        sqlite3_bind_int64(st, 9, (int64_t)x->bytes_in);
        sqlite3_bind_int64(st, 10, (int64_t)x->bytes_out);
        bind_str(st, 11, x->last_addr, sizeof(x->last_addr));
        bind_str(st, 12, x->state, sizeof(x->state));
        sqlite3_bind_int64(st, 13, x->revoked_us);
        if (sqlite3_step(st) != SQLITE_DONE) {
            db_sql_err(db, err, "session upsert");
            goto out;
        }
    }
    if (db_exec(db, "COMMIT", err) != 0) {
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    rollback(db);
    db_conn_close(db);
    return ret;
}

#define SESSION_COLS                                                                               \
    "id, issuer, subject, cert_thumb, cert_subject, first_seen_us, last_seen_us, requests,"        \
    " bytes_in, bytes_out, last_addr, state, revoked_us"

static void read_session(sqlite3_stmt *st, struct db_session *s)
{
    memset(s, 0, sizeof(*s));
    col_str(st, 0, s->id, sizeof(s->id));
    col_str(st, 1, s->issuer, sizeof(s->issuer));
    col_str(st, 2, s->subject, sizeof(s->subject));
    col_str(st, 3, s->cert_thumb, sizeof(s->cert_thumb));
    col_str(st, 4, s->cert_subject, sizeof(s->cert_subject));
    s->first_seen_us = sqlite3_column_int64(st, 5);
    s->last_seen_us = sqlite3_column_int64(st, 6);
    s->requests = (uint64_t)sqlite3_column_int64(st, 7);
    s->bytes_in = (uint64_t)sqlite3_column_int64(st, 8);
    s->bytes_out = (uint64_t)sqlite3_column_int64(st, 9);
    col_str(st, 10, s->last_addr, sizeof(s->last_addr));
    col_str(st, 11, s->state, sizeof(s->state));
    s->revoked_us = sqlite3_column_int64(st, 12);
}

int db_session_list(const char *path, const struct db_session_query *q, db_session_cb cb, void *arg,
                    struct gh_err *err)
{
    static const struct db_session_query all = {0};
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (cb == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "session list without a callback");
    }
    if (q == NULL) {
        q = &all;
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    /* Fixed SQL; an unset filter binds NULL and matches everything. */
    if (sqlite3_prepare_v2(db,
                           "SELECT " SESSION_COLS " FROM sessions"
                           " WHERE last_seen_us >= ?1 AND (?2 IS NULL OR subject = ?2)"
                           " AND (?3 IS NULL OR state = ?3)"
                           " ORDER BY last_seen_us DESC LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "session list");
        goto out;
    }
    sqlite3_bind_int64(st, 1, q->seen_since_us);
    if (q->subject != NULL) {
        sqlite3_bind_text(st, 2, q->subject, -1, SQLITE_STATIC);
    }
    if (q->state != NULL) {
        sqlite3_bind_text(st, 3, q->state, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, 4, clamp_limit(q->limit));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_session s;
        read_session(st, &s);
        if (cb(arg, &s) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        db_sql_err(db, err, "session list");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

int db_session_get(const char *path, const char *id, struct db_session *out, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (id == NULL || out == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "session get: no id");
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(db, "SELECT " SESSION_COLS " FROM sessions WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK) {
        db_sql_err(db, err, "session get");
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_session(st, out);
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        ret = 1;
    } else {
        db_sql_err(db, err, "session get");
    }
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

/* ---- revocations --------------------------------------------------------- */

static const char *const kind_names[] = {"session", "subject", "cert", "token"};

const char *db_revocation_kind_name(enum db_revocation_kind k)
{
    if ((int)k < 0 || (size_t)k >= sizeof(kind_names) / sizeof(kind_names[0])) {
        return "unknown";
    }
    return kind_names[k];
}

int db_revocation_kind_parse(const char *s)
{
    for (size_t i = 0; s != NULL && i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int db_revocation_add(const char *path, const struct db_revocation *r, int64_t *id_out,
                      struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (r == NULL || db_revocation_kind_parse(db_revocation_kind_name(r->kind)) < 0 ||
        strnlen(r->target, sizeof(r->target)) == 0) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "revocation: bad kind or empty target");
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO revocations (kind, target, reason, actor, created_us,"
                           " expires_us, lifted_us, lifted_by) VALUES (?, ?, ?, ?, ?, ?, 0, '')",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "revocation add");
        goto out;
    }
    sqlite3_bind_text(st, 1, db_revocation_kind_name(r->kind), -1, SQLITE_STATIC);
    bind_str(st, 2, r->target, sizeof(r->target));
    bind_str(st, 3, r->reason, sizeof(r->reason));
    bind_str(st, 4, r->actor, sizeof(r->actor));
    sqlite3_bind_int64(st, 5, r->created_us);
    sqlite3_bind_int64(st, 6, r->expires_us);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "revocation add");
        goto out;
    }
    if (id_out != NULL) {
        *id_out = sqlite3_last_insert_rowid(db);
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

int db_revocation_list(const char *path, int active_only, int64_t now_us,
                       int (*cb)(void *arg, const struct db_revocation *r), void *arg,
                       struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (cb == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "revocation list without a callback");
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(
            db,
            "SELECT id, kind, target, reason, actor, created_us, expires_us,"
            " lifted_us, lifted_by FROM revocations"
            " WHERE ?1 = 0 OR (lifted_us = 0 AND (expires_us = 0 OR expires_us > ?2))"
            " ORDER BY id DESC",
            -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "revocation list");
        goto out;
    }
    sqlite3_bind_int(st, 1, active_only ? 1 : 0);
    sqlite3_bind_int64(st, 2, now_us);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_revocation r;
        memset(&r, 0, sizeof(r));
        r.id = sqlite3_column_int64(st, 0);
        const unsigned char *k = sqlite3_column_text(st, 1);
        int kind = db_revocation_kind_parse(k != NULL ? (const char *)k : "");
        if (kind < 0) {
            continue; /* the CHECK constraint makes this unreachable */
        }
        r.kind = (enum db_revocation_kind)kind;
        col_str(st, 2, r.target, sizeof(r.target));
        col_str(st, 3, r.reason, sizeof(r.reason));
        col_str(st, 4, r.actor, sizeof(r.actor));
        r.created_us = sqlite3_column_int64(st, 5);
        r.expires_us = sqlite3_column_int64(st, 6);
        r.lifted_us = sqlite3_column_int64(st, 7);
        col_str(st, 8, r.lifted_by, sizeof(r.lifted_by));
        if (cb(arg, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        db_sql_err(db, err, "revocation list");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

int db_revocation_lift(const char *path, int64_t id, const char *actor, int64_t now_us,
                       struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(db,
                           "UPDATE revocations SET lifted_us = ?1, lifted_by = ?2"
                           " WHERE id = ?3 AND lifted_us = 0"
                           " AND (expires_us = 0 OR expires_us > ?1)", /* in force now */
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "revocation lift");
        goto out;
    }
    /* lifted_us = 0 means "in force": never store 0 as the lift time. */
    sqlite3_bind_int64(st, 1, now_us > 0 ? now_us : 1);
    bind_str(st, 2, actor, 256);
    sqlite3_bind_int64(st, 3, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "revocation lift");
        goto out;
    }
    ret = sqlite3_changes(db) == 1 ? 0 : 1;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

/* ---- policy versions ----------------------------------------------------- */

#define POLICY_COLS                                                                                \
    "id, hash, applied_by, applied_us, activated_us, active, comment,"                             \
    " length(CAST(source AS BLOB))"

static void read_policy(sqlite3_stmt *st, struct db_policy_version *v)
{
    memset(v, 0, sizeof(*v));
    v->id = sqlite3_column_int64(st, 0);
    col_str(st, 1, v->hash, sizeof(v->hash));
    col_str(st, 2, v->applied_by, sizeof(v->applied_by));
    v->applied_us = sqlite3_column_int64(st, 3);
    v->activated_us = sqlite3_column_int64(st, 4);
    v->active = sqlite3_column_int(st, 5);
    col_str(st, 6, v->comment, sizeof(v->comment));
    v->source_len = (size_t)sqlite3_column_int64(st, 7);
}

/* Version string -> row id: NULL = the active version, 64 hex = exact,
 * 8..63 hex = unique prefix. 0 found, 1 not found / ambiguous, -1 error. */
static int resolve(sqlite3 *db, const char *version, int64_t *id, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    const char *sql;
    size_t n = 0;
    if (version == NULL) {
        sql = "SELECT id FROM policy_versions WHERE active = 1 LIMIT 2";
    } else {
        n = strlen(version);
        if (n < 8 || n > 64 || strspn(version, "0123456789abcdef") != n) {
            return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST,
                              "policy version must be 8..64 lowercase hex characters");
        }
        sql = "SELECT id FROM policy_versions WHERE substr(hash, 1, ?2) = ?1 LIMIT 2";
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "policy version lookup");
        goto out;
    }
    if (version != NULL) {
        sqlite3_bind_text(st, 1, version, (int)n, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, (int)n);
    }
    int found = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        found++;
    }
    if (rc != SQLITE_DONE) {
        db_sql_err(db, err, "policy version lookup");
        goto out;
    }
    if (found == 0) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "no such policy version");
        ret = 1;
    } else if (found > 1) {
        gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "policy version prefix is ambiguous");
        ret = 1;
    } else {
        ret = 0;
    }
out:
    sqlite3_finalize(st);
    return ret;
}

static int activate_id(sqlite3 *db, int64_t id, int64_t now_us, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    /* Two statements in one transaction: the partial unique index allows
     * only one active row at any moment, so clear the old one first. */
    if (sqlite3_prepare_v2(db, "UPDATE policy_versions SET active = 0 WHERE active = 1 AND id != ?",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "policy activate");
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "policy activate");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db,
                           "UPDATE policy_versions SET active = 1, activated_us = ? WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "policy activate");
        goto out;
    }
    sqlite3_bind_int64(st, 1, now_us);
    sqlite3_bind_int64(st, 2, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "policy activate");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

static int get_meta(sqlite3 *db, int64_t id, struct db_policy_version *out, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db, "SELECT " POLICY_COLS " FROM policy_versions WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK) {
        db_sql_err(db, err, "policy version read");
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_sql_err(db, err, "policy version read");
        goto out;
    }
    read_policy(st, out);
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

int db_policy_version_add(const char *path, const char *source, size_t len, const char *applied_by,
                          const char *comment, int64_t now_us, int activate,
                          struct db_policy_version *out, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if ((source == NULL && len > 0) || len > MAX_POLICY) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "policy source missing or over %d bytes",
                          MAX_POLICY);
    }
    char hash[65];
    gh_sha256_hex(source != NULL ? source : "", len, hash);
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO policy_versions (hash, source, applied_by, applied_us,"
                           " activated_us, active, comment) VALUES (?, ?, ?, ?, 0, 0, ?)"
                           " ON CONFLICT (hash) DO NOTHING",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "policy version add");
        goto out;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source != NULL ? source : "", (int)len, SQLITE_STATIC);
    bind_str(st, 3, applied_by, 256);
    sqlite3_bind_int64(st, 4, now_us);
    bind_str(st, 5, comment, 256);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_sql_err(db, err, "policy version add");
        goto out;
    }
    int64_t id = 0;
    if (resolve(db, hash, &id, err) != 0) {
        goto out;
    }
    if (activate && activate_id(db, id, now_us, err) != 0) {
        goto out;
    }
    struct db_policy_version meta;
    if (get_meta(db, id, &meta, err) != 0 || db_exec(db, "COMMIT", err) != 0) {
        goto out;
    }
    if (out != NULL) {
        *out = meta;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    rollback(db);
    db_conn_close(db);
    return ret;
}

int db_policy_version_list(const char *path, int limit,
                           int (*cb)(void *arg, const struct db_policy_version *v), void *arg,
                           struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (cb == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "policy list without a callback");
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT " POLICY_COLS " FROM policy_versions ORDER BY id DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "policy list");
        goto out;
    }
    sqlite3_bind_int(st, 1, clamp_limit(limit));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct db_policy_version v;
        read_policy(st, &v);
        if (cb(arg, &v) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        db_sql_err(db, err, "policy list");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

int db_policy_version_get(const char *path, const char *version, struct db_policy_version *meta,
                          char **source, size_t *len, struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (source != NULL) {
        *source = NULL;
    }
    if (len != NULL) {
        *len = 0;
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    /* One read transaction: metadata and source come from the same state. */
    if (db_exec(db, "BEGIN", err) != 0) {
        goto out;
    }
    int64_t id = 0;
    int rc = resolve(db, version, &id, err);
    if (rc != 0) {
        ret = rc;
        goto out;
    }
    struct db_policy_version m;
    if (get_meta(db, id, &m, err) != 0) {
        goto out;
    }
    if (source != NULL) {
        if (sqlite3_prepare_v2(db, "SELECT CAST(source AS BLOB) FROM policy_versions WHERE id = ?",
                               -1, &st, NULL) != SQLITE_OK) {
            db_sql_err(db, err, "policy source read");
            goto out;
        }
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW) {
            db_sql_err(db, err, "policy source read");
            goto out;
        }
        const void *b = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        char *copy = malloc(n + 1);
        if (copy == NULL || (b == NULL && n > 0)) {
            free(copy);
            gh_err_set(err, GH_R_INTERNAL, "policy source read: out of memory");
            goto out;
        }
        if (n > 0) {
            memcpy(copy, b, n);
        }
        copy[n] = '\0';
        *source = copy;
        if (len != NULL) {
            *len = n;
        }
    }
    if (meta != NULL) {
        *meta = m;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    rollback(db);
    db_conn_close(db);
    return ret;
}

int db_policy_version_set_active(const char *path, const char *version, int64_t now_us,
                                 struct gh_err *err)
{
    sqlite3 *db = NULL;
    int ret = -1;
    if (version == NULL) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "no policy version given");
    }
    db = open_rw(path, err);
    if (db == NULL) {
        return -1;
    }
    if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
        goto out;
    }
    int64_t id = 0;
    int rc = resolve(db, version, &id, err);
    if (rc != 0) {
        ret = rc;
        goto out;
    }
    if (activate_id(db, id, now_us, err) != 0 || db_exec(db, "COMMIT", err) != 0) {
        goto out;
    }
    ret = 0;
out:
    rollback(db);
    db_conn_close(db);
    return ret;
}
