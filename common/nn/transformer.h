// The pre-norm transformer block both towers are made of: the ViT image tower (nn/vit.h) and
// the CLIP text tower (nn/text_tower.h), written once.
//
//   res2 = x + proj(attention(LayerNorm1(x)))        attention: multi-head, qkv with bias,
//   out  = res2 + fc2(GELU(fc1(LayerNorm2(res2))))   scale 1/sqrt(head_dim); GELU exact (erf)
//
// With `causal` set, token i attends to tokens 0..i only (CLIP's text tower); the masked
// probabilities are exact zeros, so the backward needs no mask of its own.
//
// The pieces a tower needs around its blocks (LayerNorm over rows on the pool, bf16 rounding)
// are here too. Everything splits its work over the compute pool in fixed blocks, so a thread
// count gives the same bits every time.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "nn/kernels.h"

struct transformer_shape {
    int tokens;      // T
    int dim;         // C
    int heads;       // H
    int head_dim;    // C / H
    int mlp_hidden;  // hidden width of the MLP
    int causal;      // 1: token i sees tokens 0..i only
};

// Offsets of one block's tensors in a parameter buffer (in floats), in timm's and OpenCLIP's
// state_dict order.
struct transformer_block_offsets {
    size_t norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, fc1_w, fc1_b,
        fc2_w, fc2_b;
    size_t begin, end;  // the block's whole range, for gradient buckets
};

// What one block's forward keeps for its backward.
struct transformer_block_acts {
    float *ln1;                   // (B, T, C)  norm1 output
    float *ln1_mean, *ln1_rstd;   // (B, T)
    float *qkv;                   // (B, T, 3C); bf16: forward scratch only (see qkv_bf16)
    float *att;                   // (B, H, T, T) attention probabilities; bf16: rows padded to
                                  // attention_bf16_probs_ld(T)
    float *atty;                  // (B, T, C)  heads concatenated, before proj
    float *res2;                  // (B, T, C)  x + proj(atty): input of norm2
    float *ln2;                   // (B, T, C)
    float *ln2_mean, *ln2_rstd;   // (B, T)
    float *fch;                   // (B, T, hidden) fc1 output, before GELU
    float *fch_gelu;              // (B, T, hidden)
    float *out;                   // (B, T, C)  block output
    // bf16 (VIT_BF16): ln1, atty, ln2 and fch_gelu are stored only as these bf16 copies (what
    // the matmuls read, forward and backward); the fp32 pointers above then share one scratch
    // (transformer_block_acts_share_scratch) that is valid only during the forward (the block
    // writes only atty there: ln1, ln2 and fch_gelu go to bf16 straight from an L1 buffer).
    uint16_t *ln1_bf16, *atty_bf16, *ln2_bf16;  // (B, T, C)
    uint16_t *fch_gelu_bf16;                    // (B, T, hidden)
    // bf16: q, k, v stored only as bf16, rounded where the qkv matmul writes them: every
    // attention product (forward and backward) reads them, none reads fp32 q, k or v.
    uint16_t *qkv_bf16;                         // (B, T, 3C)
    // bf16: the scratch's per-thread attention buffers (for attn_threads threads), which the
    // forward's P·v reads P from
    uint16_t *attn_bf16;
    int attn_threads;
};

// Gradient scratch shared by the blocks of one tower (reused block after block).
struct transformer_scratch {
    float *dres;         // (B, T, C) gradient of the residual stream, in and out of a block
    float *dtmp;         // (B, T, C)
    float *dqkv;         // (B, T, 3C)
    float *dhidden;      // (B, T, hidden); in bf16 also the forward's fp32 scratch
    float *dscores;      // (nthreads, T, T) per-thread attention scratch
    float *ln_partials;  // (nthreads, 2C) per-thread LayerNorm dweight/dbias
    float *dbias_partials;  // (nthreads, max(hidden, 3C)) per-thread linear dbias sums
    // bf16 only: a linear layer's dout rounded, (B, T, max(hidden, 3C)); per thread, one
    // head's P and dS (T rows of T rounded up to 32) and dy (T, head_dim) as bf16
    uint16_t *dout_bf16, *attn_bf16;
    // bf16 only: per thread, one head's dq, dk, dv in fp32, (T, 3·head_dim): the attention
    // backward's output before its bias sums and rounding (no product reads fp32 dqkv, so the
    // (B, T, 3C) dqkv is not written, which was a pass through memory)
    float *dqkv_heads;
    int nthreads;        // the most pool threads these were sized for
};

