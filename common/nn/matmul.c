#include "nn/matmul.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "nn/bf16.h"
#include "nn/gemm.h"

static float *ones_buffer;
static long ones_length;

// Threads 1 .. nth - 1's partial dweight when a backward splits its tokens (see below); grown on
// demand like the ones, under the same contract (the pool's owning thread, outside regions).
static float *partials_buffer;
static size_t partials_length;

static float *dweight_partials(size_t floats) {
    if (floats > partials_length) {
        free(partials_buffer);
        partials_buffer = xaligned_alloc(floats * sizeof(float));
        partials_length = floats;
    }
    return partials_buffer;
}

const float *matmul_ones(long rows) {
    if (rows > ones_length) {
        free(ones_buffer);
        ones_buffer = xaligned_alloc((size_t)rows * sizeof(float));
        for (long i = 0; i < rows; i++) ones_buffer[i] = 1.0f;
        ones_length = rows;
    }
    return ones_buffer;
}

struct forward_task {
    const struct kernels *k;
    float *out;
    uint16_t *out_bf16;
    const float *inp, *weight, *bias, *residual;
    const uint16_t *weight_bf16, *inp_bf16;
    long N;
    int IC, OC;
    int split_columns;
};

static void forward_worker(void *arg, int ith, int nth) {
    struct forward_task *t = arg;
    long begin, end;
    if (t->split_columns) {
        pool_split(t->OC, ith, nth, &begin, &end);
        int n = (int)(end - begin);
        if (n <= 0) return;
        if (t->weight_bf16)
            gemm_bf16(0, 1, (int)t->N, n, t->IC, 1.0f,
                      t->inp_bf16 ? (const void *)t->inp_bf16 : (const void *)t->inp,
                      t->inp_bf16 ? GEMM_BF16 : GEMM_F32, t->IC, t->weight_bf16 + begin * t->IC,
                      GEMM_BF16, t->IC, 0.0f, t->out + begin, t->OC);
        else
            gemm(0, 1, (int)t->N, n, t->IC, 1.0f, t->inp, t->IC, t->weight + begin * t->IC, t->IC,
                 0.0f, t->out + begin, t->OC);
        for (long r = 0; r < t->N; r++) {
            float *row = t->out + r * t->OC + begin;
            if (t->bias) t->k->add_bias(row, t->bias + begin, 1, n);
            if (t->residual) t->k->add(row, row, t->residual + r * t->OC + begin, n);
            if (t->out_bf16) bf16_from_floats(t->out_bf16 + r * t->OC + begin, row, (size_t)n);
        }
    } else {
        pool_split(t->N, ith, nth, &begin, &end);
        long n = end - begin;
        if (n <= 0) return;
        float *out = t->out + begin * t->OC;
        if (t->weight_bf16)
            gemm_bf16(0, 1, (int)n, t->OC, t->IC, 1.0f,
                      t->inp_bf16 ? (const void *)(t->inp_bf16 + begin * t->IC)
                                  : (const void *)(t->inp + begin * t->IC),
                      t->inp_bf16 ? GEMM_BF16 : GEMM_F32, t->IC, t->weight_bf16, GEMM_BF16, t->IC,
                      0.0f, out, t->OC);
        else
            gemm(0, 1, (int)n, t->OC, t->IC, 1.0f, t->inp + begin * t->IC, t->IC, t->weight, t->IC,
                 0.0f, out, t->OC);
        // bias, residual and rounding a few rows at a time, while they are in L1 (each over
        // the whole block was a pass through L3 or memory)
        const long chunk = t->OC < 4096 ? 4096 / t->OC : 1;
        for (long r = 0; r < n; r += chunk) {
            long rows = n - r < chunk ? n - r : chunk;
            float *o = out + r * t->OC;
            if (t->bias) t->k->add_bias(o, t->bias, rows, t->OC);
            if (t->residual) t->k->add(o, o, t->residual + (begin + r) * t->OC, rows * t->OC);
            if (t->out_bf16)
                bf16_from_floats(t->out_bf16 + (begin + r) * t->OC, o, (size_t)rows * t->OC);
        }
    }
}

void matmul_forward(struct pool *pool, const struct kernels *k, float *out, uint16_t *out_bf16,
                    const float *inp, const uint16_t *inp_bf16, const float *weight,
                    const uint16_t *weight_bf16, const float *bias, const float *residual, long N,
                    int IC, int OC) {
    struct forward_task t = {k,        out,         out_bf16, inp, weight, bias, residual,
                             weight_bf16, inp_bf16, N,        IC,  OC,     0};
    // Few rows and many columns (the head: B x V): give each thread a slice of the weight.
    t.split_columns = N < 64L * pool_size(pool) && OC >= 64 * pool_size(pool);
    pool_run_flops(pool, forward_worker, &t, 2.0 * (double)N * IC * OC);
}

struct backward_task {
    float *dinp, *dweight, *dbias;
    const float *dout, *inp, *weight, *ones;
    const uint16_t *weight_bf16, *inp_bf16, *dout_bf16;
    long N;
    int IC, OC, accumulate_dinp;
    // dweight split by tokens (the products' k) instead of by rows: thread 0 adds its share into
    // dweight, thread i > 0 writes its own into partials + (i - 1) * OC * IC
    float *partials;
};

