// Gradient averaging across workers: buckets of finished gradients are summed with
// non-blocking allreduces while backward continues on earlier layers (as PyTorch DDP does).
//
// vit_backward reports finished ranges from the end of the gradient buffer towards its start;
// grad_sync_ready merges them into buckets of at least bucket_floats and starts an
// MPI_Iallreduce for each full one. grad_sync_finish starts the last bucket and waits for all.
// Bucket boundaries depend only on the layout and the bucket size, so every step, and every
// run with the same settings, reduces the same ranges in the same way.
#pragma once
#include <mpi.h>
#include <stddef.h>

#include "worker/heartbeat.h"

struct grad_sync {
    MPI_Comm comm;        // the workers' communicator
    float *grads;
    size_t bucket_floats;
    int overlap;          // 0: one blocking allreduce per bucket after backward
    size_t pending_begin, pending_end;  // the bucket being collected (pending_begin..end)
    MPI_Request *requests;
    int nrequests, cap;
    size_t *bucket_begin, *bucket_end;  // ranges of started buckets, for the no-overlap path
    double wait_seconds;  // time blocked in grad_sync_finish this step
    struct heartbeat *heartbeat;  // waits go through it (the coordinator hears this worker)
};

void grad_sync_init(struct grad_sync *s, MPI_Comm comm, float *grads, size_t bucket_floats,
                    int overlap, struct heartbeat *heartbeat);
void grad_sync_free(struct grad_sync *s);
// Starts a step (no buckets pending).
void grad_sync_begin(struct grad_sync *s);
// vit_grads_ready_fn: [begin, end) of grads is final.
void grad_sync_ready(void *s, size_t begin, size_t end);
// Starts the last bucket and waits for every reduction; gradients are then summed over workers.
void grad_sync_finish(struct grad_sync *s);
