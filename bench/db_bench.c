/*
 * db_bench.c: how fast the decision log is, on this machine.
 *
 * Measures, through the public db.h API only:
 *   1. writer throughput in strict mode (every row fsync'd before its
 *      callback; closed loop with --inflight rows outstanding, as a gateway
 *      with that many requests waiting) and the append->callback latency;
 *   2. writer throughput in async mode (no callbacks, window 50 ms) and in
 *      NOOP mode (queue + thread only, no SQLite);
 *   3. on a log of --rows rows (default 10 M, generated with db_bulk_append
 *      -- the writer's rows and chain, indexes built at the end --,
 *      timestamps spread over 30 days, 1000 users on 2 devices each plus one
 *      hot service account with 10% of the traffic, ~10% denies): bytes per
 *      row on disk, audit verify rows/s, and the time of "denies for subject
 *      X in the last hour" (median of 21 runs, including opening the
 *      connection).
 * Prints a table and one JSON line (prefix "DB_BENCH_JSON ") for scripts.
 * Benchmarks are not tests: nothing here asserts.
 *
 * usage: db_bench [--rows N] [--writer-rows N] [--inflight N] [--dir DIR] [--db FILE]
 *   --db FILE reuses (or keeps) the big log at FILE instead of a temporary one.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"

#define HOUR_US 3600000000LL
#define SPAN_US (30LL * 24 * HOUR_US)
#define N_USERS 1000

static long long opt_rows = 10000000;
static long long opt_writer_rows = 200000;
static int opt_inflight = 1024;
static const char *opt_dir = "/tmp";
static const char *opt_db = NULL;

static void make_row(struct db_decision *d, long long i, long long n, int64_t end_us)
{
    memset(d, 0, sizeof(*d));
    d->ts_us = end_us - SPAN_US + (int64_t)((double)SPAN_US * (double)i / (double)n);
    unsigned long long h = (unsigned long long)i * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    d->worker = (int)(h % 4);
    d->conn_id = (uint64_t)i / 8;
    d->request_id = (uint64_t)i;
    snprintf(d->session_id, sizeof(d->session_id), "%032llx", ((h >> 13) % N_USERS) * 2 + (h & 1));
    snprintf(d->client_addr, sizeof(d->client_addr), "10.%llu.%llu.%llu", (h >> 3) % 256,
             (h >> 11) % 256, (h >> 19) % 256);
    d->client_port = 1024 + (int)(h % 60000);
    int hot = h % 10 == 0;
    unsigned long long user = (h >> 13) % N_USERS;
    if (hot) {
        snprintf(d->token_sub, sizeof(d->token_sub), "svc-batch");
        snprintf(d->cert_subject, sizeof(d->cert_subject), "CN=svc-batch,O=Example Corp");
    } else {
        snprintf(d->token_sub, sizeof(d->token_sub), "user-%04llu", user);
        snprintf(d->cert_subject, sizeof(d->cert_subject), "CN=laptop-%04llu,O=Example Corp", user);
    }
    snprintf(d->cert_thumb, sizeof(d->cert_thumb), "%016llx%016llx%016llx%016llx", user, h,
             user * 7, h >> 7);
    snprintf(d->token_iss, sizeof(d->token_iss), "https://idp.example.com/realms/corp");
    snprintf(d->token_jti, sizeof(d->token_jti), "%016llx-%08llx", h, (unsigned long long)i);
    static const char *routes[] = {"grafana", "wiki", "git", "ci", "admin"};
    snprintf(d->route, sizeof(d->route), "%s", routes[(h >> 17) % 5]);
    snprintf(d->method, sizeof(d->method), "%s", (h >> 21) % 4 ? "GET" : "POST");
    snprintf(d->host, sizeof(d->host), "%s.corp.example.com", d->route);
    snprintf(d->path, sizeof(d->path), "/api/v1/items/%llu/details", (h >> 5) % 100000);
    int deny = (h >> 23) % 10 == 0;
    d->decision = deny ? GH_DENY : GH_ALLOW;
    d->reason = deny ? ((h >> 27) % 2 ? GH_R_POLICY_DENY : GH_R_TOKEN_EXPIRED) : GH_R_ALLOW;
    d->status = gh_reason_status(d->reason);
    snprintf(d->rule_id, sizeof(d->rule_id), "rule-%llu", (h >> 9) % 20);
    snprintf(d->policy_version, sizeof(d->policy_version), "%064x", 7);
    d->bytes_in = 300 + (h % 2000);
    d->bytes_out = deny ? 0 : 1000 + (h % 50000);
    d->latency_us = 200 + (int64_t)(h % 5000);
}

/* ---- writer throughput -------------------------------------------------- */

struct run {
    struct db_log *l;
    long long rows;
    atomic_llong next;
    sem_t slots;
    int use_cb;
    int64_t *enq_us; /* per row, for latency */
    int64_t *lat_us;
    atomic_llong done;
    int64_t end_us; /* timestamp of the last row */
};

struct token {
    struct run *r;
    long long i;
};

