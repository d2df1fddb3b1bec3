/*
 * gb.h: internals shared by the gatehouse-bench source files.
 *
 * Owns: the parsed options (struct gb_opts, immutable once the workers
 * start), the shared run state (struct gb_run: request bytes, SSL_CTX,
 * phase times and two atomics), the per-worker statistics (struct gb_stats)
 * and the incremental HTTP/1.1 response parser (struct gb_resp).
 *
 * Must not: connect anywhere but the one address resolved from --url, or
 * allocate on the per-request path (the request bytes are built once and
 * shared read-only; every connection slot owns a fixed input buffer).
 *
 * Thread rules: workers share opts, run (read-only apart from its atomics)
 * and the SSL_CTX (BoringSSL makes a context safe to share). Each worker
 * writes only its own struct gb_stats; the main thread merges them after
 * pthread_join, so no statistic is ever shared while it is written.
 */
#ifndef GB_H
#define GB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define GB_WUR __attribute__((warn_unused_result))
#define GB_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define GB_VERSION "0.1"
#define GB_MAX_HEADERS 32        /* -H options */
#define GB_HEADER_LINE_MAX 16384 /* one -H or --header-file line */
#define GB_HEAD_MAX 16384        /* response head (status line + headers) */
#define GB_IN_CAP GB_HEAD_MAX    /* per-connection input buffer */
#define GB_CHUNK_LINE_MAX 1024   /* chunk-size line incl. extensions */
#define GB_TRAILER_MAX 8192      /* all trailer lines of one response */
#define GB_BODY_BYTES_MAX (64u << 20)
#define GB_ERRMSG 160

enum gb_mode {
    GB_MODE_KEEPALIVE, /* persistent connections, next request on response end */
    GB_MODE_NEWCONN,   /* TCP + full TLS handshake per request */
    GB_MODE_RESUME,    /* TCP + resumed TLS handshake per request */
    GB_MODE_IDLE,      /* open N connections, one request each, then hold */
};
const char *gb_mode_name(enum gb_mode m);

/* Error kinds, in report order. Keep gb_err_name() in step. */
enum gb_errkind {
    GB_E_CONNECT,       /* socket/connect failed or refused */
    GB_E_TLS_HANDSHAKE, /* handshake failed, or a TLS 1.3 peer alert before any response byte */
    GB_E_TLS_READ,
    GB_E_TLS_WRITE,
    GB_E_READ,         /* plain-TCP read error (ECONNRESET ...) */
    GB_E_WRITE,        /* plain-TCP write error */
    GB_E_CLOSED,       /* peer closed before the response was complete */
    GB_E_TIMEOUT,      /* --timeout-ms exceeded */
    GB_E_BAD_RESPONSE, /* response violates HTTP/1.1 framing or a limit */
    GB_E_COUNT
};
const char *gb_err_name(enum gb_errkind k);

struct gb_opts {
    char url[4096];
    int tls;        /* https:// */
    char host[256]; /* URL host without brackets */
    char port_str[8];
    char path[4096];       /* origin-form, with query */
    char host_header[512]; /* value of the Host header */
    char verify_name[256]; /* name checked in the server cert and sent as SNI */
    int verify_name_is_ip;
    const char *cert;
    const char *key;
    const char *ca;
    int insecure;
    int tls_version; /* 0: 1.2 or 1.3; else pinned (TLS1_2_VERSION ...) */
    const char *headers[GB_MAX_HEADERS];
    int nheaders;
    char *header_file_line; /* heap, from --header-file, or NULL */
    int conns;
    double secs;
    uint64_t max_reqs; /* 0: unbounded */
    int threads;
    enum gb_mode mode;
    char method[16];
    size_t body_bytes;
    int has_body; /* send Content-Length (POST/PUT or --body-bytes) */
    int timeout_ms;
    double warmup;
    char label[64];
    int expect_status; /* 0: none */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* --- statistics ---------------------------------------------------------- */

/* Log-linear histogram: values below 128 exact, above that 64 sub-buckets
 * per power of two (< 1.6 % relative error), like HdrHistogram with two
 * significant digits; fixed size, no allocation when recording. */
#define GB_HIST_N (128 + 57 * 64)
struct gb_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    uint64_t sum;
    uint64_t b[GB_HIST_N];
};
void gb_hist_reset(struct gb_hist *h);
void gb_hist_record(struct gb_hist *h, uint64_t v);
void gb_hist_merge(struct gb_hist *into, const struct gb_hist *from);
/* Value at quantile q (0 < q <= 1); 0 when empty. */
uint64_t gb_hist_quantile(const struct gb_hist *h, double q);

