#include "model/checkpoint_state.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "io/checkpoint.h"
#include "nn/text_tower.h"
#include "text/tokenizer.h"

int checkpoint_model_config(const Catlip__CheckpointHeader *h, struct vit_config *out) {
    const Catlip__ModelConfig *m = h->model;
    if (!m || m->dim <= 0 || m->depth <= 0 || m->heads <= 0 || m->mlp_hidden <= 0 ||
        m->image_size <= 0 || m->patch_size <= 0 || m->num_classes <= 0 || m->dim % m->heads ||
        m->mlp_hidden % m->dim)
        return catlip_error_set("checkpoint header has no usable model description");
    if (vit_config_make(out, m->name && m->name[0] ? m->name : "vit_tiny", m->image_size,
                        m->patch_size, m->num_classes, m->dim, m->depth, m->heads,
                        m->mlp_hidden / m->dim) != 0)
        return -1;
    if (!m->objective || strcmp(m->objective, "clip")) return 0;
    // The text preset's name is not recorded: every field is, so any preset gives them back.
    struct text_config text;
    if (m->text_width <= 0 || m->text_depth <= 0 || m->text_heads <= 0 || m->text_vocab <= 0 ||
        text_config_make(&text, "text_tiny", m->text_vocab, m->context_length, TOKENIZER_EOT,
                         m->text_width, m->text_depth, m->text_heads, m->num_classes) != 0)
        return catlip_error_set("checkpoint header has no usable text tower description");
    return vit_config_make_clip(out, &text);
}

Catlip__CheckpointHeader *checkpoint_read_header(const char *path) {
    struct ckpt_reader *r;
    if (ckpt_reader_open(&r, path) != 0) return NULL;
    Catlip__CheckpointHeader *copy = checkpoint_header_copy(ckpt_reader_header(r), path);
    ckpt_reader_close(r);
    return copy;
}

Catlip__CheckpointHeader *checkpoint_header_copy(const Catlip__CheckpointHeader *h,
                                                 const char *path) {
    size_t len = catlip__checkpoint_header__get_packed_size(h);
    uint8_t *buf = xmalloc(len + 1);
    catlip__checkpoint_header__pack(h, buf);
    Catlip__CheckpointHeader *copy = catlip__checkpoint_header__unpack(NULL, len, buf);
    free(buf);
    if (!copy) catlip_error_set("%s: cannot copy the checkpoint header", path);
    return copy;
}

typedef int (*reader_open_fn)(struct ckpt_reader **out, const char *path);

static int read_tensors(struct ckpt_reader *r, const char *path, const struct vit_layout *l,
                        float *buffers[4], size_t state_begin, size_t state_end);

static int load_tensors(reader_open_fn open, const char *path, const struct vit_layout *l,
                        float *buffers[4], size_t state_begin, size_t state_end) {
    struct ckpt_reader *r;
    if (open(&r, path) != 0) return -1;
    int rc = read_tensors(r, path, l, buffers, state_begin, state_end);
    ckpt_reader_close(r);
    return rc;
}

int checkpoint_load_tensors(const char *path, const struct vit_layout *l, float *buffers[4]) {
    return load_tensors(ckpt_reader_open, path, l, buffers, 0, l->total);
}

int checkpoint_stream_tensors(const char *path, const struct vit_layout *l, float *buffers[4]) {
    return load_tensors(ckpt_reader_open_streaming, path, l, buffers, 0, l->total);
}

int checkpoint_stream_tensors_range(const char *path, const struct vit_layout *l,
                                    float *buffers[4], size_t state_begin, size_t state_end) {
    return load_tensors(ckpt_reader_open_streaming, path, l, buffers, state_begin, state_end);
}

int checkpoint_read_tensors(struct ckpt_reader *r, const char *path, const struct vit_layout *l,
                            float *buffers[4]) {
    return read_tensors(r, path, l, buffers, 0, l->total);
}

// Copies a chunk of n floats at flat offset `at` into buf, which holds [begin, end) of the
// flat buffer (the part of the chunk inside it).
static void copy_range(float *buf, size_t begin, size_t end, size_t at, const void *data,
                       size_t n) {
    size_t lo = at > begin ? at : begin, hi = at + n < end ? at + n : end;
    if (hi > lo) memcpy(buf + (lo - begin), (const float *)data + (lo - at), (hi - lo) * sizeof(float));
}

static int read_tensors(struct ckpt_reader *r, const char *path, const struct vit_layout *l,
                        float *buffers[4], size_t state_begin, size_t state_end) {
    size_t *filled = xcalloc((size_t)l->ntensors * 4, sizeof *filled);
    const Catlip__TensorChunk *c;
    int rc;
    while ((rc = ckpt_reader_next(r, &c)) == 1) {
        if ((int)c->kind < 0 || (int)c->kind > 3 || !buffers[c->kind]) continue;
        const struct tensor_info *t = vit_layout_find(l, c->name);
        size_t n = c->data.len / sizeof(float);
        if (!t) {
            rc = catlip_error_set("%s: tensor '%s' is not part of this model", path, c->name);
            break;
        }
        int shape_ok = (int)c->n_shape == t->ndim;
        for (int d = 0; shape_ok && d < t->ndim; d++) shape_ok = c->shape[d] == t->shape[d];
        if (!shape_ok || c->offset + n > t->numel) {
            rc = catlip_error_set("%s: tensor '%s' has a different shape than this model", path,
                                  c->name);
            break;
        }
        if (c->kind == CATLIP__TENSOR_CHUNK__KIND__PARAM)
            memcpy(buffers[c->kind] + t->offset + c->offset, c->data.data, c->data.len);
        else
            copy_range(buffers[c->kind], state_begin, state_end, t->offset + c->offset,
                       c->data.data, n);
        filled[(size_t)(t - l->tensors) * 4 + c->kind] += n;
    }
    static const char *kind_names[] = {"weights", "AdamW first moment", "AdamW second moment",
                                       "EMA"};
    for (int i = 0; rc == 0 && i < l->ntensors; i++)
        for (int k = 0; k < 4 && rc == 0; k++)
            if (buffers[k] && filled[(size_t)i * 4 + k] != l->tensors[i].numel)
                rc = catlip_error_set("%s: %s of tensor '%s' missing or incomplete", path,
                                      kind_names[k], l->tensors[i].name);
    free(filled);
    return rc == 0 ? 0 : -1;
}
