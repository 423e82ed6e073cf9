#include "nn/model.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/contrastive.h"
#include "nn/text_tower.h"

struct preset {
    const char *name;
    int dim, depth, heads;
};

static const struct preset presets[] = {
    {"vit_tiny", 192, 12, 3},   {"vit_small", 384, 12, 6}, {"vit_base", 768, 12, 12},
    {"vit_large", 1024, 24, 16}, {"vit_huge", 1280, 32, 16},
};

int vit_config_make(struct vit_config *out, const char *name, int image_size, int patch_size,
                    int num_classes, int dim, int depth, int heads, int mlp_ratio) {
    const struct preset *p = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) p = &presets[i];
    if (!p)
        return catlip_error_set("model.name '%s' is not a preset (vit_tiny, vit_small, vit_base, "
                                "vit_large, vit_huge)", name);
    memset(out, 0, sizeof *out);
    out->dim = dim > 0 ? dim : p->dim;
    out->depth = depth > 0 ? depth : p->depth;
    out->heads = heads > 0 ? heads : p->heads;
    out->mlp_hidden = (mlp_ratio > 0 ? mlp_ratio : 4) * out->dim;
    out->image_size = image_size;
    out->patch_size = patch_size;
    out->num_classes = num_classes;
    if (out->dim % out->heads != 0)
        return catlip_error_set("model width %d is not divisible by %d heads", out->dim, out->heads);
    if (patch_size <= 0 || image_size <= 0 || image_size % patch_size != 0)
        return catlip_error_set("model.patch_size %d must divide model.image_size %d", patch_size,
                                image_size);
    if (num_classes <= 0)
        return catlip_error_set("the head needs at least one class (model.num_classes or a "
                                "vocabulary in data.vocab)");
    out->head_dim = out->dim / out->heads;
    out->grid = image_size / patch_size;
    out->num_patches = out->grid * out->grid;
    out->tokens = 1 + out->num_patches;
    return 0;
}

int vit_config_from_run(struct vit_config *out, const struct config *cfg, int num_classes) {
    int v = num_classes > 0 ? num_classes : (int)cfg->model.num_classes;
    return vit_config_make(out, cfg->model.name, (int)cfg->model.image_size,
                           (int)cfg->model.patch_size, v, (int)cfg->model.dim,
                           (int)cfg->model.depth, (int)cfg->model.heads,
                           (int)cfg->model.mlp_ratio);
}

int vit_config_make_clip(struct vit_config *out, const struct text_config *text) {
    if (text->embed_dim != out->num_classes)
        return catlip_error_set("the text projection's width %d differs from the image "
                                "projection's %d (model.embed_dim)", text->embed_dim,
                                out->num_classes);
    out->clip = 1;
    out->text = *text;
    return 0;
}

double vit_forward_macs(const struct vit_config *c) {
    double C = c->dim, T = c->tokens, N = c->num_patches, Hd = c->mlp_hidden;
    double patch = N * C * 3.0 * c->patch_size * c->patch_size;
    double per_block = T * C * 3 * C   // qkv
                       + 2 * T * T * C  // scores and values, all heads
                       + T * C * C      // proj
                       + 2 * T * C * Hd;  // fc1, fc2
    return patch + c->depth * per_block + (double)C * c->num_classes;
}

size_t tensor_table_add(struct tensor_info **tensors, int *ntensors, int *cap, size_t *total,
                        const char *name, bool decay, int ndim, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3) {
    if (*ntensors == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *tensors = xrealloc(*tensors, (size_t)*cap * sizeof **tensors);
    }
    struct tensor_info *t = &(*tensors)[(*ntensors)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3};
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = dims[i];
        t->numel *= (size_t)dims[i];
    }
    t->offset = *total;
    t->decay = decay;
    // Keep every tensor 64-byte aligned (16 floats) so SIMD loops start aligned.
    *total += (t->numel + 15) & ~(size_t)15;
    return t->offset;
}

void tensor_table_add_block(struct tensor_info **tensors, int *ntensors, int *cap, size_t *total,
                            const char *prefix, const char *const names[12], int64_t C,
                            int64_t hidden, struct transformer_block_offsets *b) {
    // (rows, cols) of each tensor (cols 0: a vector), in names' order
    const int64_t shapes[12][2] = {{C, 0}, {C, 0}, {3 * C, C}, {3 * C, 0}, {C, C}, {C, 0},
                                   {C, 0}, {C, 0}, {hidden, C}, {hidden, 0}, {C, hidden}, {C, 0}};
    size_t *fields[12] = {&b->norm1_w, &b->norm1_b, &b->qkv_w, &b->qkv_b, &b->proj_w, &b->proj_b,
                          &b->norm2_w, &b->norm2_b, &b->fc1_w, &b->fc1_b, &b->fc2_w, &b->fc2_b};
    b->begin = *total;
    for (int i = 0; i < 12; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, names[i]);
        const int matrix = shapes[i][1] > 0;
        *fields[i] = tensor_table_add(tensors, ntensors, cap, total, name, matrix, matrix ? 2 : 1,
                                      shapes[i][0], shapes[i][1], 0, 0);
    }
    b->end = *total;
}

