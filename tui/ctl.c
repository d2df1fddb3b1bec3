/*
 * ctl.c: `gatehousectl COMMAND ...` for scripts and operators' shells. Each
 * subcommand is one admin API call (docs/ADMIN-API.md) whose answer is
 * printed as a table, or with --json as the server's JSON, and whose
 * outcome is one of five documented exit statuses -- so a script can tell
 * "the gateway said no" (1) from "I used it wrong" (2), "the gateway is
 * not there" (3) and "the gateway failed" (4).
 *
 * Nothing printed in text mode is trusted: cells go through tui_sanitize
 * (tables) or safe_puts (YAML, metrics, diffs), so text a client put into a
 * path or a certificate cannot drive the operator's terminal.
 */
#include "tui/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gateway/base/util.h"
#include "tui/diff.h"
#include "tui/fmt.h"

#define POLICY_FILE_MAX (1024 * 1024)
#define PATH_BUF 2048

static volatile sig_atomic_t g_interrupted;

static int usage_err(const char *fmt, ...) GH_PRINTF(1, 2);
static int usage_err(const char *fmt, ...)
{
    char m[1024];
    char clean[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    fprintf(stderr, "gatehousectl: %s\n(see gatehousectl --help)\n",
            tui_sanitize(m, clean, sizeof(clean)));
    return TUI_EXIT_USAGE;
}

/* Print text keeping newlines and tabs, replacing other control bytes. */
static void safe_puts(const char *s, FILE *f)
{
    char line[4096];
    while (*s != '\0') {
        size_t n = strcspn(s, "\n\t");
        while (n > 0) {
            size_t k = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
            /* Do not cut inside a UTF-8 sequence. */
            while (k < n && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80) {
                k--;
            }
            if (k == 0) {
                k = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
            }
            char chunk[sizeof(line)];
            memcpy(chunk, s, k);
            chunk[k] = '\0';
            fputs(tui_sanitize(chunk, line, sizeof(line)), f);
            s += k;
            n -= k;
        }
        if (*s == '\n' || *s == '\t') {
            fputc(*s, f);
            s++;
        }
    }
}

/* --json output goes to a terminal as often as to a script, and the JSON
 * encoder only escapes C0: C1 controls (U+009B is CSI to some terminals) and
 * bidi overrides in a client's path or subject would reach it raw. Every
 * non-ASCII character is therefore written as a \u escape (\u00e9 for an
 * e-acute); parsers read the same strings (RFC 8259 section 7). */
#define TUI_JSON_OUT (JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)

static void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | TUI_JSON_OUT);
    if (s != NULL) {
        puts(s);
        free(s);
    }
}

char *tui_read_file(const char *path, size_t max, size_t *len, struct gh_err *err)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        gh_err_set(err, GH_R_INTERNAL, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gh_err_set(err, GH_R_INTERNAL, "%s is not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        gh_err_set(err, GH_R_INTERNAL, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            gh_err_set(err, GH_R_INTERNAL, "cannot read %s: %s", path,
                       n < 0 ? strerror(errno) : "file shrank");
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
out:
    close(fd);
    return buf;
}

void tui_policy_error_text(const json_t *e, const char *file, char *buf, size_t len)
{
    char tmp[1024];
    if (json_is_object(e)) {
        char m[512];
        tui_jtext(e, "message", "", m, sizeof(m));
        if (m[0] == '\0') {
            tui_jtext(e, "error", "invalid policy", m, sizeof(m));
        }
        int64_t line = tui_jint(e, "line", 0);
        int64_t col = tui_jint(e, "col", tui_jint(e, "column", 0));
        if (line > 0) {
            snprintf(tmp, sizeof(tmp), "%s:%lld:%lld: %s", file, (long long)line,
                     (long long)(col > 0 ? col : 1), m);
        } else {
            snprintf(tmp, sizeof(tmp), "%s: %s", file, m);
        }
        tui_sanitize(tmp, buf, len);
        return;
    }
    const char *s = json_is_string(e) ? json_string_value(e) : "invalid policy";
    /* Find "NAME:LINE:COL: " -- the first ":digits:digits:" -- and put the
     * local file name in front of it instead of the server's name. */
    const char *p = s;
    const char *hit = NULL;
    while ((p = strchr(p, ':')) != NULL) {
        const char *q = p + 1;
        size_t d1 = strspn(q, "0123456789");
        if (d1 > 0 && q[d1] == ':') {
            size_t d2 = strspn(q + d1 + 1, "0123456789");
            if (d2 > 0 && q[d1 + 1 + d2] == ':') {
                hit = p;
                break;
            }
        }
        p++;
    }
    if (hit != NULL && memchr(s, '\n', (size_t)(hit - s)) == NULL) {
        snprintf(tmp, sizeof(tmp), "%s%s", file, hit);
    } else {
        snprintf(tmp, sizeof(tmp), "%s: %s", file, s);
    }
    tui_sanitize(tmp, buf, len);
}

/* ---- one exchange ---------------------------------------------------------- */

struct call {
    struct tui_reply reply;
    json_t *json; /* parsed body when it is JSON, else NULL */
};

static void call_cleanup(struct call *c)
{
    tui_reply_cleanup(&c->reply);
    json_decref(c->json);
    c->json = NULL;
}

/* Map an HTTP status to an exit status. */
static int status_exit(int status)
{
    if (status >= 200 && status < 300) {
        return TUI_EXIT_OK;
    }
    if (status >= 400 && status < 500) {
        return TUI_EXIT_REFUSED;
    }
    return TUI_EXIT_SERVER;
}

static int err_exit(const struct gh_err *e)
{
    if (e->reason == GH_R_UPSTREAM_CONNECT || e->reason == GH_R_UPSTREAM_TLS) {
        return TUI_EXIT_UNREACHABLE;
    }
    return TUI_EXIT_SERVER;
}

/* One request. Returns TUI_EXIT_OK with out filled for a 2xx; otherwise
 * prints why and returns the exit status (out is still filled for HTTP
 * errors, so callers can show e.g. policy errors). */
#define API_QUIET 1 /* the caller reports HTTP errors itself */
#define API_RAW 2   /* the answer need not be JSON (metrics, health) */

