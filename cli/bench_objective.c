// catlip bench objective: one training step of CatLIP's objective or CLIP's on the same image
// tower, timed phase by phase across the ranks mpirun started (each rank one worker, as a
// training job's workers; no coordinator), on random data.
//
// A step, as a worker runs it (worker/worker.c), with a clock read between phases:
//   catlip  image forward (the ViT and its synset head) | BCE loss | image backward |
//           gradient allreduce | optimizer (grad norm, AdamW, EMA)
//   clip    image forward (the ViT and its projection) | text forward | gather (normalise,
//           all-gather the embeddings) | similarity + loss and their gradients (this worker's
//           rows against every column) | reduce-scatter (the gathered embeddings' gradients
//           back to their owners) | text backward | image backward | gradient allreduce |
//           optimizer
// The allreduce runs after backward by default (the same buckets and non-blocking reductions a
// worker starts, but nothing to hide behind), so every phase is timed alone; --overlap starts
// the buckets during backward as training does, and the allreduce phase is then the wait
// after it. Each phase also gets the process's CPU time: with one compute thread a rank it is
// the phase's work even where other jobs share the cores (wall time is not). A barrier that sleeps (not spins) starts every step. Each phase's figure is the
// median over the timed steps of its mean over ranks; the step's is the median of the slowest
// rank's. Random inputs are generated per sample from (seed, global sample index), so any rank
// count sees the same global batch: the first step's loss does not depend on it.
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "core/config.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/order.h"
#include "nn/blas_info.h"
#include "nn/contrastive.h"
#include "nn/gemm.h"
#include "nn/text_tower.h"
#include "nn/train_state.h"
#include "text/tokenizer.h"
#include "worker/contrastive_sync.h"
#include "worker/grad_sync.h"

enum phase {
    PHASE_IMAGE_FORWARD,
    PHASE_TEXT_FORWARD,
    PHASE_LOSS,           // catlip: BCE over the synsets; clip: similarity + loss + gradients
    PHASE_GATHER,         // clip
    PHASE_SCATTER,        // clip
    PHASE_TEXT_BACKWARD,
    PHASE_IMAGE_BACKWARD,
    PHASE_ALLREDUCE,
    PHASE_OPTIMIZER,
    PHASE_OTHER,          // zeroing gradients
    NPHASES
};
static const char *const phase_names[NPHASES] = {
    "image_forward", "text_forward",   "loss",      "gather",    "scatter",
    "text_backward", "image_backward", "allreduce", "optimizer", "other"};

static void usage(FILE *out) {
    fprintf(out,
            "usage: mpirun -n N catlip bench objective [-c CONFIG] [--set key=value ...] [options]\n"
            "  --objective O       catlip (default) or clip (model.objective)\n"
            "  --model NAME        the image tower: vit_tiny (default), vit_small, vit_base, ...\n"
            "  --image-size S      (default 224)\n"
            "  --patch-size P      (default 16)\n"
            "  --classes V         catlip: synsets in the head (default 24320)\n"
            "  --text-vocab V      clip: the tokenizer's size (default 49408, CLIP's BPE);\n"
            "                      model.text, model.embed_dim, model.context_length as --set\n"
            "  --batch G           global batch (default 48), split over the ranks as a run\n"
            "                      splits it over its workers\n"
            "  --threads T         compute threads per rank (default 1)\n"
            "  --steps N           timed steps (default 3)\n"
            "  --warmup N          untimed steps first (default 1)\n"
            "  --precision P       fp32 (default) or bf16\n"
            "  --overlap           start the allreduce during backward, as training does (default:\n"
            "                      after it, so that every phase is timed alone)\n"
            "  --no-peak           skip measuring the FMA peak (the share is then 0)\n"
            "Rank 0 prints a line per step, a table of phases (ms, median over steps of the mean\n"
            "over ranks; the step: the slowest rank's), and, last, one JSON object:\n"
            "  {\"objective\", \"model\", \"ranks\", \"global_batch\", \"threads\", \"params\",\n"
            "   \"gflop_per_step\", \"step_ms\", \"phases_ms\": {image_forward, text_forward, loss,\n"
            "   gather, scatter, text_backward, image_backward, allreduce, optimizer, other},\n"
            "   \"loss_first\", \"gflops\", \"fma_peak_gflops_per_core\", \"cores_used\",\n"
            "   \"fma_peak_share\", \"gather_bytes\", \"grad_bytes\", ...}\n");
}

