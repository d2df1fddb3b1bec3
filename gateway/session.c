/*
 * session.c: sessions across workers, and the revocation snapshot.
 *
 * A session is keyed by SHA-256(issuer, subject, certificate hash) so the
 * same person on another device, or another person on this device, is a
 * different session. Its id is random (128 bits) rather than derived, so a
 * fresh login after a revocation can start a new session for the same
 * triple. Revocation of a session is fail-closed on time: a token is taken
 * as a fresh login only if its iat is strictly after the second in which
 * the session was revoked (a token without iat never is).
 *
 * The revocation set is a sorted array per kind, searched with bsearch;
 * revocation counts are small (operators revoke by hand, logouts add one
 * per event) and the snapshot is rebuilt on each change by the control
 * thread, so reads need no locks at all.
 */
#include "gateway/session.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "gateway/base/util.h"

#define N_BUCKETS 4096

struct gw_sessions {
    pthread_mutex_t mu;
    struct gw_session *b[N_BUCKETS];
    size_t n;
};

struct gw_sessions *gw_sessions_new(void)
{
    struct gw_sessions *s = calloc(1, sizeof(*s));
    if (s != NULL) {
        pthread_mutex_init(&s->mu, NULL);
    }
    return s;
}

void gw_sessions_free(struct gw_sessions *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct gw_session *e = s->b[i];
        while (e != NULL) {
            struct gw_session *n = e->next;
            if (e->last_token) {
                az_token_unref(e->last_token);
            }
            free(e);
            e = n;
        }
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void key_of(const char *iss, const char *sub, const uint8_t cert[32], uint8_t out[32])
{
    SHA256_CTX h;
    SHA256_Init(&h);
    SHA256_Update(&h, iss, strlen(iss));
    SHA256_Update(&h, "\n", 1);
    SHA256_Update(&h, sub, strlen(sub));
    SHA256_Update(&h, "\n", 1);
    SHA256_Update(&h, cert, 32);
    SHA256_Final(out, &h);
}

static size_t bucket(const uint8_t key[32])
{
    return ((size_t)key[0] | (size_t)key[1] << 8) % N_BUCKETS;
}

static struct gw_session *find_key(struct gw_sessions *s, const uint8_t key[32])
{
    for (struct gw_session *e = s->b[bucket(key)]; e != NULL; e = e->next) {
        if (memcmp(e->key, key, 32) == 0) {
            return e;
        }
    }
    return NULL;
}

static struct gw_session *find_id(struct gw_sessions *s, const char *id)
{
    for (size_t i = 0; i < N_BUCKETS; i++) {
        for (struct gw_session *e = s->b[i]; e != NULL; e = e->next) {
            if (strcmp(e->id, id) == 0) {
                return e;
            }
        }
    }
    return NULL;
}

static void cpy(char *d, size_t cap, const char *s)
{
    snprintf(d, cap, "%.*s", (int)cap - 1, s ? s : "");
}

enum gh_reason gw_sessions_touch(struct gw_sessions *s, const struct az_token *t,
                                 const uint8_t cert_sha256[32], const char *cert_thumb_hex,
                                 const char *cert_subject, const char *addr, int64_t now_us,
                                 uint64_t bytes_in, char id_out[33], int *new_conn_bind)
{
    uint8_t key[32];
    key_of(t->iss, t->sub, cert_sha256, key);
    pthread_mutex_lock(&s->mu);
    struct gw_session *e = find_key(s, key);
    int64_t floor_s = 0;
    if (e != NULL && e->revoked) {
        int64_t revoked_s = e->revoked_us / 1000000;
        if (t->iat <= revoked_s || t->iat <= e->floor_iat_s) {
            pthread_mutex_unlock(&s->mu);
            return GH_R_SESSION_REVOKED;
        }
        /* A fresh login after the revocation: a new session takes the key,
         * and inherits the floor so the old tokens stay refused. */
        floor_s = revoked_s > e->floor_iat_s ? revoked_s : e->floor_iat_s;
        memset(e->key, 0, sizeof(e->key));
        e->dirty = 1;
        e = NULL;
    } else if (e != NULL && t->iat <= e->floor_iat_s) {
        pthread_mutex_unlock(&s->mu);
        return GH_R_SESSION_REVOKED;
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            pthread_mutex_unlock(&s->mu);
            return GH_R_OVERLOADED;
        }
        uint8_t rnd[16];
        gh_random(rnd, sizeof(rnd));
        gh_hex(rnd, 16, e->id);
        memcpy(e->key, key, 32);
        cpy(e->issuer, sizeof(e->issuer), t->iss);
        cpy(e->subject, sizeof(e->subject), t->sub);
        cpy(e->cert_thumb, sizeof(e->cert_thumb), cert_thumb_hex);
        cpy(e->cert_subject, sizeof(e->cert_subject), cert_subject);
        e->first_seen_us = now_us;
        e->floor_iat_s = floor_s;
        size_t bi = bucket(key);
        e->next = s->b[bi];
        s->b[bi] = e;
        s->n++;
    }
    e->last_seen_us = now_us;
    e->requests++;
    e->bytes_in += bytes_in;
    cpy(e->last_addr, sizeof(e->last_addr), addr);
    e->dirty = 1;
    if (e->last_token == NULL || memcmp(e->last_token->token_sha256, t->token_sha256, 32) != 0) {
        if (e->last_token != NULL) {
            az_token_unref(e->last_token);
        }
        e->last_token = az_token_ref((struct az_token *)t);
    }
    if (strcmp(id_out, e->id) != 0) {
        *new_conn_bind = 1;
        e->live_conns++;
    } else {
        *new_conn_bind = 0;
    }
    memcpy(id_out, e->id, 33);
    pthread_mutex_unlock(&s->mu);
    return GH_R_ALLOW;
}

