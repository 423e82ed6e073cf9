#include "data/jpeg.h"

#include <string.h>
#include <turbojpeg.h>

#include "core/check.h"

struct jpeg_codec {
    tjhandle decoder;
    tjhandle encoder;
    unsigned char *cmyk;  // scratch for CMYK decodes
    size_t cmyk_capacity;
};

struct jpeg_codec *jpeg_codec_create(void) {
    struct jpeg_codec *c = xcalloc(1, sizeof *c);
    c->decoder = tjInitDecompress();
    if (!c->decoder) catlip_die("cannot initialise TurboJPEG: %s", tjGetErrorStr2(NULL));
    return c;
}

void jpeg_codec_destroy(struct jpeg_codec *c) {
    if (!c) return;
    tjDestroy(c->decoder);
    if (c->encoder) tjDestroy(c->encoder);
    free(c->cmyk);
    free(c);
}

int jpeg_read_info(struct jpeg_codec *c, const void *data, size_t size, struct jpeg_info *info) {
    if (size == 0) return catlip_error_set("empty image (0 bytes)");
    if (size > (size_t)0xffffffffUL) return catlip_error_set("image of %zu bytes is too large", size);
    int w, h, subsamp, colorspace;
    if (tjDecompressHeader3(c->decoder, data, (unsigned long)size, &w, &h, &subsamp, &colorspace) != 0)
        return catlip_error_set("not a readable JPEG: %s", tjGetErrorStr2(c->decoder));
    if (w <= 0 || h <= 0) return catlip_error_set("JPEG has no pixels (%dx%d)", w, h);
    info->width = w;
    info->height = h;
    info->components = colorspace == TJCS_GRAY ? 1 : (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) ? 4 : 3;
    return 0;
}

int jpeg_pick_scale(double region_w, double region_h, double need_w, double need_h) {
    int denom = 1;
    for (int d = 2; d <= 8; d *= 2)
        if (region_w / d >= need_w && region_h / d >= need_h) denom = d;
    return denom;
}

int jpeg_scaled_size(int size, int denom) { return (size + denom - 1) / denom; }

// libjpeg turns a truncated stream into gray rows with a warning; that must not pass as an image.
static int warning_is_fatal(tjhandle h) {
    const char *msg = tjGetErrorStr2(h);
    return tjGetErrorCode(h) == TJERR_FATAL || strstr(msg, "Premature end") != NULL;
}

int jpeg_decode_rgb(struct jpeg_codec *c, const void *data, size_t size, int denom, struct image *out) {
    struct jpeg_info info;
    if (jpeg_read_info(c, data, size, &info) != 0) return -1;
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8) denom = 1;
    int w = jpeg_scaled_size(info.width, denom), h = jpeg_scaled_size(info.height, denom);
    if ((long)w * (long)h > JPEG_MAX_PIXELS)
        return catlip_error_set("JPEG of %dx%d pixels is larger than the %ld-pixel limit", w, h,
                                (long)JPEG_MAX_PIXELS);
    image_reserve(out, w, h);
    if (info.components != 4) {
        if (tjDecompress2(c->decoder, data, (unsigned long)size, out->pixels, w, w * 3, h, TJPF_RGB, 0) != 0 &&
            warning_is_fatal(c->decoder))
            return catlip_error_set("JPEG decode failed: %s", tjGetErrorStr2(c->decoder));
        return 0;
    }
    size_t need = (size_t)w * (size_t)h * 4;
    if (need > c->cmyk_capacity) {
        free(c->cmyk);
        c->cmyk = xmalloc(need);
        c->cmyk_capacity = need;
    }
    if (tjDecompress2(c->decoder, data, (unsigned long)size, c->cmyk, w, w * 4, h, TJPF_CMYK, 0) != 0 &&
        warning_is_fatal(c->decoder))
        return catlip_error_set("CMYK JPEG decode failed: %s", tjGetErrorStr2(c->decoder));
    // TurboJPEG returns the stored (Adobe-inverted) values s = 255 - ink, so
    // R = (255 - C)(255 - K)/255 = sC * sK / 255, rounded as PIL's MULDIV255.
    const unsigned char *src = c->cmyk;
    uint8_t *dst = out->pixels;
    for (size_t i = 0, n = (size_t)w * (size_t)h; i < n; i++, src += 4, dst += 3) {
        unsigned k = src[3];
        for (int ch = 0; ch < 3; ch++) {
            unsigned t = src[ch] * k + 128;
            dst[ch] = (uint8_t)((t + (t >> 8)) >> 8);
        }
    }
    return 0;
}

int jpeg_encode_rgb(struct jpeg_codec *c, const struct image *img, int quality, unsigned char **jpeg,
                    size_t *jpeg_size) {
    if (!c->encoder) {
        c->encoder = tjInitCompress();
        if (!c->encoder) return catlip_error_set("cannot initialise the TurboJPEG encoder");
    }
    unsigned char *buf = NULL;
    unsigned long len = 0;
    if (tjCompress2(c->encoder, img->pixels, img->width, img->width * 3, img->height, TJPF_RGB, &buf,
                    &len, TJSAMP_420, quality, TJFLAG_ACCURATEDCT) != 0) {
        tjFree(buf);
        return catlip_error_set("JPEG encode failed: %s", tjGetErrorStr2(c->encoder));
    }
    *jpeg = buf;
    *jpeg_size = len;
    return 0;
}

void jpeg_free_buffer(unsigned char *jpeg) { tjFree(jpeg); }
