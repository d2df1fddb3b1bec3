/*
 * fuzz_tui_text.c: gatehousectl's last step before client-chosen text
 * (paths, hosts, certificate subjects, claims) reaches an operator's
 * terminal (tui/text.c): the UTF-8 decoder, the sanitizer, width, cutting
 * to a column with a mark. The first input byte picks the column width and
 * buffer size, the rest is the text. Checks: no crash; every output is
 * terminated inside its buffer and is valid UTF-8 with no C0/C1 control,
 * DEL or bidi override left; a cut cell is marked and never wider than
 * asked. Links gh_base (mapping: tui_text gh_base); text.c is compiled in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tui/text.c"

/* Valid UTF-8 with no control, DEL, C1 or bidi control code point. */
static void check_clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n >= cap) {
        abort(); /* not terminated inside the buffer */
    }
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k;
        if (p[i] < 0x80) {
            cp = p[i];
            k = 1;
        } else if ((p[i] & 0xe0) == 0xc0 && i + 1 < n) {
            cp = ((uint32_t)(p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f);
            k = 2;
        } else if ((p[i] & 0xf0) == 0xe0 && i + 2 < n) {
            cp = ((uint32_t)(p[i] & 0x0f) << 12) | ((uint32_t)(p[i + 1] & 0x3f) << 6) |
                 (p[i + 2] & 0x3f);
            k = 3;
        } else if ((p[i] & 0xf8) == 0xf0 && i + 3 < n) {
            cp = ((uint32_t)(p[i] & 0x07) << 18) | ((uint32_t)(p[i + 1] & 0x3f) << 12) |
                 ((uint32_t)(p[i + 2] & 0x3f) << 6) | (p[i + 3] & 0x3f);
            k = 4;
        } else {
            abort(); /* invalid or truncated sequence */
        }
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) {
                abort();
            }
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
            (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
            abort(); /* a control or bidi override reached the output */
        }
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t w = (size_t)(data[0] & 31) + 1;
    size_t cap = (size_t)(data[0] >> 5) * 8 + 8;
    char *in = malloc(size);
    if (in == NULL) {
        return 0;
    }
    memcpy(in, data + 1, size - 1);
    in[size - 1] = '\0';
    char out[512], small[72];
    tui_sanitize(in, out, sizeof(out));
    check_clean(out, sizeof(out));
    tui_sanitize_marked(in, small, cap);
    check_clean(small, cap);
    tui_text_cell(in, w, 1, out, sizeof(out));
    check_clean(out, sizeof(out));
    if (tui_text_width(out) > w) {
        abort(); /* a cell wider than its column */
    }
    tui_text_cell(in, w, 0, small, cap);
    check_clean(small, cap);
    (void)tui_text_fit(in, w, cap);
    free(in);
    return 0;
}
