#include "data/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/cpu.h"
#include "data/resample_passes.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static double triangle(double x) {
    if (x < 0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

// PIL's precompute_coeffs for the bilinear filter (support 1).
void resample_axis_plan(struct resample_axis *a, int in_size, double box0, double box1, int out_size) {
    CATLIP_ASSERT(out_size > 0 && in_size > 0 && box1 > box0);
    double scale = (box1 - box0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    if (out_size > a->capacity_out) {
        free(a->first);
        free(a->count);
        a->first = xmalloc((size_t)out_size * sizeof *a->first);
        a->count = xmalloc((size_t)out_size * sizeof *a->count);
        a->capacity_out = out_size;
        a->capacity_k = 0;
    }
    if (ksize > a->capacity_k) {
        // Room for capacity_out rows, so that a later call with more rows (up to capacity_out)
        // and no more taps still fits.
        free(a->weights);
        a->weights = xmalloc((size_t)a->capacity_out * (size_t)ksize * sizeof *a->weights);
        a->capacity_k = ksize;
    }
    a->out_size = out_size;
    a->ksize = ksize;
    double ss = 1.0 / filterscale;
    for (int i = 0; i < out_size; i++) {
        double center = box0 + (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        if (lo >= in_size) lo = in_size - 1;  // boxes at the very edge keep one tap
        if (hi <= lo) hi = lo + 1;
        int n = hi - lo;
        if (n > ksize) n = ksize;
        double k[64], sum = 0;
        double *wts = n <= 64 ? k : xmalloc((size_t)n * sizeof *wts);
        for (int t = 0; t < n; t++) {
            wts[t] = triangle((t + lo - center + 0.5) * ss);
            sum += wts[t];
        }
        float *dst = a->weights + (size_t)i * (size_t)ksize;
        for (int t = 0; t < ksize; t++) dst[t] = 0.0f;
        if (sum == 0.0) {
            // The box lies outside the image's pixel centres: take the nearest pixel.
            dst[0] = 1.0f;
            n = 1;
        } else {
            for (int t = 0; t < n; t++) dst[t] = (float)(wts[t] / sum);
        }
        if (wts != k) free(wts);
        a->first[i] = lo;
        a->count[i] = n;
    }
    // Same tap count everywhere: pad with zero weights, keeping every tap inside the image
    // (count <= in_size, so moving `first` down always fits).
    int taps = 0;
    for (int i = 0; i < out_size; i++)
        if (a->count[i] > taps) taps = a->count[i];
    for (int i = 0; i < out_size; i++) {
        float *w = a->weights + (size_t)i * (size_t)ksize;
        int shift = a->first[i] + taps - in_size;
        if (shift > 0) {
            for (int t = a->count[i] - 1; t >= 0; t--) w[t + shift] = w[t];
            for (int t = 0; t < shift; t++) w[t] = 0.0f;
            a->first[i] -= shift;
        }
        a->count[i] = taps;
    }
    a->taps = taps;
}

void resample_scratch_free(struct resample_scratch *s) {
    struct resample_axis *axes[2] = {&s->x, &s->y};
    for (int i = 0; i < 2; i++) {
        free(axes[i]->first);
        free(axes[i]->count);
        free(axes[i]->weights);
    }
    free(s->rows);
    memset(s, 0, sizeof *s);
}

// Vertical pass: rows[y][j] = sum_t wy[t] * src[first_y + t][col0*3 + j] for j < ncols*3.
// Blocks of 16 columns with a fixed trip count keep the sums in vector registers (GCC
// vectorises fixed-length loops even at -O2's cheap cost model).
enum { VBLOCK = 16 };
static void vertical_pass(float *rows, const struct image *src, const struct resample_axis *ay,
                          int col0, int ncols) {
    size_t stride = (size_t)src->width * 3, n = (size_t)ncols * 3;
    for (int y = 0; y < ay->out_size; y++) {
        float *restrict dst = rows + (size_t)y * n;
        const float *w = ay->weights + (size_t)y * (size_t)ay->ksize;
        const uint8_t *base = src->pixels + (size_t)ay->first[y] * stride + (size_t)col0 * 3;
        int taps = ay->count[y];
        size_t j = 0;
        for (; j + VBLOCK <= n; j += VBLOCK) {
            float acc[VBLOCK] = {0};
            for (int t = 0; t < taps; t++) {
                const uint8_t *s = base + (size_t)t * stride + j;
                float wt = w[t];
                for (int k = 0; k < VBLOCK; k++) acc[k] += wt * (float)s[k];
            }
            for (int k = 0; k < VBLOCK; k++) dst[j + k] = acc[k];
        }
        for (; j < n; j++) {
            float acc = 0;
            for (int t = 0; t < taps; t++) acc += w[t] * (float)base[(size_t)t * stride + j];
            dst[j] = acc;
        }
    }
}

static void plan_both(struct resample_scratch *s, const struct image *src, double x0, double y0,
                      double x1, double y1, int out_w, int out_h, int *col0, int *ncols) {
    resample_axis_plan(&s->x, src->width, x0, x1, out_w);
    resample_axis_plan(&s->y, src->height, y0, y1, out_h);
    int lo = src->width, hi = 0;
    for (int i = 0; i < out_w; i++) {
        if (s->x.first[i] < lo) lo = s->x.first[i];
        if (s->x.first[i] + s->x.count[i] > hi) hi = s->x.first[i] + s->x.count[i];
    }
    *col0 = lo;
    *ncols = hi - lo;
    // Padding: the horizontal pass always runs ksize taps (the extra ones weigh 0) and loads 4
    // floats at a pixel's 3, so it may read 3 * ksize + 4 floats past the last row. The buffer
    // is zeroed when allocated and only ever holds finite values, so 0 * padding stays 0.
    size_t need = (size_t)out_h * (size_t)*ncols * 3 + 3 * (size_t)s->x.ksize + 4;
    if (need > s->rows_capacity) {
        free(s->rows);
        s->rows = xcalloc(need, sizeof *s->rows);
        s->rows_capacity = need;
    }
}

// Horizontal pass with normalisation and flip: out[c][y][x'] = sum over `taps` (= ksize; the
// weights past a pixel's own count are 0) of wx * rows[y][...], scaled and shifted.
// Inlined with a constant `taps` for the common sizes so the tap loop unrolls.
static inline __attribute__((always_inline)) void
horizontal_pass_chw(float *out, const float *rows, const struct resample_axis *ax, int col0, int ncols,
                    int S, int flip, const float scale[3], const float shift[3], int taps) {
    size_t plane = (size_t)S * (size_t)S;
    for (int y = 0; y < S; y++) {
        const float *row = rows + (size_t)y * (size_t)ncols * 3;
        float *o0 = out + (size_t)y * S, *o1 = o0 + plane, *o2 = o1 + plane;
        for (int x = 0; x < S; x++) {
            const float *w = ax->weights + (size_t)x * (size_t)ax->ksize;
            const float *p = row + (size_t)(ax->first[x] - col0) * 3;
            int ox = flip ? S - 1 - x : x;
#if defined(__SSE2__)
            // One 4-lane multiply-add per tap covers R, G, B (the 4th lane is ignored).
            __m128 acc = _mm_setzero_ps();
            for (int t = 0; t < taps; t++)
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(w[t]), _mm_loadu_ps(p + 3 * t)));
            float v[4];
            _mm_storeu_ps(v, acc);
#else
            float v[3] = {0, 0, 0};
            for (int t = 0; t < taps; t++)
                for (int c = 0; c < 3; c++) v[c] += w[t] * p[3 * t + c];
#endif
            o0[ox] = v[0] * scale[0] + shift[0];
            o1[ox] = v[1] * scale[1] + shift[1];
            o2[ox] = v[2] * scale[2] + shift[2];
        }
    }
}

void resample_to_chw(float *out, const struct image *src, double x0, double y0, double x1, double y1,
                     int S, int flip, const float mean[3], const float std[3], struct resample_scratch *s) {
    int col0, ncols;
    plan_both(s, src, x0, y0, x1, y1, S, S, &col0, &ncols);
    // CATLIP_ISA means what it means for the nn kernels (core/cpu.h).
    int isa = cpu_isa_chosen(), avx2 = isa >= CPU_ISA_AVX2;
    float scale[3], shift[3];
    for (int c = 0; c < 3; c++) {
        scale[c] = 1.0f / (255.0f * std[c]);
        shift[c] = -mean[c] / std[c];
    }
    if (isa == CPU_ISA_AVX512 && S % 16 == 0) {
        resample_chw_transposed_avx512(out, s->rows, src->pixels + (size_t)col0 * 3, (size_t)src->width * 3,
                                       &s->y, &s->x, col0, ncols, S, flip, scale, shift);
        return;
    }
    if (avx2 && S % 8 == 0) {
        resample_chw_transposed_avx2(out, s->rows, src->pixels + (size_t)col0 * 3, (size_t)src->width * 3, &s->y,
                                     &s->x, col0, ncols, S, flip, scale, shift);
        return;
    }
    if (avx2)
        resample_vertical_avx2(s->rows, src->pixels + (size_t)col0 * 3, (size_t)src->width * 3, &s->y,
                               (size_t)ncols * 3);
    else
        vertical_pass(s->rows, src, &s->y, col0, ncols);
    const struct resample_axis *ax = &s->x;
    if (avx2) {
        resample_horizontal_chw_avx2(out, s->rows, ax, col0, ncols, S, flip, scale, shift);
        return;
    }
    switch (ax->ksize) {  // fixed tap counts unroll fully
    case 3: horizontal_pass_chw(out, s->rows, ax, col0, ncols, S, flip, scale, shift, 3); break;
    case 5: horizontal_pass_chw(out, s->rows, ax, col0, ncols, S, flip, scale, shift, 5); break;
    case 7: horizontal_pass_chw(out, s->rows, ax, col0, ncols, S, flip, scale, shift, 7); break;
    default: horizontal_pass_chw(out, s->rows, ax, col0, ncols, S, flip, scale, shift, ax->ksize); break;
    }
}

void resample_rgb(struct image *dst, const struct image *src, int out_w, int out_h,
                  struct resample_scratch *s) {
    int col0, ncols;
    plan_both(s, src, 0, 0, src->width, src->height, out_w, out_h, &col0, &ncols);
    vertical_pass(s->rows, src, &s->y, col0, ncols);
    image_reserve(dst, out_w, out_h);
    const struct resample_axis *ax = &s->x;
    for (int y = 0; y < out_h; y++) {
        const float *row = s->rows + (size_t)y * (size_t)ncols * 3;
        uint8_t *o = dst->pixels + (size_t)y * (size_t)out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const float *w = ax->weights + (size_t)x * (size_t)ax->ksize;
            const float *p = row + (size_t)(ax->first[x] - col0) * 3;
            float acc[3] = {0, 0, 0};
            for (int t = 0; t < ax->count[x]; t++, p += 3)
                for (int c = 0; c < 3; c++) acc[c] += w[t] * p[c];
            for (int c = 0; c < 3; c++) {
                float v = acc[c] + 0.5f;
                o[x * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}
