#include "nn/optim.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "nn/bf16.h"

void optim_settings_from_run(struct optim_settings *s, const struct config *cfg,
                             int64_t total_steps) {
    memset(s, 0, sizeof *s);
    s->lr = cfg->optim.lr;
    s->min_lr = cfg->optim.min_lr;
    s->warmup_init_lr = cfg->optim.warmup_init_lr;
    s->warmup_steps = cfg->optim.warmup_steps;
    s->total_steps = total_steps;
    s->weight_decay = cfg->optim.weight_decay;
    s->beta1 = cfg->optim.betas[0];
    s->beta2 = cfg->optim.betas[1];
    s->eps = cfg->optim.eps;
    s->grad_clip = cfg->optim.grad_clip;
    s->ema = cfg->optim.ema;
}

double optim_lr_at(const struct optim_settings *s, int64_t t) {
    if (t < s->warmup_steps)
        return s->warmup_init_lr + (s->lr - s->warmup_init_lr) * (double)t / (double)s->warmup_steps;
    int64_t span = s->total_steps - s->warmup_steps;
    if (span <= 0) return s->lr;
    double progress = (double)(t - s->warmup_steps) / (double)span;
    if (progress > 1.0) progress = 1.0;
    return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * progress));
}

double optim_clip_scale(const struct optim_settings *s, double grad_norm) {
    if (s->grad_clip <= 0) return 1.0;
    double coef = s->grad_clip / (grad_norm + 1e-6);
    return coef < 1.0 ? coef : 1.0;
}

size_t optim_norm_blocks(size_t n) {
    return (n + OPTIM_NORM_BLOCK - 1) / OPTIM_NORM_BLOCK;
}

struct norm_task {
    const struct kernels *k;
    const float *x;
    size_t n, first_block, nblocks;
    double *out;
};

static void norm_worker(void *arg, int ith, int nth) {
    struct norm_task *t = arg;
    long b, e;
    pool_split((long)t->nblocks, ith, nth, &b, &e);
    for (long i = b; i < e; i++) {
        size_t begin = (t->first_block + (size_t)i) * OPTIM_NORM_BLOCK;
        size_t end = begin + OPTIM_NORM_BLOCK < t->n ? begin + OPTIM_NORM_BLOCK : t->n;
        t->out[i] = t->k->sum_squares(t->x + begin, (long)(end - begin));
    }
}

void optim_norm_partials(struct pool *pool, const struct kernels *k, const float *grads, size_t n,
                         size_t first_block, size_t nblocks, double *out) {
    CATLIP_ASSERT(first_block + nblocks <= optim_norm_blocks(n));
    struct norm_task t = {
        .k = k, .x = grads, .n = n, .first_block = first_block, .nblocks = nblocks, .out = out};
    pool_run(pool, norm_worker, &t);
}

double optim_norm_fold(const double *partials, size_t nblocks) {
    double sum = 0.0;
    for (size_t i = 0; i < nblocks; i++) sum += partials[i];
    return sqrt(sum);
}

double optim_grad_norm(struct pool *pool, const struct kernels *k, const float *grads, size_t n,
                       double *partials) {
    size_t nblocks = optim_norm_blocks(n);
    optim_norm_partials(pool, k, grads, n, 0, nblocks, partials);
    return optim_norm_fold(partials, nblocks);
}

struct adamw_task {
    const struct kernels *k;
    const struct vit_layout *layout;
    const struct optim_settings *s;
    float *params, *adam_m, *adam_v, *ema;
    const float *grads;
    uint16_t *params_bf16;  // or NULL
    size_t bf16_end;
    float lr, bc1, bc2, grad_scale;
    size_t first_trained, begin, end;
};

// Floats of each array updated at a time: AdamW writes the new weights of a piece, and the EMA
// and the bf16 rounding read them while they are in L1 (5 arrays of 4 KB), instead of each
// streaming all 40 MB of weights back from memory in a pass of its own.
#define ADAMW_PIECE 1024

static void adamw_worker(void *arg, int ith, int nth) {
    struct adamw_task *t = arg;
    const struct optim_settings *s = t->s;
    const int ema = t->ema && s->ema > 0;
    for (int i = 0; i < t->layout->ntensors; i++) {
        const struct tensor_info *ti = &t->layout->tensors[i];
        if (ti->offset < t->first_trained) continue;
        // The tensor's part of [begin, end).
        size_t lo = ti->offset > t->begin ? ti->offset : t->begin;
        size_t hi = ti->offset + ti->numel < t->end ? ti->offset + ti->numel : t->end;
        if (hi <= lo) continue;
        long b, e;
        pool_split((long)(hi - lo), ith, nth, &b, &e);
        const float decay = ti->decay ? (float)s->weight_decay : 0.0f;
        for (long p = b; p < e; p += ADAMW_PIECE) {
            const long n = e - p < ADAMW_PIECE ? e - p : ADAMW_PIECE;
            size_t o = lo + (size_t)p, so = o - t->begin;  // in params/grads; in the state
            t->k->adamw_update(t->params + o, t->adam_m + so, t->adam_v + so, t->grads + o, n,
                               t->lr, (float)s->beta1, (float)s->beta2, (float)s->eps, decay,
                               t->bc1, t->bc2, t->grad_scale);
            if (ema) t->k->ema_update(t->ema + so, t->params + o, n, (float)s->ema);
            if (t->params_bf16 && o < t->bf16_end) {
                size_t m = t->bf16_end - o < (size_t)n ? t->bf16_end - o : (size_t)n;
                bf16_from_floats(t->params_bf16 + o, t->params + o, m);
            }
        }
    }
}

void optim_adamw_step(struct pool *pool, const struct kernels *k, const struct vit_layout *layout,
                      const struct optim_settings *s, float *params, const float *grads,
                      float *adam_m, float *adam_v, float *ema, int64_t t, double lr,
                      double grad_scale, size_t first_trained, size_t begin, size_t end,
                      uint16_t *params_bf16, size_t bf16_end) {
    CATLIP_ASSERT(begin <= end && end <= layout->total);
    CATLIP_ASSERT(!params_bf16 || (first_trained == 0 && begin == 0 && end == layout->total &&
                                   bf16_end <= layout->total));
    struct adamw_task task = {
        .k = k, .layout = layout, .s = s, .params = params, .adam_m = adam_m, .adam_v = adam_v,
        .ema = ema, .grads = grads, .lr = (float)lr,
        // The kernels form (1 - beta) from the float betas (1.0f - 0.999f = 0.00099998713,
        // not 0.001), so the bias corrections must use the same float betas, or every update
        // comes out ~7e-6 too large.
        .bc1 = (float)(1.0 - pow((double)(float)s->beta1, (double)t)),
        .bc2 = (float)(1.0 - pow((double)(float)s->beta2, (double)t)),
        .grad_scale = (float)grad_scale, .params_bf16 = params_bf16, .bf16_end = bf16_end,
        .first_trained = first_trained, .begin = begin,
        .end = end};
    pool_run(pool, adamw_worker, &task);
}
