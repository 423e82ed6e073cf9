// libFuzzer target: an HTTP client's byte stream through the status server's request path
// (http_parser, caps, routing, rendering), cut into pieces at fuzzer-chosen points. Output
// must be whole responses, each starting with a status line, and never unbounded.
#include <stdint.h>
#include <string.h>

#include "coordinator/http_status.h"
#include "core/log.h"
#include "tests/status/fake_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) log_set_level(LOG_ERROR), quiet = 1;
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    struct http_session *s = http_session_create(&src, "fuzz");
    struct text_buffer out = {0};
    size_t piece = size ? (size_t)data[0] + 1 : 1;
    int rc = 0;
    for (size_t i = size ? 1 : 0; i < size && rc == 0; i += piece)
        rc =
            http_session_feed(s, (const char *)data + i, size - i < piece ? size - i : piece, &out);
    if (out.len && strncmp(out.data, "HTTP/1.1 ", 9) != 0) __builtin_trap();
    if (f.controls[0] || f.controls[1]) __builtin_trap();  // HTTP never controls the run
    text_free(&out);
    http_session_destroy(s);
    return 0;
}
