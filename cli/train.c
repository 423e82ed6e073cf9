// catlip train: one MPI job (or one process without a launcher).
//
// Every rank parses the same configuration. Rank 0 decides the plan (fresh start or which
// checkpoint to resume) and broadcasts it; then rank 0 becomes the coordinator and ranks
// 1..N the workers, with their own communicator for gradient reductions. Without a
// launcher (or with one rank) the same code runs as one coordinator and one worker in one
// process, without MPI.
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catlip.pb-c.h"
#include "cli/commands.h"
#include "cli/run.h"
#include "coordinator/coordinator.h"
#include "core/check.h"
#include "core/log.h"
#include "core/rng.h"
#include "data/shard_index.h"
#include "data/shardlist.h"
#include "io/checkpoint.h"
#include "nn/blas_info.h"
#include "nn/gemm.h"
#include "text/vocab.h"
#include "worker/worker.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: catlip train [-c CONFIG.yaml] [--set key=value ...] [--resume auto|PATH]\n"
            "  mpirun -n N+1 catlip train ...   rank 0 coordinates, ranks 1..N train\n"
            "  --resume auto    continue from the newest valid checkpoint in RUN_DIR/checkpoints\n"
            "                   (a fresh start when there is none)\n"
            "  --resume PATH    continue from that checkpoint file\n"
            "SIGTERM or SIGUSR1: checkpoint at the next step boundary and exit 0.\n\nsettings:\n");
    config_print_keys(out);
}

static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") ||
           getenv("PMI_SIZE") || (getenv("SLURM_STEP_ID") && getenv("SLURM_NTASKS"));
}

static int make_dirs(const char *path) {
    char buf[CONFIG_STRING_MAX + 64];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return catlip_error_set("cannot create directory %s: %s", buf, strerror(errno));
        *p = saved;
        if (!saved) return 0;
    }
}

static void on_worker_signal(int signum) {
    static volatile sig_atomic_t interrupts;
    if (signum == SIGINT && ++interrupts >= 2) _exit(130);
    worker_stop_requested = 1;
}

static void install_worker_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_worker_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

