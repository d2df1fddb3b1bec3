/*
 * gb_http.c: the request bytes and an incremental HTTP/1.1 response parser.
 *
 * The request is built once at start-up (one heap buffer shared read-only
 * by every worker), so sending costs no allocation and no formatting. The
 * parser works on a connection's input buffer in place: it consumes the
 * head once a blank line is seen, then counts body bytes without copying
 * them (Content-Length, chunked, or until close), so a response of any size
 * goes through a fixed 16 KiB buffer. It is deliberately strict (RFC 9112):
 * a gateway under test that emits an ambiguous or malformed frame should
 * show up as bad_response, not be papered over by a lenient client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gb.h"

/* --- request ------------------------------------------------------------- */

static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
        return 1;
    }
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

size_t gb_header_check(const char *line)
{
    size_t n = 0;
    while (is_tchar((unsigned char)line[n])) {
        n++;
    }
    if (n == 0 || line[n] != ':') {
        return 0;
    }
    for (const char *p = line + n + 1; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return 0; /* CR/LF would let a header inject another header */
        }
    }
    if (strlen(line) > GB_HEADER_LINE_MAX) {
        return 0;
    }
    return n;
}

static int header_is(const char *line, size_t namelen, const char *name)
{
    return strlen(name) == namelen && strncasecmp(line, name, namelen) == 0;
}

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

static GB_WUR int sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
        return -1;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static GB_WUR int sb_str(struct sbuf *b, const char *s)
{
    return sb_add(b, s, strlen(s));
}

int gb_request_build(const struct gb_opts *o, char **out, size_t *out_len, char *msg, size_t msglen)
{
    int ret = -1;
    int user_host = 0;
    int user_conn = 0;
    int user_agent = 0;
    const char *lines[GB_MAX_HEADERS + 1];
    int nlines = 0;
    struct sbuf b = {0};
    char num[32];

    for (int i = 0; i < o->nheaders; i++) {
        lines[nlines++] = o->headers[i];
    }
    if (o->header_file_line != NULL) {
        lines[nlines++] = o->header_file_line;
    }
    size_t cap = strlen(o->method) + strlen(o->path) + strlen(o->host_header) + 256 + o->body_bytes;
    for (int i = 0; i < nlines; i++) {
        size_t nl = gb_header_check(lines[i]);
        if (nl == 0) {
            snprintf(msg, msglen, "bad header line (want \"Name: value\", no control chars)");
            goto out;
        }
        if (header_is(lines[i], nl, "content-length") ||
            header_is(lines[i], nl, "transfer-encoding")) {
            snprintf(msg, msglen, "set the body with --body-bytes, not a %.*s header", (int)nl,
                     lines[i]);
            goto out;
        }
        user_host |= header_is(lines[i], nl, "host");
        user_conn |= header_is(lines[i], nl, "connection");
        user_agent |= header_is(lines[i], nl, "user-agent");
        cap += strlen(lines[i]) + 2;
    }
    b.cap = cap;
    b.p = malloc(cap);
    if (b.p == NULL) {
        snprintf(msg, msglen, "out of memory for the request (%zu bytes)", cap);
        goto out;
    }
    int bad = sb_str(&b, o->method) || sb_str(&b, " ") || sb_str(&b, o->path) ||
              sb_str(&b, " HTTP/1.1\r\n");
    if (!user_host) {
        bad = bad || sb_str(&b, "Host: ") || sb_str(&b, o->host_header) || sb_str(&b, "\r\n");
    }
    if (!user_agent) {
        bad = bad || sb_str(&b, "User-Agent: gatehouse-bench/" GB_VERSION "\r\n");
    }
    for (int i = 0; i < nlines; i++) {
        bad = bad || sb_str(&b, lines[i]) || sb_str(&b, "\r\n");
    }
    /* One request per connection in these modes: say so, so the server can
     * close first and the client does not collect TIME_WAIT sockets. */
    if (!user_conn && (o->mode == GB_MODE_NEWCONN || o->mode == GB_MODE_RESUME)) {
        bad = bad || sb_str(&b, "Connection: close\r\n");
    }
    if (o->has_body) {
        snprintf(num, sizeof(num), "%zu", o->body_bytes);
        bad = bad || sb_str(&b, "Content-Length: ") || sb_str(&b, num) || sb_str(&b, "\r\n");
    }
    bad = bad || sb_str(&b, "\r\n");
    if (bad || o->body_bytes > b.cap - b.len) {
        snprintf(msg, msglen, "request does not fit its buffer");
        goto out;
    }
    memset(b.p + b.len, 'x', o->body_bytes);
    b.len += o->body_bytes;
    *out = b.p;
    *out_len = b.len;
    b.p = NULL;
    ret = 0;
out:
    free(b.p);
    return ret;
}

/* --- response ------------------------------------------------------------ */

