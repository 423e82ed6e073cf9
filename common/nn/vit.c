#include "nn/vit.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "nn/matmul.h"

// ---------------------------------------------------------------------------------------
// activation buffers

// The ViT's blocks: full (not causal) attention over CLS + patches.
static struct transformer_shape vit_shape(const struct vit_config *c) {
    return (struct transformer_shape){c->tokens, c->dim, c->heads, c->head_dim, c->mlp_hidden, 0};
}

// Two passes over the same carving (nn/transformer.h): count, allocate, hand out pointers.
static void acts_carve(struct vit_acts *a, const struct vit_config *c, int B, int nthreads,
                       int bf16) {
    memset(a, 0, sizeof *a);
    a->max_batch = B;
    a->config = *c;
    a->nthreads = nthreads;
    const struct transformer_shape s = vit_shape(c);
    const size_t C = (size_t)c->dim, V = (size_t)c->num_classes;
    const size_t K = 3 * (size_t)c->patch_size * (size_t)c->patch_size;
    a->blocks = xcalloc((size_t)c->depth, sizeof *a->blocks);
    struct carver cv = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass) carver_allocate(&cv, &a->memory, &a->floats);
        a->patches = carve_floats(&cv, (size_t)B * (size_t)c->num_patches * K);
        a->x0 = carve_floats(&cv, (size_t)B * (size_t)c->tokens * C);
        for (int l = 0; l < c->depth; l++)
            transformer_block_acts_carve(&cv, &a->blocks[l], &s, B, bf16);
        a->cls = carve_floats(&cv, (size_t)B * C);
        a->lnf = carve_floats(&cv, (size_t)B * C);
        a->lnf_mean = carve_floats(&cv, (size_t)B);
        a->lnf_rstd = carve_floats(&cv, (size_t)B);
        a->logits = carve_floats(&cv, (size_t)B * V);
        transformer_scratch_carve(&cv, &a->scratch, &s, B, nthreads, bf16);
        a->dlogits = carve_floats(&cv, (size_t)B * V);
        a->dpooled = carve_floats(&cv, (size_t)B * C);
    }
    a->precision = bf16 ? VIT_BF16 : VIT_FP32;
    for (int l = 0; bf16 && l < c->depth; l++)
        transformer_block_acts_share_scratch(&a->blocks[l], &a->scratch);
}

void vit_acts_create(struct vit_acts *a, const struct vit_config *c, int B, int nthreads) {
    acts_carve(a, c, B, nthreads, 0);
}

void vit_acts_free(struct vit_acts *a) {
    free(a->memory);
    free(a->blocks);
    free(a->weights_bf16);
    memset(a, 0, sizeof *a);
}

int vit_precision_parse(const char *name) {
    if (strcmp(name, "fp32") == 0) return VIT_FP32;
    if (strcmp(name, "bf16") == 0) return VIT_BF16;
    return -1;
}

const char *vit_precision_name(enum vit_precision precision) {
    return precision == VIT_BF16 ? "bf16" : "fp32";
}

void vit_acts_enable_bf16(struct vit_acts *a, size_t params) {
    if (a->precision != VIT_BF16) {
        struct vit_config c = a->config;
        int B = a->max_batch, nthreads = a->nthreads;
        vit_acts_free(a);
        acts_carve(a, &c, B, nthreads, 1);
    }
    if (a->weights_bf16 == NULL) a->weights_bf16 = xaligned_alloc(params * sizeof(uint16_t));
}

// How the blocks run: the pool, the kernels and, in bf16, this forward's rounded weights.
static struct transformer_exec vit_exec(const struct vit_model *m, const struct vit_acts *a) {
    return (struct transformer_exec){m->pool, m->k,
                                     m->precision == VIT_BF16 ? a->weights_bf16 : NULL};
}

// The bf16 copy of the weight at `offset`, or NULL in fp32 (matmul.h's weight_bf16).
static const uint16_t *weight_bf16(const struct vit_model *m, const struct vit_acts *a,
                                   size_t offset) {
    return m->precision == VIT_BF16 ? a->weights_bf16 + offset : NULL;
}

// ---------------------------------------------------------------------------------------
// patch embedding and token assembly

