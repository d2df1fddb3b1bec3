/*
 * test_db_audit.c: the hash chain against an attacker with write access to
 * the file. Each test builds a log through the writer, tampers with it over
 * a plain SQLite connection, and checks that audit names the right row. The
 * row hash is also recomputed here from the documented serialization
 * (docs/DECISION-LOG.md), independently of db/row.c, so the format an
 * external auditor would implement is the one the writer uses.
 */
#include <openssl/sha.h>
#include <pthread.h>

#include "test_db_util.h"

static char dbp[300];

static int setup(void **state)
{
    tdir_make();
    tpath(dbp, sizeof(dbp), "audit.db");
    return 0;
}

static int teardown(void **state)
{
    tdir_remove();
    return 0;
}

/* n rows; rows with index < n_old are 2023 timestamps, the rest are now. */
static void build(int n, int n_old)
{
    struct gh_err err = {0};
    struct db_log_opts o = {.path = dbp, .mode = DB_STRICT, .checkpoint_every = 10};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    for (int i = 0; i < n; i++) {
        struct db_decision d;
        make_row(&d, i);
        if (i >= n_old) {
            d.ts_us = gh_now_us();
        }
        assert_int_equal(db_log_append(l, &d, NULL, NULL, &err), 0);
    }
    db_log_close(l);
}

static int audit(struct db_audit_result *r)
{
    struct gh_err err = {0};
    int rc = db_audit_verify(dbp, r, &err);
    if (rc < 0) {
        fprintf(stderr, "audit error: %s\n", err.msg);
    }
    return rc;
}

static void tamper(const char *sql)
{
    assert_int_equal(sql_exec(dbp, "DROP TRIGGER IF EXISTS decisions_append_only; %s", sql),
                     SQLITE_OK);
}

/* ---- independent implementation of the documented row hash ---- */

static const struct {
    const char *name;
    int text;
} cols[] = {
    {"id", 0},           {"ts_us", 0},       {"worker", 0},
    {"conn_id", 0},      {"request_id", 0},  {"session_id", 1},
    {"client_addr", 1},  {"client_port", 0}, {"cert_thumb", 1},
    {"cert_subject", 1}, {"token_sub", 1},   {"token_iss", 1},
    {"token_jti", 1},    {"route", 1},       {"method", 1},
    {"host", 1},         {"path", 1},        {"decision", 1},
    {"reason", 1},       {"rule_id", 1},     {"policy_version", 1},
    {"status", 0},       {"bytes_in", 0},    {"bytes_out", 0},
    {"latency_us", 0},   {"detail", 1},
};
#define NC (sizeof(cols) / sizeof(cols[0]))

static void spec_hash(sqlite3_stmt *st, const uint8_t prev[32], uint8_t out[32])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, prev, 32);
    uint8_t fmt = 1;
    SHA256_Update(&c, &fmt, 1);
    for (size_t i = 0; i < NC; i++) {
        uint8_t b[8];
        if (cols[i].text) {
            uint32_t n = (uint32_t)sqlite3_column_bytes(st, (int)i);
            const unsigned char *t = sqlite3_column_text(st, (int)i);
            n = (uint32_t)sqlite3_column_bytes(st, (int)i);
            b[0] = (uint8_t)(n >> 24), b[1] = (uint8_t)(n >> 16), b[2] = (uint8_t)(n >> 8),
            b[3] = (uint8_t)n;
            SHA256_Update(&c, b, 4);
            SHA256_Update(&c, t, n);
        } else {
            uint64_t v = (uint64_t)sqlite3_column_int64(st, (int)i);
            for (int k = 7; k >= 0; k--) {
                b[k] = (uint8_t)(v & 0xff);
                v >>= 8;
            }
            SHA256_Update(&c, b, 8);
        }
    }
    SHA256_Final(out, &c);
}

static void select_sql(char *sql, size_t len, const char *where)
{
    size_t o = (size_t)snprintf(sql, len, "SELECT ");
    for (size_t i = 0; i < NC; i++) {
        o += (size_t)snprintf(sql + o, len - o, "%s%s", i ? "," : "", cols[i].name);
    }
    snprintf(sql + o, len - o, ", prev_hash, row_hash FROM decisions %s ORDER BY id", where);
}

