// gemm_bf16 (nn/gemm.h) against a double-precision multiply of the bf16-rounded inputs, and the
// fp32 -> bf16 rounding (nn/bf16.h) against the AVX512-BF16 conversion instructions.
//
// - Paths (ctest unit.test_gemm_bf16.<path>): `emulated` (any CPU) and `avx512_bf16` (a counted
//   skip on a CPU without it, or with CATLIP_CPU_DISABLE=avx512_bf16).
// - Shapes: all four transpose combinations over (M, N, K) from {0, 1, 2, 7, 13, 31, 33, 64,
//   100, 197, 257}^3 with M*N*K <= 1e6 (odd K included: a pair with a zero partner), alpha in
//   {1, 0.5}, beta in {0, 1, -0.3}; past the cache blocks (K = 1000 and 1001 over two k blocks,
//   M over several A blocks, N over a column panel); the ViT's own shapes (vit_tiny at batch 32
//   per thread of 2, attention on strided qkv views). Every operand combination (fp32 rounded
//   while packing, bf16 given) is used, rotating with the problem.
// - Tolerance: |C - C_ref| <= (K + 4) * 2^-24 * (|alpha| * sum_k |a_ik b_kj| + |beta C0_ij|)
//   where a, b are the bf16-rounded inputs: products of bf16 values are exact in fp32, so what
//   is left is the fp32 rounding of a length-K sum — the same bound test_gemm holds fp32 to. A
//   wrong pair, a missed zero partner or an unrounded input is far outside it.
// - Matrices start one float past malloc's alignment and end at the end of their allocation;
//   beta == 0 runs on C full of NaN; C's padding columns must be left alone.
// - Threads: the same product split by rows over 1, 2 and 3 concurrent threads, or by columns
//   over 2, gives the same bits as one call (the result of an element does not depend on the
//   block it falls in).
// - Emulation against AVX512-BF16: the same problems within twice the bound above.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "cpu_require.h"

#define ULP (1.0 / 16777216.0)  // 2^-24
#define SENTINEL 12345.0f

static int printed;  // mismatches printed so far (the first 10 of the program)

// ---------------------------------------------------------------------------------------------
// Matrices: fp32 values, their bf16 copy (same leading dimension) and the rounded values.

struct matrix {
    void *allocation, *allocation_h;
    float *data;
    uint16_t *half;
    int rows, cols, ld;
    long count;
};

static struct matrix matrix_new(int rows, int cols, int ld) {
    struct matrix m = {0};
    m.rows = rows, m.cols = cols, m.ld = ld;
    m.count = rows > 0 && cols > 0 ? (long)(rows - 1) * ld + cols : 0;
    m.allocation = xmalloc(((size_t)m.count + 1) * sizeof(float));
    m.data = (float *)m.allocation + 1;
    m.allocation_h = xmalloc(((size_t)m.count + 1) * sizeof(uint16_t));
    m.half = (uint16_t *)m.allocation_h + 1;
    return m;
}

static void matrix_free(struct matrix *m) {
    free(m->allocation), free(m->allocation_h);
}

static void matrix_fill(struct matrix *m, uint64_t seed) {
    struct rng r;
    rng_init(&r, seed);
    for (long i = 0; i < m->count; i++) {
        m->data[i] = 2.0f * rng_uniform(&r) - 1.0f;
        m->half[i] = bf16_from_float(m->data[i]);
    }
}

static double op_at(const struct matrix *m, int trans, int i, int k) {
    return bf16_to_float(trans ? m->half[(long)k * m->ld + i] : m->half[(long)i * m->ld + k]);
}

// ---------------------------------------------------------------------------------------------

struct problem {
    int trans_a, trans_b, M, N, K, pad_a, pad_b, pad_c;
    float alpha, beta;
    int row_step;
};

static int checked_row(const struct problem *p, int i) {
    return p->row_step <= 1 || i < 16 || i >= p->M - 16 || i % p->row_step == 0;
}

