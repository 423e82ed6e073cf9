#include "worker/ring_allreduce.h"

#include <string.h>

#include "core/check.h"
#include "nn/bf16.h"

// inout[i] = bf16(in[i] + inout[i]), the sum in fp32. Addition commutes in IEEE arithmetic,
// so the op is declared commutative.
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++)
        b[i] = bf16_from_float(bf16_to_float(a[i]) + bf16_to_float(b[i]));
}

MPI_Op ring_bf16_sum_op(void) {
    MPI_Op op;
    int rc = MPI_Op_create(bf16_sum, 1, &op);
    if (rc != MPI_SUCCESS) catlip_die("cannot create the bf16 sum MPI_Op (MPI error %d)", rc);
    return op;
}

static void widen(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
}

static void ensure(void **buffer, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return;
    free(*buffer);
    *buffer = xmalloc(bytes);
    *cap = bytes;
}

static int ring_mod(const struct ring_allreduce *a, int k) {
    return ((k % a->size) + a->size) % a->size;
}

// Chunk k of the ring: [n k / P, n (k+1) / P). A reduce-scatter with bounds: the ring leaves
// chunk r+1 summed at rank r, so chunk k is the range rank k-1 is to own.
static size_t chunk_begin(const struct ring_allreduce *a, int k) {
    if (a->bounds) return a->bounds[ring_mod(a, k - 1)];
    return a->n * (size_t)k / (size_t)a->size;
}
static size_t chunk_size(const struct ring_allreduce *a, int k) {
    if (a->bounds) {
        int owner = ring_mod(a, k - 1);
        return a->bounds[owner + 1] - a->bounds[owner];
    }
    return chunk_begin(a, k + 1) - chunk_begin(a, k);
}

// Ring steps: the reduce-scatter's P-1, then the allgather's P-1 unless scattering only. An
// allgather alone starts at step P-1.
static int ring_steps(const struct ring_allreduce *a) {
    return a->bounds && !a->gather_only ? a->size - 1 : 2 * (a->size - 1);
}

// Where chunk c travels from and arrives to outside the reduce-scatter's inbox: the data
// itself (fp32) or its packed copy (bf16).
static void *travel_buffer(const struct ring_allreduce *a, int c) {
    size_t begin = chunk_begin(a, c);
    return a->payload == RING_FP32 ? (void *)(a->data + begin) : (void *)(a->wire + begin);
}

// Ring step k of 2(P-1). Reduce-scatter (k < P-1): send chunk r-k, receive chunk r-k-1 into
// the inbox (rank r-1 sends it in its step k). Allgather (j = k-(P-1)): send chunk r+1-j,
// receive chunk r-j into its place: after the reduce-scatter rank r owns chunk r+1. A step
// sends and receives different chunks, so no buffer is read and written at once.
static void ring_post(struct ring_allreduce *a) {
    const int P = a->size, r = a->rank, k = a->step;
    const int next = ring_mod(a, r + 1), prev = ring_mod(a, r - 1);
    const MPI_Datatype type = a->payload == RING_FP32 ? MPI_FLOAT : MPI_UINT16_T;
    int send, recv;
    void *into;
    if (k < P - 1) {
        send = ring_mod(a, r - k);
        recv = ring_mod(a, r - k - 1);
        into = a->inbox;
    } else {
        int j = k - (P - 1);
        send = ring_mod(a, r + 1 - j);
        recv = ring_mod(a, r - j);
        into = travel_buffer(a, recv);
    }
    int rc =
        MPI_Irecv(into, (int)chunk_size(a, recv), type, prev, a->tag, a->comm, &a->requests[0]);
    if (rc == MPI_SUCCESS)
        rc = MPI_Isend(travel_buffer(a, send), (int)chunk_size(a, send), type, next, a->tag,
                       a->comm, &a->requests[1]);
    if (rc != MPI_SUCCESS) catlip_die("gradient ring failed to start (MPI error %d)", rc);
}

// Step k's messages have arrived: fold the received chunk in (reduce-scatter) or take it.
static void ring_complete(struct ring_allreduce *a) {
    const int P = a->size, k = a->step;
    if (k < P - 1) {
        int c = ring_mod(a, a->rank - k - 1);
        float *x = a->data + chunk_begin(a, c);
        size_t len = chunk_size(a, c);
        if (a->payload == RING_FP32) {  // the received partial sum plus this rank's term
            const float *in = a->inbox;
            for (size_t i = 0; i < len; i++) x[i] += in[i];
            return;
        }
        const uint16_t *in = a->inbox;
        for (size_t i = 0; i < len; i++) x[i] += bf16_to_float(in[i]);  // fp32 sum
        if (k == P - 2 && a->bounds) return;  // scattered: the owner keeps its fp32 sum
        bf16_from_floats(a->wire + chunk_begin(a, c), x, len);
        if (k == P - 2) widen(x, a->wire + chunk_begin(a, c), len);  // the owner keeps bf16 too
    } else if (a->payload == RING_BF16) {
        int c = ring_mod(a, a->rank - (k - (P - 1)));
        widen(a->data + chunk_begin(a, c), a->wire + chunk_begin(a, c), chunk_size(a, c));
    }
}

