// The ViT + CatLIP head: shapes, the parameter table, initialisation.
//
// Parameters live in one float buffer carved into named tensors by a table (llm.c style);
// gradients, AdamW moments and EMA weights are buffers of the same size and layout, so any
// tensor is found in all of them at the same offset. Tensor names and order are timm's
// VisionTransformer state_dict, so an export loads into PyTorch with no renaming.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "nn/transformer.h"

// CLIP's text tower (nn/text_tower.h), for model.objective clip.
struct text_config {
    int vocab_size;  // V, token ids (the tokenizer's, specials included)
    int context;     // T, tokens per caption (SOT ... EOT, padded)
    int width;       // C
    int depth;       // L
    int heads;       // H
    int head_dim;    // C / H
    int mlp_hidden;  // 4C
    int embed_dim;   // E, the joint embedding width (text_projection's output)
    int eot_token;   // the end-of-text id: features are taken at its (first) position
};

struct vit_config {
    int dim;          // C, embedding width
    int depth;        // L, number of blocks
    int heads;        // H
    int head_dim;     // C / H
    int mlp_hidden;   // hidden width of the MLP (mlp_ratio * C)
    int image_size;   // S
    int patch_size;   // P
    int grid;         // S / P
    int num_patches;  // grid^2
    int tokens;       // T = 1 + num_patches (CLS first)
    int num_classes;  // V, synsets (or classes) in the head; clip: the embedding width E
    // model.objective clip: the head is the image projection (OpenCLIP's visual.head.proj:
    // E outputs, no bias), and CLIP's text tower and logit scale follow the image tower in the
    // same buffer, so optimizer, EMA, checkpoints and the gradient allreduce see one model.
    int clip;
    struct text_config text;  // clip only
};

// Fills `out` from a preset name and overrides. Returns -1 with catlip_error() on bad values.
int vit_config_make(struct vit_config *out, const char *name, int image_size, int patch_size,
                    int num_classes, int dim, int depth, int heads, int mlp_ratio);
// The same from a run configuration (model.*); num_classes overrides model.num_classes when > 0.
int vit_config_from_run(struct vit_config *out, const struct config *cfg, int num_classes);
// model.objective clip: makes `out` (from vit_config_make, num_classes = model.embed_dim) a CLIP
// model with a text tower of `text` (text_config_make). Checks the widths agree.
int vit_config_make_clip(struct vit_config *out, const struct text_config *text);

// Multiply-accumulates of one image's forward pass through the matmuls (patch embedding,
// qkv, attention scores and values, projection, MLP, head). A training step costs about
// 3x this (forward, input gradients, weight gradients), times 2 FLOPs per MAC.
double vit_forward_macs(const struct vit_config *c);

struct tensor_info {
    char name[64];     // timm name, e.g. "blocks.3.attn.qkv.weight"
    int ndim;
    int64_t shape[4];
    size_t offset;     // in floats, into the parameter buffer
    size_t numel;
    bool decay;        // AdamW weight decay applies (not biases, LayerNorm, pos_embed, cls_token)
};

// Appends a tensor to a parameter table (tensors grown in steps, *cap its capacity) and returns
// its offset: *total rounded so every tensor starts 64-byte aligned, then advanced past it.
size_t tensor_table_add(struct tensor_info **tensors, int *ntensors, int *cap, size_t *total,
                        const char *name, bool decay, int ndim, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3);

// Appends one transformer block's 12 tensors, named prefix + names[i] in the order of
// struct transformer_block_offsets (norm1 w/b, qkv w/b, proj w/b, norm2 w/b, fc1 w/b, fc2 w/b;
// weights decay, biases and norms do not), and fills b with their offsets and range.
void tensor_table_add_block(struct tensor_info **tensors, int *ntensors, int *cap, size_t *total,
                            const char *prefix, const char *const names[12], int64_t C,
                            int64_t hidden, struct transformer_block_offsets *b);

struct text_layout;

struct vit_layout {
    struct vit_config config;
    int ntensors;
    struct tensor_info *tensors;
    size_t total;  // floats in the parameter buffer
    size_t cls_token, pos_embed, patch_w, patch_b, norm_w, norm_b, head_w, head_b;
    struct transformer_block_offsets *blocks;  // (depth)
    size_t image_end;  // the image tower is [0, image_end): the whole buffer but for clip
    // clip only: the text tower's own layout (offsets relative to text_begin; its tensors are
    // also in the table above, at text_begin + offset), and the log logit scale (1 float, the
    // buffer's last tensor). head_b is unused (no bias).
    struct text_layout *text;
    size_t text_begin, logit_scale;
};

void vit_layout_init(struct vit_layout *layout, const struct vit_config *config);
void vit_layout_free(struct vit_layout *layout);
const struct tensor_info *vit_layout_find(const struct vit_layout *layout, const char *name);

// Initialises parameters (as docs/architecture.md, "The model"): truncated normal std 0.02 for linear and conv
// weights and embeddings, zeros for biases, ones/zeros for LayerNorm. Each tensor's values
// come from rng_key(seed, tensor index), so they do not depend on thread count or order.
void vit_init_params(const struct vit_layout *layout, float *params, uint64_t seed);
