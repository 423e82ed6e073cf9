// Tokenising a cleaned caption (clean.h) into words.
//
// A word is a run of letters, digits and non-ASCII characters, with single '-', '\'' or '.'
// inside it ("t-shirt", "o'clock", "u.s"). A trailing possessive "'s" (or a lone trailing "'")
// is removed and recorded. Every other character (punctuation, '&', '/', ...) separates words
// and marks a boundary: compounds are never matched across one, and the noun tagger restarts
// its context there.
//
// Example: "men's cotton t-shirt, navy" -> men (possessive) | cotton | t-shirt | navy (boundary)
#pragma once
#include <stddef.h>
#include <stdint.h>

// Most words kept from one caption (a 1024-byte caption has at most 512).
#define TOKENS_MAX 512

#define TOKEN_BOUNDARY_BEFORE 1u  // punctuation between this word and the one before
#define TOKEN_POSSESSIVE 2u       // the word carried "'s" or a trailing "'"
#define TOKEN_DIGIT 4u            // the word contains a digit
#define TOKEN_NON_ASCII 8u        // the word contains a non-ASCII character
#define TOKEN_HYPHEN 16u          // the word contains '-'

struct token {
    uint16_t start;  // byte offset in the cleaned caption
    uint16_t len;
    uint8_t flags;   // TOKEN_*
};

// Splits text[0..len) into at most max tokens; returns the count (words past max are dropped).
int tokenize(const char *text, size_t len, struct token *out, int max);
