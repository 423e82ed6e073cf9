#include "coordinator/status_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <jansson.h>

#include "coordinator/coordinator.h"
#include "coordinator/http_status.h"
#include "coordinator/status_protocol.h"
#include "core/atomic_file.h"
#include "core/check.h"
#include "core/log.h"

enum conn_kind { CONN_PROTOBUF, CONN_HTTP };

// After an error reply the connection half-closes and reads (and drops) what the client still
// sends for a moment, so that the kernel does not answer with a reset that loses the reply.
enum { LINGER_MS = 1000, LINGER_MAX_BYTES = 4 << 20 };
// Warnings about clients: at most LOG_BURST lines per LOG_WINDOW seconds, then a count; refused
// connections (a flood by nature) at most one line per REFUSAL_LOG_SECONDS.
enum { LOG_BURST = 50 };
#define LOG_WINDOW 10.0
#define REFUSAL_LOG_SECONDS 5.0

struct listener {
    uv_tcp_t tcp;  // first: the handle's address is the listener's
    struct status_server *server;
    enum conn_kind kind;
    int port;
};

struct connection {
    uv_tcp_t tcp;  // first
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    struct status_server *server;
    enum conn_kind kind;
    char peer[64];
    struct frame_decoder decoder;
    struct http_session *http;
    size_t queued;    // reply bytes handed to uv_write and not yet written
    size_t lingered;  // bytes dropped while lingering
    int lingering, closing, open_handles;
    int peer_eof, shut_down;  // the client ended its side; our side's shutdown completed
    struct connection *prev, *next;
    char read_buffer[STATUS_READ_BUFFER];
};

struct write_request {
    uv_write_t req;
    struct connection *conn;
    size_t len;
    char data[];
};

struct status_server {
    struct coordinator *coordinator;
    uv_loop_t *loop;
    struct status_source source;
    struct listener listeners[2];
    int listeners_open;
    struct connection *connections;
    int nconnections;
    int refused_open;  // handles of refused connections still closing
    int stopping;
    double log_window;
    int log_lines;
    unsigned long log_suppressed;
    double refusal_logged;
    unsigned long refused, refused_logged;
    char host[256];
};

// ---------------------------------------------------------------------------------------
// logging and freeing

static void server_warn(struct status_server *s, const char *fmt, ...) CATLIP_PRINTF(2, 3);
static void server_warn(struct status_server *s, const char *fmt, ...) {
    double now = time_now();
    if (now - s->log_window > LOG_WINDOW) {
        if (s->log_suppressed)
            log_warn("status: %lu more client warnings in the last %.0f s not shown",
                     s->log_suppressed, LOG_WINDOW);
        s->log_window = now;
        s->log_lines = 0;
        s->log_suppressed = 0;
    }
    if (s->log_lines >= LOG_BURST) {
        s->log_suppressed++;
        return;
    }
    s->log_lines++;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_warn("status: %s", line);
}

static void server_maybe_free(struct status_server *s) {
    if (s->stopping && s->listeners_open == 0 && s->nconnections == 0 && s->refused_open == 0)
        free(s);
}

// ---------------------------------------------------------------------------------------
// connections

static void on_conn_handle_closed(uv_handle_t *handle) {
    struct connection *c = handle->data;
    if (--c->open_handles > 0) return;
    struct status_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->connections = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconnections--;
    frame_decoder_free(&c->decoder);
    if (c->http) http_session_destroy(c->http);
    free(c);
    server_maybe_free(s);
}

