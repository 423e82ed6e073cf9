#include "core/config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <string.h>
#include <yaml.h>

#include "core/check.h"

enum key_type { KEY_INT, KEY_FLOAT, KEY_STRING, KEY_BOOL, KEY_FLOATS };

struct key_spec {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size;       // bytes of a string field, or element count of KEY_FLOATS
    double min, max;   // inclusive range for numbers
    const char *deflt; // default, as it would be written in YAML
    const char *help;
};

#define OFF(field) offsetof(struct config, field)
#define STR(field) OFF(field), sizeof(((struct config *)0)->field)
#define NUM(field) OFF(field), 0
#define LIST(field, n) OFF(field), n

static const struct key_spec keys[] = {
    {"run_dir", KEY_STRING, STR(run_dir), 0, 0, "runs/default",
     "directory for logs, metrics and checkpoints"},
    {"seed", KEY_INT, NUM(seed), 0, 9.2e18, "0",
     "seed of every random choice (init, data order, augmentation)"},
    {"task", KEY_STRING, STR(task), 0, 0, "pretrain", "pretrain (CatLIP synset BCE) or classify"},
    {"model.name", KEY_STRING, STR(model.name), 0, 0, "vit_tiny",
     "vit_tiny | vit_small | vit_base | vit_large | vit_huge"},
    {"model.image_size", KEY_INT, NUM(model.image_size), 8, 4096, "224", "input side in pixels"},
    {"model.patch_size", KEY_INT, NUM(model.patch_size), 1, 256, "16", "patch side in pixels"},
    {"model.num_classes", KEY_INT, NUM(model.num_classes), 0, 1e7, "0",
     "head outputs; 0 = vocabulary size"},
    {"model.dim", KEY_INT, NUM(model.dim), 0, 16384, "0", "width; 0 = preset"},
    {"model.depth", KEY_INT, NUM(model.depth), 0, 256, "0", "blocks; 0 = preset"},
    {"model.heads", KEY_INT, NUM(model.heads), 0, 256, "0", "attention heads; 0 = preset"},
    {"model.mlp_ratio", KEY_INT, NUM(model.mlp_ratio), 0, 16, "0", "MLP hidden / width; 0 = 4"},
    {"model.init_from", KEY_STRING, STR(model.init_from), 0, 0, "",
     "checkpoint whose backbone (and head, if it fits) initialises a fresh run"},
    {"model.init_ema", KEY_BOOL, NUM(model.init_ema), 0, 0, "false",
     "initialise from init_from's EMA weights"},
    {"model.head_init", KEY_STRING, STR(model.head_init), 0, 0, "random",
     "random | transfer (model.head_file from catlip transfer)"},
    {"model.head_file", KEY_STRING, STR(model.head_file), 0, 0, "",
     "head written by catlip transfer"},
    {"model.objective", KEY_STRING, STR(model.objective), 0, 0, "catlip",
     "catlip (synset BCE) | clip (contrastive image-text, needs data.tokenizer)"},
    {"model.text", KEY_STRING, STR(model.text), 0, 0, "text_base",
     "clip: text tower preset, text_base (512, 12 layers, 8 heads) | text_tiny (64, 2, 4)"},
    {"model.text_width", KEY_INT, NUM(model.text_width), 0, 16384, "0", "clip: text width; 0 = preset"},
    {"model.text_depth", KEY_INT, NUM(model.text_depth), 0, 256, "0", "clip: text blocks; 0 = preset"},
    {"model.text_heads", KEY_INT, NUM(model.text_heads), 0, 256, "0", "clip: text heads; 0 = preset"},
    {"model.context_length", KEY_INT, NUM(model.context_length), 2, 512, "32",
     "clip: tokens per caption, <sot> and <eot> included"},
    {"model.embed_dim", KEY_INT, NUM(model.embed_dim), 1, 16384, "512",
     "clip: joint embedding width (both towers' projections)"},
    {"data.train", KEY_STRING, STR(data.train), 0, 0, "synthetic",
     "training shards (data/{00000..00099}.tar) or synthetic (built-in learnable data)"},
    {"data.val", KEY_STRING, STR(data.val), 0, 0, "", "validation shards"},
    {"data.vocab", KEY_STRING, STR(data.vocab), 0, 0, "", "synset vocabulary TSV"},
    {"data.tokenizer", KEY_STRING, STR(data.tokenizer), 0, 0, "",
     "clip: word table from catlip tokenizer build"},
    {"data.decode_threads", KEY_INT, NUM(data.decode_threads), 0, 256, "1", "JPEG decode threads per worker"},
    {"data.skip_missing_shards", KEY_BOOL, NUM(data.skip_missing_shards), 0, 0, "false", "skip shards that cannot be opened"},
    {"data.mean", KEY_FLOATS, LIST(data.mean, 3), -1e3, 1e3, "[0.485, 0.456, 0.406]", "per-channel mean (RGB, 0-1 scale)"},
    {"data.std", KEY_FLOATS, LIST(data.std, 3), 1e-6, 1e3, "[0.229, 0.224, 0.225]", "per-channel std"},
    {"train.steps", KEY_INT, NUM(train.steps), 0, 1e12, "0", "optimiser steps; 0 = from train.epochs"},
    {"train.epochs", KEY_INT, NUM(train.epochs), 0, 1e6, "0", "epochs (used when train.steps is 0)"},
    {"train.global_batch", KEY_INT, NUM(train.global_batch), 1, 1e7, "32", "images per optimiser step, over all workers"},
    {"train.micro_batch", KEY_INT, NUM(train.micro_batch), 0, 1e7, "0", "images per worker per forward/backward (gradients accumulate over a step's micro-batches); 0 = the worker's whole slice"},
    {"train.threads", KEY_INT, NUM(train.threads), 0, 4096, "0", "compute threads per worker; 0 = cores given to the rank"},
    {"train.bucket_mb", KEY_FLOAT, NUM(train.bucket_mb), 0.001, 4096, "4", "gradient allreduce bucket size (MiB)"},
    {"train.overlap", KEY_BOOL, NUM(train.overlap), 0, 0, "true", "overlap gradient allreduce with backward"},
    {"train.grad_comm", KEY_STRING, STR(train.grad_comm), 0, 0, "fp32", "fp32 | bf16: gradients travel as bf16 (half the bytes), summed in fp32 at every hop"},
    {"train.allreduce", KEY_STRING, STR(train.allreduce), 0, 0, "auto", "auto | flat | hierarchical (within each host first, then one leader per host); auto: hierarchical when there are several hosts and one runs several workers"},
    {"train.collectives", KEY_STRING, STR(train.collectives), 0, 0, "ring", "ring | mpi: how gradients are summed across workers: our own ring (reduce-scatter + allgather, fixed summation order) or Open MPI's non-blocking collectives (MPI_Iallreduce, MPI_Ireduce_scatter)"},
    {"train.shard_optimizer", KEY_BOOL, NUM(train.shard_optimizer), 0, 0, "false", "ZeRO stage 1: gradients reduce-scattered, each worker keeps AdamW moments and EMA for its 1/N of the parameters and updates only those, then the weights are allgathered (flat allreduce only)"},
    {"train.worker_timeout", KEY_FLOAT, NUM(train.worker_timeout), 1, 1e7, "900", "seconds a worker may go without progress before the job is aborted (before its first message, while it starts up: at least 300)"},
    {"train.freeze_backbone", KEY_BOOL, NUM(train.freeze_backbone), 0, 0, "false", "linear probe: train only the head"},
    {"train.loss", KEY_STRING, STR(train.loss), 0, 0, "auto", "auto | bce | ce (auto: bce to pretrain, ce to classify)"},
    {"train.precision", KEY_STRING, STR(train.precision), 0, 0, "fp32", "fp32 | bf16: matmul inputs rounded to bf16, fp32 sums (PyTorch CPU autocast); weights, gradients, optimizer state fp32"},
    {"optim.lr", KEY_FLOAT, NUM(optim.lr), 0, 10, "0.001", "peak learning rate"},
    {"optim.min_lr", KEY_FLOAT, NUM(optim.min_lr), 0, 10, "0.00001", "floor of the cosine decay"},
    {"optim.warmup_steps", KEY_INT, NUM(optim.warmup_steps), 0, 1e12, "0", "linear warmup steps"},
    {"optim.warmup_init_lr", KEY_FLOAT, NUM(optim.warmup_init_lr), 0, 10, "0.000001",
     "learning rate at step 0 of warmup"},
    {"optim.weight_decay", KEY_FLOAT, NUM(optim.weight_decay), 0, 10, "0.2",
     "AdamW decoupled weight decay"},
    {"optim.betas", KEY_FLOATS, LIST(optim.betas, 2), 0, 0.999999999, "[0.9, 0.999]",
     "AdamW betas"},
    {"optim.eps", KEY_FLOAT, NUM(optim.eps), 1e-30, 1, "0.00000001", "AdamW epsilon"},
    {"optim.grad_clip", KEY_FLOAT, NUM(optim.grad_clip), 0, 1e9, "1.0",
     "global gradient-norm clip; 0 = off"},
    {"optim.ema", KEY_FLOAT, NUM(optim.ema), 0, 1, "0.0005", "EMA momentum; 0 = no EMA"},
    {"optim.label_smoothing", KEY_FLOAT, NUM(optim.label_smoothing), 0, 0.999, "0.1",
     "label smoothing of the ce loss"},
    {"checkpoint.every_steps", KEY_INT, NUM(checkpoint.every_steps), 0, 1e12, "1000",
     "checkpoint interval; 0 = only at the end"},
    {"checkpoint.keep", KEY_INT, NUM(checkpoint.keep), 1, 1e6, "3", "checkpoints kept"},
    {"status.host", KEY_STRING, STR(status.host), 0, 0, "127.0.0.1",
     "address the status listeners bind"},
    {"status.port", KEY_INT, NUM(status.port), 0, 65535, "0",
     "protobuf status port; 0 = ephemeral"},
    {"status.http_port", KEY_INT, NUM(status.http_port), 0, 65535, "0",
     "HTTP status port; 0 = ephemeral"},
    {"log.every_steps", KEY_INT, NUM(log.every_steps), 1, 1e12, "10", "progress interval in steps"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key_spec *find_key(const char *name) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

static const char *type_name(enum key_type t) {
    switch (t) {
    case KEY_INT: return "an integer";
    case KEY_FLOAT: return "a number";
    case KEY_STRING: return "a string";
    case KEY_BOOL: return "true or false";
    case KEY_FLOATS: return "a list of numbers";
    }
    return "?";
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

// Sets one scalar (or one element of a list) from text. `where` names the source for errors.
static int set_number(const struct key_spec *k, double *dst_double, int64_t *dst_int,
                      const char *text, const char *where) {
    double v;
    if (parse_double(text, &v) != 0)
        return catlip_error_set("%s: %s must be %s, got '%s'", where, k->name,
                                type_name(k->type == KEY_FLOATS ? KEY_FLOAT : k->type), text);
    if (dst_int && v != floor(v))
        return catlip_error_set("%s: %s must be an integer, got '%s'", where, k->name, text);
    if (v < k->min || v > k->max)
        return catlip_error_set("%s: %s = %s is out of range [%g, %g]", where, k->name, text,
                                k->min, k->max);
    if (dst_int) *dst_int = (int64_t)v;
    if (dst_double) *dst_double = v;
    return 0;
}

static int set_scalar(struct config *cfg, const struct key_spec *k, const char *text,
                      const char *where) {
    char *base = (char *)cfg + k->offset;
    switch (k->type) {
    case KEY_INT: return set_number(k, NULL, (int64_t *)base, text, where);
    case KEY_FLOAT: return set_number(k, (double *)base, NULL, text, where);
    case KEY_STRING:
        if (strlen(text) >= k->size)
            return catlip_error_set("%s: %s is longer than %zu characters", where, k->name,
                                    k->size - 1);
        strcpy(base, text);
        return 0;
    case KEY_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "yes") || !strcmp(text, "on") || !strcmp(text, "1"))
            *(bool *)base = true;
        else if (!strcmp(text, "false") || !strcmp(text, "no") || !strcmp(text, "off") || !strcmp(text, "0"))
            *(bool *)base = false;
        else
            return catlip_error_set("%s: %s must be true or false, got '%s'", where, k->name, text);
        return 0;
    case KEY_FLOATS:
        return catlip_error_set("%s: %s must be a list of %zu numbers like %s", where, k->name,
                                k->size, k->deflt);
    }
    return -1;
}

// Applies a YAML node to key `name` (a leaf) — scalar or flow sequence.
static int apply_node(struct config *cfg, yaml_document_t *doc, yaml_node_t *node,
                      const char *name, const char *where) {
    const struct key_spec *k = find_key(name);
    if (!k) return catlip_error_set("%s: unknown setting '%s' (catlip train --help lists them)", where, name);
    if (node->type == YAML_SCALAR_NODE) {
        return set_scalar(cfg, k, (const char *)node->data.scalar.value, where);
    }
    if (node->type == YAML_SEQUENCE_NODE && k->type == KEY_FLOATS) {
        size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        if (n != k->size)
            return catlip_error_set("%s: %s must have %zu numbers, got %zu", where, k->name, k->size, n);
        double *dst = (double *)((char *)cfg + k->offset);
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
            if (!item || item->type != YAML_SCALAR_NODE)
                return catlip_error_set("%s: %s must be a list of numbers", where, k->name);
            if (set_number(k, &dst[i], NULL, (const char *)item->data.scalar.value, where) != 0)
                return -1;
        }
        return 0;
    }
    return catlip_error_set("%s: %s must be %s", where, k->name, type_name(k->type));
}

