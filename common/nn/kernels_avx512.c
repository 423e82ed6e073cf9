// AVX-512 (F/BW/DQ/VL) kernels, 16 floats per vector. Same contracts as kernels_scalar.c
// (nn/kernels.h). Whole vectors use plain unaligned loads and stores; the last, partial vector
// of a row or array uses masked ones (which never touch memory past the end). Masked stores are
// kept out of the main loops: on AMD Zen 4 a masked 512-bit store is several times slower than a
// plain one, even with an all-ones mask.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "nn/kernels.h"
#include "nn/simd_math.h"

// Only the FMAs written as such: GCC's default (-ffp-contract=fast in gnu11) would fuse a
// multiply into a later add where it sees fit, which makes the rounding differ from the scalar
// reference in ways that depend on the compiler (e.g. dnorm - mean(dnorm) in LayerNorm's
// backward, amplified by rstd, stops being exactly 0 for a constant row).
#if defined(__GNUC__) && !defined(__clang__)  // clang contracts only within one expression
#pragma GCC optimize("fp-contract=off")
#endif

#define W 16

// The partial last vector: lanes [0, rem) of p.
static inline __m512 load_tail(const float *p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
static inline void store_tail(float *p, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(p, k, v); }

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, long N, int C) {
    // out (N, C), mean (N), rstd (N), inp (N, C), weight (C), bias (C)
    const int cv = C - C % W;
    const __mmask16 tail = simd_tail_mask16(C % W);
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
        for (; c < cv; c += W) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + c));
        if (c < C) s1 = _mm512_add_ps(s1, load_tail(x + c, tail));
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
        for (; c < cv; c += W) {
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + c), vm);
            s0 = _mm512_fmadd_ps(d, d, s0);
        }
        if (c < C) {
            __m512 d = _mm512_maskz_sub_ps(tail, load_tail(x + c, tail), vm);
            s1 = _mm512_fmadd_ps(d, d, s1);
        }
        float var = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / C;
        float s = 1.0f / sqrtf(var + 1e-6f);
        const __m512 vs = _mm512_set1_ps(s);
        for (c = 0; c < cv; c += W) {
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), vm), vs);
            _mm512_storeu_ps(o + c, _mm512_fmadd_ps(norm, _mm512_loadu_ps(weight + c), _mm512_loadu_ps(bias + c)));
        }
        if (c < C) {
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load_tail(x + c, tail), vm), vs);
            store_tail(o + c, tail, _mm512_fmadd_ps(norm, load_tail(weight + c, tail), load_tail(bias + c, tail)));
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
    const __mmask16 tail = simd_tail_mask16(C % W);
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        const float *dy = dout + n * C;
        float *dx = dinp + n * C;
        const __m512 vm = _mm512_set1_ps(mean[n]), vs = _mm512_set1_ps(rstd[n]);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();  // sum dnorm, sum dnorm*norm
        int c = 0;
        for (; c < cv; c += W) {
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), vm), vs);
            __m512 dnorm = _mm512_mul_ps(_mm512_loadu_ps(dy + c), _mm512_loadu_ps(weight + c));
            a0 = _mm512_add_ps(a0, dnorm);
            a1 = _mm512_fmadd_ps(dnorm, norm, a1);
        }
        if (c < C) {  // masked-out lanes load 0: dnorm = 0 there
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load_tail(x + c, tail), vm), vs);
            __m512 dnorm = _mm512_mul_ps(load_tail(dy + c, tail), load_tail(weight + c, tail));
            a0 = _mm512_add_ps(a0, dnorm);
            a1 = _mm512_fmadd_ps(dnorm, norm, a1);
        }
        const __m512 dnorm_mean = _mm512_set1_ps(_mm512_reduce_add_ps(a0) / C);
        const __m512 dnorm_norm_mean = _mm512_set1_ps(_mm512_reduce_add_ps(a1) / C);
        for (c = 0; c < cv; c += W) {
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), vm), vs);
            __m512 g = _mm512_loadu_ps(dy + c);  // read before dx is written: dinp may alias dout
            __m512 dnorm = _mm512_mul_ps(g, _mm512_loadu_ps(weight + c));
            _mm512_storeu_ps(dbias + c, _mm512_add_ps(_mm512_loadu_ps(dbias + c), g));
            _mm512_storeu_ps(dweight + c, _mm512_fmadd_ps(norm, g, _mm512_loadu_ps(dweight + c)));
            __m512 t = _mm512_fnmadd_ps(norm, dnorm_norm_mean, _mm512_sub_ps(dnorm, dnorm_mean));
            _mm512_storeu_ps(dx + c, _mm512_mul_ps(vs, t));
        }
        if (c < C) {
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load_tail(x + c, tail), vm), vs);
            __m512 g = load_tail(dy + c, tail);
            __m512 dnorm = _mm512_mul_ps(g, load_tail(weight + c, tail));
            store_tail(dbias + c, tail, _mm512_add_ps(load_tail(dbias + c, tail), g));
            store_tail(dweight + c, tail, _mm512_fmadd_ps(norm, g, load_tail(dweight + c, tail)));
            __m512 t = _mm512_fnmadd_ps(norm, dnorm_norm_mean, _mm512_sub_ps(dnorm, dnorm_mean));
            store_tail(dx + c, tail, _mm512_mul_ps(vs, t));
        }
    }
}

