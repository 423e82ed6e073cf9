// The bf16 step's optimizer phase on vit_tiny/224's parameter buffer (24,320 classes: 10.2 M
// floats): AdamW + EMA + the bf16 weight copy, in the two ways it can be done, alternated call
// by call so both see the same machine:
//   separate: optim_adamw_step, then transformer_round_bf16 (the next forward's own pass)
//   fused:    optim_adamw_step writing the bf16 copy itself (params_bf16)
// the fp32 step's (AdamW + EMA, no copy), and, for reference, the order before the pieces:
// AdamW over the whole buffer, then the EMA over it, then the rounding (one thread; weight decay
// on every tensor, which costs the same). Prints each variant's minimum and median ms per
// call; the minimum is the least disturbed by other tenants on a shared machine.
//   cmake --build build --target optim_bench && build/tests/optim_bench [reps] [threads]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/rng.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "nn/transformer.h"

static float *random_floats(size_t n, float lo, float hi, uint64_t stream) {
    float *p = xaligned_alloc(n * sizeof(float));
    struct rng r;
    rng_init(&r, rng_key(11, stream, 0, 0));
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * rng_uniform(&r);
    return p;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 9, threads = argc > 2 ? atoi(argv[2]) : 1;
    if (reps < 1 || threads < 1) catlip_die("usage: optim_bench [reps] [threads]");
    struct vit_config c;
    if (vit_config_make(&c, "vit_tiny", 224, 16, 24320, 0, 0, 0, 0) != 0)
        catlip_die("optim_bench: %s", catlip_error());
    struct vit_layout L;
    vit_layout_init(&L, &c);
    const size_t n = L.total;
    struct optim_settings s = {.lr = 1e-3, .min_lr = 1e-5, .warmup_steps = 0, .total_steps = 1000,
                               .weight_decay = 0.05, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                               .grad_clip = 1.0, .ema = 0.0005};
    float *params = random_floats(n, -0.1f, 0.1f, 1), *grads = random_floats(n, -1e-3f, 1e-3f, 2);
    float *m = random_floats(n, -1e-4f, 1e-4f, 3), *v = random_floats(n, 0, 1e-6f, 4);
    float *ema = random_floats(n, -0.1f, 0.1f, 5);
    uint16_t *copy = xaligned_alloc(n * sizeof(uint16_t));
    struct pool *pool = pool_create(threads, 1);
    const struct kernels *k = kernels_active();
    enum { SEPARATE, FUSED, FP32, WHOLE, VARIANTS };
    const char *names[VARIANTS] = {"separate (AdamW + EMA, then rounding pass)",
                                   "fused (AdamW + EMA + rounding in pieces)",
                                   "fp32 step's (AdamW + EMA)",
                                   "whole-buffer passes (AdamW, EMA, rounding)"};
    double *ms = xcalloc((size_t)VARIANTS * reps, sizeof(double));
    for (int r = -1; r < reps; r++)  // r = -1: warm-up, not kept
        for (int var = 0; var < VARIANTS; var++) {
            double t0 = time_now();
            if (var == WHOLE) {
                k->adamw_update(params, m, v, grads, (long)n, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.05f,
                                0.65f, 0.095f, 0.5f);
                k->ema_update(ema, params, (long)n, 0.0005f);
                transformer_round_bf16(pool, copy, params, L.image_end);
                if (r >= 0) ms[var * reps + r] = 1e3 * (time_now() - t0);
                continue;
            }
            optim_adamw_step(pool, k, &L, &s, params, grads, m, v, ema, 100, 1e-4, 0.5, 0, 0, n,
                             var == FUSED ? copy : NULL, L.image_end);
            if (var == SEPARATE) transformer_round_bf16(pool, copy, params, L.image_end);
            if (r >= 0) ms[var * reps + r] = 1e3 * (time_now() - t0);
        }
    printf("optim_bench: %zu parameters, %d thread(s), kernels %s, %d reps alternated\n", n,
           threads, k->name, reps);
    for (int var = 0; var < VARIANTS; var++) {
        double *x = ms + var * reps;
        qsort(x, (size_t)reps, sizeof *x, compare_doubles);
        printf("  %-45s min %7.2f ms  median %7.2f ms\n", names[var], x[0], x[reps / 2]);
    }
    pool_destroy(pool);
    vit_layout_free(&L);
    free(ms), free(params), free(grads), free(m), free(v), free(ema), free(copy);
    return 0;
}
