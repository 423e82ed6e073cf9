// gemm (nn/gemm.h) against a naive double-precision reference.
//
// - Both backends (our AVX-512 kernel when the CPU has AVX-512 F/BW/DQ/VL, otherwise a counted
//   skip; and OpenBLAS) and the dispatching gemm(), for all four transpose combinations, alpha
//   in {1, 0.5}, beta in {0, 1, -0.3}, over every (M, N, K) from {0, 1, 2, 7, 13, 31, 33, 64, 100,
//   197, 257}^3 with M*N*K <= 1e6 (the (alpha, beta) pair rotates with the triple), then K and M
//   past the cache blocks, and catlip's real shapes (vit_tiny matmuls and attention with its
//   strided qkv views, lda = 576), checked on a sample of rows.
// - Every matrix starts one float past malloc's alignment, has padded leading dimensions, and
//   ends exactly at the end of its allocation (ASan sees any read past it). beta == 0 runs on a
//   C full of NaN (which must not leak through); C's padding columns are sentinels that must be
//   left alone.
// - Tolerance: |C - C_ref| <= (K + 4) * 2^-24 * (|alpha| * sum_k |a_ik||b_kj| + |beta * C0_ij|),
//   the worst-case rounding bound of a length-K float dot product plus the final scaling (a
//   kernel that drops or repeats a term, or reads a wrong element, is far outside it except for
//   single terms of very long sums).
// - Concurrency: two threads calling gemm on different row blocks of one C at the same time
//   give the same bits as the same calls made one after the other.
// - CATLIP_GEMM picks the backend; a bad value exits 2 with a one-line error.
//
// Run: ctest --test-dir build -R unit.test_gemm (or the test_gemm binary directly).
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
#include <sys/wait.h>
#include <unistd.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/gemm.h"
#include "cpu_require.h"
#include "rerun_self.h"

#define ULP (1.0 / 16777216.0)  // 2^-24
#define SENTINEL 12345.0f

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);

// What gemm.c requires of the CPU for the AVX-512 backend (CATLIP_CPU_DISABLE applies).
static int cpu_has_avx512(void) { return cpu_has(CPU_AVX512); }

// ---------------------------------------------------------------------------------------------
// Matrices

// A rows x cols matrix with leading dimension ld, starting one float past malloc's alignment
// and ending exactly at the end of its allocation.
struct matrix {
    void *allocation;
    float *data;
    int rows, cols, ld;
    long count;  // floats from data[0] to the end
};

static struct matrix matrix_new(int rows, int cols, int ld) {
    struct matrix m = {0};
    m.rows = rows, m.cols = cols, m.ld = ld;
    m.count = rows > 0 && cols > 0 ? (long)(rows - 1) * ld + cols : 0;
    m.allocation = xmalloc(((size_t)m.count + 1) * sizeof(float));
    m.data = (float *)m.allocation + 1;
    return m;
}

static void matrix_fill(struct matrix *m, uint64_t seed) {
    struct rng r;
    rng_init(&r, seed);
    for (long i = 0; i < m->count; i++) m->data[i] = 2.0f * rng_uniform(&r) - 1.0f;
}

// op(X)[i][k]
static double op_at(const struct matrix *m, int trans, int i, int k) {
    return trans ? m->data[(long)k * m->ld + i] : m->data[(long)i * m->ld + k];
}

// ---------------------------------------------------------------------------------------------
// One checked multiply

struct problem {
    int trans_a, trans_b, M, N, K, pad_a, pad_b, pad_c;
    float alpha, beta;
    int row_step;  // check rows i with i % row_step == 0, and the first and last 16
};

static int checked_row(const struct problem *p, int i) {
    return p->row_step <= 1 || i < 16 || i >= p->M - 16 || i % p->row_step == 0;
}

