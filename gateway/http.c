/*
 * http.c: the strict edge of HTTP/1.1. Request smuggling lives in the gaps
 * between how two parsers frame one message, so before http-parser sees a
 * head we refuse everything two parsers might read differently (RFC 9112
 * sections 2.2, 5.2, 6.1, 6.3): bare CR, bare LF, NUL, obs-fold, both
 * Content-Length and Transfer-Encoding, duplicate Content-Length, any
 * Transfer-Encoding whose final coding is not chunked, TE on HTTP/1.0, and
 * request targets that are not origin-form. What passes is unambiguous, so
 * the upstream reads exactly the message we read.
 */
#include "gateway/http.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "gateway/base/util.h"

int gw_http_scan_head(const char *buf, size_t len, size_t *scan, int *lines, size_t max_head,
                      size_t max_line, int max_headers, size_t *head_len, enum gh_reason *reason)
{
    size_t i = *scan;
    size_t lim = len < max_head ? len : max_head;
    for (; i < lim; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\0') {
            *reason = GH_R_HTTP_SMUGGLING;
            return -1;
        }
        if (ch == '\r') {
            if (i + 1 >= len) {
                break; /* need the next byte to judge */
            }
            if (buf[i + 1] != '\n') {
                *reason = GH_R_HTTP_SMUGGLING; /* bare CR */
                return -1;
            }
            continue;
        }
        if (ch == '\n') {
            if (i == 0 || buf[i - 1] != '\r') {
                *reason = GH_R_HTTP_SMUGGLING; /* bare LF */
                return -1;
            }
            if (*lines == 0 && i + 1 > max_line) {
                *reason = GH_R_HTTP_URI_TOO_LONG;
                return -1;
            }
            /* end of head: CRLF CRLF */
            if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
                *head_len = i + 1;
                *scan = i + 1;
                return 1;
            }
            (*lines)++;
            if (*lines > max_headers + 1) {
                *reason = GH_R_HTTP_TOO_MANY_HEADERS;
                return -1;
            }
            continue;
        }
        /* obs-fold: a header line may not start with SP or HTAB. Judged on
         * the byte itself, looking back: the LF may have ended the previous
         * read (a fold split across TLS records must not slip through). */
        if ((ch == ' ' || ch == '\t') && i > 0 && buf[i - 1] == '\n') {
            *reason = GH_R_HTTP_SMUGGLING;
            return -1;
        }
    }
    *scan = i;
    if (*lines == 0 && i > max_line) {
        *reason = GH_R_HTTP_URI_TOO_LONG;
        return -1;
    }
    if (len >= max_head) {
        *reason = GH_R_HTTP_HEADER_TOO_LARGE;
        return -1;
    }
    return 0;
}

struct pctx {
    const char *base;
    struct gw_req_head *rh;
    int too_many;
    int in_value;
};

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct pctx *x = p->data;
    if (x->rh->target == NULL) {
        x->rh->target = at;
    }
    x->rh->target_len = (size_t)(at + len - x->rh->target);
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t len)
{
    struct pctx *x = p->data;
    struct gw_req_head *rh = x->rh;
    if (!x->in_value && rh->n_hdrs > 0 &&
        x->base + rh->hdrs[rh->n_hdrs - 1].name_off + rh->hdrs[rh->n_hdrs - 1].name_len == at) {
        rh->hdrs[rh->n_hdrs - 1].name_len += (uint32_t)len; /* continuation */
        return 0;
    }
    if (rh->n_hdrs >= GW_HTTP_MAX_HEADERS) {
        x->too_many = 1;
        return -1;
    }
    struct gw_hdr *h = &rh->hdrs[rh->n_hdrs++];
    h->name_off = (uint32_t)(at - x->base);
    h->name_len = (uint32_t)len;
    h->val_off = h->name_off + h->name_len;
    h->val_len = 0;
    x->in_value = 0;
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t len)
{
    struct pctx *x = p->data;
    struct gw_hdr *h = &x->rh->hdrs[x->rh->n_hdrs - 1];
    if (!x->in_value) {
        h->val_off = (uint32_t)(at - x->base);
        h->val_len = (uint32_t)len;
        x->in_value = 1;
    } else {
        h->val_len = (uint32_t)(at + len - (x->base + h->val_off));
    }
    return 0;
}

