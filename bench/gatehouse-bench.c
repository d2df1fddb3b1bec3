/*
 * gatehouse-bench: an HTTP/1.1 load generator that presents a client
 * certificate (mTLS) and a bearer token, on BoringSSL.
 *
 * Why it exists: no load tool packaged in Debian presents client
 * certificates, and Gatehouse refuses every request without one. This file
 * owns the command line, the one-time setup (URL, address, request bytes,
 * TLS context, descriptor limit), the worker threads, and the report: human
 * lines, then exactly one machine-readable "RESULT key=value ..." line that
 * bench/lib-bench.sh parses. The connection engine is gb_worker.c and the
 * HTTP parts are gb_http.c.
 *
 * It only ever connects to the address resolved once from --url (tests use
 * loopback), and it always terminates: the measured window ends after -d
 * seconds or -n requests, and a hard deadline (window + 10 s) stops every
 * worker regardless of what the server does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "gb.h"

#define EXIT_RAN 0
#define EXIT_SETUP 1
#define EXIT_EXPECT 3
#define HARD_EXTRA_S 10.0 /* hard deadline beyond the window */
#define IDLE_OPEN_S 60.0  /* --idle: budget for opening all connections */

static volatile int g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

const char *gb_mode_name(enum gb_mode m)
{
    switch (m) {
    case GB_MODE_KEEPALIVE:
        return "keepalive";
    case GB_MODE_NEWCONN:
        return "newconn";
    case GB_MODE_RESUME:
        return "resume";
    case GB_MODE_IDLE:
        return "idle";
    }
    return "?";
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gatehouse-bench --url http[s]://HOST[:PORT]/PATH [options]\n"
            "\n"
            "  --host VALUE         Host header (default: from the URL); also the TLS name\n"
            "  --sni NAME           TLS server name to send and verify (default: see --host)\n"
            "  --cert FILE          client certificate chain (PEM)\n"
            "  --key FILE           client private key (PEM; default: --cert)\n"
            "  --ca FILE            CA bundle to verify the server | --insecure (no check)\n"
            "  --tls-version V      pin TLS 1.2 or 1.3 (default: 1.2 or 1.3)\n"
            "  -H, --header LINE    extra header \"Name: value\" (repeatable, max %d)\n"
            "  --header-file FILE   one header line from FILE (long bearer tokens)\n"
            "  -c, --conns N        concurrent connections (default 1)\n"
            "  -d, --duration S     measured seconds (default 10)\n"
            "  -n, --requests N     stop after N requests (whichever of -d/-n first)\n"
            "  -t, --threads T      worker threads (default 1, see README)\n"
            "  --mode M             keepalive | newconn | resume (default keepalive)\n"
            "  --method M           GET | POST | PUT | HEAD | DELETE (default GET)\n"
            "  --body-bytes N       request body of N bytes (with Content-Length)\n"
            "  --timeout-ms N       per request, incl. connect/handshake (default 10000)\n"
            "  --warmup S           seconds of load before the window (default 0)\n"
            "  --label NAME         label in the RESULT line (default: the mode)\n"
            "  --expect-status N    exit 3 if any response is not N or any error happened\n"
            "  --idle N             open N connections (one request each), hold them -d s\n"
            "\n"
            "Exit: 0 ran, 1 usage or setup error, 3 --expect-status not met.\n",
            GB_MAX_HEADERS);
}

static int setup_error(const char *fmt, ...) GB_PRINTF(1, 2);

static int setup_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gatehouse-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

