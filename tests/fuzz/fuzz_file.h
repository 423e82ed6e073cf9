// Helpers for fuzz targets whose library API takes a path: the fuzz input becomes a file.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/check.h"

// Writes data to an anonymous memory file; returns its fd and puts "/proc/self/fd/N" in path.
// A harness failure (not a finding) aborts.
static inline int fuzz_memfd(const void *data, size_t size, char *path, size_t path_size) {
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) abort();
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n <= 0) abort();
        p += n, size -= (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) abort();
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

// A scratch directory for files a harness writes, made once per process.
static inline const char *fuzz_scratch_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/catlip-fuzz-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

// Writes data to the file at path (truncating it).
static inline void fuzz_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
}

// Before a call that may fail: forget the last error, so that a failure which sets none shows.
static inline void fuzz_error_clear(void) { catlip_error_set("%s", ""); }

// After a failure: catlip_error() must say why, on one line.
static inline void fuzz_error_check(void) {
    const char *e = catlip_error();
    if (!strcmp(e, "unknown error") || strchr(e, '\n')) __builtin_trap();
}
