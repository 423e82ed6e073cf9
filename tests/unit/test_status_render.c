// What the status server renders: Prometheus text (every sample preceded by its family's HELP
// and TYPE, escaped label values, special floats), the JSON (fields, NaN as null), and the page
// (escaped strings, no scripts, three curves inside their boxes, empty history).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/status_render.h"
#include "tests/status/fake_source.h"

static void metrics_format(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    Catlip__StatusReply r = CATLIP__STATUS_REPLY__INIT;
    src.fill(src.ctx, &r, 1);
    r.loss = NAN;
    r.eta_seconds = INFINITY;
    struct text_buffer t = {0};
    status_render_metrics(&t, &r);
    // Line by line: comments name the family that follows; samples belong to the last TYPE.
    regex_t sample_re;
    assert_int_equal(regcomp(&sample_re,
                             "^(catlip_[a-z_]+)(\\{[a-z_]+=\"([^\"\\\\]|\\\\.)*\"(,[a-z_]+=\"([^"
                             "\"\\\\]|\\\\.)*\")*\\})? "
                             "(NaN|[+-]Inf|-?[0-9]+(\\.[0-9]+)?(e[+-][0-9]+)?)$",
                             REG_EXTENDED),
                     0);
    char family[128] = "", helped[128] = "";
    int samples = 0;
    char *text = strdup(t.data);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "# HELP ", 7)) {
            sscanf(line + 7, "%127s", helped);
        } else if (!strncmp(line, "# TYPE ", 7)) {
            char type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", family, type), 2);
            assert_string_equal(family, helped);
            assert_true(!strcmp(type, "gauge") || !strcmp(type, "counter"));
            if (!strcmp(type, "counter")) assert_non_null(strstr(family, "_total"));
        } else {
            regmatch_t m[2];
            if (regexec(&sample_re, line, 2, m, 0) != 0) fail_msg("not a sample line: %s", line);
            assert_int_equal((size_t)(m[1].rm_eo - m[1].rm_so), strlen(family));
            assert_memory_equal(line, family, strlen(family));
            samples++;
        }
    }
    free(text);
    regfree(&sample_re);
    assert_true(samples > 15);
    assert_non_null(strstr(t.data, "\ncatlip_loss NaN\n"));
    assert_non_null(strstr(t.data, "\ncatlip_eta_seconds +Inf\n"));
    assert_non_null(strstr(t.data, "\ncatlip_samples_total 7680\n"));
    assert_non_null(strstr(t.data, "\ncatlip_skipped_samples_total{reason=\"bad_jpeg\"} 7\n"));
    assert_non_null(
        strstr(t.data, "\ncatlip_skipped_samples_total{reason=\"no\\\"synset\\\\\\n\"} 8\n"));
    assert_non_null(strstr(t.data, "\ncatlip_info{run_id=\"run\\\"<1>\"} 1\n"));
    assert_non_null(strstr(t.data, "\ncatlip_data_wait_ratio{worker=\"1\"} 0.25\n"));
    assert_non_null(strstr(t.data, "\ncatlip_state{state=\"training\"} 1\n"));
    assert_non_null(strstr(t.data, "\ncatlip_state{state=\"finished\"} 0\n"));
    assert_non_null(strstr(
        t.data, "\ncatlip_worker_skipped_samples_total{worker=\"1\",reason=\"bad_jpeg\"} 7\n"));
    assert_null(strstr(t.data, "catlip_worker_skipped_samples_total{worker=\"0\""));
    text_free(&t);
}

static void json_fields(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    Catlip__StatusReply r = CATLIP__STATUS_REPLY__INIT;
    src.fill(src.ctx, &r, 1);
    r.loss = NAN;
    json_t *j = status_reply_json(&r);
    const char *fields[] = {"run_id",
                            "state",
                            "step",
                            "total_steps",
                            "epoch",
                            "samples_seen",
                            "loss",
                            "learning_rate",
                            "images_per_second",
                            "eta_seconds",
                            "last_checkpoint_path",
                            "last_checkpoint_step",
                            "start_unix_time",
                            "config_summary",
                            "skipped",
                            "workers"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!json_object_get(j, fields[i])) fail_msg("no field %s", fields[i]);
    assert_null(json_object_get(j, "error"));
    assert_true(json_is_null(json_object_get(j, "loss")));
    assert_string_equal(json_string_value(json_object_get(j, "run_id")), "run\"<1>");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "skipped"), "bad_jpeg")),
                     7);
    json_t *w1 = json_array_get(json_object_get(j, "workers"), 1);
    assert_int_equal(json_integer_value(json_object_get(w1, "step")), 119);
    assert_true(json_real_value(json_object_get(w1, "data_wait_ratio")) == 0.25);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(w1, "skipped"), "bad_jpeg")), 7);
    assert_int_equal(json_object_size(json_object_get(
                         json_array_get(json_object_get(j, "workers"), 0), "skipped")),
                     0);
    json_decref(j);
    assert_string_equal(status_state_name(CATLIP__STATUS_REPLY__STATE__CHECKPOINTING),
                        "checkpointing");
    assert_string_equal(status_state_name(99), "unknown");
}

static void html_page(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    Catlip__StatusReply r = CATLIP__STATUS_REPLY__INIT;
    src.fill(src.ctx, &r, 1);
    int64_t steps[60];
    double loss[60], lr[60], ips[60];
    struct status_history h = {steps, loss, lr, ips, 0};
    h.n = fake_history(NULL, steps, loss, lr, ips, 60);
    loss[3] = NAN;  // a hole in a curve is skipped, not drawn at NaN
    struct text_buffer t = {0};
    status_render_html(&t, &r, &h, 5);
    assert_null(strstr(t.data, "<script"));
    assert_null(strstr(t.data, "<1>"));
    assert_null(strstr(t.data, "<test>"));
    assert_non_null(strstr(t.data, "run&quot;&lt;1&gt;"));
    assert_non_null(strstr(t.data, "/runs/a&amp;b/"));
    assert_non_null(strstr(t.data, "<meta http-equiv=\"refresh\" content=\"5\">"));
    assert_null(strstr(t.data, "nan"));
    // Three curves, every point inside the 420x180 box.
    int curves = 0;
    for (const char *p = t.data; (p = strstr(p, "<polyline class=\"curve\"")); p++) {
        curves++;
        const char *pts = strstr(p, "points=\"") + 8;
        int npts = 0;
        while (*pts != '"') {
            double x, y;
            int used;
            assert_int_equal(sscanf(pts, "%lf,%lf%n", &x, &y, &used), 2);
            assert_true(x >= 0 && x <= 420 && y >= 0 && y <= 180);
            npts++;
            pts += used;
            while (*pts == ' ') pts++;
        }
        assert_true(npts >= 49);
    }
    assert_int_equal(curves, 3);
    text_free(&t);
    h.n = 0;
    status_render_html(&t, &r, &h, 5);
    assert_null(strstr(t.data, "<polyline"));
    assert_non_null(strstr(t.data, "no data yet"));
    text_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metrics_format),
        cmocka_unit_test(json_fields),
        cmocka_unit_test(html_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
