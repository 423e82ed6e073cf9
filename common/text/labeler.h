// Caption -> WordNet noun synsets: CatLIP's labels.
//
// labeler_label runs, for one caption:
//   caption_clean (clean.h) -> tokenize (tokenize.h) -> WordNet compounds, longest first
//   ("hot dog", "ice cream", "traffic lights": consecutive words whose '_'-joined form,
//   last word inflected, is a noun lemma; never across punctuation, never through a closed-class
//   word) -> noun decisions (nouns.h) -> base form by WordNet morphology (wordnet.h: "mice" ->
//   mouse, "children" -> child) -> the lemma's first noun sense, as `n%08u`.
//
// Modes:
//   LABELER_NOUNS    the above (default).
//   LABELER_CORENET  the reference implementation's rule, for comparison: every token (no
//                    part-of-speech filter, no compounds), lemmatised as a noun the way NLTK's
//                    WordNetLemmatizer does (shortest base form), kept only when its first noun
//                    synset is named after the word itself (NLTK name `word.n.01`, i.e. the
//                    synset's head word is the lemma, ignoring case as NLTK's lowercased
//                    names do: "Frisbee" counts for frisbee). Cross-checked against NLTK by
//                    tests/text/nltk_crosscheck.py.
//
// Thread safety: a labeler is read-only after labeler_create; any number of threads may call
// labeler_label on the same labeler at once (all scratch space is on the caller's stack,
// ~70 kB).
//
// Example:
//     struct labeler *lab = labeler_create(NULL, LABELER_NOUNS);
//     struct synset_hit hits[LABELER_MAX_HITS];
//     int n = labeler_label(lab, "dog catching frisbee", 20, hits, LABELER_MAX_HITS);
//     // n == 2: hits[0].id "n02084071" (dog), hits[1].id "n03381126" (frisbee)
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "text/clean.h"
#include "text/wordnet.h"

enum labeler_mode { LABELER_NOUNS = 0, LABELER_CORENET = 1 };

// Enough room for every distinct synset of any caption (a 1024-byte caption has < 512 words).
#define LABELER_MAX_HITS 512

struct synset_hit {
    uint32_t offset;     // byte offset of the synset in data.noun
    char id[10];         // "n%08u", NUL-terminated
    const char *lemma;   // the synset's head word as in data.noun ("dog", "hotdog", "Paris");
                         //   owned by the labeler
    const char *matched; // the WordNet lemma the caption matched ("hot_dog", "mouse")
};

struct labeler;

// Loads WordNet from `wordnet_dir` (NULL: /usr/share/wordnet). NULL + catlip_error on error.
struct labeler *labeler_create(const char *wordnet_dir, enum labeler_mode mode);
void labeler_free(struct labeler *labeler);

// Labels caption[0..len) (any bytes). Writes the distinct synsets, in order of first
// appearance, to out[0..max_out) and returns how many were written (0 when none).
int labeler_label(struct labeler *labeler, const char *caption, size_t len, struct synset_hit *out,
                  int max_out);
// The same, also reporting what cleaning repaired (invalid UTF-8, truncation); info may be NULL.
int labeler_label_info(struct labeler *labeler, const char *caption, size_t len,
                       struct synset_hit *out, int max_out, struct caption_clean_info *info);

// The WordNet tables the labeler uses (for synset indices and head words).
const struct wordnet *labeler_wordnet(const struct labeler *labeler);
enum labeler_mode labeler_mode_of(const struct labeler *labeler);
// "nouns" / "corenet" -> mode; -1 when unknown.
int labeler_mode_parse(const char *name);
