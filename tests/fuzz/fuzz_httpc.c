/*
 * fuzz_httpc.c: the issuer client's response reader and URL splitter
 * (gateway/httpc.c). The issuer (or anyone between it and the gateway when
 * TLS is misconfigured) controls these bytes, and the discovery document
 * controls the JWKS URL.
 *
 * Input: byte 0 picks the chunk size the response is fed in (1..64 bytes,
 * or all at once), byte 1 the body limit; the rest is split at the first
 * NUL into a URL and a response. Invariants: no crash, no leak; a success
 * has a body within the limit, NUL-terminated; a split URL has a non-empty
 * host, a numeric port and a path without spaces or control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    size_t chunk = data[0] % 65;
    size_t max_body = (size_t)data[1] * 16;
    data += 2;
    size -= 2;
    const uint8_t *nul = memchr(data, 0, size);
    size_t ulen = nul != NULL ? (size_t)(nul - data) : 0;
    if (nul != NULL) {
        char *url = malloc(ulen + 1);
        if (url == NULL) {
            return 0;
        }
        memcpy(url, data, ulen);
        url[ulen] = '\0';
        struct gw_httpc_url u;
        struct gh_err err;
        if (gw_httpc_split_url(url, &u, &err) == 0) {
            if (u.host[0] == '\0' || u.port[0] == '\0' || strspn(u.port, "0123456789") !=
                                                                  strlen(u.port)) {
                abort();
            }
            for (const char *c = u.path; *c != '\0'; c++) {
                if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
                    abort();
                }
            }
        }
        free(url);
        data += ulen + 1;
        size -= ulen + 1;
    }
    struct gw_httpc_reader *r = gw_httpc_reader_new(max_body);
    if (r == NULL) {
        return 0;
    }
    size_t off = 0;
    while (off < size) {
        size_t n = chunk == 0 ? size - off : (size - off < chunk ? size - off : chunk);
        if (gw_httpc_reader_feed(r, (const char *)data + off, n) != 0) {
            break;
        }
        off += n;
    }
    struct gw_httpc_resp resp;
    struct gh_err err;
    if (gw_httpc_reader_finish(r, 1, &resp, "fuzz", &err) == 0) {
        if (resp.body == NULL || resp.body_len > max_body || resp.body[resp.body_len] != '\0') {
            abort();
        }
        free(resp.body);
    }
    return 0;
}
