// libFuzzer target: caption cleaning and labelling (text/clean.h, text/labeler.h), both
// labeller modes, and the sample reader's .txt/.cls checks, on any bytes. The cleaned caption
// must be what clean.h promises (valid UTF-8, no upper-case ASCII, single spaces, never longer
// than the input), and every hit a noun synset id.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "data/sample_reader.h"
#include "text/clean.h"
#include "text/labeler.h"

static void check_clean(const char *s, size_t n) {
    if (strlen(s) != n) __builtin_trap();
    if (n && (s[0] == ' ' || s[n - 1] == ' ')) __builtin_trap();
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') __builtin_trap();
        if (c < 0x20 || c == 0x7f) __builtin_trap();
        if (c == ' ' && s[i + 1] == ' ') __builtin_trap();
        if (c < 0x80) {
            i++;
            continue;
        }
        int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (!len || c > 0xf4 || i + (size_t)len > n) __builtin_trap();
        for (int k = 1; k < len; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80) __builtin_trap();
        i += (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct labeler *labelers[2];
    if (!labelers[0]) {
        log_set_level(LOG_ERROR);
        labelers[0] = labeler_create(NULL, LABELER_NOUNS);
        labelers[1] = labeler_create(NULL, LABELER_CORENET);
        if (!labelers[0] || !labelers[1]) abort();  // needs wordnet-base
    }
    const char *caption = (const char *)data;
    char out[CAPTION_MAX_BYTES + 1];
    struct caption_clean_info info;
    size_t n = caption_clean(out, caption, size, &info);
    if (n > CAPTION_MAX_BYTES || (n > size)) __builtin_trap();
    if (info.truncated != (size > CAPTION_MAX_BYTES)) __builtin_trap();
    check_clean(out, n);
    // What the sample reader checks of a .txt and a .cls member before labelling.
    caption_is_usable(caption, size);
    long cls;
    if (parse_class_member(caption, size, &cls) == 0 && (cls > 1000000000L || cls < -1000000000L)) __builtin_trap();
    static struct synset_hit hits[LABELER_MAX_HITS];
    for (int m = 0; m < 2; m++) {
        int k = labeler_label(labelers[m], caption, size, hits, LABELER_MAX_HITS);
        if (k < 0 || k > LABELER_MAX_HITS) __builtin_trap();
        for (int i = 0; i < k; i++) {
            if (hits[i].id[0] != 'n' || strlen(hits[i].id) != 9 || !hits[i].lemma || !hits[i].matched)
                __builtin_trap();
            for (int j = 0; j < i; j++)
                if (hits[j].offset == hits[i].offset) __builtin_trap();  // distinct
        }
    }
    return 0;
}
