/*
 * resp.c: parse admin API responses byte by byte, with every length known
 * before it is trusted. The console and the CLI read from a gateway that
 * may be compromised or simply buggy; a response that would need a guess
 * (conflicting lengths, odd transfer codings, oversized head or body) is an
 * error, and an error costs one request, never the console. It is written
 * without http-parser so that gatehousectl links no gateway dependency and
 * the fuzz target exercises exactly this code.
 */
#include "tui/resp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/base/util.h"

#define MAX_TRAILERS (16 * 1024)

void tui_resp_init(struct tui_resp *r, size_t max_body, int stream)
{
    r->state = TUI_RS_HEAD;
    r->status = 0;
    r->minor = 1;
    r->conn_close = 0;
    r->chunked = 0;
    r->content_length = -1;
    r->content_type[0] = '\0';
    r->stream = stream;
    r->max_body = max_body == 0 ? TUI_RESP_MAX_BODY : max_body;
    r->body = NULL;
    r->body_len = 0;
    r->body_cap = 0;
    r->body_total = 0;
    r->head_len = 0;
    r->line_len = 0;
    r->left = 0;
    r->trailer_bytes = 0;
}

void tui_resp_cleanup(struct tui_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->body_cap = 0;
}

static int resp_fail(struct tui_resp *r, struct gh_err *err, const char *msg)
{
    r->state = TUI_RS_ERROR;
    return gh_err_set(err, GH_R_UPSTREAM_ERROR, "bad response from the gateway: %s", msg);
}

static int body_append(struct tui_resp *r, const char *p, size_t n, struct gh_err *err)
{
    if (n > r->max_body - r->body_len) {
        return resp_fail(r, err, r->stream ? "stream line too long" : "body larger than the limit");
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t nc = r->body_cap < 4096 ? 4096 : r->body_cap;
        while (nc < r->body_len + n + 1) {
            nc *= 2;
        }
        if (nc > r->max_body + 1) {
            nc = r->max_body + 1;
        }
        char *nb = realloc(r->body, nc);
        if (nb == NULL) {
            return resp_fail(r, err, "out of memory");
        }
        r->body = nb;
        r->body_cap = nc;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    r->body_total += n;
    return 0;
}

/* Ensure the body exists (an empty body is "" rather than NULL). */
static int body_touch(struct tui_resp *r, struct gh_err *err)
{
    if (r->body != NULL) {
        return 0;
    }
    r->body = malloc(1);
    if (r->body == NULL) {
        return resp_fail(r, err, "out of memory");
    }
    r->body[0] = '\0';
    r->body_cap = 1;
    return 0;
}

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Does the comma-separated header value contain token tok (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        size_t s = i;
        while (i < n && v[i] != ',') {
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

static int parse_status_line(struct tui_resp *r, const char *l, size_t n, struct gh_err *err)
{
    /* "HTTP/1.1 200 OK" -- the reason phrase may be empty. */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ') {
        return resp_fail(r, err, "bad status line");
    }
    if (l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9') {
        return resp_fail(r, err, "bad status code");
    }
    if (n > 12 && l[12] != ' ') {
        return resp_fail(r, err, "bad status line");
    }
    for (size_t i = 12; i < n; i++) {
        unsigned char c = (unsigned char)l[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return resp_fail(r, err, "control byte in the status line");
        }
    }
    r->minor = l[7] - '0';
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    return 0;
}

static int parse_header(struct tui_resp *r, const char *l, size_t n, struct gh_err *err)
{
    size_t i = 0;
    while (i < n && l[i] != ':') {
        if (!is_tchar((unsigned char)l[i])) {
            return resp_fail(r, err, "bad header name");
        }
        i++;
    }
    if (i == 0 || i == n) {
        return resp_fail(r, err, "bad header line");
    }
    size_t nl = i;
    i++;
    while (i < n && (l[i] == ' ' || l[i] == '\t')) {
        i++;
    }
    size_t vs = i;
    size_t ve = n;
    while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t')) {
        ve--;
    }
    for (size_t k = vs; k < ve; k++) {
        unsigned char c = (unsigned char)l[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return resp_fail(r, err, "control byte in a header value");
        }
    }
    const char *v = l + vs;
    size_t vl = ve - vs;
    if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
        if (vl == 0 || vl > 15) {
            return resp_fail(r, err, "bad Content-Length");
        }
        int64_t cl = 0;
        for (size_t k = 0; k < vl; k++) {
            if (v[k] < '0' || v[k] > '9') {
                return resp_fail(r, err, "bad Content-Length");
            }
            cl = cl * 10 + (v[k] - '0');
        }
        if (r->content_length >= 0 && r->content_length != cl) {
            return resp_fail(r, err, "conflicting Content-Length headers");
        }
        r->content_length = cl;
    } else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
        if (r->chunked || vl != 7 || strncasecmp(v, "chunked", 7) != 0) {
            return resp_fail(r, err, "unsupported Transfer-Encoding");
        }
        r->chunked = 1;
    } else if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
        if (has_token(v, vl, "close")) {
            r->conn_close = 1;
        }
    } else if (nl == 12 && strncasecmp(l, "content-type", 12) == 0) {
        size_t c = vl < sizeof(r->content_type) - 1 ? vl : sizeof(r->content_type) - 1;
        memcpy(r->content_type, v, c);
        r->content_type[c] = '\0';
    }
    return 0;
}

