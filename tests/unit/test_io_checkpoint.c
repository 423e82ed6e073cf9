// Checkpoint files: round trips (tensors over one chunk, records relayed from another rank),
// torn files at many truncation points, single-bit flips, appended garbage, `latest` falling
// back to an older valid file, keep=K pruning, temp files never taken for checkpoints, and
// I/O errors reported with the path.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "core/rng.h"
#include "io/checkpoint.h"

struct tspec {
    Catlip__TensorChunk__Kind kind;
    const char *name;
    int ndim;
    int64_t shape[4];
};

// A model-like set a few KB in size, for the byte-by-byte tests.
static const struct tspec small_set[] = {
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "cls_token", 3, {1, 1, 8}},
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "pos_embed", 3, {1, 5, 8}},
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "head.weight", 2, {10, 8}},
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "head.bias", 1, {10}},
    {CATLIP__TENSOR_CHUNK__KIND__ADAM_M, "head.weight", 2, {10, 8}},
    {CATLIP__TENSOR_CHUNK__KIND__ADAM_V, "head.weight", 2, {10, 8}},
    {CATLIP__TENSOR_CHUNK__KIND__EMA, "cls_token", 3, {1, 1, 8}},
};
#define SMALL_COUNT (int)(sizeof small_set / sizeof small_set[0])

// Tensors larger than one 4 MiB chunk: 1.2M floats (2 chunks, the second partial), exactly
// 3 chunks, and 2.5 chunks; plus a small one between them.
static const struct tspec big_set[] = {
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "blocks.0.mlp.fc1.weight", 2, {1200, 1000}},
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "blocks.0.mlp.fc1.bias", 1, {1200}},
    {CATLIP__TENSOR_CHUNK__KIND__ADAM_M, "blocks.0.mlp.fc1.weight", 2, {1200, 1000}},
    {CATLIP__TENSOR_CHUNK__KIND__EMA, "head.weight", 2, {3, 1 << 20}},
    {CATLIP__TENSOR_CHUNK__KIND__ADAM_V, "pos_embed", 3, {1, 1280, 2048}},
};
#define BIG_COUNT (int)(sizeof big_set / sizeof big_set[0])

static uint64_t spec_elements(const struct tspec *t) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

// Values are a function of (step, tensor index, element), so a reader can check them.
static float *spec_values(const struct tspec *t, int index, int64_t step) {
    uint64_t n = spec_elements(t);
    float *v = xmalloc(n * sizeof(float));
    struct rng r;
    rng_init(&r, rng_key(7, (uint64_t)step, (uint64_t)index, 0));
    for (uint64_t i = 0; i < n; i++) v[i] = rng_uniform(&r) - 0.5f;
    return v;
}

static void fill_header(Catlip__CheckpointHeader *h, Catlip__ModelConfig *m,
                        Catlip__DataPosition *pos, int64_t step, int tensors) {
    catlip__checkpoint_header__init(h);
    catlip__model_config__init(m);
    catlip__data_position__init(pos);
    m->name = "vit_tiny";
    m->dim = 192;
    m->depth = 12;
    pos->step = step;
    pos->epoch = 3;
    pos->samples_seen = step * 64;
    h->run_id = "test-run";
    h->model = m;
    h->position = pos;
    h->seed = 1234;
    h->config_yaml = "model:\n  name: vit_tiny\n";
    h->worker_count = 2;
    h->tensor_count = (uint32_t)tensors;
    h->has_ema = 1;
}

// Relays records as rank 1 would: each packed record copied (as MPI would) and appended.
static int relay(void *ctx, const uint8_t *record, size_t len) {
    uint8_t *copy = xmalloc(len);
    memcpy(copy, record, len);
    int rc = ckpt_writer_record(ctx, copy, len);
    free(copy);
    return rc;
}

