#include "model/inference.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "io/checkpoint.h"
#include "model/checkpoint_state.h"
#include "nn/contrastive.h"

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

// The run configuration recorded in the header, parsed from memory.
static int load_run_config(struct config *cfg, const char *yaml, const char *path) {
    config_defaults(cfg);
    if (!yaml || !yaml[0]) return 0;
    if (config_load_string(cfg, yaml, "the recorded configuration") != 0)
        return error_prefixed(path, "its recorded configuration does not load: ");
    return 0;
}

// The vocabulary the head's rows belong to: the file given, or the run's data.vocab; it must
// be the one the checkpoint was trained with.
static int load_vocab(struct inference_model *m, const char *vocab_path) {
    if (!m->header->vocab_hash && !vocab_path) return 0;
    const char *vp = vocab_path ? vocab_path : m->run.data.vocab;
    if (!vp[0])
        return catlip_error_set("%s: records no vocabulary file; pass --vocab FILE", m->path);
    if (!(m->vocab = vocab_load(vp))) {
        if (!vocab_path) {
            char cause[512];
            snprintf(cause, sizeof cause, "%s", catlip_error());
            catlip_error_set("%s (the checkpoint's data.vocab; pass --vocab FILE)", cause);
        }
        return -1;
    }
    if (vocab_hash(m->vocab) != m->header->vocab_hash)
        return catlip_error_set(
            "%s: vocabulary %s (hash %016llx) is not the one this checkpoint was trained with "
            "(hash %016llx); pass the run's vocabulary with --vocab",
            m->path, vp, (unsigned long long)vocab_hash(m->vocab),
            (unsigned long long)m->header->vocab_hash);
    if (vocab_size(m->vocab) != m->config.num_classes)
        return catlip_error_set("%s: the head has %d outputs but vocabulary %s has %d synsets",
                                m->path, m->config.num_classes, vp, vocab_size(m->vocab));
    return 0;
}

// Header, configuration, vocabulary and weights in one streaming pass over the file (the
// reader checks the chunk rules and the footer's CRC-32C as it goes).
static int load_checkpoint(struct inference_model *m, const char *vocab_path, int ema) {
    struct ckpt_reader *r;
    if (ckpt_reader_open_streaming(&r, m->path) != 0) return -1;
    int rc = -1;
    if (!(m->header = checkpoint_header_copy(ckpt_reader_header(r), m->path))) goto done;
    if (checkpoint_model_config(m->header, &m->config) != 0) {
        error_prefixed(m->path, "");
        goto done;
    }
    if (load_run_config(&m->run, m->header->config_yaml, m->path) != 0) goto done;
    if (ema && !m->header->has_ema) {
        catlip_error_set("%s: has no EMA weights (trained with optim.ema=0); drop --ema", m->path);
        goto done;
    }
    if (load_vocab(m, vocab_path) != 0) goto done;
    vit_layout_init(&m->model.layout, &m->config);
    m->params = xaligned_alloc(m->model.layout.total * sizeof(float));
    float *buffers[4] = {NULL, NULL, NULL, NULL};
    buffers[ema ? CATLIP__TENSOR_CHUNK__KIND__EMA : CATLIP__TENSOR_CHUNK__KIND__PARAM] = m->params;
    rc = checkpoint_read_tensors(r, m->path, &m->model.layout, buffers);
done:
    ckpt_reader_close(r);
    return rc;
}

int inference_load(struct inference_model *m, const char *checkpoint, const char *vocab_path,
                   int ema, int max_batch, int threads) {
    memset(m, 0, sizeof *m);
    if (!(m->path = resolve_checkpoint(checkpoint))) return -1;
    if (load_checkpoint(m, vocab_path, ema) != 0) {
        inference_free(m);
        return -1;
    }
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
}

