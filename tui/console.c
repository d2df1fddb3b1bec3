/*
 * console.c: the console's core -- one poll(2) loop over the keyboard and
 * the admin API connection, a tiny request scheduler, prompts and popups,
 * and the operator actions (revoke, lock user, block certificate, lift,
 * policy apply and rollback).
 *
 * Why this shape: an operator opens the console exactly when something is
 * wrong, often when the gateway is overloaded or restarting, so the UI must
 * never wait for the network. There is one connection and at most one
 * request in flight; the scheduler sends operator actions first, then
 * whichever periodic refresh is due (stats every second, the decision tail
 * every 500 ms while it is on screen, the rest when their view is shown).
 * A failed exchange marks the gateway "down": the status line says
 * "reconnecting", only a cheap stats probe is sent each second, and the
 * first answer brings everything back. Mutating actions are never retried
 * behind the operator's back; they report their own failure.
 *
 * Every action that changes the gateway asks for a reason where the log
 * wants one and then for y/n on a screen that states what will change
 * (the session, user or certificate affected; the policy diff).
 */
#include "tui/console.h"

#include <errno.h>
#include <langinfo.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wctype.h>

#include "gateway/base/util.h"
#include "tui/console_int.h"
#include "tui/diff.h"
#include "tui/fmt.h"

#define POLICY_FILE_MAX (1024 * 1024)
#define POLL_TIMEOUT_MS 5000 /* a periodic refresh; slower = gateway "down" */
#define ACTION_TIMEOUT_MS 15000
#define RETRY_MS 1000
#define DEC_FIRST_PAGE 200
#define DEC_FIRST_PAGE_HIDDEN 2000
#define DEC_PAGE 500

enum job_kind { J_STATS, J_SESSIONS, J_DECISIONS, J_DETAIL, J_REVS, J_POLICY, J_VERSIONS, J_USER };

struct result {
    int ok; /* an HTTP answer arrived */
    int status;
    json_t *json; /* parsed body, or NULL */
    const char *body;
    size_t len;
    char err[256]; /* transport error when !ok */
};

struct job {
    struct job *next;
    enum job_kind kind;
    char method[8];
    char path[2048];
    char *body;
    size_t body_len;
    const char *ctype;
    int gen;
    char arg[128];
    void (*done)(struct con *c, struct job *j, struct result *r);
};

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

int64_t con_now_ms(void)
{
    return gh_mono_us() / 1000;
}

/* ---- messages, prompts, popups ------------------------------------------------ */

void con_msg(struct con *c, int bad, const char *fmt, ...)
{
    char raw[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    tui_sanitize(raw, c->msg, sizeof(c->msg));
    c->msg_bad = bad;
    c->msg_until_ms = con_now_ms() + MSG_MS;
    c->dirty = 1;
}

void con_prompt(struct con *c, const char *label, const char *initial,
                void (*submit)(struct con *c, const char *text))
{
    struct prompt *p = &c->prompt;
    memset(p, 0, sizeof(*p));
    p->active = 1;
    snprintf(p->label, sizeof(p->label), "%s", label);
    p->submit = submit;
    if (initial != NULL) {
        mbstate_t st;
        memset(&st, 0, sizeof(st));
        const char *s = initial;
        size_t n = mbsrtowcs(p->buf, &s, sizeof(p->buf) / sizeof(p->buf[0]) - 1, &st);
        p->len = n == (size_t)-1 ? 0 : (int)n;
        p->buf[p->len] = L'\0';
    }
    c->dirty = 1;
}

static void free_lines(struct popup *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->lines[i]);
    }
    free(p->lines);
    p->lines = NULL;
    p->n = 0;
}

void con_popup_close(struct con *c)
{
    free_lines(&c->popup);
    memset(&c->popup, 0, sizeof(c->popup));
    c->dirty = 1;
}

void con_popup(struct con *c, const char *title, const char *text, int diff, const char *yes_label,
               void (*yes)(struct con *c), void (*no)(struct con *c))
{
    con_popup_close(c);
    struct popup *p = &c->popup;
    tui_sanitize(title, p->title, sizeof(p->title));
    p->diff = diff;
    p->confirm = yes != NULL;
    p->yes = yes;
    p->no = no;
    snprintf(p->yes_label, sizeof(p->yes_label), "%s", yes_label != NULL ? yes_label : "confirm");
    int cap = 0;
    const char *s = text != NULL ? text : "";
    while (p->n < 20000) {
        size_t l = strcspn(s, "\n");
        if (p->n == cap) {
            int nc = cap == 0 ? 32 : cap * 2;
            char **nl = realloc(p->lines, (size_t)nc * sizeof(char *));
            if (nl == NULL) {
                break;
            }
            p->lines = nl;
            cap = nc;
        }
        char *line = malloc(l + 1);
        char *clean = malloc(l * 1 + 1);
        if (line == NULL || clean == NULL) {
            free(line);
            free(clean);
            break;
        }
        memcpy(line, s, l);
        line[l] = '\0';
        /* Tabs in YAML/diffs become spaces; everything else unsafe is '?'. */
        for (size_t k = 0; k < l; k++) {
            if (line[k] == '\t') {
                line[k] = ' ';
            }
        }
        tui_sanitize(line, clean, l + 1);
        free(line);
        p->lines[p->n++] = clean;
        if (s[l] == '\0') {
            break;
        }
        s += l + 1;
    }
    p->active = 1;
    c->dirty = 1;
}

/* ---- requests --------------------------------------------------------------- */

static void job_free(struct job *j)
{
    if (j != NULL) {
        free(j->body);
        free(j);
    }
}

static struct job *job_new(enum job_kind kind, const char *method, const char *path,
                           void (*done)(struct con *, struct job *, struct result *))
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return NULL;
    }
    j->kind = kind;
    snprintf(j->method, sizeof(j->method), "%s", method);
    snprintf(j->path, sizeof(j->path), "%s", path);
    j->done = done;
    return j;
}

/* Queue an operator action (sent before any refresh). Takes body. */
static void enqueue(struct con *c, struct job *j)
{
    if (j == NULL) {
        con_msg(c, 1, "out of memory");
        return;
    }
    struct job **pp = &c->queue;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = j;
}

static void user_job(struct con *c, const char *method, const char *path, const char *body,
                     size_t len, const char *ctype,
                     void (*done)(struct con *, struct job *, struct result *))
{
    struct job *j = job_new(J_USER, method, path, done);
    if (j != NULL && body != NULL) {
        j->body = malloc(len + 1);
        if (j->body == NULL) {
            job_free(j);
            j = NULL;
        } else {
            memcpy(j->body, body, len);
            j->body[len] = '\0';
            j->body_len = len;
            j->ctype = ctype;
        }
    }
    enqueue(c, j);
}

static const char *http_why(const struct result *r, char *buf, size_t len)
{
    if (!r->ok) {
        snprintf(buf, len, "%s", r->err);
        return buf;
    }
    char e[256], why[96];
    tui_jtext(r->json, "error", "", e, sizeof(e));
    tui_jtext(r->json, "reason", "", why, sizeof(why));
    snprintf(buf, len, "HTTP %d%s%s%s%s%s", r->status, e[0] ? ": " : "", e, why[0] ? " (" : "", why,
             why[0] ? ")" : "");
    return buf;
}

static int ok2xx(const struct result *r)
{
    return r->ok && r->status >= 200 && r->status < 300;
}

/* ---- periodic refreshes ---------------------------------------------------- */

static void set_json(json_t **slot, json_t *v)
{
    json_incref(v);
    json_decref(*slot);
    *slot = v;
}

static void stats_done(struct con *c, struct job *j, struct result *r)
{
    (void)j;
    if (ok2xx(r) && json_is_object(r->json)) {
        set_json(&c->stats, r->json);
    }
}

