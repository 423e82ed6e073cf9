// AVX512-BF16 matrix multiply (see gemm.h for the interface): the fp32 kernel's blocking
// (gemm_avx512.c) with operands packed as bf16 pairs.
//
// VDPBF16PS multiplies pairs: for each of 16 fp32 lanes, c += a[2l]·b[2l] + a[2l+1]·b[2l+1]. So
// k runs in pairs: a packed A sliver holds, per pair p, MR dwords (row i: op(A)[i][2p] in the
// low half, op(A)[i][2p+1] in the high half), and a packed B sliver holds per pair NR such
// dwords (column j: op(B)[2p][j], op(B)[2p+1][j]). A K that is odd gets a zero partner. The
// conversion from fp32 (VCVTNE(2)PS2BF16: nearest-even, as nn/bf16.h) happens while packing,
// once per panel; bf16 operands are only interleaved.
//
//   for jc in N by NC:               B panel (KP pairs x NC) packed into NR-column slivers
//     for pc in K by 2*KP:
//       for ic in M by MC:           A block (MC x KP pairs) packed into MR-row slivers
//         for jr in NC by NR:
//           for ir in MC by MR:      microkernel: C[MR x NR] += A sliver · B sliver
//
// Microkernel: 14 x 32, 28 zmm accumulators, two loads of B and 14 dword broadcasts of A per
// pair of k (28 VDPBF16PS = 56 k-steps of 16 lanes), the same register budget as the fp32
// kernel with twice its multiply-adds per instruction.
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/check.h"
#include "nn/gemm.h"
#include "nn/transpose_avx512.h"

#define MR 14
#define NR 32
#define NV (NR / 16)
#ifndef GEMM_BF16_KP
#define GEMM_BF16_KP 256  // pairs of k per block (512 k)
#endif
#define KP GEMM_BF16_KP
#define MC (MR * 24)
#define NC 3072
_Static_assert(KP % 8 == 0, "blocking must tile");
// How many rows ahead the across-k packers (two rows per pair, little work per line) fetch:
// their rows are one line of bf16 each, read once, usually from L3 or memory, so the fetch must
// run a memory latency ahead.
#ifndef ALONG_K_PREFETCH
#define ALONG_K_PREFETCH 4  // chunks of 32 k of one tile's rows
#endif
#ifndef ACROSS_K_PREFETCH
#define ACROSS_K_PREFETCH 64
#endif

// ---------------------------------------------------------------------------------------------
// Per-thread packing buffers (as in gemm_avx512.c), in dwords of two bf16.

struct bf16_buffers {
    uint32_t *a;  // MC x KP, MR-row slivers, each kp * MR dwords (+ 16 dwords of slack)
    uint32_t *b;  // KP x NC, NR-column slivers, each kp * NR dwords
};

static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;

static void buffers_free(void *p) {
    struct bf16_buffers *buffers = p;
    free(buffers->a);
    free(buffers->b);
    free(buffers);
}

static void buffers_key_create(void) {
    CATLIP_ASSERT(pthread_key_create(&buffers_key, buffers_free) == 0);
}

static struct bf16_buffers *thread_buffers(void) {
    pthread_once(&buffers_once, buffers_key_create);
    struct bf16_buffers *buffers = pthread_getspecific(buffers_key);
    if (buffers == NULL) {
        buffers = xmalloc(sizeof *buffers);
        buffers->a = xaligned_alloc(((size_t)MC * KP + 16) * sizeof(uint32_t));
        buffers->b = xaligned_alloc((size_t)KP * NC * sizeof(uint32_t));
        CATLIP_ASSERT(pthread_setspecific(buffers_key, buffers) == 0);
    }
    return buffers;
}

// ---------------------------------------------------------------------------------------------
// Reading operands. An operand is fp32 or bf16 with a leading dimension in its own elements.

struct operand {
    const float *f;     // fp32 elements, or NULL
    const uint16_t *h;  // bf16 elements, or NULL
    long ld;
};