/* Every stored row_hash equals the spec hash; returns rows checked. */
static int spec_verify_all(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[1024];
    select_sql(sql, sizeof(sql), "");
    assert_int_equal(sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    uint8_t prev[32] = {0};
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint8_t h[32];
        assert_int_equal(sqlite3_column_bytes(st, (int)NC), 32);
        assert_memory_equal(sqlite3_column_blob(st, (int)NC), prev, 32);
        spec_hash(st, prev, h);
        assert_memory_equal(sqlite3_column_blob(st, (int)NC + 1), h, 32);
        memcpy(prev, h, 32);
        n++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* What an attacker who knows the format does: recompute prev_hash/row_hash
 * for every row from id `from` on, so the walk is consistent again. */
static void rewrite_chain_from(int64_t from)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL, *up = NULL, *ph = NULL;
    char sql[1024];
    char where[64];
    snprintf(where, sizeof(where), "WHERE id >= %lld", (long long)from);
    select_sql(sql, sizeof(sql), where);
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TRIGGER IF EXISTS decisions_append_only; BEGIN", NULL, NULL, NULL),
        SQLITE_OK);
    uint8_t prev[32];
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT row_hash FROM decisions WHERE id = ?", -1, &ph, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(ph, 1, from - 1);
    assert_int_equal(sqlite3_step(ph), SQLITE_ROW);
    memcpy(prev, sqlite3_column_blob(ph, 0), 32);
    sqlite3_finalize(ph);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE decisions SET prev_hash = ?, row_hash = ? "
                                        "WHERE id = ?",
                                        -1, &up, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint8_t h[32];
        spec_hash(st, prev, h);
        sqlite3_reset(up);
        sqlite3_bind_blob(up, 1, prev, 32, SQLITE_TRANSIENT);
        sqlite3_bind_blob(up, 2, h, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(up, 3, sqlite3_column_int64(st, 0));
        assert_int_equal(sqlite3_step(up), SQLITE_DONE);
        memcpy(prev, h, 32);
    }
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void hex_of_row(int64_t id, char out[65])
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT row_hash FROM decisions WHERE id = ?", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    gh_hex(sqlite3_column_blob(st, 0), 32, out);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* What an attacker who edited row id does next: recompute its row_hash
 * from its content, so only the next row's prev_hash still disagrees. */
static void rehash_row(int64_t id)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[1024], where[64];
    snprintf(where, sizeof(where), "WHERE id = %lld", (long long)id);
    select_sql(sql, sizeof(sql), where);
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    uint8_t prev[32], h[32];
    memcpy(prev, sqlite3_column_blob(st, (int)NC), 32);
    spec_hash(st, prev, h);
    sqlite3_finalize(st);
    sqlite3_close(db);
    char hex[65];
    gh_hex(h, 32, hex);
    char upd[256];
    snprintf(upd, sizeof(upd), "UPDATE decisions SET row_hash = x'%s' WHERE id = %lld", hex,
             (long long)id);
    tamper(upd);
}

/* ---- tests ---- */

static void untouched_is_intact_and_matches_spec(void **state)
{
    build(30, 30);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.checked, 30);
    assert_int_equal(r.first_bad_id, 0);
    assert_int_equal(r.last_id, 30);
    assert_int_equal(r.checkpoints, 3);
    assert_non_null(strstr(r.msg, "intact"));
    assert_int_equal(spec_verify_all(), 30);
}

static void edited_row(void **state)
{
    build(30, 30);
    tamper("UPDATE decisions SET path = '/innocent' WHERE id = 7");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 7);
    assert_int_equal(r.checked, 6);
    assert_non_null(strstr(r.msg, "edited"));
}

static void edited_integer_and_decision(void **state)
{
    build(30, 30);
    tamper("UPDATE decisions SET decision = 'allow', reason = 'allow', status = 200 "
           "WHERE id = 4");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 4);
}

static void edited_row_with_own_hash_fixed(void **state)
{
    build(30, 30);
    tamper("UPDATE decisions SET token_sub = 'mallory' WHERE id = 7");
    /* Attacker recomputes row 7's hash only: row 8 then no longer links. */
    rehash_row(7);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 8);
    assert_non_null(strstr(r.msg, "prev_hash"));
}

static void deleted_middle_row(void **state)
{
    build(30, 30);
    tamper("DELETE FROM decisions WHERE id = 13");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 13);
    assert_int_equal(r.checked, 12);
    assert_non_null(strstr(r.msg, "missing"));
}

