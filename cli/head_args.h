// The head-building options `catlip transfer` and `catlip eval zeroshot` share (--senses,
// --pool, --calibrate, --calibrate-on) and the reference-image statistics calibration needs.
#pragma once
#include "eval/transfer_init.h"

struct head_args {
    struct head_options opt;
    const char *calibrate_on;  // reference shards (not the test images)
    int calibrate_given;
    int score_given;
    int given;           // how many of the options above the command line gave
    long max_reference;  // images of the reference set used (0: all)
};

#define HEAD_ARGS_OPTIONS                                                          \
    {"senses", 1, 0, 0x1001}, {"pool", 1, 0, 0x1002}, {"calibrate", 1, 0, 0x1003}, \
        {"calibrate-on", 1, 0, 0x1004}, {                                          \
        "max-reference", 1, 0, 0x1005                                              \
    }

#define HEAD_ARGS_USAGE                                                                          \
    "  --senses first|vocab   a name's sense: WordNet's first, or the one the vocabulary was\n"  \
    "                         trained on most (with its hyponyms when pooling; default vocab)\n" \
    "  --pool none|hyponyms   a class row: its synset's own row, or the count-weighted mean\n"   \
    "                         with its vocabulary hyponyms' rows (default hyponyms)\n"           \
    "  --calibrate none|prior|center|standardize\n"                                              \
    "                         score calibration: none; subtract the training log-odds of the\n"  \
    "                         class (prior); subtract each class's mean score over the\n"        \
    "                         --calibrate-on images (center), and divide by its standard\n"      \
    "                         deviation there (standardize). Default: standardize with\n"        \
    "                         --calibrate-on, else prior\n"                                      \
    "  --calibrate-on PATTERN reference shards for center/standardize (captioned or labelled;\n" \
    "                         must not be the test images: e.g. the validation split)\n"         \
    "  --max-reference N      use about N reference images (default: all)\n"

// `catlip eval zeroshot` only (catlip transfer writes a linear head): --score.
#define HEAD_ARGS_SCORE_OPTION \
    { "score", 1, 0, 0x1006 }
#define HEAD_ARGS_SCORE_USAGE                                                                     \
    "  --score linear|noisy-or  a class's score: its pooled row's (linear), or the log-odds\n"    \
    "                         that any of its member synsets is present, 1 - prod(1 -\n"          \
    "                         sigmoid(s)) over its synset and pooled hyponyms (noisy-or,\n"       \
    "                         the default), calibrated per class: prior subtracts the log-odds\n" \
    "                         of its training frequency, center those of its mean probability\n"  \
    "                         over the --calibrate-on images, standardize the log-odds' mean\n"   \
    "                         and standard deviation there. Default calibration for noisy-or:\n"  \
    "                         center with --calibrate-on, else prior\n"

void head_args_init(struct head_args *a);
// Takes one of the options above: 1 taken, 0 not ours, -1 bad value (catlip_error set).
int head_args_take(struct head_args *a, int opt, const char *arg);
// Resolves the defaults: score `default_score` unless --score was given (transfer: linear;
// eval zeroshot: noisy-or); calibration standardize (linear) or center (noisy-or) with
// --calibrate-on, else prior. -1 with catlip_error when center/standardize lacks --calibrate-on.
int head_args_finish(struct head_args *a, enum head_score default_score);
// For center/standardize: the reference images' features and their mean and covariance,
// malloc'ed (all zero for other modes; free with head_reference_free). 0, or -1 + error.
int head_args_reference(const struct head_args *a, struct inference_model *m, int batch,
                        int decode_threads, struct head_reference *ref);
void head_reference_free(struct head_reference *ref);