static inline __m512 gelu16(__m512 x) {
    __m512 cdf = _mm512_add_ps(_mm512_set1_ps(1.0f), simd_erf16(_mm512_mul_ps(x, _mm512_set1_ps((float)M_SQRT1_2))));
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), cdf);
}

static void gelu_forward(float *out, const float *inp, long n) {
    long i = 0;
    for (; i + W <= n; i += W) _mm512_storeu_ps(out + i, gelu16(_mm512_loadu_ps(inp + i)));
    if (i < n) {
        __mmask16 tail = simd_tail_mask16(n - i);
        store_tail(out + i, tail, gelu16(load_tail(inp + i, tail)));
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
    long i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(dinp + i, _mm512_mul_ps(_mm512_loadu_ps(dout + i), gelu_grad16(_mm512_loadu_ps(inp + i))));
    if (i < n) {
        __mmask16 tail = simd_tail_mask16(n - i);
        store_tail(dinp + i, tail, _mm512_mul_ps(load_tail(dout + i, tail), gelu_grad16(load_tail(inp + i, tail))));
    }
}

// Softmax rows have odd lengths (197 tokens), so most rows start off a 64-byte boundary, and
// then every 512-bit access straddles two cache lines; on Zen 4 that makes these loops ~1.7x
// slower than AVX2. So each row is split into a masked head up to the first 64-byte boundary
// of the output row (the inputs share its offset when the bases are aligned the same way), whole
// vectors, and a masked tail.
struct row_split {
    int head, end;           // [0, head) masked head, [head, end) whole vectors, [end, cols) tail
    __mmask16 head_mask, tail_mask;
};

static inline struct row_split split_row(const float *out, int cols) {
    int head = (int)(((64 - ((uintptr_t)out & 63)) & 63) / sizeof(float));
    if (head > cols) head = cols;
    int end = head + (cols - head) / W * W;
    return (struct row_split){head, end, simd_tail_mask16(head), simd_tail_mask16(cols - end)};
}

static void softmax_forward(float *probs, const float *scores, long rows, int cols) {
    const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
    for (long r = 0; r < rows; r++) {
        const float *s = scores + r * cols;
        float *p = probs + r * cols;
        const struct row_split sp = split_row(p, cols);
        // Masked-out lanes: -inf for the max, 0 (masked add) for the sum.
        __m512 vmax = _mm512_max_ps(_mm512_mask_loadu_ps(neg_inf, sp.head_mask, s),
                                    _mm512_mask_loadu_ps(neg_inf, sp.tail_mask, s + sp.end));
        for (int j = sp.head; j < sp.end; j += W) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + j));
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        __m512 vsum = _mm512_setzero_ps();
        if (sp.head) {
            __m512 e = simd_exp16(_mm512_sub_ps(load_tail(s, sp.head_mask), m));
            store_tail(p, sp.head_mask, e);
            vsum = _mm512_mask_add_ps(vsum, sp.head_mask, vsum, e);
        }
        for (int j = sp.head; j < sp.end; j += W) {
            __m512 e = simd_exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
            _mm512_storeu_ps(p + j, e);
            vsum = _mm512_add_ps(vsum, e);
        }
        if (sp.end < cols) {
            __m512 e = simd_exp16(_mm512_sub_ps(load_tail(s + sp.end, sp.tail_mask), m));
            store_tail(p + sp.end, sp.tail_mask, e);
            vsum = _mm512_mask_add_ps(vsum, sp.tail_mask, vsum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
        if (sp.head) store_tail(p, sp.head_mask, _mm512_mul_ps(load_tail(p, sp.head_mask), inv));
        for (int j = sp.head; j < sp.end; j += W) _mm512_storeu_ps(p + j, _mm512_mul_ps(_mm512_loadu_ps(p + j), inv));
        if (sp.end < cols) store_tail(p + sp.end, sp.tail_mask, _mm512_mul_ps(load_tail(p + sp.end, sp.tail_mask), inv));
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
        const struct row_split sp = split_row(ds, cols);
        const int e = sp.end;
        // Masked-out lanes load 0 and add nothing to the dot product.
        __m512 acc = _mm512_mul_ps(load_tail(p, sp.head_mask), load_tail(dp, sp.head_mask));
        acc = _mm512_fmadd_ps(load_tail(p + e, sp.tail_mask), load_tail(dp + e, sp.tail_mask), acc);
        for (int j = sp.head; j < e; j += W) acc = _mm512_fmadd_ps(_mm512_loadu_ps(p + j), _mm512_loadu_ps(dp + j), acc);
        const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
        if (sp.head) {
            __m512 sprob = _mm512_mul_ps(vscale, load_tail(p, sp.head_mask));
            store_tail(ds, sp.head_mask, _mm512_mul_ps(sprob, _mm512_sub_ps(load_tail(dp, sp.head_mask), dot)));
        }
        for (int j = sp.head; j < e; j += W) {
            __m512 sprob = _mm512_mul_ps(vscale, _mm512_loadu_ps(p + j));
            _mm512_storeu_ps(ds + j, _mm512_mul_ps(sprob, _mm512_sub_ps(_mm512_loadu_ps(dp + j), dot)));
        }
        if (e < cols) {
            __m512 sprob = _mm512_mul_ps(vscale, load_tail(p + e, sp.tail_mask));
            store_tail(ds + e, sp.tail_mask, _mm512_mul_ps(sprob, _mm512_sub_ps(load_tail(dp + e, sp.tail_mask), dot)));
        }
    }
}

static void add_bias(float *out, const float *bias, long N, int C) {
    const int cv = C - C % W;
    const __mmask16 tail = simd_tail_mask16(C % W);
    for (long n = 0; n < N; n++) {
        float *o = out + n * C;
        int c = 0;
        for (; c < cv; c += W) _mm512_storeu_ps(o + c, _mm512_add_ps(_mm512_loadu_ps(o + c), _mm512_loadu_ps(bias + c)));
        if (c < C) store_tail(o + c, tail, _mm512_add_ps(load_tail(o + c, tail), load_tail(bias + c, tail)));
    }
}

static void bias_backward(float *dbias, const float *dout, long N, int C) {
    // Row by row into dbias (which stays in L1), in the scalar kernel's order: same bits.
    const int cv = C - C % W;
    const __mmask16 tail = simd_tail_mask16(C % W);
    for (long n = 0; n < N; n++) {
        const float *g = dout + n * C;
        int c = 0;
        for (; c < cv; c += W) _mm512_storeu_ps(dbias + c, _mm512_add_ps(_mm512_loadu_ps(dbias + c), _mm512_loadu_ps(g + c)));
        if (c < C) store_tail(dbias + c, tail, _mm512_add_ps(load_tail(dbias + c, tail), load_tail(g + c, tail)));
    }
}

static void add(float *out, const float *a, const float *b, long n) {
    long i = 0;
    for (; i + W <= n; i += W) _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
        __mmask16 tail = simd_tail_mask16(n - i);
        store_tail(out + i, tail, _mm512_add_ps(load_tail(a + i, tail), load_tail(b + i, tail)));
    }
}

