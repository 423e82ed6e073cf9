#include "eval/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"

struct scored {
    float score;
    float label;
};

static int by_score_desc(const void *a, const void *b) {
    float x = ((const struct scored *)a)->score, y = ((const struct scored *)b)->score;
    return (x < y) - (x > y);
}

// AP of already collected pairs (sorted here).
static double ap_of_pairs(struct scored *p, size_t n) {
    size_t positives = 0;
    for (size_t i = 0; i < n; i++) positives += p[i].label > 0.5f;
    if (positives == 0) return -1;
    qsort(p, n, sizeof *p, by_score_desc);
    double ap = 0, tp = 0, tp_before = 0;
    for (size_t i = 0; i < n; i++) {
        tp += p[i].label > 0.5f;
        if (i + 1 < n && p[i + 1].score == p[i].score) continue;  // a threshold ends after ties
        ap += (tp - tp_before) / (double)positives * (tp / (double)(i + 1));
        tp_before = tp;
    }
    return ap;
}

double average_precision(const float *scores, const float *labels, size_t n, size_t stride) {
    struct scored *p = xmalloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (struct scored){scores[i * stride], labels[i * stride]};
    double ap = ap_of_pairs(p, n);
    free(p);
    return ap;
}

int score_rank(const float *scores, int K, int label) {
    int rank = 0;
    float s = scores[label];
    for (int j = 0; j < K; j++) rank += scores[j] > s || (scores[j] == s && j < label);
    return rank;
}

void multilabel_metrics(const float *scores, const float *labels, int N, int V, const int *ks,
                        int nk, struct multilabel_metrics *out) {
    memset(out, 0, sizeof *out);
    if (nk > METRICS_MAX_K) nk = METRICS_MAX_K;
    out->nk = nk;
    for (int i = 0; i < nk; i++) out->k[i] = ks[i];
    double sum = 0;
    for (int v = 0; v < V; v++) {
        double ap = average_precision(scores + v, labels + v, (size_t)N, (size_t)V);
        if (ap >= 0) sum += ap, out->classes_scored++;
    }
    out->map_macro = out->classes_scored ? sum / out->classes_scored : 0;

    sum = 0;
    for (int n = 0; n < N; n++) {
        const float *s = scores + (size_t)n * V, *y = labels + (size_t)n * V;
        double ap = average_precision(s, y, (size_t)V, 1);
        if (ap < 0) continue;
        sum += ap;
        out->samples_scored++;
        for (int i = 0; i < nk; i++) {
            int hits = 0;
            for (int v = 0; v < V; v++)
                if (y[v] > 0.5f && score_rank(s, V, v) < ks[i]) hits++;
            out->precision_at[i] += (double)hits / ks[i];
        }
    }
    out->map_samples = out->samples_scored ? sum / out->samples_scored : 0;
    for (int i = 0; i < nk; i++)
        if (out->samples_scored) out->precision_at[i] /= out->samples_scored;

    size_t total = (size_t)N * V;
    struct scored *p = xmalloc((total ? total : 1) * sizeof *p);
    for (size_t i = 0; i < total; i++) p[i] = (struct scored){scores[i], labels[i]};
    double micro = ap_of_pairs(p, total);
    out->map_micro = micro < 0 ? 0 : micro;
    free(p);
}
