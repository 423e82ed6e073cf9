// What a parallel region costs the compute pool beyond its work, when the waiting thread is
// still polling and when it has gone to sleep: 2 threads (bound), `regions` empty regions,
// each after `gap_ms` of serial work on the caller (what a step's serial sums and a thread
// done early look like to the other thread).
//
//   cmake --build build --target pool_wake_bench
//   CATLIP_POOL_SPIN_MS=0 build/tests/pool_wake_bench [regions] [gap_ms]   (always asleep)
//   build/tests/pool_wake_bench [regions] [gap_ms]                         (the default budget)
//
// Prints, over the regions: the time from the fork to the second thread starting its share,
// and the whole region (fork to join), as median / p90 / p99 / max microseconds and their sum.
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/pool.h"

struct probe {
    double start[2];
};

static void record_start(void *arg, int ith, int nth) {
    (void)nth;
    struct probe *p = arg;
    if (ith < 2) p->start[ith] = time_now();
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *us, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += us[i];
    qsort(us, (size_t)n, sizeof *us, by_value);
    printf("%-28s median %8.1f  p90 %8.1f  p99 %8.1f  max %8.1f us, sum %8.1f ms\n", what,
           us[n / 2], us[n * 9 / 10], us[n * 99 / 100], us[n - 1], sum * 1e-3);
}

int main(int argc, char **argv) {
    int regions = argc > 1 ? atoi(argv[1]) : 2000;
    double gap = (argc > 2 ? atof(argv[2]) : 2.0) * 1e-3;
    if (regions < 10 || gap < 0) {
        fprintf(stderr, "usage: pool_wake_bench [regions >= 10] [gap_ms >= 0]\n");
        return 2;
    }
    const char *spin = getenv("CATLIP_POOL_SPIN_MS");
    struct pool *pool = pool_create(2, 1);
    printf("%s, %d regions after %.2f ms of serial work each, CATLIP_POOL_SPIN_MS=%s\n",
           pool_describe(pool), regions, gap * 1e3, spin && spin[0] ? spin : "(default)");
    double *lag = malloc((size_t)regions * sizeof *lag);
    double *region = malloc((size_t)regions * sizeof *region);
    struct probe p;
    for (int r = 0; r < regions; r++) {
        double t0 = time_now();
        while (time_now() - t0 < gap) {
        }
        double fork = time_now();
        pool_run(pool, record_start, &p);
        double join = time_now();
        lag[r] = (p.start[1] - fork) * 1e6;
        region[r] = (join - fork) * 1e6;
    }
    report("fork -> second thread runs", lag, regions);
    report("fork -> join", region, regions);
    free(lag), free(region);
    pool_destroy(pool);
    return 0;
}