// Writes a complete checkpoint; odd tensors go through the relay path.
static void write_checkpoint(const char *dir, int64_t step, const struct tspec *set, int count,
                             int keep) {
    struct ckpt_writer *w;
    assert_int_equal(ckpt_writer_open(&w, dir, step), 0);
    Catlip__CheckpointHeader h;
    Catlip__ModelConfig m;
    Catlip__DataPosition pos;
    fill_header(&h, &m, &pos, step, count);
    assert_int_equal(ckpt_writer_header(w, &h), 0);
    for (int i = 0; i < count; i++) {
        float *v = spec_values(&set[i], i, step);
        if (i % 2)
            assert_int_equal(ckpt_tensor_records(set[i].kind, set[i].name, set[i].shape,
                                                 set[i].ndim, v, relay, w),
                             0);
        else
            assert_int_equal(
                ckpt_writer_tensor(w, set[i].kind, set[i].name, set[i].shape, set[i].ndim, v),
                0);
        free(v);
    }
    assert_int_equal(ckpt_writer_commit(w, keep), 0);
}

static char *ckpt_path(const char *dir, int64_t step) {
    char p[600];
    snprintf(p, sizeof p, "%s/ckpt-%010lld.pb", dir, (long long)step);
    return xstrdup(p);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = xmalloc(*size);
    assert_int_equal(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

static void write_all_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static char *make_dir(void) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char d[512];
    snprintf(d, sizeof d, "%s/catlip_ckpt_XXXXXX", base);
    assert_non_null(mkdtemp(d));
    return xstrdup(d);
}

static void remove_dir(char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static void read_latest_file(const char *dir, char *out, size_t size) {
    char p[512];
    snprintf(p, sizeof p, "%s/latest", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)size, f));
    fclose(f);
}

// Reads a checkpoint back through the reader and checks every element of every tensor.
static void check_contents(const char *path, int64_t step, const struct tspec *set, int count) {
    struct ckpt_reader *r;
    assert_int_equal(ckpt_reader_open(&r, path), 0);
    const Catlip__CheckpointHeader *h = ckpt_reader_header(r);
    assert_int_equal(h->format_version, CKPT_FORMAT_VERSION);
    assert_string_equal(h->run_id, "test-run");
    assert_string_equal(h->model->name, "vit_tiny");
    assert_int_equal(h->model->dim, 192);
    assert_int_equal(h->position->step, step);
    assert_int_equal(h->position->samples_seen, step * 64);
    assert_string_equal(h->config_yaml, "model:\n  name: vit_tiny\n");
    assert_int_equal(h->tensor_count, count);
    assert_true(h->has_ema);
    float **got = xcalloc((size_t)count, sizeof *got);
    uint64_t *filled = xcalloc((size_t)count, sizeof *filled);
    uint64_t chunks = 0;
    const Catlip__TensorChunk *c;
    int rc;
    while ((rc = ckpt_reader_next(r, &c)) == 1) {
        chunks++;
        assert_true(c->data.len <= CKPT_CHUNK_BYTES);
        int i = 0;
        while (i < count && !(set[i].kind == c->kind && !strcmp(set[i].name, c->name))) i++;
        assert_true(i < count);
        assert_int_equal(c->n_shape, set[i].ndim);
        for (int d = 0; d < set[i].ndim; d++) assert_int_equal(c->shape[d], set[i].shape[d]);
        if (!got[i]) got[i] = xmalloc(spec_elements(&set[i]) * sizeof(float));
        assert_int_equal(c->offset, filled[i]);
        memcpy(got[i] + c->offset, c->data.data, c->data.len);
        filled[i] += c->data.len / 4;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(ckpt_reader_next(r, &c), 0);  // stays at the end
    uint64_t want_chunks = 0;
    for (int i = 0; i < count; i++) {
        uint64_t n = spec_elements(&set[i]);
        want_chunks += (n * 4 + CKPT_CHUNK_BYTES - 1) / CKPT_CHUNK_BYTES;
        assert_int_equal(filled[i], n);
        float *want = spec_values(&set[i], i, step);
        assert_memory_equal(got[i], want, n * sizeof(float));
        free(want);
        free(got[i]);
    }
    assert_int_equal(chunks, want_chunks);
    assert_int_equal(ckpt_reader_record_count(r), 1 + want_chunks);
    free(got);
    free(filled);
    ckpt_reader_close(r);
}

static void round_trip_big_tensors(void **state) {
    char *dir = make_dir();
    double t0 = time_now();
    write_checkpoint(dir, 1000, big_set, BIG_COUNT, 2);
    double t1 = time_now();
    char *p = ckpt_path(dir, 1000);
    check_contents(p, 1000, big_set, BIG_COUNT);
    double t2 = time_now();
    struct stat st;
    stat(p, &st);
    print_message("big checkpoint: %.1f MB written in %.3f s, verified+read in %.3f s\n",
                  st.st_size / 1e6, t1 - t0, t2 - t1);
    char line[64];
    read_latest_file(dir, line, sizeof line);
    assert_string_equal(line, "ckpt-0000001000.pb\n");
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(exists(tmp));
    // Torn at points that matter in a multi-chunk file: inside the header, inside chunk
    // payloads, at and around chunk records, inside and just before the footer.
    size_t size = (size_t)st.st_size;
    const size_t cuts[] = {1,          37,         4 << 20,    (4 << 20) + 100, size / 3,
                           size / 2,   size - 200, size - 20,  size - 10,       size - 2,
                           size - 1};
    char torn[512];
    snprintf(torn, sizeof torn, "%s/torn.pb", dir);
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "head -c %zu '%s' > '%s'", cuts[i], p, torn);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(ckpt_verify(torn), -1);
        assert_non_null(strstr(catlip_error(), torn));
    }
    free(p);
    remove_dir(dir);
}

