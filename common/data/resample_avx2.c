// AVX2 + FMA passes of resample.c (see there for the formulas); picked at run time.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "data/resample.h"
#include "data/resample_passes.h"

void resample_vertical_avx2(float *rows, const uint8_t *pixels, size_t stride, const struct resample_axis *ay,
                            size_t n) {
    for (int y = 0; y < ay->out_size; y++) {
        float *dst = rows + (size_t)y * n;
        const float *w = ay->weights + (size_t)y * (size_t)ay->ksize;
        const uint8_t *base = pixels + (size_t)ay->first[y] * stride;
        int taps = ay->count[y];
        size_t j = 0;
        for (; j + 32 <= n; j += 32) {
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int t = 0; t < taps; t++) {
                const uint8_t *s = base + (size_t)t * stride + j;
                __m256 wt = _mm256_set1_ps(w[t]);
                __m128i b0 = _mm_loadu_si128((const __m128i *)s), b1 = _mm_loadu_si128((const __m128i *)(s + 16));
                a0 = _mm256_fmadd_ps(wt, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b0)), a0);
                a1 = _mm256_fmadd_ps(wt, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b0, 8))), a1);
                a2 = _mm256_fmadd_ps(wt, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b1)), a2);
                a3 = _mm256_fmadd_ps(wt, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(b1, 8))), a3);
            }
            _mm256_storeu_ps(dst + j, a0);
            _mm256_storeu_ps(dst + j + 8, a1);
            _mm256_storeu_ps(dst + j + 16, a2);
            _mm256_storeu_ps(dst + j + 24, a3);
        }
        for (; j < n; j++) {
            float acc = 0;
            for (int t = 0; t < taps; t++) acc += w[t] * (float)base[(size_t)t * stride + j];
            dst[j] = acc;
        }
    }
}

// Two output pixels per step: pixel x in the low 128 bits, x + 1 in the high ones, each lane
// group holding R, G, B and one ignored float.
void resample_horizontal_chw_avx2(float *out, const float *rows, const struct resample_axis *ax, int col0,
                                  int ncols, int S, int flip, const float scale[3], const float shift[3]) {
    size_t plane = (size_t)S * (size_t)S;
    int taps = ax->ksize;
    for (int y = 0; y < S; y++) {
        const float *row = rows + (size_t)y * (size_t)ncols * 3;
        float *o0 = out + (size_t)y * S, *o1 = o0 + plane, *o2 = o1 + plane;
        for (int x = 0; x < S; x += 2) {
            int x1 = x + 1 < S ? x + 1 : x;
            const float *w0 = ax->weights + (size_t)x * (size_t)taps, *w1 = ax->weights + (size_t)x1 * (size_t)taps;
            const float *p0 = row + (size_t)(ax->first[x] - col0) * 3, *p1 = row + (size_t)(ax->first[x1] - col0) * 3;
            __m256 acc = _mm256_setzero_ps();
            for (int t = 0; t < taps; t++) {
                __m256 v = _mm256_set_m128(_mm_loadu_ps(p1 + 3 * t), _mm_loadu_ps(p0 + 3 * t));
                __m256 wt = _mm256_set_m128(_mm_set1_ps(w1[t]), _mm_set1_ps(w0[t]));
                acc = _mm256_fmadd_ps(wt, v, acc);
            }
            float v[8];
            _mm256_storeu_ps(v, acc);
            int ox = flip ? S - 1 - x : x;
            o0[ox] = v[0] * scale[0] + shift[0];
            o1[ox] = v[1] * scale[1] + shift[1];
            o2[ox] = v[2] * scale[2] + shift[2];
            if (x1 != x) {
                int ox1 = flip ? S - 1 - x1 : x1;
                o0[ox1] = v[4] * scale[0] + shift[0];
                o1[ox1] = v[5] * scale[1] + shift[1];
                o2[ox1] = v[6] * scale[2] + shift[2];
            }
        }
    }
}

