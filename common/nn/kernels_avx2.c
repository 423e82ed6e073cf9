// AVX2 + FMA kernels, 8 floats per vector. Same contracts as kernels_scalar.c (nn/kernels.h).
// Tails (n or C not a multiple of 8) use masked loads and stores, never a scalar loop, and
// never touch memory past the end. All loads and stores are unaligned (loadu/storeu).
#include <immintrin.h>
#include <math.h>

#include "nn/kernels.h"
#include "nn/simd_math.h"

// Only the FMAs written as such: GCC's default (-ffp-contract=fast in gnu11) would fuse a
// multiply into a later add where it sees fit, which makes the rounding differ from the scalar
// reference in ways that depend on the compiler (e.g. dnorm - mean(dnorm) in LayerNorm's
// backward, amplified by rstd, stops being exactly 0 for a constant row).
#if defined(__GNUC__) && !defined(__clang__)  // clang contracts only within one expression
#pragma GCC optimize("fp-contract=off")
#endif

#define W 8

static inline __m256 load_tail(const float *p, __m256i mask) { return _mm256_maskload_ps(p, mask); }
static inline void store_tail(float *p, __m256i mask, __m256 v) { _mm256_maskstore_ps(p, mask, v); }

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, long N, int C) {
    // out (N, C), mean (N), rstd (N), inp (N, C), weight (C), bias (C)
    const int cv = C - C % W;
    const __m256i tail = simd_tail_mask8(C % W);
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        // Two passes over the row (it is in L1 after the first): mean, then the centred
        // variance, which stays accurate when |mean| >> std.
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 2 * W <= C; c += 2 * W) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + c));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + c + W));
        }
        for (; c < cv; c += W) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + c));
        if (c < C) s1 = _mm256_add_ps(s1, load_tail(x + c, tail));
        float m = simd_hsum8(_mm256_add_ps(s0, s1)) / C;
        const __m256 vm = _mm256_set1_ps(m);
        s0 = _mm256_setzero_ps();
        s1 = _mm256_setzero_ps();
        for (c = 0; c + 2 * W <= C; c += 2 * W) {
            __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
            __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + c + W), vm);
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
        }
        for (; c < cv; c += W) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
            s0 = _mm256_fmadd_ps(d, d, s0);
        }
        if (c < C) {
            __m256 d = _mm256_and_ps(_mm256_sub_ps(load_tail(x + c, tail), vm), _mm256_castsi256_ps(tail));
            s1 = _mm256_fmadd_ps(d, d, s1);
        }
        float var = simd_hsum8(_mm256_add_ps(s0, s1)) / C;
        float s = 1.0f / sqrtf(var + 1e-6f);
        const __m256 vs = _mm256_set1_ps(s);
        for (c = 0; c < cv; c += W) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
            _mm256_storeu_ps(o + c, _mm256_fmadd_ps(norm, _mm256_loadu_ps(weight + c), _mm256_loadu_ps(bias + c)));
        }
        if (c < C) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(load_tail(x + c, tail), vm), vs);
            store_tail(o + c, tail, _mm256_fmadd_ps(norm, load_tail(weight + c, tail), load_tail(bias + c, tail)));
        }
        mean[n] = m;
        rstd[n] = s;
    }
}

static void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, long N, int C) {
    // Forward: norm = (x - mean) * rstd, out = norm * weight + bias. With dnorm = dout * weight:
    //   dinp = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
    const int cv = C - C % W;
    const __m256i tail = simd_tail_mask8(C % W);
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        const float *dy = dout + n * C;
        float *dx = dinp + n * C;
        const __m256 vm = _mm256_set1_ps(mean[n]), vs = _mm256_set1_ps(rstd[n]);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();  // sum dnorm, sum dnorm*norm
        int c = 0;
        for (; c < cv; c += W) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
            __m256 dnorm = _mm256_mul_ps(_mm256_loadu_ps(dy + c), _mm256_loadu_ps(weight + c));
            a0 = _mm256_add_ps(a0, dnorm);
            a1 = _mm256_fmadd_ps(dnorm, norm, a1);
        }
        if (c < C) {  // masked-out lanes load 0: dnorm = 0 there
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(load_tail(x + c, tail), vm), vs);
            __m256 dnorm = _mm256_mul_ps(load_tail(dy + c, tail), load_tail(weight + c, tail));
            a0 = _mm256_add_ps(a0, dnorm);
            a1 = _mm256_fmadd_ps(dnorm, norm, a1);
        }
        const __m256 dnorm_mean = _mm256_set1_ps(simd_hsum8(a0) / C);
        const __m256 dnorm_norm_mean = _mm256_set1_ps(simd_hsum8(a1) / C);
        for (c = 0; c < cv; c += W) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
            __m256 g = _mm256_loadu_ps(dy + c);  // read before dx is written: dinp may alias dout
            __m256 dnorm = _mm256_mul_ps(g, _mm256_loadu_ps(weight + c));
            _mm256_storeu_ps(dbias + c, _mm256_add_ps(_mm256_loadu_ps(dbias + c), g));
            _mm256_storeu_ps(dweight + c, _mm256_fmadd_ps(norm, g, _mm256_loadu_ps(dweight + c)));
            __m256 t = _mm256_fnmadd_ps(norm, dnorm_norm_mean, _mm256_sub_ps(dnorm, dnorm_mean));
            _mm256_storeu_ps(dx + c, _mm256_mul_ps(vs, t));
        }
        if (c < C) {
            __m256 norm = _mm256_mul_ps(_mm256_sub_ps(load_tail(x + c, tail), vm), vs);
            __m256 g = load_tail(dy + c, tail);
            __m256 dnorm = _mm256_mul_ps(g, load_tail(weight + c, tail));
            store_tail(dbias + c, tail, _mm256_add_ps(load_tail(dbias + c, tail), g));
            store_tail(dweight + c, tail, _mm256_fmadd_ps(norm, g, load_tail(dweight + c, tail)));
            __m256 t = _mm256_fnmadd_ps(norm, dnorm_norm_mean, _mm256_sub_ps(dnorm, dnorm_mean));
            store_tail(dx + c, tail, _mm256_mul_ps(vs, t));
        }
    }
}

