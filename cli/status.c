// `catlip status`: asks a running coordinator for its status (or to checkpoint / stop) over
// the protobuf status port, and prints a summary, a progress bar on a terminal, or JSON.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "catlip.pb-c.h"
#include "cli/commands.h"
#include "coordinator/status_protocol.h"
#include "coordinator/status_render.h"
#include "core/check.h"
#include "core/config.h"
#include "io/framing.h"

enum { CONNECT_TIMEOUT_MS = 5000, IO_TIMEOUT_S = 10, MAX_REPLY = 16 << 20 };

static const char *usage =
    "usage: catlip status (--run-dir DIR | --connect HOST:PORT) [--json] [--watch SECONDS]\n"
    "                     [--checkpoint-now | --stop] [--token TOKEN]\n"
    "\n"
    "Asks a running `catlip train` for its status through the coordinator's status port.\n"
    "\n"
    "  --run-dir DIR      the run's directory: its status.json names the address, its token file\n"
    "                     the control token\n"
    "  --connect H:P      the status port directly (status.port; [::1]:P for IPv6)\n"
    "  --json             print the status as JSON (the fields of GET /status)\n"
    "  --watch SECONDS    repeat every SECONDS until the run ends (a live view on a terminal)\n"
    "  --checkpoint-now   ask the run to write a checkpoint at the next step boundary\n"
    "  --stop             ask the run to checkpoint at the next step boundary, then exit\n"
    "  --token TOKEN      the control token (default: RUN_DIR/token)\n"
    "\n"
    "Exit status: 0 done, 1 the run could not be reached or refused the request, 2 usage.\n";

struct target {
    char host[256];
    char port[16];
    char where[CONFIG_STRING_MAX + 320];  // for messages: "127.0.0.1:4000 (from DIR/status.json)"
};

static int read_status_file(const char *dir, struct target *t) {
    char path[CONFIG_STRING_MAX + 32];
    snprintf(path, sizeof path, "%s/status.json", dir);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        if (access(path, F_OK) != 0)
            return catlip_error_set("%s not found: is a run using this directory (has it started)?",
                                    path);
        return catlip_error_set("%s: unreadable JSON: %s (line %d)", path, err.text, err.line);
    }
    json_t *host = json_object_get(j, "host"), *port = json_object_get(j, "port");
    if (!json_is_string(host) || !json_is_integer(port) || json_integer_value(port) <= 0 ||
        json_integer_value(port) > 65535) {
        json_decref(j);
        return catlip_error_set("%s lacks a valid \"host\" and \"port\"", path);
    }
    const char *h = json_string_value(host);
    // A server bound to every address is reached on loopback.
    if (!strcmp(h, "0.0.0.0"))
        h = "127.0.0.1";
    else if (!strcmp(h, "::"))
        h = "::1";
    snprintf(t->host, sizeof t->host, "%s", h);
    snprintf(t->port, sizeof t->port, "%lld", (long long)json_integer_value(port));
    snprintf(t->where, sizeof t->where, "%s port %s (from %s)", t->host, t->port, path);
    json_decref(j);
    return 0;
}

static int parse_connect(const char *arg, struct target *t) {
    const char *colon = strrchr(arg, ':');
    const char *host = arg;
    size_t hlen = colon ? (size_t)(colon - arg) : 0;
    if (arg[0] == '[') {  // [v6]:port
        const char *close = strchr(arg, ']');
        if (!close || close[1] != ':')
            return catlip_error_set("--connect '%s': expected [HOST]:PORT", arg);
        host = arg + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    }
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof t->host || *end || port <= 0 || port > 65535)
        return catlip_error_set("--connect '%s': expected HOST:PORT with a port from 1 to 65535",
                                arg);
    snprintf(t->host, sizeof t->host, "%.*s", (int)hlen, host);
    snprintf(t->port, sizeof t->port, "%ld", port);
    snprintf(t->where, sizeof t->where, "%s port %s", t->host, t->port);
    return 0;
}

