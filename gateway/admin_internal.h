/*
 * admin_internal.h: the pure half of the admin API server -- request head
 * parsing, routing, query-string and JSON body validation -- shared by
 * admin.c (the sockets half), tests/unit/test_gw_admin.c and
 * tests/fuzz/fuzz_admin.c.
 *
 * Owns nothing long-lived: every function works on caller buffers and
 * caller structs; strings in a struct gw_admin_req are copies (bounded,
 * NUL-terminated) so they outlive the input buffer. Must not: touch a
 * socket, the event loop or the control plane (gateway/control.h).
 * Thread rules: none (pure functions).
 */
#ifndef GW_ADMIN_INTERNAL_H
#define GW_ADMIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "db/db.h"
#include "gateway/base/err.h"

/* Hard limits (docs/ADMIN-API.md "Limits"). Hitting one answers a JSON
 * error and, where the framing can no longer be trusted, closes that client. */
#define GW_ADMIN_MAX_HEAD (16 * 1024)     /* request line + headers -> 431 */
#define GW_ADMIN_MAX_LINE 8192            /* request line -> 414 */
#define GW_ADMIN_MAX_HEADERS 64           /* header lines -> 431 */
#define GW_ADMIN_MAX_BODY (1024 * 1024)   /* body (policy YAML uploads) -> 413 */
#define GW_ADMIN_MAX_PARAMS 16            /* query parameters -> 400 */
#define GW_ADMIN_MAX_VALUE 512            /* decoded query value or path parameter -> 400 */
#define GW_ADMIN_MAX_PATH 256             /* path copy kept for the log ("..." when cut) */
#define GW_ADMIN_MAX_TEXT 255             /* revocation target/reason, policy version */

enum gw_admin_op {
    GW_ADM_NONE = 0,
    GW_ADM_HEALTH,          /* GET    /v1/health */
    GW_ADM_STATS,           /* GET    /v1/stats */
    GW_ADM_METRICS,         /* GET    /metrics */
    GW_ADM_SESSIONS,        /* GET    /v1/sessions[?limit=N] */
    GW_ADM_SESSION,         /* GET    /v1/sessions/{id} */
    GW_ADM_REVOCATIONS,     /* GET    /v1/revocations */
    GW_ADM_REVOKE,          /* POST   /v1/revocations */
    GW_ADM_UNREVOKE,        /* DELETE /v1/revocations/{id} */
    GW_ADM_DECISIONS,       /* GET    /v1/decisions?... */
    GW_ADM_STREAM,          /* GET    /v1/decisions/stream?after_id=N */
    GW_ADM_POLICY,          /* GET    /v1/policy */
    GW_ADM_POLICY_VALIDATE, /* POST   /v1/policy/validate (YAML) */
    GW_ADM_POLICY_APPLY,    /* POST   /v1/policy/apply (YAML) */
    GW_ADM_POLICY_VERSIONS, /* GET    /v1/policy/versions */
    GW_ADM_POLICY_DIFF,     /* GET    /v1/policy/diff?from=&to= */
    GW_ADM_POLICY_ROLLBACK, /* POST   /v1/policy/rollback {"version"} */
    GW_ADM__COUNT
};

/* Stable short name of an op ("revoke", "policy_apply"; "none"). */
const char *gw_admin_op_name(enum gw_admin_op op);

/* Resumable scan state for one request head (zero it per request). */
struct gw_admin_scan {
    size_t scan;
    int lines;
};

struct gw_admin_param {
    char key[32];
    char val[GW_ADMIN_MAX_VALUE + 1]; /* percent-decoded, no control bytes */
};

/* One parsed and routed request. */
struct gw_admin_req {
    size_t head_len;         /* bytes of the head, CRLFCRLF included */
    int64_t content_length;  /* 0 when absent */
    int http_minor;
    int keep_alive;          /* per RFC 9112 9.3 (Connection header, version) */
    int expect_continue;
    char method[16];
    char path[GW_ADMIN_MAX_PATH + 4]; /* path without query, printable ASCII, for logs */

    enum gw_admin_op op;
    char id[GW_ADMIN_MAX_VALUE + 1];  /* the decoded {id} path parameter */
    struct gw_admin_param q[GW_ADMIN_MAX_PARAMS];
    int n_q;

