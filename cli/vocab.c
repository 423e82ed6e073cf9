// `catlip vocab label` and `catlip vocab build`: captions -> synsets, and the synset vocabulary.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/log.h"
#include "data/shardlist.h"
#include "data/tar.h"
#include "text/labeler.h"
#include "text/vocab.h"

// .txt members larger than this are not captions; they are counted and skipped.
#define CAPTION_MEMBER_MAX (64 << 10)

static const char *label_usage =
    "usage: catlip vocab label [--vocab FILE] [--labeler nouns|corenet] [--wordnet DIR] [CAPTION ...]\n"
    "\n"
    "Prints the WordNet noun synsets found in each caption (one per argument, or one per line of\n"
    "stdin when none is given), with their head words. With --vocab, synsets outside the\n"
    "vocabulary are marked.\n"
    "\n"
    "  --vocab FILE       vocabulary TSV (from catlip vocab build) to check the synsets against\n"
    "  --labeler MODE     nouns (default): nouns only, WordNet compounds, morphology;\n"
    "                     corenet: the reference rule (every token whose first noun synset is\n"
    "                     named after it)\n"
    "  --wordnet DIR      WordNet dictionary directory (default /usr/share/wordnet)\n";

static void print_labels(struct labeler *lab, const struct vocab *vocab, const char *caption, size_t len) {
    struct synset_hit hits[LABELER_MAX_HITS];
    struct caption_clean_info info;
    int n = labeler_label_info(lab, caption, len, hits, LABELER_MAX_HITS, &info);
    printf("%.*s\n", (int)len, caption);
    if (info.invalid_utf8) printf("    (%d invalid UTF-8 sequences replaced)\n", info.invalid_utf8);
    if (info.truncated) printf("    (truncated to %d bytes)\n", CAPTION_MAX_BYTES);
    if (n == 0) printf("    (no synsets)\n");
    for (int i = 0; i < n; i++) {
        int outside = vocab && vocab_index_offset(vocab, hits[i].offset) < 0;
        printf("    %s  %s%s%s%s\n", hits[i].id, hits[i].lemma, strcmp(hits[i].lemma, hits[i].matched) ? "  (" : "",
               strcmp(hits[i].lemma, hits[i].matched) ? hits[i].matched : "",
               strcmp(hits[i].lemma, hits[i].matched) ? ")" : "");
        if (outside) printf("        ^ not in the vocabulary\n");
    }
}

int cmd_vocab_label(int argc, char **argv) {
    const char *vocab_path = NULL, *wordnet_dir = NULL;
    int mode = LABELER_NOUNS, first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(label_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
            vocab_path = argv[++i];
        } else if (!strcmp(argv[i], "--wordnet") && i + 1 < argc) {
            wordnet_dir = argv[++i];
        } else if (!strcmp(argv[i], "--labeler") && i + 1 < argc) {
            if ((mode = labeler_mode_parse(argv[++i])) < 0)
                catlip_die("unknown --labeler '%s' (nouns or corenet)", argv[i]);
        } else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fputs(label_usage, stderr);
            catlip_die("unknown or incomplete option '%s'", argv[i]);
        } else {
            first = i;
            break;
        }
    }
    struct labeler *lab = labeler_create(wordnet_dir, (enum labeler_mode)mode);
    if (!lab) catlip_die("%s", catlip_error());
    struct vocab *vocab = NULL;
    if (vocab_path && !(vocab = vocab_load_wordnet(vocab_path, wordnet_dir))) catlip_die("%s", catlip_error());
    if (first < argc) {
        for (int i = first; i < argc; i++) print_labels(lab, vocab, argv[i], strlen(argv[i]));
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)got;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
            print_labels(lab, vocab, line, len);
        }
        free(line);
    }
    vocab_free(vocab);
    labeler_free(lab);
    return 0;
}

static const char *build_usage =
    "usage: catlip vocab build --data PATTERN --min-count V_TAU -o FILE [options]\n"
    "\n"
    "Counts WordNet noun synsets over the .txt captions of WebDataset tar shards and writes the\n"
    "synsets seen at least V_TAU times as a vocabulary TSV (synset_id, lemma, count; sorted by\n"
    "count, then id). Under mpirun/srun every rank counts the shards i with i % size == rank and\n"
    "the counts are summed; the file is the same for any number of ranks.\n"
    "\n"
    "  --data PATTERN     shards: 'data/{00000..00099}.tar', comma lists, globs, @list.txt\n"
    "  --min-count V_TAU  keep synsets counted at least this often (V_tau; >= 1)\n"
    "  -o, --output FILE  vocabulary TSV to write\n"
    "  --max-size K       keep only the K most frequent synsets after thresholding (CoreNet: 24320)\n"
    "  --labeler MODE     nouns (default) or corenet (see catlip vocab label --help)\n"
    "  --wordnet DIR      WordNet dictionary directory (default /usr/share/wordnet)\n"
    "  --quiet            no progress line\n";

