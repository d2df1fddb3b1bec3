/*
 * console.h: the interactive admin console (`gatehousectl` with no
 * command), an ncursesw program in the spirit of htop/k9s: live sessions,
 * a decision tail, session detail, revocations and policy, with revoke /
 * lock user / block certificate actions (docs/CONSOLE.md).
 *
 * Owns: the terminal while it runs (initscr .. endwin, also on SIGINT /
 * SIGTERM), one admin API client and the data last fetched through it.
 * Must not: block on the network -- every exchange goes through the
 * client's non-blocking state machine from one poll(2) loop that also
 * reads the keyboard; while the gateway is unreachable the status line
 * says "reconnecting" and the console keeps retrying by itself.
 *
 * Threads: single-threaded.
 */
#ifndef TUI_CONSOLE_H
#define TUI_CONSOLE_H

#include "tui/ctl.h"

/* Run the console until the operator quits. Returns a TUI_EXIT_* status
 * (0 after a normal quit; 2 if the terminal cannot be used). */
int tui_console_main(const struct tui_ctx *x);

#endif
