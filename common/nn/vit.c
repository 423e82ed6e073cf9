#include "nn/vit.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "nn/matmul.h"

// ---------------------------------------------------------------------------------------
// activation buffers

// bf16: the four matmul inputs that backward reads again (ln1, atty, ln2, fch_gelu) are kept
// only as bf16 copies (half the memory and half the traffic of the dweight products, which
// stream them); their fp32 versions are written to one scratch (dhidden, free until backward)
// and rounded right away.
static void acts_carve(struct vit_acts *a, const struct vit_config *c, int B, int nthreads,
                       int bf16) {
    memset(a, 0, sizeof *a);
    a->max_batch = B;
    a->config = *c;
    a->nthreads = nthreads;
    const size_t C = (size_t)c->dim, T = (size_t)c->tokens, Hd = (size_t)c->mlp_hidden;
    const size_t H = (size_t)c->heads, N = (size_t)c->num_patches, V = (size_t)c->num_classes;
    const size_t K = 3 * (size_t)c->patch_size * (size_t)c->patch_size;
    const size_t BT = (size_t)B * T;
    // First pass computes sizes, second pass hands out pointers (each 64-byte aligned).
    for (int pass = 0; pass < 2; pass++) {
        size_t used = 0;
#define CARVE(ptr, count)                                               \
    do {                                                                \
        if (pass) (ptr) = a->memory + used;                             \
        used += ((count) + 15) & ~(size_t)15;                           \
    } while (0)
#define CARVE_BF16(ptr, count)                            \
    do {                                                  \
        if (pass) (ptr) = (uint16_t *)(a->memory + used); \
        used += (((count) + 1) / 2 + 15) & ~(size_t)15;   \
    } while (0)
        CARVE(a->patches, (size_t)B * N * K);
        CARVE(a->x0, BT * C);
        if (pass) a->blocks = xcalloc((size_t)c->depth, sizeof *a->blocks);
        for (int l = 0; l < c->depth; l++) {
            struct vit_block_acts *b = pass ? &a->blocks[l] : &(struct vit_block_acts){0};
            if (bf16)
                CARVE_BF16(b->ln1_bf16, BT * C);
            else
                CARVE(b->ln1, BT * C);
            CARVE(b->ln1_mean, BT);
            CARVE(b->ln1_rstd, BT);
            CARVE(b->qkv, BT * 3 * C);
            CARVE(b->att, (size_t)B * H * T * T);
            if (bf16) {
                CARVE_BF16(b->atty_bf16, BT * C);
                CARVE_BF16(b->ln2_bf16, BT * C);
            } else {
                CARVE(b->atty, BT * C);
                CARVE(b->ln2, BT * C);
            }
            CARVE(b->res2, BT * C);
            CARVE(b->ln2_mean, BT);
            CARVE(b->ln2_rstd, BT);
            CARVE(b->fch, BT * Hd);
            if (bf16)
                CARVE_BF16(b->fch_gelu_bf16, BT * Hd);
            else
                CARVE(b->fch_gelu, BT * Hd);
            CARVE(b->out, BT * C);
        }
        CARVE(a->cls, (size_t)B * C);
        CARVE(a->lnf, (size_t)B * C);
        CARVE(a->lnf_mean, (size_t)B);
        CARVE(a->lnf_rstd, (size_t)B);
        CARVE(a->logits, (size_t)B * V);
        CARVE(a->dres, BT * C);
        CARVE(a->dtmp, BT * C);
        CARVE(a->dqkv, BT * 3 * C);
        CARVE(a->dhidden, BT * Hd);
        CARVE(a->dscores, (size_t)nthreads * T * T);
        CARVE(a->dlogits, (size_t)B * V);
        CARVE(a->dpooled, (size_t)B * C);
        CARVE(a->ln_partials, (size_t)nthreads * 2 * C);
#undef CARVE
#undef CARVE_BF16
        if (!pass) {
            a->floats = used;
            a->memory = xaligned_alloc(used * sizeof(float));
        }
    }
    a->precision = bf16 ? VIT_BF16 : VIT_FP32;
    for (int l = 0; bf16 && l < c->depth; l++) {
        struct vit_block_acts *b = &a->blocks[l];
        b->ln1 = b->atty = b->ln2 = b->fch_gelu = a->dhidden;
    }
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

// dst = bf16(src), n elements, split over the pool (VIT_BF16's stored matmul inputs).
static void round_to_bf16(const struct vit_model *m, uint16_t *dst, const float *src, size_t n);

// The bf16 copy of the weight at `offset`, or NULL in fp32 (matmul.h's weight_bf16).
static const uint16_t *weight_bf16(const struct vit_model *m, const struct vit_acts *a,
                                   size_t offset) {
    return m->precision == VIT_BF16 ? a->weights_bf16 + offset : NULL;
}

struct round_task {
    uint16_t *dst;
    const float *src;
    size_t n;
};

static void round_worker(void *arg, int ith, int nth) {
    struct round_task *t = arg;
    long b, e;
    pool_split((long)((t->n + 15) / 16), ith, nth, &b, &e);
    size_t begin = (size_t)b * 16, end = (size_t)e * 16 < t->n ? (size_t)e * 16 : t->n;
    if (end > begin) bf16_from_floats(t->dst + begin, t->src + begin, end - begin);
}

static void round_to_bf16(const struct vit_model *m, uint16_t *dst, const float *src, size_t n) {
    struct round_task t = {dst, src, n};
    pool_run(m->pool, round_worker, &t);
}

// ---------------------------------------------------------------------------------------
// parallel pieces: each is a task struct and a worker taking a fixed block of the work

struct layernorm_task {
    const struct kernels *k;
    float *out;
    const float *mean, *rstd;  // written by forward through out_mean/out_rstd
    float *out_mean, *out_rstd;
    const float *inp, *weight, *bias;
    uint16_t *out_bf16;  // forward: also out rounded to bf16 (VIT_BF16's stored inputs), or NULL
    long N;
    int C;
    // backward
    float *dinp, *partials;
    const float *dout;
};

static void layernorm_forward_worker(void *arg, int ith, int nth) {
    struct layernorm_task *t = arg;
    long b, e;
    pool_split(t->N, ith, nth, &b, &e);
    if (e > b)
        t->k->layernorm_forward(t->out + b * t->C, t->out_mean + b, t->out_rstd + b, t->inp + b * t->C,
                                t->weight, t->bias, e - b, t->C);
    // Rounded here, while the rows are in cache, rather than in a region of its own.
    if (e > b && t->out_bf16)
        bf16_from_floats(t->out_bf16 + b * t->C, t->out + b * t->C, (size_t)(e - b) * t->C);
}

// out_bf16: NULL, or also write out rounded to bf16 there.
static void layernorm_forward(const struct vit_model *m, float *out, uint16_t *out_bf16,
                              float *mean, float *rstd, const float *inp, const float *weight,
                              const float *bias, long N, int C) {
    struct layernorm_task t = {.k = m->k,
                               .out = out,
                               .out_mean = mean,
                               .out_rstd = rstd,
                               .inp = inp,
                               .weight = weight,
                               .bias = bias,
                               .N = N,
                               .C = C,
                               .out_bf16 = out_bf16};
    pool_run(m->pool, layernorm_forward_worker, &t);
}

static void layernorm_backward_worker(void *arg, int ith, int nth) {
    struct layernorm_task *t = arg;
    long b, e;
    pool_split(t->N, ith, nth, &b, &e);
    float *dw = t->partials + (size_t)ith * 2 * t->C, *db = dw + t->C;
    memset(dw, 0, 2 * (size_t)t->C * sizeof *dw);
    if (e > b)
        t->k->layernorm_backward(t->dinp + b * t->C, dw, db, t->dout + b * t->C,
                                 t->inp + b * t->C, t->weight, t->mean + b, t->rstd + b, e - b,
                                 t->C);
}

// dinp = LayerNorm backward (overwritten; may alias dout); dweight, dbias += (summed over
// threads' partials in thread order, so the result is fixed for a thread count).
static void layernorm_backward(const struct vit_model *m, struct vit_acts *a, float *dinp,
                               float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, long N, int C) {
    struct layernorm_task t = {.k = m->k, .inp = inp, .weight = weight, .mean = mean,
                               .rstd = rstd, .N = N, .C = C, .dinp = dinp,
                               .partials = a->ln_partials, .dout = dout};
    pool_run(m->pool, layernorm_backward_worker, &t);
    int nth = pool_size(m->pool);
    for (int i = 0; i < nth; i++) {
        const float *dw = a->ln_partials + (size_t)i * 2 * C;
        for (int c = 0; c < C; c++) {
            dweight[c] += dw[c];
            dbias[c] += dw[C + c];
        }
    }
}

// What elementwise() computes over n floats.
enum elementwise_op {
    ELEMENTWISE_GELU,           // out = gelu(a)
    ELEMENTWISE_GELU_BACKWARD,  // out = gelu'(a) * b   (a: GELU input, b: dout)
    ELEMENTWISE_ADD,            // out = a + b
};

struct elementwise_task {
    const struct kernels *k;
    float *out;
    const float *a, *b;
    long n;
    enum elementwise_op op;
    uint16_t *out_bf16;  // also out rounded to bf16, or NULL
};

static void elementwise_worker(void *arg, int ith, int nth) {
    struct elementwise_task *t = arg;
    long b, e;
    // Split on 16-float boundaries so every thread's block starts vector-aligned.
    long blocks = (t->n + 15) / 16;
    pool_split(blocks, ith, nth, &b, &e);
    b *= 16;
    e = e * 16 < t->n ? e * 16 : t->n;
    if (e <= b) return;
    switch (t->op) {
    case ELEMENTWISE_GELU: t->k->gelu_forward(t->out + b, t->a + b, e - b); break;
    case ELEMENTWISE_GELU_BACKWARD: t->k->gelu_backward(t->out + b, t->a + b, t->b + b, e - b); break;
    case ELEMENTWISE_ADD: t->k->add(t->out + b, t->a + b, t->b + b, e - b); break;
    }
    if (t->out_bf16) bf16_from_floats(t->out_bf16 + b, t->out + b, (size_t)(e - b));
}

// out = op(a, b), and out rounded to bf16 into out_bf16 when that is not NULL.
static void elementwise_rounded(const struct vit_model *m, enum elementwise_op op, float *out,
                                uint16_t *out_bf16, const float *a, const float *b, long n) {
    struct elementwise_task t = {m->k, out, a, b, n, op, out_bf16};
    pool_run(m->pool, elementwise_worker, &t);
}

static void elementwise(const struct vit_model *m, enum elementwise_op op, float *out, const float *a,
                        const float *b, long n) {
    elementwise_rounded(m, op, out, NULL, a, b, n);
}

// ---------------------------------------------------------------------------------------
// attention: per (image, head) pair, q·kᵀ·scale → softmax → ·v, and its backward

struct attention_task {
    const struct kernels *k;
    const struct vit_config *c;
    int B;
    float *qkv, *att, *atty;           // forward
    float *dqkv, *datty, *dscores;     // backward
    int bf16;                          // products in bf16 (VIT_BF16)
};

// The attention products: fp32 operands, in bf16 (rounded while packed) when bf16.
static void attention_gemm(int bf16, int trans_a, int trans_b, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (bf16)
        gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, GEMM_F32, lda, B, GEMM_F32, ldb, 0.0f, C,
                  ldc);
    else
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
}

