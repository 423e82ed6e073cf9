#include "text/transfer.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "text/hypernyms.h"

struct transfer_matcher {
    struct labeler *labeler;
    const struct wordnet *wn;
    const struct vocab *vocab;
    struct hypernyms *hypernyms;
    int *candidates;  // (V) dense WordNet index of each vocabulary row
};

struct transfer_matcher *transfer_matcher_create(struct labeler *labeler, const struct vocab *vocab,
                                                 const char *wordnet_dir) {
    const struct wordnet *wn = labeler_wordnet(labeler);
    struct hypernyms *h = hypernyms_load(wn, wordnet_dir);
    if (!h) return NULL;
    struct transfer_matcher *m = xcalloc(1, sizeof *m);
    m->labeler = labeler;
    m->wn = wn;
    m->vocab = vocab;
    m->hypernyms = h;
    int V = vocab_size(vocab);
    m->candidates = xmalloc((size_t)V * sizeof *m->candidates);
    for (int i = 0; i < V; i++)
        m->candidates[i] =
            wordnet_synset_index(wn, (uint32_t)strtoul(vocab_id(vocab, i) + 1, NULL, 10));
    return m;
}

void transfer_matcher_free(struct transfer_matcher *m) {
    if (!m) return;
    hypernyms_free(m->hypernyms);
    free(m->candidates);
    free(m);
}

static int is_synset_id(const char *s, size_t len) {
    if (len != 9 || s[0] != 'n') return 0;
    for (size_t i = 1; i < 9; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

// Adds synset `offset` to the class (once), with its row: its own or its nearest one's.
static void add_synset(struct transfer_matcher *m, struct transfer_class *c, uint32_t offset) {
    if (c->nsynsets == TRANSFER_MAX_SYNSETS) return;
    char id[10];
    snprintf(id, sizeof id, "n%08u", offset);
    for (int i = 0; i < c->nsynsets; i++)
        if (!strcmp(c->synsets[i].id, id)) return;
    struct transfer_synset *s = &c->synsets[c->nsynsets];
    memcpy(s->id, id, sizeof id);
    s->lemma = wordnet_synset_word(m->wn, offset);
    s->row = vocab_index_offset(m->vocab, offset);
    s->similarity = 1.0;
    if (s->row < 0) {
        s->row = hypernyms_nearest(m->hypernyms, wordnet_synset_index(m->wn, offset), m->candidates,
                                   vocab_size(m->vocab), &s->similarity);
        if (s->row < 0) return;  // unrelated to every vocabulary synset: not used
        c->nearest++;
    }
    c->nsynsets++;
}

// The whole name as one WordNet lemma (lowercase, words joined by '_') and its noun base forms
// (wordnet_morph): writes up to 4 entries to base and returns how many.
static int name_bases(const struct transfer_matcher *m, const char *line, size_t len,
                      const struct wordnet_entry **base) {
    char word[WORDNET_WORD_MAX];
    size_t n = 0;
    int spaced = 0;
    for (size_t i = 0; i < len && n + 1 < sizeof word; i++) {
        char ch = line[i];
        if (ch == ' ' || ch == '\t' || ch == '-') {
            spaced = n > 0;
            continue;
        }
        if (spaced) word[n++] = '_', spaced = 0;
        if (n + 1 < sizeof word) word[n++] = (char)tolower((unsigned char)ch);
    }
    word[n] = 0;
    return n && n + 1 < sizeof word ? wordnet_morph(m->wn, word, n, WORDNET_NOUN, base, 4) : 0;
}

int transfer_name_senses(const struct transfer_matcher *m, const char *name, uint32_t *out,
                         int max) {
    const struct wordnet_entry *base[4];
    int nb = name_bases(m, name, strlen(name), base), n = 0;
    for (int i = 0; i < nb; i++) {
        uint32_t senses[64];
        int ns = wordnet_noun_senses(base[i], senses, 64);
        for (int j = 0; j < ns && n < max; j++) {
            int dup = 0;
            for (int k = 0; k < n; k++) dup |= out[k] == senses[j];
            if (!dup) out[n++] = senses[j];
        }
    }
    return n;
}

const struct hypernyms *transfer_matcher_hypernyms(const struct transfer_matcher *m) {
    return m->hypernyms;
}

const struct wordnet *transfer_matcher_wordnet(const struct transfer_matcher *m) {
    return m->wn;
}

void transfer_match(struct transfer_matcher *m, const char *line, struct transfer_class *out) {
    memset(out, 0, sizeof *out);
    while (*line == ' ' || *line == '\t') line++;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                   line[len - 1] == '\t'))
        len--;
    size_t first = strcspn(line, " \t");
    if (first > len) first = len;
    if (is_synset_id(line, first)) {
        const char *rest = line + first;
        while (rest < line + len && (*rest == ' ' || *rest == '\t')) rest++;
        size_t rest_len = (size_t)(line + len - rest);
        if (rest_len)
            snprintf(out->name, sizeof out->name, "%.*s", (int)rest_len, rest);
        else
            snprintf(out->name, sizeof out->name, "%.*s", (int)first, line);
        uint32_t offset = (uint32_t)strtoul(line + 1, NULL, 10);
        out->how = TRANSFER_RANDOM;
        if (wordnet_synset_word(m->wn, offset)) {
            add_synset(m, out, offset);
            if (out->nsynsets) out->how = TRANSFER_ID;
        }
        return;
    }
    snprintf(out->name, sizeof out->name, "%.*s", (int)len, line);
    const struct wordnet_entry *base[4];
    int nb = name_bases(m, line, len, base);
    for (int i = 0; i < nb; i++)
        if (base[i]->noun_offset) {
            add_synset(m, out, base[i]->noun_offset);
            if (out->nsynsets) {
                out->how = TRANSFER_NAME;
                return;
            }
        }
    struct synset_hit hits[LABELER_MAX_HITS];
    int nh = labeler_label(m->labeler, line, len, hits, LABELER_MAX_HITS);
    for (int i = 0; i < nh; i++) add_synset(m, out, hits[i].offset);
    out->how = out->nsynsets ? TRANSFER_CAPTION : TRANSFER_RANDOM;
}

