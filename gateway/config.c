/*
 * config.c: load the gateway's YAML configuration into an immutable snapshot.
 *
 * The YAML is read with libfyaml's event parser into a small tree of our own
 * that keeps a 1-based line:col for every node (the installed libfyaml has no
 * public node -> mark accessor), then walked against static key tables in the
 * style of Redis' table-driven config: one row per key with its type, range
 * and destination offset, so the tables, the docs (docs/CONFIG.md) and the
 * struct stay in step. The walk never stops at the first problem: every
 * error is appended to the caller's list as `file:line:col: message`, and
 * any error discards the half-built snapshot, so a bad reload leaves the
 * running gateway on its old one.
 *
 * Hostile or careless input is bounded everywhere: file size (1 MiB), nesting
 * depth, node count, string length, list lengths; YAML aliases are refused
 * (no billion-laughs expansion) and duplicate keys are errors, since a
 * silently ignored second `require_binding:` is exactly the kind of mistake
 * a security gateway must not make.
 */
#include "gateway/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gateway/base/log.h"

#define CFG_MAX_FILE (1024 * 1024) /* config file size limit */
#define CFG_MAX_DEPTH 32           /* YAML nesting limit (the schema needs 4) */
#define CFG_MAX_NODES 100000       /* YAML node limit: bounds memory on junk input */
#define CFG_MAX_STR 4096           /* any single string value */
#define CFG_MAX_NAME 255           /* names, audiences, subjects */
#define CFG_MAX_PREFIX 1024        /* route path_prefix / upstream base path */
#define CFG_MAX_ID 63              /* route id */
#define CFG_MAX_HEADER_NAME 128    /* strip_headers entries */
#define CFG_MAX_KEYS 16            /* keys per section table */
#define CFG_PATH_MAX 4096          /* resolved file path */
#define NOSTORE ((size_t)-1)       /* key validated but not stored in the struct */

/* ---------------------------------------------------------------------- */
/* YAML tree with positions                                                */

enum ytype { Y_SCALAR, Y_MAP, Y_SEQ };

struct ynode {
    enum ytype type;
    int line; /* 1-based */
    int col;  /* 1-based */
    int plain; /* scalar written without quotes: `~`, `true`, `5` keep their YAML meaning */
    int bad;   /* alias, tagged node or non-scalar key: already reported, skip */
    char *str; /* scalar text, NUL-terminated (may contain NUL: see len) */
    size_t len;
    struct ynode **kids; /* map: key, value, key, value, ...; seq: items */
    size_t n;
    size_t cap;
};

struct ctx {
    const char *name; /* file name used in messages */
    char base[CFG_PATH_MAX]; /* absolute directory relative paths resolve against */
    struct gh_errlist *errs;
    int nerr;
    struct gw_config *c;
    const struct ynode *root;
    /* positions remembered for cross-key checks */
    const struct ynode *route_node[GW_MAX_ROUTES];
    const struct ynode *route_id[GW_MAX_ROUTES];
    const struct ynode *route_host[GW_MAX_ROUTES];
    const struct ynode *first_authz; /* first route with authz on */
    const char *first_authz_id;
    const struct ynode *issuer_key; /* `issuer:` key node, if present */
    const struct ynode *listen_val;
    const struct ynode *admin_listen_val;
};

static void verr(struct ctx *cx, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void verr(struct ctx *cx, int line, int col, const char *fmt, va_list ap)
{
    char msg[300];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cx->nerr++;
    gh_errlist_add(cx->errs, cx->name, line, col, "%s", msg);
}

static void err_pos(struct ctx *cx, int line, int col, const char *fmt, ...) GH_PRINTF(4, 5);
static void err_pos(struct ctx *cx, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(cx, line, col, fmt, ap);
    va_end(ap);
}

/* Report at node n (or 1:1 when there is no node, e.g. an empty file). */
static void err_at(struct ctx *cx, const struct ynode *n, const char *fmt, ...) GH_PRINTF(3, 4);
static void err_at(struct ctx *cx, const struct ynode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verr(cx, n != NULL ? n->line : 1, n != NULL ? n->col : 1, fmt, ap);
    va_end(ap);
}

static void ynode_free(struct ynode *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        ynode_free(n->kids[i]);
    }
    free(n->kids);
    free(n->str);
    free(n);
}

