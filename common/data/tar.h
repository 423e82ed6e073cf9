// Sequential tar reader over a file: the member list of a WebDataset shard.
//
// Reads the formats that Python's tarfile and GNU tar write: POSIX ustar (name + prefix),
// GNU long names ('L' members), pax extended headers ('x' for the next member, 'g' for all
// following ones; `path=` and `size=` are honoured), octal and GNU base-256 numbers.
// Every header checksum is verified. Only headers are read while listing (data is skipped
// by offset), so listing a 1 GB shard reads a few MB.
//
// Bad data is never fatal and never a crash:
// - a header whose checksum fails (garbage) is counted in `skips.bad_headers` and the reader
//   resynchronises on the next 512-byte block that holds a valid header;
// - a member whose data runs past the end of the file is counted in `skips.truncated` and
//   ends the listing (nothing after it can be trusted);
// - an oversized long name or pax header (> 1 MiB) is counted in `skips.bad_headers`.
// Only read errors of the file itself are errors (-1 with catlip_error() set).
//
// Example:
//     struct tar_reader *tar;
//     if (tar_reader_open(&tar, "data/00000.tar") != 0) die(catlip_error());
//     struct tar_member m;
//     int rc;
//     while ((rc = tar_reader_next(tar, &m)) == 1) {
//         char *bytes = xmalloc(m.size);
//         if (tar_member_read(tar, &m, bytes) != 0) ...;  // pread at m.data_offset
//         ...
//     }
//     if (rc < 0) ... catlip_error() ...;
//     tar_reader_close(tar);
#pragma once
#include <stddef.h>
#include <stdint.h>

// Longest member name the reader returns; longer ones are counted as bad headers.
#define TAR_NAME_MAX 4096

struct tar_member {
    const char *name;        // NUL-terminated, owned by the reader, valid until the next call
    size_t name_len;
    uint64_t header_offset;  // first header block of this member (its 'L'/'x' blocks included)
    uint64_t data_offset;    // first byte of the member's data within the file
    uint64_t size;           // bytes of data
    char type;               // '0' (regular file); only regular files are returned
};

struct tar_skips {
    uint64_t bad_headers;  // checksum failures / unusable headers (each resync counts one)
    uint64_t truncated;    // members whose data runs past the end of the file
};

struct tar_reader;

// Opens `path` for listing. Returns 0, or -1 with catlip_error() naming the file.
int tar_reader_open(struct tar_reader **out, const char *path);
// Lists from an already open file descriptor (not closed by tar_reader_close); `path` is used
// in error messages only.
int tar_reader_open_fd(struct tar_reader **out, int fd, const char *path);
void tar_reader_close(struct tar_reader *reader);

// Next regular-file member. Returns 1 (member filled), 0 (end of archive), -1 (read error).
int tar_reader_next(struct tar_reader *reader, struct tar_member *member);
// Counts of what was skipped so far.
struct tar_skips tar_reader_skips(const struct tar_reader *reader);
uint64_t tar_reader_file_size(const struct tar_reader *reader);
int tar_reader_fd(const struct tar_reader *reader);

// Reads every member of the tar at `path` whose name ends in `suffix` (".txt": the captions of a
// WebDataset shard) and calls fn(ctx, bytes, size) on it, in file order. A member larger than
// max_size is not read: *oversized counts it. *skips (may be NULL) gets the reader's skips.
// Returns 0, or -1 with catlip_error() when the file cannot be opened or read.
int tar_for_each_member(const char *path, const char *suffix, size_t max_size,
                        void (*fn)(void *ctx, const char *bytes, size_t size), void *ctx,
                        uint64_t *oversized, struct tar_skips *skips);

// Reads the member's `size` bytes into buf (pread). Returns 0, or -1 with catlip_error().
int tar_member_read(const struct tar_reader *reader, const struct tar_member *member, void *buf);
// The same for any file descriptor: exactly `size` bytes at `offset`, or -1 naming `path`.
int tar_pread_exact(int fd, uint64_t offset, void *buf, size_t size, const char *path);
