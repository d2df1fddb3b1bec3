/*
 * fuzz_config.c: libFuzzer target for the gateway config loader.
 *
 * Feeds arbitrary bytes to gw_config_load_buf. The files a valid config
 * names (pki/server.crt, policy.yaml, ...) are created once in a private
 * temporary directory used as base_dir, so inputs derived from the seed
 * corpus also reach the success path and the full snapshot free.
 * Invariants checked: a NULL result always comes with at least one error,
 * a snapshot never does, and every error starts with "fuzz.yaml:".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64] = "/nonexistent";

static void touch(const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    if (f != NULL) {
        fputs("x\n", f);
        fclose(f);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char tmpl[] = "/tmp/gh-fuzz-config-XXXXXX";
    if (mkdtemp(tmpl) == NULL) {
        return 0;
    }
    snprintf(base, sizeof(base), "%s", tmpl);
    char pki[128];
    snprintf(pki, sizeof(pki), "%s/pki", base);
    mkdir(pki, 0700);
    static const char *const files[] = {
        "server.crt",          "server.key",          "client-ca.crt",       "clients.crl",
        "idp-ca.crt",          "gw-idp.crt",          "gw-idp.key",          "policy.yaml",
        "upstream-ca.crt",     "gw-upstream.crt",     "gw-upstream.key",     "admin-ca.crt",
        "pki/server.crt",      "pki/server.key",      "pki/client-ca.crt",   "pki/clients.crl",
        "pki/idp-ca.crt",      "pki/gw-idp.crt",      "pki/gw-idp.key",      "pki/upstream-ca.crt",
        "pki/gw-upstream.crt", "pki/gw-upstream.key", "pki/admin-ca.crt",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        touch(files[i]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_errlist errs;
    memset(&errs, 0, sizeof(errs));
    struct gw_config *c = gw_config_load_buf("fuzz.yaml", base, (const char *)data, size, &errs);
    if (c == NULL && errs.n == 0) {
        abort(); /* a failed load must say why */
    }
    if (c != NULL && (errs.n != 0 || c->n_routes < 1)) {
        abort(); /* a snapshot is only returned when clean */
    }
    for (int i = 0; i < errs.n; i++) {
        if (strncmp(errs.msg[i], "fuzz.yaml:", 10) != 0) {
            abort();
        }
    }
    if (c != NULL) {
        /* exercise the lookup on the loaded routes */
        const struct gw_route *r = gw_config_route(c, "wiki.example.internal:8443", 26, "/x", 2);
        (void)r;
        gw_config_unref(gw_config_ref(c));
        gw_config_unref(c);
    }
    return 0;
}
