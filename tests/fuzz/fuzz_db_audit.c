/*
 * fuzz_db_audit.c: libFuzzer target for everything that reads a decision
 * log an attacker may have written to: audit verify, queries, the writer's
 * chain-head load at start, retention.
 *
 * A template log (40 rows, checkpoints every 7) is built once. Each input is
 * a program of tampering operations applied over a plain SQLite connection
 * to a fresh copy: set any column of any row to an integer, text, blob or
 * NULL; delete rows, ranges or the tail; renumber ids; forge checkpoints and
 * retention anchors; and drop the table's constraints so that wrong types
 * and NULLs get in. Then every reader runs on the result. They must never
 * crash, leak or hit UB; audit must answer 0, 1 or -1, and 0 only with
 * every row checked; an input with no operation must verify intact; and a
 * writer opened on the tampered file must either refuse cleanly or append a
 * row -- and appending to a chain that verified keeps it verifying.
 *
 * Input: repeated 6-byte records [op, row, col, kind, a, b] followed, for
 * text/blob values, by a bytes of payload.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/db.h"
#include "gateway/base/log.h"

static const char *const cols[] = {
    "id",          "ts_us",       "worker",         "conn_id",      "request_id", "session_id",
    "client_addr", "client_port", "cert_thumb",     "cert_subject", "token_sub",  "token_iss",
    "token_jti",   "route",       "method",         "host",         "path",       "decision",
    "reason",      "rule_id",     "policy_version", "status",       "bytes_in",   "bytes_out",
    "latency_us",  "detail",      "prev_hash",      "row_hash",
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static char dir[128], tmpl[192], work[192];
static unsigned char *tmpl_bytes;
static size_t tmpl_len;

static void rm_work(void)
{
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[256];
        snprintf(f, sizeof(f), "%s%s", work, sfx[i]);
        unlink(f);
    }
}

static void cleanup(void)
{
    const char *names[] = {"work.db", "work.db-wal", "work.db-shm", "work.db-writer.lock",
                           "tmpl.db", "tmpl.db-wal", "tmpl.db-shm", "tmpl.db-writer.lock"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char f[256];
        snprintf(f, sizeof(f), "%s/%s", dir, names[i]);
        unlink(f);
    }
    rmdir(dir);
}

static void init(void)
{
    gh_log_set_level(GH_LOG_ERROR + 1); /* quiet: tampering logs errors by design */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof(dir), "%s/gh-fuzz-audit-XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    atexit(cleanup);
    snprintf(tmpl, sizeof(tmpl), "%s/tmpl.db", dir);
    snprintf(work, sizeof(work), "%s/work.db", dir);
    struct gh_err err;
    struct db_log_opts o = {
        .path = tmpl, .mode = DB_ASYNC, .checkpoint_every = 7, .async_window_ms = 1};
    struct db_log *l = db_log_open(&o, &err);
    if (l == NULL) {
        abort();
    }
    for (int i = 0; i < 40; i++) {
        struct db_decision d;
        memset(&d, 0, sizeof(d));
        d.ts_us = 1700000000000000LL + i * 1000000LL;
        snprintf(d.token_sub, sizeof(d.token_sub), "user-%d", i % 3);
        snprintf(d.cert_subject, sizeof(d.cert_subject), "CN=dev-%d", i % 4);
        snprintf(d.route, sizeof(d.route), "r%d", i % 2);
        snprintf(d.path, sizeof(d.path), "/p/%d", i);
        d.decision = i % 3 ? GH_ALLOW : GH_DENY;
        d.reason = i % 3 ? GH_R_ALLOW : GH_R_POLICY_DENY;
        d.status = i % 3 ? 200 : 403;
        if (db_log_append(l, &d, NULL, NULL, &err) != 0) {
            abort();
        }
    }
    db_log_close(l); /* checkpoints the WAL into the file */
    FILE *f = fopen(tmpl, "rb");
    if (f == NULL) {
        abort();
    }
    fseek(f, 0, SEEK_END);
    tmpl_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    tmpl_bytes = malloc(tmpl_len);
    if (tmpl_bytes == NULL || fread(tmpl_bytes, 1, tmpl_len, f) != tmpl_len) {
        abort();
    }
    fclose(f);
}

static void bind_value(sqlite3_stmt *st, int i, int kind, int a, int b, const uint8_t **p,
                       size_t *left)
{
    size_t n = (size_t)a % 48;
    if (n > *left) {
        n = *left;
    }
    switch (kind % 4) {
    case 0:
        sqlite3_bind_int64(st, i, (int64_t)((a << 8 | b) - 20000));
        break;
    case 1:
        sqlite3_bind_text(st, i, (const char *)*p, (int)n, SQLITE_TRANSIENT);
        *p += n;
        *left -= n;
        break;
    case 2:
        sqlite3_bind_blob(st, i, *p, (int)n, SQLITE_TRANSIENT);
        *p += n;
        *left -= n;
        break;
    default:
        sqlite3_bind_null(st, i);
        break;
    }
}

