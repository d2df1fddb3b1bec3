/*
 * control.h: what the admin plane may ask of the running gateway.
 *
 * Owns: the gateway-side implementation of every admin operation (sessions,
 * revocations with live-connection drop, decisions, policy versions,
 * stats, metrics), as plain calls that return JSON values. The admin
 * server (admin.c) owns sockets, HTTP, authentication of admins and JSON
 * encoding on the wire; it calls only these functions.
 *
 * Thread rules: every function here runs on the CONTROL thread (the thread
 * that runs srv->ctl_base). They may touch SQLite through db/ (never a
 * worker's job) and wake workers through their mailboxes. Returned json_t
 * values are new references owned by the caller (json_decref).
 * Errors: functions return 0, or -1 with err filled (err->reason is
 * GH_R_ADMIN_BAD_REQUEST for caller mistakes -> HTTP 400/404/422, anything
 * else -> 500); `*status` (when present) is the HTTP status to answer.
 */
#ifndef GW_CONTROL_H
#define GW_CONTROL_H

#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "db/db.h"
#include "gateway/base/err.h"

struct gw_server;

/* The admin identity performing an action, for the decision log. */
struct gw_actor {
    const char *name;    /* "uid:0" for the Unix socket, cert subject for mTLS */
    const char *address; /* "unix" or the client's ip */
    const char *cert_thumb; /* hex, "" for unix */
};

/* GET /v1/stats: {"name","version","uptime_s","requests","allowed","denied",
 * "req_per_s","deny_rate","live_connections","active_sessions",
 * "log":{"queued","committed","failed","queue_depth","queue_size","healthy","at_risk"},
 * "keys":{"count","age_s","last_error"},"workers"} */
json_t *gw_ctl_stats(struct gw_server *srv);

/* GET /metrics: Prometheus text exposition appended to out. */
void gw_ctl_metrics(struct gw_server *srv, struct evbuffer *out);

/* GET /v1/sessions: {"sessions":[{"id","issuer","subject","cert_thumbprint",
 * "cert_subject","client_addr","first_seen_us","last_seen_us","requests",
 * "bytes_in","bytes_out","live_connections","state"}]} newest activity first.
 * state: "active" | "idle" | "revoked". limit 0 = default 500. */
json_t *gw_ctl_sessions(struct gw_server *srv, int limit);
/* GET /v1/sessions/{id}: the session plus "claims" (verified token claims
 * of its latest token, never the raw token), "connections" (the number of
 * live connections bound to it) and "recent_decisions":[...] (up to 50).
 * NULL if unknown. */
json_t *gw_ctl_session(struct gw_server *srv, const char *id);

/* POST /v1/revocations: kind "session"|"subject"|"cert"|"token"; target:
 * session id | subject (sub) | cert thumbprint (hex or base64url) | jti;
 * expires_us 0 = never (token: until the token's exp if known). Persisted
 * BEFORE this returns, then every worker closes matching live connections.
 * Returns {"revocation":{...},"closed_connections":N} or NULL + err. */
json_t *gw_ctl_revoke(struct gw_server *srv, const struct gw_actor *who, const char *kind,
                      const char *target, const char *reason, int64_t expires_us,
                      struct gh_err *err);
/* DELETE /v1/revocations/{id}: lift it. 0, or -1 (not found -> ADMIN_BAD_REQUEST). */
int gw_ctl_unrevoke(struct gw_server *srv, const struct gw_actor *who, int64_t id,
                    struct gh_err *err);
/* GET /v1/revocations: {"revocations":[{"id","kind","target","reason","actor",
 * "created_us","expires_us","lifted_us","active"}]} */
/* Revocations, newest first, in force and lifted: at most limit (0: 1000),
 * with "truncated" true when there are more. NULL + err if the database
 * cannot be read. */
json_t *gw_ctl_revocations(struct gw_server *srv, int limit, struct gh_err *err);

/* GET /v1/decisions: {"decisions":[row...]} (row keys = db_decision field
 * names plus "id"; decision "allow"/"deny"; reason by name). */
json_t *gw_ctl_decisions(struct gw_server *srv, const struct db_query *q, struct gh_err *err);

/* Policy: GET /v1/policy {"version","source","rules"} (when it was applied
 * is in the versions list);
 * POST /v1/policy/validate (body YAML) {"ok":true} or {"ok":false,"errors":[..]};
 * POST /v1/policy/apply -> {"version","previous"} or errors (status 422) --
 *   the new policy is stored as a version in SQLite and swapped in atomically;
 * GET /v1/policy/versions {"versions":[{"version","applied_us","applied_by","active"}]};
 * GET /v1/policy/diff?from=V&to=V (to defaults to active) {"diff": unified text};
 * POST /v1/policy/rollback {"version":V}. */
json_t *gw_ctl_policy_get(struct gw_server *srv);
json_t *gw_ctl_policy_validate(struct gw_server *srv, const char *yaml, size_t len);
json_t *gw_ctl_policy_apply(struct gw_server *srv, const struct gw_actor *who, const char *yaml,
                            size_t len, int *status);
json_t *gw_ctl_policy_versions(struct gw_server *srv);
json_t *gw_ctl_policy_diff(struct gw_server *srv, const char *from, const char *to, int *status);

/* Line diff of a -> b into out (" ", "-", "+" prefixed lines): every line of
 * both texts appears, whatever their length. The changed middle gets an
 * LCS diff up to this many lines a side. */
#define GW_DIFF_LCS_MAX 2000
struct evbuffer;
void gw_ctl_line_diff(const char *a, const char *b, struct evbuffer *out);
json_t *gw_ctl_policy_rollback(struct gw_server *srv, const struct gw_actor *who,
                               const char *version, int *status);

/* Every admin request becomes a decision row (DESIGN.md section 6):
 * reason GH_R_ADMIN_OK / GH_R_ADMIN_DENIED / GH_R_ADMIN_BAD_REQUEST,
 * route "admin", method/path as requested, detail = short action text. */
void gw_ctl_log_admin(struct gw_server *srv, const struct gw_actor *who, const char *method,
                      const char *path, int status, enum gh_reason reason, const char *detail);
/* The same for an admin action that changed something (a revocation, a
 * lift, a policy apply or rollback): waits (at most 10 s) until the row is
 * committed. 0, or -1 when the row was refused or not committed -- logged
 * at error, since the change itself has already taken effect. */
int gw_ctl_log_admin_durable(struct gw_server *srv, const struct gw_actor *who,
                             const char *method, const char *path, int status,
                             enum gh_reason reason, const char *detail);
/* 1 if the decision log would take a row now (healthy, queue not full):
 * admin changes are refused (503) otherwise, before they are made. */
int gw_ctl_log_accepting(struct gw_server *srv);

/* Database path (for the admin server's decision stream polling). */
const char *gw_ctl_db_path(struct gw_server *srv);

#endif
