// Transfer Init (CatLIP §4.2): a downstream classifier head from the pretrained synset head.
//
// Each downstream class is a line of a classes file:
//   n02084071              a WordNet noun synset id (ImageNet style); text after the id and a
//   n02084071 dog          space or tab is the class's display name
//   golden retriever       a name: first tried whole as a WordNet noun lemma ("golden_retriever",
//                          with WordNet morphology: "ankle boots" -> ankle_boot), else through
//                          the caption labeller (labeler.h), which may give several synsets
// Blank lines and lines starting with '#' are skipped; the remaining lines are the classes, in
// order (class index = position).
//
// Each synset of a class that is in the vocabulary uses its own head row ("exact"); one that
// is not takes the row of its nearest vocabulary synset by WordNet path similarity
// (hypernyms.h; ties to the more frequent synset), reported as "nearest". A class's weight and
// bias are the mean over its distinct rows. A class with no synset at all (unknown id, a name
// with no noun) gets a random row: weights drawn N(0, s^2) with s the RMS of the pretrained
// head's weights, and the mean pretrained bias — so it neither wins nor loses every argmax
// by its scale alone — reported as "random".
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "text/hypernyms.h"
#include "text/labeler.h"
#include "text/vocab.h"

#define TRANSFER_MAX_SYNSETS 16
#define TRANSFER_NAME_MAX 256

enum transfer_how {
    TRANSFER_ID = 0,   // the line was a synset id
    TRANSFER_NAME,     // a name that is a WordNet noun lemma
    TRANSFER_CAPTION,  // a name labelled like a caption (possibly several synsets)
    TRANSFER_RANDOM,   // nothing matched
};

struct transfer_synset {
    char id[10];        // the class's synset, "n%08u"
    const char *lemma;  // its head word (owned by the labeller's WordNet)
    int row;            // the vocabulary row used for it
    double similarity;  // 1.0 when the synset is in the vocabulary, else the path similarity
                        //   of the nearest vocabulary synset (vocab_id(v, row))
};

struct transfer_class {
    char name[TRANSFER_NAME_MAX];  // display name (the line, or the text after the id)
    enum transfer_how how;
    int nsynsets;
    struct transfer_synset synsets[TRANSFER_MAX_SYNSETS];
    int nearest;  // how many synsets took a nearest row
};

struct transfer_matcher;

// Loads WordNet's hypernyms (wordnet_dir NULL: /usr/share/wordnet) for `labeler`'s WordNet.
// The labeller and vocabulary must outlive the matcher. NULL + catlip_error() on error.
struct transfer_matcher *transfer_matcher_create(struct labeler *labeler, const struct vocab *vocab,
                                                 const char *wordnet_dir);
void transfer_matcher_free(struct transfer_matcher *m);

// Matches one class line (as described above) into *out. Never fails: an unmatched line gives
// how = TRANSFER_RANDOM with no synsets.
void transfer_match(struct transfer_matcher *m, const char *line, struct transfer_class *out);

// Every noun sense (data.noun offsets) of a class name taken whole as a WordNet lemma and of
// its morphological base forms, in WordNet's order, base forms in morphy order; no duplicates.
// Writes at most max and returns how many (0: not a noun lemma).
int transfer_name_senses(const struct transfer_matcher *m, const char *name, uint32_t *out,
                         int max);
// The matcher's WordNet and hypernym graph (for head building above text/).
const struct wordnet *transfer_matcher_wordnet(const struct transfer_matcher *m);
const struct hypernyms *transfer_matcher_hypernyms(const struct transfer_matcher *m);

// The lines of a classes file that name classes (blank lines and '#' lines skipped), trimmed,
// in order. Returns the count (> 0) with *lines malloc'ed (free with transfer_class_lines_free),
// or -1 with catlip_error() (unreadable, no classes).
int transfer_read_class_lines(const char *path, char ***lines);
void transfer_class_lines_free(char **lines, int count);
// The synset offset a class line starts with ("n02084071 dog": 2084071, with *name pointing at
// "dog", or at "" when nothing follows the id); 0 when the line does not start with an id.
uint32_t transfer_line_synset(const char *line, const char **name);

// Reads a classes file and matches every class. Returns the number of classes (> 0) with
// *classes malloc'ed, or -1 with catlip_error() (unreadable, no classes).
int transfer_match_file(struct transfer_matcher *m, const char *path,
                        struct transfer_class **classes);

// The head: weight (K, C) and bias (K) from the pretrained head_w (V, C), head_b (V), as
// described above; random rows use rng_key(seed, class index, 0, 0).
void transfer_build_head(const struct transfer_class *classes, int K, const float *head_w,
                         const float *head_b, int V, int C, uint64_t seed, float *weight,
                         float *bias);

const char *transfer_how_name(enum transfer_how how);  // "id", "name", "caption", "random"
// "n02084071 dog" or "n02121620 cat -> n02121808 domestic_cat (path similarity 0.500)", for
// the report table.
void transfer_format_synset(const struct vocab *vocab, const struct transfer_synset *s, char *buf,
                            size_t size);
