/*
 * test_gw_config.c: the configuration loader (gateway/config.c).
 *
 * Every test writes its config text inline so the expected `line:col` can be
 * read off the string; the TLS/CA files the loader checks for readability
 * are created in a fresh temporary directory per run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"

static char tmpdir[256];

static const char *const files[] = {
    "server.crt",      "server.key",      "client-ca.crt", "clients.crl",     "idp-ca.crt",
    "gw-idp.crt",      "gw-idp.key",      "policy.yaml",   "upstream-ca.crt", "gw-upstream.crt",
    "gw-upstream.key", "admin-ca.crt",
};

static void write_file(const char *dir, const char *name, const char *content)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gh-test-config-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        write_file(tmpdir, files[i], files[i]); /* distinct contents: distinct CAs */
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct gw_config *load(const char *text, struct gh_errlist *errs)
{
    memset(errs, 0, sizeof(*errs));
    return gw_config_load_buf("t.yaml", tmpdir, text, strlen(text), errs);
}

static void dump(const struct gh_errlist *errs)
{
    for (int i = 0; i < errs->n; i++) {
        print_message("  err[%d] %s\n", i, errs->msg[i]);
    }
}

/* Asserts that some collected error starts with "t.yaml:line:col: " and
 * contains needle. */
static void expect_err(const struct gh_errlist *errs, int line, int col, const char *needle)
{
    char pfx[64];
    snprintf(pfx, sizeof(pfx), "t.yaml:%d:%d: ", line, col);
    for (int i = 0; i < errs->n; i++) {
        if (strncmp(errs->msg[i], pfx, strlen(pfx)) == 0 && strstr(errs->msg[i], needle) != NULL) {
            return;
        }
    }
    print_message("expected error '%s...%s'; got:\n", pfx, needle);
    dump(errs);
    fail();
}

/* Load must fail with exactly one error at line:col containing needle. */
static void expect_one(const char *text, int line, int col, const char *needle)
{
    struct gh_errlist errs;
    struct gw_config *c = load(text, &errs);
    if (c != NULL || errs.n != 1) {
        print_message("expected exactly one error, got %d (config %p):\n", errs.n, (void *)c);
        dump(&errs);
    }
    assert_null(c);
    assert_int_equal(errs.n, 1);
    expect_err(&errs, line, col, needle);
}

/* The smallest valid config with authz on: 13 lines, routes last so tests
 * can append another route item at line 14. */
#define TLS_LINE "tls: {cert: server.crt, key: server.key, client_ca: client-ca.crt}\n"

#define MIN_CFG                                                                          \
    "tls:\n"                                                                            \
    "  cert: server.crt\n"                                                              \
    "  key: server.key\n"                                                               \
    "  client_ca: client-ca.crt\n"                                                      \
    "issuer:\n"                                                                         \
    "  url: https://idp.example.internal\n"                                             \
    "  audiences: [gatehouse]\n"                                                        \
    "policy: policy.yaml\n"                                                             \
    "routes:\n"                                                                         \
    "  - id: wiki\n"                                                                    \
    "    host: wiki.example.internal\n"                                                 \
    "    upstream:\n"                                                                   \
    "      url: http://127.0.0.1:9001\n"

static const char full_cfg[] = "server:\n"
                               "  name: gw-test\n"
                               "  listen: \"0.0.0.0:9443\"\n"
                               "  workers: 4\n"
                               "  log_level: debug\n"
                               "tls:\n"
                               "  cert: server.crt\n"
                               "  key: ./server.key\n"
                               "  client_ca: client-ca.crt\n"
                               "  crl: clients.crl\n"
                               "  min_version: \"1.3\"\n"
                               "  ticket_rotate: 7200\n"
                               "  reload_check: 0\n"
                               "limits:\n"
                               "  max_header_bytes: 32768\n"
                               "  max_headers: 50\n"
                               "  max_uri_bytes: 4096\n"
                               "timeouts:\n"
                               "  handshake: 5000\n"
                               "  header: 6000\n"
                               "  idle: 70000\n"
                               "  drain: 0\n"
                               "trusted_proxies: [\"10.0.0.0/8\", \"::1\", \"fd00::/8\"]\n"
                               "issuer:\n"
                               "  url: https://idp.example.internal/realms/x/\n"
                               "  audiences: [gatehouse, other]\n"
                               "  ca: idp-ca.crt\n"
                               "  cert: gw-idp.crt\n"
                               "  key: gw-idp.key\n"
                               "  jwks_uri: https://idp.example.internal/jwks\n"
                               "  clock_skew: 30\n"
                               "  allow_jwt_typ: true\n"
                               "  jwks_refresh: 600\n"
                               "  jwks_min_refresh: 10\n"
                               "  jwks_cache: cache/jwks.json\n"
                               "policy: policy.yaml\n"
                               "assertion:\n"
                               "  key: assertion.key\n"
                               "  ttl: 30\n"
                               "routes:\n"
                               "  - id: wiki\n"
                               "    host: Wiki.Example.Internal\n"
                               "    path_prefix: /wiki/\n"
                               "    upstream:\n"
                               "      url: https://[::1]:9443/base/\n"
                               "      ca: upstream-ca.crt\n"
                               "      cert: gw-upstream.crt\n"
                               "      key: gw-upstream.key\n"
                               "      server_name: wiki-backend.internal\n"
                               "      pool_size: 8\n"
                               "      connect_timeout: 1000\n"
                               "      read_timeout: 2000\n"
                               "    max_body_bytes: -1\n"
                               "    authz: true\n"
                               "    require_binding: false\n"
                               "    i_understand_tokens_can_be_replayed: true\n"
                               "    strip_headers: [X-Internal-Debug, x-other]\n"
                               "  - id: deploy\n"
                               "    host: deploy.example.internal\n"
                               "    upstream:\n"
                               "      url: http://127.0.0.1:9002\n"
                               "    authz: false\n"
                               "decision_log:\n"
                               "  path: /var/tmp/gh-test.db\n"
                               "  mode: async\n"
                               "  async_window: 100\n"
                               "  queue_size: 1024\n"
                               "  retention_days: 30\n"
                               "admin:\n"
                               "  socket: admin.sock\n"
                               "  listen: \"127.0.0.1:9444\"\n"
                               "  client_ca: admin-ca.crt\n"
                               "  allowed_subjects: [\"CN=ops-admin\", \"CN=other\"]\n";