static void attention_forward_worker(void *arg, int ith, int nth) {
    struct attention_task *t = arg;
    const int T = t->c->tokens, C = t->c->dim, H = t->c->heads, hd = t->c->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    long b0, e0;
    pool_split((long)t->B * H, ith, nth, &b0, &e0);
    for (long bh = b0; bh < e0; bh++) {
        long b = bh / H, h = bh % H;
        const float *q = t->qkv + b * T * 3 * C + h * hd;  // (T, hd), row stride 3C
        const float *key = q + C;
        const float *v = q + 2 * C;
        float *p = t->att + bh * T * T;  // (T, T)
        attention_gemm(t->bf16, 0, 1, T, T, hd, scale, q, 3 * C, key, 3 * C, p, T);
        t->k->softmax_forward(p, p, T, T);
        attention_gemm(t->bf16, 0, 0, T, hd, T, 1.0f, p, T, v, 3 * C, t->atty + b * T * C + h * hd,
                       C);
    }
}

static void attention_backward_worker(void *arg, int ith, int nth) {
    struct attention_task *t = arg;
    const int T = t->c->tokens, C = t->c->dim, H = t->c->heads, hd = t->c->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    float *ds = t->dscores + (size_t)ith * T * T;  // (T, T) this thread's scratch
    long b0, e0;
    pool_split((long)t->B * H, ith, nth, &b0, &e0);
    for (long bh = b0; bh < e0; bh++) {
        long b = bh / H, h = bh % H;
        const float *q = t->qkv + b * T * 3 * C + h * hd;
        const float *key = q + C, *v = q + 2 * C;
        float *dq = t->dqkv + b * T * 3 * C + h * hd, *dk = dq + C, *dv = dq + 2 * C;
        const float *p = t->att + bh * T * T;
        const float *dy = t->datty + b * T * C + h * hd;  // (T, hd), row stride C
        // y = P·v  →  dP = dy·vᵀ, dv = Pᵀ·dy
        attention_gemm(t->bf16, 0, 1, T, T, hd, 1.0f, dy, C, v, 3 * C, ds, T);
        attention_gemm(t->bf16, 1, 0, T, hd, T, 1.0f, p, T, dy, C, dv, 3 * C);
        // P = softmax(S), S = scale·q·kᵀ  →  dS·scale, then dq = dS·k, dk = dSᵀ·q
        t->k->softmax_backward(ds, p, ds, T, T, scale);
        attention_gemm(t->bf16, 0, 0, T, hd, T, 1.0f, ds, T, key, 3 * C, dq, 3 * C);
        attention_gemm(t->bf16, 1, 0, T, hd, T, 1.0f, ds, T, q, 3 * C, dk, 3 * C);
    }
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
    const long BT = (long)B * c->tokens;
    const int C = c->dim, K = 3 * c->patch_size * c->patch_size;

    // bf16: the weights rounded once for this forward and its backward.
    const int bf16 = m->precision == VIT_BF16;
    CATLIP_ASSERT(a->precision == (int)m->precision);  // vit_acts_enable_bf16 for VIT_BF16
    if (bf16) {
        CATLIP_ASSERT(a->weights_bf16 != NULL);
        struct round_task rt = {a->weights_bf16, params, L->total};
        pool_run(m->pool, round_worker, &rt);
    }

    // Patch embedding: unfold, one matmul (into dres, free until backward), add CLS and pos.
    struct embed_task et = {.c = c, .images = images, .patches = a->patches, .B = B,
                            .params_pos = params + L->pos_embed,
                            .params_cls = params + L->cls_token,
                            .patch_bias = params + L->patch_b, .pe = a->dres, .x0 = a->x0};
    pool_run(m->pool, unfold_worker, &et);
    matmul_forward(m->pool, m->k, a->dres, a->patches, NULL, params + L->patch_w,
                   weight_bf16(m, a, L->patch_w), NULL, NULL, (long)B * c->num_patches, K, C);
    pool_run(m->pool, assemble_worker, &et);

    const float *x = a->x0;
    for (int l = 0; l < c->depth; l++) {
        const struct vit_block_offsets *o = &L->blocks[l];
        struct vit_block_acts *ba = &a->blocks[l];
        // x + attn(norm1(x))
        layernorm_forward(m, ba->ln1, ba->ln1_bf16, ba->ln1_mean, ba->ln1_rstd, x,
                          params + o->norm1_w, params + o->norm1_b, BT, C);
        matmul_forward(m->pool, m->k, ba->qkv, ba->ln1, ba->ln1_bf16, params + o->qkv_w,
                       weight_bf16(m, a, o->qkv_w), params + o->qkv_b, NULL, BT, C, 3 * C);
        struct attention_task at = {.k = m->k,
                                    .c = c,
                                    .B = B,
                                    .qkv = ba->qkv,
                                    .att = ba->att,
                                    .atty = ba->atty,
                                    .bf16 = m->precision == VIT_BF16};
        pool_run(m->pool, attention_forward_worker, &at);
        if (bf16) round_to_bf16(m, ba->atty_bf16, ba->atty, (size_t)BT * C);
        matmul_forward(m->pool, m->k, ba->res2, ba->atty, ba->atty_bf16, params + o->proj_w,
                       weight_bf16(m, a, o->proj_w), params + o->proj_b, x, BT, C, C);
        // res2 + mlp(norm2(res2))
        layernorm_forward(m, ba->ln2, ba->ln2_bf16, ba->ln2_mean, ba->ln2_rstd, ba->res2,
                          params + o->norm2_w, params + o->norm2_b, BT, C);
        matmul_forward(m->pool, m->k, ba->fch, ba->ln2, ba->ln2_bf16, params + o->fc1_w,
                       weight_bf16(m, a, o->fc1_w), params + o->fc1_b, NULL, BT, C, c->mlp_hidden);
        elementwise_rounded(m, ELEMENTWISE_GELU, ba->fch_gelu, ba->fch_gelu_bf16, ba->fch, NULL,
                            BT * c->mlp_hidden);
        matmul_forward(m->pool, m->k, ba->out, ba->fch_gelu, ba->fch_gelu_bf16, params + o->fc2_w,
                       weight_bf16(m, a, o->fc2_w), params + o->fc2_b, ba->res2, BT, c->mlp_hidden,
                       C);
        x = ba->out;
    }

    // Final norm on the CLS token only (timm norms every token, but only CLS reaches the
    // head, so the others would get zero gradient), then the synset head.
    for (int b = 0; b < B; b++)
        memcpy(a->cls + (size_t)b * C, x + (size_t)b * c->tokens * C, (size_t)C * sizeof(float));
    layernorm_forward(m, a->lnf, NULL, a->lnf_mean, a->lnf_rstd, a->cls, params + L->norm_w,
                      params + L->norm_b, B, C);
    matmul_forward(m->pool, m->k, a->logits, a->lnf, NULL, params + L->head_w,
                   weight_bf16(m, a, L->head_w), params + L->head_b, NULL, B, C, c->num_classes);
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
    const int C = c->dim, T = c->tokens, Hd = c->mlp_hidden;

    // logits = lnf·Wᵀ + b
    matmul_backward(m->pool, head_only ? NULL : a->dpooled, grads + L->head_w, grads + L->head_b,
                    a->dlogits, a->lnf, NULL, params + L->head_w, weight_bf16(m, a, L->head_w), B,
                    C, c->num_classes, 0);
    if (head_only) {
        // Nothing below the head trains: report every range final (all other gradients
        // stay zero) so that reductions see the same buckets as in full training.
        if (on_ready) {
            on_ready(ready_ctx, L->norm_w, L->total);
            for (int l = c->depth - 1; l >= 0; l--)
                on_ready(ready_ctx, L->blocks[l].begin, L->blocks[l].end);
            on_ready(ready_ctx, 0, L->blocks[0].begin);
        }
        return;
    }
    // lnf = LayerNorm(cls)
    layernorm_backward(m, a, a->dpooled, grads + L->norm_w, grads + L->norm_b, a->dpooled,
                       a->cls, params + L->norm_w, a->lnf_mean, a->lnf_rstd, B, C);
    if (on_ready) on_ready(ready_ctx, L->norm_w, L->total);
    // cls = x[:, 0]: the residual-stream gradient is zero except at token 0.
    memset(a->dres, 0, (size_t)BT * C * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(a->dres + (size_t)b * T * C, a->dpooled + (size_t)b * C, (size_t)C * sizeof(float));

    for (int l = c->depth - 1; l >= 0; l--) {
        const struct vit_block_offsets *o = &L->blocks[l];
        struct vit_block_acts *ba = &a->blocks[l];
        const float *x = l == 0 ? a->x0 : a->blocks[l - 1].out;
        // out = res2 + fc2(gelu(fc1(ln2))): dres carries d out and, after the residual, d res2
        matmul_backward(m->pool, a->dhidden, grads + o->fc2_w, grads + o->fc2_b, a->dres,
                        ba->fch_gelu, ba->fch_gelu_bf16, params + o->fc2_w,
                        weight_bf16(m, a, o->fc2_w), BT, Hd, C, 0);
        elementwise(m, ELEMENTWISE_GELU_BACKWARD, a->dhidden, ba->fch, a->dhidden, BT * Hd);
        matmul_backward(m->pool, a->dtmp, grads + o->fc1_w, grads + o->fc1_b, a->dhidden, ba->ln2,
                        ba->ln2_bf16, params + o->fc1_w, weight_bf16(m, a, o->fc1_w), BT, C, Hd, 0);
        layernorm_backward(m, a, a->dtmp, grads + o->norm2_w, grads + o->norm2_b, a->dtmp,
                           ba->res2, params + o->norm2_w, ba->ln2_mean, ba->ln2_rstd, BT, C);
        elementwise(m, ELEMENTWISE_ADD, a->dres, a->dres, a->dtmp, BT * C);
        // res2 = x + proj(attention(ln1(x)))
        matmul_backward(m->pool, a->dtmp, grads + o->proj_w, grads + o->proj_b, a->dres, ba->atty,
                        ba->atty_bf16, params + o->proj_w, weight_bf16(m, a, o->proj_w), BT, C, C,
                        0);
        struct attention_task at = {.k = m->k,
                                    .c = c,
                                    .B = B,
                                    .qkv = ba->qkv,
                                    .att = ba->att,
                                    .dqkv = a->dqkv,
                                    .datty = a->dtmp,
                                    .dscores = a->dscores,
                                    .bf16 = m->precision == VIT_BF16};
        CATLIP_ASSERT(pool_size(m->pool) <= a->nthreads);
        pool_run(m->pool, attention_backward_worker, &at);
        matmul_backward(m->pool, a->dtmp, grads + o->qkv_w, grads + o->qkv_b, a->dqkv, ba->ln1,
                        ba->ln1_bf16, params + o->qkv_w, weight_bf16(m, a, o->qkv_w), BT, C, 3 * C,
                        0);
        layernorm_backward(m, a, a->dtmp, grads + o->norm1_w, grads + o->norm1_b, a->dtmp, x,
                           params + o->norm1_w, ba->ln1_mean, ba->ln1_rstd, BT, C);
        elementwise(m, ELEMENTWISE_ADD, a->dres, a->dres, a->dtmp, BT * C);
        if (on_ready) on_ready(ready_ctx, o->begin, o->end);
    }

    // x0 = [cls; patches·Wᵀ + b] + pos. dtmp holds the gathered patch-token gradients.
    struct embed_task et = {.c = c, .B = B, .dres = a->dres, .dpos = grads + L->pos_embed,
                            .dcls = grads + L->cls_token, .dpatch = a->dtmp};
    pool_run(m->pool, embed_backward_worker, &et);
    matmul_backward(m->pool, NULL, grads + L->patch_w, grads + L->patch_b, a->dtmp, a->patches,
                    NULL, params + L->patch_w, weight_bf16(m, a, L->patch_w),
                    (long)B * c->num_patches, 3 * c->patch_size * c->patch_size, C, 0);
    if (on_ready) on_ready(ready_ctx, 0, L->blocks[0].begin);
}
