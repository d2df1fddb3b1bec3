/*
 * test_authz_policy.c: the policy engine (authz/policy.c) and its CLI
 * (authz/policy_cli.c).
 *
 * Identities are built by hand (a struct az_cert_info and a struct az_token
 * with a jansson claims object), never through az_token_verify: the policy
 * engine is tested on its own. Policies are inline YAML so each test shows
 * the rule it exercises; error tests assert the exact file:line:col.
 *
 * Evaluation must not allocate: test_eval_does_not_allocate counts every
 * malloc/calloc/realloc during many evaluations (a malloc interposer in plain
 * builds, the sanitizer allocator hooks under ASan). Plain builds also run the
 * loader under an allocation-failure loop (fail the Nth allocation for N =
 * 1.. until the load succeeds; every failure must be clean and leak-free).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "authz/identity.h"
#include "authz/policy.h"
#include "authz/policy_cli.h"
#include "gateway/base/util.h"


/* ------------------------------------------------------------------------ */
/* Allocation accounting.                                                    */

static volatile long g_allocs; /* allocations while counting */
static volatile int g_counting;

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_OOM_LOOP 0
int __sanitizer_install_malloc_and_free_hooks(void (*mh)(const volatile void *, size_t),
                                              void (*fh)(const volatile void *));
static void count_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (g_counting) {
        g_allocs++;
    }
}
static void count_free_hook(const volatile void *p)
{
    (void)p;
}
static void alloc_hooks_install(void)
{
    static int done;
    if (!done) {
        __sanitizer_install_malloc_and_free_hooks(count_malloc_hook, count_free_hook);
        done = 1;
    }
}
#elif defined(__GLIBC__)
#define HAVE_OOM_LOOP 1
/* glibc supports replacing malloc; these forward to it and count / fail. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static volatile long g_fail_at; /* fail the Nth allocation (1-based), 0 = never */
static volatile long g_live;    /* malloc - free while counting (leak check) */
static volatile int g_in_dladdr;
/* libfyaml 0.7.12 is not safe against its own allocation failures (it leaks
 * in fy_diag_create and dereferences NULL in fy_parser_set_string), so the
 * failure loop only fails allocations requested from outside libfyaml: it
 * tests our handling, not the library's. */
