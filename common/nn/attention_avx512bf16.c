// Fused bf16 attention of one head on AVX512-BF16 (see attention_bf16.h for the maths and the
// rounding points).
//
// The per-product GEMM packed every operand again for each of the head's five products and
// rounded P and dS in passes of their own. Here each operand is packed once per head, in the
// layout its product reads, and the (T, T) matrices are made a block of rows at a time:
//
//   forward   kᵀ → pairs along head_dim in NR-column slivers; v → pairs of rows in slivers.
//             Per block of <= MR query rows: S rows into an L1 buffer, softmax there, then P
//             stored into probs whole aligned lines at a time and bf16(P) rows into a second
//             L1 buffer (S written straight into probs' unaligned rows and the softmax run
//             there: 59 µs a vit_tiny head, now 55); y rows = bf16(P)·v (the tile reads the P
//             rows directly, no packing), stored as bf16 (and fp32 if asked).
//   backward  bf16(dy) rows; vᵀ as kᵀ above; k, q, bf16(dy) as pairs of rows. Per block of
//             query rows: dP rows = bf16(dy)·vᵀ, softmax backward in place, then in one pass
//             bf16(dS) rows (for dq = bf16(dS)·k, computed right away) and bf16(dS)ᵀ, bf16(P)ᵀ
//             in the transposed pair layout dk and dv read. After the last block: dv =
//             bf16(P)ᵀ·bf16(dy), dk = bf16(dS)ᵀ·q over all T pairs in one pass per tile.
//
// The tile is gemm_avx512bf16.c's microkernel (MR x NR, VDPBF16PS, pairs of k per dword, each
// output one fp32 chain over the pairs in order) with A read in place: a dword of pair p of row
// i is a[i * a_row + p * a_pair], so rows of bf16 (a_pair = 1) and transposed pairs (a_row = 1)
// need no packing. Each output sums the same pairs in the same order as gemm_bf16_avx512()
// (K <= 512: one block), so the products give its bits; the softmax kernels are the same.
#include <immintrin.h>
#include <stdint.h>

#include "core/check.h"
#include "nn/attention_bf16.h"
#include "nn/attention_bf16_layout.h"
#include "nn/transpose_avx512.h"

#define MR ATTENTION_BLOCK_ROWS
#define NR ATTENTION_NR
_Static_assert(MR % 2 == 0, "row blocks hold whole pairs of rows");

static inline __mmask16 mask_first16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

// ---------------------------------------------------------------------------------------------
// Tile: C[mr x n] = alpha * sum over kp pairs p of a(i, p) · b(p), n <= 16 * nv <= NR; b holds
// NR dwords per pair. Written as fp32 to C (row stride ldc) and/or as bf16 to Cb (row stride
// ldcb); either may be NULL.

static inline __attribute__((always_inline)) void tile(int mr, int nv, int kp, const uint32_t *a,
                                                       long a_row, long a_pair, const uint32_t *b,
                                                       float *C, long ldc, uint16_t *Cb, long ldcb,
                                                       int n, float alpha) {
    __m512 c[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) c[i][j] = _mm512_setzero_ps();
    if (C) {
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + i * ldc + 16 * nv - 1), _MM_HINT_T0);
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < kp; p++) {
        __m512bh bv[2];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) bv[j] = (__m512bh)_mm512_load_si512(b + p * NR + 16 * j);
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * a_row + p * a_pair]);
#pragma GCC unroll 2
            for (int j = 0; j < nv; j++) c[i][j] = _mm512_dpbf16_ps(c[i][j], av, bv[j]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) {
            __mmask16 m = mask_first16(n - 16 * j);
            __m512 r = _mm512_mul_ps(va, c[i][j]);
            if (C) _mm512_mask_storeu_ps(C + i * ldc + 16 * j, m, r);
            if (Cb)
                _mm256_mask_storeu_epi16(Cb + i * ldcb + 16 * j, m, (__m256i)_mm512_cvtneps_pbh(r));
        }
    }
}

typedef void (*tile_fn)(int kp, const uint32_t *a, long lda, const uint32_t *b, float *C, long ldc,
                        uint16_t *Cb, long ldcb, int n, float alpha);