static GB_WUR int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static GB_WUR int parse_secs(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    if (s == NULL || ((*s < '0' || *s > '9') && *s != '.')) {
        return -1;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static GB_WUR int copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap) {
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* http[s]://host[:port][/path][?query][#fragment]; no userinfo. */
static GB_WUR int parse_url(struct gb_opts *o, const char *url)
{
    const char *p;
    if (copy_str(o->url, sizeof(o->url), url, strlen(url)) != 0) {
        return setup_error("--url too long");
    }
    if (strncmp(url, "https://", 8) == 0) {
        o->tls = 1;
        p = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        o->tls = 0;
        p = url + 7;
    } else {
        return setup_error("--url must start with http:// or https://");
    }
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen) != NULL) {
        return setup_error("--url must not carry user info");
    }
    const char *hs = p;
    size_t hlen;
    const char *after;
    if (*p == '[') {
        const char *rb = memchr(p, ']', alen);
        if (rb == NULL) {
            return setup_error("--url: unterminated [IPv6] host");
        }
        hs = p + 1;
        hlen = (size_t)(rb - hs);
        after = rb + 1;
    } else {
        hlen = strcspn(p, ":/?#");
        after = p + hlen;
    }
    if (hlen == 0 || copy_str(o->host, sizeof(o->host), hs, hlen) != 0) {
        return setup_error("--url: empty or too long host");
    }
    const char *port = o->tls ? "443" : "80";
    size_t plen = strlen(port);
    if (*after == ':') {
        port = after + 1;
        plen = strcspn(port, "/?#");
        after = port + plen;
    }
    char pbuf[8];
    uint64_t pn = 0;
    if (copy_str(pbuf, sizeof(pbuf), port, plen) != 0 || parse_u64(pbuf, 1, 65535, &pn) != 0) {
        return setup_error("--url: bad port");
    }
    if (after != p + alen) {
        return setup_error("--url: junk after the port");
    }
    snprintf(o->port_str, sizeof(o->port_str), "%u", (unsigned)pn);
    size_t rlen = strcspn(after, "#");
    if (rlen == 0) {
        snprintf(o->path, sizeof(o->path), "/");
    } else if (*after == '?') {
        if (rlen + 1 >= sizeof(o->path)) {
            return setup_error("--url: path too long");
        }
        o->path[0] = '/';
        memcpy(o->path + 1, after, rlen);
        o->path[rlen + 1] = '\0';
    } else if (copy_str(o->path, sizeof(o->path), after, rlen) != 0) {
        return setup_error("--url: path too long");
    }
    for (const char *q = o->path; *q != '\0'; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            return setup_error("--url: path has spaces or control characters (percent-encode)");
        }
    }
    int v6 = strchr(o->host, ':') != NULL;
    int dflt = pn == (o->tls ? 443u : 80u);
    snprintf(o->host_header, sizeof(o->host_header), "%s%s%s%s%s", v6 ? "[" : "", o->host,
             v6 ? "]" : "", dflt ? "" : ":", dflt ? "" : o->port_str);
    return 0;
}

static GB_WUR int resolve(struct gb_opts *o)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(o->host, o->port_str, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        return setup_error("cannot resolve %s: %s", o->host, gai_strerror(rc));
    }
    memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
    o->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* The name checked in the server certificate and sent as SNI. */
static GB_WUR int pick_verify_name(struct gb_opts *o, const char *sni, const char *host_opt)
{
    const char *src = o->host;
    size_t n = strlen(src);
    if (sni != NULL) {
        src = sni;
        n = strlen(sni);
    } else if (host_opt != NULL) {
        src = host_opt;
        if (*src == '[') {
            src++;
            n = strcspn(src, "]");
        } else {
            n = strcspn(src, ":");
        }
    }
    if (n == 0 || copy_str(o->verify_name, sizeof(o->verify_name), src, n) != 0) {
        return setup_error("bad TLS name (from --sni, --host or the URL)");
    }
    o->verify_name_is_ip = is_ip_literal(o->verify_name);
    return 0;
}

