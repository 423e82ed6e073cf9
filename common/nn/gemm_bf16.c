// gemm_bf16(): run-time choice between the AVX512-BF16 kernel and the fp32 emulation (see
// gemm.h), the emulation itself, and fp32 -> bf16 array conversion.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/cpu.h"
#include "nn/bf16.h"
#include "nn/gemm.h"

static gemm_bf16_fn active;
static const char *active_name;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

// The backend slots, best first. An AMX-BF16 backend (tiles of 16 x 32 bf16, TDPBF16PS) goes
// first in this list once hardware to test it exists; everything above it (packing of pairs,
// per-step weight conversion, the callers) stays as it is.
static void choose_active(void) {
    if (cpu_has(CPU_AVX512_BF16)) {
        active = gemm_bf16_avx512;
        active_name = "avx512_bf16";
    } else {
        active = gemm_bf16_emulated;
        active_name = "emulated";
    }
}

const char *gemm_bf16_backend(void) {
    pthread_once(&active_once, choose_active);
    return active_name;
}

void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
               enum gemm_elem a_elem, int lda, const void *B, enum gemm_elem b_elem, int ldb,
               float beta, float *C, int ldc) {
    CATLIP_ASSERT(M >= 0 && N >= 0 && K >= 0);
    CATLIP_ASSERT(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N);
    pthread_once(&active_once, choose_active);
    active(trans_a, trans_b, M, N, K, alpha, A, a_elem, lda, B, b_elem, ldb, beta, C, ldc);
}

void bf16_from_floats(uint16_t *dst, const float *src, size_t n) {
    pthread_once(&active_once, choose_active);
    if (active == gemm_bf16_avx512) {
        bf16_from_floats_avx512(dst, src, n);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = bf16_from_float(src[i]);
}

// ---------------------------------------------------------------------------------------------
// Emulation: both operands rounded (or widened, for bf16 ones) into per-thread fp32 scratch,
// packed to their logical width, then the fp32 gemm(). The rounding is bit-identical to the
// hardware's (nn/bf16.h); only the order of the fp32 sums differs.

struct scratch {
    float *data;
    size_t floats;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    struct scratch *s = p;
    free(s->data);
    free(s);
}

static void scratch_key_create(void) {
    CATLIP_ASSERT(pthread_key_create(&scratch_key, scratch_free) == 0);
}

static float *thread_scratch(size_t floats) {
    pthread_once(&scratch_once, scratch_key_create);
    struct scratch *s = pthread_getspecific(scratch_key);
    if (s == NULL) {
        s = xcalloc(1, sizeof *s);
        CATLIP_ASSERT(pthread_setspecific(scratch_key, s) == 0);
    }
    if (floats > s->floats) {
        free(s->data);
        s->data = xaligned_alloc(floats * sizeof(float));
        s->floats = floats;
    }
    return s->data;
}

// dst (rows x cols, packed) = the bf16 values of src (rows x cols, leading dimension ld).
static void round_matrix(float *dst, const void *src, enum gemm_elem elem, long ld, int rows,
                         int cols) {
    for (int r = 0; r < rows; r++) {
        float *d = dst + (long)r * cols;
        if (elem == GEMM_BF16) {
            const uint16_t *s = (const uint16_t *)src + r * ld;
            for (int c = 0; c < cols; c++) d[c] = bf16_to_float(s[c]);
        } else {
            const float *s = (const float *)src + r * ld;
            for (int c = 0; c < cols; c++) d[c] = bf16_round(s[c]);
        }
    }
}

void gemm_bf16_emulated(int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
                        enum gemm_elem a_elem, int lda, const void *B, enum gemm_elem b_elem,
                        int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        gemm(0, 0, M, N, 0, 1.0f, C, 1, C, N, beta, C, ldc);
        return;
    }
    int rows_a = trans_a ? K : M, cols_a = trans_a ? M : K;
    int rows_b = trans_b ? N : K, cols_b = trans_b ? K : N;
    size_t size_a = (size_t)rows_a * cols_a, size_b = (size_t)rows_b * cols_b;
    float *a = thread_scratch(size_a + size_b), *b = a + size_a;
    round_matrix(a, A, a_elem, lda, rows_a, cols_a);
    round_matrix(b, B, b_elem, ldb, rows_b, cols_b);
    gemm(trans_a, trans_b, M, N, K, alpha, a, cols_a, b, cols_b, beta, C, ldc);
}
