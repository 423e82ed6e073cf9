#include "data/jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>
// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "core/check.h"

// libjpeg reports errors through a callback that must not return: jump back to the caller.
struct region_error {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int truncated;  // a "premature end of data" warning was issued
};

struct jpeg_codec {
    tjhandle decoder;
    struct jpeg_decompress_struct region;  // libjpeg decoder for jpeg_decode_region
    struct region_error region_error;
    unsigned char *region_rows;            // scratch for CMYK rows
    size_t region_rows_capacity;
    tjhandle encoder;
    unsigned char *cmyk;  // scratch for CMYK decodes
    size_t cmyk_capacity;
};

static void region_error_exit(j_common_ptr cinfo) {
    struct region_error *e = (struct region_error *)cinfo->err;
    longjmp(e->jump, 1);
}

static void region_emit_message(j_common_ptr cinfo, int level) {
    struct region_error *e = (struct region_error *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

struct jpeg_codec *jpeg_codec_create(void) {
    struct jpeg_codec *c = xcalloc(1, sizeof *c);
    c->decoder = tjInitDecompress();
    if (!c->decoder) catlip_die("cannot initialise TurboJPEG: %s", tjGetErrorStr2(NULL));
    c->region.err = jpeg_std_error(&c->region_error.mgr);
    c->region_error.mgr.error_exit = region_error_exit;
    c->region_error.mgr.emit_message = region_emit_message;
    jpeg_create_decompress(&c->region);
    return c;
}

void jpeg_codec_destroy(struct jpeg_codec *c) {
    if (!c) return;
    tjDestroy(c->decoder);
    jpeg_destroy_decompress(&c->region);
    free(c->region_rows);
    if (c->encoder) tjDestroy(c->encoder);
    free(c->cmyk);
    free(c);
}

// After some errors a TurboJPEG 2.1 handle keeps failing on good data: start a fresh one.
static void reset_decoder(struct jpeg_codec *c) {
    tjDestroy(c->decoder);
    c->decoder = tjInitDecompress();
    if (!c->decoder) catlip_die("cannot initialise TurboJPEG: %s", tjGetErrorStr2(NULL));
}

int jpeg_read_info(struct jpeg_codec *c, const void *data, size_t size, struct jpeg_info *info) {
    if (size == 0) return catlip_error_set("empty image (0 bytes)");
    if (size > (size_t)0xffffffffUL) return catlip_error_set("image of %zu bytes is too large", size);
    int w, h, subsamp, colorspace;
    if (tjDecompressHeader3(c->decoder, data, (unsigned long)size, &w, &h, &subsamp, &colorspace) != 0) {
        catlip_error_set("not a readable JPEG: %s", tjGetErrorStr2(c->decoder));
        reset_decoder(c);
        return -1;
    }
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

// Whether the JPEG has several scans (progressive): libjpeg then holds the DCT coefficients of
// the whole full-size image (~2 bytes a sample) whatever the output scale, so the pixel limit
// applies to the source. A header libjpeg cannot read counts as such.
static int has_multiple_scans(struct jpeg_codec *c, const void *data, size_t size) {
    if (setjmp(c->region_error.jump)) {
        jpeg_abort_decompress(&c->region);
        return 1;
    }
    jpeg_mem_src(&c->region, data, (unsigned long)size);
    jpeg_read_header(&c->region, TRUE);
    int multiple = jpeg_has_multiple_scans(&c->region);
    jpeg_abort_decompress(&c->region);
    return multiple;
}

static int refuse_multiscan(int w, int h) {
    return catlip_error_set("progressive JPEG of %dx%d pixels is larger than the %ld-pixel limit "
                            "(decoding it at any scale holds the whole image)",
                            w, h, (long)JPEG_MAX_PIXELS);
}

int jpeg_decode_rgb(struct jpeg_codec *c, const void *data, size_t size, int denom, struct image *out) {
    struct jpeg_info info;
    if (jpeg_read_info(c, data, size, &info) != 0) return -1;
    if ((long)info.width * (long)info.height > JPEG_MAX_PIXELS && has_multiple_scans(c, data, size))
        return refuse_multiscan(info.width, info.height);
    if (denom != 1 && denom != 2 && denom != 4 && denom != 8) denom = 1;
    int w = jpeg_scaled_size(info.width, denom), h = jpeg_scaled_size(info.height, denom);
    if ((long)w * (long)h > JPEG_MAX_PIXELS)
        return catlip_error_set("JPEG of %dx%d pixels is larger than the %ld-pixel limit", w, h,
                                (long)JPEG_MAX_PIXELS);
    image_reserve(out, w, h);
    if (info.components != 4) {
        if (tjDecompress2(c->decoder, data, (unsigned long)size, out->pixels, w, w * 3, h, TJPF_RGB, 0) != 0 &&
            warning_is_fatal(c->decoder)) {
            catlip_error_set("JPEG decode failed: %s", tjGetErrorStr2(c->decoder));
            reset_decoder(c);
            return -1;
        }
        return 0;
    }
    size_t need = (size_t)w * (size_t)h * 4;
    if (need > c->cmyk_capacity) {
        free(c->cmyk);
        c->cmyk = xmalloc(need);
        c->cmyk_capacity = need;
    }
    if (tjDecompress2(c->decoder, data, (unsigned long)size, c->cmyk, w, w * 4, h, TJPF_CMYK, 0) != 0 &&
        warning_is_fatal(c->decoder)) {
        catlip_error_set("CMYK JPEG decode failed: %s", tjGetErrorStr2(c->decoder));
        reset_decoder(c);
        return -1;
    }
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

// A complete JPEG ends with an EOI marker (FF D9), possibly followed by trailing bytes.
static int has_end_marker(const unsigned char *p, size_t size) {
    for (size_t i = size; i >= 2; i--)
        if (p[i - 2] == 0xff && p[i - 1] == 0xd9) return 1;
    return 0;
}

static void cmyk_row_to_rgb(uint8_t *dst, const unsigned char *src, int width) {
    for (int x = 0; x < width; x++, src += 4, dst += 3) {
        unsigned k = src[3];
        for (int ch = 0; ch < 3; ch++) {
            unsigned t = src[ch] * k + 128;
            dst[ch] = (uint8_t)((t + (t >> 8)) >> 8);
        }
    }
}

struct region_request {
    const void *data;
    size_t size;
    int denom, x0, y0, x1, y1;
    struct image *out;
    int origin_x, origin_y;
};

// The libjpeg part of jpeg_decode_region; errors longjmp to the caller's setjmp.
static int decode_region_libjpeg(struct jpeg_codec *c, struct region_request *q) {
    struct jpeg_decompress_struct *d = &c->region;
    c->region_error.truncated = 0;
    jpeg_mem_src(d, q->data, (unsigned long)q->size);
    jpeg_read_header(d, TRUE);
    if ((long)d->image_width * (long)d->image_height > JPEG_MAX_PIXELS && jpeg_has_multiple_scans(d)) {
        jpeg_abort_decompress(d);
        return refuse_multiscan((int)d->image_width, (int)d->image_height);
    }
    int cmyk = d->jpeg_color_space == JCS_CMYK || d->jpeg_color_space == JCS_YCCK;
    d->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    d->scale_num = 1;
    d->scale_denom = (unsigned)q->denom;
    d->dct_method = JDCT_ISLOW;
    d->do_fancy_upsampling = TRUE;
    jpeg_calc_output_dimensions(d);
    int W = (int)d->output_width, H = (int)d->output_height;
    if ((long)W * (long)H > JPEG_MAX_PIXELS) {
        jpeg_abort_decompress(d);
        return catlip_error_set("JPEG of %dx%d pixels is larger than the %ld-pixel limit", W, H,
                                (long)JPEG_MAX_PIXELS);
    }
    int x0 = q->x0 < 0 ? 0 : q->x0, y0 = q->y0 < 0 ? 0 : q->y0;
    int x1 = q->x1 > W ? W : q->x1, y1 = q->y1 > H ? H : q->y1;
    if (x0 > W - 1) x0 = W - 1;
    if (y0 > H - 1) y0 = H - 1;
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1;
    jpeg_start_decompress(d);
    JDIMENSION xoff = (JDIMENSION)x0, width = (JDIMENSION)(x1 - x0);
    if (x0 > 0 || x1 < W) jpeg_crop_scanline(d, &xoff, &width);
    if (y0 > 0) jpeg_skip_scanlines(d, (JDIMENSION)y0);
    int rows = c->region_error.truncated ? 0 : y1 - y0;  // the data ran out: stop (a bomb's rows)
    image_reserve(q->out, (int)width, rows);
    if (cmyk && (size_t)width * 4 > c->region_rows_capacity) {
        free(c->region_rows);
        c->region_rows_capacity = (size_t)width * 4;
        c->region_rows = xmalloc(c->region_rows_capacity);
    }
    for (int r = 0; r < rows; r++) {
        uint8_t *dst = q->out->pixels + (size_t)r * width * 3;
        JSAMPROW row = cmyk ? c->region_rows : dst;
        if (jpeg_read_scanlines(d, &row, 1) != 1 || c->region_error.truncated) break;
        if (cmyk) cmyk_row_to_rgb(dst, c->region_rows, (int)width);
    }
    int truncated = c->region_error.truncated || (int)d->output_scanline < y1;
    jpeg_abort_decompress(d);
    if (truncated) return catlip_error_set("JPEG data is truncated (premature end of data)");
    q->origin_x = (int)xoff;
    q->origin_y = y0;
    return 0;
}

// The setjmp that libjpeg's errors return to; nothing here changes after it.
static int decode_region_guarded(struct jpeg_codec *c, struct region_request *q) {
    if (setjmp(c->region_error.jump)) {
        char msg[JMSG_LENGTH_MAX];
        c->region_error.mgr.format_message((j_common_ptr)&c->region, msg);
        jpeg_abort_decompress(&c->region);
        return catlip_error_set("JPEG decode failed: %s", msg);
    }
    return decode_region_libjpeg(c, q);
}

int jpeg_decode_region(struct jpeg_codec *c, const void *data, size_t size, int denom, int x0, int y0,
                       int x1, int y1, struct image *out, int *origin_x, int *origin_y) {
    struct jpeg_info info;
    if (jpeg_read_info(c, data, size, &info) != 0) return -1;
    if (!has_end_marker(data, size)) return catlip_error_set("JPEG is truncated (no end-of-image marker)");
    struct region_request q = {data, size, (denom == 2 || denom == 4 || denom == 8) ? denom : 1,
                               x0, y0, x1, y1, out, 0, 0};
    if (decode_region_guarded(c, &q) != 0) return -1;
    *origin_x = q.origin_x;
    *origin_y = q.origin_y;
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