static int from_libfyaml(void *caller)
{
    Dl_info info;
    void *bt[8];
    if (g_in_dladdr) {
        return 1;
    }
    g_in_dladdr = 1;
    /* the direct caller, and a few frames up: libfyaml also allocates
     * through libc helpers (strdup and friends) */
    int n = backtrace(bt, 8);
    int r = 0;
    for (int i = 0; i < n + 1 && !r; i++) {
        void *a = i == 0 ? caller : bt[i - 1];
        r = dladdr(a, &info) != 0 && info.dli_fname != NULL &&
            strstr(info.dli_fname, "libfyaml") != NULL;
    }
    g_in_dladdr = 0;
    return r;
}
static int alloc_should_fail(void *caller)
{
    if (!g_counting) {
        return 0;
    }
    g_allocs++;
    return g_fail_at != 0 && g_allocs >= g_fail_at && !from_libfyaml(caller) &&
           (g_fail_at = -1) == -1;
}
void *malloc(size_t n)
{
    if (alloc_should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __libc_malloc(n);
    if (p != NULL && g_counting) {
        g_live++;
    }
    return p;
}
void *calloc(size_t a, size_t b)
{
    if (alloc_should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __libc_calloc(a, b);
    if (p != NULL && g_counting) {
        g_live++;
    }
    return p;
}
void *realloc(void *old, size_t n)
{
    if (alloc_should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __libc_realloc(old, n);
    if (p != NULL && old == NULL && g_counting) {
        g_live++;
    }
    return p;
}
void free(void *p)
{
    if (p != NULL && g_counting) {
        g_live--;
    }
    __libc_free(p);
}
static void alloc_hooks_install(void)
{
}
#else
#error "test_authz_policy needs glibc or ASan to count allocations"
#endif

/* ------------------------------------------------------------------------ */
/* Fixtures.                                                                 */

struct fx {
    struct az_cert_info ci;
    struct az_token tok;
    struct az_identity id;
    struct sockaddr_storage ss;
    struct az_request_info req;
    json_t *claims;
};

static struct fx F;

static const char *const default_claims =
    "{\"sub\":\"alice\",\"email\":\"alice@example.com\",\"iss\":\"https://idp.example.com\","
    "\"realm_access\":{\"roles\":[\"admin\",\"user\"]},\"email_verified\":true,\"level\":3,"
    "\"amr\":[\"pwd\",\"mfa\"],\"https://example.com/tenant\":\"acme\","
    "\"nested\":{\"list\":[{\"name\":\"x\"},{\"name\":\"y\"}]},\"nullv\":null,"
    "\"desc\":\"the admin user\",\"ratio\":0.5}";

static void set_source(const char *ip)
{
    memset(&F.ss, 0, sizeof(F.ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&F.ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&F.ss;
    if (ip == NULL) {
        F.req.client = NULL;
        return;
    }
    if (inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    F.req.client = (const struct sockaddr *)&F.ss;
}

/* "2026-11-23T10:00" UTC -> epoch seconds (independent of policy.c's math). */
static int64_t at(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *e = strptime(s, "%Y-%m-%dT%H:%M", &tm);
    assert_non_null(e);
    return (int64_t)timegm(&tm);
}

static int fx_setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    snprintf(F.ci.subject, sizeof(F.ci.subject), "CN=alice,O=Example");
    snprintf(F.ci.cn, sizeof(F.ci.cn), "alice");
    snprintf(F.ci.issuer, sizeof(F.ci.issuer), "CN=Device CA,O=Example");
    for (int i = 0; i < 32; i++) {
        F.ci.sha256[i] = (uint8_t)i;
    }
    gh_hex(F.ci.sha256, 32, F.ci.thumbprint_hex);
    gh_b64url_encode(F.ci.sha256, 32, F.ci.thumbprint_b64u);
    static char dns0[] = "alice.example.com", dns1[] = "dev.example.com";
    static char em0[] = "alice@example.com";
    static char uri0[] = "spiffe://example.org/ns/prod/sa/web";
    F.ci.san_dns[0] = dns0;
    F.ci.san_dns[1] = dns1;
    F.ci.n_dns = 2;
    F.ci.san_email[0] = em0;
    F.ci.n_email = 1;
    F.ci.san_uri[0] = uri0;
    F.ci.n_uri = 1;

    json_error_t je;
    F.claims = json_loads(default_claims, 0, &je);
    assert_non_null(F.claims);
    F.tok.refs = 1;
    snprintf(F.tok.sub, sizeof(F.tok.sub), "alice");
    snprintf(F.tok.email, sizeof(F.tok.email), "alice@example.com");
    snprintf(F.tok.iss, sizeof(F.tok.iss), "https://idp.example.com");
    snprintf(F.tok.scope, sizeof(F.tok.scope), "openid profile admin:read");
    snprintf(F.tok.client_id, sizeof(F.tok.client_id), "web-portal");
    snprintf(F.tok.jti, sizeof(F.tok.jti), "j-123");
    snprintf(F.tok.sid, sizeof(F.tok.sid), "s-456");
    static char g0[] = "engineering", g1[] = "ops";
    F.tok.groups[0] = g0;
    F.tok.groups[1] = g1;
    F.tok.n_groups = 2;
    F.tok.claims = F.claims;

    F.id.cert = &F.ci;
    F.id.token = &F.tok;
    F.req.route_id = "wiki";
    F.req.method = "GET";
    F.req.path = "/wiki/page";
    set_source("10.1.2.3");
    F.req.now_s = at("2026-11-23T10:00"); /* a Monday */
    return 0;
}

static int fx_teardown(void **state)
{
    (void)state;
    json_decref(F.claims);
    F.claims = NULL;
    return 0;
}

/* examples/policy.yaml, found from this source file's location. */
static void example_path(char *buf, size_t len)
{
    const char *f = __FILE__;
    const char *slash = strrchr(f, '/');
    int dl = slash != NULL ? (int)(slash - f) : 1;
    snprintf(buf, len, "%.*s/../../examples/policy.yaml", dl, slash != NULL ? f : ".");
}

static struct az_policy *load_ok(const char *yaml)
{
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *p = az_policy_load_buf("t.yaml", yaml, strlen(yaml), &errs);
    if (p == NULL) {
        char buf[4096];
        gh_errlist_format(&errs, buf, sizeof(buf));
        print_error("unexpected load failure:\n%s---\n%s\n", buf, yaml);
    }
    assert_non_null(p);
    assert_int_equal(errs.n, 0);
    return p;
}

/* Load must fail and some error must start with "t.yaml:L:C: " and contain
 * `needle`. Returns the number of errors. */
static int load_fail(const char *yaml, size_t len, int line, int col, const char *needle)
{
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *p = az_policy_load_buf("t.yaml", yaml, len, &errs);
    assert_null(p);
    assert_true(errs.n > 0);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "t.yaml:%d:%d: ", line, col);
    for (int i = 0; i < errs.n; i++) {
        if (strncmp(errs.msg[i], prefix, strlen(prefix)) == 0 && strstr(errs.msg[i], needle)) {
            return errs.n;
        }
    }
    char buf[4096];
    gh_errlist_format(&errs, buf, sizeof(buf));
    print_error("expected error '%s...%s' not found; got:\n%s", prefix, needle, buf);
    fail();
    return 0;
}

#define LOAD_FAIL(yaml, line, col, needle) load_fail((yaml), strlen(yaml), (line), (col), (needle))

static struct az_verdict eval(const struct az_policy *p)
{
    struct az_verdict v;
    char why[8192];
    memset(&v, 0x5a, sizeof(v));
    az_policy_eval(p, &F.id, &F.req, &v, why, sizeof(why));
    /* the explanation never changes the verdict */
    struct az_verdict v2;
    memset(&v2, 0x5a, sizeof(v2));
    az_policy_eval(p, &F.id, &F.req, &v2, NULL, 0);
    assert_int_equal(v.decision, v2.decision);
    assert_int_equal(v.reason, v2.reason);
    assert_string_equal(v.rule_id, v2.rule_id);
    return v;
}

static void expect(const struct az_policy *p, enum gh_decision d, enum gh_reason r,
                   const char *rule)
{
    struct az_verdict v = eval(p);
    if (v.decision != d || v.reason != r || strcmp(v.rule_id, rule) != 0) {
        char why[8192];
        az_policy_eval(p, &F.id, &F.req, &v, why, sizeof(why));
        print_error("want %d/%s/%s, got %d/%s/%s\nwhy:\n%s", d, gh_reason_name(r), rule, v.decision,
                    gh_reason_name(v.reason), v.rule_id, why);
        fail();
    }
}

#define EXPECT_ALLOW(p, rule) expect((p), GH_ALLOW, GH_R_ALLOW, (rule))
#define EXPECT_DENY(p, rule) expect((p), GH_DENY, GH_R_POLICY_DENY, (rule))
#define EXPECT_NO_MATCH(p) expect((p), GH_DENY, GH_R_POLICY_NO_MATCH, "")

/* One allow rule "r" for all routes with a single `when` condition. */
static struct az_policy *one_cond(const char *cond)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [\"*\"]\n"
             "    when:\n      - %s\n",
             cond);
    return load_ok(yaml);
}

/* ------------------------------------------------------------------------ */
/* Operators and fields.                                                     */

struct opcase {
    const char *cond;
    int allow;
};

static const struct opcase opcases[] = {
    /* token fields, single-valued */
    {"{claim: sub, equals: alice}", 1},
    {"{claim: sub, equals: Alice}", 0}, /* case-sensitive */
    {"{claim: sub, equals: alic}", 0},
    {"{claim: email, suffix: \"@example.com\"}", 1},
    {"{claim: email, suffix: \"@example.org\"}", 0},
    {"{claim: email, prefix: \"alice@\"}", 1},
    {"{claim: email, prefix: \"bob@\"}", 0},
    {"{claim: email, contains: \"@example\"}", 1}, /* string: substring */
    {"{claim: email, contains: \"@evil\"}", 0},
    {"{claim: email, glob: \"*@example.com\"}", 1},
    {"{claim: email, glob: \"*@*.org\"}", 0},
    {"{claim: iss, equals: \"https://idp.example.com\"}", 1},
    {"{claim: iss, equals: \"https://idp.example.com/\"}", 0},
    {"{claim: client_id, in: [ci, web-portal]}", 1},
    {"{claim: client_id, in: [ci, mobile]}", 0},
    {"{claim: jti, equals: j-123}", 1},
    {"{claim: jti, equals: j-124}", 0},
    {"{claim: sid, equals: s-456}", 1},
    {"{claim: sid, exists: false}", 0},
    {"{claim: sub, exists: true}", 1},
    {"{claim: sub, exists: false}", 0},
    /* scope: contains means one scope token, never a substring */
    {"{claim: scope, contains: profile}", 1},
    {"{claim: scope, contains: admin:read}", 1},
    {"{claim: scope, contains: admin}", 0},
    {"{claim: scope, contains: \"openid profile\"}", 0},
    {"{claim: scope, equals: openid}", 1}, /* any token equals */
    {"{claim: scope, prefix: \"admin:\"}", 1},
    {"{claim: scope, in: [write, openid]}", 1},
    {"{claim: scope, glob: \"admin:*\"}", 1},
    {"{claim: scope, glob: \"write:*\"}", 0},
    {"{claim: scope, exists: true}", 1},
    /* groups: multi-valued; contains = element equality */
    {"{claim: groups, contains: engineering}", 1},
    {"{claim: groups, contains: engineer}", 0},
    {"{claim: groups, contains: ops}", 1},
    {"{claim: groups, in: [sales, ops]}", 1},
    {"{claim: groups, in: [sales, hr]}", 0},
    {"{claim: groups, prefix: eng}", 1},
    {"{claim: groups, suffix: ring}", 1},
    {"{claim: groups, suffix: xyz}", 0},
    {"{claim: groups, equals: ops}", 1},
    {"{claim: groups, exists: true}", 1},
    {"{claim: groups, exists: false}", 0},
    /* any claim by JSON path */
    {"{claim: \"$.realm_access.roles\", contains: admin}", 1},
    {"{claim: \"realm_access.roles\", contains: admin}", 1},
    {"{claim: \"$.realm_access.roles\", contains: adm}", 0}, /* array: element equality */
    {"{claim: \"$.realm_access.roles[1]\", equals: user}", 1},
    {"{claim: \"$.realm_access.roles[2]\", exists: true}", 0},
    {"{claim: \"$.realm_access.roles[0]\", exists: true}", 1},
    {"{claim: \"$.realm_access\", exists: true}", 1},
    {"{claim: \"$.realm_access\", equals: x}", 0}, /* object: not comparable */
    {"{claim: \"$.missing.deep\", exists: false}", 1},
    {"{claim: \"$.missing\", equals: x}", 0},
    {"{claim: email_verified, equals: \"true\"}", 1}, /* JSON true as text */
    {"{claim: email_verified, equals: true}", 1},
    {"{claim: email_verified, equals: \"false\"}", 0},
    {"{claim: level, equals: 3}", 1}, /* JSON integer as decimal text */
    {"{claim: level, in: [\"1\", \"2\"]}", 0},
    {"{claim: ratio, equals: \"0.5\"}", 0}, /* reals are not comparable */
    {"{claim: ratio, exists: true}", 1},
    {"{claim: nullv, exists: true}", 1},
    {"{claim: nullv, equals: \"null\"}", 0}, /* JSON null is not comparable */
    {"{claim: \"$['https://example.com/tenant']\", equals: acme}", 1},
    {"{claim: \"$[\\\"https://example.com/tenant\\\"]\", equals: acme}", 1},
    {"{claim: \"$.nested.list[1].name\", equals: y}", 1},
    {"{claim: \"$.nested.list[0].name\", equals: y}", 0},
    {"{claim: desc, contains: admin}", 1}, /* string claim: substring */
    {"{claim: desc, contains: root}", 0},
    {"{claim: amr, contains: mfa}", 1},
    {"{claim: amr, contains: otp}", 0},
    {"{claim: \"$.sub\", equals: alice}", 1}, /* raw claim, same value */
    /* certificate fields */
    {"{cert: subject, equals: \"CN=alice,O=Example\"}", 1},
    {"{cert: subject, equals: \"CN=alice\"}", 0},
    {"{cert: subject, contains: \"O=Example\"}", 1},
    {"{cert: cn, equals: alice}", 1},
    {"{cert: cn, in: [bob, carol]}", 0},
    {"{cert: issuer, suffix: \",O=Example\"}", 1},
    {"{cert: issuer, prefix: \"CN=Root\"}", 0},
    {"{cert: thumbprint, equals: "
     "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}",
     1},
    {"{cert: thumbprint, equals: "
     "\"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\"}",
     1},
    {"{cert: thumbprint, equals: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8}", 1},
    {"{cert: thumbprint, in: [AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhA, "
     "\"ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"]}",
     0},
    {"{cert: thumbprint, exists: true}", 1},
    {"{cert: san_dns, contains: dev.example.com}", 1},
    {"{cert: san_dns, contains: example.com}", 0}, /* multi-valued: element equality */
    {"{cert: san_dns, suffix: .example.com}", 1},
    {"{cert: san_dns, glob: \"*.example.com\"}", 1},
    {"{cert: san_dns, glob: \"*.example.org\"}", 0},
    {"{cert: san_email, equals: alice@example.com}", 1},
    {"{cert: san_email, equals: bob@example.com}", 0},
    {"{cert: san_uri, prefix: \"spiffe://example.org/\"}", 1},
    {"{cert: san_uri, prefix: \"spiffe://example.net/\"}", 0},
    {"{cert: san_uri, glob: \"spiffe://example.org/ns/*/sa/web\"}", 1},
    {"{cert: san_uri, glob: \"spiffe://example.org/*/web\"}", 0}, /* * stops at / */
    {"{cert: san_uri, glob: \"spiffe://example.org/**/web\"}", 1},
    {"{cert: san_uri, exists: true}", 1},
    {"{cert: cn, exists: false}", 0},
    /* negation */
    {"{not: {claim: groups, contains: contractors}}", 1},
    {"{not: {claim: groups, contains: ops}}", 0},
    {"{not: {not: {cert: cn, equals: alice}}}", 1},
    /* nested any / all */
    {"{any: [{claim: sub, equals: bob}, {cert: cn, equals: alice}]}", 1},
    {"{any: [{claim: sub, equals: bob}, {cert: cn, equals: carol}]}", 0},
    {"{all: [{claim: sub, equals: alice}, {cert: cn, equals: alice}]}", 1},
    {"{all: [{claim: sub, equals: alice}, {cert: cn, equals: carol}]}", 0},
    {"{token: present}", 1},
    {"{token: absent}", 0},
};

static void test_operators_and_fields(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(opcases) / sizeof(opcases[0]); i++) {
        struct az_policy *p = one_cond(opcases[i].cond);
        struct az_verdict v = eval(p);
        if ((v.decision == GH_ALLOW) != opcases[i].allow) {
            print_error("case %zu: %s: want %s\n", i, opcases[i].cond,
                        opcases[i].allow ? "allow" : "no match");
            fail();
        }
        if (opcases[i].allow) {
            assert_string_equal(v.rule_id, "r");
            assert_int_equal(v.reason, GH_R_ALLOW);
        } else {
            assert_int_equal(v.reason, GH_R_POLICY_NO_MATCH);
            assert_string_equal(v.rule_id, "");
        }
        az_policy_unref(p);
    }
}

