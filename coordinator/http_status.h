// The HTTP side of the status server, independent of sockets: an HTTP/1.1 request parser
// (Debian's libhttp-parser) per connection that turns requests into responses:
//   GET /metrics  Prometheus text exposition
//   GET /status   the StatusReply as JSON
//   GET /         the dashboard page
// Requests are bounded: the request line and headers together at most HTTP_MAX_HEAD bytes
// (431 otherwise), a body at most HTTP_MAX_BODY (413); a malformed request gets 400, another
// method 405, another path 404; each error response closes the connection.
#pragma once
#include <stddef.h>

#include "coordinator/status_protocol.h"
#include "coordinator/status_render.h"

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_BODY 4096
#define HTTP_REFRESH_SECONDS 5

struct http_session;

struct http_session *http_session_create(const struct status_source *src, const char *peer);
void http_session_destroy(struct http_session *s);
// Parses n more bytes of the request stream, appending complete responses to out.
// Returns 0 to read on, 1 when the connection should close once out is sent (an error
// response, or a request without keep-alive). After 1, further bytes are ignored.
int http_session_feed(struct http_session *s, const char *data, size_t n, struct text_buffer *out);
// 1 when part of a request has arrived but not all of it (a timeout then answers 408).
int http_session_in_request(const struct http_session *s);
// Appends a complete error response with Connection: close (408, 503, ...).
void http_error_response(struct text_buffer *out, int code, const char *reason, const char *detail);
