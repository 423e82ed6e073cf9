// Evaluation metrics over score matrices: average precision (multi-label) and top-k accuracy
// (single-label), defined as scikit-learn defines them so numbers compare with other tools.
//
// Average precision of one ranking (sklearn.metrics.average_precision_score): items sorted by
// score descending; at each distinct score threshold n, P_n = true positives / items so far and
// R_n = true positives / all positives; AP = sum_n (R_n - R_{n-1}) P_n. Tied scores enter
// together (so a constant score gives the positive rate). Undefined (-1) without a positive.
//
// Top-k accuracy: the true class is among the k highest scores, ties broken by the lower class
// index first (a stable argsort of -scores, as numpy's np.argsort(-s, kind="stable")).
#pragma once
#include <stddef.h>
#include <stdint.h>

// AP of scores[i * stride] against labels[i * stride] (> 0.5: positive), i < n. -1 when no
// positive.
double average_precision(const float *scores, const float *labels, size_t n, size_t stride);

#define METRICS_MAX_K 4

struct multilabel_metrics {
    double map_macro;    // mean over classes (columns) with at least one positive
    int classes_scored;  //   how many classes that was
    double map_samples;  // mean over samples (rows) with at least one positive
    int samples_scored;
    double map_micro;  // AP of all (sample, class) pairs pooled
    int nk;
    int k[METRICS_MAX_K];
    double precision_at[METRICS_MAX_K];  // mean over scored samples of |top-k ∩ positives| / k
};

// scores, labels: (N, V). ks: up to METRICS_MAX_K cut-offs for precision@k.
void multilabel_metrics(const float *scores, const float *labels, int N, int V, const int *ks,
                        int nk, struct multilabel_metrics *out);

// Rank of class `label` in one row of K scores (0: top-1), ties as above.
int score_rank(const float *scores, int K, int label);
