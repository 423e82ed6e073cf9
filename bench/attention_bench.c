// Microseconds per head of the bf16 attention (nn/attention_bf16.h: the fused AVX512-BF16
// kernel where the CPU has it, else the separate products), one thread, on vit_tiny's heads:
// T 197, head_dim 64, 3 heads of a (T, 576) qkv per sequence.
//
//   cmake --build build --target attention_bench
//   taskset -c 1 build/tests/attention_bench [sequences] [reps]
//
// "cold": the heads of `sequences` sequences (default 32, one layer of a batch-32 step: P alone
// is 15 MB) run in turn, so q, k, v, dy and P come from memory as in the step (dq, dk, dv go to
// one head's buffer, as the step stages them before rounding to bf16); "hot": one
// sequence's 3 heads again and again (everything in L2). Each figure is the best of `reps`
// (default 15) passes; pin the process to one core (taskset) on a shared machine. The
// difference between the two columns is what memory costs the kernel.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/check.h"
#include "core/pool.h"
#include "core/rng.h"
#include "nn/attention_bf16.h"
#include "nn/bf16.h"
#include "nn/blas_info.h"
#include "nn/kernels.h"

enum { T = 197, HD = 64, HEADS = 3, C = HEADS * HD };

struct buffers {
    uint16_t *qkv, *y;  // (S, T, 3C), (S, T, C)
    float *probs, *dy, *dqkv;  // (S, 3, T, ldp), (S, T, C), (T, 3 head_dim)
    void *scratch;
};

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static struct attention_bf16_head head_of(const struct buffers *b, int sequence, int h) {
    const uint16_t *q = b->qkv + (size_t)sequence * T * 3 * C + h * HD;
    return (struct attention_bf16_head){.tokens = T, .head_dim = HD, .scale = 0.125f,
                                        .k = kernels_active(), .q = q, .key = q + C,
                                        .v = q + 2 * C, .ld_qkv = 3 * C};
}

// Best forward and backward time of `reps` passes over the heads of `sequences` sequences.
static void run(const struct buffers *b, int sequences, int reps, double *fwd, double *bwd) {
    const long ldp = attention_bf16_probs_ld(T);
    *fwd = *bwd = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = seconds();
        for (int s = 0; s < sequences; s++)
            for (int h = 0; h < HEADS; h++) {
                struct attention_bf16_head a = head_of(b, s, h);
                attention_bf16_forward(b->probs + (size_t)(s * HEADS + h) * T * ldp, NULL,
                                       b->y + (size_t)s * T * C + h * HD, C, &a, b->scratch);
            }
        double t1 = seconds();
        for (int s = 0; s < sequences; s++)
            for (int h = 0; h < HEADS; h++) {
                struct attention_bf16_head a = head_of(b, s, h);
                float *d = b->dqkv;  // one head's (T, 3 head_dim), as the step stages it
                attention_bf16_backward(d, d + HD, d + 2 * HD, 3 * HD,
                                        b->dy + (size_t)s * T * C + h * HD, C,
                                        b->probs + (size_t)(s * HEADS + h) * T * ldp, &a,
                                        b->scratch);
            }
        double t2 = seconds();
        if (t1 - t0 < *fwd) *fwd = t1 - t0;
        if (t2 - t1 < *bwd) *bwd = t2 - t1;
    }
    *fwd /= sequences * HEADS, *bwd /= sequences * HEADS;
}

int main(int argc, char **argv) {
    int sequences = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 2 ? atoi(argv[2]) : 15;
    if (sequences < 1 || reps < 1) {
        fprintf(stderr, "usage: attention_bench [sequences >= 1] [reps >= 1]\n");
        return 2;
    }
    struct buffers b;
    size_t S = (size_t)sequences;
    b.qkv = xaligned_alloc(S * T * 3 * C * sizeof *b.qkv);
    b.y = xaligned_alloc(S * T * C * sizeof *b.y);
    b.probs = xaligned_alloc(S * HEADS * T * (size_t)attention_bf16_probs_ld(T) * sizeof(float));
    b.dy = xaligned_alloc(S * T * C * sizeof *b.dy);
    b.dqkv = xaligned_alloc((size_t)T * 3 * HD * sizeof *b.dqkv);
    b.scratch = xaligned_alloc(attention_bf16_scratch_bytes(T, HD));
    struct rng r;
    rng_init(&r, 1);
    for (size_t i = 0; i < S * T * 3 * C; i++)
        b.qkv[i] = bf16_from_float((float)(1.5 * rng_normal(&r)));
    for (size_t i = 0; i < S * T * C; i++) b.dy[i] = (float)rng_normal(&r);
    struct pool *pool = pool_create(1, 0);
    double peak = blas_measure_dpbf16_peak_gflops(pool, 0.3);
    pool_destroy(pool);
    double cold_f, cold_b, hot_f, hot_b;
    run(&b, sequences, reps, &cold_f, &cold_b);
    run(&b, 1, reps * sequences, &hot_f, &hot_b);
    const double flop = 2.0 * T * T * HD;  // one of the head's T x T x head_dim products
    printf("bf16 attention (%s), T %d, head_dim %d, one thread; VDPBF16PS peak %.0f GFLOP/s\n",
           attention_bf16_backend(HD), T, HD, peak);
    printf("           cold us/head  GFLOP/s  peak   hot us/head  GFLOP/s  peak\n");
    printf("forward    %12.2f %8.0f %5.1f%% %12.2f %8.0f %5.1f%%\n", 1e6 * cold_f,
           2 * flop / cold_f * 1e-9, 100 * 2 * flop / cold_f * 1e-9 / peak, 1e6 * hot_f,
           2 * flop / hot_f * 1e-9, 100 * 2 * flop / hot_f * 1e-9 / peak);
    printf("backward   %12.2f %8.0f %5.1f%% %12.2f %8.0f %5.1f%%\n", 1e6 * cold_b,
           4 * flop / cold_b * 1e-9, 100 * 4 * flop / cold_b * 1e-9 / peak, 1e6 * hot_b,
           4 * flop / hot_b * 1e-9, 100 * 4 * flop / hot_b * 1e-9 / peak);
    return 0;
}
