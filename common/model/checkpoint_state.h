// A model's tensors in and out of checkpoint files (checkpoint.h is the file format; this
// maps it onto a vit_layout's buffers).
#pragma once
#include <stdint.h>

#include "catlip.pb-c.h"
#include "io/checkpoint.h"
#include "nn/model.h"

// What a checkpoint header says about the model, as a vit_config (the head width included).
// Returns -1 with catlip_error() when the header lacks a model or holds impossible values.
int checkpoint_model_config(const Catlip__CheckpointHeader *header, struct vit_config *out);

// Reads the tensors of a checkpoint into the buffers of `layout`, indexed by
// Catlip__TensorChunk__Kind (PARAM, ADAM_M, ADAM_V, EMA); a NULL buffer skips that kind.
// Every tensor of the layout must be present, complete and of the same shape for each kind
// asked for. Returns -1 with catlip_error() naming the file and the problem.
int checkpoint_load_tensors(const char *path, const struct vit_layout *layout, float *buffers[4]);
// The same in one pass over the file (ckpt_reader_open_streaming), for a file rank 0 has
// just verified: a corrupt or changed file is still an error, found by the end of the pass,
// with the buffers then partly overwritten.
int checkpoint_stream_tensors(const char *path, const struct vit_layout *layout, float *buffers[4]);
// The same from an open reader, up to its footer (path names the file in messages); the
// reader stays open.
int checkpoint_read_tensors(struct ckpt_reader *r, const char *path,
                            const struct vit_layout *layout, float *buffers[4]);
// checkpoint_stream_tensors for a sharded optimizer (train.shard_optimizer): the weights
// (PARAM) whole, the moments and EMA only for [state_begin, state_end) of the flat buffer,
// into buffers that hold just that range (from their index 0). Every record is still read
// and checked for completeness.
int checkpoint_stream_tensors_range(const char *path, const struct vit_layout *layout,
                                    float *buffers[4], size_t state_begin, size_t state_end);

// Opens and verifies a checkpoint and returns a copy of its header (free it with
// catlip__checkpoint_header__free_unpacked(h, NULL)), or NULL with catlip_error().
Catlip__CheckpointHeader *checkpoint_read_header(const char *path);
// A copy of a header that outlives its reader (free as above); NULL with catlip_error().
Catlip__CheckpointHeader *checkpoint_header_copy(const Catlip__CheckpointHeader *h,
                                                 const char *path);
