// AVX-512 (F/BW/DQ/VL) kernels, 16 floats per vector. Same contracts as kernels_scalar.c
// (nn/kernels.h). Every loop runs whole vectors with a lane mask that is all-ones except on the
// last, partial vector, so tails need no second code path and never touch memory past the end.
// All loads and stores are unaligned (loadu/storeu, masked).
#include <immintrin.h>
#include <math.h>

#include "nn/kernels.h"
#include "nn/simd_math.h"

#define W 16

// The mask for the vector that starts at element i of n.
static inline __mmask16 lanes(long i, long n) { return n - i >= W ? (__mmask16)0xFFFF : simd_tail_mask16(n - i); }
static inline __m512 load(const float *p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
static inline void store(float *p, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(p, k, v); }

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, long N, int C) {
    // out (N, C), mean (N), rstd (N), inp (N, C), weight (C), bias (C)
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        // Two passes over the row (in L1 after the first): mean, then the centred variance,
        // which stays accurate when |mean| >> std. Masked-out lanes are 0 and stay out.
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 2 * W <= C; c += 2 * W) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + c));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + c + W));
        }
        for (; c < C; c += W) s0 = _mm512_add_ps(s0, load(x + c, lanes(c, C)));
        float m = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / C;
        const __m512 vm = _mm512_set1_ps(m);
        s0 = _mm512_setzero_ps();
        s1 = _mm512_setzero_ps();
        for (c = 0; c + 2 * W <= C; c += 2 * W) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + c), vm);
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + c + W), vm);
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
        }
        for (; c < C; c += W) {
            __mmask16 k = lanes(c, C);
            __m512 d = _mm512_maskz_sub_ps(k, load(x + c, k), vm);
            s0 = _mm512_fmadd_ps(d, d, s0);
        }
        float var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / C;
        float s = 1.0f / sqrtf(var + 1e-6f);
        const __m512 vs = _mm512_set1_ps(s);
        for (c = 0; c < C; c += W) {
            __mmask16 k = lanes(c, C);
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + c, k), vm), vs);
            store(o + c, k, _mm512_fmadd_ps(norm, load(weight + c, k), load(bias + c, k)));
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
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        const float *dy = dout + n * C;
        float *dx = dinp + n * C;
        const __m512 vm = _mm512_set1_ps(mean[n]), vs = _mm512_set1_ps(rstd[n]);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();  // sum dnorm, sum dnorm*norm
        for (int c = 0; c < C; c += W) {  // masked-out lanes: dnorm = 0
            __mmask16 k = lanes(c, C);
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + c, k), vm), vs);
            __m512 dnorm = _mm512_mul_ps(load(dy + c, k), load(weight + c, k));
            a0 = _mm512_add_ps(a0, dnorm);
            a1 = _mm512_fmadd_ps(dnorm, norm, a1);
        }
        const __m512 dnorm_mean = _mm512_set1_ps(_mm512_reduce_add_ps(a0) / C);
        const __m512 dnorm_norm_mean = _mm512_set1_ps(_mm512_reduce_add_ps(a1) / C);
        for (int c = 0; c < C; c += W) {
            __mmask16 k = lanes(c, C);
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + c, k), vm), vs);
            __m512 g = load(dy + c, k);  // read before dx is written: dinp may alias dout
            __m512 dnorm = _mm512_mul_ps(g, load(weight + c, k));
            store(dbias + c, k, _mm512_add_ps(load(dbias + c, k), g));
            store(dweight + c, k, _mm512_fmadd_ps(norm, g, load(dweight + c, k)));
            __m512 t = _mm512_fnmadd_ps(norm, dnorm_norm_mean, _mm512_sub_ps(dnorm, dnorm_mean));
            store(dx + c, k, _mm512_mul_ps(vs, t));
        }
    }
}

static inline __m512 gelu16(__m512 x) {
    __m512 cdf = _mm512_add_ps(_mm512_set1_ps(1.0f), simd_erf16(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2))));
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), cdf);
}

static void gelu_forward(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i += W) {
        __mmask16 k = lanes(i, n);
        store(out + i, k, gelu16(load(inp + i, k)));
    }
}

