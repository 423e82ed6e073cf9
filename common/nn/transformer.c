#include "nn/transformer.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "nn/matmul.h"

// ---------------------------------------------------------------------------------------
// carving

float *carve_floats(struct carver *cv, size_t count) {
    float *p = cv->memory ? cv->memory + cv->used : NULL;
    cv->used += (count + 15) & ~(size_t)15;
    return p;
}

void carver_allocate(struct carver *cv, float **memory, size_t *floats) {
    *floats = cv->used;
    *memory = xaligned_alloc(cv->used * sizeof(float));
    *cv = (struct carver){*memory, 0};
}

uint16_t *carve_bf16(struct carver *cv, size_t count) {
    uint16_t *p = cv->memory ? (uint16_t *)(cv->memory + cv->used) : NULL;
    cv->used += ((count + 1) / 2 + 15) & ~(size_t)15;
    return p;
}

// bf16: the four matmul inputs that backward reads again (ln1, atty, ln2, fch_gelu) are kept
// only as bf16 copies (half the memory and half the traffic of the dweight products, which
// stream them); their fp32 versions are written to one scratch (dhidden, free until backward)
// and rounded right away.
void transformer_block_acts_carve(struct carver *cv, struct transformer_block_acts *b,
                                  const struct transformer_shape *s, int B, int bf16) {
    const size_t C = (size_t)s->dim, T = (size_t)s->tokens, Hd = (size_t)s->mlp_hidden;
    const size_t BT = (size_t)B * T;
    memset(b, 0, sizeof *b);
    if (bf16)
        b->ln1_bf16 = carve_bf16(cv, BT * C);
    else
        b->ln1 = carve_floats(cv, BT * C);
    b->ln1_mean = carve_floats(cv, BT);
    b->ln1_rstd = carve_floats(cv, BT);
    b->qkv = carve_floats(cv, BT * 3 * C);
    b->att = carve_floats(cv, (size_t)B * (size_t)s->heads * T * T);
    if (bf16) {
        b->atty_bf16 = carve_bf16(cv, BT * C);
        b->ln2_bf16 = carve_bf16(cv, BT * C);
    } else {
        b->atty = carve_floats(cv, BT * C);
        b->ln2 = carve_floats(cv, BT * C);
    }
    b->res2 = carve_floats(cv, BT * C);
    b->ln2_mean = carve_floats(cv, BT);
    b->ln2_rstd = carve_floats(cv, BT);
    b->fch = carve_floats(cv, BT * Hd);
    if (bf16)
        b->fch_gelu_bf16 = carve_bf16(cv, BT * Hd);
    else
        b->fch_gelu = carve_floats(cv, BT * Hd);
    b->out = carve_floats(cv, BT * C);
}

void transformer_scratch_carve(struct carver *cv, struct transformer_scratch *sc,
                               const struct transformer_shape *s, int B, int nthreads) {
    const size_t C = (size_t)s->dim, T = (size_t)s->tokens, BT = (size_t)B * T;
    sc->dres = carve_floats(cv, BT * C);
    sc->dtmp = carve_floats(cv, BT * C);
    sc->dqkv = carve_floats(cv, BT * 3 * C);
    sc->dhidden = carve_floats(cv, BT * (size_t)s->mlp_hidden);
    sc->dscores = carve_floats(cv, (size_t)nthreads * T * T);
    sc->ln_partials = carve_floats(cv, (size_t)nthreads * 2 * C);
    sc->nthreads = nthreads;
}

void transformer_block_acts_share_scratch(struct transformer_block_acts *b,
                                          const struct transformer_scratch *sc) {
    b->ln1 = b->atty = b->ln2 = b->fch_gelu = sc->dhidden;
}

// ---------------------------------------------------------------------------------------
// parallel pieces: each is a task struct and a worker taking a fixed block of the work

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

void transformer_round_bf16(struct pool *pool, uint16_t *dst, const float *src, size_t n) {
    struct round_task t = {dst, src, n};
    pool_run(pool, round_worker, &t);
}

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

