// The status server's HTTP side without sockets: the three pages, keep-alive and pipelining,
// requests cut into pieces, and every bad request (huge head, long URL, body, method, path,
// garbage) answered with its error status and a closed connection.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coordinator/http_status.h"
#include "tests/status/fake_source.h"

// Feeds the request in pieces of `piece` bytes; returns what feed last returned.
static int feed(struct http_session *s, const char *req, size_t len, size_t piece,
                struct text_buffer *out) {
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i += piece)
        rc = http_session_feed(s, req + i, len - i < piece ? len - i : piece, out);
    return rc;
}

static const char *body_of(const struct text_buffer *out) {
    const char *b = strstr(out->data, "\r\n\r\n");
    assert_non_null(b);
    return b + 4;
}

static void pages(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    const size_t pieces[] = {1, 3, 7, 1 << 20};
    for (size_t p = 0; p < 4; p++) {
        struct http_session *s = http_session_create(&src, "test");
        struct text_buffer out = {0};
        const char *req = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_int_equal(feed(s, req, strlen(req), pieces[p], &out), 0);  // keep-alive
        assert_non_null(strstr(out.data, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(out.data, "Content-Type: application/json\r\n"));
        json_error_t err;
        json_t *j = json_loads(body_of(&out), 0, &err);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "state")), "training");
        assert_int_equal(json_integer_value(json_object_get(j, "step")), 120);
        assert_int_equal(json_array_size(json_object_get(j, "workers")), 2);
        json_decref(j);
        // Content-Length matches the body.
        const char *cl = strstr(out.data, "Content-Length: ");
        assert_int_equal((size_t)atol(cl + 16), strlen(body_of(&out)));
        out.len = 0;
        req = "GET /metrics HTTP/1.0\r\n\r\n";  // HTTP/1.0: closes after the reply
        assert_int_equal(feed(s, req, strlen(req), pieces[p], &out), 1);
        assert_non_null(strstr(out.data, "text/plain; version=0.0.4"));
        assert_non_null(strstr(body_of(&out), "\ncatlip_step 120\n"));
        text_free(&out);
        http_session_destroy(s);
    }
    struct http_session *s = http_session_create(&src, "test");
    struct text_buffer out = {0};
    const char *req =
        "GET /?x=1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert_int_equal(feed(s, req, strlen(req), 5, &out), 1);
    assert_non_null(strstr(out.data, "text/html; charset=utf-8"));
    assert_non_null(strstr(out.data, "<polyline class=\"curve\""));
    // the HEAD reply: headers, no body, after the page
    const char *head = strstr(out.data, "</html>\n");
    assert_non_null(head);
    assert_non_null(strstr(head, "HTTP/1.1 200 OK"));
    assert_null(strstr(head, "catlip_step"));
    assert_int_equal(f.controls[0] + f.controls[1], 0);
    text_free(&out);
    http_session_destroy(s);
}

static void expect_error(const char *req, size_t len, size_t piece, const char *status) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    struct http_session *s = http_session_create(&src, "test");
    struct text_buffer out = {0};
    assert_int_equal(feed(s, req, len, piece, &out), 1);
    assert_non_null(out.data);
    assert_memory_equal(out.data, status, strlen(status));
    assert_non_null(strstr(out.data, "Connection: close\r\n"));
    // Only one response, and the session stays closed.
    if (strstr(out.data + 1, "HTTP/1.1 ")) fail_msg("two responses: %s", out.data);
    size_t before = out.len;
    assert_int_equal(http_session_feed(s, "GET / HTTP/1.1\r\n\r\n", 18, &out), 1);
    assert_int_equal(out.len, before);
    text_free(&out);
    http_session_destroy(s);
}

static void bad_requests(void **state) {
    // A 1 MB header, fed whole and in 4 KiB pieces.
    size_t big = (1 << 20) + 64;
    char *req = malloc(big);
    int n = snprintf(req, big, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', big - (size_t)n);
    expect_error(req, big, big, "HTTP/1.1 431 ");
    expect_error(req, big, 4096, "HTTP/1.1 431 ");
    // Many small headers over the cap.
    size_t k = (size_t)snprintf(req, big, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 1000; i++) k += (size_t)snprintf(req + k, big - k, "X-H%d: v\r\n", i);
    expect_error(req, k, 100, "HTTP/1.1 431 ");
    // A long URL.
    k = (size_t)snprintf(req, big, "GET /");
    memset(req + k, 'u', 1000);
    k += 1000;
    k += (size_t)snprintf(req + k, big - k, " HTTP/1.1\r\n\r\n");
    expect_error(req, k, k, "HTTP/1.1 414 ");
    free(req);
    const char *body = "GET /status HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    char *with_body = calloc(1, 200000);
    strcpy(with_body, body);
    memset(with_body + strlen(body), 'b', 100000);
    expect_error(with_body, strlen(body) + 100000, 1000, "HTTP/1.1 413 ");
    free(with_body);
    const char *posted = "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab";
    expect_error(posted, strlen(posted), 3, "HTTP/1.1 405 ");
    const char *missing = "GET /secret HTTP/1.1\r\n\r\n";
    expect_error(missing, strlen(missing), 100, "HTTP/1.1 404 ");
    const char *garbage = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n";
    expect_error(garbage, strlen(garbage), 100, "HTTP/1.1 400 ");
    const char *bad_version = "GET / HTTP/9.Z\r\n\r\n";
    expect_error(bad_version, strlen(bad_version), 2, "HTTP/1.1 400 ");
    const char *nul = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    expect_error(nul, 30, 30, "HTTP/1.1 400 ");
}

static void in_request(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    struct http_session *s = http_session_create(&src, "test");
    struct text_buffer out = {0};
    assert_false(http_session_in_request(s));
    assert_int_equal(http_session_feed(s, "GET /metr", 9, &out), 0);
    assert_true(http_session_in_request(s));
    assert_int_equal(out.len, 0);
    assert_int_equal(http_session_feed(s, "ics HTTP/1.1\r\n\r\n", 16, &out), 0);
    assert_false(http_session_in_request(s));
    assert_true(out.len > 0);
    text_free(&out);
    http_error_response(&out, 503, "Service Unavailable", "busy");
    assert_non_null(strstr(out.data, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(out.data, "Content-Length: 5\r\n"));
    text_free(&out);
    http_session_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pages),
        cmocka_unit_test(bad_requests),
        cmocka_unit_test(in_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
