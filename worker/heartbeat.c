#include "worker/heartbeat.h"

#include "core/log.h"
#include "train/link.h"

void heartbeat_init(struct heartbeat *h, struct link *link, int worker, double interval_s) {
    h->link = link;
    h->worker = worker;
    h->interval_s = interval_s;
    h->last_s = time_now();
}

void heartbeat_sent(struct heartbeat *h) {
    h->last_s = time_now();
}

void heartbeat_beat(struct heartbeat *h) {
    if (!h) return;  // no coordinator to tell (catlip bench allreduce)
    double now = time_now();
    if (now - h->last_s >= h->interval_s) {
        link_send(h->link, h->worker, LINK_HEARTBEAT, NULL, 0);
        h->last_s = now;
    }
}

// Tests the requests without pause, as MPI_Waitall spins: a non-blocking collective (libnbc)
// advances one round per test, so sleeping between tests would slow every large allreduce.
int heartbeat_waitall(struct heartbeat *h, int n, MPI_Request *requests) {
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        heartbeat_beat(h);
    }
}

int heartbeat_allreduce(struct heartbeat *h, void *buf, int count, MPI_Datatype type, MPI_Op op,
                        MPI_Comm comm) {
    MPI_Request request;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, count, type, op, comm, &request);
    if (rc != MPI_SUCCESS) return rc;
    return heartbeat_waitall(h, 1, &request);
}