// Per-rank tallies, summed over ranks with MPI_Reduce (all uint64 so one call sums them).
enum {
    STAT_SHARDS,          // shards read
    STAT_CAPTIONS,        // .txt members labelled
    STAT_NO_SYNSET,       // captions that gave no synset
    STAT_REPAIRED,        // captions with invalid UTF-8 repaired
    STAT_TRUNCATED,       // captions truncated to CAPTION_MAX_BYTES
    STAT_OVERSIZED,       // .txt members over CAPTION_MEMBER_MAX, skipped
    STAT_BAD_HEADERS,     // tar headers skipped by the reader
    STAT_TRUNCATED_TARS,  // shards that ended in a truncated member
    STAT_FAILED,          // ranks that hit an error (a shard that cannot be read)
    STAT_COUNT
};

struct progress {
    int enabled;
    double start, last;
    size_t shards_total, shards_done;
    uint64_t captions;
};

static void progress_show(struct progress *p, int final) {
    if (!p->enabled) return;
    double now = time_now();
    if (!final && now - p->last < 0.5) return;
    p->last = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->captions / elapsed : 0;
    double eta = p->shards_done ? elapsed * (double)(p->shards_total - p->shards_done) / (double)p->shards_done : 0;
    fprintf(stderr, "\rvocab build: shards %zu/%zu  captions %llu  %.0f captions/s  ETA %d:%02d  ",
            p->shards_done, p->shards_total, (unsigned long long)p->captions, rate, (int)(eta / 60),
            (int)eta % 60);
    if (final) fputc('\n', stderr);
}

struct count_ctx {
    struct labeler *lab;
    uint64_t *counts, *stats;
    struct progress *progress;
};

// Labels one caption into counts (indexed by synset index).
static void count_caption(void *arg, const char *caption, size_t len) {
    struct count_ctx *c = arg;
    struct synset_hit hits[LABELER_MAX_HITS];
    struct caption_clean_info info;
    int n = labeler_label_info(c->lab, caption, len, hits, LABELER_MAX_HITS, &info);
    c->stats[STAT_CAPTIONS]++;
    c->stats[STAT_NO_SYNSET] += n == 0;
    c->stats[STAT_REPAIRED] += info.invalid_utf8 > 0;
    c->stats[STAT_TRUNCATED] += info.truncated;
    const struct wordnet *wn = labeler_wordnet(c->lab);
    for (int k = 0; k < n; k++) c->counts[wordnet_synset_index(wn, hits[k].offset)]++;
    c->progress->captions++;
    if ((c->progress->captions & 1023) == 0) progress_show(c->progress, 0);
}

// Labels every .txt member of one shard into counts.
static int count_shard(struct labeler *lab, const char *path, uint64_t *counts, uint64_t *stats,
                       struct progress *progress) {
    struct count_ctx c = {lab, counts, stats, progress};
    struct tar_skips skips = {0};
    int rc = tar_for_each_member(path, ".txt", CAPTION_MEMBER_MAX, count_caption, &c,
                                 &stats[STAT_OVERSIZED], &skips);
    stats[STAT_BAD_HEADERS] += skips.bad_headers;
    stats[STAT_TRUNCATED_TARS] += skips.truncated > 0;
    return rc;
}

