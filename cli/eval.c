// `catlip eval multilabel` (mAP over synsets against the label-frequency prior) and
// `catlip eval zeroshot` (top-k accuracy of a Transfer Init head on labelled shards).
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/eval.h"
#include "core/check.h"
#include "core/log.h"
#include "data/pipeline.h"
#include "data/shardlist.h"
#include "eval/head_score.h"
#include "eval/metrics.h"
#include "eval/transfer_init.h"
#include "eval/zeroshot.h"
#include "io/transfer_head.h"
#include "model/inference.h"
#include "text/caption_labels.h"
#include "text/labeler.h"
#include "text/vocab.h"

static const char *multilabel_usage =
    "usage: catlip eval multilabel --checkpoint CKPT --data PATTERN [options]\n"
    "\n"
    "Scores held-out image-text shards: each caption's synsets (in the vocabulary) are the "
    "labels,\n"
    "the model's logits the scores. Prints mean average precision over synsets with at least one\n"
    "positive (macro), over samples (samples) and over all pairs pooled (micro), "
    "precision@1/5/10,\n"
    "and the same numbers for the label-frequency prior (every image scored by the synsets'\n"
    "training counts) as the baseline. Captions without a vocabulary synset are skipped and "
    "counted.\n"
    "\n"
    "  --checkpoint CKPT  checkpoint file, or a run directory (its newest valid checkpoint)\n"
    "  --data PATTERN     shards: 'val/{00000..00009}.tar', comma lists, globs, @list.txt\n"
    "  --ema              use the EMA weights\n"
    "  --vocab FILE       vocabulary TSV (default: the data.vocab recorded in the checkpoint)\n"
    "  --batch N          images per forward pass (default 32)\n"
    "  --threads N        compute threads (default: all cores)\n"
    "  --decode-threads N JPEG decoding threads (default 2)\n"
    "  --max-images N     stop after about N images (default: all)\n"
    "  --json FILE        also write the metrics as JSON\n"
    "  --precision P      fp32 (default) or bf16 forward passes (as train.precision)\n";

static const char *zeroshot_usage =
    "usage: catlip eval zeroshot --checkpoint CKPT (--classes FILE | --head FILE) --data PATTERN "
    "[options]\n"
    "\n"
    "Classifies labelled shards (KEY.cls: the class index, 0-based, in classes-file order) with a\n"
    "Transfer Init head (a CatLIP checkpoint) or prompt ensembles (a CLIP checkpoint) and no\n"
    "training: top-1 and top-5 accuracy, per-class accuracy, their mean over the classes with\n"
    "images (mean per-class) and the most frequent confusions, against chance (1/K) and the\n"
    "majority class.\n"
    "\n"
    "  --checkpoint CKPT  checkpoint file, or a run directory\n"
    "  --classes FILE     build the head from these classes now (as catlip transfer does)\n"
    "  --head FILE        or use a head written by catlip transfer\n"
    "  --data PATTERN     labelled shards\n"
    "  --ema              use the EMA weights\n"
    "  --vocab FILE       vocabulary TSV (default: the checkpoint's)\n"
    "  --batch N, --threads N, --decode-threads N, --max-images N, --json FILE, --precision P   as "
    "for "
    "multilabel\n"
    "  --quiet            no transfer report table\n"
    "CatLIP checkpoints: with --classes the head is built with the options below, and the\n"
    "first-sense head (senses first, pool none, calibrate none, score linear: the original rule)\n"
    "is scored beside it.\n"
    HEAD_ARGS_USAGE HEAD_ARGS_SCORE_USAGE
    "CLIP checkpoints (model.objective clip) take --classes and prompts instead: a class's\n"
    "embedding is the normalised mean of the normalised text embeddings of its prompts, an\n"
    "image's the normalised projected CLS, the score their cosine times the logit scale.\n"
    "  --prompts TEMPLATE     a prompt with {} for the class name ('a drawing of a {}');\n"
    "                         repeat for an ensemble (default: '{}', the name alone)\n"
    "  --tokenizer FILE       the run's tokenizer (default: the checkpoint's data.tokenizer)\n"
    "  --dump FILE            also write safetensors of the preprocessed images, image and\n"
    "                         class embeddings, prompt token ids, scores and true classes\n";

