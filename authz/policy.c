/*
 * policy.c: the policy engine -- load, compile, evaluate.
 *
 * Why it is built this way:
 *  - A policy is read with libfyaml's *event* parser into a small positioned
 *    tree. libfyaml 0.7 has no public way to get the line:col of a mapping or
 *    sequence node from its document API, and every error must name
 *    `file:line:col`, so we keep our own marks. Building the tree ourselves
 *    also lets us refuse what a policy never needs and an attacker or a typo
 *    could abuse: anchors/aliases (billion laughs), tags, several documents,
 *    duplicate keys, deep nesting, huge mappings.
 *  - The tree is compiled once into an immutable snapshot: CIDRs, globs (to a
 *    token array run as a bit-parallel NFA), time windows, thumbprints and
 *    JSON paths are parsed up front. Evaluation is then a read-only walk over
 *    flat arrays: it never allocates (no malloc, no jansson allocation: only
 *    lookups), and runs in time linear in policy size times request size, so
 *    a hostile path cannot make a glob backtrack exponentially.
 *  - Unknown keys, wrong types, empty operands and out-of-range values are
 *    errors, never ignored: a typo must not silently weaken a rule.
 *  - Conditions are evaluated in three-valued logic (true / false / unknown).
 *    Anything that depends on a fact the request does not carry -- no token
 *    on an authz-off route, no certificate, no client address, a path that is
 *    not in canonical form -- is *unknown*. `not` keeps unknown unknown. An
 *    allow rule matches only when it is definitely true; a deny rule matches
 *    unless it is definitely false. So a missing fact can never produce an
 *    allow, and never switches a deny off (docs/POLICY.md "Fail closed").
 */
#include "authz/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libfyaml.h>

#include "gateway/base/util.h"

/*
 * Declared here until authz/policy.h carries it (see the report to the lead):
 * reports every rule that names a route not in route_ids, as
 * `file:line:col: rule 'x' names unknown route 'y'`. Returns 0 when all
 * named routes exist, -1 otherwise.
 */

/* ------------------------------------------------------------------------ */
/* Limits (docs/POLICY.md "Limits"). Hitting one is a load error.           */

#define POL_MAX_FILE (1024 * 1024)
#define POL_MAX_RULES 10000
#define POL_MAX_STR 1024
#define POL_MAX_DEPTH 24     /* YAML nesting */
#define POL_MAX_COND_DEPTH 8 /* not/any/all nesting inside one condition */
#define POL_MAX_NODES 262144 /* YAML nodes in one file */
#define POL_MAX_MAP_KEYS 64  /* keys in one mapping */
#define POL_MAX_JPATH 16     /* segments in one claim path */
#define POL_MAX_LIST 1024    /* items in one list (routes, in, sources...) */
#define POL_MAX_ID 63        /* rule id length (struct az_verdict.rule_id) */
#define POL_GLOB_WORDS ((POL_MAX_STR + 1 + 63) / 64)

/* ------------------------------------------------------------------------ */
/* Arena: everything a snapshot owns is carved from a few big blocks, freed   */
/* at once by the last unref.                                                */

#define ARENA_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
};

struct arena {
    struct arena_chunk *head;
};

#define CHUNK_HDR ((sizeof(struct arena_chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

static void *arena_alloc(struct arena *a, size_t n)
{
    if (n > SIZE_MAX / 2) {
        return NULL;
    }
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0) {
        n = ARENA_ALIGN;
    }
    struct arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(CHUNK_HDR + cap);
        if (c == NULL) {
            return NULL;
        }
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static void *arena_array(struct arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / 2 / size) {
        return NULL;
    }
    return arena_alloc(a, n * size);
}

static void arena_free(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

/* ------------------------------------------------------------------------ */
/* Compiled policy.                                                          */

enum tv { TV_FALSE = 0, TV_TRUE = 1, TV_UNKNOWN = 2 };

enum field {
    F_CERT_SUBJECT,
    F_CERT_CN,
    F_CERT_ISSUER,
    F_CERT_THUMBPRINT,
    F_CERT_SAN_DNS,
    F_CERT_SAN_EMAIL,
    F_CERT_SAN_URI,
    F_TOK_SUB,
    F_TOK_EMAIL,
    F_TOK_ISS,
    F_TOK_SCOPE,
    F_TOK_GROUPS,
    F_TOK_CLIENT_ID,
    F_TOK_JTI,
    F_TOK_SID,
    F_TOK_PATH, /* any claim by JSON path */
};

enum op { OP_EQUALS, OP_IN, OP_CONTAINS, OP_PREFIX, OP_SUFFIX, OP_GLOB, OP_EXISTS };

static const char *const op_names[] = {
    [OP_EQUALS] = "equals", [OP_IN] = "in",     [OP_CONTAINS] = "contains", [OP_PREFIX] = "prefix",
    [OP_SUFFIX] = "suffix", [OP_GLOB] = "glob", [OP_EXISTS] = "exists",
};

enum ckind { C_LEAF, C_TOKEN, C_NOT, C_ALL, C_ANY };

struct pstr {
    const char *s; /* NUL-terminated copy in the arena */
    size_t len;
};

enum gtok { G_LIT, G_ONE, G_STAR, G_DSTAR };

struct glob {
    size_t n;          /* tokens */
    uint8_t *kind;     /* enum gtok per token */
    unsigned char *ch; /* literal byte for G_LIT */
    const char *src;   /* as written */
};

struct jseg {
    const char *key; /* NULL for an index */
    size_t index;
};

struct cond {
    enum ckind kind;
    int line, col;
    /* C_LEAF */
    enum field field;
    int is_cert;       /* cert: vs claim: (for explanations) */
    const char *fname; /* field name as written */
    enum op op;
    struct pstr *vals; /* equals/contains/prefix/suffix: 1, in: n */
    size_t n_vals;
    uint8_t (*tp)[32]; /* thumbprint operands, decoded */
    struct glob glob;
    int exists; /* OP_EXISTS operand */
    struct jseg *path;
    size_t n_path;
    /* C_TOKEN */
    int token_present;
    /* C_NOT (1 kid), C_ALL, C_ANY */
    const struct cond **kids;
    size_t n_kids;
};

struct cidr {
    int v6;
    uint8_t addr[16];
    int prefix;
};

struct twin {
    uint8_t days; /* bit d = day d (0 = mon .. 6 = sun) */
    int all_day;
    int from, to; /* minutes since local midnight; to may be 1440 */
    int off_min;  /* tz offset from UTC in minutes */
};

struct route_ref {
    struct pstr name;
    uint32_t hash;
    int line, col;
};

struct rule {
    char id[POL_MAX_ID + 1];
    int line, col;
    int deny;
    int all_routes;
    struct route_ref *routes;
    size_t n_routes;
    struct pstr *methods;
    size_t n_methods;
    struct glob *paths;
    size_t n_paths;
    struct cidr *sources;
    size_t n_sources;
    struct twin *times;
    size_t n_times;
    const struct cond *when; /* C_ALL or NULL */
    const struct cond *any;  /* C_ANY or NULL */
    int when_line, when_col, any_line, any_col;
};

struct az_policy {
    atomic_int refs;
    struct arena arena;
    char *src;
    size_t src_len;
    char version[65];
    char name[256];
    struct rule *rules;
    size_t n_rules;
};

/* ------------------------------------------------------------------------ */
/* Positioned YAML tree (parse-time only; freed before load returns).        */

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
    enum ytype type;
    int line, col;
    int plain; /* scalar written without quotes or block style */
    int null;  /* empty / ~ / null */
    int bad;   /* already reported (e.g. too long): skip silently */
    char *s;   /* scalar text, NUL-terminated */
    size_t len;
    size_t n; /* children; a mapping holds key, value, key, value... */
    struct ynode *first, *last, *next, *parent;
};

struct cctx {
    struct gh_errlist *errs;
    const char *file;
    struct arena *a; /* the policy's arena */
    int nerr;
    int oom;
};

static void cerr_at(struct cctx *c, int line, int col, const char *fmt, ...) GH_PRINTF(4, 5);
static void cerr_at(struct cctx *c, int line, int col, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gh_errlist_add(c->errs, c->file, line, col, "%s", msg);
    c->nerr++;
}

#define cerr(c, node, ...) cerr_at((c), (node)->line, (node)->col, __VA_ARGS__)

static void oom(struct cctx *c, int line, int col)
{
    if (!c->oom) {
        cerr_at(c, line, col, "out of memory while loading policy");
    }
    c->oom = 1;
    c->nerr++;
}

struct ybuild {
    struct cctx *cc;
    struct arena ya; /* tree arena */
    struct ynode *root;
    struct ynode *cur;
    int depth;
    size_t nodes;
    int docs;
    int fatal;
    int line, col;   /* last known position */
    const char *src; /* the text being parsed (marks index into it) */
    size_t src_len;
    char sq[POL_MAX_STR + 1]; /* unescaped single-quoted scalar */
};

struct ydiag {
    int got;
    int line, col;
    char msg[200];
};

/* libfyaml reports errors as "<name>:LINE:COL: error: MESSAGE" to this
 * callback; keep the first one's position and message. */
static void ydiag_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    struct ydiag *d = user;
    (void)diag;
    if (d->got || len == 0) {
        return;
    }
    const char *e = NULL;
    for (size_t i = 0; i + 9 <= len; i++) {
        if (memcmp(buf + i, ": error: ", 9) == 0) {
            e = buf + i;
            break;
        }
    }
    if (e == NULL) {
        return;
    }
    const char *q = e;
    long col = 0, line = 0, mul = 1;
    while (q > buf && q[-1] >= '0' && q[-1] <= '9' && mul < 100000000) {
        q--;
        col += (*q - '0') * mul;
        mul *= 10;
    }
    if (q > buf && q[-1] == ':') {
        q--;
        mul = 1;
        while (q > buf && q[-1] >= '0' && q[-1] <= '9' && mul < 100000000) {
            q--;
            line += (*q - '0') * mul;
            mul *= 10;
        }
    }
    const char *m = e + 9;
    size_t ml = len - (size_t)(m - buf);
    while (ml > 0 && (m[ml - 1] == '\n' || m[ml - 1] == '\r')) {
        ml--;
    }
    if (ml >= sizeof(d->msg)) {
        ml = sizeof(d->msg) - 1;
    }
    memcpy(d->msg, m, ml);
    d->msg[ml] = '\0';
    d->line = (int)line;
    d->col = (int)col;
    d->got = 1;
}

static void yb_fatal(struct ybuild *b, int line, int col, const char *msg)
{
    cerr_at(b->cc, line, col, "%s", msg);
    b->fatal = 1;
}

static struct ynode *yb_new(struct ybuild *b, enum ytype t)
{
    if (++b->nodes > POL_MAX_NODES) {
        if (!b->fatal) {
            char m[128];
            snprintf(m, sizeof(m), "policy too large: more than %d YAML nodes", POL_MAX_NODES);
            yb_fatal(b, b->line, b->col, m);
        }
        return NULL;
    }
    struct ynode *n = arena_alloc(&b->ya, sizeof(*n));
    if (n == NULL) {
        oom(b->cc, b->line, b->col);
        b->fatal = 1;
        return NULL;
    }
    n->type = t;
    n->line = b->line;
    n->col = b->col;
    return n;
}

