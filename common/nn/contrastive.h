// CLIP's symmetric contrastive loss (InfoNCE), for model.objective clip: the pure math. The
// MPI gather/scatter around it is worker/contrastive_sync.h.
//
// Over a global batch of N image-text pairs with L2-normalised embeddings I, T (N, D) and a
// learnable log-scale t (s = exp(min(t, ln 100)): OpenCLIP's clamp at 100):
//
//   logits = s · I · Tᵀ   (N, N)
//   loss   = ( CE(logits, diag) + CE(logitsᵀ, diag) ) / 2        CE: mean over the N rows
//
// A worker owns rows [begin, begin + rows) of the global batch. contrastive_loss_rows gives
// that worker's share: its rows of logits (image -> every text) and of logitsᵀ (text -> every
// image), each row's cross-entropy over all N columns, divided by 2N. The shares of all workers
// sum to the whole-batch loss, and the gradients it accumulates into the gathered (N, D)
// gradient buffers, once summed over workers (a reduce-scatter sends each row's sum to its
// owner), are the whole-batch gradients of each embedding — the exactness CLIP's objective
// needs to be the same objective at any worker count.
#pragma once
#include <stddef.h>

#include "core/pool.h"
#include "nn/kernels.h"

// ln(1 / 0.07), CLIP's initial log-scale.
#define CONTRASTIVE_LOG_SCALE_INIT 2.6592600369327779f
// The scale exp(t) is clamped at this.
#define CONTRASTIVE_SCALE_MAX 100.0f

// s = exp(min(t, ln 100)).
float contrastive_scale(float log_scale);

// out = in / |in| per row, norms = |in| (n rows of D). Rows of zeros stay zeros (the norm is
// taken as at least 1e-12, as torch.nn.functional.normalize). out may not alias in.
void l2_normalize_forward(float *out,       // (n, D)
                          float *norms,     // (n)
                          const float *in,  // (n, D)
                          long n, int D);
// din = (dout - out·(out·dout)) / norm, overwritten; may alias dout.
void l2_normalize_backward(float *din,         // (n, D)
                           const float *dout,  // (n, D)
                           const float *out,   // (n, D) the forward's output
                           const float *norms, // (n)
                           long n, int D);

// This worker's share of the loss (returned, double), with
//   dimage_all, dtext_all += d share / d (gathered normalised embeddings)   (N, D)
//   *dlog_scale += d share / d t   (0 when t > ln 100, where the clamp holds)
// image_all, text_all: every worker's normalised rows, in global order (N, D). scratch: at
// least rows * N floats. The rows are split over the pool in fixed blocks (at most 64 threads).
double contrastive_loss_rows(struct pool *pool, const struct kernels *k,
                             float *dimage_all,       // (N, D) +=
                             float *dtext_all,        // (N, D) +=
                             float *dlog_scale,       // (1) +=
                             float *scratch,          // (rows, N)
                             const float *image_all,  // (N, D)
                             const float *text_all,   // (N, D)
                             int N, int D, int begin, int rows, float log_scale);
