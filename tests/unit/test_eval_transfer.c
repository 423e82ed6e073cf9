// Transfer Init (common/text/transfer.h, hypernyms.h, io/transfer_head.h): exact ids, names,
// multi-synset averages, nearest-by-path-similarity, nothing matched; the head file.
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
#include "io/transfer_head.h"
#include "text/hypernyms.h"
#include "text/transfer.h"

enum { V = 3, C = 4, DOG = 0, CAT = 1, CAR = 2 };

struct fixture {
    struct labeler *labeler;
    struct vocab *vocab;
    struct transfer_matcher *matcher;
    float head_w[V * C], head_b[V];
};

static int setup(void **state) {
    struct fixture *f = xcalloc(1, sizeof *f);
    char path[] = "/tmp/catlip_test_transfer_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text =
        "# test vocabulary\nn02084071\tdog\t30\nn02121620\tcat\t20\nn02958343\tcar\t10\n";
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

// Builds the head of one class and checks it equals the mean of `rows`.
static void head_is_mean_of(struct fixture *f, const struct transfer_class *c, const int *rows,
                            int nrows) {
    float w[C], b;
    transfer_build_head(c, 1, f->head_w, f->head_b, V, C, 7, w, &b);
    for (int j = 0; j < C; j++) {
        double expect = 0;
        for (int i = 0; i < nrows; i++) expect += f->head_w[rows[i] * C + j];
        assert_float_equal(w[j], expect / nrows, 1e-6);
    }
    double expect_b = 0;
    for (int i = 0; i < nrows; i++) expect_b += f->head_b[rows[i]];
    assert_float_equal(b, expect_b / nrows, 1e-6);
}

static void exact_id(void **state) {
    struct fixture *f = *state;
    struct transfer_class c;
    transfer_match(f->matcher, "n02121620", &c);
    assert_int_equal(c.how, TRANSFER_ID);
    assert_int_equal(c.nsynsets, 1);
    assert_string_equal(c.synsets[0].id, "n02121620");
    assert_int_equal(c.synsets[0].row, CAT);
    assert_int_equal(c.nearest, 0);
    assert_string_equal(c.name, "n02121620");
    head_is_mean_of(f, &c, (int[]){CAT}, 1);
    // ImageNet style: the id, then a display name.
    transfer_match(f->matcher, "n02958343\tsports car, sport car\r\n", &c);
    assert_int_equal(c.how, TRANSFER_ID);
    assert_int_equal(c.synsets[0].row, CAR);
    assert_string_equal(c.name, "sports car, sport car");
}

static void name(void **state) {
    struct fixture *f = *state;
    struct transfer_class c;
    transfer_match(f->matcher, "Dogs", &c);  // morphology, case
    assert_int_equal(c.how, TRANSFER_NAME);
    assert_int_equal(c.nsynsets, 1);
    assert_string_equal(c.synsets[0].id, "n02084071");
    assert_int_equal(c.synsets[0].row, DOG);
    assert_string_equal(c.name, "Dogs");
    head_is_mean_of(f, &c, (int[]){DOG}, 1);
    // A multi-word WordNet lemma is one synset, not its words: "motor vehicle" is
    // motor_vehicle.n.01 (n03791235), which is not in the vocabulary.
    transfer_match(f->matcher, "  motor vehicle ", &c);
    assert_int_equal(c.how, TRANSFER_NAME);
    assert_int_equal(c.nsynsets, 1);
    assert_string_equal(c.synsets[0].id, "n03791235");
}

static void multi_synset_average(void **state) {
    struct fixture *f = *state;
    struct transfer_class c;
    transfer_match(f->matcher, "dog and cat", &c);
    assert_int_equal(c.how, TRANSFER_CAPTION);
    assert_int_equal(c.nsynsets, 2);
    assert_int_equal(c.synsets[0].row, DOG);
    assert_int_equal(c.synsets[1].row, CAT);
    head_is_mean_of(f, &c, (int[]){DOG, CAT}, 2);
    // The same synset twice counts once.
    transfer_match(f->matcher, "dog, dogs and a cat", &c);
    assert_int_equal(c.nsynsets, 2);
    head_is_mean_of(f, &c, (int[]){DOG, CAT}, 2);
}

static void nearest_by_path_similarity(void **state) {
    struct fixture *f = *state;
    const struct wordnet *wn = labeler_wordnet(f->labeler);
    struct hypernyms *h = hypernyms_load(wn, NULL);
    assert_non_null(h);
    int dog = wordnet_synset_index(wn, 2084071), cat = wordnet_synset_index(wn, 2121620);
    int puppy = wordnet_synset_index(wn, 1322604), car = wordnet_synset_index(wn, 2958343);
    // NLTK: dog.n.01 path_similarity cat.n.01 = 0.2, puppy.n.01 -> dog.n.01 is one hypernym step.
    assert_float_equal(hypernyms_path_similarity(h, dog, cat), 0.2, 1e-12);
    assert_float_equal(hypernyms_path_similarity(h, cat, dog), 0.2, 1e-12);
    assert_float_equal(hypernyms_path_similarity(h, puppy, dog), 0.5, 1e-12);
    assert_float_equal(hypernyms_path_similarity(h, dog, dog), 1.0, 1e-12);
    int parents[8];
    assert_int_equal(hypernyms_parents(h, dog, parents, 8),
                     2);  // canine.n.02, domestic_animal.n.01
    int candidates[3] = {car, cat, dog};
    double sim;
    assert_int_equal(hypernyms_nearest(h, puppy, candidates, 3, &sim), 2);
    assert_float_equal(sim, 0.5, 1e-12);
    hypernyms_free(h);

    struct transfer_class c;
    transfer_match(f->matcher, "puppy", &c);
    assert_int_equal(c.how, TRANSFER_NAME);
    assert_int_equal(c.nsynsets, 1);
    assert_string_equal(c.synsets[0].id, "n01322604");
    assert_int_equal(c.synsets[0].row, DOG);
    assert_float_equal(c.synsets[0].similarity, 0.5, 1e-12);
    assert_int_equal(c.nearest, 1);
    head_is_mean_of(f, &c, (int[]){DOG}, 1);
    char line[256];
    transfer_format_synset(f->vocab, &c.synsets[0], line, sizeof line);
    assert_string_equal(line, "n01322604 puppy -> n02084071 dog (path similarity 0.500)");
    // An id outside the vocabulary goes the same way: motor_vehicle -> car (its hyponym).
    transfer_match(f->matcher, "n03791235", &c);
    assert_int_equal(c.how, TRANSFER_ID);
    assert_int_equal(c.synsets[0].row, CAR);
    assert_float_equal(c.synsets[0].similarity, 0.5, 1e-12);
}

static void missing(void **state) {
    struct fixture *f = *state;
    struct transfer_class c[3];
    transfer_match(f->matcher, "xyzzy plugh", &c[0]);  // no noun
    transfer_match(f->matcher, "n99999999", &c[1]);    // no such synset
    transfer_match(f->matcher, "n02084071", &c[2]);
    assert_int_equal(c[0].how, TRANSFER_RANDOM);
    assert_int_equal(c[0].nsynsets, 0);
    assert_int_equal(c[1].how, TRANSFER_RANDOM);
    assert_int_equal(c[1].nsynsets, 0);
    float w[3 * C], b[3], w2[3 * C], b2[3];
    transfer_build_head(c, 3, f->head_w, f->head_b, V, C, 11, w, b);
    transfer_build_head(c, 3, f->head_w, f->head_b, V, C, 11, w2, b2);
    assert_memory_equal(w, w2, sizeof w);  // deterministic for a seed
    transfer_build_head(c, 3, f->head_w, f->head_b, V, C, 12, w2, b2);
    assert_memory_not_equal(w, w2, C * sizeof(float));
    assert_memory_not_equal(w, w + C, C * sizeof(float));  // each class its own row
    float mean_b = (f->head_b[0] + f->head_b[1] + f->head_b[2]) / 3;
    assert_float_equal(b[0], mean_b, 1e-6);
    assert_float_equal(b[1], mean_b, 1e-6);
    for (int j = 0; j < C; j++) assert_float_equal(w[2 * C + j], f->head_w[DOG * C + j], 0);
}

static void head_file(void **state) {
    struct fixture *f = *state;
    struct transfer_class c[2];
    transfer_match(f->matcher, "cat", &c[0]);
    transfer_match(f->matcher, "a \"quoted\" name", &c[1]);
    float w[2 * C], b[2];
    transfer_build_head(c, 2, f->head_w, f->head_b, V, C, 1, w, b);
    char path[] = "/tmp/catlip_test_head_XXXXXX";
    close(mkstemp(path));
    assert_int_equal(transfer_head_write(path, c, 2, C, w, b, vocab_hash(f->vocab), "ckpt.pb"), 0);
    int K;
    float *lw, *lb;
    char **names;
    assert_int_equal(transfer_head_load(path, &K, C, &lw, &lb, &names), 0);
    assert_int_equal(K, 2);
    assert_memory_equal(lw, w, sizeof w);
    assert_memory_equal(lb, b, sizeof b);
    assert_string_equal(names[0], "cat");
    assert_string_equal(names[1], "a \"quoted\" name");
    for (int k = 0; k < K; k++) free(names[k]);
    free(names);
    free(lw);
    free(lb);
    // Another model width is refused with a one-line error.
    assert_int_equal(transfer_head_load(path, &K, C + 1, &lw, &lb, NULL), -1);
    assert_non_null(strstr(catlip_error(), "differs from the model"));
    unlink(path);
    assert_int_equal(transfer_head_load(path, &K, C, &lw, &lb, NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_id),
        cmocka_unit_test(name),
        cmocka_unit_test(multi_synset_average),
        cmocka_unit_test(nearest_by_path_similarity),
        cmocka_unit_test(missing),
        cmocka_unit_test(head_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