static int read_token(const char *dir, char *token, size_t n) {
    char path[CONFIG_STRING_MAX + 32];
    snprintf(path, sizeof path, "%s/token", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return catlip_error_set("cannot read the control token %s: %s (or pass --token)", path,
                                strerror(errno));
    char *got = fgets(token, (int)n, f);
    fclose(f);
    if (!got) return catlip_error_set("%s is empty (or pass --token)", path);
    token[strcspn(token, "\r\n")] = '\0';
    return 0;
}

// A connected socket with read/write timeouts, or -1 with catlip_error() set.
static int connect_to(const struct target *t) {
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(t->host, t->port, &hints, &ai);
    if (gai != 0) return catlip_error_set("cannot resolve %s: %s", t->where, gai_strerror(gai));
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc = connect(fd, a->ai_addr, a->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            rc = poll(&p, 1, CONNECT_TIMEOUT_MS);
            if (rc == 0)
                errno = ETIMEDOUT, rc = -1;
            else if (rc > 0) {
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err)
                    errno = err, rc = -1;
                else
                    rc = 0;
            }
        }
        if (rc < 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return catlip_error_set("cannot connect to %s: %s (is the run still going?)", t->where,
                                strerror(err));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

// One request, one reply. Returns the unpacked reply, or NULL with catlip_error() set.
static Catlip__ServerMessage *exchange(const struct target *t,
                                       const Catlip__ClientMessage *request) {
    int fd = connect_to(t);
    if (fd < 0) return NULL;
    struct frame_buffer out = {0};
    frame_buffer_append_message(&out, &request->base);
    char name[CONFIG_STRING_MAX + 352];
    snprintf(name, sizeof name, "status server %s", t->where);
    ssize_t w = 0;
    for (size_t done = 0; done < out.len; done += (size_t)w) {
        w = send(fd, out.data + done, out.len - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            w = 0;
        else if (w <= 0)
            break;
    }
    frame_buffer_free(&out);
    if (w < 0) {
        catlip_error_set("cannot send to %s: %s", t->where, strerror(errno));
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    struct frame_buffer frame = {0};
    uint64_t offset = 0;
    int rc = frame_read_file(f, name, MAX_REPLY, &frame, &offset, NULL, NULL);
    fclose(f);
    Catlip__ServerMessage *m = NULL;
    if (rc == 0)
        catlip_error_set("%s closed the connection without a reply", name);
    else if (rc > 0 && !(m = catlip__server_message__unpack(NULL, frame.len, frame.data)))
        catlip_error_set("%s: the reply is not a catlip.ServerMessage", name);
    frame_buffer_free(&frame);
    return m;
}

static void format_seconds(char *buf, size_t n, double s) {
    if (!isfinite(s) || s <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 86400)
        snprintf(buf, n, "%ldd%02ldh", t / 86400, (t / 3600) % 24);
    else if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}

static void print_summary(const Catlip__StatusReply *r, int terminal) {
    double frac = r->total_steps > 0 ? (double)r->step / (double)r->total_steps : 0;
    if (frac > 1) frac = 1;
    char eta[32];
    format_seconds(eta, sizeof eta, r->eta_seconds);
    printf("run %s  %s  step %lld/%lld (%.1f%%)  epoch %lld  samples %lld\n", r->run_id,
           status_state_name(r->state), (long long)r->step, (long long)r->total_steps, 100 * frac,
           (long long)r->epoch, (long long)r->samples_seen);
    if (terminal) {
        enum { WIDTH = 40 };
        int filled = (int)(frac * WIDTH + 0.5);
        printf("[");
        for (int i = 0; i < WIDTH; i++) putchar(i < filled ? '#' : '.');
        printf("] %5.1f%%  ETA %s\n", 100 * frac, eta);
    }
    printf("loss %.4f  lr %.4g  %.1f img/s  ETA %s\n", r->loss, r->learning_rate,
           r->images_per_second, eta);
    if (r->last_checkpoint_step > 0)
        printf("last checkpoint: step %lld  %s\n", (long long)r->last_checkpoint_step,
               r->last_checkpoint_path);
    else
        printf("last checkpoint: none yet\n");
    printf("skipped samples:");
    if (r->n_skipped == 0) printf(" none");
    for (size_t i = 0; i < r->n_skipped; i++)
        printf(" %s %llu", r->skipped[i]->reason, (unsigned long long)r->skipped[i]->count);
    printf("\n");
    for (size_t i = 0; i < r->n_workers; i++) {
        const Catlip__WorkerStatus *w = r->workers[i];
        printf("  worker %d  step %lld  %.1f img/s  data wait %.1f%%", w->worker,
               (long long)w->step, w->images_per_second, 100 * w->data_wait_ratio);
        for (size_t k = 0; k < w->n_skipped; k++)
            printf("%s%s %llu", k ? ", " : "  skipped ", w->skipped[k]->reason,
                   (unsigned long long)w->skipped[k]->count);
        printf("\n");
    }
    time_t start = (time_t)r->start_unix_time;
    struct tm tm;
    char when[64];
    localtime_r(&start, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", &tm);
    printf("started %s\nconfig: %s\n", when, r->config_summary);
}

// What the last successful poll saw (for --watch when the run goes away).
struct last_seen {
    int seen;
    int state;
    int64_t step, total_steps;
};

// The step of the last line of RUN_DIR/metrics.jsonl (-1 when unreadable).
static int64_t last_logged_step(const char *run_dir) {
    char path[CONFIG_STRING_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char tail[8192];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0, SEEK_SET);
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n] = '\0';
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r')) tail[--n] = '\0';
    char *line = strrchr(tail, '\n');
    json_t *j = json_loads(line ? line + 1 : tail, 0, NULL);
    int64_t step = json_is_integer(json_object_get(j, "step"))
                       ? json_integer_value(json_object_get(j, "step"))
                       : -1;
    json_decref(j);
    return step;
}

static int show_status(const struct target *t, int json, int watch_mode, int terminal,
                       struct last_seen *last) {
    Catlip__StatusRequest sreq = CATLIP__STATUS_REQUEST__INIT;
    sreq.include_workers = 1;
    Catlip__ClientMessage req = CATLIP__CLIENT_MESSAGE__INIT;
    req.message_case = CATLIP__CLIENT_MESSAGE__MESSAGE_STATUS;
    req.status = &sreq;
    Catlip__ServerMessage *m = exchange(t, &req);
    if (!m) return -1;
    if (m->message_case != CATLIP__SERVER_MESSAGE__MESSAGE_STATUS) {
        catlip__server_message__free_unpacked(m, NULL);
        return catlip_error_set("status server %s answered a status request with something else",
                                t->where);
    }
    const Catlip__StatusReply *r = m->status;
    if (r->error && r->error[0]) {
        catlip_error_set("status server %s: %s", t->where, r->error);
        catlip__server_message__free_unpacked(m, NULL);
        return -1;
    }
    *last = (struct last_seen){1, r->state, r->step, r->total_steps};
    if (json) {
        json_t *j = status_reply_json(r);
        char *text =
            json_dumps(j, (watch_mode ? JSON_COMPACT : JSON_INDENT(2)) | JSON_PRESERVE_ORDER);
        printf("%s\n", text);
        free(text);
        json_decref(j);
    } else {
        if (watch_mode && terminal) printf("\033[H\033[J");  // home, clear: a live view
        print_summary(r, terminal);
        if (watch_mode && !terminal) printf("\n");
    }
    fflush(stdout);
    int ended = r->state == CATLIP__STATUS_REPLY__STATE__FINISHED ||
                r->state == CATLIP__STATUS_REPLY__STATE__FAILED;
    catlip__server_message__free_unpacked(m, NULL);
    return ended;
}

static int send_control(const struct target *t, int stop, const char *token) {
    Catlip__ControlRequest creq = CATLIP__CONTROL_REQUEST__INIT;
    creq.action = stop ? CATLIP__CONTROL_REQUEST__ACTION__STOP
                       : CATLIP__CONTROL_REQUEST__ACTION__CHECKPOINT_NOW;
    creq.token = (char *)token;
    Catlip__ClientMessage req = CATLIP__CLIENT_MESSAGE__INIT;
    req.message_case = CATLIP__CLIENT_MESSAGE__MESSAGE_CONTROL;
    req.control = &creq;
    Catlip__ServerMessage *m = exchange(t, &req);
    if (!m) return -1;
    int rc;
    if (m->message_case == CATLIP__SERVER_MESSAGE__MESSAGE_CONTROL) {
        rc = m->control->accepted ? 0 : -1;
        if (rc == 0)
            printf("%s\n", m->control->message);
        else
            catlip_error_set("status server %s: %s", t->where, m->control->message);
    } else if (m->message_case == CATLIP__SERVER_MESSAGE__MESSAGE_STATUS && m->status->error) {
        rc = catlip_error_set("status server %s: %s", t->where, m->status->error);
    } else {
        rc = catlip_error_set("status server %s answered a control request with something else",
                              t->where);
    }
    catlip__server_message__free_unpacked(m, NULL);
    return rc;
}

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) {
    interrupted = 1;
}

int cmd_status(int argc, char **argv) {
    const char *run_dir = NULL, *connect_arg = NULL, *token_arg = NULL;
    int json = 0, control = -1;  // -1 none, 0 checkpoint now, 1 stop
    double watch = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc) {
            run_dir = argv[++i];
        } else if (!strcmp(argv[i], "--connect") && i + 1 < argc) {
            connect_arg = argv[++i];
        } else if (!strcmp(argv[i], "--token") && i + 1 < argc) {
            token_arg = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--watch") && i + 1 < argc) {
            char *end;
            watch = strtod(argv[++i], &end);
            if (*end || !(watch >= 0.1 && watch <= 86400)) {
                fputs(usage, stderr);
                fprintf(stderr, "catlip: error: --watch '%s': expected seconds from 0.1 to 86400\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--checkpoint-now") || !strcmp(argv[i], "--stop")) {
            if (control >= 0) {
                fprintf(stderr, "catlip: error: give one of --checkpoint-now and --stop\n");
                return 2;
            }
            control = !strcmp(argv[i], "--stop");
        } else {
            fputs(usage, stderr);
            fprintf(stderr, "catlip: error: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!run_dir == !connect_arg) {
        fputs(usage, stderr);
        fprintf(stderr,
                "catlip: error: give exactly one of --run-dir DIR and --connect HOST:PORT\n");
        return 2;
    }
    if (control >= 0 && (json || watch > 0)) {
        fprintf(stderr,
                "catlip: error: --checkpoint-now / --stop take neither --json nor --watch\n");
        return 2;
    }
    if (control >= 0 && !token_arg && !run_dir) {
        fprintf(
            stderr,
            "catlip: error: a control request with --connect needs --token (or use --run-dir)\n");
        return 2;
    }
    struct target t;
    if ((run_dir ? read_status_file(run_dir, &t) : parse_connect(connect_arg, &t)) != 0) {
        catlip_error_print();
        return connect_arg ? 2 : 1;
    }
    if (control >= 0) {
        char token[256];
        if (token_arg)
            snprintf(token, sizeof token, "%s", token_arg);
        else if (read_token(run_dir, token, sizeof token) != 0) {
            catlip_error_print();
            return 1;
        }
        if (send_control(&t, control, token) != 0) {
            catlip_error_print();
            return 1;
        }
        return 0;
    }
    int terminal = isatty(STDOUT_FILENO);
    if (watch > 0) signal(SIGINT, on_interrupt);
    struct last_seen last = {0};
    for (;;) {
        int rc = show_status(&t, json, watch > 0, terminal, &last);
        if (rc < 0 && last.seen) {
            // The coordinator's listeners close when the run ends: a finished run ends the watch.
            if (run_dir) {
                int64_t logged = last_logged_step(run_dir);
                if (logged > last.step) last.step = logged;
            }
            int done = last.step >= last.total_steps;
            if (done)
                fprintf(stderr, "catlip status: the run has finished (step %lld/%lld)\n",
                        (long long)last.step, (long long)last.total_steps);
            else
                fprintf(stderr,
                        "catlip status: the run is no longer reachable; last seen %s at step "
                        "%lld/%lld (it stopped before the end: see its log)\n",
                        status_state_name(last.state), (long long)last.step,
                        (long long)last.total_steps);
            return done ? 0 : 1;
        }
        if (rc < 0) {
            catlip_error_print();
            return 1;
        }
        if (watch <= 0 || rc == 1 || interrupted) return 0;
        struct timespec ts = {(time_t)watch, (long)((watch - floor(watch)) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !interrupted) {
        }
        if (interrupted) return 0;
    }
}