    /* status != 0: answer this error instead of dispatching */
    int status;
    enum gh_reason reason;
    int close;               /* framing unsafe or limit hit: close after the answer */
    char allow[48];          /* "GET, POST" for a 405 */
    char error[200];         /* log-safe message (printable ASCII) */
};

/*
 * Scan buf[0..len) (the bytes received so far) for a complete request head
 * with gw_http_scan_head (limits above), then parse it with
 * gw_http_parse_request and route it. st carries the scan position between
 * calls for one request (start zeroed).
 * Returns 0 when more bytes are needed; 1 when the head is complete or
 * refused: *req is filled; req->status == 0 means dispatch req->op (a body
 * of req->content_length bytes follows at buf + req->head_len), otherwise
 * answer req->status / req->reason / req->error, closing after it when
 * req->close is set (framing errors, 413, 411: the rest of the stream
 * cannot be trusted).
 */
int gw_admin_parse_request(const char *buf, size_t len, struct gw_admin_scan *st,
                           struct gw_admin_req *req) GH_WUR;

/* Route method + path (path without query) and parse the query string
 * (without '?', may be NULL). Fills req->op, req->id, req->q; on failure
 * sets req->status (404 unknown path, 405 wrong method with req->allow,
 * 400 bad parameter) and returns -1. The return value repeats what
 * req->status says, so it is not GH_WUR. */
int gw_admin_route(const char *method, const char *path, size_t path_len, const char *query,
                   size_t query_len, struct gw_admin_req *req);

/* Percent-decode in[0..len) into out (cap bytes incl. NUL). plus_space: '+'
 * means ' ' (query strings). Refuses bad escapes, NUL and other control
 * bytes, and results longer than cap-1. Returns the decoded length or -1. */
long gw_admin_pct_decode(const char *in, size_t len, int plus_space, char *out,
                         size_t cap) GH_WUR;

struct gw_config;
/* Is an admin certificate with this one-line subject and CN on
 * admin.allowed_subjects (empty list: yes)? An entry is a whole subject,
 * or a single CN ("ops-admin" / "CN=ops-admin") compared with the CN. */
int gw_admin_subject_allowed(const struct gw_config *cfg, const char *subject, const char *cn);

/* The decoded value of query parameter key, or NULL if absent. */
const char *gw_admin_query(const struct gw_admin_req *req, const char *key);

/* Strict decimal integer (optional '-', digits only, no spaces) within
 * [min, max]. 0 or -1. */
int gw_admin_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) GH_WUR;

/* GET /v1/sessions: limit (1..10000, 0 when absent). 0, or -1 + err. */
int gw_admin_sessions_limit(const struct gw_admin_req *req, int *limit,
                            struct gh_err *err) GH_WUR;

/* GET /v1/decisions and /v1/decisions/stream: build the db query from the
 * parameters. String fields of q point into req (keep req alive). Unknown
 * decision values and reason names are refused here (400) rather than by
 * the database. 0, or -1 with err (reason GH_R_ADMIN_BAD_REQUEST). */
int gw_admin_decisions_query(const struct gw_admin_req *req, struct db_query *q,
                             struct gh_err *err) GH_WUR;

/* POST /v1/revocations body. */
struct gw_admin_revoke {
    char kind[16];                       /* session | subject | cert | token */
    char target[GW_ADMIN_MAX_TEXT + 1];
    char reason[GW_ADMIN_MAX_TEXT + 1];
    int64_t expires_in_s;                /* 0 = never */
};
/* Validate {"kind","target","reason","expires_in_s"?}: an object with only
 * these keys, strings of the right form, no duplicate keys. 0, or -1 with
 * err (GH_R_ADMIN_BAD_REQUEST) saying what is wrong. */
int gw_admin_parse_revoke(const char *body, size_t len, struct gw_admin_revoke *out,
                          struct gh_err *err) GH_WUR;

/* POST /v1/policy/rollback body {"version": string or non-negative integer}. */
int gw_admin_parse_rollback(const char *body, size_t len, char *version, size_t cap,
                            struct gh_err *err) GH_WUR;

/* The error body {"error": msg, "reason": name}. NULL only when out of memory. */
json_t *gw_admin_error_json(const char *msg, enum gh_reason reason);

/* Copy at most cap-1 bytes of s[0..len) keeping printable ASCII and
 * replacing anything else with '?', "..." marking a cut. For log fields and
 * error messages that quote client input. */
void gw_admin_printable(char *out, size_t cap, const char *s, size_t len);

#endif
