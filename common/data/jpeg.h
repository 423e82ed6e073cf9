// JPEG decoding and encoding with libjpeg-turbo's TurboJPEG API.
//
// Decoding always yields 8-bit RGB: grayscale JPEGs are expanded, CMYK/YCCK JPEGs (Adobe,
// stored inverted as Photoshop writes them) are converted as PIL does,
// R = (255 - C)(255 - K) / 255. Decoding uses the accurate integer IDCT and fancy upsampling,
// the same as PIL, so full-size results match PIL's to within rounding.
//
// DCT-domain downscaling: jpeg_pick_scale() gives the largest 1/d (d in 1, 2, 4, 8) that keeps
// a region of the source at least as large as needed; the IDCT then produces the smaller image
// directly, which is several times cheaper than decoding at full size and resizing.
//
// A codec holds TurboJPEG handles and is used by one thread at a time.
#pragma once
#include <stddef.h>

#include "data/image.h"

// Decoded images larger than this many pixels are refused (decompression bombs).
#define JPEG_MAX_PIXELS (128L * 1024 * 1024)

struct jpeg_codec;

struct jpeg_info {
    int width, height;
    int components;  // 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK
};

struct jpeg_codec *jpeg_codec_create(void);
void jpeg_codec_destroy(struct jpeg_codec *codec);

// Reads the header. Returns 0, or -1 with catlip_error() describing why it is not a JPEG.
int jpeg_read_info(struct jpeg_codec *codec, const void *data, size_t size, struct jpeg_info *info);

// 1, 2, 4 or 8: the largest d such that a (region_w, region_h) region of the full-size image
// is still at least (need_w, need_h) after the image is decoded at 1/d.
int jpeg_pick_scale(double region_w, double region_h, double need_w, double need_h);
// The size of a w x h JPEG decoded at 1/denom (rounded up, as libjpeg does).
int jpeg_scaled_size(int size, int denom);

// Decodes to RGB at 1/denom of full size into out (reusing its buffer). Returns 0, or -1 with
// catlip_error() set: corrupt or truncated data ("Premature end" is an error, not a gray
// image), unsupported format, or too many pixels.
int jpeg_decode_rgb(struct jpeg_codec *codec, const void *data, size_t size, int denom,
                    struct image *out);

// Decodes only what covers the region [x0, x1) x [y0, y1) of the image decoded at 1/denom
// (coordinates in that scaled image, clamped to it), with libjpeg-turbo's libjpeg API: rows
// above the region are skipped without IDCT, rows below are never decoded, and columns outside
// it (rounded out to whole iMCUs) skip the IDCT and colour conversion. out holds the decoded
// rectangle, whose top-left corner is at (*origin_x, *origin_y) of the scaled image; it covers
// the requested region. Pixels of the region equal jpeg_decode_rgb()'s except within one pixel
// of a rounded-out edge (chroma upsampling sees no neighbour there), so callers ask for a
// margin. Data without an end-of-image marker counts as truncated. Same errors as above.
int jpeg_decode_region(struct jpeg_codec *codec, const void *data, size_t size, int denom,
                       int x0, int y0, int x1, int y1, struct image *out, int *origin_x, int *origin_y);

// Encodes RGB (4:2:0, given quality 1..100). *jpeg is allocated by TurboJPEG and released
// with jpeg_free_buffer(). Returns 0, or -1 with catlip_error().
int jpeg_encode_rgb(struct jpeg_codec *codec, const struct image *img, int quality,
                    unsigned char **jpeg, size_t *jpeg_size);
void jpeg_free_buffer(unsigned char *jpeg);
