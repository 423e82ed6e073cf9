#include "nn/optim.h"

#include <math.h>
#include <string.h>

#include "core/check.h"

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

struct norm_task {
    const struct kernels *k;
    const float *x;
    size_t n;
    double partial[256];
};

static void norm_worker(void *arg, int ith, int nth) {
    struct norm_task *t = arg;
    long b, e;
    pool_split((long)t->n, ith, nth, &b, &e);
    t->partial[ith] = e > b ? t->k->sum_squares(t->x + b, e - b) : 0.0;
}

double optim_grad_norm(struct pool *pool, const struct kernels *k, const float *grads, size_t n) {
    struct norm_task t = {.k = k, .x = grads, .n = n};
    CATLIP_ASSERT(pool_size(pool) <= 256);
    pool_run(pool, norm_worker, &t);
    double sum = 0.0;
    for (int i = 0; i < pool_size(pool); i++) sum += t.partial[i];
    return sqrt(sum);
}

struct adamw_task {
    const struct kernels *k;
    const struct vit_layout *layout;
    const struct optim_settings *s;
    float *params, *adam_m, *adam_v, *ema;
    const float *grads;
    float lr, bc1, bc2, grad_scale;
    size_t first_trained;
};

static void adamw_worker(void *arg, int ith, int nth) {
    struct adamw_task *t = arg;
    const struct optim_settings *s = t->s;
    for (int i = 0; i < t->layout->ntensors; i++) {
        const struct tensor_info *ti = &t->layout->tensors[i];
        if (ti->offset < t->first_trained) continue;
        long b, e;
        pool_split((long)ti->numel, ith, nth, &b, &e);
        if (e <= b) continue;
        size_t o = ti->offset + (size_t)b;
        t->k->adamw_update(t->params + o, t->adam_m + o, t->adam_v + o, t->grads + o, e - b,
                           t->lr, (float)s->beta1, (float)s->beta2, (float)s->eps,
                           ti->decay ? (float)s->weight_decay : 0.0f, t->bc1, t->bc2,
                           t->grad_scale);
        if (t->ema && s->ema > 0)
            t->k->ema_update(t->ema + o, t->params + o, e - b, (float)s->ema);
    }
}

void optim_adamw_step(struct pool *pool, const struct kernels *k, const struct vit_layout *layout,
                      const struct optim_settings *s, float *params, const float *grads,
                      float *adam_m, float *adam_v, float *ema, int64_t t, double lr,
                      double grad_scale, size_t first_trained) {
    struct adamw_task task = {
        .k = k, .layout = layout, .s = s, .params = params, .adam_m = adam_m, .adam_v = adam_v,
        .ema = ema, .grads = grads, .lr = (float)lr,
        // The kernels form (1 - beta) from the float betas (1.0f - 0.999f = 0.00099998713,
        // not 0.001), so the bias corrections must use the same float betas, or every update
        // comes out ~7e-6 too large.
        .bc1 = (float)(1.0 - pow((double)(float)s->beta1, (double)t)),
        .bc2 = (float)(1.0 - pow((double)(float)s->beta2, (double)t)),
        .grad_scale = (float)grad_scale, .first_trained = first_trained};
    pool_run(pool, adamw_worker, &task);
}