static GB_WUR int read_header_file(struct gb_opts *o, const char *path)
{
    int ret = -1;
    char *buf = malloc(GB_HEADER_LINE_MAX + 2);
    FILE *f = fopen(path, "r");
    if (buf == NULL || f == NULL) {
        setup_error("--header-file %s: %s", path, strerror(errno));
        goto out;
    }
    size_t n = fread(buf, 1, GB_HEADER_LINE_MAX + 1, f);
    buf[n] = '\0';
    size_t line = strcspn(buf, "\r\n");
    if (line > GB_HEADER_LINE_MAX || (line == n && n > GB_HEADER_LINE_MAX)) {
        setup_error("--header-file %s: line longer than %d bytes", path, GB_HEADER_LINE_MAX);
        goto out;
    }
    buf[line] = '\0';
    if (gb_header_check(buf) == 0) {
        setup_error("--header-file %s: first line is not \"Name: value\"", path);
        goto out;
    }
    o->header_file_line = buf;
    buf = NULL;
    ret = 0;
out:
    if (f != NULL) {
        fclose(f);
    }
    free(buf);
    return ret;
}

enum {
    OPT_URL = 256,
    OPT_HOST,
    OPT_SNI,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_INSECURE,
    OPT_TLSV,
    OPT_HFILE,
    OPT_MODE,
    OPT_METHOD,
    OPT_BODY,
    OPT_TIMEOUT,
    OPT_WARMUP,
    OPT_LABEL,
    OPT_EXPECT,
    OPT_IDLE,
};

