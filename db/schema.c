/*
 * schema.c: connection setup and forward-only schema migrations.
 *
 * Every connection in db/ is opened here so the PRAGMAs of
 * docs/DECISION-LOG.md are applied in one place: WAL, synchronous FULL for
 * strict durability (NORMAL otherwise), a busy timeout, foreign keys, and the
 * hardening switches (defensive mode, untrusted schema) that keep a crafted
 * database file from running code through views or triggers when an auditor
 * opens it.
 *
 * Migrations: PRAGMA user_version is the schema version; migrations[v] takes
 * version v to v+1 inside one BEGIN IMMEDIATE transaction that re-reads the
 * version first, so two processes migrating at once cannot both apply a step.
 * A database newer than this binary, or a file that is some other
 * application's database, is refused rather than touched. Migrations are
 * history: never edit a released step, append a new one.
 */
#include "db/db_int.h"

#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <stdint.h>

#include "gateway/base/log.h"
#include "gateway/base/util.h"

struct migration {
    const char *description;
    const char *sql;
};

static const struct migration migrations[DB_SCHEMA_VERSION] = {
    {"initial schema: decisions, chain, sessions, revocations, policy versions, kv",
     "CREATE TABLE schema_migrations ("
     "  version INTEGER PRIMARY KEY,"
     "  applied_us INTEGER NOT NULL,"
     "  description TEXT NOT NULL);"
     "CREATE TABLE decisions ("
     "  id INTEGER PRIMARY KEY,"
     "  ts_us INTEGER NOT NULL,"
     "  worker INTEGER NOT NULL,"
     "  conn_id INTEGER NOT NULL,"
     "  request_id INTEGER NOT NULL,"
     "  session_id TEXT NOT NULL,"
     "  client_addr TEXT NOT NULL,"
     "  client_port INTEGER NOT NULL,"
     "  cert_thumb TEXT NOT NULL,"
     "  cert_subject TEXT NOT NULL,"
     "  token_sub TEXT NOT NULL,"
     "  token_iss TEXT NOT NULL,"
     "  token_jti TEXT NOT NULL,"
     "  route TEXT NOT NULL,"
     "  method TEXT NOT NULL,"
     "  host TEXT NOT NULL,"
     "  path TEXT NOT NULL,"
     "  decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),"
     "  reason TEXT NOT NULL,"
     "  rule_id TEXT NOT NULL,"
     "  policy_version TEXT NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  bytes_in INTEGER NOT NULL,"
     "  bytes_out INTEGER NOT NULL,"
     "  latency_us INTEGER NOT NULL,"
     "  detail TEXT NOT NULL,"
     "  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),"
     "  row_hash BLOB NOT NULL CHECK (length(row_hash) = 32));"
     "CREATE INDEX decisions_ts ON decisions(ts_us);"
     "CREATE INDEX decisions_sub_ts ON decisions(token_sub, ts_us);"
     "CREATE INDEX decisions_cert_sub_ts ON decisions(cert_subject, ts_us);"
     "CREATE INDEX decisions_route_ts ON decisions(route, ts_us);"
     "CREATE INDEX decisions_reason_ts ON decisions(reason, ts_us);"
     "CREATE INDEX decisions_session_ts ON decisions(session_id, ts_us);"
     /* Rows are append-only. This stops accidents (an operator's UPDATE), not
      * an attacker -- the hash chain does that. Retention deletes, so DELETE
      * is allowed. */
     "CREATE TRIGGER decisions_append_only BEFORE UPDATE ON decisions"
     " BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;"
     "CREATE TABLE chain_checkpoints ("
     "  id INTEGER PRIMARY KEY,"
     "  row_id INTEGER NOT NULL,"
     "  row_hash BLOB NOT NULL CHECK (length(row_hash) = 32),"
     "  ts_us INTEGER NOT NULL);"
     "CREATE INDEX chain_checkpoints_row ON chain_checkpoints(row_id);"
     "CREATE TABLE chain_anchor ("
     "  id INTEGER PRIMARY KEY,"
     "  row_id INTEGER NOT NULL,"
     "  row_hash BLOB NOT NULL CHECK (length(row_hash) = 32),"
     "  ts_us INTEGER NOT NULL,"
     "  cutoff_us INTEGER NOT NULL,"
     "  rows_deleted INTEGER NOT NULL);"
     "CREATE TABLE sessions ("
     "  id TEXT PRIMARY KEY,"
     "  issuer TEXT NOT NULL,"
     "  subject TEXT NOT NULL,"
     "  cert_thumb TEXT NOT NULL,"
     "  cert_subject TEXT NOT NULL,"
     "  first_seen_us INTEGER NOT NULL,"
     "  last_seen_us INTEGER NOT NULL,"
     "  requests INTEGER NOT NULL,"
     "  bytes_in INTEGER NOT NULL,"
     "  bytes_out INTEGER NOT NULL,"
     "  last_addr TEXT NOT NULL,"
     "  state TEXT NOT NULL CHECK (state IN ('active', 'ended', 'revoked')),"
     "  revoked_us INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX sessions_triple ON sessions(issuer, subject, cert_thumb);"
     "CREATE INDEX sessions_last_seen ON sessions(last_seen_us);"
     "CREATE TABLE revocations ("
     "  id INTEGER PRIMARY KEY,"
     "  kind TEXT NOT NULL CHECK (kind IN ('session', 'subject', 'cert', 'token')),"
     "  target TEXT NOT NULL,"
     "  reason TEXT NOT NULL,"
     "  actor TEXT NOT NULL,"
     "  created_us INTEGER NOT NULL,"
     "  expires_us INTEGER NOT NULL,"
     "  lifted_us INTEGER NOT NULL,"
     "  lifted_by TEXT NOT NULL);"
     "CREATE INDEX revocations_kind_target ON revocations(kind, target);"
     "CREATE INDEX revocations_open ON revocations(lifted_us, expires_us);"
     "CREATE TABLE policy_versions ("
     "  id INTEGER PRIMARY KEY,"
     "  hash TEXT NOT NULL UNIQUE,"
     "  source TEXT NOT NULL,"
     "  applied_by TEXT NOT NULL,"
     "  applied_us INTEGER NOT NULL,"
     "  activated_us INTEGER NOT NULL,"
     "  active INTEGER NOT NULL CHECK (active IN (0, 1)),"
     "  comment TEXT NOT NULL);"
     "CREATE UNIQUE INDEX policy_versions_one_active ON policy_versions(active)"
     " WHERE active = 1;"
     "CREATE TABLE kv ("
     "  key TEXT PRIMARY KEY,"
     "  value BLOB NOT NULL,"
     "  updated_us INTEGER NOT NULL) WITHOUT ROWID;"},
};

