// A fork-join compute thread pool, its threads bound to cores with hwloc.
//
// pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) — the caller
// runs ith = 0 — and returns when all have finished. Work splits are the task's own and depend
// only on (ith, nth), so results are deterministic for a given thread count.
//
// OpenBLAS is set to one thread: a matmul is split by the pool into per-thread sgemm calls,
// so BLAS threads and pool threads never compete for the same cores.
#pragma once

struct pool;
typedef void (*pool_task_fn)(void *ctx, int ith, int nth);

// nthreads <= 0: one per core in the cpuset the launcher gave this process (mpirun, srun,
// taskset), or SLURM_CPUS_PER_TASK when that is set and smaller.
// bind: pin thread i to the i-th core of that cpuset.
struct pool *pool_create(int nthreads, int bind);
// The same, starting at core `first_core` of the cpuset (modulo its size): ranks that share a
// node and a cpuset pass their local index times their thread count, so they take different
// cores instead of all piling onto the first ones.
struct pool *pool_create_at(int nthreads, int bind, int first_core);
void pool_destroy(struct pool *pool);
int pool_size(const struct pool *pool);
void pool_run(struct pool *pool, pool_task_fn fn, void *ctx);
// pool_run, and when profiling, `flops` (the region's useful floating-point operations, e.g.
// 2·M·N·K for a product) added to fn's profile entry: the phase's GFLOP/s.
void pool_run_flops(struct pool *pool, pool_task_fn fn, void *ctx, double flops);

// Per-phase profile (off until pool_profile_start; for `catlip bench step --profile`): per task
// function, the number of regions, their wall time from fork to join, and each thread's time
// inside the function, summed (busy) and the slowest thread's summed (busy_max). wall - busy_max
// is fork-join cost, busy_max - busy / nthreads is imbalance.
struct pool_profile_entry {
    pool_task_fn fn;
    long calls;
    double wall, busy, busy_max;  // seconds
    double flops;  // floating-point operations its regions declared (pool_run_flops), or 0
};
void pool_profile_start(struct pool *pool);  // (re)starts counting from zero
void pool_profile_stop(struct pool *pool);   // stops counting; the entries stay
// The entries so far (at most POOL_PROFILE_MAX task functions); valid until the next start.
int pool_profile_entries(const struct pool *pool, const struct pool_profile_entry **entries);
#define POOL_PROFILE_MAX 64

// Cores (not hardware threads) in this process's cpuset.
int pool_available_cores(void);
// One line describing the binding, e.g. "2 threads on cores 0,1".
const char *pool_describe(const struct pool *pool);

// The [begin, end) block of `n` items that thread ith of nth takes (contiguous, balanced).
static inline void pool_split(long n, int ith, int nth, long *begin, long *end) {
    long base = n / nth, extra = n % nth;
    *begin = ith * base + (ith < extra ? ith : extra);
    *end = *begin + base + (ith < extra ? 1 : 0);
}
