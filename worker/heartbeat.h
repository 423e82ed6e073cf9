// Waiting in a collective without going silent. When a host dies, the surviving workers block
// in the next allreduce with it; if they also stopped talking to the coordinator, it could not
// tell the lost workers from the waiting ones. So every collective wait of a worker goes
// through heartbeat_waitall, which polls the requests and sends the coordinator a heartbeat
// (LINK_HEARTBEAT) every interval: the workers that fall silent are the ones that were lost.
// (grad_sync's staged reductions poll in their own loop and call heartbeat_beat.)
#pragma once
#include <mpi.h>

struct link;

struct heartbeat {
    struct link *link;  // to the coordinator
    int worker;         // this worker's index
    double interval_s;  // between heartbeats while waiting
    double last_s;      // time_now() of the last message this worker sent
};

void heartbeat_init(struct heartbeat *h, struct link *link, int worker, double interval_s);
// Call after any other message to the coordinator (it shows this worker is alive too).
void heartbeat_sent(struct heartbeat *h);
// A heartbeat if the last message is an interval old: a step of many micro-batches
// (train.micro_batch) may outlast worker_timeout without any collective to wait in. h may be
// NULL (no coordinator: catlip bench allreduce), and so may the waits' below.
void heartbeat_beat(struct heartbeat *h);
// MPI_Waitall, heartbeating while it waits. Returns MPI_SUCCESS or the MPI error.
int heartbeat_waitall(struct heartbeat *h, int n, MPI_Request *requests);
// MPI_Allreduce in place on `comm` through heartbeat_waitall.
int heartbeat_allreduce(struct heartbeat *h, void *buf, int count, MPI_Datatype type, MPI_Op op,
                        MPI_Comm comm);