static int is_null(const struct ynode *n)
{
    if (n->type != Y_SCALAR || !n->plain) {
        return 0;
    }
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

static const char *type_name(const struct ynode *n)
{
    if (n->type == Y_MAP) {
        return "a mapping";
    }
    if (n->type == Y_SEQ) {
        return "a list";
    }
    if (is_null(n)) {
        return "an empty value";
    }
    return "a scalar";
}

struct ybuild {
    struct ctx *cx;
    const char *text; /* the whole input, for raw scalar decoding */
    size_t text_len;
    struct ynode *root;
    struct ynode *stack[CFG_MAX_DEPTH];
    int depth;
    size_t nodes;
    int docs;
    int last_line;
    int last_col;
};

/* Appends n to the open container (or makes it the root). Takes n. */
static int yb_attach(struct ybuild *yb, struct ynode *n)
{
    if (yb->depth == 0) {
        if (yb->root != NULL) {
            ynode_free(n);
            return -1;
        }
        yb->root = n;
        return 0;
    }
    struct ynode *p = yb->stack[yb->depth - 1];
    if (p->n == p->cap) {
        size_t ncap = p->cap == 0 ? 8 : p->cap * 2;
        struct ynode **k = realloc(p->kids, ncap * sizeof(*k));
        if (k == NULL) {
            ynode_free(n);
            return -1;
        }
        p->kids = k;
        p->cap = ncap;
    }
    if (p->type == Y_MAP && p->n % 2 == 0 && n->type != Y_SCALAR && !n->bad) {
        err_at(yb->cx, n, "mapping keys must be plain strings, not %s", type_name(n));
        n->bad = 1;
    }
    p->kids[p->n++] = n;
    return 0;
}

static struct ynode *yb_new(struct ybuild *yb, enum ytype t, struct fy_event *ev)
{
    if (yb->nodes >= CFG_MAX_NODES) {
        err_pos(yb->cx, yb->last_line, yb->last_col, "too many YAML nodes (max %d)",
                CFG_MAX_NODES);
        return NULL;
    }
    struct ynode *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        err_pos(yb->cx, yb->last_line, yb->last_col, "out of memory");
        return NULL;
    }
    yb->nodes++;
    n->type = t;
    const struct fy_mark *m = fy_event_start_mark(ev);
    if (m != NULL) {
        yb->last_line = m->line + 1;
        yb->last_col = m->column + 1;
    }
    /* An empty value has no token and no mark: it sits where the last node was. */
    n->line = yb->last_line;
    n->col = yb->last_col;
    return n;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* Decodes the raw content of a single-quoted scalar (between the quotes):
 * `''` is one quote, and line breaks fold per YAML 1.2 section 7.3.2 (one
 * break between text = a space, n empty lines = n newlines, white space
 * around breaks dropped). Returns a malloc'd string or NULL. */
static char *sq_decode(const char *raw, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    size_t i = 0;
    int first = 1;
    int empties = 0;
    if (out == NULL) {
        return NULL;
    }
    while (i <= len) {
        size_t eol = i;
        while (eol < len && raw[eol] != '\n') {
            eol++;
        }
        int last = eol >= len;
        size_t b = i;
        size_t e = eol;
        if (e > b && raw[e - 1] == '\r') {
            e--;
        }
        if (!first) {
            while (b < e && is_ws(raw[b])) {
                b++;
            }
        }
        if (!last) {
            while (e > b && is_ws(raw[e - 1])) {
                e--;
            }
        }
        if (!first && b == e && !last) {
            empties++;
        } else {
            if (!first) {
                if (empties > 0) {
                    memset(out + o, '\n', (size_t)empties);
                    o += (size_t)empties;
                } else {
                    out[o++] = ' ';
                }
                empties = 0;
            }
            for (size_t k = b; k < e; k++) {
                out[o++] = raw[k];
                if (raw[k] == '\'' && k + 1 < e && raw[k + 1] == '\'') {
                    k++;
                }
            }
        }
        first = 0;
        i = eol + 1;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* The text of a scalar event. libfyaml 0.7.12 leaks the buffer it builds
 * for a single-quoted scalar with runs of `''` escapes (and its token
 * iterator returns wrong text for them), so those are decoded here from the
 * raw input and cross-checked against libfyaml's own length. */
static char *scalar_text(struct ybuild *yb, struct fy_token *tok, size_t *len)
{
    const char *t = "";
    size_t n = 0;
    if (tok != NULL && fy_token_scalar_style(tok) == FYSS_SINGLE_QUOTED) {
        const struct fy_mark *a = fy_token_start_mark(tok);
        const struct fy_mark *b = fy_token_end_mark(tok);
        if (a != NULL && b != NULL && a->input_pos <= b->input_pos &&
            b->input_pos <= yb->text_len &&
            memmem(yb->text + a->input_pos, b->input_pos - a->input_pos, "''", 2) != NULL) {
            char *d = sq_decode(yb->text + a->input_pos, b->input_pos - a->input_pos, len);
            if (d != NULL && *len != fy_token_get_text_length(tok)) {
                free(d);
                d = NULL;
                *len = 0;
                err_pos(yb->cx, a->line + 1, a->column,
                        "cannot decode this single-quoted string; use double quotes");
            }
            return d;
        }
    }
    if (tok != NULL) {
        t = fy_token_get_text(tok, &n);
        if (t == NULL) {
            t = "";
            n = 0;
        }
    }
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, t, n);
        d[n] = '\0';
        *len = n;
    }
    return d;
}

static int yb_event(struct ybuild *yb, struct fy_event *ev)
{
    struct ynode *n = NULL;
    struct fy_token *tag = NULL;

    switch (ev->type) {
    case FYET_DOCUMENT_START:
        yb->docs++;
        if (yb->docs > 1) {
            const struct fy_mark *m = fy_event_start_mark(ev);
            err_pos(yb->cx, m != NULL ? m->line + 1 : yb->last_line,
                    m != NULL ? m->column + 1 : yb->last_col,
                    "only one YAML document is allowed in a config file");
            return -1;
        }
        return 0;
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START:
        if (yb->depth >= CFG_MAX_DEPTH) {
            const struct fy_mark *m = fy_event_start_mark(ev);
            err_pos(yb->cx, m != NULL ? m->line + 1 : yb->last_line,
                    m != NULL ? m->column + 1 : yb->last_col, "nesting deeper than %d levels",
                    CFG_MAX_DEPTH);
            return -1;
        }
        n = yb_new(yb, ev->type == FYET_MAPPING_START ? Y_MAP : Y_SEQ, ev);
        if (n == NULL) {
            return -1;
        }
        tag = ev->type == FYET_MAPPING_START ? ev->mapping_start.tag : ev->sequence_start.tag;
        break;
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        if (yb->depth > 0) {
            yb->depth--;
        }
        return 0;
    case FYET_SCALAR: {
        n = yb_new(yb, Y_SCALAR, ev);
        if (n == NULL) {
            return -1;
        }
        enum fy_scalar_style style = fy_token_scalar_style(ev->scalar.value);
        n->plain = style == FYSS_PLAIN;
        /* libfyaml marks a quoted scalar at its first character inside the
         * quotes; point at the opening quote, which is on the same line. */
        if ((style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED) && n->col > 1) {
            n->col--;
        }
        int nerr0 = yb->cx->nerr;
        n->str = scalar_text(yb, ev->scalar.value, &n->len);
        if (n->str == NULL) {
            ynode_free(n);
            if (yb->cx->nerr == nerr0) {
                err_pos(yb->cx, yb->last_line, yb->last_col, "out of memory");
            }
            return -1;
        }
        tag = ev->scalar.tag;
        break;
    }
    case FYET_ALIAS:
        n = yb_new(yb, Y_SCALAR, ev);
        if (n == NULL) {
            return -1;
        }
        n->bad = 1;
        if (n->col > 1) {
            n->col--; /* libfyaml marks the name after the '*' */
        }
        err_at(yb->cx, n, "YAML aliases are not supported in the config");
        break;
    default:
        return 0;
    }

    if (tag != NULL && !n->bad) {
        const struct fy_mark *tm = fy_token_start_mark(tag);
        n->bad = 1;
        err_pos(yb->cx, tm != NULL ? tm->line + 1 : n->line, tm != NULL ? tm->column + 1 : n->col,
                "YAML tags are not supported in the config");
    }
    int is_container = n->type != Y_SCALAR;
    if (yb_attach(yb, n) != 0) {
        err_pos(yb->cx, yb->last_line, yb->last_col, "out of memory");
        return -1;
    }
    if (is_container) {
        yb->stack[yb->depth++] = n;
    }
    return 0;
}

static void diag_discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/* Length of the UTF-8 sequence at p (1..4) and its code point, or 0 for an
 * invalid, overlong, surrogate or truncated sequence. */
static size_t utf8_next(const unsigned char *p, size_t left, uint32_t *cp)
{
    unsigned char b = p[0];
    size_t n;
    uint32_t v;
    uint32_t min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
        v = b & 0x1f;
        min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        v = b & 0x0f;
        min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        v = b & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (left < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return n;
}

/* YAML 1.2 section 5.1 printable set. */
static int yaml_printable(uint32_t c)
{
    return c == 0x09 || c == 0x0a || c == 0x0d || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
           (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
           (c >= 0x10000 && c <= 0x10ffff);
}

/* Checks the raw bytes before libfyaml sees them. Besides giving a precise
 * position for encoding errors, this keeps libfyaml 0.7.12 (Debian 12) away
 * from inputs it cannot handle: it loops forever scanning a `%` directive
 * followed by invalid UTF-8 (upstream pantoniou/libfyaml#101, found again
 * by tests/fuzz/fuzz_config.c), so only `%YAML 1.x` directive lines pass. */
static int prescan(struct ctx *cx, const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    int line = 1;
    int col = 1;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0) {
            err_pos(cx, line, col, "invalid UTF-8 (byte 0x%02x)", p[i]);
            return -1;
        }
        if (!yaml_printable(cp)) {
            err_pos(cx, line, col, "%s U+%04X is not allowed in YAML",
                    cp == 0 ? "NUL byte" : "control character", (unsigned)cp);
            return -1;
        }
        if (col == 1 && cp == '%') {
            size_t end = i;
            while (end < len && p[end] != '\n' && p[end] != '\r') {
                end++;
            }
            int ok = end - i >= 9 && memcmp(p + i, "%YAML 1.", 8) == 0 &&
                     (p[i + 8] == '1' || p[i + 8] == '2');
            for (size_t j = i + 9; ok && j < end && p[j] != '#'; j++) {
                ok = p[j] == ' ' || p[j] == '\t';
            }
            if (!ok) {
                err_pos(cx, line, col, "YAML directives other than %%YAML 1.1/1.2 are not "
                                       "supported");
                return -1;
            }
        }
        if (cp == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return 0;
}

/* Parses text (NUL-terminated, len bytes) into a tree. NULL on any error
 * (all reported). */
static struct ynode *yaml_parse(struct ctx *cx, const char *text, size_t len)
{
    struct ynode *out = NULL;
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    struct ybuild yb = {.cx = cx, .text = text, .text_len = len, .last_line = 1, .last_col = 1};
    int failed = 0;
    int nerr0 = cx->nerr;

    /* libfyaml must never print on its own: errors are collected and then
     * re-emitted as file:line:col through our error list. */
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = diag_discard;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (diag == NULL) {
        err_pos(cx, 1, 1, "cannot create YAML diagnostics (out of memory)");
        goto out;
    }
    fy_diag_set_collect_errors(diag, true);

    struct fy_parse_cfg pcfg = {
        .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE,
        .diag = diag,
    };
    fyp = fy_parser_create(&pcfg);
    if (fyp == NULL || fy_parser_set_string(fyp, text, len) != 0) {
        err_pos(cx, 1, 1, "cannot create YAML parser (out of memory)");
        goto out;
    }
    for (;;) {
        struct fy_event *ev = fy_parser_parse(fyp);
        if (ev == NULL) {
            break;
        }
        int rc = yb_event(&yb, ev);
        fy_parser_event_free(fyp, ev);
        if (rc != 0) {
            failed = 1;
            break;
        }
    }

    int syntax = 0;
    void *it = NULL;
    struct fy_diag_error *de;
    for (de = fy_diag_errors_iterate(diag, &it); de != NULL;
         de = fy_diag_errors_iterate(diag, &it)) {
        if (de->type < FYET_ERROR) {
            continue;
        }
        syntax = 1;
        /* Collected diagnostics carry 1-based positions already. */
        err_pos(cx, de->line > 0 ? de->line : 1, de->column > 0 ? de->column : 1,
                "YAML syntax error: %s", de->msg != NULL ? de->msg : "invalid input");
    }
    if (!syntax && !failed && fy_parser_get_stream_error(fyp)) {
        err_pos(cx, yb.last_line, yb.last_col, "YAML syntax error");
        syntax = 1;
    }
    if (syntax || failed || cx->nerr != nerr0) {
        goto out;
    }
    if (yb.root == NULL) {
        err_pos(cx, 1, 1, "the config file is empty");
        goto out;
    }
    out = yb.root;
    yb.root = NULL;
out:
    ynode_free(yb.root);
    if (fyp != NULL) {
        fy_parser_destroy(fyp);
    }
    if (diag != NULL) {
        fy_diag_destroy(diag);
    }
    return out;
}

/* ---------------------------------------------------------------------- */
/* Value checks                                                            */

static int str_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* A non-empty string scalar without control characters and <= max bytes. */
static const char *get_str(struct ctx *cx, const char *path, const struct ynode *v, size_t max)
{
    if (v->bad) {
        return NULL;
    }
    if (v->type != Y_SCALAR || is_null(v)) {
        err_at(cx, v, "`%s`: expected a string, got %s", path, type_name(v));
        return NULL;
    }
    if (v->len == 0) {
        err_at(cx, v, "`%s`: must not be empty", path);
        return NULL;
    }
    if (v->len > max) {
        err_at(cx, v, "`%s`: longer than %zu bytes", path, max);
        return NULL;
    }
    if (!str_printable(v->str, v->len)) {
        err_at(cx, v, "`%s`: control characters are not allowed", path);
        return NULL;
    }
    return v->str;
}

static int get_i64(struct ctx *cx, const char *path, const struct ynode *v, int64_t min,
                   int64_t max, int64_t *out)
{
    if (v->bad) {
        return -1;
    }
    if (v->type != Y_SCALAR || is_null(v) || !v->plain) {
        err_at(cx, v, "`%s`: expected an integer, got %s", path,
               v->type == Y_SCALAR && !v->plain ? "a quoted string" : type_name(v));
        return -1;
    }
    const char *s = v->str;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
    }
    size_t ndig = v->len - i;
    int ok = ndig >= 1 && ndig <= 18 && !(ndig > 1 && s[i] == '0');
    int64_t val = 0;
    for (; ok && i < v->len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            ok = 0;
            break;
        }
        val = val * 10 + (s[i] - '0');
    }
    if (!ok) {
        err_at(cx, v, "`%s`: expected an integer, got '%.40s'", path, s);
        return -1;
    }
    if (neg) {
        val = -val;
    }
    if (val < min || val > max) {
        err_at(cx, v, "`%s`: %lld is out of range (%lld..%lld)", path, (long long)val,
               (long long)min, (long long)max);
        return -1;
    }
    *out = val;
    return 0;
}

static int get_bool(struct ctx *cx, const char *path, const struct ynode *v, int *out)
{
    if (v->bad) {
        return -1;
    }
    if (v->type == Y_SCALAR && v->plain) {
        const char *s = v->str;
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
            *out = 0;
            return 0;
        }
    }
    err_at(cx, v, "`%s`: expected true or false, got %s%.40s%s", path,
           v->type == Y_SCALAR ? "'" : "", v->type == Y_SCALAR ? v->str : type_name(v),
           v->type == Y_SCALAR ? "'" : "");
    return -1;
}

