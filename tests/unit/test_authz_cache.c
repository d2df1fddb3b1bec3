/*
 * test_authz_cache.c: the per-worker verified-token cache -- hits, misses on
 * another key-set generation, eviction of expired tokens on lookup,
 * replacement when the probe window is full, reference ownership, and that
 * get/put never allocate (counted with an allocator hook).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz/token_internal.h"

/* ---- allocation counting: ASan's hook in sanitizer builds, otherwise
 * malloc/calloc/realloc interposed on glibc's own entry points. */
static volatile long g_allocs;

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang spells it this way */
#define TEST_ASAN 1
#endif
#endif

#if defined(TEST_ASAN)
/* from <sanitizer/allocator_interface.h>, which Debian's gcc does not ship */
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *));
static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    g_allocs++;
}
static void on_free(const volatile void *p)
{
    (void)p;
}
static void install_alloc_counter(void)
{
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n)
{
    g_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    g_allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    g_allocs++;
    return __libc_realloc(p, n);
}
static void install_alloc_counter(void)
{
}
#endif

/* A token object as az_token_verify would hand out (refs 1). The cache only
 * looks at exp and the refcount. */
static struct az_token *mk(int64_t exp)
{
    struct az_token *t = calloc(1, sizeof(*t));
    t->refs = 1;
    t->exp = exp;
    t->claims = json_object();
    return t;
}

static int refs(const struct az_token *t)
{
    return __atomic_load_n(&t->refs, __ATOMIC_SEQ_CST);
}

static void key(uint8_t k[32], uint32_t home, uint32_t uniq)
{
    memset(k, 0, 32);
    memcpy(k, &home, sizeof(home)); /* the slot index comes from the first bytes */
    memcpy(k + 16, &uniq, sizeof(uniq));
}

static void test_hit_miss_generation(void **s)
{
    (void)s;
    struct az_token_cache *c = az_token_cache_new(64);
    assert_non_null(c);
    uint8_t k1[32], k2[32];
    key(k1, 1, 1);
    key(k2, 1, 2);
    struct az_token *t = mk(1000);
    assert_null(az_token_cache_get(c, k1, 7, 100));
    az_token_cache_put(c, k1, 7, t);
    assert_int_equal(refs(t), 2); /* the cache holds its own reference */
    assert_ptr_equal(az_token_cache_get(c, k1, 7, 100), t);
    assert_null(az_token_cache_get(c, k2, 7, 100)); /* same home, other key */
    /* the caller drops its reference: the cached token stays valid */
    az_token_unref(t);
    assert_int_equal(refs(t), 1);
    assert_ptr_equal(az_token_cache_get(c, k1, 7, 100), t);
    /* another key-set generation: miss, and the entry is gone */
    assert_null(az_token_cache_get(c, k1, 8, 100));
    assert_null(az_token_cache_get(c, k1, 7, 100));
    az_token_cache_free(c);
}

static void test_expiry_evicts(void **s)
{
    (void)s;
    struct az_token_cache *c = az_token_cache_new(16);
    uint8_t k1[32];
    key(k1, 3, 1);
    struct az_token *t = mk(1000);
    az_token_cache_put(c, k1, 1, t);
    assert_ptr_equal(az_token_cache_get(c, k1, 1, 999), t);
    assert_int_equal(refs(t), 2);
    assert_null(az_token_cache_get(c, k1, 1, 1000)); /* now >= exp */
    assert_int_equal(refs(t), 1);                    /* reference released */
    assert_null(az_token_cache_get(c, k1, 1, 999));  /* and not coming back */
    az_token_unref(t);
    az_token_cache_free(c);
}

static void test_replace_same_key(void **s)
{
    (void)s;
    struct az_token_cache *c = az_token_cache_new(16);
    uint8_t k1[32];
    key(k1, 5, 1);
    struct az_token *a = mk(1000), *b = mk(2000);
    az_token_cache_put(c, k1, 1, a);
    az_token_cache_put(c, k1, 2, b); /* re-verified under a new key set */
    assert_int_equal(refs(a), 1);
    assert_ptr_equal(az_token_cache_get(c, k1, 2, 10), b);
    az_token_cache_put(c, k1, 2, b); /* same object again: no double ref */
    assert_int_equal(refs(b), 2);
    az_token_unref(a);
    az_token_unref(b);
    az_token_cache_free(c);
}

