/*
 * db.h: the decision log and the gateway's durable state, in SQLite.
 *
 * Owns: the only SQLite handles in the process (db/ is the only target that
 * links sqlite3), schema migrations, the writer thread with its bounded
 * queue and group commit, the hash chain, audit verification, queries,
 * retention, and the tables for sessions, revocations, policy versions and
 * the issuer JWKS cache. Must not: know about sockets, TLS or libevent.
 *
 * Sessions, revocations and policy versions: db/state.h. The gatehouse
 * db/decisions/audit subcommands: db/cli.h.
 *
 * Threads: db_log_open starts one writer thread that owns the write
 * connection. Workers call db_log_append (never blocks on SQLite; copies the
 * row into the queue). In strict mode the caller passes a completion
 * callback which the WRITER THREAD invokes after the row's transaction
 * committed (ok=1) or failed (ok=0); the callback must only hand off (e.g.
 * event_active), never do work. Readers (queries, audit) open their own
 * read-only connections (WAL: they never block the writer).
 */
#ifndef DB_DB_H
#define DB_DB_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/base/err.h"
#include "gateway/base/reason.h"

/* One decision row. Fixed-size fields: copied by value into the queue, so
 * appending never allocates. Longer values are truncated by the producer
 * with a trailing "..." (path) -- lengths here are the documented limits. */
struct db_decision {
    int64_t ts_us;
    int worker;
    uint64_t conn_id;
    uint64_t request_id;
    char session_id[33];
    char client_addr[64];
    int client_port;
    char cert_thumb[65]; /* hex SHA-256 of the client cert ("" if none) */
    char cert_subject[256];
    char token_sub[256];
    char token_iss[256];
    char token_jti[128];
    char route[64];
    char method[16];
    char host[256];
    char path[512];
    enum gh_decision decision;
    enum gh_reason reason;
    char rule_id[64];
    char policy_version[65];
    int status;
    uint64_t bytes_in;
    uint64_t bytes_out;
    int64_t latency_us;
    char detail[128]; /* short log-safe detail (e.g. admin action) */
};

enum db_mode {
    DB_STRICT = 0,
    DB_ASYNC = 1,
    DB_NOOP = 2 /* bench only: drops nothing, writes nothing */
};

struct db_log_opts {
    const char *path;
    enum db_mode mode;
    int queue_size;       /* rows, default 8192 */
    int async_window_ms;  /* async: max delay before a commit, default 50 */
    int max_batch;        /* rows per transaction, default 512 */
    int checkpoint_every; /* log chain-head checkpoint every N rows, default 10000 */
    /* zero = default for every field: */
    int busy_timeout_ms;  /* writer's wait for a lock another connection holds, default 5000 */
    int close_timeout_ms; /* db_log_close keeps retrying a failing write this long, default 10000 */
    int no_fsync;         /* strict only: synchronous=NORMAL instead of FULL -- a row is still
                           * committed before its response is released and survives a crash
                           * of the gateway process, but not of the machine (power loss) */
    /* Optional: runs on the writer thread after the callbacks of one batch
     * (a commit, a failure sweep, the shutdown give-up) have all run, if any
     * ran. A caller whose callbacks only stage their work can wake each
     * consumer once per batch here instead of once per row. */
    void (*batch_done)(void *arg);
    void *batch_arg;
};

struct db_log;

typedef void (*db_commit_cb)(void *arg, int ok);

/* Open (create + migrate) the database and start the writer thread. */
struct db_log *db_log_open(const struct db_log_opts *o, struct gh_err *err) GH_WUR;
/* Flush everything queued, stop the writer thread, close. NULL is a no-op. */
void db_log_close(struct db_log *l);

/* Queue one row. Returns 0 when queued. Returns -1 when the queue is full
 * (caller applies backpressure / sheds with GH_R_OVERLOADED) or the log is
 * failed in strict mode (GH_R_LOG_UNAVAILABLE: fail closed), or closing
 * (GH_R_SHUTDOWN). cb may be NULL (async rows); it runs once, on the writer
 * thread: ok=1 after the row's COMMIT returned; ok=0 when writes are failing
 * -- answer 503: the queued row was rewritten to deny / 503 /
 * decision_log_unavailable (its verdict kept in detail) and is still written
 * when the disk recovers (docs/DECISION-LOG.md, "Durability modes"). A row
 * with worker < 0 (an admin action, already done and answered) is not
 * rewritten: ok=0 only says it is not committed yet. */
int db_log_append(struct db_log *l, const struct db_decision *d, db_commit_cb cb, void *arg,
                  struct gh_err *err) GH_WUR;

struct db_log_stats {
    uint64_t queued, committed, failed, batches;
    int queue_depth, queue_size;
    int healthy;           /* 0 after a write error until a write succeeds again */
    uint64_t at_risk;      /* async: rows accepted but not yet committed */
    uint64_t rejected;     /* appends refused because the queue was full (GH_R_OVERLOADED) */
    uint64_t refused;      /* appends refused while unhealthy, strict (GH_R_LOG_UNAVAILABLE) */
    uint64_t write_errors; /* failed transactions (their rows stay queued and are retried) */
    uint64_t lost;         /* rows dropped by db_log_close after close_timeout_ms of failures */
    int64_t last_id;       /* id of the last committed row (0 if none yet) */
    uint64_t wal_checkpoints; /* background WAL checkpoint passes */
    uint64_t commit_us;       /* wall time in committed transactions, BEGIN to COMMIT
                               * returned (fsync included); / batches = mean */
};
/* Counters (a consistent snapshot; any thread). "failed" counts rows whose
 * callback ran with ok=0: their row is rewritten to status 503, reason
 * decision_log_unavailable and kept queued, so it is still written. */
