/*
 * views.c: what each of the console's five views draws and which keys it
 * takes. Views only read the JSON the core fetched and call the core's
 * actions; they never touch the network, so a slow gateway can delay data
 * but never a keystroke or a redraw.
 *
 * Layout is computed from the terminal size on every draw (columns have a
 * minimum width that fits 80x24 and share what is left), so KEY_RESIZE
 * only has to trigger a redraw. Text from the server is sanitized before it
 * is stored or drawn (tui_jtext), and con_text cuts by display width, never
 * in the middle of a UTF-8 sequence.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/base/util.h"
#include "tui/console_int.h"
#include "tui/fmt.h"

/* ---- drawing helpers ------------------------------------------------------------ */

attr_t con_attr(const struct con *c, enum pair p)
{
    if (c->colors) {
        return COLOR_PAIR(p);
    }
    switch (p) {
    case P_HEADER:
    case P_SELECT:
        return A_REVERSE;
    case P_DENY:
    case P_OK:
    case P_TITLE:
        return A_BOLD;
    case P_WARN:
        return A_REVERSE | A_BOLD;
    case P_ALLOW:
    case P_DIM:
    default:
        return A_NORMAL;
    }
}

int con_text(struct con *c, int y, int x, int w, const char *s, attr_t a, int pad)
{
    wchar_t wb[512];
    int n = 0;
    int used = 0;
    if (w <= 0 || y < 0 || y >= c->rows || x >= c->cols) {
        return 0;
    }
    if (x + w > c->cols) {
        w = c->cols - x;
    }
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    const char *p = s != NULL ? s : "";
    size_t left = strlen(p);
    int cut = 0;
    while (left > 0 && n < (int)(sizeof(wb) / sizeof(wb[0])) - 2) {
        wchar_t wc;
        size_t l;
        if (c->utf8) {
            l = mbrtowc(&wc, p, left, &st);
            if (l == (size_t)-1 || l == (size_t)-2 || l == 0) {
                memset(&st, 0, sizeof(st));
                wc = L'?';
                l = 1;
            }
        } else {
            wc = (unsigned char)*p < 0x80 ? (wchar_t)(unsigned char)*p : L'?';
            l = 1;
        }
        int cw = wcwidth(wc);
        if (cw < 0) {
            wc = L'?';
            cw = 1;
        }
        if (used + cw > w) {
            cut = 1;
            break;
        }
        wb[n++] = wc;
        used += cw;
        p += l;
        left -= l;
    }
    if (left > 0 && !cut) {
        cut = 1;
    }
    if (cut && w > 0) {
        /* Make room for the cut mark. */
        while (n > 0 && used + 1 > w) {
            int cw = wcwidth(wb[n - 1]);
            used -= cw > 0 ? cw : 1;
            n--;
        }
        wb[n++] = c->utf8 ? L'\u2026' : L'~';
        used++;
    }
    wb[n] = L'\0';
    attron(a);
    mvaddnwstr(y, x, wb, n);
    if (pad) {
        for (; used < w; used++) {
            addch(' ');
        }
    }
    attroff(a);
    return used;
}

/* One table cell of width w in attribute a, then (unless last) a one-column
 * gap in the row's base attribute. Returns the columns advanced. */
static int cell_gap(struct con *c, int y, int x, int w, const char *s, attr_t a, attr_t base,
                    int gap)
{
    con_text(c, y, x, w, s, a, 1);
    if (gap) {
        con_text(c, y, x + w, 1, " ", base, 1);
    }
    return w + 1;
}

/* Columns: name, minimum width, share of spare width (percent). */
struct col {
    const char *name;
    int min;
    int grow;
};

static void layout(const struct col *cols, int n, int width, int *w)
{
    int sum = n - 1;
    for (int i = 0; i < n; i++) {
        w[i] = cols[i].min;
        sum += cols[i].min;
    }
    int spare = width - sum;
    if (spare <= 0) {
        return;
    }
    int given = 0;
    for (int i = 0; i < n; i++) {
        int add = spare * cols[i].grow / 100;
        w[i] += add;
        given += add;
    }
    for (int i = n - 1; i >= 0 && given < spare; i--) {
        if (cols[i].grow > 0) {
            w[i] += spare - given;
            break;
        }
    }
}

static void draw_cols_header(struct con *c, int y, const struct col *cols, int n, const int *w,
                             int sort_col, int desc)
{
    move(y, 0);
    clrtoeol();
    int x = 0;
    for (int i = 0; i < n; i++) {
        char t[64];
        const char *arrow = "";
        if (i == sort_col) {
            arrow = c->utf8 ? (desc ? "\u25bc" : "\u25b2") : (desc ? "v" : "^");
        }
        snprintf(t, sizeof(t), "%s%s", cols[i].name, arrow);
        con_text(c, y, x, w[i], t, A_BOLD | A_UNDERLINE, 1);
        x += w[i] + 1;
    }
}

static void title_line(struct con *c, int y, const char *left, const char *right)
{
    move(y, 0);
    clrtoeol();
    int x = con_text(c, y, 0, c->cols, left, con_attr(c, P_TITLE) | A_BOLD, 0);
    if (right != NULL && right[0] != '\0') {
        int rw = (int)tui_text_width(right);
        int rx = c->cols - rw;
        if (rx < x + 2) {
            rx = x + 2;
        }
        con_text(c, y, rx, c->cols - rx, right, con_attr(c, P_DIM), 0);
    }
}

/* Clamp a selection to [0, n) and keep it inside the window [top, top+h). */
static void keep_visible(int *sel, int *top, int n, int h)
{
    if (*sel >= n) {
        *sel = n - 1;
    }
    if (*sel < 0) {
        *sel = 0;
    }
    if (*top > *sel) {
        *top = *sel;
    }
    if (h > 0 && *sel >= *top + h) {
        *top = *sel - h + 1;
    }
    if (*top < 0) {
        *top = 0;
    }
}

/* ---- sessions ------------------------------------------------------------------- */

enum { SC_ID, SC_SUBJECT, SC_CERT, SC_CLIENT, SC_CONNS, SC_REQS, SC_LAST, SC_STATE, SC__N };

static const struct col sess_cols[SC__N] = {
    {"ID", 8, 0},   {"SUBJECT", 14, 40}, {"CERT", 12, 35}, {"CLIENT", 15, 25},
    {"CONN", 4, 0}, {"REQS", 6, 0},      {"LAST", 5, 0},   {"STATE", 7, 0},
};

static int g_sort_col;
static int g_sort_desc;

static int cmp_str(const json_t *a, const json_t *b, const char *k)
{
    const char *x = tui_jstr(a, k);
    const char *y = tui_jstr(b, k);
    return strcasecmp(x != NULL ? x : "", y != NULL ? y : "");
}

static int cmp_int(const json_t *a, const json_t *b, const char *k)
{
    int64_t x = tui_jint(a, k, 0);
    int64_t y = tui_jint(b, k, 0);
    return x < y ? -1 : x > y;
}

