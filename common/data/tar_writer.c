#include "data/tar_writer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"

enum { BLOCK = 512, RECORD = 10240 };

int tar_writer_open(struct tar_writer *w, const char *path, int64_t mtime) {
    memset(w, 0, sizeof *w);
    w->file = fopen(path, "wb");
    if (!w->file) return catlip_error_set("cannot create %s: %s", path, strerror(errno));
    w->path = xstrdup(path);
    w->mtime = mtime;
    return 0;
}

static int write_bytes(struct tar_writer *w, const void *data, size_t n) {
    if (n && fwrite(data, 1, n, w->file) != n)
        return catlip_error_set("cannot write %s: %s", w->path, strerror(errno));
    w->offset += n;
    return 0;
}

static int pad_block(struct tar_writer *w) {
    static const char zeros[BLOCK];
    size_t rem = (size_t)(w->offset % BLOCK);
    return rem ? write_bytes(w, zeros, BLOCK - rem) : 0;
}

// width - 1 octal digits and a NUL, as GNU tar writes them; values that do not fit use
// GNU's base-256 form (high bit set), which tar.h and GNU tar read.
static void octal(char *field, size_t width, uint64_t value) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%0*llo", (int)(width - 1), (unsigned long long)value);
    if (n > 0 && (size_t)n < width) {
        memcpy(field, buf, (size_t)n + 1);
        return;
    }
    memset(field, 0, width);
    for (size_t i = width - 1; i > 0; i--, value >>= 8) field[i] = (char)(value & 0xff);
    field[0] = (char)0x80;
}

static int write_header(struct tar_writer *w, const char *name, size_t name_len, const char *prefix,
                        size_t prefix_len, uint64_t size, char type) {
    unsigned char h[BLOCK];
    memset(h, 0, sizeof h);
    memcpy(h, name, name_len);
    octal((char *)h + 100, 8, type == 'L' ? 0 : 0644);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    octal((char *)h + 124, 12, size);
    octal((char *)h + 136, 12, w->mtime < 0 ? 0 : (uint64_t)w->mtime);
    memset(h + 148, ' ', 8);
    h[156] = (unsigned char)type;
    memcpy(h + 257, "ustar", 6);  // POSIX magic "ustar\0" + version "00"
    memcpy(h + 263, "00", 2);
    memcpy(h + 345, prefix, prefix_len);
    unsigned sum = 0;
    for (int i = 0; i < BLOCK; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);  // six digits, NUL, space
    h[155] = ' ';
    return write_bytes(w, h, sizeof h);
}

int tar_writer_add(struct tar_writer *w, const char *name, const void *data, size_t size) {
    size_t len = strlen(name);
    if (len == 0) return catlip_error_set("%s: a tar member needs a name", w->path);
    if (len <= 100) {
        if (write_header(w, name, len, "", 0, size, '0') != 0) return -1;
    } else {
        // Split at a '/' so that the name fits 100 bytes and the prefix 155.
        const char *split = NULL;
        for (const char *p = name + len - 1; p > name; p--)
            if (*p == '/' && (size_t)(name + len - p - 1) <= 100 && (size_t)(p - name) <= 155 && p[1]) {
                split = p;
                break;
            }
        if (split) {
            if (write_header(w, split + 1, len - (size_t)(split - name) - 1, name, (size_t)(split - name), size, '0') != 0)
                return -1;
        } else {
            // GNU long name: a 'L' member holding the name, then the header with it truncated.
            if (write_header(w, "././@LongLink", 13, "", 0, len + 1, 'L') != 0 ||
                write_bytes(w, name, len + 1) != 0 || pad_block(w) != 0 ||
                write_header(w, name, 100, "", 0, size, '0') != 0)
                return -1;
        }
    }
    if (write_bytes(w, data, size) != 0 || pad_block(w) != 0) return -1;
    return 0;
}

int tar_writer_close(struct tar_writer *w) {
    static const char zeros[RECORD];
    int rc = write_bytes(w, zeros, 2 * BLOCK);
    size_t rem = (size_t)(w->offset % RECORD);
    if (rc == 0 && rem) rc = write_bytes(w, zeros, RECORD - rem);
    if (fclose(w->file) != 0 && rc == 0) rc = catlip_error_set("cannot write %s: %s", w->path, strerror(errno));
    free(w->path);
    memset(w, 0, sizeof *w);
    return rc;
}

void tar_writer_abort(struct tar_writer *w) {
    if (!w->file) return;
    fclose(w->file);
    unlink(w->path);
    free(w->path);
    memset(w, 0, sizeof *w);
}
