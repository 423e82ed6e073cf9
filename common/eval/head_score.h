// Scoring images with a built head (transfer_init.h): the linear pooled row, or the noisy-OR of
// the class's member synsets.
//
// The pre-training loss is a per-synset sigmoid BCE, so sigmoid(s_v) estimates P(synset v named
// | image). A class is present when any synset at or below it is: under independence
// P(class | image) = 1 - prod_v (1 - sigmoid(s_v)) over its members (its synset and vocabulary
// hyponyms). The score is that probability's log-odds, calibrated per class:
//   prior        minus the log-odds of the class's training frequency (pooled mass / captions):
//                the odds ratio P(class | image) / P(class), in odds form
//   center       minus the log-odds of the class's mean probability over reference images
//   standardize  minus the mean and divided by the standard deviation of the log-odds there
// Calibration on the rows (transfer_init's center/standardize) would break the probabilities,
// so the member rows are the trained ones.
#pragma once
#include "eval/transfer_init.h"

// log(P / (1 - P)) for P = 1 - prod_i (1 - sigmoid(logits[i])), n >= 1, stable at both ends
// (a class whose members all score very low gets ~ log sum_i exp(logits[i])).
double head_noisy_or_logodds(const double *logits, int n);

// Sets h->score = HEAD_SCORE_NOISY_OR and copies the member rows: built members from head_w
// (V, C) / head_b (V), a class without members from its linear row h->weight / h->bias.
// shift 0, scale 1.
void head_noisy_or_prepare(struct transfer_head *h, const float *head_w, const float *head_b);
// Class-level calibration of a noisy-OR head (see above; none: shift 0, scale 1). center and
// standardize need `ref` (features of n >= 2 images); prior leaves classes without mass as
// they are.
void head_noisy_or_calibrate(struct transfer_head *h, enum head_calibrate mode,
                             const struct head_reference *ref);

// scores (K) of one image's features (C) under h, linear or noisy-OR.
void head_scores(const struct transfer_head *h, const float *features, float *scores);
