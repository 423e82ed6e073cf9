// catlip bench allreduce: what a job's MPI and network give the gradient allreduce, measured
// between the ranks mpirun or srun started (the hosts of the job), before a long run.
//
// Three measurements, every rank taking part:
//   latency   MPI_Allreduce of one float, many times;
//   sweep     MPI_Allreduce of 4 bytes to the gradient's size in steps of 4x: time, algorithm
//             bandwidth (bytes / time) and bus bandwidth (x 2(n-1)/n, what a ring moves per
//             rank, comparable across rank counts);
//   gradient  the model's gradient reduced exactly as a training worker reduces it (the same
//             grad_sync buckets, started in backward's order), with nothing to hide behind: the
//             time a step spends on it when no backward overlaps it. The sums are checked
//             on every rank (exit 1 if any is wrong).
// A time is the slowest rank's (MPI_MAX), and each figure is the median over repetitions.
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "core/config.h"
#include "core/log.h"
#include "nn/model.h"
#include "worker/grad_sync.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mpirun -n N catlip bench allreduce [-c CONFIG] [--set key=value ...] [options]\n"
            "  --model NAME        the gradient to reduce: vit_tiny (default), vit_small, ...\n"
            "  --image-size S      (default 224)\n"
            "  --patch-size P      (default 16)\n"
            "  --classes V         head outputs / synsets (default 24320)\n"
            "  --floats N          reduce N floats instead of a model's gradient\n"
            "  --bucket-mb MB      train.bucket_mb (default 4)\n"
            "  --grad-comm W       train.grad_comm: fp32 (default) or bf16 on the wire\n"
            "  --allreduce A       train.allreduce: auto (default), flat or hierarchical\n"
            "  --collectives C     train.collectives: ring (default, our own) or mpi (Open MPI's)\n"
            "  --iters N           timed repetitions of the gradient allreduce (default 10)\n"
            "  --no-sweep          skip the size sweep\n"
            "Run it with the ranks a training job's workers would have (one per worker; the\n"
            "coordinator takes no part in the allreduce). Every rank takes part; rank 0 prints.\n"
            "The last line is machine-readable:\n"
            "  result: ranks=N hosts=N grad_floats=N buckets=N grad_ms_median=F\n"
            "          grad_busbw_mbps=F latency_us=F grad_comm=S hierarchical=0|1\n"
            "          collectives=S\n"
            "Bandwidths count the fp32 gradient's bytes whatever travels (bf16 moves half).\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Small finite values (sums of them stay finite for any repetition count).
static void fill(float *buf, size_t count, int rank) {
    for (size_t i = 0; i < count; i++) buf[i] = (float)((i + (size_t)rank) % 97) * 1e-6f;
}

