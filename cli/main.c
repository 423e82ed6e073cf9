// catlip: one executable, subcommands dispatched from this table.
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

struct command {
    const char *name;     // "train", or "bench step" for a two-word command
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"train", cmd_train, "pre-train (or fine-tune) a ViT; see catlip train --help"},
    {"bench step", cmd_bench_step, "time full training steps on random data"},
    {"vocab build", cmd_vocab_build, "count caption synsets over shards into a vocabulary TSV (MPI)"},
    {"vocab label", cmd_vocab_label, "print the WordNet synsets of captions"},
    {"tokenizer build", cmd_tokenizer_build, "count caption words over shards into the CLIP text tokenizer"},
    {"tokenizer encode", cmd_tokenizer_encode, "print the token ids of captions"},
    {"shards make", cmd_shards_make, "write WebDataset shards from a TSV of images and captions/classes"},
    {"shards index", cmd_shards_index, "build the per-shard indexes (threads; MPI ranks under mpirun)"},
    {"bench allreduce", cmd_bench_allreduce, "allreduce latency and bandwidth between a job's hosts, for the model's gradient (MPI)"},
    {"bench objective", cmd_bench_objective, "step time of CatLIP's or CLIP's objective, phase by phase, across ranks (MPI)"},
    {"bench data", cmd_bench_data, "time JPEG decode + augmentation per thread against torchvision"},
    {"eval multilabel", cmd_eval_multilabel, "mAP of a checkpoint on held-out image-text shards vs the label prior"},
    {"eval zeroshot", cmd_eval_zeroshot, "top-1/top-5 accuracy of a Transfer Init head on labelled shards"},
    {"transfer", cmd_transfer, "Transfer Init: a downstream classifier head from the synset head"},
    {"predict", cmd_predict, "top-k synsets of images"},
    {"embed", cmd_embed, "pooled features of images to a NumPy .npy file"},
    {"export", cmd_export, "weights as safetensors with timm names, plus the vocabulary"},
    {"status", cmd_status, "show a running training's status, or ask it to checkpoint / stop"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: catlip COMMAND [options]   (catlip COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    // Two-word commands ("bench step") first, then one-word ones.
    if (argc >= 3) {
        char two[128];
        snprintf(two, sizeof two, "%s %s", argv[1], argv[2]);
        for (size_t i = 0; i < NCOMMANDS; i++)
            if (!strcmp(commands[i].name, two)) return commands[i].run(argc - 2, argv + 2);
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, argv[1])) return commands[i].run(argc - 1, argv + 1);
    int known_group = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        size_t n = strlen(argv[1]);
        if (!strncmp(commands[i].name, argv[1], n) && commands[i].name[n] == ' ') known_group = 1;
    }
    if (known_group)
        fprintf(stderr, "catlip: error: '%s' needs a subcommand (catlip --help lists them)\n", argv[1]);
    else
        fprintf(stderr, "catlip: error: unknown command '%s' (catlip --help lists them)\n", argv[1]);
    return 2;
}