static void commit_cb(void *arg, int ok)
{
    struct token *t = arg;
    struct run *r = t->r;
    r->lat_us[t->i] = ok ? gh_mono_us() - r->enq_us[t->i] : -1;
    free(t);
    atomic_fetch_add(&r->done, 1);
    sem_post(&r->slots);
}

static void *producer(void *arg)
{
    struct run *r = arg;
    struct gh_err err;
    int64_t end = r->end_us;
    for (;;) {
        long long i = atomic_fetch_add(&r->next, 1);
        if (i >= r->rows) {
            break;
        }
        struct db_decision d;
        make_row(&d, i, r->rows, end);
        struct token *t = NULL;
        if (r->use_cb) {
            sem_wait(&r->slots);
            t = malloc(sizeof(*t));
            if (t == NULL) {
                abort();
            }
            t->r = r;
            t->i = i;
            r->enq_us[i] = gh_mono_us();
        }
        while (db_log_append(r->l, &d, r->use_cb ? commit_cb : NULL, t, &err) != 0) {
            if (err.reason != GH_R_OVERLOADED) {
                fprintf(stderr, "append: %s\n", err.msg);
                exit(1);
            }
            usleep(100); /* backpressure, as a worker would apply it */
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct wresult {
    double rows_s;
    double p50_ms, p99_ms;
    double batch_avg;
};

static struct wresult writer_run(const char *path, enum db_mode mode, long long rows)
{
    struct wresult res = {0};
    struct gh_err err;
    struct db_log_opts o = {.path = path, .mode = mode, .queue_size = 16384};
    struct run r = {.rows = rows, .use_cb = mode == DB_STRICT, .end_us = gh_now_us()};
    r.enq_us = calloc((size_t)rows, sizeof(int64_t));
    r.lat_us = calloc((size_t)rows, sizeof(int64_t));
    if (r.enq_us == NULL || r.lat_us == NULL) {
        abort();
    }
    sem_init(&r.slots, 0, (unsigned)opt_inflight);
    r.l = db_log_open(&o, &err);
    if (r.l == NULL) {
        fprintf(stderr, "open %s: %s\n", path, err.msg);
        exit(1);
    }
    int64_t t0 = gh_mono_us();
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&th[i], NULL, producer, &r);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    while (r.use_cb && atomic_load(&r.done) < rows) {
        usleep(200);
    }
    db_log_close(r.l); /* async: returns once everything is committed */
    int64_t dt = gh_mono_us() - t0;
    res.rows_s = (double)rows * 1e6 / (double)dt;
    if (r.use_cb) {
        qsort(r.lat_us, (size_t)rows, sizeof(int64_t), cmp_i64);
        res.p50_ms = (double)r.lat_us[rows / 2] / 1000.0;
        res.p99_ms = (double)r.lat_us[rows * 99 / 100] / 1000.0;
    }
    free(r.enq_us);
    free(r.lat_us);
    sem_destroy(&r.slots);
    return res;
}

/* ---- big log ----------------------------------------------------------- */

struct gen {
    long long i, n;
    int64_t end_us;
};

static int gen_next(void *arg, struct db_decision *d)
{
    struct gen *g = arg;
    if (g->i >= g->n) {
        return 0;
    }
    make_row(d, g->i, g->n, g->end_us);
    g->i++;
    return 1;
}

struct cnt {
    long n;
};

static int count_cb(void *arg, int64_t id, const struct db_decision *d)
{
    ((struct cnt *)arg)->n++;
    return 0;
}

struct newest {
    int64_t ts;
};

static int newest_cb(void *arg, int64_t id, const struct db_decision *d)
{
    ((struct newest *)arg)->ts = d->ts_us;
    return 1;
}

/* Median of 21 runs of "denies [for subject] in the last hour". */
static double query_ms(const char *path, const char *subject, int64_t now, long *rows)
{
    int64_t t[21];
    for (int k = 0; k < 21; k++) {
        struct db_query q = {
            .decision = 0, .subject = subject, .since_us = now - HOUR_US, .limit = 10000};
        struct cnt c = {0};
        struct gh_err err;
        int64_t t0 = gh_mono_us();
        if (db_decisions_query(path, &q, count_cb, &c, &err) != 0) {
            fprintf(stderr, "query: %s\n", err.msg);
            exit(1);
        }
        t[k] = gh_mono_us() - t0;
        *rows = c.n;
    }
    qsort(t, 21, sizeof(int64_t), cmp_i64);
    return (double)t[10] / 1000.0;
}

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: db_bench [--rows N] [--writer-rows N] [--inflight N] [--dir DIR] "
                    "[--db FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            usage();
        }
        if (strcmp(argv[i], "--rows") == 0) {
            opt_rows = atoll(v);
        } else if (strcmp(argv[i], "--writer-rows") == 0) {
            opt_writer_rows = atoll(v);
        } else if (strcmp(argv[i], "--inflight") == 0) {
            opt_inflight = atoi(v);
        } else if (strcmp(argv[i], "--dir") == 0) {
            opt_dir = v;
        } else if (strcmp(argv[i], "--db") == 0) {
            opt_db = v;
        } else {
            usage();
        }
        i++;
    }
    if (opt_rows < 1000 || opt_writer_rows < 1000 || opt_inflight < 1) {
        usage();
    }
    gh_log_set_level(GH_LOG_WARN);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/gh-dbbench-XXXXXX", opt_dir);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char p_strict[600], p_async[600], p_big[600];
    snprintf(p_strict, sizeof(p_strict), "%s/strict.db", dir);
    snprintf(p_async, sizeof(p_async), "%s/async.db", dir);
    snprintf(p_big, sizeof(p_big), "%s", opt_db != NULL ? opt_db : "");
    if (opt_db == NULL) {
        snprintf(p_big, sizeof(p_big), "%s/big.db", dir);
    }

    printf("db_bench: writer rows %lld, big log rows %lld, inflight %d, dir %s\n", opt_writer_rows,
           opt_rows, opt_inflight, dir);
    struct wresult ws = writer_run(p_strict, DB_STRICT, opt_writer_rows);
    printf("  strict writer    %10.0f rows/s   append->commit p50 %.2f ms  p99 %.2f ms\n",
           ws.rows_s, ws.p50_ms, ws.p99_ms);
    struct wresult wa = writer_run(p_async, DB_ASYNC, opt_writer_rows);
    printf("  async writer     %10.0f rows/s\n", wa.rows_s);
    struct wresult wn = writer_run(NULL, DB_NOOP, opt_writer_rows);
    printf("  noop writer      %10.0f rows/s   (queue + thread, no SQLite)\n", wn.rows_s);

    /* Big log: generate unless a kept one with enough rows exists. */
    struct db_audit_result ar;
    struct gh_err err;
    int64_t now;
    double gen_rows_s = 0;
    if (opt_db == NULL || access(p_big, F_OK) != 0) {
        struct gen g = {.n = opt_rows, .end_us = gh_now_us()};
        int64_t t0 = gh_mono_us();
        long got = db_bulk_append(p_big, gen_next, &g, &err);
        if (got != opt_rows) {
            fprintf(stderr, "bulk append %s: %s\n", p_big, err.msg);
            return 1;
        }
        gen_rows_s = (double)opt_rows * 1e6 / (double)(gh_mono_us() - t0);
        printf("  bulk append      %10.0f rows/s   (%lld rows incl. index rebuild)\n", gen_rows_s,
               opt_rows);
    }
    long long bytes = file_size(p_big);

    int64_t t0 = gh_mono_us();
    int rc = db_audit_verify(p_big, &ar, &err);
    double audit_s = (double)(gh_mono_us() - t0) / 1e6;
    if (rc != 0) {
        fprintf(stderr, "audit: rc %d %s %s\n", rc, ar.msg, err.msg);
        return 1;
    }
    long long rows = (long long)ar.checked;
    printf("  log size         %10.1f MB  %6.0f bytes/row (table + 6 indexes + hashes)\n",
           (double)bytes / 1e6, (double)bytes / (double)rows);
    printf("  audit verify     %10.0f rows/s   (%lld rows in %.1f s)\n", (double)rows / audit_s,
           rows, audit_s);

    /* "The last hour" ends at the newest row (a kept --db may be old). */
    struct db_query last = {.decision = -1, .limit = 1};
    struct newest nw = {0};
    if (db_decisions_query(p_big, &last, newest_cb, &nw, &err) != 0) {
        fprintf(stderr, "query: %s\n", err.msg);
        return 1;
    }
    now = nw.ts;
    long q1_rows = 0, q2_rows = 0;
    double q1 = query_ms(p_big, "user-0042", now, &q1_rows);
    double q2 = query_ms(p_big, "svc-batch", now, &q2_rows);
    printf("  denies for user-0042 in the last hour  %8.2f ms  (%ld rows)\n", q1, q1_rows);
    printf("  denies for svc-batch in the last hour  %8.2f ms  (%ld rows; 10%% of traffic)\n", q2,
           q2_rows);
    long q3_rows = 0;
    double q3 = query_ms(p_big, NULL, now, &q3_rows);
    printf("  all denies in the last hour            %8.2f ms  (%ld rows)\n", q3, q3_rows);

    printf("DB_BENCH_JSON {\"strict_rows_per_s\":%.0f,\"strict_p50_ms\":%.2f,"
           "\"strict_p99_ms\":%.2f,\"async_rows_per_s\":%.0f,\"noop_rows_per_s\":%.0f,"
           "\"bulk_rows_per_s\":%.0f,\"rows\":%lld,\"bytes_per_row\":%.0f,"
           "\"audit_rows_per_s\":%.0f,\"query_user_ms\":%.2f,\"query_user_rows\":%ld,"
           "\"query_hot_ms\":%.2f,\"query_hot_rows\":%ld,\"query_denies_ms\":%.2f,"
           "\"query_denies_rows\":%ld}\n",
           ws.rows_s, ws.p50_ms, ws.p99_ms, wa.rows_s, wn.rows_s, gen_rows_s, rows,
           (double)bytes / (double)rows, (double)rows / audit_s, q1, q1_rows, q2, q2_rows, q3,
           q3_rows);

    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir); /* a --db FILE lives elsewhere and stays */
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    return 0;
}
