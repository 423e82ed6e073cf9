#include "worker/worker.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "catlip.pb-c.h"
#include "core/check.h"
#include "core/log.h"
#include "data/order.h"
#include "io/checkpoint.h"
#include "model/checkpoint_state.h"
#include "io/transfer_head.h"
#include "nn/gemm.h"
#include "nn/train_state.h"
#include "worker/batch_source.h"
#include "train/link.h"
#include "worker/contrastive_sync.h"
#include "worker/grad_cache.h"
#include "worker/grad_sync.h"
#include "worker/optim_shard.h"

volatile sig_atomic_t worker_stop_requested;

struct worker {
    struct run *run;
    struct link *link;  // to the coordinator
    struct train_state ts;
    struct pool *pool;
    struct grad_sync sync;
    struct contrastive_sync contrastive;  // model.objective clip: the loss across workers
    int clip;
    struct grad_cache cache;  // clip with train.micro_batch: the step's two passes
    int sharded;                 // train.shard_optimizer with more than one worker
    struct optim_shard shard;    // its slices (worker/optim_shard.h)
    float *gathered;             // worker 0, sharded, while checkpointing: one full state buffer
    double optimizer_seconds;    // in the optimizer step (sharded: its allgathers included)
    int64_t optimizer_steps;
    struct heartbeat heartbeat;  // collectives wait through it (worker/heartbeat.h)
    struct batch_source *data;
    int local_batch;      // this worker's slice of the global batch
    int slice_begin;      // its first position within the global batch
    int64_t samples;      // samples this worker trained on
    uint8_t *pack_buffer;
    size_t pack_capacity;
};

// ---------------------------------------------------------------------------------------
// messages to the coordinator (train/link.h: over MPI, or in-process)

static const uint8_t *pack_message(struct worker *w, const ProtobufCMessage *m, size_t *len) {
    *len = protobuf_c_message_get_packed_size(m);
    if (*len > w->pack_capacity) {
        w->pack_capacity = *len + 1024;
        w->pack_buffer = xrealloc(w->pack_buffer, w->pack_capacity);
    }
    protobuf_c_message_pack(m, w->pack_buffer);
    return w->pack_buffer;
}

// ---------------------------------------------------------------------------------------
// checkpoint state out and in

static int send_record(void *ctx, const uint8_t *record, size_t len) {
    struct worker *w = ctx;
    link_send(w->link, w->run->worker_index, LINK_CKPT_RECORD, record, len);
    return 0;
}

static const float *state_buffer(const struct train_state *ts, int kind) {
    switch (kind) {
    case CATLIP__TENSOR_CHUNK__KIND__PARAM: return ts->params;
    case CATLIP__TENSOR_CHUNK__KIND__ADAM_M: return ts->adam_m;
    case CATLIP__TENSOR_CHUNK__KIND__ADAM_V: return ts->adam_v;
    case CATLIP__TENSOR_CHUNK__KIND__EMA: return ts->ema;
    }
    return NULL;
}

static void fill_model_config(Catlip__ModelConfig *m, const struct run *run) {
    m->name = (char *)run->cfg.model.name;
    m->dim = run->model.dim;
    m->depth = run->model.depth;
    m->heads = run->model.heads;
    m->mlp_hidden = run->model.mlp_hidden;
    m->image_size = run->model.image_size;
    m->patch_size = run->model.patch_size;
    m->num_classes = run->model.num_classes;
    if (run->model.clip) {
        m->objective = "clip";
        m->text_width = run->model.text.width;
        m->text_depth = run->model.text.depth;
        m->text_heads = run->model.text.heads;
        m->text_vocab = run->model.text.vocab_size;
        m->context_length = run->model.text.context;
    }
}

