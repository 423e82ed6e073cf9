// bf16 attention of one head (nn/attention_bf16.h), forward and backward, against a
// double-precision reference of the same bf16-rounded operands.
//
// - Paths (ctest unit.test_attention_bf16.<path>): `emulated` (the separate products through
//   gemm_bf16_emulated, what a CPU without AVX512-BF16 runs) and `avx512_bf16` (the fused kernel,
//   the dispatcher's choice there, and the separate products through gemm_bf16_avx512; a
//   counted skip on a CPU without it or with CATLIP_CPU_DISABLE=avx512_bf16).
// - Shapes: T in {1, 5, 14, 15, 29, 32, 33, 77, 197} (odd T: the last key's pair has a zero
//   partner; T not a multiple of the 14-row block or the 32-column tile), head_dim 64 (vit and
//   the text tower) and 48 (a 16-column last tile), causal and not; the head is the second of
//   two in a (T, 3C) qkv buffer, so every operand is a strided view, as in the block.
// - Tolerances (all from the bf16-rounded operands, which the reference uses exactly): a
//   product of bf16 values is exact in fp32, so an fp32 sum of n of them is within
//   (n + 4)·2⁻²⁴·Σ|terms| of the exact sum (the bound test_gemm_bf16 uses). Forward: S within
//   that (hd terms) plus one rounding for the scale; P = softmax(S) within P·(δS_ij + max_k δS_ik
//   + (T + 8)·2⁻²⁴) (exp is within 1.25 ulp, the sum and the division add T + 2); masked keys
//   and each row's pad (P's row stride is attention_bf16_probs_ld(T); the buffer starts as NaN)
//   exactly 0. y against Σ bf16(P)·v with bf16(P) of the P the kernel returned (T terms); y_bf16
//   exactly bf16(y). Backward on that P: dv = Σ bf16(P)·bf16(dy) (T terms); dP and dS are not
//   returned, so dS_ref = scale·P·(dP − Σ P·dP) in double carries its own bound δdS (dP's hd-term
//   bound, the row sum's T-term bound over |P·dP|, three roundings), and dq, dk are held to
//   Σ bf16(dS_ref)·k (resp. q) plus, per term, how far bf16 may move over [dS_ref − δdS, dS_ref +
//   δdS] (bf16 rounding is monotone: the ends bound it; zero except where a rounding boundary
//   falls inside), plus the T-term bound. A wrong pair, a lost zero partner, an unrounded
//   operand or a row of another block is far outside these.
// - Fused against the separate AVX512-BF16 products: the same pairs summed in the same order,
//   so P, y, y_bf16 and dv are the same bits; dq, dk (the softmax backward's row sum runs over
//   differently aligned rows) within the bounds above.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/rng.h"
#include "nn/attention_bf16.h"
#include "nn/bf16.h"
#include "nn/kernels.h"
#include "cpu_require.h"

#define ULP (1.0 / 16777216.0)  // 2^-24
#define HEADS 2                 // the head under test is the second

static int printed;

struct problem {
    int T, hd, causal, C;
    float *probs, *y, *dq_all, *dy;  // probs (T, ldp); y (T, C); dqkv (T, 3C); dy (T, C)
    long ldp;                        // attention_bf16_probs_ld(T)
    uint16_t *qkv, *y_bf16;          // (T, 3C), (T, C)
    struct attention_bf16_head head;
    void *scratch;
};

