// catlip bench step: time full training steps (forward, loss, backward, grad norm, AdamW,
// EMA) on random data, and hold them against the machine's measured sgemm rate.
#include <dlfcn.h>
#include <elf.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rng.h"
#include "nn/blas_info.h"
#include "nn/gemm.h"
#include "nn/train_state.h"

// The name of the function at `address` from this executable's own symbol table (static
// functions included; they are not in the dynamic one), or its hex address.
static void symbol_name(const void *address, char *name, size_t size) {
    snprintf(name, size, "%p", address);
    Dl_info info;
    if (!dladdr(address, &info) || !info.dli_fbase) return;
    unsigned long offset = (unsigned long)((const char *)address - (const char *)info.dli_fbase);
    FILE *f = fopen("/proc/self/exe", "rb");
    if (!f) return;
    Elf64_Ehdr eh;
    Elf64_Shdr *sections = NULL;
    if (fread(&eh, sizeof eh, 1, f) != 1 || eh.e_shentsize != sizeof(Elf64_Shdr)) goto done;
    sections = xcalloc(eh.e_shnum, sizeof *sections);
    if (fseek(f, (long)eh.e_shoff, SEEK_SET) != 0 ||
        fread(sections, sizeof *sections, eh.e_shnum, f) != eh.e_shnum)
        goto done;
    for (int s = 0; s < eh.e_shnum; s++) {
        if (sections[s].sh_type != SHT_SYMTAB || sections[s].sh_link >= eh.e_shnum) continue;
        const Elf64_Shdr *strtab = &sections[sections[s].sh_link];
        size_t count = sections[s].sh_size / sizeof(Elf64_Sym);
        for (size_t i = 0; i < count; i++) {
            Elf64_Sym sym;
            if (fseek(f, (long)(sections[s].sh_offset + i * sizeof sym), SEEK_SET) != 0 ||
                fread(&sym, sizeof sym, 1, f) != 1)
                goto done;
            if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || offset < sym.st_value ||
                offset >= sym.st_value + (sym.st_size ? sym.st_size : 1))
                continue;
            if (fseek(f, (long)(strtab->sh_offset + sym.st_name), SEEK_SET) == 0 &&
                fgets(name, (int)size, f))
                goto done;
        }
    }
done:
    free(sections);
    fclose(f);
}