void gb_resp_reset(struct gb_resp *r, int no_body)
{
    memset(r, 0, sizeof(*r));
    r->state = GB_R_HEAD;
    r->no_body = no_body;
}

int gb_resp_eof(const struct gb_resp *r)
{
    return r->state == GB_R_BODY_EOF || r->state == GB_R_DONE;
}

static int bad(struct gb_resp *r, const char *why)
{
    r->why = why;
    return GB_FEED_BAD;
}

/* Case-insensitive search for token tok in a comma-separated list. */
static int list_has(const char *v, size_t n, const char *tok, int last_only)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    int found = 0;
    while (i <= n) {
        size_t s = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        size_t e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t')) {
            s++;
        }
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
            e--;
        }
        int match = (e - s == tl && strncasecmp(v + s, tok, tl) == 0);
        if (last_only) {
            found = match;
        } else if (match) {
            return 1;
        }
        i++;
    }
    return found;
}

/* Parses the head in h[0, n) (ending with CRLF CRLF). */
static GB_WUR int parse_head(struct gb_resp *r, const char *h, size_t n)
{
    int have_cl = 0;
    int chunked = 0;
    int have_te = 0;
    int keep_alive = 0;
    uint64_t cl = 0;

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] */
    if (n < 14 || memcmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') || h[8] != ' ') {
        return bad(r, "malformed status line");
    }
    int minor = h[7] - '0';
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9') {
            return bad(r, "malformed status code");
        }
        st = st * 10 + (h[i] - '0');
    }
    if (st < 100 || st > 599 || (h[12] != ' ' && h[12] != '\r')) {
        return bad(r, "malformed status code");
    }
    r->status = st;
    const char *p = memchr(h, '\n', n);
    if (p == NULL || p[-1] != '\r') {
        return bad(r, "status line not ended by CRLF");
    }
    for (const char *q = h + 13; q < p - 1; q++) {
        if ((unsigned char)*q < 0x20 && *q != '\t') {
            return bad(r, "control character in reason phrase");
        }
    }
    p++;
    const char *end = h + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || eol == p || eol[-1] != '\r') {
            return bad(r, "header line not ended by CRLF");
        }
        size_t len = (size_t)(eol - 1 - p);
        if (len == 0) {
            break; /* blank line: end of head */
        }
        if (*p == ' ' || *p == '\t') {
            return bad(r, "obsolete header line folding"); /* RFC 9112 5.2 */
        }
        size_t nl = 0;
        while (nl < len && is_tchar((unsigned char)p[nl])) {
            nl++;
        }
        if (nl == 0 || nl == len || p[nl] != ':') {
            return bad(r, "malformed header field name");
        }
        const char *v = p + nl + 1;
        const char *ve = p + len;
        while (v < ve && (*v == ' ' || *v == '\t')) {
            v++;
        }
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        for (const char *q = v; q < ve; q++) {
            unsigned char ch = (unsigned char)*q;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                return bad(r, "control character in header value");
            }
        }
        size_t vl = (size_t)(ve - v);
        if (nl == 14 && strncasecmp(p, "content-length", 14) == 0) {
            uint64_t x = 0;
            if (vl == 0 || vl > 18) {
                return bad(r, "bad Content-Length");
            }
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    return bad(r, "bad Content-Length");
                }
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_cl && x != cl) {
                return bad(r, "conflicting Content-Length headers"); /* RFC 9112 6.3 */
            }
            have_cl = 1;
            cl = x;
        } else if (nl == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            have_te = 1;
            chunked = list_has(v, vl, "chunked", 1);
        } else if (nl == 10 && strncasecmp(p, "connection", 10) == 0) {
            if (list_has(v, vl, "close", 0)) {
                r->close = 1;
            }
            if (list_has(v, vl, "keep-alive", 0)) {
                keep_alive = 1;
            }
        }
        p = eol + 1;
    }
    if (have_te && have_cl) {
        return bad(r, "both Transfer-Encoding and Content-Length"); /* smuggling shape */
    }
    if (minor == 0 && !keep_alive) {
        r->close = 1;
    }
    if (st < 200) {
        if (st == 101) {
            return bad(r, "unexpected 101 Switching Protocols");
        }
        return GB_FEED_MORE; /* interim response; the caller keeps reading */
    }
    if (r->no_body || st == 204 || st == 304) {
        r->state = GB_R_DONE;
    } else if (chunked) {
        r->state = GB_R_CHUNK_SIZE;
    } else if (have_te) {
        r->state = GB_R_BODY_EOF; /* RFC 9112 6.3 rule 4: read until close */
        r->close = 1;
    } else if (have_cl) {
        r->remaining = cl;
        r->state = cl == 0 ? GB_R_DONE : GB_R_BODY_LEN;
    } else {
        r->state = GB_R_BODY_EOF;
        r->close = 1;
    }
    return GB_FEED_DONE;
}

