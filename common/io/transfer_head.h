// Transfer head files: a downstream classifier head written by `catlip transfer` and read by
// `catlip eval zeroshot --head` and by fine-tuning (model.head_init: transfer).
//
// Format: safetensors (safetensors.h) with two F32 tensors and string metadata:
//   "head.weight"  (K, C)  one row per class, in classes-file order
//   "head.bias"    (K)
//   __metadata__: "format": "catlip-transfer-head", "classes": a JSON array (as text) of the
//   K class names, "synsets": a JSON array of K arrays of the synset ids whose rows were used
//   (empty: a random row), "how": a JSON array of K strings (id, name, caption, random),
//   "vocab_hash": the pretrained vocabulary's hash as 16 hex digits, "checkpoint": its path.
// The tensor names are timm's, so the file also loads into a timm model's head directly.
#pragma once
#include <stdint.h>

#include "text/transfer.h"

// Writes the head (weight (K, C), bias (K)) and the classes' report as above.
// Returns -1 with catlip_error() on error.
int transfer_head_write(const char *path, const struct transfer_class *classes, int K, int C,
                        const float *weight, const float *bias, uint64_t vocab_hash,
                        const char *checkpoint);

// Reads a head for a model of width `dim`: *num_classes = K, *weight (K, dim) and *bias (K)
// malloc'ed; names (may be NULL) gets K malloc'ed class names in a malloc'ed array (free each,
// then the array). Returns 0, or -1 with catlip_error() naming the file and the problem (not
// a transfer head, width different from dim, shapes that disagree).
int transfer_head_load(const char *path, int *num_classes, int dim, float **weight, float **bias,
                       char ***names);
