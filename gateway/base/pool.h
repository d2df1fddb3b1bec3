/*
 * pool.h: per-thread pools of buffers for libevent.
 *
 * Why: in steady state a keep-alive request allocated 7 blocks and freed
 * them again. Five were libevent's: it frees an evbuffer's chain when it
 * drains, so the client and upstream read buffers, the rewritten response
 * head and the upstream request head (two adds) took a fresh chain on
 * every request. libevent lets the application supply its allocator
 * (event_set_mem_functions, called first thing in gatehouse's main), so
 * those chains now come from per-thread free lists by size class, as in
 * HAProxy's pools: no lock and no allocator call per request. The other
 * two are BoringSSL's record buffers, which it allocates with libc malloc
 * and frees whenever they are empty (SSL_MODE_RELEASE_BUFFERS is 0 in
 * BoringSSL: always on); its OPENSSL_memory_* hooks do not reach them.
 *
 * Every block carries a 16-byte header (requested size, class). Lists are
 * bounded per thread (see pool.c), so an idle connection still holds no
 * buffer and a thread keeps at most ~1.1 MiB; blocks under 1 KiB are
 * not pooled (a 16-byte header only). Built with AddressSanitizer,
 * blocks go straight to malloc/free (nothing cached) so use-after-free
 * stays detectable.
 */
#ifndef GH_BASE_POOL_H
#define GH_BASE_POOL_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the pools cache blocks; 0 under AddressSanitizer (pass-through). */
#if defined(__SANITIZE_ADDRESS__)
#define GH_POOL_CACHES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GH_POOL_CACHES 0
#endif
#endif
#ifndef GH_POOL_CACHES
#define GH_POOL_CACHES 1
#endif

void *gh_pool_alloc(size_t n);
void *gh_pool_realloc(void *p, size_t n);
void gh_pool_free(void *p);
/* Requested size of a block from gh_pool_alloc. */
size_t gh_pool_size(const void *p);

/* This thread's counters: blocks served from a pool list, and blocks that
 * needed malloc (first use, or a size above the largest class); blocks
 * given back to malloc because this thread's list was full. */
struct gh_pool_stats {
    uint64_t hits, misses, freed;
};
void gh_pool_thread_stats(struct gh_pool_stats *out);

#endif