// Rank 0: everything that can fail because of the outside world, before any training.
// Fills run->start_step, run->resume_path, run->run_id.
static int plan_run(struct run *run, const char *resume) {
    const struct config *cfg = &run->cfg;
    if (make_dirs(cfg->run_dir) != 0) return -1;
    char dir[CONFIG_STRING_MAX + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", cfg->run_dir);
    if (make_dirs(dir) != 0) return -1;
    if (resume && !strcmp(resume, "auto")) {
        char *found_path = NULL;
        int64_t found_step;
        int found = ckpt_find_latest(dir, &found_path, &found_step);
        if (found < 0) return -1;
        if (found) snprintf(run->resume_path, sizeof run->resume_path, "%s", found_path);
        else log_info("--resume auto: no checkpoint in %s, starting fresh", dir);
        free(found_path);
    } else if (resume) {
        snprintf(run->resume_path, sizeof run->resume_path, "%s", resume);
    }
    struct rng r;
    rng_init(&r, rng_key((uint64_t)time_unix(), (uint64_t)getpid(), 0, 0));
    snprintf(run->run_id, sizeof run->run_id, "%016llx", (unsigned long long)rng_u64(&r));
    if (run->resume_path[0]) {
        struct ckpt_reader *reader;
        if (ckpt_reader_open(&reader, run->resume_path) != 0) return -1;
        const Catlip__CheckpointHeader *h = ckpt_reader_header(reader);
        const Catlip__ModelConfig *m = h->model;
        if (!m || m->dim != run->model.dim || m->depth != run->model.depth ||
            m->heads != run->model.heads || m->mlp_hidden != run->model.mlp_hidden ||
            m->image_size != run->model.image_size || m->patch_size != run->model.patch_size ||
            m->num_classes != run->model.num_classes) {
            int rc = catlip_error_set(
                "checkpoint %s holds a different model (dim %d, depth %d, heads %d, image %d, "
                "patch %d, %d classes) than the configuration (dim %d, depth %d, heads %d, "
                "image %d, patch %d, %d classes)", run->resume_path, m ? m->dim : 0,
                m ? m->depth : 0, m ? m->heads : 0, m ? m->image_size : 0,
                m ? m->patch_size : 0, m ? m->num_classes : 0, run->model.dim,
                run->model.depth, run->model.heads, run->model.image_size,
                run->model.patch_size, run->model.num_classes);
            ckpt_reader_close(reader);
            return rc;
        }
        if (h->vocab_hash != run->vocab_hash) {
            ckpt_reader_close(reader);
            return catlip_error_set("checkpoint %s was trained with a different vocabulary "
                                    "(hash %016llx) than %s (hash %016llx)", run->resume_path,
                                    (unsigned long long)h->vocab_hash,
                                    cfg->data.vocab[0] ? cfg->data.vocab : "synthetic data",
                                    (unsigned long long)run->vocab_hash);
        }
        if (h->seed != (uint64_t)cfg->seed)
            log_warn("checkpoint seed %llu differs from seed %lld: the data order changes",
                     (unsigned long long)h->seed, (long long)cfg->seed);
        run->start_step = h->position ? h->position->step : 0;
        if (h->run_id && h->run_id[0]) snprintf(run->run_id, sizeof run->run_id, "%s", h->run_id);
        log_info("resuming from %s at step %lld (written by %d worker%s, now %d)",
                 run->resume_path, (long long)run->start_step, h->worker_count,
                 h->worker_count == 1 ? "" : "s", run->nworkers);
        ckpt_reader_close(reader);
    }
    char path[CONFIG_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", cfg->run_dir);
    char *yaml = config_to_yaml(cfg);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(yaml, f) >= 0;
    if (f && fclose(f) != 0) ok = 0;
    free(yaml);
    if (!ok) return catlip_error_set("cannot write %s: %s", path, strerror(errno));
    return 0;
}

// Rank 0 tells everyone whether planning worked and, if so, the plan.
static int share_plan(struct run *run, int planned_ok) {
    int64_t header[5] = {planned_ok, run->start_step, run->epoch_samples, run->steps_per_epoch,
                         run->total_steps};
    MPI_Bcast(header, 5, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(run->run_id, sizeof run->run_id, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(run->resume_path, sizeof run->resume_path, MPI_CHAR, 0, MPI_COMM_WORLD);
    run->start_step = header[1];
    run->epoch_samples = header[2];
    run->steps_per_epoch = header[3];
    run->total_steps = header[4];
    return (int)header[0];
}

// Every rank: the head's width (the vocabulary's size for pre-training on shards) and the
// model shape. Loading a 24k-line vocabulary takes milliseconds, so each rank reads it.
static int resolve_classes(struct run *run) {
    struct config *cfg = &run->cfg;
    int classes = (int)cfg->model.num_classes;
    if (!strcmp(cfg->task, "classify")) {
        // Labels come from the shards' .cls members: the head width is a setting.
        if (classes <= 0) return catlip_error_set("task: classify needs model.num_classes (> 0)");
        run->vocab_hash = 0;
    } else if (!strcmp(cfg->data.train, "synthetic")) {
        if (classes <= 0) return catlip_error_set("model.num_classes must be set (> 0) for synthetic data");
        run->vocab_hash = 0;
    } else {
        if (!cfg->data.vocab[0])
            return catlip_error_set("data.vocab must name a vocabulary TSV (catlip vocab build) "
                                    "to pre-train on %s", cfg->data.train);
        struct vocab *v = vocab_load(cfg->data.vocab);
        if (!v) return -1;
        int size = vocab_size(v);
        run->vocab_hash = vocab_hash(v);
        vocab_free(v);
        if (classes > 0 && classes != size)
            return catlip_error_set("model.num_classes %d differs from the %d synsets of %s", classes,
                                    size, cfg->data.vocab);
        classes = size;
    }
    return vit_config_from_run(&run->model, cfg, classes);
}

// Rank 0: samples in an epoch and the step count. For shards this loads (or builds and
// caches) every shard's index, so the workers then find them ready.
static int count_samples(struct run *run) {
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
    run->total_steps = cfg->train.steps > 0 ? cfg->train.steps : cfg->train.epochs * run->steps_per_epoch;
    if (run->total_steps <= 0) return catlip_error_set("set train.steps or train.epochs to a positive number");
    return 0;
}

int cmd_train(int argc, char **argv) {
    static struct run run;
    struct config *cfg = &run.cfg;
    config_defaults(cfg);
    const char *resume = NULL;
    static struct option opts[] = {{"config", 1, 0, 'c'}, {"set", 1, 0, 'S'},
                                   {"resume", 1, 0, 'r'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (config_load_file(cfg, optarg) != 0) catlip_die("%s", catlip_error());
            break;
        case 'S':
            if (config_set(cfg, optarg) != 0) catlip_die("%s", catlip_error());
            break;
        case 'r': resume = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        catlip_die("unexpected argument '%s' (settings go in --set key=value)", argv[optind]);

    run.single_process = 1;
    run.world_size = 1;
    if (launched_by_mpi()) {
        int provided;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        MPI_Comm_rank(MPI_COMM_WORLD, &run.world_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &run.world_size);
        run.single_process = run.world_size == 1;
        if (!run.single_process) log_set_rank(run.world_rank);
        // A failed MPI call returns an error code to us instead of aborting silently.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm node;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, run.world_rank, MPI_INFO_NULL, &node);
        MPI_Comm_rank(node, &run.local_rank);
        MPI_Comm_free(&node);
    }
    run.nworkers = run.single_process ? 1 : run.world_size - 1;
    run.worker_index = run.single_process ? 0 : run.world_rank - 1;
    run.workers = MPI_COMM_NULL;

    // Everything a rank can check on its own: every rank gets the same verdict.
    int config_ok = config_validate(cfg) == 0;
    if (config_ok) config_ok = resolve_classes(&run) == 0;
    if (!config_ok) {
        if (run.world_rank == 0) fprintf(stderr, "catlip: error: %s\n", catlip_error());
        if (!run.single_process || launched_by_mpi()) MPI_Finalize();
        return 2;
    }
    const int64_t G = cfg->train.global_batch;
    int planned_ok = 1;
    if (run.world_rank == 0) {
        planned_ok = count_samples(&run) == 0 && plan_run(&run, resume) == 0;
        if (!planned_ok) fprintf(stderr, "catlip: error: %s\n", catlip_error());
    }
    if (!run.single_process) planned_ok = share_plan(&run, planned_ok);
    if (!planned_ok) {
        if (launched_by_mpi()) MPI_Finalize();
        return 2;
    }
    if (run.world_rank == 0) {
        log_info("run %s: %d worker%s, %lld steps of %lld images (from step %lld), model %s "
                 "(dim %d, depth %d, %d classes), run directory %s", run.run_id, run.nworkers,
                 run.nworkers == 1 ? "" : "s", (long long)run.total_steps, (long long)G,
                 (long long)run.start_step, cfg->model.name, run.model.dim, run.model.depth,
                 run.model.num_classes, cfg->run_dir);
        log_info("matmuls: %s; BLAS %s", gemm_backend(), blas_describe());
    }

    int status;
    if (run.single_process) {
        install_worker_signals();
        run.coordinator = coordinator_create(&run);
        if (coordinator_start_loop_thread(run.coordinator) != 0) catlip_die("%s", catlip_error());
        status = worker_run(&run);
        coordinator_destroy(run.coordinator);
    } else {
        MPI_Comm_split(MPI_COMM_WORLD, run.world_rank == 0 ? 0 : 1, run.world_rank, &run.workers);
        if (run.world_rank == 0) {
            struct coordinator *coord = coordinator_create(&run);
            status = coordinator_serve(coord);
            coordinator_destroy(coord);
        } else {
            install_worker_signals();
            status = worker_run(&run);
        }
        MPI_Comm_free(&run.workers);
    }
    if (launched_by_mpi()) MPI_Finalize();
    if (run.world_rank == 0 && status == 0) log_info("done; metrics in %s/metrics.jsonl", cfg->run_dir);
    return status;
}
