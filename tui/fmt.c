/*
 * fmt.c: formatting shared by the CLI and the console. The admin API's JSON
 * shapes are read tolerantly (a missing field prints as "-", a number sent
 * as a string still counts) because the console must keep working across
 * small server-side changes; every string read here is sanitized
 * (text.c) before it is returned, since sessions and decisions carry text
 * that clients chose (paths, hosts, certificate subjects, claims).
 */
#include "tui/fmt.h"

#include <stdlib.h>
#include <string.h>

const char *tui_jstr(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *tui_jtext(const json_t *o, const char *key, const char *dflt, char *buf, size_t len)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (len == 0) {
        return buf;
    }
    if (json_is_string(v)) {
        tui_sanitize(json_string_value(v), buf, len);
    } else if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, len, "%.6g", json_real_value(v));
    } else if (json_is_true(v)) {
        snprintf(buf, len, "true");
    } else if (json_is_false(v)) {
        snprintf(buf, len, "false");
    } else {
        snprintf(buf, len, "%s", dflt);
    }
    return buf;
}

const char *tui_jtext_marked(const json_t *o, const char *key, const char *dflt, char *buf,
                             size_t len)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_string(v)) {
        return tui_sanitize_marked(json_string_value(v), buf, len);
    }
    return tui_jtext(o, key, dflt, buf, len);
}

int64_t tui_jint(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d > -9.2e18 && d < 9.2e18) {
            return (int64_t)d;
        }
        return dflt;
    }
    if (json_is_true(v)) {
        return 1;
    }
    if (json_is_false(v)) {
        return 0;
    }
    int64_t out;
    if (json_is_string(v) && tui_parse_int(json_string_value(v), &out) == 0) {
        return out;
    }
    return dflt;
}

double tui_jreal(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_number(v)) {
        return json_number_value(v);
    }
    return dflt;
}

void tui_fmt_ago(int64_t us, int64_t now_us, char *buf, size_t len)
{
    if (us <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    int64_t s = (now_us - us) / 1000000;
    if (s < 0) {
        s = 0;
    }
    if (s < 60) {
        snprintf(buf, len, "%llds", (long long)s);
    } else if (s < 3600) {
        snprintf(buf, len, "%lldm", (long long)(s / 60));
    } else if (s < 86400) {
        snprintf(buf, len, "%lldh", (long long)(s / 3600));
    } else {
        snprintf(buf, len, "%lldd", (long long)(s / 86400));
    }
}

void tui_fmt_dur(int64_t s, char *buf, size_t len)
{
    if (s < 0) {
        s = 0;
    }
    if (s >= 86400) {
        snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    } else if (s >= 3600) {
        snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    } else if (s >= 60) {
        snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    } else {
        snprintf(buf, len, "%llds", (long long)s);
    }
}

void tui_fmt_count(uint64_t n, int bytes, char *buf, size_t len)
{
    const char *u1[] = {"", "k", "M", "G", "T", "P"};
    const char *u2[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double d = (double)n;
    double base = bytes ? 1024.0 : 1000.0;
    int i = 0;
    while (d >= base && i < 5) {
        d /= base;
        i++;
    }
    if (i == 0) {
        snprintf(buf, len, "%llu%s", (unsigned long long)n, bytes ? "B" : "");
    } else {
        snprintf(buf, len, "%.1f%s", d, bytes ? u2[i] : u1[i]);
    }
}

int tui_parse_int(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18) {
        return -1;
    }
    int64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int tui_parse_dur(const char *s, int64_t *seconds)
{
    if (s == NULL) {
        return -1;
    }
    size_t n = strlen(s);
    if (n == 0 || n > 12) {
        return -1;
    }
    int64_t mult = 1;
    char num[16];
    memcpy(num, s, n + 1);
    switch (num[n - 1]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = 86400;
        break;
    case 'w':
        mult = 7 * 86400;
        break;
    default:
        mult = 0;
        break;
    }
    if (mult != 0) {
        num[n - 1] = '\0';
    } else {
        mult = 1;
    }
    int64_t v;
    if (tui_parse_int(num, &v) != 0 || v > (int64_t)100 * 366 * 86400 / mult) {
        return -1;
    }
    *seconds = v * mult;
    return 0;
}

/* ---- tables --------------------------------------------------------------- */

#define TABLE_MAX_ROWS 1000000

struct tui_table {
    int ncols;
    char **cells; /* rows * ncols, row 0 = headers */
    size_t rows;
    size_t cap;
    int *max;
};

static char *dup_clean(const char *s)
{
    size_t n = strlen(s != NULL ? s : "") + 1;
    char *o = malloc(n);
    if (o != NULL) {
        tui_sanitize(s, o, n);
    }
    return o;
}

struct tui_table *tui_table_new(int ncols, const char *const *headers)
{
    struct tui_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->ncols = ncols;
    t->max = calloc((size_t)ncols, sizeof(int));
    if (t->max == NULL || tui_table_add(t, headers) != 0) {
        tui_table_free(t);
        return NULL;
    }
    return t;
}

void tui_table_max(struct tui_table *t, int col, int width)
{
    if (t != NULL && col >= 0 && col < t->ncols) {
        t->max[col] = width;
    }
}

int tui_table_add(struct tui_table *t, const char *const *cells)
{
    if (t->rows >= TABLE_MAX_ROWS) {
        return -1;
    }
    if (t->rows == t->cap) {
        size_t nc = t->cap == 0 ? 16 : t->cap * 2;
        char **n = realloc(t->cells, nc * (size_t)t->ncols * sizeof(char *));
        if (n == NULL) {
            return -1;
        }
        t->cells = n;
        t->cap = nc;
    }
    char **row = t->cells + t->rows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++) {
        row[i] = dup_clean(cells[i]);
        if (row[i] == NULL) {
            for (int k = 0; k < i; k++) {
                free(row[k]);
            }
            return -1;
        }
    }
    t->rows++;
    return 0;
}

/* Print s cut to at most w display columns (a cut marked with '~'), padded
 * when pad. */
static void put_cell(FILE *f, const char *s, size_t w, int pad)
{
    char small[256];
    size_t need = strlen(s) + w + 2; /* always enough (tui_text_cell) */
    char *buf = need <= sizeof(small) ? small : malloc(need);
    if (buf == NULL) {
        buf = small;
        need = sizeof(small); /* cut earlier, still marked */
    }
    fputs(tui_text_cell(s, w, pad, buf, need), f);
    if (buf != small) {
        free(buf);
    }
}

void tui_table_print(const struct tui_table *t, FILE *f)
{
    size_t *w = calloc((size_t)t->ncols, sizeof(size_t));
    if (w == NULL) {
        return;
    }
    for (size_t r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            size_t cw = tui_text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (cw > w[c]) {
                w[c] = cw;
            }
        }
    }
    for (int c = 0; c < t->ncols; c++) {
        if (t->max[c] > 0 && w[c] > (size_t)t->max[c]) {
            w[c] = (size_t)t->max[c];
        }
    }
    for (size_t r = 0; r < t->rows; r++) {
        /* No trailing blanks: stop after the last non-empty cell. */
        int end = t->ncols - 1;
        while (end > 0 && t->cells[r * (size_t)t->ncols + (size_t)end][0] == '\0') {
            end--;
        }
        for (int c = 0; c <= end; c++) {
            int last = c == end;
            put_cell(f, t->cells[r * (size_t)t->ncols + (size_t)c], w[c], !last);
            if (!last) {
                fputs("  ", f);
            }
        }
        fputc('\n', f);
    }
    free(w);
}

void tui_table_free(struct tui_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->max);
    free(t);
}
