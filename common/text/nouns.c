// Noun decisions with a four-class HMM tagger (see nouns.h).
#include "text/nouns.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/check.h"
#include "text/tokenize.h"

struct closed_word {
    const char *word;
    enum word_class cls;
};

// Closed-class words. Many are also WordNet nouns ("a" vitamin A, "in" inch, "it" information
// technology, "are" the unit, "one", "may" the month), which is why they are listed here.
static const struct closed_word closed_words[] = {
    {"a", WORD_DETERMINER}, {"an", WORD_DETERMINER}, {"the", WORD_DETERMINER},
    {"this", WORD_DETERMINER}, {"that", WORD_DETERMINER}, {"these", WORD_DETERMINER},
    {"those", WORD_DETERMINER}, {"my", WORD_DETERMINER}, {"your", WORD_DETERMINER},
    {"his", WORD_DETERMINER}, {"her", WORD_DETERMINER}, {"its", WORD_DETERMINER},
    {"our", WORD_DETERMINER}, {"their", WORD_DETERMINER}, {"some", WORD_DETERMINER},
    {"any", WORD_DETERMINER}, {"no", WORD_DETERMINER}, {"every", WORD_DETERMINER},
    {"each", WORD_DETERMINER}, {"many", WORD_DETERMINER}, {"much", WORD_DETERMINER},
    {"several", WORD_DETERMINER}, {"few", WORD_DETERMINER}, {"all", WORD_DETERMINER},
    {"both", WORD_DETERMINER}, {"other", WORD_DETERMINER}, {"another", WORD_DETERMINER},
    {"such", WORD_DETERMINER}, {"own", WORD_DETERMINER}, {"more", WORD_DETERMINER},
    {"most", WORD_DETERMINER}, {"less", WORD_DETERMINER}, {"least", WORD_DETERMINER},
    {"either", WORD_DETERMINER}, {"neither", WORD_DETERMINER}, {"one", WORD_DETERMINER},
    {"two", WORD_DETERMINER}, {"three", WORD_DETERMINER}, {"four", WORD_DETERMINER},
    {"five", WORD_DETERMINER}, {"six", WORD_DETERMINER}, {"seven", WORD_DETERMINER},
    {"eight", WORD_DETERMINER}, {"nine", WORD_DETERMINER}, {"ten", WORD_DETERMINER},
    {"eleven", WORD_DETERMINER}, {"twelve", WORD_DETERMINER}, {"twenty", WORD_DETERMINER},
    {"thirty", WORD_DETERMINER}, {"fifty", WORD_DETERMINER}, {"hundred", WORD_DETERMINER},
    {"hundreds", WORD_DETERMINER}, {"thousand", WORD_DETERMINER}, {"thousands", WORD_DETERMINER},
    {"million", WORD_DETERMINER}, {"millions", WORD_DETERMINER}, {"billion", WORD_DETERMINER},
    {"first", WORD_DETERMINER}, {"second", WORD_DETERMINER}, {"third", WORD_DETERMINER},
    {"fourth", WORD_DETERMINER}, {"fifth", WORD_DETERMINER}, {"last", WORD_DETERMINER},
    {"next", WORD_DETERMINER}, {"same", WORD_DETERMINER}, {"whose", WORD_DETERMINER},
    {"in", WORD_PREPOSITION}, {"on", WORD_PREPOSITION}, {"at", WORD_PREPOSITION},
    {"of", WORD_PREPOSITION}, {"with", WORD_PREPOSITION}, {"for", WORD_PREPOSITION},
    {"from", WORD_PREPOSITION}, {"by", WORD_PREPOSITION}, {"into", WORD_PREPOSITION},
    {"onto", WORD_PREPOSITION}, {"over", WORD_PREPOSITION}, {"under", WORD_PREPOSITION},
    {"near", WORD_PREPOSITION}, {"behind", WORD_PREPOSITION}, {"above", WORD_PREPOSITION},
    {"below", WORD_PREPOSITION}, {"between", WORD_PREPOSITION}, {"through", WORD_PREPOSITION},
    {"across", WORD_PREPOSITION}, {"along", WORD_PREPOSITION}, {"around", WORD_PREPOSITION},
    {"against", WORD_PREPOSITION}, {"during", WORD_PREPOSITION}, {"without", WORD_PREPOSITION},
    {"within", WORD_PREPOSITION}, {"inside", WORD_PREPOSITION}, {"outside", WORD_PREPOSITION},
    {"beside", WORD_PREPOSITION}, {"besides", WORD_PREPOSITION}, {"after", WORD_PREPOSITION},
    {"before", WORD_PREPOSITION}, {"up", WORD_PREPOSITION}, {"down", WORD_PREPOSITION},
    {"off", WORD_PREPOSITION}, {"out", WORD_PREPOSITION}, {"via", WORD_PREPOSITION},
    {"per", WORD_PREPOSITION}, {"like", WORD_PREPOSITION}, {"about", WORD_PREPOSITION},
    {"among", WORD_PREPOSITION}, {"upon", WORD_PREPOSITION}, {"toward", WORD_PREPOSITION},
    {"towards", WORD_PREPOSITION}, {"beneath", WORD_PREPOSITION}, {"underneath", WORD_PREPOSITION},
    {"beyond", WORD_PREPOSITION}, {"throughout", WORD_PREPOSITION}, {"amid", WORD_PREPOSITION},
    {"amongst", WORD_PREPOSITION}, {"atop", WORD_PREPOSITION}, {"since", WORD_PREPOSITION},
    {"until", WORD_PREPOSITION}, {"till", WORD_PREPOSITION}, {"except", WORD_PREPOSITION},
    {"versus", WORD_PREPOSITION}, {"vs", WORD_PREPOSITION}, {"including", WORD_PREPOSITION},
    {"featuring", WORD_PREPOSITION}, {"de", WORD_PREPOSITION}, {"la", WORD_DETERMINER},
    {"le", WORD_DETERMINER}, {"el", WORD_DETERMINER}, {"du", WORD_PREPOSITION},
    {"and", WORD_CONJUNCTION}, {"or", WORD_CONJUNCTION}, {"but", WORD_CONJUNCTION},
    {"nor", WORD_CONJUNCTION}, {"yet", WORD_CONJUNCTION}, {"while", WORD_CONJUNCTION},
    {"as", WORD_CONJUNCTION}, {"than", WORD_CONJUNCTION}, {"if", WORD_CONJUNCTION},
    {"because", WORD_CONJUNCTION}, {"though", WORD_CONJUNCTION}, {"although", WORD_CONJUNCTION},
    {"whether", WORD_CONJUNCTION}, {"when", WORD_CONJUNCTION}, {"where", WORD_CONJUNCTION},
    {"whereas", WORD_CONJUNCTION}, {"unless", WORD_CONJUNCTION}, {"so", WORD_CONJUNCTION},
    {"then", WORD_CONJUNCTION}, {"plus", WORD_CONJUNCTION}, {"etc", WORD_CONJUNCTION},
    {"i", WORD_PRONOUN}, {"you", WORD_PRONOUN}, {"he", WORD_PRONOUN}, {"she", WORD_PRONOUN},
    {"it", WORD_PRONOUN}, {"we", WORD_PRONOUN}, {"they", WORD_PRONOUN}, {"me", WORD_PRONOUN},
    {"him", WORD_PRONOUN}, {"us", WORD_PRONOUN}, {"them", WORD_PRONOUN}, {"who", WORD_PRONOUN},
    {"whom", WORD_PRONOUN}, {"what", WORD_PRONOUN}, {"which", WORD_PRONOUN},
    {"why", WORD_PRONOUN}, {"how", WORD_PRONOUN}, {"there", WORD_PRONOUN},
    {"here", WORD_PRONOUN}, {"something", WORD_PRONOUN}, {"anything", WORD_PRONOUN},
    {"everything", WORD_PRONOUN}, {"nothing", WORD_PRONOUN}, {"someone", WORD_PRONOUN},
    {"anyone", WORD_PRONOUN}, {"everyone", WORD_PRONOUN}, {"somebody", WORD_PRONOUN},
    {"anybody", WORD_PRONOUN}, {"everybody", WORD_PRONOUN}, {"nobody", WORD_PRONOUN},
    {"myself", WORD_PRONOUN}, {"yourself", WORD_PRONOUN}, {"himself", WORD_PRONOUN},
    {"herself", WORD_PRONOUN}, {"itself", WORD_PRONOUN}, {"ourselves", WORD_PRONOUN},
    {"themselves", WORD_PRONOUN}, {"yours", WORD_PRONOUN}, {"hers", WORD_PRONOUN},
    {"ours", WORD_PRONOUN}, {"theirs", WORD_PRONOUN}, {"is", WORD_AUXILIARY},
    {"are", WORD_AUXILIARY}, {"was", WORD_AUXILIARY}, {"were", WORD_AUXILIARY},
    {"be", WORD_AUXILIARY}, {"been", WORD_AUXILIARY}, {"being", WORD_AUXILIARY},
    {"am", WORD_AUXILIARY}, {"has", WORD_AUXILIARY}, {"have", WORD_AUXILIARY},
    {"had", WORD_AUXILIARY}, {"do", WORD_AUXILIARY}, {"does", WORD_AUXILIARY},
    {"did", WORD_AUXILIARY}, {"can", WORD_AUXILIARY}, {"could", WORD_AUXILIARY},
    {"will", WORD_AUXILIARY}, {"would", WORD_AUXILIARY}, {"shall", WORD_AUXILIARY},
    {"should", WORD_AUXILIARY}, {"may", WORD_AUXILIARY}, {"might", WORD_AUXILIARY},
    {"must", WORD_AUXILIARY}, {"isn't", WORD_AUXILIARY}, {"aren't", WORD_AUXILIARY},
    {"don't", WORD_AUXILIARY}, {"doesn't", WORD_AUXILIARY}, {"can't", WORD_AUXILIARY},
    {"won't", WORD_AUXILIARY}, {"it's", WORD_PRONOUN}, {"let", WORD_AUXILIARY},
    {"to", WORD_TO}, {"very", WORD_ADVERB}, {"not", WORD_ADVERB}, {"also", WORD_ADVERB},
    {"just", WORD_ADVERB}, {"only", WORD_ADVERB}, {"too", WORD_ADVERB}, {"really", WORD_ADVERB},
    {"quite", WORD_ADVERB}, {"rather", WORD_ADVERB}, {"almost", WORD_ADVERB},
    {"always", WORD_ADVERB}, {"never", WORD_ADVERB}, {"often", WORD_ADVERB},
    {"still", WORD_ADVERB}, {"already", WORD_ADVERB}, {"again", WORD_ADVERB},
    {"even", WORD_ADVERB}, {"ever", WORD_ADVERB}, {"away", WORD_ADVERB}, {"ago", WORD_ADVERB},
    {"together", WORD_ADVERB}, {"now", WORD_ADVERB}, {"soon", WORD_ADVERB},
    {"oh", WORD_ADVERB}, {"yes", WORD_ADVERB}, {"ok", WORD_ADVERB}, {"okay", WORD_ADVERB},
    {"please", WORD_ADVERB}, {"else", WORD_ADVERB}, {"ly", WORD_ADVERB},
};

