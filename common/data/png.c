#include "data/png.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "data/jpeg.h"

int png_is_png(const void *data, size_t size) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return size >= 8 && memcmp(data, sig, 8) == 0;
}

int png_decode_rgb(const void *data, size_t size, struct image *out) {
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, data, size))
        return catlip_error_set("not a readable PNG: %s", png.message);
    if ((long)png.width * (long)png.height > JPEG_MAX_PIXELS || png.width == 0 || png.height == 0) {
        png_image_free(&png);
        return catlip_error_set("PNG of %ux%u pixels is outside the accepted size", png.width, png.height);
    }
    png.format = PNG_FORMAT_RGBA;
    size_t n = (size_t)png.width * png.height;
    unsigned char *rgba = malloc(n * 4);
    if (!rgba) {
        png_image_free(&png);
        return catlip_error_set("out of memory decoding a %ux%u PNG", png.width, png.height);
    }
    if (!png_image_finish_read(&png, NULL, rgba, 0, NULL)) {
        free(rgba);
        return catlip_error_set("PNG decode failed: %s", png.message);
    }
    image_reserve(out, (int)png.width, (int)png.height);
    for (size_t i = 0; i < n; i++) memcpy(out->pixels + i * 3, rgba + i * 4, 3);
    free(rgba);
    return 0;
}
