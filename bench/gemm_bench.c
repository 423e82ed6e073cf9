// GFLOP/s of our gemm (nn/gemm.h, AVX-512 backend) against OpenBLAS as the environment
// configures it (OPENBLAS_CORETYPE etc.), one thread each, on the shapes a vit_tiny training
// step at batch 32 runs per thread with 2 threads (B*T = 6304 rows, 3152 per thread).
//
//   cmake --build build --target gemm_bench
//   build/tests/gemm_bench [seconds_per_run] [runs] [shape name filter, e.g. "fwd"]
//
// Each cell is the median over `runs` runs (default 5) of back-to-back calls for at least
// `seconds_per_run` (default 0.2 s) of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, so that
// time the shared machine's scheduler gives to other processes is not counted); ours and
// OpenBLAS alternate run by run so that a noisy neighbour hits both. "max|diff|" is the largest
// difference between the two results relative to the largest |C| (a sanity check;
// tests/unit/test_gemm.c is the real test).
//
// "bf16 GF/s" is gemm_bf16() (nn/gemm.h: AVX512-BF16, or its fp32 emulation) on the same shape,
// with each operand bf16 or fp32 (rounded while packed) as a bf16 training step gives it;
// "bf16/ours" is its speed over our fp32 kernel. The first lines give one core's peak rates
// (nn/blas_info.h: VFMADD231PS and VDPBF16PS in independent chains) to hold both against.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "core/check.h"
#include "core/pool.h"
#include "core/rng.h"
#include "nn/bf16.h"
#include "nn/blas_info.h"
#include "nn/gemm.h"

char *openblas_get_corename(void);

struct shape {
    const char *what;
    int trans_a, trans_b, M, N, K, lda, ldb, ldc;
};

// lda/ldb/ldc 0: the packed width. The head (V = 24320 classes) splits its columns between the
// threads in forward and backward dW, its rows (the batch) in backward dinp.
static const struct shape shapes[] = {
    {"fwd qkv      NT", 0, 1, 3152, 576, 192, 0, 0, 0},
    {"fwd proj     NT", 0, 1, 3152, 192, 192, 0, 0, 0},
    {"fwd fc1      NT", 0, 1, 3152, 768, 192, 0, 0, 0},
    {"fwd fc2      NT", 0, 1, 3152, 192, 768, 0, 0, 0},
    {"fwd head     NT", 0, 1, 32, 12160, 192, 0, 0, 0},
    {"bwd dinp qkv NN", 0, 0, 3152, 192, 576, 0, 0, 0},
    {"bwd dinp fc2 NN", 0, 0, 3152, 192, 768, 0, 0, 0},
    {"bwd dinp prj NN", 0, 0, 3152, 192, 192, 0, 0, 0},
    {"bwd dinp fc1 NN", 0, 0, 3152, 768, 192, 0, 0, 0},
    {"bwd dW qkv   TN", 1, 0, 288, 192, 6304, 576, 0, 0},
    {"bwd dW proj  TN", 1, 0, 96, 192, 6304, 192, 0, 0},
    {"bwd dW fc1   TN", 1, 0, 384, 192, 6304, 768, 0, 0},
    {"bwd dW fc2   TN", 1, 0, 96, 768, 6304, 192, 0, 0},
    {"bwd head dinp NN", 0, 0, 16, 192, 24320, 0, 0, 0},
    {"bwd head dW  TN", 1, 0, 12160, 192, 32, 24320, 0, 0},
    {"att q.kT     NT", 0, 1, 197, 197, 64, 576, 576, 197},
    {"att p.v      NN", 0, 0, 197, 64, 197, 197, 576, 192},
    {"att pT.dy    TN", 1, 0, 197, 64, 197, 197, 192, 576},
    {"square 1536  NT", 0, 1, 1536, 1536, 1536, 0, 0, 0},
};

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double run_gflops(gemm_fn fn, const struct shape *s, const float *a, const float *b,
                         float *c, double seconds) {
    double flops = 2.0 * s->M * (double)s->N * s->K;
    int reps = 0;
    double start = thread_seconds(), elapsed;
    do {
        fn(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, a, s->lda, b, s->ldb, 0.0f, c, s->ldc);
        reps++;
        elapsed = thread_seconds() - start;
    } while (elapsed < seconds);
    return flops * reps / elapsed * 1e-9;
}

struct bf16_args {
    const void *a, *b;
    enum gemm_elem a_elem, b_elem;
};

static double run_bf16_gflops(const struct shape *s, const float *a, const struct bf16_args *x,
                              float *c, double seconds) {
    double flops = 2.0 * s->M * (double)s->N * s->K;
    int reps = 0;
    double start = thread_seconds(), elapsed;
    do {
        gemm_bf16(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, x->a, x->a_elem, s->lda, x->b,
                  x->b_elem, s->ldb, 0.0f, c, s->ldc);
        reps++;
        elapsed = thread_seconds() - start;
    } while (elapsed < seconds);
    return flops * reps / elapsed * 1e-9;
}

