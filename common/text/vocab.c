// Vocabulary TSV reader and writer (see vocab.h).
#include "text/vocab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/check.h"
#include "text/wordnet.h"

struct vocab {
    int count;
    char (*ids)[10];       // (count) "n%08u"
    uint32_t *offsets;     // (count)
    char **lemmas;         // (count)
    uint64_t *counts;      // (count)
    int *lines;            // (count) line number of each class, for duplicate errors
    uint32_t *slots;       // (mask + 1) class index + 1; 0: empty
    uint32_t mask;
    char *header;
};

static uint32_t offset_slot(uint32_t offset, uint32_t mask) { return (offset * 2654435761u) & mask; }

static int find_offset(const struct vocab *v, uint32_t offset) {
    uint32_t s = offset_slot(offset, v->mask);
    while (v->slots[s]) {
        int i = (int)v->slots[s] - 1;
        if (v->offsets[i] == offset) return i;
        s = (s + 1) & v->mask;
    }
    return -1;
}

void vocab_free(struct vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->count; i++) free(v->lemmas[i]);
    free(v->ids);
    free(v->offsets);
    free(v->lemmas);
    free(v->counts);
    free(v->lines);
    free(v->slots);
    free(v->header);
    free(v);
}

// Is there a noun synset at `offset` in data.noun? One pread: the byte before must end a line
// and the line must begin with the same 8 digits.
static int synset_exists(int fd, uint32_t offset) {
    char buf[10];
    if (offset == 0) return 0;
    if (pread(fd, buf, sizeof buf, (off_t)offset - 1) != (ssize_t)sizeof buf) return 0;
    char digits[16];
    snprintf(digits, sizeof digits, "%08u", offset);
    return buf[0] == '\n' && !memcmp(buf + 1, digits, 8) && buf[9] == ' ';
}

static int parse_id(const char *s, size_t len, uint32_t *offset) {
    if (len != 9 || s[0] != 'n') return -1;
    uint32_t v = 0;
    for (int i = 1; i < 9; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *offset = v;
    return 0;
}

static int parse_count(const char *s, size_t len, uint64_t *count) {
    if (len == 0 || len > 19) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0) return -1;
    *count = v;
    return 0;
}

struct vocab *vocab_load_wordnet(const char *path, const char *wordnet_dir) {
    char data_path[4096];
    snprintf(data_path, sizeof data_path, "%s/data.noun", wordnet_dir ? wordnet_dir : WORDNET_DEFAULT_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) {
        catlip_error_set("cannot open vocabulary %s: %s", path, strerror(errno));
        return NULL;
    }
    int data_fd = open(data_path, O_RDONLY | O_CLOEXEC);
    if (data_fd < 0) {
        fclose(f);
        catlip_error_set("cannot open %s to check the vocabulary's synsets: %s (install wordnet-base)",
                         data_path, strerror(errno));
        return NULL;
    }
    struct vocab *v = xcalloc(1, sizeof *v);
    int capacity = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    int lineno = 0;
    v->mask = (1u << 10) - 1;
    v->slots = xcalloc(v->mask + 1, sizeof *v->slots);
    while ((got = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        line[len] = '\0';
        if (len == 0) continue;
        if (memchr(line, '\0', len)) {
            catlip_error_set("%s:%d: NUL byte in line (not a vocabulary TSV file?)", path, lineno);
            goto fail;
        }
        if (line[0] == '#') {
            if (!v->header) {
                const char *h = line + 1;
                while (*h == ' ') h++;
                v->header = xstrdup(h);
            }
            continue;
        }
        char *tab1 = strchr(line, '\t');
        char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2 || strchr(tab2 + 1, '\t')) {
            catlip_error_set("%s:%d: expected 3 tab-separated fields (synset_id, lemma, count)", path, lineno);
            goto fail;
        }
        uint32_t offset;
        uint64_t count;
        if (parse_id(line, (size_t)(tab1 - line), &offset) != 0) {
            catlip_error_set("%s:%d: malformed synset id '%.*s' (expected n + 8 digits, e.g. n02084071)",
                             path, lineno, (int)(tab1 - line > 40 ? 40 : tab1 - line), line);
            goto fail;
        }
        if (tab2 == tab1 + 1) {
            catlip_error_set("%s:%d: empty lemma for %.9s", path, lineno, line);
            goto fail;
        }
        if (parse_count(tab2 + 1, strlen(tab2 + 1), &count) != 0) {
            catlip_error_set("%s:%d: count '%.40s' is not a positive integer", path, lineno, tab2 + 1);
            goto fail;
        }
        int dup = find_offset(v, offset);
        if (dup >= 0) {
            catlip_error_set("%s:%d: duplicate synset %.9s (first on line %d)", path, lineno, line, v->lines[dup]);
            goto fail;
        }
        if (!synset_exists(data_fd, offset)) {
            catlip_error_set("%s:%d: unknown synset %.9s: no noun synset at that offset in %s (a "
                             "vocabulary from another WordNet version?)", path, lineno, line, data_path);
            goto fail;
        }
        if (v->count == capacity) {
            capacity = capacity ? 2 * capacity : 1024;
            v->ids = xrealloc(v->ids, (size_t)capacity * sizeof *v->ids);
            v->offsets = xrealloc(v->offsets, (size_t)capacity * sizeof *v->offsets);
            v->lemmas = xrealloc(v->lemmas, (size_t)capacity * sizeof *v->lemmas);
            v->counts = xrealloc(v->counts, (size_t)capacity * sizeof *v->counts);
            v->lines = xrealloc(v->lines, (size_t)capacity * sizeof *v->lines);
        }
        int i = v->count++;
        memcpy(v->ids[i], line, 9);
        v->ids[i][9] = '\0';
        v->offsets[i] = offset;
        *tab2 = '\0';
        v->lemmas[i] = xstrdup(tab1 + 1);
        v->counts[i] = count;
        v->lines[i] = lineno;
        if ((uint32_t)v->count * 2 > v->mask + 1) {  // grow and rehash
            free(v->slots);
            v->mask = 2 * (v->mask + 1) - 1;
            v->slots = xcalloc(v->mask + 1, sizeof *v->slots);
            for (int k = 0; k < v->count; k++) {
                uint32_t s = offset_slot(v->offsets[k], v->mask);
                while (v->slots[s]) s = (s + 1) & v->mask;
                v->slots[s] = (uint32_t)k + 1;
            }
        } else {
            uint32_t s = offset_slot(offset, v->mask);
            while (v->slots[s]) s = (s + 1) & v->mask;
            v->slots[s] = (uint32_t)i + 1;
        }
    }
    if (ferror(f)) {
        catlip_error_set("cannot read vocabulary %s", path);
        goto fail;
    }
    if (v->count == 0) {
        catlip_error_set("%s: the vocabulary is empty (no synset lines)", path);
        goto fail;
    }
    free(line);
    fclose(f);
    close(data_fd);
    if (!v->header) v->header = xstrdup("");
    return v;
fail:
    free(line);
    fclose(f);
    close(data_fd);
    vocab_free(v);
    return NULL;
}

