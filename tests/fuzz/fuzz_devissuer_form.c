/*
 * fuzz_devissuer_form.c: the development issuer's token-request decision
 * (gw_devissuer_check_request): the x-www-form-urlencoded parser with
 * percent-decoding, the parameter limits and the grant/client checks. The
 * body is handed over without a terminating NUL, exactly sized, so ASan sees
 * any read past it. Invariants: no crash; a grant implies status 200 and no
 * error; a refusal always names a 400/401/500 and an RFC 6749 error code.
 * The first input byte picks the certificate CN (a known user, another
 * known user, or a stranger).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/devissuer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cns[] = {"alice", "bob", "gatehouse-gateway"};
    if (size == 0 || size > 65536) {
        return 0;
    }
    const char *cn = cns[data[0] % 3];
    size_t len = size - 1;
    char *body = malloc(len > 0 ? len : 1);
    if (body == NULL) {
        return 0;
    }
    memcpy(body, data + 1, len);
    int status = 0;
    const char *error = NULL;
    const char *desc = NULL;
    int rc = gw_devissuer_check_request(body, len, cn, &status, &error, &desc);
    if (rc == 0) {
        if (status != 200 || error != NULL || data[0] % 3 == 2) {
            abort();
        }
    } else if (rc != -1 || error == NULL || desc == NULL ||
               (status != 400 && status != 401 && status != 500)) {
        abort();
    }
    free(body);
    return 0;
}