static struct problem problem_new(int T, int hd, int causal, uint64_t seed) {
    struct problem p = {.T = T, .hd = hd, .causal = causal, .C = HEADS * hd,
                        .ldp = attention_bf16_probs_ld(T)};
    size_t t = (size_t)T, C = (size_t)p.C;
    p.qkv = xaligned_alloc(t * 3 * C * 2);
    p.probs = xaligned_alloc(t * (size_t)p.ldp * 4);
    for (size_t i = 0; i < t * (size_t)p.ldp; i++) p.probs[i] = NAN;  // the pad must be written
    p.y = xaligned_alloc(t * C * 4);
    p.y_bf16 = xaligned_alloc(t * C * 2);
    p.dq_all = xaligned_alloc(t * 3 * C * 4);
    p.dy = xaligned_alloc(t * C * 4);
    p.scratch = xaligned_alloc(attention_bf16_scratch_bytes(T, hd));
    struct rng r;
    rng_init(&r, seed);
    for (size_t i = 0; i < t * 3 * C; i++)
        p.qkv[i] = bf16_from_float((float)(1.5 * rng_normal(&r)));
    for (size_t i = 0; i < t * C; i++) p.dy[i] = (float)rng_normal(&r);
    const uint16_t *q = p.qkv + hd;  // head 1
    p.head = (struct attention_bf16_head){.tokens = T,
                                          .head_dim = hd,
                                          .causal = causal,
                                          .scale = 1.0f / sqrtf((float)hd),
                                          .k = kernels_active(),
                                          .q = q,
                                          .key = q + p.C,
                                          .v = q + 2 * p.C,
                                          .ld_qkv = 3 * p.C};
    return p;
}

static void problem_free(struct problem *p) {
    free(p->qkv), free(p->probs), free(p->y), free(p->y_bf16), free(p->dq_all), free(p->dy);
    free(p->scratch);
}

static double qv(const struct problem *p, const uint16_t *m, int r, int c) {
    return bf16_to_float(m[(long)r * p->head.ld_qkv + c]);
}

static int report(const char *what, int T, int hd, int causal, int i, int j, double got,
                  double want, double tol) {
    if (printed++ < 10)
        print_message("%s T=%d hd=%d causal=%d [%d][%d]: %.9g, reference %.9g (tolerance %.3g)\n",
                      what, T, hd, causal, i, j, got, want, tol);
    return 1;
}

// P against softmax(scale·q·kᵀ) in double.
static int check_probs(const struct problem *p) {
    const int T = p->T, hd = p->hd;
    const struct attention_bf16_head *a = &p->head;
    double *s = xmalloc((size_t)T * sizeof *s), *e = xmalloc((size_t)T * sizeof *e);
    int bad = 0;
    for (int i = 0; i < T; i++) {
        int n = p->causal ? i + 1 : T;
        double mx = -INFINITY, worst = 0.0, sum = 0.0;
        for (int j = 0; j < n; j++) {
            double acc = 0.0, mag = 0.0;
            for (int c = 0; c < hd; c++) {
                double t = qv(p, a->q, i, c) * qv(p, a->key, j, c);
                acc += t, mag += fabs(t);
            }
            s[j] = a->scale * acc;
            e[j] = a->scale * ((hd + 4) * ULP * mag) + 2 * ULP * fabs(s[j]);
            if (s[j] > mx) mx = s[j];
            if (e[j] > worst) worst = e[j];
        }
        for (int j = 0; j < n; j++) sum += exp(s[j] - mx);
        for (int j = 0; j < p->ldp; j++) {
            double got = p->probs[i * p->ldp + j];
            if (j >= n) {  // masked keys and the row's pad
                if (got != 0.0) bad += report("P (masked)", T, hd, p->causal, i, j, got, 0, 0);
                continue;
            }
            double want = exp(s[j] - mx) / sum;
            double tol = want * (e[j] + worst + (T + 8) * ULP);
            if (!(fabs(got - want) <= tol))
                bad += report("P", T, hd, p->causal, i, j, got, want, tol);
        }
    }
    free(s), free(e);
    return bad;
}

// y (fp32, if given) against bf16(P)·v; y_bf16 = bf16(y).
static int check_y(const struct problem *p, const float *y) {
    const int T = p->T, hd = p->hd, C = p->C;
    int bad = 0;
    for (int i = 0; i < T; i++)
        for (int c = 0; c < hd; c++) {
            double acc = 0.0, mag = 0.0;
            for (int j = 0; j < T; j++) {
                double t = bf16_round(p->probs[i * p->ldp + j]) * qv(p, p->head.v, j, c);
                acc += t, mag += fabs(t);
            }
            double tol = (T + 4) * ULP * mag;
            if (y) {
                double got = y[(long)i * C + hd + c];
                if (!(fabs(got - acc) <= tol))
                    bad += report("y", T, hd, p->causal, i, c, got, acc, tol);
                uint16_t h = p->y_bf16[(long)i * C + hd + c];
                if (h != bf16_from_float((float)got))
                    bad += report("y_bf16", T, hd, p->causal, i, c, bf16_to_float(h), got, 0);
            } else {
                // without y: y_bf16 within the rounding of a y inside the bound
                double got = bf16_to_float(p->y_bf16[(long)i * C + hd + c]);
                double lo = bf16_round((float)nextafter(acc - tol, -INFINITY));
                double hi = bf16_round((float)nextafter(acc + tol, INFINITY));
                if (!(got >= lo - 1e-300 && got <= hi + 1e-300))
                    bad += report("y_bf16", T, hd, p->causal, i, c, got, acc, tol);
            }
        }
    return bad;
}

