// Summing fp32 buffers across ranks with bf16 on the wire (train.grad_comm: bf16): half the
// bytes of an fp32 allreduce. Every hop adds in fp32 what it received to its own values and
// rounds the sum to bf16 (nearest, ties to even: nn/bf16.h) to send it on; the final sum is
// rounded to bf16 once more and every rank, the one that computed it included, ends with that
// value widened to fp32, so every rank holds the same bits. The order of the sums depends only
// on the buffer's length and the ranks' count, so a rerun gives the same bits too.
//
// Error: every term passes through at most P roundings of relative size u = 2^-8 (bf16 keeps
// 8 significant bits) each after an fp32 add (2^-24), so for P ranks
//     |result - exact sum| <= gamma_P * sum |x_i| + P * 2^-126,  gamma_P = P d / (1 - P d),
//     d = (1 + 2^-8)(1 + 2^-24) - 1
// (Higham's bound for recursive summation, one rounding more for the first packing; the last
// term covers denormals, which bf16 conversion flushes to zero). tests/comm holds it.
//
// Two ways, one contract (the bounds and bit-identity hold for both):
// - BF16_ALLREDUCE_RING: our own ring, a reduce-scatter then an allgather of P chunks with
//   non-blocking point-to-point messages, 2(P-1) steps each sending n/P values;
// - BF16_ALLREDUCE_MPI_OP: MPI_Iallreduce of the packed bf16 values with a user MPI_Op that
//   adds in fp32 and rounds to bf16 (Open MPI chooses the algorithm).
// Both are non-blocking: bf16_allreduce_test advances them (call it while waiting).
#pragma once
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

enum bf16_allreduce_method { BF16_ALLREDUCE_RING, BF16_ALLREDUCE_MPI_OP };

struct bf16_allreduce {
    enum bf16_allreduce_method method;
    MPI_Comm comm;
    int rank, size, tag;
    float *data;  // (n) summed in place
    size_t n;
    uint16_t *wire;   // (n) bf16 values sent and received; kept between uses
    uint16_t *inbox;  // (ceil(n/P)) the ring's received chunk
    size_t wire_cap, inbox_cap;
    int step;  // ring: 0 .. 2(P-1); done at 2(P-1). MPI_Op: 0 running, 1 done
    // Reduce-scatter only (bf16_reduce_scatter_start): rank r ends with the fp32 sum of
    // [bounds[r], bounds[r+1]) and the ring stops after its P-1 reduce-scatter steps.
    const size_t *bounds;  // (P+1) NULL: the allreduce's even chunks
    MPI_Request requests[2];
};

// The MPI_Op for BF16_ALLREDUCE_MPI_OP on MPI_UINT16_T data; free it with MPI_Op_free.
MPI_Op bf16_allreduce_sum_op(void);
// Starts summing data[0..n) over `comm`; `tag` keeps concurrent rings on one communicator
// apart (the ring's messages use it; give each reduction in flight its own). `op` is
// bf16_allreduce_sum_op()'s (for BF16_ALLREDUCE_MPI_OP). Reuses a's buffers from a previous
// use; a must be zeroed before its first use. Dies on an MPI error.
void bf16_allreduce_start(struct bf16_allreduce *a, enum bf16_allreduce_method method,
                          MPI_Comm comm, int tag, MPI_Op op, float *data, size_t n);
// The ring's reduce-scatter half alone (the sharded optimizer's gradients): rank r ends with
// the sum of data[bounds[r] .. bounds[r+1]) (bounds: P+1 nondecreasing offsets from 0 to n,
// kept by the caller until the reduction is done), summed in fp32 at every hop with bf16
// between hops as above, and kept in fp32 (nobody else needs its bits); the rest of data is
// left partly summed. Same error bound, same determinism.
void bf16_reduce_scatter_start(struct bf16_allreduce *a, MPI_Comm comm, int tag, float *data,
                               size_t n, const size_t *bounds);
// Advances the reduction as far as messages allow; 1 when data holds the sum, else 0.
int bf16_allreduce_test(struct bf16_allreduce *a);
void bf16_allreduce_free(struct bf16_allreduce *a);
