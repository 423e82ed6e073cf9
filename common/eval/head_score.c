#include "eval/head_score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/zeroshot.h"

// log(1 + exp(x)) without overflow.
static double softplus(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

double head_noisy_or_logodds(const double *logits, int n) {
    // log(1 - P) = sum_i log(1 - sigmoid(s_i)) = -sum_i softplus(s_i)
    double log_none = 0, max = logits[0];
    for (int i = 0; i < n; i++) {
        log_none -= softplus(logits[i]);
        if (logits[i] > max) max = logits[i];
    }
    if (log_none < -1e-9) return log(-expm1(log_none)) - log_none;
    // P < 1e-9: P ~ sum_i sigmoid(s_i) ~ sum_i exp(s_i), and 1 - P ~ 1
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp(logits[i] - max);
    return max + log(sum);
}

void head_noisy_or_prepare(struct transfer_head *h, const float *head_w, const float *head_b) {
    int K = h->K, C = h->C, M = 0;
    for (int k = 0; k < K; k++) M += h->built[k].nmembers ? h->built[k].nmembers : 1;
    h->score = HEAD_SCORE_NOISY_OR;
    h->member_start = xmalloc((size_t)(K + 1) * sizeof(int));
    h->member_w = xmalloc((size_t)M * C * sizeof(float));
    h->member_b = xmalloc((size_t)M * sizeof(float));
    h->shift = xcalloc((size_t)K, sizeof(double));
    h->scale = xmalloc((size_t)K * sizeof(double));
    int j = 0;
    for (int k = 0; k < K; k++) {
        const struct head_class *b = &h->built[k];
        h->member_start[k] = j;
        h->scale[k] = 1;
        if (b->nmembers == 0) {
            memcpy(h->member_w + (size_t)j * C, h->weight + (size_t)k * C, C * sizeof(float));
            h->member_b[j++] = h->bias[k];
            continue;
        }
        for (int i = 0; i < b->nmembers; i++, j++) {
            memcpy(h->member_w + (size_t)j * C, head_w + (size_t)b->members[i].row * C,
                   C * sizeof(float));
            h->member_b[j] = head_b[b->members[i].row];
        }
    }
    h->member_start[K] = j;
}

// The uncalibrated log-odds of every class for one image (features (C)); logits: scratch (M).
static void noisy_or_logodds(const struct transfer_head *h, const float *features, double *logits,
                             double *out) {
    int C = h->C;
    for (int k = 0; k < h->K; k++) {
        int first = h->member_start[k], n = h->member_start[k + 1] - first;
        for (int i = 0; i < n; i++) {
            const float *w = h->member_w + (size_t)(first + i) * C;
            double acc = h->member_b[first + i];
            for (int x = 0; x < C; x++) acc += (double)w[x] * features[x];
            logits[i] = acc;
        }
        out[k] = head_noisy_or_logodds(logits, n);
    }
}

// The most members any class has.
static int most_members(const struct transfer_head *h) {
    int most = 1;
    for (int k = 0; k < h->K; k++)
        if (h->member_start[k + 1] - h->member_start[k] > most)
            most = h->member_start[k + 1] - h->member_start[k];
    return most;
}

static double logit_clamped(double p) {
    if (p < 1e-12) p = 1e-12;
    if (p > 1 - 1e-12) p = 1 - 1e-12;
    return log(p / (1 - p));
}

void head_noisy_or_calibrate(struct transfer_head *h, enum head_calibrate mode,
                             const struct head_reference *ref) {
    int K = h->K;
    for (int k = 0; k < K; k++) h->shift[k] = 0, h->scale[k] = 1;
    if (mode == HEAD_CALIBRATE_PRIOR) {
        for (int k = 0; k < K; k++) h->shift[k] = head_prior_logodds(h->built[k].mass, h->captions);
        return;
    }
    if (mode != HEAD_CALIBRATE_CENTER && mode != HEAD_CALIBRATE_STANDARDIZE) return;
    int most = most_members(h);
    double *logits = xmalloc((size_t)most * sizeof(double)),
           *lo = xmalloc((size_t)K * sizeof(double));
    // per class: sum of probabilities (center), sum and sum of squares of log-odds (standardize)
    double *sum_p = xcalloc((size_t)K, sizeof(double)), *sum = xcalloc((size_t)K, sizeof(double)),
           *sum_sq = xcalloc((size_t)K, sizeof(double));
    for (long i = 0; i < ref->n; i++) {
        noisy_or_logodds(h, ref->features + (size_t)i * h->C, logits, lo);
        for (int k = 0; k < K; k++) {
            sum_p[k] += 1 / (1 + exp(-lo[k]));
            sum[k] += lo[k];
            sum_sq[k] += lo[k] * lo[k];
        }
    }
    double n = (double)ref->n;
    for (int k = 0; k < K; k++) {
        if (mode == HEAD_CALIBRATE_CENTER) {
            h->shift[k] = logit_clamped(sum_p[k] / n);
            continue;
        }
        double mean = sum[k] / n, var = sum_sq[k] / n - mean * mean;
        h->shift[k] = mean;
        h->scale[k] = var > 1e-20 ? sqrt(var) : 1.0;
    }
    free(logits);
    free(lo);
    free(sum_p);
    free(sum);
    free(sum_sq);
}

void head_scores(const struct transfer_head *h, const float *features, float *scores) {
    if (h->score != HEAD_SCORE_NOISY_OR) {
        zeroshot_scores(scores, h->weight, h->bias, features, h->K, h->C);
        return;
    }
    int K = h->K, most = most_members(h);
    double *logits = xmalloc((size_t)most * sizeof(double)),
           *lo = xmalloc((size_t)K * sizeof(double));
    noisy_or_logodds(h, features, logits, lo);
    for (int k = 0; k < K; k++) scores[k] = (float)((lo[k] - h->shift[k]) / h->scale[k]);
    free(logits);
    free(lo);
}