static void assert_path(const char *got, const char *rel)
{
    char want[512];
    snprintf(want, sizeof(want), "%s/%s", tmpdir, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
}

static void test_full_roundtrip(void **state)
{
    (void)state;
    struct gh_errlist errs;
    struct gw_config *c = load(full_cfg, &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    assert_int_equal(errs.n, 0);
    assert_int_equal(c->refs, 1);
    assert_string_equal(c->path, "t.yaml");

    assert_string_equal(c->server_name, "gw-test");
    assert_string_equal(c->listen, "0.0.0.0:9443");
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->log_level, "debug");

    assert_path(c->tls_cert_file, "server.crt");
    assert_path(c->tls_key_file, "server.key");
    assert_path(c->tls_client_ca_file, "client-ca.crt");
    assert_path(c->tls_crl_file, "clients.crl");
    assert_int_equal(c->tls_min_version, 13);
    assert_int_equal(c->tls_ticket_rotate_s, 7200);
    assert_int_equal(c->tls_reload_check_s, 0);

    assert_int_equal(c->max_header_bytes, 32768);
    assert_int_equal(c->max_headers, 50);
    assert_int_equal(c->max_uri_bytes, 4096);
    assert_int_equal(c->handshake_timeout_ms, 5000);
    assert_int_equal(c->header_timeout_ms, 6000);
    assert_int_equal(c->idle_timeout_ms, 70000);
    assert_int_equal(c->drain_timeout_ms, 0);

    assert_int_equal(c->n_trusted, 3);
    assert_int_equal(c->trusted_proxies[0].addr.ss_family, AF_INET);
    assert_int_equal(c->trusted_proxies[0].prefix, 8);
    assert_int_equal(c->trusted_proxies[1].addr.ss_family, AF_INET6);
    assert_int_equal(c->trusted_proxies[1].prefix, 128);
    assert_int_equal(c->trusted_proxies[2].prefix, 8);

    assert_int_equal(c->has_issuer, 1);
    assert_string_equal(c->issuer.issuer, "https://idp.example.internal/realms/x/");
    assert_int_equal(c->issuer.n_aud, 2);
    assert_string_equal(c->issuer.audiences[0], "gatehouse");
    assert_string_equal(c->issuer.audiences[1], "other");
    assert_path(c->issuer.ca_file, "idp-ca.crt");
    assert_path(c->issuer.cert_file, "gw-idp.crt");
    assert_path(c->issuer.key_file, "gw-idp.key");
    assert_string_equal(c->issuer.jwks_uri, "https://idp.example.internal/jwks");
    assert_int_equal(c->issuer.skew_s, 30);
    assert_int_equal(c->issuer.allow_jwt_typ, 1);
    assert_int_equal(c->issuer.jwks_refresh_s, 600);
    assert_int_equal(c->issuer.jwks_min_refresh_s, 10);
    assert_path(c->issuer.jwks_cache_file, "cache/jwks.json");

    assert_path(c->policy_file, "policy.yaml");
    assert_path(c->assertion_key_file, "assertion.key");
    assert_int_equal(c->assertion_ttl_s, 30);

    assert_int_equal(c->n_routes, 2);
    const struct gw_route *r = &c->routes[0];
    assert_string_equal(r->id, "wiki");
    assert_string_equal(r->host, "wiki.example.internal");
    assert_string_equal(r->path_prefix, "/wiki/");
    assert_string_equal(r->upstream.url, "https://[::1]:9443/base/");
    assert_int_equal(r->upstream.tls, 1);
    assert_string_equal(r->upstream.host, "::1");
    assert_string_equal(r->upstream.port, "9443");
    assert_string_equal(r->upstream.base_path, "/base");
    assert_path(r->upstream.ca_file, "upstream-ca.crt");
    assert_path(r->upstream.cert_file, "gw-upstream.crt");
    assert_path(r->upstream.key_file, "gw-upstream.key");
    assert_string_equal(r->upstream.server_name, "wiki-backend.internal");
    assert_int_equal(r->upstream.pool_size, 8);
    assert_int_equal(r->upstream.connect_timeout_ms, 1000);
    assert_int_equal(r->upstream.read_timeout_ms, 2000);
    assert_true(r->max_body_bytes == -1);
    assert_int_equal(r->authz, 1);
    assert_int_equal(r->require_binding, 0);
    assert_int_equal(r->n_strip, 2);
    assert_string_equal(r->strip_headers[0], "x-internal-debug");
    assert_string_equal(r->strip_headers[1], "x-other");

    r = &c->routes[1];
    assert_string_equal(r->id, "deploy");
    assert_string_equal(r->host, "deploy.example.internal");
    assert_string_equal(r->path_prefix, "/");
    assert_int_equal(r->upstream.tls, 0);
    assert_string_equal(r->upstream.host, "127.0.0.1");
    assert_string_equal(r->upstream.port, "9002");
    assert_string_equal(r->upstream.base_path, "");
    assert_null(r->upstream.ca_file);
    assert_int_equal(r->authz, 0);
    assert_int_equal(r->require_binding, 1);

    assert_string_equal(c->db_path, "/var/tmp/gh-test.db");
    assert_int_equal(c->log_mode, GW_LOG_ASYNC);
    assert_int_equal(c->log_async_window_ms, 100);
    assert_int_equal(c->log_queue_size, 1024);
    assert_int_equal(c->log_retention_days, 30);

    assert_path(c->admin_socket, "admin.sock");
    assert_string_equal(c->admin_listen, "127.0.0.1:9444");
    assert_path(c->admin_client_ca_file, "admin-ca.crt");
    assert_int_equal(c->n_admin_subjects, 2);
    assert_string_equal(c->admin_subjects[0], "CN=ops-admin");
    assert_string_equal(c->admin_subjects[1], "CN=other");

    /* refcount: the last unref frees (ASan checks the rest) */
    assert_ptr_equal(gw_config_ref(c), c);
    assert_int_equal(c->refs, 2);
    gw_config_unref(c);
    assert_int_equal(c->refs, 1);
    gw_config_unref(c);
    gw_config_unref(NULL);
}

static void test_defaults(void **state)
{
    (void)state;
    struct gh_errlist errs;
    struct gw_config *c = load(MIN_CFG, &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    char host[256];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    assert_string_equal(c->server_name, host);
    assert_string_equal(c->listen, "127.0.0.1:8443");
    assert_int_equal(c->workers, 0);
    assert_string_equal(c->log_level, "info");
    assert_null(c->tls_crl_file);
    assert_int_equal(c->tls_min_version, 12);
    assert_int_equal(c->tls_ticket_rotate_s, 3600);
    assert_int_equal(c->tls_reload_check_s, 10);
    assert_int_equal(c->max_header_bytes, 16384);
    assert_int_equal(c->max_headers, 100);
    assert_int_equal(c->max_uri_bytes, 8192);
    assert_int_equal(c->handshake_timeout_ms, 10000);
    assert_int_equal(c->header_timeout_ms, 10000);
    assert_int_equal(c->idle_timeout_ms, 60000);
    assert_int_equal(c->drain_timeout_ms, 10000);
    assert_int_equal(c->n_trusted, 0);
    assert_int_equal(c->has_issuer, 1);
    assert_null(c->issuer.ca_file);
    assert_null(c->issuer.cert_file);
    assert_null(c->issuer.jwks_uri);
    assert_null(c->issuer.jwks_cache_file);
    assert_int_equal(c->issuer.skew_s, 60);
    assert_int_equal(c->issuer.allow_jwt_typ, 0);
    assert_int_equal(c->issuer.jwks_refresh_s, 300);
    assert_int_equal(c->issuer.jwks_min_refresh_s, 30);
    assert_null(c->assertion_key_file);
    assert_int_equal(c->assertion_ttl_s, 60);
    assert_path(c->db_path, "gatehouse.db");
    assert_int_equal(c->log_mode, GW_LOG_STRICT);
    assert_int_equal(c->log_async_window_ms, 50);
    assert_int_equal(c->log_queue_size, 8192);
    assert_int_equal(c->log_retention_days, 0);
    assert_path(c->admin_socket, "gatehouse.sock");
    assert_null(c->admin_listen);
    assert_null(c->admin_client_ca_file);
    assert_int_equal(c->n_admin_subjects, 0);

    assert_int_equal(c->n_routes, 1);
    const struct gw_route *r = &c->routes[0];
    assert_string_equal(r->path_prefix, "/");
    assert_true(r->max_body_bytes == 10 * 1024 * 1024);
    assert_int_equal(r->require_binding, 1);
    assert_int_equal(r->authz, 1);
    assert_int_equal(r->n_strip, 0);
    assert_string_equal(r->upstream.port, "9001");
    assert_string_equal(r->upstream.server_name, "127.0.0.1");
    assert_int_equal(r->upstream.pool_size, 128);
    assert_int_equal(r->upstream.connect_timeout_ms, 5000);
    assert_int_equal(r->upstream.read_timeout_ms, 30000);
    gw_config_unref(c);
}

/* mTLS-only routes need neither issuer nor policy. */
static void test_mtls_only(void **state)
{
    (void)state;
    struct gh_errlist errs;
    struct gw_config *c = load(TLS_LINE
                               "routes:\n"
                               "  - {id: a, host: '*', authz: false, upstream: {url: "
                               "'https://backend.internal'}}\n",
                               &errs);
    /* https without ca is still an error */
    assert_null(c);
    expect_err(&errs, 3, 49, "needs `routes[0].upstream.ca`");

    c = load("tls: {cert: server.crt, key: server.key, client_ca: client-ca.crt}\n"
             "routes:\n"
             "  - {id: a, host: '*', authz: false, upstream: {url: 'http://backend.internal'}}\n",
             &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    assert_int_equal(c->has_issuer, 0);
    assert_null(c->policy_file);
    assert_string_equal(c->routes[0].host, "*");
    assert_string_equal(c->routes[0].upstream.port, "80");
    gw_config_unref(c);
}

static void test_err_unknown_key(void **state)
{
    (void)state;
    expect_one(MIN_CFG "server:\n  wrokers: 4\n", 15, 3,
               "unknown key `server.wrokers` (did you mean `workers`?)");
    expect_one(MIN_CFG "colour: blue\n", 14, 1, "unknown key `colour`");
    expect_one(MIN_CFG "    upstrem_x: 1\n", 14, 5, "unknown key `routes[0].upstrem_x`");
}

static void test_err_types(void **state)
{
    (void)state;
    expect_one(MIN_CFG "server:\n  workers: abc\n", 15, 12,
               "`server.workers`: expected an integer, got 'abc'");
    expect_one(MIN_CFG "server:\n  workers: \"4\"\n", 15, 12, "got a quoted string");
    expect_one(MIN_CFG "server:\n  workers: [1]\n", 15, 12, "expected an integer, got a list");
    expect_one(MIN_CFG "server: 5\n", 14, 9, "`server`: expected a mapping, got a scalar");
    expect_one(MIN_CFG "    authz: yes\n", 14, 12, "`routes[0].authz`: expected true or false");
    expect_one(MIN_CFG "server:\n  name: {a: 1}\n", 15, 9, "expected a string, got a mapping");
    expect_one(MIN_CFG "decision_log: ~\n", 14, 15,
               "`decision_log`: expected a mapping, got an empty value");
    /* an empty value has no token of its own: reported at its key */
    expect_one(MIN_CFG "server:\n  name: \n", 15, 3, "expected a string, got an empty value");
    expect_one(MIN_CFG "decision_log:\n  mode: sometimes\n", 15, 9, "is not strict or async");
    expect_one(MIN_CFG "server:\n  log_level: loud\n", 15, 14,
               "not one of debug, info, warn, error");
    expect_one(MIN_CFG "tls2:\n", 14, 1, "unknown key `tls2`");
}

static void test_err_ranges(void **state)
{
    (void)state;
    expect_one(MIN_CFG "server:\n  workers: 257\n", 15, 12, "257 is out of range (0..256)");
    expect_one(MIN_CFG "timeouts:\n  idle: -5\n", 15, 9, "-5 is out of range");
    expect_one(MIN_CFG "timeouts:\n  drain: -1\n", 15, 10, "`timeouts.drain`: -1 is out of range");
    expect_one(MIN_CFG "    max_body_bytes: -2\n", 14, 21, "-2 is out of range");
    expect_one(MIN_CFG "server:\n  workers: 99999999999999999999\n", 15, 12,
               "expected an integer");
    expect_one(MIN_CFG "limits:\n  max_header_bytes: 2048\n", 14, 1,
               "`limits.max_uri_bytes` (8192) must not exceed");

    /* clock_skew lives in the issuer block in the middle of MIN_CFG */
    expect_one("tls:\n"
               "  cert: server.crt\n"
               "  key: server.key\n"
               "  client_ca: client-ca.crt\n"
               "issuer:\n"
               "  url: https://idp.example.internal\n"
               "  audiences: [gatehouse]\n"
               "  clock_skew: 301\n"
               "policy: policy.yaml\n"
               "routes: [{id: a, host: a.internal, upstream: {url: 'http://10.0.0.1'}}]\n",
               8, 15, "`issuer.clock_skew`: 301 is out of range (0..300)");
}

static void test_err_missing_required(void **state)
{
    (void)state;
    /* tls.cert missing: reported at the `tls` key */
    expect_one("tls:\n"
               "  key: server.key\n"
               "  client_ca: client-ca.crt\n"
               "routes: [{id: a, host: '*', authz: false, upstream: {url: 'http://x'}}]\n",
               1, 1, "missing required key `tls.cert`");
    /* no tls section, no routes: reported at the root (first key) */
    struct gh_errlist errs;
    struct gw_config *c = load("\n\nserver:\n  workers: 2\n", &errs);
    assert_null(c);
    assert_int_equal(errs.n, 2);
    expect_err(&errs, 3, 1, "missing required section `tls`");
    expect_err(&errs, 3, 1, "missing required key `routes`");

    expect_one("tls: {cert: server.crt, key: server.key, client_ca: client-ca.crt}\n"
               "routes: []\n",
               2, 9, "at least one route is required");
    /* route without id, host and upstream.url */
    c = load(MIN_CFG "  - path_prefix: /x\n"
                     "    upstream:\n"
                     "      pool_size: 1\n",
             &errs);
    assert_null(c);
    assert_int_equal(errs.n, 3);
    expect_err(&errs, 14, 5, "missing required key `routes[].id` in `routes[1]`");
    expect_err(&errs, 14, 5, "missing required key `routes[].host` in `routes[1]`");
    expect_err(&errs, 15, 5, "missing required key `routes[1].upstream.url`");
    /* issuer without url / audiences */
    c = load(MIN_CFG "issuer:\n  clock_skew: 5\n", &errs);
    assert_null(c);
    expect_err(&errs, 14, 1, "duplicate key `issuer`");
}

static void test_err_https_upstream_needs_ca(void **state)
{
    (void)state;
    expect_one(MIN_CFG "  - id: admin\n"
                       "    host: admin.example.internal\n"
                       "    upstream:\n"
                       "      url: https://127.0.0.1:9443\n",
               17, 7, "https upstream needs `routes[1].upstream.ca`");
    expect_one(MIN_CFG "      ca: upstream-ca.crt\n", 14, 7,
               "`routes[0].upstream.ca` only applies to https:// upstreams");
    expect_one(MIN_CFG "  - id: admin\n"
                       "    host: admin.example.internal\n"
                       "    upstream:\n"
                       "      url: https://127.0.0.1:9443\n"
                       "      ca: upstream-ca.crt\n"
                       "      cert: gw-upstream.crt\n",
               19, 7, "`routes[1].upstream.cert` is set but `routes[1].upstream.key` is missing");
}

static void test_err_duplicates(void **state)
{
    (void)state;
    expect_one(MIN_CFG "  - id: wiki\n"
                       "    host: other.example.internal\n"
                       "    upstream: {url: 'http://127.0.0.1:9002'}\n",
               14, 9, "duplicate route id 'wiki' (first at line 10)");
    expect_one(MIN_CFG "  - id: wiki2\n"
                       "    host: WIKI.example.internal\n"
                       "    path_prefix: /\n"
                       "    upstream: {url: 'http://127.0.0.1:9002'}\n",
               15, 11,
               "duplicate route for host 'wiki.example.internal' and path_prefix '/' (first at "
               "line 10)");
    expect_one(MIN_CFG "    host: x.example.internal\n", 14, 5,
               "duplicate key `routes[0].host` (first set at line 11)");
}

static void test_err_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *why;
    } bad[] = {
        {"ftp://127.0.0.1", "only http:// and https://"},
        {"http://user:pw@127.0.0.1", "userinfo"},
        {"http://127.0.0.1/x?a=b", "query"},
        {"http://127.0.0.1/#frag", "fragment"},
        {"http://127.0.0.1:0", "port must be 1..65535"},
        {"http://127.0.0.1:65536", "port must be 1..65535"},
        {"http://127.0.0.1:", "port must be 1..65535"},
        {"http://:80", "missing host"},
        {"http://[::1", "invalid IPv6 literal"},
        {"http://bad_host!/", "invalid host"},
        {"http://h/a/../b", "'..' path segments"},
        {"127.0.0.1:9001", "only http:// and https://"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text),
                 "tls: {cert: server.crt, key: server.key, client_ca: client-ca.crt}\n"
                 "routes:\n"
                 "  - id: a\n"
                 "    host: a.internal\n"
                 "    authz: false\n"
                 "    upstream:\n"
                 "      url: '%s'\n",
                 bad[i].url);
        expect_one(text, 7, 12, bad[i].why);
    }
    /* the issuer must be https */
    expect_one("tls: {cert: server.crt, key: server.key, client_ca: client-ca.crt}\n"
               "issuer: {url: 'http://idp.internal', audiences: [a]}\n"
               "policy: policy.yaml\n"
               "routes: [{id: a, host: a.internal, upstream: {url: 'http://10.0.0.1'}}]\n",
               2, 15, "`issuer.url`: must be an https:// URL");
}

