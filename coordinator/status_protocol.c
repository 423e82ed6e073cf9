#include "coordinator/status_protocol.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "core/check.h"
#include "core/log.h"

int status_token_generate(char token[STATUS_TOKEN_LEN + 1]) {
    uint8_t bytes[STATUS_TOKEN_LEN / 2];
    size_t got = 0;
    while (got < sizeof bytes) {
        ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return catlip_error_set("cannot make the status token: getrandom: %s", strerror(errno));
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof bytes; i++) {
        token[2 * i] = hex[bytes[i] >> 4];
        token[2 * i + 1] = hex[bytes[i] & 15];
    }
    token[STATUS_TOKEN_LEN] = '\0';
    return 0;
}

int status_token_equal(const char *given, size_t given_len, const char *expected) {
    size_t expected_len = strlen(expected);
    // Compare given against expected repeated: every byte of given is looked at once, and the
    // only branch-free accumulator says whether any differed.
    volatile unsigned diff = (unsigned)(given_len != expected_len) | (unsigned)(expected_len == 0);
    for (size_t i = 0; i < given_len; i++)
        diff |=
            (unsigned)((uint8_t)given[i] ^ (uint8_t)expected[expected_len ? i % expected_len : 0]);
    return diff == 0;
}

static void append_server_message(struct frame_buffer *out, const Catlip__ServerMessage *m) {
    frame_buffer_append_message(out, &m->base);
}

void status_protocol_error(const char *message, struct frame_buffer *out) {
    Catlip__StatusReply reply = CATLIP__STATUS_REPLY__INIT;
    reply.error = (char *)message;
    Catlip__ServerMessage m = CATLIP__SERVER_MESSAGE__INIT;
    m.message_case = CATLIP__SERVER_MESSAGE__MESSAGE_STATUS;
    m.status = &reply;
    append_server_message(out, &m);
}

static int control_reply(struct frame_buffer *out, int accepted, const char *message) {
    Catlip__ControlReply reply = CATLIP__CONTROL_REPLY__INIT;
    reply.accepted = accepted;
    reply.message = (char *)message;
    Catlip__ServerMessage m = CATLIP__SERVER_MESSAGE__INIT;
    m.message_case = CATLIP__SERVER_MESSAGE__MESSAGE_CONTROL;
    m.control = &reply;
    append_server_message(out, &m);
    return accepted ? 0 : -1;
}

static int handle_control(const struct status_source *src, const char *peer,
                          const Catlip__ControlRequest *req, struct frame_buffer *out) {
    const char *token = req->token ? req->token : "";
    if (!status_token_equal(token, strlen(token), src->token)) {
        log_warn("status: control request from %s refused: wrong token", peer);
        return control_reply(out, 0, "refused: wrong token (see RUN_DIR/token)");
    }
    switch (req->action) {
        case CATLIP__CONTROL_REQUEST__ACTION__CHECKPOINT_NOW:
            src->control(src->ctx, 0);
            return control_reply(out, 1, "checkpoint requested: written at the next step boundary");
        case CATLIP__CONTROL_REQUEST__ACTION__STOP:
            src->control(src->ctx, 1);
            return control_reply(out, 1,
                                 "stop requested: checkpoint at the next step boundary, then exit");
        default:
            log_warn("status: control request from %s refused: no action", peer);
            return control_reply(out, 0, "refused: no action (use CHECKPOINT_NOW or STOP)");
    }
}

int status_protocol_handle(const struct status_source *src, const char *peer, const uint8_t *frame,
                           size_t len, struct frame_buffer *out) {
    Catlip__ClientMessage *m = catlip__client_message__unpack(NULL, len, frame);
    if (!m) {
        log_warn("status: %s sent %zu bytes that are not a ClientMessage: closing", peer, len);
        status_protocol_error("bad request: the frame is not a catlip.ClientMessage", out);
        return -1;
    }
    int rc = 0;
    if (m->message_case == CATLIP__CLIENT_MESSAGE__MESSAGE_STATUS) {
        Catlip__StatusReply reply = CATLIP__STATUS_REPLY__INIT;
        src->fill(src->ctx, &reply, m->status->include_workers);
        Catlip__ServerMessage sm = CATLIP__SERVER_MESSAGE__INIT;
        sm.message_case = CATLIP__SERVER_MESSAGE__MESSAGE_STATUS;
        sm.status = &reply;
        append_server_message(out, &sm);
    } else if (m->message_case == CATLIP__CLIENT_MESSAGE__MESSAGE_CONTROL) {
        rc = handle_control(src, peer, m->control, out);
    } else {
        log_warn("status: %s sent an empty ClientMessage: closing", peer);
        status_protocol_error("bad request: the ClientMessage holds neither status nor control",
                              out);
        rc = -1;
    }
    catlip__client_message__free_unpacked(m, NULL);
    return rc;
}
