/*
 * fuzz_http_head.c: the request-head path exactly as the gateway runs it:
 * incremental raw scan (fed in two pieces to exercise resumption), then
 * the strict parse. Invariants: no crash, no read past the input, and a
 * head accepted by the parser never contains the bytes the scanner refuses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) {
        return 0;
    }
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    size_t scan = 0, head_len = 0;
    int lines = 0;
    enum gh_reason r;
    size_t half = size / 2;
    int rc = gw_http_scan_head(buf, half, &scan, &lines, 16384, 8192, 100, &head_len, &r);
    if (rc == 0) {
        rc = gw_http_scan_head(buf, size, &scan, &lines, 16384, 8192, 100, &head_len, &r);
    }
    if (rc == 1) {
        if (head_len > size) {
            abort();
        }
        static struct gw_req_head rh;
        const char *detail = NULL;
        if (gw_http_parse_request(buf, head_len, &rh, &r, &detail) == 0) {
            if (rh.host_idx < 0 || rh.target == NULL || rh.target[0] != '/') {
                abort();
            }
            if (rh.chunked && rh.content_length >= 0) {
                abort(); /* both framings must never be accepted together */
            }
            if (memchr(buf, '\0', head_len) != NULL) {
                abort();
            }
        }
    }
    free(buf);
    return 0;
}
