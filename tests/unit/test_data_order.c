// Global sample order invariants: a permutation, independent of the worker count, different
// across epochs and seeds, reproducible, shard-local; worker slices tile the batch.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "data/order.h"

static const uint64_t counts[] = {100, 0, 37, 250, 1, 64, 0, 180};
#define NSHARDS (sizeof counts / sizeof counts[0])
#define TOTAL 632

static void test_is_a_permutation(void **state) {
    uint64_t *order = malloc(TOTAL * sizeof *order);
    char *seen = calloc(TOTAL, 1);
    for (uint64_t epoch = 0; epoch < 3; epoch++) {
        memset(seen, 0, TOTAL);
        plan_global_order(counts, NSHARDS, 42, epoch, 50, order);
        for (int i = 0; i < TOTAL; i++) {
            assert_true(order[i] < TOTAL);
            assert_int_equal(seen[order[i]], 0);
            seen[order[i]] = 1;
        }
    }
    free(order);
    free(seen);
}

static void test_reproducible_and_varies_with_epoch_and_seed(void **state) {
    uint64_t *a = malloc(TOTAL * sizeof *a), *b = malloc(TOTAL * sizeof *b);
    plan_global_order(counts, NSHARDS, 7, 3, 0, a);
    plan_global_order(counts, NSHARDS, 7, 3, 0, b);
    assert_memory_equal(a, b, TOTAL * sizeof *a);
    plan_global_order(counts, NSHARDS, 7, 4, 0, b);
    int differ = 0;
    for (int i = 0; i < TOTAL; i++) differ += a[i] != b[i];
    assert_true(differ > TOTAL / 2);
    plan_global_order(counts, NSHARDS, 8, 3, 0, b);
    differ = 0;
    for (int i = 0; i < TOTAL; i++) differ += a[i] != b[i];
    assert_true(differ > TOTAL / 2);
    free(a);
    free(b);
}

// Concatenating the worker slices of every global batch gives the same sequence for any N.
static void test_worker_count_does_not_change_the_order(void **state) {
    const uint64_t G = 24;
    uint64_t *ref = malloc(TOTAL * sizeof *ref);
    plan_global_order(counts, NSHARDS, 1, 2, 64, ref);
    for (int N = 1; N <= 7; N++) {
        uint64_t pos = 0;
        for (uint64_t b = 0; b < plan_batches_per_epoch(TOTAL, G); b++) {
            uint64_t expect_begin = 0;
            for (int w = 0; w < N; w++) {
                uint64_t begin, end;
                plan_worker_slice(G, w, N, &begin, &end);
                assert_int_equal(begin, expect_begin);  // contiguous, in worker order
                assert_true(end - begin == G / N || end - begin == G / N + 1);
                expect_begin = end;
                // Each worker resolves positions with its own order object.
                struct global_order *o = global_order_create(counts, NSHARDS, 1, 2, 64);
                for (uint64_t i = begin; i < end; i++) assert_int_equal(global_order_at(o, b * G + i), ref[pos++]);
                global_order_destroy(o);
            }
            assert_int_equal(expect_begin, G);
        }
        assert_int_equal(pos, plan_batches_per_epoch(TOTAL, G) * G);
    }
    free(ref);
}

// Shard-local: a window of the order touches few shards, and locate() inverts the numbering.
static void test_locality_and_locate(void **state) {
    const uint64_t window = 40;
    struct global_order *o = global_order_create(counts, NSHARDS, 5, 0, window);
    assert_int_equal(global_order_count(o), TOTAL);
    for (uint64_t w0 = 0; w0 < TOTAL; w0 += window) {
        int touched[NSHARDS] = {0}, n = 0;
        for (uint64_t p = w0; p < w0 + window && p < TOTAL; p++) {
            size_t shard;
            uint64_t local;
            uint64_t s = global_order_at(o, p);
            global_order_locate(o, s, &shard, &local);
            assert_true(counts[shard] > 0 && local < counts[shard]);
            if (!touched[shard]++) n++;
        }
        assert_true(n <= 3);  // a 40-sample window spans at most a few shards here
    }
    // locate: global index = prefix of the shard + local index.
    size_t shard;
    uint64_t local;
    global_order_locate(o, 0, &shard, &local);
    assert_int_equal(shard, 0);
    global_order_locate(o, 100, &shard, &local);  // shard 1 is empty: 100 is shard 2's first
    assert_int_equal(shard, 2);
    assert_int_equal(local, 0);
    global_order_locate(o, TOTAL - 1, &shard, &local);
    assert_int_equal(shard, 7);
    assert_int_equal(local, 179);
    global_order_destroy(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_a_permutation),
        cmocka_unit_test(test_reproducible_and_varies_with_epoch_and_seed),
        cmocka_unit_test(test_worker_count_does_not_change_the_order),
        cmocka_unit_test(test_locality_and_locate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
