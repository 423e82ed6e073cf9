// Resampling an RGB image region to a new size with a bilinear (triangle) filter whose support
// grows with the shrink factor, so shrinking averages every source pixel under an output pixel
// (area-correct, no aliasing) and enlarging is plain bilinear interpolation. This is the filter
// and pixel-centre convention of PIL's Image.resize(size, BILINEAR, box=...) and of
// torchvision's antialiased resize.
//
// The region is a box of real-valued source coordinates (x0, y0, x1, y1), pixel centres at
// +0.5, so crops need not fall on pixel boundaries (as after DCT-domain downscaling).
#pragma once
#include <stdint.h>

#include "data/image.h"

// Per-axis filter taps: output i reads `count[i]` source pixels from `first[i]` with weights
// weights[i*ksize ...] (summing to 1). Every output has the same count, `taps` (the widest
// output's; narrower ones are padded with zero weights and moved inside the image), so that
// kernels can run fixed-length loops.
struct resample_axis {
    int out_size, ksize, taps;
    int *first, *count;
    float *weights;  // (out_size, ksize)
    int capacity_out, capacity_k;
};

// Buffers reused across calls (one per thread).
struct resample_scratch {
    struct resample_axis x, y;
    float *rows;  // vertical pass output: (out_h, region columns * 3)
    size_t rows_capacity;
};

void resample_axis_plan(struct resample_axis *axis, int in_size, double box0, double box1, int out_size);
void resample_scratch_free(struct resample_scratch *scratch);

// The box of src resized to (out_size x out_size), optionally mirrored left-right, then
// normalised per channel, (v/255 - mean[c]) / std[c], into planar float.
// out: (3, out_size, out_size)
void resample_to_chw(float *out, const struct image *src, double x0, double y0, double x1, double y1,
                     int out_size, int flip, const float mean[3], const float std[3],
                     struct resample_scratch *scratch);

// The whole of src resized to (out_w, out_h) 8-bit RGB (rounded, clamped), e.g. to cap the
// longer side before re-encoding. dst must not alias src.
void resample_rgb(struct image *dst, const struct image *src, int out_w, int out_h,
                  struct resample_scratch *scratch);
