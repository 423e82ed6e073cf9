// Zero-shot classification with a CLIP checkpoint (model.objective clip) by prompt ensembles,
// as CLIP does it (Radford et al. 2021, §3.1.4; OpenCLIP's zero_shot_classifier):
//
//   text[k, p] = normalize(text_tower(tokenize(prompt_p with "{}" -> name_k)))      (E)
//   class[k]   = normalize(mean_p text[k, p])                                        (E)
//   image      = normalize(projected CLS)                                            (E)
//   score[k]   = s · image · class[k]       s = exp(min(t, ln 100)), the trained logit scale
//
// The class embeddings, scaled by s, are a head of K rows and zero biases (struct
// transfer_head's weight and bias), so catlip eval zeroshot tallies CLIP and CatLIP heads the
// same way (eval/zeroshot.h) over normalised image embeddings instead of pooled features.
//
// Class names come from the classes file catlip eval zeroshot takes for CatLIP checkpoints
// (text/transfer.h): a line that is a name is the name; "n02084071 dog" is its display name
// ("dog"); a WordNet id alone is its synset's head word, '_' read as a space ("n03791235" ->
// "motor vehicle").
#pragma once
#include <stdio.h>

#include "model/inference.h"

// The class names of a classes file. Returns K (> 0) with *names malloc'ed (each too), or -1
// with catlip_error() (unreadable, no classes, an id alone that is no WordNet noun synset,
// WordNet missing).
int clip_class_names(const char *path, char ***names);
void clip_class_names_free(char **names, int K);

// 0 when `prompt` is a usable template (contains "{}", where the class name goes; every "{}"
// is replaced), else -1 with catlip_error().
int clip_prompt_check(const char *prompt);
// The prompt with every "{}" replaced by name (malloc'ed).
char *clip_prompt_format(const char *prompt, const char *name);

struct clip_class_text {
    int name_words;    // words of the name alone after tokenizing
    int name_unknown;  // of them, not in the tokenizer (<unk>): the prompts cannot tell the
                       // class apart by that word
    int dropped;       // prompt words cut off by the context length, over all prompts
};

// The head: weight (K, E) = s · class[k], bias (K) = 0, both malloc'ed; info (K) may be NULL.
// m must have its text tower loaded (inference_load_text). ids_out: NULL, or (K, P, context)
// int32 receiving every prompt's token ids (for --dump).
void clip_zeroshot_head(struct inference_model *m, const char *const *names, int K,
                        const char *const *prompts, int P, float **weight, float **bias,
                        struct clip_class_text *info, int32_t *ids_out);

// out (B, E) = normalize(in (B, E)) per row: the image embeddings from inference_forward's
// projected CLS (m->acts.logits).
void clip_image_embeddings(float *out, const float *in, int B, int E);
