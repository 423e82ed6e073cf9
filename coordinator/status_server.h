// The coordinator's status server: two listeners on the coordinator's libuv loop.
//   status.port       varint-length-delimited protobuf: ClientMessage -> ServerMessage
//                     (status_protocol.h); control requests need RUN_DIR/token
//   status.http_port  HTTP/1.1: /metrics, /status, / (http_status.h)
// Both bind status.host (127.0.0.1 by default; port 0 = ephemeral). On start it writes
// RUN_DIR/token (mode 0600, a fresh random secret) and RUN_DIR/status.json
// ({"host","port","http_port","pid","run_id"} with the bound ports), each atomically.
//
// Untrusted clients are bounded: at most STATUS_MAX_CONNECTIONS at once (more are answered
// "busy" and closed), a per-connection read buffer of STATUS_READ_BUFFER bytes, frames and
// request heads capped, at most STATUS_MAX_QUEUED reply bytes waiting for a client that does
// not read, and STATUS_REQUEST_TIMEOUT_MS for a request to arrive whole. Every refusal gets an
// error reply and a (rate-limited) log line; nothing a client does stops the loop.
#pragma once

struct coordinator;

// Where to listen and what to write into the run directory.
struct status_options {
    const char *host;  // status.host
    int port;          // status.port (0: ephemeral)
    int http_port;     // status.http_port (0: ephemeral)
    const char *run_dir;
    const char *run_id;
};

#define STATUS_MAX_CONNECTIONS 64
#define STATUS_READ_BUFFER 4096
#define STATUS_MAX_QUEUED (1 << 20)
#define STATUS_REQUEST_TIMEOUT_MS 10000

struct status_server;

// Starts listening on the coordinator's loop (call before the loop runs). Returns 0, or -1
// with catlip_error() one line naming the address and the problem (port in use, bad host).
int status_server_start(struct status_server **out, struct coordinator *c,
                        const struct status_options *options);
// Closes the listeners and every connection; their memory is released by the loop's next
// run (the coordinator runs it in coordinator_destroy). NULL is a no-op.
void status_server_stop(struct status_server *s);
