// CPU feature detection with the CATLIP_CPU_DISABLE mask (see cpu.h).
#include "core/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

static const char *const feature_names[CPU_FEATURE_COUNT] = {"sse42", "avx2", "avx512",
                                                             "avx512_bf16"};

static bool hardware[CPU_FEATURE_COUNT];
static bool enabled[CPU_FEATURE_COUNT];
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

// __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XGETBV).
static void detect_hardware(void) {
    __builtin_cpu_init();
    hardware[CPU_SSE42] = __builtin_cpu_supports("sse4.2");
    hardware[CPU_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    hardware[CPU_AVX512] = hardware[CPU_AVX2] && __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    hardware[CPU_AVX512_BF16] = hardware[CPU_AVX512] && __builtin_cpu_supports("avx512bf16");
}

// Applies CATLIP_CPU_DISABLE: a comma-separated list of feature names.
static void apply_disable_mask(void) {
    const char *mask = getenv("CATLIP_CPU_DISABLE");
    if (mask == NULL) return;
    const char *p = mask;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            int found = -1;
            for (int f = 0; f < CPU_FEATURE_COUNT; f++)
                if (strlen(feature_names[f]) == n && strncmp(p, feature_names[f], n) == 0)
                    found = f;
            if (found < 0)
                catlip_die(
                    "CATLIP_CPU_DISABLE=%s: unknown feature '%.*s' (choices: sse42, avx2, "
                    "avx512, avx512_bf16)",
                    mask, (int)n, p);
            enabled[found] = false;
        }
        p += n;
        if (*p == ',') p++;
    }
    // The wider paths build on the narrower ones.
    if (!enabled[CPU_AVX2]) enabled[CPU_AVX512] = false;
    if (!enabled[CPU_AVX512]) enabled[CPU_AVX512_BF16] = false;
}

static void detect(void) {
    detect_hardware();
    for (int f = 0; f < CPU_FEATURE_COUNT; f++) enabled[f] = hardware[f];
    apply_disable_mask();
}

bool cpu_has(enum cpu_feature f) {
    CATLIP_ASSERT(f >= 0 && f < CPU_FEATURE_COUNT);
    pthread_once(&detect_once, detect);
    return enabled[f];
}

const char *cpu_feature_name(enum cpu_feature f) {
    CATLIP_ASSERT(f >= 0 && f < CPU_FEATURE_COUNT);
    return feature_names[f];
}

// ---- CATLIP_ISA

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

bool cpu_isa_supported(enum cpu_isa isa) {
    switch (isa) {
        case CPU_ISA_SCALAR: return true;
        case CPU_ISA_AVX2: return cpu_has(CPU_AVX2);
        case CPU_ISA_AVX512: return cpu_has(CPU_AVX512);
    }
    return false;
}

enum cpu_isa cpu_isa_best(void) {
    return cpu_isa_supported(CPU_ISA_AVX512) ? CPU_ISA_AVX512
           : cpu_isa_supported(CPU_ISA_AVX2) ? CPU_ISA_AVX2
                                             : CPU_ISA_SCALAR;
}

const char *cpu_isa_name(enum cpu_isa isa) {
    return isa_names[isa];
}

int cpu_isa_from_name(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, isa_names[i])) return i;
    return -1;
}

static enum cpu_isa isa_chosen;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

static void choose_isa(void) {
    const char *forced = getenv("CATLIP_ISA");
    if (!forced || !forced[0]) {
        isa_chosen = cpu_isa_best();
        return;
    }
    int isa = cpu_isa_from_name(forced);
    if (isa < 0 || !cpu_isa_supported((enum cpu_isa)isa))
        catlip_die("CATLIP_ISA=%s: %s (choices: scalar, avx2, avx512)", forced,
                   isa < 0 ? "unknown instruction set" : "this CPU does not support it");
    isa_chosen = (enum cpu_isa)isa;
}

enum cpu_isa cpu_isa_chosen(void) {
    pthread_once(&isa_once, choose_isa);
    return isa_chosen;
}