static void yb_attach(struct ybuild *b, struct ynode *n)
{
    struct ynode *p = b->cur;
    if (p == NULL) {
        if (b->root != NULL) {
            yb_fatal(b, n->line, n->col, "more than one top-level value");
            return;
        }
        b->root = n;
        return;
    }
    if (p->type == Y_MAP && p->n % 2 == 0) {
        /* n is a key */
        if (n->type != Y_SCALAR) {
            yb_fatal(b, n->line, n->col, "mapping keys must be plain strings");
            return;
        }
        if (p->n / 2 >= POL_MAX_MAP_KEYS) {
            char m[96];
            snprintf(m, sizeof(m), "mapping has more than %d keys", POL_MAX_MAP_KEYS);
            yb_fatal(b, n->line, n->col, m);
            return;
        }
        for (struct ynode *k = p->first; k != NULL && k->next != NULL; k = k->next->next) {
            if (!n->bad && !k->bad && k->len == n->len && memcmp(k->s, n->s, n->len) == 0) {
                cerr(b->cc, n, "duplicate key '%s' (first at line %d:%d)", n->s, k->line, k->col);
                n->bad = 1;
                break;
            }
        }
    }
    n->parent = p;
    if (p->last == NULL) {
        p->first = n;
    } else {
        p->last->next = n;
    }
    p->last = n;
    p->n++;
}

static void yb_mark(struct ybuild *b, struct fy_event *e)
{
    const struct fy_mark *m = fy_event_start_mark(e);
    if (m != NULL) {
        b->line = m->line + 1;
        b->col = m->column + 1;
    }
}

static void token_pos(struct ybuild *b, struct fy_token *t, int *line, int *col)
{
    const struct fy_mark *m = t != NULL ? fy_token_start_mark(t) : NULL;
    *line = m != NULL ? m->line + 1 : b->line;
    *col = m != NULL ? m->column + 1 : b->col;
}

static int yb_check_props(struct ybuild *b, struct fy_token *anchor, struct fy_token *tag)
{
    int line, col;
    if (anchor != NULL) {
        token_pos(b, anchor, &line, &col);
        if (col > 1) {
            col--; /* the mark is on the name, after '&' */
        }
        yb_fatal(b, line, col, "anchors and aliases are not supported in policy files");
        return -1;
    }
    if (tag != NULL) {
        token_pos(b, tag, &line, &col);
        yb_fatal(b, line, col, "YAML tags are not supported in policy files");
        return -1;
    }
    return 0;
}

/* Text of a single-quoted scalar, unescaped by us from the raw source
 * between the token's marks ('' -> '). libfyaml 0.7.12 leaks the text buffer
 * of some single-quoted scalars with several '' escapes when asked for their
 * text (found by fuzzing), so we never ask it. Multi-line single-quoted
 * scalars (YAML line folding) are refused instead of reimplemented; no policy
 * needs them. Returns the length written to out (<= raw length), -1 when the
 * scalar spans lines, -2 when the marks cannot be trusted, -3 when it does
 * not fit out. */
static long sq_text(struct ybuild *b, struct fy_token *t, char *out, size_t cap)
{
    const struct fy_mark *sm = t != NULL ? fy_token_start_mark(t) : NULL;
    const struct fy_mark *em = t != NULL ? fy_token_end_mark(t) : NULL;
    if (sm == NULL || em == NULL || em->input_pos < sm->input_pos || em->input_pos > b->src_len) {
        return -2;
    }
    size_t o = 0;
    for (size_t i = sm->input_pos; i < em->input_pos; i++) {
        char ch = b->src[i];
        if (ch == '\n' || ch == '\r') {
            return -1;
        }
        if (ch == '\'') {
            if (i + 1 >= em->input_pos || b->src[i + 1] != '\'') {
                return -2;
            }
            i++;
        }
        if (o >= cap) {
            return -3;
        }
        out[o++] = ch;
    }
    return (long)o;
}