static int api(const struct tui_ctx *x, struct tui_client *cl, const char *method, const char *path,
               const char *body, size_t blen, const char *ctype, struct call *out, int flags)
{
    struct gh_err e;
    gh_err_clear(&e);
    memset(out, 0, sizeof(*out));
    struct tui_request rq = {
        .method = method,
        .path = path,
        .content_type = ctype,
        .body = body,
        .body_len = blen,
        .timeout_ms = x->timeout_ms,
    };
    if (tui_client_call(cl, &rq, &out->reply, &e) != 0) {
        fprintf(stderr, "gatehousectl: %s\n", e.msg);
        return err_exit(&e);
    }
    json_error_t je;
    if (out->reply.body_len > 0) {
        out->json = json_loadb(out->reply.body, out->reply.body_len, JSON_REJECT_DUPLICATES, &je);
    }
    int rc = status_exit(out->reply.status);
    if (rc != TUI_EXIT_OK && !(flags & API_QUIET)) {
        char m[512];
        char r[128];
        tui_jtext(out->json, "error", "", m, sizeof(m));
        tui_jtext(out->json, "reason", "", r, sizeof(r));
        if (m[0] == '\0' && out->json == NULL) {
            snprintf(m, sizeof(m), "HTTP %d", out->reply.status);
        }
        fprintf(stderr, "gatehousectl: %s %s: %d %s%s%s%s\n", method, path, out->reply.status, m,
                r[0] != '\0' ? " (" : "", r, r[0] != '\0' ? ")" : "");
        if (x->json && out->json != NULL) {
            print_json(out->json);
        }
    }
    if (rc == TUI_EXIT_OK && out->json == NULL && !(flags & API_RAW)) {
        fprintf(stderr, "gatehousectl: %s %s: the answer is not valid JSON\n", method, path);
        return TUI_EXIT_SERVER;
    }
    return rc;
}

/* Ensure a 2xx JSON answer is an object (callers index into it). */
static int need_object(struct call *c, const char *what)
{
    if (!json_is_object(c->json)) {
        fprintf(stderr, "gatehousectl: %s: the gateway's answer is not a JSON object\n", what);
        return TUI_EXIT_SERVER;
    }
    return TUI_EXIT_OK;
}

/* GET path and require a JSON object. With --json the answer is printed
 * as it came and *printed set: the caller is done. Otherwise the caller
 * renders c (and call_cleanup()s it either way). */
static int get_object(const struct tui_ctx *x, struct tui_client *cl, const char *path,
                      const char *what, struct call *c, int *printed)
{
    *printed = 0;
    int rc = api(x, cl, "GET", path, NULL, 0, NULL, c, 0);
    if (rc == TUI_EXIT_OK) {
        rc = need_object(c, what);
    }
    if (rc == TUI_EXIT_OK && x->json) {
        print_json(c->json);
        *printed = 1;
    }
    return rc;
}

/* ---- option helpers -------------------------------------------------------- */

/* Is argv[*i] option name (taking a value)? Sets *val and advances. */
static int opt_val(int argc, char **argv, int *i, const char *name, const char **val, int *bad)
{
    if (strcmp(argv[*i], name) != 0) {
        size_t n = strlen(name);
        if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
            *val = argv[*i] + n + 1;
            return 1;
        }
        return 0;
    }
    if (*i + 1 >= argc) {
        *bad = 1;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

/* ---- sessions -------------------------------------------------------------- */

static void thumb_prefix(const json_t *s, char *buf, size_t len)
{
    char t[128];
    tui_jtext(s, "cert_thumbprint", "-", t, sizeof(t));
    if (strlen(t) > 12) {
        t[12] = '\0';
    }
    snprintf(buf, len, "%s", t);
}

static int cmd_sessions(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    const char *limit = NULL;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        if (opt_val(argc, argv, &i, "--limit", &limit, &bad)) {
            if (bad) {
                return usage_err("--limit needs a value");
            }
            continue;
        }
        return usage_err("sessions: unexpected argument '%s'", argv[i]);
    }
    int64_t lim = 0;
    if (limit != NULL && (tui_parse_int(limit, &lim) != 0 || lim < 1 || lim > 100000)) {
        return usage_err("--limit wants a number 1..100000, got '%s'", limit);
    }
    char path[128];
    if (lim > 0) {
        snprintf(path, sizeof(path), "/v1/sessions?limit=%lld", (long long)lim);
    } else {
        snprintf(path, sizeof(path), "/v1/sessions");
    }
    struct call c;
    int printed;
    int rc = get_object(x, cl, path, "sessions", &c, &printed);
    if (rc != TUI_EXIT_OK || printed) {
        goto out;
    }
    static const char *const hdr[] = {"ID",    "SUBJECT", "CERT",      "CLIENT",
                                      "CONNS", "REQS",    "LAST SEEN", "STATE"};
    struct tui_table *t = tui_table_new(8, hdr);
    if (t == NULL) {
        rc = TUI_EXIT_SERVER;
        goto out;
    }
    tui_table_max(t, 1, 32);
    tui_table_max(t, 3, 40);
    const json_t *arr = json_object_get(c.json, "sessions");
    size_t i;
    const json_t *s;
    int64_t now = gh_now_us();
    json_array_foreach (arr, i, s) {
        char id[80], sub[300], th[16], addr[80], conns[24], reqs[24], last[24], st[24];
        tui_jtext(s, "id", "-", id, sizeof(id));
        tui_jtext(s, "subject", "-", sub, sizeof(sub));
        thumb_prefix(s, th, sizeof(th));
        tui_jtext(s, "client_addr", "-", addr, sizeof(addr));
        tui_jtext(s, "live_connections", "0", conns, sizeof(conns));
        tui_jtext(s, "requests", "0", reqs, sizeof(reqs));
        tui_fmt_ago(tui_jint(s, "last_seen_us", 0), now, last, sizeof(last));
        if (strcmp(last, "-") != 0) {
            strncat(last, " ago", sizeof(last) - strlen(last) - 1);
        }
        tui_jtext(s, "state", "-", st, sizeof(st));
        const char *row[] = {id, sub, th, addr, conns, reqs, last, st};
        if (tui_table_add(t, row) != 0) {
            break;
        }
    }
    tui_table_print(t, stdout);
    tui_table_free(t);
out:
    call_cleanup(&c);
    return rc;
}

static void print_decisions_table(const json_t *arr, FILE *f);