// Runs fn (operands as `elems`: bit 0 A is bf16, bit 1 B is bf16); returns entries out of
// tolerance. When `other` is not NULL the same problem also runs through it, and the two results
// must agree within twice the tolerance.
static int run_problem(gemm_bf16_fn fn, gemm_bf16_fn other, const struct problem *p, uint64_t seed,
                       int elems) {
    int rows_a = p->trans_a ? p->K : p->M, cols_a = p->trans_a ? p->M : p->K;
    int rows_b = p->trans_b ? p->N : p->K, cols_b = p->trans_b ? p->K : p->N;
    struct matrix a = matrix_new(rows_a, cols_a, cols_a + p->pad_a);
    struct matrix b = matrix_new(rows_b, cols_b, cols_b + p->pad_b);
    struct matrix c = matrix_new(p->M, p->N, p->N + p->pad_c);
    matrix_fill(&a, rng_key(seed, 1, 0, 0));
    matrix_fill(&b, rng_key(seed, 2, 0, 0));
    matrix_fill(&c, rng_key(seed, 3, 0, 0));
    for (int i = 0; i < p->M; i++)
        for (int j = p->N; j < c.ld && (long)i * c.ld + j < c.count; j++)
            c.data[(long)i * c.ld + j] = SENTINEL;
    size_t cbytes = ((size_t)c.count + 1) * sizeof(float);
    float *c0 = xmalloc(cbytes), *c2 = xmalloc(cbytes);
    if (c.count) memcpy(c0, c.data, (size_t)c.count * sizeof(float));
    if (p->beta == 0.0f)
        for (int i = 0; i < p->M; i++)
            for (int j = 0; j < p->N; j++) c.data[(long)i * c.ld + j] = NAN;
    if (c.count) memcpy(c2, c.data, (size_t)c.count * sizeof(float));

    enum gemm_elem ea = elems & 1 ? GEMM_BF16 : GEMM_F32, eb = elems & 2 ? GEMM_BF16 : GEMM_F32;
    const void *pa = ea == GEMM_BF16 ? (const void *)a.half : a.data;
    const void *pb = eb == GEMM_BF16 ? (const void *)b.half : b.data;
    fn(p->trans_a, p->trans_b, p->M, p->N, p->K, p->alpha, pa, ea, a.ld, pb, eb, b.ld, p->beta,
       c.data, c.ld);
    if (other)
        other(p->trans_a, p->trans_b, p->M, p->N, p->K, p->alpha, pa, ea, a.ld, pb, eb, b.ld,
              p->beta, c2, c.ld);

    int bad = 0;
    double *sum = xcalloc((size_t)p->N + 1, sizeof(double)),
           *abs_sum = xcalloc((size_t)p->N + 1, sizeof(double));
    for (int i = 0; i < p->M; i++) {
        for (int j = p->N; j < c.ld && (long)i * c.ld + j < c.count; j++)
            if (c.data[(long)i * c.ld + j] != SENTINEL && bad++ >= 0 && printed++ < 10)
                print_error("C[%d][%d] (padding past N=%d) was written\n", i, j, p->N);
        if (!checked_row(p, i)) continue;
        for (int j = 0; j < p->N; j++) sum[j] = abs_sum[j] = 0;
        for (int k = 0; k < p->K; k++) {
            double x = op_at(&a, p->trans_a, i, k);
            for (int j = 0; j < p->N; j++) {
                double y = op_at(&b, p->trans_b, k, j);
                sum[j] += x * y;
                abs_sum[j] += fabs(x * y);
            }
        }
        for (int j = 0; j < p->N; j++) {
            double c_old = p->beta == 0.0f ? 0.0 : (double)c0[(long)i * c.ld + j];
            double want = p->alpha * sum[j] + p->beta * c_old;
            double tol = (p->K + 4) * ULP * (fabs(p->alpha) * abs_sum[j] + fabs(p->beta * c_old));
            double got = c.data[(long)i * c.ld + j];
            if (!(fabs(got - want) <= tol) && bad++ >= 0 && printed++ < 10)
                print_error(
                    "%s%s M=%d N=%d K=%d alpha=%g beta=%g elems=%d: C[%d][%d] = %.9g, "
                    "want %.9g (tol %.3g)\n",
                    p->trans_a ? "T" : "N", p->trans_b ? "T" : "N", p->M, p->N, p->K, p->alpha,
                    p->beta, elems, i, j, got, want, tol);
            if (other) {
                double got2 = c2[(long)i * c.ld + j];
                if (!(fabs(got2 - got) <= 2 * tol) && bad++ >= 0 && printed++ < 10)
                    print_error("M=%d N=%d K=%d: C[%d][%d] = %.9g here, %.9g on the other path\n",
                                p->M, p->N, p->K, i, j, got, got2);
            }
        }
    }
    free(sum), free(abs_sum), free(c0), free(c2);
    matrix_free(&a), matrix_free(&b), matrix_free(&c);
    return bad;
}

