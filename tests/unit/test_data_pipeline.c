// Shard indexes and the prefetching pipeline on shards with every kind of bad data: per-reason
// skip counts, labels, determinism across thread counts and worker counts, epochs, resume,
// missing shards and shutdown.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/pool.h"
#include "data/pipeline.h"
#include "data/shard_index.h"
#include "tests/data/fixtures.h"

static const char *dir;
static char bad_tar[600], good_tar[600];
enum { CLASSES = 5, S = 32 };

// dog = 1, cat = 2, frisbee = 3 (thread-safe: no state).
static int test_label(void *ctx, const char *caption, size_t len, int32_t *out, int max) {
    (void)len;
    int n = 0;
    if (strstr(caption, "dog") && n < max) out[n++] = 1;
    if (strstr(caption, "cat") && n < max) out[n++] = 2;
    if (strstr(caption, "frisbee") && n < max) out[n++] = 3;
    return n;
}

static struct pipeline_options base_options(const char *const *shards, size_t n) {
    struct pipeline_options o = {.shards = shards, .nshards = n, .seed = 99, .global_batch = 8,
                                 .worker = 0, .nworkers = 1, .train = 1, .image_size = S,
                                 .num_classes = CLASSES, .label = test_label, .decode_threads = 2,
                                 .compute_threads = -1};
    return o;
}

static void test_index_of_damaged_shard(void **state) {
    struct shard_index ix;
    assert_int_equal(shard_index_build(bad_tar, &ix), 0);
    assert_int_equal(ix.count, 15);  // k00..k18 less k02, k03, k04, k18
    assert_int_equal(ix.skips[SHARD_SKIP_BAD_HEADER], 1);
    assert_int_equal(ix.skips[SHARD_SKIP_TRUNCATED], 1);
    assert_int_equal(ix.skips[SHARD_SKIP_MISSING_IMAGE], 1);
    assert_int_equal(ix.skips[SHARD_SKIP_MISSING_TEXT], 2);
    assert_int_equal(ix.skips[SHARD_SKIP_EMPTY_IMAGE], 1);
    assert_string_equal(shard_index_key(&ix, 0), "k00");
    assert_string_equal(shard_index_key(&ix, 14), "k17");
    // k16 has .jpg, .json and .txt.
    const struct shard_sample *k16 = &ix.samples[13];
    assert_string_equal(shard_index_key(&ix, 13), "k16");
    assert_true(k16->size[SHARD_PART_JSON] == 2 && k16->size[SHARD_PART_TEXT] == 3);
    assert_string_equal(shard_index_key(&ix, 8), "k11");
    assert_int_equal(ix.samples[8].size[SHARD_PART_CLASS], 2);  // "4\n"

    // Write, read back, detect staleness and damage.
    char path[700];
    snprintf(path, sizeof path, "%s/copy.idx", dir);
    assert_int_equal(shard_index_write(&ix, path), 0);
    struct shard_index back;
    assert_int_equal(shard_index_read(path, bad_tar, &back), 0);
    assert_int_equal(back.count, ix.count);
    assert_memory_equal(back.samples, ix.samples, ix.count * sizeof *ix.samples);
    assert_memory_equal(back.skips, ix.skips, sizeof ix.skips);
    shard_index_free(&back);
    size_t size = 0;
    unsigned char *bytes = fixture_read(path, &size);
    bytes[size / 2] ^= 1;
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, size, f);
    fclose(f);
    free(bytes);
    assert_int_equal(shard_index_read(path, bad_tar, &back), 1);
    assert_non_null(strstr(catlip_error(), "damaged"));
    assert_int_equal(shard_index_write(&ix, path), 0);
    struct timespec times[2] = {{0, UTIME_OMIT}, {1234567, 0}};
    char shard_copy[700], cmd[1500];
    snprintf(shard_copy, sizeof shard_copy, "%s/copy.tar", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", bad_tar, shard_copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(shard_index_build(shard_copy, &back), 0);
    assert_int_equal(shard_index_write(&back, path), 0);
    shard_index_free(&back);
    assert_int_equal(shard_index_read(path, shard_copy, &back), 0);
    shard_index_free(&back);
    assert_int_equal(utimensat(AT_FDCWD, shard_copy, times, 0), 0);  // the shard changed
    assert_int_equal(shard_index_read(path, shard_copy, &back), 1);
    assert_non_null(strstr(catlip_error(), "stale"));
    shard_index_free(&ix);
}

