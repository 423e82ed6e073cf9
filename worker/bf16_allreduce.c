#include "worker/bf16_allreduce.h"

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

MPI_Op bf16_allreduce_sum_op(void) {
    MPI_Op op;
    int rc = MPI_Op_create(bf16_sum, 1, &op);
    if (rc != MPI_SUCCESS) catlip_die("cannot create the bf16 sum MPI_Op (MPI error %d)", rc);
    return op;
}

static void widen(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_float(src[i]);
}

static void ensure(uint16_t **buffer, size_t *cap, size_t n) {
    if (n <= *cap) return;
    free(*buffer);
    *buffer = xmalloc(n * sizeof **buffer);
    *cap = n;
}

static int ring_mod(const struct bf16_allreduce *a, int k) {
    return ((k % a->size) + a->size) % a->size;
}

// Chunk k of the ring: [n k / P, n (k+1) / P). A reduce-scatter with bounds: the ring leaves
// chunk r+1 summed at rank r, so chunk k is the range rank k-1 is to own.
static size_t chunk_begin(const struct bf16_allreduce *a, int k) {
    if (a->bounds) return a->bounds[ring_mod(a, k - 1)];
    return a->n * (size_t)k / (size_t)a->size;
}
static size_t chunk_size(const struct bf16_allreduce *a, int k) {
    if (a->bounds) {
        int owner = ring_mod(a, k - 1);
        return a->bounds[owner + 1] - a->bounds[owner];
    }
    return chunk_begin(a, k + 1) - chunk_begin(a, k);
}

// Ring steps: the reduce-scatter's P-1, then the allgather's P-1 unless scattering only.
static int ring_steps(const struct bf16_allreduce *a) {
    return a->bounds ? a->size - 1 : 2 * (a->size - 1);
}

// Ring step k of 2(P-1). Reduce-scatter (k < P-1): send chunk r-k, receive chunk r-k-1 into
// the inbox (rank r-1 sends it in its step k). Allgather (j = k-(P-1)): send chunk r+1-j,
// receive chunk r-j into the wire buffer: after the reduce-scatter rank r owns chunk r+1.
static void ring_post(struct bf16_allreduce *a) {
    const int P = a->size, r = a->rank, k = a->step;
    const int next = ring_mod(a, r + 1), prev = ring_mod(a, r - 1);
    int send, recv;
    uint16_t *into;
    if (k < P - 1) {
        send = ring_mod(a, r - k);
        recv = ring_mod(a, r - k - 1);
        into = a->inbox;
    } else {
        int j = k - (P - 1);
        send = ring_mod(a, r + 1 - j);
        recv = ring_mod(a, r - j);
        into = a->wire + chunk_begin(a, recv);
    }
    int rc = MPI_Irecv(into, (int)chunk_size(a, recv), MPI_UINT16_T, prev, a->tag, a->comm,
                       &a->requests[0]);
    if (rc == MPI_SUCCESS)
        rc = MPI_Isend(a->wire + chunk_begin(a, send), (int)chunk_size(a, send), MPI_UINT16_T, next,
                       a->tag, a->comm, &a->requests[1]);
    if (rc != MPI_SUCCESS) catlip_die("bf16 gradient ring failed to start (MPI error %d)", rc);
}

// Step k's messages have arrived: fold the received chunk in (reduce-scatter) or take it.
static void ring_complete(struct bf16_allreduce *a) {
    const int P = a->size, k = a->step;
    if (k < P - 1) {
        int c = ring_mod(a, a->rank - k - 1);
        float *x = a->data + chunk_begin(a, c);
        size_t len = chunk_size(a, c);
        for (size_t i = 0; i < len; i++) x[i] += bf16_to_float(a->inbox[i]);  // fp32 sum
        if (k == P - 2 && a->bounds) return;  // scattered: the owner keeps its fp32 sum
        bf16_from_floats(a->wire + chunk_begin(a, c), x, len);
        if (k == P - 2) widen(x, a->wire + chunk_begin(a, c), len);  // the owner keeps bf16 too
    } else {
        int c = ring_mod(a, a->rank - (k - (P - 1)));
        widen(a->data + chunk_begin(a, c), a->wire + chunk_begin(a, c), chunk_size(a, c));
    }
}

// What both ways and both kinds share; 0 when nothing is to travel (one rank).
static int start_common(struct bf16_allreduce *a, enum bf16_allreduce_method method, MPI_Comm comm,
                        int tag, float *data, size_t n, const size_t *bounds) {
    a->method = method;
    a->comm = comm;
    a->tag = tag;
    a->data = data;
    a->n = n;
    a->bounds = bounds;
    a->step = 0;
    a->requests[0] = a->requests[1] = MPI_REQUEST_NULL;
    MPI_Comm_rank(comm, &a->rank);
    MPI_Comm_size(comm, &a->size);
    if (a->size == 1) {  // nothing travels: the sum is the data, unrounded
        a->step = method == BF16_ALLREDUCE_RING ? 0 : 1;
        return 0;
    }
    ensure(&a->wire, &a->wire_cap, n);
    return 1;
}

// The ring's first message: this rank's own chunk, packed.
static void ring_start(struct bf16_allreduce *a) {
    int own = a->rank;
    bf16_from_floats(a->wire + chunk_begin(a, own), a->data + chunk_begin(a, own),
                     chunk_size(a, own));
    ring_post(a);
}

void bf16_allreduce_start(struct bf16_allreduce *a, enum bf16_allreduce_method method,
                          MPI_Comm comm, int tag, MPI_Op op, float *data, size_t n) {
    if (!start_common(a, method, comm, tag, data, n, NULL)) return;
    if (method == BF16_ALLREDUCE_MPI_OP) {
        bf16_from_floats(a->wire, data, n);
        int rc =
            MPI_Iallreduce(MPI_IN_PLACE, a->wire, (int)n, MPI_UINT16_T, op, comm, &a->requests[0]);
        if (rc != MPI_SUCCESS)
            catlip_die("bf16 gradient allreduce failed to start (MPI error %d)", rc);
        return;
    }
    ensure(&a->inbox, &a->inbox_cap, (n + (size_t)a->size - 1) / (size_t)a->size);
    ring_start(a);
}

void bf16_reduce_scatter_start(struct bf16_allreduce *a, MPI_Comm comm, int tag, float *data,
                               size_t n, const size_t *bounds) {
    if (!start_common(a, BF16_ALLREDUCE_RING, comm, tag, data, n, bounds)) return;
    CATLIP_ASSERT(bounds[0] == 0 && bounds[a->size] == n);
    size_t largest = 0;
    for (int r = 0; r < a->size; r++)
        if (bounds[r + 1] - bounds[r] > largest) largest = bounds[r + 1] - bounds[r];
    ensure(&a->inbox, &a->inbox_cap, largest);
    ring_start(a);
}

int bf16_allreduce_test(struct bf16_allreduce *a) {
    if (a->method == BF16_ALLREDUCE_MPI_OP) {
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
        if (rc != MPI_SUCCESS) catlip_die("bf16 gradient ring failed (MPI error %d)", rc);
        if (!done) return 0;
        ring_complete(a);
        if (++a->step < steps) ring_post(a);
    }
    return 1;
}

void bf16_allreduce_free(struct bf16_allreduce *a) {
    free(a->wire);
    free(a->inbox);
    memset(a, 0, sizeof *a);
}
