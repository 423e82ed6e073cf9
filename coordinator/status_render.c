#include "coordinator/status_render.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

// ---------------------------------------------------------------------------------------
// text buffer

static void text_reserve(struct text_buffer *t, size_t extra) {
    if (t->len + extra + 1 <= t->cap) return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + extra + 1) cap *= 2;
    t->data = xrealloc(t->data, cap);
    t->cap = cap;
}

void text_append(struct text_buffer *t, const char *bytes, size_t n) {
    text_reserve(t, n);
    if (n) memcpy(t->data + t->len, bytes, n);
    t->len += n;
    t->data[t->len] = '\0';
}

void text_printf(struct text_buffer *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        text_append(t, small, (size_t)n);
        return;
    }
    text_reserve(t, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void text_free(struct text_buffer *t) {
    free(t->data);
    *t = (struct text_buffer){0};
}

// ---------------------------------------------------------------------------------------
// JSON

const char *status_state_name(int state) {
    switch (state) {
        case CATLIP__STATUS_REPLY__STATE__STARTING: return "starting";
        case CATLIP__STATUS_REPLY__STATE__TRAINING: return "training";
        case CATLIP__STATUS_REPLY__STATE__CHECKPOINTING: return "checkpointing";
        case CATLIP__STATUS_REPLY__STATE__FINISHED: return "finished";
        case CATLIP__STATUS_REPLY__STATE__FAILED: return "failed";
        default: return "unknown";
    }
}

static const char *str_or_empty(const char *s) {
    return s ? s : "";
}

// jansson refuses non-UTF-8 strings; a path or a reason with stray bytes must not vanish.
static json_t *json_text(const char *s) {
    json_t *v = json_string(str_or_empty(s));
    return v ? v : json_string("(not UTF-8)");
}

// JSON has no NaN/Infinity: such values become null.
static json_t *json_number(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

static json_t *skips_json(Catlip__SkipCount *const *skips, size_t n) {
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, str_or_empty(skips[i]->reason),
                            json_integer((json_int_t)skips[i]->count));
    return o;
}

json_t *status_reply_json(const Catlip__StatusReply *r) {
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_text(r->run_id));
    json_object_set_new(o, "state", json_string(status_state_name(r->state)));
    json_object_set_new(o, "step", json_integer(r->step));
    json_object_set_new(o, "total_steps", json_integer(r->total_steps));
    json_object_set_new(o, "epoch", json_integer(r->epoch));
    json_object_set_new(o, "samples_seen", json_integer(r->samples_seen));
    json_object_set_new(o, "loss", json_number(r->loss));
    json_object_set_new(o, "learning_rate", json_number(r->learning_rate));
    json_object_set_new(o, "images_per_second", json_number(r->images_per_second));
    json_object_set_new(o, "eta_seconds", json_number(r->eta_seconds));
    json_object_set_new(o, "last_checkpoint_path", json_text(r->last_checkpoint_path));
    json_object_set_new(o, "last_checkpoint_step", json_integer(r->last_checkpoint_step));
    json_object_set_new(o, "start_unix_time", json_number(r->start_unix_time));
    json_object_set_new(o, "config_summary", json_text(r->config_summary));
    json_object_set_new(o, "skipped", skips_json(r->skipped, r->n_skipped));
    json_t *workers = json_array();
    for (size_t i = 0; i < r->n_workers; i++) {
        const Catlip__WorkerStatus *w = r->workers[i];
        json_t *row = json_object();
        json_object_set_new(row, "worker", json_integer(w->worker));
        json_object_set_new(row, "step", json_integer(w->step));
        json_object_set_new(row, "images_per_second", json_number(w->images_per_second));
        json_object_set_new(row, "data_wait_ratio", json_number(w->data_wait_ratio));
        json_object_set_new(row, "skipped", skips_json(w->skipped, w->n_skipped));
        json_array_append_new(workers, row);
    }
    json_object_set_new(o, "workers", workers);
    if (r->error && r->error[0]) json_object_set_new(o, "error", json_text(r->error));
    return o;
}

// ---------------------------------------------------------------------------------------
// Prometheus

// Sample values: Go-style floats, with the exposition format's spellings of the specials.
static void metric_value(struct text_buffer *out, double x) {
    if (isnan(x))
        text_printf(out, "NaN\n");
    else if (isinf(x))
        text_printf(out, "%sInf\n", x > 0 ? "+" : "-");
    else
        text_printf(out, "%.17g\n", x);
}

