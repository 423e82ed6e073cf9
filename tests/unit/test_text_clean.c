// Caption cleaning and tokenising (common/text/clean.h, tokenize.h).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/clean.h"
#include "text/tokenize.h"

static const char *clean(const char *in, struct caption_clean_info *info) {
    static char out[CAPTION_MAX_BYTES + 1];
    size_t n = caption_clean(out, in, strlen(in), info);
    assert_int_equal(n, strlen(out));
    return out;
}

static void lowercase_and_whitespace(void **state) {
    assert_string_equal(clean("  A  Black\tDOG\n on the\r\nGrass  ", NULL), "a black dog on the grass");
    assert_string_equal(clean("", NULL), "");
    assert_string_equal(clean("   \t\n", NULL), "");
}

static void url_unquoting(void **state) {
    assert_string_equal(clean("Dog+sleeping+on+the+couch", NULL), "dog sleeping on the couch");
    assert_string_equal(clean("Pancakes%20with%20blueberries%2C%20syrup", NULL), "pancakes with blueberries, syrup");
    // Not an escape: kept as written.
    assert_string_equal(clean("100% cotton %zz %4", NULL), "100% cotton %zz %4");
    // %C3%A9 is UTF-8 for e-acute, folded to e.
    assert_string_equal(clean("caf%C3%A9", NULL), "cafe");
}

static void html_entities_and_tags(void **state) {
    assert_string_equal(clean("Salt &amp; Pepper", NULL), "salt & pepper");
    assert_string_equal(clean("Children&#39;s &quot;toys&quot;", NULL), "children's \"toys\"");
    assert_string_equal(clean("caf&eacute; &#xE9;&#233;", NULL), "cafe ee");
    assert_string_equal(clean("a&nbsp;dog", NULL), "a dog");
    assert_string_equal(clean("Picture of a lighthouse <b>at night</b>", NULL), "picture of a lighthouse at night");
    assert_string_equal(clean("<p class=\"x\">Red<br/>car</p>", NULL), "red car");
    // Escaped markup is decoded, then stripped.
    assert_string_equal(clean("&lt;b&gt;Sale&lt;/b&gt; shoes", NULL), "sale shoes");
    // Not tags, not entities: kept.
    assert_string_equal(clean("a < b > c & d; 3<4", NULL), "a < b > c & d; 3<4");
    assert_string_equal(clean("&unknownentity; dog &#0; &#xD800;", NULL), "dog");
}

static void invalid_utf8_repaired_and_counted(void **state) {
    struct caption_clean_info info;
    assert_string_equal(clean("dog\xff\xfe cat", &info), "dog cat");
    assert_int_equal(info.invalid_utf8, 2);
    assert_string_equal(clean("over\xc0\xaflong", &info), "over long");  // overlong '/'
    assert_int_equal(info.invalid_utf8, 2);
    assert_string_equal(clean("surrogate\xed\xa0\x80x", &info), "surrogate x");
    assert_int_equal(info.invalid_utf8, 3);
    assert_string_equal(clean("cut\xe2\x82", &info), "cut");  // truncated sequence at the end
    assert_int_equal(info.invalid_utf8, 2);
    // Valid multi-byte characters are kept; Latin-1 letters folded.
    assert_string_equal(clean("\xc3\x91" "and\xc3\xba \xe2\x82\xac" "5 \xce\xb1\xce\xb2", &info), "nandu \xe2\x82\xac" "5 \xce\xb1\xce\xb2");
    assert_int_equal(info.invalid_utf8, 0);
    // %-escapes that decode to invalid UTF-8 are repaired too.
    assert_string_equal(clean("a%FFb", &info), "a b");
    assert_int_equal(info.invalid_utf8, 1);
}

