// What the BLAS is and how fast it multiplies on this machine.
#pragma once
#include "core/pool.h"

// "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64 (core: Haswell)"
const char *blas_describe(void);

// Measured sgemm rate in GFLOP/s with the pool's threads each multiplying its own block of
// a square-ish problem (n x n x n split by rows), the ceiling our training step is held to.
// Goes through gemm() (nn/gemm.h), i.e. our AVX-512 kernel unless CATLIP_GEMM=openblas.
double blas_measure_sgemm_gflops(struct pool *pool, int n, double seconds);
// The same problem through OpenBLAS (as OPENBLAS_CORETYPE etc. configure it), for comparison.
double blas_measure_openblas_gflops(struct pool *pool, int n, double seconds);

// gemm_bf16() (nn/gemm.h) on the same problem, fp32 A rounded while packed and bf16 B (as a
// training step feeds its weights): the bf16 counterpart of blas_measure_sgemm_gflops.
double blas_measure_bf16_gemm_gflops(struct pool *pool, int n, double seconds);

// The cores' peak rates in GFLOP/s: every pool thread runs independent chains of one
// instruction for at least `seconds` — VFMADD231PS zmm (32 flops) for fp32, VDPBF16PS zmm
// (64 flops) for bf16. 0 when the CPU (or CATLIP_CPU_DISABLE) lacks AVX-512 / AVX512-BF16.
double blas_measure_fma_peak_gflops(struct pool *pool, double seconds);
double blas_measure_dpbf16_peak_gflops(struct pool *pool, double seconds);

// The loops themselves (nn/peak_avx512bf16.c): one thread, `iterations` x 24 instructions.
float peak_fma_loop(long iterations);
float peak_dpbf16_loop(long iterations);
