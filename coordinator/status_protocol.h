// The status server's requests, independent of sockets: what a protobuf client's frame gets
// back, and the run token. The libuv side (status_server.c) feeds it frames; the fuzz target
// and the unit tests call it directly.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "catlip.pb-c.h"
#include "io/framing.h"

// A ClientMessage is a few dozen bytes; anything longer is refused before it is buffered.
#define STATUS_MAX_FRAME 4096
// The token: 32 random bytes as 64 lowercase hex digits.
#define STATUS_TOKEN_LEN 64

// Where the answers come from: the coordinator, or a fake in tests.
struct status_source {
    void *ctx;
    void (*fill)(void *ctx, Catlip__StatusReply *reply, int include_workers);
    void (*control)(void *ctx, int stop);  // checkpoint now (0) or checkpoint and stop (1)
    int (*history)(void *ctx, int64_t *steps, double *loss, double *lr, double *images_per_second,
                   int max);
    char token[STATUS_TOKEN_LEN + 1];
};

// Fills token with STATUS_TOKEN_LEN hex digits from getrandom(). Returns 0 or -1 (catlip_error).
int status_token_generate(char token[STATUS_TOKEN_LEN + 1]);
// 1 when given equals expected. The time taken depends only on the length of given, never on
// where the strings first differ.
int status_token_equal(const char *given, size_t given_len, const char *expected);

// Handles one frame (a packed ClientMessage) from peer and appends the framed ServerMessage
// reply to out. Returns 0 to keep the connection, -1 when the request was bad (the reply says
// why, a log line names the peer) and the connection should close after the reply.
int status_protocol_handle(const struct status_source *src, const char *peer, const uint8_t *frame,
                           size_t len, struct frame_buffer *out);
// Appends a ServerMessage whose StatusReply carries only error = message: the reply to a
// stream the decoder refused (over-long prefix, truncated frame) or to a refused connection.
void status_protocol_error(const char *message, struct frame_buffer *out);