static void conn_close(struct connection *c) {
    if (c->closing) return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_linger_timeout(uv_timer_t *timer) {
    conn_close(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
    struct connection *c = req->data;
    c->shut_down = 1;
    if (status < 0 || c->peer_eof) conn_close(c);
}

// Sends what is queued, then half-closes; the connection closes when the client does, or
// after LINGER_MS.
static void conn_finish(struct connection *c) {
    if (c->closing || c->lingering) return;
    c->lingering = 1;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

static void on_write(uv_write_t *req, int status) {
    struct write_request *w = (struct write_request *)req;
    struct connection *c = w->conn;
    c->queued -= w->len;
    free(w);
    if (status < 0 && status != UV_ECANCELED) conn_close(c);
}

static void conn_send(struct connection *c, const void *data, size_t len) {
    if (c->closing || c->lingering || len == 0) return;
    if (c->queued + len > STATUS_MAX_QUEUED) {
        server_warn(c->server, "%s does not read its replies (%zu bytes waiting): closing", c->peer,
                    c->queued);
        conn_close(c);
        return;
    }
    struct write_request *w = xmalloc(sizeof *w + len);
    w->conn = c;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->queued += len;
}

static void on_request_timeout(uv_timer_t *timer) {
    struct connection *c = timer->data;
    if (c->kind == CONN_PROTOBUF) {
        if (frame_decoder_idle(&c->decoder)) {
            log_debug("status: closing idle client %s", c->peer);
            conn_close(c);
            return;
        }
        server_warn(c->server, "%s sent part of a frame and nothing more for %d s: closing",
                    c->peer, STATUS_REQUEST_TIMEOUT_MS / 1000);
        struct frame_buffer out = {0};
        status_protocol_error("timeout: the request frame did not arrive whole within 10 s", &out);
        conn_send(c, out.data, out.len);
        frame_buffer_free(&out);
    } else {
        if (!http_session_in_request(c->http)) {
            log_debug("status: closing idle HTTP client %s", c->peer);
            conn_close(c);
            return;
        }
        server_warn(c->server, "HTTP 408 for %s: request incomplete after %d s", c->peer,
                    STATUS_REQUEST_TIMEOUT_MS / 1000);
        struct text_buffer out = {0};
        http_error_response(&out, 408, "Request Timeout",
                            "the request did not arrive whole within 10 s");
        conn_send(c, out.data, out.len);
        text_free(&out);
    }
    conn_finish(c);
}

static void restart_request_timer(struct connection *c) {
    uv_timer_start(&c->timer, on_request_timeout, STATUS_REQUEST_TIMEOUT_MS, 0);
}

struct frame_context {
    struct connection *conn;
    struct frame_buffer out;
    int frames;
};

static int on_frame(void *ctx, const uint8_t *frame, size_t len) {
    struct frame_context *f = ctx;
    f->frames++;
    return status_protocol_handle(&f->conn->server->source, f->conn->peer, frame, len, &f->out) ? 1
                                                                                                : 0;
}

static void read_protobuf(struct connection *c, const char *data, size_t n) {
    struct frame_context f = {c, {0}, 0};
    int rc = frame_decoder_feed(&c->decoder, data, n, on_frame, &f);
    if (rc < 0) {
        server_warn(c->server, "%s: %s: closing", c->peer, catlip_error());
        char message[320];
        snprintf(message, sizeof message, "bad request: %s", catlip_error());
        status_protocol_error(message, &f.out);
    }
    conn_send(c, f.out.data, f.out.len);
    frame_buffer_free(&f.out);
    if (rc != 0)
        conn_finish(c);
    else if (f.frames)
        restart_request_timer(c);
}

static void read_http(struct connection *c, const char *data, size_t n) {
    struct text_buffer out = {0};
    int in_request_before = http_session_in_request(c->http);
    int rc = http_session_feed(c->http, data, n, &out);
    int answered = out.len > 0;
    conn_send(c, out.data, out.len);
    text_free(&out);
    if (rc != 0)
        conn_finish(c);
    else if (answered || (!in_request_before && http_session_in_request(c->http)))
        restart_request_timer(c);  // a busy keep-alive connection is not idle
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    struct connection *c = handle->data;
    *buf = uv_buf_init(c->read_buffer, sizeof c->read_buffer);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    struct connection *c = stream->data;
    if (c->closing || nread == 0) return;
    if (nread < 0) {
        c->peer_eof = 1;
        if (nread == UV_EOF && c->lingering) {
            if (c->shut_down) conn_close(c);  // else on_shutdown closes once the reply is out
            return;
        }
        if (nread == UV_EOF) {
            if (c->kind == CONN_PROTOBUF && frame_decoder_finish(&c->decoder) < 0) {
                server_warn(c->server, "%s: %s", c->peer, catlip_error());
                char message[320];
                snprintf(message, sizeof message, "bad request: %s", catlip_error());
                struct frame_buffer out = {0};
                status_protocol_error(message, &out);
                conn_send(c, out.data, out.len);
                frame_buffer_free(&out);
            } else if (c->kind == CONN_HTTP && http_session_in_request(c->http)) {
                server_warn(c->server, "%s closed its side inside an HTTP request", c->peer);
            }
            conn_finish(c);  // the client may still read what was queued
            uv_read_stop(stream);
            return;
        }
        conn_close(c);
        return;
    }
    if (c->lingering) {
        c->lingered += (size_t)nread;
        if (c->lingered > LINGER_MAX_BYTES) conn_close(c);
        return;
    }
    if (c->kind == CONN_PROTOBUF)
        read_protobuf(c, buf->base, (size_t)nread);
    else
        read_http(c, buf->base, (size_t)nread);
}

static void peer_name(uv_tcp_t *tcp, char *out, size_t n) {
    struct sockaddr_storage addr;
    int len = sizeof addr;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&addr, &len) == 0) {
        if (addr.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&addr, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
        } else if (addr.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&addr, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
        }
    }
    snprintf(out, n, "%s:%d", ip, port);
}

static void on_refused_closed(uv_handle_t *handle) {
    struct status_server *s = handle->data;
    free(handle);
    s->refused_open--;
    server_maybe_free(s);
}

// Over the connection cap: one immediate error reply (it fits in the socket buffer), then close.
static void refuse(struct listener *l) {
    struct status_server *s = l->server;
    uv_tcp_t *tcp = xmalloc(sizeof *tcp);
    uv_tcp_init(s->loop, tcp);
    tcp->data = s;
    s->refused_open++;
    if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)tcp) == 0) {
        char peer[64];
        peer_name(tcp, peer, sizeof peer);
        s->refused++;
        double now = time_now();
        if (now - s->refusal_logged >= REFUSAL_LOG_SECONDS) {
            server_warn(s,
                        "%d connections open (the limit): refusing %s (%lu refused since the last "
                        "such line)",
                        s->nconnections, peer, s->refused - s->refused_logged);
            s->refusal_logged = now;
            s->refused_logged = s->refused;
        }
        const char *why = "server busy: too many status connections open, try again later";
        if (l->kind == CONN_HTTP) {
            struct text_buffer out = {0};
            http_error_response(&out, 503, "Service Unavailable", why);
            uv_buf_t buf = uv_buf_init(out.data, (unsigned)out.len);
            uv_try_write((uv_stream_t *)tcp, &buf, 1);
            text_free(&out);
        } else {
            struct frame_buffer out = {0};
            status_protocol_error(why, &out);
            uv_buf_t buf = uv_buf_init((char *)out.data, (unsigned)out.len);
            uv_try_write((uv_stream_t *)tcp, &buf, 1);
            frame_buffer_free(&out);
        }
    }
    uv_close((uv_handle_t *)tcp, on_refused_closed);
}

