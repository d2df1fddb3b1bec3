/*
 * demo.c: `gatehouse demo` -- the newcomer's five minutes, in one process.
 *
 * It prepares DIR (a demo PKI generated in C, a config, a policy, the
 * gateway's assertion key), starts the development issuer (HTTPS, port
 * N+1) and the demo app (HTTP, port N+2) on threads of their own, prints the
 * commands to try, and then runs the real gateway with gw_serve() on the
 * main thread, exactly as `gatehouse serve -c DIR/gatehouse.yaml` would.
 * When gw_serve returns (SIGINT/SIGTERM drained it), the two helper servers
 * are stopped and joined.
 *
 * Why one process: one command to start, one Ctrl-C to stop, nothing left
 * running. Why the gateway part is plain gw_serve: the demo must show the
 * product, not a special mode of it -- the only demo-specific pieces are
 * the issuer and the app, and those are never reachable from `serve`.
 *
 * The helper threads are created with SIGINT/SIGTERM/SIGHUP blocked, so the
 * signals always reach the gateway's control loop (libevent's handlers),
 * whichever thread the kernel picks.
 */
#include "gateway/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authz/assertion.h"
#include "db/state.h"
#include "gateway/base/log.h"
#include "gateway/base/util.h"
#include "gateway/demoapp.h"
#include "gateway/demopki.h"
#include "gateway/devissuer.h"
#include "gateway/server.h"

#define DEMO_PATH_MAX 4096
#define DEMO_SOCK_MAX 100 /* sun_path holds 108 bytes; keep a margin */
#define DEMO_DEFAULT_PORT 8443
#define DEMO_ISS "gatehouse-demo" /* server.name: the assertion's iss */
#define DEMO_ROUTE "demo"
#define DEMO_AUDIENCE "gatehouse"

struct demo {
    char dir[DEMO_PATH_MAX];
    int port;
    char self[DEMO_PATH_MAX]; /* this gatehouse binary */
    char ctl[DEMO_PATH_MAX];  /* gatehousectl, as the banner should name it */
};

static int usage(void)
{
    fprintf(stderr,
            "usage: gatehouse demo [--dir DIR] [--port N]\n"
            "  Runs a self-contained, DEVELOPMENT-ONLY demo in one process: the gateway on\n"
            "  127.0.0.1:N (default %d), a development issuer on N+1, the demo app on N+2,\n"
            "  the remote admin API on N+3. DIR (default ./gatehouse-demo) holds the demo\n"
            "  PKI, gatehouse.yaml, policy.yaml and the decision log; it is reused when it\n"
            "  exists. Ctrl-C stops everything.\n",
            DEMO_DEFAULT_PORT);
    return 2;
}

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
    int k = snprintf(out, len, "%s/%s", dir, name);
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

static int parse_args(int argc, char **argv, struct demo *d, const char **dir_arg)
{
    *dir_arg = "gatehouse-demo";
    d->port = DEMO_DEFAULT_PORT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return -1;
        }
        if (strncmp(a, "--dir=", 6) == 0 || strncmp(a, "--port=", 7) == 0) {
            val = strchr(a, '=') + 1;
        } else if ((strcmp(a, "--dir") == 0 || strcmp(a, "--port") == 0) && i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "gatehouse demo: unknown argument '%s'\n", a);
            return -1;
        }
        if (strncmp(a, "--dir", 5) == 0) {
            if (val[0] == '\0') {
                fprintf(stderr, "gatehouse demo: --dir needs a directory\n");
                return -1;
            }
            *dir_arg = val;
        } else {
            char *end = NULL;
            errno = 0;
            long p = strtol(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0' || p < 1 || p > 65532) {
                fprintf(stderr, "gatehouse demo: --port must be 1..65532 (it uses N..N+3)\n");
                return -1;
            }
            d->port = (int)p;
        }
    }
    return 0;
}

