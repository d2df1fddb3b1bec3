/*
 * fuzz_admin.c: everything an admin client's bytes go through before any
 * control-plane call, exactly as admin.c runs it but without sockets:
 * incremental head scan (fed in two pieces to exercise resumption), strict
 * parse, routing, query decoding, the decision-query builder, and the JSON
 * body validators for the body that follows the head. The whole input is
 * also fed to the JSON validators directly, so JSON mutations need no valid
 * head in front.
 * Invariants: no crash, no read past the input, a routed request has an op,
 * every string that reaches logs or SQL is NUL-terminated and free of
 * control bytes, and an error always has a status and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/admin_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap) {
        abort(); /* not terminated */
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            abort();
        }
    }
}

static void check_printable(const char *s, size_t cap)
{
    check_clean(s, cap);
    for (size_t i = 0; s[i] != '\0'; i++) {
        if ((unsigned char)s[i] >= 0x7f) {
            abort();
        }
    }
}

static void bodies(const char *b, size_t n)
{
    struct gw_admin_revoke rv;
    struct gh_err err = {0};
    if (gw_admin_parse_revoke(b, n, &rv, &err) == 0) {
        check_clean(rv.kind, sizeof(rv.kind));
        check_clean(rv.target, sizeof(rv.target));
        check_clean(rv.reason, sizeof(rv.reason));
        if (rv.target[0] == '\0' || rv.expires_in_s < 0) {
            abort();
        }
    } else if (err.msg[0] == '\0' || err.reason != GH_R_ADMIN_BAD_REQUEST) {
        abort();
    }
    char v[GW_ADMIN_MAX_TEXT + 1];
    gh_err_clear(&err);
    if (gw_admin_parse_rollback(b, n, v, sizeof(v), &err) == 0) {
        check_clean(v, sizeof(v));
        if (v[0] == '\0') {
            abort();
        }
    } else if (err.msg[0] == '\0') {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > GW_ADMIN_MAX_HEAD + 65536) {
        return 0;
    }
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    static struct gw_admin_req req;
    struct gw_admin_scan st = {0};
    size_t half = size / 2;
    int rc = gw_admin_parse_request(buf, half, &st, &req);
    if (rc == 0) {
        rc = gw_admin_parse_request(buf, size, &st, &req);
    }
    if (rc == 1) {
        check_printable(req.method, sizeof(req.method));
        check_printable(req.path, sizeof(req.path));
        check_printable(req.error, sizeof(req.error));
        if (req.status != 0) {
            if (req.status < 400 || req.status > 599 || req.error[0] == '\0') {
                abort();
            }
        } else {
            if (req.op == GW_ADM_NONE || req.op >= GW_ADM__COUNT || req.head_len > size ||
                req.content_length < 0 || req.content_length > GW_ADMIN_MAX_BODY) {
                abort();
            }
            check_clean(req.id, sizeof(req.id));
            for (int i = 0; i < req.n_q; i++) {
                check_clean(req.q[i].key, sizeof(req.q[i].key));
                check_clean(req.q[i].val, sizeof(req.q[i].val));
            }
            struct db_query q;
            struct gh_err err = {0};
            if (gw_admin_decisions_query(&req, &q, &err) == 0) {
                if (q.decision < -1 || q.decision > 1 || q.limit < 0 || q.limit > 10000 ||
                    (q.reason != NULL && gh_reason_from_name(q.reason) < 0)) {
                    abort();
                }
            }
            int limit = 0;
            if (gw_admin_sessions_limit(&req, &limit, &err) == 0 && (limit < 0 || limit > 10000)) {
                abort();
            }
            size_t avail = size - req.head_len;
            size_t bl = (size_t)req.content_length < avail ? (size_t)req.content_length : avail;
            /* exact-size copy so ASan sees any overread of the body */
            char *body = malloc(bl ? bl : 1);
            if (body != NULL) {
                memcpy(body, buf + req.head_len, bl);
                bodies(body, bl);
                free(body);
            }
        }
    }
    bodies((const char *)data, size);
    free(buf);
    return 0;
}
