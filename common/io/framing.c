#include "io/framing.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/check.h"

size_t frame_varint_encode(uint8_t *out, uint64_t value) {
    size_t n = 0;
    while (value >= 0x80) {
        out[n++] = (uint8_t)(value | 0x80);
        value >>= 7;
    }
    out[n++] = (uint8_t)value;
    return n;
}

int frame_varint_decode(const uint8_t *p, size_t n, uint64_t *value) {
    uint64_t v = 0;
    for (size_t i = 0; i < FRAME_VARINT_MAX; i++) {
        if (i == n) return 0;
        uint8_t byte = p[i];
        // The 10th byte holds bit 63 only: anything above it, or a continuation, is malformed.
        if (i == FRAME_VARINT_MAX - 1 && byte > 1) return -1;
        v |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *value = v;
            return (int)i + 1;
        }
    }
    return -1;
}

// ---------------------------------------------------------------------------------------
// writing

static void buffer_reserve(struct frame_buffer *b, size_t extra) {
    CATLIP_ASSERT(extra <= SIZE_MAX - b->len);
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap = cap > SIZE_MAX / 2 ? b->len + extra : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void frame_buffer_append(struct frame_buffer *b, const void *msg, size_t len) {
    buffer_reserve(b, FRAME_VARINT_MAX + len);
    b->len += frame_varint_encode(b->data + b->len, len);
    if (len) memcpy(b->data + b->len, msg, len);
    b->len += len;
}

void frame_buffer_append_message(struct frame_buffer *b, const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    buffer_reserve(b, FRAME_VARINT_MAX + len);
    b->len += frame_varint_encode(b->data + b->len, len);
    size_t packed = protobuf_c_message_pack(msg, b->data + b->len);
    CATLIP_ASSERT(packed == len);
    b->len += len;
}

void frame_buffer_free(struct frame_buffer *b) {
    free(b->data);
    *b = (struct frame_buffer){0};
}

int frame_write_fd(int fd, const char *name, const void *msg, size_t len) {
    uint8_t prefix[FRAME_VARINT_MAX];
    struct iovec iov[2] = {
        {.iov_base = prefix, .iov_len = frame_varint_encode(prefix, len)},
        {.iov_base = (void *)msg, .iov_len = len},
    };
    int first = 0;
    while (first < 2) {
        ssize_t w = writev(fd, iov + first, 2 - first);
        if (w < 0) {
            if (errno == EINTR) continue;
            return catlip_error_set("%s: write failed: %s", name, strerror(errno));
        }
        size_t done = (size_t)w;
        while (first < 2 && done >= iov[first].iov_len) done -= iov[first++].iov_len;
        if (first < 2) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + done;
            iov[first].iov_len -= done;
        }
    }
    return 0;
}

int frame_write_file(FILE *f, const char *name, const void *msg, size_t len) {
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t n = frame_varint_encode(prefix, len);
    if (fwrite(prefix, 1, n, f) != n || (len && fwrite(msg, 1, len, f) != len))
        return catlip_error_set("%s: write failed: %s", name, strerror(errno));
    return 0;
}

// ---------------------------------------------------------------------------------------
// reading a blocking stream

int frame_read_file(FILE *f, const char *name, size_t max_frame, struct frame_buffer *frame,
                    uint64_t *offset, uint8_t *prefix, size_t *prefix_len) {
    uint8_t bytes[FRAME_VARINT_MAX];
    uint64_t len = 0;
    size_t n = 0;
    for (;;) {
        int c = getc(f);
        if (c == EOF) {
            if (ferror(f))
                return catlip_error_set("%s: read failed at byte %llu: %s", name,
                                        (unsigned long long)(*offset + n), strerror(errno));
            if (n == 0) return 0;
            return catlip_error_set("%s: truncated: the stream ends inside the length prefix "
                                    "at byte %llu",
                                    name, (unsigned long long)*offset);
        }
        bytes[n++] = (uint8_t)c;
        int used = frame_varint_decode(bytes, n, &len);
        if (used < 0)
            return catlip_error_set("%s: malformed length prefix at byte %llu (more than %d "
                                    "varint bytes or over 64 bits)",
                                    name, (unsigned long long)*offset, FRAME_VARINT_MAX);
        if (used > 0) break;
    }
    if (len > max_frame)
        return catlip_error_set("%s: frame at byte %llu claims %llu bytes, over the limit of %zu "
                                "(corrupt or not a catlip stream)",
                                name, (unsigned long long)*offset, (unsigned long long)len,
                                max_frame);
    frame->len = 0;
    buffer_reserve(frame, (size_t)len);
    size_t got = len ? fread(frame->data, 1, (size_t)len, f) : 0;
    if (got != len) {
        if (ferror(f))
            return catlip_error_set("%s: read failed at byte %llu: %s", name,
                                    (unsigned long long)(*offset + n + got), strerror(errno));
        return catlip_error_set("%s: truncated: the frame at byte %llu needs %llu bytes, the "
                                "stream ends after %zu",
                                name, (unsigned long long)*offset, (unsigned long long)len, got);
    }
    frame->len = (size_t)len;
    if (prefix) {
        memcpy(prefix, bytes, n);
        *prefix_len = n;
    }
    *offset += n + len;
    return 1;
}

