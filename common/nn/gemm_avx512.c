// AVX-512 single-precision GEMM, GotoBLAS/BLIS style (see gemm.h for the interface).
//
//   for jc in N by NC:                 B panel (KC x NC) packed into NR-column slivers  (L3)
//     for pc in K by KC:
//       for ic in M by MC:             A block (MC x KC) packed into MR-row slivers     (L2)
//         for jr in NC by NR:          one B sliver (KC x NR) stays in L1 across the ir loop
//           for ir in MC by MR:        microkernel: C[MR x NR] += A sliver · B sliver
//
// Microkernel: MR x NR = 14 x 32, i.e. 28 zmm accumulators, two zmm loads of B and 14
// broadcasts of A per k (28 FMAs). 28 independent chains cover the FMA latency (4 cycles) of
// both FMA pipes. Edge tiles use kernels compiled for every row count 1..14 and for one or two
// vectors of columns, with masked column stores, so no work is done on padding rows and
// nothing outside C is touched. beta is applied on the first K block only (later blocks add to
// C), and beta == 0 never reads C.
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
#ifndef GEMM_KC
#define GEMM_KC 384
#endif
#ifndef GEMM_MC
#define GEMM_MC (MR * 24)
#endif
#ifndef GEMM_NC
#define GEMM_NC 3072
#endif
#define KC GEMM_KC
#define MC GEMM_MC
#define NC GEMM_NC
_Static_assert(MC % MR == 0 && NC % NR == 0 && KC % 16 == 0, "blocking must tile");

// ---------------------------------------------------------------------------------------------
// Per-thread packing buffers: allocated on a thread's first call, freed when the thread exits.

struct gemm_buffers {
    float *a;  // MC x KC, MR-row slivers, each kc * MR floats (+ 16 floats of slack)
    float *b;  // KC x NC, NR-column slivers, each kc * NR floats
};

static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;

static void buffers_free(void *p) {
    struct gemm_buffers *buffers = p;
    free(buffers->a);
    free(buffers->b);
    free(buffers);
}

static void buffers_key_create(void) {
    CATLIP_ASSERT(pthread_key_create(&buffers_key, buffers_free) == 0);
}

static struct gemm_buffers *thread_buffers(void) {
    pthread_once(&buffers_once, buffers_key_create);
    struct gemm_buffers *buffers = pthread_getspecific(buffers_key);
    if (buffers == NULL) {
        buffers = xmalloc(sizeof *buffers);
        buffers->a = xaligned_alloc(((size_t)MC * KC + 16) * sizeof(float));
        buffers->b = xaligned_alloc((size_t)KC * NC * sizeof(float));
        CATLIP_ASSERT(pthread_setspecific(buffers_key, buffers) == 0);
    }
    return buffers;
}

// ---------------------------------------------------------------------------------------------
// Packing

static inline __mmask16 mask_first(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

// The rows of an A block of mc rows go to ceil(mc / MR) tiles of near-equal height (16 rows
// are 8 + 8, not 14 + 2): a tile of fewer than 4 rows has too few independent FMA chains to
// cover the FMA latency, so it would run at a fraction of the speed per row.
static inline void tile_rows(int mc, int tiles, int s, int *start, int *rows) {
    int base = mc / tiles, extra = mc % tiles;
    *start = s * base + (s < extra ? s : extra);
    *rows = base + (s < extra);
}

// Slivers: sliver s of a block starts at s * MR * kc.
// dst[k * MR + i] = op(A)[i][k] for i < mr, k < kc; src points at op(A)[0][0].
// op(A) = A: rows of src are the MR rows (stride lda), so 16x16 blocks are transposed in
// registers. Each 16-float store overlaps the next k's first two floats, which that k then
// overwrites; the last one spills into the next sliver (packed later) or the slack.
static void pack_a_sliver_rows(float *dst, const float *src, long lda, int mr, int kc) {
    __m512 r[16];
    for (int k0 = 0; k0 < kc; k0 += 16) {
        int kt = kc - k0 < 16 ? kc - k0 : 16;
        __mmask16 m = mask_first(kt);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            r[i] = i < mr ? _mm512_maskz_loadu_ps(m, src + i * lda + k0) : _mm512_setzero_ps();
            // A is read once per block, likely from L3 or memory: fetch the same line of the
            // next sliver's rows, a whole sliver ahead (past A's end it fetches nothing useful,
            // and a prefetch never faults).
            _mm_prefetch((const char *)(src + (MR + i) * lda + k0), _MM_HINT_T0);
        }
        transpose16(r);
        for (int t = 0; t < kt; t++) _mm512_storeu_ps(dst + (long)(k0 + t) * MR, r[t]);
    }
}