/* Apply the tampering program; returns the number of operations. */
static int tamper(const uint8_t *data, size_t size)
{
    sqlite3 *db = NULL;
    int ops = 0;
    if (sqlite3_open_v2(work, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        abort();
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_exec(db, "DROP TRIGGER decisions_append_only", NULL, NULL, NULL);
    const uint8_t *p = data;
    size_t left = size;
    while (left >= 6 && ops < 32) {
        int op = p[0] % 10, row = p[1] % 48, col = p[2] % (int)NCOLS, kind = p[3], a = p[4],
            b = p[5];
        p += 6;
        left -= 6;
        ops++;
        char sql[512];
        sqlite3_stmt *st = NULL;
        switch (op) {
        case 0:
        case 1:
        case 2:
            snprintf(sql, sizeof(sql), "UPDATE decisions SET %s = ?1 WHERE id = %d", cols[col],
                     row);
            break;
        case 3:
            snprintf(sql, sizeof(sql), "DELETE FROM decisions WHERE id = %d", row);
            break;
        case 4:
            snprintf(sql, sizeof(sql), "DELETE FROM decisions WHERE id >= %d", row);
            break;
        case 5:
            snprintf(sql, sizeof(sql), "UPDATE decisions SET id = id + %d WHERE id >= %d",
                     1 + a % 5, row);
            break;
        case 6:
            snprintf(sql, sizeof(sql),
                     "INSERT INTO chain_checkpoints (row_id, row_hash, ts_us) VALUES (%d, ?1, 0)",
                     row);
            break;
        case 7:
            snprintf(sql, sizeof(sql),
                     "INSERT INTO chain_anchor (row_id, row_hash, ts_us, cutoff_us, rows_deleted)"
                     " VALUES (%d, ?1, 0, 0, 0)",
                     row);
            break;
        case 8:
            snprintf(sql, sizeof(sql), "DELETE FROM chain_checkpoints WHERE row_id >= %d", row);
            break;
        default:
            /* Same columns, no constraints: NULLs and any type get in. */
            snprintf(sql, sizeof(sql),
                     "CREATE TABLE IF NOT EXISTS loose AS SELECT * FROM decisions;"
                     " DROP TABLE decisions; ALTER TABLE loose RENAME TO decisions");
            sqlite3_exec(db, sql, NULL, NULL, NULL);
            continue;
        }
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_bind_parameter_count(st) > 0) {
                bind_value(st, 1, kind, a, b, &p, &left);
            }
            sqlite3_step(st);
        }
        sqlite3_finalize(st);
    }
    if (sqlite3_close(db) != SQLITE_OK) {
        abort();
    }
    return ops;
}

static int count_cb(void *arg, int64_t id, const struct db_decision *d)
{
    (*(long *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    rm_work();
    FILE *f = fopen(work, "wb");
    if (f == NULL || fwrite(tmpl_bytes, 1, tmpl_len, f) != tmpl_len) {
        abort();
    }
    fclose(f);
    int ops = tamper(data, size);

    struct gh_err err;
    struct db_audit_result r;
    int rc = db_audit_verify(work, &r, &err);
    if (rc < -1 || rc > 1 || (ops == 0 && rc != 0) || (rc == 1 && r.msg[0] == '\0')) {
        abort();
    }
    long n = 0;
    struct db_query q = {.decision = -1, .subject = "user-1", .limit = 10000};
    if (db_decisions_query(work, &q, count_cb, &n, &err) == 0 && n > 40) {
        abort(); /* only rows that exist can be returned */
    }
    if (rc == 0) {
        /* Intact: the walk saw every row there is. */
        long all = 0;
        struct db_query qa = {.decision = -1, .limit = 10000};
        if (db_decisions_query(work, &qa, count_cb, &all, &err) == 0 &&
            (uint64_t)all != r.checked) {
            abort();
        }
    }
    /* The writer on a tampered file: refuse cleanly or append. */
    struct db_log_opts o = {
        .path = work, .mode = DB_STRICT, .busy_timeout_ms = 50, .close_timeout_ms = 200};
    struct db_log *l = db_log_open(&o, &err);
    if (l != NULL) {
        struct db_decision d;
        memset(&d, 0, sizeof(d));
        snprintf(d.path, sizeof(d.path), "/after");
        if (db_log_append(l, &d, NULL, NULL, &err) != 0) {
            abort();
        }
        db_log_close(l);
        struct db_audit_result r2;
        int rc2 = db_audit_verify(work, &r2, &err);
        /* Appending to an intact chain keeps it intact. */
        if (rc2 < -1 || rc2 > 1 || (rc == 0 && rc2 == 1)) {
            abort();
        }
    }
    long del = db_retention_run(work, 1, 1000, &err);
    (void)del;
    return 0;
}
