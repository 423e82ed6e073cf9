// Replacing a file so that a reader (or a crash) sees the old file or the new one, never a
// part: write a temporary file beside it, write everything, fsync it, rename it over the
// target, fsync the directory. Every writer of a file that someone else reads (checkpoints and
// `latest`, vocabularies, shard indexes, status.json and the token, .npy, safetensors) goes
// through here.
//
//     struct atomic_file f;
//     if (atomic_file_open(&f, path, NULL, 0644) != 0) return -1;
//     atomic_file_write(&f, header, n);          // errors are remembered...
//     atomic_file_write(&f, data, m);
//     return atomic_file_commit(&f);             // ...and reported here (temp file removed)
//
// Errors name the file and errno's text ("PATH.tmp: write failed: No space left on device").
#pragma once
#include <stddef.h>
#include <sys/types.h>

struct atomic_file {
    int fd;
    int failed;  // a write failed: commit refuses (catlip_error() holds why)
    char *path;  // the target
    char *tmp;   // the temporary file beside it
};

// tmp: the temporary file's name, or NULL for PATH.tmp.<host>.<pid>.<ns> (unique even among
// writers on several nodes of a shared file system). mode: the new file's permissions.
// Returns 0, or -1 with catlip_error().
int atomic_file_open(struct atomic_file *f, const char *path, const char *tmp, mode_t mode);
// Writes all of data (retrying short writes and EINTR). Returns 0, or -1 with catlip_error()
// (and the file is then failed).
int atomic_file_write(struct atomic_file *f, const void *data, size_t n);
// fsync, close, rename over the target, fsync of the directory. Returns 0, or -1 with
// catlip_error() (the temporary file removed). Either way f is released.
int atomic_file_commit(struct atomic_file *f);
// Gives up: closes and removes the temporary file. NULL-safe on a released f.
void atomic_file_abort(struct atomic_file *f);

// The whole file in one call.
int atomic_file_replace(const char *path, const void *data, size_t n, mode_t mode);

// fsync of a directory (after a rename or unlink in it). EINVAL (a file system without
// directory fsync) is not an error. Returns 0, or -1 with catlip_error().
int fsync_directory(const char *dir);
