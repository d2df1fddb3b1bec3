/*
 * text.c: turning untrusted text into terminal text. Everything gatehousectl
 * prints from the gateway in text mode, and everything the console draws,
 * has passed tui_sanitize (or tui_text_cell) first.
 *
 * Two threats shape it. An escape sequence in a request path must not
 * repaint the operator's terminal, so control characters (C0, DEL, C1) and
 * invalid UTF-8 never get through. And a value must not read as a different
 * value: bidi overrides reorder what follows them, and zero-width or
 * invisible characters make "/app/ad<U+200B>min" look exactly like
 * "/app/admin" (a different path, which a policy rule or a grep for the
 * real one does not match), so those become a visible '?' as well (Unicode
 * TR #36, "Visual Security Issues"). Width-limited output cuts on
 * character boundaries and always leaves a mark, because two subjects that
 * share their first 19 columns must not print identically.
 *
 * Only libc: the unit test (tests/unit/test_tui_text.c) compiles this file
 * on its own.
 */
#include "tui/text.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

/* Decode one UTF-8 sequence at s (n bytes available). Returns its length
 * and sets *cp, or 0 if invalid (overlong, surrogate, > U+10FFFF, cut). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) {
        return 0;
    }
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    uint32_t min;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return len;
}

/* Code points that must not reach a terminal as themselves. */
static const struct {
    uint32_t lo, hi;
} unsafe_ranges[] = {
    {0x0000, 0x001f},   /* C0 controls */
    {0x007f, 0x009f},   /* DEL; C1 controls (U+009B is CSI to some terminals) */
    {0x00ad, 0x00ad},   /* soft hyphen: invisible unless a line breaks there */
    {0x0334, 0x0338},   /* combining overlays: a stroke through a letter reads as another */
    {0x034f, 0x034f},   /* combining grapheme joiner */
    {0x061c, 0x061c},   /* Arabic letter mark (bidi) */
    {0x115f, 0x1160},   /* Hangul choseong/jungseong fillers */
    {0x17b4, 0x17b5},   /* Khmer inherent vowels (invisible) */
    {0x180b, 0x180f},   /* Mongolian variation selectors and vowel separator */
    {0x200b, 0x200f},   /* zero-width space, non-joiner, joiner; LRM, RLM */
    {0x2028, 0x202e},   /* line and paragraph separators; bidi embeddings, overrides */
    {0x2060, 0x206f},   /* word joiner, invisible operators, bidi isolates, deprecated */
    {0x20d2, 0x20d3},   /* combining vertical line overlays */
    {0x20d8, 0x20da},   /* combining ring overlays */
    {0x20e5, 0x20e6},   /* combining reverse solidus, double stroke overlays */
    {0x20ea, 0x20eb},   /* combining arrow, long double solidus overlays */
    {0x3164, 0x3164},   /* Hangul filler */
    {0xfe00, 0xfe0f},   /* variation selectors */
    {0xfeff, 0xfeff},   /* zero-width no-break space (byte order mark) */
    {0xffa0, 0xffa0},   /* halfwidth Hangul filler */
    {0xfff9, 0xfffb},   /* interlinear annotation controls */
    {0x1bca0, 0x1bca3}, /* shorthand format controls */
    {0x1d173, 0x1d17a}, /* musical symbol format controls */
    {0xe0000, 0xe007f}, /* tag characters */
    {0xe0100, 0xe01ef}, /* variation selectors supplement */
};

static int unsafe_cp(uint32_t cp)
{
    if (cp >= 0x20 && cp < 0x7f) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(unsafe_ranges) / sizeof(unsafe_ranges[0]); i++) {
        if (cp >= unsafe_ranges[i].lo && cp <= unsafe_ranges[i].hi) {
            return 1;
        }
    }
    return 0;
}

/* Columns a safe code point takes (printable ASCII 1; wcwidth otherwise,
 * with what it cannot tell -- unassigned, or a non-UTF-8 locale -- as 1). */
static size_t cp_width(uint32_t cp)
{
    if (cp < 0x80) {
        return 1;
    }
    int w = wcwidth((wchar_t)cp);
    return w < 0 ? 1 : (size_t)w;
}

/* One character of s (n bytes left) as it is shown: *len bytes of input,
 * *shown its text (s itself, or "?" for invalid or unsafe input), *slen
 * bytes of that, *cols columns. */
static void next_shown(const char *s, size_t n, size_t *len, const char **shown, size_t *slen,
                       size_t *cols)
{
    uint32_t cp = 0;
    size_t l = utf8_next((const unsigned char *)s, n, &cp);
    if (l == 0 || unsafe_cp(cp)) {
        *len = l == 0 ? 1 : l;
        *shown = "?";
        *slen = 1;
        *cols = 1;
        return;
    }
    *len = l;
    *shown = s;
    *slen = l;
    *cols = cp_width(cp);
}

