#include "eval/transfer_init.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"

static void print_report(FILE *out, const struct vocab *vocab, const struct transfer_class *c,
                         int K) {
    int width = 5;
    for (int k = 0; k < K; k++) {
        int n = (int)strlen(c[k].name);
        if (n > width) width = n < 40 ? n : 40;
    }
    fprintf(out, "%-*s  %-8s  %s\n", width, "class", "how", "synsets used");
    int counts[4] = {0}, nearest = 0;
    for (int k = 0; k < K; k++) {
        counts[c[k].how]++;
        nearest += c[k].nearest > 0;
        fprintf(
            out, "%-*.*s  %-8s  ", width, width, c[k].name,
            c[k].nearest && c[k].how != TRANSFER_RANDOM ? "nearest" : transfer_how_name(c[k].how));
        if (c[k].nsynsets == 0) fprintf(out, "(nothing matched: random row)");
        for (int i = 0; i < c[k].nsynsets; i++) {
            char buf[256];
            transfer_format_synset(vocab, &c[k].synsets[i], buf, sizeof buf);
            fprintf(out, "%s%s", i ? "; " : "", buf);
        }
        if (c[k].nsynsets > 1) fprintf(out, "  (mean of %d rows)", c[k].nsynsets);
        fputc('\n', out);
    }
    fprintf(out,
            "transfer: %d classes: %d by synset id, %d by name, %d labelled like captions, %d "
            "using a nearest "
            "vocabulary synset, %d random\n",
            K, counts[TRANSFER_ID], counts[TRANSFER_NAME], counts[TRANSFER_CAPTION], nearest,
            counts[TRANSFER_RANDOM]);
}

int transfer_head_from_classes(const struct inference_model *m, const char *classes_path,
                               const char *wordnet_dir, uint64_t seed, FILE *report,
                               struct transfer_head *out) {
    memset(out, 0, sizeof *out);
    if (!m->vocab)
        return catlip_error_set("%s: trained without a vocabulary: no synset head to transfer",
                                m->path);
    struct labeler *lab = labeler_create(wordnet_dir, LABELER_NOUNS);
    if (!lab) return -1;
    struct transfer_matcher *matcher = transfer_matcher_create(lab, m->vocab, wordnet_dir);
    int K = matcher ? transfer_match_file(matcher, classes_path, &out->classes) : -1;
    if (K > 0) {
        const struct vit_layout *l = &m->model.layout;
        out->K = K;
        out->C = m->config.dim;
        out->weight = xmalloc((size_t)K * out->C * sizeof(float));
        out->bias = xmalloc((size_t)K * sizeof(float));
        transfer_build_head(out->classes, K, m->params + l->head_w, m->params + l->head_b,
                            m->config.num_classes, out->C, seed, out->weight, out->bias);
        if (report) print_report(report, m->vocab, out->classes, K);
    }
    transfer_matcher_free(matcher);
    labeler_free(lab);
    return K > 0 ? 0 : -1;
}

void transfer_head_free(struct transfer_head *h) {
    free(h->weight);
    free(h->bias);
    free(h->classes);
    memset(h, 0, sizeof *h);
}
