/*
 * test_tui_text.c: what gatehousectl does to untrusted text before a
 * terminal sees it (tui/text.c, compiled into this test directly: the tui
 * target is an executable, and text.c needs nothing but libc).
 *
 * The inputs are what a client can put into a request path, a certificate
 * subject or a token claim: control characters, invalid UTF-8, bidi
 * overrides, zero-width and invisible characters that make one path look
 * like another, identities that share a long prefix, multi-byte and wide
 * characters at a cut, and NumericDate claims far outside any real time.
 * Every result is also checked to be valid UTF-8 and to have the width it
 * claims.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tui/text.c"

/* ---- helpers ------------------------------------------------------------------ */

/* Is s valid UTF-8 (no cut sequence at the end, nothing overlong)? */
static int valid_utf8(const char *s)
{
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (l == 0) {
            return 0;
        }
        i += l;
    }
    return 1;
}

/* cp as UTF-8 into buf (at least 5 bytes). */
static const char *enc(uint32_t cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        buf[1] = '\0';
    } else if (cp < 0x800) {
        buf[0] = (char)(0xc0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3f));
        buf[2] = '\0';
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xe0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (char)(0x80 | (cp & 0x3f));
        buf[3] = '\0';
    } else {
        buf[0] = (char)(0xf0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        buf[3] = (char)(0x80 | (cp & 0x3f));
        buf[4] = '\0';
    }
    return buf;
}

static void sanitize_is(const char *in, const char *want)
{
    char out[256];
    assert_string_equal(tui_sanitize(in, out, sizeof(out)), want);
}

/* "a" + cp + "b" must show as "a?b". */
static void unsafe_is_replaced(uint32_t cp)
{
    char c[8], in[16], out[16];
    snprintf(in, sizeof(in), "a%sb", enc(cp, c));
    tui_sanitize(in, out, sizeof(out));
    if (strcmp(out, "a?b") != 0) {
        fail_msg("U+%04X passed the sanitizer (got \"%s\")", (unsigned)cp, out);
    }
    char cell[32];
    tui_text_cell(in, 10, 0, cell, sizeof(cell));
    if (strcmp(cell, "a?b") != 0) {
        fail_msg("U+%04X passed tui_text_cell (got \"%s\")", (unsigned)cp, cell);
    }
}

/* ---- the sanitizer -------------------------------------------------------------- */

static void test_sanitize_controls(void **state)
{
    (void)state;
    sanitize_is("/plain/path?q=1", "/plain/path?q=1");
    sanitize_is(NULL, "");
    sanitize_is("a\x1b[31mred", "a?[31mred");       /* ESC */
    sanitize_is("a\rb\nc\td\x7f", "a?b?c?d?");      /* CR, LF, TAB, DEL */
    sanitize_is("a\xc2\x85z", "a?z");               /* U+0085 NEL (C1) */
    sanitize_is("a\xc2\x9b[31m", "a?[31m");         /* U+009B CSI (C1) */
    sanitize_is("a\xc0\xafz", "a??z");              /* overlong '/' */
    sanitize_is("a\x80z", "a?z");                   /* lone continuation byte */
    sanitize_is("a\xed\xa0\x80z", "a???z");         /* UTF-16 surrogate */
    sanitize_is("a\xf4\x90\x80\x80z", "a????z");    /* above U+10FFFF */
    sanitize_is("a\xe2\x82", "a??");                /* cut sequence */
    sanitize_is("\xe2\x80\xaegnp.exe", "?gnp.exe"); /* U+202E RIGHT-TO-LEFT OVERRIDE */
    /* Ordinary text in any script passes unchanged. */
    const char *fine[] = {
        "J\xc3\xbcrgen M\xc3\xbcller",      /* Jürgen Müller */
        "Jos\xc3\xa9",                      /* José, precomposed */
        "Jose\xcc\x81",                     /* José, combining acute (U+0301) */
        "\xe5\x90\x8d\xe5\x89\x8d",         /* 名前 */
        "\xce\xa9\xce\xbb",                 /* Ωλ */
        "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85", /* سلام */
        "\xf0\x9f\x98\x80",                 /* U+1F600 */
        "CN=ops-admin,O=Example\\, Inc.",
    };
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        sanitize_is(fine[i], fine[i]);
    }
}

