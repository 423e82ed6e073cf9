#include "coordinator/http_status.h"

#include <http_parser.h>
#include <string.h>

#include "core/log.h"

struct http_session {
    http_parser parser;
    const struct status_source *src;
    char peer[64];
    char url[256];
    size_t url_len;
    size_t head_bytes;   // request line + headers of the current request
    size_t head_fields;  // header-name callbacks so far
    int in_value;        // the last header callback was a value
    size_t body_bytes;
    int url_too_long;
    int in_request;
    int done;                 // a response that closes the connection was written
    struct text_buffer *out;  // during feed
};

void http_error_response(struct text_buffer *out, int code, const char *reason,
                         const char *detail) {
    text_printf(out,
                "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                code, reason, strlen(detail) + 1, detail);
}

static void response(struct text_buffer *out, const char *content_type,
                     const struct text_buffer *body, int keep_alive) {
    text_printf(out,
                "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
                content_type, body->len, keep_alive ? "keep-alive" : "close");
    text_append(out, body->data, body->len);
}

static int fail(struct http_session *s, int code, const char *reason, const char *detail) {
    log_warn("status: HTTP %d for %s: %s", code, s->peer, detail);
    http_error_response(s->out, code, reason, detail);
    s->done = 1;
    return -1;  // stops http_parser (on_headers_complete takes 1 as "no body": not that)
}

static int on_message_begin(http_parser *p) {
    struct http_session *s = p->data;
    s->in_request = 1;
    s->url_len = 0;
    s->url_too_long = 0;
    s->body_bytes = 0;
    s->head_bytes = 0;
    s->head_fields = 0;
    s->in_value = 0;
    return 0;
}

// The request line and header bytes are counted as http_parser hands them over; a client that
// keeps sending them is refused at HTTP_MAX_HEAD, long before http_parser's own 80 KiB limit.
static int count_head(struct http_session *s, size_t n) {
    s->head_bytes += n;
    if (s->head_bytes > HTTP_MAX_HEAD)
        return fail(s, 431, "Request Header Fields Too Large",
                    "request head over the 8192-byte limit");
    return 0;
}

// Each header line also carries ": " and CRLF, counted when its name starts.
static int on_header_field(http_parser *p, const char *at, size_t n) {
    struct http_session *s = p->data;
    size_t extra = s->in_value || s->head_fields == 0 ? 4 : 0;
    s->in_value = 0;
    s->head_fields++;
    return count_head(s, n + extra);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
    struct http_session *s = p->data;
    s->in_value = 1;
    return count_head(s, n);
}

static int on_url(http_parser *p, const char *at, size_t n) {
    struct http_session *s = p->data;
    if (count_head(s, n)) return 1;
    if (s->url_len + n >= sizeof s->url) {
        s->url_too_long = 1;
        return 0;
    }
    memcpy(s->url + s->url_len, at, n);
    s->url_len += n;
    s->url[s->url_len] = '\0';
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    struct http_session *s = p->data;
    s->body_bytes += n;
    if (s->body_bytes > HTTP_MAX_BODY)
        return fail(s, 413, "Payload Too Large", "request body over the 4096-byte limit");
    return 0;
}

static int on_headers_complete(http_parser *p) {
    struct http_session *s = p->data;
    if (s->url_too_long) return fail(s, 414, "URI Too Long", "request target over 255 bytes");
    return 0;
}

static void render(struct http_session *s, const char *path, int keep_alive) {
    Catlip__StatusReply reply = CATLIP__STATUS_REPLY__INIT;
    struct text_buffer body = {0};
    if (!strcmp(path, "/metrics")) {
        s->src->fill(s->src->ctx, &reply, 1);
        status_render_metrics(&body, &reply);
        response(s->out, "text/plain; version=0.0.4; charset=utf-8", &body, keep_alive);
    } else if (!strcmp(path, "/status")) {
        s->src->fill(s->src->ctx, &reply, 1);
        json_t *j = status_reply_json(&reply);
        char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        text_append(&body, text, strlen(text));
        text_append(&body, "\n", 1);
        free(text);
        response(s->out, "application/json", &body, keep_alive);
    } else {
        enum { MAXH = 2048 };  // COORDINATOR_HISTORY
        int64_t *steps = xmalloc(MAXH * sizeof *steps);
        double *curves = xmalloc(3 * MAXH * sizeof *curves);
        struct status_history h = {steps, curves, curves + MAXH, curves + 2 * MAXH, 0};
        h.n = s->src->history(s->src->ctx, steps, curves, curves + MAXH, curves + 2 * MAXH, MAXH);
        s->src->fill(s->src->ctx, &reply, 1);
        status_render_html(&body, &reply, &h, HTTP_REFRESH_SECONDS);
        response(s->out, "text/html; charset=utf-8", &body, keep_alive);
        free(steps);
        free(curves);
    }
    text_free(&body);
}

static int on_message_complete(http_parser *p) {
    struct http_session *s = p->data;
    s->in_request = 0;
    if (p->method != HTTP_GET && p->method != HTTP_HEAD)
        return fail(s, 405, "Method Not Allowed", "only GET is served");
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(s->url, s->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return fail(s, 400, "Bad Request", "unparsable request target");
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)u.field_data[UF_PATH].len,
             s->url + u.field_data[UF_PATH].off);
    if (strcmp(path, "/") && strcmp(path, "/index.html") && strcmp(path, "/metrics") &&
        strcmp(path, "/status"))
        return fail(s, 404, "Not Found", "no such page: try /, /status or /metrics");
    int keep_alive = http_should_keep_alive(p);
    size_t before = s->out->len;
    render(s, path, keep_alive);
    if (p->method == HTTP_HEAD) {  // the same headers, no body
        char *end = strstr(s->out->data + before, "\r\n\r\n");
        if (end) {
            s->out->len = (size_t)(end + 4 - s->out->data);
            s->out->data[s->out->len] = '\0';
        }
    }
    if (!keep_alive) {
        s->done = 1;
        return 1;
    }
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

struct http_session *http_session_create(const struct status_source *src, const char *peer) {
    struct http_session *s = xcalloc(1, sizeof *s);
    http_parser_init(&s->parser, HTTP_REQUEST);
    s->parser.data = s;
    s->src = src;
    snprintf(s->peer, sizeof s->peer, "%s", peer);
    return s;
}

void http_session_destroy(struct http_session *s) {
    free(s);
}

int http_session_in_request(const struct http_session *s) {
    return s->in_request && !s->done;
}

int http_session_feed(struct http_session *s, const char *data, size_t n, struct text_buffer *out) {
    if (s->done) return 1;
    s->out = out;
    while (n > 0) {
        size_t nparsed = http_parser_execute(&s->parser, &settings, data, n);
        if (s->done) return 1;
        if (HTTP_PARSER_ERRNO(&s->parser) != HPE_OK) {
            enum http_errno e = HTTP_PARSER_ERRNO(&s->parser);
            if (e == HPE_HEADER_OVERFLOW) {
                fail(s, 431, "Request Header Fields Too Large",
                     "request head over the 8192-byte limit");
                return 1;
            }
            char detail[160];
            snprintf(detail, sizeof detail, "malformed HTTP request: %s",
                     http_errno_description(e));
            fail(s, 400, "Bad Request", detail);
            return 1;
        }
        data += nparsed;
        n -= nparsed;
        if (nparsed == 0) break;
    }
    return 0;
}
