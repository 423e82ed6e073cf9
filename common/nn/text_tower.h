// CLIP's text tower (Radford et al. 2021; OpenCLIP's TextTransformer), for model.objective clip:
//
//   x0[b, t]  = token_embedding[ids[b, t]] + positional_embedding[t]          (B, T, C)
//   x         = blocks(x0)        pre-norm, causal (token t sees 0..t): nn/transformer.h
//   pooled[b] = x[b, eot_b]       eot_b: the position of sequence b's end-of-text token
//   features  = LayerNorm_final(pooled) · text_projectionᵀ                    (B, E)
//
// The blocks are the ViT's (nn/transformer.h) with the causal mask: exact-erf GELU (nn.GELU(),
// what OpenCLIP's text towers use; OpenAI's released weights use QuickGELU instead) and
// LayerNorm eps 1e-6 (nn/kernels.h; PyTorch's default, 1e-5, differs in the fifth decimal of
// a normalised value: immaterial for a tower trained from scratch). Final LayerNorm at the EOT
// token only (it is per token, and only that token reaches the projection). Padding after EOT
// needs no mask: causal attention never lets a token see a later one.
//
// Parameters, gradients and activations follow vit.h's conventions: one buffer carved by a
// table (OpenCLIP's state_dict names, below), activations sized once, backward accumulates
// (grads +=) and reports each range of gradients when it is final. train.precision bf16 is the
// ViT's (vit.h): every matmul (qkv, attention, out_proj, MLP, projection) on bf16 inputs with
// fp32 sums, the rest fp32, the weights rounded once per forward.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/transformer.h"

// struct text_config is in nn/model.h (a CLIP model's configuration holds one).

// From a preset ("text_base": 512 wide, 12 layers, 8 heads, CLIP's smallest text tower;
// "text_tiny": 64, 2, 4, for tests) and overrides (width, depth, heads, embed_dim: 0 keeps the
// preset's; embed_dim defaults to the width). -1 with catlip_error() on a bad value.
int text_config_make(struct text_config *out, const char *name, int vocab_size, int context,
                     int eot_token, int width, int depth, int heads, int embed_dim);

struct text_layout {
    struct text_config config;
    int ntensors;
    struct tensor_info *tensors;  // OpenCLIP names: token_embedding.weight, positional_embedding,
                                  // transformer.resblocks.N.{ln_1,attn.in_proj_,attn.out_proj,
                                  // ln_2,mlp.c_fc,mlp.c_proj}..., ln_final.*, text_projection.weight
    size_t total;                 // floats in the parameter buffer
    size_t token_embedding, positional_embedding, ln_final_w, ln_final_b, projection;
    struct transformer_block_offsets *blocks;  // (depth)
};

void text_layout_init(struct text_layout *layout, const struct text_config *config);

// Multiply-adds of one caption's forward: the blocks' matmuls over all T tokens (qkv, the
// attention products as if unmasked — the kernels compute full T x T score blocks — out_proj,
// MLP) and the projection at the EOT token. Backward is about twice this (vit_forward_macs'
// convention).
double text_forward_macs(const struct text_config *c);
void text_layout_free(struct text_layout *layout);

// OpenCLIP's initialisation: token embedding N(0, 0.02), positional N(0, 0.01), attention
// in_proj N(0, C^-1/2), out_proj and c_proj N(0, C^-1/2 (2L)^-1/2), c_fc N(0, (2C)^-1/2),
// projection N(0, C^-1/2); biases zero, LayerNorm ones/zeros. Each tensor's values come from
// rng_key(seed, tensor index), independent of thread count.
void text_init_params(const struct text_layout *layout, float *params, uint64_t seed);

struct text_acts {
    int max_batch;
    struct text_config config;
    float *memory;  // the one allocation the float tensors below point into
    size_t floats;
    int32_t *ids;   // (B, T) this forward's token ids (the embedding backward reads them)
    int *eot;       // (B) position of each sequence's EOT token
    float *x0;      // (B, T, C)
    struct transformer_block_acts *blocks;  // (depth)
    float *pooled;                          // (B, C) last block output at EOT
    float *lnf, *lnf_mean, *lnf_rstd;       // (B, C), (B), (B)
    float *features;                        // (B, E) the tower's output
    struct transformer_scratch scratch;
    float *dpooled;  // (B, C)
    int nthreads;
    // bf16 only (text_acts_enable_bf16): the parameters rounded by each forward, read by its
    // matmuls and by the following backward's.
    uint16_t *weights_bf16;  // (layout total)
    int bf16;                // the buffers were carved for bf16
};

void text_acts_create(struct text_acts *acts, const struct text_config *config, int max_batch,
                      int nthreads);
// Makes the buffers bf16's (the four re-read block inputs kept as bf16 only, a bf16 copy of the
// parameters; params: the layout's total), carving them again; their contents are lost.
void text_acts_enable_bf16(struct text_acts *acts, size_t params);
void text_acts_free(struct text_acts *acts);

struct text_model {
    struct text_layout layout;
    struct pool *pool;
    const struct kernels *k;
    int bf16;  // matmuls in bf16 (needs text_acts_enable_bf16 on the acts)
};

// ids: (B, T), each in [0, vocab_size) (a broken invariant otherwise: the tokenizer makes them).
// Fills acts; acts->features is the output. A sequence without EOT is pooled at T - 1.
void text_forward(const struct text_model *model, struct text_acts *acts, const float *params,
                  const int32_t *ids, int B);

// Called with [begin, end) float offsets of gradients that are final.
typedef void (*text_grads_ready_fn)(void *ctx, size_t begin, size_t end);

// grads += d loss / d params, given dfeatures = d loss / d acts->features (B, E). Ranges are
// reported final projection and final norm first, then blocks last to first, then the
// embeddings. on_ready may be NULL.
void text_backward(const struct text_model *model, struct text_acts *acts, const float *params,
                   float *grads, const float *dfeatures, int B, text_grads_ready_fn on_ready,
                   void *ready_ctx);
