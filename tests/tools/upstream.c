/*
 * upstream.c: gh-upstream, the plain HTTP/1.1 origin server that integration
 * tests and benchmarks put behind the gateway.
 *
 * Why it exists: tests must prove what the gateway actually forwarded (which
 * identity headers it added, which it stripped, that a denied request never
 * arrived at all), and benchmarks need an origin that is never the
 * bottleneck. So this server echoes requests as JSON, logs one line per
 * request to a file tests can grep, streams arbitrarily large bodies in both
 * directions with flat memory, and answers /fixed1k from one prebuilt buffer
 * with one send().
 *
 * Why it is built this way: one blocking thread per connection (small stack,
 * one fixed-size buffer each) keeps the code a straight line that is easy to
 * trust; /slow and 1 GiB streams then block only their own connection. It
 * links libc and pthreads only (never OpenSSL: DESIGN.md section 8), so it
 * carries its own small SHA-256.
 *
 * Limits (a test tool still faces garbage): request head <= 64 KiB (431),
 * <= 512 header fields (431), chunk-size and trailer lines <= 4 KiB, strict
 * request syntax (400, logged as a BAD line), at most 4096 connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)       /* request line + header fields + CRLF CRLF */
#define WORK_MAX (16 * 1024)       /* body window after the head */
#define CONN_BUF (HEAD_MAX + WORK_MAX)
#define MAX_HEADERS 512
#define LINE_MAX_BODY 4096         /* chunk-size line, trailer line */
#define MAX_TRAILERS 64
#define PIECE (64 * 1024)          /* /bytes write size */
#define MAX_CONNS 4096
#define JSON_MAX (1024 * 1024)
#define LOG_LINE_MAX (16 * 1024)
#define MAX_BYTES_N ((int64_t)1 << 50)
#define MAX_SLOW_MS 600000
#define FIXED_BODY 1024
#define THREAD_STACK (256 * 1024)

/* ------------------------------------------------------------------------ */
/* SHA-256 (FIPS 180-4), small and portable.                                */

struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t n;
};

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static uint32_t ror32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_init(struct sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof(iv));
    s->bytes = 0;
    s->n = 0;
}

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
    uint32_t w[64];
    uint32_t a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0];
    b = s->h[1];
    c = s->h[2];
    d = s->h[3];
    e = s->h[4];
    f = s->h[5];
    g = s->h[6];
    h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
    s->h[5] += f;
    s->h[6] += g;
    s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bytes += len;
    if (s->n > 0) {
        size_t take = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->block + s->n, p, take);
        s->n += take;
        p += take;
        len -= take;
        if (s->n < 64) {
            return;
        }
        sha256_block(s, s->block);
        s->n = 0;
    }
    while (len >= 64) {
        sha256_block(s, p);
        p += 64;
        len -= 64;
    }
    memcpy(s->block, p, len);
    s->n = len;
}

/* Finish and write 64 lowercase hex digits + NUL into out. */
static void sha256_hex(struct sha256 *s, char out[65])
{
    static const char hx[] = "0123456789abcdef";
    uint64_t bits = s->bytes * 8;
    uint8_t pad[72];
    size_t padlen = (s->n < 56) ? 56 - s->n : 120 - s->n;
    memset(pad, 0, sizeof(pad));
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++) {
        pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    uint64_t keep = s->bytes;
    sha256_update(s, pad, padlen + 8);
    s->bytes = keep;
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(s->h[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = hx[byte >> 4];
            out[8 * i + 2 * j + 1] = hx[byte & 15];
        }
    }
    out[64] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Process-wide state, set up in main() before the first thread starts.     */

static const char *g_name = "upstream";
static int g_log_fd = -1;
static int g_idle_ms = 300000;
static atomic_int g_conns;
static atomic_ulong g_conn_ids;
static char g_pattern[PIECE];
static char g_fixed_ka[512 + FIXED_BODY];
static size_t g_fixed_ka_len;
static char g_fixed_close[512 + FIXED_BODY];
static size_t g_fixed_close_len;

/* The /bytes pattern: byte i of the stream is PATTERN_ALPHABET[i % 64]. */
static const char PATTERN_ALPHABET[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

struct header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct req {
    const char *method;
    size_t method_len;
    const char *target; /* raw request-target as received */
    size_t target_len;
    size_t path_len;     /* target up to '?' */
    const char *query;   /* after '?', NULL if none */
    size_t query_len;
    int http10;
    int n_hdrs;
    int64_t content_length; /* -1: none */
    int chunked;
    int want_close;
    int expect_continue;
    size_t head_len;
    struct header hdrs[MAX_HEADERS];
};

struct conn {
    int fd;
    unsigned long id;
    unsigned long nreq;
    char peer[INET6_ADDRSTRLEN + 16];
    size_t start; /* first byte of the body window (== head length during a request) */
    size_t off;   /* unread bytes are buf[off, len) */
    size_t len;
    struct req req;
    char buf[CONN_BUF];
};

/* Growable output buffer with a hard maximum. */
struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    int failed;
};

/* ------------------------------------------------------------------------ */
/* Small helpers.                                                            */

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        if (cap > JSON_MAX) {
            b->failed = 1;
            return;
        }
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

static void sbuf_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbuf_fmt(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->failed = 1;
        return;
    }
    sbuf_add(b, tmp, (size_t)n);
}