static inline __mmask16 mask_first16(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

static inline __mmask32 mask_first32(int n) {
    return n >= 32 ? (__mmask32)0xFFFFFFFFu : n <= 0 ? 0 : (__mmask32)((1u << n) - 1);
}

// Along k: the 16 dwords of pairs (k0 + 2t, k0 + 2t + 1) of row r, t < 16, zero for k >= k0 + kt.
static inline __m512i load_pairs(const struct operand *x, long r, long k0, int kt) {
    if (x->h) return _mm512_maskz_loadu_epi16(mask_first32(kt), x->h + r * x->ld + k0);
    const float *row = x->f + r * x->ld + k0;
    __m512 lo = _mm512_maskz_loadu_ps(mask_first16(kt), row);
    __m512 hi = _mm512_maskz_loadu_ps(mask_first16(kt - 16), row + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// Across k: elements c0 .. c0 + 15 of row r as bf16 in the low half of each dword (zero past n).
static inline __m512i load_halves(const struct operand *x, long r, long c0, int n) {
    if (x->h)
        return _mm512_cvtepu16_epi32(
            _mm256_maskz_loadu_epi16(mask_first16(n), x->h + r * x->ld + c0));
    __m512 v = _mm512_maskz_loadu_ps(mask_first16(n), x->f + r * x->ld + c0);
    return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v));
}

// Dwords (row k, row k + 1) of elements c0 .. c0 + 15 (row k + 1 past the end: zeros).
static inline __m512i pair_rows(const struct operand *x, long k, long K, long c0, int n) {
    __m512i lo = load_halves(x, k, c0, n);
    if (k + 1 >= K) return lo;
    return _mm512_or_si512(lo, _mm512_slli_epi32(load_halves(x, k + 1, c0, n), 16));
}

// Where element (r, c) of an operand is (for prefetches).
static inline const char *element_at(const struct operand *x, long r, long c) {
    return x->h ? (const char *)(x->h + r * x->ld + c) : (const char *)(x->f + r * x->ld + c);
}

static inline void prefetch_row(const struct operand *x, long r, long c) {
    _mm_prefetch(element_at(x, r, c), _MM_HINT_T0);
}

// Up to 16 rows (r0 .. r0 + n - 1, zeros past n) of an operand stored along k, pairs
// p0 .. p0 + 15 transposed: dst[(t) * stride + i] = pair t of row i, for t < pt (pairs left).
// Stores are 16 dwords wide; with stride < 16 each spills into the next pair's slots (written
// next) and the last one into the slack after the sliver.
// The rows pf_r0 .. pf_r0 + 15 at k pf_k0 (a chunk the caller packs a few calls later) are
// prefetched: 32 fp32 are two lines, 32 bf16 one.
static inline void pack_rows_along_k(uint32_t *dst, long stride, const struct operand *x, long r0,
                                     int n, long k0, long K, long pf_r0, long pf_k0) {
    __m512 v[16];
    int kt = K - k0 < 32 ? (int)(K - k0) : 32, pt = (kt + 1) / 2;
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        v[i] = i < n ? _mm512_castsi512_ps(load_pairs(x, r0 + i, k0, kt)) : _mm512_setzero_ps();
        prefetch_row(x, pf_r0 + i, pf_k0);
        if (!x->h) prefetch_row(x, pf_r0 + i, pf_k0 + 16);
    }
    transpose16(v);
    for (int t = 0; t < pt; t++) _mm512_storeu_ps((float *)(dst + t * stride), v[t]);
}

// The rows of an A block of mc rows go to ceil(mc / MR) tiles of near-equal height (see
// gemm_avx512.c: a tile of under 4 rows has too few chains to cover the latency).
static inline void tile_rows(int mc, int tiles, int s, int *start, int *rows) {
    int base = mc / tiles, extra = mc % tiles;
    *start = s * base + (s < extra ? s : extra);
    *rows = base + (s < extra);
}