static inline __m256 gelu8(__m256 x) {
    __m256 cdf = _mm256_add_ps(_mm256_set1_ps(1.0f), simd_erf8(_mm256_mul_ps(x, _mm256_set1_ps((float)M_SQRT1_2))));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), cdf);
}

static void gelu_forward(float *out, const float *inp, long n) {
    long i = 0;
    for (; i + W <= n; i += W) _mm256_storeu_ps(out + i, gelu8(_mm256_loadu_ps(inp + i)));
    if (i < n) {
        __m256i tail = simd_tail_mask8(n - i);
        store_tail(out + i, tail, gelu8(load_tail(inp + i, tail)));
    }
}

// gelu'(x) = Phi(x) + x phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)), phi(x) = exp(-x^2/2) / sqrt(2 pi)
static inline __m256 gelu_grad8(__m256 x) {
    __m256 cdf = _mm256_mul_ps(_mm256_set1_ps(0.5f),
                               _mm256_add_ps(_mm256_set1_ps(1.0f), simd_erf8(_mm256_mul_ps(x, _mm256_set1_ps((float)M_SQRT1_2)))));
    __m256 pdf = _mm256_mul_ps(simd_exp8(_mm256_mul_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(-0.5f))),
                               _mm256_set1_ps(0.3989422804014327f));
    return _mm256_fmadd_ps(x, pdf, cdf);
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, long n) {
    long i = 0;
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(dinp + i, _mm256_mul_ps(_mm256_loadu_ps(dout + i), gelu_grad8(_mm256_loadu_ps(inp + i))));
    if (i < n) {
        __m256i tail = simd_tail_mask8(n - i);
        store_tail(dinp + i, tail, _mm256_mul_ps(load_tail(dout + i, tail), gelu_grad8(load_tail(inp + i, tail))));
    }
}

static void softmax_forward(float *probs, const float *scores, long rows, int cols) {
    const int cv = cols - cols % W;
    const __m256i tail = simd_tail_mask8(cols % W);
    const __m256 tailf = _mm256_castsi256_ps(tail);
    const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
    for (long r = 0; r < rows; r++) {
        const float *s = scores + r * cols;
        float *p = probs + r * cols;
        __m256 vmax = neg_inf;
        int j = 0;
        for (; j < cv; j += W) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + j));
        if (j < cols) vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(neg_inf, load_tail(s + j, tail), tailf));
        const __m256 m = _mm256_set1_ps(simd_hmax8(vmax));
        __m256 vsum = _mm256_setzero_ps();
        for (j = 0; j < cv; j += W) {
            __m256 e = simd_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
            _mm256_storeu_ps(p + j, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        if (j < cols) {
            __m256 e = _mm256_and_ps(simd_exp8(_mm256_sub_ps(load_tail(s + j, tail), m)), tailf);
            store_tail(p + j, tail, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        const __m256 inv = _mm256_set1_ps(1.0f / simd_hsum8(vsum));
        for (j = 0; j < cv; j += W) _mm256_storeu_ps(p + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), inv));
        if (j < cols) store_tail(p + j, tail, _mm256_mul_ps(load_tail(p + j, tail), inv));
    }
}