static void deleted_range_and_first_row(void **state)
{
    build(30, 30);
    tamper("DELETE FROM decisions WHERE id BETWEEN 13 AND 15");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 13);
    assert_non_null(strstr(r.msg, "13..15"));

    tdir_remove();
    tdir_make();
    tpath(dbp, sizeof(dbp), "audit.db");
    build(30, 30);
    tamper("DELETE FROM decisions WHERE id = 1");
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 1);
}

static void spliced_renumbered(void **state)
{
    build(30, 30);
    /* Remove row 13 and close the id gap. */
    tamper("DELETE FROM decisions WHERE id = 13;"
           " UPDATE decisions SET id = id - 1 WHERE id > 13");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 13);
    assert_non_null(strstr(r.msg, "prev_hash"));
}

static void truncated_tail(void **state)
{
    build(30, 30);
    tamper("DELETE FROM decisions WHERE id >= 26");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 26);
    assert_non_null(strstr(r.msg, "tail truncated"));
}

static void truncated_tail_and_checkpoints_needs_log_checkpoint(void **state)
{
    build(30, 30);
    char h30[65];
    hex_of_row(30, h30); /* what "chain checkpoint id=30 hash=..." logged */
    tamper("DELETE FROM decisions WHERE id >= 26; DELETE FROM chain_checkpoints WHERE "
           "row_id >= 26");
    struct db_audit_result r;
    struct gh_err err = {0};
    /* The file alone now looks consistent... */
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.checked, 25);
    /* ...the checkpoint from the process log does not. */
    assert_int_equal(db_audit_verify_checkpoint(dbp, 30, h30, &r, &err), 1);
    assert_int_equal(r.first_bad_id, 26);
    assert_non_null(strstr(r.msg, "tail truncated"));
    /* Bad input to the checkpoint form is an error, not a verdict. */
    assert_int_equal(db_audit_verify_checkpoint(dbp, 30, "xyz", &r, &err), -1);
    assert_int_equal(db_audit_verify_checkpoint(dbp, 0, h30, &r, &err), -1);
}

static void chain_rewritten_caught_by_checkpoint(void **state)
{
    build(30, 30);
    char h30[65];
    hex_of_row(30, h30);
    tamper("UPDATE decisions SET status = 200, decision = 'allow' WHERE id = 7");
    rewrite_chain_from(7);
    struct db_audit_result r;
    struct gh_err err = {0};
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 10); /* first checkpoint at or after row 7 */
    assert_non_null(strstr(r.msg, "checkpoint"));

    /* Rewriting the checkpoints too leaves only the external one. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE chain_checkpoints SET row_hash = (SELECT row_hash "
                                  "FROM decisions WHERE id = row_id)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(audit(&r), 0);
    assert_int_equal(db_audit_verify_checkpoint(dbp, 30, h30, &r, &err), 1);
    assert_int_equal(r.first_bad_id, 30);
}

static void retention_keeps_chain_verifiable(void **state)
{
    struct gh_err err = {0};
    build(30, 20);
    char h30[65];
    hex_of_row(30, h30);
    assert_int_equal(db_retention_run(dbp, 0, 7, &err), -1);
    assert_int_equal(db_retention_run(dbp, 30, 7, &err), 20);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 10);
    assert_int_equal(sql_int(dbp, "SELECT min(id) FROM decisions"), 21);
    /* One anchor row for the run, moved forward batch by batch. */
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM chain_anchor"), 1);
    assert_int_equal(sql_int(dbp, "SELECT row_id FROM chain_anchor"), 20);
    assert_int_equal(sql_int(dbp, "SELECT rows_deleted FROM chain_anchor"), 20);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.checked, 10);
    assert_int_equal(r.anchor_id, 20);
    assert_int_equal(r.last_id, 30);
    assert_int_equal(db_audit_verify_checkpoint(dbp, 30, h30, &r, &err), 0);
    /* Second run: nothing more is old enough. */
    assert_int_equal(db_retention_run(dbp, 30, 7, &err), 0);
    /* Deleting the first row after the anchor is still caught. */
    tamper("DELETE FROM decisions WHERE id = 21");
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 21);
}

