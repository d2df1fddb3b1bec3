/*
 * log.h: the process log (stderr, one line per event, logfmt-ish).
 *
 * Owns: formatting and the global level. Must not: be handed a raw token,
 * cookie or key -- log gh_hash_prefix() of them instead.
 * Thread rules: gh_log is safe from any thread (one write(2) per line).
 */
#ifndef GH_LOG_H
#define GH_LOG_H

#include <stddef.h>

#include "gateway/base/err.h"

enum gh_log_level { GH_LOG_DEBUG = 0, GH_LOG_INFO, GH_LOG_WARN, GH_LOG_ERROR };

void gh_log_set_level(enum gh_log_level lvl);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int gh_log_level_parse(const char *s);
void gh_log(enum gh_log_level lvl, const char *fmt, ...) GH_PRINTF(2, 3);

#define GH_DEBUG(...) gh_log(GH_LOG_DEBUG, __VA_ARGS__)
#define GH_INFO(...) gh_log(GH_LOG_INFO, __VA_ARGS__)
#define GH_WARN(...) gh_log(GH_LOG_WARN, __VA_ARGS__)
#define GH_ERROR(...) gh_log(GH_LOG_ERROR, __VA_ARGS__)

#endif
