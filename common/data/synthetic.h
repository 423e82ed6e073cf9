// Built-in synthetic image–label data: learnable without any files, for the quickstart,
// benchmarks and tests. Each class has a fixed random low-frequency colour pattern; a
// sample is the mean of its classes' patterns plus noise, labelled with those classes.
// Everything is a pure function of (seed, sample index), like the real pipeline.
#pragma once
#include <stdint.h>

struct synthetic_data {
    uint64_t seed;
    int image_size, num_classes;
    int64_t num_samples;   // samples in one epoch
    float *prototypes;     // (num_classes, 3, S, S)
};

void synthetic_create(struct synthetic_data *d, uint64_t seed, int image_size, int num_classes,
                      int64_t num_samples);
void synthetic_free(struct synthetic_data *d);
// Fills images (B, 3, S, S) and multi-hot targets (B, V) for samples first .. first+B-1
// (indices wrap around num_samples).
void synthetic_batch(const struct synthetic_data *d, int64_t first, int B, float *images,
                     float *targets);