// Runs fn on the problem and returns the number of C entries out of tolerance (printing the
// first few); C's padding must keep its sentinel.
static int run_problem(gemm_fn fn, const struct problem *p, uint64_t seed) {
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
    float *c0 = xmalloc(((size_t)c.count + 1) * sizeof(float));
    if (c.count) memcpy(c0, c.data, (size_t)c.count * sizeof(float));
    if (p->beta == 0.0f)
        for (int i = 0; i < p->M; i++)
            for (int j = 0; j < p->N; j++) c.data[(long)i * c.ld + j] = NAN;

    fn(p->trans_a, p->trans_b, p->M, p->N, p->K, p->alpha, a.data, a.ld, b.data, b.ld, p->beta,
       c.data, c.ld);

    int bad = 0;
    double *sum = xcalloc((size_t)p->N + 1, sizeof(double)),
           *abs_sum = xcalloc((size_t)p->N + 1, sizeof(double));
    for (int i = 0; i < p->M; i++) {
        for (int j = p->N; j < c.ld && (long)i * c.ld + j < c.count; j++)
            if (c.data[(long)i * c.ld + j] != SENTINEL && bad++ < 5)
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
            if (!(fabs(got - want) <= tol) && bad++ < 5)
                print_error(
                    "%s%s M=%d N=%d K=%d alpha=%g beta=%g: C[%d][%d] = %.9g, want %.9g (tol "
                    "%.3g)\n",
                    p->trans_a ? "T" : "N", p->trans_b ? "T" : "N", p->M, p->N, p->K, p->alpha,
                    p->beta, i, j, got, want, tol);
        }
    }
    free(sum), free(abs_sum), free(c0);
    free(a.allocation), free(b.allocation), free(c.allocation);
    return bad;
}

// ---------------------------------------------------------------------------------------------
// Sweeps

static const int sizes[] = {0, 1, 2, 7, 13, 31, 33, 64, 100, 197, 257};
static const float alphas[] = {1.0f, 0.5f};
static const float betas[] = {0.0f, 1.0f, -0.3f};

static int sweep_sizes(gemm_fn fn) {
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
                    bad += run_problem(fn, &p, (uint64_t)index);
                }
    return bad;
}

// Past the cache blocks: several K blocks (beta applied once), several M blocks, N past one
// column panel, with every (alpha, beta).
static int sweep_blocks(gemm_fn fn) {
    static const int shapes[][3] = {{30, 40, 1000}, {700, 45, 50}, {20, 3100, 30}, {29, 33, 385}};
    int bad = 0, index = 0;
    for (int s = 0; s < 4; s++)
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
                bad += run_problem(fn, &p, 1000u + (uint64_t)index);
            }
    return bad;
}

// vit_tiny at batch 32, per thread of 2 (matmul.c, vit.c): lda/ldb/ldc as the callers pass
// them, written as pads over the logical width; big ones checked on every 97th row.
static int sweep_vit(gemm_fn fn) {
    static const struct problem shapes[] = {
        {0, 1, 3152, 576, 192, 0, 0, 0, 1, 0, 97},        // forward qkv
        {0, 1, 3152, 768, 192, 0, 0, 0, 1, 0, 97},        // forward fc1
        {0, 1, 3152, 192, 768, 0, 0, 0, 1, 0, 97},        // forward fc2
        {0, 1, 32, 12160, 192, 0, 0, 0, 1, 0, 1},         // head
        {0, 0, 3152, 192, 576, 0, 0, 0, 1, 1, 97},        // dinp += dout · W
        {0, 0, 3152, 768, 192, 0, 0, 0, 1, 0, 97},        // dinp = dout · W
        {1, 0, 288, 192, 6304, 288, 0, 0, 1, 1, 7},       // dW += doutᵀ · inp, OC split in 2
        {1, 0, 96, 768, 6304, 96, 0, 0, 1, 1, 7},         //
        {0, 1, 197, 197, 64, 512, 512, 0, 0.125f, 0, 1},  // attention q · kᵀ (qkv rows of 576)
        {0, 0, 197, 64, 197, 0, 512, 128, 1, 0, 1},       // P · v, out rows of 192
        {1, 0, 197, 64, 197, 0, 128, 512, 1, 0, 1},       // Pᵀ · dy into dqkv
        {0, 0, 197, 64, 197, 0, 512, 512, 1, 0, 1},       // dS · k
    };
    int bad = 0;
    for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        bad += run_problem(fn, &shapes[s], 5000u + (uint64_t)s);
    return bad;
}

static void check_backend(gemm_fn fn) {
    int bad = sweep_sizes(fn);
    bad += sweep_blocks(fn);
    bad += sweep_vit(fn);
    assert_int_equal(bad, 0);
}