static const int sizes[] = {0, 1, 2, 7, 13, 31, 33, 64, 100, 197, 257};
static const float alphas[] = {1.0f, 0.5f};
static const float betas[] = {0.0f, 1.0f, -0.3f};

static int sweep_sizes(gemm_bf16_fn fn, gemm_bf16_fn other) {
    int n = (int)(sizeof sizes / sizeof sizes[0]), bad = 0, index = 0;
    for (int t = 0; t < 4; t++)
        for (int mi = 0; mi < n; mi++)
            for (int ni = 0; ni < n; ni++)
                for (int ki = 0; ki < n; ki++, index++) {
                    int M = sizes[mi], N = sizes[ni], K = sizes[ki];
                    if ((double)M * N * K > 1e6) continue;
                    struct problem p = {t >> 1,
                                        t & 1,
                                        M,
                                        N,
                                        K,
                                        index % 3,
                                        (index / 3) % 3,
                                        (index / 9) % 4,
                                        alphas[index % 2],
                                        betas[(index / 2) % 3],
                                        1};
                    bad += run_problem(fn, other, &p, (uint64_t)index, index % 4);
                }
    return bad;
}

static int sweep_blocks(gemm_bf16_fn fn, gemm_bf16_fn other) {
    static const int shapes[][3] = {
        {30, 40, 1000}, {29, 33, 1001}, {700, 45, 50}, {20, 3100, 31}, {29, 33, 385}};
    int bad = 0, index = 0;
    for (int s = 0; s < 5; s++)
        for (int t = 0; t < 4; t++)
            for (int ab = 0; ab < 6; ab++, index++) {
                struct problem p = {t >> 1,
                                    t & 1,
                                    shapes[s][0],
                                    shapes[s][1],
                                    shapes[s][2],
                                    3,
                                    1,
                                    5,
                                    alphas[ab % 2],
                                    betas[ab / 2],
                                    1};
                bad += run_problem(fn, other, &p, 1000u + (uint64_t)index, index % 4);
            }
    return bad;
}

static int sweep_vit(gemm_bf16_fn fn, gemm_bf16_fn other) {
    static const struct problem shapes[] = {
        {0, 1, 3152, 576, 192, 0, 0, 0, 1, 0, 97},        // forward qkv
        {0, 1, 3152, 192, 768, 0, 0, 0, 1, 0, 97},        // forward fc2
        {0, 1, 6272, 192, 768, 0, 0, 0, 1, 0, 197},       // patch embedding (B*N rows, K 3*16*16)
        {0, 1, 32, 12160, 192, 0, 0, 0, 1, 0, 1},         // head
        {0, 0, 3152, 192, 576, 0, 0, 0, 1, 1, 97},        // dinp += dout · W
        {0, 0, 3152, 768, 192, 0, 0, 0, 1, 0, 97},        // dinp = dout · W
        {1, 0, 288, 192, 6304, 288, 0, 0, 1, 1, 7},       // dW += doutᵀ · inp, OC split in 2
        {1, 0, 12160, 192, 32, 12160, 0, 0, 1, 1, 97},    // head dW
        {0, 1, 197, 197, 64, 512, 512, 0, 0.125f, 0, 1},  // attention q · kᵀ (qkv rows of 576)
        {0, 0, 197, 64, 197, 0, 512, 128, 1, 0, 1},       // P · v, out rows of 192
        {1, 0, 197, 64, 197, 0, 128, 512, 1, 0, 1},       // Pᵀ · dy into dqkv
        {0, 0, 197, 64, 197, 0, 512, 512, 1, 0, 1},       // dS · k
    };
    int bad = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        bad += run_problem(fn, other, &shapes[s], 5000u + (uint64_t)s, s % 4);
    return bad;
}