static int cmd_session(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    if (argc != 2) {
        return usage_err("usage: session ID");
    }
    char esc[256];
    char path[320];
    if (tui_url_escape(argv[1], esc, sizeof(esc)) != 0) {
        return usage_err("session id too long: '%s'", argv[1]);
    }
    snprintf(path, sizeof(path), "/v1/sessions/%s", esc);
    struct call c;
    int printed;
    int rc = get_object(x, cl, path, "session", &c, &printed);
    if (rc != TUI_EXIT_OK || printed) {
        goto out;
    }
    const json_t *s = json_object_get(c.json, "session");
    if (!json_is_object(s)) {
        s = c.json;
    }
    static const char *const fields[][2] = {
        {"id", "session"},
        {"state", "state"},
        {"issuer", "issuer"},
        {"subject", "subject"},
        {"cert_subject", "cert subject"},
        {"cert_thumbprint", "cert sha256"},
        {"client_addr", "client"},
        {"live_connections", "connections"},
        {"requests", "requests"},
        {"bytes_in", "bytes in"},
        {"bytes_out", "bytes out"},
    };
    char v[512];
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        printf("%-13s %s\n", fields[i][1], tui_jtext(s, fields[i][0], "-", v, sizeof(v)));
    }
    tui_fmt_time(tui_jint(s, "first_seen_us", 0), 1, v, sizeof(v));
    printf("%-13s %s\n", "first seen", v);
    tui_fmt_time(tui_jint(s, "last_seen_us", 0), 1, v, sizeof(v));
    printf("%-13s %s\n", "last seen", v);
    const json_t *claims = json_object_get(c.json, "claims");
    if (!json_is_object(claims)) {
        claims = json_object_get(s, "claims");
    }
    if (json_is_object(claims)) {
        printf("\nclaims:\n");
        const char *k;
        const json_t *cv;
        json_object_foreach ((json_t *)claims, k, cv) {
            char kk[128];
            char *dump = json_is_string(cv) ? NULL : json_dumps(cv, JSON_COMPACT | JSON_ENCODE_ANY);
            tui_sanitize(k, kk, sizeof(kk));
            tui_sanitize_marked(dump != NULL ? dump : json_string_value(cv), v, sizeof(v));
            printf("  %-12s %s\n", kk, v);
            free(dump);
        }
    }
    const json_t *conns = json_object_get(c.json, "connections");
    if (!json_is_array(conns)) {
        conns = json_object_get(s, "connections");
    }
    printf("\nconnections:\n");
    if (json_is_integer(conns)) {
        printf("  %lld live\n", (long long)json_integer_value(conns));
    } else if (json_array_size(conns) == 0) {
        printf("  (none)\n");
    } else {
        static const char *const hdr[] = {"  CONN", "CLIENT", "SINCE", "REQS"};
        struct tui_table *t = tui_table_new(4, hdr);
        size_t i;
        const json_t *cn;
        json_array_foreach (conns, i, cn) {
            char id[40], cli[80], since[40], reqs[24], idp[44];
            tui_jtext(cn, "conn_id", "-", id, sizeof(id));
            snprintf(idp, sizeof(idp), "  %s", id);
            tui_jtext(cn, "client", "-", cli, sizeof(cli));
            tui_fmt_time(tui_jint(cn, "since_us", 0), 1, since, sizeof(since));
            tui_jtext(cn, "requests", "0", reqs, sizeof(reqs));
            const char *row[] = {idp, cli, since, reqs};
            if (t == NULL || tui_table_add(t, row) != 0) {
                break;
            }
        }
        if (t != NULL) {
            tui_table_print(t, stdout);
        }
        tui_table_free(t);
    }
    const json_t *dec = json_object_get(c.json, "recent_decisions");
    if (!json_is_array(dec)) {
        dec = json_object_get(s, "recent_decisions");
    }
    printf("\nrecent decisions:\n");
    if (json_array_size(dec) == 0) {
        printf("  (none)\n");
    } else {
        print_decisions_table(dec, stdout);
    }
out:
    call_cleanup(&c);
    return rc;
}

/* ---- revocations ------------------------------------------------------------ */

static int cmd_revoke(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    const char *reason = NULL;
    const char *expires = NULL;
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        if (opt_val(argc, argv, &i, "--reason", &reason, &bad) ||
            opt_val(argc, argv, &i, "--expires", &expires, &bad)) {
            if (bad) {
                return usage_err("%s needs a value", argv[i]);
            }
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] == '-') {
            return usage_err("revoke: unknown option '%s'", argv[i]);
        }
        if (npos >= 2) {
            return usage_err("revoke: unexpected argument '%s'", argv[i]);
        }
        pos[npos++] = argv[i];
    }
    if (npos != 2) {
        return usage_err("usage: revoke session ID|user SUBJECT|cert THUMBPRINT|token JTI "
                         "[--reason TEXT] [--expires SECONDS]");
    }
    const char *kind = NULL;
    if (strcmp(pos[0], "session") == 0) {
        kind = "session";
    } else if (strcmp(pos[0], "user") == 0 || strcmp(pos[0], "subject") == 0) {
        kind = "subject";
    } else if (strcmp(pos[0], "cert") == 0) {
        kind = "cert";
    } else if (strcmp(pos[0], "token") == 0) {
        kind = "token";
    } else {
        return usage_err("revoke: kind must be session, user, cert or token, not '%s'", pos[0]);
    }
    if (pos[1][0] == '\0' || strlen(pos[1]) > 255) {
        return usage_err("revoke: bad target '%s'", pos[1]);
    }
    if (reason != NULL && strlen(reason) > 127) {
        return usage_err("--reason is longer than 127 bytes");
    }
    int64_t exp = 0;
    if (expires != NULL && tui_parse_dur(expires, &exp) != 0) {
        return usage_err("--expires wants seconds (or 90m, 12h, 7d), got '%s'", expires);
    }
    json_t *body = json_pack("{s:s, s:s, s:s}", "kind", kind, "target", pos[1], "reason",
                             reason != NULL ? reason : "");
    if (body == NULL) {
        return usage_err("revoke: target or reason is not valid UTF-8");
    }
    if (expires != NULL) {
        json_object_set_new(body, "expires_in_s", json_integer((json_int_t)exp));
    }
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (txt == NULL) {
        return TUI_EXIT_SERVER;
    }
    struct call c;
    int rc = api(x, cl, "POST", "/v1/revocations", txt, strlen(txt), NULL, &c, 0);
    free(txt);
    if (rc == TUI_EXIT_OK) {
        rc = need_object(&c, "revoke");
    }
    if (rc != TUI_EXIT_OK) {
        goto out;
    }
    if (x->json) {
        print_json(c.json);
        goto out;
    }
    const json_t *r = json_object_get(c.json, "revocation");
    char id[32], tgt[300];
    tui_jtext(r, "id", "?", id, sizeof(id));
    tui_sanitize(pos[1], tgt, sizeof(tgt));
    long long closed = (long long)tui_jint(c.json, "closed_connections", 0);
    printf("revoked %s %s: revocation %s, %lld live connection%s closed\n", kind, tgt, id, closed,
           closed == 1 ? "" : "s");
out:
    call_cleanup(&c);
    return rc;
}