// Worker 0 streams the whole training state; every worker holds the same weights, so one copy
// is enough. Sharded, every worker calls this: the moments and EMA are gathered to worker 0
// one kind at a time, so the checkpoint is the same complete file as unsharded. The
// coordinator writes the records as they arrive.
static void stream_checkpoint(struct worker *w, int64_t steps_done) {
    const struct run *run = w->run;
    const struct vit_layout *l = &w->ts.model.layout;
    const int root = run->worker_index == 0;
    int kinds = w->ts.ema ? 4 : 3;
    if (root) {
        char *yaml = config_to_yaml(&run->cfg);
        Catlip__ModelConfig model = CATLIP__MODEL_CONFIG__INIT;
        fill_model_config(&model, run);
        Catlip__DataPosition pos = CATLIP__DATA_POSITION__INIT;
        pos.step = steps_done;
        pos.epoch = run->steps_per_epoch > 0 ? steps_done / run->steps_per_epoch : 0;
        pos.samples_seen = steps_done * run->cfg.train.global_batch;
        Catlip__CheckpointHeader h = CATLIP__CHECKPOINT_HEADER__INIT;
        h.format_version = CKPT_FORMAT_VERSION;
        h.run_id = (char *)run->run_id;
        h.model = &model;
        h.vocab_hash = run->vocab_hash;
        h.tokenizer_hash = run->tokenizer_hash;
        h.position = &pos;
        h.seed = (uint64_t)run->cfg.seed;
        h.config_yaml = yaml;
        h.worker_count = run->nworkers;
        h.tensor_count = (uint32_t)(l->ntensors * kinds);
        h.unix_time = time_unix();
        h.has_ema = w->ts.ema != NULL;
        size_t len;
        const uint8_t *data = pack_message(w, &h.base, &len);
        link_send(w->link, run->worker_index, LINK_CKPT_BEGIN, data, len);
        free(yaml);
        if (w->sharded) w->gathered = xaligned_alloc(l->total * sizeof(float));
    }
    for (int kind = 0; kind < kinds; kind++) {
        const float *buf = state_buffer(&w->ts, kind);
        if (w->sharded && kind != CATLIP__TENSOR_CHUNK__KIND__PARAM) {
            optim_shard_gather(&w->shard, buf, w->gathered);
            buf = w->gathered;
        }
        if (!root) continue;
        for (int i = 0; i < l->ntensors; i++) {
            const struct tensor_info *t = &l->tensors[i];
            if (ckpt_tensor_records((Catlip__TensorChunk__Kind)kind, t->name, t->shape, t->ndim,
                                    buf + t->offset, send_record, w) != 0)
                catlip_die("%s", catlip_error());
        }
    }
    if (root) {
        free(w->gathered);
        w->gathered = NULL;
        link_send_step(w->link, run->worker_index, LINK_CKPT_END, steps_done);
    }
}

// model.init_from: every tensor but the head, plus the head when it has the same width, from
// one verified read of the checkpoint (a CatLIP or a CLIP one: then its image tower).
static int init_from_checkpoint(struct worker *w) {
    const struct config *cfg = &w->run->cfg;
    const struct vit_layout *l = &w->ts.model.layout;
    struct ckpt_reader *r;
    if (ckpt_reader_open(&r, cfg->model.init_from) != 0) return -1;
    struct vit_config from;
    if (checkpoint_model_config(ckpt_reader_header(r), &from) != 0) {
        ckpt_reader_close(r);
        return catlip_error_set("%s: %s", cfg->model.init_from, catlip_error());
    }
    const struct vit_config *to = &l->config;
    if (from.dim != to->dim || from.depth != to->depth || from.heads != to->heads ||
        from.mlp_hidden != to->mlp_hidden || from.patch_size != to->patch_size ||
        from.image_size != to->image_size) {
        ckpt_reader_close(r);
        return catlip_error_set("model.init_from %s holds a different backbone (dim %d, depth "
                                "%d, heads %d, image %d, patch %d)", cfg->model.init_from,
                                from.dim, from.depth, from.heads, from.image_size, from.patch_size);
    }
    struct vit_layout src;
    vit_layout_init(&src, &from);
    float *buf = xaligned_alloc(src.total * sizeof(float));
    float *buffers[4] = {NULL, NULL, NULL, NULL};
    buffers[cfg->model.init_ema ? CATLIP__TENSOR_CHUNK__KIND__EMA : CATLIP__TENSOR_CHUNK__KIND__PARAM] = buf;
    int rc = checkpoint_read_tensors(r, cfg->model.init_from, &src, buffers);
    ckpt_reader_close(r);
    // A CLIP checkpoint's image tower starts a CatLIP run too; its projection is no head.
    int same_head = !from.clip && from.num_classes == to->num_classes &&
                    !strcmp(cfg->model.head_init, "random");
    for (int i = 0; rc == 0 && i < l->ntensors; i++) {
        const struct tensor_info *t = &l->tensors[i];
        if (!strncmp(t->name, "head.", 5) && !same_head) continue;
        const struct tensor_info *st = vit_layout_find(&src, t->name);
        memcpy(w->ts.params + t->offset, buf + st->offset, t->numel * sizeof(float));
    }
    free(buf);
    vit_layout_free(&src);
    if (rc != 0) return -1;
    if (w->run->worker_index == 0)
        log_info("initialised from %s (%s weights%s)", cfg->model.init_from,
                 cfg->model.init_ema ? "EMA" : "raw", same_head ? ", head included" : ", new head");
    return 0;
}