static void check_backend(gemm_bf16_fn fn) {
    int bad = sweep_sizes(fn, NULL);
    bad += sweep_blocks(fn, NULL);
    bad += sweep_vit(fn, NULL);
    assert_int_equal(bad, 0);
}

static void test_emulated_matches_reference(void **state) {
    (void)state;
    if (!test_path_selected("emulated")) skip();
    check_backend(gemm_bf16_emulated);
}

static void test_avx512_bf16_matches_reference(void **state) {
    (void)state;
    if (!test_path_selected("avx512_bf16")) skip();
    REQUIRE_CPU(CPU_AVX512_BF16);
    check_backend(gemm_bf16_avx512);
}

static void test_emulated_matches_avx512_bf16(void **state) {
    (void)state;
    if (!test_path_selected("avx512_bf16")) skip();
    REQUIRE_CPU(CPU_AVX512_BF16);
    assert_int_equal(sweep_blocks(gemm_bf16_avx512, gemm_bf16_emulated), 0);
    assert_int_equal(sweep_vit(gemm_bf16_avx512, gemm_bf16_emulated), 0);
}

static void test_dispatch(void **state) {
    (void)state;
    assert_string_equal(gemm_bf16_backend(), cpu_has(CPU_AVX512_BF16) ? "avx512_bf16" : "emulated");
}

// ---------------------------------------------------------------------------------------------
// Rounding: known values, then the scalar rounding against VCVTNEPS2BF16 on every kind of input.

