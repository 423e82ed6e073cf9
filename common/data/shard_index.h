// Per-shard index: the samples of a WebDataset tar and where their members lie, so samples
// are read with one pread per member and sample counts are known without scanning.
//
// Samples group consecutive members by key, as WebDataset does: the member path up to the
// first dot of its file name ("a/000000001.jpg" -> key "a/000000001", extension "jpg");
// extensions compare case-insensitively. Parts: image (.jpg/.jpeg), text (.txt), json (.json),
// class (.cls). A key that reappears later starts a new sample.
//
// Built once and cached: the index of shard S is stored as "S.idx" beside it, or, when that
// directory is read-only, in a cache directory (default $XDG_CACHE_HOME/catlip/index or
// ~/.cache/catlip/index) under a name derived from S's absolute path. An index records the
// shard's size and modification time and is rebuilt when either changes. File layout
// (little-endian): magic "CATLIPIX", u32 version, u32 sample record size, u64 shard size,
// i64 mtime (ns), u64 samples, u64 key bytes, u64 skip counts[SHARD_SKIP_COUNT], the sample
// records, the NUL-separated keys, and a u64 FNV-1a hash of everything before it.
//
// Samples that can never be used are left out and counted per reason (see enum shard_skip):
// members lost to bad tar headers or truncation, no image, no caption and no class, a
// zero-byte image.
#pragma once
#include <stddef.h>
#include <stdint.h>

enum shard_part { SHARD_PART_IMAGE, SHARD_PART_TEXT, SHARD_PART_JSON, SHARD_PART_CLASS, SHARD_PARTS };

enum shard_skip {
    SHARD_SKIP_BAD_HEADER,     // tar headers that failed their checksum (members lost)
    SHARD_SKIP_TRUNCATED,      // a member cut off by the end of the file
    SHARD_SKIP_MISSING_IMAGE,  // a sample with no .jpg/.jpeg
    SHARD_SKIP_MISSING_TEXT,   // a sample with neither .txt nor .cls
    SHARD_SKIP_EMPTY_IMAGE,    // a zero-byte image member
    SHARD_SKIP_COUNT
};
extern const char *const shard_skip_names[SHARD_SKIP_COUNT];  // "bad_tar_header", ...

struct shard_sample {
    uint64_t offset[SHARD_PARTS];  // data offset within the tar; valid when size[p] != UINT32_MAX
    uint32_t size[SHARD_PARTS];    // UINT32_MAX: part absent
    uint32_t key;                  // offset of the key in shard_index.keys
    uint32_t reserved;
};

struct shard_index {
    uint64_t shard_size;
    int64_t shard_mtime_ns;
    uint64_t count;
    struct shard_sample *samples;  // (count)
    char *keys;                    // NUL-separated
    uint64_t keys_len;
    uint64_t skips[SHARD_SKIP_COUNT];
};

#define SHARD_PART_ABSENT UINT32_MAX

// Scans the tar at shard_path. Returns 0, or -1 with catlip_error() (cannot open/read).
int shard_index_build(const char *shard_path, struct shard_index *out);
// Writes atomically (temporary file + rename). Returns 0, or -1 with catlip_error().
int shard_index_write(const struct shard_index *index, const char *index_path);
// Reads index_path and checks it against the shard's current size and mtime. Returns 0, 1 when
// the file is missing, stale or damaged (out untouched; catlip_error() says which), or -1 when
// the shard itself cannot be examined.
int shard_index_read(const char *index_path, const char *shard_path, struct shard_index *out);

// The index for shard_path: read from beside it or from cache_dir (NULL: the default), or
// built and written to the first of those that is writable (a shard is still usable when
// neither is). *built (may be NULL) says whether it was built now. Returns 0, or -1 with
// catlip_error() naming the shard.
int shard_index_load(const char *shard_path, const char *cache_dir, struct shard_index *out, int *built);

// Where shard_index_load looks: beside the shard, and in the cache directory.
void shard_index_path_beside(const char *shard_path, char *out, size_t out_size);
int shard_index_path_cached(const char *shard_path, const char *cache_dir, char *out, size_t out_size);

void shard_index_free(struct shard_index *index);
static inline const char *shard_index_key(const struct shard_index *index, uint64_t i) {
    return index->keys + index->samples[i].key;
}
