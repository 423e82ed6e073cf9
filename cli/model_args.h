// What every command that loads a trained model shares (eval, predict, embed, export,
// transfer): the options naming the model and the one way of opening it.
#pragma once
#include "model/inference.h"

struct model_args {
    const char *checkpoint;  // --checkpoint: a checkpoint file or a run directory
    const char *vocab;       // --vocab: NULL for the one the checkpoint records
    int ema;                 // --ema: the EMA weights
    int threads;             // --threads: compute threads (0: every core)
    const char *precision;   // --precision: fp32 or bf16 forward passes; NULL for fp32
    int clip_ok;             // the command handles model.objective clip checkpoints (export);
                             // the others need a CatLIP head and refuse them
};

// getopt_long entries for the options above (a command lists only those it accepts).
#define MODEL_ARGS_CHECKPOINT \
    { "checkpoint", 1, 0, 'c' }
#define MODEL_ARGS_VOCAB \
    { "vocab", 1, 0, 'v' }
#define MODEL_ARGS_EMA \
    { "ema", 0, 0, 'e' }
#define MODEL_ARGS_THREADS \
    { "threads", 1, 0, 't' }
#define MODEL_ARGS_PRECISION \
    { "precision", 1, 0, 'P' }

// Takes getopt's `opt` (with optarg) when it is one of the options above: returns 1, else 0.
int model_args_take(struct model_args *a, int opt, const char *arg);

// Loads the model for batches of up to max_batch images. Returns 0, or prints the error and
// returns 1 (the command's exit status).
int model_args_open(const struct model_args *a, struct inference_model *m, int max_batch);