static int sess_cmp(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa;
    const json_t *b = *(json_t *const *)pb;
    int r;
    switch (g_sort_col) {
    case SC_ID:
        r = cmp_str(a, b, "id");
        break;
    case SC_SUBJECT:
        r = cmp_str(a, b, "subject");
        break;
    case SC_CERT:
        r = cmp_str(a, b, "cert_thumbprint");
        break;
    case SC_CLIENT:
        r = cmp_str(a, b, "client_addr");
        break;
    case SC_CONNS:
        r = cmp_int(a, b, "live_connections");
        break;
    case SC_REQS:
        r = cmp_int(a, b, "requests");
        break;
    case SC_STATE:
        r = cmp_str(a, b, "state");
        break;
    case SC_LAST:
    default:
        r = cmp_int(a, b, "last_seen_us");
        break;
    }
    if (r == 0) {
        r = cmp_str(a, b, "id"); /* stable order between refreshes */
    }
    return g_sort_desc ? -r : r;
}

static int sess_match(const json_t *s, const char *f)
{
    static const char *const keys[] = {"id",          "subject", "cert_subject", "cert_thumbprint",
                                       "client_addr", "state",   "issuer"};
    if (f[0] == '\0') {
        return 1;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = tui_jstr(s, keys[i]);
        if (v != NULL && strcasestr(v, f) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* Filtered, sorted sessions (borrowed). Caller frees the array. */
static json_t **sess_list(struct con *c, int *n)
{
    size_t total = json_array_size(c->sessions);
    json_t **v = calloc(total + 1, sizeof(json_t *));
    *n = 0;
    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < total; i++) {
        json_t *s = json_array_get(c->sessions, i);
        if (json_is_object(s) && sess_match(s, c->filter)) {
            v[(*n)++] = s;
        }
    }
    g_sort_col = c->sort_col;
    g_sort_desc = c->sort_desc;
    qsort(v, (size_t)*n, sizeof(json_t *), sess_cmp);
    return v;
}

static int sess_index(struct con *c, json_t **v, int n)
{
    for (int i = 0; i < n; i++) {
        const char *id = tui_jstr(v[i], "id");
        if (id != NULL && strcmp(id, c->sel_id) == 0) {
            return i;
        }
    }
    return -1;
}

static void draw_sessions(struct con *c, int top, int bottom)
{
    int n;
    json_t **v = sess_list(c, &n);
    char left[256], right[256];
    static const char *const names[SC__N] = {"id",    "subject",  "cert",      "client",
                                             "conns", "requests", "last seen", "state"};
    snprintf(left, sizeof(left), "Sessions  %d shown of %zu", n, json_array_size(c->sessions));
    if (c->filter[0] != '\0') {
        char f[160];
        snprintf(right, sizeof(right), "filter: %s  sort: %s",
                 tui_sanitize(c->filter, f, sizeof(f)), names[c->sort_col]);
    } else {
        snprintf(right, sizeof(right), "sort: %s %s", names[c->sort_col],
                 c->sort_desc ? "desc" : "asc");
    }
    title_line(c, top, left, right);
    int w[SC__N];
    layout(sess_cols, SC__N, c->cols, w);
    draw_cols_header(c, top + 1, sess_cols, SC__N, w, c->sort_col, c->sort_desc);
    int h = bottom - (top + 2);
    if (c->sessions == NULL) {
        con_text(c, top + 2, 1, c->cols - 2, "loading...", con_attr(c, P_DIM), 0);
        free(v);
        return;
    }
    if (n == 0) {
        con_text(c, top + 2, 1, c->cols - 2,
                 c->filter[0] ? "no session matches the filter" : "no sessions yet",
                 con_attr(c, P_DIM), 0);
        free(v);
        return;
    }
    int sel = sess_index(c, v, n);
    if (sel < 0) {
        sel = 0;
    }
    keep_visible(&sel, &c->sess_top, n, h);
    snprintf(c->sel_id, sizeof(c->sel_id), "%s",
             tui_jstr(v[sel], "id") ? tui_jstr(v[sel], "id") : "");
    int64_t now = gh_now_us();
    for (int r = 0; r < h && c->sess_top + r < n; r++) {
        const json_t *s = v[c->sess_top + r];
        int y = top + 2 + r;
        char cell[SC__N][320];
        char th[80], cs[256];
        tui_jtext(s, "id", "-", cell[SC_ID], sizeof(cell[0]));
        tui_jtext(s, "subject", "-", cell[SC_SUBJECT], sizeof(cell[0]));
        tui_jtext(s, "cert_thumbprint", "-", th, sizeof(th));
        tui_jtext(s, "cert_subject", "", cs, sizeof(cs));
        if (strlen(th) > 12) {
            th[12] = '\0';
        }
        snprintf(cell[SC_CERT], sizeof(cell[0]), "%.16s%s%.256s", th, cs[0] ? " " : "", cs);
        tui_jtext(s, "client_addr", "-", cell[SC_CLIENT], sizeof(cell[0]));
        tui_jtext(s, "live_connections", "0", cell[SC_CONNS], sizeof(cell[0]));
        tui_fmt_count((uint64_t)tui_jint(s, "requests", 0), 0, cell[SC_REQS], sizeof(cell[0]));
        tui_fmt_ago(tui_jint(s, "last_seen_us", 0), now, cell[SC_LAST], sizeof(cell[0]));
        tui_jtext(s, "state", "-", cell[SC_STATE], sizeof(cell[0]));
        int is_sel = c->sess_top + r == sel;
        attr_t base = is_sel ? A_REVERSE : A_NORMAL;
        int x = 0;
        for (int k = 0; k < SC__N; k++) {
            attr_t a = base;
            if (k == SC_STATE && strcmp(cell[k], "revoked") == 0) {
                a |= con_attr(c, P_DENY) | A_BOLD;
            } else if (k == SC_STATE && strcmp(cell[k], "active") == 0) {
                a |= con_attr(c, P_ALLOW);
            }
            x += cell_gap(c, y, x, w[k], cell[k], a, base, k < SC__N - 1);
        }
        if (is_sel && x < c->cols) {
            con_text(c, y, x, c->cols - x, "", A_REVERSE, 1);
        }
    }
    free(v);
}

static void sessions_filter(struct con *c, const char *text)
{
    snprintf(c->filter, sizeof(c->filter), "%s", text);
    c->sess_top = 0;
    c->dirty = 1;
}

static void open_detail(struct con *c, const json_t *s)
{
    const char *id = s != NULL ? tui_jstr(s, "id") : NULL;
    if (id == NULL) {
        return;
    }
    con_detail_select(c, id);
    c->view = V_DETAIL;
}

static int sessions_key(struct con *c, wint_t ch, int is_key)
{
    int n;
    json_t **v = sess_list(c, &n);
    if (v == NULL) {
        return 0;
    }
    int sel = sess_index(c, v, n);
    int h = c->rows - 6;
    int used = 1;
    if (sel < 0) {
        sel = 0;
    }
    if (is_key) {
        switch (ch) {
        case KEY_UP:
            sel--;
            break;
        case KEY_DOWN:
            sel++;
            break;
        case KEY_PPAGE:
            sel -= h;
            break;
        case KEY_NPAGE:
            sel += h;
            break;
        case KEY_HOME:
            sel = 0;
            break;
        case KEY_END:
            sel = n - 1;
            break;
        case KEY_ENTER:
            open_detail(c, n > 0 ? v[sel] : NULL);
            break;
        default:
            used = 0;
            break;
        }
    } else {
        switch (ch) {
        case L'k':
            sel--;
            break;
        case L'j':
            sel++;
            break;
        case L'\n':
        case L'\r':
            open_detail(c, n > 0 ? v[sel] : NULL);
            break;
        case L's':
            c->sort_col = (c->sort_col + 1) % SC__N;
            c->sort_desc =
                c->sort_col == SC_LAST || c->sort_col == SC_CONNS || c->sort_col == SC_REQS;
            break;
        case L'S':
            c->sort_desc = !c->sort_desc;
            break;
        case L'/':
            con_prompt(c, "Filter sessions (text; Enter: apply, empty: clear): ", c->filter,
                       sessions_filter);
            break;
        case L'r':
            con_act_session(c, n > 0 ? v[sel] : NULL, "session");
            break;
        case L'u':
            con_act_session(c, n > 0 ? v[sel] : NULL, "subject");
            break;
        case L'b':
            con_act_session(c, n > 0 ? v[sel] : NULL, "cert");
            break;
        default:
            used = 0;
            break;
        }
    }
    if (n > 0) {
        if (sel >= n) {
            sel = n - 1;
        }
        if (sel < 0) {
            sel = 0;
        }
        const char *id = tui_jstr(v[sel], "id");
        snprintf(c->sel_id, sizeof(c->sel_id), "%s", id != NULL ? id : "");
    }
    free(v);
    return used;
}

/* ---- decisions ------------------------------------------------------------------ */

enum { DC_TIME, DC_DEC, DC_STATUS, DC_REASON, DC_WHO, DC_ROUTE, DC_REQ, DC__N };
static const struct col dec_cols[DC__N] = {
    {"TIME", 8, 0},  {"DEC", 5, 0},    {"ST", 3, 0},        {"REASON", 20, 25},
    {"WHO", 12, 25}, {"ROUTE", 7, 10}, {"REQUEST", 14, 40},
};

static int dec_index(const struct con *c, int64_t id)
{
    for (int i = c->ndec - 1; i >= 0; i--) {
        if (tui_jint(c->dec[i], "id", 0) == id) {
            return i;
        }
    }
    return -1;
}

static void dec_filter_text(const struct con *c, char *buf, size_t len)
{
    char t[512] = "";
    size_t o = 0;
    const char *names[] = {"subject", "route", "decision", "reason"};
    const char *vals[] = {c->df.subject, c->df.route, c->df.decision, c->df.reason};
    for (int i = 0; i < 4; i++) {
        if (vals[i][0] != '\0') {
            int n = snprintf(t + o, sizeof(t) - o, "%s%s=%s", o ? " " : "", names[i], vals[i]);
            if (n < 0 || (size_t)n >= sizeof(t) - o) {
                break;
            }
            o += (size_t)n;
        }
    }
    tui_sanitize(t, buf, len);
}

static void draw_decisions(struct con *c, int top, int bottom)
{
    char left[200], right[400], f[300];
    dec_filter_text(c, f, sizeof(f));
    if (c->dec_paused) {
        snprintf(left, sizeof(left), "Decisions  PAUSED (+%d new)", c->dec_new_while_paused);
    } else {
        snprintf(left, sizeof(left), "Decisions  live%s%s",
                 c->dec_show_admin ? "" : "  (admin reads hidden)",
                 c->dec_gap ? "  (rows skipped: busy)" : "");
    }
    snprintf(right, sizeof(right), "%s%s", f[0] ? "filter: " : "", f);
    title_line(c, top, left, right);
    int w[DC__N];
    layout(dec_cols, DC__N, c->cols, w);
    draw_cols_header(c, top + 1, dec_cols, DC__N, w, -1, 0);
    int h = bottom - (top + 2);
    if (!c->dec_loaded) {
        con_text(c, top + 2, 1, c->cols - 2, "loading...", con_attr(c, P_DIM), 0);
        return;
    }
    if (c->ndec == 0) {
        con_text(c, top + 2, 1, c->cols - 2, "no decisions yet", con_attr(c, P_DIM), 0);
        return;
    }
    int sel = c->ndec - 1;
    if (c->dec_paused && c->dec_sel_id != 0) {
        int i = dec_index(c, c->dec_sel_id);
        sel = i >= 0 ? i : 0;
    }
    /* Newest at the bottom, like tail -f; the window follows the selection. */
    int first = c->ndec - h;
    if (first < 0) {
        first = 0;
    }
    if (sel < first) {
        first = sel;
    }
    for (int r = 0; r < h && first + r < c->ndec; r++) {
        const json_t *d = c->dec[first + r];
        int y = top + 2 + r;
        char cell[DC__N][600];
        tui_fmt_time(tui_jint(d, "ts_us", 0), 0, cell[DC_TIME], sizeof(cell[0]));
        tui_jtext(d, "decision", "-", cell[DC_DEC], sizeof(cell[0]));
        tui_jtext(d, "status", "-", cell[DC_STATUS], sizeof(cell[0]));
        tui_jtext(d, "reason", "-", cell[DC_REASON], sizeof(cell[0]));
        tui_jtext(d, "token_sub", "", cell[DC_WHO], sizeof(cell[0]));
        if (cell[DC_WHO][0] == '\0') {
            tui_jtext(d, "cert_subject", "-", cell[DC_WHO], sizeof(cell[0]));
        }
        tui_jtext(d, "route", "-", cell[DC_ROUTE], sizeof(cell[0]));
        char m[32], p[520];
        tui_jtext(d, "method", "", m, sizeof(m));
        tui_jtext(d, "path", "", p, sizeof(p));
        snprintf(cell[DC_REQ], sizeof(cell[0]), "%s%s%s", m, m[0] ? " " : "", p);
        int deny = strcmp(cell[DC_DEC], "deny") == 0;
        int is_sel = first + r == sel && c->dec_paused;
        attr_t base = is_sel ? A_REVERSE : A_NORMAL;
        attr_t col = con_attr(c, deny ? P_DENY : P_ALLOW) | (deny ? A_BOLD : 0);
        int x = 0;
        for (int k = 0; k < DC__N; k++) {
            attr_t a = base;
            if (k == DC_DEC || k == DC_REASON || k == DC_STATUS) {
                a |= col;
            }
            x += cell_gap(c, y, x, w[k], cell[k], a, base, k < DC__N - 1);
        }
    }
}

static int add_field(const json_t *d, const char *k, const json_t *v, char *text, size_t len,
                     size_t *o)
{
    char val[1024], key[64];
    if (strcmp(k, "ts_us") == 0) {
        char t[64];
        tui_fmt_time(tui_jint(d, k, 0), 1, t, sizeof(t));
        snprintf(val, sizeof(val), "%s (%lld)", t, (long long)tui_jint(d, k, 0));
    } else if (json_is_object(v) || json_is_array(v)) {
        char *s = json_dumps(v, JSON_COMPACT);
        tui_sanitize_marked(s, val, sizeof(val));
        free(s);
    } else {
        tui_jtext_marked(d, k, "null", val, sizeof(val));
    }
    tui_sanitize(k, key, sizeof(key));
    int n = snprintf(text + *o, len - *o, "%-16s %s\n", key, val);
    if (n < 0 || (size_t)n >= len - *o) {
        return -1;
    }
    *o += (size_t)n;
    return 0;
}

/* The whole decision row: the fields an operator reads first, then the rest
 * in the server's order. */
static void dec_full_row(struct con *c, const json_t *d)
{
    static const char *const first[] = {"id",          "ts_us",      "decision",  "status",
                                        "reason",      "rule_id",    "route",     "method",
                                        "host",        "path",       "token_sub", "cert_subject",
                                        "client_addr", "session_id", "detail"};
    char text[16384];
    const size_t room = sizeof(text) - 128; /* the rest is for the note below */
    int full = 0;
    size_t o = 0;
    const char *k;
    const json_t *v;
    text[0] = '\0';
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]) && !full; i++) {
        v = json_object_get(d, first[i]);
        full = v != NULL && add_field(d, first[i], v, text, room, &o) != 0;
    }
    json_object_foreach ((json_t *)d, k, v) {
        if (full) {
            break;
        }
        int seen = 0;
        for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
            seen |= strcmp(k, first[i]) == 0;
        }
        full = !seen && add_field(d, k, v, text, room, &o) != 0;
    }
    if (full) {
        /* Drop the half-written field and say that fields are missing. */
        snprintf(text + o, sizeof(text) - o,
                 "... more fields than fit here (gatehousectl decisions --json shows them)\n");
    }
    char title[64];
    snprintf(title, sizeof(title), "Decision #%lld", (long long)tui_jint(d, "id", 0));
    con_popup(c, title, text, 0, NULL, NULL, NULL);
}

