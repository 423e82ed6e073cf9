// libFuzzer target: shard indexes (data/shard_index.h). The first input byte picks the case:
//   even: the rest is a tar shard; the index built from it is written, read back and must be
//         equal, and every sample must lie inside the shard;
//   odd:  the rest is an index file read against a shard of matching size and mtime (the
//         harness patches those header fields so that the fuzzer need not guess them; with
//         bit 1 set it also recomputes the trailing FNV-1a hash, so that the structural checks
//         behind the hash are reached). An index that is accepted must be safe to use.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "data/shard_index.h"
#include "tests/fuzz/fuzz_file.h"

enum { HEADER_BYTES = 88, SIZE_FIELD = 16, MTIME_FIELD = 24 };

static void check_usable(const struct shard_index *ix, uint64_t shard_size) {
    if (ix->count && !ix->samples) __builtin_trap();
    for (uint64_t i = 0; i < ix->count; i++) {
        const struct shard_sample *s = &ix->samples[i];
        if (s->key >= ix->keys_len) __builtin_trap();
        if (strlen(shard_index_key(ix, i)) > ix->keys_len - s->key) __builtin_trap();
        for (int p = 0; p < SHARD_PARTS; p++) {
            if (s->size[p] == SHARD_PART_ABSENT) continue;
            if (s->offset[p] > shard_size || s->size[p] > shard_size - s->offset[p]) __builtin_trap();
        }
    }
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    if (size < 1) return 0;
    int mode = data[0];
    data++, size--;
    char index_path[128];
    snprintf(index_path, sizeof index_path, "%s/index", fuzz_scratch_dir());
    if (!(mode & 1)) {
        char shard[64];
        int fd = fuzz_memfd(data, size, shard, sizeof shard);
        struct shard_index built, read;
        if (shard_index_build(shard, &built) != 0) __builtin_trap();  // a memfd always reads
        check_usable(&built, size);
        if (shard_index_write(&built, index_path) != 0) abort();
        if (shard_index_read(index_path, shard, &read) != 0) __builtin_trap();
        if (read.count != built.count || read.keys_len != built.keys_len ||
            memcmp(read.skips, built.skips, sizeof read.skips) != 0 ||
            (built.count && memcmp(read.samples, built.samples, built.count * sizeof *built.samples)) ||
            (built.keys_len && memcmp(read.keys, built.keys, built.keys_len)))
            __builtin_trap();
        shard_index_free(&built);
        shard_index_free(&read);
        close(fd);
        return 0;
    }
    // The shard: any bytes of the input's size (only its size and mtime matter here).
    char shard[64];
    int fd = fuzz_memfd(data, size, shard, sizeof shard);
    struct stat st;
    if (fstat(fd, &st) != 0) abort();
    uint8_t *file = xmalloc(size ? size : 1);
    memcpy(file, data, size);
    if (size >= HEADER_BYTES) {
        uint64_t shard_size = (uint64_t)st.st_size;
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        memcpy(file + SIZE_FIELD, &shard_size, 8);
        memcpy(file + MTIME_FIELD, &mtime, 8);
        if ((mode & 2) && size >= HEADER_BYTES + 8) {
            uint64_t h = fnv1a(file, size - 8);
            memcpy(file + size - 8, &h, 8);
        }
    }
    fuzz_write_file(index_path, file, size);
    struct shard_index ix;
    int rc = shard_index_read(index_path, shard, &ix);
    if (rc < 0) __builtin_trap();  // the shard exists
    if (rc == 0) {
        check_usable(&ix, (uint64_t)st.st_size);
        shard_index_free(&ix);
    } else {
        fuzz_error_check();  // a rejection says why
    }
    free(file);
    close(fd);
    return 0;
}