static void sessions_done(struct con *c, struct job *j, struct result *r)
{
    (void)j;
    const json_t *a = json_object_get(r->json, "sessions");
    if (ok2xx(r) && json_is_array(a)) {
        set_json(&c->sessions, (json_t *)a);
    }
}

static void detail_done(struct con *c, struct job *j, struct result *r)
{
    if (strcmp(j->arg, c->detail_id) != 0 || !r->ok) {
        return;
    }
    if (r->status == 404) {
        c->detail_missing = 1;
        return;
    }
    if (ok2xx(r) && json_is_object(r->json)) {
        c->detail_missing = 0;
        set_json(&c->detail, r->json);
    }
}

static void revs_done(struct con *c, struct job *j, struct result *r)
{
    (void)j;
    const json_t *a = json_object_get(r->json, "revocations");
    if (ok2xx(r) && json_is_array(a)) {
        set_json(&c->revs, (json_t *)a);
    }
}

static void policy_done(struct con *c, struct job *j, struct result *r)
{
    (void)j;
    if (ok2xx(r) && json_is_object(r->json)) {
        set_json(&c->policy, r->json);
    }
}

static void versions_done(struct con *c, struct job *j, struct result *r)
{
    (void)j;
    const json_t *a = json_object_get(r->json, "versions");
    if (ok2xx(r) && json_is_array(a)) {
        set_json(&c->versions, (json_t *)a);
    }
}

static int by_id(const void *a, const void *b)
{
    int64_t x = tui_jint(*(json_t *const *)a, "id", 0);
    int64_t y = tui_jint(*(json_t *const *)b, "id", 0);
    return x < y ? -1 : x > y;
}

void con_dec_reset(struct con *c)
{
    for (int i = 0; i < c->ndec; i++) {
        json_decref(c->dec[i]);
    }
    c->ndec = 0;
    c->dec_after = 0;
    c->dec_loaded = 0;
    c->dec_gap = 0;
    c->dec_new_while_paused = 0;
    c->dec_sel_id = 0;
    c->dec_gen++;
    c->due_decisions = 0;
    c->dirty = 1;
}

/* A successful read of the admin API: every refresh of every console is one,
 * so the tail hides them unless asked (key a). The route name alone cannot
 * tell: a user route may be called "admin" too (examples/gatehouse.yaml has
 * one), and hiding its GETs would hide requests, denials included, that the
 * operator is watching for. Only the gateway's admin code logs reason
 * admin_ok (gw_ctl_log_admin, docs/ADMIN-API.md "Decision rows"); a user
 * route's rows carry policy, token or HTTP reasons. So a row is hidden only
 * if it is an allowed GET on route "admin" with reason admin_ok: a deny, or
 * any other reason, is always shown. */
static int admin_read(const json_t *d)
{
    const char *route = tui_jstr(d, "route");
    const char *m = tui_jstr(d, "method");
    const char *dec = tui_jstr(d, "decision");
    const char *why = tui_jstr(d, "reason");
    return route != NULL && m != NULL && dec != NULL && why != NULL &&
           strcmp(route, "admin") == 0 && strcmp(m, "GET") == 0 && strcmp(dec, "allow") == 0 &&
           strcmp(why, "admin_ok") == 0;
}

static void decisions_done(struct con *c, struct job *j, struct result *r)
{
    if (j->gen != c->dec_gen || !ok2xx(r)) {
        return; /* filters changed while it was in flight */
    }
    const json_t *a = json_object_get(r->json, "decisions");
    if (!json_is_array(a)) {
        return;
    }
    size_t n = json_array_size(a);
    json_t **v = calloc(n + 1, sizeof(json_t *));
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = json_array_get(a, i);
    }
    qsort(v, n, sizeof(json_t *), by_id);
    if (c->dec_loaded && n >= DEC_PAGE) {
        c->dec_gap = 1;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t id = tui_jint(v[i], "id", 0);
        if (!json_is_object(v[i]) || id <= c->dec_after) {
            continue;
        }
        if (!c->dec_show_admin && admin_read(v[i])) {
            c->dec_after = id; /* the console's own polls: not news */
            continue;
        }
        if (c->ndec == DEC_RING) {
            json_decref(c->dec[0]);
            memmove(&c->dec[0], &c->dec[1], (DEC_RING - 1) * sizeof(json_t *));
            c->ndec--;
        }
        json_incref(v[i]);
        c->dec[c->ndec++] = v[i];
        c->dec_after = id;
        if (c->dec_paused) {
            c->dec_new_while_paused++;
        }
    }
    free(v);
    c->dec_loaded = 1;
}

static int append_param(char *path, size_t len, const char *name, const char *val)
{
    char esc[512];
    if (val[0] == '\0') {
        return 0;
    }
    if (tui_url_escape(val, esc, sizeof(esc)) != 0) {
        return -1;
    }
    size_t o = strlen(path);
    int n = snprintf(path + o, len - o, "&%s=%s", name, esc);
    return n < 0 || (size_t)n >= len - o ? -1 : 0;
}

static struct job *decisions_job(struct con *c)
{
    char path[2048];
    if (c->dec_loaded) {
        snprintf(path, sizeof(path), "/v1/decisions?after_id=%lld&limit=%d",
                 (long long)c->dec_after, DEC_PAGE);
    } else {
        /* The newest rows are mostly admin reads (every console's refreshes)
         * when those are hidden: look further back on the first load. */
        snprintf(path, sizeof(path), "/v1/decisions?limit=%d",
                 c->dec_show_admin ? DEC_FIRST_PAGE : DEC_FIRST_PAGE_HIDDEN);
    }
    if (append_param(path, sizeof(path), "subject", c->df.subject) != 0 ||
        append_param(path, sizeof(path), "route", c->df.route) != 0 ||
        append_param(path, sizeof(path), "decision", c->df.decision) != 0 ||
        append_param(path, sizeof(path), "reason", c->df.reason) != 0) {
        return NULL;
    }
    struct job *j = job_new(J_DECISIONS, "GET", path, decisions_done);
    if (j != NULL) {
        j->gen = c->dec_gen;
    }
    return j;
}

void con_refresh_now(struct con *c, enum view v)
{
    switch (v) {
    case V_SESSIONS:
        c->due_sessions = 0;
        break;
    case V_DECISIONS:
        c->due_decisions = 0;
        break;
    case V_DETAIL:
        c->due_detail = 0;
        break;
    case V_REVOCATIONS:
        c->due_revs = 0;
        break;
    case V_POLICY:
    default:
        c->due_policy = 0;
        break;
    }
}

