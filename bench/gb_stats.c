/*
 * gb_stats.c: fixed-size latency histograms and per-worker counters.
 *
 * Recording must cost next to nothing on the request path, so a histogram
 * is a flat array indexed by a log-linear bucket function (two significant
 * digits, the HdrHistogram idea without its configurability): one
 * __builtin_clzll, one shift, one increment. Each worker owns its stats;
 * the main thread merges them after the workers have been joined.
 */
#include <string.h>

#include "gb.h"

#define SUB 64u /* sub-buckets per power of two above the exact range */

static unsigned hist_index(uint64_t v)
{
    if (v < 2 * SUB) {
        return (unsigned)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
    unsigned shift = msb - 6u;                         /* >= 1 */
    return 2 * SUB + (shift - 1u) * SUB + (unsigned)((v >> shift) - SUB);
}

/* Midpoint of the bucket's range. */
static uint64_t hist_value(unsigned idx)
{
    if (idx < 2 * SUB) {
        return idx;
    }
    unsigned shift = (idx - 2 * SUB) / SUB + 1u;
    uint64_t m = (idx - 2 * SUB) % SUB + SUB;
    return (m << shift) + ((1ull << shift) >> 1);
}

void gb_hist_reset(struct gb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void gb_hist_record(struct gb_hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
}

void gb_hist_merge(struct gb_hist *into, const struct gb_hist *from)
{
    for (unsigned i = 0; i < GB_HIST_N; i++) {
        into->b[i] += from->b[i];
    }
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min) {
        into->min = from->min;
    }
    if (from->max > into->max) {
        into->max = from->max;
    }
}

uint64_t gb_hist_quantile(const struct gb_hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    double t = q * (double)h->count;
    uint64_t target = (uint64_t)t;
    if ((double)target < t || target == 0) {
        target++; /* ceil, and at least the first sample */
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < GB_HIST_N; i++) {
        seen += h->b[i];
        if (seen >= target) {
            uint64_t v = hist_value(i);
            if (v > h->max) {
                v = h->max;
            }
            if (v < h->min) {
                v = h->min;
            }
            return v;
        }
    }
    return h->max;
}

void gb_stats_reset(struct gb_stats *s)
{
    memset(s, 0, sizeof(*s));
    gb_hist_reset(&s->lat);
    gb_hist_reset(&s->hs);
}

void gb_stats_merge(struct gb_stats *into, const struct gb_stats *from)
{
    into->reqs += from->reqs;
    for (int i = 0; i < 600; i++) {
        into->status[i] += from->status[i];
    }
    into->mismatched += from->mismatched;
    for (int k = 0; k < GB_E_COUNT; k++) {
        into->err[k] += from->err[k];
        if (into->err_first[k][0] == '\0') {
            memcpy(into->err_first[k], from->err_first[k], GB_ERRMSG);
        }
    }
    into->bytes_in += from->bytes_in;
    into->bytes_out += from->bytes_out;
    into->connects += from->connects;
    into->handshakes += from->handshakes;
    into->resumed += from->resumed;
    into->server_closes += from->server_closes;
    into->idle_open += from->idle_open;
    into->unfinished += from->unfinished;
    gb_hist_merge(&into->lat, &from->lat);
    gb_hist_merge(&into->hs, &from->hs);
}