/* A path with an invisible character in it is a different path: it must not
 * display as the one it imitates. */
static void test_sanitize_invisible(void **state)
{
    (void)state;
    char out[64];
    tui_sanitize("/app/ad\xe2\x80\x8bmin", out, sizeof(out)); /* U+200B */
    assert_string_equal(out, "/app/ad?min");
    assert_string_not_equal(out, "/app/admin");
    tui_sanitize("CN=ad\xef\xbb\xbfmin", out, sizeof(out)); /* U+FEFF */
    assert_string_equal(out, "CN=ad?min");
    tui_sanitize("alice\xf3\xa0\x80\x81\xf3\xa0\x81\xa1", out, sizeof(out)); /* tags */
    assert_string_equal(out, "alice??");
    tui_sanitize("a\xcc\xb8z", out, sizeof(out)); /* U+0338 LONG SOLIDUS OVERLAY */
    assert_string_equal(out, "a?z");

    /* Every one the review named, and the neighbours that do the same. */
    static const uint32_t ranges[][2] = {
        {0x0000, 0x001f},   {0x007f, 0x009f},   {0x00ad, 0x00ad},   {0x0334, 0x0338},
        {0x034f, 0x034f},   {0x061c, 0x061c},   {0x115f, 0x1160},   {0x17b4, 0x17b5},
        {0x180b, 0x180f},   {0x200b, 0x200f},   {0x2028, 0x2029},   {0x202a, 0x202e},
        {0x2060, 0x2064},   {0x2066, 0x2069},   {0x206a, 0x206f},   {0x20d2, 0x20d3},
        {0x20d8, 0x20da},   {0x20e5, 0x20e6},   {0x20ea, 0x20eb},   {0x3164, 0x3164},
        {0xfe00, 0xfe0f},   {0xfeff, 0xfeff},   {0xffa0, 0xffa0},   {0xfff9, 0xfffb},
        {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0000, 0xe007f}, {0xe0100, 0xe01ef},
    };
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (uint32_t cp = ranges[r][0]; cp <= ranges[r][1]; cp++) {
            if (cp == 0) {
                continue; /* ends the C string */
            }
            unsafe_is_replaced(cp);
        }
    }
    /* Visible neighbours stay: hair space, narrow no-break space, real
     * accents and the combining marks next to the overlays, ideographic
     * space, U+FFFD. */
    static const uint32_t keep[] = {0x200a, 0x202f, 0x0301, 0x0333, 0x0339, 0x3000, 0xfffd};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        char c[8], in[16];
        snprintf(in, sizeof(in), "a%sb", enc(keep[i], c));
        tui_sanitize(in, out, sizeof(out));
        assert_string_equal(out, in);
    }
}

static void test_sanitize_cut(void **state)
{
    (void)state;
    char out[8];
    /* Silent variant: cut on a character boundary. */
    assert_string_equal(tui_sanitize("abcdefghij", out, sizeof(out)), "abcdefg");
    assert_string_equal(tui_sanitize("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", out, 6),
                        "\xc3\xa9\xc3\xa9");
    /* Marked variant: a cut always shows. */
    assert_string_equal(tui_sanitize_marked("abc", out, sizeof(out)), "abc");
    assert_string_equal(tui_sanitize_marked("abcdefg", out, sizeof(out)), "abcdefg");
    assert_string_equal(tui_sanitize_marked("abcdefgh", out, sizeof(out)), "abcdef~");
    assert_string_equal(tui_sanitize_marked("abcdefgh", out, 2), "~");
    assert_string_equal(tui_sanitize_marked("abcdefgh", out, 1), "");
    /* é is two bytes: the mark replaces whole characters. */
    const char *e4 = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    assert_string_equal(tui_sanitize_marked(e4, out, 6), "\xc3\xa9\xc3\xa9~");
    assert_string_equal(tui_sanitize_marked(e4, out, 5), "\xc3\xa9~");
    assert_string_equal(tui_sanitize_marked(e4, out, 4), "\xc3\xa9~");
    assert_string_equal(tui_sanitize_marked(e4, out, 3), "~");
    for (size_t len = 1; len <= 10; len++) {
        tui_sanitize_marked(e4, out, len > sizeof(out) ? sizeof(out) : len);
        assert_true(valid_utf8(out));
    }
}