// rows_*: A as rows of bf16 pairs (row stride lda dwords); pairs_*: A as pairs of rows, each pair
// lda dwords apart (a transposed operand).
#define TILES(mr, nv)                                                                              \
    static void rows_##mr##x##nv(int kp, const uint32_t *a, long lda, const uint32_t *b, float *C, \
                                 long ldc, uint16_t *Cb, long ldcb, int n, float alpha) {          \
        tile(mr, nv, kp, a, lda, 1, b, C, ldc, Cb, ldcb, n, alpha);                                \
    }                                                                                              \
    static void pairs_##mr##x##nv(int kp, const uint32_t *a, long lda, const uint32_t *b,          \
                                  float *C, long ldc, uint16_t *Cb, long ldcb, int n,              \
                                  float alpha) {                                                   \
        tile(mr, nv, kp, a, 1, lda, b, C, ldc, Cb, ldcb, n, alpha);                                \
    }
#define TILE_ROW(mr) TILES(mr, 1) TILES(mr, 2)
TILE_ROW(1)
TILE_ROW(2)
TILE_ROW(3)
TILE_ROW(4)
TILE_ROW(5)
TILE_ROW(6)
TILE_ROW(7)
TILE_ROW(8)
TILE_ROW(9)
TILE_ROW(10)
TILE_ROW(11)
TILE_ROW(12)
TILE_ROW(13)
TILE_ROW(14)
_Static_assert(MR == 14 && NR == 32, "the tile tables below list 1..MR rows x 1..2 vectors");

#define ROWS(mr) \
    { rows_##mr##x1, rows_##mr##x2 }
#define PAIRS(mr) \
    { pairs_##mr##x1, pairs_##mr##x2 }
static const tile_fn rows_tiles[MR + 1][2] = {
    {NULL, NULL}, ROWS(1), ROWS(2),  ROWS(3),  ROWS(4),  ROWS(5),  ROWS(6),  ROWS(7),
    ROWS(8),      ROWS(9), ROWS(10), ROWS(11), ROWS(12), ROWS(13), ROWS(14),
};
static const tile_fn pairs_tiles[MR + 1][2] = {
    {NULL, NULL}, PAIRS(1), PAIRS(2),  PAIRS(3),  PAIRS(4),  PAIRS(5),  PAIRS(6),  PAIRS(7),
    PAIRS(8),     PAIRS(9), PAIRS(10), PAIRS(11), PAIRS(12), PAIRS(13), PAIRS(14),
};

// C[rows x n] for n <= NR columns.
static inline tile_fn pick(const tile_fn table[MR + 1][2], int rows, int n) {
    return table[rows][(n + 15) / 16 - 1];
}

// ---------------------------------------------------------------------------------------------
// Packing, once per head.

// q, k, v and dy come from memory a row of head_dim at a time, rows 576 or 192 elements apart,
// which the hardware prefetcher follows too late: the packing loops ask for rows this far ahead
// (a vit_tiny head: forward 52.4 -> 49.8 us, backward 79.0 -> 75.2, bench/attention_bench.c).
#define PREFETCH_ROWS 8

static inline void prefetch_row(const void *row, int bytes) {
    const char *p = row;
    for (int b = 0; b < bytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
    _mm_prefetch(p + bytes - 1, _MM_HINT_T0);  // the last line, when the row is not aligned
}

// x (T, hd) bf16, row stride ld (even) → xᵀ as B of a product over head_dim: NR-column slivers
// of the T rows, sliver s holding dst[s * hp * NR + p * NR + jj] = the dword of pair p of row
// 32 s + jj (zeros past T). 16 rows x 16 pairs per in-register transpose.
static void pack_rows_as_columns(uint32_t *dst, const uint16_t *x, long ld, int T, int hd) {
    const int hp = hd / 2;
    for (int j0 = 0; j0 < T; j0 += 16) {
        uint32_t *d = dst + (long)(j0 / NR) * hp * NR + j0 % NR;
        for (int p0 = 0; p0 < hp; p0 += 16) {
            __m512 v[16];
            __mmask16 m = mask_first16(hp - p0);
            if (p0 == 0)  // the next 16 rows
                for (int i = 16; i < 32 && j0 + i < T; i++) prefetch_row(x + (j0 + i) * ld, hd * 2);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = j0 + i < T ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(
                                        m, x + (long)(j0 + i) * ld + 2 * p0))
                                  : _mm512_setzero_ps();
            transpose16(v);
            int pt = hp - p0 < 16 ? hp - p0 : 16;
            for (int t = 0; t < pt; t++) _mm512_store_ps((float *)(d + (long)(p0 + t) * NR), v[t]);
        }
    }
}

// Dwords (x[r0][c] low, x[r1][c] high) for the n <= 16 columns from c (zeros past n; r1 NULL:
// high halves zero).
static inline __m512i pair_halves(const uint16_t *r0, const uint16_t *r1, int n) {
    __mmask16 m = mask_first16(n);
    __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0));
    if (r1 == NULL) return lo;
    __m512i hi = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r1));
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