// A fresh run may start from a pre-trained checkpoint (model.init_from: every tensor but the
// head, plus the head when it has the same width) and from a Transfer Init head
// (model.head_init: transfer). The EMA then starts from these weights.
static int init_fresh_weights(struct worker *w) {
    const struct config *cfg = &w->run->cfg;
    const struct vit_layout *l = &w->ts.model.layout;
    if (cfg->model.init_from[0] && init_from_checkpoint(w) != 0) return -1;
    if (!strcmp(cfg->model.head_init, "transfer")) {
        int classes;
        float *weight, *bias;
        if (transfer_head_load(cfg->model.head_file, &classes, l->config.dim, &weight, &bias,
                               NULL) != 0)
            return -1;
        if (classes != l->config.num_classes) {
            free(weight), free(bias);
            return catlip_error_set("model.head_file %s has %d classes, model.num_classes is %d",
                                    cfg->model.head_file, classes, l->config.num_classes);
        }
        memcpy(w->ts.params + l->head_w, weight, (size_t)classes * l->config.dim * sizeof(float));
        memcpy(w->ts.params + l->head_b, bias, (size_t)classes * sizeof(float));
        free(weight), free(bias);
    }
    if (w->ts.ema)
        memcpy(w->ts.ema, w->ts.params + w->ts.shard_begin,
               (w->ts.shard_end - w->ts.shard_begin) * sizeof(float));
    return 0;
}

// ---------------------------------------------------------------------------------------
// the training loop

static void send_progress(struct worker *w, int64_t steps_done, double loss, double data_s,
                          double compute_s, double allreduce_s) {
    Catlip__Progress p = CATLIP__PROGRESS__INIT;
    p.worker = w->run->worker_index;
    p.step = steps_done;
    p.loss = loss;
    p.lr = w->ts.last_lr;
    p.grad_norm = w->ts.last_grad_norm;
    p.samples = w->samples;
    p.data_wait_seconds = data_s;
    p.compute_seconds = compute_s;
    p.allreduce_seconds = allreduce_s;
    double total = data_s + compute_s;
    p.images_per_second = total > 0 ? w->local_batch / total : 0.0;
    p.n_skipped = batch_source_skips(w->data, &p.skipped);
    size_t len;
    const uint8_t *data = pack_message(w, &p.base, &len);
    link_send(w->link, w->run->worker_index, LINK_PROGRESS, data, len);
    heartbeat_sent(&w->heartbeat);
}