// The slowest rank's time for each of `reps` repetitions of an allreduce of `count` floats,
// non-blocking as training starts its buckets (Open MPI's blocking MPI_Allreduce takes another
// algorithm: 10-20x slower at 40 MB here, 3 ranks on 2 cores),
// after a barrier each; returns the median (seconds, on every rank).
static double time_allreduce(float *buf, size_t count, int reps, int rank) {
    double *t = xcalloc((size_t)reps, sizeof *t);
    for (int r = 0; r < reps; r++) {
        fill(buf, count, rank);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Request request;
        MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
        MPI_Wait(&request, MPI_STATUS_IGNORE);
        t[r] = MPI_Wtime() - t0;
    }
    MPI_Allreduce(MPI_IN_PLACE, t, reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    double m = median(t, reps);
    free(t);
    return m;
}

// Hands grad_sync the gradient's ranges in the order vit_backward reports them: head and final
// LayerNorm, then each block from the last, then the embeddings. With only a float count, in
// bucket-sized pieces from the end.
static void report_ranges(struct grad_sync *s, const struct vit_layout *L, size_t total) {
    if (!L) {
        size_t piece = s->bucket_floats;
        for (size_t end = total; end > 0;) {
            size_t begin = end > piece ? end - piece : 0;
            grad_sync_ready(s, begin, end);
            end = begin;
        }
        return;
    }
    grad_sync_ready(s, L->norm_w, L->total);
    for (int l = L->config.depth - 1; l >= 0; l--) grad_sync_ready(s, L->blocks[l].begin, L->blocks[l].end);
    grad_sync_ready(s, 0, L->blocks[0].begin);
}

// Every rank's host name, and how many distinct hosts; rank 0 prints "name (ranks), ...".
static int describe_hosts(int rank, int size, char *out, size_t outsize) {
    char name[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    MPI_Get_processor_name(name, &len);
    char *all = xcalloc((size_t)size, MPI_MAX_PROCESSOR_NAME);
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
               MPI_COMM_WORLD);
    int hosts = 0;
    if (rank == 0) {
        out[0] = 0;
        for (int i = 0; i < size; i++) {
            const char *hi = all + (size_t)i * MPI_MAX_PROCESSOR_NAME;
            int seen = 0, count = 0;
            for (int j = 0; j < size; j++) {
                const char *hj = all + (size_t)j * MPI_MAX_PROCESSOR_NAME;
                if (strcmp(hi, hj) == 0) {
                    if (j < i) seen = 1;
                    count++;
                }
            }
            if (seen) continue;
            size_t used = strlen(out);
            snprintf(out + used, outsize - used, "%s%s (%d)", hosts ? ", " : "", hi, count);
            hosts++;
        }
    }
    free(all);
    MPI_Bcast(&hosts, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return hosts;
}

int cmd_bench_allreduce(int argc, char **argv) {
    struct config cfg;
    config_defaults(&cfg);
    cfg.model.num_classes = 24320;
    long long floats = 0;
    int iters = 10, sweep = 1;
    static struct option opts[] = {{"config", 1, 0, 'c'},     {"set", 1, 0, 'S'},
                                   {"model", 1, 0, 'm'},      {"image-size", 1, 0, 'i'},
                                   {"patch-size", 1, 0, 'p'}, {"classes", 1, 0, 'v'},
                                   {"floats", 1, 0, 'f'},     {"bucket-mb", 1, 0, 'B'},
                                   {"iters", 1, 0, 'n'},      {"no-sweep", 0, 0, 'N'},
                                   {"grad-comm", 1, 0, 'W'},  {"allreduce", 1, 0, 'A'},
                                   {"collectives", 1, 0, 'R'}, {"help", 0, 0, 'h'},
                                   {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        int taken = bench_args_take(&cfg, c, optarg);
        if (taken < 0) goto bad;
        if (taken) continue;
        switch (c) {
        case 'B': if (bench_args_set(&cfg, "train.bucket_mb", optarg) != 0) goto bad;
            break;
        case 'W': if (bench_args_set(&cfg, "train.grad_comm", optarg) != 0) goto bad;
            break;
        case 'A': if (bench_args_set(&cfg, "train.allreduce", optarg) != 0) goto bad;
            break;
        case 'R': if (bench_args_set(&cfg, "train.collectives", optarg) != 0) goto bad;
            break;
        case 'f': {
            char *end;
            floats = strtoll(optarg, &end, 10);
            if (*end || floats < 1 || floats > (1LL << 31) - 1)
                catlip_die("--floats must be a count between 1 and 2^31-1, got '%s'", optarg);
            break;
        }
        case 'n': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 100000) catlip_die("--iters must be between 1 and 100000, got '%s'", optarg);
            iters = (int)n;
            break;
        }
        case 'N': sweep = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        catlip_die("bench allreduce: unexpected argument '%s'", argv[optind]);
    }
    if (config_validate(&cfg) != 0) goto bad;
    struct vit_config vc;
    struct vit_layout layout, *L = NULL;
    if (!floats) {
        if (vit_config_from_run(&vc, &cfg, 0) != 0) goto bad;
        vit_layout_init(&layout, &vc);
        L = &layout;
        if (layout.total > (size_t)((1LL << 31) - 1)) catlip_die("the gradient has more than 2^31-1 floats");
    }
    const size_t total = L ? L->total : (size_t)floats;

    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char hostlist[4096];
    int hosts = describe_hosts(rank, size, hostlist, sizeof hostlist);
    float *grads = xaligned_alloc(total * sizeof(float));
    const size_t bucket_floats = (size_t)(cfg.train.bucket_mb * 1048576.0 / sizeof(float));
    const double ring = size > 1 ? 2.0 * (size - 1) / size : 1.0;  // bus bandwidth factor
    if (rank == 0) {
        printf("ranks      %d on %d host%s: %s\n", size, hosts, hosts == 1 ? "" : "s", hostlist);
        if (size == 1) printf("           (one rank: nothing crosses a link; run it under mpirun -n N)\n");
        if (L)
            printf("gradient   %s/%d/%d, %d classes: %zu floats (%.1f MB), buckets of %.1f MiB\n",
                   cfg.model.name, vc.patch_size, vc.image_size, vc.num_classes, total,
                   total * 4.0 / 1e6, cfg.train.bucket_mb);
        else
            printf("gradient   %zu floats (%.1f MB), buckets of %.1f MiB\n", total, total * 4.0 / 1e6,
                   cfg.train.bucket_mb);
        fflush(stdout);
    }

    // Latency: the smallest message.
    time_allreduce(grads, 1, 20, rank);
    double latency = time_allreduce(grads, 1, 200, rank);
    if (rank == 0) printf("latency    %.1f us (allreduce of one float, median of 200)\n", latency * 1e6);

    // Sweep: 4 bytes to the gradient, x4.
    if (sweep) {
        if (rank == 0) printf("%12s %12s %12s %12s\n", "bytes", "time_ms", "algbw_MB/s", "busbw_MB/s");
        for (size_t n = 1;; n *= 4) {
            if (n > total) n = total;
            double bytes = n * 4.0;
            int reps = bytes < 1e6 ? 50 : bytes < 16e6 ? 10 : 5;
            time_allreduce(grads, n, 1, rank);
            double t = time_allreduce(grads, n, reps, rank);
            if (rank == 0) {
                printf("%12.0f %12.3f %12.1f %12.1f\n", bytes, t * 1e3, bytes / t / 1e6,
                       ring * bytes / t / 1e6);
                fflush(stdout);
            }
            if (n == total) break;
        }
    }

    // The gradient as training reduces it: grad_sync's buckets, non-blocking, all at once.
    struct grad_sync sync;
    struct grad_sync_options options = grad_sync_default_options();
    options.bucket_floats = bucket_floats;
    options.overlap = 1;
    if (grad_wire_parse(cfg.train.grad_comm, &options.wire) != 0 ||
        grad_allreduce_parse(cfg.train.allreduce, &options.allreduce) != 0 ||
        grad_collectives_parse(cfg.train.collectives, &options.collectives) != 0)
        catlip_die("unknown train.grad_comm, train.allreduce or train.collectives");  // validated
    grad_sync_init_options(&sync, MPI_COMM_WORLD, grads, &options, NULL);
    char how[256];
    grad_sync_describe(&sync, how, sizeof how);
    double *t = xcalloc((size_t)iters, sizeof *t);
    for (int r = -1; r < iters; r++) {  // r = -1: warm-up
        fill(grads, total, rank);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        grad_sync_begin(&sync);
        report_ranges(&sync, L, total);
        grad_sync_finish(&sync);
        if (r >= 0) t[r] = MPI_Wtime() - t0;
    }
    MPI_Allreduce(MPI_IN_PLACE, t, iters, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    int buckets = sync.nbuckets;
    // The last repetition's sums, checked on every rank: a job whose MPI corrupts or drops
    // data stops here, not hours into training.
    size_t wrong = 0, first_wrong = 0;
    // fp32: a few roundings of 2^-24; bf16 on the wire: worker/ring_allreduce.h's bound for
    // non-negative terms, gamma_P = P d / (1 - P d) with d = (1 + 2^-8)(1 + 2^-24) - 1,
    // doubled for a hierarchical reduction (two stages).
    double d = (1.0 + ldexp(1.0, -8)) * (1.0 + ldexp(1.0, -24)) - 1.0;
    double tolerance = sync.wire == GRAD_WIRE_BF16 ? (sync.hierarchical ? 2.0 : 1.0) * size * d / (1.0 - size * d)
                                                   : 1e-5;
    for (size_t i = 0; i < total; i++) {
        double want = 0.0;
        for (int r = 0; r < size; r++) want += (double)((float)((i + (size_t)r) % 97) * 1e-6f);
        if (fabs(grads[i] - want) > tolerance * want + 1e-12) {
            if (!wrong) first_wrong = i;
            wrong++;
        }
    }
    unsigned long long wrong_all = wrong;
    MPI_Allreduce(MPI_IN_PLACE, &wrong_all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (wrong)
        fprintf(stderr, "catlip: error: rank %d: %zu of %zu reduced floats are wrong (first at %zu: "
                "%g, want the ranks' sum)\n", rank, wrong, total, first_wrong, grads[first_wrong]);
    if (wrong_all) {
        MPI_Finalize();
        return 1;
    }
    double grad_t = median(t, iters);
    double bytes = total * 4.0;
    const double busbw = ring * bytes / grad_t;
    if (rank == 0) {
        printf("allreduce  %s\n", how);
        printf("           %.1f ms for the gradient (%d bucket%s as a worker starts them, nothing "
               "overlapping; median of %d): %.1f MB/s algorithm, %.1f MB/s bus bandwidth (of fp32 "
               "bytes)\n",
               grad_t * 1e3, buckets, buckets == 1 ? "" : "s", iters, bytes / grad_t / 1e6,
               busbw / 1e6);
        printf("check      every reduced float on every rank equals the ranks' sum (within %.2g "
               "relative)\n", tolerance);
        printf("model      t(bytes) = %.1f us + %.3f x bytes / (%.1f MB/s): latency plus what a ring\n"
               "           moves per rank at the gradient's bus bandwidth\n",
               latency * 1e6, ring, busbw / 1e6);
        printf("result: ranks=%d hosts=%d grad_floats=%zu buckets=%d grad_ms_median=%.3f "
               "grad_busbw_mbps=%.2f latency_us=%.2f grad_comm=%s hierarchical=%d collectives=%s\n",
               size, hosts, total, buckets, grad_t * 1e3, busbw / 1e6, latency * 1e6,
               cfg.train.grad_comm, sync.hierarchical, cfg.train.collectives);
        fflush(stdout);
    }
    free(t);
    grad_sync_free(&sync);
    free(grads);
    if (L) vit_layout_free(L);
    MPI_Finalize();
    return 0;
bad:
    catlip_error_print();
    return 2;
}
