// Vectorised exp, erf and log1p for the AVX2 and AVX-512 kernels.
//
// Included from files compiled with different -m flags (kernels_avx2.c: -mavx2 -mfma;
// kernels_avx512.c: -mavx512f/bw/dq/vl as well), so each set is behind the matching
// feature macro and everything is static inline. The scalar reference uses libm.
//
// Accuracy, in ulps of the float result against libm in double over dense sweeps of 2M points
// (bench/kernels_accuracy.c prints these; tests/unit/test_kernels.c checks them through the
// kernels):
//   exp:   x in [-87.3, 88]: 1.25 ulp. x < ln(FLT_MIN) = -87.336 (including -inf): exactly 0,
//          flushed rather than denormal (no NaN, no slow denormal arithmetic). x > 88 is clamped
//          to 88 (the kernels only take exp of values <= 0). NaN propagates.
//   erf:   x in [-10, 10]: 2.34 ulp, relative accuracy kept down to tiny |x| (2.1 ulp on
//          [-1e-3, 1e-3]); |x| >= 4 gives exactly +-1. NaN propagates.
//   log1p: t in [0, 1] only (the BCE term log(1 + exp(-|x|))): 1.82 ulp.
//
// exp: Cephes expf. k = round(x / ln 2), r = x - k ln 2 (two-constant reduction with FMA),
//      exp(r) = 1 + r + r^2 P(r), result = exp(r) * 2^k built in the exponent bits.
// erf: erf is odd, so erf(x) = sign(x) * E(|x|). |x| in [0, 4) is cut into 8 intervals of
//      width 0.5; on each, E is a degree-7 polynomial in (|x| - centre), near-minimax (Lawson
//      iteration on 4000 points, then rounded to float). Interval 0 is centred at 0 with a zero
//      constant term and was fitted for relative error, so erf(x) ~ 2/sqrt(pi) x for tiny x.
//      An interval's coefficients are picked per lane with one permute per coefficient (the
//      tables have exactly 8 entries, one AVX2 register), so there is no branch and no blend.
// log1p: log1p(t) = t * Q(t) with Q a degree-9 polynomial fitted for relative error on [0, 1].
#pragma once

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>

// Polynomial coefficients shared by both instruction sets.
// erf: SIMD_ERF_COEF[k][i] is the coefficient of (|x| - SIMD_ERF_CENTRE[i])^k on interval i.
static const float SIMD_ERF_CENTRE[8] = {0.0f, 0.75f, 1.25f, 1.75f, 2.25f, 2.75f, 3.25f, 3.75f};
static const float SIMD_ERF_COEF[8][8] = {
    {0.000000000e+00f, 7.111556530e-01f, 9.229001403e-01f, 9.866716862e-01f, 9.985373020e-01f,
     9.998993874e-01f, 9.999957085e-01f, 9.999998808e-01f},
    {1.128379226e+00f, 6.429310441e-01f, 2.365211248e-01f, 5.277499557e-02f, 7.142319344e-03f,
     5.862773396e-04f, 2.918900100e-05f, 8.814262173e-07f},
    {-1.631723762e-06f, -4.821981490e-01f, -2.956517339e-01f, -9.235620499e-02f,
     -1.607015729e-02f, -1.612267341e-03f, -9.486932686e-05f, -3.306070539e-06f},
    {-3.760762215e-01f, 2.678815462e-02f, 1.675359309e-01f, 9.015743434e-02f, 2.172449417e-02f,
     2.760376548e-03f, 1.958139910e-04f, 7.970661500e-06f},
    {-5.749667762e-04f, 1.506757587e-01f, -6.132054143e-03f, -4.810548946e-02f,
     -1.908825338e-02f, -3.257713048e-03f, -2.861695248e-04f, -1.378542493e-05f},
    {1.159175485e-01f, -5.321076885e-02f, -4.718795419e-02f, 6.617027335e-03f, 1.066066977e-02f,
     2.756412374e-03f, 3.135854204e-04f, 1.831938243e-05f},
    {-8.076276630e-03f, -2.658423409e-02f, 2.059793286e-02f, 9.049125016e-03f, -2.779596020e-03f,
     -1.667822246e-03f, -2.737574105e-04f, -2.069227048e-05f},
    {-1.792976074e-02f, 1.782741025e-02f, 3.757909872e-03f, -5.919789895e-03f,
     -7.271105424e-04f, 6.346995360e-04f, 1.739937434e-04f, 1.724233152e-05f},
};
// log1p(t) / t on [0, 1], coefficients of t^0 .. t^9.
#define SIMD_LOG1P_C0 1.000000000e+00f
#define SIMD_LOG1P_C1 -4.999990165e-01f
#define SIMD_LOG1P_C2 3.332996368e-01f
#define SIMD_LOG1P_C3 -2.495413870e-01f
#define SIMD_LOG1P_C4 1.967595816e-01f
#define SIMD_LOG1P_C5 -1.530562788e-01f
#define SIMD_LOG1P_C6 1.060369238e-01f
#define SIMD_LOG1P_C7 -5.695973709e-02f
#define SIMD_LOG1P_C8 1.985149644e-02f
#define SIMD_LOG1P_C9 -3.244018415e-03f

