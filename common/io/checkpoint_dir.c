// The checkpoint directory: the `latest` pointer, pruning old files, and finding the file to
// resume from (see checkpoint.h). The file format itself is checkpoint.c.
#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/path.h"
#include "core/log.h"

// Replaces dir/latest with a one-line file naming file_name: temp file, fsync, rename,
// directory fsync.
static int write_latest(const char *dir, const char *file_name) {
    char *tmp = path_join(dir, "latest.tmp");
    char *dst = path_join(dir, "latest");
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", file_name);
    struct atomic_file f;
    int rc = atomic_file_open(&f, dst, tmp, 0644);
    if (rc == 0) {
        atomic_file_write(&f, line, (size_t)n);
        rc = atomic_file_commit(&f);
    }
    free(tmp);
    free(dst);
    return rc;
}

int ckpt_parse_file_name(const char *name, int64_t *step) {
    if (strncmp(name, "ckpt-", 5) != 0) return 0;
    int64_t s = 0;
    for (int i = 0; i < 10; i++) {
        char c = name[5 + i];
        if (c < '0' || c > '9') return 0;
        s = s * 10 + (c - '0');
    }
    if (strcmp(name + 15, ".pb") != 0) return 0;
    *step = s;
    return 1;
}

struct step_file {
    int64_t step;
    char *name;
};

static int step_file_newest_first(const void *a, const void *b) {
    int64_t x = ((const struct step_file *)a)->step, y = ((const struct step_file *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

// Lists dir's ckpt-<step>.pb files, newest first. Returns the count (files in *out), 0 when
// the directory does not exist, -1 when it cannot be read.
static int list_checkpoints(const char *dir, struct step_file **out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return catlip_error_set("%s: cannot read the checkpoint directory: %s", dir,
                                strerror(errno));
    }
    struct step_file *files = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step;
        if (!ckpt_parse_file_name(e->d_name, &step)) continue;
        if (count == cap) files = xrealloc(files, (cap = cap ? 2 * cap : 16) * sizeof *files);
        files[count++] = (struct step_file){step, xstrdup(e->d_name)};
    }
    closedir(d);
    if (count) qsort(files, count, sizeof *files, step_file_newest_first);
    *out = files;
    return (int)count;
}

static void step_files_free(struct step_file *files, int count) {
    for (int i = 0; i < count; i++) free(files[i].name);
    free(files);
}

static void unlink_or_warn(const char *dir, const char *name) {
    char *p = path_join(dir, name);
    if (unlink(p) < 0 && errno != ENOENT)
        log_warn("%s: cannot delete old checkpoint file: %s", p, strerror(errno));
    free(p);
}

// Deletes checkpoints older than `step` beyond the newest `keep` (this one included) and
// .pb.tmp files of lower steps (left by killed writes). Failures are warnings: the new
// checkpoint is already durable.
static void prune(const char *dir, int64_t step, int keep) {
    if (keep > 0) {
        struct step_file *files;
        int n = list_checkpoints(dir, &files);
        if (n < 0) {
            log_warn("%s", catlip_error());
            return;
        }
        int kept = 1;  // the file just committed
        for (int i = 0; i < n; i++) {
            if (files[i].step >= step) continue;
            if (kept < keep) kept++;
            else unlink_or_warn(dir, files[i].name);
        }
        step_files_free(files, n);
    }
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        int64_t s;
        if (len != 22 || strcmp(e->d_name + 15, ".pb.tmp") != 0) continue;
        char name[32];
        memcpy(name, e->d_name, 15);
        strcpy(name + 15, ".pb");
        if (ckpt_parse_file_name(name, &s) && s < step) unlink_or_warn(dir, e->d_name);
    }
    closedir(d);
}

int ckpt_publish(const char *checkpoint_dir, const char *file_name, int keep) {
    int64_t step;
    CATLIP_ASSERT(ckpt_parse_file_name(file_name, &step));
    if (fsync_directory(checkpoint_dir) < 0 || write_latest(checkpoint_dir, file_name) < 0) return -1;
    prune(checkpoint_dir, step, keep);
    return 0;
}

// ---------------------------------------------------------------------------------------
// finding the checkpoint to resume from

// Reads dir/latest. Returns 1 with the file name it holds, 0 when there is no such file, -1
// (catlip_error set) when it is unreadable or does not hold a checkpoint file name.
static int read_latest(const char *dir, char *name, size_t name_size, int64_t *step) {
    char *p = path_join(dir, "latest");
    FILE *f = fopen(p, "re");
    int rc;
    if (!f) {
        rc = errno == ENOENT ? 0 : catlip_error_set("%s: cannot open: %s", p, strerror(errno));
        free(p);
        return rc;
    }
    char line[64] = {0};
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
    line[n] = 0;
    if (!ckpt_parse_file_name(line, step)) {
        rc = catlip_error_set("%s: does not hold a checkpoint file name", p);
    } else {
        snprintf(name, name_size, "%s", line);
        rc = 1;
    }
    free(p);
    return rc;
}

int ckpt_find_latest(const char *checkpoint_dir, char **path_out, int64_t *step_out) {
    *path_out = NULL;
    *step_out = -1;
    char latest[64] = {0};
    int64_t latest_step = -1;
    int have_latest = read_latest(checkpoint_dir, latest, sizeof latest, &latest_step);
    if (have_latest < 0) {
        log_warn("%s; looking for the newest valid checkpoint instead", catlip_error());
    } else if (have_latest == 1) {
        char *p = path_join(checkpoint_dir, latest);
        if (ckpt_verify(p) == 0) {
            *path_out = p;
            *step_out = latest_step;
            return 1;
        }
        // catlip_error() begins with the file's path.
        log_warn("skipping the checkpoint named in %s/latest: %s", checkpoint_dir,
                 catlip_error());
        free(p);
    }
    struct step_file *files;
    int n = list_checkpoints(checkpoint_dir, &files);
    if (n < 0) return -1;
    if (have_latest == 0 && n > 0)
        log_warn("%s/latest is missing; looking for the newest valid checkpoint",
                 checkpoint_dir);
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        if (have_latest == 1 && !strcmp(files[i].name, latest)) continue;  // tried above
        char *p = path_join(checkpoint_dir, files[i].name);
        if (ckpt_verify(p) == 0) {
            *path_out = p;
            *step_out = files[i].step;
            found = 1;
        } else {
            log_warn("skipping checkpoint: %s", catlip_error());
            free(p);
        }
    }
    step_files_free(files, n);
    return found;
}
