#include "data/shardlist.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"

enum { MAX_PATHS = 10 * 1000 * 1000 };

struct path_vec {
    char **items;
    size_t count, cap;
    int overflow;
};

static void vec_push(struct path_vec *v, char *s) {
    if (v->count >= MAX_PATHS) {
        v->overflow = 1;
        free(s);
        return;
    }
    if (v->count == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->items = xrealloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->count++] = s;
}

static void vec_free(struct path_vec *v) {
    for (size_t i = 0; i < v->count; i++) free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

// prefix + middle + suffix as a new string.
static char *join3(const char *a, size_t alen, const char *b, size_t blen, const char *c) {
    size_t clen = strlen(c);
    char *s = xmalloc(alen + blen + clen + 1);
    memcpy(s, a, alen);
    memcpy(s + alen, b, blen);
    memcpy(s + alen + blen, c, clen + 1);
    return s;
}

// Parses "[-]digits" of exactly len chars. Returns 0 on success.
static int parse_int(const char *s, size_t len, long long *out, int *padded) {
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == len || len - i > 12) return -1;
    long long v = 0;
    *padded = (s[i] == '0' && len - i > 1);
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

// Index of the '}' matching the '{' at open, or -1.
static long matching_brace(const char *s, size_t open) {
    int depth = 0;
    for (size_t i = open; s[i]; i++) {
        if (s[i] == '{') depth++;
        else if (s[i] == '}' && --depth == 0) return (long)i;
    }
    return -1;
}

static int expand_braces(const char *s, struct path_vec *out);

// Expands the first brace group of s (at open..close) and recurses on each result.
static int expand_group(const char *s, size_t open, size_t close, struct path_vec *out) {
    const char *body = s + open + 1;
    size_t blen = close - open - 1;
    const char *suffix = s + close + 1;

    // Alternatives: split at top-level commas.
    int depth = 0, has_comma = 0;
    for (size_t i = 0; i < blen; i++) {
        if (body[i] == '{') depth++;
        else if (body[i] == '}') depth--;
        else if (body[i] == ',' && depth == 0) has_comma = 1;
    }
    if (has_comma) {
        size_t start = 0;
        depth = 0;
        for (size_t i = 0; i <= blen; i++) {
            if (i < blen && body[i] == '{') depth++;
            else if (i < blen && body[i] == '}') depth--;
            if (i == blen || (body[i] == ',' && depth == 0)) {
                char *next = join3(s, open, body + start, i - start, suffix);
                int rc = expand_braces(next, out);
                free(next);
                if (rc != 0) return rc;
                start = i + 1;
            }
        }
        return 0;
    }

    // Range: A..B with integers.
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < blen; i++)
        if (body[i] == '.' && body[i + 1] == '.') {
            dots = body + i;
            break;
        }
    long long a, b;
    int pa, pb;
    if (dots && parse_int(body, (size_t)(dots - body), &a, &pa) == 0 &&
        parse_int(dots + 2, blen - (size_t)(dots - body) - 2, &b, &pb) == 0) {
        int width = 0;
        if (pa || pb) {
            size_t la = (size_t)(dots - body), lb = blen - la - 2;
            width = (int)(la > lb ? la : lb);
        }
        long long n = (a <= b ? b - a : a - b) + 1;
        if (n > MAX_PATHS)
            return catlip_error_set("shard pattern range {%.*s} has %lld entries (at most %d)",
                                    (int)blen, body, n, MAX_PATHS);
        long long step = a <= b ? 1 : -1;
        for (long long k = 0, v = a; k < n; k++, v += step) {
            char num[32];
            int len = snprintf(num, sizeof num, "%0*lld", width, v);
            char *next = join3(s, open, num, (size_t)len, suffix);
            int rc = expand_braces(next, out);
            free(next);
            if (rc != 0) return rc;
            if (out->overflow) break;
        }
        return 0;
    }

    // Anything else ("{x}") is literal, as in the shell: keep it and expand what follows.
    char *head = join3(s, close + 1, "", 0, "");
    struct path_vec rest = {0};
    int rc = expand_braces(suffix, &rest);
    if (rc == 0)
        for (size_t i = 0; i < rest.count; i++)
            vec_push(out, join3(head, strlen(head), rest.items[i], strlen(rest.items[i]), ""));
    free(head);
    vec_free(&rest);
    return rc;
}

