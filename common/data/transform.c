#include "data/transform.h"

#include <math.h>
#include <string.h>

#include "core/check.h"

void transform_ctx_init(struct transform_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    ctx->codec = jpeg_codec_create();
}

void transform_ctx_free(struct transform_ctx *ctx) {
    jpeg_codec_destroy(ctx->codec);
    image_free(&ctx->decoded);
    resample_scratch_free(&ctx->scratch);
    memset(ctx, 0, sizeof *ctx);
}

enum transform_result transform_jpeg(struct transform_ctx *ctx, const void *data, size_t size,
                                     const struct augment_options *opt, const float mean[3],
                                     const float std[3], uint64_t seed, uint64_t epoch,
                                     uint64_t sample, float *out) {
    if (size == 0) {
        catlip_error_set("empty image (0 bytes)");
        return TRANSFORM_EMPTY;
    }
    struct jpeg_info info;
    if (jpeg_read_info(ctx->codec, data, size, &info) != 0) return TRANSFORM_BAD_IMAGE;
    if (info.width < TRANSFORM_MIN_SIDE || info.height < TRANSFORM_MIN_SIDE) {
        catlip_error_set("image of %dx%d is smaller than %dx%d", info.width, info.height,
                         TRANSFORM_MIN_SIDE, TRANSFORM_MIN_SIDE);
        return TRANSFORM_TOO_SMALL;
    }
    struct crop_box box;
    augment_plan(opt, info.width, info.height, seed, epoch, sample, &box);
    int S = opt->image_size;
    if (ctx->full_decode) {
        if (jpeg_decode_rgb(ctx->codec, data, size, 1, &ctx->decoded) != 0) return TRANSFORM_BAD_IMAGE;
        resample_to_chw(out, &ctx->decoded, box.x0, box.y0, box.x1, box.y1, S, box.flip, mean, std,
                        &ctx->scratch);
        return TRANSFORM_OK;
    }
    int denom = jpeg_pick_scale(box.x1 - box.x0, box.y1 - box.y0, S, S);
    int sw = jpeg_scaled_size(info.width, denom), sh = jpeg_scaled_size(info.height, denom);
    double fx = (double)sw / info.width, fy = (double)sh / info.height;
    double bx0 = box.x0 * fx, bx1 = box.x1 * fx, by0 = box.y0 * fy, by1 = box.y1 * fy;
    // The filter reads up to `support` source pixels beyond the box; one more for rounding.
    double support_x = fmax((bx1 - bx0) / S, 1.0), support_y = fmax((by1 - by0) / S, 1.0);
    int rx0 = (int)floor(bx0 - support_x) - 1, rx1 = (int)ceil(bx1 + support_x) + 1;
    int ry0 = (int)floor(by0 - support_y) - 1, ry1 = (int)ceil(by1 + support_y) + 1;
    int ox, oy;
    if (jpeg_decode_region(ctx->codec, data, size, denom, rx0, ry0, rx1, ry1, &ctx->decoded, &ox, &oy) != 0)
        return TRANSFORM_BAD_IMAGE;
    // Resampling the decoded rectangle with the box shifted by its origin reads exactly the
    // pixels that resampling the whole scaled image would, except where the box's filter
    // reaches the image border, where both clamp the same way (the rectangle then touches it).
    resample_to_chw(out, &ctx->decoded, bx0 - ox, by0 - oy, bx1 - ox, by1 - oy, S, box.flip, mean, std,
                    &ctx->scratch);
    return TRANSFORM_OK;
}
