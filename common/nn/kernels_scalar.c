// The reference kernels: plain C, written to be obviously right. The AVX2 and AVX-512 tables
// are tested against these (tests/unit/test_kernels.c). See nn/kernels.h for the contracts.
#include <math.h>

#include "nn/kernels.h"

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, long N, int C) {
    // out (N, C), mean (N), rstd (N), inp (N, C), weight (C), bias (C)
    const double eps = 1e-6;
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += x[c];
        double m = sum / C;
        double var = 0.0;
        for (int c = 0; c < C; c++) {
            double d = x[c] - m;
            var += d * d;
        }
        var /= C;
        float s = (float)(1.0 / sqrt(var + eps));
        float mf = (float)m;
        for (int c = 0; c < C; c++) o[c] = (x[c] - mf) * s * weight[c] + bias[c];
        mean[n] = mf;
        rstd[n] = s;
    }
}

static void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, long N, int C) {
    // Forward: norm = (x - mean) * rstd, out = norm * weight + bias. With dnorm = dout * weight:
    //   dinp = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        const float *dy = dout + n * C;
        float *dx = dinp + n * C;
        float m = mean[n], s = rstd[n];
        double dnorm_sum = 0.0, dnorm_norm_sum = 0.0;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            float dnorm = dy[c] * weight[c];
            dnorm_sum += dnorm;
            dnorm_norm_sum += dnorm * norm;
        }
        float dnorm_mean = (float)(dnorm_sum / C);
        float dnorm_norm_mean = (float)(dnorm_norm_sum / C);
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            float g = dy[c];  // read before dx[c] is written: dinp may alias dout
            float dnorm = g * weight[c];
            dbias[c] += g;
            dweight[c] += norm * g;
            dx[c] = s * (dnorm - dnorm_mean - norm * dnorm_norm_mean);
        }
    }
}

static void gelu_forward(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
    }
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, long n) {
    // gelu(x) = x * Phi(x), so gelu'(x) = Phi(x) + x * phi(x), with the normal
    // cdf Phi(x) = 0.5 * (1 + erf(x / sqrt 2)) and pdf phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        float pdf = expf(-0.5f * x * x) * inv_sqrt_2pi;
        dinp[i] = dout[i] * (cdf + x * pdf);
    }
}

static void softmax_forward(float *probs, const float *scores, long rows, int cols) {
    for (long r = 0; r < rows; r++) {
        const float *s = scores + r * cols;
        float *p = probs + r * cols;
        float maxval = -INFINITY;
        for (int j = 0; j < cols; j++) maxval = fmaxf(maxval, s[j]);
        float sum = 0.0f;
        for (int j = 0; j < cols; j++) {
            p[j] = expf(s[j] - maxval);
            sum += p[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < cols; j++) p[j] *= inv;
    }
}

static void softmax_backward(float *dscores, const float *probs, const float *dprobs, long rows,
                             int cols, float scale) {
    // p = softmax(s): ds_j = p_j * (dp_j - sum_k p_k dp_k), times the scale applied to s.
    for (long r = 0; r < rows; r++) {
        const float *p = probs + r * cols;
        const float *dp = dprobs + r * cols;
        float *ds = dscores + r * cols;
        float dot = 0.0f;
        for (int j = 0; j < cols; j++) dot += p[j] * dp[j];
        for (int j = 0; j < cols; j++) ds[j] = scale * p[j] * (dp[j] - dot);
    }
}

static void add_bias(float *out, const float *bias, long N, int C) {
    for (long n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[n * C + c] += bias[c];
}

static void bias_backward(float *dbias, const float *dout, long N, int C) {
    for (long n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dbias[c] += dout[n * C + c];
}

static void add(float *out, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static double bce_with_logits(float *dlogits, const float *logits, const float *targets, long n,
                              float grad_scale) {
    // l = max(x, 0) - x y + log(1 + exp(-|x|)), dl/dx = sigmoid(x) - y. With z = exp(-|x|),
    // sigmoid(x) = 1 / (1 + z) for x >= 0 and z / (1 + z) for x < 0: no overflow either way.
    double loss = 0.0;
    for (long i = 0; i < n; i++) {
        float x = logits[i], y = targets[i];
        float z = expf(-fabsf(x));
        loss += (double)(fmaxf(x, 0.0f) - x * y + log1pf(z));
        float sig = (x >= 0.0f ? 1.0f : z) / (1.0f + z);
        dlogits[i] = (sig - y) * grad_scale;
    }
    return loss;
}

static void adamw_update(float *w, float *m, float *v, const float *grad, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay,
                         float bias_correction1, float bias_correction2, float grad_scale) {
    // In the order of torch.optim.AdamW's single-tensor path: decay, moments, then
    // w -= step_size * (m / (sqrt(v) / sqrt(bc2) + eps)).
    float decay = 1.0f - lr * weight_decay;
    float step_size = lr / bias_correction1;
    float bc2_sqrt = sqrtf(bias_correction2);
    for (long i = 0; i < n; i++) {
        float g = grad[i] * grad_scale;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] = w[i] * decay - step_size * (m[i] / denom);
    }
}

static void ema_update(float *ema, const float *w, long n, float momentum) {
    for (long i = 0; i < n; i++) ema[i] = (1.0f - momentum) * ema[i] + momentum * w[i];
}

static double sum_squares(const float *x, long n) {
    double sum = 0.0;
    for (long i = 0; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

const struct kernels kernels_scalar = {
    .name = "scalar",
    .layernorm_forward = layernorm_forward,
    .layernorm_backward = layernorm_backward,
    .gelu_forward = gelu_forward,
    .gelu_backward = gelu_backward,
    .softmax_forward = softmax_forward,
    .softmax_backward = softmax_backward,
    .add_bias = add_bias,
    .bias_backward = bias_backward,
    .add = add,
    .bce_with_logits = bce_with_logits,
    .adamw_update = adamw_update,
    .ema_update = ema_update,
    .sum_squares = sum_squares,
};
