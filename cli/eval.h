// What `catlip eval multilabel`, `eval zeroshot` (eval.c) and CLIP's zero-shot by prompts
// (eval_clip.c) share: the options, the pipeline over labelled shards, the batch loop, the
// zero-shot tallies and report.
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/head_args.h"
#include "cli/model_args.h"
#include "data/pipeline.h"
#include "data/shardlist.h"
#include "eval/transfer_init.h"
#include "eval/zeroshot.h"

struct eval_args {
    struct model_args model;
    struct head_args headopt;
    const char *data, *json, *classes, *head;
    int batch, decode_threads, quiet;
    long max_images;
    const char **prompts;  // --prompts, in order (malloc'ed array; NULL when none)
    int nprompts;
    const char *tokenizer, *dump;
};

// Parses the options (usage printed for --help); -1 with catlip_error().
int parse_eval_args(int argc, char **argv, const char *usage, struct eval_args *a);

// The evaluation pipeline over a->data (no augmentation, the model's image size and
// normalisation), labels from `label` or (NULL) the shards' .cls as one-hot rows of
// num_classes. NULL with catlip_error().
struct pipeline *open_eval_pipeline(const struct eval_args *a, const struct inference_model *m,
                                    struct shard_list *shards, int num_classes,
                                    pipeline_label_fn label, void *label_ctx);

// Runs the model over every batch of the pipeline, calling `each` with the batch after its
// forward pass (logits and pooled features in m->acts), with progress on stderr. Returns the
// images seen.
typedef void (*eval_batch_fn)(void *ctx, const struct inference_model *m, const struct batch *b);
uint64_t eval_batches(const struct eval_args *a, struct inference_model *m, struct pipeline *p,
                      const char *what, eval_batch_fn each, void *ctx);

// Writes (and frees) a JSON object; -1 with catlip_error().
int write_json(const char *path, json_t *o);

// Every test image's features (N, C) and true class, grown as batches come.
struct zeroshot_rows {
    int C, K;
    size_t n, cap;
    float *features;
    int *truth;
};
// Appends the batch's true classes (from its one-hot targets) and returns where its b->count
// rows of features go.
float *zeroshot_rows_add(struct zeroshot_rows *r, const struct batch *b);
// Tallies a head (rows · features + bias) over the collected features.
void zeroshot_tally_head(const struct zeroshot_rows *r, const struct transfer_head *h,
                         struct zeroshot_tally *z);

// The zero-shot report: per-class accuracy (beside the first-sense head's when old is given),
// the most frequent confusions, the summary line, and the JSON file when asked, with the keys
// of `extra` (taken; may be NULL) added. opt, head: the Transfer Init options and head (NULL:
// not built from --classes). Returns 0, or -1 with catlip_error().
int zeroshot_report(const struct eval_args *a, const struct inference_model *m,
                    const struct zeroshot_tally *z, const struct zeroshot_tally *old,
                    const struct head_options *opt, const struct transfer_head *head,
                    const char *const *names, const char *skips, json_t *extra);

// `catlip eval zeroshot` with a CLIP checkpoint (eval_clip.c); m is loaded, and freed by the
// caller. Returns the exit status.
int eval_zeroshot_clip(const struct eval_args *a, struct inference_model *m);
