// WordNet database files -> one open-addressing hash table of lemmas (see wordnet.h).
#include "text/wordnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

struct synset_head {
    uint32_t offset;
    const char *word;
};

struct wordnet {
    struct wordnet_entry *entries;  // (count)
    int count, capacity;
    int lemma_count;
    uint32_t *slots;                // (slot_mask + 1) entry index + 1; 0: empty
    uint32_t slot_mask;
    uint32_t *exc;                  // exception bases: entry indices
    int exc_count, exc_capacity;
    struct synset_head *synsets;    // noun synsets sorted by offset
    int synset_count;
    char **blocks;                  // string storage: file buffers and arena blocks
    int block_count, block_capacity;
    char *arena;
    size_t arena_used, arena_size;
};

static uint32_t word_hash(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a 64, folded to 32 bits
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

static void keep_block(struct wordnet *wn, char *block) {
    if (wn->block_count == wn->block_capacity) {
        wn->block_capacity = wn->block_capacity ? 2 * wn->block_capacity : 16;
        wn->blocks = xrealloc(wn->blocks, (size_t)wn->block_capacity * sizeof *wn->blocks);
    }
    wn->blocks[wn->block_count++] = block;
}

static const char *arena_copy(struct wordnet *wn, const char *s, size_t len) {
    if (wn->arena_used + len + 1 > wn->arena_size) {
        wn->arena_size = 1 << 20;
        if (len + 1 > wn->arena_size) wn->arena_size = len + 1;
        wn->arena = xmalloc(wn->arena_size);
        wn->arena_used = 0;
        keep_block(wn, wn->arena);
    }
    char *p = wn->arena + wn->arena_used;
    memcpy(p, s, len);
    p[len] = '\0';
    wn->arena_used += len + 1;
    return p;
}

// Whole file, NUL-terminated, kept until wordnet_free. NULL + error naming the file.
static char *read_whole(struct wordnet *wn, const char *dir, const char *name, size_t *size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        catlip_error_set("cannot open WordNet file %s: %s (install wordnet-base, or pass the "
                         "WordNet dictionary directory)", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = xmalloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        catlip_error_set("cannot read WordNet file %s", path);
        return NULL;
    }
    buf[n] = '\0';
    keep_block(wn, buf);
    *size = n;
    return buf;
}

static void table_grow(struct wordnet *wn) {
    uint32_t size = wn->slot_mask ? 2 * (wn->slot_mask + 1) : 1u << 16;
    free(wn->slots);
    wn->slots = xcalloc(size, sizeof *wn->slots);
    wn->slot_mask = size - 1;
    for (int i = 0; i < wn->count; i++) {
        uint32_t s = wn->entries[i].hash & wn->slot_mask;
        while (wn->slots[s]) s = (s + 1) & wn->slot_mask;
        wn->slots[s] = (uint32_t)i + 1;
    }
}

static int find_index(const struct wordnet *wn, const char *word, size_t len, uint32_t hash) {
    uint32_t s = hash & wn->slot_mask;
    for (;;) {
        uint32_t v = wn->slots[s];
        if (!v) return -1;
        const struct wordnet_entry *e = &wn->entries[v - 1];
        if (e->hash == hash && e->len == len && !memcmp(e->lemma, word, len)) return (int)v - 1;
        s = (s + 1) & wn->slot_mask;
    }
}

// The entry for word, created when missing. `stable` is a NUL-terminated copy that outlives
// the table (or NULL: copy into the arena).
static int find_or_add(struct wordnet *wn, const char *word, size_t len, const char *stable) {
    uint32_t hash = word_hash(word, len);
    int i = find_index(wn, word, len, hash);
    if (i >= 0) return i;
    if ((uint32_t)(wn->count + 1) * 2 > wn->slot_mask + 1) table_grow(wn);
    if (wn->count == wn->capacity) {
        wn->capacity = wn->capacity ? 2 * wn->capacity : 1 << 16;
        wn->entries = xrealloc(wn->entries, (size_t)wn->capacity * sizeof *wn->entries);
    }
    struct wordnet_entry *e = &wn->entries[wn->count];
    memset(e, 0, sizeof *e);
    e->lemma = stable ? stable : arena_copy(wn, word, len);
    e->len = (uint32_t)len;
    e->hash = hash;
    uint32_t s = hash & wn->slot_mask;
    while (wn->slots[s]) s = (s + 1) & wn->slot_mask;
    wn->slots[s] = (uint32_t)wn->count + 1;
    return wn->count++;
}

// Splits the next space-separated field off *p (within the line ending at end).
static int next_field(char **p, char *end, char **field, size_t *len) {
    char *s = *p;
    while (s < end && *s == ' ') s++;
    if (s >= end) return 0;
    char *t = s;
    while (t < end && *t != ' ') t++;
    *field = s;
    *len = (size_t)(t - s);
    *p = t;
    return 1;
}

static int load_index(struct wordnet *wn, const char *dir, const char *name, enum wordnet_pos pos) {
    size_t size;
    char *buf = read_whole(wn, dir, name, &size);
    if (!buf) return -1;
    char *line = buf, *bufend = buf + size;
    int lineno = 0;
    while (line < bufend) {
        char *end = memchr(line, '\n', (size_t)(bufend - line));
        if (!end) end = bufend;
        lineno++;
        if (line[0] != ' ' && end > line) {  // lines starting with a space are the licence
            char *p = line, *f;
            size_t flen;
            char *lemma;
            size_t lemma_len;
            long synsets = 0, pointers = 0;
            int ok = next_field(&p, end, &lemma, &lemma_len) && next_field(&p, end, &f, &flen) &&
                     next_field(&p, end, &f, &flen) && (synsets = strtol(f, NULL, 10)) > 0 &&
                     next_field(&p, end, &f, &flen);
            pointers = ok ? strtol(f, NULL, 10) : 0;
            for (long k = 0; ok && k < pointers; k++) ok = next_field(&p, end, &f, &flen);
            ok = ok && next_field(&p, end, &f, &flen) && next_field(&p, end, &f, &flen) &&
                 next_field(&p, end, &f, &flen) && flen == 8;
            if (!ok || lemma_len >= WORDNET_WORD_MAX) {
                if (ok) goto next;  // a lemma too long to ever match: not needed
                return catlip_error_set("%s/%s:%d: malformed index line", dir, name, lineno);
            }
            lemma[lemma_len] = '\0';  // the field separator: the line is not needed any more
            int i = find_or_add(wn, lemma, lemma_len, lemma);
            struct wordnet_entry *e = &wn->entries[i];
            e->senses[pos] = (uint16_t)(synsets > 65535 ? 65535 : synsets);
            if (pos == WORDNET_NOUN) {
                e->noun_offset = (uint32_t)strtoul(f, NULL, 10);
                e->noun_senses_text = f;  // the buffer is kept with the table
            }
        }
    next:
        line = end + 1;
    }
    return 0;
}

static void add_prefixes(struct wordnet *wn) {
    int n = wn->count;
    for (int i = 0; i < n; i++) {
        if (!wn->entries[i].senses[WORDNET_NOUN]) continue;
        const char *lemma = wn->entries[i].lemma;
        uint32_t len = wn->entries[i].len;
        for (uint32_t k = 1; k < len; k++) {
            if (lemma[k] != '_' && lemma[k] != '-') continue;
            int j = find_or_add(wn, lemma, k, NULL);
            wn->entries[j].flags |= WORDNET_PREFIX;
            lemma = wn->entries[i].lemma;  // (entries may have moved)
        }
    }
}

static int load_counts(struct wordnet *wn, const char *dir) {
    size_t size;
    char *buf = read_whole(wn, dir, "cntlist.rev", &size);
    if (!buf) return -1;
    char *line = buf, *bufend = buf + size;
    while (line < bufend) {
        char *end = memchr(line, '\n', (size_t)(bufend - line));
        if (!end) end = bufend;
        char *pct = memchr(line, '%', (size_t)(end - line));
        char *sp = pct ? memchr(pct, ' ', (size_t)(end - pct)) : NULL;
        char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(end - sp - 1)) : NULL;
        if (pct && sp2 && pct[1] >= '1' && pct[1] <= '5') {
            static const int pos_of_type[6] = {0, WORDNET_NOUN, WORDNET_VERB, WORDNET_ADJ,
                                               WORDNET_ADV, WORDNET_ADJ};
            int pos = pos_of_type[pct[1] - '0'];
            int i = find_index(wn, line, (size_t)(pct - line), word_hash(line, (size_t)(pct - line)));
            if (i >= 0) wn->entries[i].count[pos] += (uint32_t)strtoul(sp2 + 1, NULL, 10);
        }
        line = end + 1;
    }
    return 0;
}