// A label value with \\, \" and \n escaped, as the format requires.
static void label_value(struct text_buffer *out, const char *s) {
    for (s = str_or_empty(s); *s; s++) {
        if (*s == '\\')
            text_append(out, "\\\\", 2);
        else if (*s == '"')
            text_append(out, "\\\"", 2);
        else if (*s == '\n')
            text_append(out, "\\n", 2);
        else
            text_append(out, s, 1);
    }
}

static void family(struct text_buffer *out, const char *name, const char *type, const char *help) {
    text_printf(out, "# HELP catlip_%s %s\n# TYPE catlip_%s %s\n", name, help, name, type);
}

static void sample(struct text_buffer *out, const char *name, const char *type, const char *help,
                   double value) {
    family(out, name, type, help);
    text_printf(out, "catlip_%s ", name);
    metric_value(out, value);
}

void status_render_metrics(struct text_buffer *out, const Catlip__StatusReply *r) {
    family(out, "info", "gauge", "Constant 1, labelled with the run id.");
    text_printf(out, "catlip_info{run_id=\"");
    label_value(out, r->run_id);
    text_printf(out, "\"} 1\n");
    family(out, "state", "gauge", "1 for the run's current state, 0 for the others.");
    for (int s = CATLIP__STATUS_REPLY__STATE__STARTING; s <= CATLIP__STATUS_REPLY__STATE__FAILED;
         s++)
        text_printf(out, "catlip_state{state=\"%s\"} %d\n", status_state_name(s),
                    (int)r->state == s);
    sample(out, "step", "gauge", "Optimizer steps completed.", (double)r->step);
    sample(out, "total_steps", "gauge", "Optimizer steps the run will take.",
           (double)r->total_steps);
    sample(out, "epoch", "gauge", "Current epoch (0-based).", (double)r->epoch);
    sample(out, "samples_total", "counter", "Training samples consumed (steps times global batch).",
           (double)r->samples_seen);
    sample(out, "loss", "gauge", "Training loss, mean over the last logging interval.", r->loss);
    sample(out, "learning_rate", "gauge", "Current learning rate.", r->learning_rate);
    sample(out, "images_per_second", "gauge",
           "Training throughput over the last logging interval, in images per second.",
           r->images_per_second);
    sample(out, "eta_seconds", "gauge", "Estimated time to the end of the run, in seconds.",
           r->eta_seconds);
    sample(out, "checkpoint_last_step", "gauge",
           "Step of the last checkpoint written (0: none yet).", (double)r->last_checkpoint_step);
    sample(out, "start_time_seconds", "gauge", "Unix time the coordinator started, in seconds.",
           r->start_unix_time);
    family(out, "skipped_samples_total", "counter",
           "Samples skipped, summed over workers, by reason.");
    for (size_t i = 0; i < r->n_skipped; i++) {
        text_printf(out, "catlip_skipped_samples_total{reason=\"");
        label_value(out, r->skipped[i]->reason);
        text_printf(out, "\"} %llu\n", (unsigned long long)r->skipped[i]->count);
    }
    if (r->n_workers == 0) return;
    family(out, "worker_step", "gauge", "Last step each worker reported.");
    for (size_t i = 0; i < r->n_workers; i++) {
        text_printf(out, "catlip_worker_step{worker=\"%d\"} ", r->workers[i]->worker);
        metric_value(out, (double)r->workers[i]->step);
    }
    family(out, "worker_images_per_second", "gauge",
           "Each worker's throughput at its last step, in images per second.");
    for (size_t i = 0; i < r->n_workers; i++) {
        text_printf(out, "catlip_worker_images_per_second{worker=\"%d\"} ", r->workers[i]->worker);
        metric_value(out, r->workers[i]->images_per_second);
    }
    family(out, "data_wait_ratio", "gauge",
           "Share of each worker's last step spent waiting for data (0..1).");
    for (size_t i = 0; i < r->n_workers; i++) {
        text_printf(out, "catlip_data_wait_ratio{worker=\"%d\"} ", r->workers[i]->worker);
        metric_value(out, r->workers[i]->data_wait_ratio);
    }
    family(out, "worker_skipped_samples_total", "counter",
           "Samples each worker skipped, by reason.");
    for (size_t i = 0; i < r->n_workers; i++)
        for (size_t k = 0; k < r->workers[i]->n_skipped; k++) {
            text_printf(out, "catlip_worker_skipped_samples_total{worker=\"%d\",reason=\"",
                        r->workers[i]->worker);
            label_value(out, r->workers[i]->skipped[k]->reason);
            text_printf(out, "\"} %llu\n", (unsigned long long)r->workers[i]->skipped[k]->count);
        }
}

