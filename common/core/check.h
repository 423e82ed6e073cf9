// Checks and errors.
//
// Two kinds of failure, kept apart (see docs/style.md):
// - programming errors (a broken invariant): CATLIP_ASSERT aborts with file and line;
// - errors the outside world causes (bad config, missing file, corrupt data): the function
//   returns -1 after catlip_error_set() recorded one line naming the thing and what to do,
//   and the caller decides (usually: print "catlip: error: ..." and exit non-zero).
#pragma once
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define CATLIP_ASSERT(cond)                                                                \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: internal error: assertion '%s' failed\n", __FILE__,    \
                    __LINE__, #cond);                                                      \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#if defined(__GNUC__)
#define CATLIP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CATLIP_PRINTF(a, b)
#endif

// Records the last error of this thread (one line, no trailing newline). Returns -1 so that
// `return catlip_error_set(...)` reads naturally. Control characters in the result (a name
// quoted from a corrupt file may hold a newline) become '?', so the message stays one line.
int catlip_error_set(const char *fmt, ...) CATLIP_PRINTF(1, 2);
const char *catlip_error(void);

// Prints "catlip: error: <catlip_error()>" to stderr: how every command reports a failure.
void catlip_error_print(void);

// Prints "catlip: error: <msg>" to stderr and exits with status 2. For top-level use only.
_Noreturn void catlip_die(const char *fmt, ...) CATLIP_PRINTF(1, 2);

// Allocation that cannot fail quietly: on out-of-memory it prints how much was asked and exits.
void *xmalloc(size_t bytes);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t bytes);
char *xstrdup(const char *s);
// 64-byte aligned (cache line and AVX-512 vector), zero-filled; release with free(). From 4 MB
// up: 2 MB aligned and asked for on transparent huge pages (madvise), unless the environment
// has CATLIP_HUGE_PAGES=0 (any value but 0, 1 or empty: a one-line error, exit 2).
void *xaligned_alloc(size_t bytes);
