#include "data/sample_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "data/tar.h"

// Members larger than this are not images or captions anyone means to train on.
#define MAX_IMAGE_BYTES (64u << 20)
#define MAX_TEXT_BYTES (1u << 20)

void sample_reader_init(struct sample_reader *r) {
    memset(r, 0, sizeof *r);
    transform_ctx_init(&r->transform);
    for (int i = 0; i < SAMPLE_READER_FDS; i++) r->fds[i].fd = -1;
}

void sample_reader_free(struct sample_reader *r) {
    transform_ctx_free(&r->transform);
    free(r->bytes);
    free(r->text);
    for (int i = 0; i < SAMPLE_READER_FDS; i++)
        if (r->fds[i].fd >= 0) close(r->fds[i].fd);
    memset(r, 0, sizeof *r);
}

static int shard_fd(struct sample_reader *r, size_t shard, const char *path) {
    r->clock++;
    int oldest = 0;
    for (int i = 0; i < SAMPLE_READER_FDS; i++) {
        if (r->fds[i].fd >= 0 && r->fds[i].shard == shard) {
            r->fds[i].used = r->clock;
            return r->fds[i].fd;
        }
        if (r->fds[i].fd < 0 || r->fds[i].used < r->fds[oldest].used) oldest = i;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return catlip_error_set("cannot open shard %s: %s", path, strerror(errno));
    if (r->fds[oldest].fd >= 0) close(r->fds[oldest].fd);
    r->fds[oldest].fd = fd;
    r->fds[oldest].shard = shard;
    r->fds[oldest].used = r->clock;
    return fd;
}

static void reserve(void **buf, size_t *capacity, size_t need) {
    if (need > *capacity) {
        free(*buf);
        *capacity = need + need / 2;
        *buf = xmalloc(*capacity);
    }
}

int caption_is_usable(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    int visible = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == 0) return 0;
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') visible = 1;
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if ((c & 0xe0) == 0xc0) n = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) n = 3, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) n = 4, cp = c & 0x07;
        else return 0;
        if (i + n > len) return 0;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        visible = 1;
        i += n;
    }
    return visible;
}

int parse_class_member(const char *s, size_t len, long *value) {
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    size_t digits = 0;
    long v = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (v > 100000000L) return -1;
        v = v * 10 + (s[i] - '0');
    }
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    if (!digits || i != len) return -1;
    *value = neg ? -v : v;
    return 0;
}

// Reads a text-like member into r->text (NUL-terminated). Returns 0, or -1 (read error).
static int read_text(struct sample_reader *r, int fd, const char *path, uint64_t offset, uint32_t size) {
    reserve((void **)&r->text, &r->text_capacity, (size_t)size + 1);
    if (tar_pread_exact(fd, offset, r->text, size, path) != 0) return -1;
    r->text[size] = '\0';
    return 0;
}

static int label_sample(struct sample_reader *r, const struct sample_config *cfg, int fd, const char *path,
                        const struct shard_sample *s, float *target) {
    int n;
    if (s->size[SHARD_PART_CLASS] != SHARD_PART_ABSENT) {
        if (cfg->target_ids) return PIPELINE_SKIP_BAD_CLASS;
        uint32_t size = s->size[SHARD_PART_CLASS];
        if (size > 64) return PIPELINE_SKIP_BAD_CLASS;
        if (read_text(r, fd, path, s->offset[SHARD_PART_CLASS], size) != 0) return PIPELINE_SKIP_READ_ERROR;
        long v;
        if (parse_class_member(r->text, size, &v) != 0 || v < 0 || v >= cfg->num_classes)
            return PIPELINE_SKIP_BAD_CLASS;
        r->classes[0] = (int32_t)v;
        n = 1;
    } else {
        uint32_t size = s->size[SHARD_PART_TEXT];
        if (size == SHARD_PART_ABSENT) return PIPELINE_SKIP_MISSING_TXT;  // the index keeps none such
        if (size > MAX_TEXT_BYTES) return PIPELINE_SKIP_BAD_CAPTION;
        if (read_text(r, fd, path, s->offset[SHARD_PART_TEXT], size) != 0) return PIPELINE_SKIP_READ_ERROR;
        if (!caption_is_usable(r->text, size)) return PIPELINE_SKIP_BAD_CAPTION;
        if (!cfg->label) return PIPELINE_SKIP_NO_SYNSET;
        n = cfg->label(cfg->label_ctx, r->text, size, r->classes, SAMPLE_MAX_CLASSES);
        if (n < 0) return PIPELINE_SKIP_BAD_CAPTION;
        if (n > SAMPLE_MAX_CLASSES) n = SAMPLE_MAX_CLASSES;
    }
    memset(target, 0, (size_t)cfg->num_classes * sizeof *target);
    if (cfg->target_ids) {
        for (int i = 0; i < n && i < cfg->num_classes; i++) target[i] = (float)r->classes[i];
        return n > 0 ? -1 : PIPELINE_SKIP_NO_SYNSET;
    }
    int set = 0;
    for (int i = 0; i < n; i++) {
        int32_t c = r->classes[i];
        if (c >= 0 && c < cfg->num_classes) {
            target[c] = 1.0f;
            set = 1;
        }
    }
    return set ? -1 : PIPELINE_SKIP_NO_SYNSET;
}

int sample_read(struct sample_reader *r, const struct sample_config *cfg, const char *path, size_t shard_id,
                const struct shard_sample *s, uint64_t sample_id, uint64_t epoch, float *image, float *target) {
    int fd = shard_fd(r, shard_id, path);
    if (fd < 0) return PIPELINE_SKIP_READ_ERROR;
    // Label first: it is cheap, and a sample without a class is not worth decoding.
    int why = label_sample(r, cfg, fd, path, s, target);
    if (why >= 0) return why;
    uint32_t size = s->size[SHARD_PART_IMAGE];
    if (size == 0 || size == SHARD_PART_ABSENT) return PIPELINE_SKIP_EMPTY_IMAGE;
    if (size > MAX_IMAGE_BYTES) return PIPELINE_SKIP_BAD_IMAGE;
    reserve((void **)&r->bytes, &r->bytes_capacity, size);
    if (tar_pread_exact(fd, s->offset[SHARD_PART_IMAGE], r->bytes, size, path) != 0)
        return PIPELINE_SKIP_READ_ERROR;
    switch (transform_jpeg(&r->transform, r->bytes, size, &cfg->augment, cfg->mean, cfg->std, cfg->seed,
                           epoch, sample_id, image)) {
    case TRANSFORM_OK: return -1;
    case TRANSFORM_EMPTY: return PIPELINE_SKIP_EMPTY_IMAGE;
    case TRANSFORM_TOO_SMALL: return PIPELINE_SKIP_SMALL_IMAGE;
    case TRANSFORM_BAD_IMAGE: break;
    }
    return PIPELINE_SKIP_BAD_IMAGE;
}
