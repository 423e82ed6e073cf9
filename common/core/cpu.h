// What the CPU can execute, asked in one place. Every run-time choice of a SIMD path (nn kernels,
// GEMM, resampler, CRC-32C) reads these, so one switch changes them all:
//
//   CATLIP_CPU_DISABLE=avx512[,avx2][,sse42][,avx512_bf16]
//
// makes catlip behave as on a CPU without those features (to test the fallbacks, to see what
// a CPU farm's older nodes will do, or to step around a path suspected of a bug). Disabling
// avx2 also disables avx512 (every AVX-512 path also uses AVX2 + FMA). An unknown name is a
// one-line error.
#pragma once
#include <stdbool.h>

enum cpu_feature {
    CPU_SSE42,        // SSE4.2 (the crc32 instruction)
    CPU_AVX2,         // AVX2 + FMA
    CPU_AVX512,       // AVX-512 F/BW/DQ/VL (what every *_avx512.c is compiled for) + AVX2/FMA
    CPU_AVX512_BF16,  // AVX512-BF16 (VDPBF16PS) on top of CPU_AVX512
    CPU_FEATURE_COUNT
};

// True when the CPU (and the OS: XGETBV) supports the feature and CATLIP_CPU_DISABLE does not
// name it. Decided once per process; safe from any thread.
bool cpu_has(enum cpu_feature f);

// The name CATLIP_CPU_DISABLE uses for f ("avx512", ...).
const char *cpu_feature_name(enum cpu_feature f);


// ---- CATLIP_ISA: one meaning for every kernel family (nn/ kernels, the data/ resampler)
//
// Unset or empty picks the widest level the CPU has (after CATLIP_CPU_DISABLE); a name picks
// that level; an unknown name, or a level this CPU lacks, is an error (one line, exit status
// 2), never a silent fallback, so that a test or benchmark that asks for a path never
// measures another one.
enum cpu_isa {
    CPU_ISA_SCALAR,
    CPU_ISA_AVX2,    // CPU_AVX2
    CPU_ISA_AVX512,  // CPU_AVX512
};

// Whether this process may run that level (cpu_has).
bool cpu_isa_supported(enum cpu_isa isa);
// The widest level supported.
enum cpu_isa cpu_isa_best(void);
// "scalar", "avx2", "avx512"; and back (-1 when unknown).
const char *cpu_isa_name(enum cpu_isa isa);
int cpu_isa_from_name(const char *name);
// CATLIP_ISA's choice as above, decided once per process (thread-safe).
enum cpu_isa cpu_isa_chosen(void);
