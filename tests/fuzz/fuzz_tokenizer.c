// libFuzzer target: the CLIP text tower's tokenizer file reader (text/tokenizer.h
// tokenizer_load) on any file. A tokenizer that loads must be consistent: every word maps back
// to its id, and encoding a caption made of its words gives those ids, <eot> last.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "tests/fuzz/fuzz_file.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof path);
    fuzz_error_clear();
    struct tokenizer *tok = tokenizer_load(path);
    if (!tok) {
        fuzz_error_check();
    } else {
        int n = tokenizer_size(tok);
        if (n <= TOKENIZER_SPECIALS || !tokenizer_header(tok)) __builtin_trap();
        for (int id = TOKENIZER_SPECIALS; id < n; id++) {
            const char *w = tokenizer_word(tok, id);
            if (tokenizer_id(tok, w, strlen(w)) != id) __builtin_trap();
            int32_t ids[4];
            int dropped;
            if (tokenizer_encode(tok, ids, 4, w, strlen(w), &dropped) != 3 || dropped != 0 ||
                ids[0] != TOKENIZER_SOT || ids[1] != id || ids[2] != TOKENIZER_EOT ||
                ids[3] != TOKENIZER_PAD)
                __builtin_trap();
        }
        tokenizer_hash(tok);
        tokenizer_free(tok);
    }
    close(fd);
    return 0;
}