static void round_trip_small_and_latest(void **state) {
    char *dir = make_dir();
    write_checkpoint(dir, 7, small_set, SMALL_COUNT, 0);
    char *p = ckpt_path(dir, 7);
    check_contents(p, 7, small_set, SMALL_COUNT);
    char *found;
    int64_t step;
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_string_equal(found, p);
    assert_int_equal(step, 7);
    free(found);
    Catlip__CheckpointRecord *hr;
    assert_int_equal(ckpt_read_header(p, &hr), 0);
    assert_string_equal(hr->header->run_id, "test-run");
    assert_int_equal(hr->header->position->step, 7);
    catlip__checkpoint_record__free_unpacked(hr, NULL);
    assert_int_equal(truncate(p, 3), 0);  // header cut: refused
    assert_int_equal(ckpt_read_header(p, &hr), -1);
    assert_null(hr);
    assert_non_null(strstr(catlip_error(), p));
    free(p);
    remove_dir(dir);
}

// Every byte in the first 100, every 7th after, every byte of the last 100: all rejected,
// each with one line naming the file.
static void torn_files_rejected(void **state) {
    char *dir = make_dir();
    write_checkpoint(dir, 3, small_set, SMALL_COUNT, 0);
    char *p = ckpt_path(dir, 3);
    size_t size;
    uint8_t *b = read_all(p, &size);
    char torn[512];
    snprintf(torn, sizeof torn, "%s/torn.pb", dir);
    int tried = 0;
    for (size_t cut = 0; cut < size; cut += (cut < 100 || cut + 100 >= size) ? 1 : 7) {
        write_all_bytes(torn, b, cut);
        assert_int_equal(ckpt_verify(torn), -1);
        const char *e = catlip_error();
        assert_non_null(strstr(e, torn));
        assert_null(strchr(e, '\n'));
        tried++;
    }
    print_message("%d truncation points of a %zu-byte file rejected\n", tried, size);
    write_all_bytes(torn, b, size);
    assert_int_equal(ckpt_verify(torn), 0);
    free(b);
    free(p);
    remove_dir(dir);
}

