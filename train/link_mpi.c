// The link over MPI: the coordinator is rank 0 of MPI_COMM_WORLD, worker i is rank i + 1;
// every message is one point-to-point send whose tag is its kind. The coordinator polls
// (MPI_Iprobe) from its event loop: Open MPI has no descriptor to wait on.
#include <mpi.h>
#include <stdlib.h>

#include "catlip.pb-c.h"
#include "core/check.h"
#include "core/log.h"
#include "train/link.h"

// A command on its way to one worker. Sent with MPI_Isend, never a blocking send: a worker
// whose host is gone never takes it, and a blocked coordinator could not notice the loss.
// Each lives in its own allocation, so that its buffer stays put while MPI reads it.
struct pending_command {
    MPI_Request request;
    uint8_t data[64];
};

struct link_mpi {
    struct link base;
    int nworkers;
    uint8_t *buffer;  // the last message received (+1 byte, so that a 0-byte one has storage)
    size_t capacity;
    struct pending_command **pending;  // commands not yet delivered
    int npending, cap_pending;
};

// Frees the commands that have been delivered.
static void reap_commands(struct link_mpi *m) {
    int kept = 0;
    for (int i = 0; i < m->npending; i++) {
        int done = 0;
        MPI_Test(&m->pending[i]->request, &done, MPI_STATUS_IGNORE);
        if (done) free(m->pending[i]);
        else m->pending[kept++] = m->pending[i];
    }
    m->npending = kept;
}

static const uint8_t *receive_one(struct link_mpi *m, const MPI_Status *st, int *len) {
    MPI_Get_count(st, MPI_BYTE, len);
    if ((size_t)*len + 1 > m->capacity) {
        m->capacity = (size_t)*len + 1;
        m->buffer = xrealloc(m->buffer, m->capacity);
    }
    MPI_Recv(m->buffer, *len, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    return m->buffer;
}

static void mpi_send(struct link *l, int worker, int kind, const void *data, size_t len) {
    MPI_Send(data, (int)len, MPI_BYTE, 0, kind, MPI_COMM_WORLD);
}

static int mpi_poll_command(struct link *l) {
    struct link_mpi *m = (struct link_mpi *)l;
    int kind = CATLIP__COMMAND__KIND__CONTINUE;
    for (;;) {
        int flag, len;
        MPI_Status st;
        MPI_Iprobe(0, LINK_COMMAND, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return kind;
        const uint8_t *data = receive_one(m, &st, &len);
        Catlip__Command *cmd = catlip__command__unpack(NULL, (size_t)len, data);
        if (cmd) {
            if ((int)cmd->kind > kind) kind = (int)cmd->kind;
            catlip__command__free_unpacked(cmd, NULL);
        }
    }
}

static void mpi_send_command(struct link *l, int kind) {
    struct link_mpi *m = (struct link_mpi *)l;
    Catlip__Command cmd = CATLIP__COMMAND__INIT;
    cmd.kind = (Catlip__Command__Kind)kind;
    CATLIP_ASSERT(catlip__command__get_packed_size(&cmd) <= sizeof m->pending[0]->data);
    reap_commands(m);
    if (m->npending > 0)
        log_warn("%d earlier command(s) to workers still undelivered: a worker or its host may be "
                 "gone",
                 m->npending);
    if (m->npending + m->nworkers > m->cap_pending) {
        m->cap_pending = 2 * (m->npending + m->nworkers);
        m->pending = xrealloc(m->pending, (size_t)m->cap_pending * sizeof *m->pending);
    }
    for (int r = 1; r <= m->nworkers; r++) {
        struct pending_command *p = xmalloc(sizeof *p);
        size_t len = catlip__command__pack(&cmd, p->data);
        MPI_Isend(p->data, (int)len, MPI_BYTE, r, LINK_COMMAND, MPI_COMM_WORLD, &p->request);
        m->pending[m->npending++] = p;
    }
}

static int mpi_poll(struct link *l) {
    struct link_mpi *m = (struct link_mpi *)l;
    if (m->npending > 0) reap_commands(m);
    for (int handled = 0;; handled++) {
        int flag, len;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return handled;
        const uint8_t *data = receive_one(m, &st, &len);
        if (st.MPI_SOURCE < 1 || st.MPI_SOURCE > m->nworkers) {
            log_warn("message (tag %d) from rank %d, not a worker, ignored", st.MPI_TAG,
                     st.MPI_SOURCE);
            continue;
        }
        if (l->receive)
            l->receive(l->receive_ctx, st.MPI_SOURCE - 1, st.MPI_TAG, data, (size_t)len);
    }
}

static void mpi_abort(struct link *l, int status) {
    MPI_Abort(MPI_COMM_WORLD, status);
}

static void mpi_destroy(struct link *l) {
    struct link_mpi *m = (struct link_mpi *)l;
    for (int i = 0; i < m->npending; i++) {  // undelivered (the job is ending): withdraw them
        MPI_Cancel(&m->pending[i]->request);
        MPI_Request_free(&m->pending[i]->request);
        free(m->pending[i]);
    }
    free(m->pending);
    free(m->buffer);
    free(m);
}

static const struct link_ops mpi_ops = {mpi_send, mpi_poll_command, mpi_send_command,
                                        mpi_poll, mpi_abort,        mpi_destroy};

struct link *link_mpi_create(int nworkers) {
    struct link_mpi *m = xcalloc(1, sizeof *m);
    m->base.ops = &mpi_ops;
    m->nworkers = nworkers;
    return &m->base;
}
