// The coordinator alone, driven through the in-process link as a worker would drive it: a
// normal checkpoint, an aborted one, malformed messages, a worker that reports failure, and
// commands back to the worker. No MPI, no threads, no sockets.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catlip.pb-c.h"
#include "coordinator/coordinator.h"
#include "core/check.h"
#include "io/checkpoint.h"
#include "model/checkpoint_state.h"
#include "train/link.h"
#include "train/run.h"

struct fixture {
    char dir[64];
    char checkpoints[128];
    struct run run;
    struct link *link;
    struct coordinator *c;
    struct vit_layout layout;
    float *params;
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/catlip-coordinator-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->checkpoints, sizeof f->checkpoints, "%s/checkpoints", f->dir);
    struct run *run = &f->run;
    config_defaults(&run->cfg);
    snprintf(run->cfg.run_dir, sizeof run->cfg.run_dir, "%s", f->dir);
    run->cfg.log.every_steps = 1;
    run->cfg.checkpoint.keep = 3;
    run->single_process = 1;
    run->world_size = 1;
    run->nworkers = 1;
    run->total_steps = 4;
    run->steps_per_epoch = 4;
    snprintf(run->run_id, sizeof run->run_id, "unit");
    assert_int_equal(vit_config_make(&run->model, "vit_tiny", 16, 8, 3, 16, 1, 2, 0), 0);
    vit_layout_init(&f->layout, &run->model);
    f->params = calloc(f->layout.total, sizeof(float));
    for (size_t i = 0; i < f->layout.total; i++) f->params[i] = (float)i * 0.25f;
    f->link = link_local_create();
    f->c = coordinator_create(run, f->link);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    coordinator_destroy(f->c);
    link_destroy(f->link);
    vit_layout_free(&f->layout);
    free(f->params);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

// ---- what a worker sends

static int send_record(void *ctx, const uint8_t *record, size_t len) {
    link_send(ctx, 0, LINK_CKPT_RECORD, record, len);
    return 0;
}

static void send_begin(struct fixture *f, int64_t step) {
    Catlip__ModelConfig model = CATLIP__MODEL_CONFIG__INIT;
    model.name = "vit_tiny";
    model.dim = f->run.model.dim;
    model.depth = f->run.model.depth;
    model.heads = f->run.model.heads;
    model.mlp_hidden = f->run.model.mlp_hidden;
    model.image_size = f->run.model.image_size;
    model.patch_size = f->run.model.patch_size;
    model.num_classes = f->run.model.num_classes;
    Catlip__DataPosition pos = CATLIP__DATA_POSITION__INIT;
    pos.step = step;
    Catlip__CheckpointHeader h = CATLIP__CHECKPOINT_HEADER__INIT;
    h.format_version = CKPT_FORMAT_VERSION;
    h.run_id = "unit";
    h.model = &model;
    h.position = &pos;
    h.worker_count = 1;
    h.tensor_count = (uint32_t)f->layout.ntensors;
    size_t len = catlip__checkpoint_header__get_packed_size(&h);
    uint8_t *buf = malloc(len + 1);
    catlip__checkpoint_header__pack(&h, buf);
    link_send(f->link, 0, LINK_CKPT_BEGIN, buf, len);
    free(buf);
}

static void send_tensors(struct fixture *f, int count) {
    for (int i = 0; i < count && i < f->layout.ntensors; i++) {
        const struct tensor_info *t = &f->layout.tensors[i];
        assert_int_equal(ckpt_tensor_records(CATLIP__TENSOR_CHUNK__KIND__PARAM, t->name, t->shape,
                                             t->ndim, f->params + t->offset, send_record, f->link),
                         0);
    }
}

static void send_progress(struct fixture *f, int64_t step) {
    Catlip__Progress p = CATLIP__PROGRESS__INIT;
    p.worker = 0;
    p.step = step;
    p.loss = 1.5;
    p.lr = 1e-3;
    p.samples = step * 8;
    uint8_t buf[256];
    size_t len = catlip__progress__pack(&p, buf);
    link_send(f->link, 0, LINK_PROGRESS, buf, len);
}

static int64_t latest_step(struct fixture *f) {
    char *path = NULL;
    int64_t step = -1;
    int found = ckpt_find_latest(f->checkpoints, &path, &step);
    free(path);
    return found == 1 ? step : -1;
}

static int count_lines(const char *path) {
    FILE *file = fopen(path, "r");
    if (!file) return -1;
    int n = 0, ch;
    while ((ch = fgetc(file)) != EOF) n += ch == '\n';
    fclose(file);
    return n;
}

// ---- tests