void inference_free(struct inference_model *m) {
    if (m->text_acts.memory) text_acts_free(&m->text_acts);
    tokenizer_free(m->tokenizer);
    if (m->acts.memory) vit_acts_free(&m->acts);
    if (m->model.pool) pool_destroy(m->model.pool);
    if (m->model.layout.tensors) vit_layout_free(&m->model.layout);
    free(m->params);
    vocab_free(m->vocab);
    if (m->header) catlip__checkpoint_header__free_unpacked(m->header, NULL);
    free(m->path);
    memset(m, 0, sizeof *m);
}

int inference_set_precision(struct inference_model *m, const char *precision) {
    int p = vit_precision_parse(precision);
    if (p < 0) return catlip_error_set("--precision must be fp32 or bf16, got '%s'", precision);
    if (p == VIT_BF16) vit_acts_enable_bf16(&m->acts, m->model.layout.total);
    m->model.precision = (enum vit_precision)p;
    if (m->tokenizer && p == VIT_BF16 && !m->text.bf16) {
        text_acts_enable_bf16(&m->text_acts, m->text.layout.total);
        m->text.bf16 = 1;
    }
    return 0;
}

void inference_forward(struct inference_model *m, const float *images, int B) {
    CATLIP_ASSERT(B >= 1 && B <= m->max_batch);
    vit_forward(&m->model, &m->acts, m->params, images, B);
}

int inference_load_text(struct inference_model *m, const char *tokenizer_path, int max_batch) {
    if (!m->config.clip)
        return catlip_error_set("%s is a CatLIP checkpoint: it has no text tower", m->path);
    CATLIP_ASSERT(!m->tokenizer && max_batch >= 1);
    const char *tp = tokenizer_path ? tokenizer_path : m->run.data.tokenizer;
    if (!tp[0])
        return catlip_error_set("%s: records no tokenizer file; pass --tokenizer FILE", m->path);
    struct tokenizer *tok = tokenizer_load(tp);
    if (!tok) {
        if (!tokenizer_path) {
            char cause[512];
            snprintf(cause, sizeof cause, "%s", catlip_error());
            catlip_error_set("%s (the checkpoint's data.tokenizer; pass --tokenizer FILE)", cause);
        }
        return -1;
    }
    if (tokenizer_hash(tok) != m->header->tokenizer_hash ||
        tokenizer_size(tok) != m->config.text.vocab_size) {
        catlip_error_set("%s: tokenizer %s (hash %016llx, %d ids) is not the one this checkpoint "
                         "was trained with (hash %016llx, %d ids); pass the run's tokenizer with "
                         "--tokenizer",
                         m->path, tp, (unsigned long long)tokenizer_hash(tok), tokenizer_size(tok),
                         (unsigned long long)m->header->tokenizer_hash, m->config.text.vocab_size);
        tokenizer_free(tok);
        return -1;
    }
    m->tokenizer = tok;
    m->text.layout = *m->model.layout.text;  // shares its tables; freed with the layout
    m->text.pool = m->model.pool;
    m->text.k = m->model.k;
    m->text_max_batch = max_batch;
    text_acts_create(&m->text_acts, &m->config.text, max_batch, pool_size(m->model.pool));
    if (m->model.precision == VIT_BF16) {
        text_acts_enable_bf16(&m->text_acts, m->text.layout.total);
        m->text.bf16 = 1;
    }
    return 0;
}

int inference_tokenize(const struct inference_model *m, int32_t *ids, const char *caption,
                       int *unknown, int *dropped) {
    const int T = m->config.text.context;
    int n = tokenizer_encode(m->tokenizer, ids, T, caption, strlen(caption), dropped);
    if (unknown) {
        *unknown = 0;
        for (int t = 0; t < n; t++) *unknown += ids[t] == TOKENIZER_UNK;
    }
    return n;
}

void inference_forward_text(struct inference_model *m, const int32_t *ids, int B) {
    CATLIP_ASSERT(m->tokenizer && B >= 1 && B <= m->text_max_batch);
    text_forward(&m->text, &m->text_acts, m->params + m->model.layout.text_begin, ids, B);
}

float inference_logit_scale(const struct inference_model *m) {
    CATLIP_ASSERT(m->config.clip);
    return contrastive_scale(m->params[m->model.layout.logit_scale]);
}
