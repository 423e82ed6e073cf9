// `catlip eval zeroshot` with a CLIP checkpoint: class embeddings from prompt ensembles
// (eval/clip_zeroshot.h), image embeddings from the projected CLS, tallied and reported as a
// CatLIP checkpoint's Transfer Init head is (eval.h).
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/eval.h"
#include "core/check.h"
#include "eval/clip_zeroshot.h"
#include "io/safetensors.h"

// The text tower's batch when encoding prompts.
#define CLIP_TEXT_BATCH 64

// The collected image embeddings (rows.C = E), and with --dump the preprocessed images too.
struct clip_rows {
    struct zeroshot_rows rows;
    size_t image_floats;
    float *images;  // (cap, 3, S, S) with --dump, else NULL
    size_t images_cap;
};

static void clip_collect(void *ctx, const struct inference_model *m, const struct batch *b) {
    struct clip_rows *r = ctx;
    size_t first = r->rows.n;
    float *out = zeroshot_rows_add(&r->rows, b);
    clip_image_embeddings(out, m->acts.logits, b->count, r->rows.C);
    if (!r->images) return;
    if (r->rows.n > r->images_cap) {
        while (r->rows.n > r->images_cap) r->images_cap *= 2;
        r->images = xrealloc(r->images, r->images_cap * r->image_floats * sizeof(float));
    }
    memcpy(r->images + first * r->image_floats, b->images,
           (size_t)b->count * r->image_floats * sizeof(float));
}

// Checks the options a CLIP checkpoint takes; -1 with catlip_error().
static int check_clip_args(const struct eval_args *a, const struct inference_model *m) {
    if (a->head)
        return catlip_error_set("%s is a CLIP checkpoint: its classes come from --classes FILE "
                                "and --prompts, not a --head file",
                                m->path);
    if (a->headopt.given)
        return catlip_error_set("%s is a CLIP checkpoint: --senses, --pool, --calibrate, "
                                "--calibrate-on, --max-reference and --score build CatLIP heads; "
                                "give --prompts instead",
                                m->path);
    for (int p = 0; p < a->nprompts; p++)
        if (clip_prompt_check(a->prompts[p]) != 0) return -1;
    return 0;
}

// How the prompts read each class name: words, and words the tokenizer does not know.
static void print_class_text(const char *const *names, const struct clip_class_text *info, int K,
                             const char *const *prompts, int P, float scale) {
    printf("eval zeroshot: CLIP prompt ensemble of %d prompt%s, logit scale %.3f:", P,
           P == 1 ? "" : "s", scale);
    for (int p = 0; p < P; p++) printf(" '%s'", prompts[p]);
    printf("\n  %-28s %8s %8s\n", "class", "words", "unknown");
    for (int k = 0; k < K; k++)
        printf("  %-28.28s %8d %8d%s\n", names[k], info[k].name_words, info[k].name_unknown,
               info[k].name_unknown == info[k].name_words
                   ? "  (no word of the name is in the tokenizer: the prompts cannot name it)"
                   : "");
}

static json_t *clip_json(const struct inference_model *m, const char *const *prompts, int P,
                         const struct clip_class_text *info, const char *const *names, int K,
                         float scale) {
    json_t *o = json_object();
    json_object_set_new(o, "objective", json_string("clip"));
    json_t *pa = json_array();
    for (int p = 0; p < P; p++) json_array_append_new(pa, json_string(prompts[p]));
    json_object_set_new(o, "prompts", pa);
    json_object_set_new(o, "logit_scale", json_real(scale));
    json_object_set_new(o, "tokenizer", json_string(tokenizer_header(m->tokenizer)));
    json_t *ct = json_array();
    for (int k = 0; k < K; k++)
        json_array_append_new(ct, json_pack("{s:s, s:i, s:i, s:i}", "class", names[k], "words",
                                            info[k].name_words, "unknown", info[k].name_unknown,
                                            "dropped", info[k].dropped));
    json_object_set_new(o, "class_text", ct);
    return o;
}