static int set_filter_kv(struct con *c, struct dec_filter *f, const char *key, const char *val)
{
    if (strcmp(key, "subject") == 0 || strcmp(key, "user") == 0) {
        snprintf(f->subject, sizeof(f->subject), "%s", val);
    } else if (strcmp(key, "route") == 0) {
        snprintf(f->route, sizeof(f->route), "%s", val);
    } else if (strcmp(key, "decision") == 0) {
        if (val[0] != '\0' && strcmp(val, "allow") != 0 && strcmp(val, "deny") != 0) {
            con_msg(c, 1, "decision must be allow or deny");
            return -1;
        }
        snprintf(f->decision, sizeof(f->decision), "%s", val);
    } else if (strcmp(key, "reason") == 0) {
        snprintf(f->reason, sizeof(f->reason), "%s", val);
    } else {
        con_msg(c, 1, "unknown filter '%s' (subject, route, decision, reason)", key);
        return -1;
    }
    return 0;
}

static void decisions_filter(struct con *c, const char *text)
{
    struct dec_filter f;
    memset(&f, 0, sizeof(f));
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", text);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        int rc;
        if (eq != NULL) {
            *eq = '\0';
            rc = set_filter_kv(c, &f, tok, eq + 1);
        } else if (strcmp(tok, "allow") == 0 || strcmp(tok, "deny") == 0) {
            rc = set_filter_kv(c, &f, "decision", tok);
        } else {
            rc = set_filter_kv(c, &f, "subject", tok);
        }
        if (rc != 0) {
            return;
        }
    }
    c->df = f;
    con_dec_reset(c);
}

