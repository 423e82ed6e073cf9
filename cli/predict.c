// `catlip predict` (top-k synsets of images) and `catlip embed` (pooled features to .npy).
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/check.h"
#include "data/image_file.h"
#include "eval/clip_zeroshot.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/inference.h"

#define PREDICT_BATCH 16

static const char *predict_usage =
    "usage: catlip predict --checkpoint CKPT [options] IMAGE...\n"
    "\n"
    "Prints, for each image (JPEG or PNG), the top-k synsets of the pretrained head with their\n"
    "lemma names and sigmoid probabilities (CatLIP is multi-label: each synset's own "
    "probability).\n"
    "Images get the evaluation transform: shorter side resized, centre crop, normalised.\n"
    "\n"
    "  --checkpoint CKPT  checkpoint file, or a run directory (its newest valid checkpoint)\n"
    "  --ema              use the EMA weights\n"
    "  --vocab FILE       vocabulary TSV (default: the data.vocab recorded in the checkpoint)\n"
    "  --top K            synsets per image (default 5)\n"
    "  --threads N        compute threads (default: all cores)\n"
    "  --precision P      fp32 (default) or bf16 forward passes (as train.precision)\n"
    "  --dump FILE        also write the preprocessed images and logits as safetensors\n"
    "                     (\"images\" (N, 3, S, S), \"logits\" (N, V)), e.g. to compare with "
    "PyTorch\n";

static const char *embed_usage =
    "usage: catlip embed --checkpoint CKPT -o FEATURES.npy [options] IMAGE...\n"
    "\n"
    "Writes the pooled features of each image (the CLS token after the final LayerNorm, the input\n"
    "of the head) as a float32 NumPy array (N, C), rows in argument order. With a CLIP\n"
    "checkpoint, --projected writes its image embeddings instead: the pooled features through\n"
    "the image projection, L2-normalised (N, E), what CLIP compares with text embeddings.\n"
    "\n"
    "  --checkpoint CKPT  checkpoint file, or a run directory\n"
    "  -o, --output FILE  .npy file to write\n"
    "  --ema              use the EMA weights\n"
    "  --vocab FILE       vocabulary TSV (default: the checkpoint's)\n"
    "  --threads N        compute threads (default: all cores)\n"
    "  --precision P      fp32 (default) or bf16 forward passes (as train.precision)\n"
    "  --list FILE        read image paths from FILE (one per line) as well\n"
    "  --projected        CLIP checkpoints: the normalised joint-space embeddings (N, E)\n";

struct image_args {
    struct model_args model;
    const char *output, *dump, *list;
    int top, projected;
    char **images;
    int nimages, images_cap;
};

static void add_image(struct image_args *a, const char *path) {
    if (a->nimages == a->images_cap)
        a->images =
            xrealloc(a->images, (size_t)(a->images_cap = a->images_cap * 2 + 16) * sizeof(char *));
    a->images[a->nimages++] = xstrdup(path);
}

static int parse_args(int argc, char **argv, const char *usage, struct image_args *a) {
    static const struct option options[] = {
        MODEL_ARGS_CHECKPOINT, MODEL_ARGS_VOCAB,    MODEL_ARGS_EMA,      MODEL_ARGS_THREADS,
        MODEL_ARGS_PRECISION,  {"top", 1, 0, 'k'},  {"dump", 1, 0, 'd'}, {"output", 1, 0, 'o'},
        {"list", 1, 0, 'l'},   {"help", 0, 0, 'h'}, {"projected", 0, 0, 'j'}, {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->top = 5;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        if (model_args_take(&a->model, opt, optarg)) continue;
        switch (opt) {
            case 'k': a->top = atoi(optarg); break;
            case 'd': a->dump = optarg; break;
            case 'o': a->output = optarg; break;
            case 'l': a->list = optarg; break;
            case 'j': a->projected = 1; break;
            case 'h': fputs(usage, stdout); exit(0);
            default: fputs(usage, stderr); return -1;
        }
    }
    for (int i = optind; i < argc; i++) add_image(a, argv[i]);
    if (a->list) {
        FILE *f = fopen(a->list, "r");
        if (!f) return catlip_error_set("%s: cannot open the image list", a->list);
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, f)) >= 0) {
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
            if (got > 0) add_image(a, line);
        }
        free(line);
        fclose(f);
    }
    if (!a->model.checkpoint) return catlip_error_set("--checkpoint CKPT is required");
    if (a->nimages == 0) return catlip_error_set("no images given");
    if (a->top < 1 || a->top > 64) return catlip_error_set("--top must be in 1..64");
    return 0;
}

