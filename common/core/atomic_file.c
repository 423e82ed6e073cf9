#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/check.h"

static void release(struct atomic_file *f) {
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    f->fd = -1;
}

int atomic_file_open(struct atomic_file *f, const char *path, const char *tmp, mode_t mode) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = xstrdup(path);
    if (tmp) {
        f->tmp = xstrdup(tmp);
    } else {
        char host[64] = "";
        gethostname(host, sizeof host - 1);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        size_t n = strlen(path) + 128;
        f->tmp = xmalloc(n);
        snprintf(f->tmp, n, "%s.tmp.%.32s.%ld.%ld", path, host, (long)getpid(), (long)now.tv_nsec);
    }
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (f->fd < 0) {
        int rc = catlip_error_set("%s: cannot create: %s", f->tmp, strerror(errno));
        release(f);
        return rc;
    }
    // open() applies the umask; the file gets exactly `mode` (the token is 0600).
    if (fchmod(f->fd, mode) != 0) {
        int rc = catlip_error_set("%s: cannot set its mode: %s", f->tmp, strerror(errno));
        atomic_file_abort(f);
        return rc;
    }
    return 0;
}

int atomic_file_write(struct atomic_file *f, const void *data, size_t n) {
    if (f->failed) return -1;
    const unsigned char *p = data;
    while (n > 0) {
        ssize_t k = write(f->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            f->failed = 1;
            return catlip_error_set("%s: write failed: %s", f->tmp,
                                    k < 0 ? strerror(errno) : "no progress");
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

void atomic_file_abort(struct atomic_file *f) {
    if (!f->tmp) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    release(f);
}

int fsync_directory(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return catlip_error_set("%s: cannot open directory to fsync: %s", dir, strerror(errno));
    int rc = 0;
    if (fsync(fd) < 0 && errno != EINVAL)  // EINVAL: a file system without directory fsync
        rc = catlip_error_set("%s: fsync of the directory failed: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int atomic_file_commit(struct atomic_file *f) {
    if (f->failed) {
        atomic_file_abort(f);
        return -1;
    }
    if (fsync(f->fd) < 0) {
        int rc = catlip_error_set("%s: fsync failed: %s", f->tmp, strerror(errno));
        atomic_file_abort(f);
        return rc;
    }
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) < 0) {
        int rc = catlip_error_set("%s: close failed: %s", f->tmp, strerror(errno));
        atomic_file_abort(f);
        return rc;
    }
    if (rename(f->tmp, f->path) < 0) {
        int rc = catlip_error_set("%s: cannot rename to %s: %s", f->tmp, f->path, strerror(errno));
        atomic_file_abort(f);
        return rc;
    }
    char *copy = xstrdup(f->path);
    int rc = fsync_directory(dirname(copy));
    free(copy);
    release(f);
    return rc;
}

int atomic_file_replace(const char *path, const void *data, size_t n, mode_t mode) {
    struct atomic_file f;
    if (atomic_file_open(&f, path, NULL, mode) != 0) return -1;
    atomic_file_write(&f, data, n);
    return atomic_file_commit(&f);
}
