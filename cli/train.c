// catlip train: parse the run configuration and train.
//
// This is the single-process trainer (one worker, no launcher) on built-in synthetic data;
// the distributed coordinator/worker runtime and real shards come in with the runtime and
// data-pipeline work and will take over from here.
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/config.h"
#include "core/log.h"
#include "data/synthetic.h"
#include "nn/blas_info.h"
#include "nn/train_state.h"

static void usage(FILE *out) {
    fprintf(out, "usage: catlip train [-c CONFIG.yaml] [--set key=value ...]\n\nsettings:\n");
    config_print_keys(out);
}

static int make_dirs(const char *path) {
    char buf[CONFIG_STRING_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return catlip_error_set("cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return catlip_error_set("cannot create run directory %s: %s", buf, strerror(errno));
    return 0;
}

static void format_duration(char *out, size_t n, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, n, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else snprintf(out, n, "%lds", s);
}

int cmd_train(int argc, char **argv) {
    struct config cfg;
    config_defaults(&cfg);
    static struct option opts[] = {
        {"config", 1, 0, 'c'}, {"set", 1, 0, 'S'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (config_load_file(&cfg, optarg) != 0) goto bad;
            break;
        case 'S':
            if (config_set(&cfg, optarg) != 0) goto bad;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) catlip_die("unexpected argument '%s' (settings go in --set key=value)", argv[optind]);
    if (config_validate(&cfg) != 0) goto bad;
    if (strcmp(cfg.data.train, "synthetic") != 0)
        catlip_die("data.train '%s': reading shards needs the data pipeline, which this build "
                   "does not have yet; use data.train=synthetic", cfg.data.train);
    if (cfg.model.num_classes <= 0)
        catlip_die("model.num_classes must be set (> 0) for synthetic data");
    struct vit_config vc;
    if (vit_config_from_run(&vc, &cfg, 0) != 0) goto bad;

    const int64_t epoch_samples = 4096;
    const int G = (int)cfg.train.global_batch;
    int64_t steps_per_epoch = (epoch_samples + G - 1) / G;
    int64_t total = cfg.train.steps > 0 ? cfg.train.steps : cfg.train.epochs * steps_per_epoch;
    if (total <= 0) catlip_die("set train.steps or train.epochs to a positive number");

    if (make_dirs(cfg.run_dir) != 0) goto bad;
    char path[CONFIG_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", cfg.run_dir);
    char *yaml = config_to_yaml(&cfg);
    FILE *f = fopen(path, "w");
    if (!f || fputs(yaml, f) < 0 || fclose(f) != 0) catlip_die("cannot write %s", path);
    free(yaml);
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg.run_dir);
    FILE *metrics = fopen(path, "a");
    if (!metrics) catlip_die("cannot open %s: %s", path, strerror(errno));

    struct pool *pool = pool_create((int)cfg.train.threads, 1);
    struct optim_settings os;
    optim_settings_from_run(&os, &cfg, total);
    struct train_state ts;
    train_state_create(&ts, &vc, &os, G, pool, (uint64_t)cfg.seed);
    struct synthetic_data data;
    synthetic_create(&data, (uint64_t)cfg.seed, vc.image_size, vc.num_classes, epoch_samples);
    log_info("model %s: dim %d, depth %d, heads %d, %dx%d images, patch %d, %d classes, %zu "
             "parameters", cfg.model.name, vc.dim, vc.depth, vc.heads, vc.image_size,
             vc.image_size, vc.patch_size, vc.num_classes, ts.model.layout.total);
    log_info("compute: %s, kernels %s, BLAS %s", pool_describe(pool), ts.model.k->name,
             blas_describe());
    log_info("training %lld steps of %d images on synthetic data; run directory %s",
             (long long)total, G, cfg.run_dir);

    size_t nimg = (size_t)G * 3 * vc.image_size * vc.image_size;
    float *images = xaligned_alloc(nimg * sizeof(float));
    float *targets = xaligned_alloc((size_t)G * vc.num_classes * sizeof(float));
    double start = time_now(), interval_start = start, loss_sum = 0.0;
    int64_t interval_steps = 0;
    for (int64_t step = 0; step < total; step++) {
        synthetic_batch(&data, step * G, G, images, targets);
        loss_sum += train_forward_backward(&ts, images, targets, G, G, NULL, NULL);
        train_apply_update(&ts);
        interval_steps++;
        if ((step + 1) % cfg.log.every_steps == 0 || step + 1 == total) {
            double now = time_now();
            double ips = interval_steps * G / (now - interval_start);
            double loss = loss_sum / interval_steps;
            char eta[32];
            format_duration(eta, sizeof eta, (double)(total - step - 1) * G / ips);
            int64_t epoch = (step * G) / epoch_samples;
            log_info("step %lld/%lld  epoch %lld  loss %.4f  lr %.3g  grad_norm %.3f  %.1f img/s  "
                     "ETA %s", (long long)(step + 1), (long long)total, (long long)epoch, loss,
                     ts.last_lr, ts.last_grad_norm, ips, eta);
            fprintf(metrics,
                    "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"lr\": %.6g, "
                    "\"grad_norm\": %.6g, \"images_per_second\": %.3f, \"samples\": %lld, "
                    "\"time\": %.3f}\n",
                    (long long)(step + 1), (long long)epoch, loss, ts.last_lr, ts.last_grad_norm,
                    ips, (long long)((step + 1) * G), time_unix());
            fflush(metrics);
            interval_start = now;
            interval_steps = 0;
            loss_sum = 0.0;
        }
    }
    log_info("done: %lld steps in %.1f s; metrics in %s/metrics.jsonl", (long long)total,
             time_now() - start, cfg.run_dir);
    fclose(metrics);
    free(images), free(targets);
    synthetic_free(&data);
    train_state_free(&ts);
    pool_destroy(pool);
    return 0;
bad:
    fprintf(stderr, "catlip: error: %s\n", catlip_error());
    return 2;
}
