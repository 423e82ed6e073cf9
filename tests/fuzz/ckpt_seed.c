// Writes small real checkpoints through the checkpoint writer, as seeds for fuzz_checkpoint:
//   ckpt_seed DIR STEP TENSORS   DIR/ckpt-<STEP>.pb with TENSORS (1..4) small tensors
#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"
#include "io/checkpoint.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_seed DIR STEP TENSORS\n");
        return 2;
    }
    int64_t step = atoll(argv[2]);
    int count = atoi(argv[3]);
    if (count < 1 || count > 4) return 2;
    static const struct {
        Catlip__TensorChunk__Kind kind;
        const char *name;
        int ndim;
        int64_t shape[3];
    } tensors[4] = {
        {CATLIP__TENSOR_CHUNK__KIND__PARAM, "cls_token", 3, {1, 1, 4}},
        {CATLIP__TENSOR_CHUNK__KIND__PARAM, "head.weight", 2, {3, 4}},
        {CATLIP__TENSOR_CHUNK__KIND__ADAM_M, "head.bias", 1, {3}},
        {CATLIP__TENSOR_CHUNK__KIND__EMA, "head.bias", 1, {3}},
    };
    Catlip__ModelConfig model = CATLIP__MODEL_CONFIG__INIT;
    model.name = "vit_tiny";
    model.dim = 4;
    model.depth = 1;
    model.heads = 1;
    model.num_classes = 3;
    Catlip__DataPosition pos = CATLIP__DATA_POSITION__INIT;
    pos.step = step;
    pos.epoch = 1;
    Catlip__CheckpointHeader h = CATLIP__CHECKPOINT_HEADER__INIT;
    h.run_id = "seed";
    h.model = &model;
    h.position = &pos;
    h.seed = 1;
    h.config_yaml = "seed: 1\n";
    h.worker_count = 1;
    h.tensor_count = (uint32_t)count;
    h.has_ema = count == 4;
    struct ckpt_writer *w;
    if (ckpt_writer_open(&w, argv[1], step) < 0 || ckpt_writer_header(w, &h) < 0) {
        fprintf(stderr, "ckpt_seed: error: %s\n", catlip_error());
        return 1;
    }
    float values[12];
    for (int i = 0; i < 12; i++) values[i] = (float)i * 0.25f - 1.0f;
    for (int t = 0; t < count; t++) {
        if (ckpt_writer_tensor(w, tensors[t].kind, tensors[t].name, tensors[t].shape, tensors[t].ndim, values) < 0) {
            fprintf(stderr, "ckpt_seed: error: %s\n", catlip_error());
            ckpt_writer_abort(w);
            return 1;
        }
    }
    if (ckpt_writer_commit(w, 0) < 0) {
        fprintf(stderr, "ckpt_seed: error: %s\n", catlip_error());
        return 1;
    }
    return 0;
}
