#include "data/order.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

// Stream ids that keep the order's draws apart from other uses of (seed, epoch).
enum { STREAM_SHARDS = 0x5348524400, STREAM_WINDOW = 0x57494e4400 };

struct global_order {
    size_t nshards;
    uint64_t total, window, seed, epoch;
    uint64_t *first;           // (nshards + 1) first global index of each shard, original order
    size_t *shard_perm;        // (nshards) shard at each place of the shuffled sequence
    uint64_t *perm_start;      // (nshards + 1) start of each place in the shuffled sequence
    uint64_t cached_window;    // UINT64_MAX: none
    uint64_t *window_perm;     // (window) sequence offset within the window for each position
};

struct global_order *global_order_create(const uint64_t *counts, size_t nshards, uint64_t seed,
                                         uint64_t epoch, uint64_t window) {
    struct global_order *o = xcalloc(1, sizeof *o);
    o->nshards = nshards;
    o->seed = seed;
    o->epoch = epoch;
    o->window = window ? window : ORDER_DEFAULT_WINDOW;
    o->first = xmalloc((nshards + 1) * sizeof *o->first);
    o->shard_perm = xmalloc((nshards ? nshards : 1) * sizeof *o->shard_perm);
    o->perm_start = xmalloc((nshards + 1) * sizeof *o->perm_start);
    o->first[0] = 0;
    for (size_t s = 0; s < nshards; s++) o->first[s + 1] = o->first[s] + counts[s];
    o->total = o->first[nshards];
    for (size_t s = 0; s < nshards; s++) o->shard_perm[s] = s;
    struct rng r;
    rng_init(&r, rng_key(seed, epoch, STREAM_SHARDS, 0));
    for (size_t i = nshards; i > 1; i--) {
        size_t j = (size_t)rng_below(&r, i);
        size_t t = o->shard_perm[i - 1];
        o->shard_perm[i - 1] = o->shard_perm[j];
        o->shard_perm[j] = t;
    }
    o->perm_start[0] = 0;
    for (size_t k = 0; k < nshards; k++) o->perm_start[k + 1] = o->perm_start[k] + counts[o->shard_perm[k]];
    o->cached_window = UINT64_MAX;
    o->window_perm = xmalloc(o->window * sizeof *o->window_perm);
    return o;
}

void global_order_destroy(struct global_order *o) {
    if (!o) return;
    free(o->first);
    free(o->shard_perm);
    free(o->perm_start);
    free(o->window_perm);
    free(o);
}

uint64_t global_order_count(const struct global_order *o) { return o->total; }

static void build_window(struct global_order *o, uint64_t w) {
    uint64_t begin = w * o->window, n = o->total - begin < o->window ? o->total - begin : o->window;
    for (uint64_t i = 0; i < n; i++) o->window_perm[i] = i;
    struct rng r;
    rng_init(&r, rng_key(o->seed, o->epoch, STREAM_WINDOW, w));
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = rng_below(&r, i);
        uint64_t t = o->window_perm[i - 1];
        o->window_perm[i - 1] = o->window_perm[j];
        o->window_perm[j] = t;
    }
    o->cached_window = w;
}

// Largest k with starts[k] <= x (starts ascending, starts[0] = 0, k < n).
static size_t upper_place(const uint64_t *starts, size_t n, uint64_t x) {
    size_t lo = 0, hi = n;  // answer in [lo, hi)
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (starts[mid] <= x) lo = mid;
        else hi = mid;
    }
    // Skip empty shards that share the same start.
    while (lo + 1 < n && starts[lo + 1] <= x) lo++;
    return lo;
}

uint64_t global_order_at(struct global_order *o, uint64_t position) {
    CATLIP_ASSERT(position < o->total);
    uint64_t w = position / o->window;
    if (w != o->cached_window) build_window(o, w);
    uint64_t seq = w * o->window + o->window_perm[position - w * o->window];
    size_t k = upper_place(o->perm_start, o->nshards, seq);
    size_t shard = o->shard_perm[k];
    return o->first[shard] + (seq - o->perm_start[k]);
}

void global_order_locate(const struct global_order *o, uint64_t sample, size_t *shard, uint64_t *local) {
    CATLIP_ASSERT(sample < o->total);
    size_t s = upper_place(o->first, o->nshards, sample);
    *shard = s;
    *local = sample - o->first[s];
}

void plan_global_order(const uint64_t *counts, size_t nshards, uint64_t seed, uint64_t epoch,
                       uint64_t window, uint64_t *out) {
    struct global_order *o = global_order_create(counts, nshards, seed, epoch, window);
    for (uint64_t p = 0; p < o->total; p++) out[p] = global_order_at(o, p);
    global_order_destroy(o);
}

void plan_worker_slice(uint64_t G, int w, int N, uint64_t *begin, uint64_t *end) {
    CATLIP_ASSERT(N > 0 && w >= 0 && w < N);
    uint64_t base = G / (uint64_t)N, extra = G % (uint64_t)N, uw = (uint64_t)w;
    *begin = uw * base + (uw < extra ? uw : extra);
    *end = *begin + base + (uw < extra ? 1 : 0);
}
