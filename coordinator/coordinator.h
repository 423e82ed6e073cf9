// The coordinator role (rank 0): collects progress, logs it, writes checkpoints from the
// state worker 0 streams, and relays stop/checkpoint requests. It hears the workers only
// through the link (train/link.h) and knows nothing else of them.
//
// In a launched job it runs coordinator_serve(): a libuv loop that polls the link on a short
// timer (Open MPI has no descriptor to wait on; a blocking receive would spin a core), and
// handles signals. In single-process mode the in-process link delivers the worker's messages
// by direct call, and the loop (status server only) runs on a thread of its own.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "catlip.pb-c.h"
#include "train/link.h"
#include "train/run.h"

// Becomes the link's receiver. Exits with a message when RUN_DIR/metrics.jsonl cannot be
// opened.
struct coordinator *coordinator_create(struct run *run, struct link *link);
void coordinator_destroy(struct coordinator *c);

// Runs until every worker has finished. Returns the job's exit status.
int coordinator_serve(struct coordinator *c);

// The job's exit status so far: 0, the first non-zero status a worker reported (LINK_DONE),
// or 1 after a checkpoint that could not be written.
int coordinator_exit_status(struct coordinator *c);
// How many workers have reported LINK_DONE.
int coordinator_workers_done(struct coordinator *c);

// ---------------------------------------------------------------------------------------
// for the status server (coordinator/status_server.h), called on the coordinator's loop
// thread. In a launched job that loop is coordinator_serve's; in single-process mode it runs
// on a thread of its own (coordinator_start_loop_thread), so these take the coordinator's lock.

// The coordinator's libuv loop: status listeners attach to it.
struct uv_loop_s *coordinator_loop(struct coordinator *c);
// Fills a StatusReply (with workers when include_workers). Strings and sub-messages point
// into storage owned by the coordinator, valid until the next call on this thread.
void coordinator_fill_status(struct coordinator *c, Catlip__StatusReply *reply, int include_workers);
// A client asked to checkpoint now (stop = 0) or to checkpoint and stop (stop = 1).
void coordinator_control(struct coordinator *c, int stop);
// Logged intervals so far, oldest first (at most the last COORDINATOR_HISTORY): copies up to
// max points into the arrays and returns how many.
#define COORDINATOR_HISTORY 2048
int coordinator_history(struct coordinator *c, int64_t *steps, double *loss, double *lr,
                        double *images_per_second, int max);
// Single-process mode: runs the loop (status listeners, signals stay with the worker) on a
// background thread until coordinator_destroy.
int coordinator_start_loop_thread(struct coordinator *c);