static void on_connection(uv_stream_t *server_stream, int status) {
    struct listener *l = server_stream->data;
    struct status_server *s = l->server;
    if (status < 0) {
        server_warn(s, "accept failed: %s", uv_strerror(status));
        return;
    }
    if (s->stopping) return;
    if (s->nconnections >= STATUS_MAX_CONNECTIONS) {
        refuse(l);
        return;
    }
    struct connection *c = xcalloc(1, sizeof *c);
    c->server = s;
    c->kind = l->kind;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = s->connections;
    if (c->next) c->next->prev = c;
    s->connections = c;
    s->nconnections++;
    if (uv_accept(server_stream, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    peer_name(&c->tcp, c->peer, sizeof c->peer);
    uv_tcp_nodelay(&c->tcp, 1);
    if (c->kind == CONN_PROTOBUF)
        frame_decoder_init(&c->decoder, c->peer, STATUS_MAX_FRAME);
    else
        c->http = http_session_create(&s->source, c->peer);
    restart_request_timer(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

// ---------------------------------------------------------------------------------------
// listeners, files

static void source_fill(void *ctx, Catlip__StatusReply *reply, int include_workers) {
    coordinator_fill_status(ctx, reply, include_workers);
}
static void source_control(void *ctx, int stop) {
    coordinator_control(ctx, stop);
}
static int source_history(void *ctx, int64_t *steps, double *loss, double *lr, double *ips,
                          int max) {
    return coordinator_history(ctx, steps, loss, lr, ips, max);
}

static int listen_on(struct status_server *s, struct listener *l, enum conn_kind kind, int port,
                     const char *key) {
    l->server = s;
    l->kind = kind;
    // A numeric address only (or "localhost"): binding must not depend on a name lookup.
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    const char *host = strcmp(s->host, "localhost") ? s->host : "127.0.0.1";
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai != 0 || !ai)
        return catlip_error_set(
            "status server: status.host '%s' is not an IP address of this machine "
            "(e.g. 127.0.0.1, 0.0.0.0, ::1)",
            s->host);
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    s->listeners_open++;
    int rc = uv_tcp_bind(&l->tcp, ai->ai_addr, 0);
    freeaddrinfo(ai);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&l->tcp, 128, on_connection);
    if (rc != 0)
        return catlip_error_set(
            "status server: cannot listen on %s port %d (%s): %s; choose another "
            "port or 0 for an ephemeral one",
            s->host, port, key, uv_strerror(rc));
    struct sockaddr_storage addr;
    int len = sizeof addr;
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&addr, &len);
    l->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                               : ((struct sockaddr_in *)&addr)->sin_port);
    return 0;
}

