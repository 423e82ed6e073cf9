#include "worker/optim_shard.h"

#include <string.h>

#include "core/check.h"
#include "core/log.h"

void optim_shard_bounds(size_t total, int workers, size_t *bounds) {
    bounds[0] = 0;
    for (int k = 1; k < workers; k++) {
        size_t even =
            (size_t)((unsigned long long)total * (unsigned long long)k / (unsigned)workers);
        bounds[k] = even / OPTIM_NORM_BLOCK * OPTIM_NORM_BLOCK;
    }
    bounds[workers] = total;
}

// Any tag would do (see optim_shard_step); one of its own reads better in a trace.
#define OPTIM_SHARD_GATHER_TAG 32767

static void check_mpi(int rc, const char *what) {
    if (rc != MPI_SUCCESS) catlip_die("sharded optimizer: %s failed (MPI error %d)", what, rc);
}

void optim_shard_init(struct optim_shard *o, MPI_Comm comm, size_t total, int ring,
                      struct heartbeat *heartbeat) {
    memset(o, 0, sizeof *o);
    o->comm = comm;
    o->ring = ring;
    o->total = total;
    o->heartbeat = heartbeat;
    MPI_Comm_rank(comm, &o->rank);
    MPI_Comm_size(comm, &o->size);
    // MPI counts are int: a slice, and the offset of the last, must stay below 2^31 floats.
    if (total > (size_t)0x7fffffff)
        catlip_die("train.shard_optimizer: %zu parameters exceed MPI's int counts", total);
    const int n = o->size;
    o->bounds = xmalloc((size_t)(n + 1) * sizeof *o->bounds);
    o->counts = xmalloc((size_t)n * sizeof *o->counts);
    o->displs = xmalloc((size_t)n * sizeof *o->displs);
    o->block_counts = xmalloc((size_t)n * sizeof *o->block_counts);
    o->block_displs = xmalloc((size_t)n * sizeof *o->block_displs);
    optim_shard_bounds(total, n, o->bounds);
    const size_t blocks = optim_norm_blocks(total);
    for (int k = 0; k < n; k++) {
        o->displs[k] = (int)o->bounds[k];
        o->counts[k] = (int)(o->bounds[k + 1] - o->bounds[k]);
        // Slices start at block boundaries, so the blocks partition with them (the last
        // slice takes the short last block).
        size_t first = o->bounds[k] / OPTIM_NORM_BLOCK;
        size_t end = k == n - 1 ? blocks : o->bounds[k + 1] / OPTIM_NORM_BLOCK;
        o->block_displs[k] = (int)first;
        o->block_counts[k] = (int)(end - first);
    }
}

void optim_shard_free(struct optim_shard *o) {
    ring_allreduce_free(&o->gather);
    free(o->bounds);
    free(o->counts);
    free(o->displs);
    free(o->block_counts);
    free(o->block_displs);
    memset(o, 0, sizeof *o);
}

size_t optim_shard_state_bytes(const struct train_state *ts) {
    return (ts->ema ? 3 : 2) * (ts->shard_end - ts->shard_begin) * sizeof(float);
}

// A collective started on the workers' communicator, waited for with heartbeats.
static void wait_collective(struct optim_shard *o, int rc, MPI_Request *request, const char *what) {
    check_mpi(rc, what);
    check_mpi(heartbeat_waitall(o->heartbeat, 1, request), what);
}

void optim_shard_step(struct optim_shard *o, struct train_state *ts) {
    CATLIP_ASSERT(ts->shard_begin == o->bounds[o->rank] && ts->shard_end == o->bounds[o->rank + 1]);
    double t0 = time_now();
    // This worker's blocks of the norm, then everyone's, folded in block order.
    const int me = o->rank;
    optim_norm_partials(ts->model.pool, ts->model.k, ts->grads, o->total,
                        (size_t)o->block_displs[me], (size_t)o->block_counts[me],
                        ts->norm_blocks + o->block_displs[me]);
    double t1 = time_now();
    MPI_Request request;
    wait_collective(
        o,
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ts->norm_blocks, o->block_counts,
                        o->block_displs, MPI_DOUBLE, o->comm, &request),
        &request, "allgathering the gradient norm's block sums");
    double t2 = time_now();
    train_apply_update_with_norm(ts, optim_norm_fold(ts->norm_blocks, optim_norm_blocks(o->total)));
    double t3 = time_now();
    if (o->ring) {
        // grad_sync_finish has completed every message of the gradients' rings, so the tag
        // cannot meet one of theirs.
        ring_allgather_start(&o->gather, o->comm, OPTIM_SHARD_GATHER_TAG, ts->params, o->total,
                             o->bounds);
        while (!ring_allreduce_test(&o->gather)) heartbeat_beat(o->heartbeat);
    } else {
        wait_collective(o,
                        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, ts->params, o->counts,
                                        o->displs, MPI_FLOAT, o->comm, &request),
                        &request, "allgathering the updated weights");
    }
    double t4 = time_now();
    o->update_seconds += (t1 - t0) + (t3 - t2);
    o->gather_seconds += (t2 - t1) + (t4 - t3);
    o->steps++;
}

void optim_shard_gather(struct optim_shard *o, const float *slice, float *full) {
    MPI_Request request;
    wait_collective(o,
                    MPI_Igatherv(slice, o->counts[o->rank], MPI_FLOAT, full, o->counts, o->displs,
                                 MPI_FLOAT, 0, o->comm, &request),
                    &request, "gathering the optimizer state to worker 0");
}
