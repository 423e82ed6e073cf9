// The two passes of resample_to_chw (resample.c), in the variants picked at run time.
// Internal to resample.c, resample_avx2.c and resample_avx512.c.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/resample.h"

// rows[y][j] = sum_t wy[t] * pixels[(first_y + t) * stride + j], j < n.
void resample_vertical_avx2(float *rows, const uint8_t *pixels, size_t stride, const struct resample_axis *ay,
                            size_t n);
// out[c][y][x'] = (sum over ksize taps of wx * rows[y][(first_x - col0 + t) * 3 + c]) * scale + shift.
void resample_horizontal_chw_avx2(float *out, const float *rows, const struct resample_axis *ax, int col0,
                                  int ncols, int S, int flip, const float scale[3], const float shift[3]);
// Both passes, in strips of 8 rows whose vertical result is stored transposed in T
// (ncols * 3 * 8 floats); S % 8 == 0.
void resample_chw_transposed_avx2(float *out, float *T, const uint8_t *pixels, size_t stride,
                                  const struct resample_axis *ay, const struct resample_axis *ax, int col0,
                                  int ncols, int S, int flip, const float scale[3], const float shift[3]);
// The same with AVX-512 and strips of 16 rows (T: ncols * 3 * 16 floats); S % 16 == 0.
void resample_chw_transposed_avx512(float *out, float *T, const uint8_t *pixels, size_t stride,
                                    const struct resample_axis *ay, const struct resample_axis *ax, int col0,
                                    int ncols, int S, int flip, const float scale[3], const float shift[3]);