static int cmd_unrevoke(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    int64_t id;
    if (argc != 2 || tui_parse_int(argv[1], &id) != 0 || id < 1) {
        return usage_err("usage: unrevoke REVOCATION_ID (a number)");
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/revocations/%lld", (long long)id);
    struct call c;
    int rc = api(x, cl, "DELETE", path, NULL, 0, NULL, &c, 0);
    if (rc == TUI_EXIT_OK) {
        if (x->json) {
            if (c.json != NULL) {
                print_json(c.json);
            } else {
                printf("{\"lifted\":%lld}\n", (long long)id);
            }
        } else {
            printf("lifted revocation %lld\n", (long long)id);
        }
    }
    call_cleanup(&c);
    return rc;
}

static void revocation_state(const json_t *r, char *buf, size_t len)
{
    int64_t now = gh_now_us();
    int64_t lifted = tui_jint(r, "lifted_us", 0);
    int64_t exp = tui_jint(r, "expires_us", 0);
    const json_t *a = json_object_get(r, "active");
    if (lifted > 0) {
        snprintf(buf, len, "lifted");
    } else if (exp > 0 && exp <= now) {
        snprintf(buf, len, "expired");
    } else if (json_is_false(a)) {
        snprintf(buf, len, "inactive");
    } else {
        snprintf(buf, len, "active");
    }
}

static int cmd_revocations(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    if (argc != 1) {
        return usage_err("revocations: unexpected argument '%s'", argv[1]);
    }
    struct call c;
    int printed;
    int rc = get_object(x, cl, "/v1/revocations", "revocations", &c, &printed);
    if (rc != TUI_EXIT_OK || printed) {
        goto out;
    }
    static const char *const hdr[] = {"ID", "KIND",    "TARGET",  "REASON",
                                      "BY", "CREATED", "EXPIRES", "STATE"};
    struct tui_table *t = tui_table_new(8, hdr);
    if (t == NULL) {
        rc = TUI_EXIT_SERVER;
        goto out;
    }
    tui_table_max(t, 2, 34);
    tui_table_max(t, 3, 30);
    tui_table_max(t, 4, 24);
    size_t i;
    const json_t *r;
    json_array_foreach (json_object_get(c.json, "revocations"), i, r) {
        char id[24], kind[24], tgt[300], why[200], who[300], cr[32], ex[32], st[16];
        tui_jtext(r, "id", "-", id, sizeof(id));
        tui_jtext(r, "kind", "-", kind, sizeof(kind));
        tui_jtext(r, "target", "-", tgt, sizeof(tgt));
        tui_jtext(r, "reason", "-", why, sizeof(why));
        tui_jtext(r, "actor", "-", who, sizeof(who));
        tui_fmt_time(tui_jint(r, "created_us", 0), 1, cr, sizeof(cr));
        int64_t e = tui_jint(r, "expires_us", 0);
        if (e > 0) {
            tui_fmt_time(e, 1, ex, sizeof(ex));
        } else {
            snprintf(ex, sizeof(ex), "never");
        }
        revocation_state(r, st, sizeof(st));
        const char *row[] = {id, kind, tgt, why[0] ? why : "-", who, cr, ex, st};
        if (tui_table_add(t, row) != 0) {
            break;
        }
    }
    tui_table_print(t, stdout);
    tui_table_free(t);
out:
    call_cleanup(&c);
    return rc;
}

/* ---- decisions -------------------------------------------------------------- */

static void decision_cells(const json_t *d, char cells[8][600])
{
    tui_fmt_time(tui_jint(d, "ts_us", 0), 1, cells[0], 600);
    tui_jtext(d, "decision", "-", cells[1], 600);
    tui_jtext(d, "status", "-", cells[2], 600);
    tui_jtext(d, "reason", "-", cells[3], 600);
    tui_jtext(d, "token_sub", "", cells[4], 600);
    if (cells[4][0] == '\0') {
        tui_jtext(d, "cert_subject", "-", cells[4], 600);
    }
    tui_jtext(d, "route", "-", cells[5], 600);
    char m[32], p[520];
    tui_jtext(d, "method", "", m, sizeof(m));
    tui_jtext(d, "path", "", p, sizeof(p));
    snprintf(cells[6], 600, "%s%s%s", m, m[0] ? " " : "", p[0] ? p : "-");
    tui_jtext(d, "id", "-", cells[7], 600);
}

static int by_id(const void *a, const void *b)
{
    int64_t x = tui_jint(*(json_t *const *)a, "id", 0);
    int64_t y = tui_jint(*(json_t *const *)b, "id", 0);
    return x < y ? -1 : x > y;
}

/* Rows sorted oldest first (the API answers newest first). Borrowed refs. */
static json_t **sorted_rows(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    json_t **v = calloc(*n + 1, sizeof(json_t *));
    if (v == NULL) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        v[i] = json_array_get(arr, i);
    }
    qsort(v, *n, sizeof(json_t *), by_id);
    return v;
}

static void print_decisions_table(const json_t *arr, FILE *f)
{
    static const char *const hdr[] = {"TIME", "DECISION", "STATUS",  "REASON",
                                      "WHO",  "ROUTE",    "REQUEST", "ID"};
    struct tui_table *t = tui_table_new(8, hdr);
    if (t == NULL) {
        return;
    }
    tui_table_max(t, 4, 28);
    tui_table_max(t, 6, 48);
    size_t n;
    json_t **rows = sorted_rows(arr, &n);
    for (size_t i = 0; i < n; i++) {
        static char cells[8][600];
        decision_cells(rows[i], cells);
        const char *row[] = {cells[0], cells[1], cells[2], cells[3],
                             cells[4], cells[5], cells[6], cells[7]};
        if (tui_table_add(t, row) != 0) {
            break;
        }
    }
    free(rows);
    tui_table_print(t, f);
    tui_table_free(t);
}

struct dfilter {
    const char *subject, *route, *decision, *reason, *session;
};

/* Client-side filter for the stream (the query applies them server-side). */
static int dfilter_match(const struct dfilter *f, const json_t *d)
{
    const char *s;
    if (f->subject != NULL) {
        const char *a = tui_jstr(d, "token_sub");
        const char *b = tui_jstr(d, "cert_subject");
        if ((a == NULL || strcmp(a, f->subject) != 0) &&
            (b == NULL || strcmp(b, f->subject) != 0)) {
            return 0;
        }
    }
    if (f->route != NULL && ((s = tui_jstr(d, "route")) == NULL || strcmp(s, f->route) != 0)) {
        return 0;
    }
    if (f->decision != NULL &&
        ((s = tui_jstr(d, "decision")) == NULL || strcmp(s, f->decision) != 0)) {
        return 0;
    }
    if (f->reason != NULL && ((s = tui_jstr(d, "reason")) == NULL || strcmp(s, f->reason) != 0)) {
        return 0;
    }
    if (f->session != NULL &&
        ((s = tui_jstr(d, "session_id")) == NULL || strcmp(s, f->session) != 0)) {
        return 0;
    }
    return 1;
}