// 8x8 transpose of r[0..7] in place.
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Vertical pass for output rows yb .. yb + 7 into the transposed strip T (see below). `taps`
// is a compile-time constant in the specialised copies, so the tap loop unrolls.
static inline __attribute__((always_inline)) void
vertical_strip(float *T, const uint8_t *pixels, size_t stride, const struct resample_axis *ay, int yb, int ncols,
               int taps) {
    size_t n = (size_t)ncols * 3, n8 = n & ~(size_t)7;
    const uint8_t *base[8];
    const float *w[8];
    for (int k = 0; k < 8; k++) {
        base[k] = pixels + (size_t)ay->first[yb + k] * stride;
        w[k] = ay->weights + (size_t)(yb + k) * (size_t)ay->ksize;
    }
    for (size_t j = 0; j < n8; j += 8) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            const uint8_t *s = base[k] + j;
            __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 8
            for (int t = 0; t < taps; t++, s += stride)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(w[k][t]),
                                      _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)s))), acc);
            r[k] = acc;
        }
        transpose8(r);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            size_t jk = j + (size_t)k, row = (jk % 3) * (size_t)ncols + jk / 3;
            _mm256_storeu_ps(T + row * 8, r[k]);
        }
    }
    for (size_t j = n8; j < n; j++)
        for (int k = 0; k < 8; k++) {
            float acc = 0;
            for (int t = 0; t < taps; t++) acc += w[k][t] * (float)base[k][(size_t)t * stride + j];
            T[((j % 3) * (size_t)ncols + j / 3) * 8 + (size_t)k] = acc;
        }
}

// Horizontal pass for the strip: an 8 x 8 tile of (x, y) per channel, transposed back into rows.
static inline __attribute__((always_inline)) void
horizontal_strip(float *out, const float *T, const struct resample_axis *ax, int col0, int ncols, int S, int yb,
                 int flip, const float scale[3], const float shift[3], int taps) {
    const __m256i reverse = _mm256_set_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t Sz = (size_t)S;
    for (int c = 0; c < 3; c++) {
        __m256 sc = _mm256_set1_ps(scale[c]), sh = _mm256_set1_ps(shift[c]);
        float *plane = out + (size_t)c * Sz * Sz + (size_t)yb * Sz;
        const float *Tc = T + (size_t)c * (size_t)ncols * 8;
        for (int xb = 0; xb < S; xb += 8) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                int x = xb + k;
                const float *w = ax->weights + (size_t)x * (size_t)ax->ksize;
                const float *col = Tc + (size_t)(ax->first[x] - col0) * 8;
                __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 8
                for (int t = 0; t < taps; t++)
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(w[t]), _mm256_loadu_ps(col + 8 * t), acc);
                r[k] = acc;
            }
            transpose8(r);  // r[k] = row yb + k, columns xb .. xb + 7
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m256 v = _mm256_fmadd_ps(r[k], sc, sh);
                float *dst = plane + (size_t)k * Sz;
                if (flip)
                    _mm256_storeu_ps(dst + (S - 8 - xb), _mm256_permutevar8x32_ps(v, reverse));
                else
                    _mm256_storeu_ps(dst + xb, v);
            }
        }
    }
}

#define TAPS_SWITCH(call, taps)  \
    switch (taps) {              \
    case 2: call(2); break;      \
    case 3: call(3); break;      \
    case 4: call(4); break;      \
    case 5: call(5); break;      \
    case 6: call(6); break;      \
    case 7: call(7); break;      \
    default: call(taps); break;  \
    }

// Both passes with the vertical result kept transposed, so that the horizontal pass also runs
// along contiguous memory (8 output rows per vector) instead of gathering taps pixel by pixel.
// The work goes in strips of 8 output rows, so the transposed strip (ncols * 3 * 8 floats)
// stays in L1/L2:
//   T[c][col][k] = sum_t wy[y][t] * pixels[first_y + t][col * 3 + c]     y = yb + k, k < 8
//   out[c][y][x'] = (sum_t wx[x][t] * T[c][first_x - col0 + t][k]) * scale + shift
// (channel planes keep a pixel's taps in neighbouring rows). Every output has `taps` taps
// (resample_axis_plan pads them), all inside the image. Needs S % 8 == 0. T holds
// ncols * 3 * 8 floats.
void resample_chw_transposed_avx2(float *out, float *T, const uint8_t *pixels, size_t stride,
                                  const struct resample_axis *ay, const struct resample_axis *ax, int col0,
                                  int ncols, int S, int flip, const float scale[3], const float shift[3]) {
    for (int yb = 0; yb < S; yb += 8) {
#define VERTICAL(K) vertical_strip(T, pixels, stride, ay, yb, ncols, K)
#define HORIZONTAL(K) horizontal_strip(out, T, ax, col0, ncols, S, yb, flip, scale, shift, K)
        TAPS_SWITCH(VERTICAL, ay->taps)
        TAPS_SWITCH(HORIZONTAL, ax->taps)
#undef VERTICAL
#undef HORIZONTAL
    }
}