static void test_err_cidr(void **state)
{
    (void)state;
    expect_one(MIN_CFG "trusted_proxies: [10.0.0.0/8, 300.1.1.1/8]\n", 14, 31,
               "`trusted_proxies[1]`: '300.1.1.1/8' is not an IPv4/IPv6 address or CIDR");
    expect_one(MIN_CFG "trusted_proxies:\n  - 10.0.0.1/8\n", 15, 5,
               "has host bits set (did you mean 10.0.0.0/8?)");
    expect_one(MIN_CFG "trusted_proxies: ['::1/129']\n", 14, 19, "not an IPv4/IPv6");
    expect_one(MIN_CFG "trusted_proxies: 10.0.0.0/8\n", 14, 18, "expected a list");
}

static void test_err_path_prefix_and_host(void **state)
{
    (void)state;
    expect_one(MIN_CFG "    path_prefix: wiki\n", 14, 18, "'wiki' must start with '/'");
    expect_one(MIN_CFG "    path_prefix: /a?b\n", 14, 18, "without spaces, '?' or '#'");
    expect_one(MIN_CFG "  - id: x\n"
                       "    host: '*.example.internal'\n"
                       "    upstream: {url: 'http://127.0.0.1:9002'}\n",
               15, 11, "is not a host name");
    expect_one(MIN_CFG "  - id: x\n"
                       "    host: a.example.internal:8443\n"
                       "    upstream: {url: 'http://127.0.0.1:9002'}\n",
               15, 11, "no port");
    expect_one(MIN_CFG "  - id: 'bad id'\n"
                       "    host: a.example.internal\n"
                       "    upstream: {url: 'http://127.0.0.1:9002'}\n",
               14, 9, "may only contain letters");
}