/* The next refresh that is due, or NULL. Sets its next due time. */
static struct job *due_job(struct con *c, int64_t now)
{
    if (now >= c->due_stats) {
        c->due_stats = now + 1000;
        return job_new(J_STATS, "GET", "/v1/stats", stats_done);
    }
    if (c->online != 1) {
        return NULL; /* down: only the stats probe, until it answers */
    }
    if (now >= c->due_decisions) {
        c->due_decisions = now + (c->view == V_DECISIONS ? 500 : 3000);
        return decisions_job(c);
    }
    if (now >= c->due_sessions) {
        c->due_sessions = now + (c->view == V_SESSIONS || c->view == V_DETAIL ? 1000 : 5000);
        return job_new(J_SESSIONS, "GET", "/v1/sessions?limit=500", sessions_done);
    }
    if (c->view == V_DETAIL && c->detail_id[0] != '\0' && now >= c->due_detail) {
        char esc[200], path[256];
        c->due_detail = now + 1000;
        if (tui_url_escape(c->detail_id, esc, sizeof(esc)) != 0) {
            return NULL;
        }
        snprintf(path, sizeof(path), "/v1/sessions/%s", esc);
        struct job *j = job_new(J_DETAIL, "GET", path, detail_done);
        if (j != NULL) {
            snprintf(j->arg, sizeof(j->arg), "%s", c->detail_id);
        }
        return j;
    }
    if ((c->view == V_REVOCATIONS || c->revs == NULL) && now >= c->due_revs) {
        c->due_revs = now + (c->view == V_REVOCATIONS ? 2000 : 30000);
        return job_new(J_REVS, "GET", "/v1/revocations", revs_done);
    }
    if ((c->view == V_POLICY || c->policy == NULL) && now >= c->due_policy) {
        c->due_policy = now + (c->view == V_POLICY ? 5000 : 60000);
        c->due_versions = 0; /* the versions list follows on the next turn */
        return job_new(J_POLICY, "GET", "/v1/policy", policy_done);
    }
    if (c->view == V_POLICY && now >= c->due_versions) {
        c->due_versions = now + 5000;
        return job_new(J_VERSIONS, "GET", "/v1/policy/versions", versions_done);
    }
    return NULL;
}

static void finish(struct con *c, int done, const struct gh_err *e);

static void schedule(struct con *c)
{
    if (c->inflight != NULL) {
        return;
    }
    int64_t now = con_now_ms();
    struct job *j = NULL;
    if (c->queue != NULL) {
        j = c->queue;
        c->queue = j->next;
        j->next = NULL;
    } else if (now >= c->retry_at_ms) {
        j = due_job(c, now);
    }
    if (j == NULL) {
        return;
    }
    struct tui_request rq = {
        .method = j->method,
        .path = j->path,
        .content_type = j->ctype,
        .body = j->body,
        .body_len = j->body_len,
        .timeout_ms = j->kind == J_USER ? ACTION_TIMEOUT_MS : POLL_TIMEOUT_MS,
    };
    c->inflight = j;
    struct gh_err e;
    gh_err_clear(&e);
    if (tui_client_begin(c->cl, &rq, &e) != 0) {
        finish(c, 0, &e);
    }
}

static void finish(struct con *c, int done, const struct gh_err *e)
{
    struct job *j = c->inflight;
    struct result r;
    memset(&r, 0, sizeof(r));
    int64_t now = con_now_ms();
    if (done) {
        struct tui_resp *resp = tui_client_resp(c->cl);
        r.ok = 1;
        r.status = resp->status;
        r.body = resp->body != NULL ? resp->body : "";
        r.len = resp->body_len;
        if (r.len > 0) {
            r.json = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, NULL);
        }
        if (c->online != 1) {
            c->due_sessions = c->due_decisions = c->due_detail = 0;
            c->due_revs = c->due_policy = c->due_versions = 0;
        }
        c->online = 1;
        c->last_ok_ms = now;
        c->down_msg[0] = '\0';
    } else {
        snprintf(r.err, sizeof(r.err), "%s", e->msg);
        c->online = 0;
        tui_sanitize(e->msg, c->down_msg, sizeof(c->down_msg));
        c->retry_at_ms = now + RETRY_MS;
        c->due_stats = 0;
    }
    c->inflight = NULL;
    j->done(c, j, &r);
    json_decref(r.json);
    tui_client_end(c->cl);
    job_free(j);
    c->dirty = 1;
}

static void pump(struct con *c)
{
    if (c->inflight == NULL) {
        return;
    }
    struct gh_err e;
    gh_err_clear(&e);
    int rc = tui_client_step(c->cl, &e);
    if (rc == TUI_IO_DONE) {
        finish(c, 1, &e);
    } else if (rc == TUI_IO_ERROR) {
        finish(c, 0, &e);
    }
}

/* ---- actions: revoke / lock / block ------------------------------------------ */

static void act_reset(struct con *c)
{
    free(c->act.yaml);
    memset(&c->act, 0, sizeof(c->act));
}

static void act_cancel(struct con *c)
{
    act_reset(c);
    con_msg(c, 0, "cancelled; nothing changed");
}

static const char *kind_label(const char *kind)
{
    if (strcmp(kind, "session") == 0) {
        return "revoke session";
    }
    if (strcmp(kind, "subject") == 0) {
        return "lock user";
    }
    if (strcmp(kind, "cert") == 0) {
        return "block certificate";
    }
    return "revoke token";
}

static void revoke_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    (void)j;
    if (!ok2xx(r)) {
        con_msg(c, 1, "%s failed: %s", kind_label(c->act.kind_s), http_why(r, why, sizeof(why)));
        act_reset(c);
        return;
    }
    const json_t *rv = json_object_get(r->json, "revocation");
    long long closed = (long long)tui_jint(r->json, "closed_connections", 0);
    char id[32];
    tui_jtext(rv, "id", "?", id, sizeof(id));
    char tgt[300];
    tui_sanitize(c->act.target, tgt, sizeof(tgt));
    size_t k = tui_text_fit(tgt, 12, sizeof(tgt) - 4);
    if (tgt[k] != '\0') {
        /* Cut on a character boundary (a byte cut could split UTF-8). */
        snprintf(tgt + k, sizeof(tgt) - k, "%s", c->utf8 ? "\u2026" : "...");
    }
    con_msg(c, 0, "done: %s %s (revocation #%s), %lld live connection%s closed",
            kind_label(c->act.kind_s), tgt, id, closed, closed == 1 ? "" : "s");
    act_reset(c);
    con_refresh_now(c, V_SESSIONS);
    con_refresh_now(c, V_DETAIL);
    con_refresh_now(c, V_REVOCATIONS);
    con_refresh_now(c, V_DECISIONS);
}

static void revoke_confirmed(struct con *c)
{
    json_t *b = json_pack("{s:s, s:s, s:s}", "kind", c->act.kind_s, "target", c->act.target,
                          "reason", c->act.reason);
    if (b != NULL && c->act.expires_s > 0) {
        json_object_set_new(b, "expires_in_s", json_integer(c->act.expires_s));
    }
    char *txt = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (txt == NULL) {
        con_msg(c, 1, "cannot encode the request (invalid UTF-8?)");
        act_reset(c);
        return;
    }
    user_job(c, "POST", "/v1/revocations", txt, strlen(txt), NULL, revoke_done);
    free(txt);
    con_msg(c, 0, "%s: sending...", kind_label(c->act.kind_s));
}

static void revoke_ask_confirm(struct con *c)
{
    char text[sizeof(c->act.describe) + sizeof(c->act.reason) + 1024];
    const char *effect;
    if (strcmp(c->act.kind_s, "session") == 0) {
        effect = "Its live connections are closed now; its current tokens are refused.\n"
                 "A fresh login starts a new session.";
    } else if (strcmp(c->act.kind_s, "subject") == 0) {
        effect = "Every session of this user is closed now and refused until the\n"
                 "lock is lifted (view 4, key l) or expires.";
    } else if (strcmp(c->act.kind_s, "cert") == 0) {
        effect = "Every connection with this certificate is closed now; handshakes\n"
                 "and requests with it are refused until the block is lifted.";
    } else {
        effect = "Requests with this token id are refused until the token expires.";
    }
    char exp[64] = "never";
    if (c->act.expires_s > 0) {
        tui_fmt_dur(c->act.expires_s, exp, sizeof(exp));
    }
    snprintf(text, sizeof(text), "%s\n\n  reason   %s\n  expires  %s\n\n%s", c->act.describe,
             c->act.reason[0] ? c->act.reason : "(none)", exp, effect);
    char title[96];
    snprintf(title, sizeof(title), "Confirm: %s", kind_label(c->act.kind_s));
    con_popup(c, title, text, 0, kind_label(c->act.kind_s), revoke_confirmed, act_cancel);
}