void db_log_stats(struct db_log *l, struct db_log_stats *out);

/* db_log_append that leaves waking the writer to the caller: *wake is set
 * to 1 when the writer may be waiting for this row, and the caller must then
 * call db_log_wake(l) soon -- the gateway does it once at the end of an
 * event-loop pass, so the rows of one pass reach the writer together
 * (bigger strict batches, one wake-up instead of one per first row). */
int db_log_append_nowake(struct db_log *l, const struct db_decision *d, db_commit_cb cb, void *arg,
                         int *wake, struct gh_err *err) GH_WUR;
void db_log_wake(struct db_log *l);

/* Test hook: make the writer apply PRAGMA max_page_count = pages before its
 * next transaction (a small value simulates a full disk; SQLite never shrinks
 * it below the current size). Returns 0, or -1 for a NULL/NOOP log. */
int db_log_test_set_max_pages(struct db_log *l, int64_t pages) GH_WUR;

/* Bulk append, for imports and benchmarks. Offline: fails while a gateway
 * has the log open (same lock as db_log_open). next() fills *d and returns 1,
 * or returns 0 at the end, -1 to abort. Rows get ids, hash chain and
 * checkpoints exactly as through db_log_append; the secondary indexes are
 * dropped during the load and rebuilt at the end (db/bulk.c says why).
 * Returns rows appended, or -1 (rows committed before the error stay; the
 * chain stays valid and the indexes are rebuilt). */
long db_bulk_append(const char *path, int (*next)(void *arg, struct db_decision *d), void *arg,
                    struct gh_err *err) GH_WUR;

/* Schema migration only (gatehouse db migrate); also rebuilds a missing
 * index of the decisions table. */
int db_migrate(const char *path, struct gh_err *err) GH_WUR;

/* Audit: walk the hash chain. Returns 0 if intact; 1 if broken, with
 * first_bad_id set and msg explaining (edited row, gap/deleted row, tail
 * truncated vs last checkpoint); -1 on error. checked = rows verified. */
struct db_audit_result {
    uint64_t checked;
    int64_t first_bad_id;
    char msg[256];
    int64_t anchor_id;    /* chain starts after this row (retention), 0 = from the start */
    int64_t last_id;      /* highest row id present (set when the walk completed) */
    uint64_t checkpoints; /* checkpoints compared */
};
int db_audit_verify(const char *path, struct db_audit_result *r, struct gh_err *err) GH_WUR;
/* db_audit_verify, and also check that row id carried hash_hex (64 hex): a
 * checkpoint copied from the process log ("chain checkpoint id=N hash=H"),
 * which someone who rewrote the database file could not also rewrite. */
int db_audit_verify_checkpoint(const char *path, int64_t id, const char *hash_hex,
                               struct db_audit_result *r, struct gh_err *err) GH_WUR;

/* Query decisions. Filters may be NULL/0. Calls cb for each row, up to
 * limit rows: newest first by ts_us (ties by id); with after_id > 0, newest
 * first by id; with oldest_first, oldest first by id (commit order) --
 * whatever after_id is, 0 included, so a follower that pages with after_id
 * = the last id it saw never skips a row (docs/DECISION-LOG.md). */
struct db_query {
    int64_t since_us;
    int64_t after_id;    /* only rows with id > after_id (for follow) */
    const char *subject; /* token_sub or cert_subject equals */
    const char *route;
    int decision;       /* -1 any, 0 deny, 1 allow */
    const char *reason; /* reason name */
    const char *session_id;
    int limit; /* default 100, max 10000 */
    int oldest_first; /* id ascending (the follow order), see above */
};
typedef int (*db_row_cb)(void *arg, int64_t id, const struct db_decision *d);
/* cb returning non-zero stops the walk (db_decisions_query still returns 0).
 * An unknown reason name or a decision other than -1/0/1 is an error
 * (GH_R_ADMIN_BAD_REQUEST); limit <= 0 means 100, above 10000 means 10000. */
int db_decisions_query(const char *path, const struct db_query *q, db_row_cb cb, void *arg,
                       struct gh_err *err) GH_WUR;
/* The query plan SQLite picks for q (EXPLAIN QUERY PLAN, one step per line)
 * into buf: shows which index a filter uses. */
int db_decisions_explain(const char *path, const struct db_query *q, char *buf, size_t len,
                         struct gh_err *err) GH_WUR;

/* Retention: delete rows older than days, in batches of batch rows, keeping
 * the chain verifiable (see docs/DECISION-LOG.md). Rows are deleted only
 * after they pass audit's checks (contiguous ids from the retention anchor,
 * linked hashes, content matching its hash, checkpoints matching). Returns
 * rows deleted; -1 on error; DB_RETENTION_BROKEN when it refused because
 * the rows it would delete do not verify: err names the first bad row, and
 * that row and every row after it stay (normally nothing is deleted at all:
 * the whole eligible range is checked before the first batch). */
#define DB_RETENTION_BROKEN (-2L)
long db_retention_run(const char *path, int days, int batch, struct gh_err *err);

/* Small key/value table for durable gateway state that is not a decision
 * (e.g. "jwks:<issuer>" -> last good JWKS JSON). For the control thread only
 * (opens its own connection; may block briefly). db_kv_get returns a
 * malloc'd NUL-terminated copy the caller frees, or NULL: absent (err
 * cleared, err->msg[0] == '\0') or error (err->msg says why). Keys are at
 * most 1024 bytes, values 16 MiB. */
int db_kv_put(const char *path, const char *key, const char *val, size_t len,
              struct gh_err *err) GH_WUR;
char *db_kv_get(const char *path, const char *key, size_t *len, struct gh_err *err);

#endif
