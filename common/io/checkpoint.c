#include "io/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/check.h"
#include "core/path.h"
#include "core/log.h"
#include "io/crc32c.h"
#include "io/framing.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint chunks hold little-endian floats; a big-endian host needs a byte swap here"
#endif

#define WRITE_BUFFER_BYTES (1u << 20)

static const char *kind_name(int kind) {
    switch (kind) {
    case CATLIP__TENSOR_CHUNK__KIND__PARAM: return "param";
    case CATLIP__TENSOR_CHUNK__KIND__ADAM_M: return "adam_m";
    case CATLIP__TENSOR_CHUNK__KIND__ADAM_V: return "adam_v";
    case CATLIP__TENSOR_CHUNK__KIND__EMA: return "ema";
    default: return "unknown";
    }
}

// ---------------------------------------------------------------------------------------
// chunk rules, shared by the writer (what it is given) and the reader (what it finds)

struct tensor_seen {
    int kind;
    char *name;
};

struct chunk_rules {
    // the tensor whose chunks are arriving
    bool open;
    int kind;
    char *name;
    size_t ndim;
    int64_t shape[CKPT_MAX_DIMS];
    uint64_t elements;
    uint64_t filled;
    // every (kind, name) begun so far, to refuse a tensor that appears twice
    struct tensor_seen *seen;
    size_t seen_count, seen_cap;
};

static void rules_free(struct chunk_rules *r) {
    for (size_t i = 0; i < r->seen_count; i++) free(r->seen[i].name);
    free(r->seen);
    *r = (struct chunk_rules){0};
}

// Checks a shape and returns its element count, or 0 (with catlip_error set) when it is bad.
static uint64_t shape_elements(const char *what, const char *name, const int64_t *shape,
                               size_t ndim) {
    if (ndim > CKPT_MAX_DIMS) {
        catlip_error_set("%s: tensor '%s' has %zu dimensions, more than %d", what, name, ndim,
                         CKPT_MAX_DIMS);
        return 0;
    }
    uint64_t n = 1;
    for (size_t d = 0; d < ndim; d++) {
        // 2^62 / 4 bytes bounds any tensor well beyond memory, and keeps products in range.
        if (shape[d] < 1 || (uint64_t)shape[d] > (UINT64_C(1) << 60) / n) {
            catlip_error_set("%s: tensor '%s' has a bad shape (dimension %zu is %" PRId64 ")",
                             what, name, d, shape[d]);
            return 0;
        }
        n *= (uint64_t)shape[d];
    }
    return n;
}

static int rules_close_tensor(struct chunk_rules *r, const char *what) {
    if (r->open && r->filled != r->elements)
        return catlip_error_set("%s: %s tensor '%s' is incomplete: %" PRIu64 " of %" PRIu64
                                " elements",
                                what, kind_name(r->kind), r->name, r->filled, r->elements);
    r->open = false;
    return 0;
}

static int rules_chunk(struct chunk_rules *r, const char *what, const Catlip__TensorChunk *c) {
    if (c->kind < CATLIP__TENSOR_CHUNK__KIND__PARAM || c->kind > CATLIP__TENSOR_CHUNK__KIND__EMA)
        return catlip_error_set("%s: tensor '%s' has unknown kind %d", what, c->name,
                                (int)c->kind);
    if (!c->name[0]) return catlip_error_set("%s: tensor chunk without a name", what);
    if (c->data.len == 0 || c->data.len % 4 || c->data.len > CKPT_CHUNK_BYTES)
        return catlip_error_set("%s: tensor '%s' has a chunk of %zu bytes (must be a positive "
                                "multiple of 4, at most %u)",
                                what, c->name, c->data.len, CKPT_CHUNK_BYTES);
    bool same = r->open && r->filled < r->elements && r->kind == (int)c->kind &&
                !strcmp(r->name, c->name);
    if (same) {
        if (c->n_shape != r->ndim ||
            (r->ndim && memcmp(c->shape, r->shape, r->ndim * sizeof(int64_t))))
            return catlip_error_set("%s: tensor '%s' changes shape between chunks", what,
                                    c->name);
    } else {
        if (rules_close_tensor(r, what) < 0) return -1;
        for (size_t i = 0; i < r->seen_count; i++)
            if (r->seen[i].kind == (int)c->kind && !strcmp(r->seen[i].name, c->name))
                return catlip_error_set("%s: %s tensor '%s' appears twice", what,
                                        kind_name(c->kind), c->name);
        uint64_t n = shape_elements(what, c->name, c->shape, c->n_shape);
        if (n == 0) return -1;
        if (r->seen_count == r->seen_cap) {
            r->seen_cap = r->seen_cap ? 2 * r->seen_cap : 64;
            r->seen = xrealloc(r->seen, r->seen_cap * sizeof *r->seen);
        }
        r->seen[r->seen_count++] = (struct tensor_seen){c->kind, xstrdup(c->name)};
        r->name = r->seen[r->seen_count - 1].name;
        r->kind = c->kind;
        r->ndim = c->n_shape;
        if (c->n_shape) memcpy(r->shape, c->shape, c->n_shape * sizeof(int64_t));
        r->elements = n;
        r->filled = 0;
        r->open = true;
    }
    uint64_t count = c->data.len / 4;
    if (c->offset != r->filled || count > r->elements - r->filled)
        return catlip_error_set("%s: tensor '%s' chunk at element %" PRIu64 " (+%" PRIu64
                                ") does not follow the previous one (expected element %" PRIu64
                                " of %" PRIu64 ")",
                                what, c->name, c->offset, count, r->filled, r->elements);
    r->filled += count;
    return 0;
}