// dweight += doutᵀ · inp over tokens [begin, end), as gemm's C = alpha·op(A)·op(B) + beta·C.
static void dweight_product(const struct backward_task *t, long begin, long end, int row0,
                            int rows, float *c, float beta) {
    if (t->weight_bf16)
        gemm_bf16(1, 0, rows, t->IC, (int)(end - begin), 1.0f,
                  t->dout_bf16 ? (const void *)(t->dout_bf16 + begin * t->OC + row0)
                               : (const void *)(t->dout + begin * t->OC + row0),
                  t->dout_bf16 ? GEMM_BF16 : GEMM_F32, t->OC,
                  t->inp_bf16 ? (const void *)(t->inp_bf16 + begin * t->IC)
                              : (const void *)(t->inp + begin * t->IC),
                  t->inp_bf16 ? GEMM_BF16 : GEMM_F32, t->IC, beta, c, t->IC);
    else
        gemm(1, 0, rows, t->IC, (int)(end - begin), 1.0f, t->dout + begin * t->OC + row0, t->OC,
             t->inp + begin * t->IC, t->IC, beta, c, t->IC);
}

static void backward_worker(void *arg, int ith, int nth) {
    struct backward_task *t = arg;
    long begin, end;
    // dinp rows [begin, end) = dout rows · W
    if (t->dinp) {
        pool_split(t->N, ith, nth, &begin, &end);
        float beta = t->accumulate_dinp ? 1.0f : 0.0f;
        if (end > begin && t->weight_bf16)
            gemm_bf16(0, 0, (int)(end - begin), t->IC, t->OC, 1.0f,
                      t->dout_bf16 ? (const void *)(t->dout_bf16 + begin * t->OC)
                                   : (const void *)(t->dout + begin * t->OC),
                      t->dout_bf16 ? GEMM_BF16 : GEMM_F32, t->OC, t->weight_bf16, GEMM_BF16, t->IC,
                      beta, t->dinp + begin * t->IC, t->IC);
        else if (end > begin)
            gemm(0, 0, (int)(end - begin), t->IC, t->OC, 1.0f, t->dout + begin * t->OC, t->OC,
                 t->weight, t->IC, beta, t->dinp + begin * t->IC, t->IC);
    }
    if (t->partials) {
        // tokens in whole pairs (bf16 multiplies pairs of k): thread 0 into dweight, the others
        // into their partials, summed in thread order by matmul_backward
        pool_split((t->N + 1) / 2, ith, nth, &begin, &end);
        begin *= 2;
        end = 2 * end < t->N ? 2 * end : t->N;
        float *c = ith == 0 ? t->dweight : t->partials + (size_t)(ith - 1) * t->OC * t->IC;
        if (end > begin)
            dweight_product(t, begin, end, 0, t->OC, c, ith == 0 ? 1.0f : 0.0f);
        else if (ith > 0)
            memset(c, 0, (size_t)t->OC * t->IC * sizeof *c);
    }
    // dweight rows [begin, end) += dout[:, begin:end]ᵀ · inp ; dbias[begin:end] += column sums
    pool_split(t->OC, ith, nth, &begin, &end);
    int n = (int)(end - begin);
    if (n <= 0) return;
    if (!t->partials) dweight_product(t, 0, t->N, (int)begin, n, t->dweight + begin * t->IC, 1.0f);
    if (t->dbias)
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)t->N, n, 1.0f, t->dout + begin, t->OC, t->ones,
                    1, 1.0f, t->dbias + begin, 1);
}

// dweight rows split among threads: += the partials of threads 1 .. nth - 1, in that order.
static void dweight_sum_worker(void *arg, int ith, int nth) {
    const struct backward_task *t = arg;
    long begin, end;
    pool_split(t->OC, ith, nth, &begin, &end);
    size_t size = (size_t)t->OC * t->IC;
    for (int i = 1; i < nth; i++) {
        const float *part = t->partials + (size_t)(i - 1) * size;
        for (long e = begin * t->IC; e < end * t->IC; e++) t->dweight[e] += part[e];
    }
}

void matmul_backward(struct pool *pool, float *dinp, float *dweight, float *dbias,
                     const float *dout, const uint16_t *dout_bf16, const float *inp,
                     const uint16_t *inp_bf16, const float *weight, const uint16_t *weight_bf16,
                     long N, int IC, int OC, int accumulate_dinp) {
    CATLIP_ASSERT(dout_bf16 == NULL || weight_bf16 != NULL);
    struct backward_task t = {.dinp = dinp, .dweight = dweight, .dbias = dbias, .dout = dout,
                              .inp = inp, .weight = weight, .weight_bf16 = weight_bf16,
                              .inp_bf16 = inp_bf16, .dout_bf16 = dout_bf16, .N = N, .IC = IC,
                              .OC = OC, .accumulate_dinp = accumulate_dinp};
    if (dbias) t.ones = matmul_ones(N);
    // Split dweight's product by tokens when there are many: split by rows, every thread packs
    // and streams all of inp (N x IC, from memory: it was written in the forward), and the
    // product's packing is memory-bound, so 2 threads ran the dweight products 1.6-1.8x, not 2x
    // (vit_tiny bf16). By tokens each thread reads half of dout and half of inp; the partial
    // products (OC x IC each) are summed after, in thread order (fixed for a thread count).
    // Only when tokens outnumber outputs 4 to 1: the partials' traffic grows with OC, and the
    // duplicated packing it saves matters less the more rows of dweight amortise it.
    int nth = pool_size(pool);
    if (nth > 1 && N >= 256L * nth && N >= 4L * OC)
        t.partials = dweight_partials((size_t)(nth - 1) * OC * IC);
    pool_run_flops(pool, backward_worker, &t, (dinp ? 4.0 : 2.0) * (double)N * IC * OC);
    if (t.partials) pool_run(pool, dweight_sum_worker, &t);
}
