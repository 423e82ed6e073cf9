// libFuzzer target: the checkpoint reader (io/checkpoint.h) on any file. The first input byte
// picks the case: with bit 0 set, the harness rewrites the footer record (when the last record
// is one) with the right CRC-32C and counts, so that the fuzzer reaches the checks that lie
// behind the checksum; otherwise the file is read as it is. Whatever is accepted must deliver
// chunks that fit their tensors, and end at the footer.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catlip.pb-c.h"
#include "core/check.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "io/crc32c.h"
#include "io/framing.h"
#include "tests/fuzz/fuzz_file.h"

// The input with its last record's footer (if it is one) made consistent with what precedes it.
static void fix_footer(const uint8_t *data, size_t size, struct frame_buffer *out) {
    size_t pos = 0, last = 0;
    uint64_t records = 0;
    uint64_t len = 0;
    int n = 0;
    while (pos < size) {
        n = frame_varint_decode(data + pos, size - pos, &len);
        if (n <= 0 || len > size - pos - (size_t)n) break;
        if (pos + (size_t)n + len == size) break;  // the last record
        pos += (size_t)n + (size_t)len;
        records++;
    }
    last = pos;
    Catlip__CheckpointRecord *r = NULL;
    if (last < size && n > 0 && last + (size_t)n + len == size)
        r = catlip__checkpoint_record__unpack(NULL, (size_t)len, data + last + n);
    if (!r || r->record_case != CATLIP__CHECKPOINT_RECORD__RECORD_FOOTER) {
        if (r) catlip__checkpoint_record__free_unpacked(r, NULL);
        out->data = xrealloc(out->data, size ? size : 1);
        memcpy(out->data, data, size);
        out->len = size;
        return;
    }
    r->footer->crc32c = crc32c_update(0, data, last);
    r->footer->records = records;
    r->footer->bytes = last;
    out->data = xrealloc(out->data, last ? last : 1);
    memcpy(out->data, data, last);
    out->len = out->cap = last;
    frame_buffer_append_message(out, &r->base);
    catlip__checkpoint_record__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    if (size < 1) return 0;
    int mode = data[0];
    data++, size--;
    struct frame_buffer file = {0};
    if (mode & 1) {
        fix_footer(data, size, &file);
    } else {
        file.data = xmalloc(size ? size : 1);
        memcpy(file.data, data, size);
        file.len = size;
    }
    char path[64];
    int fd = fuzz_memfd(file.data, file.len, path, sizeof path);
    struct ckpt_reader *r;
    fuzz_error_clear();
    if (ckpt_reader_open(&r, path) != 0) {
        fuzz_error_check();
    } else {
        const Catlip__CheckpointHeader *h = ckpt_reader_header(r);
        if (!h) __builtin_trap();
        const Catlip__TensorChunk *c;
        int rc;
        uint64_t chunks = 0;
        while ((rc = ckpt_reader_next(r, &c)) == 1) {
            if (c->n_shape > CKPT_MAX_DIMS || c->data.len % 4 != 0) __builtin_trap();
            uint64_t elements = 1;
            for (size_t d = 0; d < c->n_shape; d++) {
                if (c->shape[d] < 0) __builtin_trap();
                if (c->shape[d] && elements > UINT64_MAX / (uint64_t)c->shape[d]) __builtin_trap();
                elements *= (uint64_t)c->shape[d];
            }
            if (c->offset > elements || c->data.len / 4 > elements - c->offset) __builtin_trap();
            chunks++;
        }
        if (rc != 0) __builtin_trap();  // the file did not change under us
        if (chunks + 1 != ckpt_reader_record_count(r)) __builtin_trap();  // header + chunks
        ckpt_reader_close(r);
        if (ckpt_verify(path) != 0) __builtin_trap();
        Catlip__CheckpointRecord *hr;
        if (ckpt_read_header(path, &hr) != 0) __builtin_trap();
        catlip__checkpoint_record__free_unpacked(hr, NULL);
    }
    close(fd);
    frame_buffer_free(&file);
    return 0;
}
