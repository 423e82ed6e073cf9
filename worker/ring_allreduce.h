// Summing fp32 buffers across ranks with our own ring: a reduce-scatter then an allgather of
// P chunks with non-blocking point-to-point messages, 2(P-1) steps each sending n/P values —
// every rank sends and receives 2(P-1)/P of the buffer, the least any allreduce moves. Two
// payloads on the wire, one schedule:
//
// - RING_FP32 (train.grad_comm: fp32): the partial sums travel as they are. Chunk c is summed
//   in a fixed order, ((x_c + x_{c+1}) + x_{c+2}) + ... + x_{c-1} (ranks mod P), by the ranks
//   it passes through, and the finished sum is copied to every rank, so every rank holds the
//   same bits and a rerun gives them again. Error: P-1 fp32 adds, so
//       |result - exact sum| <= gamma_{P-1}(2^-24) * sum |x_i|.
// - RING_BF16 (train.grad_comm: bf16): half the bytes. Every hop adds in fp32 what it
//   received to its own values and rounds the sum to bf16 (nearest, ties to even: nn/bf16.h)
//   to send it on; the final sum is rounded to bf16 once more and every rank, the one that
//   computed it included, ends with that value widened to fp32. Error: every term passes
//   through at most P roundings of relative size u = 2^-8 (bf16 keeps 8 significant bits)
//   each after an fp32 add (2^-24), so
//       |result - exact sum| <= gamma_P * sum |x_i| + P * 2^-126,  gamma_P = P d / (1 - P d),
//       d = (1 + 2^-8)(1 + 2^-24) - 1
//   (Higham's bound for recursive summation, one rounding more for the first packing; the
//   last term covers denormals, which bf16 conversion flushes to zero).
// The order of the sums depends only on the buffer's length (or the reduce-scatter's bounds)
// and the ranks' count. tests/comm holds both bounds and the bit-identities.
//
// RING_METHOD_MPI_OP (bf16 only, for measuring): MPI_Iallreduce of the packed bf16 values with
// a user MPI_Op that adds in fp32 and rounds to bf16 (Open MPI chooses the algorithm); the
// same bound and bit-identity. Everything here is non-blocking: ring_allreduce_test advances
// it (call it while waiting).
#pragma once
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

enum ring_payload { RING_FP32, RING_BF16 };
enum ring_method { RING_METHOD_RING, RING_METHOD_MPI_OP };

struct ring_allreduce {
    enum ring_payload payload;
    enum ring_method method;
    MPI_Comm comm;
    int rank, size, tag;
    float *data;  // (n) summed in place
    size_t n;
    uint16_t *wire;              // (n) bf16: the values sent and received; kept between uses
    void *inbox;                 // (largest chunk) the received partial sums, fp32 or bf16
    size_t wire_cap, inbox_cap;  // in values, in bytes
    int step;                    // ring: 0 .. 2(P-1); done at 2(P-1). MPI_Op: 0 running, 1 done
    // Reduce-scatter only (ring_reduce_scatter_start): rank r ends with the fp32 sum of
    // [bounds[r], bounds[r+1]) and the ring stops after its P-1 reduce-scatter steps.
    const size_t *bounds;  // (P+1) NULL: the allreduce's even chunks
    int gather_only;       // ring_allgather_start: the allgather's P-1 steps alone
    MPI_Request requests[2];
};

// The MPI_Op for RING_METHOD_MPI_OP on MPI_UINT16_T data; free it with MPI_Op_free.
MPI_Op ring_bf16_sum_op(void);
// Starts summing data[0..n) over `comm`; `tag` keeps concurrent rings on one communicator
// apart (the ring's messages use it; give each reduction in flight its own). `op` is
// ring_bf16_sum_op()'s (for RING_METHOD_MPI_OP, which needs RING_BF16). Reuses a's buffers
// from a previous use; a must be zeroed before its first use. Dies on an MPI error.
void ring_allreduce_start(struct ring_allreduce *a, enum ring_payload payload,
                          enum ring_method method, MPI_Comm comm, int tag, MPI_Op op, float *data,
                          size_t n);
// The ring's reduce-scatter half alone (the sharded optimizer's gradients): rank r ends with
// the sum of data[bounds[r] .. bounds[r+1]) (bounds: P+1 nondecreasing offsets from 0 to n,
// kept by the caller until the reduction is done), summed as the allreduce sums (bf16: with
// bf16 between hops, the owner's sum kept in fp32, nobody else needs its bits); the rest of
// data is left partly summed. Same error bound, same determinism.
void ring_reduce_scatter_start(struct ring_allreduce *a, enum ring_payload payload, MPI_Comm comm,
                               int tag, float *data, size_t n, const size_t *bounds);
// The ring's allgather half alone (the sharded optimizer's new weights): rank r holds
// data[bounds[r] .. bounds[r+1]) and every rank ends with all of data, copied as it is (fp32,
// exact: every rank the same bits). P-1 steps, each sending and receiving one slice, so every
// rank sends (P-1)/P of the buffer over the link to its successor. bounds as for the
// reduce-scatter. ring_allreduce_test advances it.
void ring_allgather_start(struct ring_allreduce *a, MPI_Comm comm, int tag, float *data, size_t n,
                          const size_t *bounds);
// Advances the reduction as far as messages allow; 1 when data holds the sum, else 0.
int ring_allreduce_test(struct ring_allreduce *a);
void ring_allreduce_free(struct ring_allreduce *a);
