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
