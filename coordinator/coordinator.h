// The coordinator role (rank 0): plans the run, collects progress, logs it, writes
// checkpoints from the state worker 0 streams, and relays stop/checkpoint requests.
//
// In a launched job it runs coordinator_serve(): a libuv loop that polls MPI on a short
// timer (Open MPI has no descriptor to wait on; a blocking receive would spin a core), and
// handles signals. In single-process mode the worker calls the coordinator_on_* functions
// directly, and nothing else changes.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cli/run.h"

struct coordinator *coordinator_create(struct run *run);
void coordinator_destroy(struct coordinator *c);

// Runs until every worker has finished. Returns the job's exit status.
int coordinator_serve(struct coordinator *c);

// Events from workers (also the single-process path).
void coordinator_on_progress_packed(struct coordinator *c, const uint8_t *data, size_t len);
// A checkpoint starts with its packed Catlip__CheckpointHeader, then tensor records.
void coordinator_on_checkpoint_begin(struct coordinator *c, const uint8_t *header, size_t len);
void coordinator_on_checkpoint_record(struct coordinator *c, const uint8_t *data, size_t len);
void coordinator_on_checkpoint_end(struct coordinator *c, int64_t step);
// Single-process mode: the command the worker should act on at this step boundary.
int coordinator_pending_command(struct coordinator *c);
