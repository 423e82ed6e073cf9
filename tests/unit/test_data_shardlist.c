// Shard-list expansion: brace ranges with padding, alternatives, commas, globs, @files, errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "data/shardlist.h"

static void expect(const char *pattern, const char *const *want, size_t n) {
    struct shard_list l;
    assert_int_equal(shardlist_expand(pattern, &l), 0);
    assert_int_equal(l.count, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(l.paths[i], want[i]);
    shardlist_free(&l);
}

static void test_zero_padded_range(void **state) {
    struct shard_list l;
    assert_int_equal(shardlist_expand("data/{00000..00099}.tar", &l), 0);
    assert_int_equal(l.count, 100);
    assert_string_equal(l.paths[0], "data/00000.tar");
    assert_string_equal(l.paths[7], "data/00007.tar");
    assert_string_equal(l.paths[99], "data/00099.tar");
    shardlist_free(&l);
    const char *plain[] = {"s8.tar", "s9.tar", "s10.tar"};
    expect("s{8..10}.tar", plain, 3);
    const char *down[] = {"s03", "s02", "s01"};
    expect("s{03..1}", down, 3);
}

static void test_alternatives_nesting_and_commas(void **state) {
    const char *want[] = {"a/x0.tar", "a/x1.tar", "a/y.tar", "b/00.tar", "b/01.tar", "c d.tar"};
    expect("a/{x{0..1},y}.tar,b/{00..01}.tar,c d.tar", want, 6);
    const char *lit[] = {"odd{x}.tar"};
    expect("odd{x}.tar", lit, 1);
}

static void test_globs_sorted_and_list_files(void **state) {
    char dir[] = "/tmp/catlip-shardlist-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    const char *names[] = {"b.tar", "a.tar", "c.txt"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        fclose(f);
    }
    char pattern[300], want0[300], want1[300];
    snprintf(pattern, sizeof pattern, "%s/*.tar", dir);
    snprintf(want0, sizeof want0, "%s/a.tar", dir);
    snprintf(want1, sizeof want1, "%s/b.tar", dir);
    const char *want[] = {want0, want1};
    expect(pattern, want, 2);
    // @file: one pattern per line, comments and blanks ignored.
    snprintf(path, sizeof path, "%s/list.txt", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "# shards\n%s/b.tar\n\n%s/a.tar\n", dir, dir);
    fclose(f);
    snprintf(pattern, sizeof pattern, "@%s", path);
    const char *want2[] = {want1, want0};
    expect(pattern, want2, 2);
    // A glob that matches nothing is an error naming it.
    struct shard_list l;
    snprintf(pattern, sizeof pattern, "%s/*.zip", dir);
    assert_int_equal(shardlist_expand(pattern, &l), -1);
    assert_non_null(strstr(catlip_error(), "matches no files"));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_errors(void **state) {
    struct shard_list l;
    assert_int_equal(shardlist_expand("data/{0..9.tar", &l), -1);
    assert_non_null(strstr(catlip_error(), "unmatched"));
    assert_int_equal(shardlist_expand("data/0..9}.tar", &l), -1);
    assert_int_equal(shardlist_expand("", &l), -1);
    assert_int_equal(shardlist_expand(",,", &l), -1);
    assert_int_equal(shardlist_expand("{0..99999999999}", &l), -1);
    assert_int_equal(shardlist_expand("@/nonexistent/list", &l), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_padded_range),
        cmocka_unit_test(test_alternatives_nesting_and_commas),
        cmocka_unit_test(test_globs_sorted_and_list_files),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
