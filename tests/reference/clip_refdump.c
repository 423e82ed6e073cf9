// Dumps what tests/reference/check_clip.py compares against an independent float64 PyTorch
// run: CLIP's text tower (nn/text_tower.h) and the contrastive loss (nn/contrastive.h) over a
// global batch, split over however many MPI ranks run this (worker/contrastive_sync.h).
//
// Every rank makes the same global batch (token ids with <sot>, words, <eot>, padding; some
// rows filled to the context; raw image embeddings) and the same parameters (the tower's
// initialisation, then every value perturbed so that biases and norms matter), takes its
// contiguous slice of rows, runs the tower forward, the distributed loss, and the tower
// backward, then sums the parameter gradients over ranks. Rank 0 writes the inputs and, gathered
// in global row order, the text features and the gradients of the image embeddings: they must
// equal one process's whole-batch gradients at any rank count.
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/contrastive.h"
#include "nn/gemm.h"
#include "nn/text_tower.h"
#include "tests/reference/refdump_io.h"
#include "text/tokenizer.h"
#include "worker/contrastive_sync.h"

// Gathers every rank's rows (rows, D) into all (N, D) on rank 0, in rank order.
static void gather_rows(float *all, const float *mine, int rows, int D, MPI_Comm comm) {
    int size, rank;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    int *counts = xcalloc((size_t)size, sizeof *counts), *displs = xcalloc((size_t)size, sizeof *displs);
    int mine_floats = rows * D;
    MPI_Gather(&mine_floats, 1, MPI_INT, counts, 1, MPI_INT, 0, comm);
    for (int w = 1; w < size; w++) displs[w] = displs[w - 1] + counts[w - 1];
    MPI_Gatherv(mine, mine_floats, MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0, comm);
    free(counts);
    free(displs);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const char *out = NULL, *preset = "text_tiny";
    int N = 7, context = 8, vocab = 23, width = 32, depth = 2, heads = 4, embed = 16, threads = 2;
    long seed = 1;
    int bf16 = 0;
    float log_scale = CONTRASTIVE_LOG_SCALE_INIT;
    static struct option opts[] = {{"out", 1, 0, 'o'},   {"batch", 1, 0, 'b'},
                                   {"context", 1, 0, 'T'}, {"vocab", 1, 0, 'v'},
                                   {"width", 1, 0, 'd'}, {"depth", 1, 0, 'D'},
                                   {"heads", 1, 0, 'H'}, {"embed", 1, 0, 'e'},
                                   {"seed", 1, 0, 's'},  {"threads", 1, 0, 't'},
                                   {"log-scale", 1, 0, 'l'}, {"precision", 1, 0, 'P'},
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'b': N = atoi(optarg); break;
        case 'T': context = atoi(optarg); break;
        case 'v': vocab = atoi(optarg); break;
        case 'd': width = atoi(optarg); break;
        case 'D': depth = atoi(optarg); break;
        case 'H': heads = atoi(optarg); break;
        case 'e': embed = atoi(optarg); break;
        case 's': seed = atol(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'l': log_scale = strtof(optarg, NULL); break;
        case 'P': bf16 = !strcmp(optarg, "bf16"); break;
        default: return 2;
        }
    }
    if (!out) catlip_die("usage: clip_refdump --out DIR [--batch N --context T --vocab V ...]");
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const struct kernels *k = kernels_active();
    if (rank == 0) {
        mkdir(out, 0755);
        fprintf(stderr, "clip_refdump: %d rank(s), kernels %s, gemm %s\n", size, k->name,
                gemm_backend());
    }

    struct text_model m = {.pool = pool_create(threads, 0), .k = k, .bf16 = bf16};
    struct text_config tc;
    if (text_config_make(&tc, preset, vocab, context, TOKENIZER_EOT, width, depth, heads, embed) != 0)
        catlip_die("%s", catlip_error());
    text_layout_init(&m.layout, &tc);
    const struct text_layout *L = &m.layout;
    float *params = xaligned_alloc(L->total * sizeof(float));
    float *grads = xaligned_alloc(L->total * sizeof(float));
    text_init_params(L, params, (uint64_t)seed);
    struct rng r;
    rng_init(&r, rng_key((uint64_t)seed, 0xc11b, 0, 0));
    for (size_t i = 0; i < L->total; i++) params[i] += 0.05f * (float)rng_normal(&r);

    // The global batch: row b has <sot>, n_b words (ids from <unk> up), <eot>, padding; every
    // third row is full (n_b = T - 2), so <eot> sits at the last position.
    int32_t *ids = xcalloc((size_t)N * context, sizeof *ids);
    for (int b = 0; b < N; b++) {
        int32_t *row = ids + (size_t)b * context;
        int words = b % 3 == 0 ? context - 2 : (int)rng_below(&r, (uint64_t)context - 1);
        row[0] = TOKENIZER_SOT;
        for (int i = 0; i < words; i++)
            row[1 + i] = TOKENIZER_UNK + (int32_t)rng_below(&r, (uint64_t)(vocab - TOKENIZER_UNK));
        row[1 + words] = TOKENIZER_EOT;
    }
    float *image = xmalloc((size_t)N * embed * sizeof *image);
    for (size_t i = 0; i < (size_t)N * embed; i++) image[i] = (float)rng_normal(&r);

    // This rank's contiguous slice.
    const int begin = (int)((long)N * rank / size), rows = (int)((long)N * (rank + 1) / size) - begin;
    struct text_acts acts;
    text_acts_create(&acts, &tc, rows > 0 ? rows : 1, threads);
    if (bf16) text_acts_enable_bf16(&acts, L->total);
    struct contrastive_sync cs;
    contrastive_sync_init(&cs, MPI_COMM_WORLD, N / size + 1, embed, NULL);
    float *dimage = xcalloc((size_t)rows * embed + 1, sizeof(float));
    float *dtext = xcalloc((size_t)rows * embed + 1, sizeof(float));
    memset(grads, 0, L->total * sizeof(float));
    float dlog_scale = 0.0f;
    if (rows > 0) text_forward(&m, &acts, params, ids + (size_t)begin * context, rows);
    double loss = contrastive_sync_step(&cs, m.pool, k, dimage, dtext, &dlog_scale,
                                        image + (size_t)begin * embed, acts.features, rows,
                                        log_scale);
    if (rows > 0) text_backward(&m, &acts, params, grads, dtext, rows, NULL, NULL);
    // What the step's gradient allreduce does with the parameters (the log-scale among them).
    MPI_Allreduce(MPI_IN_PLACE, grads, (int)L->total, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &dlog_scale, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);

    float *features_all = rank == 0 ? xmalloc((size_t)N * embed * sizeof(float)) : NULL;
    float *dimage_all = rank == 0 ? xmalloc((size_t)N * embed * sizeof(float)) : NULL;
    float *dtext_all = rank == 0 ? xmalloc((size_t)N * embed * sizeof(float)) : NULL;
    gather_rows(features_all, acts.features, rows, embed, MPI_COMM_WORLD);
    gather_rows(dimage_all, dimage, rows, embed, MPI_COMM_WORLD);
    gather_rows(dtext_all, dtext, rows, embed, MPI_COMM_WORLD);

    if (rank == 0) {
        int cap = 2 * L->ntensors + 16, n = 0;
        struct safetensor *st = xcalloc((size_t)cap, sizeof *st);
        char(*names)[96] = xcalloc((size_t)cap, 96);
        refdump_add_tensors(st, &n, L->tensors, L->ntensors, params, "", names);
        refdump_write(out, "init.safetensors", st, n);
        n = 0;
        st[n++] = (struct safetensor){"ids", "I32", 2, {N, context}, ids,
                                      (size_t)N * context * sizeof(int32_t)};
        st[n++] = (struct safetensor){"image", "F32", 2, {N, embed}, image,
                                      (size_t)N * embed * sizeof(float)};
        st[n++] = (struct safetensor){"log_scale", "F32", 1, {1}, &log_scale, sizeof(float)};
        refdump_write(out, "batch.safetensors", st, n);
        n = 0;
        st[n++] = (struct safetensor){"features", "F32", 2, {N, embed}, features_all,
                                      (size_t)N * embed * sizeof(float)};
        st[n++] = (struct safetensor){"loss", "F64", 1, {1}, &loss, sizeof(double)};
        st[n++] = (struct safetensor){"grad.image", "F32", 2, {N, embed}, dimage_all,
                                      (size_t)N * embed * sizeof(float)};
        st[n++] = (struct safetensor){"grad.features", "F32", 2, {N, embed}, dtext_all,
                                      (size_t)N * embed * sizeof(float)};
        st[n++] = (struct safetensor){"grad.log_scale", "F32", 1, {1}, &dlog_scale, sizeof(float)};
        refdump_add_tensors(st, &n, L->tensors, L->ntensors, grads, "grad.", names);
        refdump_write(out, "out.safetensors", st, n);
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", out);
        FILE *f = fopen(path, "w");
        if (!f) catlip_die("cannot write %s", path);
        fprintf(f,
                "{\"batch\": %d, \"context\": %d, \"vocab\": %d, \"width\": %d, \"depth\": %d, "
                "\"heads\": %d, \"embed\": %d, \"eot\": %d, \"workers\": %d, \"kernels\": \"%s\", "
                "\"gemm\": \"%s\", \"threads\": %d, \"precision\": \"%s\"}\n",
                N, context, vocab, tc.width, tc.depth, tc.heads, tc.embed_dim, tc.eot_token, size,
                k->name, gemm_backend(), threads, bf16 ? "bf16" : "fp32");
        fclose(f);
        fprintf(stderr, "clip_refdump: loss %.6f over %d pairs\n", loss, N);
        free(st);
        free(names);
    }
    contrastive_sync_free(&cs);
    text_acts_free(&acts);
    text_layout_free(&m.layout);
    pool_destroy(m.pool);
    free(params), free(grads), free(ids), free(image), free(dimage), free(dtext),
        free(features_all), free(dimage_all), free(dtext_all);
    MPI_Finalize();
    return 0;
}
