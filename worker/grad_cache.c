#include "worker/grad_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"

void grad_cache_init(struct grad_cache *c, int max_rows, int image_floats, int context, int dim) {
    memset(c, 0, sizeof *c);
    c->max_rows = max_rows;
    c->image_floats = image_floats;
    c->context = context;
    c->dim = dim;
    const size_t R = (size_t)(max_rows > 0 ? max_rows : 1);
    c->micro_begin = xcalloc(R + 2, sizeof(int));
    c->images = xaligned_alloc(R * (size_t)image_floats * sizeof(float));
    c->ids = xaligned_alloc(R * (size_t)context * sizeof(int32_t));
    c->image_emb = xaligned_alloc(R * (size_t)dim * sizeof(float));
    c->text_emb = xaligned_alloc(R * (size_t)dim * sizeof(float));
    c->dimage = xaligned_alloc(R * (size_t)dim * sizeof(float));
    c->dtext = xaligned_alloc(R * (size_t)dim * sizeof(float));
}

void grad_cache_free(struct grad_cache *c) {
    free(c->micro_begin);
    free(c->images);
    free(c->ids);
    free(c->image_emb);
    free(c->text_emb);
    free(c->dimage);
    free(c->dtext);
    memset(c, 0, sizeof *c);
}

void grad_cache_reset(struct grad_cache *c) {
    c->rows = 0;
    c->micros = 0;
    c->micro_begin[0] = 0;
}

void grad_cache_keep(struct grad_cache *c, const float *images, const int32_t *ids,
                     const float *image_emb, const float *text_emb, int rows) {
    CATLIP_ASSERT(rows >= 0 && c->rows + rows <= c->max_rows && c->micros <= c->max_rows);
    const size_t r = (size_t)c->rows, n = (size_t)rows;
    memcpy(c->images + r * c->image_floats, images, n * c->image_floats * sizeof(float));
    memcpy(c->ids + r * c->context, ids, n * c->context * sizeof(int32_t));
    memcpy(c->image_emb + r * c->dim, image_emb, n * c->dim * sizeof(float));
    memcpy(c->text_emb + r * c->dim, text_emb, n * c->dim * sizeof(float));
    c->rows += rows;
    c->micro_begin[++c->micros] = c->rows;
}
