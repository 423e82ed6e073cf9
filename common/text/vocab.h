// The synset vocabulary: which WordNet noun synsets are classes, in which order.
//
// File format (TSV, UTF-8, written by `catlip vocab build`):
//     # catlip vocabulary: min_count=100 max_size=24320 captions=1234567 labeler=nouns source=data/{00000..00099}.tar
//     n02084071<TAB>dog<TAB>123456
//     n03397947<TAB>frisbee<TAB>2345
//     ...
// One synset per line: `n` + 8-digit data.noun offset, the synset's head word, its count in the
// source captions. Lines are sorted by count descending, then id; line order is class order.
// Lines starting with '#' are comments (the first one records how the file was made); blank
// lines are ignored.
//
// Reading validates every line and fails with one error naming the file and line on: a wrong
// number of fields, a malformed id, an empty lemma, a count that is not a positive integer, a
// duplicate id (naming both lines), an id that is not a noun synset of the WordNet database
// (checked against data.noun: the offset must start a synset line), and an empty vocabulary.
//
// Example:
//     struct vocab *v = vocab_load("vocab.tsv");
//     if (!v) catlip_die("%s", catlip_error());
//     int k = vocab_index(v, "n02084071");   // class index of dog, or -1
#pragma once
#include <stddef.h>
#include <stdint.h>

struct vocab;

// Loads and validates `path` against the WordNet database in /usr/share/wordnet.
// NULL + catlip_error_set("path:line: ...") on error.
struct vocab *vocab_load(const char *path);
// The same, against the database in `wordnet_dir` (NULL: /usr/share/wordnet).
struct vocab *vocab_load_wordnet(const char *path, const char *wordnet_dir);
void vocab_free(struct vocab *vocab);

int vocab_size(const struct vocab *vocab);
// Class index of a synset id ("n02084071"), or -1 when it is not in the vocabulary.
int vocab_index(const struct vocab *vocab, const char *synset_id);
// The same for a data.noun offset (what labeler_label returns in synset_hit.offset).
int vocab_index_offset(const struct vocab *vocab, uint32_t offset);
// Id ("n02084071"), head word and count of class `index` (0 <= index < vocab_size).
const char *vocab_id(const struct vocab *vocab, int index);
const char *vocab_lemma(const struct vocab *vocab, int index);
uint64_t vocab_count(const struct vocab *vocab, int index);
// The header comment (first '#' line, without "# "), "" when none.
const char *vocab_header(const struct vocab *vocab);

// A stable 64-bit hash of the ordered id list: FNV-1a 64 over "n02084071\n" for every class in
// order. Checkpoints record it; the same ids in the same order give the same hash on any machine.
uint64_t vocab_hash(const struct vocab *vocab);

// One row for vocab_write.
struct vocab_row {
    uint32_t offset;
    const char *lemma;
    uint64_t count;
};

// Sorts rows by count descending, then offset ascending (the file order).
void vocab_sort_rows(struct vocab_row *rows, size_t count);
// Writes `header` (one line, without '#') and the rows to `path` atomically (temporary file,
// then rename). Returns 0, or -1 with catlip_error naming the file.
int vocab_write(const char *path, const char *header, const struct vocab_row *rows, size_t count);