/* JSON string; header bytes are opaque, so bytes >= 0x80 become \u00XX. */
static void sbuf_json(struct sbuf *b, const char *s, size_t n, int lower)
{
    static const char hx[] = "0123456789abcdef";
    char out[6];
    size_t run = 0;
    sbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int plain = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' &&
                    !(lower && ch >= 'A' && ch <= 'Z');
        if (plain) {
            run++;
            continue;
        }
        sbuf_add(b, s + i - run, run);
        run = 0;
        if (lower && ch >= 'A' && ch <= 'Z') {
            out[0] = (char)(ch + 32);
            sbuf_add(b, out, 1);
        } else if (ch == '"' || ch == '\\') {
            out[0] = '\\';
            out[1] = (char)ch;
            sbuf_add(b, out, 2);
        } else {
            memcpy(out, "\\u00", 4);
            out[4] = hx[ch >> 4];
            out[5] = hx[ch & 15];
            sbuf_add(b, out, 6);
        }
    }
    sbuf_add(b, s + n - run, run);
    sbuf_add(b, "\"", 1);
}

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int writev_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
        return 1;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int name_is(const struct header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static int span_eq(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* Strict decimal: digits only, value <= max. Returns 0 or -1. */
static int parse_dec(const char *s, size_t n, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 19) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
        if (v > max) {
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* Value of query parameter key ("a=1&b=2"), NULL if absent. */
static const char *query_param(const struct req *r, const char *key, size_t *vlen)
{
    size_t klen = strlen(key);
    const char *p = r->query;
    const char *end = r->query ? r->query + r->query_len : NULL;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            *vlen = (size_t)(pe - p - (ptrdiff_t)klen - 1);
            return p + klen + 1;
        }
        p = amp ? amp + 1 : end;
    }
    return NULL;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

/* ------------------------------------------------------------------------ */
/* Request log: one line per request, one write(2) with O_APPEND.           */

/* Content stops at LOG_LINE_MAX - 128, leaving room for the marker and the tail. */
static void log_add(char *line, size_t *n, const char *s, size_t len)
{
    const size_t cap = LOG_LINE_MAX - 128;
    if (*n > cap) {
        return;
    }
    size_t room = cap - *n;
    if (len > room) {
        memcpy(line + *n, s, room);
        *n += room;
        memcpy(line + *n, "...(truncated)", 14);
        *n += 14;
        return;
    }
    memcpy(line + *n, s, len);
    *n += len;
}

/* Values are escaped so one request stays one line with no spaces inside a field. */
static void log_add_escaped(char *line, size_t *n, const char *s, size_t len)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch > 0x20 && ch < 0x7f && ch != '%') {
            log_add(line, n, (const char *)&ch, 1);
        } else {
            char esc[3] = {'%', hx[ch >> 4], hx[ch & 15]};
            log_add(line, n, esc, 3);
        }
    }
}

static void log_request(const struct conn *c)
{
    if (g_log_fd < 0) {
        return;
    }
    const struct req *r = &c->req;
    char line[LOG_LINE_MAX];
    char tail[64];
    size_t n = 0;
    const struct header *user = NULL;
    int auth = 0;
    for (int i = 0; i < r->n_hdrs; i++) {
        if (name_is(&r->hdrs[i], "authorization")) {
            auth = 1;
        } else if (user == NULL && name_is(&r->hdrs[i], "x-gatehouse-user")) {
            user = &r->hdrs[i];
        }
    }
    log_add(line, &n, r->method, r->method_len);
    log_add(line, &n, " ", 1);
    log_add_escaped(line, &n, r->target, r->target_len);
    log_add(line, &n, auth ? " authorization=present" : " authorization=absent", auth ? 22 : 21);
    log_add(line, &n, " x-gatehouse-user=", 18);
    if (user != NULL && user->value_len > 0) {
        log_add_escaped(line, &n, user->value, user->value_len);
    } else {
        log_add(line, &n, "-", 1);
    }
    log_add(line, &n, " headers=", 9);
    for (int i = 0; i < r->n_hdrs; i++) {
        char lower[128];
        size_t k = r->hdrs[i].name_len < sizeof(lower) ? r->hdrs[i].name_len : sizeof(lower);
        for (size_t j = 0; j < k; j++) {
            char ch = r->hdrs[i].name[j];
            lower[j] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
        }
        if (i > 0) {
            log_add(line, &n, ",", 1);
        }
        log_add(line, &n, lower, k);
    }
    int t = snprintf(tail, sizeof(tail), " conn=%lu req=%lu\n", c->id, c->nreq);
    memcpy(line + n, tail, (size_t)t);
    n += (size_t)t;
    if (write(g_log_fd, line, n) < 0) {
        /* A test tool: nothing better to do than carry on. */
    }
}