static void exc_push(struct wordnet *wn, uint32_t entry) {
    if (wn->exc_count == wn->exc_capacity) {
        wn->exc_capacity = wn->exc_capacity ? 2 * wn->exc_capacity : 4096;
        wn->exc = xrealloc(wn->exc, (size_t)wn->exc_capacity * sizeof *wn->exc);
    }
    wn->exc[wn->exc_count++] = entry;
}

static int load_exceptions(struct wordnet *wn, const char *dir, const char *name, enum wordnet_pos pos) {
    size_t size;
    char *buf = read_whole(wn, dir, name, &size);
    if (!buf) return -1;
    char *line = buf, *bufend = buf + size;
    while (line < bufend) {
        char *end = memchr(line, '\n', (size_t)(bufend - line));
        if (!end) end = bufend;
        char *p = line, *form, *base;
        size_t form_len, base_len;
        if (next_field(&p, end, &form, &form_len) && form_len < WORDNET_WORD_MAX) {
            int fi = find_or_add(wn, form, form_len, NULL);
            struct wordnet_entry *fe = &wn->entries[fi];
            // A form on several lines ("involucra involucre", "involucra involucrum"): its
            // earlier bases are moved to the end so that all of them stay contiguous.
            int first = wn->exc_count, earlier = fe->exc_count[pos];
            for (int k = 0; k < earlier; k++) exc_push(wn, wn->exc[fe->exc_first[pos] + k]);
            while (next_field(&p, end, &base, &base_len)) {
                int bi = find_index(wn, base, base_len, word_hash(base, base_len));
                if (bi >= 0 && wn->entries[bi].senses[pos]) exc_push(wn, (uint32_t)bi);
            }
            fe = &wn->entries[fi];
            fe->exc_first[pos] = (uint32_t)first;
            fe->exc_count[pos] = (uint16_t)(wn->exc_count - first);
            fe->exc_forms |= (uint8_t)(1u << pos);
        }
        line = end + 1;
    }
    return 0;
}

