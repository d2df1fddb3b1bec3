/*
 * db_int.h: helpers shared by the db/ sources; not part of the public API.
 *
 * Owns: the one description of the decisions columns (order, names, types)
 * used to build SQL, bind rows, read rows back and compute the chain hash, so
 * the four can never drift apart; connection setup (PRAGMAs); migrations.
 * Must not: be included outside db/ (tests use the public headers only).
 *
 * Threads: every function works on the connection it is handed; a
 * connection is used by one thread at a time (SQLITE_OPEN_NOMUTEX).
 */
#ifndef DB_DB_INT_H
#define DB_DB_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "gateway/base/err.h"

/* Current schema version (PRAGMA user_version after the last migration). */
#define DB_SCHEMA_VERSION 1
/* PRAGMA application_id: "GHDB", marks the file as a Gatehouse database. */
#define DB_APPLICATION_ID 0x47484442

#define DB_HASH_LEN 32
/* First byte of the canonical row serialization (docs/DECISION-LOG.md). */
#define DB_ROW_FORMAT 1

/* Default busy timeout for every connection, milliseconds. */
#define DB_BUSY_TIMEOUT_MS 5000

/*
 * The hashed columns of the decisions table, in canonical order (id first).
 * X(name, is_text). prev_hash and row_hash follow them in the table.
 * Changing this list changes the hash of every row: only ever append, and
 * bump DB_ROW_FORMAT together with a migration.
 */
#define DB_DECISION_COLUMNS(X)                                                                     \
    X(id, 0)                                                                                       \
    X(ts_us, 0)                                                                                    \
    X(worker, 0)                                                                                   \
    X(conn_id, 0)                                                                                  \
    X(request_id, 0)                                                                               \
    X(session_id, 1)                                                                               \
    X(client_addr, 1)                                                                              \
    X(client_port, 0)                                                                              \
    X(cert_thumb, 1)                                                                               \
    X(cert_subject, 1)                                                                             \
    X(token_sub, 1)                                                                                \
    X(token_iss, 1)                                                                                \
    X(token_jti, 1)                                                                                \
    X(route, 1)                                                                                    \
    X(method, 1)                                                                                   \
    X(host, 1)                                                                                     \
    X(path, 1)                                                                                     \
    X(decision, 1)                                                                                 \
    X(reason, 1)                                                                                   \
    X(rule_id, 1)                                                                                  \
    X(policy_version, 1)                                                                           \
    X(status, 0)                                                                                   \
    X(bytes_in, 0)                                                                                 \
    X(bytes_out, 0)                                                                                \
    X(latency_us, 0)                                                                               \
    X(detail, 1)

enum {
#define DB_COL_ENUM(n, t) DB_C_##n,
    DB_DECISION_COLUMNS(DB_COL_ENUM)
#undef DB_COL_ENUM
        DB_NCOLS
};

/* "id,ts_us,...,detail" (the hashed columns, canonical order). */
extern const char *const db_cols_sql;

/* One column value: integers in i, text as (s, n) -- s is not necessarily
 * NUL-terminated. */
struct db_val {
    int64_t i;
    const char *s;
    size_t n;
};

/* Views over a row; the strings point into d (which must outlive v). */
void db_row_from_decision(int64_t id, const struct db_decision *d, struct db_val v[DB_NCOLS]);
/* Read the DB_NCOLS columns starting at column first of the current row of
 * st; the strings point into st's row (valid until the next step). */
void db_row_from_stmt(sqlite3_stmt *st, int first, struct db_val v[DB_NCOLS]);
/* Copy a view into a struct (text truncated to the field sizes). */
void db_row_to_decision(const struct db_val v[DB_NCOLS], int64_t *id, struct db_decision *d);
/* Bind the view to parameters first..first+DB_NCOLS-1 of st. */
int db_row_bind(sqlite3_stmt *st, int first, const struct db_val v[DB_NCOLS]);
/* row_hash = SHA-256(prev_hash || DB_ROW_FORMAT || fields) (see the doc). */
void db_row_hash(const uint8_t prev[DB_HASH_LEN], const struct db_val v[DB_NCOLS],
                 uint8_t out[DB_HASH_LEN]);

/* Copy src into a fixed field of size dstlen, always NUL-terminated. */
void db_copy_str(char *dst, size_t dstlen, const char *src, size_t srclen);

/* Connection kinds for db_conn_open. */
enum db_conn_kind {
    DB_CONN_READ = 0,  /* SQLITE_OPEN_READONLY; file must exist at the current schema */
    DB_CONN_WRITE = 1, /* read-write, created and migrated if needed */
};

/* Open and configure a connection (PRAGMAs of docs/DECISION-LOG.md). For
 * DB_CONN_WRITE: synchronous FULL if strict else NORMAL; the schema is
 * migrated to DB_SCHEMA_VERSION. Returns NULL with err filled on failure. */
sqlite3 *db_conn_open(const char *path, enum db_conn_kind kind, int strict, int busy_ms,
                      struct gh_err *err);
void db_conn_close(sqlite3 *db);

/* Run the pending migrations on db (one transaction each). */
int db_schema_migrate(sqlite3 *db, struct gh_err *err) GH_WUR;