/* Host name (RFC 1123 labels, '_' tolerated) or IPv4 literal. */
static int valid_hostname(const char *s, size_t len)
{
    if (len == 0 || len > 253) {
        return 0;
    }
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0) {
                return 0;
            }
            label = 0;
            continue;
        }
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_';
        if (!ok || ++label > 63) {
            return 0;
        }
    }
    return label > 0;
}

static int valid_ipv6(const char *s, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static int parse_port(const char *s, size_t len)
{
    if (len == 0 || len > 5 || s[0] == '0') {
        return -1;
    }
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* "host:port" where host is a name, IPv4 literal or [IPv6] literal. */
static int valid_hostport(const char *s, const char **why)
{
    size_t len = strlen(s);
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || !valid_ipv6(s + 1, (size_t)(rb - s - 1))) {
            *why = "invalid IPv6 literal";
            return -1;
        }
        if (rb[1] != ':') {
            *why = "missing :port";
            return -1;
        }
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "missing :port";
            return -1;
        }
        if (colon == s) {
            *why = "missing host (use 0.0.0.0 or [::] for all addresses)";
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
            *why = "IPv6 addresses must be written in brackets, e.g. [::1]:8443";
            return -1;
        }
        if (!valid_hostname(s, (size_t)(colon - s))) {
            *why = "invalid host";
            return -1;
        }
    }
    if (parse_port(colon + 1, len - (size_t)(colon + 1 - s)) < 0) {
        *why = "port must be 1..65535";
        return -1;
    }
    return 0;
}

struct url_parts {
    int tls;
    char host[256];
    char port[6];
    char path[CFG_MAX_PREFIX + 1];
};

static int has_dot_segment(const char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && p[j] != '/') {
            j++;
        }
        size_t seg = j - i;
        if ((seg == 1 && p[i] == '.') || (seg == 2 && p[i] == '.' && p[i + 1] == '.')) {
            return 1;
        }
        i = j + 1;
    }
    return 0;
}

/* http(s)://host[:port][/path]: no userinfo, no query, no fragment. */
static int parse_url(const char *s, struct url_parts *u, const char **why)
{
    memset(u, 0, sizeof(*u));
    const char *p;
    if (strncasecmp(s, "https://", 8) == 0) {
        u->tls = 1;
        p = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        p = s + 7;
    } else {
        *why = "only http:// and https:// URLs are supported";
        return -1;
    }
    if (strpbrk(s, "?#") != NULL) {
        *why = "a query (?) or fragment (#) is not allowed";
        return -1;
    }
    size_t alen = strcspn(p, "/");
    if (memchr(p, '@', alen) != NULL) {
        *why = "userinfo (user@) is not allowed";
        return -1;
    }
    const char *hs = p;
    size_t hlen;
    const char *portp = NULL;
    size_t plen = 0;
    if (alen > 0 && p[0] == '[') {
        const char *rb = memchr(p, ']', alen);
        if (rb == NULL || !valid_ipv6(p + 1, (size_t)(rb - p - 1))) {
            *why = "invalid IPv6 literal";
            return -1;
        }
        hs = p + 1;
        hlen = (size_t)(rb - p - 1);
        size_t rest = alen - (size_t)(rb + 1 - p);
        if (rest > 0) {
            if (rb[1] != ':') {
                *why = "invalid characters after the IPv6 literal";
                return -1;
            }
            portp = rb + 2;
            plen = rest - 1;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        hlen = colon != NULL ? (size_t)(colon - p) : alen;
        if (colon != NULL) {
            portp = colon + 1;
            plen = alen - hlen - 1;
        }
        if (hlen == 0) {
            *why = "missing host";
            return -1;
        }
        if (!valid_hostname(hs, hlen)) {
            *why = "invalid host";
            return -1;
        }
    }
    if (hlen >= sizeof(u->host)) {
        *why = "host too long";
        return -1;
    }
    memcpy(u->host, hs, hlen);
    u->host[hlen] = '\0';
    if (portp != NULL) {
        if (parse_port(portp, plen) < 0) {
            *why = "port must be 1..65535";
            return -1;
        }
        memcpy(u->port, portp, plen);
        u->port[plen] = '\0';
    } else {
        strcpy(u->port, u->tls ? "443" : "80");
    }
    const char *path = p + alen;
    size_t path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/') {
        path_len--;
    }
    if (path_len > CFG_MAX_PREFIX) {
        *why = "path too long";
        return -1;
    }
    for (size_t i = 0; i < path_len; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            *why = "the path must be printable ASCII without spaces";
            return -1;
        }
    }
    if (has_dot_segment(path, path_len)) {
        *why = "'.' and '..' path segments are not allowed";
        return -1;
    }
    memcpy(u->path, path, path_len);
    u->path[path_len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Paths                                                                   */

static char *xstrdup(struct ctx *cx, const struct ynode *at, const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        err_at(cx, at, "out of memory");
    }
    return d;
}

/* Resolve p against the config directory; NULL (reported) if too long. */
static char *resolve_path(struct ctx *cx, const char *path, const struct ynode *at,
                          const char *p)
{
    char buf[CFG_PATH_MAX];
    int k;
    if (p[0] == '/') {
        k = snprintf(buf, sizeof(buf), "%s", p);
    } else {
        while (p[0] == '.' && p[1] == '/') {
            p += 2;
            while (p[0] == '/') {
                p++;
            }
        }
        if (strcmp(cx->base, "/") == 0) {
            k = snprintf(buf, sizeof(buf), "/%s", p);
        } else {
            k = snprintf(buf, sizeof(buf), "%s/%s", cx->base, p);
        }
    }
    if (k < 0 || (size_t)k >= sizeof(buf)) {
        err_at(cx, at, "`%s`: resolved path longer than %d bytes", path, CFG_PATH_MAX - 1);
        return NULL;
    }
    return xstrdup(cx, at, buf);
}

/* ---------------------------------------------------------------------- */
/* Key tables                                                              */

enum ktype {
    K_STR,       /* char *, any printable string */
    K_PATH,      /* char *, resolved file path, not checked (written by the gateway) */
    K_PATH_READ, /* char *, resolved file path that must be readable now */
    K_INT,       /* int in [min, max] */
    K_I64,       /* int64_t in [min, max] */
    K_BOOL,      /* int 0/1 */
    K_FN,        /* custom handler */
    K_MAP,       /* nested section */
};

struct section;
struct found {
    const struct ynode *k[CFG_MAX_KEYS];
    const struct ynode *v[CFG_MAX_KEYS];
};

typedef void (*key_fn)(struct ctx *cx, const char *path, const struct ynode *k,
                       const struct ynode *v, void *obj);
typedef void (*post_fn)(struct ctx *cx, const char *path, const struct ynode *at,
                        const struct found *f, void *obj);

struct key {
    const char *name;
    enum ktype type;
    size_t off; /* into the section's object */
    int64_t min;
    int64_t max;
    key_fn fn;                 /* K_FN */
    const struct section *sub; /* K_MAP */
};

struct section {
    const struct key *keys;
    size_t n;
    post_fn post; /* cross-key checks after the walk (may be NULL) */
};

static int key_index(const struct section *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->keys[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static const struct ynode *found_v(const struct section *s, const struct found *f,
                                   const char *name)
{
    int i = key_index(s, name);
    return i >= 0 ? f->v[i] : NULL;
}

static const struct ynode *found_k(const struct section *s, const struct found *f,
                                   const char *name)
{
    int i = key_index(s, name);
    return i >= 0 ? f->k[i] : NULL;
}

/* Levenshtein distance of two short strings (both <= 64 bytes). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    int row[65];
    if (la > 64 || lb > 64) {
        return 99;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = (int)j;
    }
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = diag + cost;
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest(const struct section *s, const char *name)
{
    const char *best = NULL;
    int bestd = 3;
    if (strlen(name) > 64) {
        return NULL;
    }
    for (size_t i = 0; i < s->n; i++) {
        int d = edit_distance(name, s->keys[i].name);
        if (d < bestd && d < (int)strlen(s->keys[i].name)) {
            bestd = d;
            best = s->keys[i].name;
        }
    }
    return best;
}

static void join_path(char *out, size_t len, const char *prefix, const char *key)
{
    if (prefix[0] == '\0') {
        snprintf(out, len, "%s", key);
    } else {
        snprintf(out, len, "%s.%s", prefix, key);
    }
}

static void walk_map(struct ctx *cx, const char *path, const struct ynode *map,
                     const struct section *s, void *obj, struct found *f);

static void apply_key(struct ctx *cx, const char *path, const struct key *ks,
                      const struct ynode *k, const struct ynode *v, void *obj)
{
    void *dst = ks->off == NOSTORE ? NULL : (char *)obj + ks->off;
    if (v->bad) {
        return;
    }
    switch (ks->type) {
    case K_STR: {
        const char *s = get_str(cx, path, v, CFG_MAX_STR);
        if (s != NULL && dst != NULL) {
            *(char **)dst = xstrdup(cx, v, s);
        }
        break;
    }
    case K_PATH:
    case K_PATH_READ: {
        const char *s = get_str(cx, path, v, CFG_MAX_STR);
        if (s == NULL) {
            break;
        }
        char *r = resolve_path(cx, path, v, s);
        if (r == NULL) {
            break;
        }
        /* check-config must catch a typo in a key or CA path before the
         * gateway is restarted with it. */
        if (ks->type == K_PATH_READ && access(r, R_OK) != 0) {
            err_at(cx, k, "`%s`: cannot read '%s': %s", path, r, strerror(errno));
        }
        *(char **)dst = r;
        break;
    }
    case K_INT:
    case K_I64: {
        int64_t val;
        if (get_i64(cx, path, v, ks->min, ks->max, &val) == 0 && dst != NULL) {
            if (ks->type == K_INT) {
                *(int *)dst = (int)val;
            } else {
                *(int64_t *)dst = val;
            }
        }
        break;
    }
    case K_BOOL: {
        int b;
        if (get_bool(cx, path, v, &b) == 0 && dst != NULL) {
            *(int *)dst = b;
        }
        break;
    }
    case K_FN:
        ks->fn(cx, path, k, v, obj);
        break;
    case K_MAP: {
        if (v->type != Y_MAP) {
            err_at(cx, v, "`%s`: expected a mapping, got %s", path, type_name(v));
            break;
        }
        struct found sub;
        walk_map(cx, path, v, ks->sub, dst, &sub);
        if (ks->sub->post != NULL) {
            ks->sub->post(cx, path, k, &sub, dst);
        }
        break;
    }
    }
}