static void test_err_require_binding(void **state)
{
    (void)state;
    expect_one(MIN_CFG "    require_binding: false\n", 14, 22,
               "`routes[0].require_binding: false` makes stolen tokens replayable");
    /* an acknowledgement that is not `true` does not count */
    expect_one(MIN_CFG "    require_binding: false\n"
                       "    i_understand_tokens_can_be_replayed: false\n",
               14, 22, "makes stolen tokens replayable");

    struct gh_errlist errs;
    struct gw_config *c = load(MIN_CFG "    require_binding: false\n"
                                       "    i_understand_tokens_can_be_replayed: true\n",
                               &errs);
    assert_non_null(c);
    assert_int_equal(c->routes[0].require_binding, 0);
    gw_config_unref(c);
}

static void test_err_authz_needs_issuer_and_policy(void **state)
{
    (void)state;
    struct gh_errlist errs;
    struct gw_config *c = load(TLS_LINE
                               "routes:\n"
                               "  - id: open\n"
                               "    host: a.internal\n"
                               "    authz: false\n"
                               "    upstream: {url: 'http://10.0.0.1'}\n"
                               "  - id: closed\n"
                               "    host: b.internal\n"
                               "    upstream: {url: 'http://10.0.0.2'}\n",
                               &errs);
    assert_null(c);
    assert_int_equal(errs.n, 2);
    expect_err(&errs, 7, 5, "route 'closed' requires tokens");
    expect_err(&errs, 7, 5, "no `issuer` section");
    expect_err(&errs, 7, 5, "no `policy` file");

    expect_one("tls: {cert: server.crt, key: server.key, client_ca: client-ca.crt}\n"
               "issuer: {url: 'https://idp.internal', audiences: gatehouse}\n"
               "routes:\n"
               "  - id: closed\n"
               "    host: b.internal\n"
               "    authz: true\n"
               "    upstream: {url: 'http://10.0.0.2'}\n",
               6, 12, "no `policy` file");
}