static int load_synsets(struct wordnet *wn, const char *dir) {
    size_t size;
    char *buf = read_whole(wn, dir, "data.noun", &size);
    if (!buf) return -1;
    int cap = 1 << 17;
    wn->synsets = xmalloc((size_t)cap * sizeof *wn->synsets);
    char *line = buf, *bufend = buf + size;
    int lineno = 0;
    while (line < bufend) {
        char *end = memchr(line, '\n', (size_t)(bufend - line));
        if (!end) end = bufend;
        lineno++;
        if (line[0] != ' ' && end > line) {
            char *p = line, *f, *word = NULL;
            size_t flen, word_len = 0;
            int ok = next_field(&p, end, &f, &flen) && flen == 8;
            uint32_t offset = ok ? (uint32_t)strtoul(f, NULL, 10) : 0;
            ok = ok && offset == (uint32_t)(line - buf) && next_field(&p, end, &f, &flen) &&
                 next_field(&p, end, &f, &flen) && next_field(&p, end, &f, &flen) &&
                 next_field(&p, end, &word, &word_len);
            if (!ok) {
                free(wn->synsets);
                wn->synsets = NULL;
                return catlip_error_set("%s/data.noun:%d: malformed synset line (offset does not "
                                        "match its position, or fields missing)", dir, lineno);
            }
            if (wn->synset_count == cap) {
                cap *= 2;
                wn->synsets = xrealloc(wn->synsets, (size_t)cap * sizeof *wn->synsets);
            }
            wn->synsets[wn->synset_count].offset = offset;
            wn->synsets[wn->synset_count].word = arena_copy(wn, word, word_len);
            wn->synset_count++;
        }
        line = end + 1;
    }
    // data.noun is only needed for the head words: release its 15 MB.
    for (int b = 0; b < wn->block_count; b++)
        if (wn->blocks[b] == buf) {
            free(buf);
            wn->blocks[b] = NULL;
        }
    return 0;
}