static int apply_mapping(struct config *cfg, yaml_document_t *doc, yaml_node_t *map,
                         const char *prefix, const char *path) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *knode = yaml_document_get_node(doc, p->key);
        yaml_node_t *vnode = yaml_document_get_node(doc, p->value);
        char where[CONFIG_STRING_MAX + 32];
        snprintf(where, sizeof where, "%s:%zu", path, knode->start_mark.line + 1);
        if (knode->type != YAML_SCALAR_NODE)
            return catlip_error_set("%s: setting names must be plain words", where);
        char name[256];
        int n = snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "",
                         (const char *)knode->data.scalar.value);
        if (n >= (int)sizeof name) return catlip_error_set("%s: setting name too long", where);
        int rc = vnode->type == YAML_MAPPING_NODE ? apply_mapping(cfg, doc, vnode, name, path)
                                                  : apply_node(cfg, doc, vnode, name, where);
        if (rc != 0) return rc;
    }
    return 0;
}

// Parses `len` bytes of YAML text and applies it. `path` names the source in errors.
static int apply_yaml_text(struct config *cfg, const unsigned char *text, size_t len,
                           const char *path, const char *single_key) {
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return catlip_error_set("cannot start the YAML parser");
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        catlip_error_set("%s:%zu: YAML syntax error: %s", path, parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return -1;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (single_key) {
        if (!root) rc = catlip_error_set("%s: no value given", path);
        else rc = apply_node(cfg, &doc, root, single_key, path);
    } else if (root && root->type == YAML_MAPPING_NODE) {
        rc = apply_mapping(cfg, &doc, root, "", path);
    } else if (root) {
        rc = catlip_error_set("%s: a config file must be a mapping of settings", path);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

void config_defaults(struct config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NKEYS; i++) {
        const char *text = keys[i].deflt;
        if (keys[i].type == KEY_STRING) {
            strcpy((char *)cfg + keys[i].offset, text);
            continue;
        }
        int rc = apply_yaml_text(cfg, (const unsigned char *)text, strlen(text), "defaults",
                                 keys[i].name);
        CATLIP_ASSERT(rc == 0);
    }
}

int config_load_file(struct config *cfg, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return catlip_error_set("cannot open config file %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    unsigned char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            if (cap > (64u << 20)) {
                fclose(f);
                free(buf);
                return catlip_error_set("config file %s is larger than 64 MiB", path);
            }
            buf = xrealloc(buf, cap *= 2);
        }
    }
    fclose(f);
    int rc = apply_yaml_text(cfg, buf, len, path, NULL);
    free(buf);
    return rc;
}