// A barrier whose waiters sleep: on an oversubscribed machine a spinning waiter would take
// the core a slower rank needs.
static void quiet_barrier(void) {
    MPI_Request request;
    MPI_Ibarrier(MPI_COMM_WORLD, &request);
    for (int done = 0;;) {
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
        if (done) return;
        struct timespec ts = {0, 200000};  // 0.2 ms
        nanosleep(&ts, NULL);
    }
}

// This process's CPU time (all its threads), seconds: with one compute thread a rank, a
// compute phase's CPU time is its work whatever else the cores run (a shared machine).
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double *s = xcalloc((size_t)n, sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

// Sample i of the global batch, from (seed, i) alone: an image in [-2, 2), and for catlip ~5
// synsets, for clip a caption <sot> w1 .. wk <eot> <pad>... of 1..T-2 random words.
static void make_sample(uint64_t seed, uint64_t i, float *image, size_t pixels, float *targets,
                        int classes, int32_t *ids, int context, int vocab) {
    struct rng r;
    rng_init(&r, rng_key(seed, 99, i, 0));
    for (size_t p = 0; p < pixels; p++) image[p] = rng_uniform(&r) * 4.0f - 2.0f;
    if (targets) {
        memset(targets, 0, (size_t)classes * sizeof *targets);
        for (int j = 0; j < 5; j++) targets[rng_below(&r, (uint64_t)classes)] = 1.0f;
    }
    if (ids) {
        memset(ids, 0, (size_t)context * sizeof *ids);
        int words = 1 + (int)rng_below(&r, (uint64_t)(context - 2));
        ids[0] = TOKENIZER_SOT;
        for (int t = 1; t <= words; t++)
            ids[t] = TOKENIZER_SPECIALS + (int32_t)rng_below(&r, (uint64_t)(vocab - TOKENIZER_SPECIALS));
        ids[words + 1] = TOKENIZER_EOT;
    }
}

// Hands grad_sync the whole gradient from the end, as backward reports it (the buckets a
// worker forms: the same sizes; nothing overlaps them).
static void report_all(struct grad_sync *sync, size_t total, size_t bucket) {
    for (size_t end = total; end > 0;) {
        size_t begin = end > bucket ? end - bucket : 0;
        grad_sync_ready(sync, begin, end);
        end = begin;
    }
}

struct bench {
    struct train_state ts;
    struct grad_sync sync;
    struct contrastive_sync contrastive;
    int clip, ranks, overlap, rows, global_batch;
    size_t bucket_floats;
    float *images, *targets;
    int32_t *ids;
};

// One step; fills t[NPHASES] (seconds) and returns the loss (catlip: this rank's share).
static double one_step(struct bench *b, double *t, double *cpu) {
    struct train_state *ts = &b->ts;
    const struct vit_layout *L = &ts->model.layout;
    const int B = b->rows;
    double loss = 0.0;
    memset(t, 0, NPHASES * sizeof *t);
    memset(cpu, 0, NPHASES * sizeof *cpu);
    double u0 = cpu_now(), u;
#define CPU_PHASE(p) (u = cpu_now(), cpu[p] += u - u0, u0 = u)
    double c0 = time_now();
    train_zero_grads(ts);
    double c1 = time_now();
    t[PHASE_OTHER] = c1 - c0;
    CPU_PHASE(PHASE_OTHER);
    vit_forward(&ts->model, &ts->acts, ts->params, b->images, B);
    double c2 = time_now();
    t[PHASE_IMAGE_FORWARD] = c2 - c1;
    CPU_PHASE(PHASE_IMAGE_FORWARD);
    vit_grads_ready_fn ready = b->overlap && b->ranks > 1 ? grad_sync_ready : NULL;
    if (b->ranks > 1) grad_sync_begin(&b->sync);
    if (b->clip) {
        text_forward(&ts->text, &ts->text_acts, ts->params + L->text_begin, b->ids, B);
        double c3 = time_now();
        t[PHASE_TEXT_FORWARD] = c3 - c2;
        CPU_PHASE(PHASE_TEXT_FORWARD);
        loss = contrastive_sync_step(&b->contrastive, ts->model.pool, ts->model.k, ts->acts.dlogits,
                                     ts->dtext, ts->grads + L->logit_scale, ts->acts.logits,
                                     ts->text_acts.features, B, ts->params[L->logit_scale]);
        double c4 = time_now();
        t[PHASE_GATHER] = b->contrastive.gather_seconds;
        t[PHASE_LOSS] = b->contrastive.loss_seconds;
        t[PHASE_SCATTER] = (c4 - c3) - t[PHASE_GATHER] - t[PHASE_LOSS];
        CPU_PHASE(PHASE_LOSS);  // gather, similarity and scatter together
        // train_clip_backward's order, each tower timed: logit scale, text tower, image tower.
        if (ready) ready(&b->sync, L->logit_scale, L->total);
        text_backward(&ts->text, &ts->text_acts, ts->params + L->text_begin,
                      ts->grads + L->text_begin, ts->dtext, B, NULL, NULL);
        if (ready) ready(&b->sync, L->text_begin, L->logit_scale);
        double c5 = time_now();
        t[PHASE_TEXT_BACKWARD] = c5 - c4;
        CPU_PHASE(PHASE_TEXT_BACKWARD);
        vit_backward(&ts->model, &ts->acts, ts->params, ts->grads, B, 0, ready, &b->sync);
        t[PHASE_IMAGE_BACKWARD] = time_now() - c5;
        CPU_PHASE(PHASE_IMAGE_BACKWARD);
    } else {
        // mean over the global batch (train_accumulate's scaling)
        loss = vit_loss_bce(&ts->model, &ts->acts, b->targets, B, 1.0f / (float)b->global_batch) /
               b->global_batch;
        double c3 = time_now();
        t[PHASE_LOSS] = c3 - c2;
        CPU_PHASE(PHASE_LOSS);
        vit_backward(&ts->model, &ts->acts, ts->params, ts->grads, B, 0, ready, &b->sync);
        t[PHASE_IMAGE_BACKWARD] = time_now() - c3;
        CPU_PHASE(PHASE_IMAGE_BACKWARD);
    }
    double c6 = time_now();
    if (b->ranks > 1) {
        if (!ready) report_all(&b->sync, L->total, b->bucket_floats);
        grad_sync_finish(&b->sync);
    }
    double c7 = time_now();
    t[PHASE_ALLREDUCE] = c7 - c6;
    CPU_PHASE(PHASE_ALLREDUCE);
    train_apply_update(ts);
    t[PHASE_OPTIMIZER] = time_now() - c7;
    CPU_PHASE(PHASE_OPTIMIZER);
#undef CPU_PHASE
    return loss;
}

int cmd_bench_objective(int argc, char **argv) {
    struct config cfg;
    config_defaults(&cfg);
    cfg.model.num_classes = 24320;
    cfg.train.global_batch = 48;
    cfg.train.threads = 1;
    int steps = 3, warmup = 1, overlap = 0, peak = 1, text_vocab = 49408;
    char objective[16] = "";
    static struct option opts[] = {
        {"config", 1, 0, 'c'},      {"set", 1, 0, 'S'},        {"model", 1, 0, 'm'},
        {"image-size", 1, 0, 'i'},  {"patch-size", 1, 0, 'p'}, {"classes", 1, 0, 'v'},
        {"objective", 1, 0, 'o'},   {"text-vocab", 1, 0, 'V'}, {"batch", 1, 0, 'b'},
        {"threads", 1, 0, 't'},     {"steps", 1, 0, 'n'},      {"warmup", 1, 0, 'w'},
        {"precision", 1, 0, 'P'},   {"overlap", 0, 0, 'O'},    {"no-peak", 0, 0, 'K'},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        int taken = bench_args_take(&cfg, c, optarg);
        if (taken < 0) goto bad;
        if (taken) continue;
        switch (c) {
        case 'o': snprintf(objective, sizeof objective, "%s", optarg); break;
        case 'V': text_vocab = atoi(optarg); break;
        case 'b': if (bench_args_set(&cfg, "train.global_batch", optarg) != 0) goto bad;
            break;
        case 't': if (bench_args_set(&cfg, "train.threads", optarg) != 0) goto bad;
            break;
        case 'n': steps = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'P': if (bench_args_set(&cfg, "train.precision", optarg) != 0) goto bad;
            break;
        case 'O': overlap = 1; break;
        case 'K': peak = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        catlip_die("bench objective: unexpected argument '%s'", argv[optind]);
    }
    if (objective[0] && bench_args_set(&cfg, "model.objective", objective) != 0) goto bad;
    if (steps < 1 || warmup < 0) catlip_die("--steps must be at least 1 and --warmup at least 0");
    const int clip = !strcmp(cfg.model.objective, "clip");
    if (clip && text_vocab <= TOKENIZER_SPECIALS)
        catlip_die("--text-vocab must be more than %d (the special tokens)", TOKENIZER_SPECIALS);
    // The run's checks, less clip's data needs (this bench makes its own captions).
    struct config check = cfg;
    if (clip) snprintf(check.model.objective, sizeof check.model.objective, "catlip");
    if (config_validate(&check) != 0) goto bad;
    struct vit_config vc;
    if (clip) {
        struct text_config tc;
        if (vit_config_from_run(&vc, &cfg, (int)cfg.model.embed_dim) != 0 ||
            text_config_make(&tc, cfg.model.text, text_vocab, (int)cfg.model.context_length,
                             TOKENIZER_EOT, (int)cfg.model.text_width, (int)cfg.model.text_depth,
                             (int)cfg.model.text_heads, (int)cfg.model.embed_dim) != 0 ||
            vit_config_make_clip(&vc, &tc) != 0)
            goto bad;
    } else if (vit_config_from_run(&vc, &cfg, 0) != 0) {
        goto bad;
    }

    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    const int G = (int)cfg.train.global_batch;
    uint64_t begin, end;
    plan_worker_slice((uint64_t)G, rank, ranks, &begin, &end);
    const int B = (int)(end - begin);
    if (B < 1) catlip_die("--batch %d is smaller than the %d ranks", G, ranks);
    const int T = (int)cfg.train.threads;
    struct pool *pool = pool_create_at(T, 1, rank * T);

    struct bench b;
    memset(&b, 0, sizeof b);
    b.clip = clip, b.ranks = ranks, b.overlap = overlap, b.rows = B, b.global_batch = G;
    struct optim_settings os;
    optim_settings_from_run(&os, &cfg, warmup + steps);
    train_state_create(&b.ts, &vc, &os, B, pool, (uint64_t)cfg.seed);
    train_state_set_precision(&b.ts, (enum vit_precision)vit_precision_parse(cfg.train.precision));
    const struct vit_layout *L = &b.ts.model.layout;
    if (L->total > (size_t)((1LL << 31) - 1)) catlip_die("the gradient has more than 2^31-1 floats");
    b.bucket_floats = (size_t)(cfg.train.bucket_mb * 1048576.0 / sizeof(float));
    if (ranks > 1) {
        struct grad_sync_options o = grad_sync_default_options();
        o.bucket_floats = b.bucket_floats;
        o.overlap = 1;  // non-blocking buckets as a worker starts them (see the header)
        if (grad_wire_parse(cfg.train.grad_comm, &o.wire) != 0 ||
            grad_allreduce_parse(cfg.train.allreduce, &o.allreduce) != 0)
            catlip_die("unknown train.grad_comm or train.allreduce");  // config_validate checked them
        grad_sync_init_options(&b.sync, MPI_COMM_WORLD, b.ts.grads, &o, NULL);
    }
    if (clip)
        contrastive_sync_init(&b.contrastive, ranks > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL,
                              (G + ranks - 1) / ranks, vc.num_classes, NULL);

    const size_t pixels = (size_t)3 * vc.image_size * vc.image_size;
    const int context = clip ? vc.text.context : 0;
    b.images = xaligned_alloc((size_t)B * pixels * sizeof(float));
    if (clip)
        b.ids = xcalloc((size_t)B * context, sizeof *b.ids);
    else
        b.targets = xaligned_alloc((size_t)B * vc.num_classes * sizeof(float));
    for (int i = 0; i < B; i++)
        make_sample((uint64_t)cfg.seed, begin + (uint64_t)i, b.images + (size_t)i * pixels, pixels,
                    clip ? NULL : b.targets + (size_t)i * vc.num_classes, vc.num_classes,
                    clip ? b.ids + (size_t)i * context : NULL, context, clip ? vc.text.vocab_size : 0);

    // Work per step, all ranks: forward + backward = 3 x forward (2 flops a multiply-add); clip
    // adds each worker's rows against all G columns, both directions, forward and backward:
    // 2 (directions) x 3 x 2 x rows x G x E over the workers = 12 G^2 E.
    double flops = 6.0 * vit_forward_macs(&vc) * G;
    double text_flops = clip ? 6.0 * text_forward_macs(&vc.text) * G : 0.0;
    double pair_flops = clip ? 12.0 * (double)G * G * vc.num_classes : 0.0;
    flops += text_flops + pair_flops;
    if (rank == 0) {
        printf("objective  %s, %d rank%s, global batch %d (%d..%d a rank), %d thread%s a rank, %s\n",
               clip ? "clip" : "catlip", ranks, ranks == 1 ? "" : "s", G, G / ranks,
               (G + ranks - 1) / ranks, T, T == 1 ? "" : "s", cfg.train.precision);
        printf("model      %s/%d at %d: dim %d, depth %d; %s %d; %zu parameters (%.1f MB of gradient)\n",
               cfg.model.name, vc.patch_size, vc.image_size, vc.dim, vc.depth,
               clip ? "embedding" : "synsets", vc.num_classes, L->total, L->total * 4e-6);
        if (clip)
            printf("text       %s: width %d, depth %d, heads %d, context %d, vocabulary %d\n",
                   cfg.model.text, vc.text.width, vc.text.depth, vc.text.heads, vc.text.context,
                   vc.text.vocab_size);
        printf("threads    rank 0: %s; kernels %s; matmul %s\n", pool_describe(pool),
               b.ts.model.k->name, gemm_backend());
        printf("allreduce  %s\n", overlap ? "overlapped with backward (as training)"
                                          : "after backward (every phase alone)");
        fflush(stdout);
    }

    double *times = xcalloc((size_t)steps * (NPHASES + 1), sizeof *times);  // [step][phase | step]
    double *cpus = xcalloc((size_t)steps * NPHASES, sizeof *cpus);            // [step][phase]
    double loss_first = 0.0;
    for (int s = -warmup; s < steps; s++) {
        double t[NPHASES + 1], cpu[NPHASES];
        quiet_barrier();
        double t0 = time_now();
        double loss = one_step(&b, t, cpu);
        t[NPHASES] = time_now() - t0;
        if (!clip) MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (s == -warmup) loss_first = loss;
        double step_max = t[NPHASES];
        MPI_Allreduce(MPI_IN_PLACE, t, NPHASES, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, cpu, NPHASES, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        for (int p = 0; p < NPHASES; p++) cpu[p] /= ranks;
        MPI_Allreduce(MPI_IN_PLACE, &step_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        for (int p = 0; p < NPHASES; p++) t[p] /= ranks;
        t[NPHASES] = step_max;
        if (rank == 0) {
            printf("step %-3d   %.3f s  loss %.6f%s\n", s, step_max, loss, s < 0 ? "  (warm-up)" : "");
            fflush(stdout);
        }
        if (s >= 0) memcpy(times + (size_t)s * (NPHASES + 1), t, sizeof t);
        if (s >= 0) memcpy(cpus + (size_t)s * NPHASES, cpu, sizeof cpu);
    }

    double med[NPHASES + 1], med_cpu[NPHASES];
    for (int p = 0; p <= NPHASES; p++) {
        double *v = xcalloc((size_t)steps, sizeof *v);
        for (int s = 0; s < steps; s++) v[s] = times[(size_t)s * (NPHASES + 1) + p];
        med[p] = median(v, steps);
        if (p < NPHASES) {
            for (int s = 0; s < steps; s++) v[s] = cpus[(size_t)s * NPHASES + p];
            med_cpu[p] = median(v, steps);
        }
        free(v);
    }
    // The FMA peak of rank 0's threads while the others sleep; the machine's peak for this
    // job: per core x the cores its ranks' threads can use.
    double peak_per_core = 0.0;
    int cores = pool_available_cores();
    int cores_used = ranks * T < cores ? ranks * T : cores;
    if (peak) {
        if (rank == 0) peak_per_core = blas_measure_fma_peak_gflops(pool, 0.5) / T;
        quiet_barrier();
    }
    const double gflops = flops / med[NPHASES] * 1e-9;
    const double share = peak_per_core > 0 ? gflops / (peak_per_core * cores_used) : 0.0;
    const double gather_bytes = clip ? 2.0 * G * vc.num_classes * 4.0 : 0.0;
    if (rank == 0) {
        printf("phases     ms per step (median over %d steps of the mean over ranks; CPU: the "
               "process's CPU time, gather + similarity + scatter under loss)\n", steps);
        double sum = 0.0;
        for (int p = 0; p < NPHASES; p++) {
            if (med[p] == 0.0) continue;
            sum += med[p];
            printf("  %-16s %10.2f  %5.1f%%  CPU %10.2f\n", phase_names[p], med[p] * 1e3,
                   100.0 * med[p] / med[NPHASES], med_cpu[p] * 1e3);
        }
        printf("  %-16s %10.2f  (sum of the phases %.2f)\n", "step (slowest)", med[NPHASES] * 1e3,
               sum * 1e3);
        printf("rate       %.2f img/s, %.1f GFLOP/s (%.2f GFLOP/step: image %.2f, text %.2f, "
               "similarity %.3f)\n",
               G / med[NPHASES], gflops, flops * 1e-9, 6.0 * vit_forward_macs(&vc) * G * 1e-9,
               text_flops * 1e-9, pair_flops * 1e-9);
        if (peak)
            printf("peak       fp32 FMA %.1f GFLOP/s a core x %d core%s used: the step reaches "
                   "%.1f%%\n", peak_per_core, cores_used, cores_used == 1 ? "" : "s", 100 * share);
        printf("{\"objective\": \"%s\", \"model\": \"%s\", \"image_size\": %d, \"patch_size\": %d, "
               "\"ranks\": %d, \"global_batch\": %d, \"threads\": %d, \"precision\": \"%s\", "
               "\"overlap\": %s, \"params\": %zu, \"embed_dim\": %d, \"text\": \"%s\", "
               "\"text_vocab\": %d, \"context\": %d, \"gflop_per_step\": %.4f, "
               "\"gflop_image\": %.4f, \"gflop_text\": %.4f, \"gflop_similarity\": %.6f, "
               "\"step_ms\": %.3f, \"phases_ms\": {",
               clip ? "clip" : "catlip", cfg.model.name, vc.image_size, vc.patch_size, ranks, G, T,
               cfg.train.precision, overlap ? "true" : "false", L->total,
               clip ? vc.num_classes : 0, clip ? cfg.model.text : "", clip ? vc.text.vocab_size : 0,
               context, flops * 1e-9, 6.0 * vit_forward_macs(&vc) * G * 1e-9, text_flops * 1e-9,
               pair_flops * 1e-9, med[NPHASES] * 1e3);
        for (int p = 0; p < NPHASES; p++)
            printf("%s\"%s\": %.3f", p ? ", " : "", phase_names[p], med[p] * 1e3);
        printf("}, \"phases_cpu_ms\": {");
        for (int p = 0; p < NPHASES; p++)
            printf("%s\"%s\": %.3f", p ? ", " : "", phase_names[p], med_cpu[p] * 1e3);
        printf("}, \"loss_first\": %.9g, \"gflops\": %.3f, \"fma_peak_gflops_per_core\": %.3f, "
               "\"cores\": %d, \"cores_used\": %d, \"fma_peak_share\": %.5f, \"gather_bytes\": "
               "%.0f, \"grad_bytes\": %.0f}\n",
               loss_first, gflops, peak_per_core, cores, cores_used, share, gather_bytes,
               L->total * 4.0);
        fflush(stdout);
    }
    free(times), free(cpus);
    free(b.images), free(b.targets), free(b.ids);
    if (clip) contrastive_sync_free(&b.contrastive);
    if (ranks > 1) grad_sync_free(&b.sync);
    train_state_free(&b.ts);
    pool_destroy(pool);
    MPI_Finalize();
    return 0;
bad:
    catlip_error_print();
    return 2;
}