static void bit_flips_rejected(void **state) {
    char *dir = make_dir();
    write_checkpoint(dir, 3, small_set, SMALL_COUNT, 0);
    char *p = ckpt_path(dir, 3);
    size_t size;
    uint8_t *b = read_all(p, &size);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/flipped.pb", dir);
    int tried = 0;
    for (size_t i = 0; i < size; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            write_all_bytes(bad, b, size);
            b[i] ^= (uint8_t)(1u << bit);
            if (ckpt_verify(bad) != -1)
                fail_msg("flipping bit %d of byte %zu was not detected", bit, i);
            assert_non_null(strstr(catlip_error(), bad));
            tried++;
        }
    }
    print_message("%d single-bit flips of a %zu-byte file rejected\n", tried, size);
    free(b);
    free(p);
    remove_dir(dir);
}

static void garbage_and_missing_footer(void **state) {
    char *dir = make_dir();
    write_checkpoint(dir, 3, small_set, SMALL_COUNT, 0);
    char *p = ckpt_path(dir, 3);
    size_t size;
    uint8_t *b = read_all(p, &size);
    uint8_t *big = xmalloc(size * 2 + 16);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.pb", dir);
    // A zero byte is a valid empty frame; after the footer it is still garbage.
    memcpy(big, b, size);
    big[size] = 0;
    write_all_bytes(bad, big, size + 1);
    assert_int_equal(ckpt_verify(bad), -1);
    assert_non_null(strstr(catlip_error(), "1 bytes after the footer"));
    // A whole second copy of the file appended.
    memcpy(big + size, b, size);
    write_all_bytes(bad, big, 2 * size);
    assert_int_equal(ckpt_verify(bad), -1);
    assert_non_null(strstr(catlip_error(), "after the footer"));
    // Cut exactly before the footer: every record is whole, but there is no footer.
    struct ckpt_reader *r;
    assert_int_equal(ckpt_reader_open(&r, p), 0);
    uint64_t before_footer = ckpt_reader_byte_count(r);
    ckpt_reader_close(r);
    write_all_bytes(bad, b, (size_t)before_footer);
    assert_int_equal(ckpt_verify(bad), -1);
    assert_non_null(strstr(catlip_error(), "no footer"));
    // Empty file, missing file.
    write_all_bytes(bad, b, 0);
    assert_int_equal(ckpt_verify(bad), -1);
    assert_non_null(strstr(catlip_error(), "empty file"));
    unlink(bad);
    assert_int_equal(ckpt_verify(bad), -1);
    assert_non_null(strstr(catlip_error(), "No such file"));
    // A header and footer that are internally consistent but promise more tensors than the
    // file holds: written by hand below the writer's checks is not possible, so check the
    // writer refuses to commit it.
    struct ckpt_writer *w;
    assert_int_equal(ckpt_writer_open(&w, dir, 9), 0);
    Catlip__CheckpointHeader h;
    Catlip__ModelConfig m;
    Catlip__DataPosition pos;
    fill_header(&h, &m, &pos, 9, 2);
    assert_int_equal(ckpt_writer_header(w, &h), 0);
    float x[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    assert_int_equal(ckpt_writer_tensor(w, CATLIP__TENSOR_CHUNK__KIND__PARAM, "x", shape, 1, x), 0);
    assert_int_equal(ckpt_writer_commit(w, 0), -1);
    assert_non_null(strstr(catlip_error(), "promises 2 tensors, 1 were written"));
    char *p9 = ckpt_path(dir, 9);
    char tmp9[700];
    snprintf(tmp9, sizeof tmp9, "%s.tmp", p9);
    assert_false(exists(p9));
    assert_false(exists(tmp9));
    free(p9);
    free(big);
    free(b);
    free(p);
    remove_dir(dir);
}

static void writer_refuses_bad_sequences(void **state) {
    char *dir = make_dir();
    struct ckpt_writer *w;
    float x[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    assert_int_equal(ckpt_writer_open(&w, dir, 5), 0);
    assert_int_equal(
        ckpt_writer_tensor(w, CATLIP__TENSOR_CHUNK__KIND__PARAM, "x", shape, 1, x), -1);
    assert_non_null(strstr(catlip_error(), "before the header"));
    Catlip__CheckpointHeader h;
    Catlip__ModelConfig m;
    Catlip__DataPosition pos;
    fill_header(&h, &m, &pos, 5, 1);
    assert_int_equal(ckpt_writer_header(w, &h), 0);
    assert_int_equal(ckpt_writer_header(w, &h), -1);
    // A header record relayed as if it were a tensor.
    Catlip__CheckpointRecord rec = CATLIP__CHECKPOINT_RECORD__INIT;
    rec.record_case = CATLIP__CHECKPOINT_RECORD__RECORD_HEADER;
    rec.header = &h;
    uint8_t buf[256];
    size_t len = catlip__checkpoint_record__pack(&rec, buf);
    assert_int_equal(ckpt_writer_record(w, buf, len), -1);
    assert_non_null(strstr(catlip_error(), "not a tensor chunk"));
    assert_int_equal(ckpt_writer_record(w, "\xff\xff\xff", 3), -1);
    assert_non_null(strstr(catlip_error(), "does not parse"));
    // A chunk that skips elements, then one of a bad shape.
    Catlip__TensorChunk c = CATLIP__TENSOR_CHUNK__INIT;
    c.name = "x";
    c.n_shape = 1;
    c.shape = shape;
    c.offset = 2;
    c.data.data = (uint8_t *)x;
    c.data.len = 8;
    rec.record_case = CATLIP__CHECKPOINT_RECORD__RECORD_TENSOR;
    rec.tensor = &c;
    len = catlip__checkpoint_record__pack(&rec, buf);
    assert_int_equal(ckpt_writer_record(w, buf, len), -1);
    assert_non_null(strstr(catlip_error(), "does not follow"));
    int64_t bad_shape[2] = {4, -1};
    assert_int_equal(
        ckpt_writer_tensor(w, CATLIP__TENSOR_CHUNK__KIND__PARAM, "y", bad_shape, 2, x), -1);
    assert_non_null(strstr(catlip_error(), "bad shape"));
    // The first half of x, then the same tensor again from 0: incomplete, then a duplicate.
    c.offset = 0;
    len = catlip__checkpoint_record__pack(&rec, buf);
    assert_int_equal(ckpt_writer_record(w, buf, len), 0);
    c.name = "z";
    c.data.len = 16;
    len = catlip__checkpoint_record__pack(&rec, buf);
    assert_int_equal(ckpt_writer_record(w, buf, len), -1);
    assert_non_null(strstr(catlip_error(), "tensor 'x' is incomplete: 2 of 4"));
    c.name = "x";
    c.offset = 2;
    c.data.len = 8;
    len = catlip__checkpoint_record__pack(&rec, buf);
    assert_int_equal(ckpt_writer_record(w, buf, len), 0);
    c.offset = 0;
    c.data.len = 16;
    len = catlip__checkpoint_record__pack(&rec, buf);
    assert_int_equal(ckpt_writer_record(w, buf, len), -1);
    assert_non_null(strstr(catlip_error(), "appears twice"));
    char *p = ckpt_path(dir, 5);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_true(exists(tmp));
    ckpt_writer_abort(w);  // removes the temp file
    assert_false(exists(tmp));
    assert_false(exists(p));
    free(p);
    remove_dir(dir);
}

static void io_errors_name_the_path(void **state) {
    char *dir = make_dir();
    struct ckpt_writer *w;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/no/such/parent", dir);
    assert_int_equal(ckpt_writer_open(&w, sub, 1), -1);
    assert_non_null(strstr(catlip_error(), sub));
    assert_non_null(strstr(catlip_error(), "No such file or directory"));
    assert_int_equal(ckpt_writer_open(&w, dir, -1), -1);
    assert_int_equal(ckpt_writer_open(&w, dir, CKPT_MAX_STEP + 1), -1);
    // A write that fails (file size limit): -1 naming the temp file, then abort cleans up.
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1 << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(ckpt_writer_open(&w, dir, 2), 0);
    Catlip__CheckpointHeader h;
    Catlip__ModelConfig m;
    Catlip__DataPosition pos;
    fill_header(&h, &m, &pos, 2, 1);
    assert_int_equal(ckpt_writer_header(w, &h), 0);
    int64_t shape[1] = {1 << 20};
    float *v = xcalloc(1 << 20, sizeof(float));
    int rc = ckpt_writer_tensor(w, CATLIP__TENSOR_CHUNK__KIND__PARAM, "w", shape, 1, v);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(catlip_error(), "ckpt-0000000002.pb.tmp: write failed: File too large"));
    assert_int_equal(ckpt_writer_commit(w, 1), -1);  // commit after a failure aborts
    char *p = ckpt_path(dir, 2);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(exists(p));
    assert_false(exists(tmp));
    free(p);
    free(v);
    remove_dir(dir);
}

static void latest_falls_back_to_valid(void **state) {
    char *dir = make_dir();
    char *found;
    int64_t step;
    // No directory, then an empty one: a fresh start, not an error.
    char missing[512];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_int_equal(ckpt_find_latest(missing, &found, &step), 0);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 0);
    assert_null(found);
    write_checkpoint(dir, 10, small_set, SMALL_COUNT, 0);
    write_checkpoint(dir, 20, small_set, SMALL_COUNT, 0);
    write_checkpoint(dir, 30, small_set, SMALL_COUNT, 0);
    char *p10 = ckpt_path(dir, 10), *p20 = ckpt_path(dir, 20), *p30 = ckpt_path(dir, 30);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_int_equal(step, 30);
    free(found);
    // latest points at a torn file: the previous valid one.
    struct stat st;
    stat(p30, &st);
    assert_int_equal(truncate(p30, st.st_size / 2), 0);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_string_equal(found, p20);
    assert_int_equal(step, 20);
    free(found);
    // A complete newer file under the temp name is never taken.
    char tmp40[512];
    snprintf(tmp40, sizeof tmp40, "%s/ckpt-0000000040.pb.tmp", dir);
    size_t size;
    uint8_t *b = read_all(p20, &size);
    write_all_bytes(tmp40, b, size);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_int_equal(step, 20);
    free(found);
    // latest missing, or holding nonsense, or naming a missing file: newest valid file.
    char latest[512];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    unlink(latest);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_int_equal(step, 20);
    free(found);
    write_all_bytes(latest, "../../etc/passwd\n", 17);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_int_equal(step, 20);
    free(found);
    write_all_bytes(latest, "ckpt-0000000099.pb\n", 19);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_int_equal(step, 20);
    free(found);
    // Corrupt 20 too (one flipped byte in the middle): back to 10.
    b[size / 2] ^= 0x10;
    write_all_bytes(p20, b, size);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 1);
    assert_string_equal(found, p10);
    free(found);
    // Nothing valid: a fresh start.
    assert_int_equal(truncate(p10, 5), 0);
    assert_int_equal(ckpt_find_latest(dir, &found, &step), 0);
    assert_null(found);
    // Not a directory: an error.
    assert_int_equal(ckpt_find_latest(p10, &found, &step), -1);
    assert_non_null(strstr(catlip_error(), p10));
    free(b);
    free(p10), free(p20), free(p30);
    remove_dir(dir);
}