static void retention_of_everything_then_new_rows(void **state)
{
    struct gh_err err = {0};
    build(25, 25);
    assert_int_equal(db_retention_run(dbp, 1, 0, &err), 25);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 0);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.checked, 0);
    /* A new writer continues after the anchor. */
    build(3, 0);
    assert_int_equal(sql_int(dbp, "SELECT min(id) FROM decisions"), 26);
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.checked, 3);
    assert_int_equal(r.anchor_id, 25);
}

/* ---- retention must not delete rows that would not verify ----
 * The review's case: a 20-row chain whose rows 1..15 are old. Tampering
 * inside the range retention purges must make it refuse -- nothing deleted,
 * the error naming the first bad row -- so audit still reports the break;
 * before the fix retention anchored on row 15 and audit said "intact". */

static long retention(int batch, struct gh_err *err)
{
    memset(err, 0, sizeof(*err));
    return db_retention_run(dbp, 1, batch, err);
}

/* Retention refused with why (naming the first bad row) in the error,
 * deleted nothing, wrote no anchor, and audit still reports the same first
 * bad row. */
static void assert_refused(int batch, int64_t first_bad, const char *why, int64_t rows)
{
    struct gh_err err;
    assert_int_equal(retention(batch, &err), DB_RETENTION_BROKEN);
    if (strstr(err.msg, why) == NULL || strstr(err.msg, "no rows deleted") == NULL) {
        fail_msg("retention error does not say '%s': %s", why, err.msg);
    }
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), rows);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM chain_anchor"), 0);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, first_bad);
}

static void retention_refuses_gap_in_range(void **state)
{
    build(20, 15);
    tamper("DELETE FROM decisions WHERE id BETWEEN 5 AND 7");
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 5);
    assert_refused(0, 5, "rows 5..7 are missing", 17);
    /* Batches that end before the gap change nothing: the whole eligible
     * range is checked before the first one. */
    assert_refused(2, 5, "rows 5..7 are missing", 17);
    assert_refused(4, 5, "rows 5..7 are missing", 17);
}

static void retention_refuses_edited_row_in_range(void **state)
{
    build(20, 15);
    tamper("UPDATE decisions SET path = '/innocent', status = 200 WHERE id = 9");
    assert_refused(0, 9, "row 9: content does not match its hash (row edited)", 20);
    assert_refused(3, 9, "row 9: content does not match its hash (row edited)", 20);
}

static void retention_refuses_edit_with_own_hash_fixed(void **state)
{
    build(20, 15);
    /* Row 9 edited and its own hash recomputed: row 10 no longer links. */
    tamper("UPDATE decisions SET token_sub = 'mallory' WHERE id = 9");
    rehash_row(9);
    assert_refused(0, 10, "row 10: prev_hash does not match row 9's hash", 20);
}

static void retention_refuses_chain_rewritten_in_range(void **state)
{
    /* A deny (row 7) turned into an allow and the chain recomputed from it:
     * every link is right, only checkpoint 10 (checkpoint_every = 10) shows
     * it. Deleting rows 1..15 would delete that checkpoint too. */
    build(20, 15);
    tamper("UPDATE decisions SET decision = 'allow', reason = 'allow', status = 200 "
           "WHERE id = 7");
    rewrite_chain_from(7);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 1);
    assert_int_equal(r.first_bad_id, 10);
    assert_refused(0, 10, "row 10 does not match a checkpoint", 20);
}

/* A first run purges rows 1..10 (anchor 10); a writer then appends rows
 * 11..20, 11..15 of them old, for a second run to start at that anchor. */
static void build_after_anchor(void)
{
    struct gh_err err;
    tdir_remove();
    tdir_make();
    tpath(dbp, sizeof(dbp), "audit.db");
    build(10, 10);
    assert_int_equal(retention(0, &err), 10);
    build(10, 5);
    assert_int_equal(sql_int(dbp, "SELECT min(id) FROM decisions"), 11);
}

