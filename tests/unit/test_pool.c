// The compute pool: every region runs each thread's share exactly once, whether the waiting
// threads are still polling when work comes or have gone to sleep (CATLIP_POOL_SPIN_MS=0:
// always asleep; 1 ms with longer gaps: polled out, then asleep; the default: polling), for
// gaps on the caller's side (serial work between regions) and on the workers' (a thread done
// early waits at the join). A bad CATLIP_POOL_SPIN_MS is a one-line error.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/pool.h"
#include "read_to_end.h"

#define ITEMS 1000

struct task {
    int counts[ITEMS];
    int late_thread;  // this thread busy-waits `late` seconds before its share (-1: none)
    double late;
};

static void busy_wait(double seconds) {
    double t0 = time_now();
    while (time_now() - t0 < seconds) {
    }
}

static void count_worker(void *arg, int ith, int nth) {
    struct task *t = arg;
    if (ith == t->late_thread) busy_wait(t->late);
    long b, e;
    pool_split(ITEMS, ith, nth, &b, &e);
    for (long i = b; i < e; i++) t->counts[i]++;
}

// `regions` regions on a pool of `threads` created with CATLIP_POOL_SPIN_MS=spin_ms (NULL:
// unset); every third a late thread, every fifth a serial gap of `gap` seconds before it.
static void run_regions(const char *spin_ms, int threads, int regions, double gap) {
    if (spin_ms)
        setenv("CATLIP_POOL_SPIN_MS", spin_ms, 1);
    else
        unsetenv("CATLIP_POOL_SPIN_MS");
    struct pool *pool = pool_create(threads, 0);
    assert_int_equal(pool_size(pool), threads);
    struct task *t = calloc(1, sizeof *t);
    for (int r = 0; r < regions; r++) {
        t->late_thread = r % 3 == 0 ? r / 3 % threads : -1;
        t->late = gap;
        if (r % 5 == 0) busy_wait(gap);
        pool_run(pool, count_worker, t);
        for (int i = 0; i < ITEMS; i++)
            if (t->counts[i] != r + 1)
                fail_msg("spin %s, %d threads, region %d: item %d counted %d times, not %d",
                         spin_ms ? spin_ms : "default", threads, r, i, t->counts[i], r + 1);
    }
    free(t);
    pool_destroy(pool);
    unsetenv("CATLIP_POOL_SPIN_MS");
}

static void always_asleep(void **state) {
    (void)state;
    for (int threads = 2; threads <= 4; threads++) run_regions("0", threads, 300, 0.0005);
}

static void polled_out_then_asleep(void **state) {
    (void)state;
    for (int threads = 2; threads <= 3; threads++) run_regions("1", threads, 60, 0.003);
}

static void polling(void **state) {
    (void)state;
    run_regions(NULL, 2, 2000, 0.0);
    run_regions(NULL, 2, 60, 0.002);
    run_regions("0.25", 2, 60, 0.0001);
}

// pool_create in a child with CATLIP_POOL_SPIN_MS=value: its exit status, its stderr in err.
static int child_create(const char *value, char *err, size_t size) {
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipe_fds[1], 2);
        close(pipe_fds[0]);
        setenv("CATLIP_POOL_SPIN_MS", value, 1);
        double t0 = time_now();
        pool_destroy(pool_create(2, 0));
        _exit(time_now() - t0 < 1.0 ? 0 : 3);  // destroying does not wait out the polling
    }
    close(pipe_fds[1]);
    read_to_end(pipe_fds[0], err, size);
    close(pipe_fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void bad_spin_values(void **state) {
    (void)state;
    const char *bad[] = {"x", "5ms", "-1", "10001", "nan", "1e9", " "};
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(child_create(bad[i], err, sizeof err), 2);
        assert_non_null(strstr(err, "CATLIP_POOL_SPIN_MS="));
        assert_non_null(strstr(err, "milliseconds from 0 to 10000"));
        assert_non_null(strchr(err, '\n'));
        assert_true(strchr(err, '\n')[1] == '\0');  // one line
    }
    const char *good[] = {"0", "0.5", "200", "10000"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(child_create(good[i], err, sizeof err), 0);
        assert_string_equal(err, "");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(always_asleep),
        cmocka_unit_test(polled_out_then_asleep),
        cmocka_unit_test(polling),
        cmocka_unit_test(bad_spin_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