static void test_err_trusted_everything(void **state)
{
    (void)state;
    expect_one(MIN_CFG "trusted_proxies: [\"0.0.0.0/0\"]\n", 14, 19, "trusts too much");
    expect_one(MIN_CFG "trusted_proxies: [\"::/0\"]\n", 14, 19, "trusts too much");
    /* IPv4 peers are compared as ::ffff:a.b.c.d: these trust every one */
    expect_one(MIN_CFG "trusted_proxies: [\"::/8\"]\n", 14, 19, "trusts too much");
    expect_one(MIN_CFG "trusted_proxies: [\"::ffff:0:0/96\"]\n", 14, 19, "trusts too much");
    expect_one(MIN_CFG "trusted_proxies: [\"::ffff:0:0/100\"]\n", 14, 19, "trusts too much");
}

static void test_err_admin(void **state)
{
    (void)state;
    expect_one(MIN_CFG "admin:\n  listen: \"127.0.0.1:9444\"\n", 15, 11,
               "`admin.listen` needs `admin.client_ca`");
    expect_one(MIN_CFG "admin:\n  listen: \"127.0.0.1\"\n", 15, 11, "missing :port");
    expect_one(MIN_CFG "admin:\n  listen: \"::1:9444\"\n", 15, 11, "in brackets");
    expect_one(MIN_CFG "server: {listen: '127.0.0.1:9444'}\n"
                       "admin: {listen: '127.0.0.1:9444', client_ca: admin-ca.crt}\n",
               15, 17, "must differ from `server.listen`");
    /* the users' CA as the admin CA with no allow-list: every user an admin */
    expect_one(MIN_CFG "admin: {listen: '127.0.0.1:9444', client_ca: client-ca.crt}\n", 14, 17,
               "every user certificate would be an admin");
    write_file(tmpdir, "client-ca-copy.crt", "client-ca.crt");
    expect_one(MIN_CFG "admin: {listen: '127.0.0.1:9444', client_ca: client-ca-copy.crt}\n", 14,
               17, "is the same CA as `tls.client_ca`");
    /* with an allow-list it is the operator's explicit choice */
    struct gh_errlist errs;
    struct gw_config *c = load(MIN_CFG "admin: {listen: '127.0.0.1:9444', client_ca: client-ca.crt, "
                                       "allowed_subjects: ['CN=ops-admin']}\n",
                               &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    gw_config_unref(c);
    char longsock[200];
    memset(longsock, 'a', sizeof(longsock) - 1);
    longsock[sizeof(longsock) - 1] = '\0';
    char text[1024];
    snprintf(text, sizeof(text), MIN_CFG "admin:\n  socket: %s\n", longsock);
    expect_one(text, 15, 11, "too long for a Unix socket");
}

static void test_err_unreadable_file(void **state)
{
    (void)state;
    char want[512];
    snprintf(want, sizeof(want), "`tls.crl`: cannot read '%s/missing.crl': No such file", tmpdir);
    expect_one(MIN_CFG "  - id: b\n"
                       "    host: b.internal\n"
                       "    upstream: {url: 'http://10.0.0.2'}\n"
                       "tls:\n"
                       "  crl: missing.crl\n",
               17, 1, "duplicate key `tls`");
    expect_one("tls:\n"
               "  cert: server.crt\n"
               "  key: server.key\n"
               "  client_ca: client-ca.crt\n"
               "  crl: missing.crl\n"
               "routes: [{id: a, host: a.internal, authz: false, upstream: {url: 'http://x'}}]\n",
               5, 3, want);
    expect_one("tls:\n"
               "  cert: server.crt\n"
               "  key: server.key\n"
               "  client_ca: client-ca.crt\n"
               "routes: [{id: a, host: a.internal, authz: false, upstream: {url: 'https://x', ca: "
               "nope.pem}}]\n",
               5, 79, "`routes[0].upstream.ca`: cannot read");
}

static void test_err_yaml_syntax(void **state)
{
    (void)state;
    expect_one("tls:\n  cert: @server.crt\n", 2, 9, "YAML syntax error");
    /* libfyaml points at the first character after the opening quote */
    expect_one("tls:\n  cert: \"server.crt\n", 2, 10, "YAML syntax error");
    expect_one("a: 1\nb: c: d\n", 2, 5, "YAML syntax error");
    /* aliases, tags, several documents, non-mapping root, empty file */
    expect_one(MIN_CFG "server:\n  name: &n x\n  log_level: *n\n", 16, 14, "aliases");
    expect_one(MIN_CFG "server:\n  workers: !!int 3\n", 15, 12, "tags");
    expect_one(MIN_CFG "---\nx: 1\n", 14, 1, "only one YAML document");
    expect_one("- a\n- b\n", 1, 1, "must be a mapping of sections, got a list");
    expect_one("", 1, 1, "empty");
    expect_one("# only a comment\n", 1, 1, "empty");
    expect_one(MIN_CFG "? [a, b]\n: c\n", 14, 3, "mapping keys must be plain strings");
    /* NUL byte: position of the NUL */
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    static const char nul[] = "tls:\n  ce\0rt: x\n";
    assert_null(gw_config_load_buf("t.yaml", tmpdir, nul, sizeof(nul) - 1, &errs));
    expect_err(&errs, 2, 5, "NUL byte");
    /* encoding problems are reported before libfyaml sees the bytes:
     * "%" + invalid UTF-8 hangs libfyaml 0.7.12 (upstream issue #101) */
    expect_one("a: 1\n%\265r\n", 2, 1, "YAML directives");
    expect_one("a: 1\nb: x\265\n", 2, 5, "invalid UTF-8 (byte 0xb5)");
    expect_one("tls:\n  cert: caf\xc3\xa9\x01\n", 2, 13, "control character U+0001");
    expect_one("tls:\n  cert: \xc0\xafx\n", 2, 9, "invalid UTF-8 (byte 0xc0)");
    expect_one("tls:\n  cert: \xed\xa0\x80\n", 2, 9, "invalid UTF-8");
    expect_one("%TAG ! tag:x,2000:\n---\ntls: {}\n", 1, 1, "YAML directives");
    expect_one("%YAML 1.2 x\n---\n", 1, 1, "YAML directives");
    /* %YAML 1.2 and a BOM are fine (the error is about content, not syntax) */
    expect_one("\xef\xbb\xbf%YAML 1.2 # ok\n---\n" MIN_CFG "bogus: 1\n", 16, 1,
               "unknown key `bogus`");
    /* deep nesting is refused before it costs anything */
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    expect_one(deep, 1, 33, "nesting deeper than 32 levels");
}

static void test_err_limits(void **state)
{
    (void)state;
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    size_t big = 1024 * 1024 + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, '#', big);
    assert_null(gw_config_load_buf("t.yaml", tmpdir, buf, big, &errs));
    expect_err(&errs, 1, 1, "larger than 1048576 bytes");
    free(buf);

    /* 65 routes: the 65th item is named */
    size_t cap = 65 * 100 + 512;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t off = (size_t)snprintf(text, cap, "tls: {cert: server.crt, key: server.key, "
                                             "client_ca: client-ca.crt}\nroutes:\n");
    for (int i = 0; i < 65; i++) {
        off += (size_t)snprintf(text + off, cap - off,
                                "  - {id: r%d, host: h%d.internal, authz: false, upstream: {url: "
                                "'http://x'}}\n",
                                i, i);
    }
    expect_one(text, 67, 5, "too many routes (max 64)");
    free(text);

    expect_one(MIN_CFG "    strip_headers: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q]\n",
               14, 69, "too many entries (max 16)");
    expect_one(MIN_CFG "    strip_headers: ['bad header']\n", 14, 21, "not a valid header name");
}

