/*
 * state.h: the gateway's durable control-plane state in SQLite: sessions,
 * revocations and policy versions.
 *
 * Owns: the sessions, revocations and policy_versions tables. The in-memory
 * sets the workers consult live in authz/; this is where they are persisted
 * and reloaded from at start.
 * Must not: know sockets, TLS or libevent.
 *
 * Threads: every function opens its own connection to path, does its work
 * in one transaction and closes it, so any thread may call any function --
 * but they block (disk I/O, up to the 5 s busy timeout), so they are for the
 * control thread and the CLI, never a worker. Writes use synchronous=FULL: a
 * revocation that returned 0 survives a power loss (session counter upserts
 * use NORMAL: they are write-behind). Nothing is cached, so
 * there is nothing to free besides what a function documents it returns.
 */
#ifndef DB_STATE_H
#define DB_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/base/err.h"

/* ---- sessions ------------------------------------------------------------ */

/* One (issuer, subject, cert thumbprint) session. Counters are absolute
 * values held by the gateway; an upsert overwrites them. */
struct db_session {
    char id[33]; /* 128-bit random id, 32 hex */
    char issuer[256];
    char subject[256];
    char cert_thumb[65];
    char cert_subject[256];
    int64_t first_seen_us;
    int64_t last_seen_us;
    uint64_t requests;
    uint64_t bytes_in;
    uint64_t bytes_out;
    char last_addr[64];
    char state[16];     /* "active", "ended" or "revoked" */
    int64_t revoked_us; /* 0 unless revoked */
};

/* Insert or update n sessions in one transaction. first_seen keeps the
 * earliest value, last_seen the latest; a session once "revoked" stays
 * revoked (an upsert from a worker's stale view cannot revive it). Returns 0,
 * or -1 (nothing written) on error or on an invalid state string. */
int db_session_upsert(const char *path, const struct db_session *s, size_t n,
                      struct gh_err *err) GH_WUR;

struct db_session_query {
    int64_t seen_since_us; /* last_seen_us >= this (0: any) */
    const char *subject;   /* NULL: any */
    const char *state;     /* NULL: any */
    int limit;             /* <= 0: 100; max 10000 */
};
typedef int (*db_session_cb)(void *arg, const struct db_session *s);
/* Sessions, most recently seen first. cb returning non-zero stops early. */
int db_session_list(const char *path, const struct db_session_query *q, db_session_cb cb, void *arg,
                    struct gh_err *err) GH_WUR;
/* One session by id: 0 found (out filled), 1 not found, -1 error. */
int db_session_get(const char *path, const char *id, struct db_session *out,
                   struct gh_err *err) GH_WUR;

/* ---- revocations --------------------------------------------------------- */

enum db_revocation_kind {
    DB_REVOKE_SESSION = 0, /* target: session id */
    DB_REVOKE_SUBJECT = 1, /* target: token subject (lock user) */
    DB_REVOKE_CERT = 2,    /* target: cert thumbprint, hex (block device) */
    DB_REVOKE_TOKEN = 3,   /* target: token jti */
};
const char *db_revocation_kind_name(enum db_revocation_kind k);
/* "session", "subject", "cert", "token" -> kind; -1 otherwise. */
int db_revocation_kind_parse(const char *s);

struct db_revocation {
    int64_t id; /* assigned by db_revocation_add */
    enum db_revocation_kind kind;
    char target[256];
    char reason[128]; /* operator's free text */
    char actor[256];  /* who revoked (admin cert subject, "backchannel_logout") */
    int64_t created_us;
    int64_t expires_us; /* 0 = until lifted (token: the token's exp) */
    int64_t lifted_us;  /* 0 = in force */
    char lifted_by[256];
};

/* Persist r (id is ignored). *id_out (may be NULL) gets the new id. Returns
 * 0 once committed (durable), -1 on error or an empty target. */
int db_revocation_add(const char *path, const struct db_revocation *r, int64_t *id_out,
                      struct gh_err *err) GH_WUR;
/* Revocations, newest first. active_only: not lifted and not expired at
 * now_us. cb returning non-zero stops early. */
int db_revocation_list(const char *path, int active_only, int64_t now_us,
                       int (*cb)(void *arg, const struct db_revocation *r), void *arg,
                       struct gh_err *err) GH_WUR;
/* Lift revocation id: 0 lifted, 1 no such revocation in force, -1 error. */
int db_revocation_lift(const char *path, int64_t id, const char *actor, int64_t now_us,
                       struct gh_err *err) GH_WUR;

/* ---- policy versions ----------------------------------------------------- */

/* A stored policy; the version is the SHA-256 (hex) of its source text. */
struct db_policy_version {
    int64_t id;
    char hash[65];
    char applied_by[256];
    int64_t applied_us;   /* first stored */
    int64_t activated_us; /* last made active (0 if never) */
    int active;
    char comment[256];
    size_t source_len;
};

/* Store source as a version (identical text = same version, stored once)
 * and, if activate, make it the one active version. out (may be NULL) gets
 * the version's metadata. Returns 0 or -1. */
int db_policy_version_add(const char *path, const char *source, size_t len, const char *applied_by,
                          const char *comment, int64_t now_us, int activate,
                          struct db_policy_version *out, struct gh_err *err) GH_WUR;
/* Versions without their source, newest first, at most limit (<= 0: 100). */
int db_policy_version_list(const char *path, int limit,
                           int (*cb)(void *arg, const struct db_policy_version *v), void *arg,
                           struct gh_err *err) GH_WUR;
/* One version by hash -- the full 64 hex chars, or a unique prefix of at
 * least 8 -- or the active one when version is NULL. Returns 0 found (meta
 * filled; *source, if source is not NULL, a malloc'd NUL-terminated copy the
 * caller frees, length in *len), 1 not found (or prefix ambiguous: err says
 * which), -1 error. */
int db_policy_version_get(const char *path, const char *version, struct db_policy_version *meta,
                          char **source, size_t *len, struct gh_err *err) GH_WUR;
/* Make version (hash or unique prefix >= 8) the active one (rollback is
 * this). Returns 0, 1 not found / ambiguous, -1 error. */
int db_policy_version_set_active(const char *path, const char *version, int64_t now_us,
                                 struct gh_err *err) GH_WUR;

#endif
