#include "worker/grad_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"

// A bucket's stages, in order; flat buckets only have STAGE_ALLREDUCE, the hierarchical
// ones' non-leaders skip it.
enum stage { STAGE_QUEUED, STAGE_REDUCE, STAGE_ALLREDUCE, STAGE_BCAST, STAGE_DONE };

struct grad_bucket {
    size_t begin, end;
    enum stage stage;
    int started;            // the stage's messages are posted
    int nrequests;          // the stage's, in requests
    MPI_Request *requests;  // (max(1, host size - 1))
    int member;             // STAGE_REDUCE at the leader: the host rank being received
    float *scratch;         // (end - begin) at the leader: that member's gradients
    size_t scratch_cap;     // scratch and the ring's buffers are kept from step to step
    struct ring_allreduce ring;
    size_t *shard_bounds;  // (workers+1) sharded: the slices' parts of the bucket, from 0
    int *shard_counts;     // (workers) the same as MPI counts
};

struct grad_sync_options grad_sync_default_options(void) {
    struct grad_sync_options o = {.bucket_floats = 4 * 1048576 / sizeof(float),
                                  .overlap = 1,
                                  .wire = GRAD_WIRE_FP32,
                                  .allreduce = GRAD_ALLREDUCE_AUTO,
                                  .collectives = GRAD_COLLECTIVES_RING};
    return o;
}

int grad_wire_parse(const char *name, enum grad_wire *out) {
    if (!strcmp(name, "fp32"))
        *out = GRAD_WIRE_FP32;
    else if (!strcmp(name, "bf16"))
        *out = GRAD_WIRE_BF16;
    else
        return -1;
    return 0;
}

int grad_allreduce_parse(const char *name, enum grad_allreduce *out) {
    if (!strcmp(name, "auto"))
        *out = GRAD_ALLREDUCE_AUTO;
    else if (!strcmp(name, "flat"))
        *out = GRAD_ALLREDUCE_FLAT;
    else if (!strcmp(name, "hierarchical"))
        *out = GRAD_ALLREDUCE_HIERARCHICAL;
    else
        return -1;
    return 0;
}

int grad_collectives_parse(const char *name, enum grad_collectives *out) {
    if (!strcmp(name, "ring"))
        *out = GRAD_COLLECTIVES_RING;
    else if (!strcmp(name, "mpi"))
        *out = GRAD_COLLECTIVES_MPI;
    else
        return -1;
    return 0;
}

static void check_mpi(int rc, const char *what) {
    if (rc != MPI_SUCCESS) catlip_die("gradient allreduce: %s failed (MPI error %d)", what, rc);
}

// Our ring carries this sync's reductions: train.collectives ring, and bf16's reduce-scatter
// (which has no MPI_Op way).
static int uses_ring(const struct grad_sync *s) {
    return s->collectives == GRAD_COLLECTIVES_RING ||
           (s->wire == GRAD_WIRE_BF16 && s->shard_bounds);
}

static enum ring_payload payload(const struct grad_sync *s) {
    return s->wire == GRAD_WIRE_BF16 ? RING_BF16 : RING_FP32;
}

// This worker's host group: the workers sharing its memory, or with CATLIP_TEST_HOSTS=K the
// workers of its rank mod K.
static MPI_Comm split_hosts(MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm host;
    const char *test = getenv("CATLIP_TEST_HOSTS");
    if (test && *test) {
        char *end;
        long k = strtol(test, &end, 10);
        if (*end || k < 1 || k > 1000000)
            catlip_die("CATLIP_TEST_HOSTS must be a host count >= 1, got '%s'", test);
        check_mpi(MPI_Comm_split(comm, (int)(rank % k), rank, &host), "MPI_Comm_split");
    } else {
        check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host),
                  "MPI_Comm_split_type");
    }
    return host;
}

void grad_sync_init(struct grad_sync *s, MPI_Comm comm, float *grads, size_t bucket_floats,
                    int overlap, struct heartbeat *heartbeat) {
    struct grad_sync_options o = grad_sync_default_options();
    o.bucket_floats = bucket_floats;
    o.overlap = overlap;
    o.allreduce = GRAD_ALLREDUCE_FLAT;
    grad_sync_init_options(s, comm, grads, &o, heartbeat);
}

