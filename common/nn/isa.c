// Run-time choice of the kernel table: the best the CPU (and OS) supports, or the one named by
// CATLIP_ISA=scalar|avx2|avx512 (unset or empty: automatic). Chosen once, on the first call,
// then fixed for the process.
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/cpu.h"
#include "nn/kernels.h"

static bool cpu_has_avx2(void) { return cpu_has(CPU_AVX2); }
static bool cpu_has_avx512(void) { return cpu_has(CPU_AVX512); }

const struct kernels *kernels_by_name(const char *name) {
    if (name == NULL) return NULL;
    if (strcmp(name, "scalar") == 0) return &kernels_scalar;
    if (strcmp(name, "avx2") == 0) return cpu_has_avx2() ? &kernels_avx2 : NULL;
    if (strcmp(name, "avx512") == 0) return cpu_has_avx512() ? &kernels_avx512 : NULL;
    return NULL;
}

static const struct kernels *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_active(void) {
    const char *forced = getenv("CATLIP_ISA");
    if (forced != NULL && forced[0] != '\0') {
        active = kernels_by_name(forced);
        if (active == NULL) {
            bool known = strcmp(forced, "avx2") == 0 || strcmp(forced, "avx512") == 0;
            catlip_die("CATLIP_ISA=%s: %s (choices: scalar, avx2, avx512)", forced,
                       known ? "this CPU does not support it" : "unknown instruction set");
        }
        return;
    }
    active = cpu_has_avx512() ? &kernels_avx512 : cpu_has_avx2() ? &kernels_avx2 : &kernels_scalar;
}

const struct kernels *kernels_active(void) {
    pthread_once(&active_once, choose_active);
    return active;
}
