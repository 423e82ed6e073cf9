#include "cli/bench_args.h"

#include <stdio.h>

int bench_args_set(struct config *cfg, const char *key, const char *value) {
    char assignment[512];
    snprintf(assignment, sizeof assignment, "%s=%s", key, value);
    return config_set(cfg, assignment);
}

int bench_args_take(struct config *cfg, int opt, const char *arg) {
    int rc;
    switch (opt) {
        case 'c': rc = config_load_file(cfg, arg); break;
        case 'S': rc = config_set(cfg, arg); break;
        case 'm': rc = bench_args_set(cfg, "model.name", arg); break;
        case 'i': rc = bench_args_set(cfg, "model.image_size", arg); break;
        case 'p': rc = bench_args_set(cfg, "model.patch_size", arg); break;
        case 'v': rc = bench_args_set(cfg, "model.num_classes", arg); break;
        default: return 0;
    }
    return rc == 0 ? 1 : -1;
}