static void log_bad(const struct conn *c, int status, const char *why)
{
    if (g_log_fd < 0) {
        return;
    }
    char line[256];
    int n = snprintf(line, sizeof(line), "BAD %d %s conn=%lu\n", status, why, c->id);
    if (n > 0 && write(g_log_fd, line, (size_t)n) < 0) {
        /* ignored, see log_request */
    }
}

/* ------------------------------------------------------------------------ */
/* Reading.                                                                 */

/* recv into buf[len, CONN_BUF). Returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t recv_more(struct conn *c, size_t limit)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, limit - c->len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n > 0) {
            c->len += (size_t)n;
        }
        return n;
    }
}

/*
 * Read one request head into buf[0, head_len). Returns 0 with a head, 1 on a
 * clean close before any byte, -1 on a dead connection, or an HTTP status
 * (400/431) to answer before closing; *why names the problem for the log.
 */
static int read_head(struct conn *c, const char **why)
{
    size_t scanned = 0;
    size_t stripped = 0;
    /* Move a pipelined remainder to the front. */
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    c->start = 0;
    for (;;) {
        /* RFC 9112 section 2.2: ignore empty lines before the request-line. */
        size_t lead = 0;
        while (lead + 1 < c->len && c->buf[lead] == '\r' && c->buf[lead + 1] == '\n') {
            lead += 2;
        }
        if (lead > 0) {
            stripped += lead;
            if (stripped > 64) {
                *why = "empty-lines";
                return 400;
            }
            memmove(c->buf, c->buf + lead, c->len - lead);
            c->len -= lead;
            scanned = 0;
        }
        for (size_t i = scanned; i < c->len; i++) {
            unsigned char ch = (unsigned char)c->buf[i];
            if (ch == '\n') {
                if (i == 0 || c->buf[i - 1] != '\r') {
                    *why = "bare-lf";
                    return 400;
                }
                if (i >= 3 && c->buf[i - 2] == '\n' && c->buf[i - 3] == '\r') {
                    if (i + 1 > HEAD_MAX) {
                        *why = "head-too-large";
                        return 431;
                    }
                    c->req.head_len = i + 1;
                    c->off = i + 1;
                    return 0;
                }
            } else if (ch == '\r') {
                if (i + 1 < c->len && c->buf[i + 1] != '\n') {
                    *why = "bare-cr";
                    return 400;
                }
            } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                *why = "control-byte";
                return 400;
            }
        }
        /* Keep a trailing '\r' unscanned so its '\n' is checked with it. */
        scanned = c->len > 0 && c->buf[c->len - 1] == '\r' ? c->len - 1 : c->len;
        if (c->len >= HEAD_MAX) {
            *why = "head-too-large";
            return 431;
        }
        ssize_t n = recv_more(c, HEAD_MAX);
        if (n == 0 && c->len == 0) {
            return 1;
        }
        if (n <= 0) {
            return -1;
        }
    }
}

static void trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) {
        (*n)--;
    }
}

/* Does the comma-separated list value contain token (case-insensitive)? */
static int list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',') {
            j++;
        }
        const char *e = v + i;
        size_t el = j - i;
        trim_ows(&e, &el);
        if (el == tl && strncasecmp(e, token, tl) == 0) {
            return 1;
        }
        i = j + 1;
    }
    return 0;
}

