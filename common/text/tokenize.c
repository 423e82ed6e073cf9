// Word splitting (see tokenize.h).
#include "text/tokenize.h"

static int is_word_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static int is_joiner(unsigned char c) { return c == '-' || c == '\'' || c == '.'; }

int tokenize(const char *text, size_t len, struct token *out, int max) {
    const unsigned char *s = (const unsigned char *)text;
    int n = 0;
    int boundary = 0;
    size_t i = 0;
    while (i < len && n < max) {
        if (!is_word_char(s[i])) {
            if (s[i] != ' ') boundary = 1;
            i++;
            continue;
        }
        size_t start = i;
        uint8_t flags = 0;
        while (i < len) {
            if (is_word_char(s[i])) {
                if (s[i] >= '0' && s[i] <= '9') flags |= TOKEN_DIGIT;
                if (s[i] >= 0x80) flags |= TOKEN_NON_ASCII;
                i++;
            } else if (is_joiner(s[i]) && i + 1 < len && is_word_char(s[i + 1])) {
                if (s[i] == '-') flags |= TOKEN_HYPHEN;
                i++;
            } else {
                break;
            }
        }
        size_t end = i;
        // Possessives: "dog's" -> dog, "dogs'" -> dogs.
        if (end - start > 2 && s[end - 2] == '\'' && s[end - 1] == 's') {
            end -= 2;
            flags |= TOKEN_POSSESSIVE;
        } else if (i < len && s[i] == '\'' && (i + 1 == len || !is_word_char(s[i + 1]))) {
            flags |= TOKEN_POSSESSIVE;
            i++;  // the apostrophe belongs to this word, not a boundary
        }
        if (end - start > 0xFFFF || start > 0xFFFF) break;
        out[n].start = (uint16_t)start;
        out[n].len = (uint16_t)(end - start);
        out[n].flags = (uint8_t)(flags | (boundary && n > 0 ? TOKEN_BOUNDARY_BEFORE : 0));
        n++;
        boundary = 0;
    }
    return n;
}
