// Caption -> synsets (see labeler.h).
#include "text/labeler.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/check.h"
#include "text/nouns.h"
#include "text/tokenize.h"

// Longest compound tried, in words (WordNet has a handful of 6+ word nouns; none matter here).
#define COMPOUND_MAX_WORDS 5

struct labeler {
    struct wordnet *wn;
    enum labeler_mode mode;
};

struct labeler *labeler_create(const char *wordnet_dir, enum labeler_mode mode) {
    if (mode != LABELER_NOUNS && mode != LABELER_CORENET) {
        catlip_error_set("unknown labeler mode %d", (int)mode);
        return NULL;
    }
    struct wordnet *wn = wordnet_load(wordnet_dir);
    if (!wn) return NULL;
    struct labeler *lab = xcalloc(1, sizeof *lab);
    lab->wn = wn;
    lab->mode = mode;
    return lab;
}

void labeler_free(struct labeler *labeler) {
    if (!labeler) return;
    wordnet_free(labeler->wn);
    free(labeler);
}

const struct wordnet *labeler_wordnet(const struct labeler *labeler) { return labeler->wn; }
enum labeler_mode labeler_mode_of(const struct labeler *labeler) { return labeler->mode; }

int labeler_mode_parse(const char *name) {
    if (!strcmp(name, "nouns")) return LABELER_NOUNS;
    if (!strcmp(name, "corenet")) return LABELER_CORENET;
    return -1;
}

static int emit_hit(const struct wordnet *wn, const struct wordnet_entry *e, struct synset_hit *out,
                    int n, int max_out) {
    for (int k = 0; k < n; k++)
        if (out[k].offset == e->noun_offset) return n;
    if (n >= max_out) return n;
    out[n].offset = e->noun_offset;
    snprintf(out[n].id, sizeof out[n].id, "n%08u", e->noun_offset);
    out[n].lemma = wordnet_synset_word(wn, e->noun_offset);
    out[n].matched = e->lemma;
    return n + 1;
}

// Any POS at all for this string (after morphology)?
static int known_word(const struct wordnet *wn, const char *w, size_t len) {
    const struct wordnet_entry *base[1];
    for (int pos = 0; pos < 4; pos++)
        if (wordnet_morph(wn, w, len, (enum wordnet_pos)pos, base, 1)) return 1;
    return 0;
}

// The WordNet spelling of one word: as written; for hyphenated words also with '_' for '-'
// ("ice-cream" -> ice_cream) or without ("e-mail" -> email). Writes into buf; returns its length,
// 0 when WordNet knows no variant.
// A spelling that is a noun wins over one that is only another part of speech ("close-up" is an
// adjective, "closeup" the noun).
static size_t word_variant(const struct wordnet *wn, const char *w, size_t len, char *buf, int hyphen) {
    if (len >= WORDNET_WORD_MAX) return 0;
    memcpy(buf, w, len);
    if (!hyphen) return known_word(wn, buf, len) ? len : 0;
    char forms[3][WORDNET_WORD_MAX];
    size_t form_len[3] = {len, len, 0};
    memcpy(forms[0], w, len);
    for (size_t i = 0; i < len; i++) forms[1][i] = w[i] == '-' ? '_' : w[i];
    for (size_t i = 0; i < len; i++)
        if (w[i] != '-') forms[2][form_len[2]++] = w[i];
    int known = -1;
    for (int f = 0; f < 3; f++) {
        const struct wordnet_entry *base[1];
        if (wordnet_morph(wn, forms[f], form_len[f], WORDNET_NOUN, base, 1)) {
            known = f;
            break;
        }
        if (known < 0 && known_word(wn, forms[f], form_len[f])) known = f;
    }
    if (known < 0) return 0;
    memcpy(buf, forms[known], form_len[known]);
    return form_len[known];
}