static void free_args(struct image_args *a) {
    for (int i = 0; i < a->nimages; i++) free(a->images[i]);
    free(a->images);
}

// Runs the model over every image in batches; calls `each` after every batch.
typedef void (*batch_fn)(void *ctx, struct inference_model *m, int first, int count,
                         const float *images);

static int run_images(struct inference_model *m, struct image_args *a, batch_fn each, void *ctx) {
    int S = m->config.image_size;
    size_t image_floats = (size_t)3 * S * S;
    float *images = xaligned_alloc((size_t)PREDICT_BATCH * image_floats * sizeof(float));
    struct transform_ctx tctx;
    transform_ctx_init(&tctx);
    int rc = 0;
    for (int first = 0; first < a->nimages && rc == 0; first += PREDICT_BATCH) {
        int count = a->nimages - first < PREDICT_BATCH ? a->nimages - first : PREDICT_BATCH;
        for (int i = 0; i < count && rc == 0; i++)
            rc = image_file_transform(&tctx, a->images[first + i], S, m->mean, m->std,
                                      images + (size_t)i * image_floats);
        if (rc != 0) break;
        inference_forward(m, images, count);
        each(ctx, m, first, count, images);
    }
    transform_ctx_free(&tctx);
    free(images);
    return rc;
}

struct predict_ctx {
    struct image_args *args;
    float *dump_images, *dump_logits;  // (N, 3, S, S), (N, V) when --dump
};

static void predict_batch(void *vctx, struct inference_model *m, int first, int count,
                          const float *images) {
    struct predict_ctx *ctx = vctx;
    int V = m->config.num_classes, S = m->config.image_size;
    int top = ctx->args->top < V ? ctx->args->top : V;
    for (int i = 0; i < count; i++) {
        const float *logits = m->acts.logits + (size_t)i * V;
        printf("%s\n", ctx->args->images[first + i]);
        int chosen[64];
        for (int r = 0; r < top && r < 64; r++) {
            int best = -1;  // the highest logit not yet printed, ties to the lower index
            for (int v = 0; v < V; v++) {
                int used = 0;
                for (int j = 0; j < r; j++) used |= chosen[j] == v;
                if (!used && (best < 0 || logits[v] > logits[best])) best = v;
            }
            chosen[r] = best;
            double p = 1.0 / (1.0 + exp(-(double)logits[best]));
            if (m->vocab)
                printf("    %.4f  %s  %s\n", p, vocab_id(m->vocab, best),
                       vocab_lemma(m->vocab, best));
            else
                printf("    %.4f  class %d\n", p, best);
        }
    }
    if (ctx->dump_images) {
        size_t image_floats = (size_t)3 * S * S;
        memcpy(ctx->dump_images + (size_t)first * image_floats, images,
               (size_t)count * image_floats * sizeof(float));
        memcpy(ctx->dump_logits + (size_t)first * V, m->acts.logits,
               (size_t)count * V * sizeof(float));
    }
}