struct wordnet *wordnet_load(const char *dir) {
    if (!dir) dir = WORDNET_DEFAULT_DIR;
    struct wordnet *wn = xcalloc(1, sizeof *wn);
    static const char *index_names[4] = {"index.noun", "index.verb", "index.adj", "index.adv"};
    static const char *exc_names[4] = {"noun.exc", "verb.exc", "adj.exc", "adv.exc"};
    table_grow(wn);
    for (int pos = 0; pos < 4; pos++)
        if (load_index(wn, dir, index_names[pos], (enum wordnet_pos)pos) != 0) goto fail;
    wn->lemma_count = wn->count;
    add_prefixes(wn);
    if (load_counts(wn, dir) != 0) goto fail;
    for (int pos = 0; pos < 4; pos++)
        if (load_exceptions(wn, dir, exc_names[pos], (enum wordnet_pos)pos) != 0) goto fail;
    if (load_synsets(wn, dir) != 0) goto fail;
    for (int i = 0; i < wn->count; i++) {
        uint32_t off = wn->entries[i].noun_offset;
        if (off && wordnet_synset_index(wn, off) < 0) {
            catlip_error_set("%s/index.noun: lemma '%s' names synset %08u, which is not in "
                             "data.noun (mismatched WordNet files?)", dir, wn->entries[i].lemma, off);
            goto fail;
        }
    }
    return wn;
fail:
    wordnet_free(wn);
    return NULL;
}

void wordnet_free(struct wordnet *wn) {
    if (!wn) return;
    for (int b = 0; b < wn->block_count; b++) free(wn->blocks[b]);
    free(wn->blocks);
    free(wn->entries);
    free(wn->slots);
    free(wn->exc);
    free(wn->synsets);
    free(wn);
}

const struct wordnet_entry *wordnet_lookup(const struct wordnet *wn, const char *word, size_t len) {
    if (len == 0 || len >= WORDNET_WORD_MAX) return NULL;
    int i = find_index(wn, word, len, word_hash(word, len));
    return i < 0 ? NULL : &wn->entries[i];
}

static int add_unique(const struct wordnet_entry **out, int n, int max, const struct wordnet_entry *e) {
    for (int k = 0; k < n; k++)
        if (out[k] == e) return n;
    if (n < max) out[n++] = e;
    return n;
}

struct detach_rule {
    const char *suffix, *ending;
};
static const struct detach_rule noun_rules[] = {{"s", ""},     {"ses", "s"},   {"xes", "x"},
                                                {"zes", "z"},  {"ches", "ch"}, {"shes", "sh"},
                                                {"men", "man"}, {"ies", "y"}};
static const struct detach_rule verb_rules[] = {{"s", ""},   {"ies", "y"}, {"es", "e"},
                                                {"es", ""},  {"ed", "e"},  {"ed", ""},
                                                {"ing", "e"}, {"ing", ""}};
static const struct detach_rule adj_rules[] = {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}};