static void print_decision_line(const struct tui_ctx *x, const json_t *d)
{
    if (x->json) {
        char *s = json_dumps(d, JSON_COMPACT | TUI_JSON_OUT);
        if (s != NULL) {
            puts(s);
            free(s);
        }
    } else {
        static char c[8][600];
        decision_cells(d, c);
        /* Who and route are cut by display width with a mark, as in the
         * table: a byte cut could split a UTF-8 sequence and would show two
         * subjects that share their first 20 bytes as the same one. */
        char who[640], route[640];
        printf("%-19s  %-5s  %-3s  %-24s  %s  %s  %s\n", c[0], c[1], c[2], c[3],
               tui_text_cell(c[4], 20, 1, who, sizeof(who)),
               tui_text_cell(c[5], 10, 1, route, sizeof(route)), c[6]);
    }
    fflush(stdout);
}

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* Follow the stream after id; print matching rows until interrupted. */
static int follow(const struct tui_ctx *x, struct tui_client *cl, int64_t after, const char *fq,
                  const struct dfilter *f)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    char path[2048];
    snprintf(path, sizeof(path), "/v1/decisions/stream?after_id=%lld%s", (long long)after, fq);
    struct tui_request rq = {
        .method = "GET", .path = path, .timeout_ms = x->timeout_ms, .stream = 1};
    struct gh_err e;
    gh_err_clear(&e);
    int rc = TUI_EXIT_OK;
    if (tui_client_begin(cl, &rq, &e) != 0) {
        fprintf(stderr, "gatehousectl: %s\n", e.msg);
        tui_client_end(cl);
        return err_exit(&e);
    }
    int checked = 0;
    while (!g_interrupted) {
        int s = tui_client_step(cl, &e);
        if (s == TUI_IO_ERROR) {
            fprintf(stderr, "gatehousectl: decision stream: %s\n", e.msg);
            rc = err_exit(&e);
            break;
        }
        struct tui_resp *r = tui_client_resp(cl);
        if (!checked && r->state != TUI_RS_HEAD) {
            checked = 1;
            if (r->status != 200) {
                json_t *j = NULL;
                if (s == TUI_IO_DONE && r->body != NULL) {
                    j = json_loads(r->body, 0, NULL);
                }
                char m[256];
                fprintf(stderr, "gatehousectl: decision stream: HTTP %d %s\n", r->status,
                        tui_jtext(j, "error", "", m, sizeof(m)));
                json_decref(j);
                rc = status_exit(r->status);
                break;
            }
        }
        if (s == TUI_IO_DATA || s == TUI_IO_DONE) {
            const char *line;
            size_t adv = 0;
            long n;
            while ((n = tui_resp_line(r, &line, &adv)) >= 0) {
                if (n > 0) {
                    json_t *d = json_loadb(line, (size_t)n, 0, NULL);
                    if (json_is_object(d) && json_object_get(d, "id") == NULL &&
                        json_object_get(d, "error") != NULL) {
                        /* The server ends a failing stream with an error line. */
                        char m[300];
                        fprintf(stderr, "gatehousectl: decision stream: %s\n",
                                tui_jtext(d, "error", "", m, sizeof(m)));
                        rc = TUI_EXIT_SERVER;
                    } else if (json_is_object(d) && dfilter_match(f, d)) {
                        print_decision_line(x, d);
                    }
                    json_decref(d);
                }
                tui_resp_consume(r, adv);
            }
        }
        if (s == TUI_IO_DONE || rc != TUI_EXIT_OK) {
            if (rc == TUI_EXIT_OK) {
                fprintf(stderr, "gatehousectl: the gateway ended the decision stream\n");
                rc = TUI_EXIT_UNREACHABLE;
            }
            break;
        }
        struct pollfd p;
        if (tui_client_pollfd(cl, &p) && poll(&p, 1, tui_client_timeout_ms(cl)) < 0 &&
            errno != EINTR) {
            rc = TUI_EXIT_SERVER;
            break;
        }
    }
    tui_client_end(cl);
    return rc;
}

static int cmd_decisions(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    const char *since = NULL, *limit = NULL, *after = NULL;
    struct dfilter f = {0};
    int do_follow = 0;
    for (int i = 1; i < argc; i++) {
        int bad = 0;
        if (opt_val(argc, argv, &i, "--since", &since, &bad) ||
            opt_val(argc, argv, &i, "--subject", &f.subject, &bad) ||
            opt_val(argc, argv, &i, "--route", &f.route, &bad) ||
            opt_val(argc, argv, &i, "--decision", &f.decision, &bad) ||
            opt_val(argc, argv, &i, "--reason", &f.reason, &bad) ||
            opt_val(argc, argv, &i, "--session", &f.session, &bad) ||
            opt_val(argc, argv, &i, "--after-id", &after, &bad) ||
            opt_val(argc, argv, &i, "--limit", &limit, &bad)) {
            if (bad) {
                return usage_err("%s needs a value", argv[i]);
            }
            continue;
        }
        if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0) {
            do_follow = 1;
            continue;
        }
        return usage_err("decisions: unexpected argument '%s'", argv[i]);
    }
    if (f.decision != NULL && strcmp(f.decision, "allow") != 0 && strcmp(f.decision, "deny") != 0) {
        return usage_err("--decision must be allow or deny, not '%s'", f.decision);
    }
    int64_t since_s = 0, lim = 0, after_id = 0;
    if (since != NULL && tui_parse_dur(since, &since_s) != 0) {
        return usage_err("--since wants 1h, 15m, 2d or SECONDS, got '%s'", since);
    }
    if (limit != NULL && (tui_parse_int(limit, &lim) != 0 || lim < 1 || lim > 10000)) {
        return usage_err("--limit wants a number 1..10000, got '%s'", limit);
    }
    if (after != NULL && tui_parse_int(after, &after_id) != 0) {
        return usage_err("--after-id wants a number, got '%s'", after);
    }
    /* Filters, shared by the query and the stream. */
    char fq[1200] = "";
    size_t fo = 0;
    const char *names[] = {"subject", "route", "decision", "reason", "session"};
    const char *vals[] = {f.subject, f.route, f.decision, f.reason, f.session};
    for (size_t k = 0; k < 5; k++) {
        char esc[800];
        if (vals[k] == NULL) {
            continue;
        }
        if (tui_url_escape(vals[k], esc, sizeof(esc)) != 0 ||
            fo + strlen(esc) + strlen(names[k]) + 3 >= sizeof(fq)) {
            return usage_err("filter value too long: '%s'", vals[k]);
        }
        fo += (size_t)snprintf(fq + fo, sizeof(fq) - fo, "&%s=%s", names[k], esc);
    }
    char path[2048];
    size_t o = (size_t)snprintf(path, sizeof(path), "/v1/decisions?limit=%lld",
                                (long long)(lim > 0 ? lim : (do_follow ? 20 : 100)));
    if (since != NULL) {
        o += (size_t)snprintf(path + o, sizeof(path) - o, "&since_us=%lld",
                              (long long)(gh_now_us() - since_s * 1000000));
    }
    if (after_id > 0) {
        o += (size_t)snprintf(path + o, sizeof(path) - o, "&after_id=%lld", (long long)after_id);
    }
    snprintf(path + o, sizeof(path) - o, "%s", fq);
    struct call c;
    int rc = api(x, cl, "GET", path, NULL, 0, NULL, &c, 0);
    if (rc == TUI_EXIT_OK) {
        rc = need_object(&c, "decisions");
    }
    if (rc != TUI_EXIT_OK) {
        call_cleanup(&c);
        return rc;
    }
    const json_t *arr = json_object_get(c.json, "decisions");
    if (!do_follow) {
        if (x->json) {
            print_json(c.json);
        } else {
            print_decisions_table(arr, stdout);
        }
        call_cleanup(&c);
        return rc;
    }
    /* Follow: print the recent rows oldest first, then stream after the
     * newest id seen (or after the newest row overall if none matched). */
    size_t n;
    json_t **rows = sorted_rows(arr, &n);
    int64_t max_id = after_id;
    for (size_t i = 0; i < n; i++) {
        print_decision_line(x, rows[i]);
        int64_t id = tui_jint(rows[i], "id", 0);
        if (id > max_id) {
            max_id = id;
        }
    }
    free(rows);
    call_cleanup(&c);
    if (max_id == 0) {
        rc = api(x, cl, "GET", "/v1/decisions?limit=1", NULL, 0, NULL, &c, 0);
        if (rc != TUI_EXIT_OK) {
            call_cleanup(&c);
            return rc;
        }
        const json_t *d0 = json_array_get(json_object_get(c.json, "decisions"), 0);
        max_id = tui_jint(d0, "id", 0);
        call_cleanup(&c);
    }
    return follow(x, cl, max_id, fq, &f);
}

