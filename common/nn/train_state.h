// Everything one model replica trains with: parameters, gradients, AdamW moments, EMA,
// activations, and the step counter. A worker owns one; `bench step` and the reference
// test drive one directly.
#pragma once
#include <stdint.h>

#include "nn/optim.h"
#include "nn/text_tower.h"
#include "nn/vit.h"

struct train_state {
    struct vit_model model;
    struct vit_acts acts;
    struct optim_settings optim;
    float *params, *grads;          // each layout.total floats
    float *adam_m, *adam_v, *ema;   // each [shard_begin, shard_end) of the flat buffer
    size_t shard_begin, shard_end;  // 0 and layout.total unless sharded (train_state_shard)
    double *norm_blocks;            // (optim_norm_blocks(layout.total)) the norm's block sums
    int64_t step;  // optimiser steps taken
    double last_grad_norm, last_lr;
    // what is trained and how (defaults: CatLIP pre-training)
    enum { TRAIN_LOSS_BCE = 0, TRAIN_LOSS_CE = 1 } loss;
    float label_smoothing;  // for TRAIN_LOSS_CE
    int head_only;          // frozen backbone: only head.weight / head.bias train
    // model.objective clip (model.layout.config.clip): the text tower over the same buffers
    // (its parameters at layout.text_begin), its activations, and d loss / d its features.
    struct text_model text;
    struct text_acts text_acts;
    float *dtext;  // (max_batch, E)
};

// Sizes every buffer for batches of up to max_batch, initialises parameters from seed,
// EMA = parameters, moments = 0. The pool is borrowed, not owned.
void train_state_create(struct train_state *ts, const struct vit_config *config,
                        const struct optim_settings *optim, int max_batch, struct pool *pool,
                        uint64_t seed);
// The same for the sharded optimizer (ZeRO stage 1, train.shard_optimizer): the moments and
// the EMA hold only [state_begin, state_end) of the flat buffer (EMA = that range of the
// initial parameters); parameters and gradients stay whole. train_state_create is
// [0, layout.total).
void train_state_create_shard(struct train_state *ts, const struct vit_config *config,
                              const struct optim_settings *optim, int max_batch,
                              struct pool *pool, uint64_t seed, size_t state_begin,
                              size_t state_end);
void train_state_free(struct train_state *ts);

// Zeroes gradients, runs forward, loss and backward on a local batch of B images.
// Gradients are scaled by 1/global_batch (CoreNet's batch_mean over the global batch), so
// summing them over workers gives the global mean. Returns the loss summed over the local
// batch and classes, divided by global_batch.
double train_forward_backward(struct train_state *ts, const float *images, const float *targets,
                              int B, int global_batch, vit_grads_ready_fn on_ready,
                              void *ready_ctx);

// The same in parts, for gradient accumulation over micro-batches: zero once per step, then
// add each micro-batch's gradients (backward accumulates); on_ready only for the last one,
// when the ranges it reports are final. train_accumulate returns its batch's loss share.
void train_zero_grads(struct train_state *ts);
double train_accumulate(struct train_state *ts, const float *images, const float *targets, int B,
                        int global_batch, vit_grads_ready_fn on_ready, void *ready_ctx);
// grads *= factor (one pass; the rescale from the planned to the used global batch).
void train_scale_grads(struct train_state *ts, double factor);

// train.precision (VIT_FP32 by default): VIT_BF16 also sizes the bf16 weight copy. Master
// weights, gradients, moments and EMA stay fp32 either way, so a checkpoint does not depend
// on it and a run may resume in the other precision.
void train_state_set_precision(struct train_state *ts, enum vit_precision precision);

// model.objective clip, in two halves around the contrastive loss (worker/contrastive_sync.h:
// the loss spans every worker's batch): train_clip_forward runs both towers on B image-caption
// pairs (acts.logits: the image embeddings (B, E), text_acts.features: the text embeddings);
// then, with acts.dlogits and dtext holding d loss / d each embedding, and
// grads[layout.logit_scale] its gradient, train_clip_backward reports the logit scale final,
// runs the text tower's backward and then the image tower's (grads +=; zero them first), each
// range reported final through on_ready back to front over the whole buffer.
void train_clip_forward(struct train_state *ts, const float *images, const int32_t *ids, int B);
void train_clip_backward(struct train_state *ts, int B, vit_grads_ready_fn on_ready,
                         void *ready_ctx);

// After gradients are final (reduced over workers): global grad norm, clipping, AdamW at the
// scheduled learning rate, EMA; step += 1. clip: the log logit scale is then clamped to
// [0, ln 100], as OpenCLIP does after each step.
void train_apply_update(struct train_state *ts);

// train_apply_update's clipping, AdamW and EMA over [shard_begin, shard_end) with a global
// gradient norm computed elsewhere (over the workers' block sums); step += 1. Only that range
// of params changes.
void train_apply_update_with_norm(struct train_state *ts, double grad_norm);
