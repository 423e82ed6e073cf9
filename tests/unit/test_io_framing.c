// Varint framing: encode/decode round trips, the incremental decoder under every way of
// cutting a stream, and every bad input (over-cap prefix incl. 4 GiB, 11-byte and overflowing
// varints, truncation at every point) rejected with a one-line error and no big allocation.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "catlip.pb-c.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/framing.h"

static void varint_round_trip(void **state) {
    const uint64_t values[] = {0,          1,          127,           128,
                               300,        16383,      16384,         (1ull << 32) - 1,
                               1ull << 32, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};
    const int lengths[] = {1, 1, 1, 2, 2, 2, 3, 5, 5, 10, 10, 10};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint8_t buf[FRAME_VARINT_MAX];
        size_t n = frame_varint_encode(buf, values[i]);
        assert_int_equal(n, lengths[i]);
        uint64_t v = 12345;
        assert_int_equal(frame_varint_decode(buf, n, &v), (int)n);
        assert_true(v == values[i]);
        for (size_t k = 0; k < n; k++) assert_int_equal(frame_varint_decode(buf, k, &v), 0);
    }
    // protobuf's own bytes for 300: ac 02
    uint8_t b300[] = {0xac, 0x02};
    uint64_t v;
    assert_int_equal(frame_varint_decode(b300, 2, &v), 2);
    assert_int_equal(v, 300);
    // A non-minimal but valid encoding (0 in two bytes) decodes.
    uint8_t padded[] = {0x80, 0x00};
    assert_int_equal(frame_varint_decode(padded, 2, &v), 2);
    assert_int_equal(v, 0);
}

static void varint_malformed(void **state) {
    uint64_t v;
    // 11 bytes: ten continuation bytes then a terminator.
    uint8_t eleven[11];
    memset(eleven, 0x80, 10);
    eleven[10] = 0x01;
    assert_int_equal(frame_varint_decode(eleven, 11, &v), -1);
    // Detected as soon as the 10th byte shows a continuation, before an 11th arrives.
    assert_int_equal(frame_varint_decode(eleven, 10, &v), -1);
    // A 10th byte with more than bit 63: overflow.
    uint8_t over[10];
    memset(over, 0xff, 9);
    over[9] = 0x02;
    assert_int_equal(frame_varint_decode(over, 10, &v), -1);
    over[9] = 0x01;  // exactly UINT64_MAX
    assert_int_equal(frame_varint_decode(over, 10, &v), 10);
    assert_true(v == UINT64_MAX);
}

// Collects decoded frames into one buffer (each re-framed, so equality with the encoded
// stream proves every frame and every boundary came back).
struct collect {
    struct frame_buffer out;
    int frames;
    int stop_after;  // 0: never stop
};

static int on_frame(void *ctx, const uint8_t *frame, size_t len) {
    struct collect *c = ctx;
    frame_buffer_append(&c->out, frame, len);
    c->frames++;
    return c->stop_after && c->frames == c->stop_after ? 7 : 0;
}

// A stream of frames of assorted sizes, including empty ones and one larger than the
// decoder's growth step.
static void make_stream(struct frame_buffer *s, int *count) {
    static uint8_t payload[70000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 31 + 7);
    const size_t sizes[] = {0, 1, 127, 128, 129, 0, 5000, 16384, 65000, 3, 0};
    *count = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++, (*count)++)
        frame_buffer_append(s, payload + i, sizes[i]);
}

static void decode_in_pieces(const struct frame_buffer *s, int count, struct rng *r,
                             size_t max_piece) {
    struct frame_decoder d;
    frame_decoder_init(&d, "test stream", 1 << 20);
    struct collect c = {0};
    size_t at = 0;
    while (at < s->len) {
        size_t n = max_piece == 1 ? 1 : 1 + rng_below(r, max_piece);
        if (n > s->len - at) n = s->len - at;
        assert_int_equal(frame_decoder_feed(&d, s->data + at, n, on_frame, &c), 0);
        at += n;
    }
    assert_int_equal(frame_decoder_finish(&d), 0);
    assert_true(frame_decoder_idle(&d));
    assert_int_equal(c.frames, count);
    assert_int_equal(c.out.len, s->len);
    assert_memory_equal(c.out.data, s->data, s->len);
    assert_true(d.offset == s->len);
    frame_decoder_free(&d);
    frame_buffer_free(&c.out);
}

