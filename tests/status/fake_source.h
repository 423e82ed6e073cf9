// A status source with fixed, recognisable content for the status unit tests and fuzz
// targets: two workers, two skip reasons, a history of 50 intervals, a known token.
#pragma once
#include <string.h>

#include "coordinator/status_protocol.h"

struct fake_coordinator {
    int controls[2];  // checkpoint-now and stop requests received
    Catlip__WorkerStatus workers[2];
    Catlip__WorkerStatus *worker_ptrs[2];
    Catlip__SkipCount skips[2];
    Catlip__SkipCount *skip_ptrs[2];
};

static void fake_fill(void *ctx, Catlip__StatusReply *r, int include_workers) {
    struct fake_coordinator *f = ctx;
    r->run_id = "run\"<1>";
    r->state = CATLIP__STATUS_REPLY__STATE__TRAINING;
    r->step = 120;
    r->total_steps = 1000;
    r->epoch = 2;
    r->samples_seen = 120 * 64;
    r->loss = 3.25;
    r->learning_rate = 0.001;
    r->images_per_second = 512.5;
    r->eta_seconds = 880 * 64 / 512.5;
    r->last_checkpoint_path = "/runs/a&b/checkpoints/ckpt-0000000100.pb";
    r->last_checkpoint_step = 100;
    r->start_unix_time = 1700000000.5;
    r->config_summary = "vit_tiny <test>";
    const char *reasons[2] = {"bad_jpeg", "no\"synset\\\n"};
    for (int i = 0; i < 2; i++) {
        catlip__skip_count__init(&f->skips[i]);
        f->skips[i].reason = (char *)reasons[i];
        f->skips[i].count = (uint64_t)(7 + i);
        f->skip_ptrs[i] = &f->skips[i];
        catlip__worker_status__init(&f->workers[i]);
        f->workers[i].worker = i;
        f->workers[i].step = 120 - i;
        f->workers[i].images_per_second = 256.25;
        f->workers[i].data_wait_ratio = 0.125 * (i + 1);
        f->worker_ptrs[i] = &f->workers[i];
    }
    f->workers[1].n_skipped = 1;  // worker 1 skipped the bad JPEGs
    f->workers[1].skipped = f->skip_ptrs;
    r->n_skipped = 2;
    r->skipped = f->skip_ptrs;
    r->n_workers = include_workers ? 2 : 0;
    r->workers = f->worker_ptrs;
}

static void fake_control(void *ctx, int stop) {
    ((struct fake_coordinator *)ctx)->controls[stop != 0]++;
}

static int fake_history(void *ctx, int64_t *steps, double *loss, double *lr, double *ips, int max) {
    int n = max < 50 ? max : 50;
    for (int i = 0; i < n; i++) {
        steps[i] = 10 * (i + 1);
        loss[i] = 5.0 / (i + 1);
        lr[i] = 0.001 * i / 50;
        ips[i] = 500 + i;
    }
    return n;
}

#define FAKE_TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct status_source fake_source(struct fake_coordinator *f) {
    memset(f, 0, sizeof *f);
    struct status_source s = {f, fake_fill, fake_control, fake_history, FAKE_TOKEN};
    return s;
}