/* Make dir_arg an absolute, existing directory in d->dir. */
static int prepare_dir(struct demo *d, const char *dir_arg)
{
    if (mkdir(dir_arg, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gatehouse demo: cannot create %s: %s\n", dir_arg, strerror(errno));
        return -1;
    }
    char real[PATH_MAX];
    if (realpath(dir_arg, real) == NULL) {
        fprintf(stderr, "gatehouse demo: %s: %s\n", dir_arg, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "gatehouse demo: %s is not a directory\n", real);
        return -1;
    }
    snprintf(d->dir, sizeof(d->dir), "%s", real);
    if (strlen(d->dir) + sizeof("/gatehouse.sock") > DEMO_SOCK_MAX) {
        fprintf(stderr,
                "gatehouse demo: %s is too long a path for the admin Unix socket "
                "(%s/gatehouse.sock must stay under %d bytes); use a shorter --dir\n",
                d->dir, d->dir, DEMO_SOCK_MAX);
        return -1;
    }
    char state[DEMO_PATH_MAX];
    if (path_join(state, sizeof(state), d->dir, "state") != 0 ||
        (mkdir(state, 0700) != 0 && errno != EEXIST)) {
        fprintf(stderr, "gatehouse demo: cannot create %s/state\n", d->dir);
        return -1;
    }
    return 0;
}

/* Write path through a temporary file + rename (atomic replace). */
static int write_text(const char *path, const char *text, mode_t mode)
{
    char tmp[DEMO_PATH_MAX + 8];
    int k = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (k < 0 || (size_t)k >= sizeof(tmp)) {
        return -1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        return -1;
    }
    size_t len = strlen(text);
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rc != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static const char demo_policy[] =
    "# The demo's policy (docs/POLICY.md). Written once by `gatehouse demo`; edit it\n"
    "# freely: the gateway reloads it on SIGHUP, and `gatehouse demo` never\n"
    "# overwrites it. Default deny: what no rule allows is refused.\n"
    "version: 1\n"
    "rules:\n"
    "  # alice's token says groups: [engineering] (the development issuer's\n"
    "  # user table); bob is in sales, so no rule allows him: 403 policy_no_match.\n"
    "  - id: demo-engineering\n"
    "    description: engineering may use the demo app\n"
    "    effect: allow\n"
    "    routes: [" DEMO_ROUTE "]\n"
    "    methods: [GET, HEAD]\n"
    "    when:\n"
    "      - claim: groups\n"
    "        contains: engineering\n"
    "      - claim: email\n"
    "        suffix: \"@example.com\"\n";

static int write_config(const struct demo *d)
{
    char cfg[4096];
    char path[DEMO_PATH_MAX];
    int p = d->port;
    int k = snprintf(
        cfg, sizeof(cfg),
        "# gatehouse.yaml for `gatehouse demo` -- REWRITTEN ON EVERY START from --dir\n"
        "# and --port (edit policy.yaml instead). Every key: docs/CONFIG.md.\n"
        "#\n"
        "# DEVELOPMENT ONLY: the issuer below is the development issuer that exists\n"
        "# only inside `gatehouse demo` (no config key can enable it in `serve`).\n"
        "# Relative paths are relative to this file's directory.\n"
        "server:\n"
        "  name: " DEMO_ISS "\n"
        "  listen: \"127.0.0.1:%d\"\n"
        "  workers: 2\n"
        "  log_level: info\n"
        "tls:\n"
        "  cert: pki/server.crt\n"
        "  key: pki/server.key\n"
        "  client_ca: pki/client-ca.crt        # alice and bob's device certificates\n"
        "issuer:\n"
        "  url: https://127.0.0.1:%d           # the development issuer\n"
        "  audiences: [" DEMO_AUDIENCE "]\n"
        "  ca: pki/server-ca.crt\n"
        "  cert: pki/gateway-client.crt        # the issuer requires a client certificate\n"
        "  key: pki/gateway-client.key\n"
        "  jwks_refresh: 60\n"
        "  jwks_min_refresh: 1\n"
        "policy: policy.yaml\n"
        "assertion:\n"
        "  key: state/assertion.key            # signs X-Gatehouse-Assertion for the app\n"
        "  ttl: 60\n"
        "routes:\n"
        "  - id: " DEMO_ROUTE "\n"
        "    host: \"*\"\n"
        "    path_prefix: /\n"
        "    upstream:\n"
        "      url: http://127.0.0.1:%d         # the demo app\n"
        "decision_log:\n"
        "  path: gatehouse.db\n"
        "  mode: strict\n"
        "admin:\n"
        "  socket: gatehouse.sock              # gatehousectl --socket DIR/gatehouse.sock\n"
        "  listen: \"127.0.0.1:%d\"             # remote admin API: mTLS with pki/admin.crt\n"
        "  client_ca: pki/admin-ca.crt\n"
        "  allowed_subjects: [\"CN=admin\"]\n",
        p, p + 1, p + 2, p + 3);
    if (k < 0 || (size_t)k >= sizeof(cfg) ||
        path_join(path, sizeof(path), d->dir, "gatehouse.yaml") != 0 ||
        write_text(path, cfg, 0600) != 0) {
        fprintf(stderr, "gatehouse demo: cannot write %s/gatehouse.yaml\n", d->dir);
        return -1;
    }
    if (path_join(path, sizeof(path), d->dir, "policy.yaml") != 0) {
        return -1;
    }
    if (access(path, F_OK) != 0 && write_text(path, demo_policy, 0644) != 0) {
        fprintf(stderr, "gatehouse demo: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* 1 if nothing listens on 127.0.0.1:port (checked by binding it once), so
 * a taken port is reported before the banner promises commands that would
 * reach someone else's server. */
static int port_free(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 1; /* cannot tell; gw_serve reports the real error */
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Where this binary and gatehousectl live, for copy-pastable commands. */
static void find_binaries(struct demo *d)
{
    snprintf(d->self, sizeof(d->self), "gatehouse");
    snprintf(d->ctl, sizeof(d->ctl), "gatehousectl");
    char exe[DEMO_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        return;
    }
    exe[n] = '\0';
    snprintf(d->self, sizeof(d->self), "%s", exe);
    char *slash = strrchr(exe, '/');
    if (slash == NULL) {
        return;
    }
    *slash = '\0';
    char cand[DEMO_PATH_MAX];
    /* The build tree (build/gateway/gatehouse, build/tui/gatehousectl) or
     * an installed bin/ directory holding both. */
    static const char *const rel[] = {"../tui/gatehousectl", "gatehousectl"};
    for (size_t i = 0; i < 2; i++) {
        if (path_join(cand, sizeof(cand), exe, rel[i]) == 0 && access(cand, X_OK) == 0) {
            char real[PATH_MAX];
            if (realpath(cand, real) != NULL) {
                snprintf(d->ctl, sizeof(d->ctl), "%s", real);
            }
            return;
        }
    }
}

/* A shell word for s: as is when it is plainly safe, else single-quoted. */
static const char *shq(const char *s, char *buf, size_t len)
{
    int plain = s[0] != '\0';
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("/._-+:,=@", *p) != NULL)) {
            plain = 0;
        }
    }
    if (plain) {
        snprintf(buf, len, "%s", s);
        return buf;
    }
    size_t o = 0;
    if (len < 3) {
        return "''";
    }
    buf[o++] = '\'';
    for (const char *p = s; *p && o + 6 < len; p++) {
        if (*p == '\'') {
            memcpy(buf + o, "'\\''", 4);
            o += 4;
        } else {
            buf[o++] = *p;
        }
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

static int count_revocation(void *arg, const struct db_revocation *r)
{
    int *n = arg;
    if (*n == 0) {
        fprintf(stdout,
                "note: revocations from an earlier run are still in force (the database in\n"
                "      the demo directory is kept), for example: %s %s.\n"
                "      Lift them with gatehousectl, or stop the demo and delete gatehouse.db.\n\n",
                db_revocation_kind_name(r->kind), r->target);
    }
    (*n)++;
    return 0;
}

static void print_banner(const struct demo *d)
{
    /* d->dir is short (prepare_dir keeps it under DEMO_SOCK_MAX); the sizes
     * here just make every snprintf provably fit. */
    char pki[DEMO_PATH_MAX + 32];
    char sock[DEMO_PATH_MAX + 32];
    char db[DEMO_PATH_MAX + 32];
    char q[5][2 * DEMO_PATH_MAX];
    snprintf(pki, sizeof(pki), "%s/pki", d->dir);
    snprintf(sock, sizeof(sock), "%s/gatehouse.sock", d->dir);
    snprintf(db, sizeof(db), "%s/gatehouse.db", d->dir);
    const char *P = shq(pki, q[0], sizeof(q[0]));
    const char *S = shq(sock, q[1], sizeof(q[1]));
    const char *CTL = shq(d->ctl, q[2], sizeof(q[2]));
    const char *SELF = shq(d->self, q[3], sizeof(q[3]));
    const char *DB = shq(db, q[4], sizeof(q[4]));
    int gw = d->port, iss = d->port + 1, app = d->port + 2;

    printf("\n"
           "gatehouse demo -- DEVELOPMENT ONLY. The demo PKI's keys sit next to its\n"
           "certificates and the development issuer gives a token to anyone holding a demo\n"
           "client certificate. Never use this setup for real traffic.\n\n");
    printf("  directory     %s  (reused on the next run)\n", d->dir);
    printf("  gateway       https://127.0.0.1:%d   mTLS + bound token + policy\n", gw);
    printf("  dev issuer    https://127.0.0.1:%d   discovery, JWKS, POST /token\n", iss);
    printf("  demo app      http://127.0.0.1:%d    loopback only: go through the gateway\n", app);
    printf("  admin socket  %s\n\n", sock);
    printf("Try it from another terminal:\n\n");
    printf(
        "  # 1. a token for alice, bound to alice's certificate (RFC 8705)\n"
        "  TOKEN=$(curl -sS --cacert %s/server-ca.crt --cert %s/alice.crt --key %s/alice.key \\\n"
        "      -d grant_type=client_credentials https://127.0.0.1:%d/token | cut -d'\"' -f4)\n\n",
        P, P, P, iss);
    printf("  # 2. alice calls the app through the gateway: 200, the app shows who she is\n"
           "  curl -sS -i --cacert %s/server-ca.crt --cert %s/alice.crt --key %s/alice.key \\\n"
           "      -H \"Authorization: Bearer $TOKEN\" https://127.0.0.1:%d/hello\n\n",
           P, P, P, gw);
    printf("  # 3. alice's token from bob's device: 401 (the token is bound to alice's cert)\n"
           "  curl -sS -i --cacert %s/server-ca.crt --cert %s/bob.crt --key %s/bob.key \\\n"
           "      -H \"Authorization: Bearer $TOKEN\" https://127.0.0.1:%d/hello\n\n",
           P, P, P, gw);
    printf("  # 4. the console, and revoking alice from the command line\n"
           "  %s --socket %s\n"
           "  %s --socket %s revoke user alice\n\n",
           CTL, S, CTL, S);
    printf("  # 5. the call from step 2 again: now 401\n\n");
    printf("  # the admin API over mTLS, with the admin certificate (a CA of its own)\n"
           "  %s --connect 127.0.0.1:%d --cert %s/admin.crt --key %s/admin.key \\\n"
           "      --ca %s/server-ca.crt stats\n\n",
           CTL, d->port + 3, P, P, P);
    printf("  # every decision, allow and deny, is in the log\n"
           "  %s decisions --db %s --limit 5\n\n",
           SELF, DB);
    printf("Ctrl-C stops everything; `gatehouse demo` again reuses %s.\n\n", d->dir);
    fflush(stdout);
}

int gw_demo_main(int argc, char **argv)
{
    struct demo d;
    const char *dir_arg = NULL;
    struct gh_err err = {0};
    struct gw_devissuer *iss = NULL;
    struct gw_demoapp *app = NULL;
    struct az_signer *signer = NULL;
    int rc = 1;
    char path[DEMO_PATH_MAX], cfg[DEMO_PATH_MAX], key[DEMO_PATH_MAX], cert[DEMO_PATH_MAX];
    char ca[DEMO_PATH_MAX], sign[DEMO_PATH_MAX];
    sigset_t block, old;
    int masked = 0;

    memset(&d, 0, sizeof(d));
    if (parse_args(argc, argv, &d, &dir_arg) != 0) {
        return usage();
    }
    static const char *const port_use[] = {"the gateway", "the development issuer", "the demo app",
                                           "the remote admin API"};
    for (int i = 0; i < 4; i++) {
        if (!port_free(d.port + i)) {
            fprintf(stderr,
                    "gatehouse demo: port %d (%s) is in use on 127.0.0.1 -- is another demo "
                    "running? Pick other ports with --port N (it uses N..N+3).\n",
                    d.port + i, port_use[i]);
            return 1;
        }
    }
    if (prepare_dir(&d, dir_arg) != 0) {
        return 1;
    }
    find_binaries(&d);
    GH_WARN("gatehouse demo: DEVELOPMENT ONLY setup in %s", d.dir);

    int generated = 0;
    if (path_join(path, sizeof(path), d.dir, "pki") != 0 ||
        gw_demopki_ensure(path, &generated, &err) != 0) {
        fprintf(stderr, "gatehouse demo: %s\n", err.msg);
        return 1;
    }
    if (generated > 0) {
        GH_INFO("gatehouse demo: %s: %d files written", path, generated);
    } else {
        GH_INFO("gatehouse demo: %s: all files reused", path);
    }
    if (write_config(&d) != 0) {
        return 1;
    }

    /* The gateway signs X-Gatehouse-Assertion with state/assertion.key; load
     * (or create) it here first, so the app can verify with its public half
     * without a network call. */
    if (path_join(path, sizeof(path), d.dir, "state/assertion.key") != 0) {
        return 1;
    }
    signer = az_signer_load_or_create(path, &err);
    if (signer == NULL) {
        fprintf(stderr, "gatehouse demo: %s\n", err.msg);
        return 1;
    }

    /* A database kept from an earlier run may still hold revocations. */
    if (path_join(path, sizeof(path), d.dir, "gatehouse.db") == 0 && access(path, F_OK) == 0) {
        int n = 0;
        if (db_revocation_list(path, 1, gh_now_us(), count_revocation, &n, &err) != 0) {
            GH_DEBUG("gatehouse demo: cannot list revocations: %s", err.msg);
        }
    }

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &block, &old) == 0) {
        masked = 1;
    }
    if (path_join(cert, sizeof(cert), d.dir, "pki/server.crt") != 0 ||
        path_join(key, sizeof(key), d.dir, "pki/server.key") != 0 ||
        path_join(ca, sizeof(ca), d.dir, "pki/client-ca.crt") != 0 ||
        path_join(sign, sizeof(sign), d.dir, "pki/issuer-signing.key") != 0 ||
        path_join(cfg, sizeof(cfg), d.dir, "gatehouse.yaml") != 0) {
        goto out;
    }
    struct gw_devissuer_opts io = {
        .host = "127.0.0.1",
        .port = d.port + 1,
        .cert_file = cert,
        .key_file = key,
        .client_ca_file = ca,
        .signing_key_file = sign,
        .audience = DEMO_AUDIENCE,
        .token_ttl_s = 600,
    };
    iss = gw_devissuer_start(&io, &err);
    if (iss == NULL) {
        fprintf(stderr, "gatehouse demo: %s\n", err.msg);
        goto out;
    }
    struct gw_demoapp_opts ao = {
        .host = "127.0.0.1",
        .port = d.port + 2,
        .jwks_json = az_signer_jwks(signer),
        .gateway_iss = DEMO_ISS,
        .route_id = DEMO_ROUTE,
    };
    app = gw_demoapp_start(&ao, &err);
    if (app == NULL) {
        fprintf(stderr, "gatehouse demo: demo app: %s\n", err.msg);
        goto out;
    }
    az_signer_free(signer);
    signer = NULL;
    if (masked) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        masked = 0;
    }

    print_banner(&d);
    rc = gw_serve(cfg);
    GH_INFO("gatehouse demo: gateway stopped (exit %d); stopping the issuer and the app", rc);
out:
    if (masked) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    gw_demoapp_stop(app);
    gw_devissuer_stop(iss);
    az_signer_free(signer);
    if (rc == 0) {
        printf("gatehouse demo stopped; %s is kept for the next run.\n", d.dir);
        fflush(stdout);
    }
    return rc;
}