/* Parse buf[0, head_len) (already free of bare CR/LF and control bytes). */
static int parse_head(struct conn *c, const char **why)
{
    struct req *r = &c->req;
    const char *p = c->buf;
    const char *end = c->buf + r->head_len - 2; /* stop at the final CRLF */
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    const char *sp1;
    const char *sp2;
    int n_host = 0;
    int n_te = 0;

    if (eol == NULL) {
        *why = "bad-request-line";
        return 400;
    }
    r->n_hdrs = 0;
    r->content_length = -1;
    r->chunked = 0;
    r->want_close = 0;
    r->expect_continue = 0;
    r->query = NULL;
    r->query_len = 0;

    /* request-line = method SP request-target SP HTTP-version (RFC 9112 section 3) */
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (sp1 == NULL || sp1 == p || sp1 - p > 32) {
        *why = "bad-method";
        return 400;
    }
    for (const char *q = p; q < sp1; q++) {
        if (!is_tchar((unsigned char)*q)) {
            *why = "bad-method";
            return 400;
        }
    }
    sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1) {
        *why = "bad-request-line";
        return 400;
    }
    for (const char *q = sp1 + 1; q < sp2; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            *why = "bad-target";
            return 400;
        }
    }
    if (span_eq(sp2 + 1, (size_t)(eol - sp2 - 1), "HTTP/1.1")) {
        r->http10 = 0;
    } else if (span_eq(sp2 + 1, (size_t)(eol - sp2 - 1), "HTTP/1.0")) {
        r->http10 = 1;
    } else {
        *why = "bad-version";
        return 400;
    }
    r->method = p;
    r->method_len = (size_t)(sp1 - p);
    r->target = sp1 + 1;
    r->target_len = (size_t)(sp2 - sp1 - 1);
    const char *qm = memchr(r->target, '?', r->target_len);
    r->path_len = qm ? (size_t)(qm - r->target) : r->target_len;
    if (qm != NULL) {
        r->query = qm + 1;
        r->query_len = r->target_len - r->path_len - 1;
    }

    /* field-line = field-name ":" OWS field-value OWS (RFC 9112 section 5) */
    p = eol + 2;
    while (p < end) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (eol == NULL) {
            eol = end;
        }
        if (*p == ' ' || *p == '\t') {
            *why = "obs-fold";
            return 400;
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p) {
            *why = "bad-field";
            return 400;
        }
        for (const char *q = p; q < colon; q++) {
            if (!is_tchar((unsigned char)*q)) {
                *why = "bad-field-name";
                return 400;
            }
        }
        if (r->n_hdrs >= MAX_HEADERS) {
            *why = "too-many-fields";
            return 431;
        }
        struct header *h = &r->hdrs[r->n_hdrs++];
        h->name = p;
        h->name_len = (size_t)(colon - p);
        h->value = colon + 1;
        h->value_len = (size_t)(eol - colon - 1);
        trim_ows(&h->value, &h->value_len);
        p = eol + 2;
    }

    for (int i = 0; i < r->n_hdrs; i++) {
        const struct header *h = &r->hdrs[i];
        if (name_is(h, "content-length")) {
            int64_t v;
            if (parse_dec(h->value, h->value_len, INT64_MAX / 2, &v) != 0 ||
                (r->content_length >= 0 && r->content_length != v)) {
                *why = "bad-content-length";
                return 400;
            }
            r->content_length = v;
        } else if (name_is(h, "transfer-encoding")) {
            n_te++;
            if (h->value_len != 7 || strncasecmp(h->value, "chunked", 7) != 0) {
                *why = "unsupported-transfer-encoding";
                return 400;
            }
            r->chunked = 1;
        } else if (name_is(h, "connection")) {
            if (list_has(h->value, h->value_len, "close")) {
                r->want_close = 1;
            }
        } else if (name_is(h, "host")) {
            n_host++;
        } else if (name_is(h, "expect")) {
            if (h->value_len == 12 && strncasecmp(h->value, "100-continue", 12) == 0) {
                r->expect_continue = 1;
            }
        }
    }
    /* Smuggling shapes are refused outright (RFC 9112 section 6.1, 6.3). */
    if (n_te > 1 || (r->chunked && r->content_length >= 0) || (r->chunked && r->http10)) {
        *why = "ambiguous-framing";
        return 400;
    }
    if (!r->http10 && n_host != 1) {
        *why = "host-count";
        return 400;
    }
    if (r->http10) {
        r->want_close = 1;
    }
    return 0;
}

/* Make sure unread body bytes exist in the window. Returns count, 0 on EOF, -1. */
static ssize_t fill(struct conn *c)
{
    if (c->off < c->len) {
        return (ssize_t)(c->len - c->off);
    }
    c->off = c->start;
    c->len = c->start;
    return recv_more(c, CONN_BUF);
}

/* Consume n body bytes, hashing them if sha != NULL. 0 or -1. */
static int consume(struct conn *c, int64_t n, struct sha256 *sha)
{
    while (n > 0) {
        ssize_t avail = fill(c);
        if (avail <= 0) {
            return -1;
        }
        size_t take = (int64_t)avail < n ? (size_t)avail : (size_t)n;
        if (sha != NULL) {
            sha256_update(sha, c->buf + c->off, take);
        }
        c->off += take;
        n -= (int64_t)take;
    }
    return 0;
}

