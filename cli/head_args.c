#include "cli/head_args.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "data/pipeline.h"
#include "data/shardlist.h"

void head_args_init(struct head_args *a) {
    memset(a, 0, sizeof *a);
    a->opt = HEAD_OPTIONS_DEFAULT;
}

int head_args_take(struct head_args *a, int opt, const char *arg) {
    int v;
    if (opt >= 0x1001 && opt <= 0x1006) a->given++;
    switch (opt) {
        case 0x1001:
            if ((v = head_senses_parse(arg)) < 0)
                return catlip_error_set("--senses must be first or vocab"), -1;
            a->opt.senses = (enum head_senses)v;
            return 1;
        case 0x1002:
            if ((v = head_pool_parse(arg)) < 0)
                return catlip_error_set("--pool must be none or hyponyms"), -1;
            a->opt.pool = (enum head_pool)v;
            return 1;
        case 0x1003:
            if ((v = head_calibrate_parse(arg)) < 0)
                return catlip_error_set("--calibrate must be none, prior, center or standardize"),
                       -1;
            a->opt.calibrate = (enum head_calibrate)v;
            a->calibrate_given = 1;
            return 1;
        case 0x1004: a->calibrate_on = arg; return 1;
        case 0x1005: a->max_reference = atol(arg); return 1;
        case 0x1006:
            if ((v = head_score_parse(arg)) < 0)
                return catlip_error_set("--score must be linear or noisy-or"), -1;
            a->opt.score = (enum head_score)v;
            a->score_given = 1;
            return 1;
        default: return 0;
    }
}

int head_args_finish(struct head_args *a, enum head_score default_score) {
    if (!a->score_given) a->opt.score = default_score;
    if (!a->calibrate_given)
        a->opt.calibrate = !a->calibrate_on                      ? HEAD_CALIBRATE_PRIOR
                           : a->opt.score == HEAD_SCORE_NOISY_OR ? HEAD_CALIBRATE_CENTER
                                                                 : HEAD_CALIBRATE_STANDARDIZE;
    if ((a->opt.calibrate == HEAD_CALIBRATE_CENTER ||
         a->opt.calibrate == HEAD_CALIBRATE_STANDARDIZE) &&
        !a->calibrate_on)
        return catlip_error_set("--calibrate %s needs --calibrate-on PATTERN (reference images)",
                                head_calibrate_name(a->opt.calibrate));
    return 0;
}

// Every usable image is kept: a caption counts as class 0, a .cls member as itself.
static int any_caption(void *ctx, const char *caption, size_t len, int32_t *classes, int max) {
    (void)ctx, (void)caption, (void)len;
    if (max < 1) return 0;
    classes[0] = 0;
    return 1;
}

void head_reference_free(struct head_reference *ref) {
    free(ref->features);
    free(ref->mean);
    free(ref->cov);
    memset(ref, 0, sizeof *ref);
}

int head_args_reference(const struct head_args *a, struct inference_model *m, int batch,
                        int decode_threads, struct head_reference *ref) {
    memset(ref, 0, sizeof *ref);
    if (a->opt.calibrate != HEAD_CALIBRATE_CENTER && a->opt.calibrate != HEAD_CALIBRATE_STANDARDIZE)
        return 0;
    struct shard_list shards = {0};
    if (shardlist_expand(a->calibrate_on, &shards) != 0) return -1;
    struct pipeline_options po = {
        .shards = (const char *const *)shards.paths,
        .nshards = shards.count,
        .global_batch = (uint64_t)batch,
        .nworkers = 1,
        .image_size = m->config.image_size,
        .num_classes = 1 << 16,
        .label = any_caption,
        .decode_threads = decode_threads,
        .compute_threads = -1,
    };
    memcpy(po.mean, m->mean, sizeof po.mean);
    memcpy(po.std, m->std, sizeof po.std);
    if (a->max_reference > 0) po.max_batches = (uint64_t)((a->max_reference + batch - 1) / batch);
    struct pipeline *p = pipeline_create(&po);
    if (!p) {
        shardlist_free(&shards);
        return -1;
    }
    int C = m->config.dim;
    double *mean = xcalloc((size_t)C, sizeof(double)),
           *cov = xcalloc((size_t)C * C, sizeof(double));
    long n = 0, cap = 256;
    float *features = xmalloc((size_t)cap * C * sizeof(float));
    struct batch b;
    while (pipeline_next(p, &b) == 1) {
        if (b.count == 0) continue;
        inference_forward(m, b.images, b.count);
        if (n + b.count > cap) {
            while (n + b.count > cap) cap *= 2;
            features = xrealloc(features, (size_t)cap * C * sizeof(float));
        }
        memcpy(features + (size_t)n * C, m->acts.lnf, (size_t)b.count * C * sizeof(float));
        for (int i = 0; i < b.count; i++) {
            const float *f = m->acts.lnf + (size_t)i * C;
            for (int x = 0; x < C; x++) {
                mean[x] += f[x];
                for (int y = 0; y < C; y++) cov[(size_t)x * C + y] += (double)f[x] * f[y];
            }
            n++;
        }
    }
    pipeline_destroy(p);
    shardlist_free(&shards);
    int rc = 0;
    if (n < 2) {
        rc = catlip_error_set("%s: fewer than 2 usable reference images", a->calibrate_on);
    } else {
        for (int x = 0; x < C; x++) mean[x] /= (double)n;
        for (int x = 0; x < C; x++)
            for (int y = 0; y < C; y++)
                cov[(size_t)x * C + y] = cov[(size_t)x * C + y] / (double)n - mean[x] * mean[y];
        log_info("calibrate: %s over %ld reference images from %s",
                 head_calibrate_name(a->opt.calibrate), n, a->calibrate_on);
        *ref =
            (struct head_reference){.C = C, .n = n, .features = features, .mean = mean, .cov = cov};
        return 0;
    }
    free(features);
    free(mean);
    free(cov);
    return rc;
}