// Everything before the first step that the outside world can make fail (a checkpoint to
// resume or initialise from, a head file, shards). 0, or -1 with catlip_error().
static int worker_setup(struct worker *w) {
    struct run *run = w->run;
    const struct config *cfg = &run->cfg;
    const int G = (int)cfg->train.global_batch;
    // Ranks sharing a node spread over its cores: local rank r starts at core r·threads
    // (the coordinator, local rank 0 on its node, is mostly asleep and binds nothing).
    int threads = (int)cfg->train.threads;
    if (threads <= 0) threads = pool_available_cores();
    const char *slurm_cpus = getenv("SLURM_CPUS_PER_TASK");
    if (cfg->train.threads <= 0 && slurm_cpus && atoi(slurm_cpus) > 0 && atoi(slurm_cpus) < threads)
        threads = atoi(slurm_cpus);
    w->pool = pool_create_at(threads, 1, run->local_rank * threads);
    struct optim_settings os;
    optim_settings_from_run(&os, cfg, run->total_steps);
    // Activations are sized by the micro-batch, not the slice (train.micro_batch).
    // Sharded (train.shard_optimizer), the moments and EMA of this worker's slice only, from
    // the start: a full copy is never held, not even to resume.
    size_t state_begin = 0, state_end = SIZE_MAX;
    if (w->sharded) {
        state_begin = w->shard.bounds[run->worker_index];
        state_end = w->shard.bounds[run->worker_index + 1];
    }
    train_state_create_shard(&w->ts, &run->model, &os,
                             batch_source_micro_size(w->local_batch, cfg->train.micro_batch),
                             w->pool, (uint64_t)cfg->seed, state_begin, state_end);
    if (run->resume_path[0]) {
        // Rank 0 already verified the file and checked its header against this model and
        // vocabulary: one streaming pass here (still checked, by the end of the pass). Any
        // checkpoint, sharded or not, of any worker count: it is always complete.
        float *buffers[4] = {w->ts.params, w->ts.adam_m, w->ts.adam_v, w->ts.ema};
        if (checkpoint_stream_tensors_range(run->resume_path, &w->ts.model.layout, buffers,
                                            w->ts.shard_begin, w->ts.shard_end) != 0)
            return -1;
        w->ts.step = run->start_step;
    } else if (init_fresh_weights(w) != 0) {
        return -1;
    }
    int ce = !strcmp(cfg->train.loss, "ce") || (!strcmp(cfg->train.loss, "auto") && !strcmp(cfg->task, "classify"));
    w->ts.loss = ce ? TRAIN_LOSS_CE : TRAIN_LOSS_BCE;
    w->ts.label_smoothing = (float)cfg->optim.label_smoothing;
    w->ts.head_only = cfg->train.freeze_backbone;
    train_state_set_precision(&w->ts,
                              (enum vit_precision)vit_precision_parse(cfg->train.precision));
    log_info(
        "worker %d: %s, kernels %s, precision %s%s%s, samples %d..%d of each global batch "
        "of %d",
        run->worker_index, pool_describe(w->pool), w->ts.model.k->name,
        vit_precision_name(w->ts.model.precision),
        w->ts.model.precision == VIT_BF16 ? " matmuls " : "",
        w->ts.model.precision == VIT_BF16 ? gemm_bf16_backend() : "", w->slice_begin,
        w->slice_begin + w->local_batch - 1, G);
    w->data = batch_source_create(run, pool_size(w->pool));
    if (!w->data) return -1;
    if (run->worker_index == 0) log_info("data: %s", batch_source_describe(w->data));
    if (run->worker_index == 0 && batch_source_micros(w->data) > 1)
        log_info("gradient accumulation: %d micro-batches of up to %d images per step",
                 batch_source_micros(w->data),
                 batch_source_micro_size(w->local_batch, cfg->train.micro_batch));
    return 0;
}

