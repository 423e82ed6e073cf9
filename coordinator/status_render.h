// What the status server says, as text: the StatusReply as JSON (GET /status and
// `catlip status --json`), as Prometheus text exposition (GET /metrics), and as a small
// self-refreshing HTML page with inline SVG curves (GET /). Pure functions of their inputs.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "catlip.pb-c.h"
#include "core/check.h"

// A growable byte string. Zero-initialise; free with text_free.
struct text_buffer {
    char *data;  // NUL-terminated while len < cap
    size_t len;
    size_t cap;
};
void text_append(struct text_buffer *t, const char *bytes, size_t n);
void text_printf(struct text_buffer *t, const char *fmt, ...) CATLIP_PRINTF(2, 3);
void text_free(struct text_buffer *t);

// "starting", "training", "checkpointing", "finished", "failed" ("unknown" otherwise).
const char *status_state_name(int state);

// The reply as a JSON object with the StatusReply field names; state is its name, skipped is
// an object {reason: count}. The caller json_decref()s it.
json_t *status_reply_json(const Catlip__StatusReply *r);

// Prometheus text exposition format 0.0.4, every family with HELP and TYPE, prefix catlip_.
void status_render_metrics(struct text_buffer *out, const Catlip__StatusReply *r);

// The logged-interval history drawn by the page.
struct status_history {
    const int64_t *steps;
    const double *loss, *lr, *images_per_second;
    int n;
};
// The dashboard: a status table and SVG curves of loss, learning rate and images/s over steps;
// refreshes itself every refresh_seconds. No scripts, no external resources.
void status_render_html(struct text_buffer *out, const Catlip__StatusReply *r,
                        const struct status_history *h, int refresh_seconds);