// How to run: the pool, the kernels, and the parameters rounded to bf16 when the matmuls run
// in bf16 (PyTorch CPU autocast; NULL for fp32).
struct transformer_exec {
    struct pool *pool;
    const struct kernels *k;
    const uint16_t *weights_bf16;  // (parameter buffer length) or NULL
};

// The bf16 copy of the weight at `offset` (in floats) when the matmuls run in bf16, else NULL
// (nn/matmul.h's weight_bf16 argument).
static inline const uint16_t *transformer_weight_bf16(const struct transformer_exec *e,
                                                      size_t offset) {
    return e->weights_bf16 ? e->weights_bf16 + offset : NULL;
}

// Carving of activation memory in two passes (llm.c style): with memory NULL only counts, else
// also points each tensor at memory + its offset. Every tensor is 64-byte aligned.
struct carver {
    float *memory;
    size_t used;  // floats
};
float *carve_floats(struct carver *cv, size_t count);
// Ends the counting pass: allocates the floats counted into *memory (*floats: how many) and
// restarts the carver on it for the second pass.
void carver_allocate(struct carver *cv, float **memory, size_t *floats);
uint16_t *carve_bf16(struct carver *cv, size_t count);

// Carves one block's activations for B sequences (bf16: the four matmul inputs and q, k, v as
// bf16 only).
void transformer_block_acts_carve(struct carver *cv, struct transformer_block_acts *acts,
                                  const struct transformer_shape *s, int B, int bf16);
// Carves the scratch for B sequences and nthreads threads (bf16: with its bf16 parts).
void transformer_scratch_carve(struct carver *cv, struct transformer_scratch *scratch,
                               const struct transformer_shape *s, int B, int nthreads, int bf16);
// bf16 only, after carving: points the fp32 ln1/atty/ln2/fch_gelu at the scratch's dhidden
// and qkv at its dqkv.
void transformer_block_acts_share_scratch(struct transformer_block_acts *acts,
                                          const struct transformer_scratch *scratch);

// out = block(x) for B sequences: fills acts (acts->out is the output).
void transformer_block_forward(const struct transformer_exec *e, const struct transformer_shape *s,
                               struct transformer_block_acts *acts, const float *params,
                               const struct transformer_block_offsets *o,
                               const float *x,  // (B, T, C)
                               int B);

// Backward of one block: scratch->dres holds d out on entry and d x on return; the block's
// parameter gradients are accumulated (grads +=). x is the block's forward input.
void transformer_block_backward(const struct transformer_exec *e, const struct transformer_shape *s,
                                const struct transformer_block_acts *acts,
                                struct transformer_scratch *scratch, const float *params,
                                float *grads, const struct transformer_block_offsets *o,
                                const float *x,  // (B, T, C)
                                int B);

// LayerNorm over N rows of C on the pool (eps 1e-6: nn/kernels.h). out_bf16: NULL, or also
// out rounded to bf16 there; out may then be NULL (only the bf16 rows wanted, C <= 4096).
void transformer_layernorm_forward(const struct transformer_exec *e, float *out,
                                   uint16_t *out_bf16, float *mean, float *rstd,
                                   const float *inp, const float *weight, const float *bias,
                                   long N, int C);
// dinp overwritten (may alias dout); dweight, dbias += (the threads' partials summed in thread
// order, so the result is fixed for a thread count). partials: (pool threads, 2C).
void transformer_layernorm_backward(const struct transformer_exec *e, float *partials,
                                    float *dinp, float *dweight, float *dbias, const float *dout,
                                    const float *inp, const float *weight, const float *mean,
                                    const float *rstd, long N, int C);

// dst = bf16(src), n elements, split over the pool.
void transformer_round_bf16(struct pool *pool, uint16_t *dst, const float *src, size_t n);