static int expand_braces(const char *s, struct path_vec *out) {
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '}') return catlip_error_set("shard pattern '%s' has an unmatched '}'", s);
        if (s[i] != '{') continue;
        long close = matching_brace(s, i);
        if (close < 0) return catlip_error_set("shard pattern '%s' has an unmatched '{'", s);
        return expand_group(s, i, (size_t)close, out);
    }
    vec_push(out, xstrdup(s));
    return 0;
}

static int has_glob_chars(const char *s) { return strpbrk(s, "*?[") != NULL; }

static int expand_one(const char *pattern, struct path_vec *out, int depth);

static int expand_list_file(const char *path, struct path_vec *out, int depth) {
    if (depth > 4) return catlip_error_set("shard list %s: @files nest too deeply", path);
    FILE *f = fopen(path, "r");
    if (!f) return catlip_error_set("cannot open shard list %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        rc = expand_one(p, out, depth + 1);
    }
    free(line);
    fclose(f);
    return rc;
}

// One comma-free (at top level) pattern: braces, then globs.
static int expand_one(const char *pattern, struct path_vec *out, int depth) {
    if (pattern[0] == '@') return expand_list_file(pattern + 1, out, depth);
    struct path_vec braces = {0};
    if (expand_braces(pattern, &braces) != 0) {
        vec_free(&braces);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < braces.count && rc == 0; i++) {
        const char *p = braces.items[i];
        if (!has_glob_chars(p)) {
            vec_push(out, xstrdup(p));
            continue;
        }
        glob_t g;
        int grc = glob(p, 0, NULL, &g);  // sorted by default
        if (grc == GLOB_NOMATCH) {
            rc = catlip_error_set("shard pattern '%s' matches no files", p);
        } else if (grc != 0) {
            rc = catlip_error_set("cannot expand shard pattern '%s' (glob error %d)", p, grc);
        } else {
            for (size_t k = 0; k < g.gl_pathc; k++) vec_push(out, xstrdup(g.gl_pathv[k]));
        }
        if (grc == 0 || grc == GLOB_NOMATCH) globfree(&g);
    }
    vec_free(&braces);
    return rc;
}

int shardlist_expand(const char *pattern, struct shard_list *out) {
    memset(out, 0, sizeof *out);
    struct path_vec v = {0};
    size_t len = strlen(pattern), start = 0;
    int depth = 0, rc = 0;
    for (size_t i = 0; i <= len && rc == 0; i++) {
        if (i < len && pattern[i] == '{') depth++;
        else if (i < len && pattern[i] == '}') depth--;
        if (i == len || (pattern[i] == ',' && depth <= 0)) {
            if (i > start) {
                char *one = join3(pattern + start, i - start, "", 0, "");
                rc = expand_one(one, &v, 0);
                free(one);
            }
            start = i + 1;
        }
    }
    if (rc == 0 && v.overflow)
        rc = catlip_error_set("shard pattern '%s' expands to more than %d paths", pattern, MAX_PATHS);
    if (rc == 0 && v.count == 0) rc = catlip_error_set("shard pattern '%s' names no shards", pattern);
    if (rc != 0) {
        vec_free(&v);
        return -1;
    }
    out->paths = v.items;
    out->count = v.count;
    return 0;
}

void shardlist_free(struct shard_list *list) {
    for (size_t i = 0; i < list->count; i++) free(list->paths[i]);
    free(list->paths);
    list->paths = NULL;
    list->count = 0;
}
