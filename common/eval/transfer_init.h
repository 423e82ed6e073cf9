// Transfer Init against a loaded model: a classes file -> matched classes (text/transfer.h) ->
// head rows from the model's synset head, with the report table. One head building serves
// `catlip transfer` (the Transfer Init file) and `catlip eval zeroshot --classes`.
//
// What the vocabulary knows, used three ways (each an option; HEAD_OPTIONS_FIRST is the
// original rule: first sense, own row, head bias):
//  - senses: a class given by name considers every noun sense of the name and of its base
//    forms and takes the vocabulary sense with the largest training count (the sense the
//    captions' word was labelled with); when no sense is in the vocabulary, the one with the
//    most pooled mass (its vocabulary hyponyms' counts); none: the first sense, as before.
//    The report lists the alternatives with their mass.
//  - pool: a class synset's row is the count-weighted mean of its own row (weight: its count)
//    and the rows of its vocabulary hyponyms, transitively (weight: their counts); a hyponym
//    below another class's synset (a more specific class of the same file) goes to that class
//    only. A class with no vocabulary synset at or below it keeps today's rows (its own or the
//    nearest vocabulary synset's, equal weights).
//  - calibrate: frequent synsets' rows score high on every image. `prior` subtracts from each
//    class's bias the log-odds of its training frequency (pooled mass / captions); `center`
//    subtracts each synset's mean score over reference images before pooling; `standardize`
//    also divides by the score's standard deviation over them. The reference statistics (mean
//    and covariance of the pooled features) come from images that are not the test images;
//    all fold into the head's weights and bias, so a written head carries them.
#pragma once
#include <stdio.h>

#include "model/inference.h"
#include "text/transfer.h"

enum head_senses { HEAD_SENSES_FIRST = 0, HEAD_SENSES_VOCAB };
enum head_pool { HEAD_POOL_NONE = 0, HEAD_POOL_HYPONYMS };
enum head_calibrate {
    HEAD_CALIBRATE_NONE = 0,
    HEAD_CALIBRATE_PRIOR,
    HEAD_CALIBRATE_CENTER,
    HEAD_CALIBRATE_STANDARDIZE
};

struct head_options {
    enum head_senses senses;
    enum head_pool pool;
    enum head_calibrate calibrate;
};
#define HEAD_OPTIONS_FIRST ((struct head_options){HEAD_SENSES_FIRST, HEAD_POOL_NONE, 0})
#define HEAD_OPTIONS_DEFAULT \
    ((struct head_options){HEAD_SENSES_VOCAB, HEAD_POOL_HYPONYMS, HEAD_CALIBRATE_STANDARDIZE})

#define HEAD_MAX_SENSES 16

struct head_member {
    int row;        // vocabulary row
    double weight;  // normalised: a class's members sum to 1
};

// How one class's row was built.
struct head_class {
    int nsenses;                       // senses considered (by name); 0 otherwise
    uint32_t senses[HEAD_MAX_SENSES];  // data.noun offsets, WordNet order
    double sense_mass[HEAD_MAX_SENSES];
    int chosen;   // index into senses of the sense used (-1: as matched)
    double mass;  // training count of the rows pooled (0: fallback rows)
    int nmembers;
    struct head_member *members;  // malloc'ed
};

struct transfer_head {
    int K, C;
    float *weight;                   // (K, C)
    float *bias;                     // (K)
    struct transfer_class *classes;  // (K)
    struct head_class *built;        // (K)
    double captions;                 // captions the vocabulary was counted over
};

// Senses and pooling for matched classes (text/transfer.h), filling built[0..K) (members
// malloc'ed; free with head_classes_free). May change classes[k].synsets when another sense
// is chosen.
void head_pool_classes(const struct transfer_matcher *matcher, const struct vocab *vocab,
                       struct head_options opt, struct transfer_class *classes, int K,
                       struct head_class *built);
void head_classes_free(struct head_class *built, int K);
// Weight (K, C) and bias (K) as the members' weighted rows; a class without members gets
// transfer_build_head's random row.
void head_build(const struct transfer_class *classes, const struct head_class *built, int K,
                const float *head_w, const float *head_b, int V, int C, uint64_t seed,
                float *weight, float *bias);
// bias[k] -= log(p / (1 - p)), p = built[k].mass / captions (clamped to [0.5, captions - 0.5]
// counts); classes with no mass are left as they are.
void head_prior_correct(const struct head_class *built, int K, double captions, float *bias);
// center / standardize every synset row (head_w (V, C), head_b (V), changed in place) with
// reference features' mean (C) and covariance (C, C): the synset's score then has mean 0
// (and standard deviation 1) over the reference images. Other modes: nothing.
void head_calibrate_rows(enum head_calibrate mode, const double *feat_mean, const double *feat_cov,
                         int V, int C, float *head_w, float *head_b);

// Needs m->vocab. Builds the head with `opt`; center and standardize need the reference
// features' mean (C) and covariance (C, C), applied to the synset rows before pooling. Prints the
// report table (class, how matched, synsets used, senses, pooled weights) to `report` unless NULL.
// Returns -1 with catlip_error() on error.
int transfer_head_from_classes(const struct inference_model *m, const char *classes_path,
                               const char *wordnet_dir, uint64_t seed, struct head_options opt,
                               const double *ref_mean, const double *ref_cov, FILE *report,
                               struct transfer_head *out);
void transfer_head_free(struct transfer_head *h);

// Option values: "first"/"vocab", "none"/"hyponyms", "none"/"prior"/"center"/"standardize".
// -1 for an unknown name.
int head_senses_parse(const char *s);
int head_pool_parse(const char *s);
int head_calibrate_parse(const char *s);
const char *head_senses_name(enum head_senses s);
const char *head_pool_name(enum head_pool p);
const char *head_calibrate_name(enum head_calibrate c);
