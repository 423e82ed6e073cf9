// Head building for Transfer Init and zero-shot (common/eval/transfer_init.h) on a small
// vocabulary over the installed WordNet: sense choice by the vocabulary, transitive hyponym
// pooling with count weights, a more specific class keeping its rows, a class with nothing
// below it (falls back to the matched rows), prior correction and row calibration, and the
// noisy-OR class score with its class-level calibrations. Expected noisy-OR values were computed
// independently in Python with 50-digit decimals.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "eval/head_score.h"
#include "eval/zeroshot.h"
#include "eval/transfer_init.h"

// Rows in file order (count descending).
enum { V = 5, C = 3, DOG = 0, CAT = 1, TREE = 2, CAR = 3, ANIMAL = 4 };

struct fixture {
    struct labeler *labeler;
    struct vocab *vocab;
    struct transfer_matcher *matcher;
    float head_w[V * C], head_b[V];
};

static int setup(void **state) {
    struct fixture *f = xcalloc(1, sizeof *f);
    char path[] = "/tmp/catlip_test_head_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text =
        "# test vocabulary captions=100\n"
        "n02084071\tdog\t30\nn02121620\tcat\t20\nn13104059\ttree\t15\nn02958343\tcar\t10\n"
        "n00015388\tanimal\t5\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    f->vocab = vocab_load(path);
    unlink(path);
    assert_non_null(f->vocab);
    f->labeler = labeler_create(NULL, LABELER_NOUNS);
    assert_non_null(f->labeler);
    f->matcher = transfer_matcher_create(f->labeler, f->vocab, NULL);
    assert_non_null(f->matcher);
    for (int i = 0; i < V * C; i++) f->head_w[i] = (float)(i + 1) * (i % 2 ? -0.25f : 0.5f);
    for (int v = 0; v < V; v++) f->head_b[v] = -1.0f - (float)v;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    transfer_matcher_free(f->matcher);
    labeler_free(f->labeler);
    vocab_free(f->vocab);
    free(f);
    return 0;
}

// Matches and pools `names` (K of them) with `opt`.
static void build(struct fixture *f, const char *const *names, int K, struct head_options opt,
                  struct transfer_class *classes, struct head_class *built) {
    for (int k = 0; k < K; k++) transfer_match(f->matcher, names[k], &classes[k]);
    head_pool_classes(f->matcher, f->vocab, opt, classes, K, built);
}

static double member_weight(const struct head_class *b, int row) {
    for (int i = 0; i < b->nmembers; i++)
        if (b->members[i].row == row) return b->members[i].weight;
    return 0;
}

// "plant": the first sense is the factory (nothing of it in the vocabulary); the organism
// sense has "tree" below it, so it is chosen, and the alternatives are reported.
static void sense_choice(void **state) {
    struct fixture *f = *state;
    const char *names[] = {"plant"};
    struct transfer_class c[1];
    struct head_class b[1];
    build(f, names, 1, HEAD_OPTIONS_DEFAULT, c, b);
    assert_true(b[0].nsenses >= 2);
    assert_int_equal(b[0].senses[0], 3956922u);  // plant.n.01, the factory: WordNet's first
    assert_true(b[0].chosen > 0);
    assert_int_equal(b[0].senses[b[0].chosen], 17222u);  // plant.n.02, the organism
    assert_float_equal(b[0].sense_mass[0], 0, 0);
    assert_float_equal(b[0].sense_mass[b[0].chosen], 15, 0);
    assert_string_equal(c[0].synsets[0].id, "n00017222");
    assert_int_equal(b[0].nmembers, 1);
    assert_float_equal(member_weight(&b[0], TREE), 1.0, 1e-12);
    head_classes_free(b, 1);

    // First senses: the factory, through its nearest vocabulary synset, as before.
    build(f, names, 1, HEAD_OPTIONS_FIRST, c, b);
    assert_int_equal(b[0].chosen, -1);
    assert_string_equal(c[0].synsets[0].id, "n03956922");
    assert_int_equal(b[0].nmembers, 1);
    head_classes_free(b, 1);
}

