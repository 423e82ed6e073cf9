#include "nn/train_state.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/check.h"
#include "nn/contrastive.h"

void train_state_create(struct train_state *ts, const struct vit_config *config,
                        const struct optim_settings *optim, int max_batch, struct pool *pool,
                        uint64_t seed) {
    train_state_create_shard(ts, config, optim, max_batch, pool, seed, 0, SIZE_MAX);
}

void train_state_create_shard(struct train_state *ts, const struct vit_config *config,
                              const struct optim_settings *optim, int max_batch, struct pool *pool,
                              uint64_t seed, size_t state_begin, size_t state_end) {
    memset(ts, 0, sizeof *ts);
    vit_layout_init(&ts->model.layout, config);
    ts->model.pool = pool;
    ts->model.k = kernels_active();
    ts->optim = *optim;
    const size_t total = ts->model.layout.total;
    if (state_end > total) state_end = total;
    CATLIP_ASSERT(state_begin <= state_end);
    size_t bytes = total * sizeof(float), state_bytes = (state_end - state_begin) * sizeof(float);
    ts->params = xaligned_alloc(bytes);
    ts->grads = xaligned_alloc(bytes);
    ts->adam_m = xaligned_alloc(state_bytes);
    ts->adam_v = xaligned_alloc(state_bytes);
    ts->ema = optim->ema > 0 ? xaligned_alloc(state_bytes) : NULL;
    ts->shard_begin = state_begin;
    ts->shard_end = state_end;
    ts->norm_blocks = xmalloc(optim_norm_blocks(total) * sizeof(double));
    vit_init_params(&ts->model.layout, ts->params, seed);
    if (ts->ema) memcpy(ts->ema, ts->params + state_begin, state_bytes);
    vit_acts_create(&ts->acts, config, max_batch, pool_size(pool));
    if (config->clip) {
        ts->text.layout = *ts->model.layout.text;  // shares its tables; freed with the layout
        ts->text.pool = pool;
        ts->text.k = ts->model.k;
        text_acts_create(&ts->text_acts, &config->text, max_batch, pool_size(pool));
        ts->dtext = xaligned_alloc((size_t)max_batch * config->text.embed_dim * sizeof(float));
    }
}

void train_state_set_precision(struct train_state *ts, enum vit_precision precision) {
    if (precision == VIT_BF16) vit_acts_enable_bf16(&ts->acts, ts->model.layout.total);
    ts->model.precision = precision;
    if (ts->model.layout.text && precision == VIT_BF16) {
        text_acts_enable_bf16(&ts->text_acts, ts->text.layout.total);
        ts->text.bf16 = 1;
    }
}

void train_state_free(struct train_state *ts) {
    vit_acts_free(&ts->acts);
    if (ts->model.layout.text) text_acts_free(&ts->text_acts);
    free(ts->dtext);
    free(ts->params);
    free(ts->grads);
    free(ts->adam_m);
    free(ts->adam_v);
    free(ts->ema);
    free(ts->norm_blocks);
    vit_layout_free(&ts->model.layout);
    memset(ts, 0, sizeof *ts);
}

void train_zero_grads(struct train_state *ts) {
    memset(ts->grads, 0, ts->model.layout.total * sizeof(float));
}

double train_forward_backward(struct train_state *ts, const float *images, const float *targets,
                              int B, int global_batch, vit_grads_ready_fn on_ready,
                              void *ready_ctx) {
    train_zero_grads(ts);
    return train_accumulate(ts, images, targets, B, global_batch, on_ready, ready_ctx);
}

double train_accumulate(struct train_state *ts, const float *images, const float *targets, int B,
                        int global_batch, vit_grads_ready_fn on_ready, void *ready_ctx) {
    vit_forward(&ts->model, &ts->acts, ts->params, images, B);
    double loss = ts->loss == TRAIN_LOSS_CE
                      ? vit_loss_softmax_ce(&ts->model, &ts->acts, targets, B,
                                            1.0f / (float)global_batch, ts->label_smoothing)
                      : vit_loss_bce(&ts->model, &ts->acts, targets, B, 1.0f / (float)global_batch);
    vit_backward(&ts->model, &ts->acts, ts->params, ts->grads, B, ts->head_only, on_ready,
                 ready_ctx);
    return loss / global_batch;
}

void train_clip_forward(struct train_state *ts, const float *images, const int32_t *ids, int B) {
    vit_forward(&ts->model, &ts->acts, ts->params, images, B);
    text_forward(&ts->text, &ts->text_acts, ts->params + ts->model.layout.text_begin, ids, B);
}

// The text tower reports ranges of its own buffer; the caller's on_ready wants the whole one's.
struct text_ready {
    vit_grads_ready_fn on_ready;
    void *ctx;
    size_t base;
};

static void text_ready_shift(void *arg, size_t begin, size_t end) {
    struct text_ready *r = arg;
    r->on_ready(r->ctx, r->base + begin, r->base + end);
}

void train_clip_backward(struct train_state *ts, int B, vit_grads_ready_fn on_ready,
                         void *ready_ctx) {
    const struct vit_layout *L = &ts->model.layout;
    // The buffer is [image tower | text tower | logit scale]: reported from the end.
    if (on_ready) on_ready(ready_ctx, L->logit_scale, L->total);
    struct text_ready shift = {on_ready, ready_ctx, L->text_begin};
    text_backward(&ts->text, &ts->text_acts, ts->params + L->text_begin, ts->grads + L->text_begin,
                  ts->dtext, B, on_ready ? text_ready_shift : NULL, &shift);
    vit_backward(&ts->model, &ts->acts, ts->params, ts->grads, B, 0, on_ready, ready_ctx);
}

void train_scale_grads(struct train_state *ts, double factor) {
    const float f = (float)factor;
    float *g = ts->grads;
    for (size_t i = 0; i < ts->model.layout.total; i++) g[i] *= f;
}

void train_apply_update(struct train_state *ts) {
    CATLIP_ASSERT(ts->shard_begin == 0 && ts->shard_end == ts->model.layout.total);
    train_apply_update_with_norm(ts, optim_grad_norm(ts->model.pool, ts->model.k, ts->grads,
                                                     ts->model.layout.total, ts->norm_blocks));
}

void train_apply_update_with_norm(struct train_state *ts, double norm) {
    double lr = optim_lr_at(&ts->optim, ts->step);
    // bf16: the image tower's weights rounded for the next forward inside the update, when it
    // rewrites all of them (unsharded: a sharded update leaves the other slices to the
    // allgather; not frozen: AdamW skips the backbone).
    const struct vit_layout *L = &ts->model.layout;
    const int fused = ts->model.precision == VIT_BF16 && !ts->head_only &&
                      ts->shard_begin == 0 && ts->shard_end == L->total;
    optim_adamw_step(ts->model.pool, ts->model.k, L, &ts->optim, ts->params, ts->grads,
                     ts->adam_m, ts->adam_v, ts->ema, ts->step + 1, lr,
                     optim_clip_scale(&ts->optim, norm), ts->head_only ? L->head_w : 0,
                     ts->shard_begin, ts->shard_end, fused ? ts->acts.weights_bf16 : NULL,
                     L->image_end);
    ts->acts.weights_bf16_of = fused ? ts->params : NULL;
    if (ts->model.layout.text) {
        float *t = &ts->params[ts->model.layout.logit_scale];
        const float max = logf(CONTRASTIVE_SCALE_MAX);
        *t = *t < 0.0f ? 0.0f : *t > max ? max : *t;
    }
    ts->last_grad_norm = norm;
    ts->last_lr = lr;
    ts->step++;
}
