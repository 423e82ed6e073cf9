#include "worker/grad_sync.h"

#include <string.h>

#include "core/check.h"
#include "core/log.h"

void grad_sync_init(struct grad_sync *s, MPI_Comm comm, float *grads, size_t bucket_floats,
                    int overlap, struct heartbeat *heartbeat) {
    memset(s, 0, sizeof *s);
    s->heartbeat = heartbeat;
    s->comm = comm;
    s->grads = grads;
    s->bucket_floats = bucket_floats > 0 ? bucket_floats : 1;
    s->overlap = overlap;
}

void grad_sync_free(struct grad_sync *s) {
    free(s->requests);
    free(s->bucket_begin);
    free(s->bucket_end);
    memset(s, 0, sizeof *s);
}

void grad_sync_begin(struct grad_sync *s) {
    s->nrequests = 0;
    s->pending_begin = s->pending_end = 0;
    s->wait_seconds = 0.0;
}

static void start_bucket(struct grad_sync *s, size_t begin, size_t end) {
    if (end <= begin) return;
    if (s->nrequests == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->requests = xrealloc(s->requests, (size_t)s->cap * sizeof *s->requests);
        s->bucket_begin = xrealloc(s->bucket_begin, (size_t)s->cap * sizeof(size_t));
        s->bucket_end = xrealloc(s->bucket_end, (size_t)s->cap * sizeof(size_t));
    }
    int i = s->nrequests++;
    s->bucket_begin[i] = begin;
    s->bucket_end[i] = end;
    s->requests[i] = MPI_REQUEST_NULL;
    if (s->overlap) {
        int rc = MPI_Iallreduce(MPI_IN_PLACE, s->grads + begin, (int)(end - begin), MPI_FLOAT,
                                MPI_SUM, s->comm, &s->requests[i]);
        if (rc != MPI_SUCCESS) catlip_die("gradient allreduce failed to start (MPI error %d)", rc);
    }
}

void grad_sync_ready(void *arg, size_t begin, size_t end) {
    struct grad_sync *s = arg;
    if (s->pending_end == s->pending_begin) {
        s->pending_begin = begin;
        s->pending_end = end;
    } else {
        CATLIP_ASSERT(end == s->pending_begin);  // ranges arrive back to front, contiguous
        s->pending_begin = begin;
    }
    if (s->pending_end - s->pending_begin >= s->bucket_floats) {
        start_bucket(s, s->pending_begin, s->pending_end);
        s->pending_begin = s->pending_end = 0;
    }
    // Give MPI a chance to progress the reductions already started.
    if (s->overlap && s->nrequests > 0) {
        int done;
        MPI_Testall(s->nrequests, s->requests, &done, MPI_STATUSES_IGNORE);
    }
}

void grad_sync_finish(struct grad_sync *s) {
    start_bucket(s, s->pending_begin, s->pending_end);
    s->pending_begin = s->pending_end = 0;
    double t0 = MPI_Wtime();
    if (s->overlap) {
        int rc = heartbeat_waitall(s->heartbeat, s->nrequests, s->requests);
        if (rc != MPI_SUCCESS) catlip_die("gradient allreduce failed (MPI error %d)", rc);
    } else {
        for (int i = 0; i < s->nrequests; i++) {
            int rc = heartbeat_allreduce(s->heartbeat, s->grads + s->bucket_begin[i],
                                         (int)(s->bucket_end[i] - s->bucket_begin[i]), MPI_FLOAT,
                                         MPI_SUM, s->comm);
            if (rc != MPI_SUCCESS) catlip_die("gradient allreduce failed (MPI error %d)", rc);
        }
    }
    s->wait_seconds = MPI_Wtime() - t0;
}