static void decoder_round_trip_any_split(void **state) {
    struct frame_buffer s = {0};
    int count;
    make_stream(&s, &count);
    struct rng r;
    rng_init(&r, rng_key(1, 2, 3, 4));
    decode_in_pieces(&s, count, &r, s.len);  // whole
    decode_in_pieces(&s, count, &r, 1);      // byte at a time
    for (int trial = 0; trial < 20; trial++) decode_in_pieces(&s, count, &r, 1 + trial * 997);
    frame_buffer_free(&s);
}

static void decoder_message_frames(void **state) {
    // Protobuf messages, some packing to zero bytes, through the buffer writer.
    Catlip__StatusRequest empty = CATLIP__STATUS_REQUEST__INIT;
    Catlip__StatusRequest full = CATLIP__STATUS_REQUEST__INIT;
    full.include_workers = 1;
    struct frame_buffer s = {0};
    frame_buffer_append_message(&s, &empty.base);
    frame_buffer_append_message(&s, &full.base);
    assert_int_equal(s.len, 1 + 3);
    assert_int_equal(s.data[0], 0);
    struct collect c = {0};
    struct frame_decoder d;
    frame_decoder_init(&d, "status", 64);
    assert_int_equal(frame_decoder_feed(&d, s.data, s.len, on_frame, &c), 0);
    assert_int_equal(c.frames, 2);
    Catlip__StatusRequest *m = catlip__status_request__unpack(NULL, c.out.data[1], c.out.data + 2);
    assert_non_null(m);
    assert_true(m->include_workers);
    catlip__status_request__free_unpacked(m, NULL);
    frame_decoder_free(&d);
    frame_buffer_free(&c.out);
    frame_buffer_free(&s);
}

static void decoder_rejects_4gib_prefix_without_allocating(void **state) {
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t n = frame_varint_encode(prefix, 4ull << 30);
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct frame_decoder d;
        frame_decoder_init(&d, "client 127.0.0.1:9", 1 << 20);
        struct collect c = {0};
        int rc = 0;
        if (bytewise)
            for (size_t i = 0; i < n && rc == 0; i++)
                rc = frame_decoder_feed(&d, prefix + i, 1, on_frame, &c);
        else
            rc = frame_decoder_feed(&d, prefix, n, on_frame, &c);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(catlip_error(), "client 127.0.0.1:9"));
        assert_non_null(strstr(catlip_error(), "4294967296 bytes"));
        assert_non_null(strstr(catlip_error(), "limit of 1048576"));
        assert_null(d.body);
        assert_int_equal(d.body_cap, 0);
        assert_int_equal(c.frames, 0);
        // The decoder stays failed.
        assert_int_equal(frame_decoder_feed(&d, "x", 1, on_frame, &c), -1);
        frame_decoder_free(&d);
    }
}

static void decoder_cap_is_inclusive(void **state) {
    uint8_t body[100] = {0};
    struct frame_buffer s = {0};
    frame_buffer_append(&s, body, 100);
    struct frame_decoder d;
    struct collect c = {0};
    frame_decoder_init(&d, "s", 100);
    assert_int_equal(frame_decoder_feed(&d, s.data, s.len, on_frame, &c), 0);
    assert_int_equal(c.frames, 1);
    frame_decoder_free(&d);
    frame_decoder_init(&d, "s", 99);
    assert_int_equal(frame_decoder_feed(&d, s.data, s.len, on_frame, &c), -1);
    assert_non_null(strstr(catlip_error(), "100 bytes, over the limit of 99"));
    frame_decoder_free(&d);
    frame_buffer_free(&s);
    frame_buffer_free(&c.out);
}

static void decoder_grows_only_with_data(void **state) {
    // A frame under the cap announced at 1 MiB with only 10 bytes sent holds ~4 KiB, not 1 MiB.
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t n = frame_varint_encode(prefix, 1 << 20);
    struct frame_decoder d;
    struct collect c = {0};
    frame_decoder_init(&d, "s", 1 << 20);
    assert_int_equal(frame_decoder_feed(&d, prefix, n, on_frame, &c), 0);
    assert_int_equal(frame_decoder_feed(&d, "0123456789", 10, on_frame, &c), 0);
    assert_true(d.body_cap <= 4096);
    assert_int_equal(frame_decoder_finish(&d), -1);
    assert_non_null(strstr(catlip_error(), "ends inside a frame (10 of 1048576 bytes)"));
    frame_decoder_free(&d);
}