/* ---- policy ----------------------------------------------------------------- */

static void print_policy_errors(const json_t *j, const char *file)
{
    const json_t *errs = json_object_get(j, "errors");
    size_t i;
    const json_t *e;
    char line[1200];
    if (json_array_size(errs) == 0) {
        char m[512];
        fprintf(stderr, "%s: %s\n", file, tui_jtext(j, "error", "policy refused", m, sizeof(m)));
        return;
    }
    json_array_foreach (errs, i, e) {
        tui_policy_error_text(e, file, line, sizeof(line));
        fprintf(stderr, "%s\n", line);
    }
}

static void short_version(const json_t *o, const char *key, char *buf, size_t len)
{
    tui_jtext(o, key, "-", buf, len);
    if (len > 12 && strlen(buf) > 12) {
        buf[12] = '\0';
    }
}

static int policy_post_file(const struct tui_ctx *x, struct tui_client *cl, const char *what,
                            const char *file)
{
    struct gh_err e;
    size_t len = 0;
    char *yaml = tui_read_file(file, POLICY_FILE_MAX, &len, &e);
    if (yaml == NULL) {
        fprintf(stderr, "gatehousectl: %s\n", e.msg);
        return TUI_EXIT_USAGE;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/policy/%s", what);
    struct call c;
    int rc = api(x, cl, "POST", path, yaml, len, "application/yaml", &c, API_QUIET);
    free(yaml);
    if (rc == TUI_EXIT_UNREACHABLE || (rc != TUI_EXIT_OK && c.json == NULL)) {
        if (rc != TUI_EXIT_UNREACHABLE) {
            fprintf(stderr, "gatehousectl: POST %s: HTTP %d\n", path, c.reply.status);
        }
        call_cleanup(&c);
        return rc;
    }
    int valid = rc == TUI_EXIT_OK;
    const json_t *ok = json_object_get(c.json, "ok");
    if (json_is_false(ok) || json_array_size(json_object_get(c.json, "errors")) > 0) {
        valid = 0;
    }
    if (x->json) {
        print_json(c.json);
    }
    if (!valid) {
        print_policy_errors(c.json, file);
        if (rc == TUI_EXIT_OK) {
            rc = TUI_EXIT_REFUSED;
        }
        if (rc == TUI_EXIT_REFUSED && !x->json) {
            fprintf(stderr, "%s: %s\n", file,
                    strcmp(what, "apply") == 0 ? "not applied; the active policy is unchanged"
                                               : "invalid");
        }
    } else if (!x->json) {
        if (strcmp(what, "apply") == 0) {
            char v[80], pv[80];
            short_version(c.json, "version", v, sizeof(v));
            short_version(c.json, "previous", pv, sizeof(pv));
            if (strcmp(v, pv) == 0) {
                printf("%s: unchanged, version %s is already active\n", file, v);
            } else {
                printf("%s: applied, active policy version %s (was %s)\n", file, v, pv);
            }
        } else {
            printf("%s: ok\n", file);
        }
    }
    call_cleanup(&c);
    return rc;
}

static int policy_get(const struct tui_ctx *x, struct tui_client *cl)
{
    struct call c;
    int rc = api(x, cl, "GET", "/v1/policy", NULL, 0, NULL, &c, 0);
    if (rc == TUI_EXIT_OK) {
        rc = need_object(&c, "policy");
    }
    if (rc == TUI_EXIT_OK) {
        if (x->json) {
            print_json(c.json);
        } else {
            char v[80];
            const char *src = tui_jstr(c.json, "source");
            tui_jtext(c.json, "version", "-", v, sizeof(v));
            if (isatty(STDOUT_FILENO)) {
                printf("# active policy version %s\n", v);
            }
            if (src != NULL) {
                safe_puts(src, stdout);
                if (src[0] != '\0' && src[strlen(src) - 1] != '\n') {
                    putchar('\n');
                }
            }
        }
    }
    call_cleanup(&c);
    return rc;
}

static int policy_versions(const struct tui_ctx *x, struct tui_client *cl)
{
    struct call c;
    int printed;
    int rc = get_object(x, cl, "/v1/policy/versions", "policy versions", &c, &printed);
    if (rc != TUI_EXIT_OK || printed) {
        goto out;
    }
    static const char *const hdr[] = {"VERSION", "APPLIED", "BY", "ACTIVE"};
    struct tui_table *t = tui_table_new(4, hdr);
    if (t == NULL) {
        rc = TUI_EXIT_SERVER;
        goto out;
    }
    size_t i;
    const json_t *v;
    json_array_foreach (json_object_get(c.json, "versions"), i, v) {
        char ver[80], at[32], by[300];
        short_version(v, "version", ver, sizeof(ver));
        tui_fmt_time(tui_jint(v, "applied_us", 0), 1, at, sizeof(at));
        tui_jtext(v, "applied_by", "-", by, sizeof(by));
        const char *row[] = {ver, at, by, json_is_true(json_object_get(v, "active")) ? "*" : ""};
        if (tui_table_add(t, row) != 0) {
            break;
        }
    }
    tui_table_print(t, stdout);
    tui_table_free(t);
out:
    call_cleanup(&c);
    return rc;
}

static int policy_diff(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *file = NULL;
    for (int i = 2; i < argc; i++) {
        int bad = 0;
        if (opt_val(argc, argv, &i, "--from", &from, &bad) ||
            opt_val(argc, argv, &i, "--to", &to, &bad)) {
            if (bad) {
                return usage_err("%s needs a value", argv[i]);
            }
            continue;
        }
        if (argv[i][0] == '-' || file != NULL) {
            return usage_err("policy diff: unexpected argument '%s'", argv[i]);
        }
        file = argv[i];
    }
    struct call c;
    int rc;
    if (file != NULL) {
        if (from != NULL || to != NULL) {
            return usage_err("policy diff FILE compares FILE with the active policy; "
                             "--from/--to are for stored versions");
        }
        struct gh_err e;
        size_t flen = 0;
        char *yaml = tui_read_file(file, POLICY_FILE_MAX, &flen, &e);
        if (yaml == NULL) {
            fprintf(stderr, "gatehousectl: %s\n", e.msg);
            return TUI_EXIT_USAGE;
        }
        rc = api(x, cl, "GET", "/v1/policy", NULL, 0, NULL, &c, 0);
        if (rc == TUI_EXIT_OK) {
            rc = need_object(&c, "policy");
        }
        if (rc == TUI_EXIT_OK) {
            const char *src = tui_jstr(c.json, "source");
            char v[80], label[128];
            short_version(c.json, "version", v, sizeof(v));
            snprintf(label, sizeof(label), "active (%s)", v);
            char *d = tui_diff(src != NULL ? src : "", src != NULL ? strlen(src) : 0, yaml, flen,
                               label, file, &e);
            if (d == NULL) {
                fprintf(stderr, "gatehousectl: %s\n", e.msg);
                rc = TUI_EXIT_REFUSED;
            } else if (x->json) {
                json_t *o = json_pack("{s:s?, s:s, s:s?}", "from", tui_jstr(c.json, "version"),
                                      "to", file, "diff", d);
                if (o != NULL) {
                    print_json(o);
                }
                json_decref(o);
            } else if (d[0] == '\0') {
                printf("%s is identical to the active policy\n", file);
            } else {
                safe_puts(d, stdout);
            }
            free(d);
        }
        free(yaml);
        call_cleanup(&c);
        return rc;
    }
    if (from == NULL) {
        return usage_err("usage: policy diff --from VERSION [--to VERSION] | policy diff FILE");
    }
    char ef[200], et[200], path[512];
    if (tui_url_escape(from, ef, sizeof(ef)) != 0 ||
        tui_url_escape(to != NULL ? to : "", et, sizeof(et)) != 0) {
        return usage_err("version too long");
    }
    snprintf(path, sizeof(path), "/v1/policy/diff?from=%s%s%s", ef, to != NULL ? "&to=" : "",
             to != NULL ? et : "");
    rc = api(x, cl, "GET", path, NULL, 0, NULL, &c, 0);
    if (rc == TUI_EXIT_OK) {
        rc = need_object(&c, "policy diff");
    }
    if (rc == TUI_EXIT_OK) {
        if (x->json) {
            print_json(c.json);
        } else {
            const char *d = tui_jstr(c.json, "diff");
            if (d == NULL || d[0] == '\0') {
                printf("no differences\n");
            } else {
                safe_puts(d, stdout);
            }
        }
    }
    call_cleanup(&c);
    return rc;
}

static int policy_rollback(const struct tui_ctx *x, struct tui_client *cl, const char *ver)
{
    json_t *b = json_pack("{s:s}", "version", ver);
    char *txt = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (txt == NULL) {
        return usage_err("bad version '%s'", ver);
    }
    struct call c;
    int rc = api(x, cl, "POST", "/v1/policy/rollback", txt, strlen(txt), NULL, &c, 0);
    free(txt);
    if (rc == TUI_EXIT_OK) {
        if (x->json) {
            if (c.json != NULL) {
                print_json(c.json);
            }
        } else {
            char v[80];
            short_version(c.json, "version", v, sizeof(v));
            if (strcmp(v, "-") == 0) {
                tui_sanitize(ver, v, sizeof(v));
            }
            printf("rolled back: active policy version %s\n", v);
        }
    }
    call_cleanup(&c);
    return rc;
}

static int cmd_policy(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "get") == 0 && argc == 2) {
        return policy_get(x, cl);
    }
    if (strcmp(sub, "versions") == 0 && argc == 2) {
        return policy_versions(x, cl);
    }
    if ((strcmp(sub, "validate") == 0 || strcmp(sub, "apply") == 0) && argc == 3) {
        return policy_post_file(x, cl, sub, argv[2]);
    }
    if (strcmp(sub, "diff") == 0) {
        return policy_diff(x, cl, argc, argv);
    }
    if (strcmp(sub, "rollback") == 0 && argc == 3) {
        return policy_rollback(x, cl, argv[2]);
    }
    return usage_err("usage: policy get|validate FILE|apply FILE|versions|"
                     "diff [--from V] [--to V] [FILE]|rollback VERSION");
}

