// Word-level tokenizer for the CLIP text tower (see tokenizer.h).
#include "text/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/check.h"
#include "text/clean.h"
#include "text/tokenize.h"

static const char *const special_words[TOKENIZER_SPECIALS] = {"<pad>", "<sot>", "<eot>", "<unk>"};

// ---------------------------------------------------------------------------------------
// a string -> index table (open addressing), shared by the tokenizer and the counts

struct word_table {
    char **words;     // (count) NUL-terminated
    uint64_t *counts;  // (count)
    int *lines;        // (count) file line of each word (tokenizer files), else 0
    size_t count, capacity;
    uint32_t *slots;   // (mask + 1) index + 1; 0: empty
    uint32_t mask;
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void table_init(struct word_table *t) {
    memset(t, 0, sizeof *t);
    t->mask = 1023;
    t->slots = xcalloc(t->mask + 1, sizeof *t->slots);
}

static void table_free(struct word_table *t) {
    for (size_t i = 0; i < t->count; i++) free(t->words[i]);
    free(t->words);
    free(t->counts);
    free(t->lines);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

// The slot holding `word`, or the empty slot where it would go.
static uint32_t table_slot(const struct word_table *t, const char *word, size_t len) {
    uint32_t s = (uint32_t)fnv1a(0xcbf29ce484222325ull, word, len) & t->mask;
    while (t->slots[s]) {
        const char *w = t->words[t->slots[s] - 1];
        if (strlen(w) == len && !memcmp(w, word, len)) return s;
        s = (s + 1) & t->mask;
    }
    return s;
}

static long table_find(const struct word_table *t, const char *word, size_t len) {
    uint32_t s = table_slot(t, word, len);
    return t->slots[s] ? (long)t->slots[s] - 1 : -1;
}

// Appends a word known to be absent; returns its index.
static size_t table_add(struct word_table *t, const char *word, size_t len, uint64_t count,
                        int line) {
    if (t->count == t->capacity) {
        t->capacity = t->capacity ? 2 * t->capacity : 1024;
        t->words = xrealloc(t->words, t->capacity * sizeof *t->words);
        t->counts = xrealloc(t->counts, t->capacity * sizeof *t->counts);
        t->lines = xrealloc(t->lines, t->capacity * sizeof *t->lines);
    }
    if ((t->count + 1) * 2 > (size_t)t->mask + 1) {  // grow and rehash
        free(t->slots);
        t->mask = t->mask * 2 + 1;
        t->slots = xcalloc(t->mask + 1, sizeof *t->slots);
        for (size_t i = 0; i < t->count; i++)
            t->slots[table_slot(t, t->words[i], strlen(t->words[i]))] = (uint32_t)i + 1;
    }
    char *w = xmalloc(len + 1);
    memcpy(w, word, len);
    w[len] = '\0';
    t->words[t->count] = w;
    t->counts[t->count] = count;
    t->lines[t->count] = line;
    t->slots[table_slot(t, word, len)] = (uint32_t)t->count + 1;
    return t->count++;
}

// ---------------------------------------------------------------------------------------
// the tokenizer

struct tokenizer {
    struct word_table table;  // index i is id TOKENIZER_SPECIALS + i
    char *header;
    uint64_t hash;
};

void tokenizer_free(struct tokenizer *tok) {
    if (!tok) return;
    table_free(&tok->table);
    free(tok->header);
    free(tok);
}

int tokenizer_size(const struct tokenizer *tok) {
    return TOKENIZER_SPECIALS + (int)tok->table.count;
}

const char *tokenizer_word(const struct tokenizer *tok, int id) {
    if (id < TOKENIZER_SPECIALS) return special_words[id];
    return tok->table.words[id - TOKENIZER_SPECIALS];
}

int tokenizer_id(const struct tokenizer *tok, const char *word, size_t len) {
    long i = table_find(&tok->table, word, len);
    return i < 0 ? TOKENIZER_UNK : TOKENIZER_SPECIALS + (int)i;
}

const char *tokenizer_header(const struct tokenizer *tok) { return tok->header; }

uint64_t tokenizer_hash(const struct tokenizer *tok) { return tok->hash; }

// Could the caption splitter have produced `word`? Cleaning leaves it as it is and the
// splitter finds exactly one word, all of it.
static int is_caption_word(const char *word, size_t len) {
    char clean[CAPTION_MAX_BYTES + 1];
    if (len == 0 || len > 256) return 0;
    if (caption_clean(clean, word, len, NULL) != len || memcmp(clean, word, len)) return 0;
    struct token t[2];
    return tokenize(word, len, t, 2) == 1 && t[0].start == 0 && t[0].len == len;
}

// A count: decimal digits only, 1 to 2^64 - 1. s is NUL-terminated.
static int parse_count(const char *s, uint64_t *count) {
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v == 0) return -1;
    *count = v;
    return 0;
}

#define TOKENIZER_MAGIC "# catlip tokenizer:"

struct tokenizer *tokenizer_load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        catlip_error_set("cannot open tokenizer %s: %s", path, strerror(errno));
        return NULL;
    }
    struct tokenizer *tok = xcalloc(1, sizeof *tok);
    table_init(&tok->table);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        line[len] = '\0';
        if (lineno == 1) {
            if (len < sizeof TOKENIZER_MAGIC - 1 || memcmp(line, TOKENIZER_MAGIC, sizeof TOKENIZER_MAGIC - 1) ||
                memchr(line, '\0', len)) {
                catlip_error_set("%s: not a catlip tokenizer (the first line must begin '%s'; "
                                 "make one with catlip tokenizer build)", path, TOKENIZER_MAGIC);
                goto fail;
            }
            tok->header = xmalloc(len - 1);
            memcpy(tok->header, line + 2, len - 2);
            tok->header[len - 2] = '\0';
            continue;
        }
        if (len == 0) continue;
        const char *tab = memchr(line, '\t', len);
        if (!tab || memchr(tab + 1, '\t', len - (size_t)(tab + 1 - line))) {
            catlip_error_set("%s:%d: expected 2 tab-separated fields (word, count)", path, lineno);
            goto fail;
        }
        size_t wlen = (size_t)(tab - line);
        uint64_t count;
        if (!is_caption_word(line, wlen)) {
            catlip_error_set("%s:%d: '%.*s' is not a word the caption splitter makes (lowercase "
                             "letters, digits, inner - ' .)", path, lineno, (int)(wlen > 40 ? 40 : wlen),
                             line);
            goto fail;
        }
        if (memchr(line, '\0', len) || parse_count(tab + 1, &count) != 0) {
            catlip_error_set("%s:%d: count '%.*s' is not a positive integer", path, lineno,
                             (int)(len - wlen - 1 > 40 ? 40 : len - wlen - 1), tab + 1);
            goto fail;
        }
        long seen = table_find(&tok->table, line, wlen);
        if (seen >= 0) {
            catlip_error_set("%s:%d: word '%.*s' is already on line %d", path, lineno, (int)wlen,
                             line, tok->table.lines[seen]);
            goto fail;
        }
        if (tok->table.count + TOKENIZER_SPECIALS >= INT32_MAX) {
            catlip_error_set("%s:%d: more words than 32-bit ids hold", path, lineno);
            goto fail;
        }
        table_add(&tok->table, line, wlen, count, lineno);
    }
    if (ferror(f)) {
        catlip_error_set("cannot read tokenizer %s: %s", path, strerror(errno));
        goto fail;
    }
    if (lineno == 0 || tok->table.count == 0) {
        catlip_error_set("%s: %s", path, lineno == 0 ? "empty file, not a catlip tokenizer"
                                                     : "the tokenizer has no words");
        goto fail;
    }
    free(line);
    fclose(f);
    tok->hash = fnv1a(0xcbf29ce484222325ull, "catlip-words\n", 13);
    for (size_t i = 0; i < tok->table.count; i++) {
        tok->hash = fnv1a(tok->hash, tok->table.words[i], strlen(tok->table.words[i]));
        tok->hash = fnv1a(tok->hash, "\n", 1);
    }
    return tok;