// A step in micro-batches (train.micro_batch): each micro-batch's gradients are added to the
// step's, scaled by 1/G (the planned global batch), because the count of samples all workers
// used is known only after the last one. The step's one gradient allreduce starts from the
// last micro-batch's backward, overlapped as in an unsplit step. If skipped samples left
// used < G, gradients and loss are then rescaled by G/used: (Σ_workers Σ_samples g)/G · G/used
// = (Σ g)/used, the mean over the used samples (batch_mean) that an unsplit step computes,
// up to float rounding (the sums' order and one extra multiply per gradient). Every worker
// scales the same reduced gradients by the same factor, so they stay identical. Returns the
// loss share; rows: samples this worker used; data_s: time waiting for data.
static double accumulate_step(struct worker *w, int64_t step, int *rows, double *data_s) {
    const struct run *run = w->run;
    const int G = (int)run->cfg.train.global_batch;
    const int micros = batch_source_micros(w->data);
    double loss = 0.0;
    *rows = 0;
    train_zero_grads(&w->ts);
    for (int m = 0; m < micros; m++) {
        double t = time_now();
        struct local_batch batch;
        if (batch_source_next(w->data, step, m, &batch) != 0) catlip_die("%s", catlip_error());
        *data_s += time_now() - t;
        if (m == micros - 1 && run->nworkers > 1) {
            grad_sync_begin(&w->sync);
            loss += train_accumulate(&w->ts, batch.images, batch.targets, batch.count, G,
                                     grad_sync_ready, &w->sync);
            grad_sync_finish(&w->sync);
        } else {
            loss +=
                train_accumulate(&w->ts, batch.images, batch.targets, batch.count, G, NULL, NULL);
        }
        *rows += batch.count;
        heartbeat_beat(&w->heartbeat);  // a long step is not a lost worker
    }
    int used = *rows;
    if (run->nworkers > 1)
        heartbeat_allreduce(&w->heartbeat, &used, 1, MPI_INT, MPI_SUM, run->workers);
    if (used == 0)
        catlip_die("step %lld: every sample of the global batch was skipped", (long long)step);
    if (used != G) {
        train_scale_grads(&w->ts, (double)G / used);
        loss *= (double)G / used;
    }
    return loss;
}

// The whole batch's contrastive loss of the embeddings (rows, E) of this worker's slice:
// d loss / d each into dimage, dtext, this worker's share of the log-scale's gradient into the
// step's gradients. Returns the loss (the same on every worker).
static double clip_loss(struct worker *w, int64_t step, float *dimage, float *dtext,
                        const float *image, const float *text, int rows) {
    const struct vit_layout *L = &w->ts.model.layout;
    double loss = contrastive_sync_step(&w->contrastive, w->pool, w->ts.model.k, dimage, dtext,
                                        w->ts.grads + L->logit_scale, image, text, rows,
                                        w->ts.params[L->logit_scale]);
    int used = rows;  // the rows gathered over all workers
    if (w->contrastive.comm != MPI_COMM_NULL)
        for (int i = used = 0; i < w->contrastive.size; i++) used += w->contrastive.rows[i];
    if (used == 0)
        catlip_die("step %lld: every sample of the global batch was skipped", (long long)step);
    return loss;
}

// Both towers' backward from the embeddings' gradients in acts.dlogits and dtext; the last one
// of a step starts the gradient allreduce and overlaps it.
static void clip_backward(struct worker *w, int rows, int last) {
    if (last && w->run->nworkers > 1) {
        grad_sync_begin(&w->sync);
        train_clip_backward(&w->ts, rows, grad_sync_ready, &w->sync);
        grad_sync_finish(&w->sync);
    } else {
        train_clip_backward(&w->ts, rows, NULL, NULL);
    }
}

