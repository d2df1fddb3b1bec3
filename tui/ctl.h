/*
 * ctl.h: gatehousectl's scriptable subcommands (docs/CONSOLE.md lists them
 * with their output and exit statuses).
 *
 * Owns: argument parsing of each subcommand, one admin API exchange (or a
 * stream for `decisions --follow`), and printing the result as a text table
 * or, with --json, as the server's JSON. Must not: open the database -- the
 * one exception, `audit verify DB`, runs `gatehouse audit verify --db DB`
 * as a child process and maps its exit status.
 *
 * Threads: runs on the main thread; blocking, with a per-request timeout.
 */
#ifndef TUI_CTL_H
#define TUI_CTL_H

#include <jansson.h>

#include "tui/client.h"

/* What every subcommand and the console need to know. */
struct tui_ctx {
    struct tui_client_opts conn;
    int json;         /* --json */
    int timeout_ms;   /* per request, --timeout (default 10 s) */
    const char *self; /* argv[0], to find the gatehouse binary beside us */
};

/* Run subcommand argv[0] with its arguments. Returns a TUI_EXIT_* status. */
int tui_ctl_main(const struct tui_ctx *x, int argc, char **argv);

/* Rewrite a server policy error "NAME:LINE:COL: msg" (or an object with
 * line/col/message) to name the local file instead, into buf. */
void tui_policy_error_text(const json_t *json_err, const char *file, char *buf, size_t len);

/* Read a whole local file (at most max bytes). Returns a malloc'd
 * NUL-terminated buffer the caller frees, or NULL + err. */
char *tui_read_file(const char *path, size_t max, size_t *len, struct gh_err *err) GH_WUR;

#endif