int wordnet_morph(const struct wordnet *wn, const char *word, size_t len, enum wordnet_pos pos,
                  const struct wordnet_entry **out, int max) {
    if (len == 0 || len >= WORDNET_WORD_MAX || max <= 0) return 0;
    int n = 0;
    const struct wordnet_entry *self = wordnet_lookup(wn, word, len);
    if (self && self->senses[pos]) n = add_unique(out, n, max, self);
    if (self && (self->exc_forms & (1u << pos))) {  // an exception form: its bases replace the rules
        for (int k = 0; k < self->exc_count[pos]; k++)
            n = add_unique(out, n, max, &wn->entries[wn->exc[self->exc_first[pos] + k]]);
        return n;
    }
    // In a collocation only the last word is inflected ("traffic_lights", "men_of_war" aside).
    size_t last = len;
    while (last > 0 && word[last - 1] != '_') last--;
    const char *tail = word + last;
    size_t tail_len = len - last;
    char buf[WORDNET_WORD_MAX + 8];
    memcpy(buf, word, last);
    if (last > 0) {
        const struct wordnet_entry *t = wordnet_lookup(wn, tail, tail_len);
        if (t && (t->exc_forms & (1u << pos))) {
            for (int k = 0; k < t->exc_count[pos]; k++) {
                const struct wordnet_entry *b = &wn->entries[wn->exc[t->exc_first[pos] + k]];
                if (last + b->len >= WORDNET_WORD_MAX) continue;
                memcpy(buf + last, b->lemma, b->len);
                const struct wordnet_entry *e = wordnet_lookup(wn, buf, last + b->len);
                if (e && e->senses[pos]) n = add_unique(out, n, max, e);
            }
            return n;
        }
    }
    const struct detach_rule *rules;
    int nrules;
    switch (pos) {
    case WORDNET_NOUN:
        if (tail_len <= 2 || (tail[tail_len - 1] == 's' && tail[tail_len - 2] == 's')) return n;
        rules = noun_rules, nrules = (int)(sizeof noun_rules / sizeof *noun_rules);
        break;
    case WORDNET_VERB: rules = verb_rules, nrules = (int)(sizeof verb_rules / sizeof *verb_rules); break;
    case WORDNET_ADJ: rules = adj_rules, nrules = (int)(sizeof adj_rules / sizeof *adj_rules); break;
    default: return n;  // adverbs: exception list only
    }
    for (int r = 0; r < nrules; r++) {
        size_t sl = strlen(rules[r].suffix), el = strlen(rules[r].ending);
        if (tail_len <= sl || memcmp(tail + tail_len - sl, rules[r].suffix, sl)) continue;
        size_t stem = last + tail_len - sl;
        memcpy(buf + last, tail, tail_len - sl);
        memcpy(buf + stem, rules[r].ending, el);
        const struct wordnet_entry *e = wordnet_lookup(wn, buf, stem + el);
        if (e && e->senses[pos]) n = add_unique(out, n, max, e);
    }
    return n;
}

int wordnet_synset_index(const struct wordnet *wn, uint32_t offset) {
    int lo = 0, hi = wn->synset_count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (wn->synsets[mid].offset == offset) return mid;
        if (wn->synsets[mid].offset < offset) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

const char *wordnet_synset_word(const struct wordnet *wn, uint32_t offset) {
    int i = wordnet_synset_index(wn, offset);
    return i < 0 ? NULL : wn->synsets[i].word;
}

int wordnet_synset_count(const struct wordnet *wn) { return wn->synset_count; }

uint32_t wordnet_synset_offset(const struct wordnet *wn, int index) {
    CATLIP_ASSERT(index >= 0 && index < wn->synset_count);
    return wn->synsets[index].offset;
}

int wordnet_lemma_count(const struct wordnet *wn) { return wn->lemma_count; }

int wordnet_noun_senses(const struct wordnet_entry *e, uint32_t *out, int max) {
    if (!e->noun_senses_text) return 0;
    const char *p = e->noun_senses_text;
    int n = 0;
    for (int i = 0; i < e->senses[WORDNET_NOUN] && n < max; i++) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p) break;
        out[n++] = (uint32_t)v;
        p = end;
    }
    return n;
}
