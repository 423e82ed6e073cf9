// The options the bench commands share: a run configuration (-c FILE, --set key=value) and the
// model to time (--model, --image-size, --patch-size, --classes), as config assignments.
#pragma once
#include "core/config.h"

// Takes getopt's `opt` ('c', 'S', 'm', 'i', 'p', 'v') with its argument: 1 taken, 0 not one
// of these, -1 a bad value (catlip_error set).
int bench_args_take(struct config *cfg, int opt, const char *arg);
// config_set of "key=value"; 0, or -1 with catlip_error.
int bench_args_set(struct config *cfg, const char *key, const char *value);