int config_load_string(struct config *cfg, const char *yaml, const char *name) {
    return apply_yaml_text(cfg, (const unsigned char *)yaml, strlen(yaml), name, NULL);
}

int config_set(struct config *cfg, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return catlip_error_set("--set takes key=value, got '%s'", assignment);
    char name[256];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof name) return catlip_error_set("--set: setting name too long");
    memcpy(name, assignment, n);
    name[n] = '\0';
    if (!find_key(name))
        return catlip_error_set("--set: unknown setting '%s' (catlip train --help lists them)", name);
    const char *value = eq + 1;
    // An empty value means the empty string (e.g. data.val=).
    if (*value == '\0') {
        const struct key_spec *k = find_key(name);
        if (k->type != KEY_STRING) return catlip_error_set("--set: %s needs a value", name);
        *((char *)cfg + k->offset) = '\0';
        return 0;
    }
    return apply_yaml_text(cfg, (const unsigned char *)value, strlen(value), "--set", name);
}

int config_validate(const struct config *cfg) {
    if (strcmp(cfg->task, "pretrain") != 0 && strcmp(cfg->task, "classify") != 0)
        return catlip_error_set("task must be pretrain or classify, got '%s'", cfg->task);
    if (cfg->model.image_size % cfg->model.patch_size != 0)
        return catlip_error_set("model.patch_size %lld must divide model.image_size %lld",
                                (long long)cfg->model.patch_size, (long long)cfg->model.image_size);
    if (cfg->optim.min_lr > cfg->optim.lr)
        return catlip_error_set("optim.min_lr %g is above optim.lr %g", cfg->optim.min_lr, cfg->optim.lr);
    if (cfg->run_dir[0] == '\0') return catlip_error_set("run_dir must not be empty");
    if (strcmp(cfg->train.loss, "auto") && strcmp(cfg->train.loss, "bce") && strcmp(cfg->train.loss, "ce"))
        return catlip_error_set("train.loss must be auto, bce or ce, got '%s'", cfg->train.loss);
    if (strcmp(cfg->train.precision, "fp32") && strcmp(cfg->train.precision, "bf16"))
        return catlip_error_set("train.precision must be fp32 or bf16, got '%s'",
                                cfg->train.precision);
    if (strcmp(cfg->train.grad_comm, "fp32") && strcmp(cfg->train.grad_comm, "bf16"))
        return catlip_error_set("train.grad_comm must be fp32 or bf16, got '%s'",
                                cfg->train.grad_comm);
    if (strcmp(cfg->train.allreduce, "auto") && strcmp(cfg->train.allreduce, "flat") &&
        strcmp(cfg->train.allreduce, "hierarchical"))
        return catlip_error_set("train.allreduce must be auto, flat or hierarchical, got '%s'",
                                cfg->train.allreduce);
    if (strcmp(cfg->train.collectives, "ring") && strcmp(cfg->train.collectives, "mpi"))
        return catlip_error_set("train.collectives must be ring or mpi, got '%s'",
                                cfg->train.collectives);
    if (cfg->train.shard_optimizer && !strcmp(cfg->train.allreduce, "hierarchical"))
        return catlip_error_set("train.shard_optimizer: true needs train.allreduce flat or auto, "
                                "not hierarchical");
    if (strcmp(cfg->model.head_init, "random") && strcmp(cfg->model.head_init, "transfer"))
        return catlip_error_set("model.head_init must be random or transfer, got '%s'", cfg->model.head_init);
    if (!strcmp(cfg->model.head_init, "transfer") && !cfg->model.head_file[0])
        return catlip_error_set("model.head_init: transfer needs model.head_file (catlip transfer -o FILE)");
    if (strcmp(cfg->model.objective, "catlip") && strcmp(cfg->model.objective, "clip"))
        return catlip_error_set("model.objective must be catlip or clip, got '%s'",
                                cfg->model.objective);
    if (!strcmp(cfg->model.objective, "clip")) {
        if (strcmp(cfg->model.text, "text_base") && strcmp(cfg->model.text, "text_tiny"))
            return catlip_error_set("model.text must be text_base or text_tiny, got '%s'",
                                    cfg->model.text);
        if (strcmp(cfg->task, "pretrain"))
            return catlip_error_set("model.objective: clip pre-trains (task: pretrain), got task '%s'",
                                    cfg->task);
        if (!strcmp(cfg->data.train, "synthetic"))
            return catlip_error_set("model.objective: clip needs captioned shards in data.train "
                                    "(synthetic data has no captions)");
        if (!cfg->data.tokenizer[0])
            return catlip_error_set("model.objective: clip needs data.tokenizer (a word table from "
                                    "catlip tokenizer build)");
        if (cfg->model.init_from[0] || strcmp(cfg->model.head_init, "random") ||
            cfg->train.freeze_backbone)
            return catlip_error_set("model.objective: clip trains from scratch (model.init_from, "
                                    "model.head_init and train.freeze_backbone are CatLIP's)");
    }
    return 0;
}

