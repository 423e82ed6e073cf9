#include "worker/heartbeat.h"

#include <time.h>

#include "core/log.h"
#include "train/link.h"

// Spin on MPI_Testall this long before sleeping between tests (as MPI_Wait would spin): a
// step's small allreduces finish well within it, so they gain no latency.
#define SPIN_SECONDS 0.002
#define SLEEP_MAX_NS 1000000L  // 1 ms: the most a finished collective waits to be noticed

void heartbeat_init(struct heartbeat *h, struct link *link, int worker, double interval_s) {
    h->link = link;
    h->worker = worker;
    h->interval_s = interval_s;
    h->last_s = time_now();
}

void heartbeat_sent(struct heartbeat *h) {
    h->last_s = time_now();
}

int heartbeat_waitall(struct heartbeat *h, int n, MPI_Request *requests) {
    double start = time_now();
    long sleep_ns = 1000;
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        double now = time_now();
        if (now - h->last_s >= h->interval_s) {
            link_send(h->link, h->worker, LINK_HEARTBEAT, NULL, 0);
            h->last_s = now;
        }
        if (now - start > SPIN_SECONDS) {
            struct timespec ts = {0, sleep_ns};
            nanosleep(&ts, NULL);
            if (sleep_ns < SLEEP_MAX_NS) sleep_ns *= 2;
        }
    }
}

int heartbeat_allreduce(struct heartbeat *h, void *buf, int count, MPI_Datatype type, MPI_Op op,
                        MPI_Comm comm) {
    MPI_Request request;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, count, type, op, comm, &request);
    if (rc != MPI_SUCCESS) return rc;
    return heartbeat_waitall(h, 1, &request);
}
