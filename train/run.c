#include "train/run.h"

#include <stdlib.h>

int run_checkpoint_due(const struct run *run, int64_t steps_done) {
    if (steps_done == run->total_steps) return 1;
    if (run->cfg.checkpoint.every_steps > 0 && steps_done % run->cfg.checkpoint.every_steps == 0)
        return 1;
    return run->steps_per_epoch > 0 && steps_done % run->steps_per_epoch == 0;
}

void run_free_hosts(struct run *run) {
    free(run->hosts);
    run->hosts = NULL;
}
