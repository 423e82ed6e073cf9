// What every rank of one `catlip train` knows about the run: the configuration, its place
// in the job, and the plan the coordinator decided (fresh start or resume point).
#pragma once
#include <mpi.h>
#include <stdint.h>

#include "core/config.h"
#include "nn/model.h"

// MPI tags of coordinator <-> worker messages (payloads are packed protobuf messages).
enum run_tag {
    TAG_PROGRESS = 11,     // worker -> coordinator: Catlip__Progress
    TAG_COMMAND = 12,      // coordinator -> workers: Catlip__Command
    TAG_CKPT_RECORD = 13,  // worker 0 -> coordinator: a packed tensor-chunk CheckpointRecord
    TAG_CKPT_END = 14,     // worker 0 -> coordinator: int64 step (negative: aborted)
    TAG_DONE = 15,         // worker -> coordinator: int32 exit status
    TAG_CKPT_BEGIN = 16,   // worker 0 -> coordinator: packed Catlip__CheckpointHeader
};

struct coordinator;

struct run {
    struct config cfg;
    int single_process;       // no launcher: coordinator and one worker in this process
    int world_rank, world_size;
    int nworkers, worker_index;  // worker_index = world rank - 1 (0 in single-process mode)
    int local_rank;           // rank among the ranks on this node (MPI_COMM_TYPE_SHARED)
    MPI_Comm workers;         // the workers' communicator (MPI_COMM_NULL when single)
    char run_id[64];
    struct vit_config model;
    uint64_t vocab_hash;      // of data.vocab (0 for synthetic data)
    int64_t epoch_samples, steps_per_epoch, total_steps;
    int64_t start_step;       // 0, or the step of the checkpoint resumed from
    char resume_path[CONFIG_STRING_MAX + 64];  // checkpoint to load, or ""
    struct coordinator *coordinator;  // single-process mode: the in-process coordinator
};

// Scheduled checkpoint after `steps_done` steps: every checkpoint.every_steps, at the end of
// each epoch, and at the end of the run.
int run_checkpoint_due(const struct run *run, int64_t steps_done);
