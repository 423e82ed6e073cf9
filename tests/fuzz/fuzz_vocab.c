// libFuzzer target: the vocabulary TSV reader (text/vocab.h vocab_load) on any file. A
// vocabulary that loads must be consistent: ids index back to their class, and the hash is
// stable.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "text/vocab.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    fuzz_error_clear();
    struct vocab *v = vocab_load(path);
    if (!v) {
        fuzz_error_check();
    } else {
        int n = vocab_size(v);
        if (n <= 0) __builtin_trap();
        for (int i = 0; i < n; i++) {
            const char *id = vocab_id(v, i);
            if (vocab_index(v, id) != i || !vocab_lemma(v, i)[0] || vocab_count(v, i) == 0) __builtin_trap();
            if (vocab_index_offset(v, (uint32_t)strtoul(id + 1, NULL, 10)) != i) __builtin_trap();
        }
        if (!vocab_header(v)) __builtin_trap();
        vocab_hash(v);
        vocab_free(v);
    }
    close(fd);
    return 0;
}