static const struct option long_opts[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"host", required_argument, NULL, OPT_HOST},
    {"sni", required_argument, NULL, OPT_SNI},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"tls-version", required_argument, NULL, OPT_TLSV},
    {"header", required_argument, NULL, 'H'},
    {"header-file", required_argument, NULL, OPT_HFILE},
    {"conns", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"threads", required_argument, NULL, 't'},
    {"mode", required_argument, NULL, OPT_MODE},
    {"method", required_argument, NULL, OPT_METHOD},
    {"body-bytes", required_argument, NULL, OPT_BODY},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"label", required_argument, NULL, OPT_LABEL},
    {"expect-status", required_argument, NULL, OPT_EXPECT},
    {"idle", required_argument, NULL, OPT_IDLE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static GB_WUR int parse_args(struct gb_opts *o, int argc, char **argv)
{
    const char *url = NULL;
    const char *host_opt = NULL;
    const char *sni = NULL;
    const char *hfile = NULL;
    uint64_t v = 0;
    int idle_n = 0;
    int have_body_opt = 0;

    o->conns = 1;
    o->secs = 10.0;
    o->threads = 1;
    o->mode = GB_MODE_KEEPALIVE;
    o->timeout_ms = 10000;
    snprintf(o->method, sizeof(o->method), "GET");
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "H:c:d:n:t:h", long_opts, NULL);
        if (ch == -1) {
            break;
        }
        switch (ch) {
        case OPT_URL:
            url = optarg;
            break;
        case OPT_HOST:
            host_opt = optarg;
            break;
        case OPT_SNI:
            sni = optarg;
            break;
        case OPT_CERT:
            o->cert = optarg;
            break;
        case OPT_KEY:
            o->key = optarg;
            break;
        case OPT_CA:
            o->ca = optarg;
            break;
        case OPT_INSECURE:
            o->insecure = 1;
            break;
        case OPT_TLSV:
            if (strcmp(optarg, "1.2") == 0) {
                o->tls_version = TLS1_2_VERSION;
            } else if (strcmp(optarg, "1.3") == 0) {
                o->tls_version = TLS1_3_VERSION;
            } else {
                return setup_error("--tls-version: 1.2 or 1.3");
            }
            break;
        case 'H':
            if (o->nheaders >= GB_MAX_HEADERS) {
                return setup_error("at most %d -H options", GB_MAX_HEADERS);
            }
            o->headers[o->nheaders++] = optarg;
            break;
        case OPT_HFILE:
            hfile = optarg;
            break;
        case 'c':
            if (parse_u64(optarg, 1, 200000, &v) != 0) {
                return setup_error("-c: 1..200000");
            }
            o->conns = (int)v;
            break;
        case 'd':
            if (parse_secs(optarg, 0.01, 86400, &o->secs) != 0) {
                return setup_error("-d: seconds, 0.01..86400");
            }
            break;
        case 'n':
            if (parse_u64(optarg, 1, UINT64_MAX / 2, &o->max_reqs) != 0) {
                return setup_error("-n: a positive count");
            }
            break;
        case 't':
            if (parse_u64(optarg, 1, 64, &v) != 0) {
                return setup_error("--threads: 1..64");
            }
            o->threads = (int)v;
            break;
        case OPT_MODE:
            if (strcmp(optarg, "keepalive") == 0) {
                o->mode = GB_MODE_KEEPALIVE;
            } else if (strcmp(optarg, "newconn") == 0) {
                o->mode = GB_MODE_NEWCONN;
            } else if (strcmp(optarg, "resume") == 0) {
                o->mode = GB_MODE_RESUME;
            } else {
                return setup_error("--mode: keepalive, newconn or resume");
            }
            break;
        case OPT_METHOD:
            if (strcmp(optarg, "GET") != 0 && strcmp(optarg, "POST") != 0 &&
                strcmp(optarg, "PUT") != 0 && strcmp(optarg, "HEAD") != 0 &&
                strcmp(optarg, "DELETE") != 0) {
                return setup_error("--method: GET, POST, PUT, HEAD or DELETE");
            }
            snprintf(o->method, sizeof(o->method), "%s", optarg);
            break;
        case OPT_BODY:
            if (parse_u64(optarg, 0, GB_BODY_BYTES_MAX, &v) != 0) {
                return setup_error("--body-bytes: 0..%u", GB_BODY_BYTES_MAX);
            }
            o->body_bytes = (size_t)v;
            have_body_opt = 1;
            break;
        case OPT_TIMEOUT:
            if (parse_u64(optarg, 1, 600000, &v) != 0) {
                return setup_error("--timeout-ms: 1..600000");
            }
            o->timeout_ms = (int)v;
            break;
        case OPT_WARMUP:
            if (parse_secs(optarg, 0, 3600, &o->warmup) != 0) {
                return setup_error("--warmup: seconds, 0..3600");
            }
            break;
        case OPT_LABEL: {
            size_t n = strlen(optarg);
            if (n == 0 || n >= sizeof(o->label) ||
                strspn(optarg,
                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:") != n) {
                return setup_error("--label: 1..63 of [A-Za-z0-9._:-]");
            }
            memcpy(o->label, optarg, n + 1);
            break;
        }
        case OPT_EXPECT:
            if (parse_u64(optarg, 100, 599, &v) != 0) {
                return setup_error("--expect-status: 100..599");
            }
            o->expect_status = (int)v;
            break;
        case OPT_IDLE:
            if (parse_u64(optarg, 1, 200000, &v) != 0) {
                return setup_error("--idle: 1..200000");
            }
            idle_n = (int)v;
            break;
        case 'h':
            usage(stdout);
            exit(EXIT_RAN);
        default:
            usage(stderr);
            return setup_error("unknown option or missing argument: %s", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return setup_error("unexpected argument: %s", argv[optind]);
    }
    if (url == NULL) {
        usage(stderr);
        return setup_error("--url is required");
    }
    if (parse_url(o, url) != 0) {
        return -1;
    }
    if (host_opt != NULL) {
        size_t n = strlen(host_opt);
        if (n == 0 || copy_str(o->host_header, sizeof(o->host_header), host_opt, n) != 0 ||
            strspn(host_opt,
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") != n) {
            return setup_error("--host: a host[:port] value");
        }
    }
    if (pick_verify_name(o, sni, host_opt) != 0) {
        return -1;
    }
    if (hfile != NULL && read_header_file(o, hfile) != 0) {
        return -1;
    }
    if (idle_n > 0) {
        if (o->mode != GB_MODE_KEEPALIVE || o->max_reqs > 0) {
            return setup_error("--idle excludes --mode and -n");
        }
        o->mode = GB_MODE_IDLE;
        o->conns = idle_n;
        o->warmup = 0;
    }
    o->has_body = have_body_opt || strcmp(o->method, "POST") == 0 || strcmp(o->method, "PUT") == 0;
    if (o->tls) {
        if (o->ca == NULL && !o->insecure) {
            return setup_error("https needs --ca FILE (verify the server) or --insecure");
        }
        if (o->ca != NULL && o->insecure) {
            return setup_error("--ca and --insecure exclude each other");
        }
    } else if (o->cert != NULL || o->key != NULL || o->ca != NULL || o->tls_version != 0 ||
               o->mode == GB_MODE_RESUME) {
        return setup_error("TLS options (--cert/--key/--ca/--tls-version/resume) need https://");
    }
    if (o->key != NULL && o->cert == NULL) {
        return setup_error("--key needs --cert");
    }
    if (o->label[0] == '\0') {
        snprintf(o->label, sizeof(o->label), "%s", gb_mode_name(o->mode));
    }
    if (o->threads > o->conns) {
        o->threads = o->conns;
    }
    return 0;
}

static void print_ssl_errors(void)
{
    uint32_t e;
    char buf[256];
    for (;;) {
        e = ERR_get_error();
        if (e == 0) {
            break;
        }
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "  %s\n", buf);
    }
}

static GB_WUR SSL_CTX *tls_setup(const struct gb_opts *o)
{
    static const uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        setup_error("SSL_CTX_new failed");
        goto fail;
    }
    int minv = o->tls_version != 0 ? o->tls_version : TLS1_2_VERSION;
    int maxv = o->tls_version != 0 ? o->tls_version : TLS1_3_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, (uint16_t)minv) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, (uint16_t)maxv) != 1) {
        setup_error("cannot set the TLS version range");
        goto fail;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0) {
        setup_error("cannot set ALPN");
        goto fail;
    }
    if (o->cert != NULL) {
        const char *key = o->key != NULL ? o->key : o->cert;
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
            setup_error("cannot load --cert %s", o->cert);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            setup_error("cannot load --key %s, or it does not match --cert", key);
            goto fail;
        }
    }
    if (o->ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
            setup_error("cannot load --ca %s", o->ca);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
        int ok;
        if (o->verify_name_is_ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, o->verify_name);
        } else {
            ok = X509_VERIFY_PARAM_set1_host(param, o->verify_name, strlen(o->verify_name));
        }
        if (ok != 1) {
            setup_error("cannot set the name to verify (%s)", o->verify_name);
            goto fail;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->mode == GB_MODE_RESUME) {
        gb_tls_enable_resume(ctx);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return ctx;
fail:
    print_ssl_errors();
    SSL_CTX_free(ctx);
    return NULL;
}