// The file is changed in place after open verified it (beyond what stdio has buffered):
// delivery ends in -1, not 0, and stays failed.
static const struct tspec medium_set[] = {
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "a", 1, {300000}},
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "b", 1, {300000}},
};

static void reader_detects_change_between_passes(void **state) {
    char *dir = make_dir();
    write_checkpoint(dir, 3, medium_set, 2, 0);
    char *p = ckpt_path(dir, 3);
    size_t size;
    uint8_t *b = read_all(p, &size);
    struct ckpt_reader *r;
    assert_int_equal(ckpt_reader_open(&r, p), 0);
    b[size - 1000] ^= 0x01;  // inside tensor b's float data, past the first MiB
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, size, f), size);
    fclose(f);
    const Catlip__TensorChunk *c;
    int rc, chunks = 0;
    while ((rc = ckpt_reader_next(r, &c)) == 1) chunks++;
    assert_int_equal(rc, -1);
    assert_int_equal(chunks, 2);
    assert_non_null(strstr(catlip_error(), "footer does not match the data"));
    assert_int_equal(ckpt_reader_next(r, &c), -1);  // stays failed
    ckpt_reader_close(r);
    free(b);
    free(p);
    remove_dir(dir);
}

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t a = strlen(e->d_name), b = strlen(suffix);
        n += a >= b && !strcmp(e->d_name + a - b, suffix);
    }
    closedir(d);
    return n;
}

