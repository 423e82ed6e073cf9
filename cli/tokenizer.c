// `catlip tokenizer build` and `catlip tokenizer encode`: the word-level tokenizer of the CLIP
// text tower (common/text/tokenizer.h says what it is and why words rather than BPE).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/check.h"
#include "core/log.h"
#include "data/shardlist.h"
#include "data/tar.h"
#include "text/tokenizer.h"

// .txt members larger than this are not captions; they are counted and skipped (as vocab build).
#define CAPTION_MEMBER_MAX (64 << 10)

static const char *build_usage =
    "usage: catlip tokenizer build --data PATTERN -o FILE [--min-count N] [--max-words N] [--quiet]\n"
    "\n"
    "Counts the words of the .txt captions of WebDataset tar shards (cleaned and split as the\n"
    "CatLIP labeller does) and writes the CLIP text tower's word-level tokenizer: a TSV of words\n"
    "with their counts, most frequent first. Words below --min-count become <unk>.\n"
    "\n"
    "  --data PATTERN     shards: 'data/{00000..00099}.tar', comma lists, globs, @list.txt\n"
    "  -o, --output FILE  tokenizer TSV to write (atomically)\n"
    "  --min-count N      keep words seen at least N times (default 2)\n"
    "  --max-words N      keep at most the N most frequent (default: no limit)\n"
    "  --quiet            no summary\n";

static const char *encode_usage =
    "usage: catlip tokenizer encode --tokenizer FILE [--context N] [CAPTION ...]\n"
    "\n"
    "Prints the token ids of each caption (one per argument, or one per line of stdin when none\n"
    "is given), then the tokens themselves: <sot> words <eot> <pad>..., truncated to the context\n"
    "with <eot> kept last.\n"
    "\n"
    "  --tokenizer FILE   from catlip tokenizer build\n"
    "  --context N        ids per caption (default 32)\n";

static long parse_positive(const char *option, const char *value) {
    char *end;
    long v = strtol(value, &end, 10);
    if (*end || v < 1) catlip_die("%s must be an integer >= 1, not '%s'", option, value);
    return v;
}

struct count_ctx {
    struct tokenizer_counts *counts;
    uint64_t captions;
};

static void count_caption(void *arg, const char *caption, size_t len) {
    struct count_ctx *c = arg;
    tokenizer_counts_add_caption(c->counts, caption, len);
    c->captions++;
}

int cmd_tokenizer_build(int argc, char **argv) {
    const char *data = NULL, *output = NULL;
    long min_count = 2, max_words = 0;
    int quiet = 0;
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
            min_count = parse_positive("--min-count", argv[++i]);
        } else if (!strcmp(a, "--max-words") && has) {
            max_words = parse_positive("--max-words", argv[++i]);
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            fputs(build_usage, stderr);
            catlip_die("unknown or incomplete option '%s'", a);
        }
    }
    if (!data || !output) {
        fputs(build_usage, stderr);
        catlip_die("tokenizer build needs --data and -o");
    }
    struct shard_list shards;
    if (shardlist_expand(data, &shards) != 0) {
        catlip_error_print();
        return 2;
    }
    struct tokenizer_counts *counts = tokenizer_counts_create();
    struct count_ctx ctx = {counts, 0};
    uint64_t oversized = 0;
    double start = time_now();
    int status = 0;
    for (size_t i = 0; i < shards.count && status == 0; i++)
        if (tar_for_each_member(shards.paths[i], ".txt", CAPTION_MEMBER_MAX, count_caption, &ctx,
                                &oversized, NULL) != 0) {
            catlip_error_print();
            status = 1;
        }
    const uint64_t captions = ctx.captions;
    size_t kept = 0;
    uint64_t kept_occurrences = 0;
    if (status == 0) {
        char header[4096];
        snprintf(header, sizeof header, "word-level min_count=%ld max_words=%ld captions=%llu source=%s",
                 min_count, max_words, (unsigned long long)captions, data);
        if (tokenizer_counts_write(counts, output, header, (uint64_t)min_count, (size_t)max_words,
                                   &kept, &kept_occurrences) != 0) {
            catlip_error_print();
            status = 1;
        }
    }
    if (status == 0 && !quiet) {
        uint64_t total = tokenizer_counts_total(counts);
        log_info("tokenizer build: %zu shards, %llu captions in %.1f s; %zu distinct words, %zu "
                 "kept (count >= %ld) covering %.2f%% of %llu words (the rest are <unk>); %llu "
                 "oversized .txt members skipped; written to %s",
                 shards.count, (unsigned long long)captions, time_now() - start,
                 tokenizer_counts_words(counts), kept, min_count,
                 total ? 100.0 * (double)kept_occurrences / (double)total : 0.0,
                 (unsigned long long)total, (unsigned long long)oversized, output);
    }
    tokenizer_counts_free(counts);
    shardlist_free(&shards);
    return status;
}

static void print_encoded(const struct tokenizer *tok, int context, const char *caption,
                          size_t len) {
    int32_t *ids = xmalloc((size_t)context * sizeof *ids);
    int dropped;
    tokenizer_encode(tok, ids, context, caption, len, &dropped);
    for (int i = 0; i < context; i++) printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
    for (int i = 0; i < context; i++) printf("%s%s", i ? " " : "", tokenizer_word(tok, ids[i]));
    if (dropped) printf("   (%d word%s truncated)", dropped, dropped > 1 ? "s" : "");
    printf("\n");
    free(ids);
}

int cmd_tokenizer_encode(int argc, char **argv) {
    const char *path = NULL;
    long context = TOKENIZER_CONTEXT_DEFAULT;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(encode_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && has) {
            path = argv[++i];
        } else if (!strcmp(a, "--context") && has) {
            context = parse_positive("--context", argv[++i]);
            if (context < 2 || context > 4096)
                catlip_die("--context must be 2..4096 (room for <sot> and <eot>), not %ld", context);
        } else if (a[0] == '-' && a[1]) {
            fputs(encode_usage, stderr);
            catlip_die("unknown or incomplete option '%s'", a);
        } else {
            first = i;
            break;
        }
    }
    if (!path) {
        fputs(encode_usage, stderr);
        catlip_die("tokenizer encode needs --tokenizer");
    }
    struct tokenizer *tok = tokenizer_load(path);
    if (!tok) {
        catlip_error_print();
        return 2;
    }
    if (first < argc) {
        for (int i = first; i < argc; i++) print_encoded(tok, (int)context, argv[i], strlen(argv[i]));
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)got;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
            print_encoded(tok, (int)context, line, len);
        }
        free(line);
    }
    tokenizer_free(tok);
    return 0;
}