/* Enough descriptors for every connection plus a margin; as root the hard
 * limit is raised too (the 10,000 idle connection test). */
static GB_WUR int raise_nofile(int conns, int threads)
{
    rlim_t need = (rlim_t)conns + (rlim_t)threads * 2 + 64;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return setup_error("getrlimit: %s", strerror(errno));
    }
    if (rl.rlim_cur >= need) {
        return 0;
    }
    if (rl.rlim_max >= need) {
        rl.rlim_cur = need;
    } else {
        rl.rlim_cur = need;
        rl.rlim_max = need;
    }
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return setup_error("need %llu descriptors for %d connections, RLIMIT_NOFILE: %s",
                           (unsigned long long)need, conns, strerror(errno));
    }
    return 0;
}

struct thread_arg {
    struct gb_run *run;
    int id;
    int n;
    struct gb_worker_result res;
    int rc;
    char msg[256];
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    a->rc = gb_worker_run(a->run, a->id, a->n, &a->res, a->msg, sizeof(a->msg));
    return NULL;
}

static void report(const struct gb_opts *o, const struct gb_stats *s, double secs)
{
    const struct gb_hist *l = &s->lat;
    uint64_t errors = 0;
    uint64_t cls[6] = {0};
    double rps = secs > 0 ? (double)s->reqs / secs : 0.0;
    double resumed = s->handshakes > 0 ? 100.0 * (double)s->resumed / (double)s->handshakes : 0.0;
    uint64_t p50 = gb_hist_quantile(l, 0.50);
    uint64_t p90 = gb_hist_quantile(l, 0.90);
    uint64_t p99 = gb_hist_quantile(l, 0.99);
    uint64_t p999 = gb_hist_quantile(l, 0.999);
    uint64_t mean = l->count > 0 ? l->sum / l->count : 0;

    for (int k = 0; k < GB_E_COUNT; k++) {
        errors += s->err[k];
    }
    for (int c = 100; c < 600; c++) {
        cls[c / 100] += s->status[c];
    }
    printf("gatehouse-bench %s: %s %s label=%s conns=%d threads=%d\n", GB_VERSION,
           gb_mode_name(o->mode), o->url, o->label, o->conns, o->threads);
    printf("  window       %.2f s (warmup %.1f s)\n", secs, o->warmup);
    printf("  requests     %llu  (%.1f req/s)\n", (unsigned long long)s->reqs, rps);
    printf("  latency us   p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  (min %llu mean %llu max "
           "%llu)\n",
           (unsigned long long)p50, (unsigned long long)p90, (unsigned long long)p99,
           (unsigned long long)p999, (unsigned long long)(l->count > 0 ? l->min : 0),
           (unsigned long long)mean, (unsigned long long)l->max);
    printf("  status      ");
    int any = 0;
    for (int c = 100; c < 600; c++) {
        if (s->status[c] > 0) {
            printf(" %d:%llu", c, (unsigned long long)s->status[c]);
            any = 1;
        }
    }
    printf("%s\n", any ? "" : " none");
    if (o->expect_status != 0) {
        printf("  expected     %d, other status: %llu\n", o->expect_status,
               (unsigned long long)s->mismatched);
    }
    printf("  errors       %llu\n", (unsigned long long)errors);
    for (int k = 0; k < GB_E_COUNT; k++) {
        if (s->err[k] > 0) {
            printf("    %-14s %llu  first: %s\n", gb_err_name((enum gb_errkind)k),
                   (unsigned long long)s->err[k], s->err_first[k]);
        }
    }
    printf("  unfinished   %llu (in flight when the run ended; not counted)\n",
           (unsigned long long)s->unfinished);
    printf("  bytes        read %llu  written %llu\n", (unsigned long long)s->bytes_in,
           (unsigned long long)s->bytes_out);
    printf("  connections  connects %llu  handshakes %llu  resumed %llu (%.1f %%)  server closes "
           "%llu\n",
           (unsigned long long)s->connects, (unsigned long long)s->handshakes,
           (unsigned long long)s->resumed, resumed, (unsigned long long)s->server_closes);
    printf("  connect us   p50 %llu  p99 %llu  (TCP connect + TLS handshake)\n",
           (unsigned long long)gb_hist_quantile(&s->hs, 0.5),
           (unsigned long long)gb_hist_quantile(&s->hs, 0.99));
    if (o->mode == GB_MODE_IDLE) {
        printf("  idle         %llu of %d connections still open at the end\n",
               (unsigned long long)s->idle_open, o->conns);
    }
    printf("RESULT label=%s mode=%s conns=%d threads=%d secs=%.3f reqs=%llu rps=%.1f p50_us=%llu "
           "p90_us=%llu p99_us=%llu p999_us=%llu max_us=%llu mean_us=%llu errors=%llu",
           o->label, gb_mode_name(o->mode), o->conns, o->threads, secs, (unsigned long long)s->reqs,
           rps, (unsigned long long)p50, (unsigned long long)p90, (unsigned long long)p99,
           (unsigned long long)p999, (unsigned long long)l->max, (unsigned long long)mean,
           (unsigned long long)errors);
    for (int k = 0; k < GB_E_COUNT; k++) {
        printf(" err_%s=%llu", gb_err_name((enum gb_errkind)k), (unsigned long long)s->err[k]);
    }
    printf(" status_2xx=%llu status_3xx=%llu status_4xx=%llu status_5xx=%llu mismatched=%llu "
           "bytes_in=%llu bytes_out=%llu connects=%llu handshakes=%llu resumed_pct=%.1f "
           "hs_p50_us=%llu idle_open=%llu unfinished=%llu\n",
           (unsigned long long)cls[2], (unsigned long long)cls[3], (unsigned long long)cls[4],
           (unsigned long long)cls[5], (unsigned long long)s->mismatched,
           (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
           (unsigned long long)s->connects, (unsigned long long)s->handshakes, resumed,
           (unsigned long long)gb_hist_quantile(&s->hs, 0.5), (unsigned long long)s->idle_open,
           (unsigned long long)s->unfinished);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int code = EXIT_SETUP;
    struct gb_opts *o = calloc(1, sizeof(*o));
    struct gb_run run = {0};
    struct thread_arg *ta = NULL;
    struct gb_stats *total = NULL;
    char *req = NULL;
    char msg[256];
    int started = 0;

    if (o == NULL) {
        setup_error("out of memory");
        goto out;
    }
    if (parse_args(o, argc, argv) != 0 || resolve(o) != 0) {
        goto out;
    }
    if (gb_request_build(o, &req, &run.req_len, msg, sizeof(msg)) != 0) {
        setup_error("%s", msg);
        goto out;
    }
    run.o = o;
    run.req = req;
    run.no_body_expected = strcmp(o->method, "HEAD") == 0;
    run.interrupted = &g_interrupted;
    if (o->tls) {
        run.ctx = tls_setup(o);
        if (run.ctx == NULL) {
            goto out;
        }
    }
    if (raise_nofile(o->conns, o->threads) != 0) {
        goto out;
    }
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ta = calloc((size_t)o->threads, sizeof(*ta));
    total = calloc(1, sizeof(*total));
    if (ta == NULL || total == NULL) {
        setup_error("out of memory");
        goto out;
    }
    run.t0 = gb_now_ns();
    run.t_measure = run.t0 + (uint64_t)(o->warmup * 1e9);
    run.t_end = run.t_measure + (uint64_t)(o->secs * 1e9);
    run.t_hard = run.t_end + (uint64_t)(HARD_EXTRA_S * 1e9);
    if (o->mode == GB_MODE_IDLE) {
        run.t_hard += (uint64_t)(IDLE_OPEN_S * 1e9);
        atomic_store(&run.idle_pending, o->conns);
    }
    int base = o->conns / o->threads;
    int extra = o->conns % o->threads;
    pthread_t tids[64];
    for (int i = 0; i < o->threads; i++) {
        ta[i].run = &run;
        ta[i].id = i;
        ta[i].n = base + (i < extra ? 1 : 0);
        if (pthread_create(&tids[i], NULL, thread_main, &ta[i]) != 0) {
            setup_error("cannot start thread %d", i);
            g_interrupted = 1;
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    if (started < o->threads) {
        goto out;
    }
    gb_stats_reset(total);
    uint64_t t_last = run.t_measure;
    for (int i = 0; i < o->threads; i++) {
        if (ta[i].rc != 0) {
            setup_error("%s", ta[i].msg);
            goto out;
        }
        gb_stats_merge(total, &ta[i].res.st);
        if (ta[i].res.t_finish > t_last) {
            t_last = ta[i].res.t_finish;
        }
    }
    if (o->mode != GB_MODE_IDLE && t_last > run.t_end) {
        t_last = run.t_end;
    }
    report(o, total, (double)(t_last - run.t_measure) / 1e9);
    code = EXIT_RAN;
    if (o->expect_status != 0) {
        uint64_t errors = 0;
        for (int k = 0; k < GB_E_COUNT; k++) {
            errors += total->err[k];
        }
        if (errors > 0 || total->mismatched > 0 || total->reqs == 0) {
            code = EXIT_EXPECT;
        }
    }
out:
    if (run.ctx != NULL) {
        SSL_CTX_free(run.ctx);
    }
    if (req != NULL) {
        OPENSSL_cleanse(req, run.req_len);
    }
    free(req);
    free(ta);
    free(total);
    if (o != NULL && o->header_file_line != NULL) {
        OPENSSL_cleanse(o->header_file_line, strlen(o->header_file_line)); /* bearer token */
        free(o->header_file_line);
    }
    free(o);
    return code;
}
