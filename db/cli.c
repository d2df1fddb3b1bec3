/*
 * cli.c: `gatehouse db|decisions|audit` -- the operator's and auditor's view
 * of the database without a running gateway.
 *
 * Decision rows carry client-controlled text (paths, hosts, subjects), so
 * nothing from a row reaches the terminal raw: text output replaces control
 * bytes (an escape sequence in a path must not repaint an auditor's
 * terminal), JSON output escapes them and replaces invalid UTF-8 so every
 * line is valid JSON. Time arguments are parsed strictly; a typo is an
 * error, never "since the epoch".
 */
#include "db/cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "gateway/base/util.h"

#define EXIT_OK 0
#define EXIT_BROKEN 1
#define EXIT_ERR 2
#define MAX_RELATIVE_S (100LL * 366 * 86400)

/* ---- time parsing -------------------------------------------------------- */

static int all_digits(const char *s, size_t n)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* Exactly n digits at s into *v. */
static int digits(const char *s, int n, int *v)
{
    if (!all_digits(s, (size_t)n)) {
        return -1;
    }
    *v = 0;
    for (int i = 0; i < n; i++) {
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

static int parse_iso(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int64_t frac_us = 0;
    size_t n = strlen(s);
    if (n < 10 || digits(s, 4, &y) != 0 || s[4] != '-' || digits(s + 5, 2, &mo) != 0 ||
        s[7] != '-' || digits(s + 8, 2, &d) != 0) {
        return -1;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
        return -1;
    }
    const char *p = s + 10;
    int64_t off_s = 0;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(p, 2, &h) != 0 || p[2] != ':' || digits(p + 3, 2, &mi) != 0) {
            return -1;
        }
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec) != 0) {
                return -1;
            }
            p += 3;
            if (*p == '.') {
                p++;
                int nd = 0;
                int64_t scale = 100000;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 6) {
                        frac_us += (*p - '0') * scale;
                        scale /= 10;
                    }
                    nd++;
                    p++;
                }
                if (nd == 0 || nd > 9) {
                    return -1;
                }
            }
        }
        if (h > 23 || mi > 59 || sec > 59) {
            return -1;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om;
            p++;
            if (digits(p, 2, &oh) != 0) {
                return -1;
            }
            p += 2;
            if (*p == ':') {
                p++;
            }
            if (digits(p, 2, &om) != 0 || oh > 23 || om > 59) {
                return -1;
            }
            p += 2;
            off_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p != '\0') {
        return -1;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *out = secs * 1000000 + frac_us;
    return 0;
}

int db_cli_parse_since(const char *s, int64_t now_us, int64_t *out)
{
    if (s == NULL) {
        return -1;
    }
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return -1;
    }
    if (all_digits(s, n)) {
        if (n > 18) {
            return -1; /* beyond int64 µs: a typo, not a date */
        }
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    char unit = s[n - 1];
    if (n >= 2 && n <= 10 && all_digits(s, n - 1) && strchr("smhdw", unit) != NULL) {
        static const int64_t mult[] = {1, 60, 3600, 86400, 604800};
        int64_t v = strtoll(s, NULL, 10);
        int64_t m = mult[strchr("smhdw", unit) - "smhdw"];
        /* At most 100 years back: anything longer is a typo, and the bound
         * keeps v * m * 10^6 far from overflow (found by fuzz_db_since). */
        if (v > MAX_RELATIVE_S / m) {
            return -1;
        }
        *out = now_us - v * m * 1000000;
        return 0;
    }
    return parse_iso(s, out);
}

/* ---- output -------------------------------------------------------------- */

static void fmt_time(int64_t us, char *buf, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (us < 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "%lld", (long long)us);
        return;
    }
    int k =
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)((us % 1000000) / 1000));
    if (k < 0 || (size_t)k >= len) {
        snprintf(buf, len, "%lld", (long long)us); /* year beyond 9999: show raw µs */
    }
}

/* Terminal-safe copy: control bytes become '?'. */
static void safe(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0' && o + 1 < len; p++) {
        out[o++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    }
    out[o] = '\0';
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static int utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80) {
        return 1;
    }
    int n;
    unsigned min;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    return n;
}

static void json_str(FILE *f, const char *key, const char *s, int comma)
{
    fprintf(f, "%s\"%s\":\"", comma ? "," : "", key);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", *p);
            p++;
        } else {
            int n = utf8_len(p);
            if (n == 0) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            }
        }
    }
    fputc('"', f);
}