static void test_empty_fields_are_absent(void **state)
{
    (void)state;
    F.ci.cn[0] = '\0';
    F.tok.email[0] = '\0';
    F.tok.scope[0] = '\0';
    F.ci.n_uri = 0;
    F.tok.n_groups = 0;
    static const struct opcase cases[] = {
        {"{cert: cn, exists: false}", 1},
        {"{cert: cn, prefix: a}", 0},
        {"{claim: email, exists: false}", 1},
        {"{claim: email, suffix: \"@example.com\"}", 0},
        {"{claim: scope, exists: false}", 1},
        {"{claim: scope, contains: openid}", 0},
        {"{cert: san_uri, exists: false}", 1},
        {"{cert: san_uri, glob: \"**\"}", 0},
        {"{claim: groups, exists: false}", 1},
        {"{not: {claim: groups, contains: contractors}}", 1}, /* token present: definite */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct az_policy *p = one_cond(cases[i].cond);
        struct az_verdict v = eval(p);
        if ((v.decision == GH_ALLOW) != cases[i].allow) {
            print_error("case %zu: %s\n", i, cases[i].cond);
            fail();
        }
        az_policy_unref(p);
    }
    /* JSON strings are compared with their length, not up to a NUL */
    json_object_set_new(F.claims, "nul", json_stringn("adm\0in", 6));
    struct az_policy *p = one_cond("{claim: nul, equals: adm}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
}

/* ------------------------------------------------------------------------ */
/* Combining semantics.                                                      */

static void test_combining(void **state)
{
    (void)state;
    const char *y = "version: 1\n"
                    "rules:\n"
                    "  - id: allow-eng\n"
                    "    effect: allow\n"
                    "    routes: [wiki]\n"
                    "    when: [{claim: groups, contains: engineering}]\n"
                    "  - id: allow-ops\n"
                    "    effect: allow\n"
                    "    routes: [wiki, admin]\n"
                    "    when: [{claim: groups, contains: ops}]\n"
                    "  - id: deny-late\n"
                    "    effect: deny\n"
                    "    routes: [\"*\"]\n"
                    "    when: [{claim: sub, equals: mallory}]\n"
                    "  - id: deny-later\n"
                    "    effect: deny\n"
                    "    routes: [\"*\"]\n"
                    "    when: [{claim: sub, in: [mallory, eve]}]\n";
    struct az_policy *p = load_ok(y);
    assert_int_equal(az_policy_rule_count(p), 4);
    /* both allows match: the first one is reported */
    EXPECT_ALLOW(p, "allow-eng");
    /* route scoping: only allow-ops names admin */
    F.req.route_id = "admin";
    EXPECT_ALLOW(p, "allow-ops");
    /* a route no rule names: no match, default deny */
    F.req.route_id = "billing";
    EXPECT_NO_MATCH(p);
    F.req.route_id = NULL;
    EXPECT_NO_MATCH(p);
    /* a deny listed after matching allows still wins; first deny reported */
    F.req.route_id = "wiki";
    snprintf(F.tok.sub, sizeof(F.tok.sub), "mallory");
    EXPECT_DENY(p, "deny-late");
    snprintf(F.tok.sub, sizeof(F.tok.sub), "eve");
    EXPECT_DENY(p, "deny-later");
    /* no rule matches */
    snprintf(F.tok.sub, sizeof(F.tok.sub), "bob");
    F.tok.n_groups = 0;
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* rule with no conditions at all matches every request of its routes */
    p = load_ok("version: 1\nrules:\n  - {id: open, effect: allow, routes: [wiki]}\n");
    EXPECT_ALLOW(p, "open");
    F.req.route_id = "other";
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* an empty rule list denies everything */
    p = load_ok("version: 1\nrules: []\n");
    EXPECT_NO_MATCH(p);
    assert_int_equal(az_policy_rule_count(p), 0);
    az_policy_unref(p);

    /* when (all) and any must both hold */
    snprintf(F.tok.sub, sizeof(F.tok.sub), "alice");
    p = load_ok("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: \"*\"\n"
                "    when: [{cert: cn, equals: alice}]\n"
                "    any: [{claim: sub, equals: x}, {claim: sub, equals: alice}]\n");
    EXPECT_ALLOW(p, "r");
    snprintf(F.tok.sub, sizeof(F.tok.sub), "bob");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
}

static void test_missing_token_fails_closed(void **state)
{
    (void)state;
    F.id.token = NULL;
    struct az_policy *p;

    /* a claim condition with no token never allows ... */
    p = one_cond("{claim: groups, contains: engineering}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
    /* ... not even negated ... */
    p = one_cond("{not: {claim: groups, contains: contractors}}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
    p = one_cond("{claim: email, exists: false}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
    p = one_cond("{not: {claim: email, exists: true}}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
    p = one_cond("{not: {not: {claim: sub, equals: alice}}}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
    /* ... but a definite certificate fact inside any: still counts */
    p = one_cond("{any: [{claim: sub, equals: alice}, {cert: cn, equals: alice}]}");
    EXPECT_ALLOW(p, "r");
    az_policy_unref(p);
    p = one_cond("{token: absent}");
    EXPECT_ALLOW(p, "r");
    az_policy_unref(p);

    /* a deny rule that depends on a claim applies when there is no token,
     * also when written with not */
    const char *y = "version: 1\n"
                    "rules:\n"
                    "  - id: by-cert\n"
                    "    effect: allow\n"
                    "    routes: [\"*\"]\n"
                    "    when: [{cert: cn, equals: alice}]\n"
                    "  - id: no-contractors\n"
                    "    effect: deny\n"
                    "    routes: [\"*\"]\n"
                    "    when: [{claim: groups, contains: contractors}]\n"
                    "  - id: employees-only\n"
                    "    effect: deny\n"
                    "    routes: [\"*\"]\n"
                    "    when: [{not: {claim: groups, contains: employees}}]\n";
    p = load_ok(y);
    EXPECT_DENY(p, "no-contractors");
    /* with a token, definite answers: employees-only applies (not employee) */
    F.id.token = &F.tok;
    EXPECT_DENY(p, "employees-only");
    static char emp[] = "employees";
    F.tok.groups[2] = emp;
    F.tok.n_groups = 3;
    EXPECT_ALLOW(p, "by-cert");
    az_policy_unref(p);

    /* a deny rule that is definitely false elsewhere does not apply */
    F.id.token = NULL;
    p = load_ok("version: 1\nrules:\n"
                "  - {id: a, effect: allow, routes: [\"*\"], when: [{cert: cn, equals: alice}]}\n"
                "  - {id: d, effect: deny, routes: [\"*\"], methods: [DELETE],\n"
                "     when: [{claim: groups, contains: contractors}]}\n"
                "  - {id: d2, effect: deny, routes: [\"*\"],\n"
                "     when: [{token: present}, {claim: groups, contains: contractors}]}\n");
    EXPECT_ALLOW(p, "a");
    F.req.method = "DELETE";
    EXPECT_DENY(p, "d");
    az_policy_unref(p);

    /* no certificate: cert conditions are unknown too */
    F.id.token = &F.tok;
    F.id.cert = NULL;
    F.req.method = "GET";
    p = one_cond("{cert: cn, equals: alice}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
    p = one_cond("{not: {cert: cn, equals: bob}}");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* a NULL identity is evaluated as "nothing known" */
    p = one_cond("{token: absent}");
    struct az_verdict v;
    az_policy_eval(p, NULL, &F.req, &v, NULL, 0);
    assert_int_equal(v.decision, GH_ALLOW);
    az_policy_unref(p);
    p = one_cond("{not: {cert: cn, equals: bob}}");
    az_policy_eval(p, NULL, &F.req, &v, NULL, 0);
    assert_int_equal(v.decision, GH_DENY);
    az_policy_unref(p);
}

static void test_request_conditions(void **state)
{
    (void)state;
    struct az_policy *p = load_ok("version: 1\nrules:\n"
                                  "  - id: r\n    effect: allow\n    routes: [wiki]\n"
                                  "    methods: [GET, POST]\n");
    EXPECT_ALLOW(p, "r");
    F.req.method = "POST";
    EXPECT_ALLOW(p, "r");
    F.req.method = "DELETE";
    EXPECT_NO_MATCH(p);
    F.req.method = "get"; /* methods are case-sensitive (RFC 9110 9.1) */
    EXPECT_NO_MATCH(p);
    F.req.method = NULL;
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* a deny rule with a method list applies when the method is unknown */
    p = load_ok("version: 1\nrules:\n"
                "  - {id: a, effect: allow, routes: [wiki]}\n"
                "  - {id: d, effect: deny, routes: [wiki], methods: [DELETE]}\n");
    F.req.method = NULL;
    EXPECT_DENY(p, "d");
    F.req.method = "GET";
    EXPECT_ALLOW(p, "a");
    az_policy_unref(p);
}

/* ------------------------------------------------------------------------ */
/* Time windows.                                                             */

static void test_time_windows(void **state)
{
    (void)state;
    struct az_policy *p = load_ok(
        "version: 1\nrules:\n  - id: office\n    effect: allow\n    routes: [\"*\"]\n"
        "    time: {days: [mon, tue, wed, thu, fri], from: \"08:00\", to: \"18:00\", tz: UTC}\n");
    struct {
        const char *t;
        int allow;
    } c1[] = {
        {"2026-11-23T07:59", 0}, {"2026-11-23T08:00", 1}, {"2026-11-23T17:59", 1},
        {"2026-11-23T18:00", 0}, {"2026-11-27T12:00", 1}, /* Friday */
        {"2026-11-28T12:00", 0},                          /* Saturday */
        {"2026-11-29T12:00", 0},                          /* Sunday */
    };
    for (size_t i = 0; i < sizeof(c1) / sizeof(c1[0]); i++) {
        F.req.now_s = at(c1[i].t);
        if ((eval(p).decision == GH_ALLOW) != c1[i].allow) {
            print_error("office window at %s\n", c1[i].t);
            fail();
        }
    }
    az_policy_unref(p);

    /* fixed offsets shift both the hour and the day */
    p = load_ok("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [\"*\"]\n"
                "    time: {days: [mon], from: \"08:00\", to: \"18:00\", tz: \"+02:00\"}\n");
    F.req.now_s = at("2026-11-23T06:00"); /* 08:00 local Monday */
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("2026-11-23T05:59");
    EXPECT_NO_MATCH(p);
    F.req.now_s = at("2026-11-23T16:00"); /* 18:00 local */
    EXPECT_NO_MATCH(p);
    F.req.now_s = at("2026-11-22T23:00"); /* Sunday UTC, Monday 01:00 local */
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    p = load_ok("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [\"*\"]\n"
                "    time: {days: [mon], tz: \"-05:30\"}\n");
    F.req.now_s = at("2026-11-23T05:29"); /* Sunday 23:59 local */
    EXPECT_NO_MATCH(p);
    F.req.now_s = at("2026-11-23T05:30"); /* Monday 00:00 local */
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("2026-11-24T05:29"); /* Monday 23:59 local */
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("2026-11-24T05:30");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* crossing midnight: starts Friday 22:00, ends Saturday 06:00 */
    p = load_ok("version: 1\nrules:\n  - id: night\n    effect: allow\n    routes: [\"*\"]\n"
                "    time: {days: [fri], from: \"22:00\", to: \"06:00\"}\n");
    struct {
        const char *t;
        int allow;
    } c2[] = {
        {"2026-11-27T21:59", 0}, {"2026-11-27T22:00", 1}, {"2026-11-27T23:59", 1},
        {"2026-11-28T00:00", 1}, {"2026-11-28T05:59", 1}, {"2026-11-28T06:00", 0},
        {"2026-11-27T05:00", 0}, /* Friday early: belongs to Thursday's night */
        {"2026-11-28T22:30", 0}, /* Saturday night: not listed */
    };
    for (size_t i = 0; i < sizeof(c2) / sizeof(c2[0]); i++) {
        F.req.now_s = at(c2[i].t);
        if ((eval(p).decision == GH_ALLOW) != c2[i].allow) {
            print_error("night window at %s\n", c2[i].t);
            fail();
        }
    }
    az_policy_unref(p);

    /* every day, up to 24:00; several windows = any of them; pre-1970 times */
    p = load_ok("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [\"*\"]\n"
                "    time:\n      - {from: \"20:00\", to: \"24:00\"}\n"
                "      - {days: [sun], from: \"00:00\", to: \"01:00\"}\n");
    F.req.now_s = at("2026-11-25T23:59");
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("2026-11-26T00:00");
    EXPECT_NO_MATCH(p);
    F.req.now_s = at("2026-11-29T00:30"); /* Sunday */
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("1969-12-31T23:00"); /* negative epoch, Wednesday */
    assert_true(F.req.now_s < 0);
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("1969-12-31T19:00");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    p = load_ok("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [\"*\"]\n"
                "    time: {days: [wed]}\n");
    F.req.now_s = at("1969-12-31T00:00");
    EXPECT_ALLOW(p, "r");
    F.req.now_s = at("1970-01-01T00:00"); /* Thursday */
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
}

/* ------------------------------------------------------------------------ */
/* Source CIDRs.                                                             */

static void test_sources(void **state)
{
    (void)state;
    struct az_policy *p = load_ok(
        "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [\"*\"]\n"
        "    sources: [\"10.0.0.0/8\", \"192.168.4.0/23\", \"203.0.113.7\", \"2001:db8::/32\",\n"
        "              \"::1/128\", \"::ffff:172.16.0.0/108\"]\n");
    struct {
        const char *ip;
        int allow;
    } c[] = {
        {"10.0.0.0", 1},    {"10.255.255.255", 1},
        {"11.0.0.1", 0},    {"9.255.255.255", 0},
        {"192.168.4.1", 1}, {"192.168.5.254", 1},
        {"192.168.6.0", 0}, {"192.168.3.255", 0},
        {"203.0.113.7", 1}, {"203.0.113.8", 0},
        {"2001:db8::1", 1}, {"2001:db8:ffff:ffff::1", 1},
        {"2001:db9::1", 0}, {"::1", 1},
        {"::2", 0},         {"::ffff:10.1.2.3", 1}, /* v4-mapped client */
        {"172.16.5.5", 1},                          /* v4-mapped policy network */
        {"172.32.0.1", 0},  {"fe80::1", 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        set_source(c[i].ip);
        if ((eval(p).decision == GH_ALLOW) != c[i].allow) {
            print_error("source %s\n", c[i].ip);
            fail();
        }
    }
    /* unknown client address: an allow with sources cannot match */
    set_source(NULL);
    EXPECT_NO_MATCH(p);
    struct sockaddr_storage unix_sa;
    memset(&unix_sa, 0, sizeof(unix_sa));
    unix_sa.ss_family = AF_UNIX;
    F.req.client = (const struct sockaddr *)&unix_sa;
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* /0 matches its whole family, not the other one */
    p = load_ok("version: 1\nrules:\n  - {id: r, effect: allow, routes: [\"*\"],"
                " sources: [\"0.0.0.0/0\"]}\n");
    set_source("198.51.100.1");
    EXPECT_ALLOW(p, "r");
    set_source("2001:db8::1");
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);

    /* a deny rule with sources applies when the address is unknown */
    p = load_ok("version: 1\nrules:\n  - {id: a, effect: allow, routes: [\"*\"]}\n"
                "  - {id: d, effect: deny, routes: [\"*\"], sources: [\"10.0.0.0/8\"]}\n");
    set_source("192.0.2.1");
    EXPECT_ALLOW(p, "a");
    set_source("10.9.9.9");
    EXPECT_DENY(p, "d");
    set_source(NULL);
    EXPECT_DENY(p, "d");
    az_policy_unref(p);
}

/* ------------------------------------------------------------------------ */
/* Path globs.                                                               */

static void test_path_globs(void **state)
{
    (void)state;
    struct {
        const char *glob;
        const char *path;
        int match;
    } c[] = {
        {"/wiki/*", "/wiki/a", 1},
        {"/wiki/*", "/wiki/a/b", 0},
        {"/wiki/*", "/wiki/", 1}, /* * may be empty */
        {"/wiki/*", "/wiki", 0},
        {"/wiki/**", "/wiki/", 1},
        {"/wiki/**", "/wiki/a/b/c", 1},
        {"/wiki/**", "/wiki", 0},
        {"/wiki/**", "/wikipedia", 0},
        {"/wiki", "/wiki", 1},
        {"/wiki", "/wiki/", 0},
        {"/a/*/c", "/a/b/c", 1},
        {"/a/*/c", "/a/b/x/c", 0},
        {"/a/**/c", "/a/b/x/c", 1},
        {"/a/**/c", "/a/c", 0}, /* the two slashes are literal */
        {"/a/**c", "/a/c", 1},
        {"/files/*.pdf", "/files/x.pdf", 1},
        {"/files/*.pdf", "/files/dir/x.pdf", 0},
        {"/files/**.pdf", "/files/dir/x.pdf", 1},
        {"/v?/x", "/v1/x", 1},
        {"/v?/x", "/v12/x", 0},
        {"/v?/x", "/v//x", 0},
        {"/lit/\\*", "/lit/*", 1},
        {"/lit/\\*", "/lit/x", 0},
        {"/**", "/anything/at/all", 1},
        {"/*", "/", 1},
        {"/deploy/*", "/deploy/app1", 1},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "version: 1\nrules:\n  - {id: r, effect: allow, routes: [\"*\"], paths: ['%s']}\n",
                 c[i].glob);
        struct az_policy *p = load_ok(yaml);
        F.req.path = c[i].path;
        if ((eval(p).decision == GH_ALLOW) != c[i].match) {
            print_error("glob %s vs %s: want %d\n", c[i].glob, c[i].path, c[i].match);
            fail();
        }
        az_policy_unref(p);
    }
}

static void test_noncanonical_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "/wiki/../admin",
        "/wiki/./page",
        "/wiki/..",
        "//wiki/page",
        "/wiki//page",
        "/wiki/%2e%2e/x",
        "/wiki/%2E/x",
        "/wiki%2fpage",
        "/wiki%5cpage",
        "/wiki;x/page",
        "/wiki\\page",
        "wiki/page",
        "",
        "/wiki/%252e",
        "/%61dmin/users",  /* encoded unreserved: "/admin/users" to a decoding upstream */
        "/adm%69n",
        "/wiki/%7E",
    };
    struct az_policy *p =
        load_ok("version: 1\nrules:\n"
                "  - {id: a, effect: allow, routes: [\"*\"], paths: [\"/**\"]}\n");
    struct az_policy *d =
        load_ok("version: 1\nrules:\n"
                "  - {id: a, effect: allow, routes: [\"*\"]}\n"
                "  - {id: d, effect: deny, routes: [\"*\"], paths: [\"/admin/**\"]}\n");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        F.req.path = bad[i];
        if (eval(p).decision != GH_DENY) {
            print_error("non-canonical path allowed: %s\n", bad[i]);
            fail();
        }
        /* and a path-scoped deny applies (fail closed) */
        EXPECT_DENY(d, "d");
    }
    F.req.path = NULL;
    EXPECT_NO_MATCH(p);
    EXPECT_DENY(d, "d");
    /* ordinary dots in names are fine */
    F.req.path = "/wiki/a.b/..c/.d";
    EXPECT_ALLOW(p, "a");
    EXPECT_ALLOW(d, "a");
    F.req.path = "/wiki/100%25";
    EXPECT_NO_MATCH(p); /* encoded '%' (double encoding) is not canonical */
    /* reserved and non-ASCII octets stay encoded: canonical */
    F.req.path = "/wiki/a%20b/%C3%A9t%C3%A9/%3A";
    EXPECT_ALLOW(p, "a");
    az_policy_unref(p);
    az_policy_unref(d);
}

static void test_glob_is_linear(void **state)
{
    (void)state;
    /* a pattern that makes backtracking matchers exponential */
    struct az_policy *p = load_ok("version: 1\nrules:\n  - {id: r, effect: allow, routes: [\"*\"],"
                                  " paths: [\"/**a**a**a**a**a**a**a**a**a**a**b\"]}\n");
    static char path[8192];
    path[0] = '/';
    memset(path + 1, 'a', sizeof(path) - 2);
    path[sizeof(path) - 1] = '\0';
    F.req.path = path;
    clock_t t0 = clock();
    for (int i = 0; i < 10; i++) {
        EXPECT_NO_MATCH(p);
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 5.0);
    path[sizeof(path) - 2] = 'b';
    EXPECT_ALLOW(p, "r");
    az_policy_unref(p);
}

/* ------------------------------------------------------------------------ */
/* Load errors: each names file:line:col.                                    */

static void test_errors_line_col(void **state)
{
    (void)state;
    /* unknown key (a typo must not silently drop a condition) */
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    whne:\n      - {claim: sub, equals: x}\n",
              6, 5, "unknown key 'whne' in rule");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - claim: groups\n        contians: ops\n",
              8, 9, "unknown key 'contians' in condition");
    LOAD_FAIL("version: 1\nrulez: []\n", 2, 1, "unknown key 'rulez' in policy");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time: {days: [mon], form: \"08:00\"}\n",
              6, 25, "unknown key 'form' in time window");
    /* bad CIDR */
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    sources: [\"10.0.0.0/8\", \"10.0.0.256/32\"]\n",
              6, 29, "not an IP address or CIDR");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [wiki],"
              " sources: [10.1.0.0/8]}\n",
              3, 54, "host bits set");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [wiki],"
              " sources: [\"10.0.0.0/33\"]}\n",
              3, 54, "prefix length 33 too long");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [wiki],"
              " sources: [\"2001:db8::/0129\"]}\n",
              3, 54, "bad prefix length");
    /* bad time */
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time:\n      from: \"8:00\"\n      to: \"18:00\"\n",
              7, 13, "time.from: expected \"HH:MM\"");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time:\n      from: \"08:00\"\n      to: \"24:01\"\n",
              8, 11, "time.to");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time: {from: \"08:00\"}\n",
              6, 11, "'from' and 'to' must be given together");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time: {from: \"08:00\", to: \"08:00\"}\n",
              6, 18, "empty window");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time: {days: [mon, monday]}\n",
              6, 24, "'monday' is not one of");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    time: {days: [mon], tz: Europe/Berlin}\n",
              6, 29, "time.tz");
    /* bad effect */
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: permit\n    routes: [wiki]\n", 4, 13,
              "effect: expected allow or deny, got permit");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    routes: [wiki]\n", 3, 5, "missing 'effect'");
    /* duplicate id */
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a]}\n"
              "  - {id: s, effect: allow, routes: [a]}\n"
              "  - {id: r, effect: deny, routes: [b]}\n",
              5, 5, "duplicate rule id 'r' (first defined at line 3:5)");
    /* wrong types */
    LOAD_FAIL("version: 1\nrules:\n  id: r\n", 3, 3, "rules: expected a list, got a mapping");
    LOAD_FAIL("version: 1\nrules:\n  - [id, r]\n", 3, 5, "rule: expected a mapping, got a list");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    methods: {GET: 1}\n",
              6, 14, "methods: expected a list, got a mapping");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when: {claim: sub, equals: x}\n",
              6, 11, "when: expected a list, got a mapping");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - claim: sub\n        equals: [a, b]\n",
              8, 17, "equals: expected a string, got a list");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - claim: sub\n        exists: yes\n",
              8, 17, "exists: expected true or false");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - claim: sub\n        in: []\n",
              8, 13, "in: empty list");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - claim: sub\n        equals:\n",
              8, 9, "expected a string, got null");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - claim: sub\n        equals: \"\"\n",
              8, 17, "empty string");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {claim: sub, equals: a, prefix: b}\n",
              7, 9, "needs exactly one operator (found 2)");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {claim: sub, cert: cn, equals: a}\n",
              7, 9, "exactly one of claim, cert, token, not, any, all (found 2)");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {claim: sub}\n",
              7, 9, "needs exactly one operator (found 0)");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {not: {claim: sub, equals: a}, equals: b}\n",
              7, 40, "'equals' cannot be combined with 'not'");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {token: maybe}\n",
              7, 17, "expected 'present' or 'absent'");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {cert: serial, equals: \"01\"}\n",
              7, 16, "cert: unknown field 'serial'");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {cert: thumbprint, equals: abc}\n",
              7, 36, "thumbprint 'abc'");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {cert: thumbprint, prefix: abc}\n",
              7, 28, "thumbprint supports only equals, in and exists");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {claim: \"$.a[x]\", exists: true}\n",
              7, 17, "claim path '$.a[x]'");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {claim: \"$\", exists: true}\n",
              7, 17, "names no claim");
    LOAD_FAIL("version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [wiki]\n"
              "    when:\n      - {claim: sub, glob: \"/a\\\\\"}\n",
              7, 28, "lone");
    LOAD_FAIL("version: 1\nrules:\n  - id: \"has space\"\n    effect: allow\n    routes: [a]\n", 3,
              9, "id: expected 1-63 characters");
    LOAD_FAIL("version: 1\nrules:\n  - {effect: allow, routes: [a]}\n", 3, 5,
              "rule is missing 'id'");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow}\n", 3, 5, "missing 'routes'");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [\"*\", wiki]}\n", 3, 36,
              "\"*\" already means every route");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a, b, a]}\n", 3, 43,
              "'a' listed twice");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a], methods: [get]}\n", 3,
              51, "not an uppercase HTTP method");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a], paths: [wiki]}\n", 3, 49,
              "must start with '/'");
    /* version */
    LOAD_FAIL("rules: []\n", 1, 1, "missing 'version: 1'");
    LOAD_FAIL("version: 2\nrules: []\n", 1, 10, "unsupported policy version '2'");
    LOAD_FAIL("version: \"1\"\nrules: []\n", 1, 10, "unsupported policy version");
    LOAD_FAIL("version: 1\n", 1, 1, "missing 'rules'");
    LOAD_FAIL("- a\n- b\n", 1, 1, "expected a mapping with 'version' and 'rules'");
    /* YAML level */
    LOAD_FAIL("version: 1\nrules: [\n  {id: r\n", 4, 1, "YAML syntax error");
    LOAD_FAIL("version: 1\nversion: 1\nrules: []\n", 2, 1,
              "duplicate key 'version' (first at line 1:1)");
    LOAD_FAIL("version: 1\nrules: &r []\n", 2, 8, "anchors and aliases are not supported");
    LOAD_FAIL("version: 1\nrules: !!seq []\n", 2, 8, "tags are not supported");
    LOAD_FAIL("version: 1\nrules: []\n---\nversion: 1\nrules: []\n", 3, 1,
              "only one YAML document");
    /* single-quoted strings are unescaped by us (libfyaml 0.7.12 leaks on
     * some '' sequences): one line only, '' -> ' */
    LOAD_FAIL("version: 1\nrules: []\nx: 'a\n  b'\n", 3, 4,
              "multi-line single-quoted strings are not supported");
    struct az_policy *sq = load_ok("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a],"
                                   " when: [{claim: sub, equals: 'x''''y''''z'},"
                                   " {claim: email, in: ['''', 'alice@example.com']}]}\n");
    snprintf(F.tok.sub, sizeof(F.tok.sub), "x''y''z");
    F.req.route_id = "a";
    EXPECT_ALLOW(sq, "r");
    snprintf(F.tok.sub, sizeof(F.tok.sub), "x'y'z");
    EXPECT_NO_MATCH(sq);
    az_policy_unref(sq);
    LOAD_FAIL("", 1, 1, "policy file is empty");
    LOAD_FAIL("# only a comment\n", 1, 1, "policy file is empty");
    LOAD_FAIL("version: 1\nrules: []\nx: \xff\n", 3, 4, "invalid UTF-8");
    LOAD_FAIL("version: 1\nrules: []\nx: \xc0\xaf\n", 3, 4, "invalid UTF-8"); /* overlong */
    load_fail("version: 1\nrules: []\n\0x: y\n", 27, 3, 1, "NUL byte");
    LOAD_FAIL("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a], when: []}\n", 3, 47,
              "when: empty list");
    LOAD_FAIL("version: 1\nrules: []\n? [a, b]\n: c\n", 3, 3, "mapping keys must be plain strings");
}

