// bfloat16: the top 16 bits of an fp32 (sign, 8 exponent bits, 7 mantissa bits).
//
// fp32 -> bf16 rounds to nearest, ties to even, exactly as the AVX512-BF16 conversions
// (VCVTNEPS2BF16, VCVTNE2PS2BF16) do, so that the emulated and the hardware paths round every
// input the same way: NaN stays NaN (made quiet), a denormal becomes a zero of the same sign
// (the instructions treat denormal inputs as zero), and values past the largest bf16 round to
// infinity. bf16 -> fp32 is exact.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t bf16_from_float(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);  // NaN
    if ((bits & 0x7f800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000u);  // 0, denormal
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

// x rounded to the nearest bf16, as an fp32.
static inline float bf16_round(float x) {
    return bf16_to_float(bf16_from_float(x));
}

// dst[i] = bf16(src[i]) for i < n (AVX512-BF16 when the CPU has it, else scalar; same bits).
void bf16_from_floats(uint16_t *dst, const float *src, size_t n);
