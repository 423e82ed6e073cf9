// One image file (JPEG or PNG) to the model's evaluation input: the same resize of the shorter
// side and centre crop as the evaluation pipeline (augment.h, train = 0), normalised.
#pragma once
#include "data/transform.h"

// out: (3, S, S). Returns 0, or -1 with catlip_error() naming the file (unreadable, not a
// JPEG or PNG, too small, corrupt).
int image_file_transform(struct transform_ctx *ctx, const char *path, int image_size,
                         const float mean[3], const float std[3], float *out);
