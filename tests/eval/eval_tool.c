// Test driver for the evaluation code: prints what common/eval/metrics.h and
// common/text/hypernyms.h compute, for Python cross-checks against numpy and NLTK.
//
//   eval_tool metrics IN.safetensors   IN holds "scores" (N, V) and "labels" (N, V) (multi-label)
//                                      and "cls_scores" (M, K), "cls_labels" (M) (single-label);
//                                      prints one JSON object
//   eval_tool pathsim                  reads "n02084071 n02121620" lines, prints the path
//                                      similarity of each pair
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "eval/metrics.h"
#include "io/safetensors.h"
#include "text/hypernyms.h"

static int metrics(const char *path) {
    struct safetensors_file f;
    if (safetensors_read(path, &f) != 0) catlip_die("%s", catlip_error());
    const struct safetensor *s = safetensors_find(&f, "scores"),
                            *y = safetensors_find(&f, "labels");
    const struct safetensor *cs = safetensors_find(&f, "cls_scores"),
                            *cy = safetensors_find(&f, "cls_labels");
    if (!s || !y || !cs || !cy)
        catlip_die("%s: needs scores, labels, cls_scores, cls_labels", path);
    int N = (int)s->shape[0], V = (int)s->shape[1];
    static const int ks[3] = {1, 3, 5};
    struct multilabel_metrics m;
    multilabel_metrics(s->data, y->data, N, V, ks, 3, &m);
    printf(
        "{\"map_macro\": %.17g, \"map_samples\": %.17g, \"map_micro\": %.17g, \"classes_scored\": "
        "%d, "
        "\"samples_scored\": %d, \"precision_at\": [%.17g, %.17g, %.17g], \"ap_columns\": [",
        m.map_macro, m.map_samples, m.map_micro, m.classes_scored, m.samples_scored,
        m.precision_at[0], m.precision_at[1], m.precision_at[2]);
    for (int v = 0; v < V; v++)
        printf("%s%.17g", v ? ", " : "",
               average_precision((const float *)s->data + v, (const float *)y->data + v, (size_t)N,
                                 (size_t)V));
    int M = (int)cs->shape[0], K = (int)cs->shape[1];
    long top[3] = {0};
    for (int i = 0; i < M; i++) {
        int rank = score_rank((const float *)cs->data + (size_t)i * K, K,
                              (int)((const float *)cy->data)[i]);
        for (int j = 0; j < 3; j++) top[j] += rank < ks[j];
    }
    printf("], \"top_k\": [%.17g, %.17g, %.17g]}\n", (double)top[0] / M, (double)top[1] / M,
           (double)top[2] / M);
    safetensors_free(&f);
    return 0;
}

static int pathsim(void) {
    struct wordnet *wn = wordnet_load(NULL);
    if (!wn) catlip_die("%s", catlip_error());
    struct hypernyms *h = hypernyms_load(wn, NULL);
    if (!h) catlip_die("%s", catlip_error());
    char a[32], b[32];
    while (scanf("%31s %31s", a, b) == 2) {
        int ia = wordnet_synset_index(wn, (uint32_t)strtoul(a + 1, NULL, 10));
        int ib = wordnet_synset_index(wn, (uint32_t)strtoul(b + 1, NULL, 10));
        printf("%s %s %.17g\n", a, b,
               ia < 0 || ib < 0 ? -1.0 : hypernyms_path_similarity(h, ia, ib));
    }
    hypernyms_free(h);
    wordnet_free(wn);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "metrics")) return metrics(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "pathsim")) return pathsim();
    fprintf(stderr, "usage: eval_tool metrics IN.safetensors | eval_tool pathsim < pairs\n");
    return 2;
}
