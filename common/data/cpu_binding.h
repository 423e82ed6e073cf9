// Where the data pipeline's decode threads run: hwloc-bound to cores the compute pool does
// not use, when the process's cpuset has enough cores.
//
// The compute pool (core/pool.h) binds its thread i to the i-th core of the cpuset. Decode
// thread i goes on core (compute_threads + i) when compute_threads + decode_threads cores are
// available; otherwise the decode threads stay unbound and the OS places them (binding them
// onto the compute cores would make a decode thread and a compute thread fight for one core).
#pragma once

struct cpu_binding;

// compute_threads < 0: never bind.
struct cpu_binding *cpu_binding_plan(int compute_threads, int decode_threads);
// Binds the calling thread as decode thread i (no-op when unbound).
void cpu_binding_apply(const struct cpu_binding *binding, int i);
// "2 decode threads bound to PUs 2,3" or "... unbound (only 2 cores for 1 compute + 2 decode)".
const char *cpu_binding_describe(const struct cpu_binding *binding);
void cpu_binding_free(struct cpu_binding *binding);
