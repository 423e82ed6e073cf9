// GradCache (Gao et al. 2021) for model.objective clip with train.micro_batch: the
// contrastive loss spans the whole global batch, so a step cannot add up per-micro-batch
// losses as the CatLIP path does. Instead a step runs in two passes over its micro-batches:
//
//   1. forward only, micro-batch 0..M-1: keep each one's inputs (images, token ids) and its
//      image and text embeddings (this buffer: the slice's rows, nothing per activation);
//   2. the contrastive loss once, over every row (worker/contrastive_sync.h): d loss / d each
//      embedding of the slice;
//   3. backward per micro-batch, M-1 first (its activations are still those of pass 1), then
//      M-2..0 each after a second forward from the kept inputs, with its rows of the
//      embeddings' gradients; parameter gradients add up (grads +=).
//
// The gradients are those of the unsplit step up to float summation order; the cost is one
// extra forward of M-1 micro-batches; the memory is the slice's inputs and embeddings on top
// of one micro-batch's activations (a 224-pixel image is 0.6 MB of floats).
#pragma once
#include <stdint.h>

struct grad_cache {
    int max_rows;       // the worker's slice
    int rows;           // kept so far this step
    int micros;         // micro-batches kept so far
    int image_floats;   // per row: 3 * S * S
    int context;        // token ids per row
    int dim;            // embedding width E
    int *micro_begin;   // (micros + 1) row offsets; sized for max_rows + 1 micro-batches
    float *images;      // (max_rows, image_floats)
    int32_t *ids;       // (max_rows, context)
    float *image_emb, *text_emb;    // (max_rows, E) pass 1's embeddings
    float *dimage, *dtext;          // (max_rows, E) the loss's gradients of them
};

void grad_cache_init(struct grad_cache *c, int max_rows, int image_floats, int context, int dim);
void grad_cache_free(struct grad_cache *c);
// Starts a step: nothing kept.
void grad_cache_reset(struct grad_cache *c);
// Keeps one micro-batch's inputs and embeddings (rows of each, in order).
void grad_cache_keep(struct grad_cache *c, const float *images, const int32_t *ids,
                     const float *image_emb, const float *text_emb, int rows);
