// Labelling speed: captions per second on one core (one thread), and with T threads sharing one
// labeler.
//
// usage: text_bench_labeler CAPTIONS.TSV [SECONDS] [THREADS] [--mode nouns|corenet]
// Captions are the hand-labelled set joined in pairs ("caption A - caption B"), which gives
// typical 10-20-word alt-text; prints words per caption, captions/s per thread and in total.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "text/labeler.h"

static struct labeler *lab;
static char **captions;
static int ncaptions;
static double seconds = 2.0;

struct result {
    long done;
    long synsets;
    double elapsed;
};

static void *run(void *p) {
    struct result *r = p;
    double start = time_now();
    long done = 0, synsets = 0;
    while (time_now() - start < seconds) {
        for (int i = 0; i < ncaptions; i++) {
            struct synset_hit hits[LABELER_MAX_HITS];
            synsets += labeler_label(lab, captions[i], strlen(captions[i]), hits, LABELER_MAX_HITS);
        }
        done += ncaptions;
    }
    r->elapsed = time_now() - start;
    r->done = done;
    r->synsets = synsets;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) catlip_die("usage: text_bench_labeler CAPTIONS.TSV [SECONDS] [THREADS] [--mode nouns|corenet]");
    int threads = 1, mode = LABELER_NOUNS;
    if (argc > 2) seconds = atof(argv[2]);
    if (argc > 3) threads = atoi(argv[3]);
    if (argc > 5 && !strcmp(argv[4], "--mode") && (mode = labeler_mode_parse(argv[5])) < 0) catlip_die("bad mode");
    FILE *f = fopen(argv[1], "r");
    if (!f) catlip_die("cannot open %s", argv[1]);
    char line[4096], *raw[1024];
    int nraw = 0;
    while (nraw < 1024 && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\t\n")] = '\0';
        raw[nraw++] = xstrdup(line);
    }
    fclose(f);
    captions = xmalloc((size_t)nraw * sizeof *captions);
    long words = 0;
    for (int i = 0; i < nraw; i++) {
        char buf[8192];
        snprintf(buf, sizeof buf, "%s - %s", raw[i], raw[(i * 7 + 3) % nraw]);
        captions[ncaptions++] = xstrdup(buf);
        for (char *p = buf; *p; p++) words += (*p == ' ' && p[1] != ' ' && p[1] != '-');
        words++;
    }
    double t0 = time_now();
    lab = labeler_create(NULL, (enum labeler_mode)mode);
    if (!lab) catlip_die("%s", catlip_error());
    printf("load WordNet %.3f s, peak RSS %.0f MB\n", time_now() - t0, (double)peak_rss_bytes() / 1e6);
    printf("%d captions, %.1f words per caption, mode %s\n", ncaptions, (double)words / ncaptions,
           mode == LABELER_NOUNS ? "nouns" : "corenet");
    pthread_t tid[64];
    struct result res[64];
    if (threads < 1 || threads > 64) threads = 1;
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, run, &res[t]);
    double total = 0;
    long synsets = 0, done = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        total += (double)res[t].done / res[t].elapsed;
        synsets += res[t].synsets;
        done += res[t].done;
    }
    printf("threads %d: %.0f captions/s per thread, %.0f captions/s total, %.2f synsets per caption\n", threads,
           total / threads, total, (double)synsets / (double)done);
    labeler_free(lab);
    for (int i = 0; i < nraw; i++) free(raw[i]);
    for (int i = 0; i < ncaptions; i++) free(captions[i]);
    free(captions);
    return 0;
}