struct embed_task {
    const struct vit_config *c;
    const float *images, *params_pos, *params_cls, *patch_bias, *pe;
    float *patches, *x0;
    int B;
    // backward
    const float *dres;
    float *dpos, *dcls, *dpatch;
};

// patches[b, gy*grid+gx, (ch, ky, kx)] = image[b, ch, gy*P+ky, gx*P+kx]
static void unfold_worker(void *arg, int ith, int nth) {
    struct embed_task *t = arg;
    const int S = t->c->image_size, P = t->c->patch_size, G = t->c->grid;
    const long K = 3L * P * P, N = t->c->num_patches;
    long b0, e0;
    pool_split((long)t->B * N, ith, nth, &b0, &e0);
    for (long i = b0; i < e0; i++) {
        long b = i / N, n = i % N, gy = n / G, gx = n % G;
        float *dst = t->patches + i * K;
        for (int ch = 0; ch < 3; ch++)
            for (int ky = 0; ky < P; ky++) {
                const float *src = t->images + ((b * 3 + ch) * S + gy * P + ky) * (long)S + gx * P;
                memcpy(dst + (ch * P + ky) * P, src, (size_t)P * sizeof *src);
            }
    }
}

// x0[b, 0] = cls + pos[0]; x0[b, 1+n] = pe[b, n] + patch_bias + pos[1+n]
static void assemble_worker(void *arg, int ith, int nth) {
    struct embed_task *t = arg;
    const int C = t->c->dim, T = t->c->tokens, N = t->c->num_patches;
    long b0, e0;
    pool_split((long)t->B * T, ith, nth, &b0, &e0);
    for (long i = b0; i < e0; i++) {
        long b = i / T, tok = i % T;
        float *x = t->x0 + i * C;
        const float *pos = t->params_pos + tok * C;
        if (tok == 0) {
            for (int c = 0; c < C; c++) x[c] = t->params_cls[c] + pos[c];
        } else {
            const float *pe = t->pe + (b * N + tok - 1) * C;
            for (int c = 0; c < C; c++) x[c] = pe[c] + t->patch_bias[c] + pos[c];
        }
    }
}

// dpos[tok, c] += sum_b dres[b, tok, c]; dcls += sum_b dres[b, 0]; dpatch rows gathered.
// Split over (tok, c) elements so sums over b run in a fixed order.
static void embed_backward_worker(void *arg, int ith, int nth) {
    struct embed_task *t = arg;
    const long C = t->c->dim, T = t->c->tokens, N = t->c->num_patches;
    long b0, e0;
    pool_split(T * C, ith, nth, &b0, &e0);
    for (long i = b0; i < e0; i++) {
        float s = 0.0f;
        for (long b = 0; b < t->B; b++) s += t->dres[b * T * C + i];
        t->dpos[i] += s;
        if (i < C) t->dcls[i] += s;
    }
    pool_split((long)t->B * N, ith, nth, &b0, &e0);
    for (long i = b0; i < e0; i++) {
        long b = i / N, n = i % N;
        memcpy(t->dpatch + i * C, t->dres + (b * T + 1 + n) * C, (size_t)C * sizeof(float));
    }
}

// ---------------------------------------------------------------------------------------
// forward

