// Gradient communication (worker/grad_sync.h, worker/ring_allreduce.h) under mpirun -n P:
// random gradients, different on every rank, summed through grad_sync in buckets (reported
// back to front in uneven ranges, as backward does) for every wire and way (fp32 ring, fp32
// MPI = libnbc, bf16 ring, bf16 MPI_Op) x allreduce (flat, hierarchical) x overlap, and
// checked against an fp64 sum that every rank computes from every rank's inputs:
//   fp32: |result - exact| <= gamma_{P-1}(2^-24) * sum|g|   (any order of P-1 fp32 adds)
//   bf16: |result - exact| <= gamma_P(d) * sum|g| + P * 2^-126, d = (1+2^-8)(1+2^-24) - 1
//         (ring_allreduce.h: each term is rounded at most P times, to bf16 after an fp32 add;
//         the last term covers denormals, flushed to zero by the conversion)
// where gamma_k(d) = k d / (1 - k d). Every rank must end with the same bits, a rerun with
// the same inputs must give the same bits, a flat bf16 result must be bf16 values, and
// hierarchical must equal flat within the sum of their bounds. Hierarchical runs on this one
// host (its three stages degenerate: one leader) and split as CATLIP_TEST_HOSTS=K hosts
// (worker w on host w mod K), so the reduce / leaders' allreduce / broadcast path runs for real.
// The sharded optimizer's reduce-scatter (grad_sync_options.shard_bounds, fp32 and the bf16
// ring, fp32 ring and MPI_Ireduce_scatter) is held to the same bounds on each rank's slice,
// with the same determinism, and at P=2 its fp32 sums equal the fp32 allreduce's bits (a sum of
// two terms has one order). The fp32 ring alone (ring_allreduce_start, no buckets) must give
// exactly the summation order ring_allreduce.h states, computed here in fp32.
//
//   mpirun -n P test_grad_comm                          the checks; exit 0 when all pass
//   mpirun -n P test_grad_comm --bench FLOATS REPEATS   time one reduction of FLOATS (median)
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "worker/grad_sync.h"
#include "worker/optim_shard.h"
#include "worker/ring_allreduce.h"

static int rank_, size_, failures;

static void check(int ok, const char *what) {
    int all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank_ == 0) printf("%s %s\n", all ? "ok   " : "FAIL ", what);
    if (!all) failures++;
}

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Rank r's gradient i: signed values over many magnitudes (2^-12 .. 2^4, so sums cancel), a
// few zeros and a few denormals.
static float gradient(int r, size_t i) {
    uint64_t h = splitmix(((uint64_t)r << 40) ^ i ^ 0x5eedULL);
    double u = (double)(h >> 11) / 9007199254740992.0;  // [0, 1)
    int kind = (int)(h & 63);
    if (kind == 0) return 0.0f;
    if (kind == 1) return (float)((u - 0.5) * 1e-39);
    int e = (int)((h >> 6) % 17) - 12;
    return (float)((2 * u - 1) * ldexp(1.0, e));
}

static double gamma_k(int k, double d) {
    return k * d / (1 - k * d);
}

// The bound on |result - exact sum| of one gradient whose inputs' magnitudes sum to abs_sum.
static double error_bound(enum grad_wire wire, double abs_sum) {
    if (wire == GRAD_WIRE_FP32) return gamma_k(size_ - 1, ldexp(1, -24)) * abs_sum;
    const double d = (1 + ldexp(1, -8)) * (1 + ldexp(1, -24)) - 1;
    return gamma_k(size_, d) * abs_sum + size_ * ldexp(1, -126);
}

