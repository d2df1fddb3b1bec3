/*
 * row.c: one description of a decision row, used four ways -- to bind it
 * into the INSERT, to read it back, to build the SQL column list and to
 * compute its chain hash. The writer hashes the values it binds and the audit
 * hashes the values it reads, through the same db_row_hash, so a row hashes
 * alike on both sides exactly when its stored content is unchanged.
 *
 * Canonical serialization (docs/DECISION-LOG.md, "Hash chain"): the format
 * byte, then every column in DB_DECISION_COLUMNS order; an integer is 8
 * bytes big-endian (two's complement), a text is a 4-byte big-endian length
 * then its bytes. Lengths make the encoding unambiguous: no choice of field
 * contents can make two different rows serialize alike.
 */
#include "db/db_int.h"

#include <string.h>

#include <openssl/sha.h>

#define DB_COL_STR(n, t) "," #n
/* Skip the leading comma of ",id,ts_us,...". */
static const char cols_with_comma[] = DB_DECISION_COLUMNS(DB_COL_STR);
#undef DB_COL_STR
const char *const db_cols_sql = cols_with_comma + 1;

static const unsigned char col_is_text[DB_NCOLS] = {
#define DB_COL_TEXT(n, t) t,
    DB_DECISION_COLUMNS(DB_COL_TEXT)
#undef DB_COL_TEXT
};

void db_copy_str(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    if (dstlen == 0) {
        return;
    }
    size_t n = srclen < dstlen - 1 ? srclen : dstlen - 1;
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

static void set_text(struct db_val *v, const char *field, size_t cap)
{
    v->i = 0;
    v->s = field;
    v->n = strnlen(field, cap);
}

void db_row_from_decision(int64_t id, const struct db_decision *d, struct db_val v[DB_NCOLS])
{
    memset(v, 0, sizeof(struct db_val) * DB_NCOLS);
#define TXT(col) set_text(&v[DB_C_##col], d->col, sizeof(d->col))
    v[DB_C_id].i = id;
    v[DB_C_ts_us].i = d->ts_us;
    v[DB_C_worker].i = d->worker;
    v[DB_C_conn_id].i = (int64_t)d->conn_id;
    v[DB_C_request_id].i = (int64_t)d->request_id;
    TXT(session_id);
    TXT(client_addr);
    v[DB_C_client_port].i = d->client_port;
    TXT(cert_thumb);
    TXT(cert_subject);
    TXT(token_sub);
    TXT(token_iss);
    TXT(token_jti);
    TXT(route);
    TXT(method);
    TXT(host);
    TXT(path);
    /* Anything but an explicit allow is recorded as a deny (fail closed). */
    const char *dec = d->decision == GH_ALLOW ? "allow" : "deny";
    v[DB_C_decision].s = dec;
    v[DB_C_decision].n = strlen(dec);
    const char *rn = gh_reason_name(d->reason);
    v[DB_C_reason].s = rn;
    v[DB_C_reason].n = strlen(rn);
    TXT(rule_id);
    TXT(policy_version);
    v[DB_C_status].i = d->status;
    v[DB_C_bytes_in].i = (int64_t)d->bytes_in;
    v[DB_C_bytes_out].i = (int64_t)d->bytes_out;
    v[DB_C_latency_us].i = d->latency_us;
    TXT(detail);
#undef TXT
}

void db_row_from_stmt(sqlite3_stmt *st, int first, struct db_val v[DB_NCOLS])
{
    for (int c = 0; c < DB_NCOLS; c++) {
        v[c].i = 0;
        v[c].s = "";
        v[c].n = 0;
        if (col_is_text[c]) {
            /* Raw bytes as stored: no conversion, so the hash sees what the
             * writer bound. column_text before column_bytes (SQLite rule). */
            const unsigned char *t = sqlite3_column_text(st, first + c);
            if (t != NULL) {
                v[c].s = (const char *)t;
                v[c].n = (size_t)sqlite3_column_bytes(st, first + c);
            }
        } else {
            v[c].i = sqlite3_column_int64(st, first + c);
        }
    }
}

void db_row_to_decision(const struct db_val v[DB_NCOLS], int64_t *id, struct db_decision *d)
{
    memset(d, 0, sizeof(*d));
#define TXT(col) db_copy_str(d->col, sizeof(d->col), v[DB_C_##col].s, v[DB_C_##col].n)
    if (id != NULL) {
        *id = v[DB_C_id].i;
    }
    d->ts_us = v[DB_C_ts_us].i;
    d->worker = (int)v[DB_C_worker].i;
    d->conn_id = (uint64_t)v[DB_C_conn_id].i;
    d->request_id = (uint64_t)v[DB_C_request_id].i;
    TXT(session_id);
    TXT(client_addr);
    d->client_port = (int)v[DB_C_client_port].i;
    TXT(cert_thumb);
    TXT(cert_subject);
    TXT(token_sub);
    TXT(token_iss);
    TXT(token_jti);
    TXT(route);
    TXT(method);
    TXT(host);
    TXT(path);
    const struct db_val *dv = &v[DB_C_decision];
    d->decision = dv->n == 5 && memcmp(dv->s, "allow", 5) == 0 ? GH_ALLOW : GH_DENY;
    char rn[64];
    db_copy_str(rn, sizeof(rn), v[DB_C_reason].s, v[DB_C_reason].n);
    int r = gh_reason_from_name(rn);
    d->reason = r < 0 ? GH_R_INTERNAL : (enum gh_reason)r;
    TXT(rule_id);
    TXT(policy_version);
    d->status = (int)v[DB_C_status].i;
    d->bytes_in = (uint64_t)v[DB_C_bytes_in].i;
    d->bytes_out = (uint64_t)v[DB_C_bytes_out].i;
    d->latency_us = v[DB_C_latency_us].i;
    TXT(detail);
#undef TXT
}

int db_row_bind(sqlite3_stmt *st, int first, const struct db_val v[DB_NCOLS])
{
    for (int c = 0; c < DB_NCOLS; c++) {
        int rc;
        if (col_is_text[c]) {
            rc = sqlite3_bind_text(st, first + c, v[c].s, (int)v[c].n, SQLITE_STATIC);
        } else {
            rc = sqlite3_bind_int64(st, first + c, v[c].i);
        }
        if (rc != SQLITE_OK) {
            return -1;
        }
    }
    return 0;
}

static void put_be(uint8_t *p, uint64_t x, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)(x & 0xff);
        x >>= 8;
    }
}

void db_row_hash(const uint8_t prev[DB_HASH_LEN], const struct db_val v[DB_NCOLS],
                 uint8_t out[DB_HASH_LEN])
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, prev, DB_HASH_LEN);
    uint8_t fmt = DB_ROW_FORMAT;
    SHA256_Update(&ctx, &fmt, 1);
    for (int c = 0; c < DB_NCOLS; c++) {
        uint8_t b[8];
        if (col_is_text[c]) {
            put_be(b, (uint64_t)v[c].n, 4);
            SHA256_Update(&ctx, b, 4);
            if (v[c].n > 0) {
                SHA256_Update(&ctx, v[c].s, v[c].n);
            }
        } else {
            put_be(b, (uint64_t)v[c].i, 8);
            SHA256_Update(&ctx, b, 8);
        }
    }
    SHA256_Final(out, &ctx);
}
