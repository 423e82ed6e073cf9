#include "data/shard_index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/check.h"
#include "data/tar.h"

const char *const shard_skip_names[SHARD_SKIP_COUNT] = {
    "bad_tar_header", "truncated_member", "missing_image", "missing_txt", "empty_image",
};

static const char MAGIC[8] = {'C', 'A', 'T', 'L', 'I', 'P', 'I', 'X'};
enum { INDEX_VERSION = 1 };

struct index_header {
    char magic[8];
    uint32_t version;
    uint32_t record_size;
    uint64_t shard_size;
    int64_t shard_mtime_ns;
    uint64_t count;
    uint64_t keys_len;
    uint64_t skips[SHARD_SKIP_COUNT];
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

void shard_index_free(struct shard_index *index) {
    free(index->samples);
    free(index->keys);
    memset(index, 0, sizeof *index);
}

// ---- building -------------------------------------------------------------------------

struct builder {
    struct shard_index *index;
    uint64_t cap_samples, cap_keys;
    int open;  // a sample is being collected
    struct shard_sample current;
    char *current_key;
};

static int part_of_extension(const char *ext) {
    if (!strcasecmp(ext, "jpg") || !strcasecmp(ext, "jpeg")) return SHARD_PART_IMAGE;
    if (!strcasecmp(ext, "txt")) return SHARD_PART_TEXT;
    if (!strcasecmp(ext, "json")) return SHARD_PART_JSON;
    if (!strcasecmp(ext, "cls")) return SHARD_PART_CLASS;
    return -1;
}

static void builder_close_sample(struct builder *b) {
    if (!b->open) return;
    b->open = 0;
    struct shard_index *ix = b->index;
    struct shard_sample *s = &b->current;
    if (s->size[SHARD_PART_IMAGE] == SHARD_PART_ABSENT) {
        ix->skips[SHARD_SKIP_MISSING_IMAGE]++;
        return;
    }
    if (s->size[SHARD_PART_TEXT] == SHARD_PART_ABSENT && s->size[SHARD_PART_CLASS] == SHARD_PART_ABSENT) {
        ix->skips[SHARD_SKIP_MISSING_TEXT]++;
        return;
    }
    if (s->size[SHARD_PART_IMAGE] == 0) {
        ix->skips[SHARD_SKIP_EMPTY_IMAGE]++;
        return;
    }
    size_t klen = strlen(b->current_key) + 1;
    if (ix->keys_len + klen > UINT32_MAX) return;  // > 4 GB of keys in one shard: stop indexing keys
    if (ix->keys_len + klen > b->cap_keys) {
        b->cap_keys = (b->cap_keys + klen) * 2;
        ix->keys = xrealloc(ix->keys, b->cap_keys);
    }
    memcpy(ix->keys + ix->keys_len, b->current_key, klen);
    s->key = (uint32_t)ix->keys_len;
    ix->keys_len += klen;
    if (ix->count == b->cap_samples) {
        b->cap_samples = b->cap_samples ? b->cap_samples * 2 : 256;
        ix->samples = xrealloc(ix->samples, b->cap_samples * sizeof *ix->samples);
    }
    ix->samples[ix->count++] = *s;
}

static void builder_add(struct builder *b, const struct tar_member *m) {
    const char *name = m->name;
    while (name[0] == '.' && name[1] == '/') name += 2;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strchr(base, '.');
    if (!dot || dot == base) return;  // no extension, or a hidden file: not part of a sample
    int part = part_of_extension(dot + 1);
    size_t klen = (size_t)(dot - name);
    if (!b->open || strlen(b->current_key) != klen || memcmp(b->current_key, name, klen) != 0) {
        builder_close_sample(b);
        b->current_key = xrealloc(b->current_key, klen + 1);
        memcpy(b->current_key, name, klen);
        b->current_key[klen] = '\0';
        memset(&b->current, 0, sizeof b->current);
        for (int p = 0; p < SHARD_PARTS; p++) b->current.size[p] = SHARD_PART_ABSENT;
        b->open = 1;
    }
    if (part < 0 || b->current.size[part] != SHARD_PART_ABSENT) return;  // unknown, or a repeat
    if (m->size >= SHARD_PART_ABSENT) return;                            // > 4 GB member: unusable
    b->current.offset[part] = m->data_offset;
    b->current.size[part] = (uint32_t)m->size;
}

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

int shard_index_build(const char *shard_path, struct shard_index *out) {
    memset(out, 0, sizeof *out);
    struct tar_reader *tar;
    if (tar_reader_open(&tar, shard_path) != 0) return -1;
    struct stat st;
    if (fstat(tar_reader_fd(tar), &st) != 0) {
        tar_reader_close(tar);
        return catlip_error_set("cannot stat shard %s: %s", shard_path, strerror(errno));
    }
    out->shard_size = (uint64_t)st.st_size;
    out->shard_mtime_ns = mtime_ns(&st);
    struct builder b = {.index = out};
    struct tar_member m;
    int rc;
    while ((rc = tar_reader_next(tar, &m)) == 1) builder_add(&b, &m);
    builder_close_sample(&b);
    free(b.current_key);
    struct tar_skips skips = tar_reader_skips(tar);
    out->skips[SHARD_SKIP_BAD_HEADER] = skips.bad_headers;
    out->skips[SHARD_SKIP_TRUNCATED] = skips.truncated;
    tar_reader_close(tar);
    if (rc < 0) {
        shard_index_free(out);
        return -1;
    }
    return 0;
}

// ---- file ---------------------------------------------------------------------------------

// Writes data (errors are kept in f for atomic_file_commit) and adds it to the running hash.
static void write_hashed(struct atomic_file *f, const void *data, size_t n, uint64_t *hash) {
    *hash = fnv1a(*hash, data, n);
    atomic_file_write(f, data, n);
}

int shard_index_write(const struct shard_index *ix, const char *index_path) {
    // The temporary name is unique even among writers on several nodes of a shared file system.
    struct atomic_file f;
    if (atomic_file_open(&f, index_path, NULL, 0644) != 0)
        return catlip_error_set("cannot write index %s: %s", index_path, catlip_error());
    struct index_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.version = INDEX_VERSION;
    h.record_size = sizeof(struct shard_sample);
    h.shard_size = ix->shard_size;
    h.shard_mtime_ns = ix->shard_mtime_ns;
    h.count = ix->count;
    h.keys_len = ix->keys_len;
    memcpy(h.skips, ix->skips, sizeof h.skips);
    uint64_t hash = FNV_INIT;
    write_hashed(&f, &h, sizeof h, &hash);
    write_hashed(&f, ix->samples, ix->count * sizeof *ix->samples, &hash);
    write_hashed(&f, ix->keys, ix->keys_len, &hash);
    uint64_t final = hash;
    write_hashed(&f, &final, sizeof final, &hash);
    if (atomic_file_commit(&f) != 0)
        return catlip_error_set("cannot write index %s: %s", index_path, catlip_error());
    return 0;
}

int shard_index_read(const char *index_path, const char *shard_path, struct shard_index *out) {
    struct stat st;
    if (stat(shard_path, &st) != 0)
        return catlip_error_set("cannot open shard %s: %s", shard_path, strerror(errno));
    FILE *f = fopen(index_path, "rb");
    if (!f) {
        catlip_error_set("no index at %s", index_path);
        return 1;
    }
    struct index_header h;
    struct shard_index ix;
    memset(&ix, 0, sizeof ix);
    int rc = 1;
    uint64_t hash = FNV_INIT, stored;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, MAGIC, sizeof MAGIC) != 0 ||
        h.version != INDEX_VERSION || h.record_size != sizeof(struct shard_sample)) {
        catlip_error_set("%s is not a catlip index of this version", index_path);
        goto done;
    }
    if (h.shard_size != (uint64_t)st.st_size || h.shard_mtime_ns != mtime_ns(&st)) {
        catlip_error_set("index %s is stale (the shard changed)", index_path);
        goto done;
    }
    // Sizes are bounded by the shard itself: a sample takes at least one 512-byte tar header,
    // a key at most a 4096-byte name.
    if (h.count > h.shard_size / 512 + 1 || h.keys_len > (h.count + 1) * 4100) {
        catlip_error_set("index %s is damaged (implausible sizes)", index_path);
        goto done;
    }
    hash = fnv1a(hash, &h, sizeof h);
    ix.shard_size = h.shard_size;
    ix.shard_mtime_ns = h.shard_mtime_ns;
    ix.count = h.count;
    ix.keys_len = h.keys_len;
    memcpy(ix.skips, h.skips, sizeof ix.skips);
    ix.samples = xmalloc(h.count * sizeof *ix.samples);
    ix.keys = xmalloc(h.keys_len + 1);
    if (fread(ix.samples, sizeof *ix.samples, h.count, f) != h.count ||
        fread(ix.keys, 1, h.keys_len, f) != h.keys_len || fread(&stored, sizeof stored, 1, f) != 1) {
        catlip_error_set("index %s is damaged (short file)", index_path);
        goto done;
    }
    hash = fnv1a(hash, ix.samples, h.count * sizeof *ix.samples);
    hash = fnv1a(hash, ix.keys, h.keys_len);
    if (hash != stored) {
        catlip_error_set("index %s is damaged (checksum mismatch)", index_path);
        goto done;
    }
    ix.keys[h.keys_len] = '\0';
    for (uint64_t i = 0; i < h.count; i++) {
        const struct shard_sample *s = &ix.samples[i];
        if (s->key >= h.keys_len) goto damaged;
        for (int p = 0; p < SHARD_PARTS; p++)
            if (s->size[p] != SHARD_PART_ABSENT &&
                (s->offset[p] > h.shard_size || s->size[p] > h.shard_size - s->offset[p]))
                goto damaged;
    }
    *out = ix;
    memset(&ix, 0, sizeof ix);
    rc = 0;
    goto done;