static size_t add_tensor(struct vit_layout *l, int *cap, const char *name, bool decay, int ndim,
                         int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    return tensor_table_add(&l->tensors, &l->ntensors, cap, &l->total, name, decay, ndim, d0, d1,
                            d2, d3);
}

void vit_layout_init(struct vit_layout *l, const struct vit_config *c) {
    memset(l, 0, sizeof *l);
    l->config = *c;
    int cap = 0;
    const int64_t C = c->dim, P = c->patch_size;
    l->cls_token = add_tensor(l, &cap, "cls_token", false, 3, 1, 1, C, 0);
    l->pos_embed = add_tensor(l, &cap, "pos_embed", false, 3, 1, c->tokens, C, 0);
    l->patch_w = add_tensor(l, &cap, "patch_embed.proj.weight", true, 4, C, 3, P, P);
    l->patch_b = add_tensor(l, &cap, "patch_embed.proj.bias", false, 1, C, 0, 0, 0);
    l->blocks = xcalloc((size_t)c->depth, sizeof *l->blocks);
    static const char *const names[12] = {
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
        "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"};
    for (int i = 0; i < c->depth; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "blocks.%d.", i);
        tensor_table_add_block(&l->tensors, &l->ntensors, &cap, &l->total, prefix, names, C,
                               c->mlp_hidden, &l->blocks[i]);
    }
    l->norm_w = add_tensor(l, &cap, "norm.weight", false, 1, C, 0, 0, 0);
    l->norm_b = add_tensor(l, &cap, "norm.bias", false, 1, C, 0, 0, 0);
    if (!c->clip) {
        l->head_w = add_tensor(l, &cap, "head.weight", true, 2, c->num_classes, C, 0, 0);
        l->head_b = add_tensor(l, &cap, "head.bias", false, 1, c->num_classes, 0, 0, 0);
        l->image_end = l->total;
        return;
    }
    // CLIP: the image projection (OpenCLIP's timm visual tower names it head.proj), then the
    // text tower's tensors under their OpenCLIP names, then the log logit scale.
    l->head_w = add_tensor(l, &cap, "head.proj.weight", true, 2, c->num_classes, C, 0, 0);
    l->head_b = 0;
    l->image_end = l->total;
    l->text_begin = l->total;  // 16-float aligned, as every tensor
    l->text = xcalloc(1, sizeof *l->text);
    text_layout_init(l->text, &c->text);
    for (int i = 0; i < l->text->ntensors; i++) {
        const struct tensor_info *t = &l->text->tensors[i];
        size_t at = add_tensor(l, &cap, t->name, t->decay, t->ndim, t->shape[0], t->shape[1],
                               t->shape[2], t->shape[3]);
        CATLIP_ASSERT(at == l->text_begin + t->offset);
    }
    CATLIP_ASSERT(l->total == l->text_begin + l->text->total);
    l->logit_scale = add_tensor(l, &cap, "logit_scale", false, 1, 1, 0, 0, 0);
}

void vit_layout_free(struct vit_layout *l) {
    if (l->text) text_layout_free(l->text);
    free(l->text);
    free(l->tensors);
    free(l->blocks);
    memset(l, 0, sizeof *l);
}

const struct tensor_info *vit_layout_find(const struct vit_layout *l, const char *name) {
    for (int i = 0; i < l->ntensors; i++)
        if (!strcmp(l->tensors[i].name, name)) return &l->tensors[i];
    return NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void vit_init_params(const struct vit_layout *l, float *params, uint64_t seed) {
    memset(params, 0, l->total * sizeof *params);
    if (l->text) {
        // The text tower by OpenCLIP's rules, from its own streams; the log logit scale at
        // ln(1/0.07) as CLIP.
        text_init_params(l->text, params + l->text_begin, rng_key(seed, 0x7e47, 0, 0));
        params[l->logit_scale] = CONTRASTIVE_LOG_SCALE_INIT;
    }
    for (int i = 0; i < l->ntensors; i++) {
        if (l->tensors[i].offset >= l->image_end) break;  // clip: the text tower, above
        const struct tensor_info *t = &l->tensors[i];
        float *p = params + t->offset;
        bool is_norm = strstr(t->name, "norm") != NULL && !strstr(t->name, "patch_embed");
        if (ends_with(t->name, ".bias")) continue;  // zeros
        if (is_norm) {                              // LayerNorm weight: ones
            for (size_t j = 0; j < t->numel; j++) p[j] = 1.0f;
            continue;
        }
        struct rng r;
        rng_init(&r, rng_key(seed, 0x1417, (uint64_t)i, 0));
        for (size_t j = 0; j < t->numel; j++) p[j] = rng_trunc_normal(&r, 0.02f);
    }
}
