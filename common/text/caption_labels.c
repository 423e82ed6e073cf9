#include "text/caption_labels.h"

int caption_labels(void *ctx, const char *caption, size_t len, int32_t *out, int max) {
    const struct caption_labels *cl = ctx;
    struct synset_hit hits[64];
    int n = labeler_label(cl->labeler, caption, len, hits, 64);
    if (n < 0) return -1;
    int count = 0;
    for (int i = 0; i < n && count < max; i++) {
        int index = vocab_index_offset(cl->vocab, hits[i].offset);
        if (index < 0) continue;
        int seen = 0;
        for (int j = 0; j < count; j++) seen |= out[j] == index;
        if (!seen) out[count++] = index;
    }
    return count;
}
