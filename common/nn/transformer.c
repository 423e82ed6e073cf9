#include "nn/transformer.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "nn/attention_bf16.h"
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

// Row stride of each head's P in acts->att: bf16's attention pads its rows to whole lines.
static long att_ld(const struct transformer_shape *s, int bf16) {
    return bf16 ? attention_bf16_probs_ld(s->tokens) : s->tokens;
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
    if (bf16)
        b->qkv_bf16 = carve_bf16(cv, BT * 3 * C);
    else
        b->qkv = carve_floats(cv, BT * 3 * C);
    b->att = carve_floats(cv, (size_t)B * (size_t)s->heads * T * (size_t)att_ld(s, bf16));
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

// bf16's per-thread attention scratch (nn/attention_bf16.h), in bf16 elements (a multiple of
// 32: each thread's piece starts 64-byte aligned).
static size_t attn_bf16_scratch(const struct transformer_shape *s) {
    return attention_bf16_scratch_bytes(s->tokens, s->head_dim) / sizeof(uint16_t);
}

// bf16's per-thread dq, dk, dv of one head, in floats (each thread's piece 64-byte aligned).
static size_t dqkv_head_floats(const struct transformer_shape *s) {
    return ((size_t)s->tokens * 3 * (size_t)s->head_dim + 15) & ~(size_t)15;
}

void transformer_scratch_carve(struct carver *cv, struct transformer_scratch *sc,
                               const struct transformer_shape *s, int B, int nthreads, int bf16) {
    const size_t C = (size_t)s->dim, T = (size_t)s->tokens, BT = (size_t)B * T;
    const size_t Hd = (size_t)s->mlp_hidden, widest = Hd > 3 * C ? Hd : 3 * C;
    sc->dres = carve_floats(cv, BT * C);
    sc->dtmp = carve_floats(cv, BT * C);
    sc->dqkv = carve_floats(cv, BT * 3 * C);
    sc->dhidden = carve_floats(cv, BT * (size_t)s->mlp_hidden);
    sc->dscores = carve_floats(cv, (size_t)nthreads * T * T);
    sc->ln_partials = carve_floats(cv, (size_t)nthreads * 2 * C);
    sc->dbias_partials = carve_floats(cv, (size_t)nthreads * widest);
    sc->dout_bf16 = bf16 ? carve_bf16(cv, BT * widest) : NULL;
    sc->attn_bf16 = bf16 ? carve_bf16(cv, (size_t)nthreads * attn_bf16_scratch(s)) : NULL;
    sc->dqkv_heads = bf16 ? carve_floats(cv, (size_t)nthreads * dqkv_head_floats(s)) : NULL;
    sc->nthreads = nthreads;
}

void transformer_block_acts_share_scratch(struct transformer_block_acts *b,
                                          const struct transformer_scratch *sc) {
    b->ln1 = b->atty = b->ln2 = b->fch_gelu = sc->dhidden;
    b->qkv = sc->dqkv;  // apart from ln1's scratch: ln1_bf16 is the qkv matmul's input
    b->attn_bf16 = sc->attn_bf16;
    b->attn_threads = sc->nthreads;
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

#define LAYERNORM_CHUNK 4096  // floats of rows normalised and rounded at a time (16 KB)

static void layernorm_forward_worker(void *arg, int ith, int nth) {
    struct layernorm_task *t = arg;
    long b, e;
    pool_split(t->N, ith, nth, &b, &e);
    // Rounded here, a few rows at a time while they are in L1, rather than in a region of its
    // own (or after the whole block, by then in L3). out NULL: only the bf16 rows are wanted,
    // and the fp32 ones go through an L1 buffer.
    float local[LAYERNORM_CHUNK] __attribute__((aligned(64)));
    CATLIP_ASSERT(t->out || (t->out_bf16 && t->C <= LAYERNORM_CHUNK));
    const long chunk = t->out_bf16 && t->C < LAYERNORM_CHUNK ? LAYERNORM_CHUNK / t->C : e - b;
    for (long r = b; r < e; r += chunk) {
        long n = e - r < chunk ? e - r : chunk;
        float *out = t->out ? t->out + r * t->C : local;
        t->k->layernorm_forward(out, t->out_mean + r, t->out_rstd + r, t->inp + r * t->C,
                                t->weight, t->bias, n, t->C);
        if (t->out_bf16) bf16_from_floats(t->out_bf16 + r * t->C, out, (size_t)n * t->C);
    }
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
    ELEMENTWISE_NONE,           // out as it is (elementwise_dout: only rounded and summed)
};

struct elementwise_task {
    const struct kernels *k;
    float *out;
    const float *a, *b;
    long n;
    enum elementwise_op op;
    uint16_t *out_bf16;  // also out rounded to bf16, or NULL
    // elementwise_dout: n = rows * cols, and each thread's column sums of out (cols floats)
    long rows;
    int cols;
    float *partials;
};

// Elements per piece of a thread's block: 16 KB of fp32, so that rounding reads them from L1
// (a whole block is megabytes: it was written out to L3 or memory and read back).
#define ELEMENTWISE_CHUNK 4096

// out[begin, end) = op(a, b), then rounded into out_bf16 when that is not NULL. out NULL (only
// the bf16 result wanted, at most ELEMENTWISE_CHUNK elements): computed into an L1 buffer and
// rounded from there, never written to memory as fp32.
static void elementwise_range(const struct elementwise_task *t, long begin, long end) {
    float local[ELEMENTWISE_CHUNK] __attribute__((aligned(64)));
    CATLIP_ASSERT(t->out || (t->out_bf16 && end - begin <= ELEMENTWISE_CHUNK));
    float *out = t->out ? t->out + begin : local;
    switch (t->op) {
    case ELEMENTWISE_GELU: t->k->gelu_forward(out, t->a + begin, end - begin); break;
    case ELEMENTWISE_GELU_BACKWARD:
        t->k->gelu_backward(out, t->a + begin, t->b + begin, end - begin);
        break;
    case ELEMENTWISE_ADD: t->k->add(out, t->a + begin, t->b + begin, end - begin); break;
    case ELEMENTWISE_NONE: break;
    }
    if (t->out_bf16) bf16_from_floats(t->out_bf16 + begin, out, (size_t)(end - begin));
}

static void elementwise_worker(void *arg, int ith, int nth) {
    struct elementwise_task *t = arg;
    long b, e;
    // Split on 16-float boundaries so every thread's block starts vector-aligned.
    long blocks = (t->n + 15) / 16;
    pool_split(blocks, ith, nth, &b, &e);
    b *= 16;
    e = e * 16 < t->n ? e * 16 : t->n;
    for (long i = b; i < e; i += ELEMENTWISE_CHUNK)
        elementwise_range(t, i, e - i < ELEMENTWISE_CHUNK ? e : i + ELEMENTWISE_CHUNK);
}

// out = op(a, b), and out rounded to bf16 into out_bf16 when that is not NULL.
static void elementwise_rounded(const struct transformer_exec *x, enum elementwise_op op,
                                float *out, uint16_t *out_bf16, const float *a, const float *b,
                                long n) {
    struct elementwise_task t = {.k = x->k, .out = out, .a = a, .b = b, .n = n, .op = op,
                                 .out_bf16 = out_bf16};
    pool_run(x->pool, elementwise_worker, &t);
}

static void elementwise(const struct transformer_exec *x, enum elementwise_op op, float *out,
                        const float *a, const float *b, long n) {
    elementwise_rounded(x, op, out, NULL, a, b, n);
}

static void elementwise_dout_worker(void *arg, int ith, int nth) {
    struct elementwise_task *t = arg;
    long b, e;
    pool_split(t->rows, ith, nth, &b, &e);
    float *sums = t->partials + (size_t)ith * t->cols;
    memset(sums, 0, (size_t)t->cols * sizeof *sums);
    // ~16 KB of fp32 rows at a time, so that rounding and summing read them from L1
    const long chunk = t->cols < ELEMENTWISE_CHUNK ? ELEMENTWISE_CHUNK / t->cols : 1;
    for (long r = b; r < e; r += chunk) {
        long n = e - r < chunk ? e - r : chunk;
        elementwise_range(t, r * t->cols, (r + n) * t->cols);
        t->k->bias_backward(sums, t->out + r * t->cols, n, t->cols);
    }
}

// dbias += the threads' column sums (partials), in thread order: fixed for a thread count.
static void dbias_from_partials(const struct transformer_exec *x, const float *partials,
                                float *dbias, int cols) {
    for (int i = 0; i < pool_size(x->pool); i++) {
        const float *sums = partials + (size_t)i * cols;
        for (int c = 0; c < cols; c++) dbias[c] += sums[c];
    }
}

// A linear layer's dout (rows, cols), finished in one pass: out = op(a, b), and each chunk of
// rows, while in cache, rounded into sc->dout_bf16 (bf16: what both backward products read,
// so neither converts it) and summed into dbias (so matmul_backward does not read dout again
// for it). Returns the bf16 dout, or NULL in fp32.
static const uint16_t *elementwise_dout(const struct transformer_exec *x,
                                        struct transformer_scratch *sc, enum elementwise_op op,
                                        float *dbias, float *out, const float *a, const float *b,
                                        long rows, int cols) {
    struct elementwise_task t = {.k = x->k, .out = out, .a = a, .b = b, .n = rows * cols,
                                 .op = op, .out_bf16 = sc->dout_bf16, .rows = rows,
                                 .cols = cols, .partials = sc->dbias_partials};
    CATLIP_ASSERT(pool_size(x->pool) <= sc->nthreads);
    pool_run(x->pool, elementwise_dout_worker, &t);
    dbias_from_partials(x, sc->dbias_partials, dbias, cols);
    return sc->dout_bf16;
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
    // bf16: q, k, v as bf16 (qkv unused), per-thread bf16 scratch, and atty also rounded into
    // atty_bf16; every product then takes bf16 operands that were rounded once, where they
    // were produced, instead of in each product's packing.
    const uint16_t *qkv_bf16;
    uint16_t *scratch_bf16, *atty_bf16;
    // backward: each thread's column sums of dqkv (3C, the qkv bias gradient), and bf16's
    // dqkv rounded for the qkv matmul's backward products (or NULL) and each thread's fp32
    // dq, dk, dv of its current head (see transformer_scratch)
    float *dbias_partials;
    uint16_t *dqkv_bf16;
    float *dqkv_heads;
};

// One head's q, k, v as bf16 (bf16 runs only).
static struct attention_bf16_head attention_head_bf16(const struct attention_task *t, long b,
                                                      long h) {
    const int T = t->s->tokens, C = t->s->dim, hd = t->s->head_dim;
    const uint16_t *q = t->qkv_bf16 + b * T * 3 * C + h * hd;  // (T, hd), row stride 3C
    return (struct attention_bf16_head){.tokens = T, .head_dim = hd, .causal = t->s->causal,
                                        .scale = 1.0f / sqrtf((float)hd), .k = t->k, .q = q,
                                        .key = q + C, .v = q + 2 * C, .ld_qkv = 3 * C};
}

// rows x cols fp32 (row stride ld) rounded to bf16 (row stride ld_bf16).
static void round_rows(uint16_t *dst, long ld_bf16, const float *src, long ld, int rows,
                       int cols) {
    for (int r = 0; r < rows; r++) bf16_from_floats(dst + r * ld_bf16, src + r * ld, (size_t)cols);
}

static void attention_forward_worker(void *arg, int ith, int nth) {
    struct attention_task *t = arg;
    const int T = t->s->tokens, C = t->s->dim, H = t->s->heads, hd = t->s->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    long b0, e0;
    pool_split((long)t->B * H, ith, nth, &b0, &e0);
    for (long bh = b0; bh < e0; bh++) {
        long b = bh / H, h = bh % H;
        float *p = t->att + bh * T * att_ld(t->s, t->qkv_bf16 != NULL);  // (T, T), padded
        float *y = t->atty + b * T * C + h * hd;  // (T, hd), row stride C
        if (t->qkv_bf16) {
            // only proj's input, bf16, is stored: the fp32 output is read by nothing
            struct attention_bf16_head head = attention_head_bf16(t, b, h);
            attention_bf16_forward(p, NULL, t->atty_bf16 + b * T * C + h * hd, C, &head,
                                   t->scratch_bf16 + (size_t)ith * attn_bf16_scratch(t->s));
            continue;
        }
        const float *q = t->qkv + b * T * 3 * C + h * hd;  // (T, hd), row stride 3C
        const float *key = q + C;
        const float *v = q + 2 * C;
        gemm(0, 1, T, T, hd, scale, q, 3 * C, key, 3 * C, 0.0f, p, T);
        for (int i = 0; i < T; i++) attention_softmax_row(t->k, p + (long)i * T, i, T, t->s->causal);
        gemm(0, 0, T, hd, T, 1.0f, p, T, v, 3 * C, 0.0f, y, C);
    }
}

// One head's dq, dk, dv just written (T rows of hd each, row stride ld; part p at d + p·step,
// still in cache): their column sums into this thread's sums (3C) for the qkv bias, so that its
// matmul_backward reads dqkv only for the products, and (bf16) their bf16 copies, the products'
// operand.
static void attention_dqkv_finish(const struct attention_task *t, float *sums, long b, long h,
                                  const float *d, long step, long ld) {
    const int T = t->s->tokens, C = t->s->dim, hd = t->s->head_dim;
    for (int part = 0; part < 3; part++, d += step) {  // q, k, v
        const long column = part * C + h * hd;
        for (int r = 0; r < T; r++) t->k->add(sums + column, sums + column, d + r * ld, hd);
        if (t->dqkv_bf16) round_rows(t->dqkv_bf16 + b * T * 3 * C + column, 3 * C, d, ld, T, hd);
    }
}

static void attention_backward_worker(void *arg, int ith, int nth) {
    struct attention_task *t = arg;
    const int T = t->s->tokens, C = t->s->dim, H = t->s->heads, hd = t->s->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    float *ds = t->dscores + (size_t)ith * T * T;  // (T, T) this thread's scratch
    float *sums = t->dbias_partials + (size_t)ith * 3 * C;
    memset(sums, 0, 3 * (size_t)C * sizeof *sums);
    long b0, e0;
    pool_split((long)t->B * H, ith, nth, &b0, &e0);
    for (long bh = b0; bh < e0; bh++) {
        long b = bh / H, h = bh % H;
        if (t->qkv_bf16) {
            struct attention_bf16_head head = attention_head_bf16(t, b, h);
            float *dq = t->dqkv_heads + (size_t)ith * dqkv_head_floats(t->s);  // (T, 3hd)
            attention_bf16_backward(dq, dq + hd, dq + 2 * hd, 3 * hd, t->datty + b * T * C + h * hd,
                                    C, t->att + bh * T * att_ld(t->s, 1), &head,
                                    t->scratch_bf16 + (size_t)ith * attn_bf16_scratch(t->s));
            attention_dqkv_finish(t, sums, b, h, dq, hd, 3 * hd);
            continue;
        }
        const float *q = t->qkv + b * T * 3 * C + h * hd;
        const float *key = q + C, *v = q + 2 * C;
        float *dq = t->dqkv + b * T * 3 * C + h * hd, *dk = dq + C, *dv = dq + 2 * C;
        const float *p = t->att + bh * T * T;
        const float *dy = t->datty + b * T * C + h * hd;  // (T, hd), row stride C
        // y = P·v  →  dP = dy·vᵀ, dv = Pᵀ·dy
        gemm(0, 1, T, T, hd, 1.0f, dy, C, v, 3 * C, 0.0f, ds, T);
        gemm(1, 0, T, hd, T, 1.0f, p, T, dy, C, 0.0f, dv, 3 * C);
        // P = softmax(S), S = scale·q·kᵀ  →  dS·scale, then dq = dS·k, dk = dSᵀ·q
        t->k->softmax_backward(ds, p, ds, T, T, scale);
        gemm(0, 0, T, hd, T, 1.0f, ds, T, key, 3 * C, 0.0f, dq, 3 * C);
        gemm(1, 0, T, hd, T, 1.0f, ds, T, q, 3 * C, 0.0f, dk, 3 * C);
        attention_dqkv_finish(t, sums, b, h, dq, C, 3 * C);
    }
}

// ---------------------------------------------------------------------------------------
// one block

void transformer_block_forward(const struct transformer_exec *e, const struct transformer_shape *s,
                               struct transformer_block_acts *ba, const float *params,
                               const struct transformer_block_offsets *o, const float *x, int B) {
    const long BT = (long)B * s->tokens;
    const int C = s->dim;
    // x + attn(norm1(x))
    // bf16: the LayerNorms' and GELU's fp32 outputs are never stored (NULL), only their bf16
    // copies, which is all the matmuls read.
    transformer_layernorm_forward(e, ba->ln1_bf16 ? NULL : ba->ln1, ba->ln1_bf16, ba->ln1_mean,
                                  ba->ln1_rstd, x,
                                  params + o->norm1_w, params + o->norm1_b, BT, C);
    matmul_forward(e->pool, e->k, ba->qkv, ba->qkv_bf16, ba->ln1, ba->ln1_bf16, params + o->qkv_w,
                   transformer_weight_bf16(e, o->qkv_w), params + o->qkv_b, NULL, BT, C, 3 * C);
    struct attention_task at = {.k = e->k, .s = s, .B = B, .qkv = ba->qkv, .att = ba->att,
                                .atty = ba->atty, .qkv_bf16 = ba->qkv_bf16,
                                .scratch_bf16 = ba->attn_bf16, .atty_bf16 = ba->atty_bf16};
    CATLIP_ASSERT(ba->qkv_bf16 == NULL || pool_size(e->pool) <= ba->attn_threads);
    pool_run_flops(e->pool, attention_forward_worker, &at, 4.0 * B * s->tokens * s->tokens * s->dim);
    matmul_forward(e->pool, e->k, ba->res2, NULL, ba->atty, ba->atty_bf16, params + o->proj_w,
                   transformer_weight_bf16(e, o->proj_w), params + o->proj_b, x, BT, C, C);
    // res2 + mlp(norm2(res2))
    transformer_layernorm_forward(e, ba->ln2_bf16 ? NULL : ba->ln2, ba->ln2_bf16, ba->ln2_mean,
                                  ba->ln2_rstd, ba->res2,
                                  params + o->norm2_w, params + o->norm2_b, BT, C);
    matmul_forward(e->pool, e->k, ba->fch, NULL, ba->ln2, ba->ln2_bf16, params + o->fc1_w,
                   transformer_weight_bf16(e, o->fc1_w), params + o->fc1_b, NULL, BT, C, s->mlp_hidden);
    elementwise_rounded(e, ELEMENTWISE_GELU, ba->fch_gelu_bf16 ? NULL : ba->fch_gelu,
                        ba->fch_gelu_bf16, ba->fch, NULL,
                        BT * s->mlp_hidden);
    matmul_forward(e->pool, e->k, ba->out, NULL, ba->fch_gelu, ba->fch_gelu_bf16, params + o->fc2_w,
                   transformer_weight_bf16(e, o->fc2_w), params + o->fc2_b, ba->res2, BT, s->mlp_hidden, C);
}

// Each linear layer's dout is rounded (bf16) and summed for its bias by the pass that finishes
// it (elementwise_dout; the attention backward for qkv), not per product and by a second read.
void transformer_block_backward(const struct transformer_exec *e, const struct transformer_shape *s,
                                const struct transformer_block_acts *ba,
                                struct transformer_scratch *sc, const float *params, float *grads,
                                const struct transformer_block_offsets *o, const float *x, int B) {
    const long BT = (long)B * s->tokens;
    const int C = s->dim, Hd = s->mlp_hidden;
    // out = res2 + fc2(gelu(fc1(ln2))): dres carries d out and, after the residual, d res2
    const uint16_t *dres_bf16 =
        elementwise_dout(e, sc, ELEMENTWISE_NONE, grads + o->fc2_b, sc->dres, NULL, NULL, BT, C);
    matmul_backward(e->pool, sc->dhidden, grads + o->fc2_w, NULL, sc->dres, dres_bf16,
                    ba->fch_gelu, ba->fch_gelu_bf16, params + o->fc2_w,
                    transformer_weight_bf16(e, o->fc2_w), BT, Hd, C, 0);
    const uint16_t *dhidden_bf16 = elementwise_dout(e, sc, ELEMENTWISE_GELU_BACKWARD,
                                                    grads + o->fc1_b, sc->dhidden, ba->fch,
                                                    sc->dhidden, BT, Hd);
    matmul_backward(e->pool, sc->dtmp, grads + o->fc1_w, NULL, sc->dhidden, dhidden_bf16, ba->ln2,
                    ba->ln2_bf16, params + o->fc1_w, transformer_weight_bf16(e, o->fc1_w), BT, C,
                    Hd, 0);
    transformer_layernorm_backward(e, sc->ln_partials, sc->dtmp, grads + o->norm2_w,
                                   grads + o->norm2_b, sc->dtmp, ba->res2, params + o->norm2_w,
                                   ba->ln2_mean, ba->ln2_rstd, BT, C);
    dres_bf16 = elementwise_dout(e, sc, ELEMENTWISE_ADD, grads + o->proj_b, sc->dres, sc->dres,
                                 sc->dtmp, BT, C);
    // res2 = x + proj(attention(ln1(x)))
    matmul_backward(e->pool, sc->dtmp, grads + o->proj_w, NULL, sc->dres, dres_bf16, ba->atty,
                    ba->atty_bf16, params + o->proj_w, transformer_weight_bf16(e, o->proj_w), BT,
                    C, C, 0);
    struct attention_task at = {.k = e->k,
                                .s = s,
                                .B = B,
                                .qkv = ba->qkv,
                                .att = ba->att,
                                .dqkv = sc->dqkv,
                                .datty = sc->dtmp,
                                .dscores = sc->dscores,
                                .qkv_bf16 = ba->qkv_bf16,
                                .scratch_bf16 = sc->attn_bf16,
                                .dbias_partials = sc->dbias_partials,
                                .dqkv_bf16 = sc->dout_bf16,
                                .dqkv_heads = sc->dqkv_heads};
    CATLIP_ASSERT(pool_size(e->pool) <= sc->nthreads);
    pool_run_flops(e->pool, attention_backward_worker, &at, 8.0 * B * s->tokens * s->tokens * s->dim);
    dbias_from_partials(e, sc->dbias_partials, grads + o->qkv_b, 3 * C);
    // bf16: dqkv was not written (dqkv_heads), only its bf16 copy, which the products read
    matmul_backward(e->pool, sc->dtmp, grads + o->qkv_w, NULL,
                    ba->qkv_bf16 ? NULL : sc->dqkv, sc->dout_bf16, ba->ln1,
                    ba->ln1_bf16, params + o->qkv_w, transformer_weight_bf16(e, o->qkv_w), BT, C,
                    3 * C, 0);
    transformer_layernorm_backward(e, sc->ln_partials, sc->dtmp, grads + o->norm1_w,
                                   grads + o->norm1_b, sc->dtmp, x, params + o->norm1_w,
                                   ba->ln1_mean, ba->ln1_rstd, BT, C);
    elementwise(e, ELEMENTWISE_ADD, sc->dres, sc->dres, sc->dtmp, BT * C);
}