int parse_eval_args(int argc, char **argv, const char *usage, struct eval_args *a) {
    static const struct option options[] = {MODEL_ARGS_CHECKPOINT,
                                            {"data", 1, 0, 'd'},
                                            MODEL_ARGS_VOCAB,
                                            {"json", 1, 0, 'j'},
                                            {"classes", 1, 0, 'k'},
                                            {"head", 1, 0, 'H'},
                                            MODEL_ARGS_EMA,
                                            {"batch", 1, 0, 'b'},
                                            MODEL_ARGS_THREADS,
                                            MODEL_ARGS_PRECISION,
                                            {"quiet", 0, 0, 'q'},
                                            {"decode-threads", 1, 0, 'D'},
                                            {"max-images", 1, 0, 'm'},
                                            {"help", 0, 0, 'h'},
                                            {"prompts", 1, 0, 'p'},
                                            {"tokenizer", 1, 0, 'T'},
                                            {"dump", 1, 0, 'u'},
                                            HEAD_ARGS_OPTIONS,
                                            HEAD_ARGS_SCORE_OPTION,
                                            {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    head_args_init(&a->headopt);
    a->batch = 32;
    a->decode_threads = 2;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (model_args_take(&a->model, opt, optarg)) continue;
        int taken = head_args_take(&a->headopt, opt, optarg);
        if (taken < 0) return -1;
        if (taken) continue;
        switch (opt) {
            case 'd': a->data = optarg; break;
            case 'j': a->json = optarg; break;
            case 'k': a->classes = optarg; break;
            case 'H': a->head = optarg; break;
            case 'b': a->batch = atoi(optarg); break;
            case 'D': a->decode_threads = atoi(optarg); break;
            case 'm': a->max_images = atol(optarg); break;
            case 'q': a->quiet = 1; break;
            case 'p':
                a->prompts = xrealloc(a->prompts, (size_t)(a->nprompts + 1) * sizeof *a->prompts);
                a->prompts[a->nprompts++] = optarg;
                break;
            case 'T': a->tokenizer = optarg; break;
            case 'u': a->dump = optarg; break;
            case 'h': fputs(usage, stdout); exit(0);
            default: fputs(usage, stderr); return catlip_error_set("unknown or incomplete option");
        }
    }
    if (optind < argc) return catlip_error_set("unexpected argument '%s'", argv[optind]);
    if (!a->model.checkpoint || !a->data)
        return catlip_error_set("--checkpoint and --data are required");
    if (a->batch < 1 || a->batch > 4096) return catlip_error_set("--batch must be in 1..4096");
    if (a->decode_threads < 1) return catlip_error_set("--decode-threads must be >= 1");
    return 0;
}

struct progress {
    double start, last;
    int tty;
};

static void progress_show(struct progress *p, const char *what, uint64_t done, uint64_t total,
                          int final) {
    double now = time_now();
    if (!final && now - p->last < (p->tty ? 0.5 : 10.0)) return;
    p->last = now;
    double rate = now > p->start ? (double)done / (now - p->start) : 0;
    fprintf(stderr, "%seval %s: %llu/%llu images  %.1f img/s%s", p->tty ? "\r" : "", what,
            (unsigned long long)done, (unsigned long long)total, rate,
            p->tty && !final ? "   " : "\n");
}

struct pipeline *open_eval_pipeline(const struct eval_args *a,
                                           const struct inference_model *m,
                                           struct shard_list *shards, int num_classes,
                                           pipeline_label_fn label, void *label_ctx) {
    if (shardlist_expand(a->data, shards) != 0) return NULL;
    struct pipeline_options opt = {
        .shards = (const char *const *)shards->paths,
        .nshards = shards->count,
        .global_batch = (uint64_t)a->batch,
        .worker = 0,
        .nworkers = 1,
        .train = 0,
        .image_size = m->config.image_size,
        .num_classes = num_classes,
        .label = label,
        .label_ctx = label_ctx,
        .decode_threads = a->decode_threads,
        .compute_threads = -1,
    };
    memcpy(opt.mean, m->mean, sizeof opt.mean);
    memcpy(opt.std, m->std, sizeof opt.std);
    if (a->max_images > 0) opt.max_batches = (uint64_t)((a->max_images + a->batch - 1) / a->batch);
    return pipeline_create(&opt);
}

// Runs the model over every batch of the pipeline, calling `each` with the batch after its
// forward pass (logits and pooled features in m->acts), with progress on stderr. Returns the
// images seen.
uint64_t eval_batches(const struct eval_args *a, struct inference_model *m,
                             struct pipeline *p, const char *what, eval_batch_fn each, void *ctx) {
    struct progress prog = {.start = time_now(), .tty = isatty(STDERR_FILENO)};
    uint64_t total = pipeline_samples(p), seen = 0;
    if (a->max_images > 0 && (uint64_t)a->max_images < total) total = (uint64_t)a->max_images;
    struct batch b;
    while (pipeline_next(p, &b) == 1) {
        if (b.count == 0) continue;
        inference_forward(m, b.images, b.count);
        each(ctx, m, &b);
        seen += (uint64_t)b.count;
        progress_show(&prog, what, seen, total, 0);
    }
    progress_show(&prog, what, seen, total, 1);
    return seen;
}

static void print_metrics_row(const char *name, double model, double prior) {
    printf("  %-16s %8.4f %8.4f\n", name, model, prior);
}

static json_t *metrics_json(const struct multilabel_metrics *x) {
    json_t *o = json_object();
    json_object_set_new(o, "map_macro", json_real(x->map_macro));
    json_object_set_new(o, "map_samples", json_real(x->map_samples));
    json_object_set_new(o, "map_micro", json_real(x->map_micro));
    json_object_set_new(o, "classes_scored", json_integer(x->classes_scored));
    json_object_set_new(o, "samples_scored", json_integer(x->samples_scored));
    for (int i = 0; i < x->nk; i++) {
        char key[32];
        snprintf(key, sizeof key, "precision_at_%d", x->k[i]);
        json_object_set_new(o, key, json_real(x->precision_at[i]));
    }
    return o;
}

int write_json(const char *path, json_t *o) {
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(o);
    return rc == 0 ? 0 : catlip_error_set("%s: cannot write the metrics", path);
}

// Every image's logits and multi-hot labels, (n, V) each, grown as batches come.
struct multilabel_rows {
    int V;
    size_t n, cap;
    float *scores, *labels;
};

static void multilabel_collect(void *ctx, const struct inference_model *m, const struct batch *b) {
    struct multilabel_rows *r = ctx;
    size_t V = (size_t)r->V;
    if (r->n + (size_t)b->count > r->cap) {
        while (r->n + (size_t)b->count > r->cap) r->cap *= 2;
        r->scores = xrealloc(r->scores, r->cap * V * sizeof(float));
        r->labels = xrealloc(r->labels, r->cap * V * sizeof(float));
    }
    memcpy(r->scores + r->n * V, m->acts.logits, (size_t)b->count * V * sizeof(float));
    memcpy(r->labels + r->n * V, b->targets, (size_t)b->count * V * sizeof(float));
    r->n += (size_t)b->count;
}

int cmd_eval_multilabel(int argc, char **argv) {
    struct eval_args a;
    if (parse_eval_args(argc, argv, multilabel_usage, &a) != 0 ||
        ((a.prompts || a.tokenizer || a.dump) &&
         catlip_error_set("--prompts, --tokenizer and --dump are eval zeroshot's, for CLIP "
                          "checkpoints"))) {
        catlip_error_print();
        free(a.prompts);
        return 2;
    }
    struct inference_model m;
    if (model_args_open(&a.model, &m, a.batch) != 0) return 1;
    if (!m.vocab) {
        fprintf(stderr,
                "catlip: error: %s was trained without a vocabulary: nothing to score captions "
                "against\n",
                m.path);
        inference_free(&m);
        return 1;
    }
    struct labeler *lab = labeler_create(NULL, LABELER_NOUNS);
    struct caption_labels lc = {lab, m.vocab};
    struct shard_list shards = {0};
    struct pipeline *p =
        lab ? open_eval_pipeline(&a, &m, &shards, m.config.num_classes, caption_labels, &lc) : NULL;
    if (!p) {
        catlip_error_print();
        labeler_free(lab);
        if (shards.paths) shardlist_free(&shards);
        inference_free(&m);
        return 1;
    }
    struct multilabel_rows rows = {.V = m.config.num_classes, .cap = 1024};
    int V = rows.V;
    rows.scores = xmalloc(rows.cap * V * sizeof(float));
    rows.labels = xmalloc(rows.cap * V * sizeof(float));
    eval_batches(&a, &m, p, "multilabel", multilabel_collect, &rows);
    size_t N = rows.n;
    float *scores = rows.scores, *labels = rows.labels;
    char skips[512];
    pipeline_format_skips(p, skips, sizeof skips);
    int rc = 0;
    if (N == 0) {
        rc = catlip_error_set("no usable image in %s (skipped: %s)", a.data,
                              skips[0] ? skips : "none");
    } else {
        // The prior: every image gets the same scores, the synsets' training counts.
        float *prior = xmalloc(N * V * sizeof(float));
        for (size_t n = 0; n < N; n++)
            for (int v = 0; v < V; v++)
                prior[n * V + v] = (float)log((double)vocab_count(m.vocab, v));
        static const int ks[3] = {1, 5, 10};
        struct multilabel_metrics model, base;
        multilabel_metrics(scores, labels, (int)N, V, ks, 3, &model);
        multilabel_metrics(prior, labels, (int)N, V, ks, 3, &base);
        free(prior);
        printf("eval multilabel: %zu images, %d of %d synsets with a positive; skipped: %s\n", N,
               model.classes_scored, V, skips[0] ? skips : "none");
        printf("  %-16s %8s %8s\n", "metric", "model", "prior");
        print_metrics_row("mAP (macro)", model.map_macro, base.map_macro);
        print_metrics_row("mAP (samples)", model.map_samples, base.map_samples);
        print_metrics_row("mAP (micro)", model.map_micro, base.map_micro);
        for (int i = 0; i < 3; i++) {
            char name[32];
            snprintf(name, sizeof name, "precision@%d", ks[i]);
            print_metrics_row(name, model.precision_at[i], base.precision_at[i]);
        }
        printf(
            "eval multilabel: mAP %.4f vs prior %.4f (macro), mAP %.4f vs prior %.4f (samples)\n",
            model.map_macro, base.map_macro, model.map_samples, base.map_samples);
        if (a.json) {
            json_t *o = json_object();
            json_object_set_new(o, "checkpoint", json_string(m.path));
            json_object_set_new(o, "data", json_string(a.data));
            json_object_set_new(o, "images", json_integer((json_int_t)N));
            json_object_set_new(o, "skipped", json_string(skips));
            json_object_set_new(o, "model", metrics_json(&model));
            json_object_set_new(o, "prior", metrics_json(&base));
            rc = write_json(a.json, o);
        }
    }
    if (rc != 0) catlip_error_print();
    free(scores);
    free(labels);
    pipeline_destroy(p);
    shardlist_free(&shards);
    labeler_free(lab);
    inference_free(&m);
    return rc == 0 ? 0 : 1;
}

float *zeroshot_rows_add(struct zeroshot_rows *r, const struct batch *b) {
    int K = r->K;
    size_t C = (size_t)r->C;
    if (r->n + (size_t)b->count > r->cap) {
        while (r->n + (size_t)b->count > r->cap) r->cap *= 2;
        r->features = xrealloc(r->features, r->cap * C * sizeof(float));
        r->truth = xrealloc(r->truth, r->cap * sizeof(int));
    }
    for (int i = 0; i < b->count; i++) {
        int truth = 0;
        for (int k = 0; k < K; k++)
            if (b->targets[(size_t)i * K + k] > 0.5f) truth = k;
        r->truth[r->n + (size_t)i] = truth;
    }
    float *features = r->features + r->n * C;
    r->n += (size_t)b->count;
    return features;
}

static void zeroshot_collect(void *ctx, const struct inference_model *m, const struct batch *b) {
    struct zeroshot_rows *r = ctx;
    memcpy(zeroshot_rows_add(r, b), m->acts.lnf, (size_t)b->count * r->C * sizeof(float));
}

// Tallies a head over the collected features.
void zeroshot_tally_head(const struct zeroshot_rows *r, const struct transfer_head *h,
                         struct zeroshot_tally *z) {
    float *scores = xmalloc((size_t)h->K * sizeof(float));
    for (size_t i = 0; i < r->n; i++) {
        head_scores(h, r->features + i * (size_t)r->C, scores);
        zeroshot_add(z, scores, r->truth[i]);
    }
    free(scores);
}

// How each class's row was built (--classes): the senses considered with their training mass
// and the one chosen, and the vocabulary rows pooled with their weights.
static json_t *head_classes_json(const struct transfer_head *h, const struct vocab *vocab) {
    json_t *a = json_array();
    for (int k = 0; k < h->K; k++) {
        const struct head_class *b = &h->built[k];
        json_t *o = json_object();
        json_object_set_new(o, "class", json_string(h->classes[k].name));
        json_t *senses = json_array();
        for (int i = 0; i < b->nsenses; i++) {
            char id[16];
            snprintf(id, sizeof id, "n%08u", b->senses[i]);
            json_t *s = json_object();
            json_object_set_new(s, "synset", json_string(id));
            json_object_set_new(s, "mass", json_real(b->sense_mass[i]));
            json_object_set_new(s, "chosen", json_boolean(i == b->chosen));
            json_array_append_new(senses, s);
        }
        json_object_set_new(o, "senses", senses);
        json_object_set_new(o, "mass", json_real(b->mass));
        json_t *rows = json_array();
        for (int i = 0; i < b->nmembers; i++) {
            json_t *r = json_object();
            json_object_set_new(r, "synset", json_string(vocab_id(vocab, b->members[i].row)));
            json_object_set_new(r, "lemma", json_string(vocab_lemma(vocab, b->members[i].row)));
            json_object_set_new(r, "weight", json_real(b->members[i].weight));
            json_array_append_new(rows, r);
        }
        json_object_set_new(o, "rows", rows);  // empty: nothing matched, a random row
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *per_class_json(const struct zeroshot_tally *z) {
    json_t *a = json_array();
    for (int t = 0; t < z->K; t++) {
        long row = zeroshot_class_images(z, t);
        json_array_append_new(
            a, row ? json_real((double)zeroshot_class_correct(z, t) / row) : json_null());
    }
    return a;
}

int zeroshot_report(const struct eval_args *a, const struct inference_model *m,
                    const struct zeroshot_tally *z, const struct zeroshot_tally *old,
                    const struct head_options *opt, const struct transfer_head *head,
                    const char *const *names, const char *skips, json_t *extra) {
    int K = z->K, topk = z->topk;
    long N = z->images;
    int rc = 0;
    double top1 = (double)z->correct1 / N, top5 = (double)z->correctk / N;
    long majority = zeroshot_majority(z);
    int present;
    double mean_per_class = zeroshot_mean_per_class(z, &present);
    printf("eval zeroshot: %ld images, %d classes; skipped: %s\n", N, K, skips[0] ? skips : "none");
    if (old)
        printf("  %-28s %8s %8s %8s\n", "class", "images", "first", "top-1");
    else
        printf("  %-28s %8s %8s\n", "class", "images", "top-1");
    for (int t = 0; t < K; t++) {
        long row = zeroshot_class_images(z, t);
        const char *name = names[t];
        printf("  %-28.28s %8ld", name, row);
        if (old) {
            if (row)
                printf(" %8.4f", (double)zeroshot_class_correct(old, t) / row);
            else
                printf(" %8s", "-");
        }
        if (row)
            printf(" %8.4f\n", (double)zeroshot_class_correct(z, t) / row);
        else
            printf(" %8s\n", "-");
    }
    struct zeroshot_confusion pairs[5];
    int np = zeroshot_confusions(z, pairs, 5);
    printf("  most frequent confusions (true -> predicted):\n");
    for (int i = 0; i < np && i < 5; i++)
        printf("    %-24s -> %-24s %ld\n", names[pairs[i].truth], names[pairs[i].predicted],
               pairs[i].count);
    if (np == 0) printf("    (none)\n");
    double old_top1 = 0, old_mean = 0;
    if (old) {
        old_top1 = (double)old->correct1 / N;
        old_mean = zeroshot_mean_per_class(old, NULL);
        printf(
            "eval zeroshot: first-sense head (senses=first pool=none calibrate=none score=linear): "
            "top-1 "
            "%.4f, mean per-class %.4f\n",
            old_top1, old_mean);
    }
    if (opt)
        printf("eval zeroshot: head senses=%s pool=%s calibrate=%s score=%s\n",
               head_senses_name(opt->senses), head_pool_name(opt->pool),
               head_calibrate_name(opt->calibrate), head_score_name(opt->score));
    printf(
        "eval zeroshot: top-1 %.4f, top-%d %.4f, mean per-class %.4f (%d classes with "
        "images); chance %.4f (1/%d), majority class %.4f\n",
        top1, topk, top5, mean_per_class, present, 1.0 / K, K, (double)majority / N);
    if (a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "checkpoint", json_string(m->path));
        json_object_set_new(o, "data", json_string(a->data));
        json_object_set_new(o, "images", json_integer(N));
        json_object_set_new(o, "classes", json_integer(K));
        json_object_set_new(o, "top1", json_real(top1));
        json_object_set_new(o, "top5", json_real(top5));
        json_object_set_new(o, "mean_per_class", json_real(mean_per_class));
        json_object_set_new(o, "classes_present", json_integer(present));
        json_object_set_new(o, "chance", json_real(1.0 / K));
        json_object_set_new(o, "majority", json_real((double)majority / N));
        json_object_set_new(o, "skipped", json_string(skips));
        json_t *cn = json_array();
        for (int t = 0; t < K; t++) json_array_append_new(cn, json_string(names[t]));
        json_object_set_new(o, "class_names", cn);
        json_object_set_new(o, "per_class", per_class_json(z));
        if (opt) {
            json_t *h = json_object();
            json_object_set_new(h, "senses", json_string(head_senses_name(opt->senses)));
            json_object_set_new(h, "pool", json_string(head_pool_name(opt->pool)));
            json_object_set_new(h, "calibrate", json_string(head_calibrate_name(opt->calibrate)));
            json_object_set_new(h, "score", json_string(head_score_name(opt->score)));
            if (head && head->built) json_object_set_new(h, "classes", head_classes_json(head, m->vocab));
            json_object_set_new(o, "head", h);
        }
        if (old) {
            json_t *b = json_object();
            json_object_set_new(b, "top1", json_real(old_top1));
            json_object_set_new(b, "top5", json_real((double)old->correctk / N));
            json_object_set_new(b, "mean_per_class", json_real(old_mean));
            json_object_set_new(b, "per_class", per_class_json(old));
            json_object_set_new(o, "first_sense", b);
        }
        if (extra) json_object_update(o, extra);
        rc = write_json(a->json, o);
    }
    json_decref(extra);
    return rc;
}

int cmd_eval_zeroshot(int argc, char **argv) {
    struct eval_args a;
    if (parse_eval_args(argc, argv, zeroshot_usage, &a) != 0 ||
        (!a.classes == !a.head &&
         catlip_error_set("give exactly one of --classes FILE and --head FILE")) ||
        (a.head && a.headopt.given &&
         catlip_error_set("--senses, --pool, --calibrate, --calibrate-on, --max-reference and "
                          "--score build a head from --classes; a --head file is used as catlip "
                          "transfer wrote it")) ||
        (a.classes && head_args_finish(&a.headopt, HEAD_SCORE_NOISY_OR) != 0)) {
        catlip_error_print();
        free(a.prompts);
        return 2;
    }
    struct inference_model m;
    a.model.clip_ok = 1;
    if (model_args_open(&a.model, &m, a.batch) != 0) {
        free(a.prompts);
        return 1;
    }
    if (m.config.clip) {
        int status = eval_zeroshot_clip(&a, &m);
        inference_free(&m);
        free(a.prompts);
        return status;
    }
    if ((a.prompts && catlip_error_set("%s is a CatLIP checkpoint: --prompts is for CLIP "
                                       "checkpoints (a CatLIP head comes from --classes by "
                                       "Transfer Init)", m.path)) ||
        (a.tokenizer && catlip_error_set("%s is a CatLIP checkpoint: --tokenizer is for CLIP "
                                         "checkpoints", m.path)) ||
        (a.dump && catlip_error_set("%s is a CatLIP checkpoint: --dump is for CLIP checkpoints",
                                    m.path))) {
        catlip_error_print();
        inference_free(&m);
        free(a.prompts);
        return 2;
    }
    struct transfer_head head = {0}, old = {0};
    char **names = NULL;
    int rc;
    if (a.classes) {
        struct head_reference ref;
        rc = head_args_reference(&a.headopt, &m, a.batch, a.decode_threads, &ref);
        if (rc == 0)
            rc = transfer_head_from_classes(&m, a.classes, NULL, 0, a.headopt.opt, &ref,
                                            a.quiet ? NULL : stdout, &head);
        if (rc == 0)
            rc = transfer_head_from_classes(&m, a.classes, NULL, 0, HEAD_OPTIONS_FIRST, NULL, NULL,
                                            &old);
        head_reference_free(&ref);
    } else {
        head.C = m.config.dim;
        rc = transfer_head_load(a.head, &head.K, head.C, &head.weight, &head.bias, &names);
    }
    struct shard_list shards = {0};
    struct pipeline *p = rc == 0 ? open_eval_pipeline(&a, &m, &shards, head.K, NULL, NULL) : NULL;
    if (!p) {
        catlip_error_print();
        if (shards.paths) shardlist_free(&shards);
        transfer_head_free(&head);
        transfer_head_free(&old);
        inference_free(&m);
        return 1;
    }
    int K = head.K, topk = K < 5 ? K : 5;
    struct zeroshot_rows rows = {.C = head.C, .K = K, .cap = 256};
    rows.features = xmalloc(rows.cap * (size_t)rows.C * sizeof(float));
    rows.truth = xmalloc(rows.cap * sizeof(int));
    eval_batches(&a, &m, p, "zeroshot", zeroshot_collect, &rows);
    struct zeroshot_tally z, zold;
    zeroshot_init(&z, K, topk);
    zeroshot_init(&zold, K, topk);
    zeroshot_tally_head(&rows, &head, &z);
    if (a.classes) zeroshot_tally_head(&rows, &old, &zold);
    char skips[512];
    pipeline_format_skips(p, skips, sizeof skips);
    rc = 0;
    long N = z.images;
    if (N == 0) {
        rc = catlip_error_set("no usable labelled image in %s (skipped: %s; .cls must be 0..%d)",
                              a.data, skips[0] ? skips : "none", K - 1);
    } else {
        const char **class_names = xmalloc((size_t)K * sizeof *class_names);
        for (int t = 0; t < K; t++) class_names[t] = a.classes ? head.classes[t].name : names[t];
        rc = zeroshot_report(&a, &m, &z, a.classes ? &zold : NULL,
                             a.classes ? &a.headopt.opt : NULL, a.classes ? &head : NULL,
                             class_names, skips, NULL);
        free(class_names);
    }
    if (rc != 0) catlip_error_print();
    if (names) {
        for (int k = 0; k < K; k++) free(names[k]);
        free(names);
    }
    free(rows.features);
    free(rows.truth);
    zeroshot_free(&z);
    zeroshot_free(&zold);
    pipeline_destroy(p);
    shardlist_free(&shards);
    transfer_head_free(&head);
    transfer_head_free(&old);
    inference_free(&m);
    return rc == 0 ? 0 : 1;
}
