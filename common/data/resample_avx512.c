// AVX-512 variant of resample_chw_transposed_avx2 (resample_avx2.c; see there for the layout):
// strips of 16 output rows, so that a transposed column of the strip is one 512-bit vector,
// and each vertical step covers 16 source columns. Every lane runs the same FMA chain as the
// AVX2 path (taps in order, from 0), so the two give identical results. Needs S % 16 == 0.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "data/resample.h"
#include "data/resample_passes.h"

// Two 8x8 transposes at once, one per 256-bit half: r[k] = [A row k | B row k] becomes
// [A column k | B column k].
static inline void transpose8x2(__m512 r[8]) {
    const __m512i lo = _mm512_set_epi32(27, 26, 25, 24, 11, 10, 9, 8, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i hi = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 23, 22, 21, 20, 7, 6, 5, 4);
    __m512 t0 = _mm512_unpacklo_ps(r[0], r[1]), t1 = _mm512_unpackhi_ps(r[0], r[1]);
    __m512 t2 = _mm512_unpacklo_ps(r[2], r[3]), t3 = _mm512_unpackhi_ps(r[2], r[3]);
    __m512 t4 = _mm512_unpacklo_ps(r[4], r[5]), t5 = _mm512_unpackhi_ps(r[4], r[5]);
    __m512 t6 = _mm512_unpacklo_ps(r[6], r[7]), t7 = _mm512_unpackhi_ps(r[6], r[7]);
    __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xee);
    __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xee);
    __m512 u4 = _mm512_shuffle_ps(t4, t6, 0x44), u5 = _mm512_shuffle_ps(t4, t6, 0xee);
    __m512 u6 = _mm512_shuffle_ps(t5, t7, 0x44), u7 = _mm512_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm512_permutex2var_ps(u0, lo, u4);
    r[1] = _mm512_permutex2var_ps(u1, lo, u5);
    r[2] = _mm512_permutex2var_ps(u2, lo, u6);
    r[3] = _mm512_permutex2var_ps(u3, lo, u7);
    r[4] = _mm512_permutex2var_ps(u0, hi, u4);
    r[5] = _mm512_permutex2var_ps(u1, hi, u5);
    r[6] = _mm512_permutex2var_ps(u2, hi, u6);
    r[7] = _mm512_permutex2var_ps(u3, hi, u7);
}

// r[k] = sum_t w[k][t] * base[k][t * stride + j .. j + 15]; a masked load of the columns in m
// when `masked` (a constant: plain loads are cheaper).
static inline __attribute__((always_inline)) void
vertical_block(__m512 r[8], const uint8_t *const base[8], const float *const w[8], size_t j, size_t stride,
               int taps, __mmask16 m, int masked) {
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        const uint8_t *s = base[k] + j;
        __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int t = 0; t < taps; t++, s += stride) {
            __m128i b = masked ? _mm_maskz_loadu_epi8(m, s) : _mm_loadu_si128((const __m128i *)s);
            acc = _mm512_fmadd_ps(_mm512_set1_ps(w[k][t]), _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)), acc);
        }
        r[k] = acc;
    }
}