fail:
    free(line);
    fclose(f);
    tokenizer_free(tok);
    return NULL;
}

// Cleans and splits a caption: calls fn(ctx, word, len) for every word in order.
static void for_each_word(const char *caption, size_t len,
                          void (*fn)(void *ctx, const char *word, size_t len), void *ctx) {
    char clean[CAPTION_MAX_BYTES + 1];
    struct token words[TOKENS_MAX];
    size_t n = caption_clean(clean, caption, len, NULL);
    int count = tokenize(clean, n, words, TOKENS_MAX);
    for (int i = 0; i < count; i++) fn(ctx, clean + words[i].start, words[i].len);
}

struct encode_state {
    const struct tokenizer *tok;
    int32_t *ids;
    int room, used, dropped;  // room: word positions (context - 2)
};

static void encode_word(void *ctx, const char *word, size_t len) {
    struct encode_state *s = ctx;
    if (s->used < s->room)
        s->ids[1 + s->used++] = tokenizer_id(s->tok, word, len);
    else
        s->dropped++;
}

int tokenizer_encode(const struct tokenizer *tok, int32_t *ids, int context, const char *caption,
                     size_t len, int *dropped) {
    CATLIP_ASSERT(context >= 2);
    struct encode_state s = {tok, ids, context - 2, 0, 0};
    ids[0] = TOKENIZER_SOT;
    for_each_word(caption, len, encode_word, &s);
    ids[1 + s.used] = TOKENIZER_EOT;
    for (int i = 2 + s.used; i < context; i++) ids[i] = TOKENIZER_PAD;
    if (dropped) *dropped = s.dropped;
    return 2 + s.used;
}