/* ---- width, fit, cells -------------------------------------------------------------- */

static void test_width_and_fit(void **state)
{
    (void)state;
    assert_int_equal(tui_text_width(""), 0);
    assert_int_equal(tui_text_width("alice"), 5);
    assert_int_equal(tui_text_width("J\xc3\xbcrgen"), 6);
    assert_int_equal(tui_text_width("\xe5\x90\x8d\xe5\x89\x8d"), 4); /* wide */
    assert_int_equal(tui_text_width("Jose\xcc\x81"), 4);             /* combining */
    assert_int_equal(tui_text_width("ad\xe2\x80\x8bmin"), 6);        /* shown as '?' */
    assert_int_equal(tui_text_width("a\x80z"), 3);

    assert_int_equal(tui_text_fit("abcdef", 3, 100), 3);
    assert_int_equal(tui_text_fit("abcdef", 100, 4), 4);
    assert_int_equal(tui_text_fit("\xc3\xa9\xc3\xa9\xc3\xa9", 10, 5), 4);  /* never half a char */
    assert_int_equal(tui_text_fit("\xe5\x90\x8d\xe5\x89\x8d", 3, 100), 3); /* one wide char */
    assert_int_equal(tui_text_fit("\xe5\x90\x8d", 1, 100), 0);
    assert_int_equal(tui_text_fit("Jose\xcc\x81x", 4, 100), 6); /* the accent stays on e */
    assert_int_equal(tui_text_fit("", 10, 10), 0);
}

static void cell_is(const char *s, size_t w, int pad, const char *want)
{
    char out[256];
    tui_text_cell(s, w, pad, out, sizeof(out));
    assert_string_equal(out, want);
    assert_true(valid_utf8(out));
    if (pad) {
        assert_int_equal(tui_text_width(out), w);
    } else {
        assert_true(tui_text_width(out) <= w);
    }
}

/* The --follow line and the tables cut identities through this: a cut is
 * by display width, on a character boundary, and always marked. */