// "animal": its own row (5) and, transitively (dog -> canine -> ... -> animal), dog (30) and
// cat (20), weighted by counts; the head row is that mixture.
static void hyponym_pooling(void **state) {
    struct fixture *f = *state;
    const char *names[] = {"animal"};
    struct transfer_class c[1];
    struct head_class b[1];
    build(f, names, 1, HEAD_OPTIONS_DEFAULT, c, b);
    assert_int_equal(b[0].nmembers, 3);
    assert_float_equal(b[0].mass, 55, 0);
    assert_float_equal(member_weight(&b[0], ANIMAL), 5.0 / 55, 1e-12);
    assert_float_equal(member_weight(&b[0], DOG), 30.0 / 55, 1e-12);
    assert_float_equal(member_weight(&b[0], CAT), 20.0 / 55, 1e-12);
    assert_float_equal(member_weight(&b[0], CAR), 0, 0);
    float w[C], bias;
    head_build(c, b, 1, f->head_w, f->head_b, V, C, 0, w, &bias);
    for (int j = 0; j < C; j++) {
        double want = (5 * f->head_w[ANIMAL * C + j] + 30 * f->head_w[DOG * C + j] +
                       20 * f->head_w[CAT * C + j]) /
                      55;
        assert_float_equal(w[j], want, 1e-5);
    }
    assert_float_equal(
        bias, (5 * f->head_b[ANIMAL] + 30 * f->head_b[DOG] + 20 * f->head_b[CAT]) / 55, 1e-5);
    head_classes_free(b, 1);

    // Without pooling: the own row only.
    struct head_options none = HEAD_OPTIONS_DEFAULT;
    none.pool = HEAD_POOL_NONE;
    build(f, names, 1, none, c, b);
    assert_int_equal(b[0].nmembers, 1);
    assert_float_equal(member_weight(&b[0], ANIMAL), 1.0, 0);
    head_classes_free(b, 1);
}

// With "dog" a class of its own, dog's row goes to it, not to "animal".
static void more_specific_class(void **state) {
    struct fixture *f = *state;
    const char *names[] = {"animal", "dog"};
    struct transfer_class c[2];
    struct head_class b[2];
    build(f, names, 2, HEAD_OPTIONS_DEFAULT, c, b);
    assert_int_equal(b[0].nmembers, 2);
    assert_float_equal(member_weight(&b[0], ANIMAL), 5.0 / 25, 1e-12);
    assert_float_equal(member_weight(&b[0], CAT), 20.0 / 25, 1e-12);
    assert_int_equal(b[1].nmembers, 1);
    assert_float_equal(member_weight(&b[1], DOG), 1.0, 0);
    head_classes_free(b, 2);
}

// "spoon": no vocabulary synset at or below it: the nearest row, as transfer_build_head does.
static void nothing_below_falls_back(void **state) {
    struct fixture *f = *state;
    const char *names[] = {"spoon"};
    struct transfer_class c[1];
    struct head_class b[1];
    build(f, names, 1, HEAD_OPTIONS_DEFAULT, c, b);
    assert_int_equal(b[0].nmembers, 1);
    assert_float_equal(b[0].mass, 0, 0);
    assert_int_equal(b[0].members[0].row, c[0].synsets[0].row);
    float w[C], bias, w_old[C], bias_old;
    head_build(c, b, 1, f->head_w, f->head_b, V, C, 3, w, &bias);
    transfer_build_head(c, 1, f->head_w, f->head_b, V, C, 3, w_old, &bias_old);
    assert_memory_equal(w, w_old, sizeof w);
    assert_float_equal(bias, bias_old, 0);
    head_classes_free(b, 1);
}

// Prior correction: bias -= log-odds of the pooled training frequency; no mass: unchanged.
static void prior_correction(void **state) {
    (void)state;
    struct head_class b[2] = {{.mass = 55}, {.mass = 0}};
    float bias[2] = {1.0f, 2.0f};
    head_prior_correct(b, 2, 100, bias);
    assert_float_equal(bias[0], 1.0 - log(55.0 / 45.0), 1e-6);
    assert_float_equal(bias[1], 2.0, 0);
}

// Standardising a row: its score over features with this mean and covariance gets mean 0 and
// standard deviation 1.
static void calibrate_rows(void **state) {
    (void)state;
    float w[2] = {1.0f, 2.0f}, b = 0.5f;
    double mean[2] = {1.0, -1.0}, cov[4] = {4.0, 0.0, 0.0, 1.0};
    // score mean 0.5 + 1 - 2 = -0.5; variance 1*4*1 + 2*1*2 = 8
    float wc[2], bc;
    memcpy(wc, w, sizeof w);
    bc = b;
    head_calibrate_rows(HEAD_CALIBRATE_STANDARDIZE, mean, cov, 1, 2, wc, &bc);
    assert_float_equal(wc[0], 1.0 / sqrt(8.0), 1e-6);
    assert_float_equal(wc[1], 2.0 / sqrt(8.0), 1e-6);
    assert_float_equal(bc, (0.5 + 0.5) / sqrt(8.0), 1e-6);
    memcpy(wc, w, sizeof w);
    bc = b;
    head_calibrate_rows(HEAD_CALIBRATE_CENTER, mean, cov, 1, 2, wc, &bc);
    assert_float_equal(wc[0], 1.0, 0);
    assert_float_equal(bc, 1.0, 1e-6);
}