// One vector of BCE: writes dl/dx * grad_scale to *dlogit, returns the losses l.
static inline __m512 bce16(__m512 *dlogit, __m512 x, __m512 y, __m512 grad_scale) {
    // l = max(x, 0) - x y + log(1 + z), z = exp(-|x|) in (0, 1];
    // sigmoid(x) = 1 / (1 + z) for x >= 0, z / (1 + z) for x < 0.
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    __m512 z = simd_exp16(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(x), sign)));  // exp(-|x|)
    __m512 l = _mm512_add_ps(_mm512_fnmadd_ps(x, y, _mm512_max_ps(x, zero)), simd_log1p_unit16(z));
    __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ), z, one);
    __m512 sig = _mm512_div_ps(num, _mm512_add_ps(one, z));
    *dlogit = _mm512_mul_ps(_mm512_sub_ps(sig, y), grad_scale);
    return l;
}

static inline __m512d add_halves_pd(__m512d acc, __m512 v) {
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}

static double bce_with_logits(float *dlogits, const float *logits, const float *targets, long n,
                              float grad_scale) {
    const __m512 gs = _mm512_set1_ps(grad_scale);
    __m512d acc = _mm512_setzero_pd();
    long i = 0;
    for (; i + W <= n; i += W) {
        __m512 d;
        __m512 l = bce16(&d, _mm512_loadu_ps(logits + i), _mm512_loadu_ps(targets + i), gs);
        _mm512_storeu_ps(dlogits + i, d);
        acc = add_halves_pd(acc, l);
    }
    if (i < n) {
        __mmask16 tail = simd_tail_mask16(n - i);
        __m512 d;
        __m512 l = bce16(&d, load_tail(logits + i, tail), load_tail(targets + i, tail), gs);
        store_tail(dlogits + i, tail, d);
        acc = add_halves_pd(acc, _mm512_maskz_mov_ps(tail, l));
    }
    return _mm512_reduce_add_pd(acc);
}