/* The head is complete in r->head[0..head_len) (ending in CRLF CRLF). */
static int parse_head(struct tui_resp *r, struct gh_err *err)
{
    const char *p = r->head;
    const char *end = r->head + r->head_len - 2; /* before the final CRLF */
    int nhdr = 0;
    int first = 1;
    while (p < end) {
        const char *cr = memchr(p, '\r', (size_t)(end - p));
        if (cr == NULL || cr[1] != '\n') {
            return resp_fail(r, err, "bare CR or LF in the head");
        }
        size_t n = (size_t)(cr - p);
        if (memchr(p, '\n', n) != NULL || memchr(p, '\0', n) != NULL) {
            return resp_fail(r, err, "bare LF or NUL in the head");
        }
        if (first) {
            if (parse_status_line(r, p, n, err) != 0) {
                return -1;
            }
            first = 0;
        } else {
            if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
                return resp_fail(r, err, "obsolete header folding");
            }
            if (++nhdr > TUI_RESP_MAX_HEADERS) {
                return resp_fail(r, err, "too many headers");
            }
            if (parse_header(r, p, n, err) != 0) {
                return -1;
            }
        }
        p = cr + 2;
    }
    if (first) {
        return resp_fail(r, err, "empty head");
    }
    if (r->minor == 0) {
        r->conn_close = 1;
    }
    if (r->chunked && r->content_length >= 0) {
        /* RFC 9112 section 6.3: both present is a smuggling signal. */
        return resp_fail(r, err, "both Transfer-Encoding and Content-Length");
    }
    return 0;
}

static void start_body(struct tui_resp *r)
{
    if (r->status == 204 || r->status == 304) {
        r->state = TUI_RS_DONE;
    } else if (r->chunked) {
        r->state = TUI_RS_CHUNK_SIZE;
        r->line_len = 0;
    } else if (r->content_length >= 0) {
        r->left = (uint64_t)r->content_length;
        r->state = r->left == 0 ? TUI_RS_DONE : TUI_RS_BODY_LEN;
    } else {
        r->state = TUI_RS_BODY_CLOSE;
        r->conn_close = 1;
    }
}

/* Consume head bytes from data; returns bytes used or -1. */
static long feed_head(struct tui_resp *r, const char *data, size_t len, struct gh_err *err)
{
    size_t i = 0;
    while (i < len) {
        if (r->head_len >= sizeof(r->head)) {
            return resp_fail(r, err, "response head too large");
        }
        r->head[r->head_len++] = data[i++];
        size_t h = r->head_len;
        if (h >= 4 && memcmp(r->head + h - 4, "\r\n\r\n", 4) == 0) {
            if (parse_head(r, err) != 0) {
                return -1;
            }
            if (r->status >= 100 && r->status < 200) {
                if (r->status == 101) {
                    return resp_fail(r, err, "unexpected protocol switch");
                }
                /* Interim response (100 Continue): the real one follows. */
                int keep_stream = r->stream;
                size_t keep_max = r->max_body;
                tui_resp_init(r, keep_max, keep_stream);
                continue;
            }
            if (r->content_length >= 0 && !r->stream && (uint64_t)r->content_length > r->max_body) {
                return resp_fail(r, err, "body larger than the limit");
            }
            if (body_touch(r, err) != 0) {
                return -1;
            }
            start_body(r);
            return (long)i;
        }
    }
    return (long)i;
}

/* A complete chunk-size line is in r->line (without CRLF). */
static int chunk_size_line(struct tui_resp *r, struct gh_err *err)
{
    size_t i = 0;
    uint64_t sz = 0;
    if (r->line_len == 0) {
        return resp_fail(r, err, "empty chunk size");
    }
    while (i < r->line_len && gh_hexval(r->line[i]) >= 0) {
        if (i >= 8) {
            return resp_fail(r, err, "chunk size too large");
        }
        sz = sz * 16 + (uint64_t)gh_hexval(r->line[i]);
        i++;
    }
    if (i == 0) {
        return resp_fail(r, err, "bad chunk size");
    }
    /* Chunk extensions (";name=value") are allowed and ignored. */
    while (i < r->line_len && (r->line[i] == ' ' || r->line[i] == '\t')) {
        i++;
    }
    if (i < r->line_len && r->line[i] != ';') {
        return resp_fail(r, err, "bad chunk size");
    }
    for (size_t k = i; k < r->line_len; k++) {
        unsigned char c = (unsigned char)r->line[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return resp_fail(r, err, "control byte in a chunk extension");
        }
    }
    if (!r->stream && sz > r->max_body - r->body_len) {
        return resp_fail(r, err, "body larger than the limit");
    }
    r->line_len = 0;
    if (sz == 0) {
        r->state = TUI_RS_TRAILER;
        r->trailer_bytes = 0;
    } else {
        r->left = sz;
        r->state = TUI_RS_CHUNK_DATA;
    }
    return 0;
}

