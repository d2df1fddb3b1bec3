/*
 * fuzz_bench_resp.c: libFuzzer target for gatehouse-bench's HTTP/1.1
 * response parser (bench/gb_http.c). The first input byte picks a split
 * size (1..7) and, in its top bit, a HEAD request (no body expected); the
 * rest is the server's byte stream. It is parsed twice through a
 * GB_IN_CAP buffer, the way gb_worker.c does: in one piece, and in small
 * pieces. Neither run may crash or read out of bounds, and both must reach
 * the same verdict, status and body length. Otherwise the parser's result
 * would depend on how the network happened to split the bytes.
 *
 * bench/ is an executable, not a library, so the parser source is included
 * here directly; it needs only libc (gb.h pulls in BoringSSL headers for
 * types only).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gb_http.c"

#define ABORT_UNLESS(c)                                                                            \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns -1 bad, 0 incomplete, 1 done, 2 done with extra bytes, 3 complete
 * at EOF, -2 buffer full without progress (head too large is caught first). */
static int run(const uint8_t *d, size_t n, size_t step, int no_body, int *status, uint64_t *body)
{
    static char buf[GB_IN_CAP];
    size_t len = 0;
    size_t off = 0;
    struct gb_resp r;

    gb_resp_reset(&r, no_body);
    for (;;) {
        size_t take = n - off;
        if (take > step) {
            take = step;
        }
        if (take > GB_IN_CAP - len) {
            take = GB_IN_CAP - len;
        }
        memcpy(buf + len, d + off, take);
        len += take;
        off += take;
        size_t used = 0;
        int rc = gb_resp_feed(&r, buf, len, &used);
        ABORT_UNLESS(used <= len);
        memmove(buf, buf + used, len - used);
        len -= used;
        *status = r.status;
        *body = r.body_bytes;
        if (rc == GB_FEED_BAD) {
            ABORT_UNLESS(r.why != NULL);
            return -1;
        }
        if (rc == GB_FEED_DONE) {
            ABORT_UNLESS(r.status >= 200 && r.status <= 599);
            return len > 0 ? 2 : 1;
        }
        if (off == n) {
            return gb_resp_eof(&r) ? 3 : 0;
        }
        if (take == 0) {
            return -2;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 >= GB_IN_CAP) {
        return 0;
    }
    size_t step = (size_t)(data[0] % 7) + 1;
    int no_body = (data[0] & 0x80) != 0;
    int s1 = 0;
    int s2 = 0;
    uint64_t b1 = 0;
    uint64_t b2 = 0;
    int r1 = run(data + 1, size - 1, SIZE_MAX, no_body, &s1, &b1);
    int r2 = run(data + 1, size - 1, step, no_body, &s2, &b2);
    /* "done with extra bytes" and "done" are the same verdict: a split run
     * can finish before the extra bytes arrive. */
    ABORT_UNLESS((r1 == 2 ? 1 : r1) == (r2 == 2 ? 1 : r2));
    if (r1 >= 1) {
        ABORT_UNLESS(s1 == s2 && b1 == b2);
    }
    return 0;
}
