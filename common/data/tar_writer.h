// Writing tar files as WebDataset shards: POSIX ustar members (names up to 255 bytes through
// the prefix field, longer ones through a GNU 'L' long-name member, as GNU tar does), padded
// to 512-byte blocks, closed by two zero blocks and padded to a 10240-byte record like GNU tar
// and Python's tarfile. Readable by both and by tar.h.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tar_writer {
    FILE *file;
    char *path;
    uint64_t offset;  // bytes written so far
    int64_t mtime;    // seconds since the epoch stamped on every member
};

// Creates (truncates) path. Returns 0, or -1 with catlip_error().
int tar_writer_open(struct tar_writer *writer, const char *path, int64_t mtime);
int tar_writer_add(struct tar_writer *writer, const char *name, const void *data, size_t size);
// Writes the end-of-archive blocks and closes (fsync not included). Returns 0 or -1.
int tar_writer_close(struct tar_writer *writer);
// Closes without finishing (after an error); the partial file is removed.
void tar_writer_abort(struct tar_writer *writer);
