#include "model/inference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "io/checkpoint.h"
#include "model/checkpoint_state.h"

// catlip_error() prefixed with `what` (copied first: the error buffer is both source and target).
static int error_prefixed(const char *what, const char *middle) {
    char cause[512];
    snprintf(cause, sizeof cause, "%s", catlip_error());
    return catlip_error_set("%s: %s%s", what, middle, cause);
}

// A directory: its checkpoints/ subdirectory (a run dir) or itself, newest valid checkpoint.
static char *resolve_checkpoint(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return catlip_error_set("%s: no such checkpoint", path), NULL;
    if (!S_ISDIR(st.st_mode)) return xstrdup(path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/checkpoints", path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", path);
    char *found = NULL;
    int64_t step;
    int rc = ckpt_find_latest(dir, &found, &step);
    if (rc < 0) return NULL;
    if (rc == 0) return catlip_error_set("%s: no valid checkpoint in it", dir), NULL;
    return found;
}

// The run configuration text of the header, through config_load_file (one parser for both).
static int load_run_config(struct config *cfg, const char *yaml, const char *path) {
    config_defaults(cfg);
    if (!yaml || !yaml[0]) return 0;
    char tmp[] = "/tmp/catlip-config-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return catlip_error_set("cannot create a temporary file for %s's configuration", path);
    size_t len = strlen(yaml);
    int ok = write(fd, yaml, len) == (ssize_t)len;
    close(fd);
    int rc = ok ? config_load_file(cfg, tmp) : catlip_error_set("cannot write a temporary file");
    unlink(tmp);
    if (rc != 0) return error_prefixed(path, "its recorded configuration does not load: ");
    return 0;
}

int inference_load(struct inference_model *m, const char *checkpoint, const char *vocab_path,
                   int ema, int max_batch, int threads) {
    memset(m, 0, sizeof *m);
    if (!(m->path = resolve_checkpoint(checkpoint))) return -1;
    if (!(m->header = checkpoint_read_header(m->path))) goto fail;
    if (checkpoint_model_config(m->header, &m->config) != 0) {
        error_prefixed(m->path, "");
        goto fail;
    }
    if (load_run_config(&m->run, m->header->config_yaml, m->path) != 0) goto fail;
    if (ema && !m->header->has_ema) {
        catlip_error_set("%s: has no EMA weights (trained with optim.ema=0); drop --ema", m->path);
        goto fail;
    }
    if (m->header->vocab_hash || vocab_path) {
        const char *vp = vocab_path ? vocab_path : m->run.data.vocab;
        if (!vp[0]) {
            catlip_error_set("%s: records no vocabulary file; pass --vocab FILE", m->path);
            goto fail;
        }
        if (!(m->vocab = vocab_load(vp))) {
            if (!vocab_path) {
                char cause[512];
                snprintf(cause, sizeof cause, "%s", catlip_error());
                catlip_error_set("%s (the checkpoint's data.vocab; pass --vocab FILE)", cause);
            }
            goto fail;
        }
        if (vocab_hash(m->vocab) != m->header->vocab_hash) {
            catlip_error_set(
                "%s: vocabulary %s (hash %016llx) is not the one this checkpoint was trained with "
                "(hash %016llx); pass the run's vocabulary with --vocab",
                m->path, vp, (unsigned long long)vocab_hash(m->vocab),
                (unsigned long long)m->header->vocab_hash);
            goto fail;
        }
        if (vocab_size(m->vocab) != m->config.num_classes) {
            catlip_error_set("%s: the head has %d outputs but vocabulary %s has %d synsets",
                             m->path, m->config.num_classes, vp, vocab_size(m->vocab));
            goto fail;
        }
    }
    vit_layout_init(&m->model.layout, &m->config);
    m->params = xaligned_alloc(m->model.layout.total * sizeof(float));
    float *buffers[4] = {NULL, NULL, NULL, NULL};
    buffers[ema ? CATLIP__TENSOR_CHUNK__KIND__EMA : CATLIP__TENSOR_CHUNK__KIND__PARAM] = m->params;
    if (checkpoint_load_tensors(m->path, &m->model.layout, buffers) != 0) goto fail;
    for (int c = 0; c < 3; c++) {
        m->mean[c] = (float)m->run.data.mean[c];
        m->std[c] = (float)m->run.data.std[c];
    }
    if (m->std[0] <= 0 || m->std[1] <= 0 || m->std[2] <= 0) {
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        memcpy(m->mean, mean, sizeof mean);
        memcpy(m->std, std, sizeof std);
    }
    if (threads <= 0) threads = pool_available_cores();
    m->model.pool = pool_create(threads, 0);
    m->model.k = kernels_active();
    m->max_batch = max_batch;
    vit_acts_create(&m->acts, &m->config, max_batch, pool_size(m->model.pool));
    m->ema = ema;
    return 0;
fail:
    inference_free(m);
    return -1;
}

void inference_free(struct inference_model *m) {
    if (m->acts.memory) vit_acts_free(&m->acts);
    if (m->model.pool) pool_destroy(m->model.pool);
    if (m->model.layout.tensors) vit_layout_free(&m->model.layout);
    free(m->params);
    vocab_free(m->vocab);
    if (m->header) catlip__checkpoint_header__free_unpacked(m->header, NULL);
    free(m->path);
    memset(m, 0, sizeof *m);
}

void inference_forward(struct inference_model *m, const float *images, int B) {
    CATLIP_ASSERT(B >= 1 && B <= m->max_batch);
    vit_forward(&m->model, &m->acts, m->params, images, B);
}
