#include "data/image_file.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"
#include "data/png.h"

// catlip_error() prefixed with `what` (copied first: the error buffer is both source and target).
static int error_prefixed(const char *what, const char *middle) {
    char cause[512];
    snprintf(cause, sizeof cause, "%s", catlip_error());
    return catlip_error_set("%s: %s%s", what, middle, cause);
}

// Images larger than this are not read (the JPEG decoder also refuses decompression bombs).
#define IMAGE_FILE_MAX_BYTES (256L << 20)

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return catlip_error_set("%s: cannot open", path), NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            if (cap >= (size_t)IMAGE_FILE_MAX_BYTES) {
                fclose(f);
                free(buf);
                return catlip_error_set("%s: larger than %ld MiB", path,
                                        IMAGE_FILE_MAX_BYTES >> 20),
                       NULL;
            }
            buf = xrealloc(buf, cap *= 2);
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return catlip_error_set("%s: read error", path), NULL;
    }
    *size = n;
    return buf;
}

int image_file_transform(struct transform_ctx *ctx, const char *path, int image_size,
                         const float mean[3], const float std[3], float *out) {
    size_t size;
    unsigned char *data = read_all(path, &size);
    if (!data) return -1;
    struct augment_options opt = {.train = 0, .image_size = image_size};
    augment_options_defaults(&opt);
    int rc = 0;
    if (png_is_png(data, size)) {
        if (png_decode_rgb(data, size, &ctx->decoded) != 0)
            rc = error_prefixed(path, "");
        else if (ctx->decoded.width < TRANSFORM_MIN_SIDE ||
                 ctx->decoded.height < TRANSFORM_MIN_SIDE)
            rc = catlip_error_set("%s: image of %dx%d is too small", path, ctx->decoded.width,
                                  ctx->decoded.height);
        else {
            struct crop_box box;
            augment_plan(&opt, ctx->decoded.width, ctx->decoded.height, 0, 0, 0, &box);
            resample_to_chw(out, &ctx->decoded, box.x0, box.y0, box.x1, box.y1, image_size, 0, mean,
                            std, &ctx->scratch);
        }
    } else if (transform_jpeg(ctx, data, size, &opt, mean, std, 0, 0, 0, out) != TRANSFORM_OK) {
        rc = error_prefixed(path, "");
    }
    free(data);
    return rc;
}