static float float_of(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void test_rounding_known_values(void **state) {
    (void)state;
    assert_int_equal(bf16_from_float(1.0f), 0x3f80);
    assert_int_equal(bf16_from_float(float_of(0x3f808000u)), 0x3f80);  // tie, even stays
    assert_int_equal(bf16_from_float(float_of(0x3f818000u)), 0x3f82);  // tie, odd rounds up
    assert_int_equal(bf16_from_float(float_of(0x3f808001u)), 0x3f81);  // above the tie
    assert_int_equal(bf16_from_float(float_of(0xbf807fffu)), 0xbf80);  // below the tie
    assert_int_equal(bf16_from_float(float_of(0x7f7fffffu)), 0x7f80);  // max float -> inf
    assert_int_equal(bf16_from_float(INFINITY), 0x7f80);
    assert_int_equal(bf16_from_float(-INFINITY), 0xff80);
    assert_int_equal(bf16_from_float(float_of(0x00400000u)), 0x0000);           // denormal -> +0
    assert_int_equal(bf16_from_float(float_of(0x80000001u)), 0x8000);           // denormal -> -0
    assert_true(isnan(bf16_to_float(bf16_from_float(float_of(0x7f800001u)))));  // sNaN stays NaN
    assert_true(isnan(bf16_to_float(bf16_from_float(float_of(0xffffffffu)))));
}

static void test_rounding_matches_hardware(void **state) {
    (void)state;
    if (!test_path_selected("avx512_bf16")) skip();
    REQUIRE_CPU(CPU_AVX512_BF16);
    enum { COUNT = 1 << 20 };
    float *x = xmalloc(COUNT * sizeof(float));
    uint16_t *got = xmalloc(COUNT * sizeof(uint16_t));
    struct rng r;
    rng_init(&r, 4242);
    // Random bit patterns (every exponent, NaNs and denormals included), then ties and
    // near-ties of random values, then the specials.
    for (int i = 0; i < COUNT; i++) {
        uint32_t bits = (uint32_t)rng_u64(&r);
        if (i % 4 == 1) bits = (bits & 0xffff0000u) | 0x8000u;
        if (i % 4 == 2) bits = (bits & 0xffff0000u) | (0x7ffeu + (bits & 3u));
        if (i % 4 == 3) bits &= 0x807fffffu;  // zero exponent: zeros and denormals
        x[i] = float_of(bits);
    }
    x[0] = INFINITY, x[4] = -INFINITY, x[8] = float_of(0x7f7fffffu), x[12] = 0.0f;
    bf16_from_floats_avx512(got, x, COUNT - 3);  // a masked tail too
    bf16_from_floats_avx512(got + COUNT - 3, x + COUNT - 3, 3);
    int bad = 0;
    for (int i = 0; i < COUNT; i++) {
        uint16_t want = bf16_from_float(x[i]);
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        int both_nan = isnan(bf16_to_float(want)) && isnan(bf16_to_float(got[i]));
        if (got[i] != want && !both_nan && bad++ >= 0 && printed++ < 10)
            print_error("x = 0x%08x: hardware 0x%04x, scalar 0x%04x\n", bits, got[i], want);
    }
    free(x), free(got);
    assert_int_equal(bad, 0);
}

// ---------------------------------------------------------------------------------------------
// Threads: a product split over threads (as matmul.c splits it) == one call, bit for bit.

struct split_call {
    int rows;  // split rows (1) or columns (0)
    int begin, end, M, N, K;
    const float *a;
    const uint16_t *b;
    float *c;
};

// A bf16 A along k (even K and leading dimension, 4-byte aligned) is read in place instead of
// packed: it must give the very bits of the packed path, here reached with the same values as
// fp32 (rounded while packed, to themselves). Shapes cross every blocking: several mc blocks
// of rows, k blocks (K > 512), column tails, beta 0 and 1.
static void test_bf16_a_in_place_matches_packed(void **state) {
    (void)state;
    if (!test_path_selected("avx512_bf16")) skip();
    static const int shapes[][3] = {{397, 70, 1100}, {14, 32, 2}, {29, 600, 192}, {1, 17, 768},
                                    {345, 33, 64}};
    for (size_t n = 0; n < sizeof shapes / sizeof shapes[0]; n++) {
        const int M = shapes[n][0], N = shapes[n][1], K = shapes[n][2], lda = K + 6;
        uint16_t *ah = xmalloc((size_t)M * lda * sizeof(uint16_t));
        float *af = xmalloc((size_t)M * lda * sizeof(float)), *b = xmalloc((size_t)N * K * 4);
        float *c1 = xmalloc((size_t)M * N * 4), *c2 = xmalloc((size_t)M * N * 4);
        struct rng r;
        rng_init(&r, rng_key(77, n, 0, 0));
        for (long i = 0; i < (long)M * lda; i++) {
            ah[i] = bf16_from_float(rng_uniform(&r) * 2.0f - 1.0f);
            af[i] = bf16_to_float(ah[i]);
        }
        for (long i = 0; i < (long)N * K; i++) b[i] = rng_uniform(&r) * 2.0f - 1.0f;
        for (int beta = 0; beta <= 1; beta++) {
            for (long i = 0; i < (long)M * N; i++) c1[i] = c2[i] = 0.25f * (float)(i % 7);
            gemm_bf16_avx512(0, 1, M, N, K, 0.5f, ah, GEMM_BF16, lda, b, GEMM_F32, K,
                             (float)beta, c1, N);
            gemm_bf16_avx512(0, 1, M, N, K, 0.5f, af, GEMM_F32, lda, b, GEMM_F32, K,
                             (float)beta, c2, N);
            if (memcmp(c1, c2, (size_t)M * N * sizeof(float)) != 0)
                fail_msg("M=%d N=%d K=%d beta=%d: in-place bf16 A differs from packed", M, N,
                         K, beta);
        }
        free(ah), free(af), free(b), free(c1), free(c2);
    }
}

static void *split_thread(void *arg) {
    struct split_call *s = arg;
    if (s->rows)
        gemm_bf16(0, 1, s->end - s->begin, s->N, s->K, 1.0f, s->a + (long)s->begin * s->K, GEMM_F32,
                  s->K, s->b, GEMM_BF16, s->K, 0.0f, s->c + (long)s->begin * s->N, s->N);
    else
        gemm_bf16(0, 1, s->M, s->end - s->begin, s->K, 1.0f, s->a, GEMM_F32, s->K,
                  s->b + (long)s->begin * s->K, GEMM_BF16, s->K, 0.0f, s->c + s->begin, s->N);
    return NULL;
}

static void test_thread_splits_match_one_call(void **state) {
    (void)state;
    const int M = 700, N = 200, K = 195;
    struct matrix a = matrix_new(M, K, K), b = matrix_new(N, K, K);
    matrix_fill(&a, 77), matrix_fill(&b, 78);
    size_t bytes = (size_t)M * N * sizeof(float);
    float *one = xaligned_alloc(bytes), *split = xaligned_alloc(bytes);
    // Our kernels (AVX512-BF16, or the emulation on our AVX-512 fp32 GEMM) sum each element
    // in the same order whatever the block: splits are bit-identical to one call.
    int own_kernel =
        strcmp(gemm_bf16_backend(), "emulated") != 0 || strcmp(gemm_backend(), "avx512") == 0;
    struct split_call whole = {1, 0, M, M, N, K, a.data, b.half, one};
    split_thread(&whole);
    for (int rows = 0; rows < 2; rows++)
        for (int nth = 2; nth <= 3; nth++) {
            struct split_call calls[3];
            pthread_t threads[3];
            int total = rows ? M : N;
            memset(split, 0xff, bytes);
            for (int t = 0; t < nth; t++) {
                calls[t] = whole;
                calls[t].rows = rows, calls[t].c = split;
                calls[t].begin = total * t / nth, calls[t].end = total * (t + 1) / nth;
                assert_int_equal(pthread_create(&threads[t], NULL, split_thread, &calls[t]), 0);
            }
            for (int t = 0; t < nth; t++) pthread_join(threads[t], NULL);
            if (own_kernel) {
                assert_memory_equal(one, split, bytes);
                continue;
            }
            // The emulation on OpenBLAS (CPUs without AVX-512): OpenBLAS may order a product's
            // sum differently for a different block shape, so a split equals one call within
            // fp32 rounding, and the same split gives the same bits every time.
            float *again = xaligned_alloc(bytes);
            for (int t = 0; t < nth; t++) {
                calls[t].c = again;
                split_thread(&calls[t]);
            }
            assert_memory_equal(again, split, bytes);
            double worst = 0, scale = 0;
            for (size_t i = 0; i < (size_t)M * N; i++) {
                worst = fmax(worst, fabs((double)one[i] - split[i]));
                scale = fmax(scale, fabs((double)one[i]));
            }
            assert_true(worst <= 1e-5 * scale);
            free(again);
        }
    free(one), free(split), matrix_free(&a), matrix_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding_known_values),
        cmocka_unit_test(test_rounding_matches_hardware),
        cmocka_unit_test(test_emulated_matches_reference),
        cmocka_unit_test(test_avx512_bf16_matches_reference),
        cmocka_unit_test(test_emulated_matches_avx512_bf16),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_thread_splits_match_one_call),
        cmocka_unit_test(test_bf16_a_in_place_matches_packed),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