// When the index cannot go beside the shard, it goes to the cache folder and is found there.
static void test_index_cache_when_beside_is_unwritable(void **state) {
    char shard[700], beside[710], cache[700], cmd[2000];
    snprintf(shard, sizeof shard, "%s/ro.tar", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", good_tar, shard);
    assert_int_equal(system(cmd), 0);
    // A folder where the index file would go: writing it fails even for root.
    shard_index_path_beside(shard, beside, sizeof beside);
    assert_int_equal(mkdir(beside, 0755), 0);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    struct shard_index ix;
    int built;
    assert_int_equal(shard_index_load(shard, cache, &ix, &built), 0);
    assert_int_equal(built, 1);
    assert_int_equal(ix.count, 40);
    shard_index_free(&ix);
    char cached[800];
    assert_int_equal(shard_index_path_cached(shard, cache, cached, sizeof cached), 0);
    assert_int_equal(access(cached, R_OK), 0);
    assert_int_equal(shard_index_load(shard, cache, &ix, &built), 0);
    assert_int_equal(built, 0);  // read from the cache, not rebuilt
    assert_int_equal(ix.count, 40);
    shard_index_free(&ix);
}

static void test_every_bad_case_is_skipped_and_counted(void **state) {
    const char *shards[] = {bad_tar};
    struct pipeline_options o = base_options(shards, 1);
    o.train = 0;  // one pass in file order
    o.global_batch = 4;
    struct pipeline *p = pipeline_create(&o);
    assert_non_null(p);
    assert_int_equal(pipeline_samples(p), 15);
    // Rows kept, in order, with their expected labels (bit c = class c).
    const int expect_labels[] = {1 << 1, (1 << 2) | (1 << 3), 1 << 4, 1 << 1, 1 << 2, 1 << 1, 1 << 1};
    int rows = 0;
    struct batch b;
    while (pipeline_next(p, &b) == 1) {
        assert_true(b.count <= b.slice_size);
        for (int r = 0; r < b.count; r++, rows++) {
            assert_true(rows < 7);
            int bits = 0;
            for (int c = 0; c < CLASSES; c++) {
                float t = b.targets[(size_t)r * CLASSES + c];
                assert_true(t == 0.0f || t == 1.0f);
                if (t == 1.0f) bits |= 1 << c;
            }
            assert_int_equal(bits, expect_labels[rows]);
            // A real image, not zeros: normalised values spread out.
            float lo = 1e9f, hi = -1e9f;
            for (int i = 0; i < 3 * S * S; i++) {
                float v = b.images[(size_t)r * 3 * S * S + i];
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            assert_true(hi - lo > 0.5f);
        }
    }
    assert_int_equal(rows, 7);
    // The counts per reason, as tests/data/make_fixtures.py documents them.
    char path[700];
    snprintf(path, sizeof path, "%s/shard.expect", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    uint64_t counts[PIPELINE_SKIP_COUNT];
    pipeline_skips(p, counts);
    char name[64];
    unsigned long long n;
    int checked = 0;
    while (fscanf(f, "%63s %llu", name, &n) == 2) {
        if (!strcmp(name, "ok")) continue;
        int found = 0;
        for (int k = 0; k < PIPELINE_SKIP_COUNT; k++)
            if (!strcmp(pipeline_skip_names[k], name)) {
                if (counts[k] != n) fprintf(stderr, "%s: %llu, expected %llu\n", name, (unsigned long long)counts[k], n);
                assert_int_equal(counts[k], n);
                found = 1;
                checked++;
            }
        assert_true(found);
    }
    fclose(f);
    assert_int_equal(checked, 10);
    char line[512];
    pipeline_format_skips(p, line, sizeof line);
    assert_non_null(strstr(line, "no_synset=1"));
    assert_non_null(strstr(line, "bad_image=2"));
    pipeline_destroy(p);
}

struct run {
    float *images, *targets;
    uint64_t *samples;
    int *counts;
};

static struct run collect(const struct pipeline_options *o, int batches) {
    struct run r;
    size_t per = o->global_batch;
    r.images = calloc((size_t)batches * per * 3 * S * S, sizeof(float));
    r.targets = calloc((size_t)batches * per * CLASSES, sizeof(float));
    r.samples = calloc((size_t)batches * per, sizeof(uint64_t));
    r.counts = calloc((size_t)batches, sizeof(int));
    struct pipeline_options copy = *o;
    copy.max_batches = (uint64_t)batches;
    struct pipeline *p = pipeline_create(&copy);
    assert_non_null(p);
    struct batch b;
    int k = 0;
    while (pipeline_next(p, &b) == 1) {
        assert_int_equal(b.step, o->start_step + (uint64_t)k);
        r.counts[k] = b.count;
        memcpy(r.images + (size_t)k * per * 3 * S * S, b.images, (size_t)b.count * 3 * S * S * sizeof(float));
        memcpy(r.targets + (size_t)k * per * CLASSES, b.targets, (size_t)b.count * CLASSES * sizeof(float));
        memcpy(r.samples + (size_t)k * per, b.samples, (size_t)b.count * sizeof(uint64_t));
        k++;
    }
    assert_int_equal(k, batches);
    pipeline_destroy(p);
    return r;
}

static void free_run(struct run *r) {
    free(r->images);
    free(r->targets);
    free(r->samples);
    free(r->counts);
}

static void test_deterministic_across_threads_workers_and_resume(void **state) {
    const char *shards[] = {good_tar};
    struct pipeline_options o = base_options(shards, 1);
    const int B = 10;  // two epochs of 5 batches of 8 (40 samples)
    o.decode_threads = 1;
    o.ring_depth = 1;
    struct run one = collect(&o, B);
    o.decode_threads = 3;
    o.ring_depth = 4;
    struct run three = collect(&o, B);
    size_t per = o.global_batch;
    assert_memory_equal(one.samples, three.samples, B * per * sizeof(uint64_t));
    assert_memory_equal(one.images, three.images, B * per * 3 * S * S * sizeof(float));
    assert_memory_equal(one.targets, three.targets, B * per * CLASSES * sizeof(float));
    // Each epoch covers all 40 samples once, in different orders.
    for (int e = 0; e < 2; e++) {
        char seen[40] = {0};
        for (int i = 0; i < 40; i++) {
            assert_int_equal(one.counts[e * 5 + i / 8], 8);
            uint64_t s = one.samples[(size_t)e * 40 + i];
            assert_true(s < 40 && !seen[s]);
            seen[s] = 1;
        }
    }
    assert_true(memcmp(one.samples, one.samples + 40, 40 * sizeof(uint64_t)) != 0);
    // Two workers: their slices, concatenated, are the one-worker batches.
    o.nworkers = 2;
    for (int w = 0; w < 2; w++) {
        o.worker = w;
        struct run part = collect(&o, B);
        for (int k = 0; k < B; k++) {
            assert_int_equal(part.counts[k], 4);
            size_t at = (size_t)k * per + (size_t)w * 4;
            assert_memory_equal(part.samples + (size_t)k * per, one.samples + at, 4 * sizeof(uint64_t));
            assert_memory_equal(part.images + (size_t)k * per * 3 * S * S, one.images + at * 3 * S * S,
                                4 * 3 * S * S * sizeof(float));
        }
        free_run(&part);
    }
    // Resuming at step 3 gives steps 3.. of the uninterrupted run.
    o.nworkers = 1;
    o.worker = 0;
    o.start_step = 3;
    struct run resumed = collect(&o, B - 3);
    assert_memory_equal(resumed.samples, one.samples + 3 * per, (B - 3) * per * sizeof(uint64_t));
    assert_memory_equal(resumed.images, one.images + 3 * per * 3 * S * S, (B - 3) * per * 3 * S * S * sizeof(float));
    free_run(&resumed);
    free_run(&one);
    free_run(&three);
}

// A step's slice in micro-batches: the batches of one step, concatenated, are the unsplit
// slice, row for row and pixel for pixel (the memory of a micro-batch, the samples of a step).
static void check_micro_batches(struct pipeline_options o, const struct run *whole, int steps,
                                int micro) {
    size_t per = o.global_batch;
    int slice = (int)per / o.nworkers, micros = (slice + micro - 1) / micro;
    o.micro_batch = micro;
    o.max_batches = (uint64_t)(steps - (int)o.start_step);
    struct pipeline *p = pipeline_create(&o);
    assert_non_null(p);
    struct batch b;
    for (int k = (int)o.start_step; k < steps; k++) {
        for (int m = 0; m < micros; m++) {
            assert_int_equal(pipeline_next(p, &b), 1);
            assert_int_equal(b.step, (uint64_t)k);
            assert_int_equal(b.micro, m);
            assert_int_equal(b.micros, micros);
            int rows = slice - m * micro < micro ? slice - m * micro : micro;
            assert_int_equal(b.count, rows);
            size_t at = (size_t)k * per + (size_t)o.worker * (size_t)slice + (size_t)m * micro;
            assert_memory_equal(b.samples, whole->samples + at, (size_t)rows * sizeof(uint64_t));
            assert_memory_equal(b.images, whole->images + at * 3 * S * S,
                                (size_t)rows * 3 * S * S * sizeof(float));
            assert_memory_equal(b.targets, whole->targets + at * CLASSES,
                                (size_t)rows * CLASSES * sizeof(float));
        }
    }
    assert_int_equal(pipeline_next(p, &b), 0);
    pipeline_destroy(p);
}

static void test_micro_batches_split_the_slice(void **state) {
    const char *shards[] = {good_tar};
    struct pipeline_options o = base_options(shards, 1);
    const int B = 7;
    struct run whole = collect(&o, B);
    o.decode_threads = 2;
    check_micro_batches(o, &whole, B, 3);  // 3 + 3 + 2
    check_micro_batches(o, &whole, B, 1);
    o.start_step = 4;  // resumed mid-run
    check_micro_batches(o, &whole, B, 5);
    o.start_step = 0;
    o.nworkers = 2;
    for (o.worker = 0; o.worker < 2; o.worker++) check_micro_batches(o, &whole, B, 3);  // 3 + 1
    free_run(&whole);
    o = base_options(shards, 1);
    o.micro_batch = -1;
    assert_null(pipeline_create(&o));
}

static void test_missing_shards_and_bad_options(void **state) {
    const char *shards[] = {good_tar, "/nonexistent/00001.tar"};
    struct pipeline_options o = base_options(shards, 2);
    assert_null(pipeline_create(&o));
    assert_non_null(strstr(catlip_error(), "/nonexistent/00001.tar"));
    o.skip_missing_shards = 1;
    struct pipeline *p = pipeline_create(&o);
    assert_non_null(p);
    uint64_t counts[PIPELINE_SKIP_COUNT];
    pipeline_skips(p, counts);
    assert_int_equal(counts[PIPELINE_SKIP_MISSING_SHARD], 1);
    struct batch b;
    assert_int_equal(pipeline_next(p, &b), 1);
    assert_int_equal(b.count, 8);
    pipeline_destroy(p);  // stops threads blocked on a full ring
    o.nshards = 1;
    o.skip_missing_shards = 0;
    o.global_batch = 41;  // more than the 40 samples
    assert_null(pipeline_create(&o));
    assert_non_null(strstr(catlip_error(), "fewer than one global batch"));
    o.global_batch = 8;
    o.nworkers = 9;
    o.worker = 0;
    assert_null(pipeline_create(&o));
}

// Decode threads sit on the cores after the compute pool's when there are enough of them.
static void test_decode_threads_avoid_compute_cores(void **state) {
    const char *shards[] = {good_tar};
    struct pipeline_options o = base_options(shards, 1);
    o.decode_threads = 1;
    o.compute_threads = 1;
    struct pipeline *p = pipeline_create(&o);
    assert_non_null(p);
    if (pool_available_cores() >= 2)
        assert_non_null(strstr(pipeline_describe(p), "bound to PUs"));
    else
        assert_non_null(strstr(pipeline_describe(p), "unbound"));
    pipeline_destroy(p);
    o.compute_threads = pool_available_cores();  // no core left over: not bound
    p = pipeline_create(&o);
    assert_non_null(strstr(pipeline_describe(p), "unbound"));
    pipeline_destroy(p);
}

static void test_destroy_without_consuming(void **state) {
    const char *shards[] = {good_tar};
    struct pipeline_options o = base_options(shards, 1);
    o.decode_threads = 4;
    for (int i = 0; i < 5; i++) {
        struct pipeline *p = pipeline_create(&o);
        assert_non_null(p);
        if (i % 2) usleep(20000);  // let the ring fill
        pipeline_destroy(p);
    }
}

int main(void) {
    dir = fixture_make("shard");
    if (!dir) {
        fprintf(stderr, "cannot make shard fixtures (needs /usr/bin/python3 with PIL)\n");
        return 1;
    }
    snprintf(bad_tar, sizeof bad_tar, "%s/bad.tar", dir);
    snprintf(good_tar, sizeof good_tar, "%s/good.tar", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_of_damaged_shard),
        cmocka_unit_test(test_index_cache_when_beside_is_unwritable),
        cmocka_unit_test(test_every_bad_case_is_skipped_and_counted),
        cmocka_unit_test(test_deterministic_across_threads_workers_and_resume),
        cmocka_unit_test(test_micro_batches_split_the_slice),
        cmocka_unit_test(test_missing_shards_and_bad_options),
        cmocka_unit_test(test_decode_threads_avoid_compute_cores),
        cmocka_unit_test(test_destroy_without_consuming),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fixture_cleanup();
    return failed;
}