static int decisions_key(struct con *c, wint_t ch, int is_key)
{
    int h = c->rows - 6;
    int sel = c->ndec - 1;
    if (c->dec_paused && c->dec_sel_id != 0) {
        int i = dec_index(c, c->dec_sel_id);
        sel = i >= 0 ? i : 0;
    }
    int move_by = 0;
    if (is_key) {
        switch (ch) {
        case KEY_UP:
            move_by = -1;
            break;
        case KEY_DOWN:
            move_by = 1;
            break;
        case KEY_PPAGE:
            move_by = -h;
            break;
        case KEY_NPAGE:
            move_by = h;
            break;
        case KEY_HOME:
            move_by = -c->ndec;
            break;
        case KEY_END:
            c->dec_paused = 0;
            c->dec_sel_id = 0;
            c->dec_new_while_paused = 0;
            return 1;
        case KEY_ENTER:
            if (c->ndec > 0) {
                dec_full_row(c, c->dec[sel]);
            }
            return 1;
        default:
            return 0;
        }
    } else {
        switch (ch) {
        case L'p':
        case L' ':
            c->dec_paused = !c->dec_paused;
            c->dec_new_while_paused = 0;
            c->dec_sel_id =
                c->dec_paused && c->ndec > 0 ? tui_jint(c->dec[c->ndec - 1], "id", 0) : 0;
            con_msg(c, 0,
                    c->dec_paused ? "paused: new rows are kept, not shown at the bottom"
                                  : "live tail resumed");
            return 1;
        case L'\n':
        case L'\r':
            if (c->ndec > 0) {
                dec_full_row(c, c->dec[sel]);
            }
            return 1;
        case L'/':
        case L'f': {
            char cur[300];
            dec_filter_text(c, cur, sizeof(cur));
            con_prompt(c, "Filter (subject= route= decision=allow|deny reason=): ", cur,
                       decisions_filter);
            return 1;
        }
        case L'a':
            c->dec_show_admin = !c->dec_show_admin;
            con_dec_reset(c);
            con_msg(c, 0,
                    c->dec_show_admin ? "showing admin API reads too"
                                      : "hiding admin API reads (admin changes stay)");
            return 1;
        case L'c':
            memset(&c->df, 0, sizeof(c->df));
            con_dec_reset(c);
            con_msg(c, 0, "filters cleared");
            return 1;
        case L'k':
            move_by = -1;
            break;
        case L'j':
            move_by = 1;
            break;
        default:
            return 0;
        }
    }
    if (c->ndec == 0) {
        return 1;
    }
    /* Moving the cursor pauses the tail so the row stays put. */
    if (!c->dec_paused) {
        c->dec_paused = 1;
        c->dec_new_while_paused = 0;
    }
    sel += move_by;
    if (sel < 0) {
        sel = 0;
    }
    if (sel >= c->ndec) {
        sel = c->ndec - 1;
    }
    c->dec_sel_id = tui_jint(c->dec[sel], "id", 0);
    return 1;
}

/* ---- session detail ------------------------------------------------------------- */

/* The detail view's lines, rebuilt on every draw for the current width. A
 * line wider than the screen (or than a line buffer) wraps onto continuation
 * lines indented to the value column, so a long certificate subject or
 * claim is shown whole instead of losing its end without a trace. */
#define DETAIL_LINES 600
#define DETAIL_LINE_BYTES 200
#define DETAIL_INDENT 15 /* "  cert subject " */

struct lines {
    char l[DETAIL_LINES][DETAIL_LINE_BYTES];
    attr_t a[DETAIL_LINES];
    int n;
    int width; /* screen columns */
};