static uint64_t digest(const float *x, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *b = (const uint8_t *)x;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static int same_everywhere(const float *x, size_t n) {
    uint64_t d = digest(x, n), lo, hi;
    MPI_Allreduce(&d, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&d, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

// One step of grad_sync over grads: ranges reported back to front in uneven pieces.
static double sync_step(struct grad_sync *s, float *grads, size_t n) {
    (void)grads;
    grad_sync_begin(s);
    double t0 = MPI_Wtime();
    size_t end = n, piece = 0;
    while (end > 0) {
        size_t len = 1 + (splitmix(piece++) % 3000);
        size_t begin = end > len ? end - len : 0;
        grad_sync_ready(s, begin, end);
        end = begin;
    }
    grad_sync_finish(s);
    return MPI_Wtime() - t0;
}

struct variant {
    const char *name;
    enum grad_wire wire;
    enum grad_collectives collectives;
};

static const struct variant variants[] = {
    {"fp32 ring", GRAD_WIRE_FP32, GRAD_COLLECTIVES_RING},
    {"fp32 MPI", GRAD_WIRE_FP32, GRAD_COLLECTIVES_MPI},
    {"bf16 ring", GRAD_WIRE_BF16, GRAD_COLLECTIVES_RING},
    {"bf16 MPI_Op", GRAD_WIRE_BF16, GRAD_COLLECTIVES_MPI},
};

static void set_hosts(int k) {
    char v[16];
    snprintf(v, sizeof v, "%d", k);
    if (k > 0)
        setenv("CATLIP_TEST_HOSTS", v, 1);
    else
        unsetenv("CATLIP_TEST_HOSTS");
}

// Runs one configuration, checks it against the exact sum, returns the result (malloc'ed).
static float *run_checked(const struct variant *v, enum grad_allreduce allreduce, int overlap,
                          int test_hosts, const double *exact, const double *abs_sum, size_t n) {
    set_hosts(test_hosts);
    struct grad_sync_options o = grad_sync_default_options();
    o.bucket_floats = 7919;  // many buckets in flight, none aligned to the ring's chunks
    o.overlap = overlap;
    o.wire = v->wire;
    o.collectives = v->collectives;
    o.allreduce = allreduce;
    float *g = xmalloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = gradient(rank_, i);
    struct grad_sync s;
    grad_sync_init_options(&s, MPI_COMM_WORLD, g, &o, NULL);
    char what[256], desc[160];
    snprintf(what, sizeof what, "P=%d n=%zu %s, overlap %d, CATLIP_TEST_HOSTS=%d", size_, n,
             grad_sync_describe(&s, desc, sizeof desc), overlap, test_hosts);
    sync_step(&s, g, n);

    const int bf16 = v->wire == GRAD_WIRE_BF16;
    double worst = 0.0;  // largest error / bound
    int within = 1, bf16_values = 1;
    for (size_t i = 0; i < n; i++) {
        double bound = error_bound(v->wire, abs_sum[i]);
        double err = fabs((double)g[i] - exact[i]);
        if (err > bound) within = 0;
        if (bound > 0 && err / bound > worst) worst = err / bound;
        uint32_t bits;
        memcpy(&bits, &g[i], sizeof bits);
        if (bits & 0xffffu) bf16_values = 0;
    }
    double worst_all;
    MPI_Allreduce(&worst, &worst_all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    char line[512];
    snprintf(line, sizeof line, "%s: within the bound of the fp64 sum (worst %.3f of it)", what,
             worst_all);
    check(within, line);
    snprintf(line, sizeof line, "%s: every rank holds the same bits", what);
    check(same_everywhere(g, n), line);
    if (bf16 && !s.hierarchical && size_ > 1) {
        snprintf(line, sizeof line, "%s: results are bf16 values", what);
        check(bf16_values, line);
    }
    if (test_hosts > 1 && allreduce == GRAD_ALLREDUCE_HIERARCHICAL) {
        int expect_hosts = test_hosts < size_ ? test_hosts : size_;
        snprintf(line, sizeof line, "%s: split into %d hosts, hierarchical", what, expect_hosts);
        check(s.hierarchical && s.hosts == expect_hosts, line);
    }
    // The same inputs again (buffers reused from the first step): the same bits.
    float *first = xmalloc(n * sizeof *first);
    memcpy(first, g, n * sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = gradient(rank_, i);
    sync_step(&s, g, n);
    snprintf(line, sizeof line, "%s: a second step gives the same bits", what);
    check(memcmp(first, g, n * sizeof *g) == 0, line);
    free(first);
    grad_sync_free(&s);
    set_hosts(0);
    return g;
}

// The sharded optimizer's reduce-scatter: this rank's slice (optim_shard_bounds) within the
// bound of the exact sum, the same bits on a second step, and at P=2 (fp32) the allreduce's
// bits (flat: the fp32 flat allreduce's result).
static void run_sharded(const struct variant *v, int overlap, const double *exact,
                        const double *abs_sum, size_t n, const float *flat) {
    size_t *bounds = xmalloc((size_t)(size_ + 1) * sizeof *bounds);
    optim_shard_bounds(n, size_, bounds);
    struct grad_sync_options o = grad_sync_default_options();
    o.bucket_floats = 7919;
    o.overlap = overlap;
    o.wire = v->wire;
    o.collectives = v->collectives;
    o.allreduce = GRAD_ALLREDUCE_FLAT;
    o.shard_bounds = bounds;
    float *g = xmalloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = gradient(rank_, i);
    struct grad_sync s;
    grad_sync_init_options(&s, MPI_COMM_WORLD, g, &o, NULL);
    char what[256], desc[160], line[512];
    snprintf(what, sizeof what, "P=%d n=%zu %s, overlap %d", size_, n,
             grad_sync_describe(&s, desc, sizeof desc), overlap);
    sync_step(&s, g, n);
    const size_t b = bounds[rank_], e = bounds[rank_ + 1];
    int within = 1, same_as_flat = 1;
    for (size_t i = b; i < e; i++) {
        if (fabs((double)g[i] - exact[i]) > error_bound(v->wire, abs_sum[i])) within = 0;
        if (memcmp(&g[i], &flat[i], sizeof *g)) same_as_flat = 0;
    }
    snprintf(line, sizeof line, "%s: each rank's slice within the bound of the fp64 sum", what);
    check(within, line);
    if (size_ == 2 && v->wire == GRAD_WIRE_FP32) {
        snprintf(line, sizeof line, "%s: the slice holds the fp32 allreduce's bits", what);
        check(same_as_flat, line);
    }
    float *first = xmalloc((e - b + 1) * sizeof *first);
    memcpy(first, g + b, (e - b) * sizeof *g);
    for (size_t i = 0; i < n; i++) g[i] = gradient(rank_, i);
    sync_step(&s, g, n);
    snprintf(line, sizeof line, "%s: a second step gives the same bits", what);
    check(memcmp(first, g + b, (e - b) * sizeof *g) == 0, line);
    free(first);
    grad_sync_free(&s);
    free(g);
    free(bounds);
}

// Every variant on n gradients: n = 100003 gives many buckets; n = 3 one bucket smaller than
// the ring's rank count (empty chunks).
static void run_checks(size_t n) {
    double *exact = xmalloc(n * sizeof *exact), *abs_sum = xmalloc(n * sizeof *abs_sum);
    for (size_t i = 0; i < n; i++) {
        exact[i] = abs_sum[i] = 0;
        for (int r = 0; r < size_; r++) {
            exact[i] += gradient(r, i);
            abs_sum[i] += fabs(gradient(r, i));
        }
    }
    int hosts_splits[3] = {0, 2, 3};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        for (int overlap = 1; overlap >= 0; overlap--) {
            float *flat =
                run_checked(&variants[v], GRAD_ALLREDUCE_FLAT, overlap, 0, exact, abs_sum, n);
            // bf16's reduce-scatter is the ring whatever the collectives: run it once.
            if (variants[v].wire == GRAD_WIRE_FP32 ||
                variants[v].collectives == GRAD_COLLECTIVES_RING)
                run_sharded(&variants[v], overlap, exact, abs_sum, n, flat);
            for (int h = 0; h < 3; h++) {
                int k = hosts_splits[h];
                if (k >= size_ + 1) continue;
                float *hier = run_checked(&variants[v], GRAD_ALLREDUCE_HIERARCHICAL, overlap, k,
                                          exact, abs_sum, n);
                // Both within their bound of the exact sum, so within twice it of each other.
                int close = 1;
                for (size_t i = 0; i < n; i++)
                    if (fabs((double)hier[i] - flat[i]) >
                        2 * error_bound(variants[v].wire, abs_sum[i]))
                        close = 0;
                char line[256];
                snprintf(line, sizeof line,
                         "P=%d n=%zu %s, overlap %d: hierarchical (CATLIP_TEST_HOSTS=%d) = "
                         "flat within the bounds",
                         size_, n, variants[v].name, overlap, k);
                check(close, line);
                free(hier);
            }
            free(flat);
        }
    }
    free(exact);
    free(abs_sum);
}

// The fp32 ring on its own: chunk c of the n values ([n c / P, n (c+1) / P)) is summed
// ((g_c + g_{c+1}) + g_{c+2}) + ... + g_{c-1} (ring_allreduce.h), the same bits on every rank;
// the reduce-scatter's slice of rank r is its chunk r+1, summed from rank r+1's term.
static void check_ring_order(size_t n) {
    MPI_Comm comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    size_t *bounds = xmalloc((size_t)(size_ + 1) * sizeof *bounds);
    optim_shard_bounds(n, size_, bounds);
    for (int scatter = 0; scatter <= 1; scatter++) {
        float *x = xmalloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++) x[i] = gradient(rank_, i);
        struct ring_allreduce a;
        memset(&a, 0, sizeof a);
        if (scatter)
            ring_reduce_scatter_start(&a, RING_FP32, comm, 1, x, n, bounds);
        else
            ring_allreduce_start(&a, RING_FP32, RING_METHOD_RING, comm, 1, MPI_OP_NULL, x, n);
        while (!ring_allreduce_test(&a)) {
        }
        const size_t b = scatter ? bounds[rank_] : 0, e = scatter ? bounds[rank_ + 1] : n;
        int same = 1;
        for (size_t i = b; i < e; i++) {
            int first = (rank_ + 1) % size_;
            if (!scatter)
                for (first = 0; n * (size_t)(first + 1) / (size_t)size_ <= i;) first++;
            float sum = gradient(first, i);
            for (int j = 1; j < size_; j++) sum = gradient((first + j) % size_, i) + sum;
            if (memcmp(&sum, &x[i], sizeof sum)) same = 0;
        }
        char line[160];
        snprintf(line, sizeof line, "P=%d n=%zu fp32 ring %s: the stated summation order's bits",
                 size_, n, scatter ? "reduce-scatter" : "allreduce");
        check(same, line);
        if (!scatter) {
            snprintf(line, sizeof line,
                     "P=%d n=%zu fp32 ring allreduce: every rank holds the "
                     "same bits",
                     size_, n);
            check(same_everywhere(x, n), line);
        }
        ring_allreduce_free(&a);
        free(x);
    }
    free(bounds);
    MPI_Comm_free(&comm);
}

// The ring's allgather alone (the sharded optimizer's weights): rank r starts with only its
// slice [bounds[r], bounds[r+1]) correct (the rest garbage), every rank must end with every
// rank's slice, bit for bit. Slices as optim_shard_bounds makes them, and uneven ones with
// an empty slice (rank 0's) and one that is most of the buffer.
static void check_ring_allgather(size_t n) {
    MPI_Comm comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    size_t *bounds = xmalloc((size_t)(size_ + 1) * sizeof *bounds);
    for (int uneven = 0; uneven <= 1; uneven++) {
        if (uneven) {
            bounds[0] = bounds[1] = 0;
            for (int k = 2; k <= size_; k++) bounds[k] = n - (n / 8) * (size_t)(size_ - k) / size_;
        } else {
            optim_shard_bounds(n, size_, bounds);
        }
        float *x = xmalloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = i >= bounds[rank_] && i < bounds[rank_ + 1] ? gradient(rank_, i) : NAN;
        struct ring_allreduce a;
        memset(&a, 0, sizeof a);
        for (int again = 0; again <= 1; again++) {  // the second use reuses a's buffers
            ring_allgather_start(&a, comm, 7, x, n, bounds);
            while (!ring_allreduce_test(&a)) {
            }
        }
        int same = 1;
        for (int r = 0; r < size_; r++)
            for (size_t i = bounds[r]; i < bounds[r + 1]; i++) {
                float want = gradient(r, i);
                if (memcmp(&want, &x[i], sizeof want)) same = 0;
            }
        char line[160];
        snprintf(line, sizeof line, "P=%d n=%zu ring allgather (%s slices): every slice's bits",
                 size_, n, uneven ? "uneven, one empty" : "the shards'");
        check(same, line);
        ring_allreduce_free(&a);
        free(x);
    }
    free(bounds);
    MPI_Comm_free(&comm);
}

// auto: flat on one host; hierarchical when split into hosts with several workers each.
static void check_auto(void) {
    struct grad_sync_options o = grad_sync_default_options();
    float g[4] = {0};
    struct grad_sync s;
    grad_sync_init_options(&s, MPI_COMM_WORLD, g, &o, NULL);
    check(!s.hierarchical && s.hosts == 1, "auto on one host: flat");
    grad_sync_free(&s);
    set_hosts(2);
    grad_sync_init_options(&s, MPI_COMM_WORLD, g, &o, NULL);
    char line[128];
    snprintf(line, sizeof line, "auto, P=%d as 2 hosts: %s", size_,
             size_ > 2 ? "hierarchical" : "flat (one worker per host)");
    check(s.hierarchical == (size_ > 2) && s.hosts == 2, line);
    grad_sync_free(&s);
    set_hosts(0);
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median time of one reduction of n gradients in 4 MiB buckets reported all at once (backward
// has finished: what grad_sync_finish leaves exposed without overlap), per variant. The
// variants take turns within each repeat, so a machine's load changing over the run falls on
// all of them alike.
static void run_bench(size_t n, int repeats) {
    enum { CONFIGS = 2 * sizeof variants / sizeof variants[0] };
    const char *env_hosts = getenv("CATLIP_TEST_HOSTS");
    float *input = xmalloc(n * sizeof *input);
    for (size_t i = 0; i < n; i++) input[i] = gradient(rank_, i);
    struct grad_sync s[CONFIGS];
    float *g[CONFIGS];
    double *times = xmalloc((size_t)CONFIGS * (size_t)repeats * sizeof *times);
    for (int c = 0; c < CONFIGS; c++) {
        struct grad_sync_options o = grad_sync_default_options();
        o.wire = variants[c / 2].wire;
        o.collectives = variants[c / 2].collectives;
        o.allreduce = c % 2 ? GRAD_ALLREDUCE_HIERARCHICAL : GRAD_ALLREDUCE_FLAT;
        g[c] = xmalloc(n * sizeof *g[c]);
        grad_sync_init_options(&s[c], MPI_COMM_WORLD, g[c], &o, NULL);
    }
    for (int r = -1; r < repeats; r++) {  // one warm-up round
        for (int c = 0; c < CONFIGS; c++) {
            memcpy(g[c], input, n * sizeof *input);
            MPI_Barrier(MPI_COMM_WORLD);
            grad_sync_begin(&s[c]);
            double t0 = MPI_Wtime();
            for (size_t end = n; end > 0;) {
                size_t begin = end > s[c].bucket_floats ? end - s[c].bucket_floats : 0;
                grad_sync_ready(&s[c], begin, end);
                end = begin;
            }
            grad_sync_finish(&s[c]);
            double t = MPI_Wtime() - t0, slowest;
            MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r >= 0) times[c * repeats + r] = slowest;
        }
    }
    for (int c = 0; c < CONFIGS; c++) {
        double *t = times + c * repeats;
        qsort(t, (size_t)repeats, sizeof *t, compare_double);
        char desc[160];
        if (rank_ == 0)
            printf(
                "P=%d %zu floats (%.1f MB fp32), CATLIP_TEST_HOSTS=%s, %s: median %.2f ms "
                "(min %.2f)\n",
                size_, n, n * 4e-6, env_hosts ? env_hosts : "-",
                grad_sync_describe(&s[c], desc, sizeof desc), t[repeats / 2] * 1e3, t[0] * 1e3);
        grad_sync_free(&s[c]);
        free(g[c]);
    }
    free(times);
    free(input);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (argc == 4 && !strcmp(argv[1], "--bench")) {
        run_bench((size_t)atol(argv[2]), atoi(argv[3]));
    } else {
        run_checks(100003);
        run_checks(3);
        check_ring_order(100003);
        check_ring_order(3);
        check_ring_allgather(100003);
        check_ring_allgather(3);
        check_auto();
        if (rank_ == 0) printf("%d failure(s)\n", failures);
    }
    MPI_Finalize();
    return failures ? 1 : 0;
}
