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
#include <stddef.h>
#include <stdint.h>

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);

// "avx512" or "openblas": what gemm() uses in this process.
const char *gemm_backend(void);

// The backends themselves, for tests and benchmarks that hold one to the other.
void gemm_openblas(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
void gemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);

// ---------------------------------------------------------------------------------------------
// bf16 matrix multiply with fp32 accumulation (PyTorch CPU autocast's matmul):
//
//   C (M x N, fp32) = alpha * bf16(op(A)) · bf16(op(B)) + beta * C
//
// Each operand is given either as fp32 (GEMM_F32: rounded to bf16, nearest-even, while it is
// packed, see nn/bf16.h) or already as bf16 (GEMM_BF16: uint16_t, e.g. weights converted once
// per step); lda/ldb count elements of that type. Products of two bf16 are exact in fp32 and
// the sums are fp32, so the result is within the fp32 rounding bound of a length-K dot
// product of the rounded inputs. Same threading contract, argument rules, beta == 0 and
// empty-size behaviour as gemm().
//
// Backends, chosen once per process:
//   avx512_bf16  VDPBF16PS microkernel (gemm_avx512bf16.c) when the CPU has AVX512-BF16
//   emulated     inputs rounded to bf16 into fp32 scratch, then gemm(): any CPU, same rounding,
//                fp32 sums in another order (CATLIP_CPU_DISABLE=avx512_bf16 forces it)
//   (amx         AMX-BF16 tiles: the slot is here — a backend with this signature, chosen in
//                gemm_bf16.c before avx512_bf16 when cpu_has(CPU_AMX_BF16) — not yet written:
//                no hardware with AMX to test it on.)
enum gemm_elem { GEMM_F32, GEMM_BF16 };

void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
               enum gemm_elem a_elem, int lda, const void *B, enum gemm_elem b_elem, int ldb,
               float beta, float *C, int ldc);

// "avx512_bf16" or "emulated": what gemm_bf16() uses in this process.
const char *gemm_bf16_backend(void);

typedef void (*gemm_bf16_fn)(int trans_a, int trans_b, int M, int N, int K, float alpha,
                             const void *A, enum gemm_elem a_elem, int lda, const void *B,
                             enum gemm_elem b_elem, int ldb, float beta, float *C, int ldc);
// The backends themselves, for tests and benchmarks.
void gemm_bf16_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
                      enum gemm_elem a_elem, int lda, const void *B, enum gemm_elem b_elem, int ldb,
                      float beta, float *C, int ldc);
void gemm_bf16_emulated(int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
                        enum gemm_elem a_elem, int lda, const void *B, enum gemm_elem b_elem,
                        int ldb, float beta, float *C, int ldc);
// AVX512-BF16 array conversion used by bf16_from_floats() (nn/bf16.h).
void bf16_from_floats_avx512(uint16_t *dst, const float *src, size_t n);
