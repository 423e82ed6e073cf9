#include "eval/clip_zeroshot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "nn/contrastive.h"
#include "text/transfer.h"
#include "text/wordnet.h"

// A synset's head word with '_' read as spaces (malloc'ed), loading WordNet on first use.
static char *synset_name(struct wordnet **wn, uint32_t offset, const char *path, int k) {
    if (!*wn && !(*wn = wordnet_load(NULL))) return NULL;
    const char *word = wordnet_synset_word(*wn, offset);
    if (!word) {
        catlip_error_set("%s: class %d: n%08u is not a WordNet noun synset; write its name after "
                         "the id",
                         path, k + 1, offset);
        return NULL;
    }
    char *name = xstrdup(word);
    for (char *c = name; *c; c++)
        if (*c == '_') *c = ' ';
    return name;
}

int clip_class_names(const char *path, char ***names) {
    char **lines;
    int K = transfer_read_class_lines(path, &lines);
    if (K < 0) return -1;
    struct wordnet *wn = NULL;
    int rc = 0;
    for (int k = 0; k < K && rc == 0; k++) {
        const char *display;
        uint32_t offset = transfer_line_synset(lines[k], &display);
        if (!offset || display[0]) {
            if (offset) memmove(lines[k], display, strlen(display) + 1);
            continue;
        }
        char *name = synset_name(&wn, offset, path, k);
        if (!name) {
            rc = -1;
            break;
        }
        free(lines[k]);
        lines[k] = name;
    }
    wordnet_free(wn);
    if (rc != 0) {
        transfer_class_lines_free(lines, K);
        return -1;
    }
    *names = lines;
    return K;
}

void clip_class_names_free(char **names, int K) { transfer_class_lines_free(names, K); }

int clip_prompt_check(const char *prompt) {
    if (!strstr(prompt, "{}"))
        return catlip_error_set("--prompts '%s': a prompt needs {} where the class name goes "
                                "(e.g. 'a drawing of a {}')",
                                prompt);
    return 0;
}

char *clip_prompt_format(const char *prompt, const char *name) {
    size_t n = 0, name_len = strlen(name);
    for (const char *p = strstr(prompt, "{}"); p; p = strstr(p + 2, "{}")) n++;
    char *out = xmalloc(strlen(prompt) + n * name_len + 1), *o = out;
    for (const char *p = prompt; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, name, name_len);
            o += name_len;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

void clip_image_embeddings(float *out, const float *in, int B, int E) {
    float *norms = xmalloc((size_t)(B > 0 ? B : 1) * sizeof *norms);
    l2_normalize_forward(out, norms, in, B, E);
    free(norms);
}

void clip_zeroshot_head(struct inference_model *m, const char *const *names, int K,
                        const char *const *prompts, int P, float **weight, float **bias,
                        struct clip_class_text *info, int32_t *ids_out) {
    const int E = m->config.text.embed_dim, T = m->config.text.context;
    const int NB = m->text_max_batch;
    const long total = (long)K * P;  // texts, class-major: row k * P + p
    int32_t *ids = xmalloc((size_t)total * T * sizeof *ids);
    if (info) memset(info, 0, (size_t)K * sizeof *info);
    for (int k = 0; k < K; k++) {
        if (info) {
            int32_t *alone = xmalloc((size_t)T * sizeof *alone);
            info[k].name_words = inference_tokenize(m, alone, names[k], &info[k].name_unknown,
                                                    NULL) - 2;
            free(alone);
        }
        for (int p = 0; p < P; p++) {
            char *text = clip_prompt_format(prompts[p], names[k]);
            int dropped = 0;
            inference_tokenize(m, ids + ((size_t)k * P + p) * T, text, NULL, &dropped);
            if (info) info[k].dropped += dropped;
            free(text);
        }
    }
    if (ids_out) memcpy(ids_out, ids, (size_t)total * T * sizeof *ids);
    // Every text's normalised embedding, in batches of the text tower's size.
    float *text = xmalloc((size_t)total * E * sizeof *text);
    for (long first = 0; first < total; first += NB) {
        int B = total - first < NB ? (int)(total - first) : NB;
        inference_forward_text(m, ids + (size_t)first * T, B);
        clip_image_embeddings(text + (size_t)first * E, m->text_acts.features, B, E);
    }
    const double s = inference_logit_scale(m);
    float *w = xmalloc((size_t)K * E * sizeof *w);
    double *mean = xmalloc((size_t)E * sizeof *mean);
    for (int k = 0; k < K; k++) {
        for (int e = 0; e < E; e++) mean[e] = 0;
        for (int p = 0; p < P; p++)
            for (int e = 0; e < E; e++) mean[e] += text[((size_t)k * P + p) * E + e];
        double ss = 0;
        for (int e = 0; e < E; e++) ss += mean[e] * mean[e];
        double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
        for (int e = 0; e < E; e++) w[(size_t)k * E + e] = (float)(s * mean[e] / norm);
    }
    free(mean);
    free(text);
    free(ids);
    *weight = w;
    *bias = xcalloc((size_t)K, sizeof **bias);
}