static void walk_map(struct ctx *cx, const char *path, const struct ynode *map,
                     const struct section *s, void *obj, struct found *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const struct ynode *k = map->kids[i];
        const struct ynode *v = map->kids[i + 1];
        if (k->bad || k->type != Y_SCALAR) {
            continue;
        }
        int idx = key_index(s, k->str);
        if (idx < 0) {
            const char *hint = cx->errs->n < GH_ERRLIST_MAX ? suggest(s, k->str) : NULL;
            if (hint != NULL) {
                err_at(cx, k, "unknown key `%s%s%.64s` (did you mean `%s`?)", path,
                       path[0] != '\0' ? "." : "", k->str, hint);
            } else {
                err_at(cx, k, "unknown key `%s%s%.64s`", path, path[0] != '\0' ? "." : "",
                       k->str);
            }
            continue;
        }
        char kp[256];
        join_path(kp, sizeof(kp), path, s->keys[idx].name);
        if (f->k[idx] != NULL) {
            err_at(cx, k, "duplicate key `%s` (first set at line %d)", kp, f->k[idx]->line);
            continue;
        }
        f->k[idx] = k;
        f->v[idx] = v;
        apply_key(cx, kp, &s->keys[idx], k, v, obj);
    }
}

/* ---------------------------------------------------------------------- */
/* Custom key handlers                                                     */

static void fn_listen(struct ctx *cx, const char *path, const struct ynode *k,
                      const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, CFG_MAX_NAME);
    const char *why = NULL;
    if (s == NULL) {
        return;
    }
    if (valid_hostport(s, &why) != 0) {
        err_at(cx, v, "`%s`: '%.80s' is not host:port: %s", path, s, why);
        return;
    }
    struct gw_config *c = obj;
    if (strcmp(path, "server.listen") == 0) {
        c->listen = xstrdup(cx, v, s);
        cx->listen_val = v;
    } else {
        c->admin_listen = xstrdup(cx, v, s);
        cx->admin_listen_val = v;
    }
}

static void fn_server_name(struct ctx *cx, const char *path, const struct ynode *k,
                           const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 64);
    if (s == NULL) {
        return;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == ' ') {
            err_at(cx, v, "`%s`: spaces are not allowed", path);
            return;
        }
    }
    ((struct gw_config *)obj)->server_name = xstrdup(cx, v, s);
}

static void fn_log_level(struct ctx *cx, const char *path, const struct ynode *k,
                         const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 16);
    if (s == NULL) {
        return;
    }
    if (gh_log_level_parse(s) < 0) {
        err_at(cx, v, "`%s`: '%s' is not one of debug, info, warn, error", path, s);
        return;
    }
    ((struct gw_config *)obj)->log_level = xstrdup(cx, v, s);
}

static void fn_min_version(struct ctx *cx, const char *path, const struct ynode *k,
                           const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 8);
    if (s == NULL) {
        return;
    }
    struct gw_config *c = obj;
    if (strcmp(s, "1.2") == 0) {
        c->tls_min_version = 12;
    } else if (strcmp(s, "1.3") == 0) {
        c->tls_min_version = 13;
    } else {
        err_at(cx, v, "`%s`: '%s' is not \"1.2\" or \"1.3\" (older TLS is not supported)",
               path, s);
    }
}

/* The elements of a list value (at most max). With allow_scalar a single
 * scalar counts as a one-element list: *items is then NULL and the caller
 * uses v itself. */
static int list_items(struct ctx *cx, const char *path, const struct ynode *v, int allow_scalar,
                      int max, const struct ynode ***items, size_t *n)
{
    if (v->type == Y_SEQ) {
        if ((int)v->n > max) {
            err_at(cx, v->kids[max], "`%s`: too many entries (max %d)", path, max);
            return -1;
        }
        *items = (const struct ynode **)v->kids;
        *n = v->n;
        return 0;
    }
    if (allow_scalar && v->type == Y_SCALAR && !is_null(v)) {
        *items = NULL; /* caller uses v itself */
        *n = 1;
        return 0;
    }
    err_at(cx, v, "`%s`: expected a list, got %s", path, type_name(v));
    return -1;
}

/* An IPv6 entry that reaches into the IPv4-mapped range (::ffff:0:0/96,
 * how dual-stack sockets show IPv4 peers and how gw_cidr_match compares
 * them) with less than 8 bits of IPv4 prefix: "::/8" or "::ffff:0:0/96"
 * would trust every IPv4 client. */
static int covers_v4_wider_than_8(const struct gw_cidr *c)
{
    if (c->addr.ss_family != AF_INET6) {
        return 0;
    }
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
    const uint8_t *a = ((const struct sockaddr_in6 *)&c->addr)->sin6_addr.s6_addr;
    int bits = c->prefix < 96 ? c->prefix : 96;
    for (int b = 0; b < bits; b++) {
        int m = 0x80 >> (b % 8);
        if ((a[b / 8] & m) != (mapped[b / 8] & m)) {
            return 0; /* the entry's network does not overlap the mapped range */
        }
    }
    return c->prefix - 96 < 8;
}

static void fn_trusted(struct ctx *cx, const char *path, const struct ynode *k,
                       const struct ynode *v, void *obj)
{
    struct gw_config *c = obj;
    const struct ynode **items;
    size_t n;
    if (list_items(cx, path, v, 0, GW_MAX_TRUSTED, &items, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ip[64];
        snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
        const char *s = get_str(cx, ip, items[i], 64);
        if (s == NULL) {
            continue;
        }
        struct gw_cidr cidr;
        if (gw_cidr_parse(s, &cidr) != 0) {
            err_at(cx, items[i], "`%s`: '%s' is not an IPv4/IPv6 address or CIDR", ip, s);
            continue;
        }
        /* "10.0.0.1/8" is almost always a typo for a host or for 10.0.0.0/8. */
        char addr[INET6_ADDRSTRLEN];
        const void *raw = cidr.addr.ss_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)&cidr.addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)&cidr.addr)->sin6_addr;
        inet_ntop(cidr.addr.ss_family, raw, addr, sizeof(addr));
        const char *slash = strchr(s, '/');
        size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
        struct gw_cidr host;
        char abuf[64];
        snprintf(abuf, sizeof(abuf), "%.*s", (int)alen, s);
        if (gw_cidr_parse(abuf, &host) == 0 &&
            memcmp(&host.addr, &cidr.addr, sizeof(host.addr)) != 0) {
            err_at(cx, items[i], "`%s`: '%s' has host bits set (did you mean %s/%d?)", ip, s,
                   addr, cidr.prefix);
            continue;
        }
        /* Trusting very wide ranges lets any client choose its own address
         * (X-Forwarded-For), and with it every `sources` rule of the policy. */
        if (cidr.prefix < 8 || covers_v4_wider_than_8(&cidr)) {
            err_at(cx, items[i],
                   "`%s`: '%s' trusts too much of the address space: any client there could "
                   "set its own address with X-Forwarded-For (list the proxies' own addresses "
                   "or subnets, /8 or longer)",
                   ip, s);
            continue;
        }
        c->trusted_proxies[c->n_trusted++] = cidr;
    }
}

static void string_list(struct ctx *cx, const char *path, const struct ynode *v,
                        int allow_scalar, int max, char **dst, int *ndst)
{
    const struct ynode **items;
    size_t n;
    if (list_items(cx, path, v, allow_scalar, max, &items, &n) != 0) {
        return;
    }
    if (n == 0) {
        err_at(cx, v, "`%s`: the list is empty (remove the key instead)", path);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ynode *it = items != NULL ? items[i] : v;
        char ip[128];
        snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
        const char *s = get_str(cx, ip, it, CFG_MAX_NAME);
        if (s == NULL) {
            continue;
        }
        char *d = xstrdup(cx, it, s);
        if (d != NULL) {
            dst[(*ndst)++] = d;
        }
    }
}

static void fn_audiences(struct ctx *cx, const char *path, const struct ynode *k,
                         const struct ynode *v, void *obj)
{
    struct gw_issuer_config *is = obj;
    string_list(cx, path, v, 1, GW_MAX_AUD, is->audiences, &is->n_aud);
}

static void fn_subjects(struct ctx *cx, const char *path, const struct ynode *k,
                        const struct ynode *v, void *obj)
{
    struct gw_config *c = obj;
    string_list(cx, path, v, 0, GW_MAX_ADMIN_SUBJECTS, c->admin_subjects, &c->n_admin_subjects);
}

/* issuer.url / issuer.jwks_uri: https only (RFC 8414 section 2: the issuer
 * identifier is an https URL without query or fragment). Stored as written,
 * because `iss` is compared byte for byte (RFC 9068 section 4). */
