// libFuzzer target: run configuration (core/config.h). The first input byte picks the case:
//   even: the rest is a YAML file for config_load_file;
//   odd:  the rest is `--set` assignments, one per line, for config_set.
// A configuration that loads must survive config_to_yaml and load back to the same YAML.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/config.h"
#include "core/log.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    if (size < 1) return 0;
    int mode = data[0];
    data++, size--;
    static struct config cfg, back;
    config_defaults(&cfg);
    int ok = 1;
    fuzz_error_clear();
    if (!(mode & 1)) {
        char path[64];
        int fd = fuzz_memfd(data, size, path, sizeof path);
        if (config_load_file(&cfg, path) != 0) ok = 0, fuzz_error_check();
        close(fd);
    } else {
        char *text = xmalloc(size + 1);
        memcpy(text, data, size);
        text[size] = '\0';
        for (char *line = text, *next; ok && line; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = '\0';
            if (!*line) continue;
            fuzz_error_clear();
            if (config_set(&cfg, line) != 0) ok = 0, fuzz_error_check();
        }
        free(text);
    }
    if (!ok) return 0;
    fuzz_error_clear();
    if (config_validate(&cfg) != 0) fuzz_error_check();
    char *yaml = config_to_yaml(&cfg);
    char path[64];
    int fd = fuzz_memfd(yaml, strlen(yaml), path, sizeof path);
    config_defaults(&back);
    if (config_load_file(&back, path) != 0) __builtin_trap();  // our own output loads
    char *yaml2 = config_to_yaml(&back);
    if (strcmp(yaml, yaml2) != 0) __builtin_trap();
    free(yaml);
    free(yaml2);
    close(fd);
    return 0;
}