// exp (Cephes expf).
#define SIMD_EXP_HI 88.0f
#define SIMD_EXP_LO -87.33654475f  // ln(FLT_MIN): below it the result is flushed to 0
#define SIMD_LOG2E 1.44269504088896341f
#define SIMD_LN2_HI 0.693359375f  // ln 2 = LN2_HI + LN2_LO, LN2_HI with few bits
#define SIMD_LN2_LO -2.12194440e-4f
#define SIMD_EXP_P0 1.9875691500e-4f
#define SIMD_EXP_P1 1.3981999507e-3f
#define SIMD_EXP_P2 8.3334519073e-3f
#define SIMD_EXP_P3 4.1665795894e-2f
#define SIMD_EXP_P4 1.6666665459e-1f
#define SIMD_EXP_P5 5.0000001201e-1f
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __m256 simd_exp8(__m256 x) {
    // max/min take the second operand when either is NaN: x second, so NaN propagates.
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(SIMD_EXP_LO), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_set1_ps(SIMD_EXP_HI), x);
    x = _mm256_max_ps(_mm256_set1_ps(SIMD_EXP_LO), x);
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(SIMD_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(SIMD_LN2_HI), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(SIMD_LN2_LO), r);
    __m256 p = _mm256_set1_ps(SIMD_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SIMD_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SIMD_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SIMD_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SIMD_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(SIMD_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^k for k in [-126, 127]: (k + 127) << 23 as float bits.
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(underflow, y);
}

static inline __m256 simd_erf8(__m256 x) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    __m256 sign = _mm256_and_ps(x, sign_mask);
    __m256 a = _mm256_andnot_ps(sign_mask, x);
    a = _mm256_min_ps(_mm256_set1_ps(4.0f), a);  // NaN stays NaN
    __m256i idx = _mm256_cvttps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(2.0f)));
    idx = _mm256_min_epi32(idx, _mm256_set1_epi32(7));  // a = 4 belongs to the last interval
    __m256 u = _mm256_sub_ps(a, _mm256_permutevar8x32_ps(_mm256_loadu_ps(SIMD_ERF_CENTRE), idx));
    __m256 p = _mm256_permutevar8x32_ps(_mm256_loadu_ps(SIMD_ERF_COEF[7]), idx);
    for (int k = 6; k >= 0; k--)
        p = _mm256_fmadd_ps(p, u, _mm256_permutevar8x32_ps(_mm256_loadu_ps(SIMD_ERF_COEF[k]), idx));
    p = _mm256_min_ps(_mm256_set1_ps(1.0f), p);
    return _mm256_or_ps(p, sign);
}

// log1p(t) for t in [0, 1].
static inline __m256 simd_log1p_unit8(__m256 t) {
    __m256 q = _mm256_set1_ps(SIMD_LOG1P_C9);
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C8));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C7));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C6));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C5));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C4));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C3));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C2));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C1));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(SIMD_LOG1P_C0));
    return _mm256_mul_ps(q, t);
}

// Lanes [0, rem) set, for masked loads and stores of a tail of rem < 8 elements.
static inline __m256i simd_tail_mask8(long rem) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float simd_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float simd_hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline double simd_hsum4d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
#endif

#if defined(__AVX512F__)
static inline __m512 simd_exp16(__m512 x) {
    __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(SIMD_EXP_LO), _CMP_NLT_UQ);  // NaN: kept
    x = _mm512_min_ps(_mm512_set1_ps(SIMD_EXP_HI), x);
    x = _mm512_max_ps(_mm512_set1_ps(SIMD_EXP_LO), x);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(SIMD_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(SIMD_LN2_HI), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(SIMD_LN2_LO), r);
    __m512 p = _mm512_set1_ps(SIMD_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SIMD_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SIMD_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SIMD_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SIMD_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(SIMD_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(ok, p, _mm512_castsi512_ps(e));
}

static inline __m512 simd_erf16(__m512 x) {
    const __m512i sign_mask = _mm512_set1_epi32((int)0x80000000u);
    __m512i xi = _mm512_castps_si512(x);
    __m512i sign = _mm512_and_si512(xi, sign_mask);
    __m512 a = _mm512_castsi512_ps(_mm512_andnot_si512(sign_mask, xi));
    a = _mm512_min_ps(_mm512_set1_ps(4.0f), a);
    __m512i idx = _mm512_cvttps_epi32(_mm512_mul_ps(a, _mm512_set1_ps(2.0f)));
    idx = _mm512_min_epi32(idx, _mm512_set1_epi32(7));
    // The 8-entry tables broadcast to both halves; idx is in [0, 7] (NaN gives an index whose
    // low 4 bits are 0, harmless: the NaN flows through u).
#define SIMD_TABLE16(t) _mm512_broadcast_f32x8(_mm256_loadu_ps(t))
    __m512 u = _mm512_sub_ps(a, _mm512_permutexvar_ps(idx, SIMD_TABLE16(SIMD_ERF_CENTRE)));
    __m512 p = _mm512_permutexvar_ps(idx, SIMD_TABLE16(SIMD_ERF_COEF[7]));
    for (int k = 6; k >= 0; k--)
        p = _mm512_fmadd_ps(p, u, _mm512_permutexvar_ps(idx, SIMD_TABLE16(SIMD_ERF_COEF[k])));
#undef SIMD_TABLE16
    p = _mm512_min_ps(_mm512_set1_ps(1.0f), p);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(p), sign));
}

static inline __m512 simd_log1p_unit16(__m512 t) {
    __m512 q = _mm512_set1_ps(SIMD_LOG1P_C9);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C8));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C7));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C6));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C5));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C4));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C3));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C2));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C1));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(SIMD_LOG1P_C0));
    return _mm512_mul_ps(q, t);
}

// Lanes [0, rem) set, rem < 16.
static inline __mmask16 simd_tail_mask16(long rem) { return (__mmask16)((1u << rem) - 1u); }
#endif
