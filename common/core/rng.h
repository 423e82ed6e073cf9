// Deterministic random numbers.
//
// Counter-based: a value is a pure function of (key, counter), so any stream can be
// reproduced from its seed and position alone — no hidden state to checkpoint, and the
// same numbers whatever the thread count or the order in which tensors are initialised.
#pragma once
#include <stdint.h>

// A stateless 64-bit mix (splitmix64 finaliser).
uint64_t rng_mix64(uint64_t x);
// A key derived from a seed and up to three stream ids (e.g. seed, epoch, sample index).
uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

// A sequential stream over one key; copyable, so its position is checkpointable.
struct rng {
    uint64_t key;
    uint64_t counter;
};
void rng_init(struct rng *r, uint64_t key);
uint64_t rng_u64(struct rng *r);
// Uniform in [0, 1) with 24 random bits (exact in float).
float rng_uniform(struct rng *r);
// Uniform in [0, n).
uint64_t rng_below(struct rng *r, uint64_t n);
// Standard normal (Box–Muller, both values used in turn is not kept: one draw per call).
double rng_normal(struct rng *r);
// Normal(0, std) truncated to [-2 std, 2 std] by resampling.
float rng_trunc_normal(struct rng *r, float std);