static int is_null_text(const char *s, size_t len)
{
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 &&
            (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

static void yb_event(struct ybuild *b, struct fy_event *e)
{
    yb_mark(b, e);
    switch (e->type) {
    case FYET_DOCUMENT_START:
        if (++b->docs > 1) {
            yb_fatal(b, b->line, b->col, "only one YAML document is allowed in a policy file");
        }
        break;
    case FYET_MAPPING_START:
    case FYET_SEQUENCE_START: {
        int map = e->type == FYET_MAPPING_START;
        struct fy_token *an = map ? e->mapping_start.anchor : e->sequence_start.anchor;
        struct fy_token *tg = map ? e->mapping_start.tag : e->sequence_start.tag;
        if (yb_check_props(b, an, tg) < 0) {
            break;
        }
        if (b->depth >= POL_MAX_DEPTH) {
            char m[96];
            snprintf(m, sizeof(m), "nesting deeper than %d levels", POL_MAX_DEPTH);
            yb_fatal(b, b->line, b->col, m);
            break;
        }
        struct ynode *n = yb_new(b, map ? Y_MAP : Y_SEQ);
        if (n == NULL) {
            break;
        }
        yb_attach(b, n);
        if (b->fatal) {
            break;
        }
        b->cur = n;
        b->depth++;
        break;
    }
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        if (b->cur != NULL) {
            b->cur = b->cur->parent;
            b->depth--;
        }
        break;
    case FYET_SCALAR: {
        if (yb_check_props(b, e->scalar.anchor, e->scalar.tag) < 0) {
            break;
        }
        struct ynode *n = yb_new(b, Y_SCALAR);
        if (n == NULL) {
            break;
        }
        size_t len = 0;
        const char *t = NULL;
        enum fy_node_style st = fy_event_get_node_style(e);
        if ((st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED) && n->col > 1) {
            n->col--; /* libfyaml marks the first character inside the quotes */
        }
        if (st == FYNS_SINGLE_QUOTED) {
            long k = sq_text(b, e->scalar.value, b->sq, sizeof(b->sq));
            if (k >= 0) {
                t = b->sq;
                len = (size_t)k;
            } else if (k == -1) {
                cerr(b->cc, n,
                     "multi-line single-quoted strings are not supported; write the "
                     "string on one line or use double quotes");
                n->bad = 1;
            } else if (k == -3) {
                cerr(b->cc, n, "string longer than %d bytes", POL_MAX_STR);
                n->bad = 1;
            } else {
                cerr(b->cc, n, "cannot read this single-quoted string");
                n->bad = 1;
            }
        } else if (e->scalar.value != NULL) {
            t = fy_token_get_text(e->scalar.value, &len);
        }
        if (t == NULL) {
            t = "";
            len = 0;
        }
        n->plain = st == FYNS_PLAIN || st == FYNS_ANY;
        n->null = n->plain && is_null_text(t, len);
        if (len > POL_MAX_STR) {
            cerr(b->cc, n, "string longer than %d bytes", POL_MAX_STR);
            n->bad = 1;
            len = 0;
        }
        n->s = arena_alloc(&b->ya, len + 1);
        if (n->s == NULL) {
            oom(b->cc, n->line, n->col);
            b->fatal = 1;
            break;
        }
        memcpy(n->s, t, len);
        n->s[len] = '\0';
        n->len = len;
        if (memchr(n->s, '\0', len) != NULL) {
            cerr(b->cc, n, "string contains a NUL character");
            n->bad = 1;
        }
        yb_attach(b, n);
        break;
    }
    case FYET_ALIAS:
        yb_fatal(b, b->line, b->col, "anchors and aliases are not supported in policy files");
        break;
    default:
        break;
    }
}

/* Reject what YAML would otherwise interpret (other encodings, NULs) before
 * libfyaml sees it: policy text is UTF-8. Reports the first bad byte. */
static int check_utf8(struct cctx *c, const unsigned char *s, size_t len)
{
    int line = 1, col = 1;
    size_t i = 0;
    while (i < len) {
        unsigned char ch = s[i];
        size_t need = 0;
        uint32_t cp = 0, min = 0;
        if (ch == 0) {
            cerr_at(c, line, col, "NUL byte in policy file");
            return -1;
        }
        if (ch < 0x80) {
            if (ch == '\n') {
                line++;
                col = 0;
            }
            i++;
            col++;
            continue;
        } else if ((ch & 0xE0) == 0xC0) {
            need = 1;
            cp = ch & 0x1F;
            min = 0x80;
        } else if ((ch & 0xF0) == 0xE0) {
            need = 2;
            cp = ch & 0x0F;
            min = 0x800;
        } else if ((ch & 0xF8) == 0xF0) {
            need = 3;
            cp = ch & 0x07;
            min = 0x10000;
        } else {
            cerr_at(c, line, col, "invalid UTF-8 in policy file");
            return -1;
        }
        if (len - i <= need) {
            cerr_at(c, line, col, "invalid UTF-8 in policy file");
            return -1;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                cerr_at(c, line, col, "invalid UTF-8 in policy file");
                return -1;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            cerr_at(c, line, col, "invalid UTF-8 in policy file");
            return -1;
        }
        i += need + 1;
        col++;
    }
    return 0;
}

/* Parse buf into b->root. Returns 0, or -1 with errors reported. */
static int yaml_tree(struct ybuild *b, const char *buf, size_t len)
{
    struct ydiag yd = {0};
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    int rc = -1;

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = ydiag_output;
    dcfg.user = &yd;
    dcfg.level = FYET_ERROR;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (diag == NULL) {
        oom(b->cc, 1, 1);
        goto out;
    }
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE | FYPCF_DISABLE_MMAP_OPT;
    pcfg.diag = diag;
    fyp = fy_parser_create(&pcfg);
    if (fyp == NULL) {
        oom(b->cc, 1, 1);
        goto out;
    }
    if (fy_parser_set_string(fyp, buf, len) != 0) {
        oom(b->cc, 1, 1);
        goto out;
    }
    b->line = 1;
    b->col = 1;
    b->src = buf;
    b->src_len = len;
    struct fy_event *e;
    for (;;) {
        e = fy_parser_parse(fyp);
        if (e == NULL) {
            break;
        }
        if (!b->fatal) {
            yb_event(b, e);
        }
        fy_parser_event_free(fyp, e);
        if (b->fatal) {
            break;
        }
    }
    if (b->fatal) {
        goto out;
    }
    if (fy_parser_get_stream_error(fyp)) {
        if (yd.got) {
            cerr_at(b->cc, yd.line > 0 ? yd.line : b->line, yd.col > 0 ? yd.col : b->col,
                    "YAML syntax error: %s", yd.msg);
        } else {
            cerr_at(b->cc, b->line, b->col, "YAML syntax error");
        }
        goto out;
    }
    if (b->root == NULL) {
        cerr_at(b->cc, 1, 1, "policy file is empty");
        goto out;
    }
    rc = 0;
out:
    if (fyp != NULL) {
        fy_parser_destroy(fyp);
    }
    if (diag != NULL) {
        fy_diag_destroy(diag);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Compile helpers.                                                          */

static const char *ykind(const struct ynode *n)
{
    if (n->type == Y_MAP) {
        return "a mapping";
    }
    if (n->type == Y_SEQ) {
        return "a list";
    }
    return n->null ? "null" : "a scalar";
}

static const struct ynode *ymap_get(const struct ynode *m, const char *key)
{
    for (const struct ynode *k = m->first; k != NULL && k->next != NULL; k = k->next->next) {
        if (!k->bad && strcmp(k->s, key) == 0) {
            return k->next;
        }
    }
    return NULL;
}

/* Report every key of m that is not in allowed (NULL-terminated). */
static void ymap_check_keys(struct cctx *c, const struct ynode *m, const char *const *allowed,
                            const char *what, const char *hint)
{
    for (const struct ynode *k = m->first; k != NULL && k->next != NULL; k = k->next->next) {
        if (k->bad) {
            continue;
        }
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(k->s, *a) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            cerr(c, k, "unknown key '%s' in %s (expected %s)", k->s, what, hint);
        }
    }
}

static char *arena_strdup(struct cctx *c, const struct ynode *n, const char *s, size_t len)
{
    char *d = arena_alloc(c->a, len + 1);
    if (d == NULL) {
        oom(c, n->line, n->col);
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* A non-null, non-empty scalar, copied to the arena. */
static int get_str(struct cctx *c, const struct ynode *n, const char *what, struct pstr *out)
{
    if (n->bad) {
        c->nerr++;
        return -1;
    }
    if (n->type != Y_SCALAR || n->null) {
        cerr(c, n, "%s: expected a string, got %s", what, ykind(n));
        return -1;
    }
    if (n->len == 0) {
        cerr(c, n, "%s: empty string", what);
        return -1;
    }
    char *d = arena_strdup(c, n, n->s, n->len);
    if (d == NULL) {
        return -1;
    }
    out->s = d;
    out->len = n->len;
    return 0;
}

static int get_bool(struct cctx *c, const struct ynode *n, const char *what, int *out)
{
    if (n->type == Y_SCALAR && n->plain && !n->bad) {
        if (strcmp(n->s, "true") == 0 || strcmp(n->s, "True") == 0 || strcmp(n->s, "TRUE") == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(n->s, "false") == 0 || strcmp(n->s, "False") == 0 ||
            strcmp(n->s, "FALSE") == 0) {
            *out = 0;
            return 0;
        }
    }
    cerr(c, n, "%s: expected true or false, got %s", what,
         n->type == Y_SCALAR && !n->null ? "a string" : ykind(n));
    return -1;
}

/* Items of a list; a single scalar counts as a one-item list when allowed. */
struct yiter {
    const struct ynode *single;
    const struct ynode *cur;
};

static int list_begin(struct cctx *c, const struct ynode *n, const char *what, int allow_scalar,
                      struct yiter *it, size_t *count)
{
    it->single = NULL;
    it->cur = NULL;
    if (n->type == Y_SEQ) {
        if (n->n == 0) {
            cerr(c, n, "%s: empty list", what);
            return -1;
        }
        if (n->n > POL_MAX_LIST) {
            cerr(c, n, "%s: more than %d items", what, POL_MAX_LIST);
            return -1;
        }
        it->cur = n->first;
        *count = n->n;
        return 0;
    }
    if (allow_scalar && n->type == Y_SCALAR && !n->null) {
        it->single = n;
        *count = 1;
        return 0;
    }
    cerr(c, n, "%s: expected a list, got %s", what, ykind(n));
    return -1;
}

static const struct ynode *list_next(struct yiter *it)
{
    if (it->single != NULL) {
        const struct ynode *n = it->single;
        it->single = NULL;
        return n;
    }
    const struct ynode *n = it->cur;
    if (n != NULL) {
        it->cur = n->next;
    }
    return n;
}

static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Glob: `*` = any run of bytes except '/', `**` = any run of bytes, `?` = one
 * byte except '/', `\` escapes the next byte. Everything else is literal. */
static int compile_glob(struct cctx *c, const struct ynode *n, const char *s, size_t len,
                        struct glob *g)
{
    g->kind = arena_alloc(c->a, len + 1);
    g->ch = arena_alloc(c->a, len + 1);
    if (g->kind == NULL || g->ch == NULL) {
        oom(c, n->line, n->col);
        return -1;
    }
    g->src = s;
    size_t t = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= len) {
                cerr(c, n, "glob '%s' ends with a lone '\\'", s);
                return -1;
            }
            g->kind[t] = G_LIT;
            g->ch[t++] = (unsigned char)s[++i];
        } else if (s[i] == '*') {
            if (i + 1 < len && s[i + 1] == '*') {
                i++;
                while (i + 1 < len && s[i + 1] == '*') {
                    i++; /* *** == ** */
                }
                if (t > 0 && g->kind[t - 1] == G_DSTAR) {
                    continue;
                }
                g->kind[t++] = G_DSTAR;
            } else {
                if (t > 0 && (g->kind[t - 1] == G_STAR || g->kind[t - 1] == G_DSTAR)) {
                    continue; /* ** * == **, * * cannot happen */
                }
                g->kind[t++] = G_STAR;
            }
        } else if (s[i] == '?') {
            g->kind[t++] = G_ONE;
        } else {
            g->kind[t] = G_LIT;
            g->ch[t++] = (unsigned char)s[i];
        }
    }
    g->n = t;
    return 0;
}

/* "10.0.0.0/8", "2001:db8::/32", "192.0.2.7" (= /32), "::1" (= /128). Host
 * bits must be zero, so "10.1.0.0/8" (probably a typo) is refused. */
static int compile_cidr(struct cctx *c, const struct ynode *n, struct cidr *out)
{
    char addr[64];
    if (n->bad) {
        c->nerr++;
        return -1;
    }
    if (n->type != Y_SCALAR || n->null) {
        cerr(c, n, "sources: expected an IP address or CIDR string, got %s", ykind(n));
        return -1;
    }
    const char *slash = strchr(n->s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - n->s) : n->len;
    if (alen == 0 || alen >= sizeof(addr)) {
        cerr(c, n, "sources: '%s' is not an IP address or CIDR", n->s);
        return -1;
    }
    memcpy(addr, n->s, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    int maxp;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->v6 = 0;
        maxp = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->v6 = 1;
        maxp = 128;
    } else {
        cerr(c, n, "sources: '%s' is not an IP address or CIDR", n->s);
        return -1;
    }
    int prefix = maxp;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t pl = strlen(p);
        if (pl == 0 || pl > 3 || (pl > 1 && p[0] == '0')) {
            cerr(c, n, "sources: bad prefix length in '%s'", n->s);
            return -1;
        }
        prefix = 0;
        for (size_t i = 0; i < pl; i++) {
            if (p[i] < '0' || p[i] > '9') {
                cerr(c, n, "sources: bad prefix length in '%s'", n->s);
                return -1;
            }
            prefix = prefix * 10 + (p[i] - '0');
        }
        if (prefix > maxp) {
            cerr(c, n, "sources: prefix length %d too long for '%s'", prefix, addr);
            return -1;
        }
    }
    int nbytes = out->v6 ? 16 : 4;
    for (int bit = prefix; bit < nbytes * 8; bit++) {
        if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
            cerr(c, n, "sources: '%s' has host bits set beyond /%d", n->s, prefix);
            return -1;
        }
    }
    out->prefix = prefix;
    /* An IPv4-mapped IPv6 network (::ffff:a.b.c.d/96+) is an IPv4 network:
     * clients are normalised the same way at evaluation. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (out->v6 && prefix >= 96 && memcmp(out->addr, mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->v6 = 0;
        out->prefix = prefix - 96;
    }
    return 0;
}

static int parse_hhmm(const char *s, int allow_24, int *out)
{
    if (strlen(s) != 5 || s[2] != ':') {
        return -1;
    }
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9')) {
            return -1;
        }
    }
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!allow_24 || m != 0))) {
        return -1;
    }
    *out = h * 60 + m;
    return 0;
}

/* "UTC", "Z", "+02:00", "-05:30" (|offset| <= 14:00). */
static int parse_tz(const char *s, int *off)
{
    if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
        *off = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6) {
        return -1;
    }
    int m;
    if (parse_hhmm(s + 1, 0, &m) < 0 || m > 14 * 60) {
        return -1;
    }
    *off = s[0] == '-' ? -m : m;
    return 0;
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int compile_twin(struct cctx *c, const struct ynode *n, struct twin *w)
{
    static const char *const keys[] = {"days", "from", "to", "tz", NULL};
    if (n->type != Y_MAP) {
        cerr(c, n, "time: expected a mapping with days/from/to/tz, got %s", ykind(n));
        return -1;
    }
    int before = c->nerr;
    ymap_check_keys(c, n, keys, "time window", "days, from, to, tz");
    memset(w, 0, sizeof(*w));
    w->days = 0x7f;
    const struct ynode *v = ymap_get(n, "days");
    if (v != NULL) {
        struct yiter it;
        size_t cnt;
        if (list_begin(c, v, "time.days", 0, &it, &cnt) == 0) {
            w->days = 0;
            const struct ynode *d;
            while ((d = list_next(&it)) != NULL) {
                int found = -1;
                for (int i = 0; i < 7 && d->type == Y_SCALAR; i++) {
                    if (strcmp(d->s, day_names[i]) == 0) {
                        found = i;
                    }
                }
                if (found < 0) {
                    cerr(c, d, "time.days: '%s' is not one of mon, tue, wed, thu, fri, sat, sun",
                         d->type == Y_SCALAR ? d->s : ykind(d));
                } else if (w->days & (1u << found)) {
                    cerr(c, d, "time.days: '%s' listed twice", d->s);
                } else {
                    w->days |= (uint8_t)(1u << found);
                }
            }
        }
    }
    const struct ynode *fv = ymap_get(n, "from");
    const struct ynode *tv = ymap_get(n, "to");
    if ((fv == NULL) != (tv == NULL)) {
        cerr(c, n, "time: 'from' and 'to' must be given together (omit both for the whole day)");
    } else if (fv == NULL) {
        w->all_day = 1;
    } else {
        int ok = 1;
        if (fv->type != Y_SCALAR || parse_hhmm(fv->s, 0, &w->from) < 0) {
            cerr(c, fv, "time.from: expected \"HH:MM\" (00:00..23:59), got '%s'",
                 fv->type == Y_SCALAR ? fv->s : ykind(fv));
            ok = 0;
        }
        if (tv->type != Y_SCALAR || parse_hhmm(tv->s, 1, &w->to) < 0) {
            cerr(c, tv, "time.to: expected \"HH:MM\" (00:00..24:00), got '%s'",
                 tv->type == Y_SCALAR ? tv->s : ykind(tv));
            ok = 0;
        }
        if (ok && w->from == w->to) {
            cerr(c, fv, "time: empty window (from == to); omit from/to for the whole day");
        }
        if (ok && w->to == 24 * 60 && w->from == 0) {
            w->all_day = 1;
        }
    }
    const struct ynode *zv = ymap_get(n, "tz");
    if (zv != NULL) {
        if (zv->type != Y_SCALAR || parse_tz(zv->s, &w->off_min) < 0) {
            cerr(c, zv,
                 "time.tz: expected UTC or a fixed offset like \"+02:00\" (named zones with "
                 "daylight saving are not supported), got '%s'",
                 zv->type == Y_SCALAR ? zv->s : ykind(zv));
        }
    }
    return c->nerr == before ? 0 : -1;
}

/* Claim path: `name`, `a.b.c`, `$.a.b`, `$.roles[0]`, `$["https://x/roles"]`. */
static int compile_jpath(struct cctx *c, const struct ynode *n, const char *s, struct cond *cd)
{
    struct jseg segs[POL_MAX_JPATH];
    size_t ns = 0;
    const char *p = s;
    if (p[0] == '$') {
        p++;
        if (*p == '\0') {
            cerr(c, n, "claim path '%s' names no claim", s);
            return -1;
        }
        if (*p == '.') {
            p++;
        } else if (*p != '[') {
            cerr(c, n, "claim path '%s': expected '.' or '[' after '$'", s);
            return -1;
        }
    }
    int first = 1;
    while (*p != '\0') {
        if (ns >= POL_MAX_JPATH) {
            cerr(c, n, "claim path '%s' has more than %d segments", s, POL_MAX_JPATH);
            return -1;
        }
        if (*p == '[') {
            p++;
            if (*p == '"' || *p == '\'') {
                char q = *p++;
                const char *e = strchr(p, q);
                if (e == NULL || e == p || e[1] != ']') {
                    cerr(c, n, "claim path '%s': bad quoted key", s);
                    return -1;
                }
                segs[ns].key = arena_strdup(c, n, p, (size_t)(e - p));
                if (segs[ns].key == NULL) {
                    return -1;
                }
                ns++;
                p = e + 2;
            } else {
                size_t v = 0, digits = 0;
                while (*p >= '0' && *p <= '9' && digits < 7) {
                    v = v * 10 + (size_t)(*p - '0');
                    p++;
                    digits++;
                }
                if (digits == 0 || *p != ']') {
                    cerr(c, n, "claim path '%s': expected [index] or [\"key\"]", s);
                    return -1;
                }
                p++;
                segs[ns].key = NULL;
                segs[ns].index = v;
                ns++;
            }
        } else {
            if (!first) {
                if (*p != '.') {
                    cerr(c, n, "claim path '%s': expected '.' or '['", s);
                    return -1;
                }
                p++;
            }
            size_t kl = strcspn(p, ".[]\"'");
            if (kl == 0) {
                cerr(c, n, "claim path '%s': empty key", s);
                return -1;
            }
            segs[ns].key = arena_strdup(c, n, p, kl);
            if (segs[ns].key == NULL) {
                return -1;
            }
            ns++;
            p += kl;
            if (*p == ']' || *p == '"' || *p == '\'') {
                cerr(c, n, "claim path '%s': unexpected '%c'", s, *p);
                return -1;
            }
        }
        first = 0;
    }
    cd->path = arena_array(c->a, ns, sizeof(*cd->path));
    if (cd->path == NULL) {
        oom(c, n->line, n->col);
        return -1;
    }
    memcpy(cd->path, segs, ns * sizeof(*segs));
    cd->n_path = ns;
    return 0;
}

/* 64 hex digits (any case, ':' separators allowed) or 43 base64url chars. */
static int parse_thumbprint(const char *s, size_t len, uint8_t out[32])
{
    char hex[65];
    size_t h = 0;
    int is_hex = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':') {
            continue;
        }
        if (gh_hexval(s[i]) < 0 || h >= 64) {
            is_hex = 0;
            break;
        }
        hex[h++] = s[i];
    }
    if (is_hex && h == 64) {
        for (size_t i = 0; i < 32; i++) {
            out[i] = (uint8_t)(gh_hexval(hex[2 * i]) << 4 | gh_hexval(hex[2 * i + 1]));
        }
        return 0;
    }
    if (len == 43) {
        uint8_t tmp[33];
        if (gh_b64url_decode(s, len, tmp) == 32) {
            memcpy(out, tmp, 32);
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Conditions.                                                               */

struct fname {
    const char *name;
    enum field f;
};

static const struct fname cert_fields[] = {
    {"subject", F_CERT_SUBJECT}, {"cn", F_CERT_CN},
    {"issuer", F_CERT_ISSUER},   {"thumbprint", F_CERT_THUMBPRINT},
    {"san_dns", F_CERT_SAN_DNS}, {"san_email", F_CERT_SAN_EMAIL},
    {"san_uri", F_CERT_SAN_URI}, {NULL, 0},
};

static const struct fname claim_fields[] = {
    {"sub", F_TOK_SUB},     {"email", F_TOK_EMAIL},   {"iss", F_TOK_ISS},
    {"scope", F_TOK_SCOPE}, {"groups", F_TOK_GROUPS}, {"client_id", F_TOK_CLIENT_ID},
    {"jti", F_TOK_JTI},     {"sid", F_TOK_SID},       {NULL, 0},
};

static const char *const cond_keys[] = {"claim",  "cert",   "token",  "not",      "any",
                                        "all",    "equals", "in",     "contains", "prefix",
                                        "suffix", "glob",   "exists", NULL};
#define COND_KEYS_HINT                                                                             \
    "claim/cert/token/not/any/all and one of equals, in, contains, prefix, suffix, glob, exists"

static const struct cond *compile_cond(struct cctx *c, const struct ynode *n, int depth);

static const struct cond *compile_group(struct cctx *c, const struct ynode *n, enum ckind kind,
                                        const char *what, int depth)
{
    struct yiter it;
    size_t cnt;
    if (list_begin(c, n, what, 0, &it, &cnt) < 0) {
        return NULL;
    }
    struct cond *g = arena_alloc(c->a, sizeof(*g));
    const struct cond **kids = arena_array(c->a, cnt, sizeof(*kids));
    if (g == NULL || kids == NULL) {
        oom(c, n->line, n->col);
        return NULL;
    }
    g->kind = kind;
    g->line = n->line;
    g->col = n->col;
    g->kids = kids;
    int ok = 1;
    const struct ynode *k;
    while ((k = list_next(&it)) != NULL) {
        const struct cond *kc = compile_cond(c, k, depth + 1);
        if (kc == NULL) {
            ok = 0;
            continue;
        }
        kids[g->n_kids++] = kc;
    }
    return ok ? g : NULL;
}

static int compile_operand(struct cctx *c, struct cond *cd, const struct ynode *opk,
                           const struct ynode *v)
{
    char what[64];
    snprintf(what, sizeof(what), "%s", opk->s);
    if (cd->op == OP_EXISTS) {
        return get_bool(c, v, what, &cd->exists);
    }
    if (cd->field == F_CERT_THUMBPRINT && cd->op != OP_EQUALS && cd->op != OP_IN) {
        cerr(c, opk, "cert thumbprint supports only equals, in and exists");
        return -1;
    }
    size_t cnt = 1;
    struct yiter it;
    if (cd->op == OP_IN) {
        if (list_begin(c, v, what, 0, &it, &cnt) < 0) {
            return -1;
        }
    } else {
        it.single = v;
        it.cur = NULL;
    }
    cd->vals = arena_array(c->a, cnt, sizeof(*cd->vals));
    if (cd->vals == NULL) {
        oom(c, v->line, v->col);
        return -1;
    }
    if (cd->field == F_CERT_THUMBPRINT) {
        cd->tp = arena_array(c->a, cnt, sizeof(*cd->tp));
        if (cd->tp == NULL) {
            oom(c, v->line, v->col);
            return -1;
        }
    }
    int ok = 1;
    const struct ynode *e;
    while ((e = list_next(&it)) != NULL) {
        struct pstr *ps = &cd->vals[cd->n_vals];
        if (get_str(c, e, what, ps) < 0) {
            ok = 0;
            continue;
        }
        if (cd->field == F_CERT_THUMBPRINT &&
            parse_thumbprint(ps->s, ps->len, cd->tp[cd->n_vals]) < 0) {
            cerr(c, e,
                 "thumbprint '%s': expected SHA-256 as 64 hex digits or 43 base64url characters",
                 ps->s);
            ok = 0;
            continue;
        }
        if (cd->op == OP_GLOB && compile_glob(c, e, ps->s, ps->len, &cd->glob) < 0) {
            ok = 0;
            continue;
        }
        cd->n_vals++;
    }
    return ok ? 0 : -1;
}

static const struct cond *compile_cond(struct cctx *c, const struct ynode *n, int depth)
{
    if (depth > POL_MAX_COND_DEPTH) {
        cerr(c, n, "conditions nested deeper than %d levels", POL_MAX_COND_DEPTH);
        return NULL;
    }
    if (n->type != Y_MAP) {
        cerr(c, n, "condition: expected a mapping (e.g. {claim: groups, contains: x}), got %s",
             ykind(n));
        return NULL;
    }
    int before = c->nerr;
    ymap_check_keys(c, n, cond_keys, "condition", COND_KEYS_HINT);

    /* Exactly one selector. */
    static const char *const selectors[] = {"claim", "cert", "token", "not", "any", "all", NULL};
    const struct ynode *selk = NULL;
    int nsel = 0;
    for (const struct ynode *k = n->first; k != NULL && k->next != NULL; k = k->next->next) {
        for (const char *const *s = selectors; *s != NULL; s++) {
            if (!k->bad && strcmp(k->s, *s) == 0) {
                if (nsel++ == 0) {
                    selk = k;
                }
            }
        }
    }
    /* Operators present. */
    const struct ynode *opk = NULL;
    int nops = 0;
    for (const struct ynode *k = n->first; k != NULL && k->next != NULL; k = k->next->next) {
        for (size_t o = 0; o < sizeof(op_names) / sizeof(op_names[0]); o++) {
            if (!k->bad && strcmp(k->s, op_names[o]) == 0) {
                if (nops++ == 0) {
                    opk = k;
                }
            }
        }
    }
    if (nsel != 1) {
        cerr(c, n, "condition needs exactly one of claim, cert, token, not, any, all (found %d)",
             nsel);
        return NULL;
    }
    if (c->nerr != before) {
        return NULL;
    }
    const struct ynode *sv = selk->next;
    struct cond *cd = arena_alloc(c->a, sizeof(*cd));
    if (cd == NULL) {
        oom(c, n->line, n->col);
        return NULL;
    }
    cd->line = n->line;
    cd->col = n->col;

    if (strcmp(selk->s, "not") == 0 || strcmp(selk->s, "any") == 0 || strcmp(selk->s, "all") == 0 ||
        strcmp(selk->s, "token") == 0) {
        if (nops != 0) {
            cerr(c, opk, "'%s' cannot be combined with '%s' in one condition", opk->s, selk->s);
            return NULL;
        }
        if (strcmp(selk->s, "token") == 0) {
            cd->kind = C_TOKEN;
            if (sv->type == Y_SCALAR && strcmp(sv->s, "present") == 0) {
                cd->token_present = 1;
            } else if (sv->type == Y_SCALAR && strcmp(sv->s, "absent") == 0) {
                cd->token_present = 0;
            } else {
                cerr(c, sv, "token: expected 'present' or 'absent'");
                return NULL;
            }
            return cd;
        }
        if (strcmp(selk->s, "not") == 0) {
            const struct cond *kid = compile_cond(c, sv, depth + 1);
            const struct cond **kids = arena_alloc(c->a, sizeof(*kids));
            if (kid == NULL) {
                return NULL;
            }
            if (kids == NULL) {
                oom(c, n->line, n->col);
                return NULL;
            }
            kids[0] = kid;
            cd->kind = C_NOT;
            cd->kids = kids;
            cd->n_kids = 1;
            return cd;
        }
        int any = strcmp(selk->s, "any") == 0;
        const struct cond *g = compile_group(c, sv, any ? C_ANY : C_ALL, selk->s, depth);
        if (g != NULL) {
            /* keep the position of the condition mapping, not of the list */
            struct cond *gm = (struct cond *)g;
            gm->line = n->line;
            gm->col = n->col;
        }
        return g;
    }

    /* claim: or cert: leaf */
    cd->kind = C_LEAF;
    cd->is_cert = strcmp(selk->s, "cert") == 0;
    struct pstr name;
    if (get_str(c, sv, selk->s, &name) < 0) {
        return NULL;
    }
    cd->fname = name.s;
    const struct fname *tab = cd->is_cert ? cert_fields : claim_fields;
    int found = 0;
    for (const struct fname *f = tab; f->name != NULL; f++) {
        if (strcmp(name.s, f->name) == 0) {
            cd->field = f->f;
            found = 1;
        }
    }
    if (!found) {
        if (cd->is_cert) {
            cerr(c, sv,
                 "cert: unknown field '%s' (expected subject, cn, issuer, thumbprint, san_dns, "
                 "san_email, san_uri)",
                 name.s);
            return NULL;
        }
        cd->field = F_TOK_PATH;
        if (compile_jpath(c, sv, name.s, cd) < 0) {
            return NULL;
        }
    }
    if (nops != 1) {
        cerr(c, n,
             "condition on %s '%s' needs exactly one operator (found %d): equals, in, "
             "contains, prefix, suffix, glob, exists",
             selk->s, name.s, nops);
        return NULL;
    }
    for (size_t o = 0; o < sizeof(op_names) / sizeof(op_names[0]); o++) {
        if (strcmp(opk->s, op_names[o]) == 0) {
            cd->op = (enum op)o;
        }
    }
    if (compile_operand(c, cd, opk, opk->next) < 0) {
        return NULL;
    }
    return cd;
}

/* ------------------------------------------------------------------------ */
/* Rules.                                                                    */

static const char *const rule_keys[] = {"id",      "description", "effect",  "routes",
                                        "methods", "paths",       "sources", "time",
                                        "when",    "any",         NULL};
#define RULE_KEYS_HINT "id, description, effect, routes, methods, paths, sources, time, when, any"

static int valid_id(const char *s, size_t len)
{
    if (len == 0 || len > POL_MAX_ID) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_' || ch == '.' || ch == ':';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static void compile_routes(struct cctx *c, const struct ynode *v, struct rule *r)
{
    struct yiter it;
    size_t cnt;
    if (list_begin(c, v, "routes", 1, &it, &cnt) < 0) {
        return;
    }
    r->routes = arena_array(c->a, cnt, sizeof(*r->routes));
    if (r->routes == NULL) {
        oom(c, v->line, v->col);
        return;
    }
    const struct ynode *e;
    int star = 0;
    while ((e = list_next(&it)) != NULL) {
        struct pstr ps;
        if (get_str(c, e, "routes", &ps) < 0) {
            continue;
        }
        if (strcmp(ps.s, "*") == 0) {
            star = 1;
            r->all_routes = 1;
            continue;
        }
        uint32_t h = fnv1a(ps.s, ps.len);
        for (size_t i = 0; i < r->n_routes; i++) {
            if (r->routes[i].hash == h && strcmp(r->routes[i].name.s, ps.s) == 0) {
                cerr(c, e, "routes: '%s' listed twice", ps.s);
            }
        }
        struct route_ref *rr = &r->routes[r->n_routes++];
        rr->name = ps;
        rr->hash = h;
        rr->line = e->line;
        rr->col = e->col;
    }
    if (star && r->n_routes > 0) {
        cerr(c, v, "routes: \"*\" already means every route; do not list others with it");
    }
}

static void compile_methods(struct cctx *c, const struct ynode *v, struct rule *r)
{
    struct yiter it;
    size_t cnt;
    if (list_begin(c, v, "methods", 1, &it, &cnt) < 0) {
        return;
    }
    r->methods = arena_array(c->a, cnt, sizeof(*r->methods));
    if (r->methods == NULL) {
        oom(c, v->line, v->col);
        return;
    }
    const struct ynode *e;
    while ((e = list_next(&it)) != NULL) {
        struct pstr ps;
        if (get_str(c, e, "methods", &ps) < 0) {
            continue;
        }
        int ok = ps.len <= 32;
        for (size_t i = 0; i < ps.len && ok; i++) {
            ok = ps.s[i] >= 'A' && ps.s[i] <= 'Z';
        }
        if (!ok) {
            cerr(c, e, "methods: '%s' is not an uppercase HTTP method (e.g. GET, POST)", ps.s);
            continue;
        }
        r->methods[r->n_methods++] = ps;
    }
}

static void compile_paths(struct cctx *c, const struct ynode *v, struct rule *r)
{
    struct yiter it;
    size_t cnt;
    if (list_begin(c, v, "paths", 1, &it, &cnt) < 0) {
        return;
    }
    r->paths = arena_array(c->a, cnt, sizeof(*r->paths));
    if (r->paths == NULL) {
        oom(c, v->line, v->col);
        return;
    }
    const struct ynode *e;
    while ((e = list_next(&it)) != NULL) {
        struct pstr ps;
        if (get_str(c, e, "paths", &ps) < 0) {
            continue;
        }
        if (ps.s[0] != '/') {
            cerr(c, e, "paths: glob '%s' must start with '/'", ps.s);
            continue;
        }
        if (compile_glob(c, e, ps.s, ps.len, &r->paths[r->n_paths]) == 0) {
            r->n_paths++;
        }
    }
}

static void compile_sources(struct cctx *c, const struct ynode *v, struct rule *r)
{
    struct yiter it;
    size_t cnt;
    if (list_begin(c, v, "sources", 1, &it, &cnt) < 0) {
        return;
    }
    r->sources = arena_array(c->a, cnt, sizeof(*r->sources));
    if (r->sources == NULL) {
        oom(c, v->line, v->col);
        return;
    }
    const struct ynode *e;
    while ((e = list_next(&it)) != NULL) {
        if (compile_cidr(c, e, &r->sources[r->n_sources]) == 0) {
            r->n_sources++;
        }
    }
}

static void compile_times(struct cctx *c, const struct ynode *v, struct rule *r)
{
    size_t cnt = v->type == Y_SEQ ? v->n : 1;
    if (v->type == Y_SEQ && v->n == 0) {
        cerr(c, v, "time: empty list");
        return;
    }
    if (v->type == Y_SEQ && v->n > POL_MAX_LIST) {
        cerr(c, v, "time: more than %d items", POL_MAX_LIST);
        return;
    }
    r->times = arena_array(c->a, cnt, sizeof(*r->times));
    if (r->times == NULL) {
        oom(c, v->line, v->col);
        return;
    }
    if (v->type != Y_SEQ) {
        if (compile_twin(c, v, &r->times[0]) == 0) {
            r->n_times = 1;
        }
        return;
    }
    for (const struct ynode *e = v->first; e != NULL; e = e->next) {
        if (compile_twin(c, e, &r->times[r->n_times]) == 0) {
            r->n_times++;
        }
    }
}

static void compile_rule(struct cctx *c, const struct ynode *n, struct rule *r)
{
    if (n->type != Y_MAP) {
        cerr(c, n, "rule: expected a mapping, got %s", ykind(n));
        return;
    }
    r->line = n->line;
    r->col = n->col;
    ymap_check_keys(c, n, rule_keys, "rule", RULE_KEYS_HINT);

    const struct ynode *v = ymap_get(n, "id");
    if (v == NULL) {
        cerr(c, n, "rule is missing 'id'");
    } else if (v->bad) {
        c->nerr++;
    } else if (v->type != Y_SCALAR || v->null || !valid_id(v->s, v->len)) {
        cerr(c, v, "id: expected 1-%d characters of [A-Za-z0-9._:-], got %s", POL_MAX_ID,
             v->type == Y_SCALAR && !v->null ? v->s : ykind(v));
    } else {
        memcpy(r->id, v->s, v->len + 1);
    }

    v = ymap_get(n, "description");
    if (v != NULL) {
        struct pstr ps;
        (void)get_str(c, v, "description", &ps);
    }

    v = ymap_get(n, "effect");
    if (v == NULL) {
        cerr(c, n, "rule '%s' is missing 'effect' (allow or deny)", r->id);
    } else if (v->type == Y_SCALAR && strcmp(v->s, "allow") == 0) {
        r->deny = 0;
    } else if (v->type == Y_SCALAR && strcmp(v->s, "deny") == 0) {
        r->deny = 1;
    } else {
        cerr(c, v, "effect: expected allow or deny, got %s",
             v->type == Y_SCALAR && !v->null ? v->s : ykind(v));
    }

    v = ymap_get(n, "routes");
    if (v == NULL) {
        cerr(c, n, "rule '%s' is missing 'routes' (route ids, or \"*\" for all)", r->id);
    } else {
        compile_routes(c, v, r);
    }
    if ((v = ymap_get(n, "methods")) != NULL) {
        compile_methods(c, v, r);
    }
    if ((v = ymap_get(n, "paths")) != NULL) {
        compile_paths(c, v, r);
    }
    if ((v = ymap_get(n, "sources")) != NULL) {
        compile_sources(c, v, r);
    }
    if ((v = ymap_get(n, "time")) != NULL) {
        compile_times(c, v, r);
    }
    if ((v = ymap_get(n, "when")) != NULL) {
        r->when = compile_group(c, v, C_ALL, "when", 0);
        r->when_line = v->line;
        r->when_col = v->col;
    }
    if ((v = ymap_get(n, "any")) != NULL) {
        r->any = compile_group(c, v, C_ANY, "any", 0);
        r->any_line = v->line;
        r->any_col = v->col;
    }
}

struct idref {
    const char *id;
    size_t idx;
};

static int idref_cmp(const void *a, const void *b)
{
    const struct idref *x = a, *y = b;
    int k = strcmp(x->id, y->id);
    if (k != 0) {
        return k;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void check_dup_ids(struct cctx *c, struct az_policy *p)
{
    if (p->n_rules < 2) {
        return;
    }
    struct idref *v = malloc(p->n_rules * sizeof(*v));
    if (v == NULL) {
        oom(c, 1, 1);
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        if (p->rules[i].id[0] != '\0') {
            v[m].id = p->rules[i].id;
            v[m].idx = i;
            m++;
        }
    }
    qsort(v, m, sizeof(*v), idref_cmp);
    for (size_t i = 1; i < m; i++) {
        if (strcmp(v[i].id, v[i - 1].id) == 0) {
            /* report against the earliest definition */
            size_t k = i - 1;
            while (k > 0 && strcmp(v[k - 1].id, v[i].id) == 0) {
                k--;
            }
            const struct rule *r0 = &p->rules[v[k].idx];
            const struct rule *r = &p->rules[v[i].idx];
            cerr_at(c, r->line, r->col, "duplicate rule id '%s' (first defined at line %d:%d)",
                    r->id, r0->line, r0->col);
        }
    }
    free(v);
}

static void compile_top(struct cctx *c, const struct ynode *root, struct az_policy *p)
{
    static const char *const top_keys[] = {"version", "rules", NULL};
    if (root->type != Y_MAP) {
        cerr(c, root, "policy: expected a mapping with 'version' and 'rules', got %s", ykind(root));
        return;
    }
    ymap_check_keys(c, root, top_keys, "policy", "version, rules");
    const struct ynode *v = ymap_get(root, "version");
    if (v == NULL) {
        cerr(c, root, "policy is missing 'version: 1'");
    } else if (v->type != Y_SCALAR || !v->plain || strcmp(v->s, "1") != 0) {
        cerr(c, v, "version: unsupported policy version '%s' (this gatehouse reads version 1)",
             v->type == Y_SCALAR ? v->s : ykind(v));
    }
    const struct ynode *rv = ymap_get(root, "rules");
    if (rv == NULL) {
        cerr(c, root, "policy is missing 'rules'");
        return;
    }
    if (rv->type != Y_SEQ) {
        cerr(c, rv, "rules: expected a list, got %s", ykind(rv));
        return;
    }
    if (rv->n > POL_MAX_RULES) {
        cerr(c, rv, "too many rules: %zu (limit %d)", rv->n, POL_MAX_RULES);
        return;
    }
    p->rules = arena_array(c->a, rv->n, sizeof(*p->rules));
    if (p->rules == NULL && rv->n > 0) {
        oom(c, rv->line, rv->col);
        return;
    }
    for (const struct ynode *e = rv->first; e != NULL; e = e->next) {
        compile_rule(c, e, &p->rules[p->n_rules++]);
        if (c->oom) {
            return;
        }
    }
    check_dup_ids(c, p);
}

/* ------------------------------------------------------------------------ */
/* Public: load, refcount, accessors.                                        */

struct az_policy *az_policy_load_buf(const char *name, const char *buf, size_t len,
                                     struct gh_errlist *errs)
{
    struct gh_errlist scratch;
    struct az_policy *p = NULL;
    struct cctx c;
    struct ybuild b;

    if (errs == NULL) {
        memset(&scratch, 0, sizeof(scratch));
        errs = &scratch;
    }
    memset(&c, 0, sizeof(c));
    memset(&b, 0, sizeof(b));
    c.errs = errs;
    c.file = name != NULL ? name : "<policy>";
    b.cc = &c;

    if (buf == NULL) {
        cerr_at(&c, 1, 1, "no policy text");
        goto out;
    }
    if (len > POL_MAX_FILE) {
        cerr_at(&c, 1, 1, "policy file too large: %zu bytes (limit %d)", len, POL_MAX_FILE);
        goto out;
    }
    if (check_utf8(&c, (const unsigned char *)buf, len) < 0) {
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        oom(&c, 1, 1);
        goto out;
    }
    atomic_init(&p->refs, 1);
    c.a = &p->arena;
    p->src = arena_alloc(&p->arena, len + 1);
    if (p->src == NULL) {
        oom(&c, 1, 1);
        goto out;
    }
    memcpy(p->src, buf, len);
    p->src[len] = '\0';
    p->src_len = len;
    gh_sha256_hex(buf, len, p->version);
    snprintf(p->name, sizeof(p->name), "%s", c.file);

    if (yaml_tree(&b, p->src, len) < 0 || c.nerr > 0) {
        goto out;
    }
    compile_top(&c, b.root, p);
out:
    arena_free(&b.ya);
    if (c.nerr > 0 || c.oom) {
        if (p != NULL) {
            arena_free(&p->arena);
            free(p);
        }
        return NULL;
    }
    return p;
}

struct az_policy *az_policy_load_file(const char *path, struct gh_errlist *errs)
{
    struct gh_errlist scratch;
    struct az_policy *p = NULL;
    char *buf = NULL;
    FILE *f = NULL;

    if (errs == NULL) {
        memset(&scratch, 0, sizeof(scratch));
        errs = &scratch;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        gh_errlist_add(errs, path, 0, 0, "cannot open policy file: %s", strerror(errno));
        goto out;
    }
    buf = malloc(POL_MAX_FILE + 1);
    if (buf == NULL) {
        gh_errlist_add(errs, path, 0, 0, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, POL_MAX_FILE + 1, f);
    if (ferror(f)) {
        gh_errlist_add(errs, path, 0, 0, "cannot read policy file: %s", strerror(errno));
        goto out;
    }
    if (n > POL_MAX_FILE) {
        gh_errlist_add(errs, path, 1, 1, "policy file too large (limit %d bytes)", POL_MAX_FILE);
        goto out;
    }
    p = az_policy_load_buf(path, buf, n, errs);
out:
    free(buf);
    if (f != NULL) {
        fclose(f);
    }
    return p;
}

struct az_policy *az_policy_ref(struct az_policy *p)
{
    if (p != NULL) {
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    }
    return p;
}

void az_policy_unref(struct az_policy *p)
{
    if (p == NULL) {
        return;
    }
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
        arena_free(&p->arena);
        free(p);
    }
}

const char *az_policy_version(const struct az_policy *p)
{
    return p != NULL ? p->version : "";
}

const char *az_policy_source(const struct az_policy *p, size_t *len)
{
    if (p == NULL) {
        if (len != NULL) {
            *len = 0;
        }
        return "";
    }
    if (len != NULL) {
        *len = p->src_len;
    }
    return p->src;
}

size_t az_policy_rule_count(const struct az_policy *p)
{
    return p != NULL ? p->n_rules : 0;
}

int az_policy_check_routes(const struct az_policy *p, const char *const *route_ids, int n,
                           struct gh_errlist *errs)
{
    int rc = 0;
    if (p == NULL) {
        return -1;
    }
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct rule *r = &p->rules[i];
        for (size_t k = 0; k < r->n_routes; k++) {
            int known = 0;
            for (int j = 0; j < n && !known; j++) {
                known = route_ids[j] != NULL && strcmp(route_ids[j], r->routes[k].name.s) == 0;
            }
            if (!known) {
                if (errs != NULL) {
                    gh_errlist_add(errs, p->name, r->routes[k].line, r->routes[k].col,
                                   "rule '%s' names unknown route '%s'", r->id,
                                   r->routes[k].name.s);
                }
                rc = -1;
            }
        }
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Evaluation. Nothing below allocates.                                      */

static enum tv tv_and(enum tv a, enum tv b)
{
    if (a == TV_FALSE || b == TV_FALSE) {
        return TV_FALSE;
    }
    if (a == TV_UNKNOWN || b == TV_UNKNOWN) {
        return TV_UNKNOWN;
    }
    return TV_TRUE;
}

static int glob_match(const struct glob *g, const char *s, size_t len)
{
    uint64_t cur[POL_GLOB_WORDS], nxt[POL_GLOB_WORDS];
    size_t n = g->n;
    size_t words = n / 64 + 1;
#define GSET(v, i) ((v)[(i) / 64] |= (uint64_t)1 << ((i) % 64))
#define GHAS(v, i) (((v)[(i) / 64] >> ((i) % 64)) & 1)
    memset(cur, 0, words * sizeof(uint64_t));
    GSET(cur, 0);
    /* epsilon: a star may match nothing; stars only move forward, so one
     * ascending pass closes the set */
    for (size_t i = 0; i < n; i++) {
        if (GHAS(cur, i) && (g->kind[i] == G_STAR || g->kind[i] == G_DSTAR)) {
            GSET(cur, i + 1);
        }
    }
    for (size_t p = 0; p < len; p++) {
        unsigned char ch = (unsigned char)s[p];
        int live = 0;
        memset(nxt, 0, words * sizeof(uint64_t));
        for (size_t w = 0; w < words; w++) {
            uint64_t bits = cur[w];
            while (bits != 0) {
                size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (i >= n) {
                    continue;
                }
                switch (g->kind[i]) {
                case G_LIT:
                    if (g->ch[i] == ch) {
                        GSET(nxt, i + 1);
                        live = 1;
                    }
                    break;
                case G_ONE:
                    if (ch != '/') {
                        GSET(nxt, i + 1);
                        live = 1;
                    }
                    break;
                case G_STAR:
                    if (ch != '/') {
                        GSET(nxt, i);
                        live = 1;
                    }
                    break;
                default: /* G_DSTAR */
                    GSET(nxt, i);
                    live = 1;
                    break;
                }
            }
        }
        if (!live) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (GHAS(nxt, i) && (g->kind[i] == G_STAR || g->kind[i] == G_DSTAR)) {
                GSET(nxt, i + 1);
            }
        }
        memcpy(cur, nxt, words * sizeof(uint64_t));
    }
    return (int)GHAS(cur, n);
#undef GSET
#undef GHAS
}

/* One value against a leaf's operator. multi: the value is one element of a
 * multi-valued field, so `contains` means element equality, not substring. */
static int op_match(const struct cond *c, const char *s, size_t len, int multi)
{
    switch (c->op) {
    case OP_EQUALS:
        return len == c->vals[0].len && memcmp(s, c->vals[0].s, len) == 0;
    case OP_IN:
        for (size_t i = 0; i < c->n_vals; i++) {
            if (len == c->vals[i].len && memcmp(s, c->vals[i].s, len) == 0) {
                return 1;
            }
        }
        return 0;
    case OP_CONTAINS:
        if (multi) {
            return len == c->vals[0].len && memcmp(s, c->vals[0].s, len) == 0;
        }
        return memmem(s, len, c->vals[0].s, c->vals[0].len) != NULL;
    case OP_PREFIX:
        return len >= c->vals[0].len && memcmp(s, c->vals[0].s, c->vals[0].len) == 0;
    case OP_SUFFIX:
        return len >= c->vals[0].len &&
               memcmp(s + len - c->vals[0].len, c->vals[0].s, c->vals[0].len) == 0;
    case OP_GLOB:
        return glob_match(&c->glob, s, len);
    default:
        return 0;
    }
}

/* s is a fixed-size field of struct az_cert_info / az_token: never read past
 * its size even if a caller forgot the terminator. */
static enum tv leaf_single(const struct cond *c, const char *s, size_t cap)
{
    size_t len = strnlen(s, cap);
    if (c->op == OP_EXISTS) {
        return (len > 0) == c->exists ? TV_TRUE : TV_FALSE;
    }
    return len > 0 && op_match(c, s, len, 0) ? TV_TRUE : TV_FALSE;
}

static enum tv leaf_multi(const struct cond *c, char *const *v, int n)
{
    if (n < 0) {
        n = 0;
    }
    if (c->op == OP_EXISTS) {
        return (n > 0) == c->exists ? TV_TRUE : TV_FALSE;
    }
    for (int i = 0; i < n; i++) {
        if (v[i] != NULL && op_match(c, v[i], strnlen(v[i], 4096), 1)) {
            return TV_TRUE;
        }
    }
    return TV_FALSE;
}

static enum tv leaf_scope(const struct cond *c, const char *scope)
{
    size_t len = strnlen(scope, sizeof(((struct az_token *)0)->scope));
    int any = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && scope[i] == ' ') {
            i++;
        }
        size_t st = i;
        while (i < len && scope[i] != ' ') {
            i++;
        }
        if (i > st) {
            any = 1;
            if (c->op != OP_EXISTS && op_match(c, scope + st, i - st, 1)) {
                return TV_TRUE;
            }
        }
    }
    if (c->op == OP_EXISTS) {
        return any == c->exists ? TV_TRUE : TV_FALSE;
    }
    return TV_FALSE;
}

/* Text form of a JSON scalar for comparison: strings as is, integers in
 * decimal, booleans as true/false. Returns 0 when not comparable. */
static int json_text(const json_t *v, char *buf, size_t blen, const char **s, size_t *len)
{
    if (json_is_string(v)) {
        *s = json_string_value(v);
        *len = json_string_length(v);
        return 1;
    }
    if (json_is_integer(v)) {
        int k = snprintf(buf, blen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (k < 0 || (size_t)k >= blen) {
            return 0;
        }
        *s = buf;
        *len = (size_t)k;
        return 1;
    }
    if (json_is_true(v)) {
        *s = "true";
        *len = 4;
        return 1;
    }
    if (json_is_false(v)) {
        *s = "false";
        *len = 5;
        return 1;
    }
    return 0;
}

static enum tv leaf_path(const struct cond *c, const json_t *claims)
{
    json_t *v = (json_t *)claims;
    for (size_t i = 0; i < c->n_path && v != NULL; i++) {
        if (c->path[i].key != NULL) {
            v = json_is_object(v) ? json_object_get(v, c->path[i].key) : NULL;
        } else {
            v = json_is_array(v) ? json_array_get(v, c->path[i].index) : NULL;
        }
    }
    if (c->op == OP_EXISTS) {
        return (v != NULL) == c->exists ? TV_TRUE : TV_FALSE;
    }
    if (v == NULL) {
        return TV_FALSE;
    }
    char buf[32];
    const char *s;
    size_t len;
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) {
            if (json_text(json_array_get(v, i), buf, sizeof(buf), &s, &len) &&
                op_match(c, s, len, 1)) {
                return TV_TRUE;
            }
        }
        return TV_FALSE;
    }
    if (json_text(v, buf, sizeof(buf), &s, &len) && len > 0 && op_match(c, s, len, 0)) {
        return TV_TRUE;
    }
    return TV_FALSE;
}

static enum tv leaf_thumbprint(const struct cond *c, const struct az_cert_info *ci)
{
    static const uint8_t zero[32];
    int present = memcmp(ci->sha256, zero, 32) != 0;
    if (c->op == OP_EXISTS) {
        return present == c->exists ? TV_TRUE : TV_FALSE;
    }
    if (!present) {
        return TV_FALSE;
    }
    for (size_t i = 0; i < c->n_vals; i++) {
        if (memcmp(ci->sha256, c->tp[i], 32) == 0) {
            return TV_TRUE;
        }
    }
    return TV_FALSE;
}

static enum tv eval_leaf(const struct cond *c, const struct az_identity *id)
{
    const struct az_cert_info *ci = id != NULL ? id->cert : NULL;
    const struct az_token *t = id != NULL ? id->token : NULL;
    if (c->field <= F_CERT_SAN_URI) {
        if (ci == NULL) {
            return TV_UNKNOWN;
        }
    } else if (t == NULL) {
        return TV_UNKNOWN;
    }
    switch (c->field) {
    case F_CERT_SUBJECT:
        return leaf_single(c, ci->subject, sizeof(ci->subject));
    case F_CERT_CN:
        return leaf_single(c, ci->cn, sizeof(ci->cn));
    case F_CERT_ISSUER:
        return leaf_single(c, ci->issuer, sizeof(ci->issuer));
    case F_CERT_THUMBPRINT:
        return leaf_thumbprint(c, ci);
    case F_CERT_SAN_DNS:
        return leaf_multi(c, ci->san_dns, ci->n_dns > AZ_MAX_SANS ? AZ_MAX_SANS : ci->n_dns);
    case F_CERT_SAN_EMAIL:
        return leaf_multi(c, ci->san_email, ci->n_email > AZ_MAX_SANS ? AZ_MAX_SANS : ci->n_email);
    case F_CERT_SAN_URI:
        return leaf_multi(c, ci->san_uri, ci->n_uri > AZ_MAX_SANS ? AZ_MAX_SANS : ci->n_uri);
    case F_TOK_SUB:
        return leaf_single(c, t->sub, sizeof(t->sub));
    case F_TOK_EMAIL:
        return leaf_single(c, t->email, sizeof(t->email));
    case F_TOK_ISS:
        return leaf_single(c, t->iss, sizeof(t->iss));
    case F_TOK_SCOPE:
        return leaf_scope(c, t->scope);
    case F_TOK_GROUPS:
        return leaf_multi(c, t->groups, t->n_groups > AZ_MAX_GROUPS ? AZ_MAX_GROUPS : t->n_groups);
    case F_TOK_CLIENT_ID:
        return leaf_single(c, t->client_id, sizeof(t->client_id));
    case F_TOK_JTI:
        return leaf_single(c, t->jti, sizeof(t->jti));
    case F_TOK_SID:
        return leaf_single(c, t->sid, sizeof(t->sid));
    case F_TOK_PATH:
        return leaf_path(c, t->claims);
    }
    return TV_UNKNOWN;
}

static enum tv eval_cond(const struct cond *c, const struct az_identity *id)
{
    switch (c->kind) {
    case C_LEAF:
        return eval_leaf(c, id);
    case C_TOKEN: {
        int has = id != NULL && id->token != NULL;
        return has == c->token_present ? TV_TRUE : TV_FALSE;
    }
    case C_NOT: {
        enum tv v = eval_cond(c->kids[0], id);
        return v == TV_UNKNOWN ? TV_UNKNOWN : (v == TV_TRUE ? TV_FALSE : TV_TRUE);
    }
    case C_ALL: {
        enum tv acc = TV_TRUE;
        for (size_t i = 0; i < c->n_kids && acc != TV_FALSE; i++) {
            acc = tv_and(acc, eval_cond(c->kids[i], id));
        }
        return acc;
    }
    case C_ANY: {
        enum tv acc = TV_FALSE;
        for (size_t i = 0; i < c->n_kids && acc != TV_TRUE; i++) {
            enum tv v = eval_cond(c->kids[i], id);
            if (v == TV_TRUE || (v == TV_UNKNOWN && acc == TV_FALSE)) {
                acc = v;
            }
        }
        return acc;
    }
    }
    return TV_UNKNOWN;
}

/* The request path is matched as raw bytes. A path that an upstream could
 * read differently from how the glob sees it -- dot segments, empty segments,
 * encoded '/', '.', '\', ';' or '%', an encoded unreserved character, a
 * backslash or a ';' -- is "not
 * canonical": path conditions are then unknown (deny rules with paths apply,
 * allow rules with paths do not). Stops /public/../admin style bypasses of
 * path-scoped deny rules (defence in depth; the HTTP layer should already
 * refuse or normalise such paths). */
static int path_canonical(const char *p)
{
    if (p == NULL || p[0] != '/') {
        return 0;
    }
    size_t len = strnlen(p, 65536);
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (ch == '\\' || ch == ';') {
            return 0;
        }
        if (ch == '%' && i + 2 < len) {
            char a = p[i + 1], b = (char)(p[i + 2] | 0x20);
            if ((a == '2' && (b == 'e' || b == 'f')) || (a == '5' && b == 'c') ||
                (a == '3' && b == 'b') || (a == '2' && b == '5')) {
                return 0;
            }
            /* an encoded unreserved character ("/%61dmin" for "/admin") */
            int hi = gh_hexval(a), lo = gh_hexval(p[i + 2]);
            if (hi >= 0 && lo >= 0 && gh_uri_unreserved(hi * 16 + lo)) {
                return 0;
            }
        }
        if (ch == '/') {
            /* segment starting after this slash */
            const char *s = p + i + 1;
            size_t rest = len - i - 1;
            if (rest > 0 && s[0] == '/') {
                return 0; /* empty segment "//" */
            }
            if (rest >= 1 && s[0] == '.' && (rest == 1 || s[1] == '/')) {
                return 0;
            }
            if (rest >= 2 && s[0] == '.' && s[1] == '.' && (rest == 2 || s[2] == '/')) {
                return 0;
            }
        }
    }
    return 1;
}

static int client_addr(const struct sockaddr *sa, int *v6, uint8_t out[16])
{
    if (sa == NULL) {
        return -1;
    }
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in4;
        memcpy(&in4, sa, sizeof(in4));
        memcpy(out, &in4.sin_addr, 4);
        *v6 = 0;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
            memcpy(out, (const uint8_t *)&in6.sin6_addr + 12, 4);
            *v6 = 0;
        } else {
            memcpy(out, &in6.sin6_addr, 16);
            *v6 = 1;
        }
        return 0;
    }
    return -1;
}

static int cidr_match(const struct cidr *c, int v6, const uint8_t *a)
{
    if (c->v6 != v6) {
        return 0;
    }
    int full = c->prefix / 8, rem = c->prefix % 8;
    if (memcmp(a, c->addr, (size_t)full) != 0) {
        return 0;
    }
    if (rem == 0) {
        return 1;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[full] & mask) == (c->addr[full] & mask);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

static int twin_match(const struct twin *w, int64_t now_s)
{
    if (now_s < -((int64_t)1 << 50) || now_s > ((int64_t)1 << 50)) {
        return 0;
    }
    int64_t local = now_s + (int64_t)w->off_min * 60;
    int64_t day = floor_div(local, 86400);
    int minute = (int)((local - day * 86400) / 60);
    int wd = (int)(((day + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday; 0 = mon */
    int prev = (wd + 6) % 7;
    int today = (w->days >> wd) & 1;
    if (w->all_day) {
        return today;
    }
    if (w->from < w->to) {
        return today && minute >= w->from && minute < w->to;
    }
    /* crosses midnight: starts on a listed day at `from`, ends next day at `to` */
    return (today && minute >= w->from) || (((w->days >> prev) & 1) && minute < w->to);
}

static int route_applies(const struct rule *r, const char *route, uint32_t h)
{
    if (r->all_routes) {
        return 1;
    }
    if (route == NULL) {
        return 0;
    }
    for (size_t i = 0; i < r->n_routes; i++) {
        if (r->routes[i].hash == h && strcmp(r->routes[i].name.s, route) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Components of a rule in evaluation order. */
enum comp { K_METHOD, K_PATH, K_SOURCE, K_TIME, K_WHEN, K_ANY, K__N };

struct req_facts {
    int has_addr;
    int v6;
    uint8_t addr[16];
    int path_ok;
};

static enum tv eval_comp(const struct rule *r, enum comp k, const struct az_identity *id,
                         const struct az_request_info *req, const struct req_facts *f)
{
    switch (k) {
    case K_METHOD:
        if (r->n_methods == 0) {
            return TV_TRUE;
        }
        if (req->method == NULL) {
            return TV_UNKNOWN;
        }
        for (size_t i = 0; i < r->n_methods; i++) {
            if (strcmp(req->method, r->methods[i].s) == 0) {
                return TV_TRUE;
            }
        }
        return TV_FALSE;
    case K_PATH:
        if (r->n_paths == 0) {
            return TV_TRUE;
        }
        if (!f->path_ok) {
            return TV_UNKNOWN;
        }
        for (size_t i = 0; i < r->n_paths; i++) {
            if (glob_match(&r->paths[i], req->path, strlen(req->path))) {
                return TV_TRUE;
            }
        }
        return TV_FALSE;
    case K_SOURCE:
        if (r->n_sources == 0) {
            return TV_TRUE;
        }
        if (!f->has_addr) {
            return TV_UNKNOWN;
        }
        for (size_t i = 0; i < r->n_sources; i++) {
            if (cidr_match(&r->sources[i], f->v6, f->addr)) {
                return TV_TRUE;
            }
        }
        return TV_FALSE;
    case K_TIME:
        if (r->n_times == 0) {
            return TV_TRUE;
        }
        for (size_t i = 0; i < r->n_times; i++) {
            if (twin_match(&r->times[i], req->now_s)) {
                return TV_TRUE;
            }
        }
        return TV_FALSE;
    case K_WHEN:
        return r->when != NULL ? eval_cond(r->when, id) : TV_TRUE;
    case K_ANY:
        return r->any != NULL ? eval_cond(r->any, id) : TV_TRUE;
    default:
        return TV_UNKNOWN;
    }
}

/* Evaluates a rule; *first gets the first component that is not true (for
 * allow) / that decided a deny's outcome. Stops as soon as the outcome for
 * this rule's effect is fixed. */
static enum tv eval_rule(const struct rule *r, const struct az_identity *id,
                         const struct az_request_info *req, const struct req_facts *f,
                         enum comp *first)
{
    enum tv acc = TV_TRUE;
    *first = K__N;
    for (int k = 0; k < K__N; k++) {
        enum tv v = eval_comp(r, (enum comp)k, id, req, f);
        if (v == TV_FALSE) {
            *first = (enum comp)k;
            return TV_FALSE;
        }
        if (v == TV_UNKNOWN) {
            if (acc == TV_TRUE) {
                *first = (enum comp)k;
            }
            acc = TV_UNKNOWN;
            if (!r->deny) {
                return TV_UNKNOWN; /* an allow rule can no longer match */
            }
        }
    }
    return acc;
}

/* ------------------------------------------------------------------------ */
/* Explanations (only when a `why` buffer is given).                         */

struct wbuf {
    char *buf;
    size_t len, off;
    int full;
};

static void wadd(struct wbuf *w, const char *fmt, ...) GH_PRINTF(2, 3);
static void wadd(struct wbuf *w, const char *fmt, ...)
{
    if (w->full || w->len == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->buf + w->off, w->len - w->off, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= w->len - w->off) {
        /* mark the truncation so nobody reads a cut explanation as complete */
        w->full = 1;
        if (w->len >= 5) {
            memcpy(w->buf + w->len - 5, "...\n", 5);
        }
        return;
    }
    w->off += (size_t)k;
}

/* Short human form of a condition: `claim groups contains "ops"`. */
static void describe(const struct cond *c, char *out, size_t len)
{
    switch (c->kind) {
    case C_TOKEN:
        snprintf(out, len, "token %s", c->token_present ? "present" : "absent");
        return;
    case C_NOT: {
        char inner[160];
        describe(c->kids[0], inner, sizeof(inner));
        snprintf(out, len, "not (%s)", inner);
        return;
    }
    case C_ALL:
    case C_ANY:
        snprintf(out, len, "%s of %zu conditions", c->kind == C_ALL ? "all" : "any", c->n_kids);
        return;
    case C_LEAF:
        break;
    }
    const char *sel = c->is_cert ? "cert" : "claim";
    if (c->op == OP_EXISTS) {
        snprintf(out, len, "%s %s exists %s", sel, c->fname, c->exists ? "true" : "false");
    } else if (c->op == OP_IN) {
        if (c->n_vals > 1) {
            snprintf(out, len, "%s %s in [\"%.64s\", ... %zu values]", sel, c->fname, c->vals[0].s,
                     c->n_vals);
        } else {
            snprintf(out, len, "%s %s in [\"%.64s\"]", sel, c->fname, c->vals[0].s);
        }
    } else {
        snprintf(out, len, "%s %s %s \"%.80s\"", sel, c->fname, op_names[c->op], c->vals[0].s);
    }
}

static const char *tv_name(enum tv v)
{
    return v == TV_TRUE ? "true" : v == TV_FALSE ? "false" : "unknown";
}

/* The first condition of a when/any group that explains its value: for all,
 * the first false one (or the first unknown one when none is false); for any
 * with an unknown outcome, the first unknown one. */
static void explain_group(const struct cond *g, const struct az_identity *id, const char *label,
                          char *out, size_t len)
{
    enum tv gv = eval_cond(g, id);
    if (g->kind == C_ANY && gv == TV_FALSE) {
        snprintf(out, len, "%s: none of %zu conditions held", label, g->n_kids);
        return;
    }
    for (size_t i = 0; i < g->n_kids; i++) {
        enum tv v = eval_cond(g->kids[i], id);
        if (v != gv) {
            continue;
        }
        char d[200];
        describe(g->kids[i], d, sizeof(d));
        const char *cause = "";
        if (v == TV_UNKNOWN) {
            cause = g->kids[i]->kind == C_LEAF && g->kids[i]->is_cert ? " (no certificate)"
                                                                      : " (no token)";
        }
        snprintf(out, len, "%s[%zu] (line %d:%d) %s -> %s%s", label, i + 1, g->kids[i]->line,
                 g->kids[i]->col, d, tv_name(v), cause);
        return;
    }
    snprintf(out, len, "%s -> %s", label, tv_name(gv));
}

static void explain_comp(const struct rule *r, enum comp k, const struct az_identity *id,
                         const struct az_request_info *req, const struct req_facts *f, char *out,
                         size_t len)
{
    switch (k) {
    case K_METHOD:
        if (req->method == NULL) {
            snprintf(out, len, "method unknown (request has none)");
        } else {
            snprintf(out, len, "method %.32s not in %zu listed methods (first: %s)", req->method,
                     r->n_methods, r->methods[0].s);
        }
        return;
    case K_PATH:
        if (!f->path_ok) {
            snprintf(out, len, "path unknown (missing or not canonical)");
        } else {
            snprintf(out, len, "path %.200s matches none of %zu globs (first: %.100s)", req->path,
                     r->n_paths, r->paths[0].src);
        }
        return;
    case K_SOURCE:
        if (!f->has_addr) {
            snprintf(out, len, "source address unknown");
        } else {
            char a[INET6_ADDRSTRLEN];
            inet_ntop(f->v6 ? AF_INET6 : AF_INET, f->addr, a, sizeof(a));
            snprintf(out, len, "source %s not in %zu listed networks", a, r->n_sources);
        }
        return;
    case K_TIME:
        snprintf(out, len, "time outside the rule's %zu window(s)", r->n_times);
        return;
    case K_WHEN:
        explain_group(r->when, id, "when", out, len);
        return;
    case K_ANY:
        explain_group(r->any, id, "any", out, len);
        return;
    default:
        snprintf(out, len, "?");
        return;
    }
}

/* ------------------------------------------------------------------------ */

static void verdict_set(struct az_verdict *out, enum gh_decision d, enum gh_reason r,
                        const char *id)
{
    out->decision = d;
    out->reason = r;
    snprintf(out->rule_id, sizeof(out->rule_id), "%s", id != NULL ? id : "");
}

void az_policy_eval(const struct az_policy *p, const struct az_identity *id,
                    const struct az_request_info *req, struct az_verdict *out, char *why,
                    size_t why_len)
{
    struct wbuf w = {why, why != NULL ? why_len : 0, 0, 0};
    if (why != NULL && why_len > 0) {
        why[0] = '\0';
    }
    if (out == NULL) {
        return;
    }
    verdict_set(out, GH_DENY, GH_R_INTERNAL, "");
    if (p == NULL || req == NULL) {
        wadd(&w, "no policy or no request: deny\n");
        return;
    }

    struct req_facts f;
    memset(&f, 0, sizeof(f));
    f.has_addr = client_addr(req->client, &f.v6, f.addr) == 0;
    f.path_ok = req->path != NULL && path_canonical(req->path);
    const char *route = req->route_id;
    uint32_t h = route != NULL ? fnv1a(route, strlen(route)) : 0;

    const struct rule *first_allow = NULL, *first_deny = NULL;
    size_t considered = 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct rule *r = &p->rules[i];
        if (!route_applies(r, route, h)) {
            continue;
        }
        considered++;
        /* Without an explanation, skip what cannot change the verdict. */
        if (why == NULL && !r->deny && first_allow != NULL) {
            continue;
        }
        enum comp k;
        enum tv v = eval_rule(r, id, req, &f, &k);
        int match = r->deny ? v != TV_FALSE : v == TV_TRUE;
        if (match && r->deny && first_deny == NULL) {
            first_deny = r;
            if (why == NULL) {
                break; /* any matching deny wins */
            }
        }
        if (match && !r->deny && first_allow == NULL) {
            first_allow = r;
        }
        if (why != NULL) {
            char d[400];
            const char *eff = r->deny ? "deny" : "allow";
            if (v == TV_TRUE) {
                wadd(&w, "rule %s (%s, line %d): match\n", r->id, eff, r->line);
            } else {
                explain_comp(r, k, id, req, &f, d, sizeof(d));
                if (r->deny && v == TV_UNKNOWN) {
                    wadd(&w, "rule %s (%s, line %d): match (fail closed): %s\n", r->id, eff,
                         r->line, d);
                } else {
                    wadd(&w, "rule %s (%s, line %d): no match: %s\n", r->id, eff, r->line, d);
                }
            }
        }
    }
    if (first_deny != NULL) {
        verdict_set(out, GH_DENY, GH_R_POLICY_DENY, first_deny->id);
        wadd(&w, "result: deny by rule %s (a matching deny overrides any allow)\n", first_deny->id);
    } else if (first_allow != NULL) {
        verdict_set(out, GH_ALLOW, GH_R_ALLOW, first_allow->id);
        wadd(&w, "result: allow by rule %s (first matching allow)\n", first_allow->id);
    } else {
        verdict_set(out, GH_DENY, GH_R_POLICY_NO_MATCH, "");
        wadd(&w,
             "result: deny, no rule matched (default deny; %zu of %zu rules apply to route "
             "%.100s)\n",
             considered, p->n_rules, route != NULL ? route : "(none)");
    }
}
