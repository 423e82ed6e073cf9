// Noun decisions: which words of a caption are used as nouns.
//
// A small hidden-Markov tagger over four open classes (noun, verb, adjective, adverb) with
// the closed-class words (determiners, numbers, prepositions, conjunctions, pronouns,
// auxiliaries, "to") observed directly:
// - emission: P(class | word) from WordNet itself — the SemCor tag counts (cntlist.rev) of the
//   word's base forms in each part of speech, +1 smoothing, and 0 for a part of speech WordNet
//   does not list the word in (so "grass" can only be a noun or a verb, "black" a noun or an
//   adjective, "catching" mostly a verb); divided by the class prior;
// - transition: a hand-set table of English class bigrams (determiner -> adjective/noun,
//   adjective -> noun, noun -> preposition, verb -> determiner, "to" -> verb, ...), tuned for
//   alt-text's noun phrases;
// - Viterbi picks the best class sequence; punctuation restarts the sequence.
// So "dog catching frisbee" -> dog/N catching/V frisbee/N; "a black dog on the grass" ->
// a/D black/A dog/N on/P the/D grass/N. No training data or network access is needed.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "text/wordnet.h"

// Closed word classes. WORD_OPEN: a content word (tagged by the model).
enum word_class {
    WORD_OPEN = 0,
    WORD_DETERMINER,   // a, the, this, my, some, two, 3, first, ...
    WORD_PREPOSITION,  // in, on, with, of, ...
    WORD_CONJUNCTION,  // and, or, but, while, ...
    WORD_PRONOUN,      // he, she, it, who, there, ...
    WORD_AUXILIARY,    // is, are, was, can, will, ...
    WORD_TO,           // to
    WORD_ADVERB,       // very, not, also, just, ...
};

// The closed class of a lowercase word, or WORD_OPEN.
enum word_class word_class_of(const char *word, size_t len);

// One word of a caption as seen by the tagger.
struct noun_word {
    const char *text;               // the word as written (lowercase), for morphology
    size_t len;
    uint8_t token_flags;            // TOKEN_* (tokenize.h)
    uint8_t compound;               // 1: a multi-word WordNet noun ("ice cream"): always a noun
    uint8_t no_label;               // 1: never a label (numbers, single letters, unknown words)
    const char *lookup;             // the WordNet form to use (text, or a variant such as
    size_t lookup_len;              //   "ice_cream" for "ice-cream"); NULL: not in WordNet
};

// Decides is_noun[i] for each of the n words (1: used as a noun). Thread-safe.
void nouns_decide(const struct wordnet *wn, const struct noun_word *words, int n, uint8_t *is_noun);
