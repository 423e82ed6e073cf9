// Training-step properties that need no reference: a small model overfits a fixed batch,
// the same seed and thread count give the same bits, and the thread count changes results
// only at float-rounding level — in fp32 and in bf16 (train.precision), which must also learn
// like fp32 and stay near it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/bf16.h"
#include "nn/matmul.h"
#include "data/synthetic.h"
#include "core/pool.h"
#include "nn/model.h"
#include "nn/train_state.h"

static struct vit_config small_config(void) {
    struct vit_config vc;
    assert_int_equal(vit_config_make(&vc, "vit_tiny", 32, 8, 20, 64, 2, 4, 0), 0);
    return vc;
}

static struct optim_settings small_optim(int steps) {
    return (struct optim_settings){.lr = 2e-3, .min_lr = 1e-5, .warmup_init_lr = 1e-4,
                                   .warmup_steps = 5, .total_steps = steps, .weight_decay = 0.0,
                                   .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .grad_clip = 1.0,
                                   .ema = 0.01};
}

// Runs `steps` steps on one fixed synthetic batch; returns first and last loss.
static void run_in(enum vit_precision precision, int threads, int steps, double *first,
                   double *last, float **params_out, size_t *n_out) {
    struct vit_config vc = small_config();
    struct optim_settings os = small_optim(steps);
    struct pool *pool = pool_create(threads, 0);
    struct train_state ts;
    const int B = 8;
    train_state_create(&ts, &vc, &os, B, pool, 42);
    train_state_set_precision(&ts, precision);
    struct synthetic_data d;
    synthetic_create(&d, 7, vc.image_size, vc.num_classes, B);
    float *images = malloc((size_t)B * 3 * 32 * 32 * sizeof(float));
    float *targets = malloc((size_t)B * vc.num_classes * sizeof(float));
    synthetic_batch(&d, 0, B, images, targets);
    for (int s = 0; s < steps; s++) {
        double loss = train_forward_backward(&ts, images, targets, B, B, NULL, NULL);
        assert_true(isfinite(loss));
        if (s == 0) *first = loss;
        *last = loss;
        train_apply_update(&ts);
    }
    if (params_out) {
        *n_out = ts.model.layout.total;
        *params_out = malloc(*n_out * sizeof(float));
        memcpy(*params_out, ts.params, *n_out * sizeof(float));
    }
    free(images), free(targets);
    synthetic_free(&d);
    train_state_free(&ts);
    pool_destroy(pool);
}

static void run(int threads, int steps, double *first, double *last, float **params_out,
                size_t *n_out) {
    run_in(VIT_FP32, threads, steps, first, last, params_out, n_out);
}

static void small_model_overfits_a_batch(void **state) {
    double first, last;
    run(2, 150, &first, &last, NULL, NULL);
    print_message("overfit: loss %.4f -> %.4f\n", first, last);
    // 20 classes with ~2 positives each: an untrained head sits near 20·ln 2 ≈ 13.9.
    assert_true(first > 10.0);
    assert_true(last < 0.05 * first);
}

