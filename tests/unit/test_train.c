// Training-step properties that need no reference: a small model overfits a fixed batch,
// the same seed and thread count give the same bits, and the thread count changes results
// only at float-rounding level.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/synthetic.h"
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
static void run(int threads, int steps, double *first, double *last, float **params_out,
                size_t *n_out) {
    struct vit_config vc = small_config();
    struct optim_settings os = small_optim(steps);
    struct pool *pool = pool_create(threads, 0);
    struct train_state ts;
    const int B = 8;
    train_state_create(&ts, &vc, &os, B, pool, 42);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_model_overfits_a_batch),
        cmocka_unit_test(same_seed_same_threads_same_bits),
        cmocka_unit_test(thread_count_changes_only_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