// One vector of AdamW, in the order of the scalar kernel (torch.optim.AdamW single tensor):
// exact sqrt and divisions, no reciprocal approximations.
struct adamw16 {
    __m512 decay, step_size, bc2_sqrt, eps, beta1, one_minus_beta1, beta2, one_minus_beta2, grad_scale;
};

static inline void adamw16(const struct adamw16 *k, __m512 *w, __m512 *m, __m512 *v, __m512 grad) {
    __m512 g = _mm512_mul_ps(grad, k->grad_scale);
    *m = _mm512_fmadd_ps(k->beta1, *m, _mm512_mul_ps(k->one_minus_beta1, g));
    *v = _mm512_fmadd_ps(k->beta2, *v, _mm512_mul_ps(_mm512_mul_ps(k->one_minus_beta2, g), g));
    __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(*v), k->bc2_sqrt), k->eps);
    *w = _mm512_fnmadd_ps(k->step_size, _mm512_div_ps(*m, denom), _mm512_mul_ps(*w, k->decay));
}

static void adamw_update(float *w, float *m, float *v, const float *grad, long n, float lr,
                         float beta1, float beta2, float eps, float weight_decay,
                         float bias_correction1, float bias_correction2, float grad_scale) {
    const struct adamw16 k = {
        .decay = _mm512_set1_ps(1.0f - lr * weight_decay),
        .step_size = _mm512_set1_ps(lr / bias_correction1),
        .bc2_sqrt = _mm512_set1_ps(sqrtf(bias_correction2)),
        .eps = _mm512_set1_ps(eps),
        .beta1 = _mm512_set1_ps(beta1),
        .one_minus_beta1 = _mm512_set1_ps(1.0f - beta1),
        .beta2 = _mm512_set1_ps(beta2),
        .one_minus_beta2 = _mm512_set1_ps(1.0f - beta2),
        .grad_scale = _mm512_set1_ps(grad_scale),
    };
    long i = 0;
    for (; i + W <= n; i += W) {
        __m512 vw = _mm512_loadu_ps(w + i), vm = _mm512_loadu_ps(m + i), vv = _mm512_loadu_ps(v + i);
        adamw16(&k, &vw, &vm, &vv, _mm512_loadu_ps(grad + i));
        _mm512_storeu_ps(w + i, vw);
        _mm512_storeu_ps(m + i, vm);
        _mm512_storeu_ps(v + i, vv);
    }
    if (i < n) {
        __mmask16 tail = simd_tail_mask16(n - i);
        __m512 vw = load_tail(w + i, tail), vm = load_tail(m + i, tail), vv = load_tail(v + i, tail);
        adamw16(&k, &vw, &vm, &vv, load_tail(grad + i, tail));
        store_tail(w + i, tail, vw);
        store_tail(m + i, tail, vm);
        store_tail(v + i, tail, vv);
    }
}

static void ema_update(float *ema, const float *w, long n, float momentum) {
    const __m512 keep = _mm512_set1_ps(1.0f - momentum), mom = _mm512_set1_ps(momentum);
    long i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(ema + i, _mm512_fmadd_ps(keep, _mm512_loadu_ps(ema + i), _mm512_mul_ps(mom, _mm512_loadu_ps(w + i))));
    if (i < n) {
        __mmask16 tail = simd_tail_mask16(n - i);
        store_tail(ema + i, tail, _mm512_fmadd_ps(keep, load_tail(ema + i, tail), _mm512_mul_ps(mom, load_tail(w + i, tail))));
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
        __m512 u = n - i >= W ? _mm512_loadu_ps(x + i) : load_tail(x + i, simd_tail_mask16(n - i));
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
