#include "nn/blas_info.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/rng.h"
#include "nn/bf16.h"
#include "nn/gemm.h"

char *openblas_get_config(void);
char *openblas_get_corename(void);

const char *blas_describe(void) {
    static char text[256];
    snprintf(text, sizeof text, "%s (core: %s)", openblas_get_config(), openblas_get_corename());
    return text;
}

struct sgemm_task {
    const float *a, *b;
    float *c;
    int n;
};

static void sgemm_worker(void *arg, int ith, int nth) {
    struct sgemm_task *t = arg;
    long begin, end;
    pool_split(t->n, ith, nth, &begin, &end);
    if (end > begin)
        gemm(0, 1, (int)(end - begin), t->n, t->n, 1.0f, t->a + begin * t->n, t->n, t->b, t->n,
             0.0f, t->c + begin * t->n, t->n);
}

// Times the pool multiplying an n x n problem with `worker` for at least `seconds`.
static double measure_gflops(struct pool *pool, pool_task_fn worker, int n, double seconds) {
    size_t count = (size_t)n * n;
    float *a = xaligned_alloc(count * sizeof(float)), *b = xaligned_alloc(count * sizeof(float)),
          *c = xaligned_alloc(count * sizeof(float));
    struct rng r;
    rng_init(&r, 12345);
    for (size_t i = 0; i < count; i++) a[i] = rng_uniform(&r), b[i] = rng_uniform(&r);
    struct sgemm_task t = {a, b, c, n};
    pool_run(pool, worker, &t);  // warm-up
    int reps = 0;
    double start = time_now(), elapsed;
    do {
        pool_run(pool, worker, &t);
        reps++;
        elapsed = time_now() - start;
    } while (elapsed < seconds);
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n * reps / elapsed * 1e-9;
}

double blas_measure_sgemm_gflops(struct pool *pool, int n, double seconds) {
    return measure_gflops(pool, sgemm_worker, n, seconds);
}

// The same measurement through OpenBLAS whatever gemm() chose, so that logs can show both.
static void openblas_worker(void *arg, int ith, int nth) {
    struct sgemm_task *t = arg;
    long begin, end;
    pool_split(t->n, ith, nth, &begin, &end);
    if (end > begin)
        gemm_openblas(0, 1, (int)(end - begin), t->n, t->n, 1.0f, t->a + begin * t->n, t->n, t->b,
                      t->n, 0.0f, t->c + begin * t->n, t->n);
}

double blas_measure_openblas_gflops(struct pool *pool, int n, double seconds) {
    return measure_gflops(pool, openblas_worker, n, seconds);
}

struct bf16_gemm_task {
    const float *a;
    const uint16_t *b;
    float *c;
    int n;
};

static void bf16_gemm_worker(void *arg, int ith, int nth) {
    struct bf16_gemm_task *t = arg;
    long begin, end;
    pool_split(t->n, ith, nth, &begin, &end);
    if (end > begin)
        gemm_bf16(0, 1, (int)(end - begin), t->n, t->n, 1.0f, t->a + begin * t->n, GEMM_F32, t->n,
                  t->b, GEMM_BF16, t->n, 0.0f, t->c + begin * t->n, t->n);
}

double blas_measure_bf16_gemm_gflops(struct pool *pool, int n, double seconds) {
    size_t count = (size_t)n * n;
    float *a = xaligned_alloc(count * sizeof(float)), *c = xaligned_alloc(count * sizeof(float));
    uint16_t *b = xaligned_alloc(count * sizeof(uint16_t));
    struct rng r;
    rng_init(&r, 12345);
    for (size_t i = 0; i < count; i++)
        a[i] = rng_uniform(&r), b[i] = bf16_from_float(rng_uniform(&r));
    struct bf16_gemm_task t = {a, b, c, n};
    pool_run(pool, bf16_gemm_worker, &t);  // warm-up
    int reps = 0;
    double start = time_now(), elapsed;
    do {
        pool_run(pool, bf16_gemm_worker, &t);
        reps++;
        elapsed = time_now() - start;
    } while (elapsed < seconds);
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n * reps / elapsed * 1e-9;
}

struct peak_task {
    float (*loop)(long);
    long iterations;
    float sink[64];
};

static void peak_worker(void *arg, int ith, int nth) {
    (void)nth;
    struct peak_task *t = arg;
    t->sink[ith % 64] = t->loop(t->iterations);
}

// Runs `loop` on every thread until `seconds` pass; flops_per_iteration for one thread.
static double measure_peak(struct pool *pool, float (*loop)(long), double flops_per_iteration,
                           double seconds) {
    struct peak_task t = {loop, 1 << 16, {0}};
    pool_run(pool, peak_worker, &t);  // warm-up (clocks, pages)
    long reps = 0;
    double start = time_now(), elapsed;
    do {
        pool_run(pool, peak_worker, &t);
        reps++;
        elapsed = time_now() - start;
    } while (elapsed < seconds);
    return flops_per_iteration * (double)t.iterations * (double)reps * pool_size(pool) / elapsed *
           1e-9;
}

double blas_measure_fma_peak_gflops(struct pool *pool, double seconds) {
    if (!cpu_has(CPU_AVX512)) return 0.0;
    return measure_peak(pool, peak_fma_loop, 24.0 * 32.0, seconds);
}

double blas_measure_dpbf16_peak_gflops(struct pool *pool, double seconds) {
    if (!cpu_has(CPU_AVX512_BF16)) return 0.0;
    return measure_peak(pool, peak_dpbf16_loop, 24.0 * 64.0, seconds);
}