static void softmax_backward(float *dscores, const float *probs, const float *dprobs, long rows,
                             int cols, float scale) {
    // p = softmax(s): ds_j = p_j * (dp_j - sum_k p_k dp_k), times the scale applied to s.
    const int cv = cols - cols % W;
    const __m256i tail = simd_tail_mask8(cols % W);
    const __m256 vscale = _mm256_set1_ps(scale);
    for (long r = 0; r < rows; r++) {
        const float *p = probs + r * cols;
        const float *dp = dprobs + r * cols;
        float *ds = dscores + r * cols;
        __m256 acc = _mm256_setzero_ps();
        int j = 0;
        for (; j < cv; j += W) acc = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(dp + j), acc);
        if (j < cols) acc = _mm256_fmadd_ps(load_tail(p + j, tail), load_tail(dp + j, tail), acc);
        const __m256 dot = _mm256_set1_ps(simd_hsum8(acc));
        for (j = 0; j < cv; j += W) {
            __m256 sp = _mm256_mul_ps(vscale, _mm256_loadu_ps(p + j));
            _mm256_storeu_ps(ds + j, _mm256_mul_ps(sp, _mm256_sub_ps(_mm256_loadu_ps(dp + j), dot)));
        }
        if (j < cols) {
            __m256 sp = _mm256_mul_ps(vscale, load_tail(p + j, tail));
            store_tail(ds + j, tail, _mm256_mul_ps(sp, _mm256_sub_ps(load_tail(dp + j, tail), dot)));
        }
    }
}

static void add_bias(float *out, const float *bias, long N, int C) {
    const int cv = C - C % W;
    const __m256i tail = simd_tail_mask8(C % W);
    for (long n = 0; n < N; n++) {
        float *o = out + n * C;
        int c = 0;
        for (; c < cv; c += W) _mm256_storeu_ps(o + c, _mm256_add_ps(_mm256_loadu_ps(o + c), _mm256_loadu_ps(bias + c)));
        if (c < C) store_tail(o + c, tail, _mm256_add_ps(load_tail(o + c, tail), load_tail(bias + c, tail)));
    }
}

static void bias_backward(float *dbias, const float *dout, long N, int C) {
    // Row by row into dbias (which stays in L1), in the scalar kernel's order: same bits.
    const int cv = C - C % W;
    const __m256i tail = simd_tail_mask8(C % W);
    for (long n = 0; n < N; n++) {
        const float *g = dout + n * C;
        int c = 0;
        for (; c < cv; c += W) _mm256_storeu_ps(dbias + c, _mm256_add_ps(_mm256_loadu_ps(dbias + c), _mm256_loadu_ps(g + c)));
        if (c < C) store_tail(dbias + c, tail, _mm256_add_ps(load_tail(dbias + c, tail), load_tail(g + c, tail)));
    }
}

static void add(float *out, const float *a, const float *b, long n) {
    long i = 0;
    for (; i + W <= n; i += W) _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    if (i < n) {
        __m256i tail = simd_tail_mask8(n - i);
        store_tail(out + i, tail, _mm256_add_ps(load_tail(a + i, tail), load_tail(b + i, tail)));
    }
}

// One vector of BCE: writes dl/dx * grad_scale to *dlogit, returns the losses l.
static inline __m256 bce8(__m256 *dlogit, __m256 x, __m256 y, __m256 grad_scale) {
    // l = max(x, 0) - x y + log(1 + z), z = exp(-|x|) in (0, 1];
    // sigmoid(x) = 1 / (1 + z) for x >= 0, z / (1 + z) for x < 0.
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    __m256 z = simd_exp8(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));  // exp(-|x|)
    __m256 l = _mm256_add_ps(_mm256_fnmadd_ps(x, y, _mm256_max_ps(x, zero)), simd_log1p_unit8(z));
    __m256 num = _mm256_blendv_ps(z, one, _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    __m256 sig = _mm256_div_ps(num, _mm256_add_ps(one, z));
    *dlogit = _mm256_mul_ps(_mm256_sub_ps(sig, y), grad_scale);
    return l;
}

