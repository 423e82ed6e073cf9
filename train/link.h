// The coordinator <-> worker link: every message the two roles exchange goes through these
// few functions, whatever carries it. Two implementations:
//   link_mpi_create    a launched job: point-to-point MPI messages on MPI_COMM_WORLD, the
//                      coordinator is rank 0 and worker i is rank i + 1 (train/link_mpi.c);
//   link_local_create  single-process mode: the worker's sends call the coordinator's
//                      receiver directly, commands pass through an atomic (train/link_local.c).
// Like libuv's one uv_write for every stream kind, neither role asks which one it holds, and
// neither includes the other's headers.
//
// Payloads: PROGRESS a packed Catlip__Progress, CKPT_BEGIN a packed Catlip__CheckpointHeader,
// CKPT_RECORD a packed tensor-chunk CheckpointRecord, CKPT_END an int64 step (negative:
// aborted), DONE an int32 exit status, COMMAND a packed Catlip__Command, HEARTBEAT nothing. The receiver checks
// every length (a message is outside input to it).
#pragma once
#include <stddef.h>
#include <stdint.h>

// The values are also the MPI tags.
enum link_kind {
    LINK_PROGRESS = 11,     // worker -> coordinator
    LINK_COMMAND = 12,      // coordinator -> workers
    LINK_CKPT_RECORD = 13,  // worker 0 -> coordinator
    LINK_CKPT_END = 14,     // worker 0 -> coordinator
    LINK_DONE = 15,         // worker -> coordinator
    LINK_CKPT_BEGIN = 16,   // worker 0 -> coordinator
    LINK_HEARTBEAT = 17,    // worker -> coordinator: alive, waiting in a collective (no payload)
};

// The coordinator's side: one message from worker `worker` (0-based). data is valid only
// during the call.
typedef void (*link_receive_fn)(void *ctx, int worker, int kind, const uint8_t *data, size_t len);

struct link;

// One implementation (a table of functions, as the link's first member points to).
struct link_ops {
    void (*send)(struct link *l, int worker, int kind, const void *data, size_t len);
    int (*poll_command)(struct link *l);
    void (*send_command)(struct link *l, int kind);
    int (*poll)(struct link *l);
    void (*abort)(struct link *l, int status);
    void (*destroy)(struct link *l);
};

struct link {
    const struct link_ops *ops;
    link_receive_fn receive;  // set by the coordinator
    void *receive_ctx;
};

// Every rank of a launched job makes one (the coordinator is rank 0, worker i rank i + 1),
// after MPI_Init.
struct link *link_mpi_create(int nworkers);
// Single-process mode: one link shared by the coordinator and the one worker.
struct link *link_local_create(void);
void link_destroy(struct link *l);

// ---- the worker's side
// Sends one message to the coordinator as worker `worker`.
void link_send(struct link *l, int worker, int kind, const void *data, size_t len);
void link_send_step(struct link *l, int worker, int kind, int64_t step);  // CKPT_END
void link_send_status(struct link *l, int worker, int status);            // DONE
// The highest Catlip__Command__Kind the coordinator sent since the last call (CONTINUE, 0,
// when none).
int link_poll_command(struct link *l);

// ---- the coordinator's side
void link_set_receiver(struct link *l, link_receive_fn receive, void *ctx);
// Hands every waiting message to the receiver; returns how many there were. Messages on the
// in-process link arrive by direct call, so there this returns 0.
int link_poll(struct link *l);
// Tells every worker to act on `kind` (a Catlip__Command__Kind) at its next step boundary.
void link_send_command(struct link *l, int kind);
// Ends the whole job now with `status` (a worker hung: nothing else would end it).
_Noreturn void link_abort(struct link *l, int status);