// model.objective clip: both towers on this worker's slice, the contrastive loss over the
// global batch (worker/contrastive_sync.h: it gives each embedding its whole-batch gradient, and
// the loss is already a mean over the rows gathered, so no G / used rescale), then both
// backwards, the gradient allreduce (summing every worker's share) overlapped with them.
// With train.micro_batch, in GradCache's two passes (worker/grad_cache.h).
// Returns the whole batch's loss (the same on every worker); rows: samples this worker used.
static double clip_step(struct worker *w, int64_t step, int *rows, double *data_s) {
    const int micros = batch_source_micros(w->data);
    const int E = w->ts.model.layout.config.num_classes;
    train_zero_grads(&w->ts);
    if (micros == 1) {
        double t = time_now();
        struct local_batch batch;
        if (batch_source_next(w->data, step, 0, &batch) != 0) catlip_die("%s", catlip_error());
        *data_s = time_now() - t;
        train_clip_forward(&w->ts, batch.images, batch.ids, batch.count);
        double loss = clip_loss(w, step, w->ts.acts.dlogits, w->ts.dtext, w->ts.acts.logits,
                                w->ts.text_acts.features, batch.count);
        clip_backward(w, batch.count, 1);
        *rows = batch.count;
        return loss;
    }
    struct grad_cache *c = &w->cache;
    grad_cache_reset(c);
    *data_s = 0.0;
    for (int m = 0; m < micros; m++) {
        double t = time_now();
        struct local_batch batch;
        if (batch_source_next(w->data, step, m, &batch) != 0) catlip_die("%s", catlip_error());
        *data_s += time_now() - t;
        if (batch.count > 0) train_clip_forward(&w->ts, batch.images, batch.ids, batch.count);
        grad_cache_keep(c, batch.images, batch.ids, w->ts.acts.logits, w->ts.text_acts.features,
                        batch.count);
        heartbeat_beat(&w->heartbeat);  // a long step is not a lost worker
    }
    double loss = clip_loss(w, step, c->dimage, c->dtext, c->image_emb, c->text_emb, c->rows);
    // Backward from the last micro-batch, whose activations pass 1 left in place, down to the
    // first, each after its second forward; the first's backward overlaps the allreduce.
    // Micro-batches whose samples were all skipped take no backward, unless every one was
    // (then micro-batch 0 runs an empty one, as an unsplit step would, for the allreduce).
    const size_t D = (size_t)E;
    int last = 0;
    while (last < micros - 1 && c->micro_begin[last + 1] == c->micro_begin[last]) last++;
    for (int m = micros - 1; m >= last; m--) {
        const int begin = c->micro_begin[m], n = c->micro_begin[m + 1] - begin;
        if (n == 0 && m != last) continue;
        if (m != micros - 1 && n > 0)
            train_clip_forward(&w->ts, c->images + (size_t)begin * c->image_floats,
                               c->ids + (size_t)begin * c->context, n);
        memcpy(w->ts.acts.dlogits, c->dimage + begin * D, n * D * sizeof(float));
        memcpy(w->ts.dtext, c->dtext + begin * D, n * D * sizeof(float));
        clip_backward(w, n, m == last);
        heartbeat_beat(&w->heartbeat);
    }
    *rows = c->rows;
    return loss;
}

// One optimizer step over this worker's slice of global step `step`; returns the command
// every worker agreed to act on at the step boundary.
static int worker_step(struct worker *w, int64_t step) {
    const struct run *run = w->run;
    double t0 = time_now();
    double loss, data_s = 0.0;
    int rows;
    if (w->clip) {
        loss = clip_step(w, step, &rows, &data_s);
    } else if (batch_source_micros(w->data) > 1) {
        loss = accumulate_step(w, step, &rows, &data_s);
    } else {
        struct local_batch batch;
        if (batch_source_next(w->data, step, 0, &batch) != 0) catlip_die("%s", catlip_error());
        data_s = time_now() - t0;
        // Skipped samples shrink the batch: the loss is the mean over the samples actually
        // used by all workers (CoreNet's batch_mean), so agree on that count first.
        int used = batch.count;
        if (run->nworkers > 1)
            heartbeat_allreduce(&w->heartbeat, &used, 1, MPI_INT, MPI_SUM, run->workers);
        if (used == 0)
            catlip_die("step %lld: every sample of the global batch was skipped", (long long)step);
        if (run->nworkers > 1) {
            grad_sync_begin(&w->sync);
            loss = train_forward_backward(&w->ts, batch.images, batch.targets, batch.count, used,
                                          grad_sync_ready, &w->sync);
            grad_sync_finish(&w->sync);
        } else {
            loss = train_forward_backward(&w->ts, batch.images, batch.targets, batch.count, used,
                                          NULL, NULL);
        }
        rows = batch.count;
    }
    double t_optim = time_now(), gathered = w->sharded ? w->shard.gather_seconds : 0.0;
    if (w->sharded)
        optim_shard_step(&w->shard, &w->ts);
    else
        train_apply_update(&w->ts);
    w->optimizer_seconds += time_now() - t_optim;
    // Sharded, the step's communication goes on after backward: the new weights' allgather
    // (and the norm's) blocks this worker like the gradients' reduce-scatter does.
    double gather_s = w->sharded ? w->shard.gather_seconds - gathered : 0.0;
    w->optimizer_steps++;
    w->samples += rows;
    // Agree on the loss and on what to do at this step boundary: every worker adds its
    // loss share and takes the highest command any of them saw (signal or coordinator).
    int command = link_poll_command(w->link);
    if (worker_stop_requested && command < CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP)
        command = CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP;
    double allreduce_s = run->nworkers > 1 ? w->sync.wait_seconds + gather_s : 0.0;
    if (run->nworkers > 1) {
        double t = time_now();
        // clip's loss is already the whole batch's, on every worker
        if (!w->clip)
            heartbeat_allreduce(&w->heartbeat, &loss, 1, MPI_DOUBLE, MPI_SUM, run->workers);
        heartbeat_allreduce(&w->heartbeat, &command, 1, MPI_INT, MPI_MAX, run->workers);
        allreduce_s += time_now() - t;
    }
    double t2 = time_now();
    send_progress(w, step + 1, loss, data_s, t2 - t0 - data_s - allreduce_s, allreduce_s);
    return command;
}