int transfer_read_class_lines(const char *path, char ***lines) {
    FILE *f = fopen(path, "r");
    if (!f) return catlip_error_set("%s: cannot open the classes file", path);
    char *line = NULL;
    size_t cap = 0, count = 0, room = 16;
    char **out = xmalloc(room * sizeof *out);
    while (getline(&line, &cap, f) >= 0) {
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == 0) continue;
        size_t len = strlen(p);
        while (len && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == ' ' ||
                       p[len - 1] == '\t'))
            len--;
        if (count == room) out = xrealloc(out, (room *= 2) * sizeof *out);
        out[count] = xmalloc(len + 1);
        memcpy(out[count], p, len);
        out[count++][len] = 0;
    }
    free(line);
    fclose(f);
    if (count == 0) {
        free(out);
        return catlip_error_set("%s: no classes (one WordNet id or name per line)", path);
    }
    *lines = out;
    return (int)count;
}

void transfer_class_lines_free(char **lines, int count) {
    for (int i = 0; i < count; i++) free(lines[i]);
    free(lines);
}

uint32_t transfer_line_synset(const char *line, const char **name) {
    size_t first = strcspn(line, " \t");
    if (!is_synset_id(line, first)) return 0;
    const char *rest = line + first;
    while (*rest == ' ' || *rest == '\t') rest++;
    *name = rest;
    return (uint32_t)strtoul(line + 1, NULL, 10);
}

int transfer_match_file(struct transfer_matcher *m, const char *path,
                        struct transfer_class **classes) {
    char **lines;
    int count = transfer_read_class_lines(path, &lines);
    if (count < 0) return -1;
    struct transfer_class *out = xmalloc((size_t)count * sizeof *out);
    for (int k = 0; k < count; k++) transfer_match(m, lines[k], &out[k]);
    transfer_class_lines_free(lines, count);
    *classes = out;
    return count;
}

void transfer_build_head(const struct transfer_class *classes, int K, const float *head_w,
                         const float *head_b, int V, int C, uint64_t seed, float *weight,
                         float *bias) {
    double sum_sq = 0, sum_b = 0;
    for (size_t i = 0; i < (size_t)V * (size_t)C; i++) sum_sq += (double)head_w[i] * head_w[i];
    for (int v = 0; v < V; v++) sum_b += head_b[v];
    float rms = (float)sqrt(sum_sq / ((double)V * C)), mean_b = (float)(sum_b / V);
    for (int k = 0; k < K; k++) {
        const struct transfer_class *c = &classes[k];
        float *w = weight + (size_t)k * C;  // (C)
        int rows[TRANSFER_MAX_SYNSETS], nrows = 0;
        for (int i = 0; i < c->nsynsets; i++) {
            int dup = 0;
            for (int j = 0; j < nrows; j++) dup |= rows[j] == c->synsets[i].row;
            if (!dup) rows[nrows++] = c->synsets[i].row;
        }
        if (nrows == 0) {
            struct rng r;
            rng_init(&r, rng_key(seed, (uint64_t)k, 0, 0));
            for (int j = 0; j < C; j++) w[j] = (float)rng_normal(&r) * rms;
            bias[k] = mean_b;
            continue;
        }
        double acc_b = 0;
        for (int j = 0; j < C; j++) {
            double acc = 0;
            for (int i = 0; i < nrows; i++) acc += head_w[(size_t)rows[i] * C + j];
            w[j] = (float)(acc / nrows);
        }
        for (int i = 0; i < nrows; i++) acc_b += head_b[rows[i]];
        bias[k] = (float)(acc_b / nrows);
    }
}

const char *transfer_how_name(enum transfer_how how) {
    static const char *names[] = {"id", "name", "caption", "random"};
    return (unsigned)how < 4 ? names[how] : "?";
}

void transfer_format_synset(const struct vocab *vocab, const struct transfer_synset *s, char *buf,
                            size_t size) {
    const char *row_id = vocab_id(vocab, s->row);
    if (!strcmp(row_id, s->id))
        snprintf(buf, size, "%s %s", s->id, s->lemma ? s->lemma : "?");
    else
        snprintf(buf, size, "%s %s -> %s %s (path similarity %.3f)", s->id,
                 s->lemma ? s->lemma : "?", row_id, vocab_lemma(vocab, s->row), s->similarity);
}
