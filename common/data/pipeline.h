// The prefetching data pipeline: WebDataset shards in, normalised image batches and multi-hot
// targets out, decoded ahead of the trainer by a few threads.
//
// Which samples: the global order of order.h over every sample of every shard (each shard's
// index is loaded or built at creation). Training step t (counted from epoch 0, so a resumed
// run passes the step it stopped at) is global batch b = t % batches_per_epoch of epoch
// e = t / batches_per_epoch; this worker decodes its slice plan_worker_slice(G, worker,
// nworkers) of it — in micro-batches of micro_batch rows when that is set and smaller than the
// slice (each a pipeline batch, positions [m·micro_batch, ...) of the slice, in order; the last
// may be shorter), so the buffers hold one micro-batch, not the slice. Evaluation (train = 0)
// reads the shards in file order once, keeps the partial last batch, and ends.
//
// What each sample becomes: the image is decoded and transformed (transform.h: training
// RandomResizedCrop + flip with randomness from (seed, epoch, sample), evaluation resize +
// centre crop), normalised with mean/std into (3, S, S) float; the target row gets 1.0 at
// each class index. A sample with a `.cls` member uses that class; otherwise its caption goes
// through the labeller callback.
//
// Bad data never stops training: a sample that cannot be used is left out of its batch and
// counted per reason (pipeline_skip_names); a batch then carries fewer than its slice's rows
// (`count`), never a zero image. Skips found while indexing are counted once, at creation.
// A shard that cannot be opened is an error naming it, unless skip_missing_shards is set (then
// it counts as "missing_shard" and contributes no samples).
//
// Threads: decode_threads threads (hwloc-bound off the compute cores when there are enough,
// see cpu_binding.h) take samples one at a time and fill a ring of ring_depth batch slots;
// they sleep on condition variables when the ring is full (back-pressure), and the trainer
// sleeps in pipeline_next() until its next batch is complete. Nothing spins.
// pipeline_destroy() stops and joins them.
//
// The result is deterministic: a batch's rows, their order and their pixels depend only on
// (shards, seed, step, G, worker, nworkers, options), not on thread timing or thread count.
//
// Example:
//     static int label(void *ctx, const char *caption, size_t len, int32_t *idx, int max) {
//         return labeler_label(ctx, caption, len, idx, max);  // the text side's labeller
//     }
//     struct shard_list shards;
//     if (shardlist_expand(cfg->data.train, &shards) != 0) die(catlip_error());
//     struct pipeline_options opt = {
//         .shards = (const char *const *)shards.paths, .nshards = shards.count,
//         .seed = cfg->seed, .start_step = step, .global_batch = cfg->train.global_batch,
//         .worker = w, .nworkers = n, .train = 1, .image_size = 224,
//         .mean = {0.485f, 0.456f, 0.406f}, .std = {0.229f, 0.224f, 0.225f},
//         .num_classes = vocab_size, .label = label, .label_ctx = labeler,
//         .decode_threads = cfg->data.decode_threads, .compute_threads = pool_size(pool),
//     };
//     struct pipeline *p = pipeline_create(&opt);
//     if (!p) die(catlip_error());
//     struct batch batch;
//     while (pipeline_next(p, &batch) == 1) {
//         // batch.images: (batch.count, 3, 224, 224), batch.targets: (batch.count, vocab_size)
//         char skips[512];
//         pipeline_format_skips(p, skips, sizeof skips);  // "no_synset=12 bad_image=1"
//     }
//     pipeline_destroy(p);
//     shardlist_free(&shards);
#pragma once
#include <stddef.h>
#include <stdint.h>

enum pipeline_skip {
    // Found while indexing (same order as enum shard_skip).
    PIPELINE_SKIP_BAD_TAR_HEADER,
    PIPELINE_SKIP_TRUNCATED_MEMBER,
    PIPELINE_SKIP_MISSING_IMAGE,
    PIPELINE_SKIP_MISSING_TXT,
    PIPELINE_SKIP_EMPTY_IMAGE,
    // Found while reading a sample.
    PIPELINE_SKIP_BAD_IMAGE,      // JPEG that does not decode (corrupt, truncated, not a JPEG)
    PIPELINE_SKIP_SMALL_IMAGE,    // a side < 8 pixels
    PIPELINE_SKIP_BAD_CAPTION,    // empty, not UTF-8, or refused by the labeller (< 0)
    PIPELINE_SKIP_NO_SYNSET,      // the labeller found no class (returned 0); no labeller and no .cls
    PIPELINE_SKIP_BAD_CLASS,      // a .cls that is not an integer in [0, num_classes)
    PIPELINE_SKIP_READ_ERROR,     // pread failed (shard changed or removed while training)
    PIPELINE_SKIP_MISSING_SHARD,  // shards that could not be opened (skip_missing_shards)
    PIPELINE_SKIP_COUNT
};
extern const char *const pipeline_skip_names[PIPELINE_SKIP_COUNT];  // "bad_tar_header", ...