static void add_line(struct lines *L, attr_t a, const char *fmt, ...) GH_PRINTF(3, 4);
static void add_line(struct lines *L, attr_t a, const char *fmt, ...)
{
    char text[4096]; /* more than any line of values (each at most 1 KiB) */
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (r < 0) {
        return;
    }
    if ((size_t)r >= sizeof(text)) {
        size_t k = tui_text_fit(text, sizeof(text), sizeof(text) - 2);
        text[k] = TUI_CUT_MARK;
        text[k + 1] = '\0';
    }
    size_t width = L->width > DETAIL_INDENT + 20 ? (size_t)L->width : DETAIL_INDENT + 20;
    const char *p = text;
    int first = 1;
    while (first || *p != '\0') {
        if (L->n >= DETAIL_LINES) {
            return;
        }
        char *dst = L->l[L->n];
        if (L->n == DETAIL_LINES - 1) {
            snprintf(dst, DETAIL_LINE_BYTES, "  ... (more than %d lines: the rest is not shown)",
                     DETAIL_LINES);
            L->a[L->n++] = a;
            return;
        }
        size_t o = first ? 0 : DETAIL_INDENT;
        memset(dst, ' ', o);
        size_t k = tui_text_fit(p, width - o, DETAIL_LINE_BYTES - 1 - o);
        if (k == 0 && *p != '\0') {
            return; /* cannot happen: a character is at most 2 columns, 4 bytes */
        }
        memcpy(dst + o, p, k);
        dst[o + k] = '\0';
        L->a[L->n++] = a;
        p += k;
        first = 0;
    }
}

static const json_t *detail_session(const struct con *c)
{
    const json_t *s = json_object_get(c->detail, "session");
    return json_is_object(s) ? s : c->detail;
}

static const json_t *detail_part(const struct con *c, const char *key)
{
    const json_t *v = json_object_get(c->detail, key);
    if (v == NULL) {
        v = json_object_get(detail_session(c), key);
    }
    return v;
}

static void detail_lines(struct con *c, struct lines *L)
{
    const json_t *s = detail_session(c);
    char a[1024], b[320], t1[64], t2[64];
    tui_jtext(s, "state", "-", a, sizeof(a));
    add_line(L, A_BOLD, "Session %s  [%s]", c->detail_id, a);
    add_line(L, A_NORMAL, " ");
    add_line(L, con_attr(c, P_TITLE) | A_BOLD, "Identity");
    add_line(L, A_NORMAL, "  user         %s", tui_jtext_marked(s, "subject", "-", a, sizeof(a)));
    add_line(L, A_NORMAL, "  issuer       %s", tui_jtext_marked(s, "issuer", "-", a, sizeof(a)));
    add_line(L, A_NORMAL, "  cert subject %s",
             tui_jtext_marked(s, "cert_subject", "-", a, sizeof(a)));
    add_line(L, A_NORMAL, "  cert sha256  %s",
             tui_jtext_marked(s, "cert_thumbprint", "-", a, sizeof(a)));
    add_line(L, A_NORMAL, "  client       %s",
             tui_jtext_marked(s, "client_addr", "-", a, sizeof(a)));
    tui_fmt_time(tui_jint(s, "first_seen_us", 0), 1, t1, sizeof(t1));
    tui_fmt_time(tui_jint(s, "last_seen_us", 0), 1, t2, sizeof(t2));
    add_line(L, A_NORMAL, "  seen         %s .. %s", t1, t2);
    tui_fmt_count((uint64_t)tui_jint(s, "bytes_in", 0), 1, a, sizeof(a));
    tui_fmt_count((uint64_t)tui_jint(s, "bytes_out", 0), 1, b, sizeof(b));
    add_line(L, A_NORMAL, "  requests     %lld  (in %s, out %s)",
             (long long)tui_jint(s, "requests", 0), a, b);
    add_line(L, A_NORMAL, " ");
    const json_t *claims = detail_part(c, "claims");
    add_line(L, con_attr(c, P_TITLE) | A_BOLD,
             "Token claims (verified; the raw token is never shown)");
    if (json_object_size(claims) == 0) {
        add_line(L, con_attr(c, P_DIM), "  (none recorded)");
    } else {
        const char *k;
        const json_t *v;
        json_object_foreach ((json_t *)claims, k, v) {
            char *dump = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            char kk[64];
            tui_sanitize(k, kk, sizeof(kk));
            tui_sanitize_marked(dump != NULL ? dump : json_string_value(v), a, sizeof(a));
            if (json_is_integer(v) && (strcmp(k, "iat") == 0 || strcmp(k, "exp") == 0 ||
                                       strcmp(k, "nbf") == 0 || strcmp(k, "auth_time") == 0)) {
                /* Any integer a token carries: range-checked before it
                 * becomes microseconds (tui_fmt_epoch). */
                tui_fmt_epoch((int64_t)json_integer_value(v), t1, sizeof(t1));
                add_line(L, A_NORMAL, "  %-12s %s (%s)", kk, a, t1);
            } else {
                add_line(L, A_NORMAL, "  %-12s %s", kk, a);
            }
            free(dump);
        }
    }
    add_line(L, A_NORMAL, " ");
    const json_t *conns = detail_part(c, "connections");
    if (!json_is_array(conns)) {
        /* This gateway reports a count, not a list. */
        add_line(L, con_attr(c, P_TITLE) | A_BOLD, "Live connections: %lld",
                 (long long)tui_jint(s, "live_connections", tui_jint(c->detail, "connections", 0)));
    } else {
        add_line(L, con_attr(c, P_TITLE) | A_BOLD, "Live connections (%zu)",
                 json_array_size(conns));
    }
    size_t i;
    const json_t *cn;
    json_array_foreach (conns, i, cn) {
        char id[32], cli[80];
        tui_jtext(cn, "conn_id", "-", id, sizeof(id));
        tui_jtext(cn, "client", "-", cli, sizeof(cli));
        tui_fmt_time(tui_jint(cn, "since_us", 0), 1, t1, sizeof(t1));
        add_line(L, A_NORMAL, "  #%-10s %-24s since %s  %lld requests", id, cli, t1,
                 (long long)tui_jint(cn, "requests", 0));
    }
    if (json_is_array(conns) && json_array_size(conns) == 0) {
        add_line(L, con_attr(c, P_DIM), "  (none)");
    }
    add_line(L, A_NORMAL, " ");
    const json_t *dec = detail_part(c, "recent_decisions");
    add_line(L, con_attr(c, P_TITLE) | A_BOLD, "Recent decisions (%zu)", json_array_size(dec));
    const json_t *d;
    json_array_foreach (dec, i, d) {
        char dc[16], st[16], rs[64], m[16], p[600];
        tui_fmt_time(tui_jint(d, "ts_us", 0), 0, t1, sizeof(t1));
        tui_jtext(d, "decision", "-", dc, sizeof(dc));
        tui_jtext(d, "status", "-", st, sizeof(st));
        tui_jtext(d, "reason", "-", rs, sizeof(rs));
        tui_jtext(d, "method", "", m, sizeof(m));
        tui_jtext_marked(d, "path", "", p, sizeof(p));
        int deny = strcmp(dc, "deny") == 0;
        add_line(L, con_attr(c, deny ? P_DENY : P_ALLOW), "  %s %-5s %-3s %-22s %s %s", t1, dc, st,
                 rs, m, p);
    }
}