static void revoke_reason(struct con *c, const char *text)
{
    snprintf(c->act.reason, sizeof(c->act.reason), "%s", text);
    revoke_ask_confirm(c);
}

void con_act_session(struct con *c, const json_t *s, const char *kind)
{
    if (s == NULL) {
        con_msg(c, 1, "no session selected");
        return;
    }
    act_reset(c);
    const char *key = strcmp(kind, "session") == 0   ? "id"
                      : strcmp(kind, "subject") == 0 ? "subject"
                                                     : "cert_thumbprint";
    const char *t = tui_jstr(s, key);
    if (t == NULL || t[0] == '\0') {
        con_msg(c, 1, "this session has no %s to act on", key);
        return;
    }
    if (strlen(t) >= sizeof(c->act.target)) {
        /* Revoking a shortened subject would lock someone else, or no one. */
        con_msg(c, 1, "this session's %s is too long to act on here", key);
        return;
    }
    c->act.kind = ACT_REVOKE;
    snprintf(c->act.kind_s, sizeof(c->act.kind_s), "%s", kind);
    snprintf(c->act.target, sizeof(c->act.target), "%s", t);
    /* The operator confirms on what is shown: a value too long for its
     * buffer ends with a mark instead of being cut silently. */
    char id[40], sub[300], cs[600], th[72], addr[64], conns[24];
    tui_jtext_marked(s, "id", "-", id, sizeof(id));
    tui_jtext_marked(s, "subject", "-", sub, sizeof(sub));
    tui_jtext_marked(s, "cert_subject", "-", cs, sizeof(cs));
    tui_jtext_marked(s, "cert_thumbprint", "-", th, sizeof(th));
    tui_jtext_marked(s, "client_addr", "-", addr, sizeof(addr));
    tui_jtext(s, "live_connections", "0", conns, sizeof(conns));
    const char *what = strcmp(kind, "session") == 0   ? "Revoke this session"
                       : strcmp(kind, "subject") == 0 ? "Lock this user (all sessions)"
                                                      : "Block this certificate (device)";
    snprintf(c->act.describe, sizeof(c->act.describe),
             "%s?\n\n  session  %s\n  user     %s\n  cert     %s\n  sha256   %s\n"
             "  client   %s, %s live connection%s",
             what, id, sub, cs, th, addr, conns, strcmp(conns, "1") == 0 ? "" : "s");
    char label[96];
    snprintf(label, sizeof(label), "Reason to %s (Enter: none, Esc: cancel): ", kind_label(kind));
    con_prompt(c, label, NULL, revoke_reason);
}

/* Revocations view: add one by hand. */
static void add_expires(struct con *c, const char *text)
{
    int64_t s = 0;
    if (text[0] != '\0' && tui_parse_dur(text, &s) != 0) {
        con_msg(c, 1, "'%s' is not a duration (3600, 90m, 12h, 7d)", text);
        act_reset(c);
        return;
    }
    c->act.expires_s = s;
    revoke_ask_confirm(c);
}

static void add_reason(struct con *c, const char *text)
{
    snprintf(c->act.reason, sizeof(c->act.reason), "%s", text);
    con_prompt(c, "Expires in (3600, 12h, 7d; Enter: never): ", NULL, add_expires);
}

static void add_target(struct con *c, const char *text)
{
    if (text[0] == '\0') {
        act_cancel(c);
        return;
    }
    snprintf(c->act.target, sizeof(c->act.target), "%s", text);
    char t[300];
    tui_sanitize(text, t, sizeof(t));
    snprintf(c->act.describe, sizeof(c->act.describe),
             "Add a revocation?\n\n  kind     %s\n"
             "  target   %s",
             c->act.kind_s, t);
    con_prompt(c, "Reason (Enter: none): ", NULL, add_reason);
}

static void add_kind(struct con *c, const char *text)
{
    const char *k = NULL;
    if (strcmp(text, "session") == 0 || strcmp(text, "s") == 0) {
        k = "session";
    } else if (strcmp(text, "user") == 0 || strcmp(text, "subject") == 0 ||
               strcmp(text, "u") == 0) {
        k = "subject";
    } else if (strcmp(text, "cert") == 0 || strcmp(text, "c") == 0) {
        k = "cert";
    } else if (strcmp(text, "token") == 0 || strcmp(text, "t") == 0) {
        k = "token";
    }
    if (k == NULL) {
        con_msg(c, 1, "kind must be session, user, cert or token");
        act_reset(c);
        return;
    }
    c->act.kind = ACT_REVOKE;
    snprintf(c->act.kind_s, sizeof(c->act.kind_s), "%s", k);
    const char *label = strcmp(k, "session") == 0   ? "Session id: "
                        : strcmp(k, "subject") == 0 ? "User (token subject): "
                        : strcmp(k, "cert") == 0    ? "Certificate SHA-256 thumbprint: "
                                                    : "Token id (jti): ";
    con_prompt(c, label, NULL, add_target);
}

void con_act_add_revocation(struct con *c)
{
    act_reset(c);
    con_prompt(c, "Kind (session, user, cert, token): ", NULL, add_kind);
}

static void lift_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    (void)j;
    if (ok2xx(r)) {
        con_msg(c, 0, "done: revocation #%lld lifted", (long long)c->act.id);
    } else {
        con_msg(c, 1, "lift #%lld failed: %s", (long long)c->act.id, http_why(r, why, sizeof(why)));
    }
    act_reset(c);
    con_refresh_now(c, V_REVOCATIONS);
    con_refresh_now(c, V_SESSIONS);
}

static void lift_confirmed(struct con *c)
{
    char path[64];
    snprintf(path, sizeof(path), "/v1/revocations/%lld", (long long)c->act.id);
    user_job(c, "DELETE", path, NULL, 0, NULL, lift_done);
    con_msg(c, 0, "lifting #%lld...", (long long)c->act.id);
}

void con_act_lift(struct con *c, const json_t *rv)
{
    if (rv == NULL) {
        con_msg(c, 1, "no revocation selected");
        return;
    }
    act_reset(c);
    c->act.kind = ACT_LIFT;
    c->act.id = tui_jint(rv, "id", 0);
    char kind[32], tgt[300], why[200];
    tui_jtext(rv, "kind", "-", kind, sizeof(kind));
    tui_jtext(rv, "target", "-", tgt, sizeof(tgt));
    tui_jtext(rv, "reason", "-", why, sizeof(why));
    char text[1024];
    snprintf(text, sizeof(text),
             "Lift revocation #%lld?\n\n  kind     %s\n  target   %s\n  reason   %s\n\n"
             "Requests it refuses are allowed again (subject to policy).",
             (long long)c->act.id, kind, tgt, why);
    con_popup(c, "Confirm: lift revocation", text, 0, "lift", lift_confirmed, act_cancel);
}

/* ---- actions: policy ---------------------------------------------------------- */

/* The last component of a path, for status lines that must fit 80 columns. */
static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL && s[1] != '\0' ? s + 1 : path;
}

static const char *active_version(struct con *c)
{
    const char *v = tui_jstr(c->policy, "version");
    return v != NULL ? v : "";
}

static void errors_text(const json_t *j, const char *file, char *out, size_t len)
{
    size_t o = 0;
    const json_t *errs = json_object_get(j, "errors");
    size_t i;
    const json_t *e;
    out[0] = '\0';
    json_array_foreach (errs, i, e) {
        char line[1200];
        tui_policy_error_text(e, file, line, sizeof(line));
        int n = snprintf(out + o, len - o, "%s\n", line);
        if (n < 0 || (size_t)n >= len - o) {
            break;
        }
        o += (size_t)n;
    }
    if (o == 0) {
        char m[512];
        snprintf(out, len, "%s: %s\n", file, tui_jtext(j, "error", "policy refused", m, sizeof(m)));
    }
}