// The noun lemma of a form, or NULL. WordNet's morphy order puts the form itself first when it
// is a lemma, which is right for pluralia tantum ("glasses", "shorts", "clothes") but not for
// plurals that happen to be rare lemmas of their own ("men": a work force, "hands": workers).
// So the base form wins when SemCor counts it more than PLURAL_LEMMA_RATIO times as often as the
// form itself (glasses 4 / glass 39 stays "glasses"; men 35 / man 1293 becomes "man").
#define PLURAL_LEMMA_RATIO 20
static const struct wordnet_entry *noun_base(const struct wordnet *wn, const char *w, size_t len) {
    const struct wordnet_entry *base[4];
    int n = wordnet_morph(wn, w, len, WORDNET_NOUN, base, 4);
    if (n == 0) return NULL;
    if (base[0]->len == len && n > 1) {
        // An irregular plural from noun.exc ("oxen") goes to its base unless it is the more
        // frequent lemma itself.
        int irregular = base[0]->exc_count[WORDNET_NOUN] > 0;
        for (int k = 1; k < n; k++) {
            uint64_t b = base[k]->count[WORDNET_NOUN], f = base[0]->count[WORDNET_NOUN];
            if (b > PLURAL_LEMMA_RATIO * f || (irregular && b >= f)) return base[k];
        }
    }
    return base[0];
}

// Keys still alive in the compound search: each is a noun lemma or the prefix of one.
#define COMPOUND_KEYS 4
struct compound_key {
    char text[WORDNET_WORD_MAX];
    size_t len;
};

// The longest WordNet noun made of words i, i+1, ... (joined by '_', or by '-' where WordNet
// hyphenates: "ice-cream_cone"; "valentine's day" also as "valentine's_day"). Returns the
// number of words matched (1: none) and the lemma in *match.
static int match_compound(const struct wordnet *wn, const char *text, const struct token *tok, int ntok,
                          int i, const char *const *lookup, const size_t *lookup_len, const uint8_t *closed,
                          const struct wordnet_entry **match) {
    struct compound_key keys[COMPOUND_KEYS], next[COMPOUND_KEYS];
    int nkeys = 1, span = 1;
    memcpy(keys[0].text, lookup[i], lookup_len[i]);
    keys[0].len = lookup_len[i];
    // A hyphenated first word also as written ("ice-cream" of "ice-cream_cone").
    if ((tok[i].flags & TOKEN_HYPHEN) && tok[i].len < WORDNET_WORD_MAX &&
        (tok[i].len != lookup_len[i] || memcmp(text + tok[i].start, lookup[i], tok[i].len))) {
        memcpy(keys[1].text, text + tok[i].start, tok[i].len);
        keys[1].len = tok[i].len;
        nkeys = 2;
    }
    for (int k = 1; k < COMPOUND_MAX_WORDS && i + k < ntok && nkeys > 0; k++) {
        int j = i + k;
        if ((tok[j].flags & TOKEN_BOUNDARY_BEFORE) || closed[j] || !lookup[j]) break;
        int nnext = 0, found = 0;
        for (int c = 0; c < nkeys; c++) {
            for (int variant = 0; variant < 2; variant++) {
                struct compound_key base = keys[c];
                if (variant == 1) {  // the possessive written out
                    if (!(tok[j - 1].flags & TOKEN_POSSESSIVE) || base.len + 2 >= WORDNET_WORD_MAX) continue;
                    memcpy(base.text + base.len, "'s", 2);
                    base.len += 2;
                }
                const struct wordnet_entry *p = wordnet_lookup(wn, base.text, base.len);
                if (!p || !(p->flags & WORDNET_PREFIX) || base.len + 1 + lookup_len[j] >= WORDNET_WORD_MAX)
                    continue;
                for (const char *joiner = "_-"; *joiner; joiner++) {
                    struct compound_key key = base;
                    key.text[key.len] = *joiner;
                    memcpy(key.text + key.len + 1, lookup[j], lookup_len[j]);
                    key.len += 1 + lookup_len[j];
                    const struct wordnet_entry *e = noun_base(wn, key.text, key.len);
                    const struct wordnet_entry *q = wordnet_lookup(wn, key.text, key.len);
                    if (e && !found) {
                        *match = e;
                        span = k + 1;
                        found = 1;
                    }
                    if ((e || (q && (q->flags & WORDNET_PREFIX))) && nnext < COMPOUND_KEYS) next[nnext++] = key;
                }
            }
        }
        memcpy(keys, next, (size_t)nnext * sizeof *next);
        nkeys = nnext;
    }
    return span;
}

