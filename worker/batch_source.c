#include "worker/batch_source.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "data/order.h"
#include "data/pipeline.h"
#include "data/shardlist.h"
#include "data/synthetic.h"
#include "text/caption_labels.h"
#include "text/tokenizer.h"

struct batch_source {
    const struct run *run;
    // synthetic
    struct synthetic_data synthetic;
    float *images, *targets;
    int slice_begin, slice_size;
    int micro_size, micros;  // rows per micro-batch, micro-batches per step
    // shards
    struct shard_list shards;
    struct pipeline *pipeline;
    struct labeler *labeler;
    struct vocab *vocab;
    struct caption_labels labels;
    // clip: captions -> token ids (the pipeline's rows hold them as floats; ids as int32)
    struct tokenizer *tokenizer;
    int context;
    int32_t *ids;  // (micro_size, context)
    Catlip__SkipCount skip_rows[PIPELINE_SKIP_COUNT];
    Catlip__SkipCount *skip_ptrs[PIPELINE_SKIP_COUNT];
    char description[512];
};

// pipeline_label_fn for clip: a caption's token ids (<sot> words <eot>, padded with <pad> = 0,
// which the pipeline's zeroed row already holds). Thread-safe: the tokenizer is read-only.
static int caption_tokens(void *ctx, const char *caption, size_t len, int32_t *ids, int max) {
    const struct batch_source *s = ctx;
    CATLIP_ASSERT(s->context <= max);
    return tokenizer_encode(s->tokenizer, ids, s->context, caption, len, NULL);
}

struct batch_source *batch_source_create(const struct run *run, int compute_threads) {
    struct batch_source *s = xcalloc(1, sizeof *s);
    s->run = run;
    const struct config *cfg = &run->cfg;
    uint64_t begin, end;
    plan_worker_slice((uint64_t)cfg->train.global_batch, run->worker_index, run->nworkers, &begin, &end);
    s->slice_begin = (int)begin;
    s->slice_size = (int)(end - begin);
    s->micro_size = batch_source_micro_size(s->slice_size, cfg->train.micro_batch);
    s->micros = (s->slice_size + s->micro_size - 1) / s->micro_size;
    if (!strcmp(cfg->data.train, "synthetic")) {
        synthetic_create(&s->synthetic, (uint64_t)cfg->seed, run->model.image_size,
                         run->model.num_classes, run->epoch_samples);
        s->images = xaligned_alloc((size_t)s->micro_size * 3 * run->model.image_size *
                                   run->model.image_size * sizeof(float));
        s->targets = xaligned_alloc((size_t)s->micro_size * run->model.num_classes * sizeof(float));
        snprintf(s->description, sizeof s->description, "synthetic data, %lld samples an epoch",
                 (long long)run->epoch_samples);
        return s;
    }
    if (shardlist_expand(cfg->data.train, &s->shards) != 0) goto fail;
    const int clip = run->model.clip;
    if (clip) {
        s->tokenizer = tokenizer_load(cfg->data.tokenizer);
        if (!s->tokenizer) goto fail;
        s->context = run->model.text.context;
        s->ids = xaligned_alloc((size_t)s->micro_size * s->context * sizeof(int32_t));
    } else if (!strcmp(cfg->task, "pretrain")) {
        s->vocab = vocab_load(cfg->data.vocab);
        if (!s->vocab) goto fail;
        s->labeler = labeler_create(NULL, LABELER_NOUNS);
        if (!s->labeler) goto fail;
        s->labels.labeler = s->labeler;
        s->labels.vocab = s->vocab;
    }
    struct pipeline_options opt = {
        .shards = (const char *const *)s->shards.paths, .nshards = s->shards.count,
        .skip_missing_shards = cfg->data.skip_missing_shards, .seed = (uint64_t)cfg->seed,
        .start_step = (uint64_t)run->start_step, .global_batch = (uint64_t)cfg->train.global_batch,
        .worker = run->worker_index, .nworkers = run->nworkers, .train = 1,
        .micro_batch = s->micros > 1 ? s->micro_size : 0,
        .image_size = run->model.image_size,
        .num_classes = clip ? s->context : run->model.num_classes,
        .label = clip ? caption_tokens : s->labeler ? caption_labels : NULL,
        .label_ctx = clip ? (void *)s : s->labeler ? (void *)&s->labels : NULL,
        .target_ids = clip,
        .decode_threads = (int)cfg->data.decode_threads, .compute_threads = compute_threads,
    };
    for (int c = 0; c < 3; c++) {
        opt.mean[c] = (float)cfg->data.mean[c];
        opt.std[c] = (float)cfg->data.std[c];
    }
    s->pipeline = pipeline_create(&opt);
    if (!s->pipeline) goto fail;
    snprintf(s->description, sizeof s->description, "%zu shards, %llu samples; %s",
             s->shards.count, (unsigned long long)pipeline_samples(s->pipeline),
             pipeline_describe(s->pipeline));
    return s;
fail:
    batch_source_destroy(s);
    return NULL;
}

