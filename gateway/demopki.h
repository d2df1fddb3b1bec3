/*
 * demopki.h: the throw-away PKI of `gatehouse demo`, generated in C with
 * BoringSSL (no openssl command line needed on a fresh machine).
 *
 * Owns: the files under the demo's pki/ directory (all EC P-256, SHA-256):
 *   server-ca.{crt,key}       CA of the gateway's and the dev issuer's TLS certificate
 *   server.{crt,key}          TLS server certificate for localhost and 127.0.0.1
 *   client-ca.{crt,key}       CA of the people's (and the gateway's) client certificates
 *   alice.{crt,key}           CN=alice (the dev issuer gives her group engineering)
 *   bob.{crt,key}             CN=bob (group sales)
 *   gateway-client.{crt,key}  CN=gatehouse-gateway: the gateway's client certificate
 *                             toward the dev issuer (discovery and JWKS over mTLS)
 *   admin-ca.{crt,key}        a separate CA for admin certificates
 *   admin.{crt,key}           CN=admin, for the remote (mTLS) admin API
 *   issuer-signing.key        the dev issuer's ES256 token signing key
 * Keys are written with mode 0600 (certificates 0644), each file through a
 * temporary file and rename(2), so an interrupted run leaves no half file.
 * Must not: be used outside the demo; these CAs have no CRL and their keys
 * sit next to the certificates.
 *
 * Reuse: existing files are kept when they still parse, are not expired,
 * and (for leaves) are signed by the current CA; anything else is
 * regenerated, and a regenerated CA re-issues all of its leaves.
 * Thread rules: none (called once, at start-up, before any thread).
 */
#ifndef GW_DEMOPKI_H
#define GW_DEMOPKI_H

#include "gateway/base/err.h"

/* Create dir (mode 0700) if needed and make sure every file above exists
 * and is usable. Returns 0, or -1 with err saying which file failed.
 * *generated (may be NULL) gets the number of files written. */
int gw_demopki_ensure(const char *dir, int *generated, struct gh_err *err) GH_WUR;

#endif