// A block: op(A) rows ic .. ic + mc - 1, k pc .. pc + kc - 1 (kp = ceil(kc / 2) pairs), into
// slivers of kp * MR dwords.
static void pack_a(int trans_a, uint32_t *dst, const struct operand *A, long ic, long pc, int mc,
                   int kc) {
    int tiles = (mc + MR - 1) / MR, kp = (kc + 1) / 2, chunks = (kc + 31) / 32;
    long kend = pc + kc;
    if (!trans_a) {
        // Rows of A run along k: convert 32 k of 16 rows at a time and transpose, tile by tile
        // along k; each call prefetches the chunk packed ALONG_K_PREFETCH calls later (the same
        // rows further along k, or the next tile's first chunks), so that its loads do not wait
        // on L3 or memory.
        for (int s = 0; s < tiles; s++) {
            int start, rows;
            tile_rows(mc, tiles, s, &start, &rows);
            uint32_t *d = dst + (long)s * MR * kp;
            for (long k0 = pc; k0 < kend; k0 += 32) {
                long c = (k0 - pc) / 32 + ALONG_K_PREFETCH;
                int s2 = s + (int)(c / chunks), start2, rows2;
                tile_rows(mc, tiles, s2 < tiles ? s2 : tiles - 1, &start2, &rows2);
                if (s2 >= tiles) start2 = mc;
                pack_rows_along_k(d + (k0 - pc) / 2 * MR, MR, A, ic + start, rows, k0, kend,
                                  ic + start2, pc + c % chunks * 32);
            }
        }
        return;
    }
    // Aᵀ: row k of A holds op(A)[.][k] across; two rows make one pair per element. A 16-dword
    // store spills into pair p + 1 of the same sliver (written next); the last pair's is masked.
    // Sliver by sliver, so the stores stream through one sliver at a time (pair by pair over all
    // slivers, each pair's stores went to `tiles` lines kp * MR dwords apart and stalled).
    for (int s = 0; s < tiles; s++) {
        int start, rows;
        tile_rows(mc, tiles, s, &start, &rows);
        uint32_t *d = dst + (long)s * MR * kp;
        for (int p = 0; p < kp; p++) {
            long k = pc + 2L * p;
            prefetch_row(A, k + ACROSS_K_PREFETCH, ic + start);
            prefetch_row(A, k + ACROSS_K_PREFETCH + 1, ic + start);
            __m512i v = pair_rows(A, k, kend, ic + start, rows);
            if (p < kp - 1)
                _mm512_storeu_si512(d + (long)p * MR, v);
            else
                _mm512_mask_storeu_epi32(d + (long)p * MR, mask_first16(rows), v);
        }
    }
}

// One NR-column sliver of op(B): columns jc .. jc + nr - 1, k pc .. pc + kc - 1, as
// dst[p * NR + j] (zeros past nr).
static void pack_b_sliver(int trans_b, uint32_t *dst, const struct operand *B, long jc, int nr,
                          long pc, int kc, long next_jc, long next_pc) {
    long kend = pc + kc;
    int kp = (kc + 1) / 2;
    if (trans_b) {
        // Bᵀ: row j of B runs along k.
        for (int h = 0; h < NV; h++)
            for (long k0 = pc; k0 < kend; k0 += 32)
                pack_rows_along_k(dst + (k0 - pc) / 2 * NR + 16 * h, NR, B, jc + 16 * h,
                                  nr - 16 * h, k0, kend, jc + 16 * h + NR, k0);
        return;
    }
    for (int p = 0; p < kp; p++) {
        long k = pc + 2L * p;
        // Rows ACROSS_K_PREFETCH on, both lines of fp32 (the hardware prefetcher does not follow
        // these strided rows).
        for (int r = ACROSS_K_PREFETCH; r < ACROSS_K_PREFETCH + 2; r++) {
            prefetch_row(B, k + r, jc);
            if (!B->h) prefetch_row(B, k + r, jc + 16);
        }
        if (next_jc >= 0)
            for (int r = 0; r < 2; r++) {
                _mm_prefetch(element_at(B, next_pc + 2L * p + r, next_jc), _MM_HINT_T1);
                if (!B->h)
                    _mm_prefetch(element_at(B, next_pc + 2L * p + r, next_jc + 16), _MM_HINT_T1);
            }
        for (int h = 0; h < NV; h++)
            _mm512_store_si512(dst + (long)p * NR + 16 * h,
                               pair_rows(B, k, kend, jc + 16 * h, nr - 16 * h));
    }
}