/* ---- stats, metrics, health -------------------------------------------------- */

static int cmd_stats(const struct tui_ctx *x, struct tui_client *cl, int argc, char **argv)
{
    if (argc != 1) {
        return usage_err("stats: unexpected argument '%s'", argv[1]);
    }
    struct call c;
    int printed;
    int rc = get_object(x, cl, "/v1/stats", "stats", &c, &printed);
    if (rc != TUI_EXIT_OK || printed) {
        goto out;
    }
    char a[300], b[64], d[64];
    const json_t *j = c.json;
    tui_jtext(j, "name", "gatehouse", a, sizeof(a));
    tui_jtext(j, "version", "?", b, sizeof(b));
    printf("%-18s %s %s\n", "gateway", a, b);
    tui_fmt_dur(tui_jint(j, "uptime_s", 0), a, sizeof(a));
    printf("%-18s %s\n", "uptime", a);
    printf("%-18s %lld (allowed %lld, denied %lld)\n", "requests",
           (long long)tui_jint(j, "requests", 0), (long long)tui_jint(j, "allowed", 0),
           (long long)tui_jint(j, "denied", 0));
    printf("%-18s %.1f\n", "req/s", tui_jreal(j, "req_per_s", 0));
    double dr = tui_jreal(j, "deny_rate", 0);
    printf("%-18s %.1f%%\n", "deny rate", dr <= 1.0 ? dr * 100.0 : dr);
    printf("%-18s %lld\n", "active sessions", (long long)tui_jint(j, "active_sessions", 0));
    printf("%-18s %lld\n", "live connections", (long long)tui_jint(j, "live_connections", 0));
    const json_t *l = json_object_get(j, "log");
    printf("%-18s queue %lld/%lld, committed %lld, failed %lld, %s\n", "decision log",
           (long long)tui_jint(l, "queue_depth", 0), (long long)tui_jint(l, "queue_size", 0),
           (long long)tui_jint(l, "committed", 0), (long long)tui_jint(l, "failed", 0),
           json_is_false(json_object_get(l, "healthy")) ? "UNHEALTHY" : "healthy");
    long long nb = tui_jint(l, "batches", 0);
    if (nb > 0) {
        /* Since start: what a strict response waits for is about one commit. */
        printf("%-18s %lld, %.1f rows each, mean %.2f ms (fsync included)\n", "log commits", nb,
               (double)tui_jint(l, "committed", 0) / (double)nb,
               (double)tui_jint(l, "commit_us", 0) / 1000.0 / (double)nb);
    }
    const json_t *k = json_object_get(j, "keys");
    tui_fmt_dur(tui_jint(k, "age_s", 0), d, sizeof(d));
    tui_jtext(k, "last_error", "", a, sizeof(a));
    printf("%-18s %lld, refreshed %s ago%s%s\n", "issuer keys", (long long)tui_jint(k, "count", 0),
           d, a[0] ? ", last error: " : "", a);
    printf("%-18s %lld\n", "workers", (long long)tui_jint(j, "workers", 0));
out:
    call_cleanup(&c);
    return rc;
}

