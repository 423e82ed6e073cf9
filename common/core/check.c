#include "core/check.h"

#include <stdarg.h>
#include <string.h>

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

void *xaligned_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) out_of_memory(bytes);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}
