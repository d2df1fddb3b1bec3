/*
 * err.h: the error type every fallible function fills.
 *
 * Owns: struct gh_err, a stable reason code plus a short log-safe message
 * (never a secret, token or key). Callers own the struct (stack is fine);
 * nothing in it is heap-allocated, so there is nothing to free.
 *
 * Thread rules: none; each thread uses its own struct.
 */
#ifndef GH_ERR_H
#define GH_ERR_H

#include <stddef.h>

#include "gateway/base/reason.h"

#define GH_WUR __attribute__((warn_unused_result))
#define GH_PRINTF(a, b) __attribute__((format(printf, a, b)))

struct gh_err {
    enum gh_reason reason; /* GH_R_INTERNAL when no better code applies */
    char msg[256];
};

/* Fill err (may be NULL) with a reason and printf-style message; returns -1
 * so a caller can write `return gh_err_set(err, ...);`. */
int gh_err_set(struct gh_err *err, enum gh_reason reason, const char *fmt, ...) GH_PRINTF(3, 4);
void gh_err_clear(struct gh_err *err);

/*
 * A list of `file:line:col: message` errors collected while loading a config
 * or policy file, so an operator sees every problem in one go.
 */
#define GH_ERRLIST_MAX 32
struct gh_errlist {
    int n;          /* entries filled (<= GH_ERRLIST_MAX) */
    int dropped;    /* errors beyond the maximum, counted not stored */
    char msg[GH_ERRLIST_MAX][320];
};
void gh_errlist_add(struct gh_errlist *l, const char *file, int line, int col, const char *fmt,
                    ...) GH_PRINTF(5, 6);
/* Writes all entries, one per line, to buf (always NUL-terminated). */
void gh_errlist_format(const struct gh_errlist *l, char *buf, size_t len);

#endif