// Arguments, then the model: 0, or the command's exit status (2 for bad arguments, 1 when the
// model does not load) with the error printed and nothing left to free.
// embed: takes --projected and CLIP checkpoints; predict: neither (CLIP has no synset head).
static int open_command(int argc, char **argv, const char *usage, int embed,
                        struct image_args *a, struct inference_model *m) {
    if (parse_args(argc, argv, usage, a) != 0 ||
        (embed && !a->output && catlip_error_set("-o FEATURES.npy is required")) ||
        (!embed && a->projected && catlip_error_set("--projected is catlip embed's"))) {
        catlip_error_print();
        free_args(a);
        return 2;
    }
    a->model.clip_ok = embed;
    if (model_args_open(&a->model, m, PREDICT_BATCH) != 0) {
        free_args(a);
        return 1;
    }
    if (a->projected && !m->config.clip) {
        catlip_error_set("%s is a CatLIP checkpoint: --projected is for CLIP checkpoints (its "
                         "pooled features are the embedding)",
                         m->path);
        catlip_error_print();
        inference_free(m);
        free_args(a);
        return 2;
    }
    return 0;
}

int cmd_predict(int argc, char **argv) {
    struct image_args a;
    struct inference_model m;
    int status = open_command(argc, argv, predict_usage, 0, &a, &m);
    if (status != 0) return status;
    int N = a.nimages, V = m.config.num_classes, S = m.config.image_size;
    struct predict_ctx ctx = {.args = &a};
    if (a.dump) {
        ctx.dump_images = xmalloc((size_t)N * 3 * S * S * sizeof(float));
        ctx.dump_logits = xmalloc((size_t)N * V * sizeof(float));
    }
    int rc = run_images(&m, &a, predict_batch, &ctx);
    if (rc == 0 && a.dump) {
        struct safetensor t[2] = {
            {.name = "images",
             .dtype = "F32",
             .ndim = 4,
             .shape = {N, 3, S, S},
             .data = ctx.dump_images,
             .bytes = (size_t)N * 3 * S * S * sizeof(float)},
            {.name = "logits",
             .dtype = "F32",
             .ndim = 2,
             .shape = {N, V},
             .data = ctx.dump_logits,
             .bytes = (size_t)N * V * sizeof(float)},
        };
        rc = safetensors_write(a.dump, t, 2, NULL);
    }
    if (rc != 0) catlip_error_print();
    free(ctx.dump_images);
    free(ctx.dump_logits);
    inference_free(&m);
    free_args(&a);
    return rc == 0 ? 0 : 1;
}

struct embed_ctx {
    float *features;  // (N, C) pooled or (N, E) projected
    int projected;
};

static void embed_batch(void *vctx, struct inference_model *m, int first, int count,
                        const float *images) {
    (void)images;
    struct embed_ctx *ctx = vctx;
    if (ctx->projected) {
        int E = m->config.num_classes;
        clip_image_embeddings(ctx->features + (size_t)first * E, m->acts.logits, count, E);
        return;
    }
    int C = m->config.dim;
    memcpy(ctx->features + (size_t)first * C, m->acts.lnf, (size_t)count * C * sizeof(float));
}

int cmd_embed(int argc, char **argv) {
    struct image_args a;
    struct inference_model m;
    int status = open_command(argc, argv, embed_usage, 1, &a, &m);
    if (status != 0) return status;
    int C = a.projected ? m.config.num_classes : m.config.dim;
    float *features = xmalloc((size_t)a.nimages * C * sizeof(float));
    struct embed_ctx ctx = {features, a.projected};
    int rc = run_images(&m, &a, embed_batch, &ctx);
    int64_t shape[2] = {a.nimages, C};
    if (rc == 0) rc = npy_write_f32(a.output, features, 2, shape);
    if (rc == 0)
        fprintf(stderr, "embed: %d images -> %s (%d x %d float32)\n", a.nimages, a.output,
                a.nimages, C);
    else
        catlip_error_print();
    free(features);
    inference_free(&m);
    free_args(&a);
    return rc == 0 ? 0 : 1;
}