#define CLOSED_SLOTS 1024
static uint16_t closed_table[CLOSED_SLOTS];  // index + 1 into closed_words; 0: empty
static pthread_once_t closed_once = PTHREAD_ONCE_INIT;

static uint32_t closed_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void closed_build(void) {
    size_t n = sizeof closed_words / sizeof *closed_words;
    CATLIP_ASSERT(2 * n < CLOSED_SLOTS);
    for (size_t i = 0; i < n; i++) {
        uint32_t s = closed_hash(closed_words[i].word, strlen(closed_words[i].word)) & (CLOSED_SLOTS - 1);
        while (closed_table[s]) s = (s + 1) & (CLOSED_SLOTS - 1);
        closed_table[s] = (uint16_t)(i + 1);
    }
}

enum word_class word_class_of(const char *word, size_t len) {
    pthread_once(&closed_once, closed_build);
    if (len == 0 || len > 12) return WORD_OPEN;
    uint32_t s = closed_hash(word, len) & (CLOSED_SLOTS - 1);
    while (closed_table[s]) {
        const struct closed_word *c = &closed_words[closed_table[s] - 1];
        if (strlen(c->word) == len && !memcmp(c->word, word, len)) return c->cls;
        s = (s + 1) & (CLOSED_SLOTS - 1);
    }
    return WORD_OPEN;
}

