/*
 * http.h: strict HTTP/1.1 head handling shared by the downstream and
 * upstream sides: the raw head scanner that refuses smuggling vectors
 * before http-parser sees the bytes, and header list helpers.
 *
 * Owns nothing; every function works on caller buffers. Pure: unit-tested
 * and fuzzed without sockets (tests/unit/test_gw_http.c, tests/fuzz/fuzz_http_head.c).
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/base/reason.h"

#define GW_HTTP_MAX_HEADERS 256

struct gw_hdr {
    uint32_t name_off, name_len, val_off, val_len;
};

/* Incremental raw scan of a request or response head in buf[0..len).
 * *scan is the resume offset (start at 0), *lines counts header lines.
 * Returns 1 when the head is complete (*head_len = bytes incl. CRLFCRLF),
 * 0 when more bytes are needed, or -1 with *reason set:
 *   GH_R_HTTP_SMUGGLING   bare CR, bare LF, NUL, obs-fold (RFC 9112 2.2, 5.2)
 *   GH_R_HTTP_URI_TOO_LONG  request line longer than max_line
 *   GH_R_HTTP_HEADER_TOO_LARGE  no end of head within max_head bytes
 *   GH_R_HTTP_TOO_MANY_HEADERS  more than max_headers lines */
int gw_http_scan_head(const char *buf, size_t len, size_t *scan, int *lines, size_t max_head,
                      size_t max_line, int max_headers, size_t *head_len, enum gh_reason *reason);

/* Parsed request head (pointers into the head buffer). */
struct gw_req_head {
    const char *method; size_t method_len;
    const char *target; size_t target_len;
    int http_minor;           /* 0 or 1 (HTTP/1.x only) */
    struct gw_hdr hdrs[GW_HTTP_MAX_HEADERS];
    int n_hdrs;
    /* derived framing facts */
    int host_idx;             /* -1 if none */
    int64_t content_length;   /* -1 if none */
    int chunked;
    int keep_alive;
    int expect_continue;
    int n_auth;               /* Authorization header count */
    int auth_idx[4];
};

/* Parse a complete, already-scanned request head with http-parser plus our
 * own framing rules. 0 on success; -1 with *reason (GH_R_HTTP_BAD_REQUEST,
 * GH_R_HTTP_SMUGGLING, GH_R_HTTP_TOO_MANY_HEADERS) and a log-safe detail. */
int gw_http_parse_request(const char *head, size_t len, struct gw_req_head *rh,
                          enum gh_reason *reason, const char **detail);

/* Case-insensitive header-name compare. */
int gw_http_name_is(const char *head, const struct gw_hdr *h, const char *name);
/* 1 if the (lowercase) header name is hop-by-hop or gateway-owned and must
 * not be forwarded as-is (Connection, Keep-Alive, TE, Transfer-Encoding,
 * Upgrade, Proxy-*, Trailer, Expect, X-Forwarded-*, X-Gatehouse-*, Forwarded). */
int gw_http_is_hop_or_owned(const char *name, size_t len);
/* Request headers never forwarded because an upstream would read them as
 * another client address, method or URL than the one the policy judged
 * (X-Real-IP, X-HTTP-Method-Override, X-Original-URL, ...), and every name
 * containing '_' (CGI-style frameworks read X_Gatehouse_User as
 * X-Gatehouse-User). */
int gw_http_is_client_override(const char *name, size_t len);
/* 1 if token `tok` (case-insensitive) appears in the comma list v. */
int gw_http_list_has(const char *v, size_t vl, const char *tok);

const char *gw_http_status_text(int status);

#endif
