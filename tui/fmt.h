/*
 * fmt.h: what the CLI and the console share to turn admin API JSON into
 * text: tolerant field getters, time and size formatting, duration
 * parsing, and a text table for the CLI. Terminal-safe strings, widths and
 * cuts are in text.h (included here).
 *
 * Owns: the table's cells (freed by tui_table_free). Must not: print
 * anything from the server without passing it through tui_sanitize()
 * (decision rows carry client-controlled text: an escape sequence in a
 * request path must not repaint an operator's terminal).
 *
 * Threads: single-threaded use; no global state except the locale.
 */
#ifndef TUI_FMT_H
#define TUI_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "gateway/base/err.h"
#include "tui/text.h"

/* Exit statuses of gatehousectl (docs/CONSOLE.md). */
#define TUI_EXIT_OK 0
#define TUI_EXIT_REFUSED 1 /* refused, not found, denied, tampered, invalid */
#define TUI_EXIT_USAGE 2
#define TUI_EXIT_UNREACHABLE 3 /* cannot reach the gateway (connect, TLS, timeout) */
#define TUI_EXIT_SERVER 4      /* server error (5xx, malformed answer) */

/* Field key of o as text into buf: strings as they are (sanitized), numbers
 * and booleans in JSON form, null/missing as dflt. Returns buf. */
const char *tui_jtext(const json_t *o, const char *key, const char *dflt, char *buf, size_t len);
/* The same, but a string that does not fit in buf ends with TUI_CUT_MARK. */
const char *tui_jtext_marked(const json_t *o, const char *key, const char *dflt, char *buf,
                             size_t len);
/* Integer value of key (integer, real or decimal string), else dflt. */
int64_t tui_jint(const json_t *o, const char *key, int64_t dflt);
/* Raw string value of key (not sanitized), or NULL when not a string. */
const char *tui_jstr(const json_t *o, const char *key);
/* Real value of key (integer or real), else dflt. */
double tui_jreal(const json_t *o, const char *key, double dflt);

/* "4s", "12m", "3h", "5d" (age of us relative to now_us); "-" for 0. */
void tui_fmt_ago(int64_t us, int64_t now_us, char *buf, size_t len);
/* "3d04h", "1h02m", "4m05s", "12s". */
void tui_fmt_dur(int64_t seconds, char *buf, size_t len);
/* "12.3k", "4.0M" for counts (bytes=0) or "12.3KiB" (bytes=1). */
void tui_fmt_count(uint64_t n, int bytes, char *buf, size_t len);

/* "90", "90s", "15m", "1h", "7d", "2w" -> seconds. 0 ok, -1 bad. */
int tui_parse_dur(const char *s, int64_t *seconds) GH_WUR;
/* Non-negative decimal integer that fits in int64_t. 0 ok, -1 bad. */
int tui_parse_int(const char *s, int64_t *out) GH_WUR;

/* ---- text tables (CLI) --------------------------------------------------- */
struct tui_table;
struct tui_table *tui_table_new(int ncols, const char *const *headers);
/* Set the widest a column may get (longer cells are cut with "~"). */
void tui_table_max(struct tui_table *t, int col, int width);
/* Append a row of ncols cells (copied and sanitized). 0, or -1 (no memory). */
int tui_table_add(struct tui_table *t, const char *const *cells) GH_WUR;
void tui_table_print(const struct tui_table *t, FILE *f);
void tui_table_free(struct tui_table *t);

#endif
