/*
 * console_int.h: state shared by the console's core (console.c: loop,
 * requests, prompts, popups, actions) and its views (views.c: drawing and
 * per-view keys). Internal to tui/.
 *
 * Ownership: every json_t in struct con is a reference the console holds
 * (replaced with json_decref of the old value); strings are fixed buffers.
 */
#ifndef TUI_CONSOLE_INT_H
#define TUI_CONSOLE_INT_H

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>
#include <stdint.h>
#include <wchar.h>

#include <jansson.h>

#include "tui/client.h"
#include "tui/ctl.h"

struct con;
struct job;

enum view { V_SESSIONS = 0, V_DECISIONS, V_DETAIL, V_REVOCATIONS, V_POLICY, V__COUNT };

/* Colour pairs (0 = terminal default). With no colours (or NO_COLOR) the
 * attribute helpers fall back to bold/reverse/underline. */
enum pair { P_HEADER = 1, P_ALLOW, P_DENY, P_WARN, P_OK, P_DIM, P_TITLE, P_SELECT, P__COUNT };

#define DEC_RING 4000 /* decision rows kept for the tail */
#define MSG_MS 8000   /* how long a status message stays */

struct prompt {
    int active;
    char label[96];
    wchar_t buf[256];
    int len;
    void (*submit)(struct con *c, const char *text);
};

struct popup {
    int active;
    int confirm; /* y/n question (else: information) */
    int diff;    /* colour +/- lines */
    char title[160];
    char **lines;
    int n;
    int scroll; /* first display row (lines wrap) */
    int nrows;  /* display rows at the last draw */
    int page;   /* text rows visible at the last draw */
    char yes_label[40];
    void (*yes)(struct con *c);
    void (*no)(struct con *c);
};

/* One multi-step operator action (revoke, lift, apply, rollback). */
enum act_kind {
    ACT_NONE = 0,
    ACT_REVOKE, /* kind in act.kind_s: session | subject | cert | token */
    ACT_LIFT,
    ACT_APPLY,
    ACT_ROLLBACK,
};
struct action {
    enum act_kind kind;
    char kind_s[16];
    char target[300];
    char describe[1600]; /* what the target is, for the confirmation */
    char reason[256];
    int64_t expires_s;
    char file[1024];
    char *yaml;
    size_t yaml_len;
    char version[80];
    int64_t id;
};

struct dec_filter {
    char subject[128];
    char route[64];
    char decision[8];
    char reason[64];
};

struct con {
    const struct tui_ctx *x;
    struct tui_client *cl;
    int quit;
    int utf8;   /* terminal charset is UTF-8 */
    int colors; /* colours in use */
    int dirty;
    int rows, cols;

    /* connection state */
    int online; /* -1 not yet known, 0 down, 1 up */
    char down_msg[256];
    int64_t retry_at_ms;
    int64_t last_ok_ms;
    struct job *queue; /* user actions, FIFO */
    struct job *inflight;

    /* timers (monotonic ms): next poll of each resource */
    int64_t due_stats, due_sessions, due_decisions, due_detail, due_revs, due_policy;
    int64_t due_versions;

    enum view view;
    struct prompt prompt;
    struct popup popup;
    struct action act;
    char msg[512];
    int msg_bad;
    int64_t msg_until_ms;

    /* data */
    json_t *stats;
    json_t *sessions; /* array */
    json_t *detail;   /* /v1/sessions/{id} answer */
    char detail_id[80];
    int detail_missing;
    json_t *revs;     /* array */
    json_t *policy;   /* /v1/policy answer */
    json_t *versions; /* array */
    char *diff_text;  /* policy diff pane */
    char diff_title[160];

    /* decisions tail */
    json_t *dec[DEC_RING]; /* ascending id, oldest first */
    int ndec;
    int64_t dec_after; /* highest id seen */
    int dec_loaded;    /* initial page fetched */
    int dec_paused;
    int dec_new_while_paused;
    int64_t dec_sel_id; /* selected row when paused (0: newest) */
    int dec_gap;        /* a poll returned a full page: rows may be missing */
    int dec_gen;        /* bumped when filters change: stale answers are dropped */
    struct dec_filter df;
    int dec_show_admin; /* also show admin API reads (the console's own polls) */

    /* sessions view */
    int sort_col;
    int sort_desc;
    char filter[128];
    char sel_id[80];
    int sess_top;

    /* detail / revocations / policy */
    int detail_scroll;
    int rev_sel;
    int rev_top;
    int pol_pane; /* 0 yaml, 1 versions, 2 diff */
    int pol_scroll;
    int ver_sel;
};

/* ---- console.c: services for the views ---- */
void con_msg(struct con *c, int bad, const char *fmt, ...) GH_PRINTF(3, 4);
void con_prompt(struct con *c, const char *label, const char *initial,
                void (*submit)(struct con *c, const char *text));
/* Open a popup; text is split into lines (copied). yes==NULL: information. */
void con_popup(struct con *c, const char *title, const char *text, int diff, const char *yes_label,
               void (*yes)(struct con *c), void (*no)(struct con *c));
void con_popup_close(struct con *c);
void con_refresh_now(struct con *c, enum view v);
/* Start the revoke flow for the selected session: kind "session",
 * "subject" (lock user) or "cert" (block device). */
void con_act_session(struct con *c, const json_t *session, const char *kind);
void con_act_add_revocation(struct con *c);
void con_act_lift(struct con *c, const json_t *rev);
void con_act_apply(struct con *c);
void con_act_rollback(struct con *c, const char *version);
void con_act_diff_version(struct con *c, const char *version);
void con_act_diff_file(struct con *c);
void con_dec_reset(struct con *c);
/* Show session id in the detail view (view 3). */
void con_detail_select(struct con *c, const char *id);
int64_t con_now_ms(void);

/* ---- views.c ---- */
attr_t con_attr(const struct con *c, enum pair p);
/* Draw s at (y, x) in at most w columns (cut with '~' or an ellipsis),
 * padded with spaces to w when pad. Returns columns used. */
int con_text(struct con *c, int y, int x, int w, const char *s, attr_t a, int pad);
void views_draw(struct con *c, int top, int bottom);
/* Handle a key for the current view; returns 1 if used. */
int views_key(struct con *c, wint_t ch, int is_key);
const char *views_footer(const struct con *c);
void views_help(struct con *c);
void views_init(struct con *c);

#endif