// ---------------------------------------------------------------------------------------
// incremental decoding

void frame_decoder_init(struct frame_decoder *d, const char *name, size_t max_frame) {
    *d = (struct frame_decoder){.name = name, .max_frame = max_frame};
}

void frame_decoder_free(struct frame_decoder *d) {
    free(d->body);
    d->body = NULL;
    d->body_cap = d->body_len = 0;
}

bool frame_decoder_idle(const struct frame_decoder *d) {
    return d->prefix_len == 0 && !d->have_length;
}

static int decoder_fail(struct frame_decoder *d) {
    d->failed = true;
    return -1;
}

// Checks a decoded length against the cap; offset is where its prefix began.
static int decoder_check_length(struct frame_decoder *d, uint64_t len, uint64_t offset) {
    if (len > d->max_frame) {
        catlip_error_set("%s: frame at byte %llu claims %llu bytes, over the limit of %zu",
                         d->name, (unsigned long long)offset, (unsigned long long)len,
                         d->max_frame);
        return decoder_fail(d);
    }
    return 0;
}

static int decoder_malformed(struct frame_decoder *d, uint64_t offset) {
    catlip_error_set("%s: malformed length prefix at byte %llu (more than %d varint bytes or "
                     "over 64 bits)",
                     d->name, (unsigned long long)offset, FRAME_VARINT_MAX);
    return decoder_fail(d);
}

int frame_decoder_feed(struct frame_decoder *d, const void *bytes, size_t n, frame_fn on_frame,
                       void *ctx) {
    if (d->failed) return catlip_error_set("%s: stream already failed", d->name);
    const uint8_t *p = bytes;
    while (n > 0) {
        if (!d->have_length) {
            // Fast path: a whole prefix lies in the input.
            uint64_t len = 0;
            int used;
            uint64_t start = d->offset - d->prefix_len;
            if (d->prefix_len == 0) {
                used = frame_varint_decode(p, n, &len);
                if (used < 0) return decoder_malformed(d, start);
                if (used == 0) {  // keep the partial prefix (n < 10 here)
                    memcpy(d->prefix, p, n);
                    d->prefix_len = n;
                    d->offset += n;
                    return 0;
                }
            } else {
                // Complete a partial prefix one byte at a time (at most 10).
                d->prefix[d->prefix_len++] = *p++;
                n--;
                d->offset++;
                used = frame_varint_decode(d->prefix, d->prefix_len, &len);
                if (used < 0) return decoder_malformed(d, start);
                if (used == 0) continue;
                used = 0;  // its bytes were consumed above
                d->prefix_len = 0;
            }
            p += used;
            n -= (size_t)used;
            d->offset += (uint64_t)used;
            if (decoder_check_length(d, len, start) < 0) return -1;
            // Fast path: the whole body lies in the input; pass it without copying.
            if (len <= n) {
                int rc = on_frame(ctx, p, (size_t)len);
                p += len;
                n -= (size_t)len;
                d->offset += len;
                if (rc != 0) {
                    d->failed = true;
                    return rc;
                }
                continue;
            }
            d->have_length = true;
            d->frame_len = len;
            d->body_len = 0;
            if (n == 0) break;
        }
        // Collect a body that spans feeds. Grow the buffer as bytes arrive, not to the claimed
        // length: a peer that announces a large frame and sends nothing costs no memory.
        size_t want = (size_t)d->frame_len - d->body_len;
        size_t take = n < want ? n : want;
        if (d->body_len + take > d->body_cap) {
            size_t cap = d->body_cap ? d->body_cap : 4096;
            while (cap < d->body_len + take) cap *= 2;
            if (cap > d->frame_len) cap = (size_t)d->frame_len;
            d->body = xrealloc(d->body, cap);
            d->body_cap = cap;
        }
        memcpy(d->body + d->body_len, p, take);
        d->body_len += take;
        p += take;
        n -= take;
        d->offset += take;
        if (d->body_len == d->frame_len) {
            d->have_length = false;
            int rc = on_frame(ctx, d->body, d->body_len);
            d->body_len = 0;
            if (rc != 0) {
                d->failed = true;
                return rc;
            }
        }
    }
    return 0;
}

int frame_decoder_finish(const struct frame_decoder *d) {
    if (d->failed) return -1;
    if (d->prefix_len)
        return catlip_error_set("%s: truncated: the stream ends inside a length prefix (%zu "
                                "bytes of it at byte %llu)",
                                d->name, d->prefix_len,
                                (unsigned long long)(d->offset - d->prefix_len));
    if (d->have_length)
        return catlip_error_set("%s: truncated: the stream ends inside a frame (%zu of %llu "
                                "bytes)",
                                d->name, d->body_len, (unsigned long long)d->frame_len);
    return 0;
}