static void fn_https_url(struct ctx *cx, const char *path, const struct ynode *k,
                         const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 2048);
    struct url_parts u;
    const char *why = NULL;
    if (s == NULL) {
        return;
    }
    if (parse_url(s, &u, &why) != 0) {
        err_at(cx, v, "`%s`: invalid URL '%.80s': %s", path, s, why);
        return;
    }
    if (!u.tls) {
        err_at(cx, v, "`%s`: must be an https:// URL", path);
        return;
    }
    struct gw_issuer_config *is = obj;
    if (strcmp(path, "issuer.url") == 0) {
        is->issuer = xstrdup(cx, v, s);
    } else {
        is->jwks_uri = xstrdup(cx, v, s);
    }
}

static void fn_log_mode(struct ctx *cx, const char *path, const struct ynode *k,
                        const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 16);
    if (s == NULL) {
        return;
    }
    struct gw_config *c = obj;
    if (strcmp(s, "strict") == 0) {
        c->log_mode = GW_LOG_STRICT;
    } else if (strcmp(s, "async") == 0) {
        c->log_mode = GW_LOG_ASYNC;
    } else {
        err_at(cx, v, "`%s`: '%s' is not strict or async", path, s);
    }
}

/* decision_log.sync: "full" (fsync every group commit: power-loss safe) or
 * "normal" (no fsync: survives a crash of the process, not of the machine). */
static void fn_log_sync(struct ctx *cx, const char *path, const struct ynode *k,
                        const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 16);
    if (s == NULL) {
        return;
    }
    struct gw_config *c = obj;
    if (strcmp(s, "full") == 0) {
        c->log_sync_normal = 0;
    } else if (strcmp(s, "normal") == 0) {
        c->log_sync_normal = 1;
    } else {
        err_at(cx, v, "`%s`: '%s' is not full or normal", path, s);
    }
}

static void fn_admin_socket(struct ctx *cx, const char *path, const struct ynode *k,
                            const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, CFG_MAX_STR);
    if (s == NULL) {
        return;
    }
    char *r = resolve_path(cx, path, v, s);
    if (r == NULL) {
        return;
    }
    if (strlen(r) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        err_at(cx, v, "`%s`: resolved path '%s' is too long for a Unix socket (max %zu bytes)",
               path, r, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        free(r);
        return;
    }
    ((struct gw_config *)obj)->admin_socket = r;
}

/* ---- routes ---- */

static void fn_route_id(struct ctx *cx, const char *path, const struct ynode *k,
                        const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, CFG_MAX_ID);
    if (s == NULL) {
        return;
    }
    for (const char *p = s; *p != '\0'; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok) {
            err_at(cx, v, "`%s`: '%s' may only contain letters, digits, '-', '_' and '.'", path,
                   s);
            return;
        }
    }
    ((struct gw_route *)obj)->id = xstrdup(cx, v, s);
}

static void fn_route_host(struct ctx *cx, const char *path, const struct ynode *k,
                          const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 256);
    if (s == NULL) {
        return;
    }
    char h[256];
    size_t len = strlen(s);
    if (strcmp(s, "*") == 0) {
        ((struct gw_route *)obj)->host = xstrdup(cx, v, s);
        return;
    }
    if (s[0] == '[' && len > 2 && s[len - 1] == ']') {
        s++;
        len -= 2;
    }
    if (len >= sizeof(h)) {
        err_at(cx, v, "`%s`: host too long", path);
        return;
    }
    memcpy(h, s, len);
    h[len] = '\0';
    if (len > 1 && h[len - 1] == '.') {
        h[--len] = '\0';
    }
    int ok = memchr(h, ':', len) != NULL ? valid_ipv6(h, len) : valid_hostname(h, len);
    if (!ok) {
        err_at(cx, v,
               "`%s`: '%.80s' is not a host name or IP address (no port, no wildcards "
               "other than \"*\")",
               path, s);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (h[i] >= 'A' && h[i] <= 'Z') {
            h[i] = (char)(h[i] - 'A' + 'a');
        }
    }
    ((struct gw_route *)obj)->host = xstrdup(cx, v, h);
}

static void fn_path_prefix(struct ctx *cx, const char *path, const struct ynode *k,
                           const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, CFG_MAX_PREFIX);
    if (s == NULL) {
        return;
    }
    if (s[0] != '/') {
        err_at(cx, v, "`%s`: '%.80s' must start with '/'", path, s);
        return;
    }
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#') {
            err_at(cx, v, "`%s`: must be printable ASCII without spaces, '?' or '#'", path);
            return;
        }
    }
    if (has_dot_segment(s, len)) {
        err_at(cx, v, "`%s`: '.' and '..' segments are not allowed", path);
        return;
    }
    ((struct gw_route *)obj)->path_prefix = xstrdup(cx, v, s);
}

static void fn_upstream_url(struct ctx *cx, const char *path, const struct ynode *k,
                            const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 2048);
    struct url_parts u;
    const char *why = NULL;
    if (s == NULL) {
        return;
    }
    if (parse_url(s, &u, &why) != 0) {
        err_at(cx, v, "`%s`: invalid URL '%.80s': %s", path, s, why);
        return;
    }
    struct gw_upstream *up = obj;
    up->url = xstrdup(cx, v, s);
    up->tls = u.tls;
    up->host = xstrdup(cx, v, u.host);
    up->port = xstrdup(cx, v, u.port);
    up->base_path = xstrdup(cx, v, u.path);
}

static void fn_server_name_sni(struct ctx *cx, const char *path, const struct ynode *k,
                               const struct ynode *v, void *obj)
{
    const char *s = get_str(cx, path, v, 253);
    if (s == NULL) {
        return;
    }
    if (!valid_hostname(s, strlen(s))) {
        err_at(cx, v, "`%s`: '%.80s' is not a host name", path, s);
        return;
    }
    ((struct gw_upstream *)obj)->server_name = xstrdup(cx, v, s);
}

