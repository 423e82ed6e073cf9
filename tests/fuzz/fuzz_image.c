// libFuzzer target: image decoding and the sample transforms (data/jpeg.h, png.h,
// transform.h, image_file.h). The first two input bytes pick two output sizes (8..39) and the
// DCT scale; the rest is the image. Every path must give a finite output or a one-line error.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "data/image_file.h"
#include "data/jpeg.h"
#include "data/png.h"
#include "data/transform.h"
#include "tests/fuzz/fuzz_file.h"

static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};

static void check_finite(const float *out, int S) {
    for (int i = 0; i < 3 * S * S; i++)
        if (!isfinite(out[i])) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    if (size < 2) return 0;
    // Two output sizes: one context serves both, as a decoding thread's does across samples.
    int sizes[2] = {8 + (data[0] & 31), 8 + (data[1] & 31)}, denom = 1 << ((data[0] >> 5) & 3);
    data += 2, size -= 2;
    struct transform_ctx ctx;
    transform_ctx_init(&ctx);
    float *out = xmalloc(3 * 40 * 40 * sizeof *out);

    // Training (random resized crop, region decode) and evaluation transforms of a JPEG.
    for (int k = 0; k < 4; k++) {
        int S = sizes[k & 1];
        struct augment_options opt = {.train = k < 2, .image_size = S, .flip_probability = -1};
        augment_options_defaults(&opt);
        fuzz_error_clear();
        enum transform_result r = transform_jpeg(&ctx, data, size, &opt, MEAN, STD, 7, 1, size, out);
        if (r == TRANSFORM_OK) check_finite(out, S); else fuzz_error_check();
    }
    // Whole-image and region decoding at 1/denom.
    struct jpeg_info info;
    if (jpeg_read_info(ctx.codec, data, size, &info) == 0) {
        if (info.width <= 0 || info.height <= 0) __builtin_trap();
        int w = jpeg_scaled_size(info.width, denom), h = jpeg_scaled_size(info.height, denom);
        // Large legitimate images only cost time here; the limits themselves are tested by
        // the transforms above.
        if ((int64_t)w * h <= (4 << 20)) {
            fuzz_error_clear();
            if (jpeg_decode_rgb(ctx.codec, data, size, denom, &ctx.decoded) == 0) {
                if (ctx.decoded.width != w || ctx.decoded.height != h) __builtin_trap();
            } else {
                fuzz_error_check();
            }
            int ox, oy;
            fuzz_error_clear();
            if (jpeg_decode_region(ctx.codec, data, size, denom, w / 4, h / 3, w - w / 5, h, &ctx.decoded, &ox,
                                   &oy) == 0) {
                if (ox < 0 || oy < 0 || ox + ctx.decoded.width > w || oy + ctx.decoded.height > h) __builtin_trap();
            } else {
                fuzz_error_check();
            }
        }
    }
    if (png_is_png(data, size)) {
        fuzz_error_clear();
        if (png_decode_rgb(data, size, &ctx.decoded) == 0) {
            if (ctx.decoded.width <= 0 || ctx.decoded.height <= 0) __builtin_trap();
        } else {
            fuzz_error_check();
        }
    }
    // The file path of predict/embed/eval: JPEG or PNG, evaluation transform.
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    for (int k = 0; k < 2; k++) {
        fuzz_error_clear();
        if (image_file_transform(&ctx, path, sizes[k], MEAN, STD, out) == 0) check_finite(out, sizes[k]);
        else fuzz_error_check();
    }
    close(fd);
    free(out);
    transform_ctx_free(&ctx);
    return 0;
}
