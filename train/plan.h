// The plan every rank of `catlip train` agrees on before the roles split: the model shape,
// the sample count and step schedule, and the resume point. Rank 0 does everything that reads
// the outside world (shard indexes, checkpoints, the run directory) and broadcasts the result,
// so that every rank gets the same verdict.
#pragma once
#include "train/run.h"

// Every rank: the head's width (the vocabulary's size for pre-training on shards) and the
// model shape. Fills run->model and run->vocab_hash. 0, or -1 with catlip_error().
int plan_resolve_classes(struct run *run);

// Rank 0: samples in an epoch and the step count. For shards this loads (or builds and
// caches) every shard's index, so the workers then find them ready. 0, or -1 with
// catlip_error().
int plan_count_samples(struct run *run);

// Rank 0: creates the run directory, picks the checkpoint to resume from (`resume` is NULL,
// "auto" or a path) and checks it against the model and vocabulary, names the run and records
// its configuration (RUN_DIR/config.yaml). 0, or -1 with catlip_error().
int plan_run(struct run *run, const char *resume);

// Rank 0 tells every rank whether planning worked (planned_ok) and, if so, the plan. Returns
// planned_ok as rank 0 had it.
int plan_share(struct run *run, int planned_ok);
