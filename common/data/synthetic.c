#include "data/synthetic.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"

void synthetic_create(struct synthetic_data *d, uint64_t seed, int S, int V, int64_t n) {
    d->seed = seed;
    d->image_size = S;
    d->num_classes = V;
    d->num_samples = n;
    // Only the first 64 classes get patterns (and labels): enough to learn, cheap to build
    // with a head of tens of thousands of synsets.
    int patterned = V < 64 ? V : 64;
    d->prototypes = xaligned_alloc((size_t)patterned * 3 * S * S * sizeof(float));
    for (int c = 0; c < patterned; c++) {
        struct rng r;
        rng_init(&r, rng_key(seed, 0x5e7, (uint64_t)c, 0));
        for (int ch = 0; ch < 3; ch++) {
            float fx = 1.0f + 3.0f * rng_uniform(&r), fy = 1.0f + 3.0f * rng_uniform(&r);
            float phase = 6.2831853f * rng_uniform(&r), amp = 1.0f + rng_uniform(&r);
            float *p = d->prototypes + ((size_t)c * 3 + ch) * S * S;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    p[y * S + x] = amp * sinf(6.2831853f * (fx * x + fy * y) / S + phase);
        }
    }
}

void synthetic_free(struct synthetic_data *d) {
    free(d->prototypes);
    memset(d, 0, sizeof *d);
}

void synthetic_batch(const struct synthetic_data *d, int64_t first, int B, float *images,
                     float *targets) {
    const int S = d->image_size, V = d->num_classes, patterned = V < 64 ? V : 64;
    const size_t plane = (size_t)3 * S * S;
    memset(targets, 0, (size_t)B * V * sizeof(float));
    for (int b = 0; b < B; b++) {
        int64_t index = (first + b) % d->num_samples;
        struct rng r;
        rng_init(&r, rng_key(d->seed, 0xda7a, (uint64_t)index, 0));
        int nlabels = 1 + (int)rng_below(&r, 3), labels[3];
        for (int j = 0; j < nlabels; j++) {
            labels[j] = (int)rng_below(&r, (uint64_t)patterned);
            targets[(size_t)b * V + labels[j]] = 1.0f;
        }
        float *img = images + b * plane;
        for (size_t i = 0; i < plane; i++) img[i] = 0.5f * (rng_uniform(&r) - 0.5f);
        for (int j = 0; j < nlabels; j++) {
            const float *p = d->prototypes + (size_t)labels[j] * plane;
            for (size_t i = 0; i < plane; i++) img[i] += p[i] / nlabels;
        }
    }
}
