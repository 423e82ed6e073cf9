// Dumps what the PyTorch reference check (check_reference.py) compares against:
// catlip's initial weights, a random batch with multi-hot targets, the logits, loss and every
// parameter gradient at those weights, then K AdamW steps (warmup, cosine, clipping, EMA) on
// the same batch with the loss, lr and grad norm of each step and the final weights and EMA.
// The instruction-set path is whatever CATLIP_ISA selects; --precision bf16 runs the step in
// train.precision bf16 (matmuls through gemm_bf16, whose path CATLIP_CPU_DISABLE=avx512_bf16
// can force to the emulation).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/gemm.h"
#include "nn/train_state.h"
#include "tests/reference/refdump_io.h"

int main(int argc, char **argv) {
    const char *out = NULL, *name = "vit_tiny";
    int image = 32, patch = 8, classes = 37, batch = 3, steps = 10, dim = 0, depth = 0,
        heads = 0, threads = 2;
    const char *precision = "fp32";
    long seed = 1;
    static struct option opts[] = {{"out", 1, 0, 'o'},        {"model", 1, 0, 'm'},
                                   {"image-size", 1, 0, 'i'}, {"patch-size", 1, 0, 'p'},
                                   {"classes", 1, 0, 'v'},    {"batch", 1, 0, 'b'},
                                   {"steps", 1, 0, 'k'},      {"seed", 1, 0, 's'},
                                   {"dim", 1, 0, 'd'},        {"depth", 1, 0, 'D'},
                                   {"heads", 1, 0, 'H'},      {"threads", 1, 0, 't'},
                                   {"precision", 1, 0, 'P'},  {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'm': name = optarg; break;
        case 'i': image = atoi(optarg); break;
        case 'p': patch = atoi(optarg); break;
        case 'v': classes = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'k': steps = atoi(optarg); break;
        case 's': seed = atol(optarg); break;
        case 'd': dim = atoi(optarg); break;
        case 'D': depth = atoi(optarg); break;
        case 'H': heads = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'P': precision = optarg; break;
        default: return 2;
        }
    }
    if (!out) catlip_die("usage: catlip_refdump --out DIR [--model NAME --image-size S ...]");
    if (vit_precision_parse(precision) < 0)
        catlip_die("--precision must be fp32 or bf16, got '%s'", precision);
    mkdir(out, 0755);
    const struct kernels *k = kernels_active();
    fprintf(stderr, "catlip_refdump: kernels %s, gemm %s\n", k->name, gemm_backend());

    struct vit_config vc;
    if (vit_config_make(&vc, name, image, patch, classes, dim, depth, heads, 0) != 0)
        catlip_die("%s", catlip_error());
    // A schedule that exercises warmup, cosine and clipping within the K steps.
    struct optim_settings os = {.lr = 1e-3, .min_lr = 1e-5, .warmup_init_lr = 1e-4,
                                .warmup_steps = 3, .total_steps = steps, .weight_decay = 0.2,
                                .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .grad_clip = 1.0,
                                .ema = 0.1};
    struct pool *pool = pool_create(threads, 0);
    struct train_state ts;
    train_state_create(&ts, &vc, &os, batch, pool, (uint64_t)seed);
    train_state_set_precision(&ts, (enum vit_precision)vit_precision_parse(precision));
    const struct vit_layout *l = &ts.model.layout;

    size_t nimg = (size_t)batch * 3 * image * image, ntgt = (size_t)batch * classes;
    float *images = xmalloc(nimg * sizeof *images), *targets = xcalloc(ntgt, sizeof *targets);
    struct rng r;
    rng_init(&r, rng_key((uint64_t)seed, 77, 0, 0));
    for (size_t i = 0; i < nimg; i++) images[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < ntgt; i++) targets[i] = rng_uniform(&r) < 0.05f ? 1.0f : 0.0f;

    int cap = 2 * l->ntensors + 8, n = 0;
    struct safetensor *st = xcalloc((size_t)cap, sizeof *st);
    char(*names)[96] = xcalloc((size_t)cap, 96);
    refdump_add_tensors(st, &n, l->tensors, l->ntensors, ts.params, "", names);
    refdump_write(out, "init.safetensors", st, n);

    n = 0;
    st[n++] = (struct safetensor){"images", "F32", 4, {batch, 3, image, image}, images,
                                  nimg * sizeof(float)};
    st[n++] = (struct safetensor){"targets", "F32", 2, {batch, classes}, targets,
                                  ntgt * sizeof(float)};
    refdump_write(out, "batch.safetensors", st, n);

    double *losses = xcalloc((size_t)steps, sizeof(double));
    double *lrs = xcalloc((size_t)steps, sizeof(double));
    double *norms = xcalloc((size_t)steps, sizeof(double));
    float *logits0 = xmalloc((size_t)batch * classes * sizeof(float));
    for (int s = 0; s < steps; s++) {
        losses[s] = train_forward_backward(&ts, images, targets, batch, batch, NULL, NULL);
        if (s == 0) {
            memcpy(logits0, ts.acts.logits, (size_t)batch * classes * sizeof(float));
            n = 0;
            st[n++] = (struct safetensor){"logits", "F32", 2, {batch, classes}, logits0,
                                          (size_t)batch * classes * sizeof(float)};
            st[n++] = (struct safetensor){"loss", "F64", 1, {1}, &losses[0], sizeof(double)};
            refdump_add_tensors(st, &n, l->tensors, l->ntensors, ts.grads, "grad.", names);
            refdump_write(out, "step0.safetensors", st, n);
        }
        train_apply_update(&ts);
        lrs[s] = ts.last_lr;
        norms[s] = ts.last_grad_norm;
        fprintf(stderr, "step %d loss %.6f lr %.3g grad_norm %.4f\n", s, losses[s], lrs[s],
                norms[s]);
    }
    n = 0;
    st[n++] = (struct safetensor){"losses", "F64", 1, {steps}, losses, (size_t)steps * 8};
    st[n++] = (struct safetensor){"lrs", "F64", 1, {steps}, lrs, (size_t)steps * 8};
    st[n++] = (struct safetensor){"grad_norms", "F64", 1, {steps}, norms, (size_t)steps * 8};
    refdump_add_tensors(st, &n, l->tensors, l->ntensors, ts.ema, "ema.", names);
    refdump_add_tensors(st, &n, l->tensors, l->ntensors, ts.params, "param.", names);
    refdump_write(out, "train.safetensors", st, n);

    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *f = fopen(path, "w");
    if (!f) catlip_die("cannot write %s", path);
    fprintf(
        f,
        "{\"model\": {\"dim\": %d, \"depth\": %d, \"heads\": %d, \"mlp_hidden\": %d, "
        "\"image_size\": %d, \"patch_size\": %d, \"num_classes\": %d},\n"
        " \"batch\": %d, \"steps\": %d, \"kernels\": \"%s\", \"gemm\": \"%s\", \"threads\": %d,\n"
        " \"precision\": \"%s\", \"gemm_bf16\": \"%s\",\n"
        " \"optim\": {\"lr\": %.17g, \"min_lr\": %.17g, \"warmup_steps\": %lld, "
        "\"warmup_init_lr\": %.17g, \"weight_decay\": %.17g, \"betas\": [%.17g, %.17g], "
        "\"eps\": %.17g, \"grad_clip\": %.17g, \"ema\": %.17g}}\n",
        vc.dim, vc.depth, vc.heads, vc.mlp_hidden, vc.image_size, vc.patch_size, vc.num_classes,
        batch, steps, k->name, gemm_backend(), threads, precision, gemm_bf16_backend(), os.lr,
        os.min_lr, (long long)os.warmup_steps, os.warmup_init_lr, os.weight_decay, os.beta1,
        os.beta2, os.eps, os.grad_clip, os.ema);
    fclose(f);
    train_state_free(&ts);
    pool_destroy(pool);
    free(images), free(targets), free(losses), free(lrs), free(norms), free(logits0), free(st),
        free(names);
    return 0;
}
