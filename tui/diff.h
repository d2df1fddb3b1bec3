/*
 * diff.h: a line-based unified diff, for "what will change" confirmations
 * of a policy apply and for `gatehousectl policy diff FILE` (the admin API
 * diffs stored versions; a local file is diffed here against the active
 * policy's source).
 *
 * Owns: nothing beyond the returned text. Bounded: inputs up to
 * TUI_DIFF_MAX_LINES lines each, and the part that differs after removing
 * the common head and tail up to TUI_DIFF_MAX_CELLS comparison cells;
 * beyond that it fails with a clear message instead of eating memory.
 * Threads: pure function.
 */
#ifndef TUI_DIFF_H
#define TUI_DIFF_H

#include <stddef.h>

#include "gateway/base/err.h"

#define TUI_DIFF_MAX_LINES 100000
#define TUI_DIFF_MAX_CELLS (16u * 1024u * 1024u)

/* Unified diff (3 lines of context) from text a to text b, with "--- la" /
 * "+++ lb" headers. Returns a malloc'd NUL-terminated string the caller
 * frees -- "" when the texts are equal -- or NULL + err (too large, no
 * memory). */
char *tui_diff(const char *a, size_t alen, const char *b, size_t blen, const char *la,
               const char *lb, struct gh_err *err) GH_WUR;

#endif
