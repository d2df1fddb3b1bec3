/*
 * err.c: struct gh_err and struct gh_errlist helpers. Messages are truncated
 * to their fixed buffers on purpose: an error message is never a reason to
 * allocate, and truncation of a human message loses no data.
 */
#include "gateway/base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int gh_err_set(struct gh_err *err, enum gh_reason reason, const char *fmt, ...)
{
    if (err == NULL) {
        return -1;
    }
    err->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

void gh_err_clear(struct gh_err *err)
{
    if (err != NULL) {
        err->reason = GH_R_ALLOW;
        err->msg[0] = '\0';
    }
}

void gh_errlist_add(struct gh_errlist *l, const char *file, int line, int col, const char *fmt,
                    ...)
{
    if (l->n >= GH_ERRLIST_MAX) {
        l->dropped++;
        return;
    }
    char *m = l->msg[l->n++];
    int k = snprintf(m, sizeof(l->msg[0]), "%s:%d:%d: ", file ? file : "<input>", line, col);
    if (k < 0 || (size_t)k >= sizeof(l->msg[0])) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m + k, sizeof(l->msg[0]) - (size_t)k, fmt, ap);
    va_end(ap);
}

void gh_errlist_format(const struct gh_errlist *l, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0) {
        return;
    }
    buf[0] = '\0';
    for (int i = 0; i < l->n && off + 1 < len; i++) {
        int k = snprintf(buf + off, len - off, "%s\n", l->msg[i]);
        if (k < 0) {
            break;
        }
        off += (size_t)k;
    }
    if (l->dropped > 0 && off + 1 < len) {
        snprintf(buf + off, len - off, "(%d more errors)\n", l->dropped);
    }
}
