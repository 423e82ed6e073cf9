#include "cli/model_args.h"

#include <stdlib.h>

#include "core/check.h"

int model_args_take(struct model_args *a, int opt, const char *arg) {
    switch (opt) {
        case 'c': a->checkpoint = arg; return 1;
        case 'v': a->vocab = arg; return 1;
        case 'e': a->ema = 1; return 1;
        case 't': a->threads = atoi(arg); return 1;
        case 'P': a->precision = arg; return 1;
    }
    return 0;
}

int model_args_open(const struct model_args *a, struct inference_model *m, int max_batch) {
    if (inference_load(m, a->checkpoint, a->vocab, a->ema, max_batch, a->threads) == 0) {
        if (m->config.clip && !a->clip_ok)
            catlip_error_set("%s is a CLIP checkpoint (model.objective clip): this command needs "
                             "CatLIP's synset head; use catlip eval zeroshot --classes FILE "
                             "--prompts TEMPLATE, catlip embed or catlip export",
                             m->path);
        else if (!a->precision || inference_set_precision(m, a->precision) == 0)
            return 0;
        inference_free(m);
    }
    catlip_error_print();
    return 1;
}