// ---------------------------------------------------------------------------------------
// HTML

static void html_escaped(struct text_buffer *out, const char *s) {
    for (s = str_or_empty(s); *s; s++) {
        switch (*s) {
            case '<': text_append(out, "&lt;", 4); break;
            case '>': text_append(out, "&gt;", 4); break;
            case '&': text_append(out, "&amp;", 5); break;
            case '"': text_append(out, "&quot;", 6); break;
            case '\'': text_append(out, "&#39;", 5); break;
            default: text_append(out, s, 1);
        }
    }
}

static void format_seconds(char *buf, size_t n, double s) {
    if (!isfinite(s) || s <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}

enum { CHART_W = 420, CHART_H = 180, CHART_PAD = 40, CHART_MAX_POINTS = 400 };

// One curve y(step) as an SVG with axes labels at the extremes. class="curve" marks the
// polyline so a test can find it.
static void svg_curve(struct text_buffer *out, const char *id, const char *title,
                      const struct status_history *h, const double *y) {
    text_printf(
        out,
        "<figure><figcaption>%s</figcaption>\n<svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
        "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n"
        "<rect x=\"%d\" y=\"8\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#999\"/>\n",
        title, id, CHART_W, CHART_H, CHART_W, CHART_H, CHART_PAD, CHART_W - CHART_PAD - 8,
        CHART_H - 8 - 24);
    double x0 = 0, x1 = 0, lo = INFINITY, hi = -INFINITY;
    int first = -1, last = -1;
    for (int i = 0; i < h->n; i++) {
        if (!isfinite(y[i])) continue;
        if (first < 0) first = i;
        last = i;
        lo = fmin(lo, y[i]);
        hi = fmax(hi, y[i]);
    }
    if (first < 0) {
        text_printf(out, "<text x=\"%d\" y=\"%d\">no data yet</text>\n</svg></figure>\n",
                    CHART_W / 2 - 40, CHART_H / 2);
        return;
    }
    x0 = (double)h->steps[first];
    x1 = (double)h->steps[last];
    if (x1 <= x0) x1 = x0 + 1;
    if (hi <= lo) {
        hi += fabs(hi) * 0.05 + 1e-12;
        lo -= fabs(lo) * 0.05 + 1e-12;
    }
    const double left = CHART_PAD, right = CHART_W - 8, top = 8, bottom = CHART_H - 24;
    text_printf(out,
                "<polyline class=\"curve\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" "
                "points=\"");
    int stride = (last - first + 1 + CHART_MAX_POINTS - 1) / CHART_MAX_POINTS;
    if (stride < 1) stride = 1;
    for (int i = first; i <= last; i += stride) {
        if (!isfinite(y[i])) continue;
        double px = left + (h->steps[i] - x0) / (x1 - x0) * (right - left);
        double py = bottom - (y[i] - lo) / (hi - lo) * (bottom - top);
        text_printf(out, "%.1f,%.1f ", px, py);
    }
    if ((last - first) % stride != 0) {
        double px = right, py = bottom - (y[last] - lo) / (hi - lo) * (bottom - top);
        text_printf(out, "%.1f,%.1f", px, py);
    }
    text_printf(out,
                "\"/>\n<text x=\"2\" y=\"16\" font-size=\"10\">%.4g</text>"
                "<text x=\"2\" y=\"%d\" font-size=\"10\">%.4g</text>"
                "<text x=\"%d\" y=\"%d\" font-size=\"10\">step %lld</text>"
                "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">step "
                "%lld</text>\n</svg></figure>\n",
                hi, CHART_H - 26, lo, CHART_PAD, CHART_H - 8, (long long)x0, CHART_W - 8,
                CHART_H - 8, (long long)h->steps[last]);
}

static void row(struct text_buffer *out, const char *name, const char *value) {
    text_printf(out, "<tr><th>%s</th><td>", name);
    html_escaped(out, value);
    text_printf(out, "</td></tr>\n");
}

void status_render_html(struct text_buffer *out, const Catlip__StatusReply *r,
                        const struct status_history *h, int refresh_seconds) {
    char buf[512], eta[32];
    text_printf(out,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                "<meta http-equiv=\"refresh\" content=\"%d\">\n<title>catlip ",
                refresh_seconds);
    html_escaped(out, r->run_id);
    text_printf(out, " — step %lld/%lld</title>\n", (long long)r->step, (long long)r->total_steps);
    text_printf(out,
                "<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
                "table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #ccc;"
                "padding:3px 8px;text-align:left}th{background:#f0f0f0}"
                "figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-weight:bold}"
                "progress{width:420px}</style>\n</head><body>\n<h1>catlip run ");
    html_escaped(out, r->run_id);
    double frac = r->total_steps > 0 ? (double)r->step / (double)r->total_steps : 0;
    format_seconds(eta, sizeof eta, r->eta_seconds);
    text_printf(out,
                "</h1>\n<p><progress value=\"%.4f\" max=\"1\"></progress> %.1f%% — ETA %s</p>\n",
                frac, 100 * frac, eta);
    text_printf(out, "<table id=\"status\">\n");
    row(out, "state", status_state_name(r->state));
    snprintf(buf, sizeof buf, "%lld / %lld", (long long)r->step, (long long)r->total_steps);
    row(out, "step", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)r->epoch);
    row(out, "epoch", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)r->samples_seen);
    row(out, "samples seen", buf);
    snprintf(buf, sizeof buf, "%.4f", r->loss);
    row(out, "loss (last interval)", buf);
    snprintf(buf, sizeof buf, "%.4g", r->learning_rate);
    row(out, "learning rate", buf);
    snprintf(buf, sizeof buf, "%.1f img/s", r->images_per_second);
    row(out, "throughput", buf);
    row(out, "ETA", eta);
    if (r->last_checkpoint_step > 0)
        snprintf(buf, sizeof buf, "step %lld: %s", (long long)r->last_checkpoint_step,
                 str_or_empty(r->last_checkpoint_path));
    else
        snprintf(buf, sizeof buf, "none yet");
    row(out, "last checkpoint", buf);
    time_t start = (time_t)r->start_unix_time;
    struct tm tm;
    gmtime_r(&start, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    row(out, "started", buf);
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n_skipped && k < sizeof buf; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s %llu", i ? ", " : "",
                              str_or_empty(r->skipped[i]->reason),
                              (unsigned long long)r->skipped[i]->count);
    row(out, "skipped samples", r->n_skipped ? buf : "none");
    row(out, "configuration", r->config_summary);
    text_printf(out, "</table>\n");
    if (r->n_workers) {
        text_printf(out,
                    "<table id=\"workers\"><tr><th>worker</th><th>step</th><th>img/s</th>"
                    "<th>data wait</th><th>skipped</th></tr>\n");
        for (size_t i = 0; i < r->n_workers; i++) {
            const Catlip__WorkerStatus *w = r->workers[i];
            text_printf(out, "<tr><td>%d</td><td>%lld</td><td>%.1f</td><td>%.1f%%</td><td>",
                        w->worker, (long long)w->step, w->images_per_second,
                        100 * w->data_wait_ratio);
            for (size_t k = 0; k < w->n_skipped; k++) {
                text_printf(out, "%s", k ? ", " : "");
                html_escaped(out, w->skipped[k]->reason);
                text_printf(out, " %llu", (unsigned long long)w->skipped[k]->count);
            }
            text_printf(out, "%s</td></tr>\n", w->n_skipped ? "" : "none");
        }
        text_printf(out, "</table>\n");
    }
    svg_curve(out, "loss", "loss", h, h->loss);
    svg_curve(out, "lr", "learning rate", h, h->lr);
    svg_curve(out, "ips", "images/s", h, h->images_per_second);
    text_printf(out,
                "<p><small>refreshes every %d s · <a href=\"/status\">/status</a> (JSON) · "
                "<a href=\"/metrics\">/metrics</a> (Prometheus)</small></p>\n</body></html>\n",
                refresh_seconds);
}