static int label_corenet(const struct wordnet *wn, const char *text, const struct token *tok, int ntok,
                         struct synset_hit *out, int max_out) {
    int n = 0;
    for (int i = 0; i < ntok; i++) {
        const char *w = text + tok[i].start;
        const struct wordnet_entry *base[8];
        int nb = wordnet_morph(wn, w, tok[i].len, WORDNET_NOUN, base, 8);
        if (!nb) continue;
        const struct wordnet_entry *lemma = base[0];  // WordNetLemmatizer: the shortest base
        for (int k = 1; k < nb; k++)
            if (base[k]->len < lemma->len) lemma = base[k];
        const char *head = wordnet_synset_word(wn, lemma->noun_offset);
        // NLTK lowercases synset names: "Frisbee" names frisbee.n.01, "Kenya" kenya.n.01.
        if (head && !strcasecmp(head, lemma->lemma)) n = emit_hit(wn, lemma, out, n, max_out);
    }
    return n;
}

int labeler_label_info(struct labeler *labeler, const char *caption, size_t len,
                       struct synset_hit *out, int max_out, struct caption_clean_info *info) {
    const struct wordnet *wn = labeler->wn;
    char text[CAPTION_MAX_BYTES + 1];
    size_t text_len = caption_clean(text, caption, len, info);
    struct token tok[TOKENS_MAX];
    int ntok = tokenize(text, text_len, tok, TOKENS_MAX);
    if (labeler->mode == LABELER_CORENET) return label_corenet(wn, text, tok, ntok, out, max_out);

    // Per word: its WordNet spelling (kept in one scratch buffer) and whether it is closed-class.
    char spell[CAPTION_MAX_BYTES + TOKENS_MAX];
    size_t spell_used = 0;
    const char *lookup[TOKENS_MAX];
    size_t lookup_len[TOKENS_MAX];
    uint8_t closed[TOKENS_MAX];
    for (int i = 0; i < ntok; i++) {
        const char *w = text + tok[i].start;
        closed[i] = word_class_of(w, tok[i].len) != WORD_OPEN;
        lookup[i] = NULL;
        lookup_len[i] = 0;
        if (closed[i] || (tok[i].flags & (TOKEN_DIGIT | TOKEN_NON_ASCII)) || tok[i].len < 2) continue;
        size_t n = word_variant(wn, w, tok[i].len, spell + spell_used, tok[i].flags & TOKEN_HYPHEN);
        if (n) {
            lookup[i] = spell + spell_used;
            lookup_len[i] = n;
            spell_used += n;
        }
    }

    // Compounds (longest match from the left) and single words, as tagger input.
    struct noun_word words[TOKENS_MAX];
    const struct wordnet_entry *compound_entry[TOKENS_MAX];
    int nwords = 0;
    for (int i = 0; i < ntok;) {
        int span = 1;
        const struct wordnet_entry *match = NULL;
        if (lookup[i]) span = match_compound(wn, text, tok, ntok, i, lookup, lookup_len, closed, &match);
        struct noun_word *w = &words[nwords];
        w->text = text + tok[i].start;
        w->len = tok[i].len;
        w->token_flags = tok[i].flags;
        if (span > 1) {
            w->token_flags = (uint8_t)((tok[i].flags & TOKEN_BOUNDARY_BEFORE) |
                                       (tok[i + span - 1].flags & TOKEN_POSSESSIVE));
            w->len = (size_t)(tok[i + span - 1].start + tok[i + span - 1].len - tok[i].start);
        }
        w->compound = span > 1;
        w->lookup = span > 1 ? match->lemma : lookup[i];
        w->lookup_len = span > 1 ? match->len : lookup_len[i];
        w->no_label = !closed[i] && (lookup[i] == NULL);
        compound_entry[nwords] = span > 1 ? match : NULL;
        nwords++;
        i += span;
    }

    uint8_t is_noun[TOKENS_MAX];
    nouns_decide(wn, words, nwords, is_noun);
    int n = 0;
    for (int i = 0; i < nwords; i++) {
        if (!is_noun[i]) continue;
        const struct wordnet_entry *e = compound_entry[i] ? compound_entry[i]
                                                          : noun_base(wn, words[i].lookup, words[i].lookup_len);
        if (e) n = emit_hit(wn, e, out, n, max_out);
    }
    return n;
}

int labeler_label(struct labeler *labeler, const char *caption, size_t len, struct synset_hit *out,
                  int max_out) {
    return labeler_label_info(labeler, caption, len, out, max_out, NULL);
}
