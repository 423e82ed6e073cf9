// A small C program for the independent-client cross-check (check_checkpoint.py):
//   ckpt_tool write DIR STEP   writes DIR/ckpt-<STEP>.pb through the checkpoint writer, with
//                              tensors whose values follow a formula the script recomputes
//   ckpt_tool dump PATH        verifies and reads PATH through the checkpoint reader and
//                              prints the header and, per tensor, exact sums of its values
//   ckpt_tool latest DIR       prints what ckpt_find_latest picks ("found STEP PATH" or
//                              "none"); its warnings go to stderr
// Exit status 1 with one "ckpt_tool: error: ..." line when the writer or reader refuses.
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "io/checkpoint.h"

// value(t, i) = ((i*7919 + t*104729) mod 65536 - 32768) / 256: exact in float32.
static float formula(int t, uint64_t i) {
    return (float)((int64_t)((i * 7919 + (uint64_t)t * 104729) % 65536) - 32768) / 256.0f;
}

static const struct {
    Catlip__TensorChunk__Kind kind;
    const char *name;
    int ndim;
    int64_t shape[3];
} tensors[] = {
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "blocks.0.attn.qkv.weight", 2, {1100, 1000}},
    {CATLIP__TENSOR_CHUNK__KIND__PARAM, "blocks.0.attn.qkv.bias", 1, {1100}},
    {CATLIP__TENSOR_CHUNK__KIND__ADAM_M, "cls_token", 3, {1, 1, 192}},
    {CATLIP__TENSOR_CHUNK__KIND__ADAM_V, "cls_token", 3, {1, 1, 192}},
    {CATLIP__TENSOR_CHUNK__KIND__EMA, "head.weight", 2, {37, 19}},
};
#define TENSOR_COUNT (int)(sizeof tensors / sizeof tensors[0])

static int write_checkpoint(const char *dir, int64_t step) {
    Catlip__ModelConfig model = CATLIP__MODEL_CONFIG__INIT;
    model.name = "vit_tiny";
    model.dim = 192;
    model.depth = 12;
    model.heads = 3;
    model.num_classes = 37;
    Catlip__DataPosition pos = CATLIP__DATA_POSITION__INIT;
    pos.step = step;
    pos.epoch = 2;
    pos.samples_seen = step * 256;
    Catlip__CheckpointHeader h = CATLIP__CHECKPOINT_HEADER__INIT;
    h.run_id = "crosscheck";
    h.model = &model;
    h.vocab_hash = 0xfeedfacecafebeefull;
    h.position = &pos;
    h.seed = 77;
    h.config_yaml = "seed: 77\nmodel:\n  name: vit_tiny\n";
    h.worker_count = 3;
    h.tensor_count = TENSOR_COUNT;
    h.unix_time = 1700000000.5;
    h.has_ema = 1;
    struct ckpt_writer *w;
    if (ckpt_writer_open(&w, dir, step) < 0 || ckpt_writer_header(w, &h) < 0) {
        if (w) ckpt_writer_abort(w);
        return -1;
    }
    for (int t = 0; t < TENSOR_COUNT; t++) {
        uint64_t n = 1;
        for (int d = 0; d < tensors[t].ndim; d++) n *= (uint64_t)tensors[t].shape[d];
        float *v = xmalloc(n * sizeof(float));
        for (uint64_t i = 0; i < n; i++) v[i] = formula(t, i);
        int rc = ckpt_writer_tensor(w, tensors[t].kind, tensors[t].name, tensors[t].shape,
                                    tensors[t].ndim, v);
        free(v);
        if (rc < 0) {
            ckpt_writer_abort(w);
            return -1;
        }
    }
    return ckpt_writer_commit(w, 2);
}

static const char *kind_name(int kind) {
    static const char *names[] = {"PARAM", "ADAM_M", "ADAM_V", "EMA"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

// Prints, per tensor in file order, sum(256 v) and sum(256 v * (i mod 1009)): integers, exact
// in double for these sizes, so the script can compare them with its own values exactly.
static int dump_checkpoint(const char *path) {
    struct ckpt_reader *r;
    if (ckpt_reader_open(&r, path) < 0) return -1;
    const Catlip__CheckpointHeader *h = ckpt_reader_header(r);
    printf("header version=%u run_id=%s model=%s step=%" PRId64 " tensors=%u records=%" PRIu64
           " bytes=%" PRIu64 "\n",
           h->format_version, h->run_id, h->model ? h->model->name : "",
           h->position ? h->position->step : -1, h->tensor_count, ckpt_reader_record_count(r),
           ckpt_reader_byte_count(r));
    const Catlip__TensorChunk *c;
    int rc;
    char name[256] = "";
    int kind = -1;
    double sum = 0, weighted = 0;
    uint64_t elements = 0, chunks = 0;
    while ((rc = ckpt_reader_next(r, &c)) >= 0) {
        bool start = rc == 1 && c->offset == 0;
        if ((rc == 0 || start) && chunks)
            printf("tensor %s %s elements=%" PRIu64 " chunks=%" PRIu64 " sum=%.0f wsum=%.0f\n",
                   kind_name(kind), name, elements, chunks, sum, weighted);
        if (rc == 0) break;
        if (start) {
            snprintf(name, sizeof name, "%s", c->name);
            kind = c->kind;
            sum = weighted = 0;
            elements = chunks = 0;
        }
        size_t n = c->data.len / 4;
        for (size_t i = 0; i < n; i++) {
            float f;
            memcpy(&f, c->data.data + 4 * i, 4);
            double x = (double)f * 256.0;
            sum += x;
            weighted += x * (double)((c->offset + i) % 1009);
        }
        elements += n;
        chunks++;
    }
    ckpt_reader_close(r);
    return rc;
}

static int find_latest(const char *dir) {
    char *path;
    int64_t step;
    int rc = ckpt_find_latest(dir, &path, &step);
    if (rc < 0) return -1;
    if (rc == 0) printf("none\n");
    else printf("found %" PRId64 " %s\n", step, path);
    free(path);
    return 0;
}

int main(int argc, char **argv) {
    int rc;
    if (argc == 4 && !strcmp(argv[1], "write")) rc = write_checkpoint(argv[2], atoll(argv[3]));
    else if (argc == 3 && !strcmp(argv[1], "dump")) rc = dump_checkpoint(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "latest")) rc = find_latest(argv[2]);
    else {
        fprintf(stderr, "usage: ckpt_tool write DIR STEP | dump PATH | latest DIR\n");
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "ckpt_tool: error: %s\n", catlip_error());
        return 1;
    }
    return 0;
}