static void test_avx512_matches_reference(void **state) {
    (void)state;
    if (!test_path_selected("avx512")) skip();
    REQUIRE_CPU(CPU_AVX512);
    check_backend(gemm_avx512);
}

static void test_openblas_matches_reference(void **state) {
    (void)state;
    if (!test_path_selected("openblas")) skip();
    check_backend(gemm_openblas);
}

static void test_dispatch_matches_reference(void **state) {
    (void)state;
    // CATLIP_GEMM may be set for the whole run (to test the fallback end to end).
    const char *forced = getenv("CATLIP_GEMM");
    if (forced != NULL && forced[0] != '\0')
        assert_string_equal(gemm_backend(), forced);
    else
        assert_string_equal(gemm_backend(), cpu_has_avx512() ? "avx512" : "openblas");
    assert_int_equal(sweep_blocks(gemm), 0);
}

// ---------------------------------------------------------------------------------------------
// Two threads on different blocks of one C at once == the same calls in turn.

struct block_call {
    const float *a, *b;
    float *c;
    int M, N, K, rounds;
};

static void *block_thread(void *arg) {
    struct block_call *call = arg;
    for (int r = 0; r < call->rounds; r++)
        gemm(0, 1, call->M, call->N, call->K, 1.0f, call->a, call->K, call->b, call->K,
             r ? 1.0f : 0.0f, call->c, call->N);
    return NULL;
}

static void test_concurrent_calls_match_serial(void **state) {
    (void)state;
    const int M = 700, N = 200, K = 300, half = 333, rounds = 4;
    struct matrix a = matrix_new(M, K, K), b = matrix_new(N, K, K);
    matrix_fill(&a, 77), matrix_fill(&b, 78);
    float *parallel = xaligned_alloc((size_t)M * N * sizeof(float));
    float *serial = xaligned_alloc((size_t)M * N * sizeof(float));
    struct block_call calls[2] = {
        {a.data, b.data, parallel, half, N, K, rounds},
        {a.data + (long)half * K, b.data, parallel + (long)half * N, M - half, N, K, rounds},
    };
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, block_thread, &calls[t]), 0);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < 2; t++) {
        calls[t].c = serial + (t ? (long)half * N : 0);
        block_thread(&calls[t]);
    }
    assert_memory_equal(parallel, serial, (size_t)M * N * sizeof(float));
    free(parallel), free(serial), free(a.allocation), free(b.allocation);
}

// ---------------------------------------------------------------------------------------------
// CATLIP_GEMM, in a fresh process (the choice is made once per process): this program run
// again as `test_gemm --print-backend` prints gemm_backend().

// Returns the child's exit status; its stdout goes to `out`, its stderr to `err`.
static int child_backend(const char *value, char *out, char *err, size_t size) {
    return rerun_self("test_gemm", "--print-backend", "CATLIP_GEMM", value, out, size, err, size);
}

static void test_environment_picks_backend(void **state) {
    (void)state;
    char out[256], err[256];
    const char *best = cpu_has_avx512() ? "avx512\n" : "openblas\n";
    assert_int_equal(child_backend("openblas", out, err, sizeof out), 0);
    assert_string_equal(out, "openblas\n");
    assert_int_equal(child_backend("", out, err, sizeof out), 0);
    assert_string_equal(out, best);
    if (cpu_has_avx512()) {
        assert_int_equal(child_backend("avx512", out, err, sizeof out), 0);
        assert_string_equal(out, "avx512\n");
    } else {
        assert_int_equal(child_backend("avx512", out, err, sizeof out), 2);
        assert_non_null(strstr(err, "CATLIP_GEMM=avx512"));
    }
    assert_int_equal(child_backend("sse", out, err, sizeof out), 2);
    assert_string_equal(out, "");
    // One line naming the variable and the choices.
    assert_non_null(strstr(err, "CATLIP_GEMM=sse"));
    assert_non_null(strstr(err, "openblas"));
    assert_non_null(strchr(err, '\n'));
    assert_string_equal(strchr(err, '\n') + 1, "");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--print-backend") == 0) {
        printf("%s\n", gemm_backend());
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx512_matches_reference),
        cmocka_unit_test(test_openblas_matches_reference),
        cmocka_unit_test(test_dispatch_matches_reference),
        cmocka_unit_test(test_concurrent_calls_match_serial),
        cmocka_unit_test(test_environment_picks_backend),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
