// Caption -> class indices of a vocabulary: the labeller's synsets that the vocabulary holds,
// each once, in the labeller's order. This is how a WebDataset caption becomes CatLIP's
// multi-hot target, in training and in evaluation alike.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "text/labeler.h"
#include "text/vocab.h"

struct caption_labels {
    struct labeler *labeler;
    const struct vocab *vocab;
};

// Matches data/pipeline.h's pipeline_label_fn: ctx is a struct caption_labels. Returns the
// number of indices written (0: no synset of the caption is in the vocabulary), or -1 when
// the labeller refuses the caption. Thread-safe: the labeller is, the vocabulary is read-only.
int caption_labels(void *ctx, const char *caption, size_t len, int32_t *out, int max);
