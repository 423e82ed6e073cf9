// ViT forward and backward for a batch, with the CatLIP head and BCE loss.
//
// The activation buffers are sized once for a maximum batch (vit_acts_create) and carved
// into named tensors; nothing is allocated during a step. Forward writes exactly what
// backward reads. Backward accumulates into the parameter gradients (zero them with one
// memset of the gradient buffer before a step) and reports, through a callback, each
// contiguous range of gradients as soon as it is final — head and final norm first, then
// blocks from last to first, then the embeddings — so a caller can start reducing them
// across workers while earlier layers are still being differentiated.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "nn/kernels.h"
#include "nn/model.h"
#include "nn/transformer.h"

struct vit_acts {
    int max_batch;
    struct vit_config config;
    float *memory;                // the one allocation everything below points into
    size_t floats;
    float *patches;               // (B, N, 3·P·P) unfolded pixels, (c, ky, kx) order
    float *x0;                    // (B, T, C) embeddings: input of block 0
    struct transformer_block_acts *blocks;  // (depth)
    float *cls;                   // (B, C) token 0 of the last block's output
    float *lnf;                   // (B, C) final norm output (pooled features)
    float *lnf_mean, *lnf_rstd;   // (B)
    float *logits;                // (B, V)
    struct transformer_scratch scratch;  // gradient scratch, reused across blocks
    float *dlogits;               // (B, V)
    float *dpooled;               // (B, C)
    int nthreads;
    // VIT_BF16 only (vit_acts_enable_bf16): the parameters rounded to bf16 by each forward,
    // read by that forward's and the following backward's matmuls (only the weights are used).
    uint16_t *weights_bf16;  // (layout total)
    // Set by train_apply_update when it rounded the image tower's new weights into
    // weights_bf16 itself (optim_adamw_step's params_bf16): the next vit_forward with these
    // params skips its rounding pass, once. NULL otherwise (every forward rounds).
    const float *weights_bf16_of;
    int precision;           // enum vit_precision the buffers were carved for
};

void vit_acts_create(struct vit_acts *acts, const struct vit_config *config, int max_batch,
                     int nthreads);
void vit_acts_free(struct vit_acts *acts);

// train.precision. VIT_BF16 is PyTorch CPU autocast: every matmul (patch embedding, qkv, the
// two attention products, proj, MLP, head; forward and both backward products) takes bf16
// inputs and sums in fp32 (nn/gemm.h gemm_bf16); parameters, gradients, LayerNorm, softmax,
// GELU and the loss stay fp32. The parameters are rounded once per forward (or, for the
// forward after a training step, by the optimizer: train_state.h).
enum vit_precision { VIT_FP32 = 0, VIT_BF16 = 1 };

// "fp32" -> VIT_FP32, "bf16" -> VIT_BF16; -1 for anything else.
int vit_precision_parse(const char *name);
const char *vit_precision_name(enum vit_precision precision);

// Makes the buffers VIT_BF16's (bf16 matmul inputs, a bf16 weight copy; params: the layout's
// total), carving them again; their contents are lost.
void vit_acts_enable_bf16(struct vit_acts *acts, size_t params);

struct vit_model {
    struct vit_layout layout;
    struct pool *pool;
    const struct kernels *k;
    enum vit_precision precision;  // VIT_BF16 needs vit_acts_enable_bf16 on the acts
};

// Forward through the head: fills acts (and acts->logits). images: (B, 3, S, S) normalised.
void vit_forward(const struct vit_model *model, struct vit_acts *acts, const float *params,
                 const float *images, int B);

// BCE-with-logits over acts->logits against multi-hot targets (B, V): returns the sum over
// classes and batch (double); writes acts->dlogits = (sigmoid - y) * grad_scale. For
// CoreNet's batch_mean pass grad_scale = 1 / global batch.
double vit_loss_bce(const struct vit_model *model, struct vit_acts *acts, const float *targets,
                    int B, float grad_scale);

// Softmax cross-entropy with label smoothing over acts->logits, for single-label targets
// given as one-hot rows (B, V) (a row with no 1 contributes nothing): with
// q = (1 - smoothing)·onehot + smoothing / V, returns sum_b -sum_v q_v log softmax(z)_v and
// writes acts->dlogits = (softmax(z) - q) * grad_scale. As torch.nn.CrossEntropyLoss(
// label_smoothing=smoothing, reduction='sum').
double vit_loss_softmax_ce(const struct vit_model *model, struct vit_acts *acts,
                           const float *targets, int B, float grad_scale, float smoothing);

// Called with [begin, end) float offsets of gradients that are final.
typedef void (*vit_grads_ready_fn)(void *ctx, size_t begin, size_t end);

// Backward from acts->dlogits; grads += d loss / d params. on_ready may be NULL.
// head_only: stop after the head's weight gradients (a frozen backbone, linear probing).
void vit_backward(const struct vit_model *model, struct vit_acts *acts, const float *params,
                  float *grads, int B, int head_only, vit_grads_ready_fn on_ready,
                  void *ready_ctx);