/* One CRLF-terminated line from the body window. 0, -1 (dead) or -2 (bad/long). */
static int read_line(struct conn *c, const char **line, size_t *len)
{
    for (;;) {
        const char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t l = (size_t)(nl - (c->buf + c->off));
            if (l == 0 || nl[-1] != '\r' || l - 1 > LINE_MAX_BODY) {
                return -2;
            }
            *line = c->buf + c->off;
            *len = l - 1;
            c->off += l + 1;
            return 0;
        }
        if (c->len - c->off > LINE_MAX_BODY) {
            return -2;
        }
        if (c->off > c->start) {
            memmove(c->buf + c->start, c->buf + c->off, c->len - c->off);
            c->len -= c->off - c->start;
            c->off = c->start;
        }
        if (recv_more(c, CONN_BUF) <= 0) {
            return -1;
        }
    }
}

/*
 * Read the whole request body (RFC 9112 section 6 and 7.1), hashing it if
 * sha != NULL. Returns 0 with *total set, -1 if the peer went away, 400 for a
 * malformed chunked body.
 */
static int read_body(struct conn *c, struct sha256 *sha, int64_t *total)
{
    struct req *r = &c->req;
    *total = 0;
    c->start = r->head_len;
    if (!r->chunked) {
        if (r->content_length <= 0) {
            return 0;
        }
        *total = r->content_length;
        return consume(c, r->content_length, sha);
    }
    for (;;) {
        const char *line;
        size_t len;
        size_t i = 0;
        uint64_t size = 0;
        int rc = read_line(c, &line, &len);
        if (rc != 0) {
            return rc == -1 ? -1 : 400;
        }
        while (i < len && i < 16) {
            char ch = line[i];
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
            size = size * 16 + (uint64_t)d;
            i++;
        }
        /* chunk-size [ BWS ";" chunk-ext ]: digits first, nothing but an extension after. */
        size_t j = i;
        while (j < len && (line[j] == ' ' || line[j] == '\t')) {
            j++;
        }
        if (i == 0 || (j < len && line[j] != ';') || size > (uint64_t)1 << 52) {
            return 400;
        }
        if (size == 0) {
            break;
        }
        if (consume(c, (int64_t)size, sha) != 0) {
            return -1;
        }
        *total += (int64_t)size;
        rc = read_line(c, &line, &len);
        if (rc != 0 || len != 0) {
            return rc == -1 ? -1 : 400;
        }
    }
    /* trailer-section, then the final CRLF */
    for (int k = 0;; k++) {
        const char *line;
        size_t len;
        int rc = read_line(c, &line, &len);
        if (rc != 0) {
            return rc == -1 ? -1 : 400;
        }
        if (len == 0) {
            return 0;
        }
        if (k >= MAX_TRAILERS) {
            return 400;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Writing.                                                                 */

/* Status line and common fields. clen >= 0: Content-Length; -1: chunked; -2: none. */
static int send_head(struct conn *c, int status, const char *ctype, int64_t clen, int close_it,
                     const char *extra, const void *body, size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: gh-upstream\r\nX-Upstream: %s\r\n%s%s%s", status,
                     reason_phrase(status), g_name, ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        return -1;
    }
    size_t used = (size_t)n;
    if (clen >= 0) {
        n = snprintf(head + used, sizeof(head) - used, "Content-Length: %lld\r\n", (long long)clen);
    } else if (clen == -1) {
        n = snprintf(head + used, sizeof(head) - used, "Transfer-Encoding: chunked\r\n");
    } else {
        n = 0;
    }
    if (n < 0 || (size_t)n >= sizeof(head) - used) {
        return -1;
    }
    used += (size_t)n;
    n = snprintf(head + used, sizeof(head) - used, "%s%s\r\n",
                 close_it ? "Connection: close\r\n" : "", extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof(head) - used) {
        return -1;
    }
    used += (size_t)n;
    struct iovec iov[2] = {{head, used}, {(void *)body, body_len}};
    return writev_all(c->fd, iov, body_len > 0 ? 2 : 1);
}

/* A complete small response; HEAD gets the same fields and no body. */
static int respond(struct conn *c, int status, const char *ctype, const char *body, size_t len,
                   int close_it, const char *extra)
{
    int head_only = span_eq(c->req.method, c->req.method_len, "HEAD");
    int no_body = status == 204 || status == 304;
    return send_head(c, status, ctype, status == 204 ? -2 : (int64_t)len, close_it, extra,
                     body, (head_only || no_body) ? 0 : len);
}

/* Stream n pattern bytes (Content-Length, or chunked with one chunk per piece). */
static int send_bytes(struct conn *c, int64_t n, int chunked, int close_it)
{
    if (send_head(c, 200, "application/octet-stream", chunked ? -1 : n, close_it, NULL, NULL,
                  0) != 0) {
        return -1;
    }
    if (span_eq(c->req.method, c->req.method_len, "HEAD")) {
        return 0;
    }
    while (n > 0) {
        size_t piece = n < PIECE ? (size_t)n : PIECE;
        if (chunked) {
            char sz[32];
            int l = snprintf(sz, sizeof(sz), "%zx\r\n", piece);
            struct iovec iov[3] = {{sz, (size_t)l}, {g_pattern, piece}, {(void *)"\r\n", 2}};
            if (writev_all(c->fd, iov, 3) != 0) {
                return -1;
            }
        } else if (send_all(c->fd, g_pattern, piece) != 0) {
            return -1;
        }
        n -= (int64_t)piece;
    }
    if (chunked) {
        return send_all(c->fd, "0\r\n\r\n", 5);
    }
    return 0;
}

static int send_echo(struct conn *c, int64_t body_bytes, const char *hex, int close_it)
{
    const struct req *r = &c->req;
    struct sbuf b = {0};
    sbuf_str(&b, "{\"method\":");
    sbuf_json(&b, r->method, r->method_len, 0);
    sbuf_str(&b, ",\"path\":");
    sbuf_json(&b, r->target, r->target_len, 0);
    sbuf_str(&b, ",\"query\":");
    sbuf_json(&b, r->query ? r->query : "", r->query_len, 0);
    sbuf_fmt(&b, ",\"version\":\"HTTP/1.%d\",\"upstream\":", r->http10 ? 0 : 1);
    sbuf_json(&b, g_name, strlen(g_name), 0);
    sbuf_fmt(&b, ",\"conn\":%lu,\"conn_requests\":%lu,\"remote\":", c->id, c->nreq);
    sbuf_json(&b, c->peer, strlen(c->peer), 0);
    sbuf_str(&b, ",\"headers\":{");
    int first = 1;
    for (int i = 0; i < r->n_hdrs; i++) {
        const struct header *h = &r->hdrs[i];
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            seen = h->name_len == r->hdrs[j].name_len &&
                   strncasecmp(h->name, r->hdrs[j].name, h->name_len) == 0;
        }
        if (seen) {
            continue;
        }
        sbuf_str(&b, first ? "" : ",");
        first = 0;
        sbuf_json(&b, h->name, h->name_len, 1);
        sbuf_str(&b, ":[");
        int firstv = 1;
        for (int j = i; j < r->n_hdrs; j++) {
            const struct header *o = &r->hdrs[j];
            if (o->name_len == h->name_len && strncasecmp(o->name, h->name, h->name_len) == 0) {
                sbuf_str(&b, firstv ? "" : ",");
                firstv = 0;
                sbuf_json(&b, o->value, o->value_len, 0);
            }
        }
        sbuf_str(&b, "]");
    }
    sbuf_fmt(&b, "},\"body_bytes\":%lld,\"body_sha256\":\"%s\"}\n", (long long)body_bytes, hex);
    int rc;
    if (b.failed) {
        (void)respond(c, 500, "text/plain", "echo too large\n", 15, 1, NULL);
        rc = -1;
    } else {
        rc = respond(c, 200, "application/json", b.p, b.len, close_it, NULL);
    }
    free(b.p);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* One request.                                                             */

static int path_is(const struct req *r, const char *p)
{
    return span_eq(r->target, r->path_len, p);
}

static int path_under(const struct req *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->path_len > n && memcmp(r->target, prefix, n) == 0;
}

/* Close after an error answer without resetting the connection under the
 * client's feet: half-close, then drain briefly so the answer is read. */
static void lingering_close(int fd)
{
    char sink[4096];
    struct timeval tv = {0, 200000};
    shutdown(fd, SHUT_WR);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n <= 0) {
            break;
        }
    }
}

