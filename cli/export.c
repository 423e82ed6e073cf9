// `catlip export`: a checkpoint's weights as safetensors with timm names, plus the vocabulary.
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/check.h"
#include "io/safetensors.h"
#include "model/inference.h"
#include "nn/bf16.h"

static const char *export_usage =
    "usage: catlip export --checkpoint CKPT -o MODEL.safetensors [--ema] [--vocab FILE]\n"
    "                     [--precision fp32|bf16]\n"
    "\n"
    "Writes the model's weights (float32, or bfloat16 rounded to nearest-even with --precision "
    "bf16)\nunder timm's VisionTransformer names "
    "(patch_embed.proj.weight,\n"
    "cls_token, pos_embed, blocks.N.*, norm.*, head.*), so a timm or PyTorch model loads them "
    "with\n"
    "load_state_dict and no renaming. __metadata__ holds \"format\" (catlip-vit), "
    "\"model_config\"\n"
    "(JSON: name, dim, depth, heads, mlp_hidden, image_size, patch_size, num_classes, "
    "layer_norm_eps,\n"
    "mean, std), \"vocab\" (JSON [[id, lemma], ...] in class order), \"vocab_hash\", \"weights\"\n"
    "(params or ema), \"step\" and \"checkpoint\". The vocabulary TSV is written beside it as\n"
    "MODEL.vocab.tsv (MODEL: the output without .safetensors).\n"
    "\n"
    "A CLIP checkpoint (model.objective clip) is written under OpenCLIP's names for a timm image\n"
    "tower: visual.trunk.<timm name>, visual.head.proj.weight (no bias), token_embedding.weight,\n"
    "positional_embedding, transformer.resblocks.N.*, ln_final.*, text_projection.weight (E, C),\n"
    "logit_scale (a scalar, log of the scale); \"format\" is catlip-clip, \"model_config\" adds\n"
    "objective, embed_dim, text_width/depth/heads/vocab, context_length, and \"tokenizer_hash\".\n"
    "\n"
    "  --checkpoint CKPT  checkpoint file, or a run directory (its newest valid checkpoint)\n"
    "  -o, --output FILE  safetensors file to write\n"
    "  --ema              export the EMA weights instead of the raw ones\n"
    "  --vocab FILE       vocabulary TSV (default: the data.vocab recorded in the checkpoint)\n"
    "  --precision P      fp32 (default) or bf16 tensors (dtype BF16, nearest-even)\n";

