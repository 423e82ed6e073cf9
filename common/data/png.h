// PNG decoding with libpng (its simplified API): any bit depth, palette, grey or alpha, to
// 8-bit RGB. Alpha is dropped, as PIL's convert("RGB") does.
#pragma once
#include <stddef.h>

#include "data/image.h"

// 1 when data starts with the PNG signature.
int png_is_png(const void *data, size_t size);
// Returns 0, or -1 with catlip_error() set (corrupt, truncated, too many pixels).
int png_decode_rgb(const void *data, size_t size, struct image *out);