// bf16 of every float in [lo, hi] lies in [bf16(lo'), bf16(hi')] (lo', hi': the floats just
// outside): how far the rounding can move over that interval.
static double bf16_spread(double lo, double hi) {
    float l = nextafterf((float)lo, -INFINITY), h = nextafterf((float)hi, INFINITY);
    return (double)bf16_round(h) - (double)bf16_round(l);
}

// dq, dk, dv (columns of head 1 in dqkv) against the reference on the P in p->probs.
static int check_backward(const struct problem *p) {
    const int T = p->T, hd = p->hd, C = p->C;
    const struct attention_bf16_head *a = &p->head;
    size_t tt = (size_t)T * T;
    double *ds = xmalloc(tt * sizeof *ds), *spread = xmalloc(tt * sizeof *spread);
    double *dsb = xmalloc(tt * sizeof *dsb), *dp = xmalloc((size_t)T * sizeof *dp);
    double *edp = xmalloc((size_t)T * sizeof *edp);
    int bad = 0;
    for (int i = 0; i < T; i++) {
        const float *P = p->probs + i * p->ldp;
        double dot = 0.0, dot_mag = 0.0, edot = 0.0;
        for (int j = 0; j < T; j++) {
            double acc = 0.0, mag = 0.0;
            for (int c = 0; c < hd; c++) {
                double t = bf16_round(p->dy[(long)i * C + hd + c]) * qv(p, a->v, j, c);
                acc += t, mag += fabs(t);
            }
            dp[j] = acc, edp[j] = (hd + 4) * ULP * mag;
            dot += P[j] * acc, dot_mag += fabs(P[j] * acc), edot += P[j] * edp[j];
        }
        edot += (T + 4) * ULP * dot_mag;
        for (int j = 0; j < T; j++) {
            long ij = (long)i * T + j;
            ds[ij] = a->scale * P[j] * (dp[j] - dot);
            double e = a->scale * P[j] * (edp[j] + edot) + 4 * ULP * fabs(ds[ij]);
            dsb[ij] = bf16_round((float)ds[ij]);
            spread[ij] = bf16_spread(ds[ij] - e, ds[ij] + e);
        }
    }
    for (int x = 0; x < T; x++)
        for (int c = 0; c < hd; c++) {
            // dq[x] = Σ_j bf16(dS)[x][j]·k[j];  dk[x] = Σ_i bf16(dS)[i][x]·q[i];
            // dv[x] = Σ_i bf16(P)[i][x]·bf16(dy)[i]
            double q_acc = 0, q_mag = 0, q_sp = 0, k_acc = 0, k_mag = 0, k_sp = 0, v_acc = 0,
                   v_mag = 0;
            for (int j = 0; j < T; j++) {
                long xj = (long)x * T + j, jx = (long)j * T + x;
                double t = dsb[xj] * qv(p, a->key, j, c);
                q_acc += t, q_mag += fabs(t), q_sp += spread[xj] * fabs(qv(p, a->key, j, c));
                t = dsb[jx] * qv(p, a->q, j, c);
                k_acc += t, k_mag += fabs(t), k_sp += spread[jx] * fabs(qv(p, a->q, j, c));
                t = bf16_round(p->probs[j * p->ldp + x]) *
                    bf16_round(p->dy[(long)j * C + hd + c]);
                v_acc += t, v_mag += fabs(t);
            }
            const float *d = p->dq_all + (long)x * 3 * C + hd + c;
            double got[3] = {d[0], d[C], d[2 * C]}, want[3] = {q_acc, k_acc, v_acc};
            double tol[3] = {(T + 4) * ULP * (q_mag + q_sp) + q_sp,
                             (T + 4) * ULP * (k_mag + k_sp) + k_sp, (T + 4) * ULP * v_mag};
            static const char *names[3] = {"dq", "dk", "dv"};
            for (int g = 0; g < 3; g++)
                if (!(fabs(got[g] - want[g]) <= tol[g]))
                    bad += report(names[g], T, hd, p->causal, x, c, got[g], want[g], tol[g]);
        }
    free(ds), free(spread), free(dsb), free(dp), free(edp);
    return bad;
}

