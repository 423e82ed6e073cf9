// Vocabulary TSV reader and writer (common/text/vocab.h), malformed files included.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "text/vocab.h"

static char path[64];

static const char *write_file(const char *text, size_t len) {
    strcpy(path, "/tmp/catlip_test_vocab_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static struct vocab *load(const char *text) {
    struct vocab *v = vocab_load(write_file(text, strlen(text)));
    return v;
}

// Loading `text` fails with an error that names line `line` and contains `what`.
static void fails(const char *text, int line, const char *what) {
    struct vocab *v = load(text);
    assert_null(v);
    char where[128];
    snprintf(where, sizeof where, "%s:%d: ", path, line);
    if (!strstr(catlip_error(), where) || !strstr(catlip_error(), what))
        fail_msg("error '%s' should name '%s' and say '%s'", catlip_error(), where, what);
    unlink(path);
}

static void reads_a_vocabulary(void **state) {
    struct vocab *v = load("# catlip vocabulary: min_count=2 captions=10 source=x.tar\n"
                           "n02084071\tdog\t7\n"
                           "\n"
                           "n03397947\tFrisbee\t3\r\n"
                           "# a comment\n"
                           "n02121620\tcat\t3\n");
    assert_non_null(v);
    unlink(path);
    assert_int_equal(vocab_size(v), 3);
    assert_int_equal(vocab_index(v, "n02084071"), 0);
    assert_int_equal(vocab_index(v, "n03397947"), 1);
    assert_int_equal(vocab_index(v, "n02121620"), 2);
    assert_int_equal(vocab_index(v, "n00001740"), -1);
    assert_int_equal(vocab_index(v, "dog"), -1);
    assert_int_equal(vocab_index(v, NULL), -1);
    assert_int_equal(vocab_index_offset(v, 3397947), 1);
    assert_string_equal(vocab_id(v, 1), "n03397947");
    assert_string_equal(vocab_lemma(v, 1), "Frisbee");
    assert_int_equal(vocab_count(v, 0), 7);
    assert_string_equal(vocab_header(v), "catlip vocabulary: min_count=2 captions=10 source=x.tar");
    // The hash is FNV-1a 64 over "id\n" in order: fixed, and order-sensitive.
    uint64_t h = 1469598103934665603ull;
    const char *ids = "n02084071\nn03397947\nn02121620\n";
    for (const char *p = ids; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    assert_true(vocab_hash(v) == h);
    struct vocab *w = load("n03397947\tfrisbee\t3\nn02084071\tdog\t7\nn02121620\tcat\t3\n");
    unlink(path);
    assert_true(vocab_hash(w) != vocab_hash(v));
    vocab_free(w);
    vocab_free(v);
}

static void many_entries_and_round_trip(void **state) {
    // Every 7th noun synset offset of a small known list would be fragile; instead write rows
    // for real synsets taken from data.noun and read them back.
    FILE *f = fopen("/usr/share/wordnet/data.noun", "r");
    assert_non_null(f);
    struct vocab_row rows[3000];
    char *lemmas[3000];
    size_t n = 0;
    char line[65536];
    while (n < 3000 && fgets(line, sizeof line, f)) {
        if (line[0] == ' ') continue;
        char word[256];
        unsigned offset;
        if (sscanf(line, "%u %*s %*s %*s %255s", &offset, word) != 2) continue;
        lemmas[n] = strdup(word);
        rows[n] = (struct vocab_row){offset, lemmas[n], (uint64_t)(n % 17 + 1)};
        n++;
    }
    fclose(f);
    assert_int_equal(n, 3000);
    vocab_sort_rows(rows, n);
    for (size_t i = 1; i < n; i++)
        assert_true(rows[i - 1].count > rows[i].count ||
                    (rows[i - 1].count == rows[i].count && rows[i - 1].offset < rows[i].offset));
    char out[] = "/tmp/catlip_test_vocab_out_XXXXXX";
    int fd = mkstemp(out);
    close(fd);
    assert_int_equal(vocab_write(out, "catlip vocabulary: test", rows, n), 0);
    struct vocab *v = vocab_load(out);
    assert_non_null(v);
    assert_int_equal(vocab_size(v), 3000);
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%08u", rows[i].offset);
        assert_int_equal(vocab_index(v, id), (int)i);
        assert_string_equal(vocab_lemma(v, (int)i), rows[i].lemma);
        assert_int_equal(vocab_count(v, (int)i), rows[i].count);
    }
    assert_string_equal(vocab_header(v), "catlip vocabulary: test");
    vocab_free(v);
    unlink(out);
    for (size_t i = 0; i < n; i++) free(lemmas[i]);
    assert_int_equal(vocab_write("/nonexistent-dir/v.tsv", NULL, rows, 1), -1);
    assert_non_null(strstr(catlip_error(), "/nonexistent-dir/v.tsv"));
}

static void malformed_files(void **state) {
    fails("n02084071\tdog\t7\nn02084071\tdog\t7\n", 2, "duplicate synset n02084071 (first on line 1)");
    fails("n02084071\tdog\n", 1, "expected 3 tab-separated fields");
    fails("n02084071\tdog\t7\textra\n", 1, "expected 3 tab-separated fields");
    fails("n02084071 dog 7\n", 1, "expected 3 tab-separated fields");
    fails("# header\nn2084071\tdog\t7\n", 2, "malformed synset id");
    fails("n0208407x\tdog\t7\n", 1, "malformed synset id");
    fails("02084071\tdog\t7\n", 1, "malformed synset id");
    fails("n02084071\t\t7\n", 1, "empty lemma");
    fails("n02084071\tdog\t0\n", 1, "not a positive integer");
    fails("n02084071\tdog\t-3\n", 1, "not a positive integer");
    fails("n02084071\tdog\tmany\n", 1, "not a positive integer");
    fails("n02084071\tdog\t99999999999999999999999\n", 1, "not a positive integer");
    fails("n02084071\tdog\t7\nn02084072\tdog\t7\n", 2, "unknown synset n02084072");
    fails("n99999999\tdog\t7\n", 1, "unknown synset");
    fails("n00000000\tdog\t7\n", 1, "unknown synset");
    // Empty and binary files.
    assert_null(load("# only a header\n\n"));
    assert_non_null(strstr(catlip_error(), "empty"));
    unlink(path);
    assert_null(vocab_load(write_file("n02084071\0\tdog\t7\n", 17)));
    assert_non_null(strstr(catlip_error(), ":1: "));
    unlink(path);
    assert_null(vocab_load("/nonexistent/vocab.tsv"));
    assert_non_null(strstr(catlip_error(), "/nonexistent/vocab.tsv"));
    struct vocab *v = load("n02084071\tdog\t7\n");
    assert_non_null(v);
    unlink(path);
    vocab_free(v);
    assert_null(vocab_load_wordnet(write_file("n02084071\tdog\t7\n", 17), "/nonexistent/wn"));
    assert_non_null(strstr(catlip_error(), "/nonexistent/wn/data.noun"));
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_a_vocabulary),
        cmocka_unit_test(many_entries_and_round_trip),
        cmocka_unit_test(malformed_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
