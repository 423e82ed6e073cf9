// safetensors files: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the raw little-endian data. PyTorch, NumPy and
// many tools read them; catlip writes exports and test dumps in this format.
#pragma once
#include <stddef.h>
#include <stdint.h>

struct safetensor {
    const char *name;
    const char *dtype;  // "F32", "F64", "I64", ...
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t bytes;
};

// Writes the tensors in the order given (metadata_json: NULL, or a JSON object text of
// string values for "__metadata__"). Written to path.tmp then renamed. Returns -1 on error.
int safetensors_write(const char *path, const struct safetensor *tensors, int count,
                      const char *metadata_json);

// A whole file in memory; tensors point into it.
struct safetensors_file {
    uint8_t *bytes;
    size_t size;
    int count;
    struct safetensor *tensors;  // names/dtypes are malloc'ed copies
    char *metadata_json;         // the "__metadata__" object as JSON text, or NULL
};

// Reads and validates a file (header length, JSON, offsets inside the file, sizes matching
// dtype and shape). Returns -1 with catlip_error() naming the file and the problem.
int safetensors_read(const char *path, struct safetensors_file *out);
const struct safetensor *safetensors_find(const struct safetensors_file *f, const char *name);
void safetensors_free(struct safetensors_file *f);
