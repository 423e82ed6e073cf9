// Run configuration: YAML file + `--set key=value` overrides, checked against one table.
//
// Every setting is a dotted key ("optim.lr") with a type, a default and a valid range,
// declared once in config.c's table. A YAML file is a nested mapping whose leaves are those
// keys; an unknown key, a value of the wrong type or out of range is a one-line error that
// names the key, the file and line, and the accepted values.
//
// To add a setting: add a field here and one row to the table in config.c.
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#define CONFIG_STRING_MAX 1024

struct config {
    char run_dir[CONFIG_STRING_MAX];
    int64_t seed;
    char task[32];  // "pretrain" (CatLIP multi-label synsets) or "classify"

    struct {
        char name[32];        // vit_tiny | vit_small | vit_base | vit_large | vit_huge
        int64_t image_size;   // pixels, square
        int64_t patch_size;   // pixels; must divide image_size
        int64_t num_classes;  // head outputs; 0: the vocabulary's size
        int64_t dim;          // 0: the preset's width
        int64_t depth;        // 0: the preset's number of blocks
        int64_t heads;        // 0: the preset's number of heads
        int64_t mlp_ratio;    // 0: 4
        char init_from[CONFIG_STRING_MAX];  // checkpoint whose backbone starts a fresh run
        bool init_ema;        // take init_from's EMA weights instead of its raw weights
        char head_init[32];   // random | transfer (head_file from catlip transfer)
        char head_file[CONFIG_STRING_MAX];
        char objective[16];       // catlip (synset BCE) | clip (contrastive, with a text tower)
        char text[32];            // clip: text tower preset, text_base | text_tiny
        int64_t text_width;       // clip: 0 = the preset's
        int64_t text_depth;       // clip: 0 = the preset's
        int64_t text_heads;       // clip: 0 = the preset's
        int64_t context_length;   // clip: tokens per caption, <sot> and <eot> included
        int64_t embed_dim;        // clip: joint embedding width of both projections
    } model;

    struct {
        char train[CONFIG_STRING_MAX];  // shard pattern; "synthetic": built-in learnable data
        char val[CONFIG_STRING_MAX];
        char vocab[CONFIG_STRING_MAX];  // TSV vocabulary
        char tokenizer[CONFIG_STRING_MAX];  // clip: word table (catlip tokenizer build)
        int64_t decode_threads;
        bool skip_missing_shards;
        double mean[3];
        double std[3];
    } data;

    struct {
        int64_t steps;  // total optimiser steps; 0: derived from epochs
        int64_t epochs;
        int64_t global_batch;
        int64_t micro_batch;      // images per forward/backward per worker; 0: whole slice
        int64_t threads;  // compute threads per worker; 0: the cores the launcher gave us
        double bucket_mb;         // gradient allreduce bucket size
        bool overlap;             // start bucket allreduces during backward
        char grad_comm[8];        // fp32 | bf16 (gradients on the wire; sums in fp32)
        char allreduce[16];       // auto | flat | hierarchical (within hosts first)
        char collectives[8];      // ring | mpi (our ring or Open MPI's non-blocking collectives)
        bool shard_optimizer;     // ZeRO stage 1: moments and EMA of 1/N per worker
        double worker_timeout;    // seconds without progress before the job is aborted
        bool freeze_backbone;     // linear probe: only the head trains
        char loss[16];            // auto | bce | ce (auto: bce for pretrain, ce for classify)
        char precision[8];        // fp32 | bf16 (matmuls in bf16 with fp32 sums, as autocast)
    } train;

    struct {
        double lr;
        double min_lr;
        int64_t warmup_steps;
        double warmup_init_lr;
        double weight_decay;
        double betas[2];
        double eps;
        double grad_clip;  // 0: no clipping
        double ema;        // EMA momentum m in ema = (1-m) ema + m w; 0: no EMA
        double label_smoothing;  // for the ce loss
    } optim;

    struct {
        int64_t every_steps;
        int64_t keep;
    } checkpoint;

    struct {
        char host[256];
        int64_t port;
        int64_t http_port;
    } status;

    struct {
        int64_t every_steps;
    } log;
};

// Fills every field with its default.
void config_defaults(struct config *cfg);
// Applies a YAML file on top of what is there. Returns -1 with catlip_error() set.
int config_load_file(struct config *cfg, const char *path);
// The same for YAML text in memory (a configuration recorded in a checkpoint); `name` stands
// for the file in error messages.
int config_load_string(struct config *cfg, const char *yaml, const char *name);
// Applies one "key=value" override (value parsed as a YAML scalar or flow sequence).
int config_set(struct config *cfg, const char *assignment);
// Cross-field checks (patch divides image size, min_lr <= lr, ...). Returns -1 on error.
int config_validate(const struct config *cfg);
// Writes the whole configuration as YAML (for run_dir/config.yaml and checkpoints).
// Returns a malloc'ed string.
char *config_to_yaml(const struct config *cfg);
// Prints every key with its type, default and range (for --help).
void config_print_keys(FILE *out);