static void decoder_rejects_long_varint(void **state) {
    uint8_t bad[11];
    memset(bad, 0xff, 10);
    bad[10] = 0x00;
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        // Preceded by one good frame, so the error offset is not 0.
        uint8_t stream[13] = {1, 'a'};
        memcpy(stream + 2, bad, 11);
        struct frame_decoder d;
        struct collect c = {0};
        frame_decoder_init(&d, "s", 1 << 20);
        int rc = 0;
        if (bytewise)
            for (size_t i = 0; i < sizeof stream && rc == 0; i++)
                rc = frame_decoder_feed(&d, stream + i, 1, on_frame, &c);
        else
            rc = frame_decoder_feed(&d, stream, sizeof stream, on_frame, &c);
        assert_int_equal(rc, -1);
        assert_int_equal(c.frames, 1);
        assert_non_null(strstr(catlip_error(), "malformed length prefix at byte 2"));
        frame_decoder_free(&d);
        frame_buffer_free(&c.out);
    }
}

static void decoder_truncation_everywhere(void **state) {
    struct frame_buffer s = {0};
    int count;
    make_stream(&s, &count);
    // Frame boundaries: the only cut points where finish() may succeed.
    size_t boundaries[64];
    int nb = 0;
    {
        size_t at = 0;
        boundaries[nb++] = 0;
        while (at < s.len) {
            uint64_t len;
            int used = frame_varint_decode(s.data + at, s.len - at, &len);
            assert_true(used > 0);
            at += (size_t)used + len;
            boundaries[nb++] = at;
        }
    }
    for (size_t cut = 0; cut <= s.len; cut += cut < 300 ? 1 : 257) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            if (bytewise && cut > 600) continue;
            struct frame_decoder d;
            struct collect c = {0};
            frame_decoder_init(&d, "s", 1 << 20);
            if (bytewise)
                for (size_t i = 0; i < cut; i++)
                    assert_int_equal(frame_decoder_feed(&d, s.data + i, 1, on_frame, &c), 0);
            else
                assert_int_equal(frame_decoder_feed(&d, s.data, cut, on_frame, &c), 0);
            bool boundary = false;
            for (int b = 0; b < nb; b++) boundary |= boundaries[b] == cut;
            assert_int_equal(frame_decoder_finish(&d), boundary ? 0 : -1);
            if (!boundary) assert_non_null(strstr(catlip_error(), "truncated"));
            frame_decoder_free(&d);
            frame_buffer_free(&c.out);
        }
    }
    frame_buffer_free(&s);
}

static void decoder_callback_stop(void **state) {
    struct frame_buffer s = {0};
    int count;
    make_stream(&s, &count);
    struct frame_decoder d;
    struct collect c = {.stop_after = 3};
    frame_decoder_init(&d, "s", 1 << 20);
    assert_int_equal(frame_decoder_feed(&d, s.data, s.len, on_frame, &c), 7);
    assert_int_equal(c.frames, 3);
    assert_int_equal(frame_decoder_feed(&d, s.data, 1, on_frame, &c), -1);
    frame_decoder_free(&d);
    frame_buffer_free(&c.out);
    frame_buffer_free(&s);
}

static void decoder_random_garbage_never_crashes(void **state) {
    struct rng r;
    rng_init(&r, rng_key(9, 9, 9, 9));
    uint8_t junk[4096];
    int errors = 0;
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + rng_below(&r, sizeof junk);
        for (size_t i = 0; i < n; i++) junk[i] = (uint8_t)rng_u64(&r);
        struct frame_decoder d;
        struct collect c = {0};
        frame_decoder_init(&d, "s", 256);
        size_t at = 0;
        int rc = 0;
        while (at < n && rc == 0) {
            size_t k = 1 + rng_below(&r, 64);
            if (k > n - at) k = n - at;
            rc = frame_decoder_feed(&d, junk + at, k, on_frame, &c);
            at += k;
        }
        if (rc == 0) rc = frame_decoder_finish(&d);
        errors += rc != 0;
        assert_true(d.body_cap <= 256);
        frame_decoder_free(&d);
        frame_buffer_free(&c.out);
    }
    assert_true(errors > 0);
}

