// The in-process link (single-process mode): the worker's sends call the coordinator's
// receiver on the worker's thread, as they happen; a command waits in an atomic until the
// worker's next step boundary takes it (once). The coordinator's status thread may send a
// command at any time, so the command is the only shared state and it is atomic.
#include <stdatomic.h>
#include <stdlib.h>

#include "core/check.h"
#include "train/link.h"

struct link_local {
    struct link base;
    atomic_int pending_command;  // Catlip__Command__Kind, the highest not yet taken
};

static void local_send(struct link *l, int worker, int kind, const void *data, size_t len) {
    if (l->receive) l->receive(l->receive_ctx, worker, kind, data, len);
}

static int local_poll_command(struct link *l) {
    return atomic_exchange(&((struct link_local *)l)->pending_command, 0);
}

static void local_send_command(struct link *l, int kind) {
    atomic_int *pending = &((struct link_local *)l)->pending_command;
    int now = atomic_load(pending);
    while (kind > now && !atomic_compare_exchange_weak(pending, &now, kind)) {
    }
}

static int local_poll(struct link *l) {
    return 0;
}

static void local_abort(struct link *l, int status) {
    exit(status);
}

static void local_destroy(struct link *l) {
    free(l);
}

static const struct link_ops local_ops = {local_send, local_poll_command, local_send_command,
                                          local_poll, local_abort,        local_destroy};

struct link *link_local_create(void) {
    struct link_local *m = xcalloc(1, sizeof *m);
    m->base.ops = &local_ops;
    atomic_init(&m->pending_command, 0);
    return &m->base;
}