static void retention_checks_link_to_existing_anchor(void **state)
{
    struct gh_err err;
    /* The first row after the anchor deleted. */
    build_after_anchor();
    tamper("DELETE FROM decisions WHERE id = 11");
    assert_int_equal(retention(0, &err), DB_RETENTION_BROKEN);
    assert_non_null(strstr(err.msg, "row 11 is missing"));
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 9);
    assert_int_equal(sql_int(dbp, "SELECT max(row_id) FROM chain_anchor"), 10);

    /* The anchor's hash altered: row 11 no longer links to it. */
    build_after_anchor();
    tamper("UPDATE chain_anchor SET row_hash = zeroblob(32)");
    assert_int_equal(retention(0, &err), DB_RETENTION_BROKEN);
    assert_non_null(strstr(err.msg, "row 11: prev_hash"));
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 10);

    /* Untouched, the second run purges 11..15 (batches of 2, each linked
     * to the anchor the one before it left) and the log verifies. */
    build_after_anchor();
    assert_int_equal(retention(2, &err), 5);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.anchor_id, 15);
    assert_int_equal(r.checked, 5);
}

static void retention_clean_purges_and_verifies(void **state)
{
    build(20, 15);
    char h20[65];
    hex_of_row(20, h20);
    struct gh_err err;
    /* Batch 4: the link from each batch's last row (now the anchor) to the
     * next batch's first row is checked on the way. */
    assert_int_equal(retention(4, &err), 15);
    assert_int_equal(sql_int(dbp, "SELECT min(id) FROM decisions"), 16);
    assert_int_equal(sql_int(dbp, "SELECT row_id FROM chain_anchor"), 15);
    assert_int_equal(sql_int(dbp, "SELECT rows_deleted FROM chain_anchor"), 15);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.checked, 5);
    assert_int_equal(r.anchor_id, 15);
    assert_int_equal(db_audit_verify_checkpoint(dbp, 20, h20, &r, &err), 0);
    /* The checkpoint at row 10 went with the rows; the one at 20 stays. */
    assert_int_equal(sql_int(dbp, "SELECT min(row_id) FROM chain_checkpoints"), 20);
    /* Nothing more is old enough. */
    assert_int_equal(retention(4, &err), 0);
}

struct appender {
    struct db_log *l;
    int n;
};

static void *append_thread(void *arg)
{
    struct appender *a = arg;
    struct gh_err err = {0};
    for (int i = 0; i < a->n; i++) {
        struct db_decision d;
        make_row(&d, i);
        while (db_log_append(a->l, &d, NULL, NULL, &err) != 0) {
            usleep(1000); /* queue full: backpressure */
        }
    }
    return NULL;
}

static void retention_concurrent_with_writer(void **state)
{
    struct gh_err err = {0};
    struct db_log_opts o = {
        .path = dbp, .mode = DB_STRICT, .checkpoint_every = 100, .queue_size = 256};
    struct db_log *l = db_log_open(&o, &err);
    assert_non_null(l);
    struct appender a = {.l = l, .n = 3000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, append_thread, &a), 0);
    long deleted = 0;
    for (int k = 0; k < 20; k++) {
        long n = db_retention_run(dbp, 1, 50, &err);
        assert_true(n >= 0);
        deleted += n;
        usleep(5000);
    }
    pthread_join(t, NULL);
    db_log_close(l);
    long n = db_retention_run(dbp, 1, 50, &err);
    assert_true(n >= 0);
    deleted += n;
    assert_true(deleted > 0);
    assert_int_equal(sql_int(dbp, "SELECT count(*) FROM decisions"), 0);
    assert_int_equal(deleted, 3000);
    struct db_audit_result r;
    assert_int_equal(audit(&r), 0);
    assert_int_equal(r.anchor_id, 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(untouched_is_intact_and_matches_spec, setup, teardown),
        cmocka_unit_test_setup_teardown(edited_row, setup, teardown),
        cmocka_unit_test_setup_teardown(edited_integer_and_decision, setup, teardown),
        cmocka_unit_test_setup_teardown(edited_row_with_own_hash_fixed, setup, teardown),
        cmocka_unit_test_setup_teardown(deleted_middle_row, setup, teardown),
        cmocka_unit_test_setup_teardown(deleted_range_and_first_row, setup, teardown),
        cmocka_unit_test_setup_teardown(spliced_renumbered, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_tail_and_checkpoints_needs_log_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(chain_rewritten_caught_by_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_keeps_chain_verifiable, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_of_everything_then_new_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_concurrent_with_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_refuses_gap_in_range, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_refuses_edited_row_in_range, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_refuses_edit_with_own_hash_fixed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retention_refuses_chain_rewritten_in_range, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(retention_checks_link_to_existing_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_clean_purges_and_verifies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
