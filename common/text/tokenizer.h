// The CLIP text tower's tokenizer (model.objective clip): captions -> token ids.
//
// Word-level, built from the training captions with counts (`catlip tokenizer build`). A
// caption is cleaned (clean.h) and split into words exactly as the labeller does (tokenize.h:
// lowercase, punctuation dropped, "t-shirt" and "o'clock" one word, a possessive 's removed),
// and each word is looked up; a word not in the file is <unk>. Why words and not CLIP's
// byte-level BPE: alt-text is short and plain (a 32-token context is ~25 words), a word table
// with counts is built in one pass, is readable and verifiable line by line, and shares its
// cleaning with the CatLIP labels, so both objectives see the same text. BPE's advantage,
// no out-of-vocabulary words, matters less when the table comes from the same captions the
// model trains on (words below --min-count are <unk>; their share is printed at build time).
//
// Ids: 0 <pad>, 1 <sot>, 2 <eot>, 3 <unk>, then the file's words in line order from 4.
// Encoding a caption into a context of T ids: <sot> w1 ... wk <eot> <pad>...; when the words do
// not fit, the first T - 2 are kept and <eot> stays last (the text tower reads its features at
// <eot>).
//
// File format (UTF-8 TSV, written atomically by tokenizer_counts_write):
//     # catlip tokenizer: word-level min_count=2 max_words=0 captions=1234 source=data/*.tar
//     dog<TAB>5123
//     frisbee<TAB>211
// The first line must be that header. One word per line, then its count in the source
// captions; sorted by count descending, then bytewise. Reading checks every line and fails with
// one error naming the file and line: not a tokenizer file, a wrong number of fields, a word
// that the caption splitter could not produce (spaces, punctuation, control bytes), a count that
// is not a positive integer, a duplicate word (naming both lines), no word at all.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define TOKENIZER_PAD 0
#define TOKENIZER_SOT 1
#define TOKENIZER_EOT 2
#define TOKENIZER_UNK 3
#define TOKENIZER_SPECIALS 4
#define TOKENIZER_CONTEXT_DEFAULT 32

struct tokenizer;

// NULL + catlip_error_set("path:line: ...") on error.
struct tokenizer *tokenizer_load(const char *path);
void tokenizer_free(struct tokenizer *tok);

// Ids in use: TOKENIZER_SPECIALS + words.
int tokenizer_size(const struct tokenizer *tok);
// "<pad>", "<sot>", "<eot>", "<unk>" or the word of id (0 <= id < size).
const char *tokenizer_word(const struct tokenizer *tok, int id);
// A word's id, TOKENIZER_UNK when it is not in the table.
int tokenizer_id(const struct tokenizer *tok, const char *word, size_t len);
// The header line (without "# ").
const char *tokenizer_header(const struct tokenizer *tok);
// What a checkpoint records: FNV-1a 64 over "catlip-words\n" and every word + "\n" in id
// order. The same words in the same order give the same hash on any machine.
uint64_t tokenizer_hash(const struct tokenizer *tok);

// Encodes a raw caption (any bytes) into ids[0..context) (context >= 2). Returns the number of
// ids before the padding (2 + the words kept); *dropped (may be NULL) gets the words that did
// not fit.
int tokenizer_encode(const struct tokenizer *tok, int32_t *ids, int context, const char *caption,
                     size_t len, int *dropped);

// Word counts for building a tokenizer.
struct tokenizer_counts;

struct tokenizer_counts *tokenizer_counts_create(void);
void tokenizer_counts_free(struct tokenizer_counts *counts);
// Cleans and splits a raw caption, counting each word once per occurrence.
void tokenizer_counts_add_caption(struct tokenizer_counts *counts, const char *caption,
                                  size_t len);
// Distinct words counted, and occurrences in all.
size_t tokenizer_counts_words(const struct tokenizer_counts *counts);
uint64_t tokenizer_counts_total(const struct tokenizer_counts *counts);
// Writes the words counted at least min_count times (at most max_words of them, the most
// frequent, when max_words > 0), with `header` (one line, without '#'). *kept_words and
// *kept_occurrences (may be NULL) get what was written: the rest become <unk>. -1 with
// catlip_error naming the file, or when no word is left.
int tokenizer_counts_write(const struct tokenizer_counts *counts, const char *path,
                           const char *header, uint64_t min_count, size_t max_words,
                           size_t *kept_words, uint64_t *kept_occurrences);
