#include "data/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"

enum { BLOCK = 512, READAHEAD = 64 * 1024, META_MAX = 1 << 20 };

struct tar_reader {
    int fd;
    int owns_fd;
    char *path;
    uint64_t file_size;
    uint64_t offset;  // next header block
    struct tar_skips skips;
    int done;

    // Read-ahead window over header blocks.
    unsigned char *window;
    uint64_t window_offset;
    size_t window_len;

    char *name;               // current member's name (TAR_NAME_MAX + 1)
    char *long_name;          // pending GNU 'L' name, or NULL
    char *pax_path;           // pending 'x' path, or NULL
    int64_t pax_size;         // pending 'x' size, or -1
    char *global_path;        // 'g' path, applies to every later member, or NULL
    uint64_t pending_start;   // header offset of the first pending 'L'/'x' block
    int has_pending;
};

int tar_pread_exact(int fd, uint64_t offset, void *buf, size_t size, const char *path) {
    unsigned char *p = buf;
    while (size > 0) {
        ssize_t n = pread(fd, p, size, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return catlip_error_set("cannot read %s at offset %llu: %s", path,
                                    (unsigned long long)offset, strerror(errno));
        }
        if (n == 0)
            return catlip_error_set("%s ends early at offset %llu (truncated file?)", path,
                                    (unsigned long long)offset);
        p += n;
        size -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

int tar_reader_open_fd(struct tar_reader **out, int fd, const char *path) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return catlip_error_set("cannot stat %s: %s", path, strerror(errno));
    struct tar_reader *r = xcalloc(1, sizeof *r);
    r->fd = fd;
    r->path = xstrdup(path);
    r->file_size = (uint64_t)st.st_size;
    r->window = xmalloc(READAHEAD);
    r->name = xmalloc(TAR_NAME_MAX + 1);
    r->pax_size = -1;
    *out = r;
    return 0;
}

int tar_reader_open(struct tar_reader **out, const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return catlip_error_set("cannot open shard %s: %s", path, strerror(errno));
    if (tar_reader_open_fd(out, fd, path) != 0) {
        close(fd);
        return -1;
    }
    (*out)->owns_fd = 1;
    return 0;
}

void tar_reader_close(struct tar_reader *r) {
    if (!r) return;
    if (r->owns_fd) close(r->fd);
    free(r->path);
    free(r->window);
    free(r->name);
    free(r->long_name);
    free(r->pax_path);
    free(r->global_path);
    free(r);
}

struct tar_skips tar_reader_skips(const struct tar_reader *r) { return r->skips; }
uint64_t tar_reader_file_size(const struct tar_reader *r) { return r->file_size; }
int tar_reader_fd(const struct tar_reader *r) { return r->fd; }

int tar_member_read(const struct tar_reader *r, const struct tar_member *m, void *buf) {
    if (m->data_offset + m->size > r->file_size)
        return catlip_error_set("%s: member %s runs past the end of the file", r->path, m->name);
    return tar_pread_exact(r->fd, m->data_offset, buf, (size_t)m->size, r->path);
}

// One 512-byte block at `offset` (a multiple of 512), served from the read-ahead window.
// Returns a pointer into the window, or NULL at end of file (a partial block counts as end).
static const unsigned char *read_block(struct tar_reader *r, uint64_t offset, int *error) {
    *error = 0;
    if (offset + BLOCK > r->file_size) return NULL;
    if (offset >= r->window_offset && offset + BLOCK <= r->window_offset + r->window_len)
        return r->window + (offset - r->window_offset);
    uint64_t want = r->file_size - offset;
    if (want > READAHEAD) want = READAHEAD;
    if (tar_pread_exact(r->fd, offset, r->window, (size_t)want, r->path) != 0) {
        *error = 1;
        return NULL;
    }
    r->window_offset = offset;
    r->window_len = (size_t)want;
    return r->window;
}

// Octal (space/NUL terminated, leading spaces allowed) or GNU base-256 (high bit set).
// Returns -1 when the field is not a number.
static int64_t parse_number(const unsigned char *field, size_t len) {
    if (field[0] & 0x80) {
        if (field[0] & 0x40) return -1;  // negative
        uint64_t v = field[0] & 0x3f;
        for (size_t i = 1; i < len; i++) {
            if (v >> 55) return -1;
            v = (v << 8) | field[i];
        }
        return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
    }
    size_t i = 0;
    while (i < len && field[i] == ' ') i++;
    uint64_t v = 0;
    int digits = 0;
    for (; i < len && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (v >> 60) return -1;
        v = v * 8 + (uint64_t)(field[i] - '0');
    }
    for (; i < len; i++)
        if (field[i] != ' ' && field[i] != '\0') return -1;
    return digits ? (int64_t)v : (len > 0 && field[0] == '\0' ? 0 : -1);
}

static int is_zero_block(const unsigned char *b) {
    for (int i = 0; i < BLOCK; i++)
        if (b[i]) return 0;
    return 1;
}

// The checksum is the sum of the header bytes with the checksum field read as spaces.
// Some old writers summed signed chars; accept either.
static int checksum_ok(const unsigned char *b) {
    int64_t stored = parse_number(b + 148, 8);
    if (stored < 0) return 0;
    int64_t usum = 0, ssum = 0;
    for (int i = 0; i < BLOCK; i++) {
        unsigned char c = (i >= 148 && i < 156) ? ' ' : b[i];
        usum += c;
        ssum += (signed char)c;
    }
    return stored == usum || stored == ssum;
}

static uint64_t round_up_block(uint64_t n) { return (n + BLOCK - 1) / BLOCK * BLOCK; }

// Reads a metadata member's data (long name, pax records) into a fresh NUL-terminated buffer.
static char *read_meta(struct tar_reader *r, uint64_t offset, uint64_t size, int *error) {
    *error = 0;
    char *buf = xmalloc((size_t)size + 1);
    if (tar_pread_exact(r->fd, offset, buf, (size_t)size, r->path) != 0) {
        free(buf);
        *error = 1;
        return NULL;
    }
    buf[size] = '\0';
    return buf;
}

// Parses pax records "LEN key=value\n". Sets *path (malloc'd) and *size when present.
// Returns 0, or -1 when the records are malformed.
static int parse_pax(const char *data, size_t len, char **path, int64_t *size) {
    size_t pos = 0;
    while (pos < len) {
        if (data[pos] == '\0') break;  // padding
        size_t rec_len = 0, i = pos;
        while (i < len && data[i] >= '0' && data[i] <= '9') {
            rec_len = rec_len * 10 + (size_t)(data[i] - '0');
            if (rec_len > len) return -1;
            i++;
        }
        if (i == pos || i >= len || data[i] != ' ' || rec_len == 0 || pos + rec_len > len ||
            data[pos + rec_len - 1] != '\n')
            return -1;
        const char *kv = data + i + 1, *end = data + pos + rec_len - 1;
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (!eq) return -1;
        size_t klen = (size_t)(eq - kv), vlen = (size_t)(end - eq - 1);
        if (klen == 4 && !memcmp(kv, "path", 4)) {
            if (vlen > TAR_NAME_MAX) return -1;
            free(*path);
            *path = xmalloc(vlen + 1);
            memcpy(*path, eq + 1, vlen);
            (*path)[vlen] = '\0';
        } else if (klen == 4 && !memcmp(kv, "size", 4)) {
            int64_t v = 0;
            if (vlen == 0 || vlen > 18) return -1;
            for (size_t k = 0; k < vlen; k++) {
                char c = eq[1 + k];
                if (c < '0' || c > '9') return -1;
                v = v * 10 + (c - '0');
            }
            *size = v;
        }
        pos += rec_len;
    }
    return 0;
}

static void clear_pending(struct tar_reader *r) {
    free(r->long_name);
    r->long_name = NULL;
    free(r->pax_path);
    r->pax_path = NULL;
    r->pax_size = -1;
    r->has_pending = 0;
}

// After a bad header at r->offset: count it and move to the next block that holds a valid
// header (or to the end of the file).
static int resync(struct tar_reader *r) {
    r->skips.bad_headers++;
    clear_pending(r);
    for (uint64_t off = r->offset + BLOCK;; off += BLOCK) {
        int error;
        const unsigned char *b = read_block(r, off, &error);
        if (error) return -1;
        if (!b) {
            r->done = 1;
            return 0;
        }
        if (!is_zero_block(b) && checksum_ok(b)) {
            r->offset = off;
            return 0;
        }
    }
}

int tar_reader_next(struct tar_reader *r, struct tar_member *m) {
    while (!r->done) {
        int error;
        const unsigned char *b = read_block(r, r->offset, &error);
        if (error) return -1;
        if (!b || is_zero_block(b)) {
            // End-of-archive marker (or end of file). Anything pending is lost with it.
            if (r->long_name || r->pax_path) r->skips.truncated++;
            r->done = 1;
            break;
        }
        if (!checksum_ok(b)) {
            if (resync(r) != 0) return -1;
            continue;
        }
        int64_t size = parse_number(b + 124, 12);
        char type = (char)b[156];
        if (size < 0) {
            if (resync(r) != 0) return -1;
            continue;
        }
        if (type == '0' || type == '\0' || type == '7') {
            if (r->pax_size >= 0) size = r->pax_size;
        }
        uint64_t header = r->offset, data = r->offset + BLOCK;
        if ((uint64_t)size > r->file_size || data + (uint64_t)size > r->file_size) {
            r->skips.truncated++;
            clear_pending(r);
            r->done = 1;
            break;
        }
        r->offset = data + round_up_block((uint64_t)size);

        if (type == 'L' || type == 'x' || type == 'g') {
            if (!r->has_pending) {
                r->has_pending = 1;
                r->pending_start = header;
            }
            if (size > META_MAX) {
                r->skips.bad_headers++;
                clear_pending(r);
                continue;
            }
            char *meta = read_meta(r, data, (uint64_t)size, &error);
            if (error) return -1;
            if (type == 'L') {
                // The name is NUL-terminated within the data.
                size_t n = strnlen(meta, (size_t)size);
                if (n == 0 || n > TAR_NAME_MAX) {
                    r->skips.bad_headers++;
                    free(meta);
                    clear_pending(r);
                    continue;
                }
                meta[n] = '\0';
                free(r->long_name);
                r->long_name = meta;
            } else {
                char *path = NULL;
                int64_t psize = -1;
                if (parse_pax(meta, (size_t)size, &path, &psize) != 0) {
                    r->skips.bad_headers++;
                    free(path);
                    free(meta);
                    clear_pending(r);
                    continue;
                }
                free(meta);
                if (type == 'x') {
                    if (path) {
                        free(r->pax_path);
                        r->pax_path = path;
                    }
                    if (psize >= 0) r->pax_size = psize;
                } else if (path) {
                    free(r->global_path);
                    r->global_path = path;
                }
            }
            continue;
        }

        // The pending long name / pax attributes belong to this member, whatever its type.
        const char *name;
        char built[BLOCK];
        if (r->pax_path) {
            name = r->pax_path;
        } else if (r->long_name) {
            name = r->long_name;
        } else if (r->global_path) {
            name = r->global_path;
        } else {
            size_t nlen = strnlen((const char *)b, 100);
            // POSIX ustar ("ustar\0" + "00") keeps a 155-byte prefix; GNU ("ustar  \0") does not.
            if (!memcmp(b + 257, "ustar\0", 6) && b[345]) {
                size_t plen = strnlen((const char *)b + 345, 155);
                memcpy(built, b + 345, plen);
                built[plen] = '/';
                memcpy(built + plen + 1, b, nlen);
                built[plen + 1 + nlen] = '\0';
            } else {
                memcpy(built, b, nlen);
                built[nlen] = '\0';
            }
            name = built;
        }
        size_t name_len = strlen(name);
        int regular = (type == '0' || type == '\0' || type == '7');
        if (regular && name_len > 0) {
            memcpy(r->name, name, name_len + 1);
            m->name = r->name;
            m->name_len = name_len;
            m->header_offset = r->has_pending ? r->pending_start : header;
            m->data_offset = data;
            m->size = (uint64_t)size;
            m->type = '0';
        }
        clear_pending(r);
        if (regular && name_len > 0) return 1;
    }
    return 0;
}

int tar_for_each_member(const char *path, const char *suffix, size_t max_size,
                        void (*fn)(void *ctx, const char *bytes, size_t size), void *ctx,
                        uint64_t *oversized, struct tar_skips *skips) {
    struct tar_reader *tar;
    if (tar_reader_open(&tar, path) != 0) return -1;
    const size_t suffix_len = strlen(suffix);
    struct tar_member m;
    char *buf = xmalloc(max_size + 1);
    int rc;
    while ((rc = tar_reader_next(tar, &m)) == 1) {
        if (m.name_len < suffix_len || strcmp(m.name + m.name_len - suffix_len, suffix)) continue;
        if (m.size > max_size) {
            (*oversized)++;
            continue;
        }
        if (tar_member_read(tar, &m, buf) != 0) {
            rc = -1;
            break;
        }
        fn(ctx, buf, (size_t)m.size);
    }
    if (skips) *skips = tar_reader_skips(tar);
    free(buf);
    tar_reader_close(tar);
    return rc < 0 ? -1 : 0;
}
