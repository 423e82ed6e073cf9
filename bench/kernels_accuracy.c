// Accuracy of the vectorised exp, erf and log1p (nn/simd_math.h) against libm in double, over
// dense sweeps, in ulps of the float result; libm's own float functions for comparison.
//
//   build-X/kernels_accuracy     (built by tests/kernels/tests.cmake; not a ctest test)
//
// Compiled with the AVX-512 flags (both instruction sets' helpers are visible); it checks the
// CPU first and says so when it cannot run. The kernels are tested through their results in
// tests/unit/test_kernels.c; this prints the bare functions' numbers.
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "nn/simd_math.h"

static double ulp_of(double ref) {
    float f = (float)fabs(ref);
    if (f < FLT_MIN) return ldexp(1.0, -149);
    return nextafterf(f, INFINITY) - f;
}

typedef __m512 (*vec16_fn)(__m512);
typedef __m256 (*vec8_fn)(__m256);

static void sweep(const char *name, vec16_fn f16, vec8_fn f8, double (*ref)(double), float (*libm)(float),
                  double lo, double hi, long points) {
    double worst16 = 0, worst8 = 0, worst_libm = 0, at16 = 0, at8 = 0;
    float x[16], y16[16], y8[16];
    for (long p = 0; p < points; p += 16) {
        for (int i = 0; i < 16; i++) x[i] = (float)(lo + (hi - lo) * (double)(p + i) / (points - 1));
        _mm512_storeu_ps(y16, f16(_mm512_loadu_ps(x)));
        _mm256_storeu_ps(y8, f8(_mm256_loadu_ps(x)));
        _mm256_storeu_ps(y8 + 8, f8(_mm256_loadu_ps(x + 8)));
        for (int i = 0; i < 16 && p + i < points; i++) {
            double r = ref(x[i]), u = ulp_of(r);
            double e16 = fabs(y16[i] - r) / u, e8 = fabs(y8[i] - r) / u, el = fabs(libm(x[i]) - r) / u;
            if (e16 > worst16) worst16 = e16, at16 = x[i];
            if (e8 > worst8) worst8 = e8, at8 = x[i];
            if (el > worst_libm) worst_libm = el;
        }
    }
    printf("%-6s on [%g, %g], %ld points: avx512 %.2f ulp (at %.7g), avx2 %.2f ulp (at %.7g), libm %.2f ulp\n",
           name, lo, hi, points, worst16, at16, worst8, at8, worst_libm);
}

static __m512 log1p16(__m512 t) { return simd_log1p_unit16(t); }
static __m256 log1p8(__m256 t) { return simd_log1p_unit8(t); }

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("fma")) {
        printf("kernels_accuracy: this CPU lacks AVX-512F/DQ or FMA; nothing measured\n");
        return 0;
    }
    sweep("erf", simd_erf16, simd_erf8, erf, erff, -10.0, 10.0, 2000001);
    sweep("erf", simd_erf16, simd_erf8, erf, erff, -1e-3, 1e-3, 2000001);
    sweep("exp", simd_exp16, simd_exp8, exp, expf, -87.3, 88.0, 2000001);
    sweep("log1p", log1p16, log1p8, log1p, log1pf, 0.0, 1.0, 2000001);
    // Edges: flushed to 0 below ln(FLT_MIN), never NaN; NaN propagates.
    float x[16] = {-100.0f, -1e30f, -INFINITY, -87.4f, NAN, 0.0f, 1.0f, 88.0f};
    float y[16];
    _mm512_storeu_ps(y, simd_exp16(_mm512_loadu_ps(x)));
    printf("exp (avx512):");
    for (int i = 0; i < 8; i++) printf(" exp(%g) = %g%s", x[i], y[i], i < 7 ? "," : "\n");
    return 0;
}
