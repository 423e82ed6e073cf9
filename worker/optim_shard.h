// The sharded optimizer (train.shard_optimizer: ZeRO stage 1). Worker k of N owns the slice
// [bounds[k], bounds[k+1]) of the flat parameter buffer: it receives only that slice's summed
// gradients (grad_sync's reduce-scatter), keeps AdamW moments and EMA for it only (1/N of the
// unsharded optimizer memory), updates it, and the workers then allgather the new weights so
// every replica runs the next forward on the full model.
//
// Slices start at multiples of OPTIM_NORM_BLOCK (nn/optim.h) and depend only on the buffer's
// length and N. The gradient norm for clipping is the unsharded one, bit for bit: each worker
// sums the squares of its own blocks, the block sums are allgathered in block order, and every
// worker folds all of them as optim_grad_norm does. AdamW and EMA are elementwise, so an
// element's update does not depend on which worker applies it: given the same summed
// gradients, sharded and unsharded weights are the same bits.
//
// Checkpoints stay complete: at checkpoint time the moment and EMA slices are gathered to
// worker 0 (which streams them as today); resuming reads the full weights and this worker's
// slice of the moments and EMA (checkpoint_stream_tensors_range: no full copy is ever held),
// so a checkpoint moves freely between sharded and unsharded runs and worker counts. Every
// wait goes through the heartbeat (worker/heartbeat.h).
#pragma once
#include <mpi.h>
#include <stddef.h>

#include "nn/train_state.h"
#include "worker/heartbeat.h"
#include "worker/ring_allreduce.h"

struct optim_shard {
    MPI_Comm comm;  // the workers'
    int rank, size;
    size_t total;
    size_t *bounds;                    // (size+1) slice k: [bounds[k], bounds[k+1])
    int *counts, *displs;              // (size) the slices in floats, for MPI
    int *block_counts, *block_displs;  // (size) the slices in norm blocks
    struct heartbeat *heartbeat;
    // The new weights' allgather: our ring (train.collectives: ring) or MPI_Iallgatherv (mpi).
    int ring;
    struct ring_allreduce gather;
    // Totals since init, for the end-of-run log line.
    double update_seconds;  // norm, clipping, AdamW, EMA on the slice
    double gather_seconds;  // the norm's block sums and the weights' allgather
    int64_t steps;
};

// The slices of a buffer of total floats among workers: bounds[0] = 0, bounds[workers] =
// total, bounds[k] = k·total/workers rounded down to a multiple of OPTIM_NORM_BLOCK.
void optim_shard_bounds(size_t total, int workers, size_t *bounds);
// Collective-free: every worker computes the same slices. ring: the weights' allgather runs
// on our ring (ring_allgather_start), else on MPI_Iallgatherv; both copy exactly.
void optim_shard_init(struct optim_shard *o, MPI_Comm comm, size_t total, int ring,
                      struct heartbeat *heartbeat);
void optim_shard_free(struct optim_shard *o);
// Optimizer memory of a train_state (moments and EMA) in bytes, for the log.
size_t optim_shard_state_bytes(const struct train_state *ts);
// After grad_sync_finish reduce-scattered the gradients to o->bounds and ts was sharded to
// this worker's slice (train_state_shard): the global gradient norm, clipping, AdamW and EMA
// on the slice, then the allgather of every slice's new weights. ts->step += 1.
void optim_shard_step(struct optim_shard *o, struct train_state *ts);
// Gathers every worker's slice of a state buffer (slice: its bounds[rank].. part) into full
// (o->total floats) at worker 0; full is NULL elsewhere. Collective over the workers.
void optim_shard_gather(struct optim_shard *o, const float *slice, float *full);
