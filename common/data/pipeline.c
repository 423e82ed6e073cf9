#include "data/pipeline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "data/cpu_binding.h"
#include "data/order.h"
#include "data/sample_reader.h"
#include "data/shard_index.h"

const char *const pipeline_skip_names[PIPELINE_SKIP_COUNT] = {
    "bad_tar_header", "truncated_member", "missing_image", "missing_txt", "empty_image", "bad_image",
    "small_image",    "bad_caption",      "no_synset",     "bad_class",   "read_error",  "missing_shard",
};

// One batch being decoded or waiting for the trainer.
struct slot {
    uint64_t seq;       // which batch of this pipeline (0, 1, ...); UINT64_MAX: unused
    uint64_t epoch, batch_in_epoch, global_size, first_position;
    int micro;          // which micro-batch of its step
    int size;           // rows planned (this worker's slice, or one micro-batch of it)
    int done;           // rows finished; guarded by the pipeline lock
    int ready;          // compacted and ready for the trainer; guarded by the lock
    int count;          // rows kept after compaction
    float *images;      // (capacity, 3, S, S)
    float *targets;     // (capacity, C)
    uint64_t *samples;  // (capacity)
    signed char *keep;  // (capacity) 1: row usable
};

struct decode_thread {
    struct pipeline *pipeline;
    pthread_t handle;
    int index;
    struct sample_reader reader;
};

struct pipeline {
    struct pipeline_options opt;
    char **paths;
    size_t nshards;
    struct shard_index *indexes;
    uint64_t *counts;
    uint64_t *first;  // (nshards + 1) first global sample index of each shard
    uint64_t total, batches_per_epoch, end_seq;
    int micro_size, micros;  // training: rows per micro-batch, micro-batches per step
    struct sample_config config;
    size_t image_floats;
    int capacity;

    int depth;
    struct slot *slots;
    pthread_mutex_t lock;
    pthread_cond_t slot_free;  // decode threads wait for the trainer to release a slot
    pthread_cond_t ready;      // the trainer waits for its batch
    uint64_t next_seq;         // next batch to hand out rows of; guarded by lock
    int next_row;              // next row of it; guarded by lock
    uint64_t consumer_seq;     // the batch the trainer takes next (or holds); guarded by lock
    int holding;               // the trainer holds consumer_seq's slot
    int stopping;
    struct global_order *order;  // for order_epoch; used under lock only
    uint64_t order_epoch;

    _Atomic uint64_t skips[PIPELINE_SKIP_COUNT];
    struct cpu_binding *binding;
    int nthreads;
    struct decode_thread *threads;
};

// ---- shard indexes ------------------------------------------------------------------------

struct index_job {
    struct pipeline *p;
    _Atomic size_t next;
    _Atomic int built;
    int *failed;  // (nshards) 1: could not be opened
    char **errors;
};

static void *index_worker(void *arg) {
    struct index_job *job = arg;
    struct pipeline *p = job->p;
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= p->nshards) return NULL;
        int built = 0;
        if (shard_index_load(p->paths[i], p->opt.index_cache_dir, &p->indexes[i], &built) != 0) {
            job->failed[i] = 1;
            job->errors[i] = xstrdup(catlip_error());
        }
        if (built) atomic_fetch_add(&job->built, 1);
    }
}

