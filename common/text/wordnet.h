// WordNet 3.0 in memory: every lemma of the four index files in one hash table, with its
// first noun synset, per-part-of-speech sense counts and SemCor tag counts, the exception
// lists (noun.exc, verb.exc, adj.exc, adv.exc) and WordNet's detachment rules, so that
// looking a word up costs a hash probe instead of a file seek.
//
// Read from the database files themselves (formats in wndb(5WN), cntlist(5WN)):
// index.{noun,verb,adj,adv}, *.exc, cntlist.rev and data.noun (for the head word of each noun
// synset). Loading takes ~0.3 s and ~60 MB; afterwards the table is read-only, so any number
// of threads may use one `struct wordnet` concurrently.
//
// Synset ids are `n` + the 8-digit byte offset of the synset in data.noun (`n02084071` is
// dog.n.01), the ids ImageNet uses.
//
// Example:
//     struct wordnet *wn = wordnet_load(NULL);           // /usr/share/wordnet
//     const struct wordnet_entry *base[4];
//     int n = wordnet_morph(wn, "mice", 4, WORDNET_NOUN, base, 4);   // base[0]->lemma "mouse"
//     printf("n%08u\n", base[0]->noun_offset);                       // n02330245
#pragma once
#include <stddef.h>
#include <stdint.h>

#define WORDNET_DEFAULT_DIR "/usr/share/wordnet"
// Longest lemma (bytes) looked up; longer words are never WordNet lemmas (the longest is 71).
#define WORDNET_WORD_MAX 96

enum wordnet_pos { WORDNET_NOUN = 0, WORDNET_VERB = 1, WORDNET_ADJ = 2, WORDNET_ADV = 3 };

// Flag: this string followed by '_' or '-' begins a longer noun collocation ("hot" of "hot_dog",
// "hot_dog" of "hot_dog_bun"), so a compound search should look one word further.
#define WORDNET_PREFIX 1u

struct wordnet_entry {
    const char *lemma;       // lowercase, words joined by '_' as in the index files
    uint32_t len;
    uint32_t hash;
    uint32_t noun_offset;    // offset of the first (most frequent) noun sense; 0: not a noun lemma
    uint32_t count[4];       // SemCor tag counts summed over this lemma's senses, per POS
    uint16_t senses[4];      // number of senses per POS (0: not a lemma of that POS)
    uint32_t exc_first[4];   // exception-list bases of this form, per POS: exc_first..+exc_count
    uint16_t exc_count[4];   //   (indices into the table's exception array)
    uint8_t flags;           // WORDNET_PREFIX
    uint8_t exc_forms;       // bit pos set: this form has a line in that POS's exception list
                             //   (then only its listed bases are its base forms, as in morphy)
    const char *noun_senses_text;  // index.noun's synset offsets ("02913152 00911048 ..."),
                                   //   senses[NOUN] of them; read through wordnet_noun_senses
};

struct wordnet;

// Loads the database in `dir` (NULL: WORDNET_DEFAULT_DIR). NULL + catlip_error_set naming the
// file on error.
struct wordnet *wordnet_load(const char *dir);
void wordnet_free(struct wordnet *wn);

// The entry for exactly this string (lowercase, '_' between words), or NULL.
const struct wordnet_entry *wordnet_lookup(const struct wordnet *wn, const char *word, size_t len);

// Base forms of `word` that are lemmas of `pos`, in WordNet morphy order: the word itself when
// it is a lemma, then its exception-list bases, then the detachment rules (nouns: -s -ses -xes
// -zes -ches -shes -men -ies; verbs: -s -ies -es -ed -ing; adjectives: -er -est; adverbs:
// exceptions only). In a collocation ("traffic_lights") the last word is inflected. Writes at
// most `max` distinct entries and returns how many.
int wordnet_morph(const struct wordnet *wn, const char *word, size_t len, enum wordnet_pos pos,
                  const struct wordnet_entry **out, int max);

// The noun senses of `e` (data.noun offsets), in WordNet's order (most frequent first, as
// index.noun lists them). Writes at most max and returns how many.
int wordnet_noun_senses(const struct wordnet_entry *e, uint32_t *out, int max);
// Head word (first lemma, case as in data.noun: "dog", "Paris") of the noun synset at `offset`;
// NULL when no noun synset starts there.
const char *wordnet_synset_word(const struct wordnet *wn, uint32_t offset);
// Number of noun synsets, and a dense index 0..count-1 of a synset (-1 if none at offset),
// ordered by offset. For counting arrays shared between processes.
int wordnet_synset_count(const struct wordnet *wn);
int wordnet_synset_index(const struct wordnet *wn, uint32_t offset);
uint32_t wordnet_synset_offset(const struct wordnet *wn, int index);
// Number of lemmas in the table (all POS, exception-only forms excluded).
int wordnet_lemma_count(const struct wordnet *wn);
