// WordNet tables, morphology, compounds, noun decisions and the labeller
// (common/text/wordnet.h, nouns.h, labeler.h). Needs Debian's wordnet-base in /usr/share/wordnet.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "text/labeler.h"
#include "text/nouns.h"
#include "text/wordnet.h"

static struct labeler *nouns, *corenet;

static int setup(void **state) {
    nouns = labeler_create(NULL, LABELER_NOUNS);
    corenet = labeler_create(NULL, LABELER_CORENET);
    if (!nouns || !corenet) fprintf(stderr, "%s\n", catlip_error());
    return nouns && corenet ? 0 : -1;
}

static int teardown(void **state) {
    labeler_free(nouns);
    labeler_free(corenet);
    return 0;
}

// The labels of a caption as "matched1 matched2 ..." (WordNet lemmas matched, in order).
static const char *labels(struct labeler *lab, const char *caption) {
    static char out[4096];
    struct synset_hit hits[LABELER_MAX_HITS];
    int n = labeler_label(lab, caption, strlen(caption), hits, LABELER_MAX_HITS);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%08u", hits[i].offset);
        assert_string_equal(id, hits[i].id);
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? " " : "", hits[i].matched);
    }
    return out;
}

static const char *first_base(const char *word, enum wordnet_pos pos) {
    const struct wordnet_entry *base[4];
    int n = wordnet_morph(labeler_wordnet(nouns), word, strlen(word), pos, base, 4);
    return n ? base[0]->lemma : "";
}

static void tables_and_ids(void **state) {
    const struct wordnet *wn = labeler_wordnet(nouns);
    const struct wordnet_entry *dog = wordnet_lookup(wn, "dog", 3);
    assert_non_null(dog);
    assert_int_equal(dog->noun_offset, 2084071);  // n02084071, dog.n.01 (ImageNet's id)
    assert_int_equal(dog->senses[WORDNET_NOUN], 7);
    assert_int_equal(dog->senses[WORDNET_VERB], 1);
    assert_true(dog->count[WORDNET_NOUN] > dog->count[WORDNET_VERB]);
    assert_string_equal(wordnet_synset_word(wn, 2084071), "dog");
    assert_string_equal(wordnet_synset_word(wn, 1740), "entity");  // the first synset
    assert_null(wordnet_synset_word(wn, 2084070));
    assert_int_equal(wordnet_synset_count(wn), 82115);  // WordNet 3.0 noun synsets
    int i = wordnet_synset_index(wn, 2084071);
    assert_true(i >= 0 && wordnet_synset_offset(wn, i) == 2084071);
    assert_true(wordnet_lookup(wn, "hot", 3)->flags & WORDNET_PREFIX);  // hot_dog
    assert_null(wordnet_lookup(wn, "qwertyuiop", 10));
    assert_null(labeler_create("/nonexistent/wordnet", LABELER_NOUNS));
    assert_non_null(strstr(catlip_error(), "/nonexistent/wordnet/index.noun"));
}

static void lemmatising(void **state) {
    assert_string_equal(first_base("mice", WORDNET_NOUN), "mouse");       // noun.exc
    assert_string_equal(first_base("children", WORDNET_NOUN), "child");   // noun.exc
    assert_string_equal(first_base("geese", WORDNET_NOUN), "goose");
    assert_string_equal(first_base("dogs", WORDNET_NOUN), "dog");         // -s
    assert_string_equal(first_base("boxes", WORDNET_NOUN), "box");        // -xes
    assert_string_equal(first_base("churches", WORDNET_NOUN), "church");  // -ches
    assert_string_equal(first_base("berries", WORDNET_NOUN), "berry");    // -ies
    assert_string_equal(first_base("women", WORDNET_NOUN), "woman");      // -men
    assert_string_equal(first_base("glass", WORDNET_NOUN), "glass");      // -ss is not a plural
    assert_string_equal(first_base("glasses", WORDNET_NOUN), "glasses");  // a lemma itself first
    assert_string_equal(first_base("traffic_lights", WORDNET_NOUN), "traffic_light");  // last word
    assert_string_equal(first_base("running", WORDNET_VERB), "run");      // verb.exc
    assert_string_equal(first_base("catching", WORDNET_VERB), "catch");   // -ing
    assert_string_equal(first_base("happier", WORDNET_ADJ), "happy");      // adj.exc
    assert_string_equal(first_base("xyzzies", WORDNET_NOUN), "");
    // Through the labeller: plurals and irregular forms reach their lemma's synset.
    assert_string_equal(labels(nouns, "Three mice and two children"), "mouse child");
    assert_string_equal(labels(nouns, "geese and teeth on farms"), "goose tooth farm");
    assert_string_equal(labels(nouns, "Men's shoes"), "man shoe");  // "men" alone is a rare lemma
    assert_string_equal(labels(nouns, "woman wearing glasses"), "woman glasses");
}

static void compounds(void **state) {
    assert_string_equal(labels(nouns, "A hot dog with mustard"), "hot_dog mustard");
    assert_string_equal(labels(nouns, "kids eating ice cream"), "kid ice_cream");
    assert_string_equal(labels(nouns, "traffic lights at night"), "traffic_light night");
    assert_string_equal(labels(nouns, "a German shepherd dog"), "german_shepherd_dog");  // longest
    assert_string_equal(labels(nouns, "ice-cream cone"), "ice-cream_cone");    // WordNet's hyphen
    assert_string_equal(labels(nouns, "ice cream cone"), "ice-cream_cone");
    assert_string_equal(labels(nouns, "Valentine's Day roses"), "valentine_day rose");
    assert_string_equal(labels(nouns, "close-up of a bee"), "closeup bee");     // hyphen dropped
    // Never across punctuation, never through a closed-class word.
    assert_string_equal(labels(nouns, "hot, dog"), "dog");
    assert_string_equal(labels(nouns, "a cup of tea"), "cup tea");
}

