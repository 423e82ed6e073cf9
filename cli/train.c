// catlip train: one MPI job (or one process without a launcher).
//
// Every rank parses the same configuration. Rank 0 decides the plan (fresh start or which
// checkpoint to resume) and broadcasts it; then rank 0 becomes the coordinator and ranks
// 1..N the workers, with their own communicator for gradient reductions. Without a
// launcher (or with one rank) the same code runs as one coordinator and one worker in one
// process, without MPI.
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "coordinator/coordinator.h"
#include "core/check.h"
#include "core/log.h"
#include "nn/blas_info.h"
#include "nn/gemm.h"
#include "train/link.h"
#include "train/plan.h"
#include "train/run.h"
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

// No launcher: one coordinator and one worker in this process, over the in-process link; the
// worker's exit status reaches the coordinator like any other message.
static int run_single_process(struct run *run) {
    install_worker_signals();
    struct link *link = link_local_create();
    struct coordinator *coord = coordinator_create(run, link);
    if (coordinator_start_loop_thread(coord) != 0) catlip_die("%s", catlip_error());
    worker_run(run, link);
    int status = coordinator_exit_status(coord);
    coordinator_destroy(coord);
    link_destroy(link);
    return status;
}

// A launched job: rank 0 coordinates, the others train on their own communicator.
static int run_launched(struct run *run) {
    MPI_Comm_split(MPI_COMM_WORLD, run->world_rank == 0 ? 0 : 1, run->world_rank, &run->workers);
    struct link *link = link_mpi_create(run->nworkers);
    int status;
    if (run->world_rank == 0) {
        struct coordinator *coord = coordinator_create(run, link);
        status = coordinator_serve(coord);
        coordinator_destroy(coord);
    } else {
        install_worker_signals();
        status = worker_run(run, link);
    }
    link_destroy(link);
    MPI_Comm_free(&run->workers);
    return status;
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
        // A peer whose host died leaves a TCP socket that a write turns into SIGPIPE, which
        // killed a surviving rank (status 141) before the coordinator could name the lost
        // host (seen once in 7 runs of hosts.slurm_kill): a dead peer is an MPI error or the
        // worker timeout, never a signal.
        signal(SIGPIPE, SIG_IGN);
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
    if (config_ok) config_ok = plan_resolve_classes(&run) == 0;
    if (!config_ok) {
        if (run.world_rank == 0) catlip_error_print();
        if (!run.single_process || launched_by_mpi()) MPI_Finalize();
        return 2;
    }
    const int64_t G = cfg->train.global_batch;
    int planned_ok = 1;
    if (run.world_rank == 0) {
        planned_ok = plan_count_samples(&run) == 0 && plan_run(&run, resume) == 0;
        if (!planned_ok) catlip_error_print();
    }
    if (!run.single_process) planned_ok = plan_share(&run, planned_ok);
    if (!planned_ok) {
        run_free_hosts(&run);
        if (launched_by_mpi()) MPI_Finalize();
        return 2;
    }
    if (run.world_rank == 0) {
        if (run.model.clip)
            log_info("run %s: %d worker%s, %lld steps of %lld images (from step %lld), objective "
                     "clip: image tower %s (dim %d, depth %d), text tower %s (width %d, depth %d, "
                     "%d tokens, context %d), embeddings %d, run directory %s", run.run_id,
                     run.nworkers, run.nworkers == 1 ? "" : "s", (long long)run.total_steps,
                     (long long)G, (long long)run.start_step, cfg->model.name, run.model.dim,
                     run.model.depth, cfg->model.text, run.model.text.width, run.model.text.depth,
                     run.model.text.vocab_size, run.model.text.context, run.model.num_classes,
                     cfg->run_dir);
        else
            log_info("run %s: %d worker%s, %lld steps of %lld images (from step %lld), model %s "
                     "(dim %d, depth %d, %d classes), run directory %s", run.run_id, run.nworkers,
                     run.nworkers == 1 ? "" : "s", (long long)run.total_steps, (long long)G,
                     (long long)run.start_step, cfg->model.name, run.model.dim, run.model.depth,
                     run.model.num_classes, cfg->run_dir);
        log_info("matmuls: %s; BLAS %s", gemm_backend(), blas_describe());
    }

    int status = run.single_process ? run_single_process(&run) : run_launched(&run);
    run_free_hosts(&run);
    if (launched_by_mpi()) MPI_Finalize();
    if (run.world_rank == 0 && status == 0) log_info("done; metrics in %s/metrics.jsonl", cfg->run_dir);
    return status;
}