enum impl { IMPL_FUSED, IMPL_DISPATCH, IMPL_GEMM_AVX512, IMPL_GEMM_EMULATED };

static void run_forward(enum impl impl, struct problem *p, float *y) {
    uint16_t *yb = p->y_bf16 + p->hd;
    float *yy = y ? y + p->hd : NULL;
    switch (impl) {
        case IMPL_FUSED:
            attention_bf16_forward_fused(p->probs, yy, yb, p->C, &p->head, p->scratch);
            break;
        case IMPL_DISPATCH:
            attention_bf16_forward(p->probs, yy, yb, p->C, &p->head, p->scratch);
            break;
        case IMPL_GEMM_AVX512:
            attention_bf16_forward_gemm(gemm_bf16_avx512, p->probs, yy, yb, p->C, &p->head,
                                        p->scratch);
            break;
        case IMPL_GEMM_EMULATED:
            attention_bf16_forward_gemm(gemm_bf16_emulated, p->probs, yy, yb, p->C, &p->head,
                                        p->scratch);
            break;
    }
}

static void run_backward(enum impl impl, struct problem *p) {
    float *dq = p->dq_all + p->hd, *dk = dq + p->C, *dv = dq + 2 * p->C;
    const float *dy = p->dy + p->hd;
    long ld = 3 * p->C;
    switch (impl) {
        case IMPL_FUSED:
            attention_bf16_backward_fused(dq, dk, dv, ld, dy, p->C, p->probs, &p->head, p->scratch);
            break;
        case IMPL_DISPATCH:
            attention_bf16_backward(dq, dk, dv, ld, dy, p->C, p->probs, &p->head, p->scratch);
            break;
        case IMPL_GEMM_AVX512:
            attention_bf16_backward_gemm(gemm_bf16_avx512, dq, dk, dv, ld, dy, p->C, p->probs,
                                         &p->head, p->scratch);
            break;
        case IMPL_GEMM_EMULATED:
            attention_bf16_backward_gemm(gemm_bf16_emulated, dq, dk, dv, ld, dy, p->C, p->probs,
                                         &p->head, p->scratch);
            break;
    }
}

static const int TOKENS[] = {1, 5, 14, 15, 29, 32, 33, 77, 197};

