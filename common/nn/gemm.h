// Single-precision matrix multiply, row-major, the shape of cblas_sgemm(CblasRowMajor, ...):
//
//   C (M x N, ldc) = alpha * op(A) (M x K) · op(B) (K x N) + beta * C
//
// op(A) = A (M x K, lda >= K) when trans_a == 0, Aᵀ (A stored K x M, lda >= M) when trans_a == 1;
// likewise op(B) = B (K x N, ldb >= N) or Bᵀ (B stored N x K, ldb >= K).
//
// Single-threaded and reentrant: our thread pool splits a matmul into blocks and each thread
// multiplies its own block, so concurrent calls on different C blocks are the normal case.
// Packing buffers are per thread, allocated on a thread's first call and kept until it exits.
// beta == 0 never reads C (C may hold garbage, NaN included). M, N or K == 0 are allowed
// (K == 0 gives C = beta * C).
//
// The backend is chosen once per process: our AVX-512 kernel (gemm_avx512.c) when the CPU has
// AVX-512 (F, BW, DQ, VL: the flags that file is compiled with), otherwise OpenBLAS.
// CATLIP_GEMM=openblas|avx512 forces one (avx512 on a CPU without it: a one-line error and exit 2).
#pragma once

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);

// "avx512" or "openblas": what gemm() uses in this process.
const char *gemm_backend(void);

// The backends themselves, for tests and benchmarks that hold one to the other.
void gemm_openblas(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
void gemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);
