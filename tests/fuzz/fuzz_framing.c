// libFuzzer target: length-delimited framing (io/framing.h) and Catlip__ClientMessage, the
// bytes a status client sends. Input: byte 0 picks the frame cap (1..256 bytes), byte 1 seeds
// the piece sizes; the rest is the stream. The incremental decoder, fed in pieces, must yield
// exactly the frames (or the error) of a one-shot parse and of frame_read_file; every frame is
// unpacked as a ClientMessage, and one that unpacks (without unknown fields) must pack and
// unpack again to the same bytes.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catlip.pb-c.h"
#include "core/check.h"
#include "core/log.h"
#include "io/framing.h"
#include "tests/fuzz/fuzz_file.h"

struct frames {
    struct frame_buffer all;  // every frame, re-framed
    size_t count;
};

static void check_message(const uint8_t *frame, size_t len) {
    Catlip__ClientMessage *m = catlip__client_message__unpack(NULL, len, frame);
    if (!m) return;
    // protobuf-c keeps unknown fields and writes them back as they were read, including a
    // field number 0 that it accepts only in a padded tag ("80 00"): such a message need not
    // survive a round trip, and catlip never re-sends what a client sent.
    const ProtobufCMessage *inner = m->message_case == CATLIP__CLIENT_MESSAGE__MESSAGE_STATUS    ? &m->status->base
                                    : m->message_case == CATLIP__CLIENT_MESSAGE__MESSAGE_CONTROL ? &m->control->base
                                                                                                 : NULL;
    if (m->base.n_unknown_fields || (inner && inner->n_unknown_fields)) {
        catlip__client_message__free_unpacked(m, NULL);
        return;
    }
    size_t n = catlip__client_message__get_packed_size(m);
    uint8_t *packed = xmalloc(n ? n : 1);
    if (catlip__client_message__pack(m, packed) != n) __builtin_trap();
    Catlip__ClientMessage *again = catlip__client_message__unpack(NULL, n, packed);
    if (!again) __builtin_trap();
    size_t n2 = catlip__client_message__get_packed_size(again);
    uint8_t *packed2 = xmalloc(n2 ? n2 : 1);
    if (catlip__client_message__pack(again, packed2) != n2 || n2 != n || memcmp(packed, packed2, n) != 0)
        __builtin_trap();
    free(packed);
    free(packed2);
    catlip__client_message__free_unpacked(again, NULL);
    catlip__client_message__free_unpacked(m, NULL);
}

static int on_frame(void *arg, const uint8_t *frame, size_t len) {
    struct frames *f = arg;
    frame_buffer_append(&f->all, frame, len);
    f->count++;
    check_message(frame, len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    if (size < 2) return 0;
    size_t cap = (size_t)data[0] + 1;
    uint32_t state = data[1] * 2654435761u + 1;
    data += 2, size -= 2;

    // Reference: one pass over the whole stream.
    struct frame_buffer expect = {0};
    size_t expect_count = 0, pos = 0;
    int expect_error = 0;
    while (pos < size) {
        uint64_t len;
        int n = frame_varint_decode(data + pos, size - pos, &len);
        if (n <= 0 || len > cap || len > size - pos - (size_t)n) {
            expect_error = 1;
            break;
        }
        frame_buffer_append(&expect, data + pos + n, (size_t)len);
        expect_count++;
        pos += (size_t)n + (size_t)len;
    }

    // The incremental decoder, in pieces of 1..16 bytes.
    fuzz_error_clear();
    struct frames got = {{0}, 0};
    struct frame_decoder d;
    frame_decoder_init(&d, "fuzz stream", cap);
    int rc = 0;
    for (size_t i = 0; i < size && rc == 0;) {
        state = state * 1103515245u + 12345u;
        size_t piece = 1 + (state >> 16) % 16;
        if (piece > size - i) piece = size - i;
        rc = frame_decoder_feed(&d, data + i, piece, on_frame, &got);
        i += piece;
    }
    if (rc == 0) rc = frame_decoder_finish(&d);
    if (rc != 0 && rc != -1) __builtin_trap();
    if ((rc != 0) != expect_error || got.count != expect_count || got.all.len != expect.len ||
        (expect.len && memcmp(got.all.data, expect.data, expect.len) != 0))
        __builtin_trap();
    if (rc != 0) fuzz_error_check();
    frame_decoder_free(&d);

    // The blocking reader over a file holding the stream.
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    FILE *f = fdopen(fd, "rb");
    if (!f) abort();
    struct frame_buffer frame = {0}, seen = {0};
    uint64_t offset = 0;
    size_t count = 0;
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t prefix_len;
    while ((rc = frame_read_file(f, path, cap, &frame, &offset, prefix, &prefix_len)) == 1) {
        frame_buffer_append(&seen, frame.data, frame.len);
        count++;
        if (prefix_len < 1 || prefix_len > FRAME_VARINT_MAX) __builtin_trap();
    }
    if ((rc != 0) != expect_error || count != expect_count || seen.len != expect.len ||
        (expect.len && memcmp(seen.data, expect.data, expect.len) != 0))
        __builtin_trap();
    fclose(f);
    frame_buffer_free(&frame);
    frame_buffer_free(&seen);
    frame_buffer_free(&got.all);
    frame_buffer_free(&expect);
    return 0;
}