static void json_int(FILE *f, const char *key, long long v)
{
    fprintf(f, ",\"%s\":%lld", key, v);
}

static void json_uint(FILE *f, const char *key, unsigned long long v)
{
    fprintf(f, ",\"%s\":%llu", key, v);
}

static int print_json(void *arg, int64_t id, const struct db_decision *d)
{
    FILE *f = arg;
    char t[40];
    fmt_time(d->ts_us, t, sizeof(t));
    fprintf(f, "{\"id\":%lld", (long long)id);
    json_int(f, "ts_us", d->ts_us);
    json_str(f, "time", t, 1);
    json_int(f, "worker", d->worker);
    json_uint(f, "conn_id", d->conn_id);
    json_uint(f, "request_id", d->request_id);
    json_str(f, "session_id", d->session_id, 1);
    json_str(f, "client_addr", d->client_addr, 1);
    json_int(f, "client_port", d->client_port);
    json_str(f, "cert_thumb", d->cert_thumb, 1);
    json_str(f, "cert_subject", d->cert_subject, 1);
    json_str(f, "token_sub", d->token_sub, 1);
    json_str(f, "token_iss", d->token_iss, 1);
    json_str(f, "token_jti", d->token_jti, 1);
    json_str(f, "route", d->route, 1);
    json_str(f, "method", d->method, 1);
    json_str(f, "host", d->host, 1);
    json_str(f, "path", d->path, 1);
    json_str(f, "decision", d->decision == GH_ALLOW ? "allow" : "deny", 1);
    json_str(f, "reason", gh_reason_name(d->reason), 1);
    json_str(f, "rule_id", d->rule_id, 1);
    json_str(f, "policy_version", d->policy_version, 1);
    json_int(f, "status", d->status);
    json_uint(f, "bytes_in", d->bytes_in);
    json_uint(f, "bytes_out", d->bytes_out);
    json_int(f, "latency_us", d->latency_us);
    json_str(f, "detail", d->detail, 1);
    fputs("}\n", f);
    return ferror(f) ? 1 : 0;
}

static int print_text(void *arg, int64_t id, const struct db_decision *d)
{
    FILE *f = arg;
    char t[40], sub[48], route[24], method[12], path[160], reason[32];
    fmt_time(d->ts_us, t, sizeof(t));
    safe(d->token_sub[0] != '\0' ? d->token_sub : d->cert_subject, sub, sizeof(sub));
    safe(d->route, route, sizeof(route));
    safe(d->method, method, sizeof(method));
    safe(d->path, path, sizeof(path));
    safe(gh_reason_name(d->reason), reason, sizeof(reason));
    fprintf(f, "%-8lld %-24s %-5s %-28s %3d %-32s %-16s %-7s %s\n", (long long)id, t,
            d->decision == GH_ALLOW ? "allow" : "deny", reason, d->status, sub, route, method,
            path);
    return ferror(f) ? 1 : 0;
}

/* ---- argument handling --------------------------------------------------- */

struct args {
    const char *db, *since, *subject, *route, *decision, *reason, *session, *checkpoint;
    long long limit, days, batch, after_id;
    int json, oldest_first, explain;
};

