#include "eval/zeroshot.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/metrics.h"

void zeroshot_init(struct zeroshot_tally *z, int K, int topk) {
    memset(z, 0, sizeof *z);
    z->K = K;
    z->topk = topk;
    z->confusion = xcalloc((size_t)K * K, sizeof *z->confusion);
}

void zeroshot_free(struct zeroshot_tally *z) {
    free(z->confusion);
    memset(z, 0, sizeof *z);
}

void zeroshot_scores(float *scores, const float *weight, const float *bias, const float *features,
                     int K, int C) {
    for (int k = 0; k < K; k++) {
        double acc = bias[k];
        const float *w = weight + (size_t)k * C;
        for (int c = 0; c < C; c++) acc += (double)w[c] * features[c];
        scores[k] = (float)acc;
    }
}

void zeroshot_add(struct zeroshot_tally *z, const float *scores, int truth) {
    int K = z->K;
    int rank = score_rank(scores, K, truth);
    z->correct1 += rank == 0;
    z->correctk += rank < z->topk;
    int predicted = 0;
    for (int k = 1; k < K; k++)
        if (scores[k] > scores[predicted]) predicted = k;
    z->confusion[(size_t)truth * K + predicted]++;
    z->images++;
}

long zeroshot_class_images(const struct zeroshot_tally *z, int t) {
    long row = 0;
    for (int k = 0; k < z->K; k++) row += z->confusion[(size_t)t * z->K + k];
    return row;
}

long zeroshot_class_correct(const struct zeroshot_tally *z, int t) {
    return z->confusion[(size_t)t * z->K + t];
}

double zeroshot_mean_per_class(const struct zeroshot_tally *z, int *present) {
    double sum = 0;
    int n = 0;
    for (int t = 0; t < z->K; t++) {
        long row = zeroshot_class_images(z, t);
        if (row) {
            n++;
            sum += (double)zeroshot_class_correct(z, t) / row;
        }
    }
    if (present) *present = n;
    return n ? sum / n : 0.0;
}

long zeroshot_majority(const struct zeroshot_tally *z) {
    long majority = 0;
    for (int t = 0; t < z->K; t++) {
        long row = zeroshot_class_images(z, t);
        if (row > majority) majority = row;
    }
    return majority;
}

static int by_count_desc(const void *x, const void *y) {
    const struct zeroshot_confusion *a = x, *b = y;
    if (a->count != b->count) return (a->count < b->count) - (a->count > b->count);
    if (a->truth != b->truth) return a->truth - b->truth;
    return a->predicted - b->predicted;
}

int zeroshot_confusions(const struct zeroshot_tally *z, struct zeroshot_confusion *out, int max) {
    int K = z->K, n = 0;
    struct zeroshot_confusion *all = xmalloc(((size_t)K * K + 1) * sizeof *all);
    for (int t = 0; t < K; t++)
        for (int k = 0; k < K; k++)
            if (t != k && z->confusion[(size_t)t * K + k])
                all[n++] = (struct zeroshot_confusion){t, k, z->confusion[(size_t)t * K + k]};
    qsort(all, (size_t)n, sizeof *all, by_count_desc);
    memcpy(out, all, (size_t)(n < max ? n : max) * sizeof *all);
    free(all);
    return n;
}