static int load_indexes(struct pipeline *p) {
    struct index_job job = {.p = p};
    atomic_init(&job.next, 0);
    atomic_init(&job.built, 0);
    job.failed = xcalloc(p->nshards, sizeof *job.failed);
    job.errors = xcalloc(p->nshards, sizeof *job.errors);
    int n = p->nthreads < (int)p->nshards ? p->nthreads : (int)p->nshards;
    pthread_t *ts = xcalloc((size_t)(n > 0 ? n : 1), sizeof *ts);
    int started = 0;
    for (int i = 1; i < n; i++)
        if (pthread_create(&ts[i], NULL, index_worker, &job) == 0) started = i;
    index_worker(&job);
    for (int i = 1; i <= started; i++) pthread_join(ts[i], NULL);
    free(ts);
    int rc = 0;
    for (size_t i = 0; i < p->nshards; i++) {
        if (!job.failed[i]) continue;
        if (p->opt.skip_missing_shards) {
            log_warn("skipping shard: %s", job.errors[i]);
            p->skips[PIPELINE_SKIP_MISSING_SHARD]++;
        } else if (rc == 0) {
            rc = catlip_error_set("%s (set data.skip_missing_shards to train without it)", job.errors[i]);
        }
    }
    if (atomic_load(&job.built) > 0) log_info("built %d shard index%s", atomic_load(&job.built),
                                              atomic_load(&job.built) == 1 ? "" : "es");
    for (size_t i = 0; i < p->nshards; i++) free(job.errors[i]);
    free(job.errors);
    free(job.failed);
    return rc;
}

// ---- planning -----------------------------------------------------------------------------

// Fills a fresh slot's plan for batch `seq` (training: micro-batch seq % micros of step
// seq / micros). Under lock.
static void plan_slot(struct pipeline *p, struct slot *s, uint64_t seq) {
    uint64_t G = p->opt.global_batch;
    s->seq = seq;
    s->done = 0;
    s->ready = 0;
    s->count = 0;
    s->micro = 0;
    if (p->opt.train) {
        s->micro = (int)(seq % (uint64_t)p->micros);
        uint64_t step = p->opt.start_step + seq / (uint64_t)p->micros;
        s->epoch = step / p->batches_per_epoch;
        s->batch_in_epoch = step % p->batches_per_epoch;
        s->global_size = G;
    } else {
        s->epoch = 0;
        s->batch_in_epoch = seq;
        uint64_t left = p->total - seq * G;
        s->global_size = left < G ? left : G;
    }
    uint64_t begin, end;
    plan_worker_slice(s->global_size, p->opt.worker, p->opt.nworkers, &begin, &end);
    s->size = (int)(end - begin);
    s->first_position = s->batch_in_epoch * G + begin;
    if (p->opt.train && p->micros > 1) {
        // A micro-batch is a contiguous run of positions of the slice: the samples and their
        // augmentation (functions of seed, epoch and sample) are those of the unsplit slice.
        int offset = s->micro * p->micro_size;
        int left = s->size - offset;
        s->size = left < p->micro_size ? left : p->micro_size;
        s->first_position += (uint64_t)offset;
    }
}

// The global sample at `position` of `epoch`'s order. Under lock.
static uint64_t sample_at(struct pipeline *p, uint64_t epoch, uint64_t position) {
    if (!p->opt.train) return position;
    if (!p->order || p->order_epoch != epoch) {
        global_order_destroy(p->order);
        p->order = global_order_create(p->counts, p->nshards, p->opt.seed, epoch, p->opt.order_window);
        p->order_epoch = epoch;
    }
    return global_order_at(p->order, position);
}

struct task {
    struct slot *slot;
    int row;
    uint64_t sample, epoch;
};