// op(A) = Aᵀ: the MR values of one k are contiguous in row k of A. The whole block is packed
// row by row, so A is read sequentially (one row segment of mc floats per k) rather than in
// narrow strided columns.
static void pack_a_block_columns(float *dst, const float *src, long lda, int mc, int kc) {
    int tiles = (mc + MR - 1) / MR;
    for (int k = 0; k < kc; k++) {
        const float *row = src + k * lda;
        for (int s = 0; s < tiles; s++) {
            int start, rows;
            tile_rows(mc, tiles, s, &start, &rows);
            __mmask16 m = mask_first(rows);
            _mm_prefetch((const char *)(row + 16 * lda + start), _MM_HINT_T0);
            // A 16-float store spills 2 floats into k + 1 of the same sliver, written later
            // (masked stores are slow on AMD); at the last k it would spill into the next
            // sliver's k = 0, already packed, so that one is masked.
            float *d = dst + (long)s * MR * kc + (long)k * MR;
            __m512 v = _mm512_maskz_loadu_ps(m, row + start);
            if (k < kc - 1)
                _mm512_storeu_ps(d, v);
            else
                _mm512_mask_storeu_ps(d, m, v);
        }
    }
}

static void pack_a(int trans_a, float *dst, const float *A, long lda, int ic, int pc, int mc,
                   int kc) {
    if (trans_a) {
        pack_a_block_columns(dst, A + (long)pc * lda + ic, lda, mc, kc);
        return;
    }
    int tiles = (mc + MR - 1) / MR;
    for (int s = 0; s < tiles; s++) {
        int start, rows;
        tile_rows(mc, tiles, s, &start, &rows);
        pack_a_sliver_rows(dst + (long)s * MR * kc, A + (long)(ic + start) * lda + pc, lda, rows,
                           kc);
    }
}

// dst[jr * kc + k * NR + j] = op(B)[k][jr + j] for the NR-column slivers jr of a panel of nc
// columns, zero past nc; src points at op(B)[0][0]. op(B) = B: rows of B are contiguous, so the
// whole panel is packed row by row (sequential reads).
static void pack_b_panel_rows(float *dst, const float *src, long ldb, int nc, int kc) {
    for (int k = 0; k < kc; k++) {
        const float *row = src + k * ldb;
        for (int jr = 0; jr < nc; jr += NR) {
            _mm_prefetch((const char *)(row + 16 * ldb + jr), _MM_HINT_T0);
            _mm_prefetch((const char *)(row + 16 * ldb + jr + 16), _MM_HINT_T0);
            int nr = nc - jr < NR ? nc - jr : NR;
            __mmask16 m0 = mask_first(nr), m1 = mask_first(nr > 16 ? nr - 16 : 0);
            float *d = dst + (long)jr * kc + (long)k * NR;
            _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, row + jr));
            _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, row + jr + 16));
        }
    }
}