/* The secondary indexes of decisions as of the latest migration (the bulk
 * loader drops them and rebuilds; an interrupted load is repaired from this
 * list). Keep in step with the migrations; test_db_schema checks. */
static const struct {
    const char *name;
    const char *sql;
} decision_indexes[] = {
    {"decisions_ts", "CREATE INDEX decisions_ts ON decisions(ts_us)"},
    {"decisions_sub_ts", "CREATE INDEX decisions_sub_ts ON decisions(token_sub, ts_us)"},
    {"decisions_cert_sub_ts",
     "CREATE INDEX decisions_cert_sub_ts ON decisions(cert_subject, ts_us)"},
    {"decisions_route_ts", "CREATE INDEX decisions_route_ts ON decisions(route, ts_us)"},
    {"decisions_reason_ts", "CREATE INDEX decisions_reason_ts ON decisions(reason, ts_us)"},
    {"decisions_session_ts", "CREATE INDEX decisions_session_ts ON decisions(session_id, ts_us)"},
};
#define N_INDEXES (sizeof(decision_indexes) / sizeof(decision_indexes[0]))

int db_sql_err(sqlite3 *db, struct gh_err *err, const char *what)
{
    int code = db != NULL ? sqlite3_extended_errcode(db) : SQLITE_ERROR;
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    return gh_err_set(err, GH_R_INTERNAL, "%s: %s (sqlite %d)", what, msg, code);
}

int db_exec(sqlite3 *db, const char *sql, struct gh_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return db_sql_err(db, err, "sql");
    }
    return 0;
}