// What both ways and both kinds share; 0 when nothing is to travel (one rank).
static int start_common(struct ring_allreduce *a, enum ring_payload payload,
                        enum ring_method method, MPI_Comm comm, int tag, float *data, size_t n,
                        const size_t *bounds) {
    CATLIP_ASSERT(method == RING_METHOD_RING || payload == RING_BF16);
    a->payload = payload;
    a->method = method;
    a->comm = comm;
    a->tag = tag;
    a->data = data;
    a->n = n;
    a->bounds = bounds;
    a->gather_only = 0;
    a->step = 0;
    a->requests[0] = a->requests[1] = MPI_REQUEST_NULL;
    MPI_Comm_rank(comm, &a->rank);
    MPI_Comm_size(comm, &a->size);
    if (a->size == 1) {  // nothing travels: the sum is the data, unrounded
        a->step = method == RING_METHOD_RING ? 0 : 1;
        return 0;
    }
    if (payload == RING_BF16 && n > a->wire_cap) {
        free(a->wire);
        a->wire = xmalloc(n * sizeof *a->wire);
        a->wire_cap = n;
    }
    return 1;
}

// The ring's first message: this rank's own chunk (bf16: packed).
static void ring_start(struct ring_allreduce *a, size_t largest_chunk) {
    ensure(&a->inbox, &a->inbox_cap,
           largest_chunk * (a->payload == RING_FP32 ? sizeof(float) : sizeof(uint16_t)));
    int own = a->rank;
    if (a->payload == RING_BF16)
        bf16_from_floats(a->wire + chunk_begin(a, own), a->data + chunk_begin(a, own),
                         chunk_size(a, own));
    ring_post(a);
}

void ring_allreduce_start(struct ring_allreduce *a, enum ring_payload payload,
                          enum ring_method method, MPI_Comm comm, int tag, MPI_Op op, float *data,
                          size_t n) {
    if (!start_common(a, payload, method, comm, tag, data, n, NULL)) return;
    if (method == RING_METHOD_MPI_OP) {
        bf16_from_floats(a->wire, data, n);
        int rc =
            MPI_Iallreduce(MPI_IN_PLACE, a->wire, (int)n, MPI_UINT16_T, op, comm, &a->requests[0]);
        if (rc != MPI_SUCCESS)
            catlip_die("bf16 gradient allreduce failed to start (MPI error %d)", rc);
        return;
    }
    ring_start(a, (n + (size_t)a->size - 1) / (size_t)a->size);
}

void ring_reduce_scatter_start(struct ring_allreduce *a, enum ring_payload payload, MPI_Comm comm,
                               int tag, float *data, size_t n, const size_t *bounds) {
    if (!start_common(a, payload, RING_METHOD_RING, comm, tag, data, n, bounds)) return;
    CATLIP_ASSERT(bounds[0] == 0 && bounds[a->size] == n);
    size_t largest = 0;
    for (int r = 0; r < a->size; r++)
        if (bounds[r + 1] - bounds[r] > largest) largest = bounds[r + 1] - bounds[r];
    ring_start(a, largest);
}

void ring_allgather_start(struct ring_allreduce *a, MPI_Comm comm, int tag, float *data, size_t n,
                          const size_t *bounds) {
    if (!start_common(a, RING_FP32, RING_METHOD_RING, comm, tag, data, n, bounds)) return;
    CATLIP_ASSERT(bounds[0] == 0 && bounds[a->size] == n);
    a->gather_only = 1;
    a->step = a->size - 1;  // this rank's slice is chunk rank+1, as after a reduce-scatter
    ring_post(a);
}

int ring_allreduce_test(struct ring_allreduce *a) {
    if (a->method == RING_METHOD_MPI_OP) {
        if (a->step == 1) return 1;
        int done = 0;
        int rc = MPI_Test(&a->requests[0], &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) catlip_die("bf16 gradient allreduce failed (MPI error %d)", rc);
        if (!done) return 0;
        widen(a->data, a->wire, a->n);
        a->step = 1;
        return 1;
    }
    const int steps = ring_steps(a);
    while (a->step < steps) {
        int done = 0;
        int rc = MPI_Testall(2, a->requests, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) catlip_die("gradient ring failed (MPI error %d)", rc);
        if (!done) return 0;
        ring_complete(a);
        if (++a->step < steps) ring_post(a);
    }
    return 1;
}

void ring_allreduce_free(struct ring_allreduce *a) {
    free(a->wire);
    free(a->inbox);
    memset(a, 0, sizeof *a);
}
