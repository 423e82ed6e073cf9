// A trained model loaded for inference: checkpoint -> configuration, weights (or their EMA),
// vocabulary, thread pool and activation buffers, then batched forward passes. Shared by
// `catlip predict`, `embed`, `eval`, `transfer` and `export`. The model layer sits above nn/
// (which knows no files), io/ (the checkpoint format) and text/ (the vocabulary).
//
// A checkpoint file is read once (one streaming pass checks it and delivers the header and
// tensors); a run directory costs one more read, the verification that picks its newest
// valid checkpoint (ckpt_find_latest). The recorded configuration is parsed from memory.
//
// The vocabulary is the file given, or else the data.vocab of the run configuration recorded
// in the checkpoint; it must have the checkpoint's vocab_hash (the same synsets in the same
// order), so logits are never read against the wrong classes. A checkpoint trained without a
// vocabulary (synthetic data, vocab_hash 0) loads with vocab NULL.
//
// Example:
//     struct inference_model m;
//     if (inference_load(&m, "run/checkpoints/latest", NULL, 0, 32, 0) != 0) die(catlip_error());
//     inference_forward(&m, images, B);   // images (B, 3, S, S) -> m.acts.logits (B, V),
//     m.acts.lnf (B, C) inference_free(&m);
#pragma once
#include "catlip.pb-c.h"
#include "core/config.h"
#include "nn/text_tower.h"
#include "nn/vit.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

struct inference_model {
    char *path;  // the checkpoint file (a run dir / checkpoints dir resolved)
    Catlip__CheckpointHeader *header;
    struct config run;  // the run configuration recorded in the checkpoint
    struct vit_config config;
    struct vit_model model;
    float *params;         // (layout.total) weights, or EMA weights with ema = 1
    struct vit_acts acts;  // for up to max_batch images
    int max_batch;
    struct vocab *vocab;    // NULL when the checkpoint has no vocabulary
    float mean[3], std[3];  // input normalisation the model was trained with
    int ema;
    // model.objective clip, after inference_load_text: the text tower over the same weights
    // (m->params + layout.text_begin) and the tokenizer the checkpoint was trained with.
    struct tokenizer *tokenizer;
    struct text_model text;
    struct text_acts text_acts;  // for up to text_max_batch captions
    int text_max_batch;
};

// checkpoint: a checkpoint file, or a run directory / checkpoints directory (its newest valid
// checkpoint). vocab_path: NULL for the recorded one. ema: load the EMA weights (an error when
// the checkpoint has none). threads: 0 for every available core.
// Returns -1 with catlip_error() (one line naming the file and what to do).
int inference_load(struct inference_model *m, const char *checkpoint, const char *vocab_path,
                   int ema, int max_batch, int threads);
void inference_free(struct inference_model *m);

// Forward passes in fp32 (the default) or bf16 (matmul inputs rounded to bf16, fp32 sums, as
// train.precision; weights converted once per forward). Returns -1 with catlip_error() for a
// name other than fp32 / bf16.
int inference_set_precision(struct inference_model *m, const char *precision);

// images: (B, 3, S, S) normalised, B <= max_batch. Fills m->acts (logits (B, V), lnf (B, C)).
// A CLIP checkpoint's "logits" are the projected CLS features (B, E), not normalised.
void inference_forward(struct inference_model *m, const float *images, int B);

// model.objective clip: readies the text tower for batches of up to max_batch captions, with
// the tokenizer `tokenizer_path` (NULL: the data.tokenizer recorded in the checkpoint), which
// must be the one the checkpoint was trained with (its hash). -1 with catlip_error() naming
// the file and what to do; an error for a CatLIP checkpoint.
int inference_load_text(struct inference_model *m, const char *tokenizer_path, int max_batch);
// Tokenizes one caption into ids (config.text.context of them) as training did. Returns the
// ids before the padding; *unknown (may be NULL) gets the words that became <unk>, *dropped
// (may be NULL) those that did not fit.
int inference_tokenize(const struct inference_model *m, int32_t *ids, const char *caption,
                       int *unknown, int *dropped);
// ids: (B, context), B <= the text max batch. Fills m->text_acts.features (B, E), not normalised.
void inference_forward_text(struct inference_model *m, const int32_t *ids, int B);
// The trained logit scale s = exp(min(t, ln 100)) (CLIP only).
float inference_logit_scale(const struct inference_model *m);