// Tagger states: the four open classes first, then the observed closed classes.
enum { T_NOUN, T_VERB, T_ADJ, T_ADV, T_DET, T_PREP, T_CONJ, T_PRON, T_AUX, T_TO, T_NUM, T_START,
       T_END, T_COUNT };
#define OPEN_CLASSES 4
#define MATRIX (T_COUNT - 1)  // rows: states + START; columns: states + END

// P(next class | class), rows: from (N V A R D P C X AUX TO NUM START), columns: to
// (N V A R D P C X AUX TO NUM END). Set by hand from English class bigrams, leaning towards the
// noun phrases of alt-text (noun modifiers, numbers after nouns in product titles); zero
// entries get EPSILON. Rows are normalised at first use.
#define EPSILON 0.002f
static const float transition_raw[MATRIX][MATRIX] = {
    /*            N     V     A     R     D     P     C     X     AUX   TO    NUM   END */
    /* N     */ {.22f, .12f, .04f, .03f, .02f, .25f, .12f, .02f, .06f, .02f, .06f, .10f},
    /* V     */ {.20f, .03f, .08f, .08f, .30f, .20f, .02f, .04f, .00f, .03f, .05f, .02f},
    /* A     */ {.70f, .01f, .10f, .01f, .00f, .06f, .05f, .00f, .00f, .02f, .01f, .05f},
    /* R     */ {.10f, .30f, .30f, .05f, .08f, .10f, .02f, .02f, .01f, .01f, .02f, .01f},
    /* D     */ {.58f, .02f, .35f, .03f, .01f, .00f, .00f, .00f, .00f, .00f, .03f, .01f},
    /* P     */ {.30f, .06f, .12f, .02f, .45f, .00f, .00f, .05f, .00f, .00f, .08f, .00f},
    /* C     */ {.35f, .15f, .20f, .05f, .15f, .05f, .00f, .05f, .00f, .00f, .05f, .00f},
    /* X     */ {.08f, .45f, .07f, .10f, .02f, .10f, .02f, .00f, .20f, .00f, .01f, .02f},
    /* AUX   */ {.05f, .35f, .20f, .10f, .20f, .10f, .00f, .00f, .00f, .00f, .02f, .00f},
    /* TO    */ {.08f, .75f, .05f, .02f, .10f, .00f, .00f, .00f, .00f, .00f, .02f, .00f},
    /* NUM   */ {.55f, .03f, .15f, .02f, .02f, .08f, .04f, .00f, .01f, .01f, .04f, .05f},
    /* START */ {.40f, .10f, .30f, .04f, .08f, .02f, .00f, .03f, .00f, .00f, .05f, .03f},
};

