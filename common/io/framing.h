// Length-delimited framing: each message in a byte stream (a checkpoint file, a status TCP
// connection) is preceded by its length as a base-128 varint, exactly as protobuf's
// writeDelimitedTo / parseDelimitedFrom and Python's _VarintEncoder do.
//
// Every reader takes a cap from its caller and checks the length prefix against it before
// allocating anything: a prefix over the cap, a varint longer than 10 bytes or one that
// overflows 64 bits, and a stream that ends inside a prefix or a frame are errors
// (catlip_error() holds one line naming the stream, the byte offset and the problem).
//
// Writing a frame to a socket or a file:
//
//     struct frame_buffer out = {0};
//     frame_buffer_append_message(&out, &reply.base);        // prefix + packed message
//     if (frame_write_fd(fd, "status client 127.0.0.1:5123", out.data, out.len) < 0) ...
//     frame_buffer_free(&out);
//
// Reading frames from a byte stream that arrives in pieces (e.g. libuv's read callback):
//
//     static int on_frame(void *ctx, const uint8_t *frame, size_t len) {
//         Catlip__ClientMessage *m = catlip__client_message__unpack(NULL, len, frame);
//         ...; return 0;                                // non-zero stops the decoder
//     }
//     struct frame_decoder d;
//     frame_decoder_init(&d, "status client 127.0.0.1:5123", 64 << 10);
//     while ((n = read(fd, buf, sizeof buf)) > 0)
//         if (frame_decoder_feed(&d, buf, n, on_frame, ctx) != 0) break;  // -1: see catlip_error()
//     if (n == 0 && frame_decoder_finish(&d) < 0) ...   // EOF inside a frame
//     frame_decoder_free(&d);
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

// A 64-bit value takes at most 10 varint bytes.
#define FRAME_VARINT_MAX 10

// Writes value as a varint into out (at least FRAME_VARINT_MAX bytes); returns the byte count.
size_t frame_varint_encode(uint8_t *out, uint64_t value);

// Decodes a varint from the n bytes at p. Returns the bytes it used (1..10) with *value set;
// 0 when the n bytes are a valid but incomplete start of a varint (more bytes needed);
// -1 when it is malformed: more than 10 bytes, or a 10th byte that overflows 64 bits.
int frame_varint_decode(const uint8_t *p, size_t n, uint64_t *value);

// ---------------------------------------------------------------------------------------
// writing

// A growable byte buffer that frames are appended to. Zero-initialise it; free with
// frame_buffer_free.
struct frame_buffer {
    uint8_t *data;
    size_t len;
    size_t cap;
};

// Appends the varint length and then the len bytes at msg.
void frame_buffer_append(struct frame_buffer *b, const void *msg, size_t len);
// Appends a protobuf-c message as one frame (its packed size, then the packed bytes).
void frame_buffer_append_message(struct frame_buffer *b, const ProtobufCMessage *msg);
void frame_buffer_free(struct frame_buffer *b);

// Writes one frame (prefix + len bytes) to fd, retrying short writes and EINTR. name says
// what fd is, for the error message. Returns 0, or -1 with catlip_error() set. On a socket
// whose peer may go away, ignore SIGPIPE first (writev cannot take MSG_NOSIGNAL), so that the
// write fails with EPIPE instead of killing the process.
int frame_write_fd(int fd, const char *name, const void *msg, size_t len);
// The same for a stdio stream (written with fwrite; the caller flushes).
int frame_write_file(FILE *f, const char *name, const void *msg, size_t len);

// ---------------------------------------------------------------------------------------
// reading a blocking stream

// Reads one frame from f into frame->data[0 .. frame->len) (grown as needed, never beyond
// max_frame bytes). *offset is the stream position of the frame's first prefix byte on entry
// and is advanced past the frame (it is used in error messages). When prefix is not NULL it
// receives the prefix bytes exactly as read (for a checksum) and *prefix_len their count.
// Returns 1: a frame was read; 0: clean end of stream before the first prefix byte;
// -1: error (a read error, a malformed or over-cap prefix, or the stream ended inside the
// frame), with catlip_error() naming the stream, the offset and the problem.
int frame_read_file(FILE *f, const char *name, size_t max_frame, struct frame_buffer *frame,
                    uint64_t *offset, uint8_t *prefix, size_t *prefix_len);

// ---------------------------------------------------------------------------------------
// incremental decoding of a byte stream

// Called for each complete frame; the bytes are valid only during the call. Returns 0 to go
// on, non-zero to stop (frame_decoder_feed then returns that value).
typedef int (*frame_fn)(void *ctx, const uint8_t *frame, size_t len);

// Holds at most one partial prefix and one partial frame: memory never exceeds max_frame
// bytes plus a small constant, however the stream is cut into pieces, and a frame's buffer
// only grows as its bytes actually arrive (a large prefix alone allocates nothing).
struct frame_decoder {
    const char *name;    // for errors; borrowed, must outlive the decoder
    size_t max_frame;    // frames longer than this are an error
    uint64_t offset;     // stream bytes consumed so far
    uint8_t prefix[FRAME_VARINT_MAX];
    size_t prefix_len;   // bytes of a partial prefix held in prefix[]
    bool have_length;    // a prefix was decoded; the frame body is being collected
    uint64_t frame_len;  // that prefix's value
    uint8_t *body;       // partial frame body: body_len of frame_len bytes
    size_t body_len;
    size_t body_cap;
    bool failed;         // an error (or a callback stop) happened; feed returns -1 from now on
};

void frame_decoder_init(struct frame_decoder *d, const char *name, size_t max_frame);
// Consumes n bytes, calling on_frame for each frame they complete (frames that lie whole
// inside the bytes are passed without a copy). Returns 0 when all bytes were consumed, -1 on a
// malformed or over-cap prefix (catlip_error() set; the decoder stays failed), or the non-zero
// value a callback returned (the rest of the bytes are dropped; the decoder stays failed).
int frame_decoder_feed(struct frame_decoder *d, const void *bytes, size_t n, frame_fn on_frame,
                       void *ctx);
// At end of stream: 0 when the stream ended on a frame boundary, -1 (catlip_error() set) when
// it ended inside a prefix or a frame.
int frame_decoder_finish(const struct frame_decoder *d);
// True when no partial prefix or frame is buffered.
bool frame_decoder_idle(const struct frame_decoder *d);
void frame_decoder_free(struct frame_decoder *d);
