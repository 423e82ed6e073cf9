#include "core/pool.h"

#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/log.h"

void openblas_set_num_threads(int num_threads);

struct pool_thread {
    struct pool *pool;
    pthread_t handle;
    int ith;
};

struct pool {
    int nthreads;
    struct pool_thread *threads;
    hwloc_topology_t topology;
    hwloc_bitmap_t *core_sets;  // per thread; NULL entries when unbound
    char description[256];

    pthread_mutex_t lock;
    pthread_cond_t wake;    // workers wait here for a new generation
    pthread_cond_t done;    // the caller waits here for the last worker
    unsigned generation;    // bumped for each pool_run; guarded by lock
    atomic_uint remaining;  // workers still running this generation
    int stopping;
    pool_task_fn fn;
    void *ctx;
    atomic_uint published;  // generation visible to spinning workers
    double spin;            // seconds a waiting thread polls before it sleeps
    // pool_profile_start: per-thread seconds inside the current region's fn, and the totals
    int profiling;
    double *busy;
    struct pool_profile_entry profile[POOL_PROFILE_MAX];
    int profile_count;
};

void pool_profile_start(struct pool *pool) {
    if (!pool->busy) pool->busy = xcalloc((size_t)pool->nthreads, sizeof *pool->busy);
    memset(pool->profile, 0, sizeof pool->profile);
    pool->profile_count = 0;
    pool->profiling = 1;
}

void pool_profile_stop(struct pool *pool) { pool->profiling = 0; }

int pool_profile_entries(const struct pool *pool, const struct pool_profile_entry **entries) {
    *entries = pool->profile;
    return pool->profile_count;
}

static void profile_add(struct pool *pool, pool_task_fn fn, double wall, double flops) {
    struct pool_profile_entry *e = NULL;
    for (int i = 0; i < pool->profile_count && !e; i++)
        if (pool->profile[i].fn == fn) e = &pool->profile[i];
    if (!e && pool->profile_count < POOL_PROFILE_MAX) {
        e = &pool->profile[pool->profile_count++];
        e->fn = fn;
    }
    if (!e) return;
    double max = 0;
    e->calls++;
    e->wall += wall;
    e->flops += flops;
    for (int i = 0; i < pool->nthreads; i++) {
        e->busy += pool->busy[i];
        max = pool->busy[i] > max ? pool->busy[i] : max;
    }
    e->busy_max += max;
}

// fn(ctx, ith, nth), timed into busy[ith] when profiling.
static void run_timed(struct pool *pool, pool_task_fn fn, void *ctx, int ith) {
    if (!pool->profiling) {
        fn(ctx, ith, pool->nthreads);
        return;
    }
    double t0 = time_now();
    fn(ctx, ith, pool->nthreads);
    pool->busy[ith] = time_now() - t0;
}

// An idle worker, and the caller at a join, poll for up to pool->spin seconds before they
// sleep. A step issues hundreds of regions back to back, with gaps (a thread done early, a
// serial sum) of up to milliseconds. On a virtual machine a sleeping thread idles its vCPU
// and the host may give the core away: waking one took ~40 us here (a poll sees work in
// ~0.2), and 3-80 ms at times while the host was busy. Every SPIN_CHECK polls (~20 us) the
// clock is read and the core offered to other threads (sched_yield), so ranks that share
// cores still make progress.
enum { SPIN_CHECK = 1024 };

// The polling budget: CATLIP_POOL_SPIN_MS (0-10000; 0 sleeps at once), else 50 ms, or 0.4 ms
// when this pool alone has more threads than cores (they would only poll each other out).
static double spin_seconds(int own_cores) {
    const char *env = getenv("CATLIP_POOL_SPIN_MS");
    if (!env || !env[0]) return own_cores ? 50e-3 : 0.4e-3;
    char *end;
    double ms = strtod(env, &end);
    if (*end || !(ms >= 0 && ms <= 10000))
        catlip_die("CATLIP_POOL_SPIN_MS=%s: not a number of milliseconds from 0 to 10000", env);
    return ms * 1e-3;
}

