// libFuzzer target: the safetensors reader (io/safetensors.h) on any file. A file that is
// accepted must describe tensors whose bytes lie inside it and match dtype x shape, and it
// must survive safetensors_write and read back the same.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "tests/fuzz/fuzz_file.h"

static uint64_t element_size(const char *dtype) {
    static const struct {
        const char *name;
        uint64_t bytes;
    } known[] = {{"F32", 4}, {"I32", 4}, {"U32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
                 {"F16", 2}, {"BF16", 2}, {"I16", 2}, {"U8", 1}, {"I8", 1}, {"BOOL", 1}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(dtype, known[i].name)) return known[i].bytes;
    return 0;
}

static void check_file(const struct safetensors_file *f) {
    for (int i = 0; i < f->count; i++) {
        const struct safetensor *t = &f->tensors[i];
        if (t->ndim < 0 || t->ndim > 4) __builtin_trap();
        unsigned __int128 bytes = element_size(t->dtype);
        if (!bytes) __builtin_trap();
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) __builtin_trap();
            bytes *= (uint64_t)t->shape[d];
        }
        if (bytes != t->bytes) __builtin_trap();
        const uint8_t *p = t->data;
        if (p < f->bytes + 8 || p > f->bytes + f->size || t->bytes > (size_t)(f->bytes + f->size - p))
            __builtin_trap();
        if (safetensors_find(f, t->name) == NULL) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    struct safetensors_file f;
    fuzz_error_clear();
    if (safetensors_read(path, &f) != 0) {
        fuzz_error_check();
        close(fd);
        return 0;
    }
    check_file(&f);
    // What was read writes and reads back (names are unique in the JSON header, so the
    // tensors come back in the same order).
    char out[128];
    snprintf(out, sizeof out, "%s/out.safetensors", fuzz_scratch_dir());
    if (safetensors_write(out, f.tensors, f.count, f.metadata_json) == 0) {
        struct safetensors_file g;
        if (safetensors_read(out, &g) != 0 || g.count != f.count) __builtin_trap();
        check_file(&g);
        for (int i = 0; i < f.count; i++) {
            const struct safetensor *a = &f.tensors[i], *b = safetensors_find(&g, a->name);
            if (!b || strcmp(a->dtype, b->dtype) || a->ndim != b->ndim || a->bytes != b->bytes ||
                memcmp(a->shape, b->shape, sizeof a->shape) || (a->bytes && memcmp(a->data, b->data, a->bytes)))
                __builtin_trap();
        }
        safetensors_free(&g);
    }
    safetensors_free(&f);
    close(fd);
    return 0;
}
