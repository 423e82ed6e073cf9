#include "train/plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catlip.pb-c.h"
#include "core/atomic_file.h"
#include "core/check.h"
#include "core/log.h"
#include "core/path.h"
#include "core/rng.h"
#include "data/shard_index.h"
#include "data/shardlist.h"
#include "io/checkpoint.h"
#include "nn/text_tower.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

// The checkpoint to resume must hold this model and vocabulary; it gives the start step and
// keeps the run id. 0, or -1 with catlip_error().
static int check_resume_header(struct run *run, const Catlip__CheckpointHeader *h) {
    const struct config *cfg = &run->cfg;
    const Catlip__ModelConfig *m = h->model;
    if (!m || m->dim != run->model.dim || m->depth != run->model.depth ||
        m->heads != run->model.heads || m->mlp_hidden != run->model.mlp_hidden ||
        m->image_size != run->model.image_size || m->patch_size != run->model.patch_size ||
        m->num_classes != run->model.num_classes)
        return catlip_error_set(
            "checkpoint %s holds a different model (dim %d, depth %d, heads %d, image %d, "
            "patch %d, %d classes) than the configuration (dim %d, depth %d, heads %d, "
            "image %d, patch %d, %d classes)",
            run->resume_path, m ? m->dim : 0, m ? m->depth : 0, m ? m->heads : 0,
            m ? m->image_size : 0, m ? m->patch_size : 0, m ? m->num_classes : 0, run->model.dim,
            run->model.depth, run->model.heads, run->model.image_size, run->model.patch_size,
            run->model.num_classes);
    const int clip = m->objective && !strcmp(m->objective, "clip");
    const struct text_config *t = &run->model.text;
    if (clip != run->model.clip ||
        (clip && (m->text_width != t->width || m->text_depth != t->depth ||
                  m->text_heads != t->heads || m->text_vocab != t->vocab_size ||
                  m->context_length != t->context)))
        return catlip_error_set(
            "checkpoint %s holds a different model (objective %s, text width %d, depth %d, "
            "heads %d, %d tokens, context %d) than the configuration (objective %s, text width "
            "%d, depth %d, heads %d, %d tokens, context %d)",
            run->resume_path, clip ? "clip" : "catlip", m->text_width, m->text_depth,
            m->text_heads, m->text_vocab, m->context_length, run->model.clip ? "clip" : "catlip",
            t->width, t->depth, t->heads, t->vocab_size, t->context);
    if (h->tokenizer_hash != run->tokenizer_hash)
        return catlip_error_set(
            "checkpoint %s was trained with a different tokenizer (hash %016llx) than %s "
            "(hash %016llx)",
            run->resume_path, (unsigned long long)h->tokenizer_hash, cfg->data.tokenizer,
            (unsigned long long)run->tokenizer_hash);
    if (h->vocab_hash != run->vocab_hash)
        return catlip_error_set(
            "checkpoint %s was trained with a different vocabulary "
            "(hash %016llx) than %s (hash %016llx)",
            run->resume_path, (unsigned long long)h->vocab_hash,
            cfg->data.vocab[0] ? cfg->data.vocab : "synthetic data",
            (unsigned long long)run->vocab_hash);
    if (h->seed != (uint64_t)cfg->seed)
        log_warn("checkpoint seed %llu differs from seed %lld: the data order changes",
                 (unsigned long long)h->seed, (long long)cfg->seed);
    run->start_step = h->position ? h->position->step : 0;
    if (h->run_id && h->run_id[0]) snprintf(run->run_id, sizeof run->run_id, "%s", h->run_id);
    log_info("resuming from %s at step %lld (written by %d worker%s, now %d)", run->resume_path,
             (long long)run->start_step, h->worker_count, h->worker_count == 1 ? "" : "s",
             run->nworkers);
    return 0;
}