// The per-phase table of `steps` profiled steps taking `total` seconds; the phases that declare
// their FLOPs (the linear layers' and attention's products) get their rate and its share of
// `peak` (GFLOP/s of the step's precision, all threads), and together the matmul share, the
// rate of the products alone. Returns that share (0 without a peak or products).
static double print_profile(struct pool *pool, int steps, double total, double peak,
                            const char *peak_name) {
    const struct pool_profile_entry *e;
    int n = pool_profile_entries(pool, &e), nth = pool_size(pool);
    int order[POOL_PROFILE_MAX];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)  // by wall time, largest first
        for (int j = i; j > 0 && e[order[j]].wall > e[order[j - 1]].wall; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    printf(
        "profile    %d step(s), %d thread(s); ms per step: wall = busiest thread + fork-join; "
        "busy = mean thread time in the task\n",
        steps, nth);
    printf("  %-30s %7s %9s %6s %9s %10s %9s %8s %6s\n", "phase (task function)", "calls",
           "wall ms", "share", "busy ms", "imbalance", "fork-join", "GFLOP/s", "peak");
    double regions = 0, product_flops = 0, product_wall = 0;
    for (int k = 0; k < n; k++) {
        const struct pool_profile_entry *p = &e[order[k]];
        char name[96];
        symbol_name((const void *)p->fn, name, sizeof name);
        double wall = p->wall / steps * 1e3, busy = p->busy / nth / steps * 1e3,
               max = p->busy_max / steps * 1e3;
        regions += p->wall;
        printf("  %-30.30s %7.0f %9.2f %5.1f%% %9.2f %10.2f %9.2f", name,
               (double)p->calls / steps, wall, 100.0 * p->wall / total, busy, max - busy,
               wall - max);
        if (p->flops > 0 && p->wall > 0) {
            double rate = p->flops / p->wall * 1e-9;
            printf(" %8.1f %5.1f%%", rate, peak > 0 ? 100.0 * rate / peak : 0.0);
            product_flops += p->flops;
            product_wall += p->wall;
        }
        printf("\n");
    }
    printf(
        "  %-30s %7s %9.2f %5.1f%%   (one thread: memsets, copies, sums, the optimizer's "
        "serial parts)\n",
        "serial (outside regions)", "", (total - regions) / steps * 1e3,
        100.0 * (total - regions) / total);
    if (product_wall <= 0) return 0.0;
    double rate = product_flops / product_wall * 1e-9;
    double share = peak > 0 ? rate / peak : 0.0;
    printf("  matmul regions (the products and their fused bias/residual/rounding epilogues): "
           "%.1f GFLOP/step in %.1f ms/step (%.1f%% of the step) = %.1f GFLOP/s, %.1f%% of the "
           "%s peak\n",
           product_flops / steps * 1e-9, product_wall / steps * 1e3, 100.0 * product_wall / total,
           rate, 100.0 * share, peak_name);
    return share;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: catlip bench step [-c CONFIG] [--set key=value ...] [options]\n"
            "  --model NAME        vit_tiny (default), vit_small, vit_base, vit_large, vit_huge\n"
            "  --image-size S      input side (default 224)\n"
            "  --patch-size P      patch side (default 16)\n"
            "  --batch B           images per step (default 32)\n"
            "  --classes V         head outputs / synsets (default 24320)\n"
            "  --threads T         compute threads (default: cores of this process)\n"
            "  --steps N           timed steps (default 5)\n"
            "  --warmup N          untimed steps first (default 1)\n"
            "  --precision P       fp32 (default) or bf16 (train.precision)\n"
            "  --micro-batch M     images per forward/backward (train.micro_batch): a step\n"
            "                      accumulates gradients over ceil(B / M) micro-batches, as a\n"
            "                      worker does; memory follows M (default: B, one pass)\n"
            "  --profile           per-phase table of the timed steps: each parallel region's\n"
            "                      task (by function name), its wall time, the threads' time\n"
            "                      in it, fork-join cost and imbalance; and the serial rest;\n"
            "                      the products' GFLOP/s and share of the precision's peak\n"
            "                      per phase and together (result: matmul_peak_share=F)\n"
            "Each timed step is timed on its own; images/s = batch / the median step time\n"
            "(warm-up steps excluded), and GFLOP/s is taken at that median too.\n"
            "Prints images/s, achieved GFLOP/s, the share of the measured sgemm rate, the shares\n"
            "of the cores' measured fp32 FMA and bf16 VDPBF16PS peaks, peak RSS; the last line is\n"
            "machine-readable:\n"
            "  result: images_per_second=F gflops=F sgemm_gflops=F sgemm_share=F peak_rss_mb=F\n"
            "          openblas_gflops=F step_ms_median=F precision=S micro_batch=N fma_peak_gflops=F\n"
            "          fma_peak_share=F bf16_peak_gflops=F bf16_peak_share=F bf16_gemm_gflops=F\n");
}

// One optimizer step over B images in micro-batches of up to M (M == B: one pass); returns
// the loss.
static double one_step(struct train_state *ts, const float *images, const float *targets, int B,
                       int M, int image_size, int num_classes) {
    double loss = 0.0;
    if (M >= B) {
        loss = train_forward_backward(ts, images, targets, B, B, NULL, NULL);
    } else {
        train_zero_grads(ts);
        for (int b = 0; b < B; b += M) {
            int n = B - b < M ? B - b : M;
            loss += train_accumulate(ts, images + (size_t)b * 3 * image_size * image_size,
                                     targets + (size_t)b * num_classes, n, B, NULL, NULL);
        }
    }
    train_apply_update(ts);
    return loss;
}