static float log_transition[MATRIX][MATRIX];
static pthread_once_t transition_once = PTHREAD_ONCE_INIT;

static void transition_build(void) {
    for (int r = 0; r < MATRIX; r++) {
        float sum = 0;
        for (int c = 0; c < MATRIX; c++) sum += transition_raw[r][c] > 0 ? transition_raw[r][c] : EPSILON;
        for (int c = 0; c < MATRIX; c++) {
            float p = transition_raw[r][c] > 0 ? transition_raw[r][c] : EPSILON;
            log_transition[r][c] = logf(p / sum);
        }
    }
}

static int state_of_class(enum word_class c) {
    switch (c) {
    case WORD_DETERMINER: return T_DET;
    case WORD_PREPOSITION: return T_PREP;
    case WORD_CONJUNCTION: return T_CONJ;
    case WORD_PRONOUN: return T_PRON;
    case WORD_AUXILIARY: return T_AUX;
    case WORD_TO: return T_TO;
    case WORD_ADVERB: return T_ADV;
    default: return T_NOUN;
    }
}

// Row used for the transition out of a word in state s (T_START after punctuation).
static int row_of(int s) { return s == T_START ? MATRIX - 1 : s; }
static int col_of(int s) { return s == T_END ? MATRIX - 1 : s; }

static int ends_with(const char *w, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len > n && !memcmp(w + len - n, suffix, n);
}

// Log emission scores of the four open classes for one word (-INFINITY: impossible).
static void emission(const struct wordnet *wn, const struct noun_word *w, float out[OPEN_CLASSES]) {
    float count[OPEN_CLASSES] = {0};
    int possible[OPEN_CLASSES] = {0};
    int any = 0;
    if (w->lookup) {
        for (int pos = 0; pos < OPEN_CLASSES; pos++) {
            const struct wordnet_entry *base[4];
            int n = wordnet_morph(wn, w->lookup, w->lookup_len, (enum wordnet_pos)pos, base, 4);
            for (int k = 0; k < n; k++) {
                possible[pos] = 1;
                if (base[k]->count[pos] > count[pos]) count[pos] = (float)base[k]->count[pos];
            }
            any |= possible[pos];
        }
    }
    if (!any) {  // unknown to WordNet (names, brands, foreign words): a noun for the context
        for (int c = 0; c < OPEN_CLASSES; c++) out[c] = c == T_NOUN ? 0.0f : -INFINITY;
        return;
    }
    // Surface cues WordNet's lemma counts cannot see.
    if (ends_with(w->text, w->len, "ly") && possible[T_ADV]) count[T_ADV] += 20;
    float total = 0;
    for (int c = 0; c < OPEN_CLASSES; c++)
        if (possible[c]) total += count[c] + 1;
    for (int c = 0; c < OPEN_CLASSES; c++)
        out[c] = possible[c] ? logf((count[c] + 1) / total) : -INFINITY;
}