// gelu'(x) = Phi(x) + x phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)), phi(x) = exp(-x^2/2) / sqrt(2 pi)
static inline __m512 gelu_grad16(__m512 x) {
    __m512 cdf = _mm512_mul_ps(_mm512_set1_ps(0.5f),
                               _mm512_add_ps(_mm512_set1_ps(1.0f), simd_erf16(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2)))));
    __m512 pdf = _mm512_mul_ps(simd_exp16(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f))),
                               _mm512_set1_ps(0.3989422804014327f));
    return _mm512_fmadd_ps(x, pdf, cdf);
}

static void gelu_backward(float *dinp, const float *inp, const float *dout, long n) {
    for (long i = 0; i < n; i += W) {
        __mmask16 k = lanes(i, n);
        store(dinp + i, k, _mm512_mul_ps(load(dout + i, k), gelu_grad16(load(inp + i, k))));
    }
}

static void softmax_forward(float *probs, const float *scores, long rows, int cols) {
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    for (long r = 0; r < rows; r++) {
        const float *s = scores + r * cols;
        float *p = probs + r * cols;
        __m512 vmax = neg_inf;
        for (int j = 0; j < cols; j += W)
            vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(neg_inf, lanes(j, cols), s + j));
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 vsum = _mm512_setzero_ps();
        for (int j = 0; j < cols; j += W) {
            __mmask16 k = lanes(j, cols);
            __m512 e = simd_exp16(_mm512_sub_ps(load(s + j, k), m));
            store(p + j, k, e);
            vsum = _mm512_mask_add_ps(vsum, k, vsum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
        for (int j = 0; j < cols; j += W) {
            __mmask16 k = lanes(j, cols);
            store(p + j, k, _mm512_mul_ps(load(p + j, k), inv));
        }
    }
}

static void softmax_backward(float *dscores, const float *probs, const float *dprobs, long rows,
                             int cols, float scale) {
    // p = softmax(s): ds_j = p_j * (dp_j - sum_k p_k dp_k), times the scale applied to s.
    const __m512 vscale = _mm512_set1_ps(scale);
    for (long r = 0; r < rows; r++) {
        const float *p = probs + r * cols;
        const float *dp = dprobs + r * cols;
        float *ds = dscores + r * cols;
        __m512 acc = _mm512_setzero_ps();
        for (int j = 0; j < cols; j += W) {
            __mmask16 k = lanes(j, cols);
            acc = _mm512_fmadd_ps(load(p + j, k), load(dp + j, k), acc);
        }
        const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
        for (int j = 0; j < cols; j += W) {
            __mmask16 k = lanes(j, cols);
            __m512 sp = _mm512_mul_ps(vscale, load(p + j, k));
            store(ds + j, k, _mm512_mul_ps(sp, _mm512_sub_ps(load(dp + j, k), dot)));
        }
    }
}

static void add_bias(float *out, const float *bias, long N, int C) {
    for (long n = 0; n < N; n++) {
        float *o = out + n * C;
        for (int c = 0; c < C; c += W) {
            __mmask16 k = lanes(c, C);
            store(o + c, k, _mm512_add_ps(load(o + c, k), load(bias + c, k)));
        }
    }
}

static void bias_backward(float *dbias, const float *dout, long N, int C) {
    // Row by row into dbias (which stays in L1), in the scalar kernel's order: same bits.
    for (long n = 0; n < N; n++) {
        const float *g = dout + n * C;
        for (int c = 0; c < C; c += W) {
            __mmask16 k = lanes(c, C);
            store(dbias + c, k, _mm512_add_ps(load(dbias + c, k), load(g + c, k)));
        }
    }
}

static void add(float *out, const float *a, const float *b, long n) {
    for (long i = 0; i < n; i += W) {
        __mmask16 k = lanes(i, n);
        store(out + i, k, _mm512_add_ps(load(a + i, k), load(b + i, k)));
    }
}

static double bce_with_logits(float *dlogits, const float *logits, const float *targets, long n,
                              float grad_scale) {
    // l = max(x, 0) - x y + log(1 + z), z = exp(-|x|) in (0, 1];
    // sigmoid(x) = 1 / (1 + z) for x >= 0, z / (1 + z) for x < 0.
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps(), gs = _mm512_set1_ps(grad_scale);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    for (long i = 0; i < n; i += W) {
        __mmask16 k = lanes(i, n);
        __m512 x = load(logits + i, k), y = load(targets + i, k);
        __m512 z = simd_exp16(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(x), sign)));
        __m512 l = _mm512_add_ps(_mm512_fnmadd_ps(x, y, _mm512_max_ps(x, zero)), simd_log1p_unit16(z));
        __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ), z, one);
        __m512 sig = _mm512_div_ps(num, _mm512_add_ps(one, z));
        store(dlogits + i, k, _mm512_mul_ps(_mm512_sub_ps(sig, y), gs));
        l = _mm512_maskz_mov_ps(k, l);
        acc0 = _mm512_add_pd(acc0, _mm512_cvtps_pd(_mm512_castps512_ps256(l)));
        acc1 = _mm512_add_pd(acc1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(l, 1)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

static void adamw_update(float *w, float *m, float *v, const float *grad, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay,
                         float bias_correction1, float bias_correction2, float grad_scale) {
    // In the order of the scalar kernel (torch.optim.AdamW single tensor); exact sqrt and
    // divisions, no reciprocal approximations.
    const __m512 decay = _mm512_set1_ps(1.0f - lr * weight_decay);
    const __m512 step_size = _mm512_set1_ps(lr / bias_correction1);
    const __m512 bc2_sqrt = _mm512_set1_ps(sqrtf(bias_correction2));
    const __m512 veps = _mm512_set1_ps(eps);
    const __m512 b1 = _mm512_set1_ps(beta1), one_minus_b1 = _mm512_set1_ps(1.0f - beta1);
    const __m512 b2 = _mm512_set1_ps(beta2), one_minus_b2 = _mm512_set1_ps(1.0f - beta2);
    const __m512 gs = _mm512_set1_ps(grad_scale);
    for (long i = 0; i < n; i += W) {
        __mmask16 k = lanes(i, n);
        __m512 g = _mm512_mul_ps(load(grad + i, k), gs);
        __m512 vm = _mm512_fmadd_ps(b1, load(m + i, k), _mm512_mul_ps(one_minus_b1, g));
        __m512 vv = _mm512_fmadd_ps(b2, load(v + i, k), _mm512_mul_ps(_mm512_mul_ps(one_minus_b2, g), g));
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vv), bc2_sqrt), veps);
        __m512 vw = _mm512_fnmadd_ps(step_size, _mm512_div_ps(vm, denom), _mm512_mul_ps(load(w + i, k), decay));
        store(w + i, k, vw);
        store(m + i, k, vm);
        store(v + i, k, vv);
    }
}