// Heartbeats while waiting in a collective: often enough that a waiting worker never looks
// lost (several per worker_timeout), rarely enough to cost nothing (at most one a second).
static double heartbeat_interval(double worker_timeout) {
    double interval = worker_timeout / 4;
    return interval < 1.0 ? interval : 1.0;
}

// A digest of the final weights: equal on every worker, and equal across runs that should be
// bit-identical (tests compare them).
static uint64_t weights_digest(const struct train_state *ts) {
    uint64_t digest = 1469598103934665603ULL;  // FNV-1a 64-bit offset basis
    const uint8_t *bytes = (const uint8_t *)ts->params;
    for (size_t i = 0; i < ts->model.layout.total * sizeof(float); i++)
        digest = (digest ^ bytes[i]) * 1099511628211ULL;  // FNV-1a 64-bit prime
    return digest;
}

// train.shard_optimizer with several workers: the slices, known before the training state is
// created (they depend only on the model's size and the worker count).
static void plan_sharding(struct worker *w) {
    const struct run *run = w->run;
    if (!run->cfg.train.shard_optimizer) return;
    if (run->nworkers < 2) {
        log_info("train.shard_optimizer: one worker, nothing to shard");
        return;
    }
    struct vit_layout layout;
    vit_layout_init(&layout, &run->model);
    enum grad_collectives collectives;
    int parsed = grad_collectives_parse(run->cfg.train.collectives, &collectives) == 0;
    CATLIP_ASSERT(parsed);  // config_validate accepted the name
    optim_shard_init(&w->shard, run->workers, layout.total,
                     collectives == GRAD_COLLECTIVES_RING, &w->heartbeat);
    vit_layout_free(&layout);
    w->sharded = 1;
}

static void log_sharding(const struct worker *w) {
    const struct run *run = w->run;
    const size_t *b = w->shard.bounds, total = w->ts.model.layout.total;
    log_info("worker %d: sharded optimizer: parameters %zu..%zu of %zu, optimizer state %.2f "
             "MiB (%.2f MiB unsharded)",
             run->worker_index, b[run->worker_index], b[run->worker_index + 1], total,
             optim_shard_state_bytes(&w->ts) / 1048576.0,
             (w->ts.ema ? 3 : 2) * total * sizeof(float) / 1048576.0);
}