// ---------------------------------------------------------------------------------------------
// Microkernel: C[mr x n] = alpha * a · b + beta * C over kp pairs, a an A sliver (MR dwords per
// pair, first mr used), b a B sliver (NR dwords per pair), n <= 16 * nv.

typedef void (*microkernel_fn)(int kp, const uint32_t *a, long lda, const uint32_t *b, float *C,
                               long ldc, int n, float alpha, float beta);

static inline __attribute__((always_inline)) void microkernel(int mr, int nv, int kp,
                                                              const uint32_t *a, long a_row,
                                                              long a_pair, const uint32_t *b,
                                                              float *C, long ldc, int n,
                                                              float alpha, float beta) {
    __m512 c[MR][NV];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) c[i][j] = _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + i * ldc + 16 * nv - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int p = 0; p < kp; p++) {
        __m512bh bv[NV];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) bv[j] = (__m512bh)_mm512_load_si512(b + p * NR + 16 * j);
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * a_row + p * a_pair]);
#pragma GCC unroll 2
            for (int j = 0; j < nv; j++) c[i][j] = _mm512_dpbf16_ps(c[i][j], av, bv[j]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    int full = n == 16 * nv;
    __mmask16 last = mask_first16(n - 16 * (nv - 1));
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) {
            float *p = C + i * ldc + 16 * j;
            __m512 r = _mm512_mul_ps(va, c[i][j]);
            if (full || j < nv - 1) {
                if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), r);
                _mm512_storeu_ps(p, r);
            } else {
                if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(last, p), r);
                _mm512_mask_storeu_ps(p, last, r);
            }
        }
    }
}

// microkernel_*: a packed A sliver; direct_*: A's own rows of bf16 pairs, lda dwords apart (a
// bf16 A along k needs no packing: its pairs are already the dwords the kernel broadcasts).
#define MICROKERNEL(mr, nv)                                                                     \
    static void microkernel_##mr##x##nv(int kp, const uint32_t *a, long lda, const uint32_t *b, \
                                        float *C, long ldc, int n, float alpha, float beta) {   \
        (void)lda;                                                                              \
        microkernel(mr, nv, kp, a, 1, MR, b, C, ldc, n, alpha, beta);                           \
    }                                                                                           \
    static void direct_##mr##x##nv(int kp, const uint32_t *a, long lda, const uint32_t *b,      \
                                   float *C, long ldc, int n, float alpha, float beta) {        \
        microkernel(mr, nv, kp, a, lda, 1, b, C, ldc, n, alpha, beta);                          \
    }
#define MICROKERNELS(mr) MICROKERNEL(mr, 1) MICROKERNEL(mr, 2)
MICROKERNELS(1)
MICROKERNELS(2)
MICROKERNELS(3)
MICROKERNELS(4)
MICROKERNELS(5)
MICROKERNELS(6)
MICROKERNELS(7)
MICROKERNELS(8)
MICROKERNELS(9)
MICROKERNELS(10)
MICROKERNELS(11)
MICROKERNELS(12)
MICROKERNELS(13)
MICROKERNELS(14)
_Static_assert(MR == 14 && NV == 2, "the microkernel table below lists 1..MR x 1..NV");

