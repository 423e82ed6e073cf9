// Run-time choice of the kernel table: the level core/cpu.h chooses (the best the CPU and OS
// support, or the one CATLIP_ISA names; an unsupported or unknown name exits 2). Chosen once,
// on the first call, then fixed for the process.
#include "core/cpu.h"
#include "nn/kernels.h"

static const struct kernels *const tables[] = {&kernels_scalar, &kernels_avx2, &kernels_avx512};

const struct kernels *kernels_by_name(const char *name) {
    int isa = cpu_isa_from_name(name);
    return isa >= 0 && cpu_isa_supported((enum cpu_isa)isa) ? tables[isa] : NULL;
}

const struct kernels *kernels_active(void) { return tables[cpu_isa_chosen()]; }
