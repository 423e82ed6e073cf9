// libFuzzer target: the tar reader (data/tar.h) lists every member of the input and reads
// each one. Members must lie inside the file; listing must end.
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "data/tar.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    struct tar_reader *tar;
    if (tar_reader_open_fd(&tar, fd, path) != 0) abort();  // a memfd always opens
    struct tar_member m;
    int rc;
    uint64_t members = 0;
    while ((rc = tar_reader_next(tar, &m)) == 1) {
        if (m.data_offset > size || m.size > size - m.data_offset) __builtin_trap();
        if (m.name_len != strlen(m.name) || m.name_len > TAR_NAME_MAX) __builtin_trap();
        char *bytes = xmalloc(m.size ? m.size : 1);
        if (tar_member_read(tar, &m, bytes) != 0) __builtin_trap();
        if (memcmp(bytes, data + m.data_offset, m.size) != 0) __builtin_trap();
        free(bytes);
        // Every member takes at least its 512-byte header.
        if (++members > size / 512) __builtin_trap();
    }
    if (rc < 0) __builtin_trap();  // a memfd has no read errors
    tar_reader_close(tar);
    close(fd);
    return 0;
}
