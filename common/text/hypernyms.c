#include "text/hypernyms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

struct hypernyms {
    int count;     // noun synsets
    int *first;    // (count + 1) CSR row starts into parents
    int *parents;  // dense indices of hypernyms and instance hypernyms
};

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return catlip_error_set("%s: cannot open (is wordnet-base installed?)", path), NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = xmalloc((size_t)n + 1);
    if (n < 0 || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return catlip_error_set("%s: read error", path), NULL;
    }
    fclose(f);
    buf[n] = 0;
    *size = (size_t)n;
    return buf;
}

struct hypernyms *hypernyms_load(const struct wordnet *wn, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data.noun", dir ? dir : WORDNET_DEFAULT_DIR);
    size_t size;
    char *buf = read_file(path, &size);
    if (!buf) return NULL;
    int n = wordnet_synset_count(wn);
    struct hypernyms *h = xcalloc(1, sizeof *h);
    h->count = n;
    h->first = xcalloc((size_t)n + 1, sizeof *h->first);
    // First pass collects (child, parent) pairs; then a counting sort makes the CSR rows.
    size_t cap = 1 << 17, npairs = 0;
    int *pairs = xmalloc(cap * 2 * sizeof *pairs);
    int line_no = 0;
    for (char *line = buf; line < buf + size; line_no++) {
        char *end = memchr(line, '\n', (size_t)(buf + size - line));
        if (!end) end = buf + size;
        *end = 0;
        if (line[0] >= '0' && line[0] <= '9') {
            char *p = line, *q;
            unsigned long offset = strtoul(p, &q, 10);
            int child = wordnet_synset_index(wn, (uint32_t)offset);
            strtoul(q, &q, 10);  // lex_filenum
            while (*q == ' ') q++;
            if (*q) q++;  // ss_type
            long words = strtol(q, &q, 16);
            for (long w = 0; w < 2 * words && *q; w++) {  // word lex_id pairs
                while (*q == ' ') q++;
                while (*q && *q != ' ') q++;
            }
            long pointers = strtol(q, &q, 10);
            if (child < 0 || words <= 0 || pointers < 0) {
                free(pairs);
                free(buf);
                hypernyms_free(h);
                return catlip_error_set("%s:%d: malformed synset line (mismatched WordNet files?)",
                                        path, line_no + 1),
                       NULL;
            }
            for (long k = 0; k < pointers; k++) {
                char symbol[4] = {0}, pos = 0;
                unsigned long target;
                int used = 0;
                if (sscanf(q, " %3s %lu %c %*s%n", symbol, &target, &pos, &used) != 3) break;
                q += used;
                if (pos != 'n' || (strcmp(symbol, "@") && strcmp(symbol, "@i"))) continue;
                int parent = wordnet_synset_index(wn, (uint32_t)target);
                if (parent < 0) continue;
                if (npairs == cap) pairs = xrealloc(pairs, (cap *= 2) * 2 * sizeof *pairs);
                pairs[2 * npairs] = child;
                pairs[2 * npairs + 1] = parent;
                npairs++;
                h->first[child + 1]++;
            }
        }
        line = end + 1;
    }
    for (int i = 0; i < n; i++) h->first[i + 1] += h->first[i];
    h->parents = xmalloc((npairs ? npairs : 1) * sizeof *h->parents);
    int *fill = xcalloc((size_t)n, sizeof *fill);
    for (size_t i = 0; i < npairs; i++) {
        int c = pairs[2 * i];
        h->parents[h->first[c] + fill[c]++] = pairs[2 * i + 1];
    }
    free(fill);
    free(pairs);
    free(buf);
    return h;
}

void hypernyms_free(struct hypernyms *h) {
    if (!h) return;
    free(h->first);
    free(h->parents);
    free(h);
}

int hypernyms_parents(const struct hypernyms *h, int index, int *out, int max) {
    if (index < 0 || index >= h->count) return 0;
    int n = 0;
    for (int k = h->first[index]; k < h->first[index + 1] && n < max; k++) out[n++] = h->parents[k];
    return n;
}

// Breadth-first upwards, so each ancestor's first visit is at its shortest distance; the
// touched list doubles as the queue.
int hypernyms_ancestors(const struct hypernyms *h, int index, int *dist, int *touched) {
    if (index < 0 || index >= h->count) return 0;
    int head = 0, tail = 0;
    dist[index] = 0;
    touched[tail++] = index;
    while (head < tail) {
        int s = touched[head++];
        for (int k = h->first[s]; k < h->first[s + 1]; k++) {
            int p = h->parents[k];
            if (dist[p] >= 0) continue;
            dist[p] = dist[s] + 1;
            touched[tail++] = p;
        }
    }
    return tail;
}

// Shortest up-and-down distance between the ancestors in dist_a and those of b (-1: none).
static int shortest_via_ancestors(const struct hypernyms *h, const int *dist_a, int b, int *dist_b,
                                  int *touched_b) {
    int reached = hypernyms_ancestors(h, b, dist_b, touched_b), best = -1;
    for (int i = 0; i < reached; i++) {
        int x = touched_b[i];
        if (dist_a[x] >= 0 && (best < 0 || dist_a[x] + dist_b[x] < best))
            best = dist_a[x] + dist_b[x];
    }
    for (int i = 0; i < reached; i++) dist_b[touched_b[i]] = -1;
    return best;
}

static int *minus_ones(int n) {
    int *a = xmalloc((size_t)n * sizeof *a);
    for (int i = 0; i < n; i++) a[i] = -1;
    return a;
}

double hypernyms_path_similarity(const struct hypernyms *h, int a, int b) {
    double similarity;
    hypernyms_nearest(h, a, &b, 1, &similarity);
    return similarity;
}

int hypernyms_nearest(const struct hypernyms *h, int index, const int *candidates, int n,
                      double *similarity) {
    if (similarity) *similarity = 0;
    if (n <= 0 || index < 0 || index >= h->count) return -1;
    int *dist_a = minus_ones(h->count), *dist_b = minus_ones(h->count);
    int *touched_a = xmalloc((size_t)h->count * sizeof(int)),
        *touched_b = xmalloc((size_t)h->count * sizeof(int));
    hypernyms_ancestors(h, index, dist_a, touched_a);
    int best = -1, best_d = -1;
    for (int i = 0; i < n; i++) {
        if (candidates[i] < 0 || candidates[i] >= h->count) continue;
        int d = shortest_via_ancestors(h, dist_a, candidates[i], dist_b, touched_b);
        if (d >= 0 && (best_d < 0 || d < best_d)) best = i, best_d = d;
    }
    free(dist_a), free(dist_b), free(touched_a), free(touched_b);
    if (best >= 0 && similarity) *similarity = 1.0 / (best_d + 1);
    return best;
}