/* RFC 9110 section 5.1: field names are tokens. */
static int valid_token(const char *s)
{
    if (*s == '\0') {
        return 0;
    }
    for (; *s != '\0'; s++) {
        char ch = *s;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static void fn_strip_headers(struct ctx *cx, const char *path, const struct ynode *k,
                             const struct ynode *v, void *obj)
{
    struct gw_route *r = obj;
    const struct ynode **items;
    size_t n;
    if (list_items(cx, path, v, 0, GW_MAX_STRIP, &items, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ip[128];
        snprintf(ip, sizeof(ip), "%s[%zu]", path, i);
        const char *s = get_str(cx, ip, items[i], CFG_MAX_HEADER_NAME);
        if (s == NULL) {
            continue;
        }
        if (!valid_token(s)) {
            err_at(cx, items[i], "`%s`: '%.80s' is not a valid header name", ip, s);
            continue;
        }
        char *d = xstrdup(cx, items[i], s);
        if (d == NULL) {
            continue;
        }
        for (char *p = d; *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'Z') {
                *p = (char)(*p - 'A' + 'a');
            }
        }
        r->strip_headers[r->n_strip++] = d;
    }
}

/* ---------------------------------------------------------------------- */
/* Sections                                                                */

#define KS(n, t, st, f) {n, t, offsetof(st, f), 0, 0, NULL, NULL}
#define KI(n, st, f, lo, hi) {n, K_INT, offsetof(st, f), lo, hi, NULL, NULL}
#define KF(n, fnp) {n, K_FN, 0, 0, 0, fnp, NULL}
#define KM(n, st, f, sec) {n, K_MAP, offsetof(st, f), 0, 0, NULL, sec}
/* a section whose keys live directly in the parent object (struct gw_config) */
#define KM0(n, sec) {n, K_MAP, 0, 0, 0, NULL, sec}
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

static void post_tls(struct ctx *cx, const char *path, const struct ynode *at,
                     const struct found *f, void *obj);
static void post_upstream(struct ctx *cx, const char *path, const struct ynode *at,
                          const struct found *f, void *obj);
static void post_issuer(struct ctx *cx, const char *path, const struct ynode *at,
                        const struct found *f, void *obj);
static void post_limits(struct ctx *cx, const char *path, const struct ynode *at,
                        const struct found *f, void *obj);
static void fn_routes(struct ctx *cx, const char *path, const struct ynode *k,
                      const struct ynode *v, void *obj);

static const struct key server_keys[] = {
    KF("name", fn_server_name),
    KF("listen", fn_listen),
    KI("workers", struct gw_config, workers, 0, 256),
    KF("log_level", fn_log_level),
};
static const struct section server_sec = {server_keys, NKEYS(server_keys), NULL};

static const struct key tls_keys[] = {
    KS("cert", K_PATH_READ, struct gw_config, tls_cert_file),
    KS("key", K_PATH_READ, struct gw_config, tls_key_file),
    KS("client_ca", K_PATH_READ, struct gw_config, tls_client_ca_file),
    KS("crl", K_PATH_READ, struct gw_config, tls_crl_file),
    KF("min_version", fn_min_version),
    KI("ticket_rotate", struct gw_config, tls_ticket_rotate_s, 60, 86400),
    KI("reload_check", struct gw_config, tls_reload_check_s, 0, 3600),
};
static const struct section tls_sec = {tls_keys, NKEYS(tls_keys), post_tls};

static const struct key limits_keys[] = {
    KI("max_header_bytes", struct gw_config, max_header_bytes, 1024, 1048576),
    KI("max_headers", struct gw_config, max_headers, 8, 1000),
    KI("max_uri_bytes", struct gw_config, max_uri_bytes, 256, 65536),
};
static const struct section limits_sec = {limits_keys, NKEYS(limits_keys), post_limits};

static const struct key timeouts_keys[] = {
    KI("handshake", struct gw_config, handshake_timeout_ms, 100, 600000),
    KI("header", struct gw_config, header_timeout_ms, 100, 600000),
    KI("idle", struct gw_config, idle_timeout_ms, 100, 3600000),
    KI("drain", struct gw_config, drain_timeout_ms, 0, 600000),
};
static const struct section timeouts_sec = {timeouts_keys, NKEYS(timeouts_keys), NULL};

static const struct key issuer_keys[] = {
    KF("url", fn_https_url),
    KF("audiences", fn_audiences),
    KS("ca", K_PATH_READ, struct gw_issuer_config, ca_file),
    KS("cert", K_PATH_READ, struct gw_issuer_config, cert_file),
    KS("key", K_PATH_READ, struct gw_issuer_config, key_file),
    KF("jwks_uri", fn_https_url),
    KI("clock_skew", struct gw_issuer_config, skew_s, 0, 300),
    KS("allow_jwt_typ", K_BOOL, struct gw_issuer_config, allow_jwt_typ),
    KI("jwks_refresh", struct gw_issuer_config, jwks_refresh_s, 60, 86400),
    KI("jwks_min_refresh", struct gw_issuer_config, jwks_min_refresh_s, 1, 3600),
    KS("jwks_cache", K_PATH, struct gw_issuer_config, jwks_cache_file),
};
static const struct section issuer_sec = {issuer_keys, NKEYS(issuer_keys), post_issuer};

static const struct key assertion_keys[] = {
    KS("key", K_PATH, struct gw_config, assertion_key_file),
    KI("ttl", struct gw_config, assertion_ttl_s, 1, 300),
};
static const struct section assertion_sec = {assertion_keys, NKEYS(assertion_keys), NULL};

static const struct key dlog_keys[] = {
    KS("path", K_PATH, struct gw_config, db_path),
    KF("mode", fn_log_mode),
    KF("sync", fn_log_sync),
    KI("async_window", struct gw_config, log_async_window_ms, 1, 10000),
    KI("queue_size", struct gw_config, log_queue_size, 16, 1048576),
    KI("retention_days", struct gw_config, log_retention_days, 0, 36500),
};
static const struct section dlog_sec = {dlog_keys, NKEYS(dlog_keys), NULL};

static const struct key admin_keys[] = {
    KF("socket", fn_admin_socket),
    KF("listen", fn_listen),
    KS("client_ca", K_PATH_READ, struct gw_config, admin_client_ca_file),
    KF("allowed_subjects", fn_subjects),
};
static const struct section admin_sec = {admin_keys, NKEYS(admin_keys), NULL};

static const struct key upstream_keys[] = {
    KF("url", fn_upstream_url),
    KS("ca", K_PATH_READ, struct gw_upstream, ca_file),
    KS("cert", K_PATH_READ, struct gw_upstream, cert_file),
    KS("key", K_PATH_READ, struct gw_upstream, key_file),
    KF("server_name", fn_server_name_sni),
    KI("pool_size", struct gw_upstream, pool_size, 0, 1024),
    KI("connect_timeout", struct gw_upstream, connect_timeout_ms, 100, 600000),
    KI("read_timeout", struct gw_upstream, read_timeout_ms, 100, 3600000),
};
static const struct section upstream_sec = {upstream_keys, NKEYS(upstream_keys), post_upstream};

#define ACK_KEY "i_understand_tokens_can_be_replayed"
static const struct key route_keys[] = {
    KF("id", fn_route_id),
    KF("host", fn_route_host),
    KF("path_prefix", fn_path_prefix),
    KM("upstream", struct gw_route, upstream, &upstream_sec),
    {"max_body_bytes", K_I64, offsetof(struct gw_route, max_body_bytes), -1, INT64_MAX, NULL,
     NULL},
    KS("authz", K_BOOL, struct gw_route, authz),
    KS("require_binding", K_BOOL, struct gw_route, require_binding),
    {ACK_KEY, K_BOOL, NOSTORE, 0, 0, NULL, NULL},
    KF("strip_headers", fn_strip_headers),
};
static const struct section route_sec = {route_keys, NKEYS(route_keys), NULL};

static const struct key top_keys[] = {
    KM0("server", &server_sec),
    KM0("tls", &tls_sec),
    KM0("limits", &limits_sec),
    KM0("timeouts", &timeouts_sec),
    KF("trusted_proxies", fn_trusted),
    KM("issuer", struct gw_config, issuer, &issuer_sec),
    KS("policy", K_PATH_READ, struct gw_config, policy_file),
    KM0("assertion", &assertion_sec),
    KF("routes", fn_routes),
    KM0("decision_log", &dlog_sec),
    KM0("admin", &admin_sec),
};
static const struct section top_sec = {top_keys, NKEYS(top_keys), NULL};

_Static_assert(NKEYS(top_keys) <= CFG_MAX_KEYS, "key table too large");
_Static_assert(NKEYS(issuer_keys) <= CFG_MAX_KEYS, "key table too large");
_Static_assert(NKEYS(route_keys) <= CFG_MAX_KEYS, "key table too large");
_Static_assert(NKEYS(upstream_keys) <= CFG_MAX_KEYS, "key table too large");
_Static_assert(NKEYS(tls_keys) <= CFG_MAX_KEYS, "key table too large");

static void post_tls(struct ctx *cx, const char *path, const struct ynode *at,
                     const struct found *f, void *obj)
{
    static const char *const req[] = {"cert", "key", "client_ca"};
    for (size_t i = 0; i < NKEYS(req); i++) {
        if (found_k(&tls_sec, f, req[i]) == NULL) {
            err_at(cx, at, "missing required key `tls.%s`", req[i]);
        }
    }
}

static void post_limits(struct ctx *cx, const char *path, const struct ynode *at,
                        const struct found *f, void *obj)
{
    struct gw_config *c = obj;
    if (c->max_uri_bytes > c->max_header_bytes) {
        const struct ynode *n = found_v(&limits_sec, f, "max_uri_bytes");
        err_at(cx, n != NULL ? n : at,
               "`limits.max_uri_bytes` (%d) must not exceed `limits.max_header_bytes` (%d)",
               c->max_uri_bytes, c->max_header_bytes);
    }
}

static void pair_check(struct ctx *cx, const char *path, const struct ynode *at,
                       const struct section *s, const struct found *f)
{
    const struct ynode *ck = found_k(s, f, "cert");
    const struct ynode *kk = found_k(s, f, "key");
    if (ck != NULL && kk == NULL) {
        err_at(cx, ck, "`%s.cert` is set but `%s.key` is missing", path, path);
    } else if (kk != NULL && ck == NULL) {
        err_at(cx, kk, "`%s.key` is set but `%s.cert` is missing", path, path);
    }
}

static void post_issuer(struct ctx *cx, const char *path, const struct ynode *at,
                        const struct found *f, void *obj)
{
    struct gw_issuer_config *is = obj;
    if (found_k(&issuer_sec, f, "url") == NULL) {
        err_at(cx, at, "missing required key `issuer.url`");
    }
    if (found_k(&issuer_sec, f, "audiences") == NULL) {
        err_at(cx, at, "missing required key `issuer.audiences`");
    }
    pair_check(cx, path, at, &issuer_sec, f);
    if (is->jwks_min_refresh_s > is->jwks_refresh_s) {
        const struct ynode *n = found_v(&issuer_sec, f, "jwks_min_refresh");
        err_at(cx, n != NULL ? n : at,
               "`issuer.jwks_min_refresh` (%d) must not exceed `issuer.jwks_refresh` (%d)",
               is->jwks_min_refresh_s, is->jwks_refresh_s);
    }
}

static void post_upstream(struct ctx *cx, const char *path, const struct ynode *at,
                          const struct found *f, void *obj)
{
    struct gw_upstream *up = obj;
    const struct ynode *urlk = found_k(&upstream_sec, f, "url");
    if (urlk == NULL) {
        err_at(cx, at, "missing required key `%s.url`", path);
        return;
    }
    if (up->url == NULL) {
        return; /* bad URL, already reported */
    }
    if (up->tls) {
        /* An https upstream verified against the system bundle would trust
         * any public CA for an internal name: pin it. */
        if (found_k(&upstream_sec, f, "ca") == NULL) {
            err_at(cx, urlk,
                   "https upstream needs `%s.ca` (the CA bundle that pins the upstream's "
                   "certificate)",
                   path);
        }
        pair_check(cx, path, at, &upstream_sec, f);
    } else {
        static const char *const tls_only[] = {"ca", "cert", "key", "server_name"};
        for (size_t i = 0; i < NKEYS(tls_only); i++) {
            const struct ynode *n = found_k(&upstream_sec, f, tls_only[i]);
            if (n != NULL) {
                err_at(cx, n, "`%s.%s` only applies to https:// upstreams", path, tls_only[i]);
            }
        }
    }
    if (up->server_name == NULL && up->host != NULL) {
        up->server_name = xstrdup(cx, at, up->host);
    }
}

static void route_defaults(struct gw_route *r)
{
    r->max_body_bytes = 10 * 1024 * 1024;
    r->require_binding = 1;
    r->authz = 1;
    r->upstream.pool_size = 128;
    r->upstream.connect_timeout_ms = 5000;
    r->upstream.read_timeout_ms = 30000;
}

static void fn_routes(struct ctx *cx, const char *path, const struct ynode *k,
                      const struct ynode *v, void *obj)
{
    struct gw_config *c = obj;
    if (v->type != Y_SEQ) {
        err_at(cx, v, "`routes`: expected a list, got %s", type_name(v));
        return;
    }
    if (v->n == 0) {
        err_at(cx, v, "`routes`: at least one route is required");
        return;
    }
    if (v->n > GW_MAX_ROUTES) {
        err_at(cx, v->kids[GW_MAX_ROUTES], "`routes`: too many routes (max %d)", GW_MAX_ROUTES);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct ynode *item = v->kids[i];
        char rp[64];
        snprintf(rp, sizeof(rp), "routes[%zu]", i);
        if (item->bad) {
            continue;
        }
        if (item->type != Y_MAP) {
            err_at(cx, item, "`%s`: expected a mapping, got %s", rp, type_name(item));
            continue;
        }
        int idx = c->n_routes++;
        struct gw_route *r = &c->routes[idx];
        route_defaults(r);
        struct found f;
        walk_map(cx, rp, item, &route_sec, r, &f);
        cx->route_node[idx] = item;
        cx->route_id[idx] = found_v(&route_sec, &f, "id");
        cx->route_host[idx] = found_v(&route_sec, &f, "host");

        static const char *const req[] = {"id", "host", "upstream"};
        for (size_t j = 0; j < NKEYS(req); j++) {
            if (found_k(&route_sec, &f, req[j]) == NULL) {
                err_at(cx, item, "missing required key `routes[].%s` in `%s`", req[j], rp);
            }
        }
        if (r->path_prefix == NULL && found_k(&route_sec, &f, "path_prefix") == NULL) {
            r->path_prefix = xstrdup(cx, item, "/");
        }

        /* RFC 8705 section 3: without the binding check a token stolen from
         * a log or a browser is a bearer credential again. Turning that off
         * must be a deliberate, visible decision in the file. */
        const struct ynode *rb = found_v(&route_sec, &f, "require_binding");
        const struct ynode *ack = found_v(&route_sec, &f, ACK_KEY);
        int acked = 0;
        if (ack != NULL && !ack->bad && ack->type == Y_SCALAR && ack->plain &&
            (strcmp(ack->str, "true") == 0 || strcmp(ack->str, "True") == 0 ||
             strcmp(ack->str, "TRUE") == 0)) {
            acked = 1;
        }
        if (rb != NULL && !rb->bad && r->require_binding == 0 && !acked) {
            err_at(cx, rb,
                   "`%s.require_binding: false` makes stolen tokens replayable; it also "
                   "needs `" ACK_KEY ": true` on the same route",
                   rp);
        }
        if (r->authz && cx->first_authz == NULL) {
            const struct ynode *az = found_v(&route_sec, &f, "authz");
            cx->first_authz = az != NULL ? az : item;
            cx->first_authz_id = r->id;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Whole-file checks, defaults, free                                       */

static void free_str_array(char **a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i]);
    }
}

static void config_free(struct gw_config *c)
{
    if (c == NULL) {
        return;
    }
    free(c->path);
    free(c->listen);
    free(c->server_name);
    free(c->tls_cert_file);
    free(c->tls_key_file);
    free(c->tls_client_ca_file);
    free(c->tls_crl_file);
    for (int i = 0; i < c->n_routes; i++) {
        struct gw_route *r = &c->routes[i];
        free(r->id);
        free(r->host);
        free(r->path_prefix);
        free(r->upstream.url);
        free(r->upstream.host);
        free(r->upstream.port);
        free(r->upstream.base_path);
        free(r->upstream.ca_file);
        free(r->upstream.cert_file);
        free(r->upstream.key_file);
        free(r->upstream.server_name);
        free_str_array(r->strip_headers, r->n_strip);
    }
    struct gw_issuer_config *is = &c->issuer;
    free(is->issuer);
    free_str_array(is->audiences, is->n_aud);
    free(is->ca_file);
    free(is->cert_file);
    free(is->key_file);
    free(is->jwks_uri);
    free(is->jwks_cache_file);
    free(c->policy_file);
    free(c->assertion_key_file);
    free(c->db_path);
    free(c->admin_socket);
    free(c->admin_listen);
    free(c->admin_client_ca_file);
    free_str_array(c->admin_subjects, c->n_admin_subjects);
    free(c->log_level);
    free(c);
}

static void set_int_defaults(struct gw_config *c)
{
    c->workers = 0;
    c->tls_min_version = 12;
    c->tls_ticket_rotate_s = 3600;
    c->tls_reload_check_s = 10;
    c->max_header_bytes = 16384;
    c->max_headers = 100;
    c->max_uri_bytes = 8192;
    c->handshake_timeout_ms = 10000;
    c->header_timeout_ms = 10000;
    c->idle_timeout_ms = 60000;
    c->drain_timeout_ms = 10000;
    c->issuer.skew_s = 60;
    c->issuer.allow_jwt_typ = 0;
    c->issuer.jwks_refresh_s = 300;
    c->issuer.jwks_min_refresh_s = 30;
    c->assertion_ttl_s = 60;
    c->log_mode = GW_LOG_STRICT;
    c->log_async_window_ms = 50;
    c->log_queue_size = 8192;
    c->log_retention_days = 0;
}

static void set_str_defaults(struct ctx *cx, struct gw_config *c)
{
    if (c->listen == NULL) {
        c->listen = xstrdup(cx, cx->root, "127.0.0.1:8443");
    }
    if (c->server_name == NULL) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') {
            snprintf(host, sizeof(host), "gatehouse");
        }
        host[sizeof(host) - 1] = '\0';
        c->server_name = xstrdup(cx, cx->root, host);
    }
    if (c->log_level == NULL) {
        c->log_level = xstrdup(cx, cx->root, "info");
    }
    if (c->db_path == NULL) {
        c->db_path = resolve_path(cx, "decision_log.path", cx->root, "gatehouse.db");
    }
    if (c->admin_socket == NULL) {
        char *r = resolve_path(cx, "admin.socket", cx->root, "gatehouse.sock");
        if (r != NULL && strlen(r) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            err_at(cx, cx->root,
                   "`admin.socket`: default path '%s' is too long for a Unix socket; set "
                   "`admin.socket` to a shorter path",
                   r);
        }
        c->admin_socket = r;
    }
}

