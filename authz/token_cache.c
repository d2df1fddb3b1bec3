/*
 * token_cache.c: a per-worker cache of verified tokens, keyed by the SHA-256
 * of the token bytes, so a keep-alive connection pays for one signature
 * check per token rather than per request (DESIGN.md section 1).
 *
 * Why it is built this way: it sits on the hot path, so it never allocates
 * after creation and every operation touches a bounded number of slots. The
 * table is open addressing over a power-of-two array; a key may live only in
 * the PROBE slots after its home slot, so a lookup is at most PROBE
 * comparisons. Insertion prefers, within that window, the same key, then an
 * empty slot, then an entry of an older key-set generation, then the least
 * recently used one (a per-cache tick). The hash is SHA-256, so its first
 * bytes are already uniform; an attacker who could aim collisions at one
 * window only evicts their own entries' neighbours, which costs a re-verify,
 * never a wrong answer: a hit requires all 32 bytes and the key-set
 * generation to match.
 *
 * A hit is only "this exact token was verified under this key set": the
 * caller still checks time, binding and revocation on every request. An
 * entry is dropped when its token has expired (now >= exp; the cache does
 * not know the issuer's skew, so a token inside its skew window is simply
 * re-verified) or when the key set generation changed.
 */
#include "authz/token.h"

#include <stdlib.h>
#include <string.h>

#define PROBE 8
#define CAP_MAX (1u << 20)

struct slot {
    uint8_t key[32];
    uint64_t gen;
    uint64_t used; /* tick of last get/put; 0 = empty */
    struct az_token *tok;
};

struct az_token_cache {
    size_t mask;
    uint64_t tick;
    struct slot slots[];
};

struct az_token_cache *az_token_cache_new(size_t capacity)
{
    size_t n = PROBE;
    if (capacity > CAP_MAX) {
        capacity = CAP_MAX;
    }
    while (n < capacity) {
        n <<= 1;
    }
    struct az_token_cache *c = calloc(1, sizeof(*c) + n * sizeof(c->slots[0]));
    if (c == NULL) {
        return NULL;
    }
    c->mask = n - 1;
    return c;
}

static void slot_clear(struct slot *s)
{
    az_token_unref(s->tok);
    memset(s, 0, sizeof(*s));
}

void az_token_cache_free(struct az_token_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i <= c->mask; i++) {
        slot_clear(&c->slots[i]);
    }
    free(c);
}

static size_t home_of(const struct az_token_cache *c, const uint8_t sha256[32])
{
    uint64_t h;
    memcpy(&h, sha256, sizeof(h));
    return (size_t)h & c->mask;
}

struct az_token *az_token_cache_get(struct az_token_cache *c, const uint8_t sha256[32],
                                    uint64_t keys_gen, int64_t now_s)
{
    if (c == NULL || sha256 == NULL) {
        return NULL;
    }
    size_t h = home_of(c, sha256);
    for (size_t i = 0; i < PROBE; i++) {
        struct slot *s = &c->slots[(h + i) & c->mask];
        if (s->tok == NULL || memcmp(s->key, sha256, 32) != 0) {
            continue;
        }
        if (s->gen != keys_gen || now_s >= s->tok->exp) {
            slot_clear(s); /* key set swapped, or token expired: evict */
            return NULL;
        }
        s->used = ++c->tick;
        return s->tok;
    }
    return NULL;
}

void az_token_cache_put(struct az_token_cache *c, const uint8_t sha256[32], uint64_t keys_gen,
                        struct az_token *t)
{
    if (c == NULL || sha256 == NULL || t == NULL) {
        return;
    }
    size_t h = home_of(c, sha256);
    /* Victim rank: the same key (replace), an empty slot, an entry from an
     * older key-set generation, then the least recently used. */
    struct slot *victim = NULL;
    int vrank = -1;
    for (size_t i = 0; i < PROBE; i++) {
        struct slot *s = &c->slots[(h + i) & c->mask];
        int rank;
        if (s->tok != NULL && memcmp(s->key, sha256, 32) == 0) {
            victim = s;
            break;
        }
        if (s->tok == NULL) {
            rank = 3;
        } else if (s->gen != keys_gen) {
            rank = 2;
        } else {
            rank = 1;
        }
        if (rank > vrank || (rank == vrank && rank == 1 && s->used < victim->used)) {
            victim = s;
            vrank = rank;
        }
    }
    struct az_token *ref = az_token_ref(t); /* take ours before dropping the old */
    slot_clear(victim);
    memcpy(victim->key, sha256, 32);
    victim->gen = keys_gen;
    victim->tok = ref;
    victim->used = ++c->tick;
}