static void test_cell(void **state)
{
    (void)state;
    cell_is("alice", 8, 1, "alice   ");
    cell_is("alice", 8, 0, "alice");
    cell_is("alice", 5, 1, "alice");
    cell_is("alice!", 5, 1, "alic~");
    cell_is("alice", 1, 1, "~");
    cell_is("", 3, 1, "   ");
    cell_is(NULL, 3, 1, "   ");
    cell_is("alice", 0, 1, "");

    /* Two subjects that differ after column 20 both show they were cut;
     * neither passes for a complete 20-column name. */
    char a[64], b[64];
    tui_text_cell("CN=svc-deployer-production-1", 20, 1, a, sizeof(a));
    tui_text_cell("CN=svc-deployer-production-2", 20, 1, b, sizeof(b));
    assert_string_equal(a, "CN=svc-deployer-pro~");
    assert_string_equal(b, a);
    cell_is("CN=svc-deployer-pro", 20, 1, "CN=svc-deployer-pro ");
    /* Differing within the width: different cells. */
    tui_text_cell("CN=svc-a-production", 20, 1, a, sizeof(a));
    tui_text_cell("CN=svc-b-production", 20, 1, b, sizeof(b));
    assert_string_not_equal(a, b);

    /* 25 x "ü" (2 bytes, 1 column each): a 20-byte cut would be 10 of them;
     * by width it is 19 and the mark. */
    char u[64] = "";
    for (int i = 0; i < 25; i++) {
        strcat(u, "\xc3\xbc");
    }
    char want[64] = "";
    for (int i = 0; i < 19; i++) {
        strcat(want, "\xc3\xbc");
    }
    strcat(want, "~");
    cell_is(u, 20, 1, want);
    /* An odd byte budget never splits a character either. */
    tui_text_cell(u, 20, 0, a, 8);
    assert_string_equal(a, "\xc3\xbc\xc3\xbc\xc3\xbc~");

    /* Wide characters: 12 x 名 (24 columns) in 20 -> 9 of them (18), the
     * mark, one space of padding. */
    char wide[64] = "";
    for (int i = 0; i < 12; i++) {
        strcat(wide, "\xe5\x90\x8d");
    }
    char wwant[64] = "";
    for (int i = 0; i < 9; i++) {
        strcat(wwant, "\xe5\x90\x8d");
    }
    strcat(wwant, "~ ");
    cell_is(wide, 20, 1, wwant);
    cell_is("\xe5\x90\x8d\xe5\x90\x8d", 2, 1, "~ ");

    /* What the cell shows is safe even if its input was not sanitized. */
    cell_is("a\x1b[2Jb", 10, 0, "a?[2Jb");
    cell_is("a\xe2\x80\x8bz", 10, 0, "a?z");
    cell_is("a\xffz", 10, 0, "a?z");

    /* A small buffer cuts earlier, still marked and terminated. */
    tui_text_cell("abcdefghij", 8, 0, a, 5);
    assert_string_equal(a, "abc~");
    tui_text_cell("abcdefghij", 8, 1, a, 5);
    assert_string_equal(a, "~   ");
    tui_text_cell("abcdefghij", 8, 0, a, 1);
    assert_string_equal(a, "");
    /* The documented size is always enough: strlen + width + 2. */
    tui_text_cell("abcdefghij", 8, 1, a, 10 + 8 + 2);
    assert_string_equal(a, "abcdefg~");
    tui_text_cell("abc", 8, 1, a, 3 + 8 + 2);
    assert_string_equal(a, "abc     ");
}

/* ---- times --------------------------------------------------------------------------- */

/* NumericDate claims come from tokens and may hold any integer; turning
 * one into microseconds must never overflow (undefined behaviour). */
static void test_epoch(void **state)
{
    (void)state;
    char t[64], want[64];
    tui_fmt_epoch(1795332221, t, sizeof(t));
    assert_string_equal(t, "2026-11-22 07:23:41");
    tui_fmt_time(INT64_C(1795332221) * 1000000, 1, want, sizeof(want));
    assert_string_equal(t, want);
    tui_fmt_epoch(TUI_EPOCH_MAX_S, t, sizeof(t));
    assert_string_equal(t, "9999-12-31 23:59:59");

    static const int64_t bad[] = {
        TUI_EPOCH_MAX_S + 1,
        INT64_C(9223372036854),  /* the last whose microseconds fit */
        INT64_C(9223372036855),  /* the first whose microseconds overflow */
        INT64_C(10000000000000), /* 1e13 */
        INT64_C(18448544073710), /* x 1000000 wraps to 2027-01-15 08:00:00 */
        INT64_MAX,
        -1,
        INT64_MIN,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tui_fmt_epoch(bad[i], t, sizeof(t));
        if (strcmp(t, "out of range") != 0) {
            fail_msg("claim %lld shown as \"%s\"", (long long)bad[i], t);
        }
    }
    tui_fmt_time(-5, 1, t, sizeof(t));
    assert_string_equal(t, "-");
    tui_fmt_time(0, 0, t, sizeof(t));
    assert_string_equal(t, "-");
}

int main(void)
{
    /* Widths need a UTF-8 locale (gatehousectl takes it from the
     * environment); times are checked in UTC. */
    if (setlocale(LC_CTYPE, "C.UTF-8") == NULL && setlocale(LC_CTYPE, "C.utf8") == NULL) {
        fprintf(stderr, "test_tui_text: no C.UTF-8 locale\n");
        return 1;
    }
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize_controls),
        cmocka_unit_test(test_sanitize_invisible),
        cmocka_unit_test(test_sanitize_cut),
        cmocka_unit_test(test_width_and_fit),
        cmocka_unit_test(test_cell),
        cmocka_unit_test(test_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