static void draw_detail(struct con *c, int top, int bottom)
{
    if (c->detail_id[0] == '\0') {
        title_line(c, top, "Session detail", NULL);
        con_text(c, top + 2, 1, c->cols - 2,
                 "No session chosen: select one in view 1 (Sessions) and press Enter.",
                 con_attr(c, P_DIM), 0);
        return;
    }
    if (c->detail_missing) {
        title_line(c, top, "Session detail", NULL);
        con_text(c, top + 2, 1, c->cols - 2, "The gateway does not know this session (any more).",
                 con_attr(c, P_DENY), 0);
        return;
    }
    if (c->detail == NULL) {
        title_line(c, top, "Session detail", NULL);
        con_text(c, top + 2, 1, c->cols - 2, "loading...", con_attr(c, P_DIM), 0);
        return;
    }
    struct lines *L = calloc(1, sizeof(*L));
    if (L == NULL) {
        return;
    }
    L->width = c->cols;
    detail_lines(c, L);
    int h = bottom - top;
    if (c->detail_scroll > L->n - h) {
        c->detail_scroll = L->n - h;
    }
    if (c->detail_scroll < 0) {
        c->detail_scroll = 0;
    }
    for (int r = 0; r < h && c->detail_scroll + r < L->n; r++) {
        int i = c->detail_scroll + r;
        attr_t a = L->a[i];
        if (i == 0) {
            a = con_attr(c, P_TITLE) | A_BOLD;
        }
        con_text(c, top + r, 0, c->cols, L->l[i], a, 0);
    }
    free(L);
}

static int detail_key(struct con *c, wint_t ch, int is_key)
{
    int h = c->rows - 4;
    if (is_key) {
        switch (ch) {
        case KEY_UP:
            c->detail_scroll--;
            return 1;
        case KEY_DOWN:
            c->detail_scroll++;
            return 1;
        case KEY_PPAGE:
            c->detail_scroll -= h;
            return 1;
        case KEY_NPAGE:
            c->detail_scroll += h;
            return 1;
        case KEY_HOME:
            c->detail_scroll = 0;
            return 1;
        case KEY_BACKSPACE:
        case KEY_LEFT:
            c->view = V_SESSIONS;
            return 1;
        default:
            return 0;
        }
    }
    const json_t *s = c->detail != NULL ? detail_session(c) : NULL;
    switch (ch) {
    case 27:
    case 127:
    case 8:
        c->view = V_SESSIONS;
        return 1;
    case L'r':
        con_act_session(c, s, "session");
        return 1;
    case L'u':
        con_act_session(c, s, "subject");
        return 1;
    case L'b':
        con_act_session(c, s, "cert");
        return 1;
    default:
        return 0;
    }
}

/* ---- revocations ---------------------------------------------------------------- */

enum { RC_ID, RC_KIND, RC_TARGET, RC_REASON, RC_BY, RC_CREATED, RC_EXPIRES, RC_STATE, RC__N };
static const struct col rev_cols[RC__N] = {
    {"ID", 4, 0},   {"KIND", 7, 0}, {"TARGET", 18, 45}, {"REASON", 12, 30},
    {"BY", 10, 25}, {"AGE", 5, 0},  {"EXPIRES", 7, 0},  {"STATE", 7, 0},
};

static void rev_state(const json_t *r, char *buf, size_t len)
{
    int64_t now = gh_now_us();
    int64_t exp = tui_jint(r, "expires_us", 0);
    if (tui_jint(r, "lifted_us", 0) > 0) {
        snprintf(buf, len, "lifted");
    } else if (exp > 0 && exp <= now) {
        snprintf(buf, len, "expired");
    } else if (json_is_false(json_object_get(r, "active"))) {
        snprintf(buf, len, "inactive");
    } else {
        snprintf(buf, len, "active");
    }
}

static void draw_revocations(struct con *c, int top, int bottom)
{
    size_t n = json_array_size(c->revs);
    size_t active = 0;
    for (size_t i = 0; i < n; i++) {
        char st[16];
        rev_state(json_array_get(c->revs, i), st, sizeof(st));
        active += strcmp(st, "active") == 0;
    }
    char left[128];
    snprintf(left, sizeof(left), "Revocations  %zu (%zu in force)", n, active);
    title_line(c, top, left, "newest first");
    int w[RC__N];
    layout(rev_cols, RC__N, c->cols, w);
    draw_cols_header(c, top + 1, rev_cols, RC__N, w, -1, 0);
    int h = bottom - (top + 2);
    if (c->revs == NULL) {
        con_text(c, top + 2, 1, c->cols - 2, "loading...", con_attr(c, P_DIM), 0);
        return;
    }
    if (n == 0) {
        con_text(c, top + 2, 1, c->cols - 2, "no revocations (a: add one)", con_attr(c, P_DIM), 0);
        return;
    }
    keep_visible(&c->rev_sel, &c->rev_top, (int)n, h);
    int64_t now = gh_now_us();
    for (int r = 0; r < h && c->rev_top + r < (int)n; r++) {
        const json_t *rv = json_array_get(c->revs, (size_t)(c->rev_top + r));
        char cell[RC__N][320];
        tui_jtext(rv, "id", "-", cell[RC_ID], sizeof(cell[0]));
        tui_jtext(rv, "kind", "-", cell[RC_KIND], sizeof(cell[0]));
        tui_jtext(rv, "target", "-", cell[RC_TARGET], sizeof(cell[0]));
        tui_jtext(rv, "reason", "-", cell[RC_REASON], sizeof(cell[0]));
        tui_jtext(rv, "actor", "-", cell[RC_BY], sizeof(cell[0]));
        tui_fmt_ago(tui_jint(rv, "created_us", 0), now, cell[RC_CREATED], sizeof(cell[0]));
        int64_t exp = tui_jint(rv, "expires_us", 0);
        if (exp <= 0) {
            snprintf(cell[RC_EXPIRES], sizeof(cell[0]), "never");
        } else if (exp > now) {
            char d[32];
            tui_fmt_dur((exp - now) / 1000000, d, sizeof(d));
            snprintf(cell[RC_EXPIRES], sizeof(cell[0]), "%s", d);
        } else {
            snprintf(cell[RC_EXPIRES], sizeof(cell[0]), "past");
        }
        rev_state(rv, cell[RC_STATE], sizeof(cell[0]));
        int is_sel = c->rev_top + r == c->rev_sel;
        attr_t base = is_sel ? A_REVERSE : A_NORMAL;
        int x = 0;
        for (int k = 0; k < RC__N; k++) {
            attr_t a = base;
            if (k == RC_STATE) {
                a |= strcmp(cell[k], "active") == 0 ? con_attr(c, P_DENY) | A_BOLD
                                                    : con_attr(c, P_DIM);
            }
            x += cell_gap(c, top + 2 + r, x, w[k], cell[k], a, base, k < RC__N - 1);
        }
    }
}

static void rev_popup(struct con *c, const json_t *rv)
{
    char text[4096];
    size_t o = 0;
    const char *k;
    const json_t *v;
    json_object_foreach ((json_t *)rv, k, v) {
        char val[600], key[64];
        if (strstr(k, "_us") != NULL && json_is_integer(v) && json_integer_value(v) > 0) {
            tui_fmt_time(json_integer_value(v), 1, val, sizeof(val));
        } else {
            tui_jtext(rv, k, "-", val, sizeof(val));
        }
        tui_sanitize(k, key, sizeof(key));
        int n = snprintf(text + o, sizeof(text) - o, "%-12s %s\n", key, val);
        if (n < 0 || (size_t)n >= sizeof(text) - o) {
            break;
        }
        o += (size_t)n;
    }
    con_popup(c, "Revocation", text, 0, NULL, NULL, NULL);
}