// One NR-column sliver of op(B) = B (for a single A block, packed just before its use): the NR
// values of one k are contiguous in row k of B. Each row also fetches the next sliver's two
// lines of the same row.
static void pack_b_sliver_rows(float *dst, const float *src, long ldb, int nr, int kc) {
    __mmask16 m0 = mask_first(nr), m1 = mask_first(nr > 16 ? nr - 16 : 0);
    for (int k = 0; k < kc; k++) {
        const float *row = src + k * ldb;
        _mm_prefetch((const char *)(row + NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(row + NR + 16), _MM_HINT_T0);
        _mm512_store_ps(dst + (long)k * NR, _mm512_maskz_loadu_ps(m0, row));
        _mm512_store_ps(dst + (long)k * NR + 16, _mm512_maskz_loadu_ps(m1, row + 16));
    }
}

// op(B) = Bᵀ: column j of op(B) is row j of B, so 16x16 blocks are transposed in registers.
static void pack_b_sliver_columns(float *dst, const float *src, long ldb, int nr, int kc) {
    __m512 r[16];
    for (int k0 = 0; k0 < kc; k0 += 16) {
        int kt = kc - k0 < 16 ? kc - k0 : 16;
        __mmask16 m = mask_first(kt);
        for (int h = 0; h < NV; h++) {
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                int j = 16 * h + i;
                r[i] = j < nr ? _mm512_maskz_loadu_ps(m, src + j * ldb + k0) : _mm512_setzero_ps();
                // The same line of the next sliver's rows (as in pack_a_sliver_rows).
                _mm_prefetch((const char *)(src + (NR + j) * ldb + k0), _MM_HINT_T0);
            }
            transpose16(r);
            for (int t = 0; t < kt; t++) _mm512_store_ps(dst + (long)(k0 + t) * NR + 16 * h, r[t]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Microkernel: C[mr x n] = alpha * a · b + beta * C, where a is a packed A sliver (kc x MR,
// first mr used), b a packed B sliver (kc x NR, first 16 * nv used) and n <= 16 * nv.

typedef void (*microkernel_fn)(int kc, const float *a, const float *b, float *C, long ldc, int n,
                               float alpha, float beta);

static inline __attribute__((always_inline)) void microkernel(int mr, int nv, int kc,
                                                              const float *a, const float *b,
                                                              float *C, long ldc, int n,
                                                              float alpha, float beta) {
    __m512 c[MR][NV];
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) c[i][j] = _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int i = 0; i < mr; i++) {
        // The tile's rows of C (up to 3 lines each), needed after the k loop.
        _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(C + i * ldc + 16 * nv - 1), _MM_HINT_T0);
        if (nv > 1) _mm_prefetch((const char *)(C + i * ldc + 16), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m512 bv[NV];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) bv[j] = _mm512_load_ps(b + k * NR + 16 * j);
#pragma GCC unroll 14
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(a[k * MR + i]);
#pragma GCC unroll 2
            for (int j = 0; j < nv; j++) c[i][j] = _mm512_fmadd_ps(av, bv[j], c[i][j]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    int full = n == 16 * nv;
    __mmask16 last = mask_first(n - 16 * (nv - 1));
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

#define MICROKERNEL(mr, nv)                                                               \
    static void microkernel_##mr##x##nv(int kc, const float *a, const float *b, float *C, \
                                        long ldc, int n, float alpha, float beta) {       \
        microkernel(mr, nv, kc, a, b, C, ldc, n, alpha, beta);                            \
    }
#define MICROKERNELS(mr) MICROKERNEL(mr, 1) MICROKERNEL(mr, 2)
MICROKERNELS(1)
MICROKERNELS(2)
MICROKERNELS(3)
MICROKERNELS(4)
MICROKERNELS(5) MICROKERNELS(6) MICROKERNELS(7) MICROKERNELS(8) MICROKERNELS(9) MICROKERNELS(10)
    MICROKERNELS(11) MICROKERNELS(12) MICROKERNELS(13)
        MICROKERNELS(14) _Static_assert(MR == 14 && NV == 2,
                                        "the microkernel table below lists 1..MR x 1..NV");

#define ROW(mr) \
    { microkernel_##mr##x1, microkernel_##mr##x2 }
static const microkernel_fn microkernels[MR + 1][NV] = {
    {NULL, NULL}, ROW(1), ROW(2),  ROW(3),  ROW(4),  ROW(5),  ROW(6),  ROW(7),
    ROW(8),       ROW(9), ROW(10), ROW(11), ROW(12), ROW(13), ROW(14),
};

// ---------------------------------------------------------------------------------------------

// C = beta * C (the whole answer when K == 0 or alpha == 0); beta == 0 writes zeros.
static void scale_c(int M, int N, float beta, float *C, long ldc) {
    for (int i = 0; i < M; i++) {
        float *row = C + i * ldc;
        for (int j = 0; j < N; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
}

// Splits n into ceil(n / max) near-equal blocks, each a multiple of `unit` where possible, so
// that a K of 260 becomes 2 x 130 rather than 256 + 4.
static int block_size(int n, int max, int unit) {
    int blocks = (n + max - 1) / max;
    int size = (n + blocks - 1) / blocks;
    size = (size + unit - 1) / unit * unit;
    return size < max ? size : max;
}

void gemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    struct gemm_buffers *buffers = thread_buffers();
    int kc_max = block_size(K, KC, 16), mc_max = block_size(M, MC, MR);
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += kc_max) {
            int kc = K - pc < kc_max ? K - pc : kc_max;
            float beta_block = pc == 0 ? beta : 1.0f;
            // With one A block (M <= MC) each packed B sliver is used once, right after it is
            // packed: pack slivers on the way (below), so that they are still in L1. With several,
            // B is packed up front, row by row (sequential reads), for all of them.
            int one_block = M <= mc_max;
            if (!trans_b && !one_block)
                pack_b_panel_rows(buffers->b, B + (long)pc * ldb + jc, ldb, nc, kc);
            for (int ic = 0; ic < M; ic += mc_max) {
                int mc = M - ic < mc_max ? M - ic : mc_max;
                int tiles = (mc + MR - 1) / MR;
                pack_a(trans_a, buffers->a, A, lda, ic, pc, mc, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    float *b = buffers->b + (long)jr * kc;
                    // Bᵀ slivers are packed during the first A block, just before their first
                    // use, so that one is still in L1 when the microkernel reads it (this
                    // matters when M is small and each packed sliver is used only a few times).
                    if (trans_b && ic == 0)
                        pack_b_sliver_columns(b, B + (long)(jc + jr) * ldb + pc, ldb, nr, kc);
                    else if (!trans_b && one_block)
                        pack_b_sliver_rows(b, B + (long)pc * ldb + jc + jr, ldb, nr, kc);
                    for (int s = 0; s < tiles; s++) {
                        int start, rows;
                        tile_rows(mc, tiles, s, &start, &rows);
                        microkernels[rows][(nr + 15) / 16 - 1](
                            kc, buffers->a + (long)s * MR * kc, b,
                            C + (long)(ic + start) * ldc + jc + jr, ldc, nr, alpha, beta_block);
                    }
                }
            }
        }
    }
}