void gw_sessions_conn(struct gw_sessions *s, const char *id, int delta)
{
    if (id == NULL || id[0] == '\0') {
        return;
    }
    pthread_mutex_lock(&s->mu);
    struct gw_session *e = find_id(s, id);
    if (e != NULL) {
        e->live_conns += delta;
        if (e->live_conns < 0) {
            e->live_conns = 0;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int gw_sessions_revoke(struct gw_sessions *s, const char *id, int64_t now_us)
{
    pthread_mutex_lock(&s->mu);
    struct gw_session *e = find_id(s, id);
    if (e != NULL) {
        e->revoked = 1;
        e->revoked_us = now_us;
        e->dirty = 1;
    }
    pthread_mutex_unlock(&s->mu);
    return e != NULL;
}

void gw_sessions_load(struct gw_sessions *s, const struct db_session *rows, size_t n)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        const struct db_session *r = &rows[i];
        if (find_id(s, r->id) != NULL || strlen(r->cert_thumb) != 64) {
            continue;
        }
        struct gw_session *e = calloc(1, sizeof(*e));
        if (e == NULL) {
            break;
        }
        memcpy(e->id, r->id, 33);
        cpy(e->issuer, sizeof(e->issuer), r->issuer);
        cpy(e->subject, sizeof(e->subject), r->subject);
        cpy(e->cert_thumb, sizeof(e->cert_thumb), r->cert_thumb);
        cpy(e->cert_subject, sizeof(e->cert_subject), r->cert_subject);
        uint8_t cert[32];
        for (int k = 0; k < 32; k++) {
            unsigned v;
            sscanf(r->cert_thumb + 2 * k, "%2x", &v);
            cert[k] = (uint8_t)v;
        }
        key_of(e->issuer, e->subject, cert, e->key);
        e->first_seen_us = r->first_seen_us;
        e->last_seen_us = r->last_seen_us;
        e->requests = r->requests;
        e->bytes_in = r->bytes_in;
        e->bytes_out = r->bytes_out;
        cpy(e->last_addr, sizeof(e->last_addr), r->last_addr);
        e->revoked = strcmp(r->state, "revoked") == 0;
        e->revoked_us = r->revoked_us;
        /* Only the newest session of a triple may own the key; it inherits
         * the revocation time of any revoked predecessor as its iat floor. */
        struct gw_session *other = find_key(s, e->key);
        if (other != NULL) {
            struct gw_session *older = other->first_seen_us <= e->first_seen_us ? other : e;
            struct gw_session *newer = older == other ? e : other;
            int64_t fl = older->revoked ? older->revoked_us / 1000000 : 0;
            if (older->floor_iat_s > fl) {
                fl = older->floor_iat_s;
            }
            if (fl > newer->floor_iat_s) {
                newer->floor_iat_s = fl;
            }
            memset(older->key, 0, sizeof(older->key));
        }
        size_t bi = bucket(e->key);
        e->next = s->b[bi];
        s->b[bi] = e;
        s->n++;
    }
    pthread_mutex_unlock(&s->mu);
}

static void to_row(const struct gw_session *e, struct db_session *r)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->id, e->id, 33);
    cpy(r->issuer, sizeof(r->issuer), e->issuer);
    cpy(r->subject, sizeof(r->subject), e->subject);
    cpy(r->cert_thumb, sizeof(r->cert_thumb), e->cert_thumb);
    cpy(r->cert_subject, sizeof(r->cert_subject), e->cert_subject);
    r->first_seen_us = e->first_seen_us;
    r->last_seen_us = e->last_seen_us;
    r->requests = e->requests;
    r->bytes_in = e->bytes_in;
    r->bytes_out = e->bytes_out;
    cpy(r->last_addr, sizeof(r->last_addr), e->last_addr);
    snprintf(r->state, sizeof(r->state), "%s",
             e->revoked ? "revoked" : (e->live_conns > 0 ? "active" : "ended"));
    r->revoked_us = e->revoked_us;
}

