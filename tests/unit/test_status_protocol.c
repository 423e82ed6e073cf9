// The status server's protobuf side without sockets: status and control requests, the token
// (right, wrong, wrong length, empty), and bad frames answered with an error reply.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "catlip.pb-c.h"
#include "coordinator/status_protocol.h"
#include "io/framing.h"
#include "tests/status/fake_source.h"

// Unframes the single reply in out.
static Catlip__ServerMessage *reply_of(const struct frame_buffer *out) {
    uint64_t len;
    int n = frame_varint_decode(out->data, out->len, &len);
    assert_true(n > 0);
    assert_int_equal((size_t)n + len, out->len);
    Catlip__ServerMessage *m = catlip__server_message__unpack(NULL, (size_t)len, out->data + n);
    assert_non_null(m);
    return m;
}

static int handle(const struct status_source *src, const ProtobufCMessage *msg,
                  struct frame_buffer *out) {
    uint8_t buf[1024];
    size_t len = protobuf_c_message_pack(msg, buf);
    return status_protocol_handle(src, "test", buf, len, out);
}

static void status_request(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    Catlip__StatusRequest sr = CATLIP__STATUS_REQUEST__INIT;
    Catlip__ClientMessage m = CATLIP__CLIENT_MESSAGE__INIT;
    m.message_case = CATLIP__CLIENT_MESSAGE__MESSAGE_STATUS;
    m.status = &sr;
    for (int workers = 0; workers < 2; workers++) {
        sr.include_workers = workers;
        struct frame_buffer out = {0};
        assert_int_equal(handle(&src, &m.base, &out), 0);
        Catlip__ServerMessage *r = reply_of(&out);
        assert_int_equal(r->message_case, CATLIP__SERVER_MESSAGE__MESSAGE_STATUS);
        assert_string_equal(r->status->run_id, "run\"<1>");
        assert_int_equal(r->status->step, 120);
        assert_int_equal(r->status->total_steps, 1000);
        assert_int_equal(r->status->n_workers, workers ? 2 : 0);
        assert_int_equal(r->status->n_skipped, 2);
        assert_true(r->status->error == NULL || r->status->error[0] == '\0');
        catlip__server_message__free_unpacked(r, NULL);
        frame_buffer_free(&out);
    }
    assert_int_equal(f.controls[0] + f.controls[1], 0);
}

static int control(struct status_source *src, int action, const char *token,
                   Catlip__ControlReply **reply) {
    Catlip__ControlRequest cr = CATLIP__CONTROL_REQUEST__INIT;
    cr.action = action;
    cr.token = (char *)token;
    Catlip__ClientMessage m = CATLIP__CLIENT_MESSAGE__INIT;
    m.message_case = CATLIP__CLIENT_MESSAGE__MESSAGE_CONTROL;
    m.control = &cr;
    struct frame_buffer out = {0};
    int rc = handle(src, &m.base, &out);
    Catlip__ServerMessage *r = reply_of(&out);
    assert_int_equal(r->message_case, CATLIP__SERVER_MESSAGE__MESSAGE_CONTROL);
    static Catlip__ControlReply copy;
    static char message[256];
    copy = *r->control;
    snprintf(message, sizeof message, "%s", r->control->message);
    copy.message = message;
    *reply = &copy;
    catlip__server_message__free_unpacked(r, NULL);
    frame_buffer_free(&out);
    return rc;
}

static void control_token(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    Catlip__ControlReply *r;
    const char *wrong[] = {"",
                           "0",
                           FAKE_TOKEN "0",
                           "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF",
                           NULL};
    for (int i = 0; wrong[i]; i++) {
        assert_int_equal(control(&src, CATLIP__CONTROL_REQUEST__ACTION__STOP, wrong[i], &r), -1);
        assert_false(r->accepted);
        assert_non_null(strstr(r->message, "wrong token"));
    }
    assert_int_equal(control(&src, CATLIP__CONTROL_REQUEST__ACTION__STOP, NULL, &r), -1);
    assert_int_equal(f.controls[0] + f.controls[1], 0);
    assert_int_equal(control(&src, CATLIP__CONTROL_REQUEST__ACTION__CHECKPOINT_NOW, FAKE_TOKEN, &r),
                     0);
    assert_true(r->accepted);
    assert_int_equal(f.controls[0], 1);
    assert_int_equal(control(&src, CATLIP__CONTROL_REQUEST__ACTION__STOP, FAKE_TOKEN, &r), 0);
    assert_true(r->accepted);
    assert_int_equal(f.controls[1], 1);
    assert_int_equal(control(&src, CATLIP__CONTROL_REQUEST__ACTION__NONE, FAKE_TOKEN, &r), -1);
    assert_false(r->accepted);
    assert_int_equal(f.controls[0] + f.controls[1], 2);
}

static void token_compare(void **state) {
    const char *t = FAKE_TOKEN;
    assert_true(status_token_equal(t, strlen(t), t));
    assert_false(status_token_equal(t, strlen(t) - 1, t));
    assert_false(status_token_equal("", 0, t));
    assert_false(status_token_equal("", 0, ""));  // an empty expected token matches nothing
    char a[STATUS_TOKEN_LEN + 1], b[STATUS_TOKEN_LEN + 1];
    assert_int_equal(status_token_generate(a), 0);
    assert_int_equal(status_token_generate(b), 0);
    assert_int_equal(strlen(a), STATUS_TOKEN_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), STATUS_TOKEN_LEN);
    assert_string_not_equal(a, b);
    assert_true(status_token_equal(a, strlen(a), a));
    assert_false(status_token_equal(a, strlen(a), b));
}

static void bad_frames(void **state) {
    struct fake_coordinator f;
    struct status_source src = fake_source(&f);
    const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\xff\xff\xff", 3},  // truncated varint field
        {"hello world", 11},  // garbage
        {"\x0a\x05\x08", 3},  // sub-message longer than the frame
        {"", 0},              // empty: a ClientMessage with neither field
        {"\x1a\x00", 2},      // only an unknown field
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct frame_buffer out = {0};
        assert_int_equal(status_protocol_handle(&src, "test", (const uint8_t *)cases[i].bytes,
                                                cases[i].len, &out),
                         -1);
        Catlip__ServerMessage *r = reply_of(&out);
        assert_int_equal(r->message_case, CATLIP__SERVER_MESSAGE__MESSAGE_STATUS);
        assert_non_null(strstr(r->status->error, "bad request"));
        catlip__server_message__free_unpacked(r, NULL);
        frame_buffer_free(&out);
    }
    struct frame_buffer out = {0};
    status_protocol_error("server busy", &out);
    Catlip__ServerMessage *r = reply_of(&out);
    assert_string_equal(r->status->error, "server busy");
    catlip__server_message__free_unpacked(r, NULL);
    frame_buffer_free(&out);
    assert_int_equal(f.controls[0] + f.controls[1], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_request),
        cmocka_unit_test(control_token),
        cmocka_unit_test(token_compare),
        cmocka_unit_test(bad_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