static int usage(const char *msg)
{
    if (msg != NULL) {
        fprintf(stderr, "gatehouse: %s\n", msg);
    }
    fprintf(stderr,
            "usage: gatehouse db migrate --db FILE\n"
            "       gatehouse db retention --db FILE --days N [--batch N]\n"
            "       gatehouse decisions --db FILE [--since 1h|ISO-8601|usec] [--after-id N]\n"
            "                 [--subject S] [--route R] [--decision allow|deny] [--reason R]\n"
            "                 [--session ID] [--limit N] [--oldest-first] [--json] [--explain]\n"
            "       gatehouse audit verify --db FILE [--checkpoint ID:HASH] [--json]\n");
    return EXIT_ERR;
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    if (s == NULL || !all_digits(s, strlen(s)) || strlen(s) > 18) {
        return -1;
    }
    long long v = strtoll(s, NULL, 10);
    if (v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int name_is(const char *o, size_t nl, const char *name)
{
    return strlen(name) == nl && strncmp(o, name, nl) == 0;
}

/* Options from argv[first..]: "--name VALUE", "--name=VALUE" or a flag. */
static int parse_args(int argc, char **argv, int first, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->limit = 100;
    a->days = -1;
    const struct {
        const char *name;
        int *dst;
    } flags[] = {{"json", &a->json}, {"oldest-first", &a->oldest_first}, {"explain", &a->explain}};
    const struct {
        const char *name;
        const char **dst;
    } strs[] = {
        {"db", &a->db},           {"since", &a->since},           {"subject", &a->subject},
        {"route", &a->route},     {"decision", &a->decision},     {"reason", &a->reason},
        {"session", &a->session}, {"checkpoint", &a->checkpoint},
    };
    const struct {
        const char *name;
        long long *dst, lo, hi;
    } nums[] = {
        {"limit", &a->limit, 1, 10000},
        {"days", &a->days, 1, 36500},
        {"batch", &a->batch, 1, 100000},
        {"after-id", &a->after_id, 0, LLONG_MAX},
    };
    for (int i = first; i < argc; i++) {
        const char *o = argv[i];
        if (strncmp(o, "--", 2) != 0) {
            fprintf(stderr, "gatehouse: unexpected argument '%s'\n", o);
            return -1;
        }
        o += 2;
        int known = 0;
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
            if (strcmp(o, flags[k].name) == 0) {
                *flags[k].dst = 1;
                known = 1;
            }
        }
        if (known) {
            continue;
        }
        const char *eq = strchr(o, '=');
        size_t nl = eq != NULL ? (size_t)(eq - o) : strlen(o);
        const char *val = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (val == NULL) {
            fprintf(stderr, "gatehouse: --%.*s needs a value\n", (int)nl, o);
            return -1;
        }
        for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++) {
            if (name_is(o, nl, strs[k].name)) {
                *strs[k].dst = val;
                known = 1;
            }
        }
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (!name_is(o, nl, nums[k].name)) {
                continue;
            }
            known = 1;
            if (parse_num(val, nums[k].lo, nums[k].hi, nums[k].dst) != 0) {
                fprintf(stderr, "gatehouse: --%s must be a number from %lld to %lld\n",
                        nums[k].name, nums[k].lo, nums[k].hi);
                return -1;
            }
        }
        if (!known) {
            fprintf(stderr, "gatehouse: unknown option --%.*s\n", (int)nl, o);
            return -1;
        }
    }
    if (a->db == NULL) {
        fprintf(stderr, "gatehouse: --db FILE is required\n");
        return -1;
    }
    return 0;
}