static void same_seed_same_threads_same_bits(void **state) {
    double f1, l1, f2, l2;
    float *p1, *p2;
    size_t n1, n2;
    run(2, 5, &f1, &l1, &p1, &n1);
    run(2, 5, &f2, &l2, &p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(p1, p2, n1 * sizeof(float));
    assert_true(l1 == l2);
    free(p1), free(p2);
}

static void thread_count_changes_only_rounding(void **state) {
    double f1, l1, f2, l2;
    float *p1, *p2;
    size_t n1, n2;
    run(1, 3, &f1, &l1, &p1, &n1);
    run(2, 3, &f2, &l2, &p2, &n2);
    assert_true(fabs(f1 - f2) <= 1e-5 * fabs(f1));
    assert_true(fabs(l1 - l2) <= 1e-4 * fabs(l1));
    free(p1), free(p2);
}

static void bf16_overfits_a_batch(void **state) {
    double first, last;
    run_in(VIT_BF16, 2, 150, &first, &last, NULL, NULL);
    print_message("overfit in bf16: loss %.4f -> %.4f\n", first, last);
    assert_true(first > 10.0);
    assert_true(last < 0.05 * first);
}

// Determinism holds in bf16 too, at 2 and 3 threads.
static void bf16_same_seed_same_threads_same_bits(void **state) {
    for (int threads = 2; threads <= 3; threads++) {
        double f1, l1, f2, l2;
        float *p1, *p2;
        size_t n1, n2;
        run_in(VIT_BF16, threads, 5, &f1, &l1, &p1, &n1);
        run_in(VIT_BF16, threads, 5, &f2, &l2, &p2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, n1 * sizeof(float));
        assert_true(l1 == l2);
        free(p1), free(p2);
    }
}

// bf16 and fp32 from the same start: the losses of 10 AdamW steps within 2% (bf16 rounds each
// matmul input to 8 significant bits, ~0.4% relative, and the error averages over the sums),
// and the weights apart by a small fraction of how far training moved them.
static void bf16_tracks_fp32(void **state) {
    double f32_first, f32_last, bf_first, bf_last;
    float *p32, *pbf, *p0;
    size_t n, n2, n0;
    run_in(VIT_FP32, 2, 10, &f32_first, &f32_last, &p32, &n);
    run_in(VIT_BF16, 2, 10, &bf_first, &bf_last, &pbf, &n2);
    run_in(VIT_FP32, 2, 0, &f32_first, &f32_first, &p0, &n0);
    assert_int_equal(n, n2);
    print_message("bf16 vs fp32 after 10 steps: loss %.5f vs %.5f\n", bf_last, f32_last);
    assert_true(fabs(bf_last - f32_last) <= 0.02 * fabs(f32_last));
    double moved = 0, apart = 0;
    for (size_t i = 0; i < n; i++) {
        moved += ((double)p32[i] - p0[i]) * ((double)p32[i] - p0[i]);
        apart += ((double)p32[i] - pbf[i]) * ((double)p32[i] - pbf[i]);
    }
    print_message("weights: |bf16 - fp32| / |fp32 - init| = %.4f\n", sqrt(apart / moved));
    assert_true(sqrt(apart) <= 0.1 * sqrt(moved));
    free(p32), free(pbf), free(p0);
}

// `catlip bench step --profile` rates the matmul regions by the FLOPs they declare: one profiled
// step must declare the model's products exactly — 3 x the forward's (two backward products per
// forward one) less the patch embedding's input gradient, which nobody needs — and in both
// precisions, at 1 and 2 threads. Nothing is counted once profiling stops.
static void profile_counts_the_step_products(void **state) {
    (void)state;
    struct vit_config vc = small_config();
    const int B = 8;
    const double expect = 6.0 * vit_forward_macs(&vc) * B -
                          2.0 * B * vc.num_patches * vc.dim * 3.0 * vc.patch_size * vc.patch_size;
    for (int precision = 0; precision < 2; precision++)
        for (int threads = 1; threads <= 2; threads++) {
            struct optim_settings os = small_optim(2);
            struct pool *pool = pool_create(threads, 0);
            struct train_state ts;
            train_state_create(&ts, &vc, &os, B, pool, 42);
            train_state_set_precision(&ts, precision ? VIT_BF16 : VIT_FP32);
            struct synthetic_data d;
            synthetic_create(&d, 7, vc.image_size, vc.num_classes, B);
            float *images = malloc((size_t)B * 3 * 32 * 32 * sizeof(float));
            float *targets = malloc((size_t)B * vc.num_classes * sizeof(float));
            synthetic_batch(&d, 0, B, images, targets);
            pool_profile_start(pool);
            train_forward_backward(&ts, images, targets, B, B, NULL, NULL);
            pool_profile_stop(pool);
            train_forward_backward(&ts, images, targets, B, B, NULL, NULL);
            const struct pool_profile_entry *e;
            int n = pool_profile_entries(pool, &e);
            double flops = 0;
            int products = 0;
            for (int i = 0; i < n; i++) {
                flops += e[i].flops;
                products += e[i].flops > 0;
            }
            assert_int_equal(products, 4);  // linear forward and backward, attention's both ways
            assert_true(fabs(flops - expect) <= 1e-9 * expect);
            free(images), free(targets);
            synthetic_free(&d);
            train_state_free(&ts);
            pool_destroy(pool);
        }
}

// matmul_backward at 1, 2 and 3 threads, fp32 and bf16, on token counts that split the dweight
// product by tokens (N >= 256 per thread; odd N: a pair with a zero partner at the end): dweight
// (accumulated onto non-zero values) and dinp against a double-precision product of the same
// (for bf16: rounded) inputs, within the fp32 rounding bound of their sums, (K + 8) * 2^-24 *
// sum |terms| (the partials add nth - 1 roundings); the same call twice gives the same bits.
static void backward_splits_tokens_within_rounding(void **state) {
    (void)state;
    const int IC = 40, OC = 24;
    const long sizes[] = {1001, 1536};
    struct rng r;
    rng_init(&r, 5);
    for (int si = 0; si < 2; si++)
        for (int bf = 0; bf < 2; bf++)
            for (int threads = 1; threads <= 3; threads++) {
                const long N = sizes[si];
                float *dout = malloc((size_t)N * OC * sizeof(float));
                float *inp = malloc((size_t)N * IC * sizeof(float));
                float *w = malloc((size_t)OC * IC * sizeof(float));
                float *dw0 = malloc((size_t)OC * IC * sizeof(float));
                uint16_t *dout_h = malloc((size_t)N * OC * 2), *inp_h = malloc((size_t)N * IC * 2);
                uint16_t *w_h = malloc((size_t)OC * IC * 2);
                for (long i = 0; i < N * OC; i++) dout[i] = (float)rng_normal(&r);
                for (long i = 0; i < N * IC; i++) inp[i] = (float)rng_normal(&r);
                for (long i = 0; i < OC * IC; i++) w[i] = (float)rng_normal(&r);
                for (long i = 0; i < OC * IC; i++) dw0[i] = (float)rng_normal(&r);
                bf16_from_floats(dout_h, dout, (size_t)N * OC);
                bf16_from_floats(inp_h, inp, (size_t)N * IC);
                bf16_from_floats(w_h, w, (size_t)OC * IC);
                // what the products see
                float *a = malloc((size_t)N * OC * sizeof(float));
                float *b = malloc((size_t)N * IC * sizeof(float));
                float *wv = malloc((size_t)OC * IC * sizeof(float));
                for (long i = 0; i < N * OC; i++) a[i] = bf ? bf16_to_float(dout_h[i]) : dout[i];
                for (long i = 0; i < N * IC; i++) b[i] = bf ? bf16_to_float(inp_h[i]) : inp[i];
                for (long i = 0; i < OC * IC; i++) wv[i] = bf ? bf16_to_float(w_h[i]) : w[i];
                struct pool *pool = pool_create(threads, 0);
                float *dw[2], *dinp[2];
                for (int rep = 0; rep < 2; rep++) {
                    dw[rep] = malloc((size_t)OC * IC * sizeof(float));
                    dinp[rep] = malloc((size_t)N * IC * sizeof(float));
                    memcpy(dw[rep], dw0, (size_t)OC * IC * sizeof(float));
                    matmul_backward(pool, dinp[rep], dw[rep], NULL, dout, bf ? dout_h : NULL, inp,
                                    bf ? inp_h : NULL, w, bf ? w_h : NULL, N, IC, OC, 0);
                }
                assert_memory_equal(dw[0], dw[1], (size_t)OC * IC * sizeof(float));
                assert_memory_equal(dinp[0], dinp[1], (size_t)N * IC * sizeof(float));
                for (int o = 0; o < OC; o++)
                    for (int c = 0; c < IC; c++) {
                        double ref = dw0[o * IC + c], mag = fabs(dw0[o * IC + c]);
                        for (long n = 0; n < N; n++) {
                            double t = (double)a[n * OC + o] * b[n * IC + c];
                            ref += t, mag += fabs(t);
                        }
                        double err = fabs(dw[0][o * IC + c] - ref);
                        if (err > (N + 8) * 0x1p-24 * mag)
                            fail_msg("dweight[%d][%d] %s %d threads N %ld: %.9g vs %.9g", o, c,
                                     bf ? "bf16" : "fp32", threads, N, dw[0][o * IC + c], ref);
                    }
                for (long n = 0; n < N; n += 7)
                    for (int c = 0; c < IC; c++) {
                        double ref = 0, mag = 0;
                        for (int o = 0; o < OC; o++) {
                            double t = (double)a[n * OC + o] * wv[o * IC + c];
                            ref += t, mag += fabs(t);
                        }
                        assert_true(fabs(dinp[0][n * IC + c] - ref) <= (OC + 8) * 0x1p-24 * mag);
                    }
                pool_destroy(pool);
                for (int rep = 0; rep < 2; rep++) free(dw[rep]), free(dinp[rep]);
                free(dout), free(inp), free(w), free(dw0), free(dout_h), free(inp_h), free(w_h);
                free(a), free(b), free(wv);
            }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_model_overfits_a_batch),
        cmocka_unit_test(same_seed_same_threads_same_bits),
        cmocka_unit_test(thread_count_changes_only_rounding),
        cmocka_unit_test(bf16_overfits_a_batch),
        cmocka_unit_test(bf16_same_seed_same_threads_same_bits),
        cmocka_unit_test(bf16_tracks_fp32),
        cmocka_unit_test(profile_counts_the_step_products),
        cmocka_unit_test(backward_splits_tokens_within_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