/* Single integer result of a PRAGMA or SELECT; -1 with err on failure. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "prepare");
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_DONE) {
        *out = 0;
    } else {
        db_sql_err(db, err, "read schema state");
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

/* Refuse files that are not ours or are newer than this binary. Sets *ver. */
static int check_identity(sqlite3 *db, int64_t *ver, struct gh_err *err)
{
    int64_t app = 0, tables = 0;
    if (query_int(db, "PRAGMA user_version", ver, err) != 0 ||
        query_int(db, "PRAGMA application_id", &app, err) != 0) {
        return -1;
    }
    if (app != 0 && app != DB_APPLICATION_ID) {
        return gh_err_set(err, GH_R_INTERNAL, "not a gatehouse database (application_id %lld)",
                          (long long)app);
    }
    if (*ver > DB_SCHEMA_VERSION) {
        return gh_err_set(err, GH_R_INTERNAL,
                          "database schema version %lld is newer than this gatehouse (%d)",
                          (long long)*ver, DB_SCHEMA_VERSION);
    }
    if (*ver == 0) {
        if (query_int(db, "SELECT count(*) FROM sqlite_schema", &tables, err) != 0) {
            return -1;
        }
        if (tables > 0 || app != 0) {
            return gh_err_set(err, GH_R_INTERNAL,
                              "not a gatehouse database (tables present, no schema version)");
        }
    }
    return 0;
}

/* Stamp the new version (user_version, application_id) and keep a history
 * row, inside the migration's transaction. */
static int record_migration(sqlite3 *db, int64_t ver, const struct migration *m, struct gh_err *err)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %lld;",
             DB_APPLICATION_ID, (long long)ver);
    if (db_exec(db, sql, err) != 0) {
        return -1;
    }
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(db, "INSERT INTO schema_migrations VALUES (?, ?, ?)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, ver);
        sqlite3_bind_int64(st, 2, gh_now_us());
        sqlite3_bind_text(st, 3, m->description, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return db_sql_err(db, err, "record migration");
    }
    return 0;
}

int db_schema_migrate(sqlite3 *db, struct gh_err *err)
{
    int64_t ver = 0;
    if (check_identity(db, &ver, err) != 0) {
        return -1;
    }
    while (ver < DB_SCHEMA_VERSION) {
        if (db_exec(db, "BEGIN IMMEDIATE", err) != 0) {
            return -1;
        }
        /* Re-read under the write lock: another process may have migrated. */
        if (check_identity(db, &ver, err) != 0) {
            goto fail;
        }
        if (ver >= DB_SCHEMA_VERSION) {
            if (db_exec(db, "COMMIT", err) != 0) {
                goto fail;
            }
            break;
        }
        const struct migration *m = &migrations[ver];
        if (db_exec(db, m->sql, err) != 0 || record_migration(db, ver + 1, m, err) != 0) {
            goto fail;
        }
        if (db_exec(db, "COMMIT", err) != 0) {
            goto fail;
        }
        GH_INFO("db: schema migrated to version %lld (%s)", (long long)(ver + 1), m->description);
        ver++;
    }
    return 0;
fail:
    if (!sqlite3_get_autocommit(db)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return -1;
}

/* The first statement on a connection is where SQLite notices a file that
 * is not a database; keep the message readable for operators. */
static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t outlen, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_sql_err(db, err, "open");
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_sql_err(db, err, "open");
        goto out;
    }
    const unsigned char *t = sqlite3_column_text(st, 0);
    db_copy_str(out, outlen, t != NULL ? (const char *)t : "",
                t != NULL ? strlen((const char *)t) : 0);
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

/* Waiting for another connection's write lock: poll every millisecond up
 * to the timeout. SQLite's default handler backs off to 100 ms sleeps, which
 * showed up as 250-850 ms tails on revocations (persisted on the control
 * thread while the decision writer commits); the lock is normally held for
 * a few milliseconds. */