struct gb_stats {
    uint64_t reqs;        /* complete responses, any status */
    uint64_t status[600]; /* by code, 100..599 */
    uint64_t mismatched;  /* status != --expect-status */
    uint64_t err[GB_E_COUNT];
    char err_first[GB_E_COUNT][GB_ERRMSG];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t connects;      /* TCP connections established */
    uint64_t handshakes;    /* TLS handshakes completed */
    uint64_t resumed;       /* ... of which SSL_session_reused */
    uint64_t server_closes; /* keep-alive connection ended by the server */
    uint64_t idle_open;     /* --idle: connections still open at the end */
    uint64_t unfinished;    /* requests in flight when the run ended */
    struct gb_hist lat;     /* request latency, microseconds */
    struct gb_hist hs;      /* connect + handshake, microseconds */
};
void gb_stats_reset(struct gb_stats *s);
void gb_stats_merge(struct gb_stats *into, const struct gb_stats *from);

/* --- run state shared by workers ----------------------------------------- */

struct gb_run {
    const struct gb_opts *o;
    SSL_CTX *ctx;    /* NULL for http:// */
    const char *req; /* request bytes, built once */
    size_t req_len;
    int no_body_expected;            /* HEAD */
    uint64_t t0;                     /* monotonic ns at start */
    uint64_t t_measure;              /* end of warmup */
    uint64_t t_end;                  /* end of the measured window (timed modes) */
    uint64_t t_hard;                 /* global hard deadline: always stop here */
    atomic_uint_fast64_t issued;     /* requests started in the window (-n) */
    atomic_int idle_pending;         /* --idle: slots still opening */
    atomic_uint_fast64_t hold_until; /* --idle: 0 until all slots opened */
    volatile int *interrupted;       /* set by SIGINT/SIGTERM */
};

struct gb_worker_result {
    struct gb_stats st;
    uint64_t t_finish; /* monotonic ns when the worker stopped */
};

/* Run one worker over conns [first, first + n) until the run ends; fills
 * res. Returns 0, or -1 (with msg) when the worker could not even start
 * (epoll or memory); connection failures are statistics, not errors. */
int gb_worker_run(struct gb_run *run, int id, int n, struct gb_worker_result *res, char *msg,
                  size_t msglen) GB_WUR;

/* Resume mode: collect each slot's newest session (TLS 1.2 or 1.3 ticket)
 * through the new-session callback instead of BoringSSL's internal cache. */
void gb_tls_enable_resume(SSL_CTX *ctx);

/* --- HTTP ---------------------------------------------------------------- */

/* Builds the request bytes from opts into a new heap buffer (*out, freed by
 * the caller with free()). Returns 0, or -1 with msg. */
int gb_request_build(const struct gb_opts *o, char **out, size_t *out_len, char *msg,
                     size_t msglen) GB_WUR;

/* Checks a "Name: value" header line: RFC 9110 token name, no CR, LF, NUL
 * or other control characters but HT in the value. Returns the name length,
 * or 0 when the line is not acceptable. */
size_t gb_header_check(const char *line);

enum gb_rstate {
    GB_R_HEAD,
    GB_R_BODY_LEN,
    GB_R_CHUNK_SIZE,
    GB_R_CHUNK_DATA,
    GB_R_CHUNK_CRLF,
    GB_R_TRAILER,
    GB_R_BODY_EOF,
    GB_R_DONE,
};

struct gb_resp {
    enum gb_rstate state;
    int no_body; /* request was HEAD */
    int status;
    int close;          /* connection does not persist after this response */
    uint64_t remaining; /* body or chunk bytes still expected */
    uint64_t body_bytes;
    size_t scan; /* head bytes already searched for the blank line */
    size_t trailer_bytes;
    const char *why; /* static text, set on GB_FEED_BAD */
};

enum { GB_FEED_BAD = -1, GB_FEED_MORE = 0, GB_FEED_DONE = 1 };

void gb_resp_reset(struct gb_resp *r, int no_body);
/* Parses buf[0, len): the bytes of one response not yet consumed. Sets
 * *used to the bytes consumed (the caller drops them and keeps the rest for
 * the next call). Returns GB_FEED_DONE when the response is complete,
 * GB_FEED_MORE when more bytes are needed, GB_FEED_BAD (r->why says why). */
int gb_resp_feed(struct gb_resp *r, const char *buf, size_t len, size_t *used);
/* The peer closed the connection: returns 1 when that ends the response
 * (body delimited by close), 0 when the response is truncated. */
int gb_resp_eof(const struct gb_resp *r);

/* --- time ---------------------------------------------------------------- */

uint64_t gb_now_ns(void);

#endif
