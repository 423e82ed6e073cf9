// Transfer Init against a loaded model: a classes file -> matched classes (text/transfer.h) ->
// head rows from the model's synset head, with the report table. Used by `catlip transfer`
// and `catlip eval zeroshot --classes`.
#pragma once
#include <stdio.h>

#include "model/inference.h"
#include "text/transfer.h"

struct transfer_head {
    int K, C;
    float *weight;                   // (K, C)
    float *bias;                     // (K)
    struct transfer_class *classes;  // (K)
};

// Needs m->vocab. Prints the report table (class, how matched, synsets used) to `report`
// unless NULL. Returns -1 with catlip_error() on error.
int transfer_head_from_classes(const struct inference_model *m, const char *classes_path,
                               const char *wordnet_dir, uint64_t seed, FILE *report,
                               struct transfer_head *out);
void transfer_head_free(struct transfer_head *h);