static void ema_update(float *ema, const float *w, long n, float momentum) {
    const __m512 keep = _mm512_set1_ps(1.0f - momentum), mom = _mm512_set1_ps(momentum);
    for (long i = 0; i < n; i += W) {
        __mmask16 k = lanes(i, n);
        store(ema + i, k, _mm512_fmadd_ps(keep, load(ema + i, k), _mm512_mul_ps(mom, load(w + i, k))));
    }
}

static double sum_squares(const float *x, long n) {
    // Squares and sums in double: each float converts exactly, and x^2 is exact in double.
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), a2 = _mm512_setzero_pd(), a3 = _mm512_setzero_pd();
    long i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        __m512 u = _mm512_loadu_ps(x + i), w = _mm512_loadu_ps(x + i + W);
        __m512d u0 = _mm512_cvtps_pd(_mm512_castps512_ps256(u)), u1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(u, 1));
        __m512d w0 = _mm512_cvtps_pd(_mm512_castps512_ps256(w)), w1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(w, 1));
        a0 = _mm512_fmadd_pd(u0, u0, a0);
        a1 = _mm512_fmadd_pd(u1, u1, a1);
        a2 = _mm512_fmadd_pd(w0, w0, a2);
        a3 = _mm512_fmadd_pd(w1, w1, a3);
    }
    for (; i < n; i += W) {  // at most two more vectors, the last one masked
        __m512 u = load(x + i, lanes(i, n));
        __m512d u0 = _mm512_cvtps_pd(_mm512_castps512_ps256(u)), u1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(u, 1));
        a0 = _mm512_fmadd_pd(u0, u0, a0);
        a1 = _mm512_fmadd_pd(u1, u1, a1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

const struct kernels kernels_avx512 = {
    .name = "avx512",
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