static void normal_checkpoint_is_written_and_loads(void **state) {
    struct fixture *f = *state;
    send_progress(f, 2);
    send_begin(f, 2);
    send_tensors(f, f->layout.ntensors);
    link_send_step(f->link, 0, LINK_CKPT_END, 2);
    assert_int_equal(coordinator_exit_status(f->c), 0);
    assert_int_equal(latest_step(f), 2);
    char path[192];
    snprintf(path, sizeof path, "%s/ckpt-0000000002.pb", f->checkpoints);
    float *back = calloc(f->layout.total, sizeof(float));
    float *buffers[4] = {back, NULL, NULL, NULL};
    assert_int_equal(checkpoint_load_tensors(path, &f->layout, buffers), 0);
    for (int i = 0; i < f->layout.ntensors; i++) {  // (the layout may pad between tensors)
        const struct tensor_info *t = &f->layout.tensors[i];
        assert_memory_equal(back + t->offset, f->params + t->offset, t->numel * sizeof(float));
    }
    free(back);
    // the progress message became a metrics line
    snprintf(path, sizeof path, "%s/metrics.jsonl", f->dir);
    assert_int_equal(count_lines(path), 1);
}

static void aborted_checkpoint_leaves_the_previous_one(void **state) {
    struct fixture *f = *state;
    send_begin(f, 1);
    send_tensors(f, f->layout.ntensors);
    link_send_step(f->link, 0, LINK_CKPT_END, 1);
    assert_int_equal(latest_step(f), 1);
    // step 3: begun, half the tensors, then ended as aborted (a negative step)
    send_begin(f, 3);
    send_tensors(f, f->layout.ntensors / 2);
    link_send_step(f->link, 0, LINK_CKPT_END, -1);
    assert_int_equal(latest_step(f), 1);
    char path[192];
    snprintf(path, sizeof path, "%s/ckpt-0000000003.pb", f->checkpoints);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/ckpt-0000000003.pb.tmp", f->checkpoints);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(coordinator_exit_status(f->c), 1);  // a checkpoint asked for was not written
}

static void malformed_messages_are_ignored(void **state) {
    struct fixture *f = *state;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x07, 0x00, 0x42};
    link_send(f->link, 0, LINK_PROGRESS, junk, sizeof junk);     // does not parse
    link_send(f->link, 0, LINK_CKPT_END, junk, 3);               // not an int64
    link_send(f->link, 0, LINK_DONE, junk, 2);                   // not an int32
    link_send(f->link, 0, 99, junk, sizeof junk);                // no such kind
    link_send(f->link, 5, LINK_DONE, junk, 4);                   // no such worker
    link_send(f->link, 0, LINK_CKPT_RECORD, junk, sizeof junk);  // no checkpoint open
    link_send_step(f->link, 0, LINK_CKPT_END, 2);                // no checkpoint open
    assert_int_equal(coordinator_workers_done(f->c), 0);
    assert_int_equal(coordinator_exit_status(f->c), 0);
    assert_int_equal(latest_step(f), -1);
    // a checkpoint still works afterwards
    send_begin(f, 2);
    send_tensors(f, f->layout.ntensors);
    link_send_step(f->link, 0, LINK_CKPT_END, 2);
    assert_int_equal(latest_step(f), 2);
    assert_int_equal(coordinator_exit_status(f->c), 0);
    // an unreadable header fails that checkpoint, and the job's status says so
    link_send(f->link, 0, LINK_CKPT_BEGIN, junk, sizeof junk);
    assert_int_equal(coordinator_exit_status(f->c), 1);
}

static void worker_failure_reaches_the_exit_status(void **state) {
    struct fixture *f = *state;
    link_send_status(f->link, 0, 0);
    assert_int_equal(coordinator_workers_done(f->c), 1);
    assert_int_equal(coordinator_exit_status(f->c), 0);
    link_send_status(f->link, 0, 2);  // a repeated DONE does not count the worker twice
    assert_int_equal(coordinator_workers_done(f->c), 1);
    assert_int_equal(coordinator_exit_status(f->c), 2);
}

static void commands_reach_the_worker_once(void **state) {
    struct fixture *f = *state;
    assert_int_equal(link_poll_command(f->link), CATLIP__COMMAND__KIND__CONTINUE);
    coordinator_control(f->c, 0);
    assert_int_equal(link_poll_command(f->link), CATLIP__COMMAND__KIND__CHECKPOINT);
    assert_int_equal(link_poll_command(f->link), CATLIP__COMMAND__KIND__CONTINUE);
    coordinator_control(f->c, 1);
    assert_int_equal(link_poll_command(f->link), CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(normal_checkpoint_is_written_and_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(aborted_checkpoint_leaves_the_previous_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(malformed_messages_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_failure_reaches_the_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(commands_reach_the_worker_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