static void policy_refused(struct con *c, const struct result *r, const char *stage)
{
    char errs[8192], text[9000], v[16];
    errors_text(r->json, c->act.file, errs, sizeof(errs));
    snprintf(v, sizeof(v), "%.12s", active_version(c));
    snprintf(text, sizeof(text), "%s\nThe policy was NOT %s. Active version %s is unchanged.", errs,
             stage, v[0] ? v : "-");
    con_popup(c, "Policy refused", text, 0, NULL, NULL, NULL);
    con_msg(c, 1, "policy refused: %s not applied; active policy unchanged",
            base_name(c->act.file));
}

static void apply_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    (void)j;
    if (ok2xx(r) && !json_is_false(json_object_get(r->json, "ok"))) {
        char v[16], pv[16];
        snprintf(v, sizeof(v), "%.12s",
                 tui_jstr(r->json, "version") ? tui_jstr(r->json, "version") : "?");
        snprintf(pv, sizeof(pv), "%.12s",
                 tui_jstr(r->json, "previous") ? tui_jstr(r->json, "previous") : "?");
        con_msg(c, 0, "applied %s: active policy version %s (was %s)", base_name(c->act.file), v,
                pv);
    } else if (r->ok && r->status >= 400 && r->status < 500 && r->json != NULL) {
        policy_refused(c, r, "applied");
    } else {
        con_msg(c, 1, "apply failed: %s", http_why(r, why, sizeof(why)));
    }
    act_reset(c);
    con_refresh_now(c, V_POLICY);
}

static void apply_confirmed(struct con *c)
{
    user_job(c, "POST", "/v1/policy/apply", c->act.yaml, c->act.yaml_len, "application/yaml",
             apply_done);
    con_msg(c, 0, "applying %s...", base_name(c->act.file));
}

static void validate_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    (void)j;
    int invalid = json_is_false(json_object_get(r->json, "ok")) ||
                  json_array_size(json_object_get(r->json, "errors")) > 0;
    if (r->ok && r->json != NULL && (invalid || (r->status >= 400 && r->status < 500))) {
        policy_refused(c, r, "applied");
        act_reset(c);
        return;
    }
    if (!ok2xx(r)) {
        con_msg(c, 1, "validate failed: %s", http_why(r, why, sizeof(why)));
        act_reset(c);
        return;
    }
    const char *src = tui_jstr(c->policy, "source");
    char from[64];
    struct gh_err e;
    snprintf(from, sizeof(from), "active %.12s", active_version(c));
    char *d = tui_diff(src != NULL ? src : "", src != NULL ? strlen(src) : 0, c->act.yaml,
                       c->act.yaml_len, from, c->act.file, &e);
    char title[200];
    snprintf(title, sizeof(title), "Apply %.150s? (valid; changes below)", base_name(c->act.file));
    if (d == NULL) {
        char text[512];
        snprintf(text, sizeof(text), "The file is valid, but: %s", e.msg);
        con_popup(c, title, text, 0, "apply", apply_confirmed, act_cancel);
    } else {
        con_popup(c, title, d[0] ? d : "(identical to the active policy: nothing changes)", 1,
                  "apply", apply_confirmed, act_cancel);
        free(d);
    }
}

static void apply_file(struct con *c, const char *path)
{
    if (path[0] == '\0') {
        act_cancel(c);
        return;
    }
    struct gh_err e;
    act_reset(c);
    c->act.kind = ACT_APPLY;
    snprintf(c->act.file, sizeof(c->act.file), "%s", path);
    c->act.yaml = tui_read_file(path, POLICY_FILE_MAX, &c->act.yaml_len, &e);
    if (c->act.yaml == NULL) {
        con_msg(c, 1, "%s", e.msg);
        act_reset(c);
        return;
    }
    if (c->policy == NULL) {
        con_msg(c, 1, "the active policy is not loaded yet; try again in a moment");
        act_reset(c);
        return;
    }
    user_job(c, "POST", "/v1/policy/validate", c->act.yaml, c->act.yaml_len, "application/yaml",
             validate_done);
    con_msg(c, 0, "validating %s...", base_name(path));
}

void con_act_apply(struct con *c)
{
    con_prompt(c, "Apply policy file: ", NULL, apply_file);
}

static void rollback_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    (void)j;
    if (ok2xx(r)) {
        con_msg(c, 0, "rolled back: active policy version %.12s", c->act.version);
    } else {
        con_msg(c, 1, "rollback failed: %s", http_why(r, why, sizeof(why)));
    }
    act_reset(c);
    con_refresh_now(c, V_POLICY);
}

static void rollback_confirmed(struct con *c)
{
    json_t *b = json_pack("{s:s}", "version", c->act.version);
    char *txt = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (txt == NULL) {
        act_reset(c);
        return;
    }
    user_job(c, "POST", "/v1/policy/rollback", txt, strlen(txt), NULL, rollback_done);
    free(txt);
    con_msg(c, 0, "rolling back to %.12s...", c->act.version);
}

static void rollback_diff_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    (void)j;
    if (!ok2xx(r)) {
        con_msg(c, 1, "cannot diff: %s", http_why(r, why, sizeof(why)));
        act_reset(c);
        return;
    }
    const char *d = tui_jstr(r->json, "diff");
    char title[160];
    snprintf(title, sizeof(title), "Roll back to version %.12s? (changes below)", c->act.version);
    con_popup(c, title, d != NULL && d[0] ? d : "(same as the active policy: nothing changes)", 1,
              "roll back", rollback_confirmed, act_cancel);
}

static int diff_path(struct con *c, const char *from, const char *to, char *path, size_t len)
{
    char ef[200], et[200];
    if (tui_url_escape(from, ef, sizeof(ef)) != 0 || tui_url_escape(to, et, sizeof(et)) != 0) {
        con_msg(c, 1, "version too long");
        return -1;
    }
    snprintf(path, len, "/v1/policy/diff?from=%s%s%s", ef, to[0] ? "&to=" : "", et);
    return 0;
}

void con_act_rollback(struct con *c, const char *version)
{
    char path[512];
    if (version == NULL || c->policy == NULL) {
        con_msg(c, 1, "no version selected");
        return;
    }
    if (strcmp(version, active_version(c)) == 0) {
        con_msg(c, 1, "version %.12s is already active", version);
        return;
    }
    act_reset(c);
    c->act.kind = ACT_ROLLBACK;
    snprintf(c->act.version, sizeof(c->act.version), "%s", version);
    if (diff_path(c, active_version(c), version, path, sizeof(path)) != 0) {
        act_reset(c);
        return;
    }
    user_job(c, "GET", path, NULL, 0, NULL, rollback_diff_done);
    con_msg(c, 0, "computing what a rollback to %.12s changes...", version);
}

static void diff_version_done(struct con *c, struct job *j, struct result *r)
{
    char why[400];
    if (!ok2xx(r)) {
        con_msg(c, 1, "cannot diff: %s", http_why(r, why, sizeof(why)));
        return;
    }
    const char *d = tui_jstr(r->json, "diff");
    free(c->diff_text);
    c->diff_text = strdup(d != NULL && d[0] ? d : "(no differences)\n");
    snprintf(c->diff_title, sizeof(c->diff_title), "diff %.12s -> active %.12s", j->arg,
             active_version(c));
    c->pol_pane = 2;
    c->pol_scroll = 0;
}