// s as a YAML double-quoted scalar: '"' and '\\' escaped, control characters, C1 controls,
// Unicode line breaks and non-characters as \xHH / \uHHHH (YAML would fold or refuse them), so
// that any string value (a path with a quote or a backslash) loads back as itself.
static void quote_yaml(char *out, size_t cap, const char *s) {
    size_t n = 0;
    out[n++] = '"';
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        } else if (c >= 0xc2 && c <= 0xef && (s[1] & 0xc0) == 0x80 && (c < 0xe0 || (s[2] & 0xc0) == 0x80)) {
            // Values came through libyaml, so they are valid UTF-8; only 2- and 3-byte
            // sequences hold characters that need escaping.
            int len = c < 0xe0 ? 2 : 3;
            uint32_t cp = len == 2 ? (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f)
                                   : (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
            if (cp <= 0x9f || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp >= 0xfffe) {
                n += (size_t)snprintf(out + n, cap - n, "\\u%04x", (unsigned)cp);
            } else {
                memcpy(out + n, s, (size_t)len);
                n += (size_t)len;
            }
            s += len - 1;
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

char *config_to_yaml(const struct config *cfg) {
    size_t cap = 8192, len = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_spec *k = &keys[i];
        const char *base = (const char *)cfg + k->offset;
        char value[4 * CONFIG_STRING_MAX + 64];
        switch (k->type) {
        case KEY_INT: snprintf(value, sizeof value, "%lld", (long long)*(const int64_t *)base); break;
        case KEY_FLOAT: snprintf(value, sizeof value, "%.17g", *(const double *)base); break;
        case KEY_BOOL: snprintf(value, sizeof value, "%s", *(const bool *)base ? "true" : "false"); break;
        case KEY_STRING: quote_yaml(value, sizeof value, base); break;
        case KEY_FLOATS: {
            const double *v = (const double *)base;
            int w = snprintf(value, sizeof value, "[");
            for (size_t j = 0; j < k->size; j++)
                w += snprintf(value + w, sizeof value - (size_t)w, "%s%.17g", j ? ", " : "", v[j]);
            snprintf(value + w, sizeof value - (size_t)w, "]");
            break;
        }
        }
        size_t need = strlen(k->name) + strlen(value) + 4;
        while (len + need >= cap) out = xrealloc(out, cap *= 2);
        len += (size_t)sprintf(out + len, "%s: %s\n", k->name, value);
    }
    return out;
}

void config_print_keys(FILE *out) {
    for (size_t i = 0; i < NKEYS; i++)
        fprintf(out, "  %-26s %-18s (default %s) %s\n", keys[i].name, type_name(keys[i].type),
                keys[i].deflt, keys[i].help);
}