static int busy_poll(void *arg, int count)
{
    int limit_ms = (int)(intptr_t)arg;
    if (count >= limit_ms) {
        return 0; /* give up: SQLITE_BUSY */
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    return 1;
}

sqlite3 *db_conn_open(const char *path, enum db_conn_kind kind, int strict, int busy_ms,
                      struct gh_err *err)
{
    sqlite3 *db = NULL;
    if (path == NULL || path[0] == '\0') {
        gh_err_set(err, GH_R_INTERNAL, "no database path");
        return NULL;
    }
    int flags = SQLITE_OPEN_NOMUTEX;
    flags |=
        kind == DB_CONN_READ ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (kind != DB_CONN_READ) {
        /* The log names people, devices and addresses: create it owner-only
         * (SQLite gives its -wal and -shm files the database file's mode). */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            close(fd);
        }
    }
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (db == NULL) {
            gh_err_set(err, GH_R_INTERNAL, "open %s: %s", path, sqlite3_errstr(rc));
        } else {
            gh_err_set(err, GH_R_INTERNAL, "open %s: %s", path, sqlite3_errmsg(db));
        }
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_handler(db, busy_poll, (void *)(intptr_t)(busy_ms > 0 ? busy_ms : DB_BUSY_TIMEOUT_MS));
    /* Defensive: no writable_schema tricks, no corrupting the file through
     * SQL. Untrusted schema: views/triggers in the file cannot call functions
     * with side effects -- audit may be run on a file an attacker touched. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    char mode[32];
    if (kind == DB_CONN_READ) {
        int64_t ver = 0;
        if (check_identity(db, &ver, err) != 0) {
            goto fail;
        }
        if (ver != DB_SCHEMA_VERSION) {
            gh_err_set(err, GH_R_INTERNAL,
                       "database schema version %lld, expected %d: run gatehouse db migrate",
                       (long long)ver, DB_SCHEMA_VERSION);
            goto fail;
        }
        if (db_exec(db, "PRAGMA temp_store = MEMORY", err) != 0) {
            goto fail;
        }
        return db;
    }
    if (pragma_text(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err) != 0) {
        goto fail;
    }
    if (strcmp(mode, "wal") != 0) {
        gh_err_set(err, GH_R_INTERNAL, "open %s: cannot enable WAL (journal_mode %s)", path, mode);
        goto fail;
    }
    const char *pragmas = strict ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;";
    if (db_exec(db, pragmas, err) != 0 ||
        db_exec(db,
                "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
                " PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -65536;",
                err) != 0) {
        goto fail;
    }
    if (db_schema_migrate(db, err) != 0) {
        goto fail;
    }
    return db;
fail:
    sqlite3_close(db);
    return NULL;
}

void db_conn_close(sqlite3 *db)
{
    if (db != NULL) {
        /* close_v2: statements left behind by an error path cannot keep the
         * handle alive past this point unnoticed; all callers finalize. */
        sqlite3_close_v2(db);
    }
}

int db_schema_repair_indexes(sqlite3 *db, int loud, struct gh_err *err)
{
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_sql_err(db, err, "check indexes");
    }
    for (size_t i = 0; i < N_INDEXES; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, decision_indexes[i].name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            db_sql_err(db, err, "check indexes");
            goto out;
        }
        if (sqlite3_column_int(st, 0) == 0) {
            if (loud) {
                GH_WARN("db: index %s is missing (interrupted bulk load?): rebuilding",
                        decision_indexes[i].name);
            }
            if (db_exec(db, decision_indexes[i].sql, err) != 0) {
                goto out;
            }
        }
    }
    ret = 0;
out:
    sqlite3_finalize(st);
    return ret;
}

int db_schema_drop_indexes(sqlite3 *db, struct gh_err *err)
{
    for (size_t i = 0; i < N_INDEXES; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP INDEX IF EXISTS %s", decision_indexes[i].name);
        if (db_exec(db, sql, err) != 0) {
            return -1;
        }
    }
    return 0;
}

int db_migrate(const char *path, struct gh_err *err)
{
    sqlite3 *db = db_conn_open(path, DB_CONN_WRITE, 1, 0, err);
    if (db == NULL) {
        return -1;
    }
    int ret = db_schema_repair_indexes(db, 1, err);
    db_conn_close(db);
    return ret;
}
