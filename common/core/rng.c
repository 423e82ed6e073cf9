#include "core/rng.h"

#include <math.h>

uint64_t rng_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t k = rng_mix64(seed ^ 0x5ca1ab1e0ddba11ULL);
    k = rng_mix64(k ^ a);
    k = rng_mix64(k ^ (b * 0xd1342543de82ef95ULL));
    k = rng_mix64(k ^ (c * 0xaf251af3b0f025b5ULL));
    return k;
}

void rng_init(struct rng *r, uint64_t key) {
    r->key = key;
    r->counter = 0;
}

uint64_t rng_u64(struct rng *r) {
    // Two rounds of mixing over (key, counter): a tiny counter-based generator.
    uint64_t x = rng_mix64(r->key + 0x632be59bd9b4e019ULL * ++r->counter);
    return rng_mix64(x ^ r->key);
}

float rng_uniform(struct rng *r) { return (float)(rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t rng_below(struct rng *r, uint64_t n) {
    // Lemire's multiply-shift with rejection: unbiased.
    uint64_t x = rng_u64(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            x = rng_u64(r);
            m = (__uint128_t)x * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double rng_normal(struct rng *r) {
    double u1 = ((double)(rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0, 1]
    double u2 = (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);          // [0, 1)
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

float rng_trunc_normal(struct rng *r, float std) {
    for (;;) {
        double z = rng_normal(r);
        if (z >= -2.0 && z <= 2.0) return (float)(z * std);
    }
}
