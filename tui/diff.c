/*
 * diff.c: unified diff by longest common subsequence. Policies are a few
 * hundred lines, so after trimming the common head and tail a plain LCS
 * table is small and its result is the minimal diff an operator expects to
 * review; a hard cell limit keeps a hostile or huge input from turning a
 * confirmation prompt into an out-of-memory kill.
 */
#include "tui/diff.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT 3

struct line {
    const char *p;
    size_t n;
};

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap == 0 ? 1024 : b->cap;
        while (nc < b->len + n + 1) {
            nc *= 2;
        }
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Split text into lines (without '\n'). Returns count or -1. */
static long split(const char *t, size_t len, struct line **out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '\n') {
            n++;
        }
    }
    if (len > 0 && t[len - 1] != '\n') {
        n++;
    }
    if (n > TUI_DIFF_MAX_LINES) {
        return -1;
    }
    *out = calloc(n + 1, sizeof(struct line));
    if (*out == NULL) {
        return -1;
    }
    size_t k = 0;
    size_t s = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '\n') {
            (*out)[k].p = t + s;
            (*out)[k].n = i - s;
            k++;
            s = i + 1;
        }
    }
    if (s < len) {
        (*out)[k].p = t + s;
        (*out)[k].n = len - s;
        k++;
    }
    return (long)k;
}

static int line_eq(const struct line *a, const struct line *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

/* An edit script entry: ' ' keep, '-' delete from a, '+' insert from b. */
struct op {
    char kind;
    size_t ai; /* index in a (keep, delete) */
    size_t bi; /* index in b (keep, insert) */
};

static void emit_line(struct sbuf *b, char kind, const struct line *l)
{
    char k[1] = {kind};
    sb_add(b, k, 1);
    sb_add(b, l->p, l->n);
    sb_add(b, "\n", 1);
}

static void emit_hunks(struct sbuf *out, const struct op *ops, size_t nops, const struct line *a,
                       const struct line *b)
{
    size_t i = 0;
    while (i < nops) {
        /* Find the next change. */
        while (i < nops && ops[i].kind == ' ') {
            i++;
        }
        if (i >= nops) {
            break;
        }
        size_t start = i > CONTEXT ? i - CONTEXT : 0;
        /* Extend the hunk while changes are within 2*CONTEXT of each other. */
        size_t end = i;
        size_t last_change = i;
        while (end < nops) {
            if (ops[end].kind != ' ') {
                last_change = end;
            } else if (end - last_change > 2 * CONTEXT) {
                break;
            }
            end++;
        }
        size_t stop = last_change + 1 + CONTEXT;
        if (stop > nops) {
            stop = nops;
        }
        size_t a0 = 0;
        size_t b0 = 0;
        size_t na = 0;
        size_t nb = 0;
        int have_a = 0;
        int have_b = 0;
        for (size_t k = start; k < stop; k++) {
            if (ops[k].kind != '+') {
                if (!have_a) {
                    a0 = ops[k].ai;
                    have_a = 1;
                }
                na++;
            }
            if (ops[k].kind != '-') {
                if (!have_b) {
                    b0 = ops[k].bi;
                    have_b = 1;
                }
                nb++;
            }
        }
        /* Unified format: an empty range names the line before it. */
        if (!have_a) {
            a0 = ops[start].ai;
        }
        if (!have_b) {
            b0 = ops[start].bi;
        }
        char hdr[96];
        snprintf(hdr, sizeof(hdr), "@@ -%zu,%zu +%zu,%zu @@\n", na ? a0 + 1 : a0, na,
                 nb ? b0 + 1 : b0, nb);
        sb_str(out, hdr);
        for (size_t k = start; k < stop; k++) {
            emit_line(out, ops[k].kind, ops[k].kind == '+' ? &b[ops[k].bi] : &a[ops[k].ai]);
        }
        i = stop;
    }
}

char *tui_diff(const char *a, size_t alen, const char *b, size_t blen, const char *la,
               const char *lb, struct gh_err *err)
{
    struct line *al = NULL;
    struct line *bl = NULL;
    uint32_t *tab = NULL;
    struct op *ops = NULL;
    struct sbuf out = {0};
    char *ret = NULL;

    long nal = split(a, alen, &al);
    long nbl = split(b, blen, &bl);
    if (nal < 0 || nbl < 0) {
        gh_err_set(err, GH_R_INTERNAL, "texts too large to diff (max %d lines)",
                   TUI_DIFF_MAX_LINES);
        goto out;
    }
    size_t na = (size_t)nal;
    size_t nb = (size_t)nbl;
    size_t pre = 0;
    while (pre < na && pre < nb && line_eq(&al[pre], &bl[pre])) {
        pre++;
    }
    size_t suf = 0;
    while (suf < na - pre && suf < nb - pre && line_eq(&al[na - 1 - suf], &bl[nb - 1 - suf])) {
        suf++;
    }
    size_t n = na - pre - suf;
    size_t m = nb - pre - suf;
    if ((n + 1) > TUI_DIFF_MAX_CELLS / (m + 1)) {
        gh_err_set(err, GH_R_INTERNAL, "texts too different to diff here (%zu x %zu lines)", n, m);
        goto out;
    }
    /* tab[i][j] = LCS length of a[pre+i..] and b[pre+j..] (middle part). */
    tab = calloc((n + 1) * (m + 1), sizeof(uint32_t));
    ops = calloc(na + nb + 1, sizeof(struct op));
    if (tab == NULL || ops == NULL) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = n; i-- > 0;) {
        for (size_t j = m; j-- > 0;) {
            uint32_t *c = &tab[i * (m + 1) + j];
            if (line_eq(&al[pre + i], &bl[pre + j])) {
                *c = tab[(i + 1) * (m + 1) + j + 1] + 1;
            } else {
                uint32_t d = tab[(i + 1) * (m + 1) + j];
                uint32_t r = tab[i * (m + 1) + j + 1];
                *c = d >= r ? d : r;
            }
        }
    }
    size_t nops = 0;
    for (size_t k = 0; k < pre; k++) {
        ops[nops++] = (struct op){' ', k, k};
    }
    size_t i = 0;
    size_t j = 0;
    while (i < n || j < m) {
        if (i < n && j < m && line_eq(&al[pre + i], &bl[pre + j])) {
            ops[nops++] = (struct op){' ', pre + i, pre + j};
            i++;
            j++;
        } else if (i < n && (j == m || tab[(i + 1) * (m + 1) + j] >= tab[i * (m + 1) + j + 1])) {
            /* Prefer deleting first: "-old" lines read before "+new" ones. */
            ops[nops++] = (struct op){'-', pre + i, pre + j};
            i++;
        } else {
            ops[nops++] = (struct op){'+', pre + i, pre + j};
            j++;
        }
    }
    for (size_t k = 0; k < suf; k++) {
        ops[nops++] = (struct op){' ', na - suf + k, nb - suf + k};
    }
    if (n == 0 && m == 0) {
        ret = calloc(1, 1);
        if (ret == NULL) {
            gh_err_set(err, GH_R_INTERNAL, "out of memory");
        }
        goto out;
    }
    sb_str(&out, "--- ");
    sb_str(&out, la);
    sb_str(&out, "\n+++ ");
    sb_str(&out, lb);
    sb_str(&out, "\n");
    emit_hunks(&out, ops, nops, al, bl);
    if (out.oom) {
        gh_err_set(err, GH_R_INTERNAL, "out of memory");
        goto out;
    }
    ret = out.p;
    out.p = NULL;
out:
    free(out.p);
    free(tab);
    free(ops);
    free(al);
    free(bl);
    return ret;
}
