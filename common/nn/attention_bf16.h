// bf16 attention of one (sequence, head), forward and backward, as PyTorch's CPU autocast does
// it: q, k, v, P, dS and dy enter the products rounded to bf16 (nearest-even, nn/bf16.h), every
// product sums in fp32, the softmax and its backward run in fp32 (struct kernels).
//
//   forward:  S = scale·q·kᵀ (T, T);  P = softmax(S) (causal: over keys 0..i);  y = bf16(P)·v
//   backward: dP = bf16(dy)·vᵀ;  dS = scale·P∘(dP − rowsum(P∘dP));  dv = bf16(P)ᵀ·bf16(dy);
//             dq = bf16(dS)·k;  dk = bf16(dS)ᵀ·q
//
// Two implementations, same rounding points, fp32 sums in another order only:
//   fused   attention_avx512bf16.c, CPUs with AVX512-BF16 and an even head_dim: q, k, v (and
//           dy, q in backward) packed once per head in the VDPBF16PS microkernel's layouts;
//           S, the softmax and bf16(P) (backward: dP, dS, bf16(dS) and bf16(P)ᵀ) a block of
//           rows at a time while the block is in L1; P·v and dS·k read those rows directly.
//           Each sum runs the same pairs in the same order as gemm_bf16_avx512(), so the two
//           give the same bits.
//   gemm    the separate products through a gemm_bf16_fn (any CPU: with gemm_bf16_emulated,
//           the emulation).
// attention_bf16_forward/backward pick fused where it applies, else gemm through gemm_bf16().
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "nn/gemm.h"
#include "nn/kernels.h"

struct attention_bf16_head {
    int tokens, head_dim, causal;
    float scale;                  // applied to q·kᵀ (1/sqrt(head_dim))
    const struct kernels *k;      // softmax_forward / softmax_backward
    const uint16_t *q, *key, *v;  // (T, head_dim) bf16 each, row stride ld_qkv
    long ld_qkv;
};

// Per-thread scratch either implementation needs for a head of this shape, in bytes (a multiple
// of 64). The scratch given to the functions below must be 64-byte aligned.
size_t attention_bf16_scratch_bytes(int tokens, int head_dim);

// P's row stride: T rounded up to 16 floats. Rows start 64-byte aligned, so the softmax sums each
// row in the same lanes wherever it runs (its lane order follows the row's alignment), and the
// fused forward stores whole cache lines.
static inline long attention_bf16_probs_ld(int tokens) {
    return ((long)tokens + 15) & ~15L;
}

// probs (T, attention_bf16_probs_ld(T)), 64-byte aligned: P in fp32 (what backward reads), zeros
// past T in every row (and past i in causal row i). y (T, head_dim) row stride ld_y:
// the output in fp32, or NULL; y_bf16 (same shape and stride): the output rounded to bf16.
void attention_bf16_forward(float *probs, float *y, uint16_t *y_bf16, long ld_y,
                            const struct attention_bf16_head *a, void *scratch);
// dq, dk, dv (T, head_dim) row stride ld_d, overwritten; dy (T, head_dim) row stride ld_dy; probs
// as forward wrote it.
void attention_bf16_backward(float *dq, float *dk, float *dv, long ld_d, const float *dy,
                             long ld_dy, const float *probs, const struct attention_bf16_head *a,
                             void *scratch);

// "fused" or "gemm": what the two above use for this head_dim in this process.
const char *attention_bf16_backend(int head_dim);

// The implementations, for tests. The fused ones need cpu_has(CPU_AVX512_BF16) and an even
// head_dim.
void attention_bf16_forward_fused(float *probs, float *y, uint16_t *y_bf16, long ld_y,
                                  const struct attention_bf16_head *a, void *scratch);
void attention_bf16_backward_fused(float *dq, float *dk, float *dv, long ld_d, const float *dy,
                                   long ld_dy, const float *probs,
                                   const struct attention_bf16_head *a, void *scratch);
void attention_bf16_forward_gemm(gemm_bf16_fn gemm, float *probs, float *y, uint16_t *y_bf16,
                                 long ld_y, const struct attention_bf16_head *a, void *scratch);
void attention_bf16_backward_gemm(gemm_bf16_fn gemm, float *dq, float *dk, float *dv, long ld_d,
                                  const float *dy, long ld_dy, const float *probs,
                                  const struct attention_bf16_head *a, void *scratch);

// Row i of one head's scores (T values) → softmax in place (causal: over keys 0..i, the rest
// exact zeros, so P·v and the softmax backward, which multiplies by P, see no masked key).
void attention_softmax_row(const struct kernels *k, float *p, int i, int tokens, int causal);
