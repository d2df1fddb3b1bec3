/*
 * server.h: process start-up, signals, reload and shutdown for
 * `gatehouse serve`.
 *
 * Owns: the control thread (the caller's thread runs the control event
 * loop: signals, reload, ticket rotation, file-change checks), listener
 * sockets and the worker threads. Must not: serve requests itself.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

/* Run until SIGTERM/SIGINT has drained the workers. Returns the process
 * exit code (0 on a clean drain, 1 when start-up failed). */
int gw_serve(const char *config_path);

/* Validate a config (and the policy and TLS files it names) without
 * starting. Prints errors as file:line:col. Returns 0 if valid. */
int gw_check_config(const char *config_path);

#include "gateway/base/err.h"

/* A listening TCP socket on "host:port" (non-blocking, SO_REUSEADDR, and
 * SO_REUSEPORT when reuseport is set). Returns the fd or -1 with err. */
int gw_listen_socket(const char *hostport, int reuseport, struct gh_err *err);

#endif
