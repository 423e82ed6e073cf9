// bf16 attention of one head (see attention_bf16.h): the choice between the fused kernel and the
// separate products, and the separate products themselves.
#include "nn/attention_bf16.h"

#include <string.h>

#include "core/check.h"
#include "core/cpu.h"
#include "nn/attention_bf16_layout.h"
#include "nn/bf16.h"

void attention_softmax_row(const struct kernels *k, float *p, int i, int tokens, int causal) {
    if (causal) {
        k->softmax_forward(p, p, 1, i + 1);
        memset(p + i + 1, 0, (size_t)(tokens - 1 - i) * sizeof *p);
    } else {
        k->softmax_forward(p, p, 1, tokens);
    }
}

static int fused_applies(int head_dim) {
    return head_dim % 2 == 0 && cpu_has(CPU_AVX512_BF16);
}

const char *attention_bf16_backend(int head_dim) {
    return fused_applies(head_dim) ? "fused" : "gemm";
}

// ---------------------------------------------------------------------------------------------
// Separate products. Scratch: P and dS as bf16 (T rows of ld_p), dy as bf16 (T, head_dim), the
// fp32 dS (T, T) and the fp32 output when the caller wants none (T, head_dim).

static long gemm_ld_p(int T) {
    return ((long)T + 31) & ~31L;  // rows start 64-byte aligned
}

static size_t gemm_scratch_bytes(int T, int hd) {
    size_t t = (size_t)T;
    return 2 * attention_round64(t * (size_t)gemm_ld_p(T) * 2) +
           attention_round64(t * (size_t)hd * 2) + attention_round64(t * t * 4) +
           attention_round64(t * (size_t)hd * 4);
}

struct gemm_scratch {
    uint16_t *pb, *dsb, *dyb;  // (T, ld_p), (T, ld_p), (T, head_dim)
    float *ds, *y;             // (T, T), (T, head_dim)
};

static struct gemm_scratch gemm_scratch_carve(void *scratch, int T, int hd) {
    char *s = scratch;
    size_t t = (size_t)T;
    struct gemm_scratch g;
    g.pb = (uint16_t *)s, s += attention_round64(t * (size_t)gemm_ld_p(T) * 2);
    g.dsb = (uint16_t *)s, s += attention_round64(t * (size_t)gemm_ld_p(T) * 2);
    g.dyb = (uint16_t *)s, s += attention_round64(t * (size_t)hd * 2);
    g.ds = (float *)s, s += attention_round64(t * t * 4);
    g.y = (float *)s;
    return g;
}

// rows x cols fp32 (row stride ld) rounded to bf16 (row stride ld_bf16).
static void round_rows(uint16_t *dst, long ld_bf16, const float *src, long ld, int rows, int cols) {
    for (int r = 0; r < rows; r++) bf16_from_floats(dst + r * ld_bf16, src + r * ld, (size_t)cols);
}

void attention_bf16_forward_gemm(gemm_bf16_fn gemm, float *probs, float *y, uint16_t *y_bf16,
                                 long ld_y, const struct attention_bf16_head *a, void *scratch) {
    const int T = a->tokens, hd = a->head_dim, ldq = (int)a->ld_qkv;
    const long ldp = gemm_ld_p(T);
    struct gemm_scratch g = gemm_scratch_carve(scratch, T, hd);
    long ld_out = ld_y;  // fp32 output: the caller's, or this scratch
    if (y == NULL) y = g.y, ld_out = hd;
    const long ld_probs = attention_bf16_probs_ld(T);
    gemm(0, 1, T, T, hd, a->scale, a->q, GEMM_BF16, ldq, a->key, GEMM_BF16, ldq, 0.0f, probs,
         (int)ld_probs);
    // softmax in fp32 (as autocast keeps it), each row rounded while in L1
    for (int i = 0; i < T; i++) {
        float *p = probs + i * ld_probs;
        attention_softmax_row(a->k, p, i, T, a->causal);
        memset(p + T, 0, (size_t)(ld_probs - T) * sizeof *p);
        bf16_from_floats(g.pb + i * ldp, p, (size_t)T);
    }
    gemm(0, 0, T, hd, T, 1.0f, g.pb, GEMM_BF16, (int)ldp, a->v, GEMM_BF16, ldq, 0.0f, y,
         (int)ld_out);
    round_rows(y_bf16, ld_y, y, ld_out, T, hd);  // proj's input, while in cache
}

