// Reading one indexed sample into a model row: pread its members, label it (.cls, or the
// caption through the labeller), decode and transform its image. One reader per thread.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/pipeline.h"
#include "data/shard_index.h"
#include "data/transform.h"

// What every sample of a run shares.
struct sample_config {
    struct augment_options augment;
    float mean[3], std[3];
    uint64_t seed;
    int num_classes;
    pipeline_label_fn label;
    void *label_ctx;
    int target_ids;  // pipeline_options.target_ids
};

enum { SAMPLE_READER_FDS = 4, SAMPLE_MAX_CLASSES = 512 };

struct sample_reader {
    struct transform_ctx transform;
    unsigned char *bytes;  // image member
    size_t bytes_capacity;
    char *text;            // caption / class member, NUL-terminated
    size_t text_capacity;
    int32_t classes[SAMPLE_MAX_CLASSES];
    // The last few shards this thread opened (reads stay within a shard for a while).
    struct {
        size_t shard;
        int fd;
        uint64_t used;
    } fds[SAMPLE_READER_FDS];
    uint64_t clock;
};

void sample_reader_init(struct sample_reader *reader);
void sample_reader_free(struct sample_reader *reader);

// Fills image (3, S, S) and target (num_classes) for `sample` of shard `shard_id` at
// shard_path. Returns -1 when the sample is usable, else the enum pipeline_skip reason
// (image and target then hold garbage).
int sample_read(struct sample_reader *reader, const struct sample_config *config, const char *shard_path,
                size_t shard_id, const struct shard_sample *sample, uint64_t sample_id, uint64_t epoch,
                float *image, float *target);

// 1 when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF) with at least one non-whitespace character.
int caption_is_usable(const char *s, size_t len);
// Parses a .cls member: optional whitespace, a decimal integer, optional whitespace.
// Returns 0 and *value, or -1.
int parse_class_member(const char *s, size_t len, long *value);
