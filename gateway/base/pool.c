/*
 * pool.c: per-thread size-class pools (see pool.h for why).
 *
 * A block is [header 16 B][user bytes]. The header keeps the requested size
 * (gh_pool_size, realloc) and the class, or CLS_NONE for a block that is
 * not pooled (512 bytes or less, or above the largest class), which goes to
 * malloc and back. A free
 * block on a list keeps its link in its first user bytes. Lists belong to
 * the thread that freed the block (a block may be allocated on one thread
 * and freed on another; it then serves the second). A thread's lists are
 * returned to malloc when it exits (pthread key destructor).
 *
 * Class sizes follow what a keep-alive request allocates: libevent rounds
 * an evbuffer chain to a power of two (the proxy's read reservations fit a
 * 16 KiB chain; a response head fits 1 KiB).
 */
#include "gateway/base/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HDR 16
#define MAGIC 0x67687030u /* "ghp0" */
#define CLS_NONE 0xffffffffu
#define NCLS 4

struct hdr {
    uint64_t size;
    uint32_t cls;
    uint32_t magic;
};
_Static_assert(sizeof(struct hdr) == HDR, "header size");

/* Total block sizes (header included) and how many free blocks of each a
 * thread keeps: at most ~1.1 MiB per thread, only if it ever used them.
 * Nothing of MIN_POOLED bytes or less is pooled: those are the long-lived
 * objects (events, evbuffer structs) of every connection, and rounding them
 * up to a class cost ~1 KiB per idle connection (20.4 vs 19.4 KiB at 10,000
 * held); libevent's chains, the per-request blocks, are 1 KiB and up. */
static const size_t cls_total[NCLS] = {1024, 4096, 16384 + 1024, 32768 + 1024};
static const int cls_cap[NCLS] = {128, 64, 32, 8};
#define MIN_POOLED 512 /* blocks up to this size (header included) are not pooled */

struct tcache {
    void *head[NCLS];
    int n[NCLS];
    int registered;
    struct gh_pool_stats st;
};
static _Thread_local struct tcache tc;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static void tc_drain(void *arg)
{
    struct tcache *t = arg;
    for (int c = 0; c < NCLS; c++) {
        while (t->head[c] != NULL) {
            struct hdr *h = t->head[c];
            memcpy(&t->head[c], h + 1, sizeof(void *));
            free(h);
        }
        t->n[c] = 0;
    }
    /* A later destructor may still free blocks: they re-register, and
     * pthread runs this again. */
    t->registered = 0;
}

static void tc_make_key(void)
{
    (void)pthread_key_create(&tc_key, tc_drain);
}

static int class_of(size_t total)
{
    if (total <= MIN_POOLED) {
        return -1;
    }
    for (int c = 0; c < NCLS; c++) {
        if (total <= cls_total[c]) {
            return c;
        }
    }
    return -1;
}

static struct hdr *hdr_of(const void *p)
{
    struct hdr *h = (struct hdr *)((char *)p - HDR);
    if (h->magic != MAGIC) {
        abort(); /* not ours, or freed twice: never continue with a bad heap */
    }
    return h;
}

void *gh_pool_alloc(size_t n)
{
    if (n > SIZE_MAX - HDR) {
        return NULL;
    }
    int c = class_of(n + HDR);
    struct hdr *h = NULL;
    if (GH_POOL_CACHES && c >= 0 && tc.head[c] != NULL) {
        h = tc.head[c];
        memcpy(&tc.head[c], h + 1, sizeof(void *));
        tc.n[c]--;
        tc.st.hits++;
    } else {
        h = malloc(c >= 0 ? cls_total[c] : n + HDR);
        if (h == NULL) {
            return NULL;
        }
        tc.st.misses++;
    }
    h->size = n;
    h->cls = c >= 0 ? (uint32_t)c : CLS_NONE;
    h->magic = MAGIC;
    return h + 1;
}

void gh_pool_free(void *p)
{
    if (p == NULL) {
        return;
    }
    struct hdr *h = hdr_of(p);
    uint32_t c = h->cls;
    if (GH_POOL_CACHES && c != CLS_NONE && tc.n[c] < cls_cap[c]) {
        if (!tc.registered) {
            /* First block this thread keeps: have its lists freed at exit. */
            (void)pthread_once(&tc_once, tc_make_key);
            (void)pthread_setspecific(tc_key, &tc);
            tc.registered = 1;
        }
        h->magic = 0; /* a second free of the same block aborts */
        memcpy(h + 1, &tc.head[c], sizeof(void *));
        tc.head[c] = h;
        tc.n[c]++;
        return;
    }
    h->magic = 0;
    tc.st.freed++;
    free(h);
}

size_t gh_pool_size(const void *p)
{
    return p != NULL ? (size_t)hdr_of(p)->size : 0;
}

void *gh_pool_realloc(void *p, size_t n)
{
    if (p == NULL) {
        return gh_pool_alloc(n);
    }
    struct hdr *h = hdr_of(p);
    size_t cap = h->cls != CLS_NONE ? cls_total[h->cls] - HDR : (size_t)h->size;
    if (n <= cap) {
        h->size = n;
        return p;
    }
    void *q = gh_pool_alloc(n);
    if (q == NULL) {
        return NULL; /* p stays valid, as with realloc */
    }
    memcpy(q, p, (size_t)h->size);
    gh_pool_free(p);
    return q;
}

void gh_pool_thread_stats(struct gh_pool_stats *out)
{
    *out = tc.st;
}
