// gemm(): run-time choice between our AVX-512 kernel and OpenBLAS (see gemm.h).
#include "nn/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/cpu.h"

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int,
                        float, float *, int);

static gemm_fn active;
static const char *active_name;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_active(void) {
    const char *forced = getenv("CATLIP_GEMM");
    // gemm_avx512.c is compiled, like every *_avx512.c, with -mavx512f/bw/dq/vl -mavx2 -mfma,
    // and GCC uses VL encodings (xmm16-31) in it: CPU_AVX512 requires all of them.
    bool want_avx512 = cpu_has(CPU_AVX512);
    if (forced != NULL && forced[0] != '\0') {
        if (strcmp(forced, "openblas") == 0)
            want_avx512 = false;
        else if (strcmp(forced, "avx512") != 0)
            catlip_die("CATLIP_GEMM=%s: unknown GEMM backend (choices: avx512, openblas)", forced);
        else if (!want_avx512)
            catlip_die("CATLIP_GEMM=avx512: this CPU lacks AVX-512 (F/BW/DQ/VL); use openblas");
    }
    active = want_avx512 ? gemm_avx512 : gemm_openblas;
    active_name = want_avx512 ? "avx512" : "openblas";
}

const char *gemm_backend(void) {
    pthread_once(&active_once, choose_active);
    return active_name;
}

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc) {
    // Shapes come from our own code: a bad one is a programming error, as in cblas.
    CATLIP_ASSERT(M >= 0 && N >= 0 && K >= 0);
    CATLIP_ASSERT(lda >= (trans_a ? M : K) && ldb >= (trans_b ? K : N) && ldc >= N);
    pthread_once(&active_once, choose_active);
    active(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_openblas(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    // cblas insists on leading dimensions >= 1 even where a dimension is 0 and they are unused.
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda > 1 ? lda : 1, B,
                ldb > 1 ? ldb : 1, beta, C, ldc);
}