static void test_multiple_errors(void **state)
{
    (void)state;
    struct gh_errlist errs;
    struct gw_config *c = load("server:\n"
                               "  workers: 999\n"
                               "  log_level: verbose\n"
                               "tls:\n"
                               "  cert: server.crt\n"
                               "  key: nope.key\n"
                               "  client_ca: client-ca.crt\n"
                               "  min_version: '1.1'\n"
                               "routes:\n"
                               "  - id: a\n"
                               "    host: a.internal\n"
                               "    path_prefix: nope\n"
                               "    authz: false\n"
                               "    upstream: {url: 'gopher://x'}\n",
                               &errs);
    assert_null(c);
    assert_int_equal(errs.n, 6);
    expect_err(&errs, 2, 12, "out of range");
    expect_err(&errs, 3, 14, "verbose");
    expect_err(&errs, 6, 3, "`tls.key`: cannot read");
    expect_err(&errs, 8, 16, "older TLS is not supported");
    expect_err(&errs, 12, 18, "must start with '/'");
    expect_err(&errs, 14, 21, "only http:// and https://");

    /* more than GH_ERRLIST_MAX errors: stored up to the cap, the rest counted */
    char text[8192];
    size_t off = (size_t)snprintf(text, sizeof(text), "%s", MIN_CFG);
    for (int i = 0; i < 40; i++) {
        off += (size_t)snprintf(text + off, sizeof(text) - off, "bogus%d: 1\n", i);
    }
    c = load(text, &errs);
    assert_null(c);
    assert_int_equal(errs.n, GH_ERRLIST_MAX);
    assert_int_equal(errs.dropped, 40 - GH_ERRLIST_MAX);
}

/* Single-quoted strings with '' escapes are decoded by the loader itself:
 * libfyaml 0.7.12 leaks and mis-decodes runs of them. */