static void file_round_trip_and_errors(void **state) {
    char path[] = "/tmp/catlip_test_framing_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct frame_buffer s = {0};
    int count;
    make_stream(&s, &count);
    // Write the same frames through frame_write_fd and frame_write_file; compare bytes.
    size_t at = 0;
    int frames = 0;
    while (at < s.len) {
        uint64_t len;
        int used = frame_varint_decode(s.data + at, s.len - at, &len);
        assert_int_equal(frame_write_fd(fd, path, s.data + at + used, len), 0);
        at += (size_t)used + len;
        frames++;
    }
    close(fd);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct frame_buffer frame = {0}, again = {0};
    uint64_t offset = 0;
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t prefix_len;
    int got = 0, rc;
    while ((rc = frame_read_file(f, path, 1 << 20, &frame, &offset, prefix, &prefix_len)) == 1) {
        frame_buffer_append(&again, frame.data, frame.len);
        got++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(got, frames);
    assert_int_equal(again.len, s.len);
    assert_memory_equal(again.data, s.data, s.len);
    assert_true(offset == s.len);
    // frame_write_file gives the same bytes as frame_write_fd.
    {
        char *mem = NULL;
        size_t mem_len = 0;
        FILE *m = open_memstream(&mem, &mem_len);
        size_t pos = 0;
        while (pos < s.len) {
            uint64_t len;
            int used = frame_varint_decode(s.data + pos, s.len - pos, &len);
            assert_int_equal(frame_write_file(m, "memory", s.data + pos + used, len), 0);
            pos += (size_t)used + len;
        }
        fclose(m);
        assert_int_equal(mem_len, s.len);
        assert_memory_equal(mem, s.data, s.len);
        free(mem);
    }
    // Over the cap: the 65000-byte frame.
    rewind(f);
    offset = 0;
    while ((rc = frame_read_file(f, path, 60000, &frame, &offset, NULL, NULL)) == 1) {}
    assert_int_equal(rc, -1);
    assert_non_null(strstr(catlip_error(), "65000 bytes, over the limit of 60000"));
    fclose(f);
    // Truncated inside a frame body and inside a prefix.
    assert_int_equal(truncate(path, 20), 0);
    f = fopen(path, "rb");
    offset = 0;
    while ((rc = frame_read_file(f, path, 1 << 20, &frame, &offset, NULL, NULL)) == 1) {}
    assert_int_equal(rc, -1);
    assert_non_null(strstr(catlip_error(), path));
    assert_non_null(strstr(catlip_error(), "truncated"));
    fclose(f);
    f = fopen(path, "wb");
    fputc(0x80, f);
    fclose(f);
    f = fopen(path, "rb");
    offset = 0;
    assert_int_equal(frame_read_file(f, path, 1 << 20, &frame, &offset, NULL, NULL), -1);
    assert_non_null(strstr(catlip_error(), "inside the length prefix"));
    fclose(f);
    unlink(path);
    frame_buffer_free(&frame);
    frame_buffer_free(&again);
    frame_buffer_free(&s);
}

static void write_fd_error_names_stream(void **state) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(frame_write_fd(p[1], "status client", "abc", 3), -1);
    assert_non_null(strstr(catlip_error(), "status client: write failed: Broken pipe"));
    close(p[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_round_trip),
        cmocka_unit_test(varint_malformed),
        cmocka_unit_test(decoder_round_trip_any_split),
        cmocka_unit_test(decoder_message_frames),
        cmocka_unit_test(decoder_rejects_4gib_prefix_without_allocating),
        cmocka_unit_test(decoder_cap_is_inclusive),
        cmocka_unit_test(decoder_grows_only_with_data),
        cmocka_unit_test(decoder_rejects_long_varint),
        cmocka_unit_test(decoder_truncation_everywhere),
        cmocka_unit_test(decoder_callback_stop),
        cmocka_unit_test(decoder_random_garbage_never_crashes),
        cmocka_unit_test(file_round_trip_and_errors),
        cmocka_unit_test(write_fd_error_names_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