void grad_sync_init_options(struct grad_sync *s, MPI_Comm comm, float *grads,
                            const struct grad_sync_options *o, struct heartbeat *heartbeat) {
    memset(s, 0, sizeof *s);
    s->heartbeat = heartbeat;
    s->comm = comm;
    s->grads = grads;
    s->bucket_floats = o->bucket_floats > 0 ? o->bucket_floats : 1;
    s->overlap = o->overlap;
    s->wire = o->wire;
    s->collectives = o->collectives;
    s->shard_bounds = o->shard_bounds;
    s->flat_comm = s->host_reduce = s->host_bcast = s->leaders = MPI_COMM_NULL;
    s->bf16_op = MPI_OP_NULL;
    if (s->wire == GRAD_WIRE_BF16 && s->collectives == GRAD_COLLECTIVES_MPI)
        s->bf16_op = ring_bf16_sum_op();

    // Hosts, found even for flat (auto needs them; the description reports them).
    int rank;
    MPI_Comm_rank(comm, &rank);
    s->rank = rank;
    MPI_Comm_size(comm, &s->size);
    MPI_Comm host = split_hosts(comm);
    int host_rank, host_size;
    MPI_Comm_rank(host, &host_rank);
    MPI_Comm_size(host, &host_size);
    int leader = host_rank == 0;
    s->host_rank = host_rank;
    s->host_size = host_size;
    s->hosts = leader;
    s->max_workers_per_host = host_size;
    check_mpi(heartbeat_allreduce(heartbeat, &s->hosts, 1, MPI_INT, MPI_SUM, comm),
              "MPI_Allreduce");
    check_mpi(heartbeat_allreduce(heartbeat, &s->max_workers_per_host, 1, MPI_INT, MPI_MAX, comm),
              "MPI_Allreduce");
    CATLIP_ASSERT(!s->shard_bounds || o->allreduce != GRAD_ALLREDUCE_HIERARCHICAL);
    if (o->allreduce == GRAD_ALLREDUCE_HIERARCHICAL)
        s->hierarchical = 1;
    else if (o->allreduce == GRAD_ALLREDUCE_AUTO && !s->shard_bounds)
        s->hierarchical = s->hosts > 1 && s->max_workers_per_host > 1;

    if (s->hierarchical) {
        s->host_reduce = host;
        check_mpi(MPI_Comm_dup(host, &s->host_bcast), "MPI_Comm_dup");
        check_mpi(MPI_Comm_split(comm, leader ? 0 : MPI_UNDEFINED, rank, &s->leaders),
                  "MPI_Comm_split");
    } else {
        MPI_Comm_free(&host);
        if (uses_ring(s) || s->wire == GRAD_WIRE_BF16)
            check_mpi(MPI_Comm_dup(comm, &s->flat_comm), "MPI_Comm_dup");
        else
            s->flat_comm = comm;  // libnbc's collectives: the workers' communicator
    }
}

const char *grad_sync_describe(const struct grad_sync *s, char *buf, size_t cap) {
    const char *wire = s->wire == GRAD_WIRE_FP32 ? (uses_ring(s) ? "fp32 ring" : "fp32 MPI")
                       : uses_ring(s)            ? "bf16 ring"
                                                 : "bf16 MPI_Op";
    const char *kind = s->hierarchical   ? "hierarchical"
                       : s->shard_bounds ? "flat reduce-scatter (sharded optimizer)"
                                         : "flat";
    snprintf(buf, cap, "%s, %s (%d host%s, up to %d worker%s per host), %s", wire, kind, s->hosts,
             s->hosts == 1 ? "" : "s", s->max_workers_per_host,
             s->max_workers_per_host == 1 ? "" : "s",
             s->overlap ? "overlapped with backward" : "after backward");
    return buf;
}

static void free_comm(MPI_Comm *c) {
    if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
}

void grad_sync_free(struct grad_sync *s) {
    for (int i = 0; i < s->cap; i++) {
        free(s->buckets[i].requests);
        free(s->buckets[i].scratch);
        ring_allreduce_free(&s->buckets[i].ring);
        free(s->buckets[i].shard_bounds);
        free(s->buckets[i].shard_counts);
    }
    free(s->buckets);
    if (s->flat_comm != s->comm) free_comm(&s->flat_comm);
    free_comm(&s->host_reduce);
    free_comm(&s->host_bcast);
    free_comm(&s->leaders);
    if (s->bf16_op != MPI_OP_NULL) MPI_Op_free(&s->bf16_op);
    memset(s, 0, sizeof *s);
}

void grad_sync_begin(struct grad_sync *s) {
    s->nbuckets = s->first_unfinished = 0;
    s->pending_begin = s->pending_end = 0;
    s->wait_seconds = 0.0;
}

