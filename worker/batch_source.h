// Where a worker's batches come from: WebDataset shards through the prefetching pipeline
// (captions labelled through WordNet and the vocabulary, or .cls classes; for model.objective
// clip, captions encoded by the tokenizer), or the built-in
// synthetic data. Either way a step's batch is a pure function of (seed, step, worker slice).
#pragma once
#include <stdint.h>

#include "catlip.pb-c.h"
#include "train/run.h"

struct batch_source;

struct local_batch {
    const float *images;   // (count, 3, S, S)
    const float *targets;  // (count, V)
    const int32_t *ids;    // model.objective clip: (count, T) caption token ids; else NULL
    int count;             // usable rows (its slice or micro-batch minus skipped samples)
};

// NULL with catlip_error() when the shards or the vocabulary cannot be used.
struct batch_source *batch_source_create(const struct run *run, int compute_threads);
void batch_source_destroy(struct batch_source *source);
// Micro-batch `micro` of this worker's slice of global step `step` (steps and micro-batches
// are taken in order). Unsplit (train.micro_batch 0 or >= the slice): micro 0 is the slice.
int batch_source_next(struct batch_source *source, int64_t step, int micro,
                      struct local_batch *out);
// Rows per micro-batch for a slice of `slice` rows and train.micro_batch (0: the slice).
int batch_source_micro_size(int slice, int64_t micro_batch);
// Micro-batches per step (1 unsplit).
int batch_source_micros(const struct batch_source *source);
// Skipped samples by reason so far, for Progress messages; the array stays owned by source.
size_t batch_source_skips(struct batch_source *source, Catlip__SkipCount ***out);
const char *batch_source_describe(const struct batch_source *source);
