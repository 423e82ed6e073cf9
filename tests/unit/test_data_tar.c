// The tar reader against archives made by Python's tarfile and GNU tar, and against damage.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/check.h"
#include "data/tar.h"
#include "data/tar_writer.h"
#include "tests/data/fixtures.h"

static const char *dir;

struct entry {
    char name[4200];
    uint64_t offset, size;
};

// Lists `tar_name` with tar.h and checks it against tarfile's manifest, member by member.
static void check_against_manifest(const char *tar_name) {
    char path[1024], manifest[1100];
    snprintf(path, sizeof path, "%s/%s", dir, tar_name);
    snprintf(manifest, sizeof manifest, "%s.manifest", path);
    FILE *f = fopen(manifest, "r");
    assert_non_null(f);
    struct tar_reader *tar;
    assert_int_equal(tar_reader_open(&tar, path), 0);
    static char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        struct entry e;
        char *t1 = strchr(line, '\t');
        assert_non_null(t1);
        *t1 = '\0';
        assert_true(strlen(line) < sizeof e.name);
        memcpy(e.name, line, strlen(line) + 1);
        e.offset = strtoull(t1 + 1, &t1, 10);
        e.size = strtoull(t1 + 1, NULL, 10);
        struct tar_member m;
        assert_int_equal(tar_reader_next(tar, &m), 1);
        assert_string_equal(m.name, e.name);
        assert_int_equal(m.data_offset, e.offset);
        assert_int_equal(m.size, e.size);
        // The bytes are the file's bytes.
        char *bytes = xmalloc(m.size + 1);
        assert_int_equal(tar_member_read(tar, &m, bytes), 0);
        if (!strcmp(m.name, "a.txt")) assert_memory_equal(bytes, "hello\n", 6);
        free(bytes);
        n++;
    }
    fclose(f);
    struct tar_member m;
    assert_int_equal(tar_reader_next(tar, &m), 0);
    assert_true(n >= 4);
    struct tar_skips s = tar_reader_skips(tar);
    assert_int_equal(s.bad_headers, 0);
    assert_int_equal(s.truncated, 0);
    tar_reader_close(tar);
}

static void test_python_ustar(void **state) { check_against_manifest("py_ustar.tar"); }
static void test_python_gnu(void **state) { check_against_manifest("py_gnu.tar"); }
static void test_python_pax(void **state) { check_against_manifest("py_pax.tar"); }
static void test_python_pax_global(void **state) { check_against_manifest("py_pax_global.tar"); }
static void test_gnu_tar_gnu(void **state) { check_against_manifest("gnu_gnu.tar"); }
static void test_gnu_tar_pax(void **state) { check_against_manifest("gnu_pax.tar"); }
static void test_gnu_tar_ustar(void **state) { check_against_manifest("gnu_ustar.tar"); }

// Lists everything, returning the member count and the skips.
static int list_all(const char *name, struct tar_skips *skips, int *rc_out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct tar_reader *tar;
    assert_int_equal(tar_reader_open(&tar, path), 0);
    struct tar_member m;
    int n = 0, rc;
    while ((rc = tar_reader_next(tar, &m)) == 1) {
        assert_true(m.data_offset + m.size <= tar_reader_file_size(tar));
        n++;
    }
    *rc_out = rc;
    *skips = tar_reader_skips(tar);
    tar_reader_close(tar);
    return n;
}

static void test_garbage_header_is_skipped_and_counted(void **state) {
    struct tar_skips s;
    int rc;
    // m1's header is garbage: m0, m2, m3, m4 remain.
    assert_int_equal(list_all("garbage_header.tar", &s, &rc), 4);
    assert_int_equal(rc, 0);
    assert_int_equal(s.bad_headers, 1);
    assert_int_equal(s.truncated, 0);
}

static void test_truncated_member_ends_listing(void **state) {
    struct tar_skips s;
    int rc;
    assert_int_equal(list_all("truncated.tar", &s, &rc), 2);  // m0, m1 complete; m2 cut
    assert_int_equal(rc, 0);
    assert_int_equal(s.truncated, 1);
}

static void test_random_bytes_and_empty_files_never_crash(void **state) {
    struct tar_skips s;
    int rc;
    assert_int_equal(list_all("random.tar", &s, &rc), 0);
    assert_int_equal(rc, 0);
    assert_true(s.bad_headers >= 1);
    assert_int_equal(list_all("empty.tar", &s, &rc), 0);
    assert_int_equal(rc, 0);
    // A header whose data is missing entirely.
    assert_int_equal(list_all("headers_only.tar", &s, &rc), 0);
    assert_int_equal(s.truncated, 1);
}

static void test_missing_file_is_a_clear_error(void **state) {
    struct tar_reader *tar;
    assert_int_equal(tar_reader_open(&tar, "/nonexistent/shard.tar"), -1);
    assert_non_null(strstr(catlip_error(), "/nonexistent/shard.tar"));
}

// tar_writer output is read back by tar.h and by GNU tar (names with long paths included).
static void test_writer_round_trip(void **state) {
    char path[1024], cmd[4096];
    snprintf(path, sizeof path, "%s/written.tar", dir);
    struct tar_writer w;
    assert_int_equal(tar_writer_open(&w, path, 1700000000), 0);
    char long_name[400];
    memset(long_name, 'n', 300);
    strcpy(long_name + 300, ".txt");
    char split_name[300];
    snprintf(split_name, sizeof split_name, "%0150d/%090d.jpg", 0, 0);
    const char *names[] = {"000000000.jpg", long_name, split_name, "000000000.txt"};
    for (int i = 0; i < 4; i++) assert_int_equal(tar_writer_add(&w, names[i], names[i], strlen(names[i])), 0);
    assert_int_equal(tar_writer_close(&w), 0);
    struct tar_reader *tar;
    assert_int_equal(tar_reader_open(&tar, path), 0);
    struct tar_member m;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tar_reader_next(tar, &m), 1);
        assert_string_equal(m.name, names[i]);
        char buf[512];
        assert_int_equal(tar_member_read(tar, &m, buf), 0);
        assert_memory_equal(buf, names[i], strlen(names[i]));
    }
    assert_int_equal(tar_reader_next(tar, &m), 0);
    tar_reader_close(tar);
    snprintf(cmd, sizeof cmd, "tar -tf '%s' | grep -c . | grep -qx 4 && /usr/bin/python3 -c \"import tarfile,sys; "
                              "n=tarfile.open(sys.argv[1]).getnames(); sys.exit(0 if len(n)==4 and n[1]==sys.argv[2] else 1)\" '%s' '%s'",
             path, path, long_name);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    dir = fixture_make("tars");
    if (!dir) {
        fprintf(stderr, "cannot make tar fixtures (needs /usr/bin/python3 and GNU tar)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_ustar),
        cmocka_unit_test(test_python_gnu),
        cmocka_unit_test(test_python_pax),
        cmocka_unit_test(test_python_pax_global),
        cmocka_unit_test(test_gnu_tar_gnu),
        cmocka_unit_test(test_gnu_tar_pax),
        cmocka_unit_test(test_gnu_tar_ustar),
        cmocka_unit_test(test_garbage_header_is_skipped_and_counted),
        cmocka_unit_test(test_truncated_member_ends_listing),
        cmocka_unit_test(test_random_bytes_and_empty_files_never_crash),
        cmocka_unit_test(test_missing_file_is_a_clear_error),
        cmocka_unit_test(test_writer_round_trip),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    fixture_cleanup();
    return failed;
}
