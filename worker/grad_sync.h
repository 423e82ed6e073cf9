// Gradient averaging across workers: buckets of finished gradients are summed with
// non-blocking reductions while backward continues on earlier layers (as PyTorch DDP does).
//
// vit_backward reports finished ranges from the end of the gradient buffer towards its start;
// grad_sync_ready merges them into buckets of at least bucket_floats and starts the reduction
// of each full one. grad_sync_finish starts the last bucket and waits for all. Bucket
// boundaries depend only on the layout and the bucket size, so every step, and every run with
// the same settings, reduces the same ranges in the same way.
//
// How a bucket is summed (struct grad_sync_options):
// - wire (train.grad_comm): fp32; or bf16, half the bytes, summed in fp32 at every hop and
//   rounded to bf16 between hops (worker/ring_allreduce.h: both error bounds).
// - collectives (train.collectives): ring, our own ring of point-to-point messages
//   (worker/ring_allreduce.h; the reduce-scatter and the leaders' allreduce too); or mpi, Open
//   MPI's non-blocking collectives (libnbc): fp32 MPI_Iallreduce (MPI_SUM) and
//   MPI_Ireduce_scatter, bf16 MPI_Iallreduce with our MPI_Op (bf16's reduce-scatter is
//   always the ring). Either way every worker ends with the same bits.
// - allreduce (train.allreduce): flat, one reduction over all workers; or hierarchical, when a
//   host runs several workers: each host's workers (MPI_Comm_split_type: shared memory) send
//   their gradients to one leader, which sums them in fp32 in host-rank order, the leaders
//   reduce among themselves (fp32 or bf16), and each leader sends the sum back to its host's
//   workers. Stages advance as their messages arrive, so buckets still overlap backward. auto:
//   hierarchical when more than one host exists and some host runs more than one worker, flat
//   otherwise.
// - shard_bounds (train.shard_optimizer, ZeRO stage 1): a reduce-scatter instead of the
//   allreduce (flat only): worker k ends with the sums of [bounds[k], bounds[k+1]) only, the
//   rest of its gradients left unreduced. Each bucket sends every owner the bucket's part of
//   its slice: the ring's reduce-scatter half (fp32, or bf16 with the owner's sums kept in
//   fp32), or with collectives mpi fp32 MPI_Ireduce_scatter. Buckets overlap backward as the
//   allreduce's do.
// CATLIP_TEST_HOSTS=K (a test hook) treats worker w as running on host w mod K, so that one
// machine exercises the hierarchical path.
#pragma once
#include <mpi.h>
#include <stddef.h>

#include "worker/ring_allreduce.h"
#include "worker/heartbeat.h"

enum grad_wire { GRAD_WIRE_FP32, GRAD_WIRE_BF16 };
enum grad_allreduce { GRAD_ALLREDUCE_AUTO, GRAD_ALLREDUCE_FLAT, GRAD_ALLREDUCE_HIERARCHICAL };
enum grad_collectives { GRAD_COLLECTIVES_RING, GRAD_COLLECTIVES_MPI };

struct grad_sync_options {
    size_t bucket_floats;               // a bucket holds at least this many gradients
    int overlap;                        // 0: the buckets are reduced one by one after backward
    enum grad_wire wire;                // train.grad_comm
    enum grad_allreduce allreduce;      // train.allreduce
    enum grad_collectives collectives;  // train.collectives
    const size_t *shard_bounds;  // (workers+1) NULL: allreduce; else reduce-scatter to slices
                                 // (kept by the caller while the grad_sync lives)
};

// Every option as a run gets it by default: 4 MiB buckets, overlap, fp32, auto, ring.
struct grad_sync_options grad_sync_default_options(void);
// "fp32" | "bf16", "auto" | "flat" | "hierarchical" and "ring" | "mpi" (config values); -1 if
// unknown.
int grad_wire_parse(const char *name, enum grad_wire *out);
int grad_allreduce_parse(const char *name, enum grad_allreduce *out);
int grad_collectives_parse(const char *name, enum grad_collectives *out);

struct grad_bucket;

struct grad_sync {
    MPI_Comm comm;  // the workers' communicator
    float *grads;
    size_t bucket_floats;
    int overlap;  // 0: one blocking reduction per bucket after backward
    enum grad_wire wire;
    enum grad_collectives collectives;
    int hierarchical;            // the allreduce chosen (auto resolved)
    const size_t *shard_bounds;  // reduce-scatter to these slices; NULL: allreduce
    int rank, size;              // in comm
    int hosts, max_workers_per_host;
    int host_rank, host_size;  // this worker's place among its host's workers
    // Communicators of their own (created by init, freed by free): ring and host messages
    // are point-to-point and must not meet other traffic (their tag is the bucket's index);
    // the leaders' collectives go out in bucket order on their own communicator.
    MPI_Comm flat_comm;    // flat: the reduction's (comm itself for fp32 through libnbc)
    MPI_Comm host_reduce;  // hierarchical: this host's workers (rank 0 leads), to the leader
    MPI_Comm host_bcast;   // hierarchical: the same group, from the leader
    MPI_Comm leaders;      // hierarchical: one worker per host; MPI_COMM_NULL elsewhere
    MPI_Op bf16_op;        // bf16 through MPI (RING_METHOD_MPI_OP); MPI_OP_NULL otherwise
    size_t pending_begin, pending_end;  // the bucket being collected (pending_begin..end)
    struct grad_bucket *buckets;        // this step's, in the order started
    int nbuckets, cap, first_unfinished;
    double wait_seconds;          // time blocked in grad_sync_finish this step
    struct heartbeat *heartbeat;  // waits go through it (the coordinator hears this worker);
                                  // NULL: nobody to tell (benchmarks, tests)
};

// fp32, flat: what every step did before the options existed.
void grad_sync_init(struct grad_sync *s, MPI_Comm comm, float *grads, size_t bucket_floats,
                    int overlap, struct heartbeat *heartbeat);
// Collective over comm (every worker calls it with the same options).
void grad_sync_init_options(struct grad_sync *s, MPI_Comm comm, float *grads,
                            const struct grad_sync_options *options, struct heartbeat *heartbeat);
// One line: "bf16 ring, hierarchical (2 hosts, up to 2 workers per host)".
const char *grad_sync_describe(const struct grad_sync *s, char *buf, size_t cap);
void grad_sync_free(struct grad_sync *s);
// Starts a step (no buckets pending).
void grad_sync_begin(struct grad_sync *s);
// vit_grads_ready_fn: [begin, end) of grads is final.
void grad_sync_ready(void *s, size_t begin, size_t end);
// Starts the last bucket and waits for every reduction; gradients are then summed over workers
// (with shard_bounds: this worker's slice of them).
void grad_sync_finish(struct grad_sync *s);