static void test_every_error_reported(void **state)
{
    (void)state;
    /* several independent errors in one file are all reported at once */
    const char *y = "version: 1\n"
                    "rules:\n"
                    "  - id: a\n"
                    "    effect: alow\n" /* 4:13 */
                    "    routes: [wiki]\n"
                    "    sources: [\"300.0.0.1\"]\n" /* 6:15 */
                    "  - id: b\n"
                    "    effect: allow\n"
                    "    routes: [wiki]\n"
                    "    when:\n"
                    "      - {cert: cn, equal: x}\n" /* 11:20 */
                    "  - id: a\n"                    /* 12:5 */
                    "    effect: deny\n"
                    "    routes: [wiki]\n";
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    assert_null(az_policy_load_buf("t.yaml", y, strlen(y), &errs));
    static const char *const want[] = {
        "t.yaml:4:13: effect",
        "t.yaml:6:15: sources",
        "t.yaml:11:20: unknown key 'equal'",
        "t.yaml:12:5: duplicate rule id 'a'",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int found = 0;
        for (int k = 0; k < errs.n; k++) {
            found |= strncmp(errs.msg[k], want[i], strlen(want[i])) == 0;
        }
        if (!found) {
            char buf[4096];
            gh_errlist_format(&errs, buf, sizeof(buf));
            print_error("missing %s in:\n%s", want[i], buf);
            fail();
        }
    }
    assert_int_equal(errs.n, 4);

    /* more errors than the list holds: counted, not lost silently */
    char big[16384];
    size_t off = (size_t)snprintf(big, sizeof(big), "version: 1\nrules:\n");
    for (int i = 0; i < 40; i++) {
        off += (size_t)snprintf(big + off, sizeof(big) - off,
                                "  - {id: r%d, effect: maybe, routes: [a]}\n", i);
    }
    memset(&errs, 0, sizeof(errs));
    assert_null(az_policy_load_buf("t.yaml", big, off, &errs));
    assert_int_equal(errs.n, GH_ERRLIST_MAX);
    assert_int_equal(errs.dropped, 40 - GH_ERRLIST_MAX);

    /* a NULL errlist is allowed */
    assert_null(az_policy_load_buf("t.yaml", "x: [", 4, NULL));
    assert_null(az_policy_load_buf("t.yaml", NULL, 0, NULL));
}