// Waits for the next row to decode. Returns 0 with a task, or -1 when the thread should exit.
static int take_task(struct pipeline *p, struct task *t) {
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->stopping || p->next_seq >= p->end_seq) {
            pthread_mutex_unlock(&p->lock);
            return -1;
        }
        if (p->next_seq >= p->consumer_seq + (uint64_t)p->depth) {
            pthread_cond_wait(&p->slot_free, &p->lock);
            continue;
        }
        struct slot *s = &p->slots[p->next_seq % (uint64_t)p->depth];
        if (p->next_row == 0) plan_slot(p, s, p->next_seq);
        if (s->size > 0) break;
        // An empty slice (eval's last batch smaller than the worker count): ready at once.
        s->ready = 1;
        p->next_seq++;
        pthread_cond_broadcast(&p->ready);
    }
    struct slot *s = &p->slots[p->next_seq % (uint64_t)p->depth];
    t->slot = s;
    t->row = p->next_row;
    t->epoch = s->epoch;
    t->sample = sample_at(p, s->epoch, s->first_position + (uint64_t)p->next_row);
    if (++p->next_row >= s->size) {
        p->next_row = 0;
        p->next_seq++;
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

// Moves the kept rows to the front, in row order. Only the thread that finished the last row
// of the slot runs this, so nobody else touches the slot meanwhile.
static void compact_slot(struct pipeline *p, struct slot *s) {
    size_t C = (size_t)p->opt.num_classes;
    int out = 0;
    for (int row = 0; row < s->size; row++) {
        if (!s->keep[row]) continue;
        if (out != row) {
            memcpy(s->images + (size_t)out * p->image_floats, s->images + (size_t)row * p->image_floats,
                   p->image_floats * sizeof(float));
            memcpy(s->targets + (size_t)out * C, s->targets + (size_t)row * C, C * sizeof(float));
            s->samples[out] = s->samples[row];
        }
        out++;
    }
    s->count = out;
}

static void finish_row(struct pipeline *p, struct slot *s) {
    pthread_mutex_lock(&p->lock);
    int last = ++s->done == s->size;
    pthread_mutex_unlock(&p->lock);
    if (!last) return;
    compact_slot(p, s);
    pthread_mutex_lock(&p->lock);
    s->ready = 1;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->lock);
}

// The shard of a global sample and its index there (binary search over the prefix sums).
static void locate(const struct pipeline *p, uint64_t sample, size_t *shard, uint64_t *local) {
    size_t lo = 0, hi = p->nshards;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->first[mid] <= sample) lo = mid;
        else hi = mid;
    }
    while (lo + 1 < p->nshards && p->first[lo + 1] <= sample) lo++;  // empty shards
    *shard = lo;
    *local = sample - p->first[lo];
}

static void *decode_main(void *arg) {
    struct decode_thread *self = arg;
    struct pipeline *p = self->pipeline;
    cpu_binding_apply(p->binding, self->index);
    struct task t;
    while (take_task(p, &t) == 0) {
        struct slot *s = t.slot;
        size_t shard;
        uint64_t local;
        locate(p, t.sample, &shard, &local);
        s->samples[t.row] = t.sample;
        int why = sample_read(&self->reader, &p->config, p->paths[shard], shard, &p->indexes[shard].samples[local],
                              t.sample, t.epoch, s->images + (size_t)t.row * p->image_floats,
                              s->targets + (size_t)t.row * (size_t)p->opt.num_classes);
        s->keep[t.row] = why < 0;
        if (why >= 0) atomic_fetch_add(&p->skips[why], 1);
        finish_row(p, s);
    }
    return NULL;
}

// ---- public -------------------------------------------------------------------------------

static int check_options(const struct pipeline_options *o) {
    if (!o->shards || o->nshards == 0) return catlip_error_set("the data pipeline needs at least one shard");
    if (o->global_batch == 0) return catlip_error_set("global batch must be at least 1");
    if (o->nworkers < 1 || o->worker < 0 || o->worker >= o->nworkers)
        return catlip_error_set("worker %d of %d is not a valid worker index", o->worker, o->nworkers);
    if ((uint64_t)o->nworkers > o->global_batch)
        return catlip_error_set("global batch %llu is smaller than the %d workers",
                                (unsigned long long)o->global_batch, o->nworkers);
    if (o->image_size < 8 || o->image_size > 4096)
        return catlip_error_set("image size %d is outside [8, 4096]", o->image_size);
    if (o->num_classes < 1) return catlip_error_set("the data pipeline needs num_classes >= 1");
    if (o->micro_batch < 0) return catlip_error_set("micro-batch %d is negative", o->micro_batch);
    if (o->decode_threads < 0 || o->decode_threads > 256)
        return catlip_error_set("decode_threads %d is outside [0, 256]", o->decode_threads);
    return 0;
}