void con_act_diff_version(struct con *c, const char *version)
{
    char path[512];
    if (version == NULL) {
        con_msg(c, 1, "no version selected");
        return;
    }
    if (diff_path(c, version, "", path, sizeof(path)) != 0) {
        return;
    }
    struct job *j = job_new(J_USER, "GET", path, diff_version_done);
    if (j != NULL) {
        snprintf(j->arg, sizeof(j->arg), "%s", version);
    }
    enqueue(c, j);
}

static void diff_file(struct con *c, const char *path)
{
    struct gh_err e;
    size_t len = 0;
    if (path[0] == '\0') {
        return;
    }
    char *yaml = tui_read_file(path, POLICY_FILE_MAX, &len, &e);
    if (yaml == NULL) {
        con_msg(c, 1, "%s", e.msg);
        return;
    }
    const char *src = tui_jstr(c->policy, "source");
    char from[64];
    snprintf(from, sizeof(from), "active %.12s", active_version(c));
    char *d =
        tui_diff(src != NULL ? src : "", src != NULL ? strlen(src) : 0, yaml, len, from, path, &e);
    free(yaml);
    if (d == NULL) {
        con_msg(c, 1, "%s", e.msg);
        return;
    }
    free(c->diff_text);
    c->diff_text = d[0] ? d : strdup("(identical to the active policy)\n");
    if (!d[0]) {
        free(d);
    }
    snprintf(c->diff_title, sizeof(c->diff_title), "diff active %.12s -> %s", active_version(c),
             path);
    c->pol_pane = 2;
    c->pol_scroll = 0;
    c->dirty = 1;
}

void con_act_diff_file(struct con *c)
{
    con_prompt(c, "Diff the active policy against file: ", NULL, diff_file);
}

/* ---- input --------------------------------------------------------------- */

static void prompt_key(struct con *c, wint_t ch, int is_key)
{
    struct prompt *p = &c->prompt;
    if ((!is_key && (ch == L'\n' || ch == L'\r')) || (is_key && ch == KEY_ENTER)) {
        char out[1024];
        mbstate_t st;
        memset(&st, 0, sizeof(st));
        p->buf[p->len] = L'\0';
        const wchar_t *src = p->buf;
        size_t n = wcsrtombs(out, &src, sizeof(out) - 1, &st);
        if (n == (size_t)-1) {
            n = 0;
        }
        out[n] = '\0';
        void (*submit)(struct con *, const char *) = p->submit;
        memset(p, 0, sizeof(*p));
        submit(c, out);
        return;
    }
    if (!is_key && ch == 27) {
        memset(p, 0, sizeof(*p));
        act_cancel(c);
        return;
    }
    if ((is_key && ch == KEY_BACKSPACE) || (!is_key && (ch == 127 || ch == 8))) {
        if (p->len > 0) {
            p->len--;
        }
        return;
    }
    if (!is_key && ch == 21) { /* ^U */
        p->len = 0;
        return;
    }
    if (!is_key && ch >= 32 && ch != 127 && iswprint(ch) &&
        p->len < (int)(sizeof(p->buf) / sizeof(p->buf[0])) - 1) {
        p->buf[p->len++] = (wchar_t)ch;
    }
}

static void popup_key(struct con *c, wint_t ch, int is_key)
{
    struct popup *p = &c->popup;
    int page = p->page > 0 ? p->page : 1;
    int last = p->nrows - page > 0 ? p->nrows - page : 0; /* draw clamps again */
    if (is_key) {
        switch (ch) {
        case KEY_UP:
            p->scroll--;
            break;
        case KEY_DOWN:
            p->scroll++;
            break;
        case KEY_PPAGE:
            p->scroll -= page;
            break;
        case KEY_NPAGE:
            p->scroll += page;
            break;
        case KEY_HOME:
            p->scroll = 0;
            break;
        case KEY_END:
            p->scroll = last;
            break;
        case KEY_ENTER:
            if (!p->confirm) {
                con_popup_close(c);
            }
            return;
        default:
            break;
        }
        if (p->scroll > last) {
            p->scroll = last;
        }
        if (p->scroll < 0) {
            p->scroll = 0;
        }
        return;
    }
    if (p->confirm) {
        if (ch == L'y' || ch == L'Y') {
            void (*yes)(struct con *) = p->yes;
            con_popup_close(c);
            yes(c);
        } else if (ch == L'n' || ch == L'N' || ch == 27 || ch == L'q') {
            void (*no)(struct con *) = p->no;
            con_popup_close(c);
            if (no != NULL) {
                no(c);
            }
        } else if (ch == L' ') {
            p->scroll = p->scroll + page > last ? last : p->scroll + page;
        }
        return;
    }
    if (ch == 27 || ch == L'q' || ch == L'\n' || ch == L'\r' || ch == L' ') {
        con_popup_close(c);
    }
}

void con_detail_select(struct con *c, const char *id)
{
    if (strcmp(id, c->detail_id) != 0) {
        json_decref(c->detail);
        c->detail = NULL;
        c->detail_missing = 0;
        c->detail_scroll = 0;
        snprintf(c->detail_id, sizeof(c->detail_id), "%s", id);
    }
    c->due_detail = 0;
}

static void set_view(struct con *c, enum view v)
{
    if (v == V_DETAIL && c->sel_id[0] != '\0') {
        /* View 3 shows the session selected in view 1. */
        con_detail_select(c, c->sel_id);
    }
    if (c->view != v) {
        c->view = v;
        con_refresh_now(c, v);
        if (v == V_DETAIL) {
            c->due_sessions = 0;
        }
    }
}

static void handle_key(struct con *c, wint_t ch, int is_key)
{
    c->dirty = 1;
    if (is_key && ch == KEY_RESIZE) {
        getmaxyx(stdscr, c->rows, c->cols);
        clearok(curscr, TRUE);
        return;
    }
    if (!is_key && ch == 12) { /* ^L: repaint everything */
        clearok(curscr, TRUE);
        return;
    }
    if (c->prompt.active) {
        prompt_key(c, ch, is_key);
        return;
    }
    if (c->popup.active) {
        popup_key(c, ch, is_key);
        return;
    }
    if (!is_key) {
        if (ch == L'q' || ch == 3) {
            c->quit = 1;
            return;
        }
        if (ch == L'?') {
            views_help(c);
            return;
        }
        if (ch >= L'1' && ch <= L'5') {
            set_view(c, (enum view)(ch - L'1'));
            return;
        }
        if (ch == L'\t') {
            set_view(c, (enum view)((c->view + 1) % V__COUNT));
            return;
        }
    } else if (ch == KEY_BTAB) {
        set_view(c, (enum view)((c->view + V__COUNT - 1) % V__COUNT));
        return;
    }
    views_key(c, ch, is_key);
}

static void read_keys(struct con *c)
{
    wint_t ch;
    int r;
    int n = 0;
    while (n++ < 256 && (r = wget_wch(stdscr, &ch)) != ERR) {
        handle_key(c, ch, r == KEY_CODE_YES);
        if (c->quit) {
            break;
        }
    }
}

/* ---- screen ------------------------------------------------------------------ */

