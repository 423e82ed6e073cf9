// catlip bench data: how fast samples are read, decoded and augmented, per decode thread and
// through the prefetching pipeline, against torchvision's standard transform stack run in the
// same invocation on the same shards (bench/data_torchvision.py), and against the rate a
// training step consumes (catlip bench step).
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/log.h"
#include "core/pool.h"
#include "data/order.h"
#include "data/pipeline.h"
#include "data/sample_reader.h"
#include "data/shard_index.h"
#include "data/shardlist.h"

static const char usage_text[] =
    "usage: catlip bench data PATTERN [options]\n"
    "  PATTERN              shards, e.g. 'data/{00000..00009}.tar'\n"
    "  --image-size S       output side (default 224)\n"
    "  --count N            samples timed per pass (default 512)\n"
    "  --passes P           passes over them (default 3; each pass is a new epoch's crops);\n"
    "                       each pass is timed alone and the best reported, on both sides\n"
    "  --threads T          decode threads for the pipeline run (default 1)\n"
    "  --batch B            pipeline batch size (default 64)\n"
    "  --peer PATH          torchvision peer script (default: bench/data_torchvision.py next to\n"
    "                       the source tree, found through $CATLIP_SOURCE_DIR or the executable)\n"
    "  --no-peer            skip the torchvision comparison\n"
    "  --step-model NAME    also time one training step of NAME on 1 thread (catlip bench step)\n"
    "                       and say whether 1 decode thread keeps it fed (default vit_tiny; 'none')\n"
    "Per-thread rates use the thread's CPU time (robust on a shared machine) and wall time, each\n"
    "from the best of the passes.\n"
    "The last line is machine-readable:\n"
    "  result: per_thread_images_per_second=F cpu_per_thread_images_per_second=F\n"
    "          pipeline_images_per_second=F torchvision_cpu_images_per_second=F speedup=F\n"
    "          step_images_per_second=F\n";

static double thread_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Bench-only labeller: every caption gets one class from a hash of its bytes, so no sample
// is skipped for want of a vocabulary.
static int hash_label(void *ctx, const char *caption, size_t len, int32_t *out, int max) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)caption[i]) * 16777619u;
    if (max < 1) return 0;
    out[0] = (int32_t)(h % (uint32_t)*(const int *)ctx);
    return 1;
}

// Runs a command and returns the value of `key=` on its last "result:" line (< 0: none).
static double run_and_read(const char *command, const char *key, int echo) {
    FILE *f = popen(command, "r");
    if (!f) return -1;
    char line[2048];
    double value = -1;
    while (fgets(line, sizeof line, f)) {
        if (echo && strncmp(line, "result:", 7) != 0) fputs(line, stdout);
        if (strncmp(line, "result:", 7) != 0) continue;
        char pattern[128];
        snprintf(pattern, sizeof pattern, " %s=", key);
        char *p = strstr(line, pattern);
        if (p) value = atof(p + strlen(pattern));
    }
    int status = pclose(f);
    return status == 0 ? value : -1;
}

static int find_peer(char *out, size_t size) {
    const char *src = getenv("CATLIP_SOURCE_DIR");
    if (src && src[0]) {
        snprintf(out, size, "%s/bench/data_torchvision.py", src);
        if (access(out, R_OK) == 0) return 0;
    }
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        // build-*/catlip -> ../bench, and a source tree beside an installed bin/ -> ../bench.
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        snprintf(out, size, "%s/../bench/data_torchvision.py", exe);
        if (access(out, R_OK) == 0) return 0;
    }
    return -1;
}