struct pipeline *pipeline_create(const struct pipeline_options *options) {
    if (check_options(options) != 0) return NULL;
    struct pipeline *p = xcalloc(1, sizeof *p);
    p->opt = *options;
    p->nshards = options->nshards;
    p->paths = xcalloc(p->nshards, sizeof *p->paths);
    for (size_t i = 0; i < p->nshards; i++) p->paths[i] = xstrdup(options->shards[i]);
    p->opt.shards = NULL;
    p->opt.index_cache_dir = options->index_cache_dir ? xstrdup(options->index_cache_dir) : NULL;
    p->nthreads = options->decode_threads > 0 ? options->decode_threads : 1;
    p->depth = options->ring_depth > 0 ? options->ring_depth : 2;
    for (int i = 0; i < PIPELINE_SKIP_COUNT; i++) atomic_init(&p->skips[i], 0);
    p->indexes = xcalloc(p->nshards, sizeof *p->indexes);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->slot_free, NULL);
    pthread_cond_init(&p->ready, NULL);
    if (load_indexes(p) != 0) {
        pipeline_destroy(p);
        return NULL;
    }
    p->counts = xcalloc(p->nshards, sizeof *p->counts);
    p->first = xcalloc(p->nshards + 1, sizeof *p->first);
    for (size_t i = 0; i < p->nshards; i++) {
        p->counts[i] = p->indexes[i].count;
        p->first[i + 1] = p->first[i] + p->counts[i];
        for (int k = 0; k < SHARD_SKIP_COUNT; k++) p->skips[k] += p->indexes[i].skips[k];
    }
    p->total = p->first[p->nshards];
    uint64_t G = p->opt.global_batch;
    uint64_t slice_begin, slice_end;
    plan_worker_slice(G, p->opt.worker, p->opt.nworkers, &slice_begin, &slice_end);
    int slice = (int)(slice_end - slice_begin);
    p->micro_size = p->opt.train && p->opt.micro_batch > 0 && p->opt.micro_batch < slice
                        ? p->opt.micro_batch
                        : slice;
    p->micros = (slice + p->micro_size - 1) / p->micro_size;
    if (p->opt.train) {
        p->batches_per_epoch = plan_batches_per_epoch(p->total, G);
        if (p->batches_per_epoch == 0) {
            catlip_error_set("the shards hold %llu usable samples, fewer than one global batch of %llu",
                             (unsigned long long)p->total, (unsigned long long)G);
            pipeline_destroy(p);
            return NULL;
        }
        p->end_seq = p->opt.max_batches ? p->opt.max_batches * (uint64_t)p->micros : UINT64_MAX;
    } else {
        p->batches_per_epoch = (p->total + G - 1) / G;
        p->end_seq = p->batches_per_epoch;
        if (p->opt.max_batches && p->opt.max_batches < p->end_seq) p->end_seq = p->opt.max_batches;
    }

    struct sample_config *c = &p->config;
    c->augment.train = p->opt.train;
    c->augment.image_size = p->opt.image_size;
    c->augment.resize_size = p->opt.resize_size;
    c->augment.flip_probability = -1;
    augment_options_defaults(&c->augment);
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f}, imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    int have_std = p->opt.std[0] > 0 && p->opt.std[1] > 0 && p->opt.std[2] > 0;
    for (int k = 0; k < 3; k++) {
        c->mean[k] = have_std ? p->opt.mean[k] : imagenet_mean[k];
        c->std[k] = have_std ? p->opt.std[k] : imagenet_std[k];
    }
    c->seed = p->opt.seed;
    c->num_classes = p->opt.num_classes;
    c->label = p->opt.label;
    c->label_ctx = p->opt.label_ctx;
    c->target_ids = p->opt.target_ids;

    size_t S = (size_t)p->opt.image_size;
    p->image_floats = 3 * S * S;
    p->capacity = p->micros > 1
                      ? p->micro_size
                      : (int)((G + (uint64_t)p->opt.nworkers - 1) / (uint64_t)p->opt.nworkers);
    p->slots = xcalloc((size_t)p->depth, sizeof *p->slots);
    for (int i = 0; i < p->depth; i++) {
        struct slot *s = &p->slots[i];
        s->seq = UINT64_MAX;
        s->images = xaligned_alloc((size_t)p->capacity * p->image_floats * sizeof(float));
        s->targets = xaligned_alloc((size_t)p->capacity * (size_t)p->opt.num_classes * sizeof(float));
        s->samples = xcalloc((size_t)p->capacity, sizeof *s->samples);
        s->keep = xcalloc((size_t)p->capacity, sizeof *s->keep);
    }
    p->binding = cpu_binding_plan(p->opt.compute_threads > 0 ? p->opt.compute_threads : -1, p->nthreads);
    p->threads = xcalloc((size_t)p->nthreads, sizeof *p->threads);
    for (int i = 0; i < p->nthreads; i++) {
        struct decode_thread *t = &p->threads[i];
        t->pipeline = p;
        t->index = i;
        sample_reader_init(&t->reader);
        if (pthread_create(&t->handle, NULL, decode_main, t) != 0)
            catlip_die("cannot start decode thread %d of %d", i, p->nthreads);
    }
    return p;
}

