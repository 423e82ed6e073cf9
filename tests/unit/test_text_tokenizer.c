// The CLIP text tower's word-level tokenizer (common/text/tokenizer.h): build, write, load,
// encode (round trip, truncation keeping <eot>, unknown words) and malformed files.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "text/tokenizer.h"

static char path[64];

static const char *temp_path(void) {
    strcpy(path, "/tmp/catlip_test_tokenizer_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return path;
}

static const char *write_file(const char *text, size_t len) {
    FILE *f = fopen(temp_path(), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

// A tokenizer built from these captions (min_count 2).
static struct tokenizer *built(void) {
    static const char *captions[] = {
        "A dog catching a Frisbee on the beach",
        "the dog's red frisbee",
        "Red t-shirt, navy &amp; white; a DOG",
        "a cat on the beach at sunset",
        "cat%20and dog",
    };
    struct tokenizer_counts *c = tokenizer_counts_create();
    for (size_t i = 0; i < sizeof captions / sizeof captions[0]; i++)
        tokenizer_counts_add_caption(c, captions[i], strlen(captions[i]));
    size_t kept;
    uint64_t occurrences;
    assert_int_equal(tokenizer_counts_write(c, temp_path(), "test", 2, 0, &kept, &occurrences), 0);
    // dog 4, a 4, the 3, frisbee 2, red 2, on 2, beach 2, cat 2
    assert_int_equal(kept, 8);
    assert_int_equal(occurrences, 21);
    assert_int_equal(tokenizer_counts_total(c), 28);
    tokenizer_counts_free(c);
    struct tokenizer *tok = tokenizer_load(path);
    if (!tok) fail_msg("%s", catlip_error());
    unlink(path);
    return tok;
}

static void builds_sorted_by_count(void **state) {
    struct tokenizer *tok = built();
    assert_int_equal(tokenizer_size(tok), TOKENIZER_SPECIALS + 8);
    // count descending, then bytewise
    const char *order[] = {"a", "dog", "the", "beach", "cat", "frisbee", "on", "red"};
    for (int i = 0; i < 8; i++) assert_string_equal(tokenizer_word(tok, TOKENIZER_SPECIALS + i), order[i]);
    assert_string_equal(tokenizer_word(tok, TOKENIZER_PAD), "<pad>");
    assert_string_equal(tokenizer_word(tok, TOKENIZER_EOT), "<eot>");
    assert_int_equal(tokenizer_id(tok, "dog", 3), TOKENIZER_SPECIALS + 1);
    assert_int_equal(tokenizer_id(tok, "navy", 4), TOKENIZER_UNK);
    assert_string_equal(tokenizer_header(tok), "catlip tokenizer: test");
    tokenizer_free(tok);
}

static void encodes_and_round_trips(void **state) {
    struct tokenizer *tok = built();
    int32_t ids[12];
    int dropped = -1;
    const char *caption = "The DOG's frisbee, on the beach!";
    int n = tokenizer_encode(tok, ids, 12, caption, strlen(caption), &dropped);
    assert_int_equal(n, 8);
    assert_int_equal(dropped, 0);
    // ids back to words give the cleaned, split caption
    char text[256] = "";
    for (int i = 0; i < 12; i++) {
        strcat(text, tokenizer_word(tok, ids[i]));
        strcat(text, i < 11 ? " " : "");
    }
    assert_string_equal(text, "<sot> the dog frisbee on the beach <eot> <pad> <pad> <pad> <pad>");
    // an empty caption is <sot> <eot>
    assert_int_equal(tokenizer_encode(tok, ids, 12, "", 0, NULL), 2);
    assert_int_equal(ids[0], TOKENIZER_SOT);
    assert_int_equal(ids[1], TOKENIZER_EOT);
    assert_int_equal(ids[2], TOKENIZER_PAD);
    tokenizer_free(tok);
}

static void unknown_words_are_unk(void **state) {
    struct tokenizer *tok = built();
    int32_t ids[6];
    const char *caption = "zebra dog navy";  // navy: counted once, below min_count
    assert_int_equal(tokenizer_encode(tok, ids, 6, caption, strlen(caption), NULL), 5);
    int32_t want[6] = {TOKENIZER_SOT, TOKENIZER_UNK, TOKENIZER_SPECIALS + 1, TOKENIZER_UNK,
                       TOKENIZER_EOT, TOKENIZER_PAD};
    assert_memory_equal(ids, want, sizeof want);
    tokenizer_free(tok);
}

static void truncation_keeps_eot(void **state) {
    struct tokenizer *tok = built();
    int32_t ids[5];
    int dropped;
    const char *caption = "a dog on the beach with a cat";
    assert_int_equal(tokenizer_encode(tok, ids, 5, caption, strlen(caption), &dropped), 5);
    assert_int_equal(dropped, 5);
    int32_t want[5] = {TOKENIZER_SOT, TOKENIZER_SPECIALS + 0, TOKENIZER_SPECIALS + 1,
                       TOKENIZER_SPECIALS + 6, TOKENIZER_EOT};
    assert_memory_equal(ids, want, sizeof want);
    // the smallest context: <sot> <eot>, every word dropped
    assert_int_equal(tokenizer_encode(tok, ids, 2, caption, strlen(caption), &dropped), 2);
    assert_int_equal(dropped, 8);
    assert_int_equal(ids[1], TOKENIZER_EOT);
    tokenizer_free(tok);
}

static void hash_follows_words_and_order(void **state) {
    const char *h = "# catlip tokenizer: x\n";
    char text[256];
    snprintf(text, sizeof text, "%sdog\t5\ncat\t3\n", h);
    struct tokenizer *a = tokenizer_load(write_file(text, strlen(text)));
    unlink(path);
    snprintf(text, sizeof text, "%sdog\t9\ncat\t1\n", h);  // counts do not change the ids
    struct tokenizer *b = tokenizer_load(write_file(text, strlen(text)));
    unlink(path);
    snprintf(text, sizeof text, "%scat\t5\ndog\t3\n", h);
    struct tokenizer *c = tokenizer_load(write_file(text, strlen(text)));
    unlink(path);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(tokenizer_hash(a) == tokenizer_hash(b));
    // Checkpoints record it: FNV-1a 64 of "catlip-words\ndog\ncat\n" (computed in Python).
    assert_true(tokenizer_hash(a) == 0x6ad13acce09bdd84ull);
    assert_true(tokenizer_hash(a) != tokenizer_hash(c));
    tokenizer_free(a);
    tokenizer_free(b);
    tokenizer_free(c);
}

// Loading `text` fails with one line that contains `what` (and names the file).
static void fails(const char *text, size_t len, const char *what) {
    struct tokenizer *tok = tokenizer_load(write_file(text, len));
    unlink(path);
    assert_null(tok);
    const char *e = catlip_error();
    if (!strstr(e, path) || !strstr(e, what) || strchr(e, '\n'))
        fail_msg("error '%s' should be one line naming %s and saying '%s'", e, path, what);
}

static void malformed_files(void **state) {
    const char garbage[] = "\x7f" "ELF\x02\x01\x01\0\0\0\xff\xfe\n\x01\x02";
    fails(garbage, sizeof garbage - 1, "not a catlip tokenizer");
    fails("", 0, "empty file");
    fails("n02084071\tdog\t7\n", 16, "not a catlip tokenizer");  // a vocabulary, not a tokenizer
    const char *h = "# catlip tokenizer: x\n";
    char text[256];
#define FAILS(body, what)                                  \
    do {                                                   \
        snprintf(text, sizeof text, "%s%s", h, body);      \
        fails(text, strlen(text), what);                   \
    } while (0)
    FAILS("", "no words");
    FAILS("dog\t5\ndog\t2\n", ":3: word 'dog' is already on line 2");
    FAILS("dog\n", ":2: expected 2 tab-separated fields");
    FAILS("dog\t5\t1\n", ":2: expected 2 tab-separated fields");
    FAILS("dog\t0\n", ":2: count '0' is not a positive integer");
    FAILS("dog\tmany\n", ":2: count 'many' is not a positive integer");
    FAILS("Dog\t5\n", ":2: 'Dog' is not a word");
    FAILS("hot dog\t5\n", ":2: 'hot dog' is not a word");
    FAILS("\t5\n", ":2: '' is not a word");
    FAILS("dog,\t5\n", ":2: 'dog,' is not a word");
#undef FAILS
    snprintf(text, sizeof text, "%sdo\001g\t5\n", h);
    fails(text, strlen(text), ":2: '");
    struct tokenizer *tok = tokenizer_load("/nonexistent/tokenizer.tsv");
    assert_null(tok);
    assert_non_null(strstr(catlip_error(), "cannot open tokenizer /nonexistent/tokenizer.tsv"));
}

static void writes_nothing_without_words(void **state) {
    struct tokenizer_counts *c = tokenizer_counts_create();
    tokenizer_counts_add_caption(c, "a dog", 5);
    const char *target = "/tmp/catlip_test_tokenizer_none.tsv";
    unlink(target);
    assert_int_equal(tokenizer_counts_write(c, target, "x", 2, 0, NULL, NULL), -1);
    assert_non_null(strstr(catlip_error(), "lower --min-count"));
    assert_int_equal(access(target, F_OK), -1);
    // --max-words keeps the most frequent
    tokenizer_counts_add_caption(c, "dog dog cat", 11);
    assert_int_equal(tokenizer_counts_write(c, temp_path(), "x", 1, 1, NULL, NULL), 0);
    struct tokenizer *tok = tokenizer_load(path);
    unlink(path);
    assert_non_null(tok);
    assert_int_equal(tokenizer_size(tok), TOKENIZER_SPECIALS + 1);
    assert_string_equal(tokenizer_word(tok, TOKENIZER_SPECIALS), "dog");
    tokenizer_free(tok);
    tokenizer_counts_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builds_sorted_by_count),
        cmocka_unit_test(encodes_and_round_trips),
        cmocka_unit_test(unknown_words_are_unk),
        cmocka_unit_test(truncation_keeps_eot),
        cmocka_unit_test(hash_follows_words_and_order),
        cmocka_unit_test(malformed_files),
        cmocka_unit_test(writes_nothing_without_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
