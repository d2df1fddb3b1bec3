/*
 * log.c: stderr logging. Each line is built in a stack buffer and written
 * with a single write(2) so lines from different threads never interleave.
 * Control characters are escaped: log lines may carry client-supplied text
 * (paths, subjects) and must not let a client forge log lines.
 */
#include "gateway/base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int level = GH_LOG_INFO;
static const char *const lvl_names[] = {"debug", "info", "warn", "error"};

void gh_log_set_level(enum gh_log_level lvl)
{
    atomic_store(&level, (int)lvl);
}

int gh_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, lvl_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void gh_log(enum gh_log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&level)) {
        return;
    }
    char raw[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);

    char line[1200];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int off = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, ts.tv_nsec / 1000000, lvl_names[lvl]);
    for (const unsigned char *p = (const unsigned char *)raw; *p && off < (int)sizeof(line) - 6;
         p++) {
        if (*p < 0x20 || *p == 0x7f) {
            off += snprintf(line + off, sizeof(line) - (size_t)off, "\\x%02x", *p);
        } else {
            line[off++] = (char)*p;
        }
    }
    line[off++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)off);
    (void)w;
}