// Polls *v until (*v == x) == until_equal; 1 when that came within `seconds`, else 0.
static int spin_on(const atomic_uint *v, unsigned x, int until_equal, double seconds) {
    double deadline = 0.0;
    for (unsigned i = 1;; i++) {
        if ((atomic_load_explicit(v, memory_order_acquire) == x) == until_equal) return 1;
        if (seconds <= 0.0) return 0;
        __builtin_ia32_pause();
        if (i % SPIN_CHECK == 0) {
            double now = time_now();
            if (deadline == 0.0) deadline = now + seconds;  // the first check starts the clock
            if (now > deadline) return 0;
            sched_yield();
        }
    }
}

static void bind_current_thread(struct pool *pool, int ith) {
    if (pool->core_sets && pool->core_sets[ith])
        hwloc_set_cpubind(pool->topology, pool->core_sets[ith], HWLOC_CPUBIND_THREAD);
}

static void *pool_thread_main(void *arg) {
    struct pool_thread *self = arg;
    struct pool *pool = self->pool;
    bind_current_thread(pool, self->ith);
    unsigned seen = 0;
    for (;;) {
        spin_on(&pool->published, seen, 0, pool->spin);
        pthread_mutex_lock(&pool->lock);
        while (pool->generation == seen && !pool->stopping) pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->stopping) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        seen = pool->generation;
        pool_task_fn fn = pool->fn;
        void *ctx = pool->ctx;
        pthread_mutex_unlock(&pool->lock);

        run_timed(pool, fn, ctx, self->ith);

        // The caller spins on `remaining` (see pool_run); only the last worker takes the lock, to
        // wake it in case it went to sleep.
        if (atomic_fetch_sub_explicit(&pool->remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

static hwloc_bitmap_t process_cpuset(hwloc_topology_t topology) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (hwloc_get_cpubind(topology, set, HWLOC_CPUBIND_PROCESS) != 0 || hwloc_bitmap_iszero(set))
        hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(topology));
    return set;
}

// The cores whose PUs intersect the cpuset, as cpusets restricted to it.
static int cores_in_cpuset(hwloc_topology_t topology, hwloc_const_bitmap_t set,
                           hwloc_bitmap_t **out) {
    int depth = hwloc_get_type_or_below_depth(topology, HWLOC_OBJ_CORE);
    int n = hwloc_get_nbobjs_by_depth(topology, depth), count = 0;
    hwloc_bitmap_t *cores = xcalloc((size_t)(n > 0 ? n : 1), sizeof *cores);
    for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_depth(topology, depth, i);
        if (!obj->cpuset || !hwloc_bitmap_intersects(obj->cpuset, set)) continue;
        cores[count] = hwloc_bitmap_alloc();
        hwloc_bitmap_and(cores[count], obj->cpuset, set);
        count++;
    }
    *out = cores;
    return count;
}

int pool_available_cores(void) {
    hwloc_topology_t topology;
    hwloc_topology_init(&topology);
    hwloc_topology_load(topology);
    hwloc_bitmap_t set = process_cpuset(topology);
    hwloc_bitmap_t *cores;
    int n = cores_in_cpuset(topology, set, &cores);
    for (int i = 0; i < n; i++) hwloc_bitmap_free(cores[i]);
    free(cores);
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topology);
    return n > 0 ? n : 1;
}

struct pool *pool_create(int nthreads, int bind) { return pool_create_at(nthreads, bind, 0); }