// At the end of the tensors: the last one complete, and as many as the header promised.
static int rules_finish(struct chunk_rules *r, const char *what, uint32_t tensor_count) {
    if (rules_close_tensor(r, what) < 0) return -1;
    if (r->seen_count != tensor_count)
        return catlip_error_set("%s: the header promises %u tensors, %zu were written", what,
                                tensor_count, r->seen_count);
    return 0;
}

// ---------------------------------------------------------------------------------------
// packing tensor chunks

int ckpt_tensor_records(Catlip__TensorChunk__Kind kind, const char *name, const int64_t *shape,
                        int ndim, const float *data, ckpt_record_fn on_record, void *ctx) {
    if (ndim < 0) return catlip_error_set("checkpoint: tensor '%s' has %d dimensions", name, ndim);
    uint64_t n = shape_elements("checkpoint", name, shape, (size_t)ndim);
    if (n == 0) return -1;
    if (!name[0]) return catlip_error_set("checkpoint: tensor without a name");
    Catlip__TensorChunk chunk = CATLIP__TENSOR_CHUNK__INIT;
    chunk.kind = kind;
    chunk.name = (char *)name;
    chunk.n_shape = (size_t)ndim;
    chunk.shape = (int64_t *)shape;
    Catlip__CheckpointRecord record = CATLIP__CHECKPOINT_RECORD__INIT;
    record.record_case = CATLIP__CHECKPOINT_RECORD__RECORD_TENSOR;
    record.tensor = &chunk;
    const uint64_t per_chunk = CKPT_CHUNK_BYTES / 4;
    uint8_t *packed = NULL;
    size_t packed_cap = 0;
    int rc = 0;
    for (uint64_t off = 0; off < n && rc == 0; off += per_chunk) {
        uint64_t count = n - off < per_chunk ? n - off : per_chunk;
        chunk.offset = off;
        chunk.data.data = (uint8_t *)(data + off);
        chunk.data.len = (size_t)count * 4;
        size_t len = catlip__checkpoint_record__get_packed_size(&record);
        if (len > CKPT_MAX_RECORD_BYTES) {
            rc = catlip_error_set("checkpoint: tensor '%s' chunk packs to %zu bytes, over the "
                                  "record limit (name too long?)",
                                  name, len);
            break;
        }
        if (len > packed_cap) packed = xrealloc(packed, packed_cap = len);
        catlip__checkpoint_record__pack(&record, packed);
        rc = on_record(ctx, packed, len);
    }
    free(packed);
    return rc;
}

// ---------------------------------------------------------------------------------------
// writer

struct ckpt_writer {
    char *dir;
    char *file_name;   // ckpt-<step>.pb
    char *path;        // dir/file_name
    char *tmp_path;    // path.tmp
    int64_t step;
    struct atomic_file file;  // writing tmp_path
    uint8_t *buf;      // WRITE_BUFFER_BYTES of pending output
    size_t buf_len;
    uint32_t crc;      // of every byte written so far
    uint64_t bytes;
    uint64_t records;
    bool have_header;
    bool failed;       // a write failed: only abort (or commit, which aborts) is left
    uint32_t tensor_count;
    struct chunk_rules rules;
};

const char *ckpt_writer_path(const struct ckpt_writer *w) { return w->path; }