// The resume point: --resume auto takes the newest checkpoint that verifies (its header is
// then read alone: the file was just read whole); --resume PATH is verified here. Fills
// run->resume_path (or leaves it empty: a fresh start) and, when resuming, the start step.
static int plan_resume(struct run *run, const char *resume, const char *dir) {
    int verified = 0;
    if (resume && !strcmp(resume, "auto")) {
        char *found_path = NULL;
        int64_t found_step;
        int found = ckpt_find_latest(dir, &found_path, &found_step);
        if (found < 0) return -1;
        if (found)
            snprintf(run->resume_path, sizeof run->resume_path, "%s", found_path);
        else
            log_info("--resume auto: no checkpoint in %s, starting fresh", dir);
        free(found_path);
        verified = 1;
    } else if (resume) {
        snprintf(run->resume_path, sizeof run->resume_path, "%s", resume);
    }
    if (!run->resume_path[0]) return 0;
    int rc;
    if (verified) {
        Catlip__CheckpointRecord *record;
        if (ckpt_read_header(run->resume_path, &record) != 0) return -1;
        rc = check_resume_header(run, record->header);
        catlip__checkpoint_record__free_unpacked(record, NULL);
    } else {
        struct ckpt_reader *reader;
        if (ckpt_reader_open(&reader, run->resume_path) != 0) return -1;
        rc = check_resume_header(run, ckpt_reader_header(reader));
        ckpt_reader_close(reader);
    }
    return rc;
}