// Every shape through impl: forward with and without fp32 y, backward, against the reference;
// the other head's columns and the outputs' padding left alone.
static int sweep(enum impl impl) {
    int bad = 0, cases = 0;
    for (size_t ti = 0; ti < sizeof TOKENS / sizeof *TOKENS; ti++)
        for (int hd = 48; hd <= 64; hd += 16)
            for (int causal = 0; causal <= 1; causal++) {
                int T = TOKENS[ti];
                if (hd == 48 && T > 33 && T != 77) continue;  // keep the run short
                struct problem p = problem_new(T, hd, causal, 1000u * T + 10u * hd + causal);
                size_t nC = (size_t)T * p.C;
                for (size_t i = 0; i < nC; i++) p.y[i] = NAN, p.y_bf16[i] = 0x7fc1;
                for (size_t i = 0; i < 3 * nC; i++) p.dq_all[i] = NAN;
                run_forward(impl, &p, p.y);
                bad += check_probs(&p) + check_y(&p, p.y);
                uint16_t *first = xmalloc(nC * sizeof *first);
                memcpy(first, p.y_bf16, nC * sizeof *first);
                run_forward(impl, &p, NULL);
                bad += check_y(&p, NULL);
                for (size_t i = 0; i < nC; i++) {
                    int other = (int)(i % p.C) < hd;  // head 0's columns: never written
                    if (other && (p.y_bf16[i] != 0x7fc1 || !isnan(p.y[i])))
                        bad += report("other head's y", T, hd, causal, (int)(i / p.C),
                                      (int)(i % p.C), 0, 0, 0);
                    if (!other && p.y_bf16[i] != first[i])
                        bad += report("y_bf16 with/without y", T, hd, causal, (int)(i / p.C),
                                      (int)(i % p.C), 0, 0, 0);
                }
                free(first);
                run_backward(impl, &p);
                bad += check_backward(&p);
                for (size_t i = 0; i < 3 * nC; i++)
                    if ((int)(i % p.C) < hd && !isnan(p.dq_all[i]))
                        bad += report("other head's dqkv", T, hd, causal, (int)(i / (3 * p.C)),
                                      (int)(i % (3 * p.C)), 0, 0, 0);
                problem_free(&p);
                cases++;
            }
    assert_true(cases > 20);
    return bad;
}

static void test_emulated_matches_reference(void **state) {
    (void)state;
    if (!test_path_selected("emulated")) skip();
    assert_int_equal(sweep(IMPL_GEMM_EMULATED), 0);
}

static void test_fused_matches_reference(void **state) {
    (void)state;
    if (!test_path_selected("avx512_bf16")) skip();
    REQUIRE_CPU(CPU_AVX512_BF16);
    assert_string_equal(attention_bf16_backend(64), "fused");
    assert_string_equal(attention_bf16_backend(63), "gemm");
    assert_int_equal(sweep(IMPL_FUSED), 0);
    assert_int_equal(sweep(IMPL_DISPATCH), 0);
    assert_int_equal(sweep(IMPL_GEMM_AVX512), 0);
}

// The fused kernel against the separate AVX512-BF16 products: P, y, y_bf16 and dv bit for bit.
static void test_fused_matches_gemm_bits(void **state) {
    (void)state;
    if (!test_path_selected("avx512_bf16")) skip();
    REQUIRE_CPU(CPU_AVX512_BF16);
    int bad = 0;
    for (size_t ti = 0; ti < sizeof TOKENS / sizeof *TOKENS; ti++)
        for (int causal = 0; causal <= 1; causal++) {
            int T = TOKENS[ti], hd = 64;
            struct problem f = problem_new(T, hd, causal, 77u + T);
            struct problem g = problem_new(T, hd, causal, 77u + T);
            size_t nC = (size_t)T * f.C;
            memset(f.y, 0, nC * 4), memset(g.y, 0, nC * 4);
            memset(f.dq_all, 0, 3 * nC * 4), memset(g.dq_all, 0, 3 * nC * 4);
            run_forward(IMPL_FUSED, &f, f.y);
            run_forward(IMPL_GEMM_AVX512, &g, g.y);
            bad += memcmp(f.probs, g.probs, (size_t)T * (size_t)f.ldp * 4) != 0;
            bad += memcmp(f.y, g.y, nC * 4) != 0;
            bad += memcmp(f.y_bf16 + hd, g.y_bf16 + hd, (nC - hd) * 2) != 0;
            run_backward(IMPL_FUSED, &f);
            run_backward(IMPL_GEMM_AVX512, &g);
            for (int i = 0; i < T; i++)
                bad += memcmp(f.dq_all + (long)i * 3 * f.C + 2 * f.C + hd,
                              g.dq_all + (long)i * 3 * g.C + 2 * g.C + hd, (size_t)hd * 4) != 0;
            if (bad && printed++ < 10)
                print_message("fused != gemm bits at T=%d causal=%d\n", T, causal);
            problem_free(&f), problem_free(&g);
        }
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emulated_matches_reference),
        cmocka_unit_test(test_fused_matches_reference),
        cmocka_unit_test(test_fused_matches_gemm_bits),
    };
    return test_exit_status(cmocka_run_group_tests(tests, NULL, NULL));
}