void vit_forward(const struct vit_model *m, struct vit_acts *a, const float *params,
                 const float *images, int B) {
    const struct vit_config *c = &m->layout.config;
    const struct vit_layout *L = &m->layout;
    CATLIP_ASSERT(B <= a->max_batch);
    const int C = c->dim, K = 3 * c->patch_size * c->patch_size;

    // bf16: the weights rounded once for this forward and its backward — here, unless the
    // optimizer step that produced them has just done it (weights_bf16_of). That holds for
    // one forward only: params may be written by anyone before the one after.
    const int bf16 = m->precision == VIT_BF16;
    CATLIP_ASSERT(a->precision == (int)m->precision);  // vit_acts_enable_bf16 for VIT_BF16
    if (bf16) {
        CATLIP_ASSERT(a->weights_bf16 != NULL);
        if (a->weights_bf16_of != params)
            transformer_round_bf16(m->pool, a->weights_bf16, params, L->image_end);
    }
    a->weights_bf16_of = NULL;
    const struct transformer_exec e = vit_exec(m, a);
    const struct transformer_shape s = vit_shape(c);

    // Patch embedding: unfold, one matmul (into dres, free until backward), add CLS and pos.
    struct embed_task et = {.c = c, .images = images, .patches = a->patches, .B = B,
                            .params_pos = params + L->pos_embed,
                            .params_cls = params + L->cls_token,
                            .patch_bias = params + L->patch_b, .pe = a->scratch.dres, .x0 = a->x0};
    pool_run(m->pool, unfold_worker, &et);
    matmul_forward(m->pool, m->k, a->scratch.dres, NULL, a->patches, NULL, params + L->patch_w,
                   weight_bf16(m, a, L->patch_w), NULL, NULL, (long)B * c->num_patches, K, C);
    pool_run(m->pool, assemble_worker, &et);

    const float *x = a->x0;
    for (int l = 0; l < c->depth; l++) {
        transformer_block_forward(&e, &s, &a->blocks[l], params, &L->blocks[l], x, B);
        x = a->blocks[l].out;
    }

    // Final norm on the CLS token only (timm norms every token, but only CLS reaches the
    // head, so the others would get zero gradient), then the synset head.
    for (int b = 0; b < B; b++)
        memcpy(a->cls + (size_t)b * C, x + (size_t)b * c->tokens * C, (size_t)C * sizeof(float));
    transformer_layernorm_forward(&e, a->lnf, NULL, a->lnf_mean, a->lnf_rstd, a->cls,
                                  params + L->norm_w, params + L->norm_b, B, C);
    matmul_forward(m->pool, m->k, a->logits, NULL, a->lnf, NULL, params + L->head_w,
                   weight_bf16(m, a, L->head_w), c->clip ? NULL : params + L->head_b, NULL, B, C,
                   c->num_classes);
}

// ---------------------------------------------------------------------------------------
// loss

struct loss_task {
    const struct kernels *k;
    float *dlogits;
    const float *logits, *targets;
    long n;
    float grad_scale;
    double partial[64];
};

static void loss_worker(void *arg, int ith, int nth) {
    struct loss_task *t = arg;
    long b, e;
    pool_split(t->n, ith, nth, &b, &e);
    t->partial[ith] = e > b ? t->k->bce_with_logits(t->dlogits + b, t->logits + b,
                                                    t->targets + b, e - b, t->grad_scale)
                            : 0.0;
}

double vit_loss_bce(const struct vit_model *m, struct vit_acts *a, const float *targets, int B,
                    float grad_scale) {
    struct loss_task t = {.k = m->k, .dlogits = a->dlogits, .logits = a->logits,
                          .targets = targets, .n = (long)B * m->layout.config.num_classes,
                          .grad_scale = grad_scale};
    CATLIP_ASSERT(pool_size(m->pool) <= 64);
    pool_run(m->pool, loss_worker, &t);
    double sum = 0.0;
    for (int i = 0; i < pool_size(m->pool); i++) sum += t.partial[i];
    return sum;
}

struct ce_task {
    const struct kernels *k;
    float *dlogits;
    const float *logits, *targets;
    int B, V;
    float grad_scale, smoothing;
    double partial[64];
};

static void ce_worker(void *arg, int ith, int nth) {
    struct ce_task *t = arg;
    long b0, e0;
    pool_split(t->B, ith, nth, &b0, &e0);
    double sum = 0.0;
    for (long b = b0; b < e0; b++) {
        const float *z = t->logits + b * t->V, *y = t->targets + b * t->V;
        float *d = t->dlogits + b * t->V;
        int label = -1;
        for (int v = 0; v < t->V && label < 0; v++)
            if (y[v] > 0.5f) label = v;
        if (label < 0) {
            memset(d, 0, (size_t)t->V * sizeof *d);
            continue;
        }
        // log softmax in double for the loss; probabilities through the SIMD softmax
        double mx = z[0];
        for (int v = 1; v < t->V; v++) mx = z[v] > mx ? z[v] : mx;
        double se = 0.0, zsum = 0.0;
        for (int v = 0; v < t->V; v++) {
            se += exp(z[v] - mx);
            zsum += z[v];
        }
        double lse = mx + log(se);
        // -sum_v q_v (z_v - lse) with q = (1-s)·onehot + s/V
        sum += (1.0 - t->smoothing) * (lse - z[label]) + t->smoothing * (lse - zsum / t->V);
        t->k->softmax_forward(d, z, 1, t->V);
        const float off = t->smoothing / (float)t->V;
        for (int v = 0; v < t->V; v++) d[v] = (d[v] - off) * t->grad_scale;
        d[label] -= (1.0f - t->smoothing) * t->grad_scale;
    }
    t->partial[ith] = sum;
}

