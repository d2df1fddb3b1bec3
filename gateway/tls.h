/*
 * tls.h: BoringSSL contexts for the downstream listener (mTLS required) and
 * for outbound connections (upstreams, the issuer).
 *
 * Owns: SSL_CTX construction from files, the reloadable server context
 * (swapped atomically on SIGHUP or when a file changes; live connections
 * keep the context they started with, because each SSL holds a reference),
 * session-ticket keys that rotate, mapping of X.509 verify errors to reason
 * codes, and extraction of the client certificate facts (thumbprint once per
 * connection). Must not: do socket I/O (transport.c does).
 *
 * Thread rules: gw_tls_server_new_ssl may be called from any worker; reload
 * and ticket rotation run on the control thread; a mutex guards the swap.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "authz/identity.h"
#include "gateway/base/err.h"
#include "gateway/config.h"

struct gw_tls_server;

/* Build the server context from the config's tls.* files. NULL + err on any
 * problem (unreadable file, key/cert mismatch, bad CA/CRL). */
struct gw_tls_server *gw_tls_server_new(const struct gw_config *cfg, struct gh_err *err) GH_WUR;
void gw_tls_server_free(struct gw_tls_server *s);

/* A new server-side SSL for an accepted connection, from the current context. */
SSL *gw_tls_server_new_ssl(struct gw_tls_server *s);

/* Rebuild from the files; on success swap, on failure keep the old context
 * and return -1 with err saying why. */
int gw_tls_server_reload(struct gw_tls_server *s, const struct gw_config *cfg,
                         struct gh_err *err) GH_WUR;
/* 1 if any of the files changed (mtime/size/inode) since the last load. */
int gw_tls_server_files_changed(struct gw_tls_server *s);
/* Rotate the session ticket encryption key (old key still decrypts for one period). */
void gw_tls_server_rotate_tickets(struct gw_tls_server *s);
/* Subject of the current server certificate (for logs/tests). */
void gw_tls_server_describe(struct gw_tls_server *s, char *buf, size_t len);

/* Map a failed handshake to a reason: uses the verify result when there is
 * one, else GH_R_TLS_NO_CERT / GH_R_TLS_HANDSHAKE. */
enum gh_reason gw_tls_refusal_reason(SSL *ssl);

/* A resumed TLS session skips chain verification in the handshake. Re-verify
 * the client chain against the CURRENT trust store and CRL so a certificate
 * revoked (or a CA removed) since the session was created is refused.
 * GH_R_ALLOW if fine or not resumed, else the refusal reason. */
enum gh_reason gw_tls_recheck(struct gw_tls_server *s, SSL *ssl);

/* Verified-chain cache counters (for stats/metrics). */
void gw_tls_chain_cache_stats(uint64_t *hits, uint64_t *misses);

/* Fill info from the verified peer certificate. -1 if there is none. */
int gw_tls_peer_info(SSL *ssl, struct az_cert_info *info);
void gw_tls_cert_info_cleanup(struct az_cert_info *info);

/* Client context for outbound TLS: trust only ca_file (pinning; NULL =
 * system bundle), optional client certificate. */
SSL_CTX *gw_tls_client_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                               struct gh_err *err) GH_WUR;
/* A client SSL for fd with SNI and hostname verification against name. */
SSL *gw_tls_client_new_ssl(SSL_CTX *ctx, int fd, const char *name);

#endif
