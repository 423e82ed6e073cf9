// What every rank of one `catlip train` knows about the run: the configuration, its place
// in the job, and the plan rank 0 decided (fresh start or resume point). Both roles read it;
// neither role's state is in it (they talk through train/link.h).
#pragma once
#include <mpi.h>
#include <stdint.h>

#include "core/config.h"
#include "nn/model.h"

#define RUN_HOST_MAX 64  // bytes kept of a host name

struct run {
    struct config cfg;
    int single_process;  // no launcher: coordinator and one worker in this process
    int world_rank, world_size;
    int nworkers, worker_index;  // worker_index = world rank - 1 (0 in single-process mode)
    int local_rank;              // rank among the ranks on this node (MPI_COMM_TYPE_SHARED)
    MPI_Comm workers;            // the workers' communicator (MPI_COMM_NULL when single)
    char run_id[64];
    struct vit_config model;
    uint64_t vocab_hash;  // of data.vocab (0 for synthetic data)
    uint64_t tokenizer_hash;  // model.objective clip: of data.tokenizer (0 otherwise)
    int64_t epoch_samples, steps_per_epoch, total_steps;
    int64_t start_step;                        // 0, or the step of the checkpoint resumed from
    char resume_path[CONFIG_STRING_MAX + 64];  // checkpoint to load, or ""
    // Rank 0 of a launched job: the host each world rank runs on (hosts[r]), so that a lost
    // worker can be named with its host; NULL elsewhere. Freed by run_free_hosts.
    char (*hosts)[RUN_HOST_MAX];
};

void run_free_hosts(struct run *run);

// Scheduled checkpoint after `steps_done` steps: every checkpoint.every_steps, at the end of
// each epoch, and at the end of the run.
int run_checkpoint_due(const struct run *run, int64_t steps_done);
