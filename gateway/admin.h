/*
 * admin.h: the admin API server (docs/ADMIN-API.md): HTTP/1.1 + JSON on a
 * Unix socket (mode 0600, owner-only) and, optionally, on an mTLS listener
 * that accepts only admin certificates. Runs on the control thread's
 * event_base; answers through gateway/control.h only.
 *
 * Must not: block (SQLite reads in control.c are short and bounded), trust
 * a peer before authenticating it, or let a malformed/oversized request do
 * more than close that one client.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <event2/event.h>

#include "gateway/base/err.h"

struct gw_server;
struct gw_admin;

/* Start listening per srv's current config (admin.socket, admin.listen).
 * NULL + err if a configured listener cannot be opened. */
struct gw_admin *gw_admin_start(struct gw_server *srv, struct event_base *ctl,
                                struct gh_err *err) GH_WUR;
/* Close listeners and all admin clients. NULL is a no-op. */
void gw_admin_stop(struct gw_admin *a);

#endif