// x (T, hd) bf16, row stride ld → x as B of a product over T: NR-column slivers of hd, sliver s
// holding dst[s * tp * NR + p * NR + c] = (x[2p][32 s + c], x[2p + 1][32 s + c]) (zeros past T
// and past hd).
static void pack_pairs_of_rows(uint32_t *dst, const uint16_t *x, long ld, int T, int hd) {
    const int tp = (T + 1) / 2;
    for (int c0 = 0; c0 < hd; c0 += NR) {
        uint32_t *d = dst + (long)(c0 / NR) * tp * NR;
        for (int p = 0; p < tp; p++) {
            const uint16_t *r0 = x + 2L * p * ld + c0, *r1 = 2 * p + 1 < T ? r0 + ld : NULL;
            if (c0 == 0 && 2 * p + 1 + PREFETCH_ROWS < T) {
                prefetch_row(r0 + PREFETCH_ROWS * ld, hd * 2);
                prefetch_row(r0 + (PREFETCH_ROWS + 1) * ld, hd * 2);
            }
            _mm512_store_si512(d + (long)p * NR, pair_halves(r0, r1, hd - c0));
            _mm512_store_si512(d + (long)p * NR + 16,
                               pair_halves(r0 + 16, r1 ? r1 + 16 : NULL, hd - c0 - 16));
        }
    }
}

// 16 fp32 (zeros past n) as bf16.
static inline __m256i bf16_of16(const float *x, int n) {
    return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask_first16(n), x));
}

// The blocks of query rows: ceil(T / MR) blocks of whole pairs of rows, near-equal (a block of
// few rows has too few accumulator chains to hide the VDPBF16PS latency).
static inline void row_block(int T, int blocks, int s, int *i0, int *rows) {
    int tp = (T + 1) / 2, base = tp / blocks, extra = tp % blocks;
    int start = s * base + (s < extra ? s : extra), pairs = base + (s < extra);
    *i0 = 2 * start;
    *rows = 2 * pairs < T - *i0 ? 2 * pairs : T - *i0;
}

static void check_head(const struct attention_bf16_head *a, const void *scratch) {
    CATLIP_ASSERT(a->head_dim % 2 == 0 && a->ld_qkv % 2 == 0);
    CATLIP_ASSERT(((uintptr_t)a->q | (uintptr_t)a->key | (uintptr_t)a->v) % 4 == 0);
    CATLIP_ASSERT((uintptr_t)scratch % 64 == 0);
}

// ---------------------------------------------------------------------------------------------

