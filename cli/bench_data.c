// catlip bench data: how fast samples are read, decoded and augmented, per decode thread and
// through the prefetching pipeline, against two Python peers run in the same invocation on the
// same images (bench/data_torchvision.py): torchvision's standard transform stack, which
// decodes every JPEG in full, and the fastest plain-PIL path we could write (PIL-draft: the
// JPEG decoded at a reduced DCT scale with Image.draft), and against the rate a training step
// consumes (catlip bench step). Only images that were decoded count, on every side.
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
    "  --peer PATH          the peers' script (default: bench/data_torchvision.py next to the\n"
    "                       source tree, found through $CATLIP_SOURCE_DIR or the executable)\n"
    "  --peers LIST         which peers to run: torchvision, pil-draft, both (default) or none\n"
    "  --no-peer            skip both peers (--peers none)\n"
    "  --step-model NAME    also time one training step of NAME on 1 thread (catlip bench step)\n"
    "                       and say whether 1 decode thread keeps it fed (default vit_tiny; 'none')\n"
    "Per-thread rates use the thread's CPU time (robust on a shared machine) and wall time, each\n"
    "from the best of the passes, for catlip and for each peer alike; the peers decode the same\n"
    "images as catlip, pass by pass. Images that fail to decode are skipped: counted, and left\n"
    "out of the rates.\n"
    "The last line is machine-readable (peer rates -1 when not run, speed-ups then 0):\n"
    "  result: per_thread_images_per_second=F cpu_per_thread_images_per_second=F\n"
    "          pipeline_images_per_second=F torchvision_cpu_images_per_second=F speedup=F\n"
    "          step_images_per_second=F skipped=N torchvision_images_per_second=F\n"
    "          torchvision_skipped=N pil_draft_images_per_second=F\n"
    "          pil_draft_cpu_images_per_second=F pil_draft_skipped=N speedup_pil_draft=F\n"
    "  (speedup: catlip / torchvision per core in CPU time; speedup_pil_draft: catlip / PIL-draft)\n";

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

// Runs a command, echoing its other lines when echo is set, and keeps its last "result:" line
// in result. Returns 0 when it exited 0 and printed one, else -1.
static int run_for_result(const char *command, int echo, char *result, size_t size) {
    result[0] = '\0';
    FILE *f = popen(command, "r");
    if (!f) return -1;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "result:", 7) == 0) snprintf(result, size, "%s", line);
        else if (echo) fputs(line, stdout);
    }
    int status = pclose(f);
    return status == 0 && result[0] ? 0 : -1;
}

// The value of ` key=` in a result line (-1: absent).
static double result_value(const char *result, const char *key) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, " %s=", key);
    const char *p = strstr(result, pattern);
    return p ? atof(p + strlen(pattern)) : -1;
}

// One peer's run: rates from its best pass, images it skipped (all passes).
struct peer_result {
    double wall_rate, cpu_rate;
    long skipped;
};