/* ---- the chain's appenders (writer thread, bulk loader): chain.c ---- */

/* Take the exclusive appender lock ("<path>-writer.lock", flock). Returns
 * the fd to keep open while appending, or -1 (another appender holds it). */
int db_writer_lock(const char *path, struct gh_err *err);

struct db_chain_head {
    int64_t last_id;           /* the next row gets last_id + 1 */
    int64_t row_id;            /* highest row present, 0 if none */
    int64_t anchor_id;         /* newest retention anchor, 0 if none */
    int64_t ckpt_id;           /* highest checkpoint, 0 if none */
    uint8_t prev[DB_HASH_LEN]; /* prev_hash of the next row */
    int head_verifies;         /* the last row's hash matches its content */
};
/* Where the chain continues (see chain.c). */
int db_chain_head_load(sqlite3 *db, struct db_chain_head *h, struct gh_err *err) GH_WUR;

/* The prepared statements an appender reuses. */
enum { DB_APPEND_MULTI = 16 }; /* rows per multi-row INSERT */

struct db_appender {
    sqlite3 *db;
    sqlite3_stmt *ins, *ckpt;
    sqlite3_stmt *ins_multi; /* DB_APPEND_MULTI rows; NULL: one at a time */
    int ckpt_every;
    int64_t last_id;
    uint8_t prev[DB_HASH_LEN];
};
int db_appender_prepare(struct db_appender *a, sqlite3 *db, int ckpt_every,
                        struct gh_err *err) GH_WUR;
void db_appender_finalize(struct db_appender *a);
/* Insert d as row last_id + 1 chained to prev (inside the caller's
 * transaction), and a checkpoint row when the id is a multiple of
 * ckpt_every. On success advances last_id/prev and copies the row hash to
 * hash_out; on failure leaves them alone (the caller rolls back). */
int db_appender_add(struct db_appender *a, const struct db_decision *d, int64_t now_us,
                    uint8_t hash_out[DB_HASH_LEN]) GH_WUR;
/* db_appender_add for n rows in order, DB_APPEND_MULTI per statement where
 * it can (one statement instead of sixteen: the cursors of the table and
 * its indexes are opened once, the record buffers reused). The same chain
 * and checkpoints as n calls of db_appender_add; hash_out[i] gets row i's
 * hash. On failure last_id/prev may have advanced past rows inserted
 * earlier in the call: the caller rolls back and restores them. */
int db_appender_add_many(struct db_appender *a, const struct db_decision *const *ds, int n,
                         int64_t now_us, uint8_t *const *hash_out) GH_WUR;
/* Insert a checkpoint for the current head (autocommit). */
int db_appender_checkpoint(struct db_appender *a, int64_t now_us) GH_WUR;

/* ---- walking the chain: audit.c ----
 *
 * The checks audit verify makes on every row, shared with retention (which
 * must not delete rows that would not verify: db/retention.c). A walk starts
 * after the newest retention anchor (or the genesis: id 0, 32 zero bytes)
 * and is fed the rows in id order, each selected as "db_cols_sql, prev_hash,
 * row_hash" (the hashed columns, then the two hashes). */

struct db_chain_walk {
    int64_t anchor_id;         /* the walk started after this row (0: genesis) */
    uint8_t anchor_hash[DB_HASH_LEN];
    int64_t next_id;           /* the id the next row must have */
    uint8_t prev[DB_HASH_LEN]; /* the hash its prev_hash must equal */
    int64_t bad_id;            /* set when a check fails: the first bad row */
    char msg[200];             /* and why (log-safe, names the row) */
};

/* Start a walk at the newest chain_anchor row of db (inside the caller's
 * transaction). Returns 0; 1 when the anchor is malformed (bad_id and msg
 * set: the chain cannot be checked); -1 with err on a database error. */
int db_chain_walk_start(sqlite3 *db, struct db_chain_walk *w, struct gh_err *err) GH_WUR;
/* Check the current row of st (those columns, from column first) as the
 * next link: its id is next_id (else rows are missing or out of sequence),
 * its prev_hash is prev (else the chain was spliced), its row_hash is the
 * hash of its content (else the row was edited). Returns 0 and advances
 * next_id/prev, or 1 with bad_id and msg set (w is then not advanced). */
int db_chain_walk_row(struct db_chain_walk *w, sqlite3_stmt *st, int first) GH_WUR;

/* Recreate any secondary index of the decisions table that is missing (a
 * bulk load drops them; loud: warn, since only an interrupted one leaves
 * them missing). */
int db_schema_repair_indexes(sqlite3 *db, int loud, struct gh_err *err) GH_WUR;
/* Drop the secondary indexes of the decisions table (bulk load only). */
int db_schema_drop_indexes(sqlite3 *db, struct gh_err *err) GH_WUR;

/* Fill err from the connection's last error: "what: message (code)". */
int db_sql_err(sqlite3 *db, struct gh_err *err, const char *what);
/* Execute SQL without results; -1 with err on failure. */
int db_exec(sqlite3 *db, const char *sql, struct gh_err *err) GH_WUR;

#endif