static void keep_prunes_old_checkpoints(void **state) {
    char *dir = make_dir();
    // A stale temp file of an earlier step (a killed write) and one of a later step.
    char stale[512], later[512];
    snprintf(stale, sizeof stale, "%s/ckpt-0000000002.pb.tmp", dir);
    snprintf(later, sizeof later, "%s/ckpt-0000009999.pb.tmp", dir);
    write_all_bytes(stale, "x", 1);
    write_all_bytes(later, "x", 1);
    for (int64_t s = 1; s <= 6; s++) write_checkpoint(dir, s * 100, small_set, SMALL_COUNT, 3);
    assert_int_equal(count_files(dir, ".pb"), 3);
    for (int64_t s = 1; s <= 6; s++) {
        char *p = ckpt_path(dir, s * 100);
        assert_int_equal(exists(p), s >= 4);
        free(p);
    }
    assert_false(exists(stale));
    assert_true(exists(later));
    char line[64];
    read_latest_file(dir, line, sizeof line);
    assert_string_equal(line, "ckpt-0000000600.pb\n");
    // keep=1 leaves only the newest; keep=0 deletes nothing.
    write_checkpoint(dir, 700, small_set, SMALL_COUNT, 1);
    assert_int_equal(count_files(dir, ".pb"), 1);
    write_checkpoint(dir, 800, small_set, SMALL_COUNT, 0);
    write_checkpoint(dir, 900, small_set, SMALL_COUNT, 0);
    assert_int_equal(count_files(dir, ".pb"), 3);
    // Resumed from an older step: files of later steps are not this run's to delete, and
    // the file just written is never deleted.
    write_checkpoint(dir, 750, small_set, SMALL_COUNT, 1);
    char *p = ckpt_path(dir, 750);
    assert_true(exists(p));
    free(p);
    p = ckpt_path(dir, 700);
    assert_false(exists(p));
    free(p);
    assert_int_equal(count_files(dir, ".pb"), 3);  // 750, 800, 900
    remove_dir(dir);
}