int plan_run(struct run *run, const char *resume) {
    const struct config *cfg = &run->cfg;
    if (path_make_dirs(cfg->run_dir) != 0) return -1;
    char dir[CONFIG_STRING_MAX + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", cfg->run_dir);
    if (path_make_dirs(dir) != 0) return -1;
    struct rng r;
    rng_init(&r, rng_key((uint64_t)time_unix(), (uint64_t)getpid(), 0, 0));
    snprintf(run->run_id, sizeof run->run_id, "%016llx", (unsigned long long)rng_u64(&r));
    if (plan_resume(run, resume, dir) != 0) return -1;
    char path[CONFIG_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", cfg->run_dir);
    char *yaml = config_to_yaml(cfg);
    int rc = atomic_file_replace(path, yaml, strlen(yaml), 0644);
    free(yaml);
    return rc;
}

// Rank 0 tells everyone whether planning worked and, if so, the plan.
int plan_share(struct run *run, int planned_ok) {
    int64_t header[5] = {planned_ok, run->start_step, run->epoch_samples, run->steps_per_epoch,
                         run->total_steps};
    MPI_Bcast(header, 5, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(run->run_id, sizeof run->run_id, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(run->resume_path, sizeof run->resume_path, MPI_CHAR, 0, MPI_COMM_WORLD);
    run->start_step = header[1];
    run->epoch_samples = header[2];
    run->steps_per_epoch = header[3];
    run->total_steps = header[4];
    // Rank 0 learns every rank's host, to name the host of a worker that is lost.
    char name[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(name, &len);
    char mine[RUN_HOST_MAX];
    snprintf(mine, sizeof mine, "%s", name);
    if (run->world_rank == 0) run->hosts = xcalloc((size_t)run->world_size, RUN_HOST_MAX);
    MPI_Gather(mine, RUN_HOST_MAX, MPI_CHAR, run->hosts, RUN_HOST_MAX, MPI_CHAR, 0, MPI_COMM_WORLD);
    return (int)header[0];
}

// Every rank: the head's width (the vocabulary's size for pre-training on shards) and the
// model shape. Loading a 24k-line vocabulary takes milliseconds, so each rank reads it.
// model.objective clip: the image projection's width is model.embed_dim, the text tower's
// vocabulary the tokenizer's (read by every rank, as the synset vocabulary is).
static int plan_resolve_clip(struct run *run) {
    const struct config *cfg = &run->cfg;
    struct tokenizer *tok = tokenizer_load(cfg->data.tokenizer);
    if (!tok) return catlip_error_set("data.tokenizer: %s", catlip_error());
    int size = tokenizer_size(tok);
    run->tokenizer_hash = tokenizer_hash(tok);
    tokenizer_free(tok);
    run->vocab_hash = 0;
    struct text_config text;
    if (vit_config_from_run(&run->model, cfg, (int)cfg->model.embed_dim) != 0 ||
        text_config_make(&text, cfg->model.text, size, (int)cfg->model.context_length,
                         TOKENIZER_EOT, (int)cfg->model.text_width, (int)cfg->model.text_depth,
                         (int)cfg->model.text_heads, (int)cfg->model.embed_dim) != 0)
        return -1;
    return vit_config_make_clip(&run->model, &text);
}

int plan_resolve_classes(struct run *run) {
    struct config *cfg = &run->cfg;
    if (!strcmp(cfg->model.objective, "clip")) return plan_resolve_clip(run);
    int classes = (int)cfg->model.num_classes;
    if (!strcmp(cfg->task, "classify")) {
        // Labels come from the shards' .cls members: the head width is a setting.
        if (classes <= 0) return catlip_error_set("task: classify needs model.num_classes (> 0)");
        run->vocab_hash = 0;
    } else if (!strcmp(cfg->data.train, "synthetic")) {
        if (classes <= 0)
            return catlip_error_set("model.num_classes must be set (> 0) for synthetic data");
        run->vocab_hash = 0;
    } else {
        if (!cfg->data.vocab[0])
            return catlip_error_set(
                "data.vocab must name a vocabulary TSV (catlip vocab build) "
                "to pre-train on %s",
                cfg->data.train);
        struct vocab *v = vocab_load(cfg->data.vocab);
        if (!v) return -1;
        int size = vocab_size(v);
        run->vocab_hash = vocab_hash(v);
        vocab_free(v);
        if (classes > 0 && classes != size)
            return catlip_error_set("model.num_classes %d differs from the %d synsets of %s",
                                    classes, size, cfg->data.vocab);
        classes = size;
    }
    return vit_config_from_run(&run->model, cfg, classes);
}

// Rank 0: samples in an epoch and the step count. For shards this loads (or builds and
// caches) every shard's index, so the workers then find them ready.
int plan_count_samples(struct run *run) {
    const struct config *cfg = &run->cfg;
    const int64_t G = cfg->train.global_batch;
    if (!strcmp(cfg->data.train, "synthetic")) {
        run->epoch_samples = 4096;  // one synthetic epoch: 4096 generated samples
    } else {
        struct shard_list shards;
        if (shardlist_expand(cfg->data.train, &shards) != 0) return -1;
        double t0 = time_now();
        uint64_t total = 0;
        for (size_t i = 0; i < shards.count; i++) {
            struct shard_index index;
            if (shard_index_load(shards.paths[i], NULL, &index, NULL) != 0) {
                if (!cfg->data.skip_missing_shards) {
                    shardlist_free(&shards);
                    return -1;
                }
                log_warn("%s (data.skip_missing_shards: skipped)", catlip_error());
                continue;
            }
            total += index.count;
            shard_index_free(&index);
        }
        log_info("data: %zu shards, %llu samples (indexes ready in %.1f s)", shards.count,
                 (unsigned long long)total, time_now() - t0);
        shardlist_free(&shards);
        run->epoch_samples = (int64_t)total;
    }
    run->steps_per_epoch = run->epoch_samples / G;
    if (run->steps_per_epoch < 1)
        return catlip_error_set("the data has %lld samples, fewer than one global batch of %lld",
                                (long long)run->epoch_samples, (long long)G);
    run->total_steps =
        cfg->train.steps > 0 ? cfg->train.steps : cfg->train.epochs * run->steps_per_epoch;
    if (run->total_steps <= 0)
        return catlip_error_set("set train.steps or train.epochs to a positive number");
    return 0;
}
