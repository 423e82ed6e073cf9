#include "data/image.h"

#include <stdlib.h>

#include "core/check.h"

void image_reserve(struct image *img, int width, int height) {
    size_t need = (size_t)width * (size_t)height * 3;
    if (need > img->capacity) {
        free(img->pixels);
        img->pixels = xmalloc(need);
        img->capacity = need;
    }
    img->width = width;
    img->height = height;
}

void image_free(struct image *img) {
    free(img->pixels);
    img->pixels = NULL;
    img->capacity = 0;
    img->width = img->height = 0;
}