void attention_bf16_forward_fused(float *probs, float *y, uint16_t *y_bf16, long ld_y,
                                  const struct attention_bf16_head *a, void *scratch) {
    const int T = a->tokens, hd = a->head_dim;
    check_head(a, scratch);
    const struct attention_layout l = attention_layout_of(T, hd);
    const int hp = l.head_pairs, tp = l.token_pairs;
    const long ldr = l.ld_rows, ldq = a->ld_qkv / 2;  // ldq in dwords
    char *s = scratch;
    uint32_t *keys_t = (uint32_t *)(s + l.keys_t), *values = (uint32_t *)(s + l.across[0]);
    uint16_t *pb = (uint16_t *)(s + l.rows_bf16);  // (MR, ldr) bf16(P) of the block
    float *block = (float *)(s + l.block_f32);      // (MR, ldr) S, then P, of the block
    const long ld_probs = attention_bf16_probs_ld(T);
    CATLIP_ASSERT((uintptr_t)probs % 64 == 0 && ld_probs <= ldr);
    pack_rows_as_columns(keys_t, a->key, a->ld_qkv, T, hd);
    pack_pairs_of_rows(values, a->v, a->ld_qkv, T, hd);
    const uint32_t *q = (const uint32_t *)a->q;
    const int blocks = (T + MR - 1) / MR;
    for (int bk = 0; bk < blocks; bk++) {
        int i0, mr;
        row_block(T, blocks, bk, &i0, &mr);
        // S = scale·q·kᵀ for these rows
        for (int j0 = 0; j0 < T; j0 += NR) {
            int n = T - j0 < NR ? T - j0 : NR;
            pick(rows_tiles, mr, n)(hp, q + i0 * ldq, ldq, keys_t + (long)(j0 / NR) * hp * NR,
                                    block + j0, ldr, NULL, 0, n, a->scale);
        }
        // softmax in fp32 (as autocast keeps it; the rows are aligned as probs' are, so the sums
        // run in the same lanes), then P and bf16(P) with zeros past T (the partner of an odd
        // T's last key)
        for (int i = 0; i < mr; i++) {
            float *p = block + i * ldr, *dst = probs + (i0 + i) * ld_probs;
            attention_softmax_row(a->k, p, i0 + i, T, a->causal);
            for (int j0 = 0; j0 < ld_probs; j0 += 16) {
                __m512 v = _mm512_maskz_load_ps(mask_first16(T - j0), p + j0);
                _mm512_store_ps(dst + j0, v);
                _mm256_store_si256((__m256i *)(pb + i * ldr + j0), (__m256i)_mm512_cvtneps_pbh(v));
            }
        }
        // y = bf16(P)·v
        for (int c0 = 0; c0 < hd; c0 += NR) {
            int n = hd - c0 < NR ? hd - c0 : NR;
            pick(rows_tiles, mr, n)(
                tp, (const uint32_t *)pb, ldr / 2, values + (long)(c0 / NR) * tp * NR,
                y ? y + i0 * ld_y + c0 : NULL, ld_y, y_bf16 + i0 * ld_y + c0, ld_y, n, 1.0f);
        }
    }
}

