/*
 * devissuer.h: the DEVELOPMENT-ONLY OAuth 2.0 issuer inside `gatehouse demo`.
 *
 * It answers, over HTTPS that requires a client certificate from the demo
 * client CA:
 *   GET  /.well-known/openid-configuration   OIDC discovery (RFC 8414 fields)
 *   GET  /jwks.json                          its public signing key (RFC 7517)
 *   POST /token  grant_type=client_credentials
 *        an RFC 9068 JWT access token (ES256, typ at+jwt) bound to the
 *        presented client certificate (RFC 8705 section 3: cnf.x5t#S256 =
 *        base64url SHA-256 of the certificate DER); sub = the certificate's
 *        CN, groups and email from a fixed table (alice: engineering, bob:
 *        sales), aud from the options, exp 10 minutes.
 *
 * Owns: its listener (a gateway/demosrv.h server), its signing key (loaded
 * from a PEM file), the fixed user table. Must not: ever be started by
 * `gatehouse serve` -- only gw_demo_main calls gw_devissuer_start, and no
 * configuration key enables it. It authenticates nobody beyond "holds a
 * certificate from the demo client CA" and is not an identity provider.
 *
 * Thread rules: start/stop from one thread; requests are served on the
 * server's connection threads (the issuer's state is immutable after start).
 */
#ifndef GW_DEVISSUER_H
#define GW_DEVISSUER_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/base/err.h"

struct gw_devissuer_opts {
    const char *host; /* numeric listen address, e.g. "127.0.0.1" */
    int port;
    const char *cert_file;        /* TLS server certificate (PEM) */
    const char *key_file;         /* its key */
    const char *client_ca_file;   /* client certificates must chain to this CA */
    const char *signing_key_file; /* EC P-256 private key (PEM) that signs tokens */
    const char *audience;         /* the `aud` of every token, e.g. "gatehouse" */
    int token_ttl_s;              /* token lifetime; 0 = 600 */
};

struct gw_devissuer;

/* Load the keys and start listening. The issuer URL (and `iss` claim) is
 * https://HOST:PORT. Returns NULL + err if a file is unusable or the port
 * is taken. The caller stops it with gw_devissuer_stop. */
struct gw_devissuer *gw_devissuer_start(const struct gw_devissuer_opts *o,
                                        struct gh_err *err) GH_WUR;
/* Stop listening, wait for in-flight requests, free. NULL is a no-op. */
void gw_devissuer_stop(struct gw_devissuer *d);

/* The issuer URL ("https://127.0.0.1:8444"); borrowed, lives as long as d. */
const char *gw_devissuer_url(const struct gw_devissuer *d);

/* Mint a token for subject sub bound to the certificate thumbprint
 * x5t_b64u (43 base64url chars) at time now_s, into out (NUL-terminated).
 * Used by the /token endpoint; exposed for tests. Returns 0, or -1 if the
 * subject is not in the user table, out is too small or signing failed. */
int gw_devissuer_mint(const struct gw_devissuer *d, const char *sub, const char *x5t_b64u,
                      int64_t now_s, char *out, size_t out_len) GH_WUR;

/* The token endpoint's decision, without keys or I/O (unit-testable and
 * fuzzed: tests/fuzz/fuzz_devissuer_form.c): parse the
 * application/x-www-form-urlencoded body (at most 16 parameters, names <= 64
 * and values <= 512 bytes after percent-decoding, no control characters, no
 * repeated parameter: RFC 6749 section 3.2) and decide whether the client
 * whose verified certificate has CN cert_cn gets a token: grant_type must be
 * client_credentials, client_id (optional) must equal cert_cn, and cert_cn
 * must be in the development user table. Returns 0 if so (the subject is
 * cert_cn); else -1 with *status (400, 401 or 500), *error (an RFC 6749
 * section 5.2 error code) and *desc (a fixed text), all static strings. */
int gw_devissuer_check_request(const char *body, size_t len, const char *cert_cn, int *status,
                               const char **error, const char **desc) GH_WUR;

#endif
