/*
 * config.h: the gateway configuration snapshot.
 *
 * Owns: struct gw_config, loaded from one YAML file (libfyaml) into a fresh
 * immutable snapshot. Must not: open sockets or read TLS files (it records
 * paths; tls.c loads them). Every error is collected as `file:line:col: msg`
 * and any error fails the whole load, so a running gateway keeps its old
 * snapshot on a bad reload (STYLE.md "Connections, config, logs").
 *
 * Lifetime: gw_config_load returns a snapshot with refcount 1; holders take
 * gw_config_ref and drop with gw_config_unref; the last unref frees all.
 * Thread rules: a snapshot is read-only after load, so any thread may read it.
 * Every key is documented in docs/CONFIG.md (tests/integration/t_docs_check.sh checks).
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gateway/base/err.h"

#define GW_MAX_ROUTES 64
#define GW_MAX_AUD 8
#define GW_MAX_TRUSTED 16
#define GW_MAX_STRIP 16
#define GW_MAX_ADMIN_SUBJECTS 16

struct gw_cidr {
    struct sockaddr_storage addr; /* AF_INET or AF_INET6, network address */
    int prefix;
};

struct gw_upstream {
    char *url;        /* as written, e.g. "https://10.0.0.5:8443/base" */
    int tls;          /* 1 for https:// */
    char *host;       /* host part (name or literal) */
    char *port;       /* port as string ("80"/"443" defaulted) */
    char *base_path;  /* path prefix to prepend ("" if none) */
    char *ca_file;    /* https: CA bundle that pins the upstream's cert (required for https) */
    char *cert_file;  /* https: optional client certificate for mTLS to the upstream */
    char *key_file;
    char *server_name; /* SNI / name to verify; defaults to host */
    int pool_size;     /* max idle keep-alive connections kept per worker (default 32) */
    int connect_timeout_ms; /* default 5000 */
    int read_timeout_ms;    /* default 30000 */
};

struct gw_route {
    char *id;          /* unique route id, used by policy and logs */
    char *host;        /* Host header to match (no port); "*" matches any */
    char *path_prefix; /* request path prefix, e.g. "/" or "/wiki/" */
    struct gw_upstream upstream;
    int64_t max_body_bytes; /* 413 above this; default 10 MiB; -1 = unlimited */
    int require_binding;    /* RFC 8705 binding required (default 1); 0 only with the loud key */
    int authz;              /* 1 = token + policy required (default); 0 = mTLS only (not recommended) */
    char *strip_headers[GW_MAX_STRIP]; /* extra request headers removed before forwarding */
    int n_strip;
};

struct gw_issuer_config {
    char *issuer;                 /* exact iss value and discovery base URL */
    char *audiences[GW_MAX_AUD];
    int n_aud;
    char *ca_file;                /* CA bundle for the issuer's TLS (NULL = system bundle) */
    char *cert_file;              /* optional client cert for calling the issuer */
    char *key_file;
    char *jwks_uri;               /* optional override; default from discovery */
    int skew_s;                   /* default 60, max 300 */
    int allow_jwt_typ;            /* accept typ "JWT" as well as "at+jwt" (default 0) */
    int jwks_refresh_s;           /* periodic refresh, default 300 */
    int jwks_min_refresh_s;       /* min gap between unknown-kid refreshes, default 30 */
    char *jwks_cache_file;        /* optional: last good JWKS persisted here */
};

enum gw_log_mode { GW_LOG_STRICT = 0, GW_LOG_ASYNC = 1 };

struct gw_config {
    int refs;
    char *path;

    /* listener */
    char *listen;                /* "host:port", default "127.0.0.1:8443" */
    int workers;                 /* 0 = number of cores */
    char *server_name;           /* gateway name for logs/console; default hostname */

    /* downstream TLS */
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_client_ca_file;    /* required: client certificates verified against it */
    char *tls_crl_file;          /* optional */
    int tls_min_version;         /* 12 or 13 (default 12) */
    int tls_ticket_rotate_s;     /* session ticket key rotation, default 3600 */
    int tls_reload_check_s;      /* file-change check interval, default 10 (0 = off) */

    /* HTTP limits and timeouts */
    int max_header_bytes;        /* default 16384 -> 431 */
    int max_headers;             /* default 100 -> 431 */
    int max_uri_bytes;           /* default 8192 -> 414 */
    int handshake_timeout_ms;    /* default 10000 */
    int header_timeout_ms;       /* default 10000 -> 408 */
    int idle_timeout_ms;         /* keep-alive idle, default 60000 */
    int drain_timeout_ms;        /* SIGTERM drain deadline, default 10000 */
    struct gw_cidr trusted_proxies[GW_MAX_TRUSTED];
    int n_trusted;

    /* routes */
    struct gw_route routes[GW_MAX_ROUTES];
    int n_routes;

    /* identity */
    int has_issuer;
    struct gw_issuer_config issuer;
    char *policy_file;           /* required when any route has authz on */
    char *assertion_key_file;    /* ES256 key for X-Gatehouse-Assertion; generated if absent */
    int assertion_ttl_s;         /* default 60 */

    /* decision log */
    char *db_path;               /* default "gatehouse.db" */
    enum gw_log_mode log_mode;   /* default strict */
    int log_sync_normal;         /* decision_log.sync: 0 = full (default), 1 = normal */
    int log_async_window_ms;     /* default 50 */
    int log_queue_size;          /* default 8192 */
    int log_retention_days;      /* 0 = keep forever (default) */

    /* admin plane */
    char *admin_socket;          /* default "gatehouse.sock" (mode 0600) */
    char *admin_listen;          /* optional "host:port" for remote mTLS admin */
    char *admin_client_ca_file;  /* CA for admin certificates (required with admin_listen) */
    char *admin_subjects[GW_MAX_ADMIN_SUBJECTS]; /* optional allow-list of cert subjects/CNs */
    int n_admin_subjects;

    char *log_level;             /* "info" */
};

/* Load and validate path. On success returns a snapshot (refcount 1). On any
 * error returns NULL with every problem in errs as `file:line:col: message`.
 * Relative file paths in the config are resolved against the config file's
 * directory. */
struct gw_config *gw_config_load(const char *path, struct gh_errlist *errs) GH_WUR;
/* Same, from a buffer (name is used in messages; relative paths resolve
 * against base_dir, which may be NULL for the cwd). Used by tests and fuzzing. */
struct gw_config *gw_config_load_buf(const char *name, const char *base_dir, const char *buf,
                                     size_t len, struct gh_errlist *errs) GH_WUR;
struct gw_config *gw_config_ref(struct gw_config *c);
void gw_config_unref(struct gw_config *c);

/* Route lookup: host (without port, case-insensitive) and path. Longest
 * path_prefix wins among routes whose host matches exactly; "*" routes are
 * considered only if no exact-host route matches. NULL if none. */
const struct gw_route *gw_config_route(const struct gw_config *c, const char *host, size_t host_len,
                                       const char *path, size_t path_len);

/* Parse "1.2.3.0/24" / "::1/128" / "10.0.0.1"; 0 or -1. */
int gw_cidr_parse(const char *s, struct gw_cidr *out);
int gw_cidr_match(const struct gw_cidr *c, const struct sockaddr *sa);

#endif
