// Reading a forked child's output pipe: to its end, because one line may come in several
// writes (catlip_die writes its prefix, the message and the newline separately).
#pragma once
#include <stddef.h>
#include <unistd.h>

// Reads fd into buf until end of file or size - 1 bytes; NUL-terminates; returns the length.
static inline size_t read_to_end(int fd, char *buf, size_t size) {
    size_t used = 0;
    ssize_t got;
    while (used + 1 < size && (got = read(fd, buf + used, size - 1 - used)) > 0) used += (size_t)got;
    buf[used] = '\0';
    return used;
}
