// The fused bf16 attention's per-thread scratch (attention_avx512bf16.c), laid out here so that
// attention_bf16.c can size it without code built for AVX-512. Byte offsets, each piece 64-byte
// aligned. NR: the microkernel's 32 columns; a "sliver" holds NR dwords per pair of k.
#pragma once
#include <stddef.h>

#define ATTENTION_NR 32          // columns of a microkernel tile (two zmm)
#define ATTENTION_BLOCK_ROWS 14  // rows of a block of S / dP (the microkernel's MR)

struct attention_layout {
    int head_pairs;   // head_dim / 2
    int token_pairs;  // ceil(T / 2)
    long ld_rows;     // T rounded up to 32: row stride of the bf16/fp32 row blocks, and dwords
                      // per pair of the transposed P and dS
    size_t keys_t;  // (ceil(T/NR) slivers, head_pairs, NR) dwords: kᵀ (forward), vᵀ (backward)
    size_t across[3];  // (ceil(head_dim/NR) slivers, token_pairs, NR) dwords: v (forward);
                       // k, q, bf16(dy) (backward)
    size_t dy_rows;    // (T, head_dim) bf16: bf16(dy)
    size_t rows_bf16;  // (BLOCK_ROWS, ld_rows) bf16: bf16(P) (forward), bf16(dS) (backward)
    size_t block_f32;  // (BLOCK_ROWS, ld_rows) fp32: dP, then dS (backward)
    size_t p_t, ds_t;  // (token_pairs, ld_rows) dwords: bf16(P)ᵀ, bf16(dS)ᵀ in pairs of rows
    size_t bytes;
};

static inline size_t attention_round64(size_t bytes) {
    return (bytes + 63) & ~(size_t)63;
}

static inline struct attention_layout attention_layout_of(int T, int head_dim) {
    struct attention_layout l;
    l.head_pairs = head_dim / 2;
    l.token_pairs = (T + 1) / 2;
    l.ld_rows = ((long)T + 31) & ~31L;
    size_t nr = ATTENTION_NR, at = 0;
    size_t slivers_t = ((size_t)T + nr - 1) / nr, slivers_h = ((size_t)head_dim + nr - 1) / nr;
    l.keys_t = at, at += attention_round64(slivers_t * (size_t)l.head_pairs * nr * 4);
    for (int i = 0; i < 3; i++)
        l.across[i] = at, at += attention_round64(slivers_h * (size_t)l.token_pairs * nr * 4);
    l.dy_rows = at, at += attention_round64((size_t)T * (size_t)head_dim * 2);
    l.rows_bf16 = at, at += attention_round64(ATTENTION_BLOCK_ROWS * (size_t)l.ld_rows * 2);
    l.block_f32 = at, at += attention_round64(ATTENTION_BLOCK_ROWS * (size_t)l.ld_rows * 4);
    l.p_t = at, at += attention_round64((size_t)l.token_pairs * (size_t)l.ld_rows * 4);
    l.ds_t = at, at += attention_round64((size_t)l.token_pairs * (size_t)l.ld_rows * 4);
    l.bytes = at;
    return l;
}