/* Read a CRLF-terminated line into r->line. Returns 1 when complete, 0 when
 * more bytes are needed, -1 on error. *i advances. */
static int read_line(struct tui_resp *r, const char *data, size_t len, size_t *i,
                     struct gh_err *err)
{
    while (*i < len) {
        char c = data[(*i)++];
        if (c == '\n') {
            if (r->line_len == 0 || r->line[r->line_len - 1] != '\r') {
                return resp_fail(r, err, "bare LF in chunked framing");
            }
            r->line_len--;
            return 1;
        }
        if (r->line_len > 0 && r->line[r->line_len - 1] == '\r') {
            return resp_fail(r, err, "bare CR in chunked framing");
        }
        if (r->line_len >= sizeof(r->line) - 1) {
            return resp_fail(r, err, "chunk line too long");
        }
        r->line[r->line_len++] = c;
    }
    return 0;
}

int tui_resp_feed(struct tui_resp *r, const char *data, size_t len, size_t *used,
                  struct gh_err *err)
{
    size_t i = 0;
    *used = 0;
    while (i < len && r->state != TUI_RS_DONE) {
        switch (r->state) {
        case TUI_RS_HEAD: {
            long n = feed_head(r, data + i, len - i, err);
            if (n < 0) {
                return -1;
            }
            i += (size_t)n;
            break;
        }
        case TUI_RS_BODY_LEN:
        case TUI_RS_CHUNK_DATA: {
            size_t n = len - i;
            if (n > r->left) {
                n = (size_t)r->left;
            }
            if (body_append(r, data + i, n, err) != 0) {
                return -1;
            }
            i += n;
            r->left -= n;
            if (r->left == 0) {
                if (r->state == TUI_RS_BODY_LEN) {
                    r->state = TUI_RS_DONE;
                } else {
                    r->state = TUI_RS_CHUNK_CRLF;
                    r->line_len = 0;
                }
            }
            break;
        }
        case TUI_RS_BODY_CLOSE:
            if (body_append(r, data + i, len - i, err) != 0) {
                return -1;
            }
            i = len;
            break;
        case TUI_RS_CHUNK_SIZE: {
            int rc = read_line(r, data, len, &i, err);
            if (rc < 0) {
                return -1;
            }
            if (rc == 1 && chunk_size_line(r, err) != 0) {
                return -1;
            }
            break;
        }
        case TUI_RS_CHUNK_CRLF: {
            int rc = read_line(r, data, len, &i, err);
            if (rc < 0) {
                return -1;
            }
            if (rc == 1) {
                if (r->line_len != 0) {
                    return resp_fail(r, err, "chunk data longer than its size");
                }
                r->state = TUI_RS_CHUNK_SIZE;
            }
            break;
        }
        case TUI_RS_TRAILER: {
            size_t before = i;
            int rc = read_line(r, data, len, &i, err);
            if (rc < 0) {
                return -1;
            }
            r->trailer_bytes += i - before;
            if (r->trailer_bytes > MAX_TRAILERS) {
                return resp_fail(r, err, "trailers too large");
            }
            if (rc == 1) {
                if (r->line_len == 0) {
                    r->state = TUI_RS_DONE;
                } else {
                    r->line_len = 0; /* a trailer field: ignored */
                }
            }
            break;
        }
        case TUI_RS_DONE:
            break;
        case TUI_RS_ERROR:
        default:
            return resp_fail(r, err, "parser already failed");
        }
    }
    *used = i;
    return 0;
}

int tui_resp_eof(struct tui_resp *r, struct gh_err *err)
{
    if (r->state == TUI_RS_BODY_CLOSE) {
        r->state = TUI_RS_DONE;
        return 0;
    }
    if (r->state == TUI_RS_DONE) {
        return 0;
    }
    if (r->state == TUI_RS_HEAD && r->head_len == 0) {
        r->state = TUI_RS_ERROR;
        return gh_err_set(err, GH_R_UPSTREAM_CONNECT, "the gateway closed the connection");
    }
    return resp_fail(r, err, "connection closed mid-response");
}

void tui_resp_consume(struct tui_resp *r, size_t n)
{
    if (r->body == NULL) {
        return;
    }
    if (n >= r->body_len) {
        r->body_len = 0;
    } else {
        memmove(r->body, r->body + n, r->body_len - n);
        r->body_len -= n;
    }
    r->body[r->body_len] = '\0';
}

long tui_resp_line(struct tui_resp *r, const char **line, size_t *adv)
{
    if (r->body == NULL || r->body_len == 0) {
        return -1;
    }
    char *nl = memchr(r->body, '\n', r->body_len);
    if (nl == NULL) {
        return -1;
    }
    size_t n = (size_t)(nl - r->body);
    *adv = n + 1;
    *nl = '\0';
    if (n > 0 && r->body[n - 1] == '\r') {
        r->body[--n] = '\0';
    }
    *line = r->body;
    return (long)n;
}