/* 1 if a and b are the same file or hold the same bytes (a copied CA
 * bundle is still the same CA). Unreadable files compare unequal: loading
 * them reports the error. */
static int same_file_content(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) {
        return 0;
    }
    if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino) {
        return 1;
    }
    if (sa.st_size != sb.st_size || sa.st_size > (off_t)(4 << 20)) {
        return 0;
    }
    FILE *fa = fopen(a, "rb");
    FILE *fb = fopen(b, "rb");
    int same = fa != NULL && fb != NULL;
    char ba[4096], bb[4096];
    while (same) {
        size_t na = fread(ba, 1, sizeof(ba), fa);
        size_t nb = fread(bb, 1, sizeof(bb), fb);
        if (na != nb || memcmp(ba, bb, na) != 0) {
            same = 0;
        }
        if (na == 0) {
            break;
        }
    }
    if (fa != NULL) {
        fclose(fa);
    }
    if (fb != NULL) {
        fclose(fb);
    }
    return same;
}

static void check_global(struct ctx *cx, struct gw_config *c, const struct found *f)
{
    if (found_k(&top_sec, f, "tls") == NULL) {
        err_at(cx, cx->root, "missing required section `tls` (cert, key, client_ca)");
    }
    if (found_k(&top_sec, f, "routes") == NULL) {
        err_at(cx, cx->root, "missing required key `routes` (at least one route)");
    }
    c->has_issuer = found_k(&top_sec, f, "issuer") != NULL;

    /* Routes must be unambiguous: two routes answering for the same
     * (host, path_prefix) would make the winner an accident of file order. */
    for (int i = 0; i < c->n_routes; i++) {
        const struct gw_route *r = &c->routes[i];
        for (int j = 0; j < i; j++) {
            const struct gw_route *o = &c->routes[j];
            if (r->id != NULL && o->id != NULL && strcmp(r->id, o->id) == 0) {
                err_at(cx, cx->route_id[i], "duplicate route id '%s' (first at line %d)", r->id,
                       cx->route_id[j] != NULL ? cx->route_id[j]->line : 0);
            }
            if (r->host != NULL && o->host != NULL && r->path_prefix != NULL &&
                o->path_prefix != NULL && strcmp(r->host, o->host) == 0 &&
                strcmp(r->path_prefix, o->path_prefix) == 0) {
                err_at(cx, cx->route_host[i] != NULL ? cx->route_host[i] : cx->route_node[i],
                       "duplicate route for host '%s' and path_prefix '%s' (first at line %d)",
                       r->host, r->path_prefix, cx->route_node[j]->line);
            }
        }
    }

    if (cx->first_authz != NULL) {
        const char *id = cx->first_authz_id != NULL ? cx->first_authz_id : "?";
        if (!c->has_issuer) {
            err_at(cx, cx->first_authz,
                   "route '%s' requires tokens (`routes[].authz` is true by default) but no "
                   "`issuer` section is configured",
                   id);
        }
        if (found_k(&top_sec, f, "policy") == NULL) {
            err_at(cx, cx->first_authz,
                   "route '%s' requires tokens (`routes[].authz` is true by default) but no "
                   "`policy` file is configured",
                   id);
        }
    }

    if (c->admin_listen != NULL && c->admin_client_ca_file == NULL) {
        err_at(cx, cx->admin_listen_val,
               "`admin.listen` needs `admin.client_ca` (the CA for admin client certificates)");
    }
    if (c->admin_listen != NULL && c->admin_client_ca_file != NULL &&
        c->tls_client_ca_file != NULL && c->n_admin_subjects == 0 &&
        same_file_content(c->admin_client_ca_file, c->tls_client_ca_file)) {
        err_at(cx, cx->admin_listen_val,
               "`admin.client_ca` is the same CA as `tls.client_ca` and `admin.allowed_subjects` "
               "is empty: every user certificate would be an admin. Use a CA of its own for "
               "admin certificates, or list the admins in `admin.allowed_subjects`");
    }
    if (c->admin_listen != NULL && c->listen != NULL && strcmp(c->admin_listen, c->listen) == 0) {
        err_at(cx, cx->admin_listen_val, "`admin.listen` must differ from `server.listen`");
    }
}

static int set_base(struct ctx *cx, const char *dir)
{
    char cwd[CFG_PATH_MAX];
    int k;
    if (dir != NULL && dir[0] == '/') {
        k = snprintf(cx->base, sizeof(cx->base), "%s", dir);
    } else {
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            err_pos(cx, 1, 1, "cannot determine the current directory: %s", strerror(errno));
            return -1;
        }
        if (dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0) {
            k = snprintf(cx->base, sizeof(cx->base), "%s", cwd);
        } else {
            k = snprintf(cx->base, sizeof(cx->base), "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd,
                         dir);
        }
    }
    if (k < 0 || (size_t)k >= sizeof(cx->base)) {
        err_pos(cx, 1, 1, "config directory path too long");
        return -1;
    }
    size_t len = strlen(cx->base);
    while (len > 1 && cx->base[len - 1] == '/') {
        cx->base[--len] = '\0';
    }
    return 0;
}

