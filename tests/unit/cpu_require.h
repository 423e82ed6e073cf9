// For unit programs that hold a SIMD path to its reference. ctest registers one test per path
// (environment CATLIP_TEST_PATH=<path>; unset: every path), so a path this CPU lacks — or that
// CATLIP_CPU_DISABLE masks — shows in ctest's summary as Skipped (SKIP_RETURN_CODE 77) and
// never hides a path that ran, and never counts as passed.
//
// Include after <cmocka.h>.
#pragma once
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"

#define TEST_SKIP_EXIT_CODE 77  // tests/CMakeLists.txt gives ctest the same number

static int cpu_require_skips;

// True when this run covers `path`.
static inline bool test_path_selected(const char *path) {
    const char *only = getenv("CATLIP_TEST_PATH");
    return only == NULL || only[0] == '\0' || strcmp(only, path) == 0;
}

// Notes that a selected path could not be tested on this CPU; the program will exit 77.
static inline void test_note_cpu_lacks(const char *path) {
    if (cpu_require_skips++ == 0)
        print_message("[  SKIPPED ] %s: this CPU lacks it (or CATLIP_CPU_DISABLE masks it)\n",
                      path);
}

// In a test that needs `feature`: skip the test (and mark the program skipped) without it.
#define REQUIRE_CPU(feature)                                \
    do {                                                    \
        if (!cpu_has(feature)) {                            \
            test_note_cpu_lacks(cpu_feature_name(feature)); \
            skip();                                         \
        }                                                   \
    } while (0)

// main's return value: failures win; otherwise 77 when a selected path could not run.
static inline int test_exit_status(int failed) {
    return failed ? failed : cpu_require_skips ? TEST_SKIP_EXIT_CODE : 0;
}