// --dump: what the PyTorch reference needs to recompute the scores from an export.
static int write_dump(const char *path, const struct inference_model *m,
                      const struct clip_rows *r, const float *weight, const int32_t *ids, int K,
                      int P, const char *const *prompts, const char *const *names) {
    const int64_t N = (int64_t)r->rows.n, E = r->rows.C, S = m->config.image_size,
                  T = m->config.text.context;
    float *scores = xmalloc((size_t)(N * K > 0 ? N * K : 1) * sizeof *scores);
    float *zero = xcalloc((size_t)K, sizeof *zero);
    int32_t *truth = xmalloc((size_t)(N > 0 ? N : 1) * sizeof *truth);
    for (int64_t i = 0; i < N; i++) {
        zeroshot_scores(scores + i * K, weight, zero, r->rows.features + i * E, K, (int)E);
        truth[i] = r->rows.truth[i];
    }
    struct safetensor t[6] = {
        {"images", "F32", 4, {N, 3, S, S}, r->images, (size_t)(N * 3 * S * S) * sizeof(float)},
        {"image_embeddings", "F32", 2, {N, E}, r->rows.features, (size_t)(N * E) * sizeof(float)},
        {"class_weights", "F32", 2, {K, E}, weight, (size_t)K * E * sizeof(float)},
        {"scores", "F32", 2, {N, K}, scores, (size_t)(N * K) * sizeof(float)},
        {"truth", "I32", 1, {N}, truth, (size_t)N * sizeof(int32_t)},
        {"prompt_ids", "I32", 3, {K, P, T}, ids, (size_t)K * P * T * sizeof(int32_t)},
    };
    json_t *pa = json_array(), *na = json_array();
    for (int p = 0; p < P; p++) json_array_append_new(pa, json_string(prompts[p]));
    for (int k = 0; k < K; k++) json_array_append_new(na, json_string(names[k]));
    char *pj = json_dumps(pa, JSON_COMPACT), *nj = json_dumps(na, JSON_COMPACT);
    json_t *meta = json_pack("{s:s, s:s, s:s}", "format", "catlip-clip-zeroshot-dump", "prompts",
                             pj, "class_names", nj);
    char *mj = json_dumps(meta, JSON_COMPACT);
    int rc = safetensors_write(path, t, 6, mj);
    free(mj);
    free(pj);
    free(nj);
    json_decref(meta);
    json_decref(pa);
    json_decref(na);
    free(scores);
    free(zero);
    free(truth);
    return rc;
}

int eval_zeroshot_clip(const struct eval_args *a, struct inference_model *m) {
    if (check_clip_args(a, m) != 0) {
        catlip_error_print();
        return 2;
    }
    static const char *const name_alone[1] = {"{}"};
    const char *const *prompts = a->nprompts ? a->prompts : name_alone;
    const int P = a->nprompts ? a->nprompts : 1;
    char **names = NULL;
    int K = -1;
    if (inference_load_text(m, a->tokenizer, CLIP_TEXT_BATCH) != 0 ||
        (K = clip_class_names(a->classes, &names)) < 0) {
        catlip_error_print();
        return 1;
    }
    const int E = m->config.text.embed_dim, T = m->config.text.context;
    const float scale = inference_logit_scale(m);
    struct clip_class_text *info = xmalloc((size_t)K * sizeof *info);
    int32_t *ids = a->dump ? xmalloc((size_t)K * P * T * sizeof *ids) : NULL;
    struct transfer_head head = {.K = K, .C = E};
    clip_zeroshot_head(m, (const char *const *)names, K, prompts, P, &head.weight, &head.bias,
                       info, ids);
    if (!a->quiet) print_class_text((const char *const *)names, info, K, prompts, P, scale);

    struct shard_list shards = {0};
    struct pipeline *p = open_eval_pipeline(a, m, &shards, K, NULL, NULL);
    int rc = p ? 0 : -1;
    struct clip_rows r = {.rows = {.C = E, .K = K, .cap = 256}};
    if (p) {
        r.rows.features = xmalloc(r.rows.cap * (size_t)E * sizeof(float));
        r.rows.truth = xmalloc(r.rows.cap * sizeof(int));
        if (a->dump) {
            r.image_floats = (size_t)3 * m->config.image_size * m->config.image_size;
            r.images_cap = 256;
            r.images = xmalloc(r.images_cap * r.image_floats * sizeof(float));
        }
        eval_batches(a, m, p, "zeroshot", clip_collect, &r);
        struct zeroshot_tally z;
        zeroshot_init(&z, K, K < 5 ? K : 5);
        zeroshot_tally_head(&r.rows, &head, &z);
        char skips[512];
        pipeline_format_skips(p, skips, sizeof skips);
        if (z.images == 0)
            rc = catlip_error_set("no usable labelled image in %s (skipped: %s; .cls must be "
                                  "0..%d)",
                                  a->data, skips[0] ? skips : "none", K - 1);
        else
            rc = zeroshot_report(a, m, &z, NULL, NULL, NULL, (const char *const *)names, skips,
                                 clip_json(m, prompts, P, info, (const char *const *)names, K,
                                           scale));
        if (rc == 0 && a->dump)
            rc = write_dump(a->dump, m, &r, head.weight, ids, K, P, prompts,
                            (const char *const *)names);
        zeroshot_free(&z);
        pipeline_destroy(p);
    }
    if (rc != 0) catlip_error_print();
    if (shards.paths) shardlist_free(&shards);
    free(r.rows.features);
    free(r.rows.truth);
    free(r.images);
    free(ids);
    free(info);
    transfer_head_free(&head);
    clip_class_names_free(names, K);
    return rc == 0 ? 0 : 1;
}
