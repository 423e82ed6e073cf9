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
//  - score (zero-shot only; eval/head_score.h): `linear` scores the pooled row; `noisy-or` the
//    probability that any of the class's member synsets is present, 1 - prod(1 - sigmoid(s_v)),
//    as log-odds, with calibration at the class level instead of on the rows. Transfer Init
//    always writes the linear head (it initialises a classifier).
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

enum head_score { HEAD_SCORE_LINEAR = 0, HEAD_SCORE_NOISY_OR };

struct head_options {
    enum head_senses senses;
    enum head_pool pool;
    enum head_calibrate calibrate;
    enum head_score score;
};
#define HEAD_OPTIONS_FIRST ((struct head_options){HEAD_SENSES_FIRST, HEAD_POOL_NONE, 0, 0})
#define HEAD_OPTIONS_DEFAULT                                                                  \
    ((struct head_options){HEAD_SENSES_VOCAB, HEAD_POOL_HYPONYMS, HEAD_CALIBRATE_STANDARDIZE, \
                           HEAD_SCORE_LINEAR})

// Reference images (not the test images) for center / standardize: their pooled features and
// those features' mean and covariance.
struct head_reference {
    int C;
    long n;
    float *features;  // (n, C)
    double *mean;     // (C)
    double *cov;      // (C, C)
};

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
    // HEAD_SCORE_NOISY_OR (eval/head_score.h): class k's member synsets are rows
    // member_start[k] .. member_start[k+1] of member_w / member_b (the trained rows, not
    // calibrated); a class without members has its linear (random) row as its one member.
    // Its score is (log-odds - shift[k]) / scale[k].
    enum head_score score;
    int *member_start;      // (K + 1)
    float *member_w;        // (M, C)
    float *member_b;        // (M)
    double *shift, *scale;  // (K)
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
// log(p / (1 - p)) of a class's training frequency p = mass / captions (mass clamped to
// [0.5, captions - 0.5]); 0 when mass or captions is 0.
double head_prior_logodds(double mass, double captions);
// bias[k] -= head_prior_logodds(built[k].mass, captions): classes with no mass are left as they
// are.
void head_prior_correct(const struct head_class *built, int K, double captions, float *bias);
// center / standardize every synset row (head_w (V, C), head_b (V), changed in place) with
// reference features' mean (C) and covariance (C, C): the synset's score then has mean 0
// (and standard deviation 1) over the reference images. Other modes: nothing.
void head_calibrate_rows(enum head_calibrate mode, const double *feat_mean, const double *feat_cov,
                         int V, int C, float *head_w, float *head_b);

// Needs m->vocab. Builds the head with `opt`; center and standardize need reference images
// (`ref`): for a linear score their features' mean and covariance calibrate the synset rows
// before pooling; for noisy-or their class scores calibrate each class. Prints the report table
// (class, how matched, synsets used, senses, pooled weights) to `report` unless NULL. Returns -1
// with catlip_error() on error.
int transfer_head_from_classes(const struct inference_model *m, const char *classes_path,
                               const char *wordnet_dir, uint64_t seed, struct head_options opt,
                               const struct head_reference *ref, FILE *report,
                               struct transfer_head *out);
void transfer_head_free(struct transfer_head *h);

// Option values: "first"/"vocab", "none"/"hyponyms", "none"/"prior"/"center"/"standardize",
// "linear"/"noisy-or". -1 for an unknown name.
int head_senses_parse(const char *s);
int head_pool_parse(const char *s);
int head_calibrate_parse(const char *s);
int head_score_parse(const char *s);
const char *head_senses_name(enum head_senses s);
const char *head_pool_name(enum head_pool p);
const char *head_calibrate_name(enum head_calibrate c);
const char *head_score_name(enum head_score s);
