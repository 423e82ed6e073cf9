// The worker role: a full model replica training on its slice of every global batch,
// averaging gradients with the other workers, reporting progress to the coordinator and
// streaming its state to it for checkpoints, all through the link (train/link.h).
#pragma once
#include <signal.h>

#include "train/link.h"
#include "train/run.h"

// Set from signal handlers: 1 = checkpoint at the next step boundary and stop.
extern volatile sig_atomic_t worker_stop_requested;

// Trains from run->start_step to run->total_steps (or until stopped). Returns the process
// exit status (0 on success or a clean stop, 2 when setup failed: a checkpoint, head file or
// shard that cannot be used), which it has also sent to the coordinator (LINK_DONE).
int worker_run(struct run *run, struct link *link);