int cmd_bench_data(int argc, char **argv) {
    int S = 224, count = 512, passes = 3, threads = 1, batch = 64, no_peer = 0;
    const char *peer = NULL, *step_model = "vit_tiny";
    static struct option opts[] = {{"image-size", 1, 0, 'i'}, {"count", 1, 0, 'n'},     {"passes", 1, 0, 'p'},
                                   {"threads", 1, 0, 't'},    {"batch", 1, 0, 'b'},     {"peer", 1, 0, 'P'},
                                   {"no-peer", 0, 0, 'N'},    {"step-model", 1, 0, 'm'}, {"help", 0, 0, 'h'},
                                   {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': S = atoi(optarg); break;
        case 'n': count = atoi(optarg); break;
        case 'p': passes = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'P': peer = optarg; break;
        case 'N': no_peer = 1; break;
        case 'm': step_model = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(usage_text, stderr);
        catlip_die("bench data needs one shard PATTERN");
    }
    if (S < 8 || count < 1 || passes < 1 || threads < 1 || batch < 1)
        catlip_die("--image-size >= 8, --count, --passes, --threads and --batch >= 1 please");
    const char *pattern = argv[optind];
    struct shard_list list;
    if (shardlist_expand(pattern, &list) != 0) catlip_die("%s", catlip_error());

    // 1. One thread, no pipeline: read + label + decode + augment + normalise, sample by sample.
    struct shard_index *ix = xcalloc(list.count, sizeof *ix);
    uint64_t *counts = xcalloc(list.count, sizeof *counts), total = 0;
    for (size_t i = 0; i < list.count; i++) {
        if (shard_index_load(list.paths[i], NULL, &ix[i], NULL) != 0) catlip_die("%s", catlip_error());
        counts[i] = ix[i].count;
        total += ix[i].count;
    }
    if (total == 0) catlip_die("%s holds no usable samples", pattern);
    if ((uint64_t)count > total) count = (int)total;
    int classes = 1000;
    struct sample_config cfg = {.augment = {.train = 1, .image_size = S, .flip_probability = -1},
                                .mean = {0.485f, 0.456f, 0.406f},
                                .std = {0.229f, 0.224f, 0.225f},
                                .seed = 1,
                                .num_classes = classes,
                                .label = hash_label,
                                .label_ctx = &classes};
    augment_options_defaults(&cfg.augment);
    struct sample_reader reader;
    sample_reader_init(&reader);
    float *image = xaligned_alloc((size_t)3 * S * S * sizeof(float));
    float *target = xaligned_alloc((size_t)classes * sizeof(float));
    long done = 0, skipped = 0;
    double best_wall = 1e300, best_cpu = 1e300;
    for (int pass = 0; pass < passes; pass++) {
        double w0 = time_now(), c0 = thread_cpu_seconds();
        struct global_order *order = global_order_create(counts, list.count, 1, (uint64_t)pass, 0);
        for (int k = 0; k < count; k++) {
            uint64_t sample = global_order_at(order, (uint64_t)k);
            size_t shard;
            uint64_t local;
            global_order_locate(order, sample, &shard, &local);
            int why = sample_read(&reader, &cfg, list.paths[shard], shard, &ix[shard].samples[local], sample,
                                  (uint64_t)pass, image, target);
            if (why >= 0) skipped++;
            done++;
        }
        global_order_destroy(order);
        double wall = time_now() - w0, cpu = thread_cpu_seconds() - c0;
        if (wall < best_wall) best_wall = wall;
        if (cpu < best_cpu) best_cpu = cpu;
    }
    double per_thread = count / best_wall, cpu_per_thread = count / best_cpu;
    printf("catlip, 1 thread, no pipeline: %d samples x %d passes (%ld skipped) of %dx%d, best pass %.1f img/s "
           "(wall), %.1f img/s per core (CPU time)\n",
           count, passes, skipped, S, S, per_thread, cpu_per_thread);
    sample_reader_free(&reader);
    free(image);
    free(target);
    for (size_t i = 0; i < list.count; i++) shard_index_free(&ix[i]);
    free(ix);
    free(counts);

    // 2. The prefetching pipeline with T decode threads, consumed as fast as it produces.
    struct pipeline_options po = {.shards = (const char *const *)list.paths,
                                  .nshards = list.count,
                                  .seed = 1,
                                  .global_batch = (uint64_t)batch,
                                  .worker = 0,
                                  .nworkers = 1,
                                  .train = 1,
                                  .image_size = S,
                                  .num_classes = classes,
                                  .label = hash_label,
                                  .label_ctx = &classes,
                                  .decode_threads = threads,
                                  .compute_threads = 1};
    double pipeline_rate = 0;
    uint64_t bpe = total / (uint64_t)batch;
    if (bpe == 0) {
        printf("pipeline: skipped (fewer samples than --batch %d)\n", batch);
    } else {
        uint64_t want = ((uint64_t)count * (uint64_t)passes + (uint64_t)batch - 1) / (uint64_t)batch;
        po.max_batches = want;
        struct pipeline *p = pipeline_create(&po);
        if (!p) catlip_die("%s", catlip_error());
        struct batch b;
        long images = 0;
        double t0 = time_now();
        while (pipeline_next(p, &b) == 1) images += b.count;
        double t = time_now() - t0;
        pipeline_rate = images / t;
        char skips[256];
        pipeline_format_skips(p, skips, sizeof skips);
        printf("catlip pipeline, %s, batch %d: %ld images in %.2f s, %.1f img/s%s%s\n", pipeline_describe(p), batch,
               images, t, pipeline_rate, skips[0] ? ", skipped: " : "", skips);
        pipeline_destroy(p);
    }

    // 3. torchvision on the same shards.
    double tv_cpu = -1;
    char peer_path[PATH_MAX];
    if (!no_peer && !peer && find_peer(peer_path, sizeof peer_path) == 0) peer = peer_path;
    if (!no_peer && peer) {
        size_t len = 0, cap = 256 + strlen(peer);
        for (size_t i = 0; i < list.count; i++) cap += strlen(list.paths[i]) + 3;
        char *cmd = xmalloc(cap);
        len += (size_t)snprintf(cmd, cap, "/usr/bin/python3 '%s' --image-size %d --count %d --passes %d", peer, S,
                                count, passes);
        for (size_t i = 0; i < list.count; i++) len += (size_t)snprintf(cmd + len, cap - len, " '%s'", list.paths[i]);
        fflush(stdout);
        tv_cpu = run_and_read(cmd, "cpu_images_per_second", 1);
        free(cmd);
        if (tv_cpu <= 0) printf("torchvision peer failed (is python3-torchvision installed?)\n");
    } else if (!no_peer) {
        printf("torchvision peer not found (give --peer bench/data_torchvision.py)\n");
    }
    double speedup = tv_cpu > 0 ? cpu_per_thread / tv_cpu : 0;
    if (tv_cpu > 0)
        printf("speed-up per core (CPU time): %.2fx torchvision (target: >= 3x)\n", speedup);

    // 4. What a training step consumes on one core.
    double step_rate = -1;
    if (strcmp(step_model, "none") != 0) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            char cmd[PATH_MAX + 256];
            snprintf(cmd, sizeof cmd,
                     "'%s' bench step --model %s --image-size %d --threads 1 --batch 16 --steps 2 --warmup 1 2>/dev/null",
                     exe, step_model, S);
            fflush(stdout);
            step_rate = run_and_read(cmd, "images_per_second", 0);
        }
        if (step_rate > 0)
            printf("%s/%d training step on 1 core: %.1f img/s; 1 decode thread gives %.1f img/s (%.0fx what it needs): %s\n",
                   step_model, S, step_rate, per_thread, per_thread / step_rate,
                   per_thread >= step_rate ? "fed" : "NOT fed");
        else
            printf("%s training step: not measured (catlip bench step failed)\n", step_model);
    }
    printf("result: per_thread_images_per_second=%.2f cpu_per_thread_images_per_second=%.2f "
           "pipeline_images_per_second=%.2f torchvision_cpu_images_per_second=%.2f speedup=%.3f "
           "step_images_per_second=%.2f\n",
           per_thread, cpu_per_thread, pipeline_rate, tv_cpu, speedup, step_rate);
    shardlist_free(&list);
    return 0;
}
