/*
 * session.h: the session registry and the revocation sets (DESIGN.md 4).
 *
 * Owns: struct gw_session (one per (issuer, subject, certificate
 * thumbprint): a person or service on one device; random 128-bit id,
 * counters, live connections, state), the registry shared by all workers,
 * and struct gw_revset, an immutable snapshot of every revocation in force
 * (sessions, subjects, certificates, token jtis) that workers consult
 * without locks. Must not: do I/O; the control thread persists (db/) and
 * swaps snapshots.
 *
 * Threads: the registry is guarded by one mutex, taken once per request
 * that needs a session (binding a connection) and by the control thread's
 * periodic flush. Revocation sets are refcounted and immutable; a worker
 * holds its own reference and picks up the new one from its mailbox.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdatomic.h>
#include <stdint.h>

#include "authz/token.h"
#include "db/state.h"
#include "gateway/base/err.h"

struct gw_session {
    char id[33];
    char issuer[256];
    char subject[256];
    char cert_thumb[65];
    char cert_subject[256];
    uint8_t key[32]; /* SHA-256(issuer \n subject \n cert DER hash) */
    int64_t first_seen_us, last_seen_us;
    uint64_t requests, bytes_in, bytes_out;
    char last_addr[64];
    int live_conns;
    int revoked;      /* state "revoked" */
    int64_t revoked_us;
    int64_t floor_iat_s; /* tokens with iat <= this belong to a revoked predecessor */
    int dirty;        /* changed since the last flush */
    struct az_token *last_token; /* claims for the console (never the raw token) */
    struct gw_session *next;     /* hash chain */
};

struct gw_sessions;

struct gw_sessions *gw_sessions_new(void);
void gw_sessions_free(struct gw_sessions *s);

/* Find or create the session for a verified token on a connection whose
 * certificate hash is cert_sha256. A revoked session refuses tokens issued
 * (iat) at or before its revocation: GH_R_SESSION_REVOKED; a token issued
 * after it (a fresh login) starts a NEW session with a new id. On success
 * copies the session id into id_out and counts the request. */
enum gh_reason gw_sessions_touch(struct gw_sessions *s, const struct az_token *t,
                                 const uint8_t cert_sha256[32], const char *cert_thumb_hex,
                                 const char *cert_subject, const char *addr, int64_t now_us,
                                 uint64_t bytes_in, char id_out[33], int *new_conn_bind);
/* Connection bound to / released from session id (live connection count). */
void gw_sessions_conn(struct gw_sessions *s, const char *id, int delta);

/* Mark revoked (kind session). Returns 1 if the session was known. */
int gw_sessions_revoke(struct gw_sessions *s, const char *id, int64_t now_us);
/* Load persisted sessions at start. */
void gw_sessions_load(struct gw_sessions *s, const struct db_session *rows, size_t n);
/* Copy out dirty sessions (up to max) and clear their dirty flag. */
size_t gw_sessions_take_dirty(struct gw_sessions *s, struct db_session *out, size_t max);
/* Snapshot for the admin API (newest activity first). Caller frees *out. */
size_t gw_sessions_snapshot(struct gw_sessions *s, struct gw_session **out, size_t max);
/* One session by id (copy; last_token gets a new reference the caller
 * drops with az_token_unref). 0 found, -1 not. */
int gw_sessions_get(struct gw_sessions *s, const char *id, struct gw_session *out);
size_t gw_sessions_count(struct gw_sessions *s, int active_only);

/* ---- revocation sets ---- */

struct gw_revset;

struct gw_revset *gw_revset_new(const struct db_revocation *rows, size_t n, uint64_t gen);
struct gw_revset *gw_revset_ref(struct gw_revset *r);
void gw_revset_unref(struct gw_revset *r);
uint64_t gw_revset_gen(const struct gw_revset *r);

/* Checks against one snapshot at now_us. GH_R_ALLOW or the reason. */
enum gh_reason gw_revset_check_cert(const struct gw_revset *r, const char *thumb_hex,
                                    int64_t now_us);
enum gh_reason gw_revset_check(const struct gw_revset *r, const char *session_id,
                               const char *subject, const char *jti, const char *thumb_hex,
                               int64_t now_us);

#endif