// Caption -> class indices, at most `max` of them written to class_indices. Returns how many
// (0: no usable class, the sample is skipped as "no_synset"; < 0: the caption is unusable,
// "bad_caption"). Called from decode threads concurrently: it must be thread-safe.
typedef int (*pipeline_label_fn)(void *ctx, const char *caption, size_t len, int32_t *class_indices,
                                 int max);

struct pipeline_options {
    const char *const *shards;  // shard paths, e.g. shardlist_expand()'s
    size_t nshards;
    const char *index_cache_dir;  // where indexes go when a shard's folder is read-only; NULL: default
    int skip_missing_shards;

    uint64_t seed;
    uint64_t start_step;    // training: global batches already taken since epoch 0 (resume point)
    uint64_t global_batch;  // G, samples per global batch over all workers
    int worker, nworkers;   // this worker's index and the worker count (nworkers <= G)
    int train;              // 1: training order and augmentation; 0: one evaluation pass
    uint64_t max_batches;   // stop after this many steps; 0: endless (train) / one pass (eval)
    int micro_batch;        // train: rows per batch handed out (a slice in chunks); 0: the slice
    uint64_t order_window;  // shuffle window (order.h); 0: default

    int image_size;         // S
    int resize_size;        // eval: shorter side before the centre crop; 0: S * 256 / 224
    float mean[3], std[3];  // per channel, on the 0-1 scale; std 0: ImageNet's mean/std

    int num_classes;          // C, the target width
    pipeline_label_fn label;  // NULL: only samples with a .cls member are usable
    void *label_ctx;
    int target_ids;           // 1: a row holds the label callback's values themselves, as floats
                              // (CLIP's caption token ids, C = the context; exact below 2^24),
                              // the rest 0; no .cls (a sample with one is "bad_class")

    int decode_threads;   // 0: 1
    int ring_depth;       // batches decoded ahead; 0: 2
    int compute_threads;  // the compute pool's thread count (decode threads go on the cores after
                          // those); <= 0: unknown, the decode threads are not bound
};

// A batch handed to the trainer. The buffers belong to the pipeline and stay valid until the
// next pipeline_next() or pipeline_destroy().
struct batch {
    float *images;          // (count, 3, S, S), normalised, NCHW
    float *targets;         // (count, C), 1.0 at each class of the sample, else 0.0
    const uint64_t *samples;  // (count) global sample indices, in row order
    int count;              // rows usable (slice_size minus skipped samples)
    int slice_size;         // rows planned: this worker's slice, or this micro-batch of it
    int micro, micros;      // train: micro-batch `micro` of the step's `micros` (0 of 1 unsplit)
    uint64_t global_size;   // samples in the whole global batch (G, or less for eval's last)
    uint64_t step;          // batches since epoch 0 (training) / batch number (eval)
    uint64_t epoch;
    uint64_t batch_in_epoch;
};

// Loads (or builds) every shard's index, starts the decode threads. NULL with catlip_error()
// on a shard that cannot be opened (unless skip_missing_shards), on fewer samples than one
// global batch (training), or on bad options.
struct pipeline *pipeline_create(const struct pipeline_options *options);
// The next batch, in step order. Blocks until it is ready. Returns 1, or 0 at the end (eval
// pass done, max_batches reached).
int pipeline_next(struct pipeline *pipeline, struct batch *out);
void pipeline_destroy(struct pipeline *pipeline);

uint64_t pipeline_samples(const struct pipeline *pipeline);            // over all shards
uint64_t pipeline_batches_per_epoch(const struct pipeline *pipeline);  // train: full batches; eval: ceil
void pipeline_skips(const struct pipeline *pipeline, uint64_t counts[PIPELINE_SKIP_COUNT]);
// "no_synset=12 bad_image=1" (non-zero counts only; "" when none). Returns the length.
int pipeline_format_skips(const struct pipeline *pipeline, char *buf, size_t size);
// One line about the decode threads' placement (cpu_binding_describe).
const char *pipeline_describe(const struct pipeline *pipeline);