double vit_loss_softmax_ce(const struct vit_model *m, struct vit_acts *a, const float *targets,
                           int B, float grad_scale, float smoothing) {
    struct ce_task t = {.k = m->k, .dlogits = a->dlogits, .logits = a->logits,
                        .targets = targets, .B = B, .V = m->layout.config.num_classes,
                        .grad_scale = grad_scale, .smoothing = smoothing};
    CATLIP_ASSERT(pool_size(m->pool) <= 64);
    pool_run(m->pool, ce_worker, &t);
    double sum = 0.0;
    for (int i = 0; i < pool_size(m->pool); i++) sum += t.partial[i];
    return sum;
}

// ---------------------------------------------------------------------------------------
// backward

void vit_backward(const struct vit_model *m, struct vit_acts *a, const float *params,
                  float *grads, int B, int head_only, vit_grads_ready_fn on_ready,
                  void *ready_ctx) {
    const struct vit_config *c = &m->layout.config;
    const struct vit_layout *L = &m->layout;
    const long BT = (long)B * c->tokens;
    const int C = c->dim, T = c->tokens;

    // logits = lnf·Wᵀ + b
    matmul_backward(m->pool, head_only ? NULL : a->dpooled, grads + L->head_w,
                    c->clip ? NULL : grads + L->head_b, a->dlogits, NULL, a->lnf, NULL,
                    params + L->head_w, weight_bf16(m, a, L->head_w), B, C, c->num_classes, 0);
    if (head_only) {
        // Nothing below the head trains: report every range final (all other gradients
        // stay zero) so that reductions see the same buckets as in full training.
        if (on_ready) {
            on_ready(ready_ctx, L->norm_w, L->image_end);
            for (int l = c->depth - 1; l >= 0; l--)
                on_ready(ready_ctx, L->blocks[l].begin, L->blocks[l].end);
            on_ready(ready_ctx, 0, L->blocks[0].begin);
        }
        return;
    }
    const struct transformer_exec e = vit_exec(m, a);
    const struct transformer_shape s = vit_shape(c);
    struct transformer_scratch *sc = &a->scratch;
    // lnf = LayerNorm(cls)
    transformer_layernorm_backward(&e, sc->ln_partials, a->dpooled, grads + L->norm_w,
                                   grads + L->norm_b, a->dpooled, a->cls, params + L->norm_w,
                                   a->lnf_mean, a->lnf_rstd, B, C);
    if (on_ready) on_ready(ready_ctx, L->norm_w, L->image_end);
    // cls = x[:, 0]: the residual-stream gradient is zero except at token 0.
    memset(sc->dres, 0, (size_t)BT * C * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(sc->dres + (size_t)b * T * C, a->dpooled + (size_t)b * C, (size_t)C * sizeof(float));

    for (int l = c->depth - 1; l >= 0; l--) {
        const float *x = l == 0 ? a->x0 : a->blocks[l - 1].out;
        transformer_block_backward(&e, &s, &a->blocks[l], sc, params, grads, &L->blocks[l], x, B);
        if (on_ready) on_ready(ready_ctx, L->blocks[l].begin, L->blocks[l].end);
    }

    // x0 = [cls; patches·Wᵀ + b] + pos. dtmp holds the gathered patch-token gradients.
    struct embed_task et = {.c = c, .B = B, .dres = sc->dres, .dpos = grads + L->pos_embed,
                            .dcls = grads + L->cls_token, .dpatch = sc->dtmp};
    pool_run(m->pool, embed_backward_worker, &et);
    matmul_backward(m->pool, NULL, grads + L->patch_w, grads + L->patch_b, sc->dtmp, NULL,
                    a->patches, NULL, params + L->patch_w, weight_bf16(m, a, L->patch_w),
                    (long)B * c->num_patches, 3 * c->patch_size * c->patch_size, C, 0);
    if (on_ready) on_ready(ready_ctx, 0, L->blocks[0].begin);
}
