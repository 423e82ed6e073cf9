// Kernel throughput on vit_tiny training-step sizes, every table this CPU has side by side.
//
//   build-X/kernels_bench [reps]     (built by tests/kernels/tests.cmake; not a ctest test)
//
// One thread. For each kernel: the best of `reps` calls (default 7), in ms, and the bytes it
// must move (inputs read + outputs written, each once) divided by that time, in GB/s. The sizes
// are one vit_tiny step at batch 32 (197 tokens, width 192, MLP 768, 3 heads), a 25000-synset
// head, and ~10M parameters for AdamW / EMA / the gradient norm.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "core/rng.h"
#include "nn/kernels.h"

enum {
    BATCH = 32,
    TOKENS = 197,
    WIDTH = 192,
    HIDDEN = 768,
    HEADS = 3,
    CLASSES = 25000,
    PARAMS = 10000000,
};

static float *random_floats(long n, float lo, float hi, uint64_t stream) {
    float *p = xaligned_alloc((size_t)n * sizeof(float));
    struct rng r;
    rng_init(&r, rng_key(7, stream, 0, 0));
    for (long i = 0; i < n; i++) p[i] = lo + (hi - lo) * rng_uniform(&r);
    return p;
}

struct buffers {
    float *act_in, *act_out, *act_dout, *mean, *rstd, *weight, *bias, *dweight, *dbias;  // (N, C)
    float *hidden_in, *hidden_out, *hidden_dout;                                         // (N, 4C)
    float *scores, *probs, *dprobs;                                                      // (B H T, T)
    float *logits, *targets, *dlogits;                                                   // (B, classes)
    float *w, *m, *v, *grad, *ema;                                                       // (params)
};

static volatile double sink;  // keeps the returned sums alive

// Runs kernel number `which` of table k once.
static void run_kernel(const struct kernels *k, int which, struct buffers *b) {
    const long N = (long)BATCH * TOKENS, rows = (long)BATCH * HEADS * TOKENS;
    switch (which) {
    case 0: k->layernorm_forward(b->act_out, b->mean, b->rstd, b->act_in, b->weight, b->bias, N, WIDTH); break;
    case 1: k->layernorm_backward(b->act_out, b->dweight, b->dbias, b->act_dout, b->act_in, b->weight, b->mean, b->rstd, N, WIDTH); break;
    case 2: k->gelu_forward(b->hidden_out, b->hidden_in, N * HIDDEN); break;
    case 3: k->gelu_backward(b->hidden_out, b->hidden_in, b->hidden_dout, N * HIDDEN); break;
    case 4: k->softmax_forward(b->probs, b->scores, rows, TOKENS); break;
    case 5: k->softmax_backward(b->scores, b->probs, b->dprobs, rows, TOKENS, 0.125f); break;
    case 6: k->add_bias(b->hidden_out, b->bias, N, HIDDEN); break;
    case 7: k->bias_backward(b->dbias, b->hidden_dout, N, HIDDEN); break;
    case 8: k->add(b->act_out, b->act_in, b->act_dout, N * WIDTH); break;
    case 9: sink = k->bce_with_logits(b->dlogits, b->logits, b->targets, (long)BATCH * CLASSES, 1.0f / BATCH); break;
    case 10: k->adamw_update(b->w, b->m, b->v, b->grad, PARAMS, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.2f, 0.1f, 0.001f, 1.0f); break;
    case 11: k->ema_update(b->ema, b->w, PARAMS, 0.0005f); break;
    case 12: sink = k->sum_squares(b->grad, PARAMS); break;
    }
}

static const char *const KERNEL_NAMES[] = {
    "layernorm_forward", "layernorm_backward", "gelu_forward", "gelu_backward", "softmax_forward",
    "softmax_backward", "add_bias", "bias_backward", "add", "bce_with_logits", "adamw_update",
    "ema_update", "sum_squares",
};
#define KERNEL_COUNT 13

