/*
 * fuzz_ctl_resp.c: gatehousectl's admin API response parser (tui/resp.c),
 * the one parser in gatehousectl that reads bytes straight off the socket.
 * The first input byte picks the mode (bit 0: stream mode with line
 * draining, as `decisions --follow` does; bits 1-3: feed step 1..8 bytes or
 * all at once; bit 4: small body limit), the rest is the response. Checks:
 * no crash or leak, the buffered body never exceeds its limit and is always
 * NUL-terminated, `used` never exceeds what was fed, a failed parser stays
 * failed. Links gh_base (mapping: ctl_resp gh_base); resp.c is compiled in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tui/resp.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t mode = data[0];
    int stream = mode & 1;
    size_t step = (mode >> 1) & 7;
    size_t max = (mode & 16) ? 64 : 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct tui_resp *r = malloc(sizeof(*r));
    if (r == NULL) {
        return 0;
    }
    tui_resp_init(r, max, stream);
    size_t off = 0;
    int failed = 0;
    while (off < len && r->state != TUI_RS_DONE) {
        size_t n = step == 0 ? len - off : (len - off < step ? len - off : step);
        size_t used = 0;
        struct gh_err e;
        if (tui_resp_feed(r, in + off, n, &used, &e) != 0) {
            failed = 1;
            break;
        }
        if (used > n) {
            abort();
        }
        if (r->body != NULL && (r->body_len > r->max_body || r->body[r->body_len] != '\0')) {
            abort();
        }
        if (stream) {
            const char *line;
            size_t adv = 0;
            while (tui_resp_line(r, &line, &adv) >= 0) {
                if (adv == 0 || adv > r->body_len + 1) {
                    abort();
                }
                tui_resp_consume(r, adv);
            }
        }
        off += used;
        if (used < n) {
            break;
        }
    }
    struct gh_err e;
    size_t used;
    if (failed && tui_resp_feed(r, "x", 1, &used, &e) != -1) {
        abort(); /* a failed parser must stay failed */
    }
    if (!failed && tui_resp_eof(r, &e) < -1) {
        abort(); /* only 0 or -1 are defined results */
    }
    tui_resp_cleanup(r);
    free(r);
    return 0;
}
