/*
 * authz_glue.h: identity on the request path -- the gateway side of authz/.
 *
 * Owns: per-connection identity state (current token reference, session
 * id, verdict), the issuer key state (current JWKS snapshot, refreshed off
 * the workers by the fetcher thread), and the identity headers/assertion
 * added toward upstreams. Must not: parse tokens or evaluate policy itself
 * (authz/ does, from bytes handed to it) or do I/O on a worker.
 */
#ifndef GW_AUTHZ_GLUE_H
#define GW_AUTHZ_GLUE_H

#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "db/db.h"
#include "gateway/base/err.h"

struct gw_conn;
struct gw_server;
struct gw_worker;

/* Server lifetime: start the issuer key fetcher (loads persisted keys
 * first), the assertion signer; stop joins the fetcher. */
int gw_authz_server_start(struct gw_server *srv, struct gh_err *err) GH_WUR;
void gw_authz_server_stop(struct gw_server *srv);
/* A new config snapshot is in place: the key fetcher re-reads the issuer
 * settings now (dropping the keys if their source changed). */
void gw_authz_config_changed(struct gw_server *srv);

/* Connection lifetime. */
void gw_authz_conn_init(struct gw_conn *c);
void gw_authz_conn_cleanup(struct gw_conn *c);
void gw_authz_reset(struct gw_conn *c);

/* After the handshake: blocked certificate? GH_R_ALLOW or the reason. */
enum gh_reason gw_authz_check_cert(struct gw_conn *c);
/* Per request, after routing: token, binding, revocation, policy. On deny
 * returns the reason and may write extra response headers (e.g.
 * WWW-Authenticate) into extra. */
enum gh_reason gw_authz_request(struct gw_conn *c, char *extra, size_t extra_len);
/* 1 if the request header must not be forwarded (identity headers). */
int gw_authz_strips(struct gw_conn *c, const char *name, size_t len);
/* Append identity headers for the upstream. */
void gw_authz_add_headers(struct gw_conn *c, struct evbuffer *b);
/* Fill token/session/policy fields of a decision row. */
void gw_authz_fill_row(struct gw_conn *c, struct db_decision *d);
/* 1 if a revocation now covers this connection. */
int gw_authz_conn_revoked(struct gw_conn *c);
/* Worker mailbox hook: apply revocations to live connections. */
void gw_authz_worker_notify(struct gw_worker *w);

/* Issuer key status for stats: age of the key set in seconds (-1 if never
 * fetched in this process), number of keys, last fetch error. -1 when the
 * gateway has no issuer. */
int gw_authz_key_status(struct gw_server *srv, int64_t *age_s, size_t *n_keys, char *last_err,
                        size_t len);

struct az_logout;
/* Verify a back-channel logout_token with the current issuer keys. */
enum gh_reason gw_authz_logout_verify(struct gw_conn *c, const char *tok, size_t len,
                                      struct az_logout *out, struct gh_err *err);

/* Public JWKS of the gateway's assertion key (for /.well-known/gatehouse/jwks.json). */
const char *gw_authz_assertion_jwks(struct gw_server *srv);

#endif