static int compare_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    const char *filter = argc > 3 ? argv[3] : "";
    if (seconds <= 0 || runs < 1 || runs > 101) {
        fprintf(stderr, "usage: gemm_bench [seconds_per_run > 0] [runs 1..101] [filter]\n");
        return 2;
    }
    openblas_set_num_threads(1);
    printf("ours: %s   OpenBLAS core: %s   1 thread, median of %d runs of >= %.2f s\n",
           gemm_backend(), openblas_get_corename(), runs, runs > 0 ? seconds : 0);
    struct pool *pool = pool_create(1, 1);
    double fma = blas_measure_fma_peak_gflops(pool, 0.5);
    double dpbf16 = blas_measure_dpbf16_peak_gflops(pool, 0.5);
    printf("bf16: %s   1-thread peak: VFMADD231PS %.1f GFLOP/s, VDPBF16PS %.1f GFLOP/s (%.2fx)\n",
           gemm_bf16_backend(), fma, dpbf16, fma > 0 ? dpbf16 / fma : 0.0);
    pool_destroy(pool);
    printf("%-16s %5s %5s %5s %10s %10s %7s %10s %10s %9s\n", "shape", "M", "N", "K", "ours GF/s",
           "BLAS GF/s", "ratio", "max|diff|", "bf16 GF/s", "bf16/ours");
    int count = (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < count; i++) {
        struct shape s = shapes[i];
        if (strstr(s.what, filter) == NULL) continue;
        int rows_a = s.trans_a ? s.K : s.M, cols_a = s.trans_a ? s.M : s.K;
        int rows_b = s.trans_b ? s.N : s.K, cols_b = s.trans_b ? s.K : s.N;
        if (s.lda == 0) s.lda = cols_a;
        if (s.ldb == 0) s.ldb = cols_b;
        if (s.ldc == 0) s.ldc = s.N;
        size_t na = (size_t)rows_a * s.lda, nb = (size_t)rows_b * s.ldb, nc = (size_t)s.M * s.ldc;
        float *a = xaligned_alloc(na * sizeof(float)), *b = xaligned_alloc(nb * sizeof(float));
        float *c1 = xaligned_alloc(nc * sizeof(float)), *c2 = xaligned_alloc(nc * sizeof(float));
        struct rng r;
        rng_init(&r, rng_key(7, (uint64_t)i, 0, 0));
        for (size_t j = 0; j < na; j++) a[j] = rng_uniform(&r) - 0.5f;
        for (size_t j = 0; j < nb; j++) b[j] = rng_uniform(&r) - 0.5f;
        gemm_avx512(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, a, s.lda, b, s.ldb, 0.0f, c1, s.ldc);
        gemm_openblas(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, a, s.lda, b, s.ldb, 0.0f, c2,
                      s.ldc);
        double diff = 0, top = 0;
        for (int m = 0; m < s.M; m++)
            for (int n = 0; n < s.N; n++) {
                double x = c1[(size_t)m * s.ldc + n], y = c2[(size_t)m * s.ldc + n];
                diff = fmax(diff, fabs(x - y));
                top = fmax(top, fabs(y));
            }
        // As a bf16 step feeds them (nn/vit.c): every operand of the blocks' linear layers and of
        // attention is already bf16 (weights rounded once per step, stored inputs, dout and
        // q, k, v, P, dS, dy rounded by the pass that produces them); in the head, only the
        // weight is (its input lnf and dout dlogits are fp32, rounded while packed).
        int head = strstr(s.what, "head") != NULL, square = strncmp(s.what, "square", 6) == 0;
        int a_bf16 = !head && !square;
        int b_bf16 = !square && strncmp(s.what, "bwd head dW", 11) != 0;
        uint16_t *ah = xaligned_alloc(na * sizeof(uint16_t)),
                 *bh = xaligned_alloc(nb * sizeof(uint16_t));
        bf16_from_floats(ah, a, na);
        bf16_from_floats(bh, b, nb);
        struct bf16_args bargs = {a_bf16 ? (const void *)ah : a, b_bf16 ? (const void *)bh : b,
                                  a_bf16 ? GEMM_BF16 : GEMM_F32, b_bf16 ? GEMM_BF16 : GEMM_F32};
        double ours[101], blas[101], half[101];
        for (int run = 0; run < runs; run++) {
            ours[run] = run_gflops(gemm_avx512, &s, a, b, c1, seconds);
            blas[run] = run_gflops(gemm_openblas, &s, a, b, c2, seconds);
            half[run] = run_bf16_gflops(&s, a, &bargs, c2, seconds);
        }
        double ours_median = median(ours, runs);
        double blas_median = median(blas, runs);
        double half_median = median(half, runs);
        printf("%-16s %5d %5d %5d %10.1f %10.1f %6.2fx %10.1e %10.1f %8.2fx\n", s.what, s.M, s.N,
               s.K, ours_median, blas_median, ours_median / blas_median,
               top > 0 ? diff / top : diff, half_median, half_median / ours_median);
        fflush(stdout);
        free(a), free(b), free(c1), free(c2), free(ah), free(bh);
    }
    return 0;
}
