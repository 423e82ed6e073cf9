// Linear layers on gemm() (nn/gemm.h: our AVX-512 kernel, or OpenBLAS sgemm), split across the
// compute pool.
//
// Weights are PyTorch's (out, in) layout: out = inp · Wᵀ + bias. Each thread makes its own
// single-threaded GEMM call on a fixed block, so the result depends only on the thread count.
//
// weight_bf16: NULL for fp32; otherwise the same weight already rounded to bf16 (OC, IC), and
// every product of the layer (forward, dinp, dweight) runs through gemm_bf16: bf16 inputs
// (activations rounded while packed), fp32 sums, fp32 outputs — PyTorch CPU autocast's matmul.
#pragma once
#include <stdint.h>

#include "core/pool.h"
#include "nn/kernels.h"

// out = inp · Wᵀ + bias (+ residual when not NULL), and out rounded to bf16 into out_bf16 when
// that is not NULL (by the thread that wrote the rows, while they are in cache). Splits rows, or
// output columns when there are few rows (the head: B rows, V columns).
void matmul_forward(struct pool *pool, const struct kernels *k,
                    float *out,                   // (N, OC)
                    uint16_t *out_bf16,           // (N, OC) or NULL
                    const float *inp,             // (N, IC)
                    const uint16_t *inp_bf16,     // (N, IC) bf16, read instead of inp; or NULL
                    const float *weight,          // (OC, IC)
                    const uint16_t *weight_bf16,  // (OC, IC) bf16, or NULL
                    const float *bias,            // (OC) or NULL
                    const float *residual,        // (N, OC) or NULL
                    long N, int IC, int OC);

// Backward of out = inp · Wᵀ + bias:
//   dinp  = dout · W     (overwritten, or += when accumulate_dinp; skipped when dinp is NULL)
//   dweight += doutᵀ · inp
//   dbias   += column sums of dout (when dbias is not NULL; a caller whose pass that produces
//              dout sums it there passes NULL)
// dout_bf16 (bf16 only): dout already rounded, read by both products instead of dout.
// With many rows (N >= 256 per thread and >= 4 OC) the dweight product is split by rows of dout
// and inp (tokens), each thread summing its share, added in thread order; otherwise by rows of
// dweight.
void matmul_backward(struct pool *pool, float *dinp,  // (N, IC) or NULL
                     float *dweight,                  // (OC, IC)
                     float *dbias,                    // (OC) or NULL
                     const float *dout,               // (N, OC)
                     const uint16_t *dout_bf16,       // (N, OC) bf16, or NULL
                     const float *inp,                // (N, IC)
                     const uint16_t *inp_bf16,        // (N, IC) bf16 (read instead), or NULL
                     const float *weight,             // (OC, IC)
                     const uint16_t *weight_bf16,     // (OC, IC) bf16, or NULL
                     long N, int IC, int OC, int accumulate_dinp);

// A vector of ones long enough for column sums of `rows` rows (grown on demand, never shrunk;
// call from the thread that owns the pool, outside parallel regions).
const float *matmul_ones(long rows);