size_t gw_sessions_take_dirty(struct gw_sessions *s, struct db_session *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < N_BUCKETS && k < max; i++) {
        for (struct gw_session *e = s->b[i]; e != NULL && k < max; e = e->next) {
            if (e->dirty) {
                to_row(e, &out[k++]);
                e->dirty = 0;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

static int by_last_seen(const void *a, const void *b)
{
    const struct gw_session *x = a, *y = b;
    return x->last_seen_us < y->last_seen_us ? 1 : (x->last_seen_us > y->last_seen_us ? -1 : 0);
}

size_t gw_sessions_snapshot(struct gw_sessions *s, struct gw_session **out, size_t max)
{
    pthread_mutex_lock(&s->mu);
    size_t cap = s->n;
    struct gw_session *arr = calloc(cap ? cap : 1, sizeof(*arr));
    size_t k = 0;
    for (size_t i = 0; arr != NULL && i < N_BUCKETS; i++) {
        for (struct gw_session *e = s->b[i]; e != NULL && k < cap; e = e->next) {
            arr[k] = *e;
            arr[k].last_token = NULL;
            arr[k].next = NULL;
            k++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (arr != NULL) {
        qsort(arr, k, sizeof(*arr), by_last_seen);
    }
    *out = arr;
    return k < max ? k : max;
}

int gw_sessions_get(struct gw_sessions *s, const char *id, struct gw_session *out)
{
    pthread_mutex_lock(&s->mu);
    struct gw_session *e = find_id(s, id);
    if (e != NULL) {
        *out = *e;
        out->next = NULL;
        if (out->last_token != NULL) {
            az_token_ref(out->last_token);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return e != NULL ? 0 : -1;
}

size_t gw_sessions_count(struct gw_sessions *s, int active_only)
{
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    if (!active_only) {
        k = s->n;
    } else {
        for (size_t i = 0; i < N_BUCKETS; i++) {
            for (struct gw_session *e = s->b[i]; e != NULL; e = e->next) {
                k += e->live_conns > 0 && !e->revoked;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

/* ---- revocation sets ---------------------------------------------------- */

struct rev_entry {
    char target[256];
    int64_t expires_us; /* 0 = never */
};

struct gw_revset {
    atomic_int refs;
    uint64_t gen;
    struct rev_entry *kind[4];
    size_t n[4];
};

static int rev_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rev_entry *)a)->target, ((const struct rev_entry *)b)->target);
}

struct gw_revset *gw_revset_new(const struct db_revocation *rows, size_t n, uint64_t gen)
{
    struct gw_revset *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->gen = gen;
    for (int k = 0; k < 4; k++) {
        r->kind[k] = calloc(n ? n : 1, sizeof(struct rev_entry));
        if (r->kind[k] == NULL) {
            gw_revset_unref(r);
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int k = (int)rows[i].kind;
        if (k < 0 || k > 3 || rows[i].lifted_us != 0) {
            continue;
        }
        struct rev_entry *e = &r->kind[k][r->n[k]++];
        cpy(e->target, sizeof(e->target), rows[i].target);
        if (k == DB_REVOKE_CERT) {
            /* thumbprints compare in lowercase hex */
            for (char *p = e->target; *p; p++) {
                if (*p >= 'A' && *p <= 'F') {
                    *p = (char)(*p - 'A' + 'a');
                }
            }
        }
        e->expires_us = rows[i].expires_us;
    }
    for (int k = 0; k < 4; k++) {
        qsort(r->kind[k], r->n[k], sizeof(struct rev_entry), rev_cmp);
    }
    return r;
}

struct gw_revset *gw_revset_ref(struct gw_revset *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

void gw_revset_unref(struct gw_revset *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1) {
        return;
    }
    for (int k = 0; k < 4; k++) {
        free(r->kind[k]);
    }
    free(r);
}

uint64_t gw_revset_gen(const struct gw_revset *r)
{
    return r ? r->gen : 0;
}

static int in_force(const struct gw_revset *r, int kind, const char *target, int64_t now_us)
{
    if (r == NULL || target == NULL || target[0] == '\0' || r->n[kind] == 0) {
        return 0;
    }
    struct rev_entry key;
    cpy(key.target, sizeof(key.target), target);
    const struct rev_entry *lo = r->kind[kind];
    size_t n = r->n[kind];
    const struct rev_entry *e = bsearch(&key, lo, n, sizeof(*lo), rev_cmp);
    if (e == NULL) {
        return 0;
    }
    /* duplicates of one target sit next to each other: any one in force counts */
    while (e > lo && strcmp((e - 1)->target, target) == 0) {
        e--;
    }
    for (; e < lo + n && strcmp(e->target, target) == 0; e++) {
        if (e->expires_us == 0 || e->expires_us > now_us) {
            return 1;
        }
    }
    return 0;
}

enum gh_reason gw_revset_check_cert(const struct gw_revset *r, const char *thumb_hex,
                                    int64_t now_us)
{
    return in_force(r, DB_REVOKE_CERT, thumb_hex, now_us) ? GH_R_CERT_BLOCKED : GH_R_ALLOW;
}

enum gh_reason gw_revset_check(const struct gw_revset *r, const char *session_id,
                               const char *subject, const char *jti, const char *thumb_hex,
                               int64_t now_us)
{
    if (in_force(r, DB_REVOKE_CERT, thumb_hex, now_us)) {
        return GH_R_CERT_BLOCKED;
    }
    if (in_force(r, DB_REVOKE_SUBJECT, subject, now_us)) {
        return GH_R_SUBJECT_LOCKED;
    }
    if (in_force(r, DB_REVOKE_SESSION, session_id, now_us)) {
        return GH_R_SESSION_REVOKED;
    }
    if (in_force(r, DB_REVOKE_TOKEN, jti, now_us)) {
        return GH_R_TOKEN_REVOKED;
    }
    return GH_R_ALLOW;
}