/* ------------------------------------------------------------------------ */
/* Limits.                                                                   */

static void test_limits(void **state)
{
    (void)state;
    /* file size: one byte over 1 MiB */
    size_t n = 1024 * 1024 + 1;
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    memset(buf, '#', n);
    memcpy(buf, "version: 1\nrules: []\n", 21);
    buf[n] = '\0';
    load_fail(buf, n, 1, 1, "policy file too large");
    /* exactly 1 MiB (comment padding) is fine */
    buf[21] = '#';
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *p = az_policy_load_buf("t.yaml", buf, n - 1, &errs);
    assert_non_null(p);
    az_policy_unref(p);
    free(buf);

    /* rule count: 10,000 loads, 10,001 does not */
    size_t cap = 10001 * 48 + 64;
    buf = malloc(cap);
    assert_non_null(buf);
    size_t off = (size_t)snprintf(buf, cap, "version: 1\nrules:\n");
    for (int i = 0; i < 10000; i++) {
        off +=
            (size_t)snprintf(buf + off, cap - off, "- {id: r%d, effect: allow, routes: [a]}\n", i);
    }
    p = load_ok(buf);
    assert_int_equal(az_policy_rule_count(p), 10000);
    F.req.route_id = "b";
    EXPECT_NO_MATCH(p); /* evaluates all 10,000 rules */
    F.req.route_id = "a";
    EXPECT_ALLOW(p, "r0");
    az_policy_unref(p);
    off += (size_t)snprintf(buf + off, cap - off, "- {id: last, effect: allow, routes: [a]}\n");
    load_fail(buf, off, 3, 1, "too many rules: 10001 (limit 10000)");
    free(buf);

    /* string length */
    char s[2200];
    memset(s, 'x', 1025);
    s[1025] = '\0';
    char *y = malloc(4096);
    assert_non_null(y);
    snprintf(y, 4096,
             "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [a]\n"
             "    when: [{claim: sub, equals: %s}]\n",
             s);
    LOAD_FAIL(y, 6, 33, "string longer than 1024 bytes");
    snprintf(y, 4096,
             "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [a]\n"
             "    when: [{claim: sub, equals: '%s'}]\n",
             s);
    LOAD_FAIL(y, 6, 33, "string longer than 1024 bytes"); /* single-quoted path too */
    s[1024] = '\0';
    snprintf(y, 4096,
             "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [a]\n"
             "    when: [{claim: sub, equals: %s}]\n",
             s);
    p = load_ok(y);
    az_policy_unref(p);
    /* long glob (1024 tokens) still works */
    memset(s, '*', 1);
    for (int i = 1; i < 1024; i++) {
        s[i] = (char)('a' + i % 26);
    }
    s[0] = '/';
    s[1024] = '\0';
    snprintf(y, 4096,
             "version: 1\nrules:\n  - {id: r, effect: allow, routes: [a], paths: ['%s']}\n", s);
    p = load_ok(y);
    F.req.route_id = "a";
    F.req.path = s;
    EXPECT_ALLOW(p, "r");
    az_policy_unref(p);

    /* YAML nesting depth */
    off = (size_t)snprintf(y, 4096, "version: 1\nrules: []\nx: ");
    for (int i = 0; i < 30; i++) {
        y[off++] = '[';
    }
    for (int i = 0; i < 30; i++) {
        y[off++] = ']';
    }
    y[off++] = '\n';
    y[off] = '\0';
    LOAD_FAIL(y, 3, 27, "nesting deeper than 24 levels");

    /* condition nesting depth */
    off = (size_t)snprintf(y, 4096,
                           "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [a]\n"
                           "    when:\n      - ");
    for (int i = 0; i < 9; i++) {
        off += (size_t)snprintf(y + off, 4096 - off, "{not: ");
    }
    off += (size_t)snprintf(y + off, 4096 - off, "{claim: sub, equals: a}");
    for (int i = 0; i < 9; i++) {
        y[off++] = '}';
    }
    y[off++] = '\n';
    y[off] = '\0';
    LOAD_FAIL(y, 7, 57, "conditions nested deeper than 8 levels");

    /* items per list */
    char *big = malloc(16384);
    assert_non_null(big);
    off = (size_t)snprintf(big, 16384, "version: 1\nrules:\n  - id: r\n    effect: allow\n"
                                       "    routes: [a]\n    when: [{claim: sub, in: [");
    for (int i = 0; i < 1025; i++) {
        off += (size_t)snprintf(big + off, 16384 - off, "%sv%d", i ? "," : "", i);
    }
    snprintf(big + off, 16384 - off, "]}]\n");
    LOAD_FAIL(big, 6, 29, "in: more than 1024 items");
    free(big);

    /* keys per mapping */
    off = (size_t)snprintf(y, 4096, "version: 1\nrules: []\nx:\n");
    for (int i = 0; i < 65; i++) {
        off += (size_t)snprintf(y + off, 4096 - off, "  k%d: v\n", i);
    }
    LOAD_FAIL(y, 68, 3, "mapping has more than 64 keys");
    free(y);
}