// dir/name replaced atomically (core/atomic_file.h), through a hidden temporary file.
static int write_atomically(const char *dir, const char *name, const char *bytes, size_t n,
                            mode_t mode) {
    char path[CONFIG_STRING_MAX + 64], tmp[CONFIG_STRING_MAX + 96];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    struct atomic_file f;
    if (atomic_file_open(&f, path, tmp, mode) != 0) return -1;
    atomic_file_write(&f, bytes, n);
    return atomic_file_commit(&f);
}

static int write_files(struct status_server *s, const struct status_options *o) {
    const char *dir = o->run_dir;
    char token_line[STATUS_TOKEN_LEN + 2];
    snprintf(token_line, sizeof token_line, "%s\n", s->source.token);
    if (write_atomically(dir, "token", token_line, strlen(token_line), 0600) != 0) return -1;
    json_t *j = json_object();
    json_object_set_new(j, "host", json_string(s->host));
    json_object_set_new(j, "port", json_integer(s->listeners[CONN_PROTOBUF].port));
    json_object_set_new(j, "http_port", json_integer(s->listeners[CONN_HTTP].port));
    json_object_set_new(j, "pid", json_integer(getpid()));
    json_object_set_new(j, "run_id", json_string(o->run_id));
    char *text = json_dumps(j, JSON_PRESERVE_ORDER);
    json_decref(j);
    size_t n = strlen(text);
    char *line = xmalloc(n + 2);
    memcpy(line, text, n);
    line[n] = '\n';
    free(text);
    int rc = write_atomically(dir, "status.json", line, n + 1, 0644);
    free(line);
    return rc;
}

int status_server_start(struct status_server **out, struct coordinator *coord,
                        const struct status_options *o) {
    *out = NULL;
    // A client that goes away mid-reply must make the write fail, not end the process.
    signal(SIGPIPE, SIG_IGN);
    struct status_server *s = xcalloc(1, sizeof *s);
    s->coordinator = coord;
    s->loop = coordinator_loop(coord);
    snprintf(s->host, sizeof s->host, "%s", o->host);
    s->source = (struct status_source){coord, source_fill, source_control, source_history, {0}};
    s->log_window = time_now();
    int rc = status_token_generate(s->source.token);
    if (rc == 0)
        rc = listen_on(s, &s->listeners[CONN_PROTOBUF], CONN_PROTOBUF, o->port, "status.port");
    if (rc == 0)
        rc = listen_on(s, &s->listeners[CONN_HTTP], CONN_HTTP, o->http_port, "status.http_port");
    if (rc == 0) rc = write_files(s, o);
    if (rc != 0) {
        status_server_stop(s);
        return -1;
    }
    log_info("status: protobuf on %s:%d, HTTP on http://%s:%d/ (metrics, status); %s/status.json",
             s->host, s->listeners[CONN_PROTOBUF].port, s->host, s->listeners[CONN_HTTP].port,
             o->run_dir);
    *out = s;
    return 0;
}

static void on_listener_closed(uv_handle_t *handle) {
    struct listener *l = handle->data;
    struct status_server *s = l->server;
    s->listeners_open--;
    server_maybe_free(s);
}

void status_server_stop(struct status_server *s) {
    if (!s) return;
    s->stopping = 1;
    int nlisteners = s->listeners_open;
    for (int i = 0; i < nlisteners; i++)
        if (!uv_is_closing((uv_handle_t *)&s->listeners[i].tcp))
            uv_close((uv_handle_t *)&s->listeners[i].tcp, on_listener_closed);
    for (struct connection *c = s->connections; c; c = c->next) conn_close(c);
    server_maybe_free(s);
}
