/*
 * query.c: filtered reads of the decision log for the admin API, the CLI
 * and auditors.
 *
 * Each call opens its own read-only connection: in WAL mode a reader works on
 * a snapshot and never blocks the writer (nor is blocked by it). The SQL is
 * assembled from fixed fragments, one per filter that is set, and every value
 * is bound -- nothing from the caller is ever spliced into SQL text. The
 * filters line up with the indexes of the schema (subject, route,
 * decision+reason, session, each followed by ts_us), so "denies for subject X
 * in the last hour" is an index range scan, not a table scan; see
 * db_decisions_explain and docs/DECISION-LOG.md.
 */
#include "db/db_int.h"

#include <stdio.h>
#include <string.h>

#define DEF_LIMIT 100
#define MAX_LIMIT 10000

static int build(const struct db_query *q, int explain, char *sql, size_t len, struct gh_err *err)
{
    if (q->decision < -1 || q->decision > 1) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "decision filter must be allow or deny");
    }
    if (q->reason != NULL && gh_reason_from_name(q->reason) < 0) {
        return gh_err_set(err, GH_R_ADMIN_BAD_REQUEST, "unknown reason code");
    }
    int n = snprintf(sql, len, "%sSELECT %s FROM decisions WHERE 1",
                     explain ? "EXPLAIN QUERY PLAN " : "", db_cols_sql);
    struct {
        int on;
        const char *frag;
    } f[] = {
        {q->since_us > 0, " AND ts_us >= :since"},
        {q->after_id > 0, " AND id > :after"},
        {q->subject != NULL, " AND (token_sub = :subject OR cert_subject = :subject)"},
        {q->route != NULL, " AND route = :route"},
        {q->decision >= 0, " AND decision = :decision"},
        {q->reason != NULL, " AND reason = :reason"},
        {q->session_id != NULL, " AND session_id = :session"},
        /* Always true; it tells SQLite where the rows of the time range
         * start, so an oldest-first (id order, below) "since" query without
         * a cursor scans ids from there instead of from row 1. id + 0:
         * min(id) would otherwise be answered by walking the table in id
         * order. */
        {q->since_us > 0 && q->oldest_first && q->after_id <= 0,
         " AND id >= (SELECT min(id + 0) FROM decisions WHERE ts_us >= :since)"},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (f[i].on && n >= 0 && (size_t)n < len) {
            n += snprintf(sql + n, len - (size_t)n, "%s", f[i].frag);
        }
    }
    /* Newest first is time order (ties by id): an (x, ts_us) index delivers
     * the rows already sorted, so LIMIT stops early instead of sorting every
     * match. Oldest first, and any query with a cursor (after_id > 0), is id
     * order: a follower -- the admin decision stream, `--after-id N
     * --oldest-first` -- keeps the highest id it has seen and next asks for
     * ids above it, so a page in time order that holds a high id but not a
     * lower one committed with a later timestamp loses that row for good.
     * Ids are commit order, and rows are ordered by id from the very first
     * page: after_id 0 is the start of the log, not "no cursor" (callers
     * zero the struct, so 0 cannot tell the two apart; oldest_first can). */
    const char *dir = q->oldest_first ? "ASC" : "DESC";
    if (n >= 0 && (size_t)n < len) {
        if (q->after_id > 0 || q->oldest_first) {
            n += snprintf(sql + n, len - (size_t)n, " ORDER BY id %s LIMIT :limit", dir);
        } else {
            n += snprintf(sql + n, len - (size_t)n, " ORDER BY ts_us %s, id %s LIMIT :limit", dir,
                          dir);
        }
    }
    if (n < 0 || (size_t)n >= len) {
        return gh_err_set(err, GH_R_INTERNAL, "query too long");
    }
    return 0;
}

static int bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i == 0 || v == NULL) {
        return 0;
    }
    return sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) == SQLITE_OK ? 0 : -1;
}

static int bind_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i == 0) {
        return 0;
    }
    return sqlite3_bind_int64(st, i, v) == SQLITE_OK ? 0 : -1;
}

/* Open, prepare and bind q. On success *dbp and *stp are the caller's. */
static int prepare(const char *path, const struct db_query *q, int explain, sqlite3 **dbp,
                   sqlite3_stmt **stp, struct gh_err *err)
{
    static const struct db_query all = {.decision = -1};
    char sql[2048];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (q == NULL) {
        q = &all;
    }
    if (build(q, explain, sql, sizeof(sql), err) != 0) {
        return -1;
    }
    int limit = q->limit <= 0 ? DEF_LIMIT : (q->limit > MAX_LIMIT ? MAX_LIMIT : q->limit);
    db = db_conn_open(path, DB_CONN_READ, 0, 0, err);
    if (db == NULL) {
        return -1;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "prepare query");
        goto fail;
    }
    if (bind_int(st, ":since", q->since_us) != 0 || bind_int(st, ":after", q->after_id) != 0 ||
        bind_text(st, ":subject", q->subject) != 0 || bind_text(st, ":route", q->route) != 0 ||
        bind_text(st, ":decision", q->decision == 1 ? "allow" : "deny") != 0 ||
        bind_text(st, ":reason", q->reason) != 0 || bind_text(st, ":session", q->session_id) != 0 ||
        bind_int(st, ":limit", limit) != 0) {
        db_sql_err(db, err, "bind query");
        goto fail;
    }
    *dbp = db;
    *stp = st;
    return 0;
fail:
    sqlite3_finalize(st);
    db_conn_close(db);
    return -1;
}

int db_decisions_query(const char *path, const struct db_query *q, db_row_cb cb, void *arg,
                       struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (cb == NULL) {
        return gh_err_set(err, GH_R_INTERNAL, "query without a callback");
    }
    if (prepare(path, q, 0, &db, &st, err) != 0) {
        return -1;
    }
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            db_sql_err(db, err, "query");
            goto out;
        }
        struct db_val v[DB_NCOLS];
        struct db_decision d;
        int64_t id;
        db_row_from_stmt(st, 0, v);
        db_row_to_decision(v, &id, &d);
        if (cb(arg, id, &d) != 0) {
            break;
        }
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}

int db_decisions_explain(const char *path, const struct db_query *q, char *buf, size_t len,
                         struct gh_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (buf == NULL || len == 0) {
        return gh_err_set(err, GH_R_INTERNAL, "no buffer");
    }
    buf[0] = '\0';
    if (prepare(path, q, 1, &db, &st, err) != 0) {
        return -1;
    }
    size_t o = 0;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            break;
        }
        if (rc != SQLITE_ROW) {
            db_sql_err(db, err, "explain");
            goto out;
        }
        /* EXPLAIN QUERY PLAN columns: id, parent, notused, detail. */
        const unsigned char *detail = sqlite3_column_text(st, 3);
        int k = snprintf(buf + o, len - o, "%s\n", detail != NULL ? (const char *)detail : "");
        if (k < 0 || (size_t)k >= len - o) {
            break; /* truncated: the buffer holds what fits */
        }
        o += (size_t)k;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    db_conn_close(db);
    return ret;
}