static int on_hfield_wrap(http_parser *p, const char *at, size_t len)
{
    struct pctx *x = p->data;
    if (x->in_value) {
        x->in_value = 0;
        if (x->rh->n_hdrs >= GW_HTTP_MAX_HEADERS) {
            x->too_many = 1;
            return -1;
        }
        struct gw_hdr *h = &x->rh->hdrs[x->rh->n_hdrs++];
        h->name_off = (uint32_t)(at - x->base);
        h->name_len = (uint32_t)len;
        h->val_off = h->name_off + h->name_len;
        h->val_len = 0;
        return 0;
    }
    return on_hfield(p, at, len);
}

static int on_headers_complete(http_parser *p)
{
    /* Stop here: the body is framed and streamed by the caller. */
    return 0;
}

int gw_http_name_is(const char *head, const struct gw_hdr *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(head + h->name_off, name, n) == 0;
}

int gw_http_list_has(const char *v, size_t vl, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < vl) {
        while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        size_t s = i;
        while (i < vl && v[i] != ',') {
            i++;
        }
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Transfer-Encoding is acceptable only as a list whose final coding is
 * "chunked" (RFC 9112 6.1); anything else cannot be framed safely. */
static int te_final_chunked(const char *v, size_t vl)
{
    size_t e = vl;
    while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
        e--;
    }
    size_t s = e;
    while (s > 0 && v[s - 1] != ',') {
        s--;
    }
    while (s < e && (v[s] == ' ' || v[s] == '\t')) {
        s++;
    }
    if (e - s != 7 || strncasecmp(v + s, "chunked", 7) != 0) {
        return 0;
    }
    /* no empty list elements, and chunked only once */
    int chunked = 0;
    size_t i = 0;
    while (i < vl) {
        size_t a = i;
        while (i < vl && v[i] != ',') {
            i++;
        }
        size_t b = i;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) {
            a++;
        }
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) {
            b--;
        }
        if (a == b) {
            return 0;
        }
        if (b - a == 7 && strncasecmp(v + a, "chunked", 7) == 0) {
            chunked++;
        }
        i++;
    }
    return chunked == 1;
}

/* Host = (name | IPv4 | "[" IPv6 "]") [":" port], port 0..65535
 * (RFC 9110 7.2, RFC 3986 3.2.2; no userinfo, no percent-encoding). The
 * value is routed on and forwarded as X-Forwarded-Host, which applications
 * build links from: "app:@evil.example" or a 15 kB "port" must not pass. */
static int host_valid(const char *v, size_t n)
{
    size_t i = 0;
    if (n == 0 || n > 253 + 6) {
        return 0;
    }
    if (v[0] == '[') {
        for (i = 1; i < n && v[i] != ']'; i++) {
            if (!isxdigit((unsigned char)v[i]) && v[i] != ':' && v[i] != '.') {
                return 0;
            }
        }
        if (i == n || i == 1) {
            return 0;
        }
        i++;
    } else {
        for (; i < n && v[i] != ':'; i++) {
            if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '.' && v[i] != '_') {
                return 0;
            }
        }
        if (i == 0) {
            return 0;
        }
    }
    if (i == n) {
        return 1;
    }
    if (v[i] != ':' || n - i - 1 > 5) {
        return 0;
    }
    long port = 0;
    for (i++; i < n; i++) {
        if (!isdigit((unsigned char)v[i])) {
            return 0;
        }
        port = port * 10 + (v[i] - '0');
    }
    return port <= 65535;
}