static inline __m256d add_halves_pd(__m256d acc, __m256 v) {
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static double bce_with_logits(float *dlogits, const float *logits, const float *targets, long n,
                              float grad_scale) {
    const __m256 gs = _mm256_set1_ps(grad_scale);
    __m256d acc = _mm256_setzero_pd();
    long i = 0;
    for (; i + W <= n; i += W) {
        __m256 d;
        __m256 l = bce8(&d, _mm256_loadu_ps(logits + i), _mm256_loadu_ps(targets + i), gs);
        _mm256_storeu_ps(dlogits + i, d);
        acc = add_halves_pd(acc, l);
    }
    if (i < n) {
        __m256i tail = simd_tail_mask8(n - i);
        __m256 d;
        __m256 l = bce8(&d, load_tail(logits + i, tail), load_tail(targets + i, tail), gs);
        store_tail(dlogits + i, tail, d);
        acc = add_halves_pd(acc, _mm256_and_ps(l, _mm256_castsi256_ps(tail)));
    }
    return simd_hsum4d(acc);
}

// One vector of AdamW, in the order of the scalar kernel (torch.optim.AdamW single tensor).
struct adamw8 {
    __m256 decay, step_size, bc2_sqrt, eps, beta1, one_minus_beta1, beta2, one_minus_beta2, grad_scale;
};

static inline void adamw8(const struct adamw8 *k, __m256 *w, __m256 *m, __m256 *v, __m256 grad) {
    __m256 g = _mm256_mul_ps(grad, k->grad_scale);
    *m = _mm256_fmadd_ps(k->beta1, *m, _mm256_mul_ps(k->one_minus_beta1, g));
    *v = _mm256_fmadd_ps(k->beta2, *v, _mm256_mul_ps(_mm256_mul_ps(k->one_minus_beta2, g), g));
    __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(*v), k->bc2_sqrt), k->eps);
    *w = _mm256_fnmadd_ps(k->step_size, _mm256_div_ps(*m, denom), _mm256_mul_ps(*w, k->decay));
}

static void adamw_update(float *w, float *m, float *v, const float *grad, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay,
                         float bias_correction1, float bias_correction2, float grad_scale) {
    const struct adamw8 k = {
        .decay = _mm256_set1_ps(1.0f - lr * weight_decay),
        .step_size = _mm256_set1_ps(lr / bias_correction1),
        .bc2_sqrt = _mm256_set1_ps(sqrtf(bias_correction2)),
        .eps = _mm256_set1_ps(eps),
        .beta1 = _mm256_set1_ps(beta1),
        .one_minus_beta1 = _mm256_set1_ps(1.0f - beta1),
        .beta2 = _mm256_set1_ps(beta2),
        .one_minus_beta2 = _mm256_set1_ps(1.0f - beta2),
        .grad_scale = _mm256_set1_ps(grad_scale),
    };
    long i = 0;
    for (; i + W <= n; i += W) {
        __m256 vw = _mm256_loadu_ps(w + i), vm = _mm256_loadu_ps(m + i), vv = _mm256_loadu_ps(v + i);
        adamw8(&k, &vw, &vm, &vv, _mm256_loadu_ps(grad + i));
        _mm256_storeu_ps(w + i, vw);
        _mm256_storeu_ps(m + i, vm);
        _mm256_storeu_ps(v + i, vv);
    }
    if (i < n) {
        __m256i tail = simd_tail_mask8(n - i);
        __m256 vw = load_tail(w + i, tail), vm = load_tail(m + i, tail), vv = load_tail(v + i, tail);
        adamw8(&k, &vw, &vm, &vv, load_tail(grad + i, tail));
        store_tail(w + i, tail, vw);
        store_tail(m + i, tail, vm);
        store_tail(v + i, tail, vv);
    }
}

static void ema_update(float *ema, const float *w, long n, float momentum) {
    const __m256 keep = _mm256_set1_ps(1.0f - momentum), mom = _mm256_set1_ps(momentum);
    long i = 0;
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(ema + i, _mm256_fmadd_ps(keep, _mm256_loadu_ps(ema + i), _mm256_mul_ps(mom, _mm256_loadu_ps(w + i))));
    if (i < n) {
        __m256i tail = simd_tail_mask8(n - i);
        store_tail(ema + i, tail, _mm256_fmadd_ps(keep, load_tail(ema + i, tail), _mm256_mul_ps(mom, load_tail(w + i, tail))));
    }
}

static double sum_squares(const float *x, long n) {
    // Squares and sums in double: each float converts exactly, and x^2 is exact in double.
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        __m256 u = _mm256_loadu_ps(x + i), w = _mm256_loadu_ps(x + i + W);
        __m256d u0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u)), u1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
        __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(w)), w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
        a0 = _mm256_fmadd_pd(u0, u0, a0);
        a1 = _mm256_fmadd_pd(u1, u1, a1);
        a2 = _mm256_fmadd_pd(w0, w0, a2);
        a3 = _mm256_fmadd_pd(w1, w1, a3);
    }
    for (; i < n; i += W) {  // at most two more vectors, the last one masked
        __m256 u = n - i >= W ? _mm256_loadu_ps(x + i) : load_tail(x + i, simd_tail_mask8(n - i));
        __m256d u0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u)), u1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
        a0 = _mm256_fmadd_pd(u0, u0, a0);
        a1 = _mm256_fmadd_pd(u1, u1, a1);
    }
    return simd_hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
}

const struct kernels kernels_avx2 = {
    .name = "avx2",
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

#undef W
