/*
 * test_db_util.h: helpers shared by the tests/unit/test_db_*.c programs: a
 * scratch directory per test, row factories, direct SQL on a second
 * connection (the "attacker" or "other process" of a test), waiting for a
 * condition with a deadline.
 */
#ifndef TEST_DB_UTIL_H
#define TEST_DB_UTIL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db/db.h"
#include "gateway/base/util.h"

static char tdir[256];

static inline void tdir_make(void)
{
    snprintf(tdir, sizeof(tdir), "/tmp/gh-dbtest-XXXXXX");
    assert_non_null(mkdtemp(tdir));
}

/* On tmpfs when there is one: for loops that create thousands of databases
 * and would otherwise spend their time in fsync. */
static inline void tdir_make_fast(void)
{
    snprintf(tdir, sizeof(tdir), "/dev/shm/gh-dbtest-XXXXXX");
    if (mkdtemp(tdir) == NULL) {
        tdir_make();
    }
}

static inline void tdir_remove(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
    assert_int_equal(system(cmd), 0);
}

static inline void tpath(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tdir, name);
}

static inline void make_row(struct db_decision *d, int i)
{
    memset(d, 0, sizeof(*d));
    d->ts_us = 1700000000000000LL + (int64_t)i * 1000;
    d->worker = i % 4;
    d->conn_id = 1000 + (uint64_t)i;
    d->request_id = 5000 + (uint64_t)i;
    snprintf(d->session_id, sizeof(d->session_id), "%032x", i % 7);
    snprintf(d->client_addr, sizeof(d->client_addr), "192.0.2.%d", i % 250);
    d->client_port = 40000 + i % 1000;
    snprintf(d->cert_thumb, sizeof(d->cert_thumb), "%064x", i % 5);
    snprintf(d->cert_subject, sizeof(d->cert_subject), "CN=device-%d,O=Example", i % 5);
    snprintf(d->token_sub, sizeof(d->token_sub), "user-%d", i % 3);
    snprintf(d->token_iss, sizeof(d->token_iss), "https://idp.example");
    snprintf(d->token_jti, sizeof(d->token_jti), "jti-%d", i);
    snprintf(d->route, sizeof(d->route), "%s", i % 2 ? "wiki" : "grafana");
    snprintf(d->method, sizeof(d->method), "GET");
    snprintf(d->host, sizeof(d->host), "app.example");
    snprintf(d->path, sizeof(d->path), "/page/%d", i);
    d->decision = i % 3 == 0 ? GH_DENY : GH_ALLOW;
    d->reason = d->decision == GH_ALLOW ? GH_R_ALLOW : GH_R_POLICY_DENY;
    snprintf(d->rule_id, sizeof(d->rule_id), "rule-%d", i % 2);
    snprintf(d->policy_version, sizeof(d->policy_version), "%064x", 42);
    d->status = d->decision == GH_ALLOW ? 200 : 403;
    d->bytes_in = 100 + (uint64_t)i;
    d->bytes_out = 2000 + (uint64_t)i;
    d->latency_us = 300 + i;
    snprintf(d->detail, sizeof(d->detail), "row %d", i);
}

/* Direct SQL on a fresh connection (another process, or an attacker). */
static inline int sql_exec(const char *path, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        char *msg = NULL;
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "sql_exec: %s: %s\n", sql, msg ? msg : "?");
        }
        sqlite3_free(msg);
    }
    sqlite3_close(db);
    return rc;
}

static inline int64_t sql_int(const char *path, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Poll cond(arg) every 2 ms until true or timeout_ms; returns cond's value. */
static inline int wait_for(int (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t end = gh_mono_us() + (int64_t)timeout_ms * 1000;
    while (!cond(arg)) {
        if (gh_mono_us() > end) {
            return cond(arg);
        }
        usleep(2000);
    }
    return 1;
}

/* Completion counter for strict-mode callbacks. */
struct cb_count {
    atomic_int ok, fail;
};

static inline void count_cb(void *arg, int ok)
{
    struct cb_count *c = arg;
    if (ok) {
        atomic_fetch_add(&c->ok, 1);
    } else {
        atomic_fetch_add(&c->fail, 1);
    }
}

#endif