#define ROW(mr) \
    { microkernel_##mr##x1, microkernel_##mr##x2 }
static const microkernel_fn microkernels[MR + 1][NV] = {
    {NULL, NULL}, ROW(1), ROW(2),  ROW(3),  ROW(4),  ROW(5),  ROW(6),  ROW(7),
    ROW(8),       ROW(9), ROW(10), ROW(11), ROW(12), ROW(13), ROW(14),
};
#define DIRECT(mr) \
    { direct_##mr##x1, direct_##mr##x2 }
static const microkernel_fn direct_microkernels[MR + 1][NV] = {
    {NULL, NULL},    DIRECT(1),  DIRECT(2),  DIRECT(3),  DIRECT(4),
    DIRECT(5),       DIRECT(6),  DIRECT(7),  DIRECT(8),  DIRECT(9),
    DIRECT(10),      DIRECT(11), DIRECT(12), DIRECT(13), DIRECT(14),
};

// ---------------------------------------------------------------------------------------------

static void scale_c(int M, int N, float beta, float *C, long ldc) {
    for (int i = 0; i < M; i++) {
        float *row = C + i * ldc;
        for (int j = 0; j < N; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
}

static int block_size(int n, int max, int unit) {
    int blocks = (n + max - 1) / max;
    int size = (n + blocks - 1) / blocks;
    size = (size + unit - 1) / unit * unit;
    return size < max ? size : max;
}

static struct operand operand_of(const void *x, enum gemm_elem elem, int ld) {
    struct operand o = {NULL, NULL, ld};
    if (elem == GEMM_BF16)
        o.h = x;
    else
        o.f = x;
    return o;
}

void gemm_bf16_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
                      enum gemm_elem a_elem, int lda, const void *B, enum gemm_elem b_elem, int ldb,
                      float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    struct bf16_buffers *buffers = thread_buffers();
    struct operand a = operand_of(A, a_elem, lda), b = operand_of(B, b_elem, ldb);
    // k blocks are even (whole pairs) except the last; mc blocks as in the fp32 kernel.
    int kc_max = 2 * block_size((K + 1) / 2, KP, 8), mc_max = block_size(M, MC, MR);
    // A bf16 A along k with whole pairs (even K and lda, 4-byte aligned) is read in place: the
    // same products in the same order as from a packed copy, so the same bits, without the
    // packing (~15% of a bf16 forward's linear regions).
    const int direct = !trans_a && a.h && K % 2 == 0 && lda % 2 == 0 && ((uintptr_t)A & 3) == 0;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += kc_max) {
            int kc = K - pc < kc_max ? K - pc : kc_max, kp = (kc + 1) / 2;
            float beta_block = pc == 0 ? beta : 1.0f;
            for (int ic = 0; ic < M; ic += mc_max) {
                int mc = M - ic < mc_max ? M - ic : mc_max;
                int tiles = (mc + MR - 1) / MR;
                if (!direct) pack_a(trans_a, buffers->a, &a, ic, pc, mc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    uint32_t *bs = buffers->b + (long)jr * kp;
                    // Each sliver is packed during the first A block, just before its first use
                    // (still in L1), and reused by the later ones.
                    if (ic == 0) {
                        // the sliver packed next: this panel's next one, else the next panel's first
                        long next_jc = jr + NR < nc ? jc + jr + NR : pc + kc < K ? jc : -1;
                        long next_pc = jr + NR < nc ? pc : pc + kc;
                        pack_b_sliver(trans_b, bs, &b, jc + jr, nr, pc, kc, next_jc, next_pc);
                    }
                    for (int s = 0; s < tiles; s++) {
                        int start, rows;
                        tile_rows(mc, tiles, s, &start, &rows);
                        float *c = C + (long)(ic + start) * ldc + jc + jr;
                        if (direct)
                            direct_microkernels[rows][(nr + 15) / 16 - 1](
                                kp, (const uint32_t *)(a.h + (long)(ic + start) * lda + pc),
                                lda / 2, bs, c, ldc, nr, alpha, beta_block);
                        else
                            microkernels[rows][(nr + 15) / 16 - 1](
                                kp, buffers->a + (long)s * MR * kp, 0, bs, c, ldc, nr, alpha,
                                beta_block);
                    }
                }
            }
        }
    }
}

void bf16_from_floats_avx512(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    if (i < n) {
        __mmask16 m = mask_first16((int)(n - i));
        _mm256_mask_storeu_epi16(dst + i, m,
                                 (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i)));
    }
}
