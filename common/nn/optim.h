// Learning-rate schedule, gradient-norm clipping, AdamW and EMA over a vit_layout's buffers.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/pool.h"
#include "nn/kernels.h"
#include "nn/model.h"

struct optim_settings {
    double lr, min_lr, warmup_init_lr;
    int64_t warmup_steps, total_steps;
    double weight_decay, beta1, beta2, eps;
    double grad_clip;  // 0: off
    double ema;        // 0: off
};

void optim_settings_from_run(struct optim_settings *s, const struct config *cfg,
                             int64_t total_steps);

// Learning rate for 0-based step t: linear warmup from warmup_init_lr to lr over
// warmup_steps, then cosine decay from lr to min_lr over the remaining steps.
double optim_lr_at(const struct optim_settings *s, int64_t t);

// The gradient norm is summed in blocks of OPTIM_NORM_BLOCK floats of the flat buffer: each
// block's sum of squares in double, then the blocks' sums added in block order. The result
// depends only on the buffer's length, not on the thread count, and a sharded optimizer whose
// slices start at block boundaries (worker/optim_shard.h) computes the same bits: each worker
// sums its own blocks, the workers exchange the block sums, and every worker folds them all.
#define OPTIM_NORM_BLOCK 4096
// Blocks of a buffer of n floats (the last one may be short).
size_t optim_norm_blocks(size_t n);
// out[i] = sum of squares of block first_block + i of grads (n floats), for nblocks blocks.
void optim_norm_partials(struct pool *pool, const struct kernels *k, const float *grads, size_t n,
                         size_t first_block, size_t nblocks, double *out);
// sqrt of the block sums added in order.
double optim_norm_fold(const double *partials, size_t nblocks);
// sqrt(sum of squares) of the whole gradient buffer: partials (optim_norm_blocks(n) doubles)
// then the fold.
double optim_grad_norm(struct pool *pool, const struct kernels *k, const float *grads, size_t n,
                       double *partials);

// One AdamW step (t = 1-based step count for bias correction) over [begin, end) of the flat
// buffer (every tensor's part of it), with weight decay only where tensor_info.decay, and
// gradients multiplied by grad_scale (the clipping coefficient). Then ema = (1-m)·ema + m·w
// when s->ema > 0. params and grads are the whole buffer; adam_m, adam_v and ema hold only
// [begin, end), from their index 0 (a sharded optimizer's slice; 0 and layout->total for all).
// The kernels are elementwise, so an element's result does not depend on the range.
void optim_adamw_step(struct pool *pool, const struct kernels *k, const struct vit_layout *layout,
                      const struct optim_settings *s, float *params, const float *grads,
                      float *adam_m, float *adam_v, float *ema, int64_t t, double lr,
                      double grad_scale, size_t first_trained, size_t begin, size_t end,
                      uint16_t *params_bf16, size_t bf16_end);
// (first_trained: tensors starting before this float offset are frozen and left untouched;
// 0 trains everything.) params_bf16, when not NULL: also params_bf16[i] = bf16(new params[i])
// for i < bf16_end (nn/bf16.h's rounding), written while the new weights are in L1 — the copy
// the next bf16 forward would otherwise round in a pass of its own. Only for a whole,
// unsharded, unfrozen update (first_trained 0, [begin, end) the whole buffer), so that every
// weight of the copy is rewritten.

// The clipping coefficient PyTorch's clip_grad_norm_ applies: min(1, clip / (norm + 1e-6)).
double optim_clip_scale(const struct optim_settings *s, double grad_norm);