static void set_json_text(json_t *meta, const char *key, json_t *value) {
    char *text = json_dumps(value, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_object_set_new(meta, key, json_string(text));
    free(text);
    json_decref(value);
}

// A model.objective clip checkpoint is written with OpenCLIP's names for a CLIP whose image
// tower is timm's (open_clip TimmModel): visual.trunk.<timm name>, visual.head.proj.weight, the
// text tower's names as they are, logit_scale. A CatLIP model keeps timm's names.
static void clip_export_name(char *out, size_t size, const struct vit_layout *l,
                             const struct tensor_info *t) {
    if (!l->text || t->offset >= l->text_begin)
        snprintf(out, size, "%s", t->name);
    else if (t->offset == l->head_w)
        snprintf(out, size, "visual.head.proj.weight");
    else
        snprintf(out, size, "visual.trunk.%s", t->name);
}

static char *metadata_of(const struct inference_model *m) {
    const struct vit_config *c = &m->config;
    json_t *meta = json_object(), *cfg = json_object();
    char text[64];
    json_object_set_new(cfg, "name",
                        json_string(m->header->model->name ? m->header->model->name : ""));
    json_object_set_new(cfg, "dim", json_integer(c->dim));
    json_object_set_new(cfg, "depth", json_integer(c->depth));
    json_object_set_new(cfg, "heads", json_integer(c->heads));
    json_object_set_new(cfg, "mlp_hidden", json_integer(c->mlp_hidden));
    json_object_set_new(cfg, "image_size", json_integer(c->image_size));
    json_object_set_new(cfg, "patch_size", json_integer(c->patch_size));
    json_object_set_new(cfg, "num_classes", json_integer(c->num_classes));
    json_object_set_new(cfg, "layer_norm_eps", json_real(1e-6));
    json_t *mean = json_array(), *std = json_array();
    for (int k = 0; k < 3; k++) {
        json_array_append_new(mean, json_real(m->mean[k]));
        json_array_append_new(std, json_real(m->std[k]));
    }
    json_object_set_new(cfg, "mean", mean);
    json_object_set_new(cfg, "std", std);
    if (c->clip) {
        json_object_set_new(cfg, "objective", json_string("clip"));
        json_object_set_new(cfg, "embed_dim", json_integer(c->num_classes));
        json_object_set_new(cfg, "text_width", json_integer(c->text.width));
        json_object_set_new(cfg, "text_depth", json_integer(c->text.depth));
        json_object_set_new(cfg, "text_heads", json_integer(c->text.heads));
        json_object_set_new(cfg, "text_vocab", json_integer(c->text.vocab_size));
        json_object_set_new(cfg, "context_length", json_integer(c->text.context));
        snprintf(text, sizeof text, "%016llx",
                 (unsigned long long)m->header->tokenizer_hash);
        json_object_set_new(meta, "tokenizer_hash", json_string(text));
    }
    json_object_set_new(meta, "format", json_string(c->clip ? "catlip-clip" : "catlip-vit"));
    set_json_text(meta, "model_config", cfg);
    if (m->vocab) {
        json_t *vocab = json_array();
        for (int i = 0; i < vocab_size(m->vocab); i++) {
            json_t *row = json_array();
            json_array_append_new(row, json_string(vocab_id(m->vocab, i)));
            json_array_append_new(row, json_string(vocab_lemma(m->vocab, i)));
            json_array_append_new(vocab, row);
        }
        set_json_text(meta, "vocab", vocab);
    }
    snprintf(text, sizeof text, "%016llx", (unsigned long long)m->header->vocab_hash);
    json_object_set_new(meta, "vocab_hash", json_string(text));
    json_object_set_new(meta, "weights", json_string(m->ema ? "ema" : "params"));
    snprintf(text, sizeof text, "%llu",
             (unsigned long long)(m->header->position ? m->header->position->step : 0));
    json_object_set_new(meta, "step", json_string(text));
    json_object_set_new(meta, "checkpoint", json_string(m->path));
    char *out = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    return out;
}

static int write_vocab_beside(const struct inference_model *m, const char *output, char *path,
                              size_t size) {
    size_t len = strlen(output);
    const char *ext = ".safetensors";
    size_t el = strlen(ext);
    if (len > el && !strcmp(output + len - el, ext)) len -= el;
    snprintf(path, size, "%.*s.vocab.tsv", (int)len, output);
    int V = vocab_size(m->vocab);
    struct vocab_row *rows = xmalloc((size_t)V * sizeof *rows);
    for (int i = 0; i < V; i++)
        rows[i] = (struct vocab_row){(uint32_t)strtoul(vocab_id(m->vocab, i) + 1, NULL, 10),
                                     vocab_lemma(m->vocab, i), vocab_count(m->vocab, i)};
    int rc = vocab_write(path, vocab_header(m->vocab), rows, (size_t)V);
    free(rows);
    return rc;
}

int cmd_export(int argc, char **argv) {
    static const struct option options[] = {
        MODEL_ARGS_CHECKPOINT, {"output", 1, 0, 'o'}, MODEL_ARGS_EMA, MODEL_ARGS_VOCAB,
        MODEL_ARGS_PRECISION,  {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    struct model_args model = {.threads = 1, .clip_ok = 1};
    const char *output = NULL, *precision = "fp32";
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        // --precision here is the dtype of the written tensors, not of forward passes.
        if (opt == 'P') {
            precision = optarg;
            continue;
        }
        if (model_args_take(&model, opt, optarg)) continue;
        switch (opt) {
            case 'o': output = optarg; break;
            case 'h': fputs(export_usage, stdout); return 0;
            default: fputs(export_usage, stderr); return 2;
        }
    }
    if (!model.checkpoint || !output || optind < argc) {
        fputs(export_usage, stderr);
        fprintf(stderr, "catlip: error: export needs --checkpoint and -o (and nothing else)\n");
        return 2;
    }
    int bf16 = vit_precision_parse(precision);
    if (bf16 < 0) {
        fprintf(stderr, "catlip: error: --precision must be fp32 or bf16, got '%s'\n", precision);
        return 2;
    }
    struct inference_model m;
    if (model_args_open(&model, &m, 1) != 0) return 1;
    const struct vit_layout *l = &m.model.layout;
    struct safetensor *t = xcalloc((size_t)l->ntensors, sizeof *t);
    uint16_t *halves = NULL;  // --precision bf16: the weights rounded to bf16
    if (bf16 == VIT_BF16) {
        halves = xmalloc(l->total * sizeof *halves);
        bf16_from_floats(halves, m.params, l->total);
    }
    char (*names)[96] = xcalloc((size_t)l->ntensors, sizeof *names);
    for (int i = 0; i < l->ntensors; i++) {
        const struct tensor_info *ti = &l->tensors[i];
        clip_export_name(names[i], sizeof names[i], l, ti);
        t[i] = (struct safetensor){.name = names[i],
                                   .dtype = halves ? "BF16" : "F32",
                                   .ndim = ti->ndim,
                                   .data = halves ? (const void *)(halves + ti->offset)
                                                  : (const void *)(m.params + ti->offset),
                                   .bytes = ti->numel * (halves ? sizeof *halves : sizeof(float))};
        memcpy(t[i].shape, ti->shape, sizeof ti->shape);
        if (l->text && ti->offset == l->logit_scale) t[i].ndim = 0;  // a scalar, as OpenCLIP's
    }
    char *meta = metadata_of(&m);
    int rc = safetensors_write(output, t, l->ntensors, meta);
    char vocab_path[4096] = "";
    if (rc == 0 && m.vocab) rc = write_vocab_beside(&m, output, vocab_path, sizeof vocab_path);
    if (rc == 0)
        printf("export: %s (%d tensors, %zu parameters, %s weights)%s%s\n", output, l->ntensors,
               l->total, model.ema ? "EMA" : "raw", vocab_path[0] ? "; vocabulary " : "",
               vocab_path);
    else
        catlip_error_print();
    free(meta);
    free(names);
    free(t);
    free(halves);
    inference_free(&m);
    return rc == 0 ? 0 : 1;
}