static void long_captions_truncated(void **state) {
    size_t n = 5000;
    char *in = malloc(n + 1);
    for (size_t i = 0; i < n; i++) in[i] = i % 5 == 4 ? ' ' : 'a';
    in[n] = '\0';
    struct caption_clean_info info;
    const char *out = clean(in, &info);
    assert_int_equal(info.truncated, 1);
    assert_true(strlen(out) <= CAPTION_MAX_BYTES);
    // A multi-byte character straddling the limit is not cut in half.
    for (size_t i = 0; i < n; i++) in[i] = "\xe2\x82\xac"[i % 3];
    out = clean(in, &info);
    assert_int_equal(info.invalid_utf8, 0);
    assert_int_equal(strlen(out) % 3, 0);
    free(in);
    assert_string_equal(clean("short", &info), "short");
    assert_int_equal(info.truncated, 0);
}

static void random_bytes_never_crash(void **state) {
    char in[3000];
    unsigned x = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(x % sizeof in);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            in[i] = (char)(x >> 16);
        }
        char out[CAPTION_MAX_BYTES + 1];
        struct caption_clean_info info;
        size_t len = caption_clean(out, in, n, &info);
        assert_true(len <= CAPTION_MAX_BYTES && out[len] == '\0');
        struct token tok[TOKENS_MAX];
        int nt = tokenize(out, len, tok, TOKENS_MAX);
        for (int t = 0; t < nt; t++) assert_true(tok[t].start + tok[t].len <= len);
    }
}

static int words(const char *text, struct token *tok, char out[][32]) {
    int n = tokenize(text, strlen(text), tok, TOKENS_MAX);
    for (int i = 0; i < n; i++) {
        snprintf(out[i], 32, "%.*s", tok[i].len, text + tok[i].start);
    }
    return n;
}

static void tokenising(void **state) {
    struct token tok[TOKENS_MAX];
    char w[16][32];
    int n = words("men's cotton t-shirt, navy-blue (size xl)", tok, w);
    assert_int_equal(n, 6);
    assert_string_equal(w[0], "men");
    assert_true(tok[0].flags & TOKEN_POSSESSIVE);
    assert_string_equal(w[1], "cotton");
    assert_false(tok[1].flags & TOKEN_BOUNDARY_BEFORE);
    assert_string_equal(w[2], "t-shirt");
    assert_true(tok[2].flags & TOKEN_HYPHEN);
    assert_string_equal(w[3], "navy-blue");
    assert_true(tok[3].flags & TOKEN_BOUNDARY_BEFORE);
    assert_string_equal(w[4], "size");
    assert_true(tok[4].flags & TOKEN_BOUNDARY_BEFORE);
    assert_string_equal(w[5], "xl");
    assert_false(tok[5].flags & TOKEN_BOUNDARY_BEFORE);

    n = words("the dogs' toys - 12 pcs o'clock u.s. ice-cream -- end", tok, w);
    assert_int_equal(n, 9);
    assert_string_equal(w[1], "dogs");
    assert_true(tok[1].flags & TOKEN_POSSESSIVE);
    assert_false(tok[2].flags & TOKEN_BOUNDARY_BEFORE);  // the apostrophe is not punctuation
    assert_true(tok[3].flags & TOKEN_BOUNDARY_BEFORE);   // " - "
    assert_true(tok[3].flags & TOKEN_DIGIT);
    assert_string_equal(w[5], "o'clock");
    assert_string_equal(w[6], "u.s");
    assert_string_equal(w[7], "ice-cream");
    assert_string_equal(w[8], "end");
    assert_true(tok[8].flags & TOKEN_BOUNDARY_BEFORE);

    assert_int_equal(tokenize("", 0, tok, TOKENS_MAX), 0);
    assert_int_equal(tokenize("--- ,,, !!", 10, tok, TOKENS_MAX), 0);
    assert_int_equal(tokenize("a b c d e", 9, tok, 3), 3);  // at most max tokens
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lowercase_and_whitespace),
        cmocka_unit_test(url_unquoting),
        cmocka_unit_test(html_entities_and_tags),
        cmocka_unit_test(invalid_utf8_repaired_and_counted),
        cmocka_unit_test(long_captions_truncated),
        cmocka_unit_test(random_bytes_never_crash),
        cmocka_unit_test(tokenising),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