void attention_bf16_backward_gemm(gemm_bf16_fn gemm, float *dq, float *dk, float *dv, long ld_d,
                                  const float *dy, long ld_dy, const float *probs,
                                  const struct attention_bf16_head *a, void *scratch) {
    const int T = a->tokens, hd = a->head_dim, ldq = (int)a->ld_qkv, ldd = (int)ld_d;
    const long ldp = gemm_ld_p(T), ld_probs = attention_bf16_probs_ld(T);
    struct gemm_scratch g = gemm_scratch_carve(scratch, T, hd);
    round_rows(g.dyb, hd, dy, ld_dy, T, hd);
    // y = P·v  →  dP = dy·vᵀ
    gemm(0, 1, T, T, hd, 1.0f, g.dyb, GEMM_BF16, hd, a->v, GEMM_BF16, ldq, 0.0f, g.ds, T);
    // P = softmax(S), S = scale·q·kᵀ  →  dS·scale; dS and P rounded row by row
    for (int r = 0; r < T; r++) {
        a->k->softmax_backward(g.ds + (long)r * T, probs + r * ld_probs, g.ds + (long)r * T, 1,
                               T, a->scale);
        bf16_from_floats(g.dsb + r * ldp, g.ds + (long)r * T, (size_t)T);
        bf16_from_floats(g.pb + r * ldp, probs + r * ld_probs, (size_t)T);
    }
    // dv = Pᵀ·dy, dq = dS·k, dk = dSᵀ·q
    gemm(1, 0, T, hd, T, 1.0f, g.pb, GEMM_BF16, (int)ldp, g.dyb, GEMM_BF16, hd, 0.0f, dv, ldd);
    gemm(0, 0, T, hd, T, 1.0f, g.dsb, GEMM_BF16, (int)ldp, a->key, GEMM_BF16, ldq, 0.0f, dq, ldd);
    gemm(1, 0, T, hd, T, 1.0f, g.dsb, GEMM_BF16, (int)ldp, a->q, GEMM_BF16, ldq, 0.0f, dk, ldd);
}

// ---------------------------------------------------------------------------------------------

size_t attention_bf16_scratch_bytes(int tokens, int head_dim) {
    size_t g = gemm_scratch_bytes(tokens, head_dim);
    size_t f = head_dim % 2 == 0 ? attention_layout_of(tokens, head_dim).bytes : 0;
    return g > f ? g : f;
}

void attention_bf16_forward(float *probs, float *y, uint16_t *y_bf16, long ld_y,
                            const struct attention_bf16_head *a, void *scratch) {
    if (fused_applies(a->head_dim))
        attention_bf16_forward_fused(probs, y, y_bf16, ld_y, a, scratch);
    else
        attention_bf16_forward_gemm(gemm_bf16, probs, y, y_bf16, ld_y, a, scratch);
}

void attention_bf16_backward(float *dq, float *dk, float *dv, long ld_d, const float *dy,
                             long ld_dy, const float *probs, const struct attention_bf16_head *a,
                             void *scratch) {
    if (fused_applies(a->head_dim))
        attention_bf16_backward_fused(dq, dk, dv, ld_d, dy, ld_dy, probs, a, scratch);
    else
        attention_bf16_backward_gemm(gemm_bf16, dq, dk, dv, ld_d, dy, ld_dy, probs, a, scratch);
}