static void draw_header(struct con *c)
{
    attr_t h = con_attr(c, P_HEADER);
    char seg[12][96];
    int ns = 0;
    const json_t *s = c->stats;
    char a[64], b[64];
    tui_jtext(s, "name", "gatehouse", a, sizeof(a));
    tui_jtext(s, "version", "", b, sizeof(b));
    snprintf(seg[ns++], 96, "%.40s %.40s", a, b);
    if (s != NULL) {
        tui_fmt_dur(tui_jint(s, "uptime_s", 0), a, sizeof(a));
        snprintf(seg[ns++], 96, "up %s", a);
        snprintf(seg[ns++], 96, "%.1f req/s", tui_jreal(s, "req_per_s", 0));
        double dr = tui_jreal(s, "deny_rate", 0);
        snprintf(seg[ns++], 96, "deny %.1f%%", dr <= 1.0 ? dr * 100.0 : dr);
        snprintf(seg[ns++], 96, "sess %lld", (long long)tui_jint(s, "active_sessions", 0));
        snprintf(seg[ns++], 96, "conn %lld", (long long)tui_jint(s, "live_connections", 0));
        const json_t *l = json_object_get(s, "log");
        snprintf(seg[ns++], 96, "queue %lld", (long long)tui_jint(l, "queue_depth", 0));
        const json_t *k = json_object_get(s, "keys");
        if (json_is_object(k)) {
            tui_fmt_dur(tui_jint(k, "age_s", 0), a, sizeof(a));
            const char *le = tui_jstr(k, "last_error");
            snprintf(seg[ns++], 96, "keys %s%s", a, le != NULL && le[0] ? "!" : "");
        }
    }
    move(0, 0);
    attron(h);
    for (int i = 0; i < c->cols; i++) {
        addch(' ');
    }
    /* Everything on one line at 80 columns: narrower separators first,
     * then drop segments from the right. */
    int total = 0;
    for (int i = 0; i < ns; i++) {
        total += (int)tui_text_width(seg[i]);
    }
    int wide = total + 3 * (ns - 1) + 2 <= c->cols;
    const char *sep = wide ? (c->utf8 ? " \u2502 " : " | ") : (c->utf8 ? "\u2502" : "|");
    int sw = wide ? 3 : 1;
    int x = 1;
    for (int i = 0; i < ns; i++) {
        int w = (int)tui_text_width(seg[i]) + (i > 0 ? sw : 0);
        if (x + w > c->cols - 1) {
            break;
        }
        if (i > 0) {
            x += con_text(c, 0, x, sw, sep, h, 0);
        }
        x += con_text(c, 0, x, c->cols - x, seg[i], h | (i == 0 ? A_BOLD : 0), 0);
    }
    attroff(h);
    /* Tabs. */
    static const char *const names[] = {"Sessions", "Decisions", "Detail", "Revocations", "Policy"};
    move(1, 0);
    clrtoeol();
    x = 0;
    for (int i = 0; i < V__COUNT; i++) {
        char t[32];
        snprintf(t, sizeof(t), " %d %s ", i + 1, names[i]);
        attr_t at = i == (int)c->view ? con_attr(c, P_SELECT) | A_BOLD : con_attr(c, P_DIM);
        if (x + (int)strlen(t) > c->cols) {
            break;
        }
        x += con_text(c, 1, x, c->cols - x, t, at, 0);
        if (x < c->cols) {
            x++;
        }
    }
}

static void draw_status(struct con *c, int y)
{
    move(y, 0);
    clrtoeol();
    int64_t now = con_now_ms();
    if (c->prompt.active) {
        char buf[1200];
        mbstate_t st;
        memset(&st, 0, sizeof(st));
        c->prompt.buf[c->prompt.len] = L'\0';
        const wchar_t *src = c->prompt.buf;
        size_t n = wcsrtombs(buf, &src, sizeof(buf) - 1, &st);
        buf[n == (size_t)-1 ? 0 : n] = '\0';
        int x = con_text(c, y, 0, c->cols, c->prompt.label, A_BOLD, 0);
        /* Show the tail of long input so the cursor end stays visible. */
        const char *shown = buf;
        while (x + (int)tui_text_width(shown) >= c->cols && *shown != '\0') {
            shown++;
            while (((unsigned char)*shown & 0xc0) == 0x80) {
                shown++;
            }
        }
        x += con_text(c, y, x, c->cols - x, shown, A_NORMAL, 0);
        if (x < c->cols) {
            mvaddch(y, x, ' ' | A_REVERSE);
        }
        return;
    }
    if (c->online == 0) {
        char t[400], ago[48] = "";
        if (c->last_ok_ms > 0) {
            char d[24];
            tui_fmt_dur((now - c->last_ok_ms) / 1000, d, sizeof(d));
            snprintf(ago, sizeof(ago), " (data %s old)", d);
        }
        snprintf(t, sizeof(t), "%s%s %s", c->utf8 ? "reconnecting\u2026" : "reconnecting...", ago,
                 c->down_msg);
        con_text(c, y, 0, c->cols, t, con_attr(c, P_WARN) | A_BOLD, 1);
        return;
    }
    if (c->msg[0] != '\0' && now < c->msg_until_ms) {
        con_text(c, y, 0, c->cols, c->msg, con_attr(c, c->msg_bad ? P_DENY : P_OK) | A_BOLD, 1);
        return;
    }
    char t[512];
    if (c->online < 0) {
        snprintf(t, sizeof(t), "connecting to %s...", tui_client_target(c->cl));
    } else {
        snprintf(t, sizeof(t), "connected: %s", tui_client_target(c->cl));
    }
    con_text(c, y, 0, c->cols, t, con_attr(c, P_DIM), 1);
}

/* Bytes of s that fit in width columns, breaking after a space when the
 * line goes on (word wrap); at least one character. */
static size_t wrap_fit(const struct con *c, const char *s, size_t len, int width)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    size_t i = 0;
    size_t last_space = 0;
    int used = 0;
    while (i < len) {
        wchar_t wc;
        size_t l = 1;
        if (c->utf8) {
            l = mbrtowc(&wc, s + i, len - i, &st);
            if (l == (size_t)-1 || l == (size_t)-2 || l == 0) {
                memset(&st, 0, sizeof(st));
                l = 1;
                wc = L'?';
            }
        } else {
            wc = (unsigned char)s[i] < 0x80 ? (wchar_t)(unsigned char)s[i] : L'?';
        }
        int cw = wcwidth(wc);
        cw = cw < 0 ? 1 : cw;
        if (used + cw > width) {
            break;
        }
        used += cw;
        i += l;
        if (wc == L' ') {
            last_space = i;
        }
    }
    if (i == 0) {
        return len > 0 ? 1 : 0;
    }
    if (i < len && last_space > 0) {
        return last_space;
    }
    return i;
}

struct prow {
    int line;
    size_t off;
    size_t len;
};

/* The popup's lines wrapped to width tw. Returns a malloc'd array (count in
 * *n) or NULL. */
static struct prow *popup_rows(const struct con *c, const struct popup *p, int tw, int *n)
{
    int cap = p->n + 16;
    struct prow *r = malloc((size_t)cap * sizeof(*r));
    *n = 0;
    if (r == NULL) {
        return NULL;
    }
    for (int i = 0; i < p->n; i++) {
        const char *l = p->lines[i];
        size_t len = strlen(l);
        size_t off = 0;
        do {
            size_t k = wrap_fit(c, l + off, len - off, tw);
            if (*n == cap) {
                if (cap > 200000) {
                    return r;
                }
                cap *= 2;
                struct prow *nr = realloc(r, (size_t)cap * sizeof(*r));
                if (nr == NULL) {
                    return r;
                }
                r = nr;
            }
            r[(*n)++] = (struct prow){i, off, k};
            off += k;
        } while (off < len);
    }
    return r;
}

