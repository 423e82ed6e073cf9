// NumPy .npy files (format version 1.0): a magic string, a Python-dict header giving dtype,
// order and shape, padded to 64 bytes, then the raw little-endian data. np.load reads them.
#pragma once
#include <stdint.h>

// Writes a C-order float32 array of `ndim` (1..4) dimensions to path (path.tmp, then rename).
// Returns 0, or -1 with catlip_error() naming the file.
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