static int writer_flush(struct ckpt_writer *w) {
    if (w->buf_len && atomic_file_write(&w->file, w->buf, w->buf_len) < 0) {
        w->failed = true;
        return -1;
    }
    w->buf_len = 0;
    return 0;
}

// Appends bytes to the file, through the buffer, and to the running checksum.
static int writer_put(struct ckpt_writer *w, const void *bytes, size_t n) {
    if (w->failed) return -1;
    w->crc = crc32c_update(w->crc, bytes, n);
    w->bytes += n;
    if (w->buf_len + n > WRITE_BUFFER_BYTES && writer_flush(w) < 0) return -1;
    if (n >= WRITE_BUFFER_BYTES) {
        if (atomic_file_write(&w->file, bytes, n) < 0) {
            w->failed = true;
            return -1;
        }
        return 0;
    }
    memcpy(w->buf + w->buf_len, bytes, n);
    w->buf_len += n;
    return 0;
}

static int writer_put_record(struct ckpt_writer *w, const void *record, size_t len) {
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t n = frame_varint_encode(prefix, len);
    if (writer_put(w, prefix, n) < 0 || writer_put(w, record, len) < 0) return -1;
    w->records++;
    return 0;
}

static int writer_usable(struct ckpt_writer *w, const char *op) {
    if (w->failed)
        return catlip_error_set("%s: %s after an earlier error", w->tmp_path, op);
    if (!w->have_header)
        return catlip_error_set("%s: %s before the header", w->tmp_path, op);
    return 0;
}

int ckpt_writer_open(struct ckpt_writer **out, const char *checkpoint_dir, int64_t step) {
    *out = NULL;
    if (step < 0 || step > CKPT_MAX_STEP)
        return catlip_error_set("checkpoint step %" PRId64 " is out of range 0..%lld", step,
                                CKPT_MAX_STEP);
    if (mkdir(checkpoint_dir, 0755) < 0 && errno != EEXIST)
        return catlip_error_set("%s: cannot create the checkpoint directory: %s",
                                checkpoint_dir, strerror(errno));
    struct ckpt_writer *w = xcalloc(1, sizeof *w);
    char name[32];
    snprintf(name, sizeof name, "ckpt-%010" PRId64 ".pb", step);
    w->dir = xstrdup(checkpoint_dir);
    w->file_name = xstrdup(name);
    w->path = path_join(checkpoint_dir, name);
    w->tmp_path = xmalloc(strlen(w->path) + 5);
    sprintf(w->tmp_path, "%s.tmp", w->path);
    w->step = step;
    if (atomic_file_open(&w->file, w->path, w->tmp_path, 0644) != 0) {
        free(w->dir), free(w->file_name), free(w->path), free(w->tmp_path), free(w);
        return -1;
    }
    w->buf = xmalloc(WRITE_BUFFER_BYTES);
    *out = w;
    return 0;
}

int ckpt_writer_header(struct ckpt_writer *w, const Catlip__CheckpointHeader *header) {
    if (w->failed) return catlip_error_set("%s: header after an earlier error", w->tmp_path);
    if (w->have_header) return catlip_error_set("%s: header written twice", w->tmp_path);
    Catlip__CheckpointHeader h = *header;
    h.format_version = CKPT_FORMAT_VERSION;
    Catlip__CheckpointRecord record = CATLIP__CHECKPOINT_RECORD__INIT;
    record.record_case = CATLIP__CHECKPOINT_RECORD__RECORD_HEADER;
    record.header = &h;
    size_t len = catlip__checkpoint_record__get_packed_size(&record);
    if (len > CKPT_MAX_RECORD_BYTES)
        return catlip_error_set("%s: header packs to %zu bytes, over the record limit of %u",
                                w->tmp_path, len, CKPT_MAX_RECORD_BYTES);
    uint8_t *packed = xmalloc(len);
    catlip__checkpoint_record__pack(&record, packed);
    int rc = writer_put_record(w, packed, len);
    free(packed);
    if (rc < 0) return -1;
    w->have_header = true;
    w->tensor_count = h.tensor_count;
    return 0;
}

static int writer_append_checked(void *ctx, const uint8_t *record, size_t len) {
    return ckpt_writer_record(ctx, record, len);
}

int ckpt_writer_tensor(struct ckpt_writer *w, Catlip__TensorChunk__Kind kind, const char *name,
                       const int64_t *shape, int ndim, const float *data) {
    if (writer_usable(w, "tensor") < 0) return -1;
    return ckpt_tensor_records(kind, name, shape, ndim, data, writer_append_checked, w);
}

