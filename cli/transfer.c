// `catlip transfer`: Transfer Init — a downstream head from the pretrained synset head.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/head_args.h"
#include "cli/model_args.h"
#include "core/check.h"
#include "eval/transfer_init.h"
#include "io/transfer_head.h"

static const char *transfer_usage =
    "usage: catlip transfer --checkpoint CKPT --classes CLASSES.txt -o HEAD.safetensors [options]\n"
    "\n"
    "Builds a classifier head for downstream classes from the pretrained synset head (CatLIP's\n"
    "Transfer Init). Each line of CLASSES.txt is a class: a WordNet noun synset id (n02084071,\n"
    "optionally followed by a display name) or a name (\"golden retriever\", \"ankle boot\"). A\n"
    "name takes the noun sense the vocabulary knows (--senses), else is labelled like a caption;\n"
    "a class row pools its synset's vocabulary hyponyms by training count (--pool) and is\n"
    "calibrated (--calibrate); a synset with nothing in the vocabulary at or below it takes the\n"
    "row of its nearest vocabulary synset by WordNet path similarity; a class with nothing gets\n"
    "a random row. Prints the table class -> how matched -> synsets, senses and pooled rows.\n"
    "The head is safetensors: head.weight (K, C), head.bias (K), metadata with the class names\n"
    "and synsets (see the README).\n"
    "\n"
    "  --checkpoint CKPT  checkpoint file, or a run directory (its newest valid checkpoint)\n"
    "  --classes FILE     one class per line ('#' comments and blank lines skipped)\n"
    "  -o, --output FILE  head file to write\n"
    "  --ema              use the EMA weights' head\n"
    "  --vocab FILE       vocabulary TSV (default: the data.vocab recorded in the checkpoint)\n"
    "  --seed N           seed of the random rows (default 0)\n"
    "  --wordnet DIR      WordNet dictionary directory (default /usr/share/wordnet)\n"
    "  --batch N, --decode-threads N   for --calibrate-on (default 32, 2)\n" HEAD_ARGS_USAGE;

int cmd_transfer(int argc, char **argv) {
    static const struct option options[] = {MODEL_ARGS_CHECKPOINT,  {"classes", 1, 0, 'k'},
                                            {"output", 1, 0, 'o'},  MODEL_ARGS_EMA,
                                            MODEL_ARGS_VOCAB,       {"seed", 1, 0, 's'},
                                            {"wordnet", 1, 0, 'w'}, {"help", 0, 0, 'h'},
                                            {"batch", 1, 0, 'b'},   {"decode-threads", 1, 0, 'D'},
                                            HEAD_ARGS_OPTIONS,      {0, 0, 0, 0}};
    struct head_args head_args;
    head_args_init(&head_args);
    int batch = 32, decode_threads = 2;
    struct model_args model = {.threads = 1};
    const char *classes = NULL, *output = NULL, *wordnet = NULL;
    int opt;
    unsigned long long seed = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        if (model_args_take(&model, opt, optarg)) continue;
        int taken = head_args_take(&head_args, opt, optarg);
        if (taken < 0) {
            catlip_error_print();
            return 2;
        }
        if (taken) continue;
        switch (opt) {
            case 'b': batch = atoi(optarg) > 0 ? atoi(optarg) : 32; break;
            case 'D': decode_threads = atoi(optarg) > 0 ? atoi(optarg) : 2; break;
            case 'k': classes = optarg; break;
            case 'o': output = optarg; break;
            case 's': seed = strtoull(optarg, NULL, 10); break;
            case 'w': wordnet = optarg; break;
            case 'h': fputs(transfer_usage, stdout); return 0;
            default: fputs(transfer_usage, stderr); return 2;
        }
    }
    if (!model.checkpoint || !classes || !output || optind < argc) {
        fputs(transfer_usage, stderr);
        fprintf(stderr, "catlip: error: transfer needs --checkpoint, --classes and -o\n");
        return 2;
    }
    if (head_args_finish(&head_args, HEAD_SCORE_LINEAR) != 0) {
        catlip_error_print();
        return 2;
    }
    struct inference_model m;
    if (model_args_open(&model, &m, head_args.calibrate_on ? batch : 1) != 0) return 1;
    struct transfer_head head;
    struct head_reference ref;
    int rc = head_args_reference(&head_args, &m, batch, decode_threads, &ref);
    if (rc == 0)
        rc = transfer_head_from_classes(&m, classes, wordnet, seed, head_args.opt, &ref, stdout,
                                        &head);
    else
        memset(&head, 0, sizeof head);
    head_reference_free(&ref);
    if (rc == 0)
        rc = transfer_head_write(output, head.classes, head.K, head.C, head.weight, head.bias,
                                 m.header->vocab_hash, m.path);
    if (rc == 0)
        printf("transfer: head (%d x %d) written to %s\n", head.K, head.C, output);
    else
        catlip_error_print();
    transfer_head_free(&head);
    inference_free(&m);
    return rc == 0 ? 0 : 1;
}