static enum stage first_stage(const struct grad_sync *s) {
    return s->hierarchical ? STAGE_REDUCE : STAGE_ALLREDUCE;
}

static enum stage next_stage(const struct grad_sync *s, enum stage stage) {
    if (!s->hierarchical || stage == STAGE_BCAST) return STAGE_DONE;
    if (stage == STAGE_REDUCE) return s->leaders != MPI_COMM_NULL ? STAGE_ALLREDUCE : STAGE_BCAST;
    return STAGE_BCAST;
}

// Within a host the leader receives its members' gradients one after another and adds them in
// host-rank order, then sends the sum back to each: point-to-point, as Open MPI's non-blocking
// reduce and broadcast (libnbc) split a large message into many rounds that each wait for a
// test (measured several times slower here); the fixed order keeps the sum deterministic.
static void post_member_receive(struct grad_sync *s, struct grad_bucket *b, int tag) {
    size_t n = b->end - b->begin;
    check_mpi(
        MPI_Irecv(b->scratch, (int)n, MPI_FLOAT, b->member, tag, s->host_reduce, &b->requests[0]),
        "receiving a host member's gradients");
    b->nrequests = 1;
}

static void stage_start(struct grad_sync *s, struct grad_bucket *b, int index) {
    float *x = s->grads + b->begin;
    size_t n = b->end - b->begin;
    const int tag = index % 32768;
    b->nrequests = 0;
    switch (b->stage) {
        case STAGE_REDUCE:
            if (s->host_size == 1) break;
            if (s->host_rank == 0) {
                if (b->scratch_cap < n) {
                    free(b->scratch);
                    b->scratch = xmalloc(n * sizeof *b->scratch);
                    b->scratch_cap = n;
                }
                b->member = 1;
                post_member_receive(s, b, tag);
            } else {
                check_mpi(MPI_Isend(x, (int)n, MPI_FLOAT, 0, tag, s->host_reduce, &b->requests[0]),
                          "sending gradients to the host's leader");
                b->nrequests = 1;
            }
            break;
        case STAGE_ALLREDUCE: {
            MPI_Comm c = s->hierarchical ? s->leaders : s->flat_comm;
            if (uses_ring(s) && s->shard_bounds) {
                ring_reduce_scatter_start(&b->ring, payload(s), c, tag, x, n, b->shard_bounds);
            } else if (s->shard_bounds) {
                // In place: this worker's part arrives at the start of the bucket (moved to
                // its place when done, stage_test).
                check_mpi(MPI_Ireduce_scatter(MPI_IN_PLACE, x, b->shard_counts, MPI_FLOAT, MPI_SUM,
                                              c, &b->requests[0]),
                          "MPI_Ireduce_scatter");
                b->nrequests = 1;
            } else if (uses_ring(s) || s->wire == GRAD_WIRE_BF16) {
                ring_allreduce_start(&b->ring, payload(s),
                                     uses_ring(s) ? RING_METHOD_RING : RING_METHOD_MPI_OP, c, tag,
                                     s->bf16_op, x, n);
            } else {
                check_mpi(
                    MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, c, &b->requests[0]),
                    "MPI_Iallreduce");
                b->nrequests = 1;
            }
            break;
        }
        case STAGE_BCAST:
            if (s->host_rank == 0) {
                for (int m = 1; m < s->host_size; m++)
                    check_mpi(
                        MPI_Isend(x, (int)n, MPI_FLOAT, m, tag, s->host_bcast, &b->requests[m - 1]),
                        "sending the sum within the host");
                b->nrequests = s->host_size - 1;
            } else {
                check_mpi(MPI_Irecv(x, (int)n, MPI_FLOAT, 0, tag, s->host_bcast, &b->requests[0]),
                          "receiving the sum from the host's leader");
                b->nrequests = 1;
            }
            break;
        default: CATLIP_ASSERT(0);
    }
    b->started = 1;
}