// ---------------------------------------------------------------------------------------
// counting and writing

struct tokenizer_counts {
    struct word_table table;
    uint64_t total;
};

struct tokenizer_counts *tokenizer_counts_create(void) {
    struct tokenizer_counts *c = xcalloc(1, sizeof *c);
    table_init(&c->table);
    return c;
}

void tokenizer_counts_free(struct tokenizer_counts *c) {
    if (!c) return;
    table_free(&c->table);
    free(c);
}

static void count_word(void *ctx, const char *word, size_t len) {
    struct tokenizer_counts *c = ctx;
    long i = table_find(&c->table, word, len);
    if (i < 0)
        table_add(&c->table, word, len, 1, 0);
    else
        c->table.counts[i]++;
    c->total++;
}

void tokenizer_counts_add_caption(struct tokenizer_counts *c, const char *caption, size_t len) {
    for_each_word(caption, len, count_word, c);
}

size_t tokenizer_counts_words(const struct tokenizer_counts *c) { return c->table.count; }

uint64_t tokenizer_counts_total(const struct tokenizer_counts *c) { return c->total; }

static int by_count_then_word(const void *a, const void *b, void *table) {
    const struct word_table *sort_table = table;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint64_t ci = sort_table->counts[i], cj = sort_table->counts[j];
    if (ci != cj) return ci > cj ? -1 : 1;
    return strcmp(sort_table->words[i], sort_table->words[j]);
}

int tokenizer_counts_write(const struct tokenizer_counts *c, const char *path, const char *header,
                           uint64_t min_count, size_t max_words, size_t *kept_words,
                           uint64_t *kept_occurrences) {
    const struct word_table *t = &c->table;
    size_t *order = xmalloc((t->count + 1) * sizeof *order), n = 0;
    // A word the loader would refuse (longer than 256 bytes; "x's" from "x's's", which the
    // splitter reads back as "x") is left out: it encodes as <unk>.
    for (size_t i = 0; i < t->count; i++)
        if (t->counts[i] >= min_count && is_caption_word(t->words[i], strlen(t->words[i])))
            order[n++] = i;
    qsort_r(order, n, sizeof *order, by_count_then_word, (void *)t);
    if (max_words > 0 && n > max_words) n = max_words;
    if (n == 0) {
        free(order);
        return catlip_error_set("no word was counted %llu times or more over %llu words; lower "
                                "--min-count (nothing written to %s)",
                                (unsigned long long)min_count, (unsigned long long)c->total, path);
    }
    struct atomic_file f;
    if (atomic_file_open(&f, path, NULL, 0644) != 0) {
        free(order);
        return -1;
    }
    char buf[320];
    int hl = snprintf(buf, sizeof buf, "%s ", TOKENIZER_MAGIC);
    atomic_file_write(&f, buf, (size_t)hl);
    for (const char *h = header; *h; h++)  // one line, whatever the source pattern holds
        atomic_file_write(&f, (unsigned char)*h < 0x20 ? " " : h, 1);
    atomic_file_write(&f, "\n", 1);
    uint64_t occurrences = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        int len = snprintf(buf, sizeof buf, "%s\t%llu\n", t->words[i],
                           (unsigned long long)t->counts[i]);
        atomic_file_write(&f, buf, (size_t)len);
        occurrences += t->counts[i];
    }
    free(order);
    if (kept_words) *kept_words = n;
    if (kept_occurrences) *kept_occurrences = occurrences;
    return atomic_file_commit(&f);
}
