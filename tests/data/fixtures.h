// Test fixtures for the data tests: made at test time by tests/data/make_fixtures.py (Python's
// tarfile, GNU tar, PIL) in a fresh temporary folder, removed afterwards.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char fixture_root[256];

// Makes fixtures of `kind` ("tars", "jpegs", "shard") and returns their folder (NULL on failure).
static inline const char *fixture_make(const char *kind) {
    if (!fixture_root[0]) {
        snprintf(fixture_root, sizeof fixture_root, "/tmp/catlip-data-test-XXXXXX");
        if (!mkdtemp(fixture_root)) return NULL;
    }
    const char *src = getenv("CATLIP_SOURCE_DIR");
    if (!src) src = ".";
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", fixture_root, kind);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/data/make_fixtures.py' %s '%s'", src, kind, dir);
    if (system(cmd) != 0) return NULL;
    return dir;
}

static inline void fixture_cleanup(void) {
    if (!fixture_root[0]) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fixture_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fixture_root);
    fixture_root[0] = '\0';
}

// Reads a whole file (NULL when missing). *size gets its length.
static inline unsigned char *fixture_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    *size = (size_t)n;
    return buf;
}