static void test_single_quoted(void **state)
{
    (void)state;
    struct gh_errlist errs;
    struct gw_config *c = load(MIN_CFG "admin:\n"
                                       "  allowed_subjects:\n"
                                       "    - 'CN=o''brien''''x'\n"
                                       "    - ''''''''''''''''''''''''''\n"
                                       "    - 'CN=a\n"
                                       "       b  \n"
                                       "       c '\n"
                                       "    - 'plain'\n",
                               &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    assert_int_equal(c->n_admin_subjects, 4);
    assert_string_equal(c->admin_subjects[0], "CN=o'brien''x");
    assert_string_equal(c->admin_subjects[1], "''''''''''''");
    assert_string_equal(c->admin_subjects[2], "CN=a b c ");
    assert_string_equal(c->admin_subjects[3], "plain");
    gw_config_unref(c);
}

static void test_path_resolution(void **state)
{
    (void)state;
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/etc", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(sub, "server.crt", "x");
    write_file(sub, "client-ca.crt", "x");
    write_file(sub, "gatehouse.yaml",
               "tls:\n"
               "  cert: server.crt\n"
               "  key: ../server.key\n"
               "  client_ca: ./client-ca.crt\n"
               "  crl: /dev/null\n"
               "routes: [{id: a, host: a.internal, authz: false, upstream: {url: 'http://x'}}]\n");

    char cfgpath[600];
    snprintf(cfgpath, sizeof(cfgpath), "%s/gatehouse.yaml", sub);
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct gw_config *c = gw_config_load(cfgpath, &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    assert_string_equal(c->path, cfgpath);
    assert_path(c->tls_cert_file, "etc/server.crt");
    assert_path(c->tls_key_file, "etc/../server.key");
    assert_path(c->tls_client_ca_file, "etc/client-ca.crt");
    assert_string_equal(c->tls_crl_file, "/dev/null");
    assert_path(c->db_path, "etc/gatehouse.db");
    assert_path(c->admin_socket, "etc/gatehouse.sock");
    gw_config_unref(c);

    /* a relative config path is made absolute against the cwd */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    memset(&errs, 0, sizeof(errs));
    c = gw_config_load("etc/gatehouse.yaml", &errs);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(c);
    assert_string_equal(c->path, cfgpath);
    assert_path(c->tls_cert_file, "etc/server.crt");
    gw_config_unref(c);

    /* load_buf with a NULL base_dir resolves against the cwd */
    assert_int_equal(chdir(sub), 0);
    memset(&errs, 0, sizeof(errs));
    c = gw_config_load_buf("t.yaml", NULL, "tls: {cert: server.crt, key: ../server.key, "
                                           "client_ca: client-ca.crt}\n"
                                           "routes: [{id: a, host: a, authz: false, upstream: "
                                           "{url: 'http://x'}}]\n",
                           strlen("tls: {cert: server.crt, key: ../server.key, "
                                  "client_ca: client-ca.crt}\n"
                                  "routes: [{id: a, host: a, authz: false, upstream: "
                                  "{url: 'http://x'}}]\n"),
                           &errs);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(c);
    assert_path(c->tls_cert_file, "etc/server.crt");
    gw_config_unref(c);

    /* a file that does not exist: file:1:1 */
    memset(&errs, 0, sizeof(errs));
    assert_null(gw_config_load("/nonexistent/gatehouse.yaml", &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msg[0], "/nonexistent/gatehouse.yaml:1:1: cannot open: No such file "
                                     "or directory");
    /* errors in a file name the file */
    write_file(sub, "bad.yaml", "tls:\n  cert: [\n");
    snprintf(cfgpath, sizeof(cfgpath), "%s/bad.yaml", sub);
    memset(&errs, 0, sizeof(errs));
    assert_null(gw_config_load(cfgpath, &errs));
    assert_true(errs.n >= 1);
    assert_true(strncmp(errs.msg[0], cfgpath, strlen(cfgpath)) == 0);
    assert_true(strstr(errs.msg[0], ":3:1: YAML syntax error") != NULL);
}

static struct gw_config *route_cfg(void)
{
    struct gh_errlist errs;
    struct gw_config *c = load(TLS_LINE
                               "routes:\n"
                               "  - {id: any, host: '*', authz: false,\n"
                               "     upstream: {url: 'http://x'}}\n"
                               "  - {id: any-api, host: '*', path_prefix: /api, authz: false,\n"
                               "     upstream: {url: 'http://x'}}\n"
                               "  - {id: wiki, host: wiki.example.internal, path_prefix: /app,\n"
                               "     authz: false, upstream: {url: 'http://x'}}\n"
                               "  - {id: wiki-dir, host: wiki.example.internal,\n"
                               "     path_prefix: /app/x/,\n"
                               "     authz: false, upstream: {url: 'http://x'}}\n"
                               "  - {id: v6, host: '[::1]', authz: false,\n"
                               "     upstream: {url: 'http://x'}}\n"
                               "  - {id: root, host: root.internal, path_prefix: /, authz: false,\n"
                               "     upstream: {url: 'http://x'}}\n",
                               &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    return c;
}

static const char *route_id(const struct gw_config *c, const char *host, const char *path)
{
    const struct gw_route *r = gw_config_route(c, host, host != NULL ? strlen(host) : 0, path,
                                               path != NULL ? strlen(path) : 0);
    return r != NULL ? r->id : "(none)";
}

static void test_route_match(void **state)
{
    (void)state;
    struct gw_config *c = route_cfg();
    /* exact host, segment boundary */
    assert_string_equal(route_id(c, "wiki.example.internal", "/app"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal", "/app/"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal", "/app/page"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal", "/app?q=1"), "wiki");
    /* "/application" is not under "/app": falls through to the "*" routes */
    assert_string_equal(route_id(c, "wiki.example.internal", "/application"), "any");
    assert_string_equal(route_id(c, "wiki.example.internal", "/api/v1"), "any-api");
    assert_string_equal(route_id(c, "wiki.example.internal", "/apix"), "any");
    /* longest prefix wins; a prefix ending in '/' matches anything below it */
    assert_string_equal(route_id(c, "wiki.example.internal", "/app/x/"), "wiki-dir");
    assert_string_equal(route_id(c, "wiki.example.internal", "/app/x/y"), "wiki-dir");
    assert_string_equal(route_id(c, "wiki.example.internal", "/app/x"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal", "/app/xy"), "wiki");
    /* case-insensitive host, port stripped, trailing dot */
    assert_string_equal(route_id(c, "WIKI.Example.INTERNAL", "/app"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal:8443", "/app"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal.", "/app"), "wiki");
    assert_string_equal(route_id(c, "wiki.example.internal.:8443", "/app"), "wiki");
    /* path is case-sensitive */
    assert_string_equal(route_id(c, "wiki.example.internal", "/APP"), "any");
    /* IPv6 literals, with and without brackets and port */
    assert_string_equal(route_id(c, "[::1]:8443", "/"), "v6");
    assert_string_equal(route_id(c, "[::1]", "/x"), "v6");
    assert_string_equal(route_id(c, "::1", "/x"), "v6");
    assert_string_equal(route_id(c, "[::1", "/x"), "any");
    /* "*" only when no exact-host route matches */
    assert_string_equal(route_id(c, "other.internal", "/"), "any");
    assert_string_equal(route_id(c, "other.internal", "/api"), "any-api");
    assert_string_equal(route_id(c, "root.internal", "/anything"), "root");
    assert_string_equal(route_id(c, "root.internal", ""), "root");
    assert_string_equal(route_id(c, NULL, "/"), "any");
    assert_string_equal(route_id(c, "", "/api/"), "any-api");
    /* host_len is honoured: bytes after it are ignored */
    const struct gw_route *r = gw_config_route(c, "wiki.example.internalXXX", 21, "/app", 4);
    assert_non_null(r);
    assert_string_equal(r->id, "wiki");
    r = gw_config_route(c, "wiki.example.internal", 21, "/app/more", 4);
    assert_string_equal(r->id, "wiki");
    assert_null(gw_config_route(NULL, "a", 1, "/", 1));
    gw_config_unref(c);

    /* no "*" route: unknown host -> NULL */
    struct gh_errlist errs;
    c = load(MIN_CFG, &errs);
    assert_non_null(c);
    assert_null(gw_config_route(c, "evil.example", 12, "/", 1));
    assert_string_equal(route_id(c, "wiki.example.internal", "/"), "wiki");
    gw_config_unref(c);
}

static void sa4(struct sockaddr_storage *ss, const char *ip)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s = (struct sockaddr_in *)ss;
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
}

static void sa6(struct sockaddr_storage *ss, const char *ip)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
}

static int match(const char *cidr, int v6, const char *ip)
{
    struct gw_cidr c;
    struct sockaddr_storage ss;
    assert_int_equal(gw_cidr_parse(cidr, &c), 0);
    if (v6) {
        sa6(&ss, ip);
    } else {
        sa4(&ss, ip);
    }
    return gw_cidr_match(&c, (struct sockaddr *)&ss);
}

static void test_cidr(void **state)
{
    (void)state;
    struct gw_cidr c;
    assert_int_equal(gw_cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(c.addr.ss_family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(gw_cidr_parse("10.0.0.1", &c), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(gw_cidr_parse("::1", &c), 0);
    assert_int_equal(c.addr.ss_family, AF_INET6);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(gw_cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(gw_cidr_parse("::/0", &c), 0);
    /* host bits are masked by the parser (the loader rejects them) */
    assert_int_equal(gw_cidr_parse("10.1.2.3/8", &c), 0);
    char buf[64];
    inet_ntop(AF_INET, &((struct sockaddr_in *)&c.addr)->sin_addr, buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.0");

    static const char *const bad[] = {"",         "10.0.0.0/33", "10.0.0.0/",  "10.0.0.0/08",
                                      "10.0.0/8", "::1/129",     "1.2.3.4/-1", "host/8",
                                      "10.0.0.0/8x", "fe80::1%eth0", "::1/1234"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_cidr_parse(bad[i], &c) == 0) {
            print_message("accepted bad CIDR '%s'\n", bad[i]);
            fail();
        }
    }
    assert_int_equal(gw_cidr_parse(NULL, &c), -1);

    /* v4 */
    assert_true(match("10.0.0.0/8", 0, "10.255.1.2"));
    assert_false(match("10.0.0.0/8", 0, "11.0.0.1"));
    assert_true(match("192.168.1.128/25", 0, "192.168.1.200"));
    assert_false(match("192.168.1.128/25", 0, "192.168.1.100"));
    assert_true(match("0.0.0.0/0", 0, "8.8.8.8"));
    assert_true(match("1.2.3.4", 0, "1.2.3.4"));
    assert_false(match("1.2.3.4", 0, "1.2.3.5"));
    /* v6 */
    assert_true(match("fd00::/8", 1, "fd12:3456::1"));
    assert_false(match("fd00::/8", 1, "fe80::1"));
    assert_true(match("2001:db8::/33", 1, "2001:db8:7fff::1"));
    assert_false(match("2001:db8::/33", 1, "2001:db8:8000::1"));
    assert_true(match("::1", 1, "::1"));
    assert_false(match("::1", 1, "::2"));
    /* v4-mapped v6 clients match v4 CIDRs (dual-stack sockets) */
    assert_true(match("10.0.0.0/8", 1, "::ffff:10.1.2.3"));
    assert_false(match("10.0.0.0/8", 1, "::ffff:11.1.2.3"));
    assert_true(match("127.0.0.1", 1, "::ffff:127.0.0.1"));
    /* a v4 CIDR does not match a real v6 address that merely ends alike */
    assert_false(match("10.0.0.0/8", 1, "::10.1.2.3"));
    assert_false(match("10.0.0.0/8", 1, "fd00::a01:203"));
    /* a mapped v6 CIDR matches plain v4 clients too */
    assert_true(match("::ffff:10.0.0.0/104", 0, "10.9.9.9"));
    /* a v4-sized v6 CIDR does not match v4 clients */
    assert_false(match("fd00::/8", 0, "10.0.0.1"));
    /* unknown family never matches */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_int_equal(gw_cidr_parse("0.0.0.0/0", &c), 0);
    assert_false(gw_cidr_match(&c, (struct sockaddr *)&ss));
    assert_false(gw_cidr_match(&c, NULL));
}

/* The example shipped in examples/ must load (with its files present). */
static void test_example_loads(void **state)
{
    (void)state;
    /* __FILE__ is this file's absolute path: <top>/tests/unit/test_gw_config.c */
    char path[512];
    snprintf(path, sizeof(path), "%s", __FILE__);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(path, '/');
        assert_non_null(slash);
        *slash = '\0';
    }
    strncat(path, "/examples/gatehouse.yaml", sizeof(path) - strlen(path) - 1);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the example's files are relative to the config dir: make them exist */
    static const char *const ex[] = {"pki/server.crt",       "pki/server.key",
                                     "pki/client-ca.crt",    "pki/clients.crl",
                                     "pki/idp-ca.crt",       "pki/gw-idp.crt",
                                     "pki/gw-idp.key",       "policy.yaml",
                                     "pki/upstream-ca.crt",  "pki/gw-upstream.crt",
                                     "pki/gw-upstream.key",  "pki/admin-ca.crt"};
    char pki[512];
    snprintf(pki, sizeof(pki), "%s/example", tmpdir);
    assert_int_equal(mkdir(pki, 0700), 0);
    snprintf(pki, sizeof(pki), "%s/example/pki", tmpdir);
    assert_int_equal(mkdir(pki, 0700), 0);
    snprintf(pki, sizeof(pki), "%s/example", tmpdir);
    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
        write_file(pki, ex[i], "x");
    }
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct gw_config *c = gw_config_load_buf("gatehouse.yaml", pki, buf, n, &errs);
    if (c == NULL) {
        dump(&errs);
    }
    assert_non_null(c);
    assert_int_equal(c->n_routes, 3);
    assert_string_equal(route_id(c, "wiki.example.internal", "/"), "wiki");
    assert_string_equal(route_id(c, "admin.example.internal", "/users"), "admin");
    assert_string_equal(route_id(c, "deploy.example.internal", "/api/v1/deploy"), "deploy");
    assert_null(gw_config_route(c, "deploy.example.internal", 23, "/", 1));
    assert_int_equal(c->routes[1].upstream.tls, 1);
    assert_non_null(c->routes[1].upstream.cert_file);
    gw_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_trusted_everything),
        cmocka_unit_test(test_full_roundtrip),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_mtls_only),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_types),
        cmocka_unit_test(test_err_ranges),
        cmocka_unit_test(test_err_missing_required),
        cmocka_unit_test(test_err_https_upstream_needs_ca),
        cmocka_unit_test(test_err_duplicates),
        cmocka_unit_test(test_err_urls),
        cmocka_unit_test(test_err_cidr),
        cmocka_unit_test(test_err_path_prefix_and_host),
        cmocka_unit_test(test_err_require_binding),
        cmocka_unit_test(test_err_authz_needs_issuer_and_policy),
        cmocka_unit_test(test_err_admin),
        cmocka_unit_test(test_err_unreadable_file),
        cmocka_unit_test(test_err_yaml_syntax),
        cmocka_unit_test(test_err_limits),
        cmocka_unit_test(test_multiple_errors),
        cmocka_unit_test(test_single_quoted),
        cmocka_unit_test(test_path_resolution),
        cmocka_unit_test(test_route_match),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_example_loads),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