struct pool *pool_create_at(int nthreads, int bind, int first_core) {
    struct pool *pool = xcalloc(1, sizeof *pool);
    hwloc_topology_init(&pool->topology);
    hwloc_topology_load(pool->topology);
    hwloc_bitmap_t set = process_cpuset(pool->topology);
    hwloc_bitmap_t *cores;
    int ncores = cores_in_cpuset(pool->topology, set, &cores);
    if (ncores < 1) ncores = 1;
    if (nthreads <= 0) {
        nthreads = ncores;
        const char *slurm = getenv("SLURM_CPUS_PER_TASK");
        if (slurm && atoi(slurm) > 0 && atoi(slurm) < nthreads) nthreads = atoi(slurm);
    }
    pool->nthreads = nthreads;
    int w = snprintf(pool->description, sizeof pool->description, "%d thread%s", nthreads,
                     nthreads == 1 ? "" : "s");
    if (bind && cores && cores[0]) {
        // More threads than cores would share cores: bind only when each gets its own.
        if (nthreads <= ncores) {
            pool->core_sets = xcalloc((size_t)nthreads, sizeof *pool->core_sets);
            w += snprintf(pool->description + w, sizeof pool->description - (size_t)w, " bound to PUs");
            for (int i = 0; i < nthreads; i++) {
                int core = (first_core + i) % ncores;
                pool->core_sets[i] = hwloc_bitmap_dup(cores[core]);
                char buf[64];
                hwloc_bitmap_list_snprintf(buf, sizeof buf, cores[core]);
                w += snprintf(pool->description + w, sizeof pool->description - (size_t)w,
                              "%s%s", i ? "," : " ", buf);
                if (w >= (int)sizeof pool->description) w = (int)sizeof pool->description - 1;
            }
        } else {
            snprintf(pool->description + w, sizeof pool->description - (size_t)w,
                     " unbound (only %d cores in the cpuset)", ncores);
        }
    }
    for (int i = 0; i < ncores; i++)
        if (cores[i]) hwloc_bitmap_free(cores[i]);
    free(cores);
    hwloc_bitmap_free(set);

    openblas_set_num_threads(1);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->published, 0);
    pool->spin = spin_seconds(nthreads <= ncores);
    bind_current_thread(pool, 0);
    pool->threads = xcalloc((size_t)nthreads, sizeof *pool->threads);
    for (int i = 1; i < nthreads; i++) {
        pool->threads[i].pool = pool;
        pool->threads[i].ith = i;
        if (pthread_create(&pool->threads[i].handle, NULL, pool_thread_main, &pool->threads[i]) != 0)
            catlip_die("cannot start compute thread %d of %d", i, nthreads);
    }
    return pool;
}

void pool_run_flops(struct pool *pool, pool_task_fn fn, void *ctx, double flops) {
    double start = pool->profiling ? time_now() : 0.0;
    if (pool->nthreads == 1) {
        run_timed(pool, fn, ctx, 0);
        if (pool->profiling) profile_add(pool, fn, time_now() - start, flops);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->remaining, (unsigned)pool->nthreads - 1, memory_order_relaxed);
    pool->generation++;
    atomic_store_explicit(&pool->published, pool->generation, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    run_timed(pool, fn, ctx, 0);

    // Join: spin first (regions end within microseconds of each other when the split is even;
    // a futex sleep and wake-up per region costs more than that), then sleep.
    if (!spin_on(&pool->remaining, 0, 1, pool->spin)) {
        pthread_mutex_lock(&pool->lock);
        while (atomic_load_explicit(&pool->remaining, memory_order_acquire) != 0)
            pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
    if (pool->profiling) profile_add(pool, fn, time_now() - start, flops);
}

void pool_run(struct pool *pool, pool_task_fn fn, void *ctx) { pool_run_flops(pool, fn, ctx, 0.0); }

int pool_size(const struct pool *pool) { return pool->nthreads; }
const char *pool_describe(const struct pool *pool) { return pool->description; }

void pool_destroy(struct pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    atomic_fetch_add_explicit(&pool->published, 1, memory_order_release);  // ends their polling
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->nthreads; i++) pthread_join(pool->threads[i].handle, NULL);
    if (pool->core_sets) {
        for (int i = 0; i < pool->nthreads; i++) hwloc_bitmap_free(pool->core_sets[i]);
        free(pool->core_sets);
    }
    hwloc_topology_destroy(pool->topology);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->threads);
    free(pool->busy);
    free(pool);
}