// Bytes each kernel must move: inputs read and outputs written once (a read-modify-write
// buffer counts twice).
static double kernel_bytes(int which) {
    const double N = (double)BATCH * TOKENS, attn = (double)BATCH * HEADS * TOKENS * TOKENS;
    const double f = sizeof(float);
    switch (which) {
    case 0: return f * (2 * N * WIDTH + 2 * N);
    case 1: return f * (3 * N * WIDTH + 2 * N);
    case 2: return f * 2 * N * HIDDEN;
    case 3: return f * 3 * N * HIDDEN;
    case 4: return f * 2 * attn;
    case 5: return f * 3 * attn;
    case 6: return f * 2 * N * HIDDEN;
    case 7: return f * N * HIDDEN;
    case 8: return f * 3 * N * WIDTH;
    case 9: return f * 3.0 * BATCH * CLASSES;
    case 10: return f * 7.0 * PARAMS;
    case 11: return f * 3.0 * PARAMS;
    case 12: return f * 1.0 * PARAMS;
    }
    return 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1) catlip_die("kernels_bench: reps must be a positive integer, got '%s'", argv[1]);
    const long N = (long)BATCH * TOKENS, attn = (long)BATCH * HEADS * TOKENS * TOKENS;
    struct buffers b = {
        .act_in = random_floats(N * WIDTH, -2, 2, 1),
        .act_out = random_floats(N * WIDTH, -1, 1, 2),
        .act_dout = random_floats(N * WIDTH, -1, 1, 3),
        .mean = random_floats(N, 0, 0, 4),
        .rstd = random_floats(N, 1, 1, 5),
        .weight = random_floats(HIDDEN, 0.5f, 1.5f, 6),
        .bias = random_floats(HIDDEN, -0.5f, 0.5f, 7),
        .dweight = random_floats(HIDDEN, 0, 0, 8),
        .dbias = random_floats(HIDDEN, 0, 0, 9),
        .hidden_in = random_floats(N * HIDDEN, -4, 4, 10),
        .hidden_out = random_floats(N * HIDDEN, -1, 1, 11),
        .hidden_dout = random_floats(N * HIDDEN, -1, 1, 12),
        .scores = random_floats(attn, -4, 4, 13),
        .probs = random_floats(attn, 0, 0.01f, 14),
        .dprobs = random_floats(attn, -1, 1, 15),
        .logits = random_floats((long)BATCH * CLASSES, -10, 10, 16),
        .targets = random_floats((long)BATCH * CLASSES, 0, 1, 17),
        .dlogits = random_floats((long)BATCH * CLASSES, 0, 0, 18),
        .w = random_floats(PARAMS, -0.1f, 0.1f, 19),
        .m = random_floats(PARAMS, -0.01f, 0.01f, 20),
        .v = random_floats(PARAMS, 0, 1e-4f, 21),
        .grad = random_floats(PARAMS, -0.01f, 0.01f, 22),
        .ema = random_floats(PARAMS, -0.1f, 0.1f, 23),
    };
    const char *names[3] = {"scalar", "avx2", "avx512"};
    const struct kernels *tables[3];
    for (int t = 0; t < 3; t++) {
        tables[t] = kernels_by_name(names[t]);
        if (tables[t] == NULL) printf("%s: not supported by this CPU, skipped\n", names[t]);
    }
    printf("kernels on vit_tiny step sizes (batch %d, %d tokens, width %d, hidden %d, %d heads, "
           "%d classes, %d params), best of %d, one thread\n",
           BATCH, TOKENS, WIDTH, HIDDEN, HEADS, CLASSES, PARAMS, reps);
    printf("%-20s", "kernel");
    for (int t = 0; t < 3; t++)
        if (tables[t]) printf(" %10s ms %8s GB/s", names[t], names[t]);
    printf("\n");
    for (int which = 0; which < KERNEL_COUNT; which++) {
        printf("%-20s", KERNEL_NAMES[which]);
        for (int t = 0; t < 3; t++) {
            if (tables[t] == NULL) continue;
            run_kernel(tables[t], which, &b);  // warm-up: pages touched, caches as in a step
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = time_now();
                run_kernel(tables[t], which, &b);
                double dt = time_now() - t0;
                if (dt < best) best = dt;
            }
            printf(" %13.3f %13.1f", best * 1e3, kernel_bytes(which) / best / 1e9);
        }
        printf("\n");
        fflush(stdout);
    }
    float *all[] = {b.act_in, b.act_out, b.act_dout, b.mean, b.rstd, b.weight, b.bias, b.dweight,
                    b.dbias, b.hidden_in, b.hidden_out, b.hidden_dout, b.scores, b.probs, b.dprobs,
                    b.logits, b.targets, b.dlogits, b.w, b.m, b.v, b.grad, b.ema};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    return 0;
}
