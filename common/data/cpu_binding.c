#include "data/cpu_binding.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/check.h"

struct cpu_binding {
    hwloc_topology_t topology;
    int nthreads;
    hwloc_bitmap_t *sets;  // (nthreads) or NULL when unbound
    char description[256];
};

struct cpu_binding *cpu_binding_plan(int compute_threads, int decode_threads) {
    struct cpu_binding *b = xcalloc(1, sizeof *b);
    b->nthreads = decode_threads;
    int w = snprintf(b->description, sizeof b->description, "%d decode thread%s", decode_threads,
                     decode_threads == 1 ? "" : "s");
    if (compute_threads < 0) {
        snprintf(b->description + w, sizeof b->description - (size_t)w, " unbound");
        return b;
    }
    hwloc_topology_init(&b->topology);
    hwloc_topology_load(b->topology);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (hwloc_get_cpubind(b->topology, set, HWLOC_CPUBIND_PROCESS) != 0 || hwloc_bitmap_iszero(set))
        hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(b->topology));
    // The cores of the cpuset in the order the compute pool numbers them.
    int depth = hwloc_get_type_or_below_depth(b->topology, HWLOC_OBJ_CORE);
    int n = hwloc_get_nbobjs_by_depth(b->topology, depth), ncores = 0;
    hwloc_bitmap_t *cores = xcalloc((size_t)(n > 0 ? n : 1), sizeof *cores);
    for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_depth(b->topology, depth, i);
        if (!obj->cpuset || !hwloc_bitmap_intersects(obj->cpuset, set)) continue;
        cores[ncores] = hwloc_bitmap_alloc();
        hwloc_bitmap_and(cores[ncores], obj->cpuset, set);
        ncores++;
    }
    if (compute_threads + decode_threads <= ncores) {
        b->sets = xcalloc((size_t)decode_threads, sizeof *b->sets);
        w += snprintf(b->description + w, sizeof b->description - (size_t)w, " bound to PUs");
        for (int i = 0; i < decode_threads; i++) {
            b->sets[i] = hwloc_bitmap_dup(cores[compute_threads + i]);
            char buf[64];
            hwloc_bitmap_list_snprintf(buf, sizeof buf, b->sets[i]);
            if (w < (int)sizeof b->description)
                w += snprintf(b->description + w, sizeof b->description - (size_t)w, "%s%s", i ? "," : " ", buf);
        }
    } else {
        snprintf(b->description + w, sizeof b->description - (size_t)w,
                 " unbound (%d cores for %d compute + %d decode threads)", ncores, compute_threads,
                 decode_threads);
    }
    for (int i = 0; i < ncores; i++) hwloc_bitmap_free(cores[i]);
    free(cores);
    hwloc_bitmap_free(set);
    return b;
}

void cpu_binding_apply(const struct cpu_binding *b, int i) {
    if (b && b->sets && i >= 0 && i < b->nthreads)
        hwloc_set_cpubind(b->topology, b->sets[i], HWLOC_CPUBIND_THREAD);
}

const char *cpu_binding_describe(const struct cpu_binding *b) { return b->description; }

void cpu_binding_free(struct cpu_binding *b) {
    if (!b) return;
    if (b->sets) {
        for (int i = 0; i < b->nthreads; i++) hwloc_bitmap_free(b->sets[i]);
        free(b->sets);
    }
    if (b->topology) hwloc_topology_destroy(b->topology);
    free(b);
}
