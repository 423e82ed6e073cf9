// Fine-tuning pieces: the label-smoothed softmax cross-entropy and the frozen backbone.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/train_state.h"

// Loss of one row in double: -sum_v q_v log softmax(z)_v, q = (1-s) onehot + s/V.
static double ce_row(const float *z, int V, int label, double s) {
    double mx = z[0];
    for (int v = 1; v < V; v++) mx = fmax(mx, z[v]);
    double se = 0;
    for (int v = 0; v < V; v++) se += exp(z[v] - mx);
    double lse = mx + log(se), loss = 0;
    for (int v = 0; v < V; v++) loss -= ((v == label ? 1 - s : 0) + s / V) * (z[v] - lse);
    return loss;
}

static void cross_entropy_matches_double_and_finite_differences(void **state) {
    struct vit_config vc;
    assert_int_equal(vit_config_make(&vc, "vit_tiny", 16, 8, 37, 16, 1, 2, 0), 0);
    struct pool *pool = pool_create(2, 0);
    struct vit_model m = {.pool = pool, .k = kernels_active()};
    vit_layout_init(&m.layout, &vc);
    struct vit_acts a;
    const int B = 5, V = vc.num_classes;
    vit_acts_create(&a, &vc, B, 2);
    struct rng r;
    rng_init(&r, 5);
    float *targets = calloc((size_t)B * V, sizeof(float));
    int labels[5];
    for (int b = 0; b < B; b++) {
        for (int v = 0; v < V; v++) a.logits[b * V + v] = 4.0f * (float)rng_normal(&r);
        labels[b] = (int)rng_below(&r, (uint64_t)V);
        targets[b * V + labels[b]] = 1.0f;
    }
    const float s = 0.1f, scale = 1.0f / B;
    double loss = vit_loss_softmax_ce(&m, &a, targets, B, scale, s);
    double want = 0;
    for (int b = 0; b < B; b++) want += ce_row(a.logits + b * V, V, labels[b], s);
    assert_true(fabs(loss - want) <= 1e-9 * fabs(want));
    // d(loss·scale)/dz by central differences in double
    double worst = 0, biggest = 0;
    for (int b = 0; b < B; b++)
        for (int v = 0; v < V; v++) {
            float z[64];
            memcpy(z, a.logits + b * V, (size_t)V * sizeof(float));
            const float h = 1e-2f;
            z[v] += h;
            double up = ce_row(z, V, labels[b], s);
            z[v] -= 2 * h;
            double down = ce_row(z, V, labels[b], s);
            double fd = (up - down) / (2 * h) * scale;
            worst = fmax(worst, fabs(fd - a.dlogits[b * V + v]));
            biggest = fmax(biggest, fabs(fd));
        }
    print_message("cross-entropy gradient: worst |fd - analytic| %.2e of max %.2e\n", worst, biggest);
    assert_true(worst <= 1e-4 * biggest);  // FD error O(h^2) ~ 1e-5 relative here
    free(targets);
    vit_acts_free(&a);
    vit_layout_free(&m.layout);
    pool_destroy(pool);
}

static void frozen_backbone_changes_only_the_head(void **state) {
    struct vit_config vc;
    assert_int_equal(vit_config_make(&vc, "vit_tiny", 16, 8, 7, 16, 2, 2, 0), 0);
    struct optim_settings os = {.lr = 1e-2, .min_lr = 1e-3, .warmup_init_lr = 1e-2,
                                .total_steps = 3, .weight_decay = 0.1, .beta1 = 0.9,
                                .beta2 = 0.999, .eps = 1e-8, .grad_clip = 1.0, .ema = 0.5};
    struct pool *pool = pool_create(2, 0);
    struct train_state ts;
    const int B = 4;
    train_state_create(&ts, &vc, &os, B, pool, 9);
    ts.loss = TRAIN_LOSS_CE;
    ts.label_smoothing = 0.1f;
    ts.head_only = 1;
    size_t n = ts.model.layout.total;
    float *before = malloc(n * sizeof(float));
    memcpy(before, ts.params, n * sizeof(float));
    float *images = calloc((size_t)B * 3 * 16 * 16, sizeof(float));
    float *targets = calloc((size_t)B * 7, sizeof(float));
    struct rng r;
    rng_init(&r, 1);
    for (int i = 0; i < B * 3 * 16 * 16; i++) images[i] = (float)rng_normal(&r);
    for (int b = 0; b < B; b++) targets[b * 7 + b % 7] = 1.0f;
    double first = 0, last = 0;
    for (int step = 0; step < 3; step++) {
        last = train_forward_backward(&ts, images, targets, B, B, NULL, NULL);
        if (step == 0) first = last;
        train_apply_update(&ts);
    }
    size_t head = ts.model.layout.head_w;
    assert_memory_equal(before, ts.params, head * sizeof(float));            // backbone frozen
    assert_memory_equal(before, ts.ema, head * sizeof(float));               // and its EMA
    assert_memory_not_equal(before + head, ts.params + head, (n - head) * sizeof(float));
    assert_true(last < first);
    free(before), free(images), free(targets);
    train_state_free(&ts);
    pool_destroy(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cross_entropy_matches_double_and_finite_differences),
        cmocka_unit_test(frozen_backbone_changes_only_the_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
