/*
 * text.h: the last step before text reaches an operator's terminal: UTF-8
 * decoding, the sanitizer, display width, cutting to a width with a visible
 * mark, wrapping, and times. Decision rows and sessions carry text that
 * clients chose (paths, hosts, certificate subjects, claims), so this is
 * where a crafted value is kept from driving the terminal or from reading
 * as something it is not.
 *
 * Owns: nothing; every function writes into the caller's buffer. Must not:
 * split a UTF-8 sequence, shorten a value where a caller asked for a mark
 * without leaving one, or depend on anything beyond libc (the unit test
 * compiles text.c on its own).
 *
 * Threads: pure functions. Display widths come from wcwidth(), which follows
 * the locale's LC_CTYPE (gatehousectl sets it from the environment).
 */
#ifndef TUI_TEXT_H
#define TUI_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The mark that ends a value cut to fit a column or a buffer. */
#define TUI_CUT_MARK '~'

/* Copy in to out replacing what must not reach a terminal with '?': control
 * characters (C0, DEL, C1), invalid UTF-8, bidi overrides and isolates, and
 * zero-width or invisible characters (see unsafe_cp in text.c). A value that
 * does not fit is cut on a character boundary, silently. in NULL reads as
 * "". Returns out (always terminated when outlen > 0). */
char *tui_sanitize(const char *in, char *out, size_t outlen);
/* The same, but a value that does not fit ends with TUI_CUT_MARK (the last
 * characters make room for it), so a cut is never silent. */
char *tui_sanitize_marked(const char *in, char *out, size_t outlen);

/* Display width of a UTF-8 string (East Asian wide as 2, combining marks
 * as 0; invalid bytes and unprintable characters as 1). */
size_t tui_text_width(const char *s);
/* Byte length of the longest prefix of s made of whole characters that is
 * at most cols display columns and at most bytes bytes long. */
size_t tui_text_fit(const char *s, size_t cols, size_t bytes);
/* s as a cell w columns wide, into out: if s is wider it is cut on a
 * character boundary and ends with TUI_CUT_MARK (w - 1 columns of text at
 * most, then the mark); with pad, spaces fill it to w columns. Invalid UTF-8
 * is written as '?'. If outlen is too small for that, the cell is cut
 * earlier (still marked). Returns out. */
char *tui_text_cell(const char *s, size_t w, int pad, char *out, size_t outlen);

/* Local time "YYYY-MM-DD HH:MM:SS" (full=1) or "HH:MM:SS" of a time in
 * microseconds since the epoch; "-" for 0 or less, or when out of range. */
void tui_fmt_time(int64_t us, int full, char *buf, size_t len);
/* Latest second a NumericDate claim may hold and still be shown as a date
 * (9999-12-31 23:59:59 UTC); its microseconds fit in int64_t. */
#define TUI_EPOCH_MAX_S INT64_C(253402300799)
/* A NumericDate claim (iat, exp, nbf, auth_time: seconds since the epoch,
 * RFC 7519 section 2) as a full local time, or "out of range" when it is
 * negative or after TUI_EPOCH_MAX_S -- the claim comes from a token, and
 * multiplying an arbitrary integer into microseconds could overflow. */
void tui_fmt_epoch(int64_t seconds, char *buf, size_t len);

#endif
