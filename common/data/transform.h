// One image sample from encoded bytes to the model's input: decode (only the region the crop
// needs, at the smallest DCT scale that keeps it at least output-sized), crop, resize, flip,
// normalise. See augment.h for the geometry and resample.h for the filter.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/augment.h"
#include "data/image.h"
#include "data/jpeg.h"
#include "data/resample.h"

// Images smaller than this on either side are skipped (too little signal to crop from).
#define TRANSFORM_MIN_SIDE 8

enum transform_result {
    TRANSFORM_OK = 0,
    TRANSFORM_EMPTY,      // zero bytes
    TRANSFORM_BAD_IMAGE,  // not decodable (corrupt, truncated, unsupported, too many pixels)
    TRANSFORM_TOO_SMALL,  // a side below TRANSFORM_MIN_SIDE
};

// Per-thread state (decoder handles and buffers, reused).
struct transform_ctx {
    struct jpeg_codec *codec;
    struct image decoded;
    struct resample_scratch scratch;
    int full_decode;  // 1: decode the whole image at full size (reference path for tests)
};

void transform_ctx_init(struct transform_ctx *ctx);
void transform_ctx_free(struct transform_ctx *ctx);

// out: (3, S, S) with S = opt->image_size. On anything but TRANSFORM_OK, catlip_error() says
// why and out is untouched.
enum transform_result transform_jpeg(struct transform_ctx *ctx, const void *data, size_t size,
                                     const struct augment_options *opt, const float mean[3],
                                     const float std[3], uint64_t seed, uint64_t epoch,
                                     uint64_t sample, float *out);
