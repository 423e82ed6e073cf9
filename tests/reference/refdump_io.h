// What the reference dump tools (catlip_refdump.c, clip_refdump.c) share: writing named float
// tensors of a parameter table to safetensors files that the PyTorch checkers read.
#pragma once
#include <stdio.h>

#include "core/check.h"
#include "io/safetensors.h"
#include "nn/model.h"

// Appends the table's tensors as views of buf, named prefix + name (names: storage, 96 each).
static inline void refdump_add_tensors(struct safetensor *out, int *n,
                                       const struct tensor_info *tensors, int ntensors,
                                       const float *buf, const char *prefix, char names[][96]) {
    for (int i = 0; i < ntensors; i++) {
        const struct tensor_info *t = &tensors[i];
        snprintf(names[*n], 96, "%s%s", prefix, t->name);
        out[*n] = (struct safetensor){names[*n], "F32", t->ndim, {t->shape[0], t->shape[1],
                                      t->shape[2], t->shape[3]}, buf + t->offset,
                                      t->numel * sizeof(float)};
        (*n)++;
    }
}

// dir/file, or exit with the error.
static inline void refdump_write(const char *dir, const char *file, struct safetensor *t, int n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (safetensors_write(path, t, n, NULL) != 0) catlip_die("%s", catlip_error());
}