static void file_names(void **state) {
    int64_t s;
    assert_int_equal(ckpt_parse_file_name("ckpt-0000000123.pb", &s), 1);
    assert_int_equal(s, 123);
    assert_int_equal(ckpt_parse_file_name("ckpt-9999999999.pb", &s), 1);
    assert_true(s == CKPT_MAX_STEP);
    assert_int_equal(ckpt_parse_file_name("ckpt-0000000123.pb.tmp", &s), 0);
    assert_int_equal(ckpt_parse_file_name("ckpt-123.pb", &s), 0);
    assert_int_equal(ckpt_parse_file_name("xckpt-0000000123.pb", &s), 0);
    assert_int_equal(ckpt_parse_file_name("ckpt-00000001a3.pb", &s), 0);
    assert_int_equal(ckpt_parse_file_name("latest", &s), 0);
}

int main(void) {
    log_set_level(LOG_ERROR);  // the fallback warnings are expected here
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_names),
        cmocka_unit_test(round_trip_small_and_latest),
        cmocka_unit_test(round_trip_big_tensors),
        cmocka_unit_test(torn_files_rejected),
        cmocka_unit_test(bit_flips_rejected),
        cmocka_unit_test(garbage_and_missing_footer),
        cmocka_unit_test(writer_refuses_bad_sequences),
        cmocka_unit_test(io_errors_name_the_path),
        cmocka_unit_test(reader_detects_change_between_passes),
        cmocka_unit_test(latest_falls_back_to_valid),
        cmocka_unit_test(keep_prunes_old_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