/* Sanitize in into out; *cut = 1 when not all of it fitted. Returns the
 * length written. */
static size_t sanitize(const char *in, char *out, size_t outlen, int *cut)
{
    const char *s = in != NULL ? in : "";
    size_t n = strlen(s);
    size_t i = 0;
    size_t o = 0;
    *cut = 0;
    while (i < n) {
        size_t l, sl, cols;
        const char *shown;
        next_shown(s + i, n - i, &l, &shown, &sl, &cols);
        if (o + sl >= outlen) {
            *cut = 1;
            break;
        }
        memcpy(out + o, shown, sl);
        o += sl;
        i += l;
    }
    out[o] = '\0';
    return o;
}

char *tui_sanitize(const char *in, char *out, size_t outlen)
{
    int cut;
    if (outlen > 0) {
        sanitize(in, out, outlen, &cut);
    }
    return out;
}

char *tui_sanitize_marked(const char *in, char *out, size_t outlen)
{
    int cut;
    if (outlen == 0) {
        return out;
    }
    size_t o = sanitize(in, out, outlen, &cut);
    if (!cut || outlen < 2) {
        return out;
    }
    /* The output is valid UTF-8: step back whole characters until the mark
     * and the terminator fit. */
    while (o > 0 && o + 2 > outlen) {
        do {
            o--;
        } while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80);
    }
    out[o++] = TUI_CUT_MARK;
    out[o] = '\0';
    return out;
}

size_t tui_text_width(const char *s)
{
    size_t n = strlen(s);
    size_t i = 0;
    size_t w = 0;
    while (i < n) {
        size_t l, sl, cols;
        const char *shown;
        next_shown(s + i, n - i, &l, &shown, &sl, &cols);
        w += cols;
        i += l;
    }
    return w;
}

size_t tui_text_fit(const char *s, size_t cols, size_t bytes)
{
    size_t n = strlen(s);
    size_t i = 0;
    size_t used = 0;
    while (i < n) {
        size_t l, sl, c;
        const char *shown;
        next_shown(s + i, n - i, &l, &shown, &sl, &c);
        if (used + c > cols || i + l > bytes) {
            break;
        }
        used += c;
        i += l;
    }
    return i;
}

char *tui_text_cell(const char *s, size_t w, int pad, char *out, size_t outlen)
{
    if (outlen == 0) {
        return out;
    }
    out[0] = '\0';
    if (w == 0) {
        return out; /* no column to show anything in, not even the mark */
    }
    if (s == NULL) {
        s = "";
    }
    size_t n = strlen(s);
    size_t sw = tui_text_width(s);
    /* Whole: the text and its padding fit in columns and in out. Invalid
     * and unsafe input shrink to one byte ('?') each, so n bytes suffice. */
    int whole = sw <= w && n + (pad ? w - sw : 0) < outlen;
    size_t room = whole ? w : w - 1; /* columns for text */
    size_t i = 0;
    size_t o = 0;
    size_t used = 0;
    while (i < n) {
        size_t l, sl, c;
        const char *shown;
        next_shown(s + i, n - i, &l, &shown, &sl, &c);
        if (used + c > room) {
            break;
        }
        /* Bytes still needed after this character: the mark, the padding
         * and the terminator. */
        size_t after = whole ? (pad ? w - used - c : 0) + 1 : (pad ? w - used - c - 1 : 0) + 2;
        if (o + sl + after > outlen) {
            break;
        }
        memcpy(out + o, shown, sl);
        o += sl;
        used += c;
        i += l;
    }
    if (!whole && o + 2 <= outlen) {
        out[o++] = TUI_CUT_MARK;
        used++;
    }
    while (pad && used < w && o + 1 < outlen) {
        out[o++] = ' ';
        used++;
    }
    out[o] = '\0';
    return out;
}

void tui_fmt_time(int64_t us, int full, char *buf, size_t len)
{
    if (us <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    if (strftime(buf, len, full ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm) == 0 && len > 0) {
        buf[0] = '\0';
    }
}

void tui_fmt_epoch(int64_t seconds, char *buf, size_t len)
{
    /* Checked before multiplying: INT64_MAX / 1000000 is about 9.2e12 s, and
     * a token may carry any integer (signed overflow is undefined). */
    if (seconds < 0 || seconds > TUI_EPOCH_MAX_S) {
        snprintf(buf, len, "out of range");
        return;
    }
    tui_fmt_time(seconds * 1000000, 1, buf, len);
}