/* ------------------------------------------------------------------------ */
/* Version, source, refcount, route check, explanation.                      */

static void test_version_and_source(void **state)
{
    (void)state;
    const char *y = "version: 1\nrules:\n  - {id: r, effect: allow, routes: [a]}\n";
    struct az_policy *p = load_ok(y);
    uint8_t md[32];
    char hex[65];
    SHA256((const uint8_t *)y, strlen(y), md);
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    assert_string_equal(az_policy_version(p), hex);
    size_t len = 0;
    const char *src = az_policy_source(p, &len);
    assert_int_equal(len, strlen(y));
    assert_memory_equal(src, y, len);
    assert_int_equal(az_policy_rule_count(p), 1);

    /* one byte more (a comment) is another version */
    struct az_policy *q =
        load_ok("version: 1\nrules:\n  - {id: r, effect: allow, routes: [a]}\n#\n");
    assert_string_not_equal(az_policy_version(p), az_policy_version(q));
    az_policy_unref(q);

    /* refcount: the snapshot lives until the last unref */
    assert_ptr_equal(az_policy_ref(p), p);
    az_policy_unref(p);
    assert_string_equal(az_policy_version(p), hex);
    az_policy_unref(p);
    az_policy_unref(NULL);
    assert_null(az_policy_ref(NULL));
    assert_int_equal(az_policy_rule_count(NULL), 0);

    /* evaluation with no policy or no request denies */
    struct az_verdict v;
    az_policy_eval(NULL, &F.id, &F.req, &v, NULL, 0);
    assert_int_equal(v.decision, GH_DENY);
    assert_int_equal(v.reason, GH_R_INTERNAL);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_authz_policy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = "version: 1\nrules:\n  - {id: r, effect: maybe, routes: [a]}\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    assert_null(az_policy_load_file(path, &errs));
    assert_int_equal(errs.n, 1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3:21: effect", path);
    assert_true(strncmp(errs.msg[0], want, strlen(want)) == 0);
    unlink(path);
    memset(&errs, 0, sizeof(errs));
    assert_null(az_policy_load_file("/nonexistent/policy.yaml", &errs));
    assert_non_null(strstr(errs.msg[0], "cannot open policy file"));
}

static void test_check_routes(void **state)
{
    (void)state;
    struct az_policy *p = load_ok("version: 1\nrules:\n"
                                  "  - {id: a, effect: allow, routes: [wiki, admin]}\n"
                                  "  - {id: b, effect: allow, routes: [\"*\"]}\n"
                                  "  - id: c\n    effect: deny\n    routes:\n      - wkii\n");
    const char *known[] = {"wiki", "admin", "deploy"};
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    assert_int_equal(az_policy_check_routes(p, known, 3, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msg[0], "t.yaml:8:9: rule 'c' names unknown route 'wkii'");
    memset(&errs, 0, sizeof(errs));
    assert_int_equal(az_policy_check_routes(p, known, 1, &errs), -1);
    assert_int_equal(errs.n, 2); /* admin and wkii */
    const char *all[] = {"wiki", "admin", "wkii"};
    memset(&errs, 0, sizeof(errs));
    assert_int_equal(az_policy_check_routes(p, all, 3, &errs), 0);
    assert_int_equal(errs.n, 0);
    az_policy_unref(p);
}

static void test_why(void **state)
{
    (void)state;
    struct az_policy *p =
        load_ok("version: 1\nrules:\n"
                "  - id: deny-contractors\n    effect: deny\n    routes: [\"*\"]\n"
                "    when:\n      - {claim: groups, contains: contractors}\n"
                "  - id: admin-only\n    effect: allow\n    routes: [admin]\n"
                "  - id: eng\n    effect: allow\n    routes: [wiki]\n"
                "    methods: [GET]\n"
                "    when:\n      - {cert: cn, equals: alice}\n"
                "      - {claim: groups, contains: engineering}\n");
    char why[4096];
    struct az_verdict v;
    az_policy_eval(p, &F.id, &F.req, &v, why, sizeof(why));
    assert_int_equal(v.decision, GH_ALLOW);
    assert_non_null(strstr(why,
                           "rule deny-contractors (deny, line 3): no match: when[1] (line 7:9) "
                           "claim groups contains \"contractors\" -> false\n"));
    assert_non_null(strstr(why, "rule eng (allow, line 11): match\n"));
    assert_null(strstr(why, "admin-only")); /* other routes are not listed */
    assert_non_null(strstr(why, "result: allow by rule eng"));

    F.req.method = "POST";
    az_policy_eval(p, &F.id, &F.req, &v, why, sizeof(why));
    assert_non_null(strstr(why, "rule eng (allow, line 11): no match: method POST"));
    assert_non_null(strstr(why, "result: deny, no rule matched"));

    F.req.method = "GET";
    F.tok.n_groups = 1;
    snprintf(F.ci.cn, sizeof(F.ci.cn), "bob");
    az_policy_eval(p, &F.id, &F.req, &v, why, sizeof(why));
    assert_non_null(strstr(why, "when[1] (line 16:9) cert cn equals \"alice\" -> false"));

    F.id.token = NULL;
    snprintf(F.ci.cn, sizeof(F.ci.cn), "alice");
    az_policy_eval(p, &F.id, &F.req, &v, why, sizeof(why));
    assert_int_equal(v.reason, GH_R_POLICY_DENY);
    assert_non_null(strstr(why, "rule deny-contractors (deny, line 3): match (fail closed): "
                                "when[1] (line 7:9) claim groups contains \"contractors\" -> "
                                "unknown (no token)"));
    assert_non_null(strstr(why, "rule eng (allow, line 11): no match: when[2]"));

    /* truncation is marked and the buffer stays a string */
    char tiny[40];
    memset(tiny, 'Z', sizeof(tiny));
    az_policy_eval(p, &F.id, &F.req, &v, tiny, sizeof(tiny));
    assert_int_equal(v.reason, GH_R_POLICY_DENY);
    assert_true(strlen(tiny) < sizeof(tiny));
    assert_non_null(strstr(tiny, "...\n"));
    az_policy_eval(p, &F.id, &F.req, &v, tiny, 0);
    assert_int_equal(tiny[0], 'r'); /* len 0: nothing written */
    az_policy_unref(p);
}

/* ------------------------------------------------------------------------ */
/* Evaluation does not allocate; the loader survives allocation failure.    */

static void test_eval_does_not_allocate(void **state)
{
    (void)state;
    alloc_hooks_install();
    char path[512];
    example_path(path, sizeof(path));
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *ex = az_policy_load_file(path, &errs);
    assert_non_null(ex);
    struct az_policy *ops[sizeof(opcases) / sizeof(opcases[0])];
    for (size_t i = 0; i < sizeof(opcases) / sizeof(opcases[0]); i++) {
        ops[i] = one_cond(opcases[i].cond);
    }
    static char why[16384];
    struct az_verdict v;
    int allows = 0;
    /* the counter does see allocations when there are some */
    g_allocs = 0;
    g_counting = 1;
    struct az_policy *probe = one_cond("{claim: sub, equals: alice}");
    g_counting = 0;
    assert_true(g_allocs > 0);
    az_policy_unref(probe);
    g_allocs = 0;
    g_counting = 1;
    for (int round = 0; round < 4; round++) {
        F.id.token = round % 2 == 0 ? &F.tok : NULL;
        F.req.path = round < 2 ? "/wiki/page" : "/deploy/../x";
        for (size_t i = 0; i < sizeof(opcases) / sizeof(opcases[0]); i++) {
            az_policy_eval(ops[i], &F.id, &F.req, &v, NULL, 0);
            allows += v.decision == GH_ALLOW;
            az_policy_eval(ops[i], &F.id, &F.req, &v, why, sizeof(why));
        }
        static const char *const routes[] = {"wiki", "admin", "deploy", "nope"};
        for (int r = 0; r < 4; r++) {
            F.req.route_id = routes[r];
            az_policy_eval(ex, &F.id, &F.req, &v, why, sizeof(why));
            az_policy_eval(ex, &F.id, &F.req, &v, NULL, 0);
        }
        F.req.route_id = "wiki";
    }
    g_counting = 0;
    assert_int_equal(g_allocs, 0);
    assert_true(allows > 50); /* the loop did evaluate real matches */
    for (size_t i = 0; i < sizeof(opcases) / sizeof(opcases[0]); i++) {
        az_policy_unref(ops[i]);
    }
    az_policy_unref(ex);
}

static void test_load_allocation_failures(void **state)
{
    (void)state;
#if HAVE_OOM_LOOP
    char path[512];
    example_path(path, sizeof(path));
    void *prime[2];
    (void)backtrace(prime, 2); /* first call loads libgcc_s: not a leak of ours */
    long n;
    int ok = 0;
    for (n = 1; n < 100000 && !ok; n++) {
        struct gh_errlist errs;
        memset(&errs, 0, sizeof(errs));
        g_allocs = 0;
        g_live = 0;
        g_fail_at = n;
        g_counting = 1;
        struct az_policy *p = az_policy_load_file(path, &errs);
        if (p != NULL) {
            az_policy_unref(p);
        }
        g_counting = 0;
        int injected = g_fail_at == -1;
        g_fail_at = 0;
        if (g_live != 0) {
            print_error("allocation failure %ld leaked %ld blocks\n", n, g_live);
            fail();
        }
        if (!injected) {
            ok = p != NULL; /* no failure left to inject: the load must succeed */
            assert_true(ok);
        } else if (p == NULL) {
            assert_true(errs.n > 0); /* a failure always says why */
        }
    }
    assert_true(ok);
    assert_true(n > 20); /* the example policy needs dozens of allocations */
#else
    /* Under ASan the allocator cannot be replaced; the plain build runs the
     * loop. Here we still check that load/unref leak nothing (LeakSanitizer). */
    struct az_policy *p = load_ok("version: 1\nrules: []\n");
    az_policy_unref(p);
#endif
}

/* ------------------------------------------------------------------------ */
/* The example policy and the CLI.                                           */

static void test_example_policy(void **state)
{
    (void)state;
    char path[512];
    example_path(path, sizeof(path));
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct az_policy *p = az_policy_load_file(path, &errs);
    assert_non_null(p);
    const char *routes[] = {"wiki", "admin", "deploy"};
    assert_int_equal(az_policy_check_routes(p, routes, 3, &errs), 0);

    /* wiki: engineering with a company address */
    EXPECT_ALLOW(p, "wiki-engineering");
    F.tok.groups[0] = (char *)"sales";
    F.tok.groups[1] = (char *)"marketing";
    EXPECT_NO_MATCH(p);

    /* admin: ops, office hours, office network, device CA, admin scope */
    static char ops[] = "ops", blocked[] = "contractors-blocked";
    F.tok.groups[0] = ops;
    F.tok.n_groups = 1;
    snprintf(F.tok.scope, sizeof(F.tok.scope), "openid admin");
    snprintf(F.ci.issuer, sizeof(F.ci.issuer), "CN=Example Employee Device CA,O=Example");
    F.req.route_id = "admin";
    F.req.path = "/users";
    set_source("198.51.100.20");
    F.req.now_s = at("2026-11-23T09:00"); /* Monday 10:00 at +01:00 */
    EXPECT_ALLOW(p, "admin-ops-office-hours");
    F.req.now_s = at("2026-11-23T17:30"); /* 18:30 local */
    EXPECT_NO_MATCH(p);
    F.req.now_s = at("2026-11-28T09:00"); /* Saturday */
    EXPECT_NO_MATCH(p);
    F.req.now_s = at("2026-11-23T09:00");
    set_source("203.0.113.5"); /* not an office network */
    EXPECT_NO_MATCH(p);
    set_source("2001:db8:10:1::5");
    EXPECT_ALLOW(p, "admin-ops-office-hours");
    /* DELETE needs mfa in amr; the default claims have it */
    F.req.method = "DELETE";
    EXPECT_ALLOW(p, "admin-ops-office-hours");
    json_object_set_new(F.claims, "amr", json_pack("[s]", "pwd"));
    EXPECT_DENY(p, "admin-delete-needs-mfa");
    F.req.method = "GET";
    EXPECT_ALLOW(p, "admin-ops-office-hours");
    /* blocked contractors lose access even with every other fact right */
    F.tok.groups[1] = blocked;
    F.tok.n_groups = 2;
    EXPECT_DENY(p, "block-contractors");

    /* deploy: the CI deployer's SPIFFE ID, POST /deploy/<name> only, with or
     * without a token */
    static char ci[] = "spiffe://example.org/ci/deployer";
    F.ci.san_uri[0] = ci;
    F.req.route_id = "deploy";
    F.req.method = "POST";
    F.req.path = "/deploy/app1";
    F.id.token = NULL;
    EXPECT_ALLOW(p, "ci-deployer");
    F.tok.n_groups = 0;
    F.id.token = &F.tok;
    EXPECT_ALLOW(p, "ci-deployer");
    F.req.method = "GET";
    EXPECT_NO_MATCH(p);
    F.req.method = "POST";
    F.req.path = "/deploy/app1/rollback";
    EXPECT_NO_MATCH(p);
    F.req.path = "/deploy/app1";
    static char other[] = "spiffe://example.org/ci/tester";
    F.ci.san_uri[0] = other;
    EXPECT_NO_MATCH(p);
    az_policy_unref(p);
}

struct cli_out {
    int rc;
    char out[16384];
    char err[16384];
};

static void run_cli(struct cli_out *o, int argc, const char **argv)
{
    FILE *out = tmpfile(), *err = tmpfile();
    assert_non_null(out);
    assert_non_null(err);
    o->rc = az_policy_cli_run(argc, (char **)argv, out, err);
    rewind(out);
    rewind(err);
    size_t n = fread(o->out, 1, sizeof(o->out) - 1, out);
    o->out[n] = '\0';
    n = fread(o->err, 1, sizeof(o->err) - 1, err);
    o->err[n] = '\0';
    fclose(out);
    fclose(err);
}

static void test_cli(void **state)
{
    (void)state;
    char path[512];
    example_path(path, sizeof(path));
    static struct cli_out o;
    const char *alice = "{\"cert\":{\"subject\":\"CN=alice\",\"cn\":\"alice\"},"
                        "\"claims\":{\"sub\":\"alice\",\"email\":\"alice@example.com\","
                        "\"groups\":[\"engineering\"]}}";
    const char *wiki_get = "{\"route\":\"wiki\",\"method\":\"GET\",\"path\":\"/wiki/x\","
                           "\"source\":\"10.1.2.3\",\"time\":\"2026-11-22T10:00:00Z\"}";

    const char *a1[] = {"test", "-p", path, "--identity", alice, "--request", wiki_get};
    run_cli(&o, 7, a1);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.out, "decision: allow\nreason: allow\nrule: wiki-engineering\n"
                                  "policy_version: "));
    assert_non_null(strstr(o.out, "  rule wiki-engineering (allow, line "));

    /* --json: one object */
    const char *a2[] = {"test",       "--json", "--policy",  path,
                        "--identity", alice,    "--request=" /* joined form */};
    char req_eq[512];
    snprintf(req_eq, sizeof(req_eq), "--request=%s", wiki_get);
    a2[6] = req_eq;
    run_cli(&o, 7, a2);
    assert_int_equal(o.rc, 0);
    json_error_t je;
    json_t *j = json_loads(o.out, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "allow");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "allow");
    assert_string_equal(json_string_value(json_object_get(j, "rule")), "wiki-engineering");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "policy_version"))), 64);
    assert_true(json_array_size(json_object_get(j, "why")) >= 2);
    json_decref(j);

    /* deny: blocked group -> exit 1 */
    const char *mallory = "{\"claims\":{\"sub\":\"m\",\"email\":\"m@example.com\","
                          "\"roles\":[\"engineering\",\"contractors-blocked\"]}}";
    const char *a3[] = {"test", "-p", path, "--identity", mallory, "--request", wiki_get};
    run_cli(&o, 7, a3);
    assert_int_equal(o.rc, 1);
    assert_non_null(
        strstr(o.out, "decision: deny\nreason: policy_deny\nrule: block-contractors\n"));

    /* no match -> exit 1, rule "-" */
    const char *a4[] = {"test", "-p", path, "--identity", "{}", "--request", "{\"route\":\"x\"}"};
    run_cli(&o, 7, a4);
    assert_int_equal(o.rc, 1);
    assert_non_null(strstr(o.out, "reason: policy_no_match\nrule: -\n"));

    /* @FILE inputs */
    char ipath[] = "/tmp/test_authz_policy_id_XXXXXX";
    int fd = mkstemp(ipath);
    assert_true(fd >= 0);
    const char *ci = "{\"cert\":{\"san_uri\":[\"spiffe://example.org/ci/deployer\"],"
                     "\"thumbprint\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}}";
    assert_int_equal(write(fd, ci, strlen(ci)), (ssize_t)strlen(ci));
    close(fd);
    char iarg[64];
    snprintf(iarg, sizeof(iarg), "@%s", ipath);
    const char *a5[] = {"test",
                        "-p",
                        path,
                        "--identity",
                        iarg,
                        "--request",
                        "{\"route\":\"deploy\",\"method\":\"POST\",\"path\":\"/deploy/a\","
                        "\"time\":1700000000}"};
    run_cli(&o, 7, a5);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.out, "rule: ci-deployer\n"));
    unlink(ipath);

    /* check */
    const char *c1[] = {"check", "-p", path};
    run_cli(&o, 3, c1);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.out, "ok: 5 rules, policy_version "));
    const char *c2[] = {"check", "-p", path, "--routes", "wiki,admin"};
    run_cli(&o, 5, c2);
    assert_int_equal(o.rc, 2);
    assert_non_null(strstr(o.err, "names unknown route 'deploy'"));
    const char *c3[] = {"check", "-p", path, "--routes", "wiki,admin,deploy", "--json"};
    run_cli(&o, 6, c3);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.out, "\"ok\":true"));

    /* a bad policy: exit 2 and file:line:col on stderr, for test and check */
    char bpath[] = "/tmp/test_authz_policy_bad_XXXXXX";
    fd = mkstemp(bpath);
    assert_true(fd >= 0);
    const char *bad = "version: 1\nrules:\n  - id: r\n    effect: allow\n    routes: [a]\n"
                      "    sources: [\"10.0.0.0/33\"]\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    char want[128];
    snprintf(want, sizeof(want), "%s:6:15: sources: prefix length 33", bpath);
    const char *c4[] = {"check", "-p", bpath};
    run_cli(&o, 3, c4);
    assert_int_equal(o.rc, 2);
    assert_non_null(strstr(o.err, want));
    const char *c5[] = {"test", "-p", bpath, "--identity", alice, "--request", wiki_get};
    run_cli(&o, 7, c5);
    assert_int_equal(o.rc, 2);
    assert_non_null(strstr(o.err, want));
    const char *c6[] = {"check", "-p", bpath, "--json"};
    run_cli(&o, 4, c6);
    assert_int_equal(o.rc, 2);
    assert_non_null(strstr(o.out, "\"ok\":false"));
    unlink(bpath);

    /* usage and input errors: exit 2 */
    const char *u1[] = {"test", "-p", path};
    run_cli(&o, 3, u1);
    assert_int_equal(o.rc, 2);
    assert_non_null(strstr(o.err, "usage:"));
    const char *u2[] = {"frobnicate"};
    run_cli(&o, 1, u2);
    assert_int_equal(o.rc, 2);
    const char *u3[] = {"test",      "-p",    path, "--identity", "{\"claims\":{\"groups\":\"x\"}}",
                        "--request", wiki_get};
    run_cli(&o, 7, u3);
    assert_int_equal(o.rc, 2);
    const char *u4[] = {"test", "-p", path, "--identity", "{\"cret\":{}}", "--request", wiki_get};
    run_cli(&o, 7, u4);
    assert_int_equal(o.rc, 2);
    assert_non_null(strstr(o.err, "unknown key \"cret\""));
    const char *u5[] = {"test",
                        "-p",
                        path,
                        "--identity",
                        alice,
                        "--request",
                        "{\"route\":\"wiki\",\"time\":\"yesterday\"}"};
    run_cli(&o, 7, u5);
    assert_int_equal(o.rc, 2);
    const char *u6[] = {"test",      "-p",    path, "--identity", "{\"claims\":{\"sub\":1}}",
                        "--request", wiki_get};
    run_cli(&o, 7, u6);
    assert_int_equal(o.rc, 2);
    const char *u7[] = {"test",      "-p",    path, "--identity", "{\"a\":1,\"a\":2}",
                        "--request", wiki_get};
    run_cli(&o, 7, u7);
    assert_int_equal(o.rc, 2);
    const char *u8[] = {"test", "-p"};
    run_cli(&o, 2, u8);
    assert_int_equal(o.rc, 2);
    const char *h[] = {"help"};
    run_cli(&o, 1, h);
    assert_int_equal(o.rc, 0);
    assert_non_null(strstr(o.out, "No token signature"));

    /* RFC 3339 offsets are honoured: 10:00+01:00 == 09:00Z */
    const char *ops = "{\"cert\":{\"issuer\":\"CN=Example Employee Device CA,O=Example\"},"
                      "\"claims\":{\"groups\":[\"ops\"],\"scope\":\"admin\"}}";
    const char *t1[] = {"test",
                        "-p",
                        path,
                        "--identity",
                        ops,
                        "--request",
                        "{\"route\":\"admin\",\"method\":\"GET\",\"path\":\"/\","
                        "\"source\":\"198.51.100.1\",\"time\":\"2026-11-23T08:00:00.5+01:00\"}"};
    run_cli(&o, 7, t1);
    assert_int_equal(o.rc, 0); /* 07:00Z = 08:00 at +01:00 */
    const char *t2[] = {"test",
                        "-p",
                        path,
                        "--identity",
                        ops,
                        "--request",
                        "{\"route\":\"admin\",\"method\":\"GET\",\"path\":\"/\","
                        "\"source\":\"198.51.100.1\",\"time\":\"2026-11-23T07:59:59+01:00\"}"};
    run_cli(&o, 7, t2);
    assert_int_equal(o.rc, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_operators_and_fields, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_fields_are_absent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_combining, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_token_fails_closed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_conditions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_time_windows, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sources, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_path_globs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_noncanonical_paths, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_glob_is_linear, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors_line_col, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_every_error_reported, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_limits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_version_and_source, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_check_routes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_why, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_eval_does_not_allocate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_load_allocation_failures, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_example_policy, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cli, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