static int cmd_raw_get(const struct tui_ctx *x, struct tui_client *cl, const char *path)
{
    struct call c;
    int rc = api(x, cl, "GET", path, NULL, 0, NULL, &c, API_RAW);
    if (rc == TUI_EXIT_OK) {
        if (c.json != NULL && (x->json || strcmp(path, "/metrics") != 0)) {
            if (x->json) {
                print_json(c.json);
            } else {
                char s[64];
                printf("%s\n", tui_jtext(c.json, "status", "ok", s, sizeof(s)));
            }
        } else if (x->json) {
            json_t *o = json_pack("{s:s%}", "text", c.reply.body, c.reply.body_len);
            if (o != NULL) {
                print_json(o);
            }
            json_decref(o);
        } else {
            safe_puts(c.reply.body, stdout);
        }
    }
    call_cleanup(&c);
    return rc;
}

/* ---- audit verify (runs gatehouse) -------------------------------------------- */

/* The gatehouse binary: beside us, in the build tree's gateway/ dir, else PATH. */
static void find_gatehouse(const char *self, char *out, size_t len)
{
    char exe[PATH_BUF];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0 && self != NULL && strchr(self, '/') != NULL) {
        n = (ssize_t)snprintf(exe, sizeof(exe), "%s", self);
    }
    if (n > 0 && (size_t)n < sizeof(exe)) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            const char *cands[] = {"/gatehouse", "/../gateway/gatehouse"};
            for (size_t i = 0; i < 2; i++) {
                int w = snprintf(out, len, "%s%s", exe, cands[i]);
                if (w > 0 && (size_t)w < len && access(out, X_OK) == 0) {
                    return;
                }
            }
        }
    }
    snprintf(out, len, "gatehouse");
}

static int cmd_audit(const struct tui_ctx *x, int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "verify") != 0) {
        return usage_err("usage: audit verify DB");
    }
    char bin[PATH_BUF];
    find_gatehouse(x->self, bin, sizeof(bin));
    char *args[7];
    int k = 0;
    args[k++] = bin;
    args[k++] = "audit";
    args[k++] = "verify";
    args[k++] = "--db";
    args[k++] = argv[2];
    if (x->json) {
        args[k++] = "--json";
    }
    args[k] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "gatehousectl: fork: %s\n", strerror(errno));
        return TUI_EXIT_SERVER;
    }
    if (pid == 0) {
        execvp(bin, args);
        fprintf(stderr, "gatehousectl: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return TUI_EXIT_SERVER;
        }
    }
    if (!WIFEXITED(st)) {
        return TUI_EXIT_SERVER;
    }
    switch (WEXITSTATUS(st)) {
    case 0:
        return TUI_EXIT_OK;
    case 1:
        return TUI_EXIT_REFUSED; /* the chain is broken: tampered */
    default:
        return TUI_EXIT_SERVER; /* could not verify (no such file, not a log...) */
    }
}

/* ---- dispatch ----------------------------------------------------------------- */

int tui_ctl_main(const struct tui_ctx *x, int argc, char **argv)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "audit") == 0) {
        return cmd_audit(x, argc, argv);
    }
    static const char *const known[] = {"sessions",  "session", "revoke", "unrevoke", "revocations",
                                        "decisions", "policy",  "stats",  "metrics",  "health"};
    int found = 0;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(cmd, known[i]) == 0) {
            found = 1;
        }
    }
    if (!found) {
        return usage_err("unknown command '%s'", cmd);
    }
    struct gh_err e;
    gh_err_clear(&e);
    struct tui_client *cl = tui_client_new(&x->conn, &e);
    if (cl == NULL) {
        fprintf(stderr, "gatehousectl: %s\n", e.msg);
        return e.reason == GH_R_ADMIN_BAD_REQUEST ? TUI_EXIT_USAGE : TUI_EXIT_UNREACHABLE;
    }
    int rc;
    if (strcmp(cmd, "sessions") == 0) {
        rc = cmd_sessions(x, cl, argc, argv);
    } else if (strcmp(cmd, "session") == 0) {
        rc = cmd_session(x, cl, argc, argv);
    } else if (strcmp(cmd, "revoke") == 0) {
        rc = cmd_revoke(x, cl, argc, argv);
    } else if (strcmp(cmd, "unrevoke") == 0) {
        rc = cmd_unrevoke(x, cl, argc, argv);
    } else if (strcmp(cmd, "revocations") == 0) {
        rc = cmd_revocations(x, cl, argc, argv);
    } else if (strcmp(cmd, "decisions") == 0) {
        rc = cmd_decisions(x, cl, argc, argv);
    } else if (strcmp(cmd, "policy") == 0) {
        rc = cmd_policy(x, cl, argc, argv);
    } else if (strcmp(cmd, "stats") == 0) {
        rc = cmd_stats(x, cl, argc, argv);
    } else if (argc != 1) {
        rc = usage_err("%s takes no arguments", cmd);
    } else if (strcmp(cmd, "metrics") == 0) {
        rc = cmd_raw_get(x, cl, "/metrics");
    } else {
        rc = cmd_raw_get(x, cl, "/v1/health");
    }
    tui_client_free(cl);
    return rc;
}