int pipeline_next(struct pipeline *p, struct batch *out) {
    pthread_mutex_lock(&p->lock);
    if (p->holding) {
        p->holding = 0;
        p->consumer_seq++;
        pthread_cond_broadcast(&p->slot_free);
    }
    if (p->consumer_seq >= p->end_seq) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    struct slot *s = &p->slots[p->consumer_seq % (uint64_t)p->depth];
    while (!(s->seq == p->consumer_seq && s->ready)) pthread_cond_wait(&p->ready, &p->lock);
    p->holding = 1;
    pthread_mutex_unlock(&p->lock);
    out->images = s->images;
    out->targets = s->targets;
    out->samples = s->samples;
    out->count = s->count;
    out->slice_size = s->size;
    out->global_size = s->global_size;
    out->step = p->opt.train ? p->opt.start_step + s->seq / (uint64_t)p->micros : s->seq;
    out->micro = s->micro;
    out->micros = p->opt.train ? p->micros : 1;
    out->epoch = s->epoch;
    out->batch_in_epoch = s->batch_in_epoch;
    return 1;
}

void pipeline_destroy(struct pipeline *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->slot_free);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; p->threads && i < p->nthreads; i++) {
        pthread_join(p->threads[i].handle, NULL);
        sample_reader_free(&p->threads[i].reader);
    }
    free(p->threads);
    cpu_binding_free(p->binding);
    for (int i = 0; p->slots && i < p->depth; i++) {
        free(p->slots[i].images);
        free(p->slots[i].targets);
        free(p->slots[i].samples);
        free(p->slots[i].keep);
    }
    free(p->slots);
    global_order_destroy(p->order);
    for (size_t i = 0; i < p->nshards; i++) {
        if (p->indexes) shard_index_free(&p->indexes[i]);
        free(p->paths[i]);
    }
    free(p->indexes);
    free(p->paths);
    free(p->counts);
    free(p->first);
    free((char *)p->opt.index_cache_dir);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->slot_free);
    pthread_cond_destroy(&p->ready);
    free(p);
}

uint64_t pipeline_samples(const struct pipeline *p) { return p->total; }
uint64_t pipeline_batches_per_epoch(const struct pipeline *p) { return p->batches_per_epoch; }
const char *pipeline_describe(const struct pipeline *p) { return cpu_binding_describe(p->binding); }

void pipeline_skips(const struct pipeline *p, uint64_t counts[PIPELINE_SKIP_COUNT]) {
    for (int i = 0; i < PIPELINE_SKIP_COUNT; i++) counts[i] = atomic_load(&p->skips[i]);
}

int pipeline_format_skips(const struct pipeline *p, char *buf, size_t size) {
    size_t w = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < PIPELINE_SKIP_COUNT; i++) {
        uint64_t n = atomic_load(&p->skips[i]);
        if (!n) continue;
        int k = snprintf(buf + w, size > w ? size - w : 0, "%s%s=%llu", w ? " " : "", pipeline_skip_names[i],
                         (unsigned long long)n);
        if (k > 0) w += (size_t)k;
        if (w >= size) {
            w = size ? size - 1 : 0;
            break;
        }
    }
    return (int)w;
}
