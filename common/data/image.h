// An 8-bit RGB image in memory: rows of width*3 bytes (R, G, B interleaved), top to bottom.
#pragma once
#include <stddef.h>
#include <stdint.h>

struct image {
    uint8_t *pixels;  // (height, width, 3)
    int width, height;
    size_t capacity;  // bytes allocated at pixels; reused across decodes
};

// Makes room for width*height*3 bytes (keeps the buffer when it is big enough).
void image_reserve(struct image *img, int width, int height);
void image_free(struct image *img);