int gw_http_parse_request(const char *head, size_t len, struct gw_req_head *rh,
                          enum gh_reason *reason, const char **detail)
{
    memset(rh, 0, sizeof(*rh));
    rh->host_idx = -1;
    rh->content_length = -1;
    struct pctx x = {.base = head, .rh = rh};
    http_parser p;
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = on_url;
    s.on_header_field = on_hfield_wrap;
    s.on_header_value = on_hvalue;
    s.on_headers_complete = on_headers_complete;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &x;
    size_t n = http_parser_execute(&p, &s, head, len);
    enum http_errno he = HTTP_PARSER_ERRNO(&p);
    *reason = GH_R_HTTP_BAD_REQUEST;
    if (x.too_many) {
        *reason = GH_R_HTTP_TOO_MANY_HEADERS;
        *detail = "too many headers";
        return -1;
    }
    if (he != HPE_OK || n != len) {
        if (he == HPE_UNEXPECTED_CONTENT_LENGTH || he == HPE_INVALID_TRANSFER_ENCODING ||
            he == HPE_INVALID_CONTENT_LENGTH) {
            *reason = GH_R_HTTP_SMUGGLING;
        }
        *detail = http_errno_name(he);
        return -1;
    }
    if (p.http_major != 1 || p.http_minor > 1) {
        *detail = "unsupported HTTP version";
        return -1;
    }
    rh->http_minor = p.http_minor;
    rh->method = http_method_str((enum http_method)p.method);
    rh->method_len = strlen(rh->method);
    if (p.method == HTTP_CONNECT) {
        *detail = "CONNECT not supported";
        return -1;
    }
    if (rh->target == NULL || rh->target_len == 0 || rh->target[0] != '/') {
        *detail = "request-target must be origin-form";
        return -1;
    }
    /* Routing and policy match path prefixes and globs byte for byte, so a
     * path must have one spelling: no dot-segments, no encoded '.', '/',
     * '\\', '%' or ';', no encoded unreserved character, no backslash, no empty
     * segment and no ';' path parameter (RFC 3986 5.2.4 would let
     * "/wiki/../admin" reach a route the policy never saw; upstreams that
     * decode "%61", merge "//" or strip ";x" would see "/admin" where the
     * gateway matched something else). The same list as Spring Security's
     * StrictHttpFirewall. */
    const char *q = memchr(rh->target, '?', rh->target_len);
    size_t pl = q ? (size_t)(q - rh->target) : rh->target_len;
    for (size_t i = 0; i < pl; i++) {
        char ch = rh->target[i];
        if (ch == '\\' || ch == '#') {
            *detail = "backslash or fragment in path";
            return -1;
        }
        if (ch == ';') {
            *detail = "';' path parameter in path";
            return -1;
        }
        if (ch == '/' && i + 1 < pl && rh->target[i + 1] == '/') {
            *detail = "empty segment ('//') in path";
            return -1;
        }
        if (ch == '%' && i + 2 < pl) {
            char a = rh->target[i + 1];
            char b = (char)tolower((unsigned char)rh->target[i + 2]);
            if ((a == '2' && (b == 'e' || b == 'f' || b == '5')) || (a == '5' && b == 'c') ||
                (a == '3' && b == 'b') || (a == '0' && b == '0')) {
                *detail = "encoded dot, slash, backslash, percent, ';' or NUL in path";
                return -1;
            }
            /* "/%61dmin" is "/admin" to an upstream that decodes before
             * routing (RFC 3986 6.2.2.2), but not to a byte-wise prefix or
             * glob: an unreserved character must be sent as itself. */
            int hi = gh_hexval(rh->target[i + 1]), lo = gh_hexval(rh->target[i + 2]);
            if (hi >= 0 && lo >= 0 && gh_uri_unreserved(hi * 16 + lo)) {
                *detail = "percent-encoded unreserved character in path";
                return -1;
            }
        }
        if (ch == '/' && i + 1 < pl && rh->target[i + 1] == '.') {
            size_t j = i + 2;
            if (j < pl && rh->target[j] == '.') {
                j++;
            }
            if (j == pl || rh->target[j] == '/') {
                *detail = "dot-segment in path";
                return -1;
            }
        }
    }
    rh->keep_alive = http_should_keep_alive(&p);
    int n_cl = 0, n_te = 0;
    for (int i = 0; i < rh->n_hdrs; i++) {
        const struct gw_hdr *h = &rh->hdrs[i];
        const char *v = head + h->val_off;
        if (gw_http_name_is(head, h, "host")) {
            if (rh->host_idx >= 0) {
                *detail = "duplicate Host";
                return -1;
            }
            rh->host_idx = i;
        } else if (gw_http_name_is(head, h, "content-length")) {
            n_cl++;
            int64_t cl = 0;
            if (h->val_len == 0 || h->val_len > 18) {
                *reason = GH_R_HTTP_SMUGGLING;
                *detail = "bad Content-Length";
                return -1;
            }
            for (uint32_t k = 0; k < h->val_len; k++) {
                if (!isdigit((unsigned char)v[k])) {
                    *reason = GH_R_HTTP_SMUGGLING;
                    *detail = "bad Content-Length";
                    return -1;
                }
                cl = cl * 10 + (v[k] - '0');
            }
            if (rh->content_length >= 0 && rh->content_length != cl) {
                *reason = GH_R_HTTP_SMUGGLING;
                *detail = "differing Content-Length";
                return -1;
            }
            rh->content_length = cl;
        } else if (gw_http_name_is(head, h, "transfer-encoding")) {
            n_te++;
            if (!te_final_chunked(v, h->val_len)) {
                *reason = GH_R_HTTP_SMUGGLING;
                *detail = "Transfer-Encoding not ending in chunked";
                return -1;
            }
            rh->chunked = 1;
        } else if (gw_http_name_is(head, h, "expect")) {
            if (h->val_len == 12 && strncasecmp(v, "100-continue", 12) == 0) {
                rh->expect_continue = 1;
            } else {
                *detail = "unsupported Expect";
                return -1;
            }
        } else if (gw_http_name_is(head, h, "authorization")) {
            if (rh->n_auth < 4) {
                rh->auth_idx[rh->n_auth] = i;
            }
            rh->n_auth++;
        }
    }
    if (n_te > 0 && n_cl > 0) {
        *reason = GH_R_HTTP_SMUGGLING;
        *detail = "both Content-Length and Transfer-Encoding";
        return -1;
    }
    if (n_te > 1 || (n_te > 0 && rh->http_minor == 0)) {
        *reason = GH_R_HTTP_SMUGGLING;
        *detail = "Transfer-Encoding repeated or on HTTP/1.0";
        return -1;
    }
    if (rh->host_idx < 0 || rh->hdrs[rh->host_idx].val_len == 0) {
        *detail = "missing Host";
        return -1;
    }
    if (!host_valid(head + rh->hdrs[rh->host_idx].val_off, rh->hdrs[rh->host_idx].val_len)) {
        *detail = "Host is not a host name or IP literal with an optional port";
        return -1;
    }
    return 0;
}

int gw_http_is_client_override(const char *name, size_t len)
{
    /* Names that frameworks read as the client's address, the request's
     * method or its URL: the policy saw the real ones, the upstream must
     * not be told others. */
    static const char *const names[] = {
        "x-real-ip",          "true-client-ip",      "x-client-ip",       "x-forwarded-port",
        "x-forwarded-prefix", "x-forwarded-server",  "x-forwarded-ssl",   "x-original-url",
        "x-rewrite-url",      "x-http-method-override", "x-http-method",  "x-method-override",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0) {
            return 1;
        }
    }
    /* CGI, WSGI, PHP and Rails map '-' and '_' to the same variable, so
     * "X-Gatehouse_User" would reach the app as X-Gatehouse-User: names
     * with '_' are dropped (as nginx does by default). */
    return memchr(name, '_', len) != NULL;
}

int gw_http_is_hop_or_owned(const char *name, size_t len)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authorization", "proxy-authenticate", "expect", "forwarded",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "content-length",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0) {
            return 1;
        }
    }
    if (len >= 12 && strncasecmp(name, "x-gatehouse-", 12) == 0) {
        return 1;
    }
    return 0;
}

const char *gw_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 422: return "Unprocessable Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}
