/*
 * reason.h: the fixed enum of decision reason codes.
 *
 * Owns: the one list of reasons every module reports and the decision log
 * stores (docs/DECISION-LOG.md documents each; tests/integration/t_docs_check.sh keeps the
 * two in step). Must not: change a code's name once released -- auditors'
 * queries depend on them. Add new codes at the end of their group.
 *
 * Thread rules: constant data, safe everywhere.
 */
#ifndef GH_REASON_H
#define GH_REASON_H

/* X(enum, "name", default HTTP status (0 = connection refused, no response)) */
#define GH_REASONS(X)                                                      \
    X(GH_R_ALLOW, "allow", 200)                                            \
    /* TLS handshake */                                                    \
    X(GH_R_TLS_NO_CERT, "tls_no_cert", 0)                                  \
    X(GH_R_TLS_UNTRUSTED, "tls_untrusted_ca", 0)                           \
    X(GH_R_TLS_EXPIRED, "tls_cert_expired", 0)                             \
    X(GH_R_TLS_NOT_YET_VALID, "tls_cert_not_yet_valid", 0)                 \
    X(GH_R_TLS_CRL_REVOKED, "tls_cert_revoked", 0)                         \
    X(GH_R_TLS_HANDSHAKE, "tls_handshake_failed", 0)                       \
    X(GH_R_TLS_TIMEOUT, "tls_handshake_timeout", 0)                        \
    /* HTTP framing */                                                     \
    X(GH_R_HTTP_BAD_REQUEST, "http_bad_request", 400)                      \
    X(GH_R_HTTP_SMUGGLING, "http_smuggling", 400)                          \
    X(GH_R_HTTP_HEADER_TOO_LARGE, "http_header_too_large", 431)            \
    X(GH_R_HTTP_TOO_MANY_HEADERS, "http_too_many_headers", 431)            \
    X(GH_R_HTTP_URI_TOO_LONG, "http_uri_too_long", 414)                    \
    X(GH_R_HTTP_BODY_TOO_LARGE, "http_body_too_large", 413)                \
    X(GH_R_HTTP_TIMEOUT, "http_request_timeout", 408)                      \
    X(GH_R_HTTP_CLIENT_ABORT, "http_client_abort", 0)                      \
    /* routing */                                                          \
    X(GH_R_ROUTE_NOT_FOUND, "route_not_found", 404)                        \
    /* token (RFC 6750, RFC 7519, RFC 9068, RFC 8725) */                   \
    X(GH_R_TOKEN_MISSING, "token_missing", 401)                            \
    X(GH_R_TOKEN_MULTIPLE_AUTH, "token_multiple_authorization", 400)       \
    X(GH_R_TOKEN_IN_QUERY, "token_in_query_or_body", 400)                  \
    X(GH_R_TOKEN_TOO_LARGE, "token_too_large", 401)                        \
    X(GH_R_TOKEN_MALFORMED, "token_malformed", 401)                        \
    X(GH_R_TOKEN_BAD_ALG, "token_bad_alg", 401)                            \
    X(GH_R_TOKEN_FORBIDDEN_HEADER, "token_forbidden_header", 401)          \
    X(GH_R_TOKEN_UNKNOWN_KID, "token_unknown_kid", 401)                    \
    X(GH_R_TOKEN_BAD_SIGNATURE, "token_bad_signature", 401)                \
    X(GH_R_TOKEN_EXPIRED, "token_expired", 401)                            \
    X(GH_R_TOKEN_NOT_YET_VALID, "token_not_yet_valid", 401)                \
    X(GH_R_TOKEN_IAT_FUTURE, "token_iat_in_future", 401)                   \
    X(GH_R_TOKEN_BAD_ISSUER, "token_bad_issuer", 401)                      \
    X(GH_R_TOKEN_BAD_AUDIENCE, "token_bad_audience", 401)                  \
    X(GH_R_TOKEN_BAD_TYP, "token_bad_typ", 401)                            \
    X(GH_R_TOKEN_BAD_CLAIMS, "token_bad_claims", 401)                      \
    X(GH_R_TOKEN_NO_KEYS, "token_no_issuer_keys", 401)                     \
    /* RFC 8705 certificate binding */                                     \
    X(GH_R_BINDING_MISSING, "binding_missing", 401)                        \
    X(GH_R_BINDING_MALFORMED, "binding_malformed", 401)                    \
    X(GH_R_BINDING_MISMATCH, "binding_mismatch", 401)                      \
    /* revocation */                                                       \
    X(GH_R_SESSION_REVOKED, "session_revoked", 401)                        \
    X(GH_R_SUBJECT_LOCKED, "subject_locked", 401)                          \
    X(GH_R_CERT_BLOCKED, "cert_blocked", 403)                              \
    X(GH_R_TOKEN_REVOKED, "token_revoked", 401)                            \
    /* policy */                                                           \
    X(GH_R_POLICY_DENY, "policy_deny", 403)                                \
    X(GH_R_POLICY_NO_MATCH, "policy_no_match", 403)                        \
    /* upstream */                                                         \
    X(GH_R_UPSTREAM_CONNECT, "upstream_connect_failed", 502)               \
    X(GH_R_UPSTREAM_TIMEOUT, "upstream_timeout", 504)                      \
    X(GH_R_UPSTREAM_ERROR, "upstream_bad_response", 502)                   \
    X(GH_R_UPSTREAM_TLS, "upstream_tls_failed", 502)                       \
    /* gateway state */                                                    \
    X(GH_R_OVERLOADED, "overloaded", 503)                                  \
    X(GH_R_LOG_UNAVAILABLE, "decision_log_unavailable", 503)               \
    X(GH_R_SHUTDOWN, "shutting_down", 503)                                 \
    X(GH_R_INTERNAL, "internal_error", 500)                                \
    /* admin plane */                                                      \
    X(GH_R_ADMIN_OK, "admin_ok", 200)                                      \
    X(GH_R_ADMIN_DENIED, "admin_denied", 403)                              \
    X(GH_R_ADMIN_BAD_REQUEST, "admin_bad_request", 400)                    \
    X(GH_R_LOGOUT_OK, "backchannel_logout", 200)                           \
    X(GH_R_LOGOUT_INVALID, "backchannel_logout_invalid", 400)

enum gh_reason {
#define GH_R_ENUM(e, n, s) e,
    GH_REASONS(GH_R_ENUM)
#undef GH_R_ENUM
        GH_R__COUNT
};

enum gh_decision { GH_DENY = 0, GH_ALLOW = 1 };

/* Stable lowercase name of a reason ("token_expired"); "unknown" if out of range. */
const char *gh_reason_name(enum gh_reason r);
/* Default HTTP status for the reason (0 when the connection is refused). */
int gh_reason_status(enum gh_reason r);
/* Reverse lookup; returns -1 if the name is not a reason. */
int gh_reason_from_name(const char *name);

#endif