static int stage_test(struct grad_sync *s, struct grad_bucket *b, int index) {
    if (b->stage == STAGE_ALLREDUCE && (uses_ring(s) || s->wire == GRAD_WIRE_BF16))
        return ring_allreduce_test(&b->ring);
    for (;;) {
        int done = 0;
        check_mpi(MPI_Testall(b->nrequests, b->requests, &done, MPI_STATUSES_IGNORE),
                  "a gradient reduction");
        if (!done) return 0;
        if (b->stage == STAGE_ALLREDUCE && s->shard_bounds) {
            size_t own = b->shard_bounds[s->rank];
            if (own > 0)
                memmove(s->grads + b->begin + own, s->grads + b->begin,
                        (size_t)b->shard_counts[s->rank] * sizeof(float));
            return 1;
        }
        if (b->stage != STAGE_REDUCE || s->host_rank != 0 || s->host_size == 1) return 1;
        float *x = s->grads + b->begin;
        for (size_t i = 0, n = b->end - b->begin; i < n; i++) x[i] += b->scratch[i];
        if (++b->member == s->host_size) return 1;
        post_member_receive(s, b, index % 32768);
    }
}

// Advances bucket i as far as its messages allow; 1 when its gradients are summed. A stage's
// collectives go out in bucket order on every worker (MPI matches collectives by order), so a
// bucket starts a stage only after the bucket before it has.
static int bucket_advance(struct grad_sync *s, int i) {
    struct grad_bucket *b = &s->buckets[i];
    while (b->stage != STAGE_DONE) {
        if (b->stage == STAGE_QUEUED) return 0;
        if (!b->started) {
            const struct grad_bucket *prev = i > 0 ? &s->buckets[i - 1] : NULL;
            if (prev && (prev->stage < b->stage || (prev->stage == b->stage && !prev->started)))
                return 0;
            stage_start(s, b, i);
        }
        if (!stage_test(s, b, i)) return 0;
        b->stage = next_stage(s, b->stage);
        b->started = 0;
    }
    return 1;
}

// Advances the unfinished buckets before `upto`; 1 when all are done.
static int advance_until(struct grad_sync *s, int upto) {
    int all = 1;
    for (int i = s->first_unfinished; i < upto; i++) {
        int done = bucket_advance(s, i);
        if (done && all) s->first_unfinished = i + 1;
        all &= done;
    }
    return all;
}

static void start_bucket(struct grad_sync *s, size_t begin, size_t end) {
    if (end <= begin) return;
    if (s->nbuckets == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        s->buckets = xrealloc(s->buckets, (size_t)cap * sizeof *s->buckets);
        memset(s->buckets + s->cap, 0, (size_t)(cap - s->cap) * sizeof *s->buckets);
        s->cap = cap;
    }
    int i = s->nbuckets++;
    struct grad_bucket *b = &s->buckets[i];
    if (!b->requests) {
        int n = s->host_size > 2 ? s->host_size - 1 : 1;
        b->requests = xmalloc((size_t)n * sizeof *b->requests);
    }
    b->begin = begin;
    b->end = end;
    if (s->shard_bounds) {  // each slice's part of [begin, end), relative to begin
        if (!b->shard_bounds) {
            b->shard_bounds = xmalloc((size_t)(s->size + 1) * sizeof *b->shard_bounds);
            b->shard_counts = xmalloc((size_t)s->size * sizeof *b->shard_counts);
        }
        for (int k = 0; k <= s->size; k++) {
            size_t x = s->shard_bounds[k];
            x = x < begin ? begin : x > end ? end : x;
            b->shard_bounds[k] = x - begin;
        }
        for (int k = 0; k < s->size; k++)
            b->shard_counts[k] = (int)(b->shard_bounds[k + 1] - b->shard_bounds[k]);
    }
    b->started = 0;
    b->nrequests = 0;
    b->stage = s->overlap ? first_stage(s) : STAGE_QUEUED;
    if (s->overlap) bucket_advance(s, i);
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
    if (s->overlap) advance_until(s, s->nbuckets);
}

// Waits until the buckets before `upto` are summed, heartbeating (worker/heartbeat.h). Tests
// without pause, as MPI_Waitall spins: a non-blocking collective advances a round per test.
static void wait_until(struct grad_sync *s, int upto) {
    while (!advance_until(s, upto)) heartbeat_beat(s->heartbeat);
}

void grad_sync_finish(struct grad_sync *s) {
    start_bucket(s, s->pending_begin, s->pending_end);
    s->pending_begin = s->pending_end = 0;
    double t0 = MPI_Wtime();
    if (!s->overlap) {
        // One bucket at a time, each after the one before has finished.
        for (int i = 0; i < s->nbuckets; i++) {
            s->buckets[i].stage = first_stage(s);
            wait_until(s, i + 1);
        }
    }
    wait_until(s, s->nbuckets);
    s->wait_seconds = MPI_Wtime() - t0;
}