int ckpt_writer_record(struct ckpt_writer *w, const void *record, size_t len) {
    if (writer_usable(w, "tensor record") < 0) return -1;
    if (len > CKPT_MAX_RECORD_BYTES)
        return catlip_error_set("%s: a tensor record of %zu bytes is over the limit of %u",
                                w->tmp_path, len, CKPT_MAX_RECORD_BYTES);
    Catlip__CheckpointRecord *r = catlip__checkpoint_record__unpack(NULL, len, record);
    if (!r)
        return catlip_error_set("%s: record %" PRIu64 " to append does not parse as a "
                                "CheckpointRecord",
                                w->tmp_path, w->records);
    int rc;
    if (r->record_case != CATLIP__CHECKPOINT_RECORD__RECORD_TENSOR)
        rc = catlip_error_set("%s: record %" PRIu64 " to append is not a tensor chunk",
                              w->tmp_path, w->records);
    else
        rc = rules_chunk(&w->rules, w->tmp_path, r->tensor);
    catlip__checkpoint_record__free_unpacked(r, NULL);
    if (rc < 0) return -1;
    return writer_put_record(w, record, len);
}

static void writer_free(struct ckpt_writer *w) {
    atomic_file_abort(&w->file);
    rules_free(&w->rules);
    free(w->buf);
    free(w->dir);
    free(w->file_name);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

void ckpt_writer_abort(struct ckpt_writer *w) {
    if (!w) return;
    writer_free(w);  // the unfinished file removed
}

int ckpt_writer_commit(struct ckpt_writer *w, int keep) {
    if (w->failed || !w->have_header) {
        if (!w->failed) catlip_error_set("%s: commit before the header", w->tmp_path);
        ckpt_writer_abort(w);
        return -1;
    }
    if (rules_finish(&w->rules, w->tmp_path, w->tensor_count) < 0) {
        ckpt_writer_abort(w);
        return -1;
    }
    Catlip__CheckpointFooter footer = CATLIP__CHECKPOINT_FOOTER__INIT;
    footer.crc32c = w->crc;
    footer.records = w->records;
    footer.bytes = w->bytes;
    Catlip__CheckpointRecord record = CATLIP__CHECKPOINT_RECORD__INIT;
    record.record_case = CATLIP__CHECKPOINT_RECORD__RECORD_FOOTER;
    record.footer = &footer;
    uint8_t packed[64];
    size_t len = catlip__checkpoint_record__get_packed_size(&record);
    CATLIP_ASSERT(len <= sizeof packed);
    catlip__checkpoint_record__pack(&record, packed);
    if (writer_put_record(w, packed, len) < 0 || writer_flush(w) < 0) {
        ckpt_writer_abort(w);
        return -1;
    }
    // fsync, rename into place, directory fsync: the checkpoint exists once this returns.
    if (atomic_file_commit(&w->file) < 0) {
        ckpt_writer_abort(w);
        return -1;
    }
    int rc = ckpt_publish(w->dir, w->file_name, keep);
    writer_free(w);
    return rc;
}

// ---------------------------------------------------------------------------------------
// reader

struct ckpt_reader {
    char *path;
    FILE *f;
    struct frame_buffer frame;
    uint64_t offset;      // bytes read so far
    uint64_t records;     // records read so far (footer excluded)
    uint32_t crc;         // of the bytes read so far, footer excluded
    Catlip__CheckpointRecord *header;
    Catlip__CheckpointRecord *current;  // the chunk last delivered
    Catlip__CheckpointFooter footer;    // a copy, from the verify pass
    struct chunk_rules rules;
    int status;           // 1: delivering, 0: delivered up to the footer, -1: failed
};

// Reads one record. Returns 1 with *out (a non-footer record; checksum and counts advanced),
// 2 with *out the footer (which it checked against what came before), 0 at a clean end of
// file, -1 on error.
static int reader_record(struct ckpt_reader *r, Catlip__CheckpointRecord **out) {
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t prefix_len = 0;
    uint64_t start = r->offset;
    int rc = frame_read_file(r->f, r->path, CKPT_MAX_RECORD_BYTES, &r->frame, &r->offset, prefix,
                             &prefix_len);
    if (rc <= 0) return rc;
    Catlip__CheckpointRecord *rec =
        catlip__checkpoint_record__unpack(NULL, r->frame.len, r->frame.data);
    if (!rec)
        return catlip_error_set("%s: record %" PRIu64 " at byte %" PRIu64 " (%zu bytes) does not "
                                "parse as a CheckpointRecord (corrupt file)",
                                r->path, r->records + 1, start, r->frame.len);
    if (rec->record_case == CATLIP__CHECKPOINT_RECORD__RECORD_FOOTER) {
        // The checksum does not cover the footer, so its bytes must be exactly what the writer
        // makes of its values: a flipped bit that parses to the same values (a uint32 varint's
        // ignored high bits, a padded varint, an unknown field) is still corruption.
        uint8_t canonical[FRAME_VARINT_MAX + 64];
        size_t len = catlip__checkpoint_record__get_packed_size(rec);
        size_t n = frame_varint_encode(canonical, r->frame.len);
        if (len != r->frame.len || len > 64 || n != prefix_len || rec->base.n_unknown_fields ||
            rec->footer->base.n_unknown_fields ||
            (catlip__checkpoint_record__pack(rec, canonical + n),
             memcmp(canonical + n, r->frame.data, len) != 0)) {
            catlip__checkpoint_record__free_unpacked(rec, NULL);
            return catlip_error_set("%s: the footer at byte %" PRIu64 " is not encoded as "
                                    "written (corrupt file)",
                                    r->path, start);
        }
        const Catlip__CheckpointFooter *f = rec->footer;
        if (f->crc32c != r->crc || f->records != r->records || f->bytes != start) {
            catlip_error_set("%s: footer does not match the data: CRC-32C 0x%08x vs computed "
                             "0x%08x, %" PRIu64 " vs %" PRIu64 " records, %" PRIu64 " vs %" PRIu64
                             " bytes (corrupt file)",
                             r->path, f->crc32c, r->crc, f->records, r->records, f->bytes, start);
            catlip__checkpoint_record__free_unpacked(rec, NULL);
            return -1;
        }
        *out = rec;
        return 2;
    }
    if (rec->record_case == CATLIP__CHECKPOINT_RECORD__RECORD__NOT_SET) {
        catlip__checkpoint_record__free_unpacked(rec, NULL);
        return catlip_error_set("%s: record %" PRIu64 " at byte %" PRIu64 " is empty or of an "
                                "unknown type (corrupt file)",
                                r->path, r->records + 1, start);
    }
    r->crc = crc32c_update(r->crc, prefix, prefix_len);
    r->crc = crc32c_update(r->crc, r->frame.data, r->frame.len);
    r->records++;
    *out = rec;
    return 1;
}

// Positions at the start of the file and reads and checks the header record.
static int reader_start(struct ckpt_reader *r) {
    rewind(r->f);
    r->offset = r->records = 0;
    r->crc = 0;
    rules_free(&r->rules);
    if (r->header) catlip__checkpoint_record__free_unpacked(r->header, NULL);
    r->header = NULL;
    Catlip__CheckpointRecord *rec = NULL;
    int rc = reader_record(r, &rec);
    if (rc < 0) return -1;
    if (rc == 0) return catlip_error_set("%s: empty file (torn write?)", r->path);
    if (rec->record_case != CATLIP__CHECKPOINT_RECORD__RECORD_HEADER) {
        catlip__checkpoint_record__free_unpacked(rec, NULL);
        return catlip_error_set("%s: the first record is not a checkpoint header", r->path);
    }
    if (rec->header->format_version != CKPT_FORMAT_VERSION) {
        catlip_error_set("%s: checkpoint format version %u, this catlip reads version %d",
                         r->path, rec->header->format_version, CKPT_FORMAT_VERSION);
        catlip__checkpoint_record__free_unpacked(rec, NULL);
        return -1;
    }
    r->header = rec;
    return 0;
}

// Reads the next record after the header. Returns 1 with a tensor chunk (checked against
// the chunk rules), 0 at a footer that is the last thing in the file, -1 on error.
static int reader_chunk(struct ckpt_reader *r, Catlip__CheckpointRecord **out) {
    Catlip__CheckpointRecord *rec = NULL;
    uint64_t start = r->offset;
    int rc = reader_record(r, &rec);
    if (rc < 0) return -1;
    if (rc == 0)
        return catlip_error_set("%s: no footer: the file ends after %" PRIu64 " records at byte "
                                "%" PRIu64 " (torn write?)",
                                r->path, r->records, r->offset);
    if (rc == 2) {
        r->footer = *rec->footer;
        catlip__checkpoint_record__free_unpacked(rec, NULL);
        int c = getc(r->f);
        if (c != EOF) {
            fseeko(r->f, 0, SEEK_END);
            return catlip_error_set("%s: %lld bytes after the footer (garbage appended?)",
                                    r->path, (long long)(ftello(r->f) - (off_t)r->offset));
        }
        if (ferror(r->f))
            return catlip_error_set("%s: read failed: %s", r->path, strerror(errno));
        if (rules_finish(&r->rules, r->path, r->header->header->tensor_count) < 0) return -1;
        return 0;
    }
    if (rec->record_case != CATLIP__CHECKPOINT_RECORD__RECORD_TENSOR) {
        catlip__checkpoint_record__free_unpacked(rec, NULL);
        return catlip_error_set("%s: a second header at byte %" PRIu64 " (corrupt file)",
                                r->path, start);
    }
    if (rules_chunk(&r->rules, r->path, rec->tensor) < 0) {
        catlip__checkpoint_record__free_unpacked(rec, NULL);
        return -1;
    }
    *out = rec;
    return 1;
}

void ckpt_reader_close(struct ckpt_reader *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    if (r->header) catlip__checkpoint_record__free_unpacked(r->header, NULL);
    if (r->current) catlip__checkpoint_record__free_unpacked(r->current, NULL);
    frame_buffer_free(&r->frame);
    rules_free(&r->rules);
    free(r->path);
    free(r);
}

static struct ckpt_reader *reader_create(const char *path) {
    struct ckpt_reader *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    r->f = fopen(path, "rbe");
    if (!r->f) {
        catlip_error_set("%s: cannot open: %s", path, strerror(errno));
        ckpt_reader_close(r);
        return NULL;
    }
    setvbuf(r->f, NULL, _IOFBF, 1 << 20);
    return r;
}

int ckpt_reader_open_streaming(struct ckpt_reader **out, const char *path) {
    *out = NULL;
    struct ckpt_reader *r = reader_create(path);
    if (!r) return -1;
    if (reader_start(r) < 0) {
        ckpt_reader_close(r);
        return -1;
    }
    r->status = 1;
    *out = r;
    return 0;
}

int ckpt_reader_open(struct ckpt_reader **out, const char *path) {
    *out = NULL;
    struct ckpt_reader *r = reader_create(path);
    if (!r) return -1;
    // Pass 1: verify everything, holding one record at a time.
    if (reader_start(r) < 0) goto fail;
    for (;;) {
        Catlip__CheckpointRecord *rec = NULL;
        int rc = reader_chunk(r, &rec);
        if (rc < 0) goto fail;
        if (rc == 0) break;
        catlip__checkpoint_record__free_unpacked(rec, NULL);
    }
    // Pass 2 starts: deliver from just after the header.
    if (reader_start(r) < 0) goto fail;
    r->status = 1;
    *out = r;
    return 0;
fail:
    ckpt_reader_close(r);
    return -1;
}

const Catlip__CheckpointHeader *ckpt_reader_header(const struct ckpt_reader *r) {
    return r->header->header;
}

uint64_t ckpt_reader_record_count(const struct ckpt_reader *r) { return r->footer.records; }
uint64_t ckpt_reader_byte_count(const struct ckpt_reader *r) { return r->footer.bytes; }

int ckpt_reader_next(struct ckpt_reader *r, const Catlip__TensorChunk **chunk) {
    *chunk = NULL;
    if (r->current) catlip__checkpoint_record__free_unpacked(r->current, NULL);
    r->current = NULL;
    if (r->status != 1) {
        if (r->status < 0) catlip_error_set("%s: reading failed earlier", r->path);
        return r->status;
    }
    Catlip__CheckpointRecord *rec = NULL;
    int rc = reader_chunk(r, &rec);
    if (rc <= 0) {
        r->status = rc;
        return rc;
    }
    r->current = rec;
    *chunk = rec->tensor;
    return 1;
}

int ckpt_read_header(const char *path, Catlip__CheckpointRecord **out) {
    *out = NULL;
    struct ckpt_reader *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    r->f = fopen(path, "rbe");
    int rc = -1;
    if (!r->f) catlip_error_set("%s: cannot open: %s", path, strerror(errno));
    else if (reader_start(r) == 0) {
        *out = r->header;
        r->header = NULL;
        rc = 0;
    }
    ckpt_reader_close(r);
    return rc;
}

int ckpt_verify(const char *path) {
    struct ckpt_reader *r;
    if (ckpt_reader_open(&r, path) < 0) return -1;
    ckpt_reader_close(r);
    return 0;
}