void nouns_decide(const struct wordnet *wn, const struct noun_word *words, int n, uint8_t *is_noun) {
    pthread_once(&transition_once, transition_build);
    if (n <= 0) return;
    float score[TOKENS_MAX][OPEN_CLASSES];
    int8_t back[TOKENS_MAX][OPEN_CLASSES];
    int8_t fixed[TOKENS_MAX];  // state of a closed-class word, -1 for open words
    float emit[TOKENS_MAX][OPEN_CLASSES];
    CATLIP_ASSERT(n <= TOKENS_MAX);
    for (int i = 0; i < n; i++) {
        const struct noun_word *w = &words[i];
        enum word_class c = w->compound ? WORD_OPEN : word_class_of(w->text, w->len);
        fixed[i] = -1;
        if (c != WORD_OPEN) {
            fixed[i] = (int8_t)state_of_class(c);
        } else if (w->compound || (w->token_flags & TOKEN_POSSESSIVE) || w->no_label) {
            // Compounds and possessives are nouns; numbers act as determiners; single letters
            // and words WordNet does not know as nouns only.
            if (w->token_flags & TOKEN_DIGIT) fixed[i] = T_NUM;
            else fixed[i] = T_NOUN;
        } else {
            emission(wn, w, emit[i]);
        }
    }
    // Viterbi. A fixed word has one state with emission 1; an open word has four.
    for (int i = 0; i < n; i++) {
        int boundary = i == 0 || (words[i].token_flags & TOKEN_BOUNDARY_BEFORE);
        for (int s = 0; s < OPEN_CLASSES; s++) {
            score[i][s] = -INFINITY;
            back[i][s] = 0;
        }
        int states = fixed[i] >= 0 ? 1 : OPEN_CLASSES;
        for (int k = 0; k < states; k++) {
            int s = fixed[i] >= 0 ? fixed[i] : k;
            float e = fixed[i] >= 0 ? 0.0f : emit[i][s];
            if (e == -INFINITY) continue;
            float best = -INFINITY;
            int arg = 0;
            if (boundary) {
                // The previous segment ends here: add its END transition to every path.
                best = log_transition[row_of(T_START)][col_of(s)];
                if (i > 0) {
                    float prev_best = -INFINITY;
                    int prev_states = fixed[i - 1] >= 0 ? 1 : OPEN_CLASSES;
                    for (int p = 0; p < prev_states; p++) {
                        int ps = fixed[i - 1] >= 0 ? fixed[i - 1] : p;
                        int slot = fixed[i - 1] >= 0 ? 0 : p;
                        int from = (words[i - 1].token_flags & TOKEN_POSSESSIVE) ? T_DET : ps;
                        float v = score[i - 1][slot] + log_transition[row_of(from)][col_of(T_END)];
                        if (v > prev_best) prev_best = v, arg = slot;
                    }
                    best += prev_best;
                }
            } else {
                int prev_states = fixed[i - 1] >= 0 ? 1 : OPEN_CLASSES;
                for (int p = 0; p < prev_states; p++) {
                    int ps = fixed[i - 1] >= 0 ? fixed[i - 1] : p;
                    int slot = fixed[i - 1] >= 0 ? 0 : p;
                    // A possessive ("men's") is followed as a determiner is.
                    int from = (words[i - 1].token_flags & TOKEN_POSSESSIVE) ? T_DET : ps;
                    float v = score[i - 1][slot] + log_transition[row_of(from)][col_of(s)];
                    if (v > best) best = v, arg = slot;
                }
            }
            int slot = fixed[i] >= 0 ? 0 : s;
            score[i][slot] = best + e;
            back[i][slot] = (int8_t)arg;
        }
        if (fixed[i] >= 0 && score[i][0] == -INFINITY) score[i][0] = -1e30f;  // keep a path
    }
    // Backtrack from the best final state (plus its END transition).
    int slot = 0;
    float best = -INFINITY;
    int last_states = fixed[n - 1] >= 0 ? 1 : OPEN_CLASSES;
    for (int p = 0; p < last_states; p++) {
        int ps = fixed[n - 1] >= 0 ? fixed[n - 1] : p;
        int from = (words[n - 1].token_flags & TOKEN_POSSESSIVE) ? T_DET : ps;
        float v = score[n - 1][p] + log_transition[row_of(from)][col_of(T_END)];
        if (v > best) best = v, slot = p;
    }
    for (int i = n - 1; i >= 0; i--) {
        int s = fixed[i] >= 0 ? fixed[i] : slot;
        is_noun[i] = s == T_NOUN && !words[i].no_label && words[i].lookup != NULL;
        slot = back[i][fixed[i] >= 0 ? 0 : slot];
    }
}
