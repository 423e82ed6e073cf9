#include "nn/contrastive.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "nn/matmul.h"

float contrastive_scale(float log_scale) {
    const float max_log = logf(CONTRASTIVE_SCALE_MAX);
    return expf(log_scale < max_log ? log_scale : max_log);
}

void l2_normalize_forward(float *out, float *norms, const float *in, long n, int D) {
    for (long i = 0; i < n; i++) {
        const float *x = in + i * D;
        double ss = 0.0;
        for (int d = 0; d < D; d++) ss += (double)x[d] * x[d];
        float norm = (float)sqrt(ss);
        if (norm < 1e-12f) norm = 1e-12f;
        norms[i] = norm;
        const float inv = 1.0f / norm;
        for (int d = 0; d < D; d++) out[i * D + d] = x[d] * inv;
    }
}

// y = x / |x|  ->  dx = (dy - y (y·dy)) / |x|
void l2_normalize_backward(float *din, const float *dout, const float *out, const float *norms,
                           long n, int D) {
    for (long i = 0; i < n; i++) {
        const float *y = out + i * D, *dy = dout + i * D;
        double dot = 0.0;
        for (int d = 0; d < D; d++) dot += (double)y[d] * dy[d];
        const float inv = 1.0f / norms[i], fdot = (float)dot;
        for (int d = 0; d < D; d++) din[i * D + d] = (dy[d] - y[d] * fdot) * inv;
    }
}

// One direction's rows: scratch holds raw = Q·Kᵀ (rows, N) on entry; on return it holds
// d share / d raw. Row r's label is column begin + r.
struct rows_task {
    const struct kernels *k;
    float *g;  // (rows, N)
    int N, begin, rows;
    float scale, inv_2n;
    double loss[64], dscale[64];  // per thread: share of the loss, d share / d s
};

static void rows_worker(void *arg, int ith, int nth) {
    struct rows_task *t = arg;
    long b0, e0;
    pool_split(t->rows, ith, nth, &b0, &e0);
    double loss = 0.0, dscale = 0.0;
    for (long r = b0; r < e0; r++) {
        float *g = t->g + r * t->N;
        const long label = t->begin + r;
        // logits = s·raw; CE = logsumexp(logits) - logits[label], in double for the loss
        double mx = -INFINITY;
        for (int j = 0; j < t->N; j++) mx = fmax(mx, (double)t->scale * g[j]);
        double se = 0.0;
        for (int j = 0; j < t->N; j++) se += exp((double)t->scale * g[j] - mx);
        loss += mx + log(se) - (double)t->scale * g[label];
        // d/dlogits = (softmax - onehot) / 2N;  d/draw = s · that;  d/ds = sum(d/dlogits · raw)
        for (int j = 0; j < t->N; j++) {
            const double p = exp((double)t->scale * g[j] - mx) / se;
            const double dlogit = (p - (j == label)) * t->inv_2n;
            dscale += dlogit * g[j];
            g[j] = (float)(dlogit * t->scale);
        }
    }
    t->loss[ith] = loss * t->inv_2n;
    t->dscale[ith] = dscale;
}

// One direction: queries Q own rows [begin, begin+rows) of q_all, keys are k_all (N, D).
//   raw = Q·K_allᵀ;  dq_all[own] += draw · K_all;  dk_all += drawᵀ · Q
static double direction(struct pool *pool, const struct kernels *k, float *dq_all, float *dk_all,
                        double *dscale, float *scratch, const float *q_all, const float *k_all,
                        int N, int D, int begin, int rows, float scale) {
    const float *q = q_all + (size_t)begin * D;
    matmul_forward(pool, k, scratch, NULL, q, NULL, k_all, NULL, NULL, NULL, rows, D, N);
    struct rows_task t = {.k = k, .g = scratch, .N = N, .begin = begin, .rows = rows,
                          .scale = scale, .inv_2n = 0.5f / (float)N};
    CATLIP_ASSERT(pool_size(pool) <= 64);
    pool_run(pool, rows_worker, &t);
    double loss = 0.0;
    for (int i = 0; i < pool_size(pool); i++) {
        loss += t.loss[i];
        *dscale += t.dscale[i];
    }
    matmul_backward(pool, dq_all + (size_t)begin * D, dk_all, NULL, scratch, NULL, q, NULL, k_all,
                    NULL, rows, D, N, 1);
    return loss;
}

double contrastive_loss_rows(struct pool *pool, const struct kernels *k, float *dimage_all,
                             float *dtext_all, float *dlog_scale, float *scratch,
                             const float *image_all, const float *text_all, int N, int D,
                             int begin, int rows, float log_scale) {
    CATLIP_ASSERT(begin >= 0 && rows >= 0 && begin + rows <= N);
    if (rows == 0) return 0.0;
    const float scale = contrastive_scale(log_scale);
    double dscale = 0.0;
    double loss = direction(pool, k, dimage_all, dtext_all, &dscale, scratch, image_all, text_all,
                            N, D, begin, rows, scale);
    loss += direction(pool, k, dtext_all, dimage_all, &dscale, scratch, text_all, image_all, N, D,
                      begin, rows, scale);
    // s = exp(min(t, ln 100)): ds/dt = s below the clamp, 0 above (torch.clamp's gradient).
    if (log_scale <= logf(CONTRASTIVE_SCALE_MAX)) *dlog_scale += (float)(dscale * scale);
    return loss;
}