int worker_run(struct run *run, struct link *link) {
    struct worker w;
    memset(&w, 0, sizeof w);
    w.run = run;
    w.link = link;
    const struct config *cfg = &run->cfg;
    heartbeat_init(&w.heartbeat, link, run->worker_index, heartbeat_interval(cfg->train.worker_timeout));
    const int G = (int)cfg->train.global_batch;
    uint64_t begin, end;
    plan_worker_slice((uint64_t)G, run->worker_index, run->nworkers, &begin, &end);
    w.slice_begin = (int)begin;
    w.local_batch = (int)(end - begin);
    if (w.local_batch < 1)
        catlip_die("train.global_batch %d is smaller than the %d workers", G, run->nworkers);

    // A setup failure ends this worker with status 2 (as catlip_die would), after the workers
    // agree on it (the others would wait for it in the first allreduce), and the coordinator
    // hears the status.
    int status = 0;
    plan_sharding(&w);
    if (worker_setup(&w) != 0) {
        catlip_error_print();
        status = 2;
    }
    if (run->nworkers > 1)
        heartbeat_allreduce(&w.heartbeat, &status, 1, MPI_INT, MPI_MAX, run->workers);
    if (status == 0 && run->nworkers > 1) {
        struct grad_sync_options o = grad_sync_default_options();
        o.bucket_floats = (size_t)(cfg->train.bucket_mb * 1048576.0 / sizeof(float));
        o.overlap = cfg->train.overlap;
        int parsed = grad_wire_parse(cfg->train.grad_comm, &o.wire) == 0 &&
                     grad_allreduce_parse(cfg->train.allreduce, &o.allreduce) == 0 &&
                     grad_collectives_parse(cfg->train.collectives, &o.collectives) == 0;
        CATLIP_ASSERT(parsed);  // config_validate accepted the names
        if (w.sharded) {
            log_sharding(&w);
            o.shard_bounds = w.shard.bounds;
        }
        grad_sync_init_options(&w.sync, run->workers, w.ts.grads, &o, &w.heartbeat);
        char what[160];
        if (run->worker_index == 0)
            log_info("gradient allreduce: %s", grad_sync_describe(&w.sync, what, sizeof what));
    }
    w.clip = run->model.clip;
    // Without a launcher there is no workers' communicator: the loss then needs no MPI.
    // Sized for the largest slice (ceil(G / N)): every worker holds the gathered rows of all,
    // and slices differ by one when N does not divide G.
    if (status == 0 && w.clip)
        contrastive_sync_init(&w.contrastive, run->workers, (G + run->nworkers - 1) / run->nworkers,
                              run->model.num_classes, &w.heartbeat);
    if (status == 0 && w.clip && batch_source_micros(w.data) > 1)
        grad_cache_init(&w.cache, w.local_batch,
                        3 * run->model.image_size * run->model.image_size,
                        w.ts.text_acts.config.context, run->model.num_classes);
    w.samples = run->start_step * w.local_batch;

    for (int64_t step = run->start_step; status == 0 && step < run->total_steps; step++) {
        int command = worker_step(&w, step);
        int64_t done = step + 1;
        int stop = command == CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP ||
                   command == CATLIP__COMMAND__KIND__STOP;
        int save = command == CATLIP__COMMAND__KIND__CHECKPOINT ||
                   command == CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP ||
                   run_checkpoint_due(run, done);
        if (save && (run->worker_index == 0 || w.sharded)) stream_checkpoint(&w, done);
        if (stop) {
            if (run->worker_index == 0) log_info("stopping after step %lld", (long long)done);
            break;
        }
    }

    if (status == 0) {
        log_info("worker %d: step %lld, weights digest %016llx", run->worker_index,
                 (long long)w.ts.step, (unsigned long long)weights_digest(&w.ts));
        // Peak memory follows the micro-batch (train.micro_batch); tests and users read it here.
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            log_info("worker %d: peak RSS %ld MiB", run->worker_index, ru.ru_maxrss / 1024);
        // The optimizer's share, for comparing train.shard_optimizer (README).
        if (w.optimizer_steps > 0)
            log_info("worker %d: optimizer state %.2f MiB, optimizer %.3f ms a step", run->worker_index,
                     optim_shard_state_bytes(&w.ts) / 1048576.0,
                     1e3 * w.optimizer_seconds / (double)w.optimizer_steps);
        if (w.sharded && w.shard.steps > 0)
            log_info("worker %d: of which %.3f ms norm, AdamW and EMA on its slice, %.3f ms "
                     "allgathering the norm's block sums and the weights",
                     run->worker_index, 1e3 * w.shard.update_seconds / (double)w.shard.steps,
                     1e3 * w.shard.gather_seconds / (double)w.shard.steps);
    }
    link_send_status(w.link, run->worker_index, status);
    if (status == 0 && run->nworkers > 1) grad_sync_free(&w.sync);
    if (status == 0 && w.clip) contrastive_sync_free(&w.contrastive);
    if (w.cache.max_rows) grad_cache_free(&w.cache);
    if (w.sharded) optim_shard_free(&w.shard);
    free(w.pack_buffer);
    if (w.data) batch_source_destroy(w.data);
    train_state_free(&w.ts);
    pool_destroy(w.pool);
    return status;
}
