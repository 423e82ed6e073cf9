// xaligned_alloc (core/check.h): 64-byte aligned and zeroed; from 4 MB up also 2 MB aligned and
// asked for on transparent huge pages unless CATLIP_HUGE_PAGES=0; a bad CATLIP_HUGE_PAGES is a
// one-line error.
//
// Two ctest paths (CATLIP_TEST_PATH): "basic" (alignment, zeroing, the setting's values) runs
// anywhere; "huge_pages" reads back from /proc/self/smaps that a big buffer is on 2 MB pages,
// and is Skipped where the kernel has no transparent huge pages or they are set to "never".
// The setting is read once per process, so each value is tried in a fresh process: this
// program re-executed with --child (one 16 MB allocation, checked aligned and zeroed; prints its
// AnonHugePages in kB).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "cpu_require.h"
#include "rerun_self.h"

#define MB ((size_t)1 << 20)
#define CHILD_BYTES (16 * MB)

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

// AnonHugePages (kB) of the mapping of this process that holds address a; -1 if none found.
static long anon_huge_kb(uintptr_t a) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            continue;
        }
        if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) break;
    }
    fclose(f);
    return kb;
}

static int child_main(void) {
    unsigned char *p = xaligned_alloc(CHILD_BYTES);
    long kb = anon_huge_kb((uintptr_t)p);
    printf("%ld\n", kb);
    int ok = (uintptr_t)p % 64 == 0 && all_zero(p, CHILD_BYTES);
    free(p);
    return ok ? 0 : 4;
}

// Runs this program with --child and CATLIP_HUGE_PAGES=value (NULL: unset); its stdout to out,
// stderr to err; returns its exit status.
static int run_child(const char *value, char *out, size_t out_size, char *err, size_t err_size) {
    return rerun_self("test_alloc", "--child", "CATLIP_HUGE_PAGES", value, out, out_size, err,
                      err_size);
}

static void small_buffers_are_aligned_and_zeroed(void **state) {
    (void)state;
    const size_t sizes[] = {0, 1, 63, 64, 4097, 4 * MB - 64};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = xaligned_alloc(sizes[i]);
        assert_int_equal((uintptr_t)p % 64, 0);
        assert_true(all_zero(p, sizes[i]));
        memset(p, 0xff, sizes[i]);
        free(p);
    }
}

static void big_buffers_start_on_2mb_and_are_zeroed(void **state) {
    (void)state;
    // From the heap, not fresh mmap()s (whose pages are zero anyway), so that the second round
    // gets the first round's memory back, 0xff, and only the zeroing makes it zero
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 32 * MB), 1);
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, 512 * MB), 1);
    const size_t sizes[] = {4 * MB, 9 * MB + 100, 33 * MB};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = xaligned_alloc(sizes[i]);
            assert_int_equal((uintptr_t)p % (2 * MB), 0);
            assert_true(all_zero(p, sizes[i]));
            memset(p, 0xff, sizes[i]);
            free(p);
        }
}

static void setting_values(void **state) {
    (void)state;
    char out[256], err[512];
    const char *bad[] = {"2", "yes", " ", "01", "-1", "1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(run_child(bad[i], out, sizeof out, err, sizeof err), 2);
        assert_non_null(strstr(err, "catlip: error: CATLIP_HUGE_PAGES="));
        assert_non_null(strstr(err, "not 0 (4 KB pages) or 1"));
        assert_non_null(strchr(err, '\n'));
        assert_true(strchr(err, '\n')[1] == '\0');  // one line
        assert_string_equal(out, "");
    }
    const char *good[] = {NULL, "", "0", "1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(run_child(good[i], out, sizeof out, err, sizeof err), 0);
        assert_string_equal(err, "");
    }
}

// The kernel's transparent_hugepage mode: "always", "madvise", "never", or NULL without THP.
static const char *thp_mode(void) {
    static char buf[128];
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *modes[] = {"always", "madvise", "never"};
    for (int i = 0; i < 3; i++) {
        char marked[16];
        snprintf(marked, sizeof marked, "[%s]", modes[i]);
        if (strstr(buf, marked)) return modes[i];
    }
    return NULL;
}

static void big_buffers_on_huge_pages(void **state) {
    (void)state;
    const char *mode = thp_mode();
    if (mode == NULL || strcmp(mode, "never") == 0) {
        test_note_cpu_lacks("transparent huge pages (kernel mode never or absent)");
        skip();
    }
    char out[256], err[512];
    assert_int_equal(run_child(NULL, out, sizeof out, err, sizeof err), 0);
    long kb = strtol(out, NULL, 10);
    print_message("THP %s: a 16 MB buffer has %ld kB on 2 MB pages\n", mode, kb);
    // all 8 whole 2 MB pieces, unless memory is too fragmented for some: at least one
    assert_true(kb >= 2048);
    assert_int_equal(run_child("0", out, sizeof out, err, sizeof err), 0);
    kb = strtol(out, NULL, 10);
    print_message("THP %s, CATLIP_HUGE_PAGES=0: %ld kB on 2 MB pages\n", mode, kb);
    if (strcmp(mode, "madvise") == 0) assert_int_equal(kb, 0);  // "always" gives them unasked
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--child") == 0) return child_main();
    const struct CMUnitTest basic[] = {
        cmocka_unit_test(small_buffers_are_aligned_and_zeroed),
        cmocka_unit_test(big_buffers_start_on_2mb_and_are_zeroed),
        cmocka_unit_test(setting_values),
    };
    const struct CMUnitTest huge[] = {
        cmocka_unit_test(big_buffers_on_huge_pages),
    };
    int failed = 0;
    if (test_path_selected("basic"))
        failed += cmocka_run_group_tests_name("basic", basic, NULL, NULL);
    if (test_path_selected("huge_pages"))
        failed += cmocka_run_group_tests_name("huge_pages", huge, NULL, NULL);
    return test_exit_status(failed);
}