damaged:
    catlip_error_set("index %s is damaged (offsets outside the shard)", index_path);
done:
    shard_index_free(&ix);
    fclose(f);
    return rc;
}

void shard_index_path_beside(const char *shard_path, char *out, size_t out_size) {
    snprintf(out, out_size, "%s.idx", shard_path);
}

int shard_index_path_cached(const char *shard_path, const char *cache_dir, char *out, size_t out_size) {
    char dir[PATH_MAX];
    if (cache_dir && cache_dir[0]) {
        snprintf(dir, sizeof dir, "%s", cache_dir);
    } else if (getenv("XDG_CACHE_HOME") && getenv("XDG_CACHE_HOME")[0]) {
        snprintf(dir, sizeof dir, "%s/catlip/index", getenv("XDG_CACHE_HOME"));
    } else if (getenv("HOME") && getenv("HOME")[0]) {
        snprintf(dir, sizeof dir, "%s/.cache/catlip/index", getenv("HOME"));
    } else {
        return catlip_error_set("no cache directory for shard indexes (set XDG_CACHE_HOME or HOME)");
    }
    char absolute[PATH_MAX];
    const char *name = realpath(shard_path, absolute) ? absolute : shard_path;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    uint64_t h = fnv1a(FNV_INIT, name, strlen(name));
    if (snprintf(out, out_size, "%s/%016llx-%s.idx", dir, (unsigned long long)h, base) >= (int)out_size)
        return catlip_error_set("index cache path too long for %s", shard_path);
    return 0;
}

// mkdir -p for the directory part of path.
static int make_parent_dirs(const char *path) {
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf) return -1;
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (!slash) return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

int shard_index_load(const char *shard_path, const char *cache_dir, struct shard_index *out, int *built) {
    if (built) *built = 0;
    char beside[PATH_MAX + 8], cached[PATH_MAX + 64];
    shard_index_path_beside(shard_path, beside, sizeof beside);
    int have_cached = shard_index_path_cached(shard_path, cache_dir, cached, sizeof cached) == 0;
    int rc = shard_index_read(beside, shard_path, out);
    if (rc <= 0) return rc;
    if (have_cached) {
        rc = shard_index_read(cached, shard_path, out);
        if (rc <= 0) return rc;
    }
    if (shard_index_build(shard_path, out) != 0) return -1;
    if (built) *built = 1;
    // Beside the shard when its directory is writable, else in the cache; neither is fatal.
    if (shard_index_write(out, beside) == 0) return 0;
    if (have_cached && make_parent_dirs(cached) == 0) shard_index_write(out, cached);
    return 0;
}