// Vertical pass for output rows yb + kb .. yb + kb + 7 (kb = 0 or 8) into lanes kb .. kb + 7 of
// the strip T[c][col][16]: 16 source columns per vector, transposed in two 8x8 halves.
static inline __attribute__((always_inline)) void
vertical_half(float *T, const uint8_t *pixels, size_t stride, const struct resample_axis *ay, int y0, int kb,
              int ncols, int taps) {
    size_t n = (size_t)ncols * 3;
    const uint8_t *base[8];
    const float *w[8];
    for (int k = 0; k < 8; k++) {
        base[k] = pixels + (size_t)ay->first[y0 + k] * stride;
        w[k] = ay->weights + (size_t)(y0 + k) * (size_t)ay->ksize;
    }
    // Blocks of 16 columns; the last one loads only the columns left (masked) and stores only
    // those.
    for (size_t j = 0; j < n; j += 16) {
        size_t left = n - j < 16 ? n - j : 16;
        __m512 r[8];
        if (left == 16)
            vertical_block(r, base, w, j, stride, taps, 0xffff, 0);
        else
            vertical_block(r, base, w, j, stride, taps, (__mmask16)((1u << left) - 1), 1);
        transpose8x2(r);  // r[k] = [column j + k | column j + 8 + k], rows y0 .. y0 + 7
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            size_t ja = j + (size_t)k, jb = ja + 8;
            if ((size_t)k < left)
                _mm256_storeu_ps(T + ((ja % 3) * (size_t)ncols + ja / 3) * 16 + kb, _mm512_castps512_ps256(r[k]));
            if ((size_t)k + 8 < left)
                _mm256_storeu_ps(T + ((jb % 3) * (size_t)ncols + jb / 3) * 16 + kb, _mm512_extractf32x8_ps(r[k], 1));
        }
    }
}

// Horizontal pass for the strip: per channel, 8 output columns x 16 rows, transposed back in
// two 8x8 halves and stored as rows.
static inline __attribute__((always_inline)) void
horizontal_strip16(float *out, const float *T, const struct resample_axis *ax, int col0, int ncols, int S, int yb,
                   int flip, const float scale[3], const float shift[3], int taps) {
    const __m512i reverse = _mm512_set_epi32(8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    size_t Sz = (size_t)S;
    for (int c = 0; c < 3; c++) {
        __m512 sc = _mm512_set1_ps(scale[c]), sh = _mm512_set1_ps(shift[c]);
        float *plane = out + (size_t)c * Sz * Sz + (size_t)yb * Sz;
        const float *Tc = T + (size_t)c * (size_t)ncols * 16;
        for (int xb = 0; xb < S; xb += 8) {
            __m512 r[8];
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                int x = xb + k;
                const float *w = ax->weights + (size_t)x * (size_t)ax->ksize;
                const float *col = Tc + (size_t)(ax->first[x] - col0) * 16;
                __m512 acc = _mm512_setzero_ps();
#pragma GCC unroll 8
                for (int t = 0; t < taps; t++)
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(col + 16 * t), acc);
                r[k] = acc;
            }
            transpose8x2(r);  // r[k] = [row yb + k | row yb + 8 + k], columns xb .. xb + 7
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512 v = _mm512_fmadd_ps(r[k], sc, sh);
                float *dst = plane + (size_t)k * Sz;
                if (flip) {
                    v = _mm512_permutexvar_ps(reverse, v);
                    dst += S - 8 - xb;
                } else {
                    dst += xb;
                }
                _mm256_storeu_ps(dst, _mm512_castps512_ps256(v));
                _mm256_storeu_ps(dst + 8 * Sz, _mm512_extractf32x8_ps(v, 1));
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

// As resample_chw_transposed_avx2 with 16-row strips: T holds ncols * 3 * 16 floats.
void resample_chw_transposed_avx512(float *out, float *T, const uint8_t *pixels, size_t stride,
                                    const struct resample_axis *ay, const struct resample_axis *ax, int col0,
                                    int ncols, int S, int flip, const float scale[3], const float shift[3]) {
    for (int yb = 0; yb < S; yb += 16) {
#define VERTICAL(K)                                                 \
    do {                                                            \
        vertical_half(T, pixels, stride, ay, yb, 0, ncols, K);     \
        vertical_half(T, pixels, stride, ay, yb + 8, 8, ncols, K); \
    } while (0)
#define HORIZONTAL(K) horizontal_strip16(out, T, ax, col0, ncols, S, yb, flip, scale, shift, K)
        TAPS_SWITCH(VERTICAL, ay->taps)
        TAPS_SWITCH(HORIZONTAL, ax->taps)
#undef VERTICAL
#undef HORIZONTAL
    }
}
