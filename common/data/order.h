// The global sample order (docs/architecture.md, "Data").
//
// Samples are numbered globally: shard 0's samples first (in index order), then shard 1's,
// and so on. For each (seed, epoch) the order is a permutation of all of them, built with
// locality so reads stay mostly sequential:
//   1. the shards are shuffled (Fisher-Yates on rng_key(seed, epoch, SHARDS));
//   2. their samples are laid end to end in that shard order;
//   3. that sequence is cut into windows of `window` samples and each window is shuffled on
//      its own (rng_key(seed, epoch, window index)).
// Each sample appears exactly once per epoch, a window touches at most a few shards, and the
// order is a pure function of (shard sizes, seed, epoch, window) — not of the worker count.
//
// Global batch b of an epoch is positions [b*G, (b+1)*G) of the order (a partial last batch
// is dropped for training). Worker w of N takes the contiguous slice plan_worker_slice() gives,
// which depends only on (G, w, N); concatenating the workers' slices gives the batch.
//
// Positions are resolved lazily (O(shards) memory, one window permutation cached), so a
// worker never materialises an epoch of DataComp size.
//
// Example:
//     struct global_order *order = global_order_create(counts, nshards, seed, epoch, 8192);
//     uint64_t begin, end;
//     plan_worker_slice(G, worker, nworkers, &begin, &end);
//     for (uint64_t i = begin; i < end; i++) {
//         uint64_t sample = global_order_at(order, b * G + i);
//         size_t shard; uint64_t local;
//         global_order_locate(order, sample, &shard, &local);
//         ...
//     }
//     global_order_destroy(order);
#pragma once
#include <stddef.h>
#include <stdint.h>

#define ORDER_DEFAULT_WINDOW 8192

struct global_order;

// shard_counts: samples per shard (zeros allowed). window 0: ORDER_DEFAULT_WINDOW.
struct global_order *global_order_create(const uint64_t *shard_counts, size_t nshards, uint64_t seed,
                                         uint64_t epoch, uint64_t window);
void global_order_destroy(struct global_order *order);
uint64_t global_order_count(const struct global_order *order);
// The global sample index at `position` (< count) of this epoch's order. Not thread-safe
// (it caches the current window's permutation); use one order object per thread.
uint64_t global_order_at(struct global_order *order, uint64_t position);
// The shard of a global sample index and its index within the shard.
void global_order_locate(const struct global_order *order, uint64_t sample, size_t *shard, uint64_t *local);

// The whole epoch's order into out[count] (tests and small data).
void plan_global_order(const uint64_t *shard_counts, size_t nshards, uint64_t seed, uint64_t epoch,
                       uint64_t window, uint64_t *out);
// Worker w of N's contiguous part [begin, end) of a global batch of G (offsets within the
// batch; the first G % N workers get one more).
void plan_worker_slice(uint64_t global_batch, int worker, int nworkers, uint64_t *begin, uint64_t *end);
// Full global batches per epoch (training drops the partial last one).
static inline uint64_t plan_batches_per_epoch(uint64_t samples, uint64_t global_batch) {
    return global_batch ? samples / global_batch : 0;
}