// Runs peer script `peer` in `mode` on the images listed in `members` and reads its result.
static int run_peer(const char *peer, const char *mode, int S, const char *members, struct peer_result *out) {
    out->wall_rate = out->cpu_rate = -1;
    out->skipped = -1;
    size_t cap = strlen(peer) + strlen(members) + 256;
    char *cmd = xmalloc(cap);
    snprintf(cmd, cap, "/usr/bin/python3 '%s' --mode %s --image-size %d --members '%s'", peer, mode, S, members);
    fflush(stdout);
    char result[2048];
    int rc = run_for_result(cmd, 1, result, sizeof result);
    free(cmd);
    if (rc != 0) return -1;
    out->wall_rate = result_value(result, "images_per_second");
    out->cpu_rate = result_value(result, "cpu_images_per_second");
    out->skipped = (long)result_value(result, "skipped");
    return out->cpu_rate > 0 ? 0 : -1;
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
    int S = 224, count = 512, passes = 3, threads = 1, batch = 64, run_tv = 1, run_draft = 1;
    const char *peer = NULL, *step_model = "vit_tiny";
    static struct option opts[] = {{"image-size", 1, 0, 'i'}, {"count", 1, 0, 'n'},      {"passes", 1, 0, 'p'},
                                   {"threads", 1, 0, 't'},    {"batch", 1, 0, 'b'},      {"peer", 1, 0, 'P'},
                                   {"peers", 1, 0, 'L'},      {"no-peer", 0, 0, 'N'},    {"step-model", 1, 0, 'm'},
                                   {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
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
        case 'N': run_tv = run_draft = 0; break;
        case 'L':
            if (strcmp(optarg, "both") == 0) run_tv = run_draft = 1;
            else if (strcmp(optarg, "none") == 0) run_tv = run_draft = 0;
            else if (strcmp(optarg, "torchvision") == 0) run_tv = 1, run_draft = 0;
            else if (strcmp(optarg, "pil-draft") == 0) run_tv = 0, run_draft = 1;
            else catlip_die("--peers: torchvision, pil-draft, both or none, not '%s'", optarg);
            break;
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
    // The peers decode the same image members, pass by pass: list them (outside the timing).
    char members[PATH_MAX] = "";
    if (run_tv || run_draft) {
        const char *tmpdir = getenv("TMPDIR");
        snprintf(members, sizeof members, "%s/catlip-bench-data-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
        int fd = mkstemp(members);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) catlip_die("bench data: cannot create the peers' list %s (set TMPDIR, or --no-peer)", members);
        for (int pass = 0; pass < passes; pass++) {
            struct global_order *order = global_order_create(counts, list.count, 1, (uint64_t)pass, 0);
            for (int k = 0; k < count; k++) {
                size_t shard;
                uint64_t local;
                global_order_locate(order, global_order_at(order, (uint64_t)k), &shard, &local);
                const struct shard_sample *s = &ix[shard].samples[local];
                if (s->size[SHARD_PART_IMAGE] != SHARD_PART_ABSENT)
                    fprintf(f, "%d\t%llu\t%lu\t%s\n", pass, (unsigned long long)s->offset[SHARD_PART_IMAGE],
                            (unsigned long)s->size[SHARD_PART_IMAGE], list.paths[shard]);
            }
            global_order_destroy(order);
        }
        if (fclose(f) != 0) catlip_die("bench data: cannot write the peers' list %s", members);
    }
    // Only samples that decoded count: rates are decoded images over the pass's time, the best
    // pass's (wall and CPU time each), the same statistic the peers report.
    long skipped = 0;
    double per_thread = 0, cpu_per_thread = 0;
    for (int pass = 0; pass < passes; pass++) {
        long ok = 0;
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
            else ok++;
        }
        global_order_destroy(order);
        double wall = time_now() - w0, cpu = thread_cpu_seconds() - c0;
        if (wall > 0 && ok / wall > per_thread) per_thread = ok / wall;
        if (cpu > 0 && ok / cpu > cpu_per_thread) cpu_per_thread = ok / cpu;
    }
    printf("catlip, 1 thread, no pipeline: %d samples x %d passes (%ld skipped, not counted) of %dx%d, best pass "
           "%.1f img/s (wall), %.1f img/s per core (CPU time)\n",
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

    // 3. The peers on the same images.
    struct peer_result tv = {-1, -1, -1}, draft = {-1, -1, -1};
    char peer_path[PATH_MAX];
    if ((run_tv || run_draft) && !peer && find_peer(peer_path, sizeof peer_path) == 0) peer = peer_path;
    if ((run_tv || run_draft) && !peer) {
        printf("peer script not found (give --peer bench/data_torchvision.py)\n");
    } else {
        if (run_tv && run_peer(peer, "torchvision", S, members, &tv) != 0)
            printf("torchvision peer failed (is python3-torchvision installed?)\n");
        if (run_draft && run_peer(peer, "pil-draft", S, members, &draft) != 0)
            printf("PIL-draft peer failed (are python3-pil and python3-numpy installed?)\n");
    }
    if (members[0]) unlink(members);
    double speedup = tv.cpu_rate > 0 ? cpu_per_thread / tv.cpu_rate : 0;
    double speedup_draft = draft.cpu_rate > 0 ? cpu_per_thread / draft.cpu_rate : 0;
    if (tv.cpu_rate > 0 || draft.cpu_rate > 0) {
        printf("decode work: catlip decodes only the crop's region, at the largest DCT reduction (1/2, 1/4, 1/8) "
               "that keeps it >= %dx%d (libjpeg region decode + DCT scaling); torchvision's standard stack (PIL "
               "open -> RandomResizedCrop -> flip -> ToTensor -> Normalize) decodes the full image at full size; "
               "PIL-draft decodes the full image at the same DCT scale (Image.draft)\n",
               S, S);
        printf("speed-up per core (CPU time):");
        if (tv.cpu_rate > 0) printf(" %.2fx torchvision (target: >= 3x)%s", speedup, draft.cpu_rate > 0 ? "," : "");
        if (draft.cpu_rate > 0) printf(" %.2fx PIL-draft", speedup_draft);
        printf("\n");
    }

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
            char result[2048];
            if (run_for_result(cmd, 0, result, sizeof result) == 0)
                step_rate = result_value(result, "images_per_second");
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
           "step_images_per_second=%.2f skipped=%ld torchvision_images_per_second=%.2f torchvision_skipped=%ld "
           "pil_draft_images_per_second=%.2f pil_draft_cpu_images_per_second=%.2f pil_draft_skipped=%ld "
           "speedup_pil_draft=%.3f\n",
           per_thread, cpu_per_thread, pipeline_rate, tv.cpu_rate, speedup, step_rate, skipped, tv.wall_rate,
           tv.skipped, draft.wall_rate, draft.cpu_rate, draft.skipped, speedup_draft);
    shardlist_free(&list);
    return 0;
}