void batch_source_destroy(struct batch_source *s) {
    if (!s) return;
    if (s->pipeline) pipeline_destroy(s->pipeline);
    if (s->labeler) labeler_free(s->labeler);
    if (s->tokenizer) tokenizer_free(s->tokenizer);
    free(s->ids);
    if (s->vocab) vocab_free(s->vocab);
    if (s->shards.paths) shardlist_free(&s->shards);
    if (s->synthetic.prototypes) synthetic_free(&s->synthetic);
    free(s->images);
    free(s->targets);
    free(s);
}

int batch_source_micro_size(int slice, int64_t micro_batch) {
    return micro_batch > 0 && micro_batch < slice ? (int)micro_batch : slice;
}

int batch_source_micros(const struct batch_source *s) { return s->micros; }

int batch_source_next(struct batch_source *s, int64_t step, int micro, struct local_batch *out) {
    if (!s->pipeline) {
        const int64_t G = s->run->cfg.train.global_batch;
        int offset = micro * s->micro_size;
        int rows = s->slice_size - offset < s->micro_size ? s->slice_size - offset : s->micro_size;
        synthetic_batch(&s->synthetic, step * G + s->slice_begin + offset, rows, s->images,
                        s->targets);
        out->images = s->images;
        out->targets = s->targets;
        out->count = rows;
        out->ids = NULL;
        return 0;
    }
    struct batch b;
    if (pipeline_next(s->pipeline, &b) != 1)
        return catlip_error_set("the data pipeline ended before step %lld", (long long)step);
    if ((int64_t)b.step != step || b.micro != micro)
        return catlip_error_set("the data pipeline is at step %llu (micro-batch %d), training at "
                                "%lld (micro-batch %d)", (unsigned long long)b.step, b.micro,
                                (long long)step, micro);
    out->images = b.images;
    out->targets = b.targets;
    out->count = b.count;
    out->ids = NULL;
    if (s->ids) {
        // clip: the rows' token ids, held exactly as floats (ids < 2^24)
        const size_t n = (size_t)b.count * s->context;
        for (size_t i = 0; i < n; i++) s->ids[i] = (int32_t)b.targets[i];
        out->ids = s->ids;
    }
    return 0;
}

size_t batch_source_skips(struct batch_source *s, Catlip__SkipCount ***out) {
    *out = s->skip_ptrs;
    if (!s->pipeline) return 0;
    uint64_t counts[PIPELINE_SKIP_COUNT];
    pipeline_skips(s->pipeline, counts);
    size_t n = 0;
    for (int i = 0; i < PIPELINE_SKIP_COUNT; i++) {
        if (!counts[i]) continue;
        catlip__skip_count__init(&s->skip_rows[n]);
        s->skip_rows[n].reason = (char *)pipeline_skip_names[i];
        s->skip_rows[n].count = counts[i];
        s->skip_ptrs[n] = &s->skip_rows[n];
        n++;
    }
    return n;
}

const char *batch_source_describe(const struct batch_source *s) { return s->description; }
