// CLIP's contrastive loss over the global batch, across workers (model.objective clip): the MPI
// around nn/contrastive.h's math.
//
// One step, on every worker of `comm` at once (a collective):
//   1. L2-normalise this worker's image and text embeddings (rows, D);
//   2. MPI_Allgather the row counts, MPI_Allgatherv the normalised rows (worker order = global
//      order: worker w holds the w-th contiguous slice of the global batch, data/order.h);
//   3. this worker's share of the loss: its rows against every column, gradients accumulated
//      into gathered (N, D) buffers (contrastive_loss_rows);
//   4. MPI_Reduce_scatter sums the gathered gradients and hands each worker its own rows: the
//      whole-batch gradient of each of its embeddings;
//   5. back through the normalisation to the raw embeddings' gradients.
// The returned loss is the whole batch's (an MPI_Allreduce of the shares). dlog_scale gets only
// this worker's share of the log-scale gradient: the log-scale is a parameter like any other,
// and the step's gradient allreduce sums the shares.
//
// Counts may differ between workers (a worker's skipped samples); a worker with 0 rows takes
// part with nothing. Buffers are sized once for max_rows per worker. The collectives are
// non-blocking and waited for through the worker's heartbeat (worker/heartbeat.h), as the
// gradient allreduce is, so a lost worker shows as the only silent one; an MPI error is fatal
// (catlip_die), as it is there.
//
// In the worker's step: the loss is a mean over the N rows actually gathered, so skipped
// samples need no G / used rescaling of these gradients (the CatLIP path's batch_mean rescale
// must not be applied on top). The loss is not a sum over micro-batches: with
// train.micro_batch the step computes every micro-batch's embeddings first, calls this once,
// then redoes each micro-batch's forward and backward from its rows (worker/grad_cache.h).
#pragma once
#include <mpi.h>

#include "core/pool.h"
#include "nn/kernels.h"
#include "worker/heartbeat.h"

struct contrastive_sync {
    MPI_Comm comm;  // the workers' communicator
    int rank, size;
    int max_rows, dim;  // per worker; embedding width D
    int *counts, *displs;  // (size) in floats, for the v-collectives
    int *rows;             // (size) rows per worker this step
    float *image_norm, *text_norm;  // (max_rows, D) this worker's normalised rows
    float *image_norms, *text_norms;  // (max_rows) their norms
    float *image_all, *text_all;      // (size * max_rows, D) gathered
    float *dimage_all, *dtext_all;    // (size * max_rows, D) gradients of the gathered rows
    float *scratch;                   // (max_rows, size * max_rows) logits
    struct heartbeat *heartbeat;      // waits go through it; NULL: plain MPI_Waitall
    // The last step's time in each part (seconds; `catlip bench objective` reports them):
    // normalising and gathering the embeddings (waiting for the slowest worker included), this
    // worker's rows of the loss and its gradients, returning the gradients (reduce-scatter,
    // the normalisation's backward and the loss's sum).
    double gather_seconds, loss_seconds, scatter_seconds;
};

// max_rows: the most rows any worker of comm will hold (the largest slice, the same on every
// worker): the gathered buffers hold size x max_rows rows.
// comm MPI_COMM_NULL: one worker in a process without MPI (catlip train with no launcher); the
// same math, no collectives.
void contrastive_sync_init(struct contrastive_sync *s, MPI_Comm comm, int max_rows, int dim,
                           struct heartbeat *heartbeat);
void contrastive_sync_free(struct contrastive_sync *s);

// The whole-batch loss; dimage, dtext (rows, D) overwritten with d loss / d the raw embeddings
// of this worker's rows; *dlog_scale += this worker's share of d loss / d log_scale.
double contrastive_sync_step(struct contrastive_sync *s, struct pool *pool,
                             const struct kernels *k,
                             float *dimage,       // (rows, D)
                             float *dtext,        // (rows, D)
                             float *dlog_scale,   // (1) +=
                             const float *image,  // (rows, D) this worker's image embeddings
                             const float *text,   // (rows, D) this worker's text embeddings
                             int rows, float log_scale);