static int cmd_decisions(const struct args *a)
{
    struct db_query q = {.decision = -1, .limit = (int)a->limit};
    struct gh_err err = {0};
    if (a->since != NULL && db_cli_parse_since(a->since, gh_now_us(), &q.since_us) != 0) {
        return usage("--since: use e.g. 15m, 1h, 7d, 2024-05-01T12:00:00Z or microseconds");
    }
    if (a->decision != NULL) {
        if (strcmp(a->decision, "allow") == 0) {
            q.decision = 1;
        } else if (strcmp(a->decision, "deny") == 0) {
            q.decision = 0;
        } else {
            return usage("--decision must be allow or deny");
        }
    }
    if (a->reason != NULL && gh_reason_from_name(a->reason) < 0) {
        fprintf(stderr, "gatehouse: unknown reason '%s' (see docs/DECISION-LOG.md)\n", a->reason);
        return EXIT_ERR;
    }
    q.after_id = a->after_id;
    q.subject = a->subject;
    q.route = a->route;
    q.reason = a->reason;
    q.session_id = a->session;
    q.oldest_first = a->oldest_first;
    if (a->explain) {
        char plan[2048];
        if (db_decisions_explain(a->db, &q, plan, sizeof(plan), &err) != 0) {
            fprintf(stderr, "gatehouse: %s\n", err.msg);
            return EXIT_ERR;
        }
        fputs(plan, stdout);
        return EXIT_OK;
    }
    if (!a->json) {
        printf("%-8s %-24s %-5s %-28s %3s %-32s %-16s %-7s %s\n", "ID", "TIME (UTC)", "DEC",
               "REASON", "ST", "SUBJECT", "ROUTE", "METHOD", "PATH");
    }
    if (db_decisions_query(a->db, &q, a->json ? print_json : print_text, stdout, &err) != 0) {
        fprintf(stderr, "gatehouse: %s\n", err.msg);
        return EXIT_ERR;
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_OK : EXIT_ERR;
}

static int cmd_audit(const struct args *a)
{
    struct db_audit_result r;
    struct gh_err err = {0};
    int rc;
    if (a->checkpoint != NULL) {
        const char *colon = strchr(a->checkpoint, ':');
        char idbuf[24];
        long long id = 0;
        if (colon == NULL || (size_t)(colon - a->checkpoint) >= sizeof(idbuf)) {
            return usage("--checkpoint takes ID:HASH (from a 'chain checkpoint' log line)");
        }
        memcpy(idbuf, a->checkpoint, (size_t)(colon - a->checkpoint));
        idbuf[colon - a->checkpoint] = '\0';
        if (parse_num(idbuf, 1, LLONG_MAX, &id) != 0) {
            return usage("--checkpoint takes ID:HASH (from a 'chain checkpoint' log line)");
        }
        rc = db_audit_verify_checkpoint(a->db, id, colon + 1, &r, &err);
    } else {
        rc = db_audit_verify(a->db, &r, &err);
    }
    if (rc < 0) {
        if (a->json) {
            printf("{\"result\":\"error\"");
            json_str(stdout, "error", err.msg, 1);
            printf("}\n");
        }
        fprintf(stderr, "gatehouse: audit: %s\n", err.msg);
        return EXIT_ERR;
    }
    if (a->json) {
        printf("{\"result\":\"%s\",\"rows_checked\":%llu,\"first_bad_id\":",
               rc == 0 ? "intact" : "broken", (unsigned long long)r.checked);
        if (rc == 0) {
            printf("null");
        } else {
            printf("%lld", (long long)r.first_bad_id);
        }
        printf(",\"anchor_id\":%lld,\"last_id\":%lld,\"checkpoints\":%llu", (long long)r.anchor_id,
               (long long)r.last_id, (unsigned long long)r.checkpoints);
        json_str(stdout, "message", r.msg, 1);
        printf("}\n");
    } else if (rc == 0) {
        printf("audit: chain intact: %llu rows checked%s\n%s\n", (unsigned long long)r.checked,
               r.anchor_id > 0 ? " (after retention anchor)" : "", r.msg);
    } else {
        printf("audit: CHAIN BROKEN at row %lld: %s\n%llu rows checked before it\n",
               (long long)r.first_bad_id, r.msg, (unsigned long long)r.checked);
    }
    fflush(stdout);
    return rc == 0 ? EXIT_OK : EXIT_BROKEN;
}

int db_cli_main(int argc, char **argv)
{
    struct args a;
    struct gh_err err = {0};
    if (argc < 1 || argv == NULL || argv[0] == NULL) {
        return usage(NULL);
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "decisions") == 0) {
        if (parse_args(argc, argv, 1, &a) != 0) {
            return usage(NULL);
        }
        return cmd_decisions(&a);
    }
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "audit") == 0 && strcmp(sub, "verify") == 0) {
        if (parse_args(argc, argv, 2, &a) != 0) {
            return usage(NULL);
        }
        return cmd_audit(&a);
    }
    if (strcmp(cmd, "db") == 0 && strcmp(sub, "migrate") == 0) {
        if (parse_args(argc, argv, 2, &a) != 0) {
            return usage(NULL);
        }
        if (db_migrate(a.db, &err) != 0) {
            fprintf(stderr, "gatehouse: db migrate: %s\n", err.msg);
            return EXIT_ERR;
        }
        printf("db: %s is at the current schema version\n", a.db);
        return EXIT_OK;
    }
    if (strcmp(cmd, "db") == 0 && strcmp(sub, "retention") == 0) {
        if (parse_args(argc, argv, 2, &a) != 0) {
            return usage(NULL);
        }
        if (a.days < 1) {
            return usage("db retention needs --days N (N >= 1)");
        }
        long n = db_retention_run(a.db, (int)a.days, (int)a.batch, &err);
        if (n < 0) {
            /* A refusal because the chain is broken exits like audit verify
             * finding it broken: 1, so a cron job can tell it from a
             * transient error (2). */
            fprintf(stderr, "gatehouse: db retention: %s\n", err.msg);
            return n == DB_RETENTION_BROKEN ? EXIT_BROKEN : EXIT_ERR;
        }
        printf("db: retention deleted %ld rows older than %lld days\n", n, a.days);
        return EXIT_OK;
    }
    return usage("unknown subcommand");
}