void transformer_layernorm_forward(const struct transformer_exec *e, float *out,
                                   uint16_t *out_bf16, float *mean, float *rstd,
                                   const float *inp, const float *weight, const float *bias,
                                   long N, int C) {
    struct layernorm_task t = {.k = e->k,
                               .out = out,
                               .out_mean = mean,
                               .out_rstd = rstd,
                               .inp = inp,
                               .weight = weight,
                               .bias = bias,
                               .N = N,
                               .C = C,
                               .out_bf16 = out_bf16};
    pool_run(e->pool, layernorm_forward_worker, &t);
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

void transformer_layernorm_backward(const struct transformer_exec *e, float *partials,
                                    float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const float *weight, const float *mean,
                                    const float *rstd, long N, int C) {
    struct layernorm_task t = {.k = e->k, .inp = inp, .weight = weight, .mean = mean,
                               .rstd = rstd, .N = N, .C = C, .dinp = dinp,
                               .partials = partials, .dout = dout};
    pool_run(e->pool, layernorm_backward_worker, &t);
    int nth = pool_size(e->pool);
    for (int i = 0; i < nth; i++) {
        const float *dw = partials + (size_t)i * 2 * C;
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
static void elementwise_rounded(const struct transformer_exec *x, enum elementwise_op op,
                                float *out, uint16_t *out_bf16, const float *a, const float *b,
                                long n) {
    struct elementwise_task t = {x->k, out, a, b, n, op, out_bf16};
    pool_run(x->pool, elementwise_worker, &t);
}

static void elementwise(const struct transformer_exec *x, enum elementwise_op op, float *out,
                        const float *a, const float *b, long n) {
    elementwise_rounded(x, op, out, NULL, a, b, n);
}

// ---------------------------------------------------------------------------------------
// attention: per (sequence, head) pair, q·kᵀ·scale → softmax (causal: over keys 0..i) → ·v,
// and its backward

struct attention_task {
    const struct kernels *k;
    const struct transformer_shape *s;
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
    const int T = t->s->tokens, C = t->s->dim, H = t->s->heads, hd = t->s->head_dim;
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
        if (t->s->causal) {
            // Row i over keys 0..i; the rest exact zeros, so P·v and the softmax backward
            // (which multiplies by P) see no masked key.
            for (int i = 0; i < T; i++) {
                t->k->softmax_forward(p + (long)i * T, p + (long)i * T, 1, i + 1);
                memset(p + (long)i * T + i + 1, 0, (size_t)(T - 1 - i) * sizeof *p);
            }
        } else {
            t->k->softmax_forward(p, p, T, T);
        }
        attention_gemm(t->bf16, 0, 0, T, hd, T, 1.0f, p, T, v, 3 * C, t->atty + b * T * C + h * hd,
                       C);
    }
}

static void attention_backward_worker(void *arg, int ith, int nth) {
    struct attention_task *t = arg;
    const int T = t->s->tokens, C = t->s->dim, H = t->s->heads, hd = t->s->head_dim;
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
// one block

void transformer_block_forward(const struct transformer_exec *e, const struct transformer_shape *s,
                               struct transformer_block_acts *ba, const float *params,
                               const struct transformer_block_offsets *o, const float *x, int B) {
    const long BT = (long)B * s->tokens;
    const int C = s->dim, bf16 = e->weights_bf16 != NULL;
    // x + attn(norm1(x))
    transformer_layernorm_forward(e, ba->ln1, ba->ln1_bf16, ba->ln1_mean, ba->ln1_rstd, x,
                                  params + o->norm1_w, params + o->norm1_b, BT, C);
    matmul_forward(e->pool, e->k, ba->qkv, ba->ln1, ba->ln1_bf16, params + o->qkv_w,
                   transformer_weight_bf16(e, o->qkv_w), params + o->qkv_b, NULL, BT, C, 3 * C);
    struct attention_task at = {.k = e->k, .s = s, .B = B, .qkv = ba->qkv, .att = ba->att,
                                .atty = ba->atty, .bf16 = bf16};
    pool_run(e->pool, attention_forward_worker, &at);
    if (bf16) transformer_round_bf16(e->pool, ba->atty_bf16, ba->atty, (size_t)BT * C);
    matmul_forward(e->pool, e->k, ba->res2, ba->atty, ba->atty_bf16, params + o->proj_w,
                   transformer_weight_bf16(e, o->proj_w), params + o->proj_b, x, BT, C, C);
    // res2 + mlp(norm2(res2))
    transformer_layernorm_forward(e, ba->ln2, ba->ln2_bf16, ba->ln2_mean, ba->ln2_rstd, ba->res2,
                                  params + o->norm2_w, params + o->norm2_b, BT, C);
    matmul_forward(e->pool, e->k, ba->fch, ba->ln2, ba->ln2_bf16, params + o->fc1_w,
                   transformer_weight_bf16(e, o->fc1_w), params + o->fc1_b, NULL, BT, C, s->mlp_hidden);
    elementwise_rounded(e, ELEMENTWISE_GELU, ba->fch_gelu, ba->fch_gelu_bf16, ba->fch, NULL,
                        BT * s->mlp_hidden);
    matmul_forward(e->pool, e->k, ba->out, ba->fch_gelu, ba->fch_gelu_bf16, params + o->fc2_w,
                   transformer_weight_bf16(e, o->fc2_w), params + o->fc2_b, ba->res2, BT, s->mlp_hidden, C);
}

void transformer_block_backward(const struct transformer_exec *e, const struct transformer_shape *s,
                                const struct transformer_block_acts *ba,
                                struct transformer_scratch *sc, const float *params, float *grads,
                                const struct transformer_block_offsets *o, const float *x, int B) {
    const long BT = (long)B * s->tokens;
    const int C = s->dim, Hd = s->mlp_hidden;
    // out = res2 + fc2(gelu(fc1(ln2))): dres carries d out and, after the residual, d res2
    matmul_backward(e->pool, sc->dhidden, grads + o->fc2_w, grads + o->fc2_b, sc->dres,
                    ba->fch_gelu, ba->fch_gelu_bf16, params + o->fc2_w, transformer_weight_bf16(e, o->fc2_w),
                    BT, Hd, C, 0);
    elementwise(e, ELEMENTWISE_GELU_BACKWARD, sc->dhidden, ba->fch, sc->dhidden, BT * Hd);
    matmul_backward(e->pool, sc->dtmp, grads + o->fc1_w, grads + o->fc1_b, sc->dhidden, ba->ln2,
                    ba->ln2_bf16, params + o->fc1_w, transformer_weight_bf16(e, o->fc1_w), BT, C, Hd, 0);
    transformer_layernorm_backward(e, sc->ln_partials, sc->dtmp, grads + o->norm2_w,
                                   grads + o->norm2_b, sc->dtmp, ba->res2, params + o->norm2_w,
                                   ba->ln2_mean, ba->ln2_rstd, BT, C);
    elementwise(e, ELEMENTWISE_ADD, sc->dres, sc->dres, sc->dtmp, BT * C);
    // res2 = x + proj(attention(ln1(x)))
    matmul_backward(e->pool, sc->dtmp, grads + o->proj_w, grads + o->proj_b, sc->dres, ba->atty,
                    ba->atty_bf16, params + o->proj_w, transformer_weight_bf16(e, o->proj_w), BT, C, C, 0);
    struct attention_task at = {.k = e->k,
                                .s = s,
                                .B = B,
                                .qkv = ba->qkv,
                                .att = ba->att,
                                .dqkv = sc->dqkv,
                                .datty = sc->dtmp,
                                .dscores = sc->dscores,
                                .bf16 = e->weights_bf16 != NULL};
    CATLIP_ASSERT(pool_size(e->pool) <= sc->nthreads);
    pool_run(e->pool, attention_backward_worker, &at);
    matmul_backward(e->pool, sc->dtmp, grads + o->qkv_w, grads + o->qkv_b, sc->dqkv, ba->ln1,
                    ba->ln1_bf16, params + o->qkv_w, transformer_weight_bf16(e, o->qkv_w), BT, C, 3 * C, 0);
    transformer_layernorm_backward(e, sc->ln_partials, sc->dtmp, grads + o->norm1_w,
                                   grads + o->norm1_b, sc->dtmp, x, params + o->norm1_w,
                                   ba->ln1_mean, ba->ln1_rstd, BT, C);
    elementwise(e, ELEMENTWISE_ADD, sc->dres, sc->dres, sc->dtmp, BT * C);
}
