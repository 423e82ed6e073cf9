// Zero-shot classification tallies: top-1 / top-k accuracy and the confusion matrix of a
// K-class head over labelled images, beside the multi-label metrics (metrics.h). Ranks follow
// score_rank (ties to the lower class index); the predicted class is the first highest score.
#pragma once
#include <stddef.h>

struct zeroshot_tally {
    int K, topk;
    long *confusion;  // (K, K): [truth * K + predicted]
    long correct1, correctk, images;
};

struct zeroshot_confusion {
    int truth, predicted;
    long count;
};

void zeroshot_init(struct zeroshot_tally *z, int K, int topk);
void zeroshot_free(struct zeroshot_tally *z);

// scores (K) <- bias (K) + weight (K, C) · features (C), accumulated in double.
void zeroshot_scores(float *scores, const float *weight, const float *bias, const float *features,
                     int K, int C);
// One image with scores (K) and true class `truth`.
void zeroshot_add(struct zeroshot_tally *z, const float *scores, int truth);

// Images whose true class is t, and how many of them were predicted as t.
long zeroshot_class_images(const struct zeroshot_tally *z, int t);
long zeroshot_class_correct(const struct zeroshot_tally *z, int t);
// Mean per-class accuracy: the mean of the per-class top-1 over the classes with an image (a
// constant prediction scores 1 / that count, whatever the class balance); *present gets that
// count. 0 when no class has an image.
double zeroshot_mean_per_class(const struct zeroshot_tally *z, int *present);
// Images of the most frequent true class (the majority-class baseline's hits).
long zeroshot_majority(const struct zeroshot_tally *z);
// The off-diagonal cells, most frequent first (ties: row-major order); writes at most max
// and returns how many there are in all.
int zeroshot_confusions(const struct zeroshot_tally *z, struct zeroshot_confusion *out, int max);