/* Fill one probe window (8 slots) then add more: the least recently used
 * entry is replaced, and every entry's reference is accounted for. */
static void test_full_window_lru(void **s)
{
    (void)s;
    struct az_token_cache *c = az_token_cache_new(8); /* exactly one window */
    struct az_token *t[10];
    uint8_t k[10][32];
    for (int i = 0; i < 8; i++) {
        key(k[i], 0, (uint32_t)i);
        t[i] = mk(1000);
        az_token_cache_put(c, k[i], 1, t[i]);
    }
    for (int i = 0; i < 8; i++) {
        assert_ptr_equal(az_token_cache_get(c, k[i], 1, 1), t[i]);
    }
    /* touch 0 so that 1 becomes the least recently used */
    assert_ptr_equal(az_token_cache_get(c, k[0], 1, 1), t[0]);
    key(k[8], 0, 8);
    t[8] = mk(1000);
    az_token_cache_put(c, k[8], 1, t[8]);
    assert_null(az_token_cache_get(c, k[1], 1, 1));
    assert_int_equal(refs(t[1]), 1);
    assert_ptr_equal(az_token_cache_get(c, k[0], 1, 1), t[0]);
    assert_ptr_equal(az_token_cache_get(c, k[8], 1, 1), t[8]);
    /* an entry of an older generation is replaced before any LRU victim */
    key(k[9], 0, 9);
    t[9] = mk(1000);
    az_token_cache_put(c, k[2], 0, t[2]); /* k[2] now stored under gen 0 */
    az_token_cache_put(c, k[9], 1, t[9]);
    assert_null(az_token_cache_get(c, k[2], 0, 1));
    assert_ptr_equal(az_token_cache_get(c, k[3], 1, 1), t[3]);
    assert_ptr_equal(az_token_cache_get(c, k[9], 1, 1), t[9]);
    az_token_cache_free(c); /* releases every cached reference */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(refs(t[i]), 1);
        az_token_unref(t[i]);
    }
}

static void test_no_allocation_on_hot_path(void **s)
{
    (void)s;
    struct az_token_cache *c = az_token_cache_new(1024);
    struct az_token *t[64];
    uint8_t k[64][32];
    for (int i = 0; i < 64; i++) {
        key(k[i], (uint32_t)(i * 2654435761u), (uint32_t)i);
        t[i] = mk(1000);
    }
    long before = g_allocs;
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 64; i++) {
            if (az_token_cache_get(c, k[i], 1, 10) == NULL) {
                az_token_cache_put(c, k[i], 1, t[i]);
            }
        }
    }
    assert_int_equal(g_allocs - before, 0);
    /* the counter does count: one malloc is seen */
    void *p = malloc(16);
    assert_true(g_allocs - before >= 1);
    free(p);
    az_token_cache_free(c);
    for (int i = 0; i < 64; i++) {
        az_token_unref(t[i]);
    }
}

static void test_edges(void **s)
{
    (void)s;
    az_token_cache_free(NULL);
    uint8_t k1[32] = {0};
    assert_null(az_token_cache_get(NULL, k1, 0, 0));
    az_token_cache_put(NULL, k1, 0, NULL);
    struct az_token_cache *c = az_token_cache_new(0); /* rounded up */
    assert_non_null(c);
    az_token_cache_put(c, k1, 0, NULL); /* ignored */
    assert_null(az_token_cache_get(c, k1, 0, 0));
    az_token_cache_free(c);
}

int main(void)
{
    install_alloc_counter();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_generation),       cmocka_unit_test(test_expiry_evicts),
        cmocka_unit_test(test_replace_same_key),          cmocka_unit_test(test_full_window_lru),
        cmocka_unit_test(test_no_allocation_on_hot_path), cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