static void draw_popup(struct con *c)
{
    struct popup *p = &c->popup;
    int top = 3;
    int bottom = c->rows - 3; /* exclusive */
    int left = c->cols >= 90 ? 4 : 1;
    int right = c->cols - left; /* exclusive */
    if (bottom - top < 4 || right - left < 20) {
        top = 0;
        bottom = c->rows;
        left = 0;
        right = c->cols;
    }
    int w = right - left;
    int tw = w - 4;
    int nrows = 0;
    struct prow *rows = popup_rows(c, p, tw, &nrows);
    if (rows == NULL) {
        return;
    }
    /* As tall as the text needs (frame, text, key line), at most the body. */
    if (nrows + 3 < bottom - top) {
        bottom = top + nrows + 3;
    }
    int h = bottom - top;
    attr_t frame = con_attr(c, P_TITLE) | A_BOLD;
    for (int y = top; y < bottom; y++) {
        move(y, left);
        for (int i = 0; i < w; i++) {
            addch(' ');
        }
    }
    mvaddch(top, left, ACS_ULCORNER);
    mvhline(top, left + 1, ACS_HLINE, w - 2);
    mvaddch(top, right - 1, ACS_URCORNER);
    mvvline(top + 1, left, ACS_VLINE, h - 2);
    mvvline(top + 1, right - 1, ACS_VLINE, h - 2);
    mvaddch(bottom - 1, left, ACS_LLCORNER);
    mvhline(bottom - 1, left + 1, ACS_HLINE, w - 2);
    mvaddch(bottom - 1, right - 1, ACS_LRCORNER);
    char t[200];
    snprintf(t, sizeof(t), " %s ", p->title);
    con_text(c, top, left + 2, w - 4, t, frame, 0);
    int body = h - 3; /* frame top/bottom + key line */
    p->nrows = nrows;
    p->page = body > 1 ? body : 1;
    if (p->scroll > nrows - body) {
        p->scroll = nrows - body;
    }
    if (p->scroll < 0) {
        p->scroll = 0;
    }
    for (int i = 0; i < body && p->scroll + i < nrows; i++) {
        const struct prow *r = &rows[p->scroll + i];
        const char *l = p->lines[r->line];
        attr_t a = A_NORMAL;
        if (p->diff) {
            if (l[0] == '+' && strncmp(l, "+++", 3) != 0) {
                a = con_attr(c, P_ALLOW);
            } else if (l[0] == '-' && strncmp(l, "---", 3) != 0) {
                a = con_attr(c, P_DENY);
            } else if (l[0] == '@') {
                a = con_attr(c, P_TITLE);
            }
        }
        char seg[1024];
        size_t n = r->len < sizeof(seg) - 1 ? r->len : sizeof(seg) - 1;
        memcpy(seg, l + r->off, n);
        seg[n] = '\0';
        con_text(c, top + 1 + i, left + 2, tw, seg, a, 0);
    }
    free(rows);
    char keys[160];
    int more = nrows > body;
    if (p->confirm) {
        snprintf(keys, sizeof(keys), " y: %s   n/Esc: cancel%s ", p->yes_label,
                 more ? "   Up/Down/PgUp/PgDn: scroll" : "");
    } else {
        snprintf(keys, sizeof(keys), " Enter/Esc: close%s ",
                 more ? "   Up/Down/PgUp/PgDn: scroll" : "");
    }
    con_text(c, bottom - 2, left + 2, w - 4, keys, A_BOLD | A_REVERSE, 0);
    if (more) {
        char pos[40];
        snprintf(pos, sizeof(pos), " %d-%d/%d ", p->scroll + 1,
                 p->scroll + body < nrows ? p->scroll + body : nrows, nrows);
        con_text(c, bottom - 1, right - 2 - (int)strlen(pos), (int)strlen(pos), pos, frame, 0);
    }
}

static void draw(struct con *c)
{
    getmaxyx(stdscr, c->rows, c->cols);
    erase();
    if (c->rows < 8 || c->cols < 30) {
        mvaddstr(0, 0, "terminal too small");
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    draw_header(c);
    views_draw(c, 2, c->rows - 2);
    draw_status(c, c->rows - 2);
    move(c->rows - 1, 0);
    clrtoeol();
    const char *keys = c->popup.active ? "" : views_footer(c);
    con_text(c, c->rows - 1, 0, c->cols, keys, con_attr(c, P_HEADER), 1);
    if (c->popup.active) {
        draw_popup(c);
    }
    wnoutrefresh(stdscr);
    doupdate();
    c->dirty = 0;
}

/* ---- set-up ------------------------------------------------------------------ */

static void init_colors(struct con *c)
{
    const char *nc = getenv("NO_COLOR");
    c->colors = has_colors() && (nc == NULL || nc[0] == '\0');
    if (!c->colors) {
        return;
    }
    start_color();
    short bg = -1;
    if (use_default_colors() != OK) {
        bg = COLOR_BLACK;
    }
    init_pair(P_HEADER, COLOR_BLACK, COLOR_CYAN);
    init_pair(P_ALLOW, COLOR_GREEN, bg);
    init_pair(P_DENY, COLOR_RED, bg);
    init_pair(P_WARN, COLOR_BLACK, COLOR_YELLOW);
    init_pair(P_OK, COLOR_GREEN, bg);
    init_pair(P_DIM, COLOR_CYAN, bg);
    init_pair(P_TITLE, COLOR_YELLOW, bg);
    init_pair(P_SELECT, COLOR_BLACK, COLOR_WHITE);
}

static void con_cleanup(struct con *c)
{
    while (c->queue != NULL) {
        struct job *j = c->queue;
        c->queue = j->next;
        job_free(j);
    }
    if (c->inflight != NULL) {
        job_free(c->inflight);
        c->inflight = NULL;
    }
    con_popup_close(c);
    act_reset(c);
    for (int i = 0; i < c->ndec; i++) {
        json_decref(c->dec[i]);
    }
    json_decref(c->stats);
    json_decref(c->sessions);
    json_decref(c->detail);
    json_decref(c->revs);
    json_decref(c->policy);
    json_decref(c->versions);
    free(c->diff_text);
    tui_client_free(c->cl);
}

int tui_console_main(const struct tui_ctx *x)
{
    struct gh_err e;
    gh_err_clear(&e);
    struct con *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        fprintf(stderr, "gatehousectl: out of memory\n");
        return TUI_EXIT_SERVER;
    }
    c->x = x;
    c->cl = tui_client_new(&x->conn, &e);
    if (c->cl == NULL) {
        fprintf(stderr, "gatehousectl: %s\n", e.msg);
        free(c);
        return e.reason == GH_R_ADMIN_BAD_REQUEST ? TUI_EXIT_USAGE : TUI_EXIT_UNREACHABLE;
    }
    c->online = -1;
    c->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    views_init(c);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    set_escdelay(25);
    if (initscr() == NULL) {
        fprintf(stderr, "gatehousectl: cannot initialise the terminal\n");
        con_cleanup(c);
        free(c);
        return TUI_EXIT_USAGE;
    }
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    init_colors(c);
    getmaxyx(stdscr, c->rows, c->cols);
    c->dirty = 1;

    int64_t last_draw = 0;
    while (!c->quit && !g_stop) {
        schedule(c);
        int64_t now = con_now_ms();
        if (c->dirty || now - last_draw >= 1000) {
            draw(c);
            last_draw = now;
        }
        struct pollfd p[2];
        int n = 1;
        p[0].fd = STDIN_FILENO;
        p[0].events = POLLIN;
        p[0].revents = 0;
        int timeout = 100;
        if (tui_client_pollfd(c->cl, &p[1])) {
            n = 2;
            int ct = tui_client_timeout_ms(c->cl);
            if (ct >= 0 && ct < timeout) {
                timeout = ct;
            }
        }
        int rc = poll(p, (nfds_t)n, timeout);
        if (rc < 0 && errno != EINTR) {
            break;
        }
        /* Keys (also after EINTR: SIGWINCH turns into KEY_RESIZE). */
        read_keys(c);
        if (c->inflight != NULL) {
            pump(c);
        }
        if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            break; /* the terminal went away */
        }
    }
    endwin();
    con_cleanup(c);
    free(c);
    return TUI_EXIT_OK;
}