static int revocations_key(struct con *c, wint_t ch, int is_key)
{
    int n = (int)json_array_size(c->revs);
    int h = c->rows - 6;
    const json_t *sel =
        n > 0 && c->rev_sel < n ? json_array_get(c->revs, (size_t)c->rev_sel) : NULL;
    if (is_key) {
        switch (ch) {
        case KEY_UP:
            c->rev_sel--;
            break;
        case KEY_DOWN:
            c->rev_sel++;
            break;
        case KEY_PPAGE:
            c->rev_sel -= h;
            break;
        case KEY_NPAGE:
            c->rev_sel += h;
            break;
        case KEY_HOME:
            c->rev_sel = 0;
            break;
        case KEY_END:
            c->rev_sel = n - 1;
            break;
        case KEY_ENTER:
            if (sel != NULL) {
                rev_popup(c, sel);
            }
            break;
        default:
            return 0;
        }
        keep_visible(&c->rev_sel, &c->rev_top, n, h);
        return 1;
    }
    switch (ch) {
    case L'a':
        con_act_add_revocation(c);
        return 1;
    case L'l':
        con_act_lift(c, sel);
        return 1;
    case L'\n':
    case L'\r':
        if (sel != NULL) {
            rev_popup(c, sel);
        }
        return 1;
    case L'k':
        c->rev_sel--;
        keep_visible(&c->rev_sel, &c->rev_top, n, h);
        return 1;
    case L'j':
        c->rev_sel++;
        keep_visible(&c->rev_sel, &c->rev_top, n, h);
        return 1;
    default:
        return 0;
    }
}

/* ---- policy ----------------------------------------------------------------------- */

/* Count lines of text; returns a pointer to the start of line i (or NULL). */
static const char *nth_line(const char *s, int i, size_t *len)
{
    while (i > 0 && s != NULL) {
        s = strchr(s, '\n');
        if (s != NULL) {
            s++;
        }
        i--;
    }
    if (s == NULL || *s == '\0') {
        return NULL;
    }
    *len = strcspn(s, "\n");
    return s;
}

static int count_lines(const char *s)
{
    int n = 0;
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n + (s[-1] != '\n');
}

static const char *selected_version(struct con *c)
{
    const json_t *v = json_array_get(c->versions, (size_t)(c->ver_sel < 0 ? 0 : c->ver_sel));
    return tui_jstr(v, "version");
}

static void draw_text_pane(struct con *c, int top, int bottom, const char *text, int numbers,
                           int diff)
{
    int h = bottom - top;
    int n = count_lines(text);
    if (c->pol_scroll > n - h) {
        c->pol_scroll = n - h;
    }
    if (c->pol_scroll < 0) {
        c->pol_scroll = 0;
    }
    for (int r = 0; r < h; r++) {
        size_t len = 0;
        const char *l = nth_line(text, c->pol_scroll + r, &len);
        if (l == NULL) {
            break;
        }
        char raw[600], clean[600];
        if (len >= sizeof(raw)) {
            len = sizeof(raw) - 1;
        }
        memcpy(raw, l, len);
        raw[len] = '\0';
        for (size_t k = 0; k < len; k++) {
            if (raw[k] == '\t') {
                raw[k] = ' ';
            }
        }
        tui_sanitize(raw, clean, sizeof(clean));
        int x = 0;
        if (numbers) {
            char no[16];
            snprintf(no, sizeof(no), "%4d ", c->pol_scroll + r + 1);
            x = con_text(c, top + r, 0, 5, no, con_attr(c, P_DIM), 0);
        }
        attr_t a = A_NORMAL;
        if (diff) {
            if (clean[0] == '+' && strncmp(clean, "+++", 3) != 0) {
                a = con_attr(c, P_ALLOW);
            } else if (clean[0] == '-' && strncmp(clean, "---", 3) != 0) {
                a = con_attr(c, P_DENY);
            } else if (clean[0] == '@') {
                a = con_attr(c, P_TITLE);
            }
        }
        con_text(c, top + r, x, c->cols - x, clean, a, 0);
    }
}

static void draw_policy(struct con *c, int top, int bottom)
{
    char left[300], right[160], v[16], at[40], by[200];
    snprintf(v, sizeof(v), "%.12s",
             tui_jstr(c->policy, "version") ? tui_jstr(c->policy, "version") : "-");
    /* When it became active, and by whom: from the version list. */
    const json_t *meta = c->policy;
    const char *av = tui_jstr(c->policy, "version");
    size_t vi;
    const json_t *vm;
    json_array_foreach (c->versions, vi, vm) {
        const char *vv = tui_jstr(vm, "version");
        if (av != NULL && vv != NULL && strcmp(av, vv) == 0) {
            meta = vm;
        }
    }
    int64_t when = tui_jint(meta, "activated_us", 0);
    tui_fmt_time(when > 0 ? when : tui_jint(meta, "applied_us", 0), 1, at, sizeof(at));
    tui_jtext(meta, "applied_by", "", by, sizeof(by));
    snprintf(left, sizeof(left), "Policy  active %s  applied %s%s%s", v, at, by[0] ? " by " : "",
             by);
    static const char *const panes[] = {"[y]aml", "[v]ersions", "[d]iff"};
    snprintf(right, sizeof(right), "%s", panes[c->pol_pane]);
    title_line(c, top, left, right);
    if (c->policy == NULL) {
        con_text(c, top + 2, 1, c->cols - 2, "loading...", con_attr(c, P_DIM), 0);
        return;
    }
    if (c->pol_pane == 0) {
        const char *src = tui_jstr(c->policy, "source");
        draw_text_pane(c, top + 1, bottom, src != NULL ? src : "(the gateway sent no source)", 1,
                       0);
        return;
    }
    if (c->pol_pane == 2) {
        move(top + 1, 0);
        clrtoeol();
        con_text(c, top + 1, 0, c->cols, c->diff_title, A_BOLD, 0);
        draw_text_pane(c, top + 2, bottom, c->diff_text != NULL ? c->diff_text : "(no diff yet)", 0,
                       1);
        return;
    }
    static const struct col vcols[4] = {
        {"VERSION", 12, 0}, {"APPLIED", 19, 0}, {"BY", 10, 100}, {"ACTIVE", 6, 0}};
    int w[4];
    layout(vcols, 4, c->cols, w);
    draw_cols_header(c, top + 1, vcols, 4, w, -1, 0);
    int n = (int)json_array_size(c->versions);
    int h = bottom - (top + 2);
    static int vtop;
    keep_visible(&c->ver_sel, &vtop, n, h);
    for (int r = 0; r < h && vtop + r < n; r++) {
        const json_t *ver = json_array_get(c->versions, (size_t)(vtop + r));
        char cell[4][300];
        tui_jtext(ver, "version", "-", cell[0], sizeof(cell[0]));
        cell[0][12] = '\0';
        tui_fmt_time(tui_jint(ver, "applied_us", 0), 1, cell[1], sizeof(cell[1]));
        tui_jtext(ver, "applied_by", "-", cell[2], sizeof(cell[2]));
        int act = json_is_true(json_object_get(ver, "active"));
        snprintf(cell[3], sizeof(cell[3]), "%s", act ? "*" : "");
        attr_t base = vtop + r == c->ver_sel ? A_REVERSE : A_NORMAL;
        int x = 0;
        for (int k = 0; k < 4; k++) {
            x += cell_gap(c, top + 2 + r, x, w[k], cell[k], base | (act ? A_BOLD : 0), base, k < 3);
        }
    }
    if (n == 0) {
        con_text(c, top + 2, 1, c->cols - 2, "no stored versions", con_attr(c, P_DIM), 0);
    }
}