void attention_bf16_backward_fused(float *dq, float *dk, float *dv, long ld_d, const float *dy,
                                   long ld_dy, const float *probs,
                                   const struct attention_bf16_head *a, void *scratch) {
    const int T = a->tokens, hd = a->head_dim;
    check_head(a, scratch);
    const struct attention_layout l = attention_layout_of(T, hd);
    const int hp = l.head_pairs, tp = l.token_pairs;
    const long ldr = l.ld_rows;
    char *s = scratch;
    uint32_t *values_t = (uint32_t *)(s + l.keys_t);
    uint32_t *keys = (uint32_t *)(s + l.across[0]), *queries = (uint32_t *)(s + l.across[1]);
    uint32_t *dys = (uint32_t *)(s + l.across[2]);
    uint16_t *dy_rows = (uint16_t *)(s + l.dy_rows);  // (T, hd) bf16(dy)
    uint16_t *dsb = (uint16_t *)(s + l.rows_bf16);    // (MR, ldr) bf16(dS) of the block
    float *block = (float *)(s + l.block_f32);        // (MR, ldr) dP, then dS, of the block
    uint32_t *p_t = (uint32_t *)(s + l.p_t);          // (tp, ldr) bf16(P)ᵀ in pairs of rows
    uint32_t *ds_t = (uint32_t *)(s + l.ds_t);        // (tp, ldr) bf16(dS)ᵀ in pairs of rows
    const long ld_probs = attention_bf16_probs_ld(T);
    for (int r = 0; r < T; r++) {
        if (r + PREFETCH_ROWS < T) prefetch_row(dy + (r + PREFETCH_ROWS) * ld_dy, hd * 4);
        bf16_from_floats_avx512(dy_rows + (long)r * hd, dy + r * ld_dy, (size_t)hd);
    }
    pack_rows_as_columns(values_t, a->v, a->ld_qkv, T, hd);
    pack_pairs_of_rows(keys, a->key, a->ld_qkv, T, hd);
    pack_pairs_of_rows(queries, a->q, a->ld_qkv, T, hd);
    pack_pairs_of_rows(dys, dy_rows, hd, T, hd);
    const int blocks = (T + MR - 1) / MR;
    for (int bk = 0; bk < blocks; bk++) {
        int i0, mr;
        row_block(T, blocks, bk, &i0, &mr);
        // y = P·v  →  dP = dy·vᵀ
        for (int j0 = 0; j0 < T; j0 += NR) {
            int n = T - j0 < NR ? T - j0 : NR;
            pick(rows_tiles, mr, n)(hp, (const uint32_t *)(dy_rows + (long)i0 * hd), hp,
                                    values_t + (long)(j0 / NR) * hp * NR, block + j0, ldr, NULL, 0,
                                    n, 1.0f);
        }
        // P = softmax(S), S = scale·q·kᵀ  →  dS·scale
        for (int i = 0; i < mr; i++)
            a->k->softmax_backward(block + i * ldr, probs + (i0 + i) * ld_probs, block + i * ldr,
                                   1, T, a->scale);
        // bf16(dS) rows, and bf16(dS)ᵀ, bf16(P)ᵀ as (row i, row i + 1) dwords (zeros past T)
        for (int i = 0; i < mr; i += 2) {
            const int second = i + 1 < mr;
            const float *d0 = block + i * ldr, *d1 = d0 + ldr;
            const float *p0 = probs + (i0 + i) * ld_probs, *p1 = p0 + ld_probs;
            uint32_t *dst_ds = ds_t + (long)(i0 + i) / 2 * ldr,
                     *dst_p = p_t + (long)(i0 + i) / 2 * ldr;
            for (int j0 = 0; j0 < T; j0 += 16) {
                __m256i ds0 = bf16_of16(d0 + j0, T - j0);
                __m256i ds1 = second ? bf16_of16(d1 + j0, T - j0) : _mm256_setzero_si256();
                __m256i pr0 = bf16_of16(p0 + j0, T - j0);
                __m256i pr1 = second ? bf16_of16(p1 + j0, T - j0) : _mm256_setzero_si256();
                _mm256_store_si256((__m256i *)(dsb + i * ldr + j0), ds0);
                if (second) _mm256_store_si256((__m256i *)(dsb + (i + 1) * ldr + j0), ds1);
                _mm512_store_si512(
                    dst_ds + j0,
                    _mm512_or_si512(_mm512_cvtepu16_epi32(ds0),
                                    _mm512_slli_epi32(_mm512_cvtepu16_epi32(ds1), 16)));
                _mm512_store_si512(
                    dst_p + j0, _mm512_or_si512(_mm512_cvtepu16_epi32(pr0),
                                                _mm512_slli_epi32(_mm512_cvtepu16_epi32(pr1), 16)));
            }
        }
        // dq = dS·k for these rows
        for (int c0 = 0; c0 < hd; c0 += NR) {
            int n = hd - c0 < NR ? hd - c0 : NR;
            pick(rows_tiles, mr, n)(tp, (const uint32_t *)dsb, ldr / 2,
                                    keys + (long)(c0 / NR) * tp * NR, dq + i0 * ld_d + c0, ld_d,
                                    NULL, 0, n, 1.0f);
        }
    }
    // dv = Pᵀ·dy, dk = dSᵀ·q: rows are keys, k runs over the query pairs
    const int tiles = (T + MR - 1) / MR;
    for (int t = 0; t < tiles; t++) {
        int base = T / tiles, extra = T % tiles;
        int j0 = t * base + (t < extra ? t : extra), rows = base + (t < extra);
        for (int c0 = 0; c0 < hd; c0 += NR) {
            int n = hd - c0 < NR ? hd - c0 : NR;
            tile_fn f = pick(pairs_tiles, rows, n);
            f(tp, p_t + j0, ldr, dys + (long)(c0 / NR) * tp * NR, dv + j0 * ld_d + c0, ld_d, NULL,
              0, n, 1.0f);
            f(tp, ds_t + j0, ldr, queries + (long)(c0 / NR) * tp * NR, dk + j0 * ld_d + c0, ld_d,
              NULL, 0, n, 1.0f);
        }
    }
}
