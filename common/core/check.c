#include "core/check.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Thread_local char last_error[512];

int catlip_error_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    for (char *p = last_error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return -1;
}

const char *catlip_error(void) { return last_error[0] ? last_error : "unknown error"; }

void catlip_error_print(void) { fprintf(stderr, "catlip: error: %s\n", catlip_error()); }

void catlip_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("catlip: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void out_of_memory(size_t bytes) {
    fprintf(stderr, "catlip: error: out of memory allocating %zu bytes\n", bytes);
    exit(3);
}

void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) out_of_memory(bytes);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t bytes) {
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p) out_of_memory(bytes);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

// Big buffers (activations, weights, optimizer state, gradients) go on 2 MB pages where the
// kernel gives them on request (transparent_hugepage = madvise, Debian's default; "always"
// needs no request, "never" ignores it). On 4 KB pages vit_base's bf16 step ran 1-5% slower
// (its working sets pass the TLB's reach; AdamW 19%) and process start took 600,000 page
// faults for vit_tiny's 1.3 GB (bench/NOTES.md). CATLIP_HUGE_PAGES=0 turns the request off.
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN_BYTES ((size_t)4 << 20)

static int huge_pages_wanted;
static pthread_once_t huge_pages_once = PTHREAD_ONCE_INIT;

static void read_huge_pages_setting(void) {
    const char *env = getenv("CATLIP_HUGE_PAGES");
    if (env == NULL || env[0] == '\0' || strcmp(env, "1") == 0)
        huge_pages_wanted = 1;
    else if (strcmp(env, "0") == 0)
        huge_pages_wanted = 0;
    else
        catlip_die("CATLIP_HUGE_PAGES=%s: not 0 (4 KB pages) or 1 (2 MB pages, the default)", env);
}

void *xaligned_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    pthread_once(&huge_pages_once, read_huge_pages_setting);
    void *p;
    if (rounded >= HUGE_MIN_BYTES && huge_pages_wanted) {
        // starting on a 2 MB boundary, so that every whole 2 MB of the buffer can be one page
        // (the tail past the last boundary stays on 4 KB pages); the memset below faults them in
        if (posix_memalign(&p, HUGE_PAGE, rounded) != 0) out_of_memory(bytes);
        (void)madvise(p, rounded & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);  // refused: 4 KB pages
    } else {
        p = aligned_alloc(64, rounded);
        if (!p) out_of_memory(bytes);
    }
    memset(p, 0, rounded);
    return p;
}