static struct gw_config *load(const char *name, const char *base_dir, const char *store_path,
                              const char *buf, size_t len, struct gh_errlist *errs)
{
    struct gh_errlist local;
    struct ctx cx;
    struct gw_config *c = NULL;
    struct ynode *root = NULL;
    char *text = NULL;

    memset(&cx, 0, sizeof(cx));
    if (errs == NULL) {
        memset(&local, 0, sizeof(local));
        errs = &local;
    }
    cx.name = name != NULL ? name : "<config>";
    cx.errs = errs;

    if (buf == NULL) {
        err_pos(&cx, 1, 1, "no config data");
        goto out;
    }
    if (len > CFG_MAX_FILE) {
        err_pos(&cx, 1, 1, "config is larger than %d bytes", CFG_MAX_FILE);
        goto out;
    }
    if (prescan(&cx, buf, len) != 0) {
        goto out;
    }
    if (set_base(&cx, base_dir) != 0) {
        goto out;
    }
    text = malloc(len + 1);
    c = calloc(1, sizeof(*c));
    if (text == NULL || c == NULL) {
        err_pos(&cx, 1, 1, "out of memory");
        goto out;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    c->refs = 1;
    cx.c = c;
    set_int_defaults(c);

    root = yaml_parse(&cx, text, len);
    if (root == NULL) {
        goto out;
    }
    cx.root = root;
    if (root->type != Y_MAP) {
        err_at(&cx, root, "the config must be a mapping of sections, got %s", type_name(root));
        goto out;
    }
    struct found f;
    walk_map(&cx, "", root, &top_sec, c, &f);
    set_str_defaults(&cx, c);
    check_global(&cx, c, &f);
    c->path = xstrdup(&cx, root, store_path != NULL ? store_path : cx.name);
out:
    ynode_free(root);
    free(text);
    if (cx.nerr > 0) {
        config_free(c);
        c = NULL;
    }
    return c;
}

struct gw_config *gw_config_load_buf(const char *name, const char *base_dir, const char *buf,
                                     size_t len, struct gh_errlist *errs)
{
    return load(name, base_dir, NULL, buf, len, errs);
}

struct gw_config *gw_config_load(const char *path, struct gh_errlist *errs)
{
    struct gh_errlist local;
    struct gw_config *c = NULL;
    char *buf = NULL;
    int fd = -1;
    char dir[CFG_PATH_MAX];
    char abs[CFG_PATH_MAX];

    if (errs == NULL) {
        memset(&local, 0, sizeof(local));
        errs = &local;
    }
    if (path == NULL || path[0] == '\0') {
        gh_errlist_add(errs, "<config>", 1, 1, "no config file given");
        goto out;
    }
    /* O_NONBLOCK: a FIFO named as the config must not hang check-config. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        gh_errlist_add(errs, path, 1, 1, "cannot open: %s", strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gh_errlist_add(errs, path, 1, 1, "not a regular file");
        goto out;
    }
    if (st.st_size > CFG_MAX_FILE) {
        gh_errlist_add(errs, path, 1, 1, "config is larger than %d bytes", CFG_MAX_FILE);
        goto out;
    }
    /* Read up to one byte past the limit: the file may grow after fstat. */
    buf = malloc(CFG_MAX_FILE + 1);
    if (buf == NULL) {
        gh_errlist_add(errs, path, 1, 1, "out of memory");
        goto out;
    }
    size_t len = 0;
    while (len < CFG_MAX_FILE + 1) {
        ssize_t r = read(fd, buf + len, CFG_MAX_FILE + 1 - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            gh_errlist_add(errs, path, 1, 1, "read failed: %s", strerror(errno));
            goto out;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    if (len > CFG_MAX_FILE) {
        gh_errlist_add(errs, path, 1, 1, "config is larger than %d bytes", CFG_MAX_FILE);
        goto out;
    }

    /* Base directory and the stored absolute path, so a reload after a
     * chdir still finds the same file. */
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    }
    if (path[0] == '/') {
        snprintf(abs, sizeof(abs), "%s", path);
    } else {
        char cwd[CFG_PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            gh_errlist_add(errs, path, 1, 1, "cannot determine the current directory: %s",
                           strerror(errno));
            goto out;
        }
        const char *p = path;
        while (p[0] == '.' && p[1] == '/') {
            p += 2;
        }
        int k = snprintf(abs, sizeof(abs), "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, p);
        if (k < 0 || (size_t)k >= sizeof(abs)) {
            gh_errlist_add(errs, path, 1, 1, "path too long");
            goto out;
        }
    }
    c = load(path, dir, abs, buf, len, errs);
out:
    if (fd >= 0) {
        close(fd);
    }
    free(buf);
    return c;
}

struct gw_config *gw_config_ref(struct gw_config *c)
{
    if (c != NULL) {
        __atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
    }
    return c;
}

void gw_config_unref(struct gw_config *c)
{
    if (c == NULL) {
        return;
    }
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        config_free(c);
    }
}

/* ---------------------------------------------------------------------- */
/* Route lookup                                                            */

static int ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i];
        unsigned char y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char)(y - 'A' + 'a');
        }
        if (x != y) {
            return 0;
        }
    }
    return 1;
}

/* "/app" matches "/app" and "/app/x" but not "/application": a prefix
 * matches only at a segment boundary unless it ends with '/'. */
static int prefix_match(const char *prefix, const char *path, size_t path_len, size_t *plen)
{
    size_t l = strlen(prefix);
    if (path_len < l || memcmp(prefix, path, l) != 0) {
        return 0;
    }
    if (l > 0 && prefix[l - 1] != '/' && path_len > l && path[l] != '/') {
        return 0;
    }
    *plen = l;
    return 1;
}

const struct gw_route *gw_config_route(const struct gw_config *c, const char *host, size_t host_len,
                                       const char *path, size_t path_len)
{
    if (c == NULL) {
        return NULL;
    }
    const char *h = host != NULL ? host : "";
    size_t hl = host != NULL ? host_len : 0;
    if (hl > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        if (rb == NULL) {
            hl = 0; /* malformed literal: only "*" routes can match */
        } else {
            hl = (size_t)(rb - h - 1);
            h = h + 1;
        }
    } else {
        const char *colon = memchr(h, ':', hl);
        if (colon != NULL && memchr(colon + 1, ':', hl - (size_t)(colon + 1 - h)) == NULL) {
            hl = (size_t)(colon - h); /* name:port; several colons = bare IPv6 literal */
        }
    }
    if (hl > 1 && h[hl - 1] == '.') {
        hl--; /* absolute form "wiki.example.internal." */
    }

    const char *p = path != NULL ? path : "/";
    size_t pl = path != NULL ? path_len : 1;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] == '?' || p[i] == '#') {
            pl = i;
            break;
        }
    }
    if (pl == 0) {
        p = "/";
        pl = 1;
    }

    for (int pass = 0; pass < 2; pass++) {
        const struct gw_route *best = NULL;
        size_t best_len = 0;
        for (int i = 0; i < c->n_routes; i++) {
            const struct gw_route *r = &c->routes[i];
            int star = strcmp(r->host, "*") == 0;
            if (pass == 0) {
                if (star || strlen(r->host) != hl || !ascii_ieq(r->host, h, hl)) {
                    continue;
                }
            } else if (!star) {
                continue;
            }
            size_t l = 0;
            if (prefix_match(r->path_prefix, p, pl, &l) && (best == NULL || l > best_len)) {
                best = r;
                best_len = l;
            }
        }
        if (best != NULL) {
            return best;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* CIDR                                                                    */

int gw_cidr_parse(const char *s, struct gw_cidr *out)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (s == NULL || out == NULL) {
        return -1;
    }
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, len + 1);
    int prefix = -1;
    char *slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
        const char *d = slash + 1;
        size_t dl = strlen(d);
        if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0')) {
            return -1;
        }
        prefix = 0;
        for (size_t i = 0; i < dl; i++) {
            if (d[i] < '0' || d[i] > '9') {
                return -1;
            }
            prefix = prefix * 10 + (d[i] - '0');
        }
    }
    memset(out, 0, sizeof(*out));
    uint8_t *bytes;
    int max;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr;
    if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        bytes = (uint8_t *)&s4->sin_addr;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        bytes = (uint8_t *)&s6->sin6_addr;
        max = 128;
    } else {
        return -1;
    }
    if (prefix < 0) {
        prefix = max;
    }
    if (prefix > max) {
        return -1;
    }
    for (int bit = prefix; bit < max; bit++) {
        bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    }
    out->prefix = prefix;
    return 0;
}

/* Both sides are compared as 16-byte IPv6 addresses, IPv4 as ::ffff:a.b.c.d,
 * so a v4 CIDR matches a v4 client on a v4 socket and a v4-mapped client on
 * a dual-stack socket alike. */
static int to_v6(const struct sockaddr *sa, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        memcpy(out, mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

int gw_cidr_match(const struct gw_cidr *c, const struct sockaddr *sa)
{
    uint8_t a[16];
    uint8_t n[16];
    if (c == NULL || sa == NULL || to_v6(sa, a) != 0 ||
        to_v6((const struct sockaddr *)&c->addr, n) != 0) {
        return 0;
    }
    int prefix = c->prefix + (c->addr.ss_family == AF_INET ? 96 : 0);
    if (prefix < 0 || prefix > 128) {
        return 0;
    }
    int full = prefix / 8;
    if (memcmp(a, n, (size_t)full) != 0) {
        return 0;
    }
    int rem = prefix % 8;
    if (rem == 0) {
        return 1;
    }
    uint8_t mask = (uint8_t)(0xffu << (8 - rem));
    return (a[full] & mask) == (n[full] & mask);
}