int cmd_bench_step(int argc, char **argv) {
    struct config cfg;
    config_defaults(&cfg);
    cfg.model.num_classes = 24320;
    int steps = 5, warmup = 1, profile = 0;
    static struct option opts[] = {{"config", 1, 0, 'c'},     {"set", 1, 0, 'S'},
                                   {"model", 1, 0, 'm'},      {"image-size", 1, 0, 'i'},
                                   {"patch-size", 1, 0, 'p'}, {"batch", 1, 0, 'b'},
                                   {"classes", 1, 0, 'v'},    {"threads", 1, 0, 't'},
                                   {"steps", 1, 0, 'n'},      {"warmup", 1, 0, 'w'},
                                   {"precision", 1, 0, 'P'},  {"profile", 0, 0, 'R'},
                                   {"micro-batch", 1, 0, 'M'},
                                   {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        int taken = bench_args_take(&cfg, c, optarg);
        if (taken < 0) goto bad;
        if (taken) continue;
        switch (c) {
        case 'b': if (bench_args_set(&cfg, "train.global_batch", optarg) != 0) goto bad;
            break;
        case 't': if (bench_args_set(&cfg, "train.threads", optarg) != 0) goto bad;
            break;
        case 'n': steps = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'P': if (bench_args_set(&cfg, "train.precision", optarg) != 0) goto bad;
            break;
        case 'M': if (bench_args_set(&cfg, "train.micro_batch", optarg) != 0) goto bad;
            break;
        case 'R': profile = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (steps < 1 || warmup < 0) catlip_die("--steps must be at least 1 and --warmup at least 0");
    if (config_validate(&cfg) != 0) goto bad;
    struct vit_config vc;
    if (vit_config_from_run(&vc, &cfg, 0) != 0) goto bad;
    const int B = (int)cfg.train.global_batch;
    // Micro-batches as a worker runs them: full ones of M, the last one the rest.
    const int M = cfg.train.micro_batch > 0 && cfg.train.micro_batch < B ? (int)cfg.train.micro_batch : B;

    struct pool *pool = pool_create((int)cfg.train.threads, 1);
    struct optim_settings os;
    optim_settings_from_run(&os, &cfg, warmup + steps);
    struct train_state ts;
    train_state_create(&ts, &vc, &os, M, pool, (uint64_t)cfg.seed);
    train_state_set_precision(&ts, (enum vit_precision)vit_precision_parse(cfg.train.precision));
    printf("model      %s: dim %d, depth %d, heads %d, image %d, patch %d, %d classes, %zu "
           "parameters\n",
           cfg.model.name, vc.dim, vc.depth, vc.heads, vc.image_size, vc.patch_size,
           vc.num_classes, ts.model.layout.total);
    printf("threads    %s\n", pool_describe(pool));
    printf("kernels    %s\n", ts.model.k->name);
    printf("matmul     %s (CATLIP_GEMM=openblas|avx512 forces one)\n", gemm_backend());
    printf("blas       %s\n", blas_describe());
    printf("precision  %s (bf16 matmuls: %s)\n", cfg.train.precision, gemm_bf16_backend());
    printf("batch      %d images a step in %d micro-batch%s of up to %d\n", B, (B + M - 1) / M,
           (B + M - 1) / M == 1 ? "" : "es", M);

    size_t nimg = (size_t)B * 3 * vc.image_size * vc.image_size;
    size_t ntgt = (size_t)B * vc.num_classes;
    float *images = xaligned_alloc(nimg * sizeof(float)), *targets = xaligned_alloc(ntgt * sizeof(float));
    struct rng r;
    rng_init(&r, rng_key((uint64_t)cfg.seed, 99, 0, 0));
    for (size_t i = 0; i < nimg; i++) images[i] = rng_uniform(&r) * 4.0f - 2.0f;
    for (int b = 0; b < B; b++)  // ~5 synsets per caption, like CatLIP's labels
        for (int j = 0; j < 5; j++) targets[(size_t)b * vc.num_classes + rng_below(&r, (uint64_t)vc.num_classes)] = 1.0f;

    for (int s = 0; s < warmup; s++) one_step(&ts, images, targets, B, M, vc.image_size, vc.num_classes);
    double *times = xcalloc((size_t)steps, sizeof(double));
    if (profile) pool_profile_start(pool);
    for (int s = 0; s < steps; s++) {
        double t0 = time_now();
        double loss = one_step(&ts, images, targets, B, M, vc.image_size, vc.num_classes);
        times[s] = time_now() - t0;
        printf("step %d    %.3f s  loss %.4f  %.2f img/s\n", s, times[s], loss, B / times[s]);
        fflush(stdout);
    }
    if (profile) pool_profile_stop(pool);  // the peak and GEMM measurements below are not the step's
    double total = 0;
    for (int s = 0; s < steps; s++) total += times[s];
    // Median step time: robust to a noisy shared machine.
    for (int i = 1; i < steps; i++)
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double tmp = times[j];
            times[j] = times[j - 1];
            times[j - 1] = tmp;
        }
    double median = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
    double flops = 3.0 * 2.0 * vit_forward_macs(&vc) * B;
    double gflops = flops / median * 1e-9;
    double sgemm = blas_measure_sgemm_gflops(pool, 1536, 1.0);
    double openblas = blas_measure_openblas_gflops(pool, 1536, 1.0);
    double rss = (double)peak_rss_bytes() / (1 << 20);
    double fma_peak = blas_measure_fma_peak_gflops(pool, 0.5);
    double bf16_peak = blas_measure_dpbf16_peak_gflops(pool, 0.5);
    double bf16_gemm = blas_measure_bf16_gemm_gflops(pool, 1536, 1.0);
    const int bf16 = strcmp(cfg.train.precision, "bf16") == 0;
    double matmul_share = 0.0;
    if (profile)
        matmul_share = print_profile(pool, steps, total, bf16 ? bf16_peak : fma_peak,
                                     bf16 ? "bf16 VDPBF16PS" : "fp32 FMA");
    printf("median     %.3f s/step, %.2f img/s, %.1f GFLOP/s (%.2f GFLOP/step)\n", median,
           B / median, gflops, flops * 1e-9);
    printf("sgemm      %.1f GFLOP/s measured with %s (1536^3, same threads): step reaches %.1f%%\n",
           sgemm, gemm_backend(), 100.0 * gflops / sgemm);
    printf("openblas   %.1f GFLOP/s on the same problem (%s): step reaches %.1f%% of that\n",
           openblas, blas_describe(), 100.0 * gflops / openblas);
    printf("bf16 gemm  %.1f GFLOP/s measured with %s (1536^3, same threads): step reaches %.1f%%\n",
           bf16_gemm, gemm_bf16_backend(), 100.0 * gflops / bf16_gemm);
    printf(
        "peak       fp32 FMA %.1f GFLOP/s, bf16 VDPBF16PS %.1f GFLOP/s (all threads; 0: the CPU "
        "lacks it): step (%s) reaches %.1f%% of fp32, %.1f%% of bf16\n",
        fma_peak, bf16_peak, cfg.train.precision, fma_peak > 0 ? 100.0 * gflops / fma_peak : 0.0,
        bf16_peak > 0 ? 100.0 * gflops / bf16_peak : 0.0);
    printf("memory     peak RSS %.0f MB\n", rss);
    printf(
        "result: images_per_second=%.3f gflops=%.2f sgemm_gflops=%.2f sgemm_share=%.4f "
        "peak_rss_mb=%.1f openblas_gflops=%.2f step_ms_median=%.3f precision=%s micro_batch=%d "
        "fma_peak_gflops=%.2f fma_peak_share=%.4f bf16_peak_gflops=%.2f bf16_peak_share=%.4f "
        "bf16_gemm_gflops=%.2f",
        B / median, gflops, sgemm, gflops / sgemm, rss, openblas, median * 1e3, cfg.train.precision, M,
        fma_peak, fma_peak > 0 ? gflops / fma_peak : 0.0, bf16_peak,
        bf16_peak > 0 ? gflops / bf16_peak : 0.0, bf16_gemm);
    // With --profile: the products' own rate over the precision's peak.
    if (profile) printf(" matmul_peak_share=%.4f", matmul_share);
    printf("\n");
    free(times), free(images), free(targets);
    train_state_free(&ts);
    pool_destroy(pool);
    return 0;
bad:
    catlip_error_print();
    return 2;
}
