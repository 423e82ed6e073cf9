// Learning-rate schedule, gradient-norm clipping, AdamW and EMA over a vit_layout's buffers.
#pragma once
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

// sqrt(sum of squares) of the whole gradient buffer; per-thread partial sums in double
// combined in thread order.
double optim_grad_norm(struct pool *pool, const struct kernels *k, const float *grads,
                       size_t n);

// One AdamW step (t = 1-based step count for bias correction) over every tensor of the
// layout, with weight decay only where tensor_info.decay, and gradients multiplied by
// grad_scale (the clipping coefficient). Then ema = (1-m)·ema + m·w when s->ema > 0.
void optim_adamw_step(struct pool *pool, const struct kernels *k, const struct vit_layout *layout,
                      const struct optim_settings *s, float *params, const float *grads,
                      float *adam_m, float *adam_v, float *ema, int64_t t, double lr,
                      double grad_scale, size_t first_trained);
// (first_trained: tensors starting before this float offset are frozen and left untouched;
// 0 trains everything.)

// The clipping coefficient PyTorch's clip_grad_norm_ applies: min(1, clip / (norm + 1e-6)).
double optim_clip_scale(const struct optim_settings *s, double grad_norm);