// In double, and failing on inf or NaN (cmocka's assert_float_equal compares floats, relatively,
// and takes -inf for any number).
#define assert_close(got, want, tol) assert_true(fabs((double)(got) - (double)(want)) <= (tol))

// log-odds of 1 - prod(1 - sigmoid(s)): an ordinary case and both tails, where the naive
// formula loses everything (1 - P rounds to 1, or P to 1).
static void noisy_or_logodds(void **state) {
    (void)state;
    double a[] = {0.5, -1.0, 2.0}, b[] = {-60, -61}, c[] = {40, 3}, one[] = {-2.5},
           d[] = {-800, -801};  // 1 - sigmoid(s) rounds to 1: the sum of exponentials
    assert_close(head_noisy_or_logodds(a, 3), 3.3808127642631104, 1e-12);
    assert_close(head_noisy_or_logodds(b, 2), -59.686738312481777, 1e-9);
    assert_close(head_noisy_or_logodds(c, 2), 43.048587351573742, 1e-9);
    assert_close(head_noisy_or_logodds(one, 1), -2.5, 1e-12);  // one member: its logit
    assert_close(head_noisy_or_logodds(d, 2), -799.68673831248178, 1e-9);
}

// A noisy-OR head over the fixture: "animal" = animal, dog, cat (mass 55 of 100 captions), and
// a name nothing matches (a random linear row, its one member). Uncalibrated, prior, center and
// standardize over three reference images.
static void noisy_or_scores(void **state) {
    struct fixture *f = *state;
    const char *names[] = {"animal", "qzxv"};
    struct transfer_head h = {.K = 2, .C = C, .captions = 100};
    h.classes = xcalloc(2, sizeof *h.classes);
    h.built = xcalloc(2, sizeof *h.built);
    h.weight = xmalloc(2 * C * sizeof(float));
    h.bias = xmalloc(2 * sizeof(float));
    build(f, names, 2, HEAD_OPTIONS_DEFAULT, h.classes, h.built);
    assert_int_equal(h.built[0].nmembers, 3);
    assert_int_equal(h.built[1].nmembers, 0);
    head_build(h.classes, h.built, 2, f->head_w, f->head_b, V, C, 7, h.weight, h.bias);
    head_noisy_or_prepare(&h, f->head_w, f->head_b);
    assert_int_equal(h.score, HEAD_SCORE_NOISY_OR);
    const float x[C] = {0.3f, -0.2f, 0.1f};
    float scores[2], linear[2];
    head_scores(&h, x, scores);
    assert_close(scores[0], -0.041924406990749853, 1e-5);
    zeroshot_scores(linear, h.weight, h.bias, x, 2, C);
    assert_close(scores[1], linear[1], 1e-5);

    head_noisy_or_calibrate(&h, HEAD_CALIBRATE_PRIOR, NULL);  // minus log(55 / 45)
    head_scores(&h, x, scores);
    assert_close(scores[0], -0.24259510245290101, 1e-5);
    assert_close(scores[1], linear[1], 1e-5);  // no mass: as it was

    float ref_features[3 * C] = {0.5f, 0.1f, -0.4f, -0.2f, 0.3f, 0.2f, 0.0f, -0.5f, 0.6f};
    struct head_reference ref = {.C = C, .n = 3, .features = ref_features};
    head_noisy_or_calibrate(&h, HEAD_CALIBRATE_CENTER, &ref);
    head_scores(&h, x, scores);
    assert_close(scores[0], -0.25432316691989131, 1e-5);
    head_noisy_or_calibrate(&h, HEAD_CALIBRATE_STANDARDIZE, &ref);
    head_scores(&h, x, scores);
    assert_close(scores[0], -0.34520458167375985, 1e-5);
    head_noisy_or_calibrate(&h, HEAD_CALIBRATE_NONE, NULL);
    head_scores(&h, x, scores);
    assert_close(scores[0], -0.041924406990749853, 1e-5);
    transfer_head_free(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sense_choice),        cmocka_unit_test(hyponym_pooling),
        cmocka_unit_test(more_specific_class), cmocka_unit_test(nothing_below_falls_back),
        cmocka_unit_test(prior_correction),    cmocka_unit_test(calibrate_rows),
        cmocka_unit_test(noisy_or_logodds),    cmocka_unit_test(noisy_or_scores),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