static void noun_decisions(void **state) {
    // The examples: verbs and adjectives are not labels.
    assert_string_equal(labels(nouns, "dog catching frisbee"), "dog frisbee");
    assert_string_equal(labels(nouns, "a black dog on the grass"), "dog grass");
    assert_string_equal(labels(nouns, "woman holding a cup"), "woman cup");
    assert_string_equal(labels(nouns, "man walking his dog in the park"), "man dog park");
    assert_string_equal(labels(nouns, "a tall building in the city"), "building city");
    assert_string_equal(labels(nouns, "a painting of a red house"), "painting house");
    assert_string_equal(labels(nouns, "leather sofa on a rug"), "leather sofa rug");  // noun modifier
    // Closed-class words that WordNet also lists as nouns ("a", "in", "it", "are", "one").
    assert_string_equal(labels(nouns, "it is one of the best in a row"), "row");
    // Numbers, single letters and unknown words are never labels.
    assert_string_equal(labels(nouns, "Aluminum Ladder 6 Feet"), "aluminum ladder foot");
    assert_string_equal(labels(nouns, "x y z 2019 qwertyuiop"), "");
    assert_string_equal(labels(nouns, ""), "");
    assert_int_equal(word_class_of("the", 3), WORD_DETERMINER);
    assert_int_equal(word_class_of("dog", 3), WORD_OPEN);
}

static void corenet_mode(void **state) {
    // Every token whose first noun synset is named after it (word.n.01), no POS filter.
    assert_string_equal(labels(corenet, "a black dog on the grass"), "black dog grass");
    // "in" (inch), "a" (angstrom) are not named after themselves; "catching" is, and so is
    // "frisbee" (head word "Frisbee": NLTK's names are lowercase).
    assert_string_equal(labels(corenet, "dog catching frisbee in a park"), "dog catching frisbee park");
    // Shortest lemma as WordNetLemmatizer; no compounds ("hot" is no noun).
    assert_string_equal(labels(corenet, "mice eating hot dogs"), "mouse eating dog");
    assert_int_equal(labeler_mode_parse("corenet"), LABELER_CORENET);
    assert_int_equal(labeler_mode_parse("nouns"), LABELER_NOUNS);
    assert_int_equal(labeler_mode_parse("x"), -1);
}

static void output_limits(void **state) {
    struct synset_hit hits[2];
    const char *c = "dog cat horse cow dog cat";
    assert_int_equal(labeler_label(nouns, c, strlen(c), hits, 2), 2);
    assert_string_equal(hits[0].lemma, "dog");
    assert_string_equal(hits[1].lemma, "cat");
    struct synset_hit many[LABELER_MAX_HITS];
    assert_int_equal(labeler_label(nouns, c, strlen(c), many, LABELER_MAX_HITS), 4);  // distinct
    // Lemma: the synset's head word; matched: the caption's lemma.
    assert_int_equal(labeler_label(nouns, "hot dogs", 8, many, LABELER_MAX_HITS), 1);
    assert_string_equal(many[0].matched, "hot_dog");
    assert_string_equal(many[0].lemma, "hotdog");
}

// Several threads label on one labeler at once and get what one thread gets.
struct worker_arg {
    char (*captions)[128];
    int count;
    uint32_t *result;  // (count * 4) first four offsets
};

static void *label_all(void *p) {
    struct worker_arg *a = p;
    for (int rep = 0; rep < 20; rep++)
        for (int i = 0; i < a->count; i++) {
            struct synset_hit hits[LABELER_MAX_HITS];
            int n = labeler_label(nouns, a->captions[i], strlen(a->captions[i]), hits, LABELER_MAX_HITS);
            for (int k = 0; k < 4; k++) a->result[i * 4 + k] = k < n ? hits[k].offset : 0;
        }
    return NULL;
}

static void concurrent_callers(void **state) {
    static const char *base[] = {"dog catching frisbee", "a black dog on the grass", "kids eating ice cream",
                                 "Men's Cotton Crew Neck T-Shirt", "woman wearing glasses in a cafe"};
    enum { N = 200, THREADS = 4 };
    static char captions[N][128];
    for (int i = 0; i < N; i++) snprintf(captions[i], sizeof captions[i], "%s %d", base[i % 5], i);
    static uint32_t expect[N * 4], got[THREADS][N * 4];
    struct worker_arg one = {captions, N, expect};
    label_all(&one);
    pthread_t t[THREADS];
    struct worker_arg args[THREADS];
    for (int k = 0; k < THREADS; k++) {
        args[k] = (struct worker_arg){captions, N, got[k]};
        assert_int_equal(pthread_create(&t[k], NULL, label_all, &args[k]), 0);
    }
    for (int k = 0; k < THREADS; k++) {
        pthread_join(t[k], NULL);
        assert_memory_equal(got[k], expect, sizeof expect);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tables_and_ids),    cmocka_unit_test(lemmatising),
        cmocka_unit_test(compounds),         cmocka_unit_test(noun_decisions),
        cmocka_unit_test(corenet_mode),      cmocka_unit_test(output_limits),
        cmocka_unit_test(concurrent_callers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