static GB_WUR int parse_chunk_size(struct gb_resp *r, const char *s, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;
    while (i < n) {
        char ch = s[i];
        int d;
        if (ch >= '0' && ch <= '9') {
            d = ch - '0';
        } else if (ch >= 'a' && ch <= 'f') {
            d = ch - 'a' + 10;
        } else if (ch >= 'A' && ch <= 'F') {
            d = ch - 'A' + 10;
        } else {
            break;
        }
        if (i >= 15) {
            return bad(r, "chunk size too large");
        }
        x = x * 16 + (uint64_t)d;
        i++;
    }
    if (i == 0) {
        return bad(r, "malformed chunk size");
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t')) {
        i++; /* BWS before a chunk extension */
    }
    if (i < n && s[i] != ';') {
        return bad(r, "malformed chunk size");
    }
    r->remaining = x;
    r->state = x == 0 ? GB_R_TRAILER : GB_R_CHUNK_DATA;
    return GB_FEED_MORE;
}

int gb_resp_feed(struct gb_resp *r, const char *buf, size_t len, size_t *used)
{
    size_t pos = 0;
    int rc = GB_FEED_MORE;

    for (;;) {
        size_t avail = len - pos;
        const char *p = buf + pos;
        switch (r->state) {
        case GB_R_HEAD: {
            size_t from = r->scan > 3 ? r->scan - 3 : 0;
            const char *e = NULL;
            if (avail > from) {
                e = memmem(p + from, avail - from, "\r\n\r\n", 4);
            }
            if (e == NULL) {
                if (avail >= GB_HEAD_MAX) {
                    rc = bad(r, "response head too large");
                    goto out;
                }
                r->scan = avail;
                rc = GB_FEED_MORE;
                goto out;
            }
            size_t hl = (size_t)(e - p) + 4;
            rc = parse_head(r, p, hl);
            if (rc == GB_FEED_BAD) {
                goto out;
            }
            pos += hl;
            r->scan = 0;
            if (rc == GB_FEED_MORE) {
                r->close = 0; /* 1xx: the final response decides */
            }
            break;
        }
        case GB_R_BODY_LEN: {
            size_t take = avail < r->remaining ? avail : (size_t)r->remaining;
            pos += take;
            r->remaining -= take;
            r->body_bytes += take;
            if (r->remaining == 0) {
                r->state = GB_R_DONE;
            } else {
                rc = GB_FEED_MORE;
                goto out;
            }
            break;
        }
        case GB_R_CHUNK_SIZE:
        case GB_R_TRAILER: {
            const char *e = memchr(p, '\n', avail);
            size_t limit = r->state == GB_R_TRAILER ? GB_TRAILER_MAX : GB_CHUNK_LINE_MAX;
            if (e == NULL) {
                if (avail > limit) {
                    rc = bad(r, "chunk or trailer line too long");
                    goto out;
                }
                rc = GB_FEED_MORE;
                goto out;
            }
            if (e == p || e[-1] != '\r') {
                rc = bad(r, "chunk line not ended by CRLF");
                goto out;
            }
            size_t ll = (size_t)(e - 1 - p);
            pos += ll + 2;
            if (r->state == GB_R_CHUNK_SIZE) {
                if (parse_chunk_size(r, p, ll) == GB_FEED_BAD) {
                    rc = GB_FEED_BAD;
                    goto out;
                }
            } else if (ll == 0) {
                r->state = GB_R_DONE;
            } else {
                r->trailer_bytes += ll + 2;
                if (r->trailer_bytes > GB_TRAILER_MAX) {
                    rc = bad(r, "trailers too large");
                    goto out;
                }
            }
            break;
        }
        case GB_R_CHUNK_DATA: {
            size_t take = avail < r->remaining ? avail : (size_t)r->remaining;
            pos += take;
            r->remaining -= take;
            r->body_bytes += take;
            if (r->remaining == 0) {
                r->state = GB_R_CHUNK_CRLF;
            } else {
                rc = GB_FEED_MORE;
                goto out;
            }
            break;
        }
        case GB_R_CHUNK_CRLF:
            if (avail < 2) {
                if (avail == 1 && p[0] != '\r') {
                    rc = bad(r, "chunk data not followed by CRLF");
                    goto out;
                }
                rc = GB_FEED_MORE;
                goto out;
            }
            if (p[0] != '\r' || p[1] != '\n') {
                rc = bad(r, "chunk data not followed by CRLF");
                goto out;
            }
            pos += 2;
            r->state = GB_R_CHUNK_SIZE;
            break;
        case GB_R_BODY_EOF:
            pos += avail;
            r->body_bytes += avail;
            rc = GB_FEED_MORE;
            goto out;
        case GB_R_DONE:
            rc = GB_FEED_DONE;
            goto out;
        }
    }
out:
    *used = pos;
    return rc;
}
