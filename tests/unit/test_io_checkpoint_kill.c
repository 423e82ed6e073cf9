// Kill during write: a child process writes a large checkpoint and is SIGKILLed at random
// points; afterwards ckpt_find_latest must return a complete checkpoint (the previous one, or
// the new one only once it was renamed into place), never a torn one.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/check.h"
#include "core/log.h"
#include "core/rng.h"
#include "io/checkpoint.h"

#define TRIALS 12
// 4 Mi + 0.5 Mi floats: 18 MiB, five chunks, plus a small tensor.
#define BIG_ELEMENTS ((4 << 20) + (1 << 19))

// Writes checkpoint `step` without cmocka (it also runs in a forked child). Returns 0 or -1.
static int write_step(const char *dir, int64_t step) {
    float *big = xmalloc((size_t)BIG_ELEMENTS * sizeof(float));
    for (size_t i = 0; i < BIG_ELEMENTS; i++)
        big[i] = (float)((i * 2654435761u + (uint64_t)step) & 0xffff);
    float bias[16];
    for (int i = 0; i < 16; i++) bias[i] = (float)(step + i);
    int64_t big_shape[2] = {BIG_ELEMENTS / 1024, 1024}, bias_shape[1] = {16};
    Catlip__CheckpointHeader h = CATLIP__CHECKPOINT_HEADER__INIT;
    Catlip__DataPosition pos = CATLIP__DATA_POSITION__INIT;
    pos.step = step;
    h.position = &pos;
    h.run_id = "kill-test";
    h.tensor_count = 2;
    const Catlip__TensorChunk__Kind param = CATLIP__TENSOR_CHUNK__KIND__PARAM;
    struct ckpt_writer *w;
    int rc = ckpt_writer_open(&w, dir, step);
    if (rc < 0) {
        free(big);
        return -1;
    }
    if (rc == 0) rc = ckpt_writer_header(w, &h);
    if (rc == 0) rc = ckpt_writer_tensor(w, param, "w", big_shape, 2, big);
    if (rc == 0) rc = ckpt_writer_tensor(w, param, "b", bias_shape, 1, bias);
    if (rc == 0) rc = ckpt_writer_commit(w, 3);  // frees w
    else ckpt_writer_abort(w);
    free(big);
    return rc;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void kill_during_write_keeps_previous(void **state) {
    char dir[512];
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/catlip_ckpt_kill_XXXXXX", base);
    assert_non_null(mkdtemp(dir));
    // The first checkpoint, written in full; its duration sets the range of kill times.
    double t0 = time_now();
    assert_int_equal(write_step(dir, 100), 0);
    double duration = time_now() - t0;
    int64_t previous = 100;
    struct rng r;
    rng_init(&r, rng_key(2024, 11, 27, 0));
    int torn_temp = 0, complete_temp = 0, completed = 0, renamed_only = 0, before_open = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        int64_t step = 200 + 100 * trial;
        char final_path[600], tmp_path[610];
        snprintf(final_path, sizeof final_path, "%s/ckpt-%010lld.pb", dir, (long long)step);
        snprintf(tmp_path, sizeof tmp_path, "%s.tmp", final_path);
        // Even trials: kill once the .tmp has grown past a random size (inside the writing);
        // odd trials: after a random time (anywhere, including fsync, rename and `latest`).
        bool by_size = trial % 2 == 0;
        off_t target = (off_t)(rng_uniform(&r) * 0.9 * BIG_ELEMENTS * sizeof(float));
        double delay = rng_uniform(&r) * duration * 1.1;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(write_step(dir, step) == 0 ? 0 : 2);
        int status = 0;
        bool reaped = false;
        if (by_size) {
            double give_up = time_now() + 10 * duration + 1;
            for (;;) {
                struct stat st;
                if (stat(tmp_path, &st) == 0 && st.st_size >= target) break;
                if (waitpid(pid, &status, WNOHANG) == pid) {
                    reaped = true;
                    break;
                }
                if (time_now() > give_up) break;
                struct timespec poll = {0, 20000};
                nanosleep(&poll, NULL);
            }
        } else {
            struct timespec ts = {(time_t)delay, (long)((delay - (time_t)delay) * 1e9)};
            nanosleep(&ts, NULL);
        }
        if (!reaped) {
            kill(pid, SIGKILL);
            assert_int_equal(waitpid(pid, &status, 0), pid);
        }
        bool finished = WIFEXITED(status);
        if (finished) assert_int_equal(WEXITSTATUS(status), 0);
        bool has_final = exists(final_path), has_tmp = exists(tmp_path);
        if (has_tmp && ckpt_verify(tmp_path) < 0) torn_temp++;
        else if (has_tmp) complete_temp++;
        if (!has_final && !has_tmp) before_open++;
        char *found;
        int64_t found_step;
        assert_int_equal(ckpt_find_latest(dir, &found, &found_step), 1);
        assert_int_equal(ckpt_verify(found), 0);
        assert_null(strstr(found, ".tmp"));
        if (found_step != previous && found_step != step)
            fail_msg("trial %d: found step %lld, expected %lld or %lld", trial,
                     (long long)found_step, (long long)previous, (long long)step);
        if (!has_final) assert_int_equal(found_step, previous);
        if (finished) assert_int_equal(found_step, step);  // `latest` was updated
        if (has_final && found_step == previous) renamed_only++;
        completed += finished;
        previous = found_step;
        free(found);
    }
    print_message("one full write %.3f s; %d kills: %d left a torn .tmp, %d a complete .tmp "
                  "(killed in fsync or before the rename), %d came before the .tmp existed, %d "
                  "after the rename but before `latest`, %d after completion\n",
                  duration, TRIALS, torn_temp, complete_temp, before_open, renamed_only,
                  completed);
    // The test is only worth something when kills really landed inside writes.
    assert_true(torn_temp >= TRIALS / 4);
    remove_dir(dir);
}

int main(void) {
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_during_write_keeps_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