/* Handle the parsed request in c->req. Returns 0 to keep the connection, -1 to close. */
static int handle(struct conn *c)
{
    struct req *r = &c->req;
    int close_it = r->want_close;
    int is_echo = path_is(r, "/echo") || path_under(r, "/echo/");
    int is_upload = path_is(r, "/upload");
    struct sha256 sha;
    char hex[65];
    int64_t body = 0;

    log_request(c);

    if (r->expect_continue && !r->http10 && (r->chunked || r->content_length > 0)) {
        if (send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
            return -1;
        }
    }
    sha256_init(&sha);
    int rc = read_body(c, (is_echo || is_upload) ? &sha : NULL, &body);
    if (rc == -1) {
        return -1;
    }
    if (rc != 0) {
        log_bad(c, 400, "bad-chunked-body");
        (void)respond(c, 400, "text/plain", "bad chunked body\n", 17, 1, NULL);
        lingering_close(c->fd);
        return -1;
    }
    sha256_hex(&sha, hex);

    if (path_is(r, "/fixed1k") && !span_eq(r->method, r->method_len, "HEAD")) {
        if (close_it) {
            (void)send_all(c->fd, g_fixed_close, g_fixed_close_len);
            return -1;
        }
        return send_all(c->fd, g_fixed_ka, g_fixed_ka_len);
    }
    if (is_echo) {
        if (send_echo(c, body, hex, close_it) != 0) {
            return -1;
        }
        return close_it ? -1 : 0;
    }
    if (is_upload) {
        char out[160];
        int is_post = span_eq(r->method, r->method_len, "POST");
        int is_put = span_eq(r->method, r->method_len, "PUT");
        if (!is_post && !is_put) {
            rc = respond(c, 405, "text/plain", "use POST or PUT\n", 16, close_it,
                         "Allow: POST, PUT\r\n");
        } else {
            int n = snprintf(out, sizeof(out), "{\"bytes\":%lld,\"sha256\":\"%s\"}\n",
                             (long long)body, hex);
            rc = respond(c, 200, "application/json", out, (size_t)n, close_it, NULL);
        }
        return (rc != 0 || close_it) ? -1 : 0;
    }
    if (path_under(r, "/bytes/")) {
        int64_t n;
        size_t vl = 0;
        const char *v = query_param(r, "chunked", &vl);
        if (parse_dec(r->target + 7, r->path_len - 7, MAX_BYTES_N, &n) != 0) {
            rc = respond(c, 400, "text/plain", "bad byte count\n", 15, close_it, NULL);
        } else {
            rc = send_bytes(c, n, v != NULL && span_eq(v, vl, "1"), close_it);
        }
        return (rc != 0 || close_it) ? -1 : 0;
    }
    if (path_is(r, "/slow")) {
        int64_t ms = 1000;
        size_t vl = 0;
        const char *v = query_param(r, "ms", &vl);
        char out[64];
        if (v != NULL && parse_dec(v, vl, MAX_SLOW_MS, &ms) != 0) {
            rc = respond(c, 400, "text/plain", "bad ms\n", 7, close_it, NULL);
            return (rc != 0 || close_it) ? -1 : 0;
        }
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        int n = snprintf(out, sizeof(out), "slept %lld ms\n", (long long)ms);
        rc = respond(c, 200, "text/plain", out, (size_t)n, close_it, NULL);
        return (rc != 0 || close_it) ? -1 : 0;
    }
    if (path_under(r, "/status/")) {
        int64_t st;
        char out[32];
        if (parse_dec(r->target + 8, r->path_len - 8, 599, &st) != 0 || st < 200 ||
            r->path_len != 11) {
            rc = respond(c, 400, "text/plain", "status must be 200..599\n", 24, close_it, NULL);
        } else {
            int n = snprintf(out, sizeof(out), "status %d\n", (int)st);
            rc = respond(c, (int)st, "text/plain", out, (size_t)n, close_it, NULL);
        }
        return (rc != 0 || close_it) ? -1 : 0;
    }
    if (path_is(r, "/close")) {
        (void)respond(c, 200, "text/plain", "closing\n", 8, 1, NULL);
        return -1;
    }
    if (path_is(r, "/eofbody")) {
        /* No length: the body ends where the connection does (RFC 9112 6.3). */
        static const char b[] = "body ends at close\n";
        (void)send_head(c, 200, "text/plain", -2, 1, NULL, b, sizeof(b) - 1);
        return -1;
    }
    {
        char out[128];
        int n = snprintf(out, sizeof(out), "hello from %s\n", g_name);
        rc = respond(c, 200, "text/plain", out, (size_t)n, close_it, NULL);
        return (rc != 0 || close_it) ? -1 : 0;
    }
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    for (;;) {
        const char *why = "";
        int rc = read_head(c, &why);
        if (rc == 0) {
            c->nreq++;
            rc = parse_head(c, &why);
            if (rc == 0) {
                if (handle(c) != 0) {
                    break;
                }
                continue;
            }
        }
        if (rc > 1) {
            char body[96];
            int n = snprintf(body, sizeof(body), "bad request: %s\n", why);
            log_bad(c, rc, why);
            c->req.method = "GET";
            c->req.method_len = 3;
            (void)respond(c, rc, "text/plain", body, (size_t)n, 1, NULL);
            lingering_close(c->fd);
        }
        break;
    }
    close(c->fd);
    free(c);
    atomic_fetch_sub(&g_conns, 1);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Start-up.                                                                */

static void usage(void)
{
    fprintf(stderr, "usage: gh-upstream --listen HOST:PORT [--log FILE] [--name NAME]\n"
                    "                   [--idle-timeout MS]\n"
                    "PORT 0 picks a free port; the real one is printed as\n"
                    "`listening on HOST:PORT` once the socket accepts connections.\n");
}

static void build_fixed(void)
{
    char body[FIXED_BODY];
    for (size_t i = 0; i < sizeof(body); i++) {
        body[i] = PATTERN_ALPHABET[i % 64];
    }
    body[FIXED_BODY - 1] = '\n';
    for (int k = 0; k < 2; k++) {
        char *out = k ? g_fixed_close : g_fixed_ka;
        int n = snprintf(out, 512,
                         "HTTP/1.1 200 OK\r\nServer: gh-upstream\r\nX-Upstream: %s\r\n"
                         "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n%s\r\n",
                         g_name, FIXED_BODY, k ? "Connection: close\r\n" : "");
        memcpy(out + n, body, FIXED_BODY);
        if (k) {
            g_fixed_close_len = (size_t)n + FIXED_BODY;
        } else {
            g_fixed_ka_len = (size_t)n + FIXED_BODY;
        }
    }
}

static int open_listener(const char *spec, char *shown, size_t shown_len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    const char *hs = spec;
    size_t hl;
    if (colon == NULL || colon[1] == '\0') {
        return -1;
    }
    hl = (size_t)(colon - spec);
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        hs = spec + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host)) {
        return -1;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';

    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "gh-upstream: %s: %s\n", spec, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        fprintf(stderr, "gh-upstream: %s: %s\n", spec, strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    freeaddrinfo(res);

    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } bound;
    socklen_t sl = sizeof(bound);
    char addr[INET6_ADDRSTRLEN];
    memset(&bound, 0, sizeof(bound));
    if (getsockname(fd, &bound.sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    if (bound.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &bound.in6.sin6_addr, addr, sizeof(addr));
        snprintf(shown, shown_len, "[%s]:%d", addr, ntohs(bound.in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &bound.in4.sin_addr, addr, sizeof(addr));
        snprintf(shown, shown_len, "%s:%d", addr, ntohs(bound.in4.sin_port));
    }
    return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
        snprintf(out, len, "[%s]:%d", addr, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
        snprintf(out, len, "%s:%d", addr, ntohs(s4->sin_port));
    }
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL;
    const char *log_path = NULL;
    char shown[INET6_ADDRSTRLEN + 16];
    pthread_attr_t attr;

    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--listen") == 0) {
            listen_spec = v;
        } else if (strcmp(a, "--log") == 0) {
            log_path = v;
        } else if (strcmp(a, "--name") == 0) {
            g_name = v;
        } else if (strcmp(a, "--idle-timeout") == 0) {
            int64_t ms;
            if (parse_dec(v, strlen(v), 86400000, &ms) != 0 || ms == 0) {
                fprintf(stderr, "gh-upstream: bad --idle-timeout\n");
                return 2;
            }
            g_idle_ms = (int)ms;
        } else {
            usage();
            return 2;
        }
    }
    if (listen_spec == NULL) {
        usage();
        return 2;
    }
    if (!valid_name(g_name)) {
        fprintf(stderr, "gh-upstream: --name must be 1..64 of [A-Za-z0-9._-]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (log_path != NULL) {
        g_log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (g_log_fd < 0) {
            fprintf(stderr, "gh-upstream: %s: %s\n", log_path, strerror(errno));
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof(g_pattern); i++) {
        g_pattern[i] = PATTERN_ALPHABET[i % 64];
    }
    build_fixed();

    int lfd = open_listener(listen_spec, shown, sizeof(shown));
    if (lfd < 0) {
        fprintf(stderr, "gh-upstream: cannot listen on %s\n", listen_spec);
        return 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    printf("listening on %s\n", shown);
    fflush(stdout);

    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timespec ts = {0, 10000000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (atomic_fetch_add(&g_conns, 1) >= MAX_CONNS) {
            atomic_fetch_sub(&g_conns, 1);
            close(fd);
            continue;
        }
        struct conn *c = malloc(sizeof(*c));
        if (c == NULL) {
            atomic_fetch_sub(&g_conns, 1);
            close(fd);
            continue;
        }
        int one = 1;
        struct timeval tv = {g_idle_ms / 1000, (g_idle_ms % 1000) * 1000};
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        c->fd = fd;
        c->id = atomic_fetch_add(&g_conn_ids, 1) + 1;
        c->nreq = 0;
        c->start = 0;
        c->off = 0;
        c->len = 0;
        peer_name(&ss, c->peer, sizeof(c->peer));
        pthread_t tid;
        if (pthread_create(&tid, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
            atomic_fetch_sub(&g_conns, 1);
        }
    }
}