static int policy_key(struct con *c, wint_t ch, int is_key)
{
    int h = c->rows - 6;
    int list = c->pol_pane == 1;
    int n = (int)json_array_size(c->versions);
    if (is_key) {
        int d = 0;
        switch (ch) {
        case KEY_UP:
            d = -1;
            break;
        case KEY_DOWN:
            d = 1;
            break;
        case KEY_PPAGE:
            d = -h;
            break;
        case KEY_NPAGE:
            d = h;
            break;
        case KEY_HOME:
            d = -1000000;
            break;
        case KEY_END:
            d = 1000000;
            break;
        case KEY_ENTER:
            if (list) {
                con_act_diff_version(c, selected_version(c));
            }
            return 1;
        default:
            return 0;
        }
        if (list) {
            long s = (long)c->ver_sel + d;
            c->ver_sel = s < 0 ? 0 : (s >= n ? n - 1 : (int)s);
        } else {
            long s = (long)c->pol_scroll + d;
            c->pol_scroll = s < 0 ? 0 : (s > 1000000 ? 1000000 : (int)s);
        }
        return 1;
    }
    switch (ch) {
    case L'y':
        c->pol_pane = 0;
        c->pol_scroll = 0;
        return 1;
    case L'v':
        c->pol_pane = 1;
        con_refresh_now(c, V_POLICY);
        return 1;
    case L'd':
        if (list) {
            con_act_diff_version(c, selected_version(c));
        } else {
            c->pol_pane = 2;
            c->pol_scroll = 0;
        }
        return 1;
    case L'\n':
    case L'\r':
        if (list) {
            con_act_diff_version(c, selected_version(c));
        }
        return 1;
    case L'r':
        if (!list) {
            con_msg(c, 1, "choose a version first: v (versions), select, then r");
            return 1;
        }
        con_act_rollback(c, selected_version(c));
        return 1;
    case L'a':
        con_act_apply(c);
        return 1;
    case L'f':
        con_act_diff_file(c);
        return 1;
    case L'k':
        return policy_key(c, KEY_UP, 1);
    case L'j':
        return policy_key(c, KEY_DOWN, 1);
    default:
        return 0;
    }
}

/* ---- dispatch ----------------------------------------------------------------------- */

void views_draw(struct con *c, int top, int bottom)
{
    for (int y = top; y < bottom; y++) {
        move(y, 0);
        clrtoeol();
    }
    switch (c->view) {
    case V_SESSIONS:
        draw_sessions(c, top, bottom);
        break;
    case V_DECISIONS:
        draw_decisions(c, top, bottom);
        break;
    case V_DETAIL:
        draw_detail(c, top, bottom);
        break;
    case V_REVOCATIONS:
        draw_revocations(c, top, bottom);
        break;
    case V_POLICY:
    default:
        draw_policy(c, top, bottom);
        break;
    }
}

int views_key(struct con *c, wint_t ch, int is_key)
{
    switch (c->view) {
    case V_SESSIONS:
        return sessions_key(c, ch, is_key);
    case V_DECISIONS:
        return decisions_key(c, ch, is_key);
    case V_DETAIL:
        return detail_key(c, ch, is_key);
    case V_REVOCATIONS:
        return revocations_key(c, ch, is_key);
    case V_POLICY:
    default:
        return policy_key(c, ch, is_key);
    }
}

const char *views_footer(const struct con *c)
{
    switch (c->view) {
    case V_SESSIONS:
        return " Enter detail  r revoke  u lock user  b block cert  / filter  s/S sort  ? help";
    case V_DECISIONS:
        return " p pause  Enter full row  / filter  c clear  a admin reads  End live  ? help";
    case V_DETAIL:
        return " r revoke  u lock user  b block cert  Up/Dn scroll  Esc back  ? help  q quit";
    case V_REVOCATIONS:
        return " a add  l lift  Enter details  Up/Dn select  Tab next view  ? help  q quit";
    case V_POLICY:
    default:
        return c->pol_pane == 1
                   ? " Enter/d diff vs active  r rollback  a apply file  f diff file  y yaml  ? "
                     "help"
                   : " y yaml  v versions  a apply file  f diff file  d last diff  ? help  q quit";
    }
}

void views_init(struct con *c)
{
    c->sort_col = SC_LAST;
    c->sort_desc = 1;
}

void views_help(struct con *c)
{
    con_popup(c, "gatehousectl console: keys",
              "Everywhere\n"
              "  1..5, Tab, Shift-Tab   switch view: Sessions, Decisions, Detail,\n"
              "                         Revocations, Policy\n"
              "  ?                      this help        Ctrl-L  repaint\n"
              "  q                      quit\n"
              "\n"
              "1 Sessions\n"
              "  Up/Down, PgUp/PgDn     select           Enter   session detail (view 3)\n"
              "  s / S                  next sort column / reverse the order\n"
              "  /                      filter (text in id, user, cert, client, state)\n"
              "  r                      revoke the session (closes its connections)\n"
              "  u                      lock its user (every session of the subject)\n"
              "  b                      block its certificate (the device)\n"
              "\n"
              "2 Decisions (live tail, newest at the bottom)\n"
              "  p or Space             pause / resume   End     back to live\n"
              "  Up/Down                select a row (pauses)\n"
              "  Enter                  the full decision row\n"
              "  / or f                 filter: subject=S route=R decision=allow|deny reason=R\n"
              "  c                      clear filters\n"
              "  a                      show/hide admin API reads (hidden by default:\n"
              "                         every console refresh is one)\n"
              "\n"
              "3 Session detail\n"
              "  Up/Down, PgUp/PgDn     scroll           Esc     back to sessions\n"
              "  r / u / b              revoke / lock user / block certificate\n"
              "\n"
              "4 Revocations\n"
              "  a                      add (kind, target, reason, expiry)\n"
              "  l                      lift the selected one\n"
              "  Enter                  details\n"
              "\n"
              "5 Policy\n"
              "  y / v / d              YAML / versions / last diff\n"
              "  a                      apply a policy file (validated, diff shown, y/n)\n"
              "  f                      diff the active policy against a file\n"
              "  in versions: Enter/d   diff the selected version against the active one\n"
              "               r         roll back to the selected version (diff shown, y/n)\n"
              "\n"
              "Every change asks for confirmation and states what it will do. The status\n"
              "line shows results, and \"reconnecting\" while the gateway is unreachable.\n",
              0, NULL, NULL, NULL);
}
