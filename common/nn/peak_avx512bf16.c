// The instruction loops behind blas_measure_*_peak_gflops (nn/blas_info.h): 24 independent
// accumulator chains of one multiply-add instruction, enough to cover its latency on both
// pipes of a Zen 4/5 or Intel core, so the loop runs at the instruction's throughput.
// Compiled with AVX512-BF16 (file suffix); peak_fma_loop uses only AVX-512F, and each is
// called only on a CPU that has what it uses.
#include <immintrin.h>

#include "nn/blas_info.h"

#define CHAINS 24

// Returns a sum of the accumulators (so the loop is not optimised away).
float peak_dpbf16_loop(long iterations) {
    __m512 c[CHAINS];
    for (int j = 0; j < CHAINS; j++) c[j] = _mm512_set1_ps((float)j);
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80),
             b = (__m512bh)_mm512_set1_epi32(0x00010001);
    for (long i = 0; i < iterations; i++) {
        __asm__ volatile("" : "+v"(a));  // a is not loop-invariant as far as GCC knows
#pragma GCC unroll 24
        for (int j = 0; j < CHAINS; j++) c[j] = _mm512_dpbf16_ps(c[j], a, b);
    }
    __m512 s = c[0];
    for (int j = 1; j < CHAINS; j++) s = _mm512_add_ps(s, c[j]);
    return _mm512_reduce_add_ps(s);
}

float peak_fma_loop(long iterations) {
    __m512 c[CHAINS];
    for (int j = 0; j < CHAINS; j++) c[j] = _mm512_set1_ps((float)j);
    __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-30f);
    for (long i = 0; i < iterations; i++) {
        __asm__ volatile("" : "+v"(a));
#pragma GCC unroll 24
        for (int j = 0; j < CHAINS; j++) c[j] = _mm512_fmadd_ps(a, b, c[j]);
    }
    __m512 s = c[0];
    for (int j = 1; j < CHAINS; j++) s = _mm512_add_ps(s, c[j]);
    return _mm512_reduce_add_ps(s);
}