struct vocab *vocab_load(const char *path) { return vocab_load_wordnet(path, NULL); }

int vocab_size(const struct vocab *v) { return v->count; }

int vocab_index_offset(const struct vocab *v, uint32_t offset) { return find_offset(v, offset); }

int vocab_index(const struct vocab *v, const char *synset_id) {
    uint32_t offset;
    if (!synset_id || parse_id(synset_id, strlen(synset_id), &offset) != 0) return -1;
    return find_offset(v, offset);
}

const char *vocab_id(const struct vocab *v, int index) {
    CATLIP_ASSERT(index >= 0 && index < v->count);
    return v->ids[index];
}

const char *vocab_lemma(const struct vocab *v, int index) {
    CATLIP_ASSERT(index >= 0 && index < v->count);
    return v->lemmas[index];
}

uint64_t vocab_count(const struct vocab *v, int index) {
    CATLIP_ASSERT(index >= 0 && index < v->count);
    return v->counts[index];
}

const char *vocab_header(const struct vocab *v) { return v->header; }

uint64_t vocab_hash(const struct vocab *v) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < v->count; i++) {
        for (int k = 0; k < 9; k++) h = (h ^ (unsigned char)v->ids[i][k]) * 1099511628211ull;
        h = (h ^ '\n') * 1099511628211ull;
    }
    return h;
}

static int row_order(const void *a, const void *b) {
    const struct vocab_row *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

void vocab_sort_rows(struct vocab_row *rows, size_t count) { qsort(rows, count, sizeof *rows, row_order); }

int vocab_write(const char *path, const char *header, const struct vocab_row *rows, size_t count) {
    // The whole TSV in memory first (a few hundred kB for 24k synsets), then one atomic replace.
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return catlip_error_set("cannot write %s: out of memory", path);
    if (header) fprintf(f, "# %s\n", header);
    for (size_t i = 0; i < count; i++)
        fprintf(f, "n%08u\t%s\t%llu\n", rows[i].offset, rows[i].lemma, (unsigned long long)rows[i].count);
    int bad = fclose(f) != 0;
    int rc = bad ? catlip_error_set("cannot write %s: out of memory", path)
                 : atomic_file_replace(path, text, len, 0644);
    free(text);
    return rc;
}