int cmd_vocab_build(int argc, char **argv) {
    const char *data = NULL, *output = NULL, *wordnet_dir = NULL;
    long min_count = -1, max_size = 0;
    int mode = LABELER_NOUNS, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(build_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--data") && has) {
            data = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) {
            output = argv[++i];
        } else if (!strcmp(a, "--min-count") && has) {
            char *end;
            min_count = strtol(argv[++i], &end, 10);
            if (*end || min_count < 1) catlip_die("--min-count must be an integer >= 1, not '%s'", argv[i]);
        } else if (!strcmp(a, "--max-size") && has) {
            char *end;
            max_size = strtol(argv[++i], &end, 10);
            if (*end || max_size < 1) catlip_die("--max-size must be an integer >= 1, not '%s'", argv[i]);
        } else if (!strcmp(a, "--labeler") && has) {
            if ((mode = labeler_mode_parse(argv[++i])) < 0)
                catlip_die("unknown --labeler '%s' (nouns or corenet)", argv[i]);
        } else if (!strcmp(a, "--wordnet") && has) {
            wordnet_dir = argv[++i];
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            fputs(build_usage, stderr);
            catlip_die("unknown or incomplete option '%s'", a);
        }
    }
    if (!data || !output || min_count < 1) {
        fputs(build_usage, stderr);
        catlip_die("vocab build needs --data, --min-count and -o");
    }

    // Run directly, MPI_Init makes a one-rank world; under mpirun/srun, one rank per process.
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    log_set_rank(size > 1 ? rank : -1);

    // Argument and set-up errors are the same on every rank, so every rank exits the same way.
    struct shard_list shards;
    if (shardlist_expand(data, &shards) != 0) {
        if (rank == 0) catlip_error_print();
        MPI_Finalize();
        return 2;
    }
    // WordNet could be missing on one node only: agree before counting, so no rank waits forever.
    struct labeler *lab = labeler_create(wordnet_dir, (enum labeler_mode)mode);
    int ready = lab != NULL;
    if (!lab) catlip_error_print();
    MPI_Allreduce(MPI_IN_PLACE, &ready, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ready) {
        labeler_free(lab);
        shardlist_free(&shards);
        MPI_Finalize();
        return 2;
    }
    const struct wordnet *wn = labeler_wordnet(lab);
    int nsynsets = wordnet_synset_count(wn);
    uint64_t *counts = xcalloc((size_t)nsynsets, sizeof *counts);
    uint64_t stats[STAT_COUNT] = {0};

    struct progress progress = {.enabled = rank == 0 && !quiet && isatty(STDERR_FILENO),
                                .start = time_now()};
    for (size_t i = (size_t)rank; i < shards.count; i += (size_t)size) progress.shards_total++;
    if (rank == 0)
        log_info("vocab build: %zu shards over %d rank%s, labeler %s", shards.count, size, size > 1 ? "s" : "",
                 mode == LABELER_CORENET ? "corenet" : "nouns");
    double start = time_now();
    for (size_t i = (size_t)rank; i < shards.count; i += (size_t)size) {
        if (count_shard(lab, shards.paths[i], counts, stats, &progress) != 0) {
            log_error("%s", catlip_error());
            stats[STAT_FAILED]++;
            break;
        }
        stats[STAT_SHARDS]++;
        progress.shards_done++;
        progress_show(&progress, 0);
    }
    progress_show(&progress, 1);
    double seconds = time_now() - start;

    uint64_t *total = rank == 0 ? xcalloc((size_t)nsynsets, sizeof *total) : NULL;
    uint64_t total_stats[STAT_COUNT] = {0};
    MPI_Reduce(counts, total, nsynsets, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(stats, total_stats, STAT_COUNT, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    double max_seconds = 0;
    MPI_Reduce(&seconds, &max_seconds, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

    int status = 0;
    if (rank == 0) {
        if (total_stats[STAT_FAILED]) {
            fprintf(stderr, "catlip: error: %llu rank(s) could not read a shard (see the errors above); no "
                    "vocabulary written\n", (unsigned long long)total_stats[STAT_FAILED]);
            status = 1;
        } else {
            size_t nrows = 0;
            struct vocab_row *rows = xmalloc((size_t)nsynsets * sizeof *rows);
            for (int s = 0; s < nsynsets; s++)
                if (total[s] >= (uint64_t)min_count) {
                    uint32_t offset = wordnet_synset_offset(wn, s);
                    rows[nrows++] = (struct vocab_row){offset, wordnet_synset_word(wn, offset), total[s]};
                }
            size_t above = nrows;
            vocab_sort_rows(rows, nrows);
            if (max_size > 0 && nrows > (size_t)max_size) nrows = (size_t)max_size;
            char header[8192];
            int hl = snprintf(header, sizeof header, "catlip vocabulary: min_count=%ld", min_count);
            if (max_size > 0) hl += snprintf(header + hl, sizeof header - (size_t)hl, " max_size=%ld", max_size);
            snprintf(header + hl, sizeof header - (size_t)hl, " captions=%llu labeler=%s source=%s",
                     (unsigned long long)total_stats[STAT_CAPTIONS], mode == LABELER_CORENET ? "corenet" : "nouns",
                     data);
            if (nrows == 0) {
                fprintf(stderr, "catlip: error: no synset was counted %ld times or more over %llu captions; "
                        "lower --min-count (nothing written)\n", min_count,
                        (unsigned long long)total_stats[STAT_CAPTIONS]);
                status = 1;
            } else if (vocab_write(output, header, rows, nrows) != 0) {
                catlip_error_print();
                status = 1;
            } else {
                log_info("vocab build: %llu shards, %llu captions in %.1f s (%.0f captions/s over %d ranks); "
                         "%zu synsets with count >= %ld, %zu written to %s",
                         (unsigned long long)total_stats[STAT_SHARDS], (unsigned long long)total_stats[STAT_CAPTIONS],
                         max_seconds, max_seconds > 0 ? (double)total_stats[STAT_CAPTIONS] / max_seconds : 0.0,
                         size, above, min_count, nrows, output);
                log_info("vocab build: skipped/repaired: %llu captions without synsets, %llu with invalid "
                         "UTF-8 repaired, %llu truncated, %llu oversized .txt members, %llu bad tar "
                         "headers, %llu truncated shards",
                         (unsigned long long)total_stats[STAT_NO_SYNSET], (unsigned long long)total_stats[STAT_REPAIRED],
                         (unsigned long long)total_stats[STAT_TRUNCATED], (unsigned long long)total_stats[STAT_OVERSIZED],
                         (unsigned long long)total_stats[STAT_BAD_HEADERS],
                         (unsigned long long)total_stats[STAT_TRUNCATED_TARS]);
            }
            free(rows);
        }
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    free(total);
    free(counts);
    labeler_free(lab);
    shardlist_free(&shards);
    MPI_Finalize();
    return status;
}
