// Precision and recall of the noun labeller on the hand-labelled caption set.
//
// usage: eval_captions CAPTIONS.TSV [--min-precision P] [--min-recall R] [--min-captions N] [--verbose]
// Reads `caption<TAB>lemmas<TAB>ids` lines ('#' comments), labels each caption with
// LABELER_NOUNS, and counts synsets: true positives (produced and expected), false positives
// (produced, not expected), false negatives (expected, not produced). Prints micro-averaged
// precision and recall; exits 1 when either is below its minimum, or when the file holds fewer
// than N captions (default 200).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "text/labeler.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: eval_captions CAPTIONS.TSV [--min-precision P] [--min-recall R] [--min-captions N] [--verbose]\n");
        return 2;
    }
    double min_p = 0, min_r = 0;
    int verbose = 0;
    long min_captions = 200;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--min-precision") && i + 1 < argc) min_p = atof(argv[++i]);
        else if (!strcmp(argv[i], "--min-recall") && i + 1 < argc) min_r = atof(argv[++i]);
        else if (!strcmp(argv[i], "--min-captions") && i + 1 < argc) min_captions = atol(argv[++i]);
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else catlip_die("unknown argument '%s'", argv[i]);
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) catlip_die("cannot open %s", argv[1]);
    struct labeler *lab = labeler_create(NULL, LABELER_NOUNS);
    if (!lab) catlip_die("%s", catlip_error());
    char line[4096];
    long tp = 0, fp = 0, fn = 0, captions = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) catlip_die("%s:%ld: expected caption<TAB>lemmas<TAB>ids", argv[1], lineno);
        *tab1 = '\0';
        *tab2 = '\0';
        const char *caption = line, *ids = tab2 + 1;
        struct synset_hit hits[LABELER_MAX_HITS];
        int n = labeler_label(lab, caption, strlen(caption), hits, LABELER_MAX_HITS);
        captions++;
        char missed[1024] = "", extra[1024] = "";
        int used[LABELER_MAX_HITS] = {0};
        for (const char *p = ids; *p;) {
            while (*p == ' ') p++;
            if (!*p) break;
            size_t len = strcspn(p, " ");
            int found = 0;
            for (int k = 0; k < n; k++)
                if (strlen(hits[k].id) == len && !memcmp(hits[k].id, p, len)) found = 1, used[k] = 1;
            if (found) tp++;
            else {
                fn++;
                snprintf(missed + strlen(missed), sizeof missed - strlen(missed), " %.*s", (int)len, p);
            }
            p += len;
        }
        for (int k = 0; k < n; k++)
            if (!used[k]) {
                fp++;
                snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " %s(%s)", hits[k].id,
                         hits[k].matched);
            }
        if (verbose && (missed[0] || extra[0]))
            printf("%s\n    expected %s\n    missed:%s\n    extra:%s\n", caption, tab1 + 1, missed, extra);
    }
    fclose(f);
    labeler_free(lab);
    double precision = tp + fp ? (double)tp / (double)(tp + fp) : 0;
    double recall = tp + fn ? (double)tp / (double)(tp + fn) : 0;
    printf("captions %ld  synsets expected %ld produced %ld correct %ld  precision %.3f  recall %.3f\n",
           captions, tp + fn, tp + fp, tp, precision, recall);
    if (captions < min_captions) {
        printf("FAIL: only %ld captions (the set must hold at least %ld)\n", captions, min_captions);
        return 1;
    }
    if (precision < min_p || recall < min_r) {
        printf("FAIL: below target (precision >= %.2f, recall >= %.2f)\n", min_p, min_r);
        return 1;
    }
    return 0;
}
