#include "coordinator/coordinator.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "catlip.pb-c.h"
#include "core/check.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "worker/worker.h"

enum { MPI_POLL_MS = 2 };

enum { MAX_SKIP_REASONS = 32 };

struct skip_row {
    char reason[32];
    uint64_t count;
};

struct worker_row {
    int64_t step;
    double images_per_second, data_wait_ratio, last_seen;
    int done;
    struct skip_row skips[MAX_SKIP_REASONS];  // cumulative, as the worker last reported
    int nskips;
};

struct coordinator {
    struct run *run;
    uv_loop_t loop;
    uv_timer_t poll_timer;
    uv_signal_t sig_term, sig_usr1, sig_int;
    int interrupts;
    int pending_command;  // Catlip__Command__Kind requested by a signal or a client
    int command_sent;
    FILE *metrics;
    struct worker_row *workers;
    int workers_done, exit_status;
    double start_time, interval_start;
    int64_t interval_steps, last_logged_step;
    double interval_loss;
    struct ckpt_writer *ckpt;
    int64_t ckpt_step;
    double ckpt_start;
    char last_checkpoint[CONFIG_STRING_MAX + 64];
    int64_t last_checkpoint_step;
    uint8_t *recv_buffer;
    size_t recv_capacity;
};

static void format_duration(char *out, size_t n, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, n, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else snprintf(out, n, "%lds", s);
}

struct coordinator *coordinator_create(struct run *run) {
    struct coordinator *c = xcalloc(1, sizeof *c);
    c->run = run;
    c->workers = xcalloc((size_t)run->nworkers, sizeof *c->workers);
    char path[CONFIG_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->cfg.run_dir);
    c->metrics = fopen(path, "a");
    if (!c->metrics) catlip_die("cannot open %s: %s", path, strerror(errno));
    c->start_time = c->interval_start = time_now();
    c->last_logged_step = run->start_step;
    for (int i = 0; i < run->nworkers; i++) c->workers[i].last_seen = c->start_time;
    return c;
}

void coordinator_destroy(struct coordinator *c) {
    if (!c) return;
    if (c->ckpt) ckpt_writer_abort(c->ckpt);
    if (c->metrics) fclose(c->metrics);
    free(c->workers);
    free(c->recv_buffer);
    free(c);
}

// ---------------------------------------------------------------------------------------
// progress

// Skipped samples summed over workers, as "reason=count reason=count" (text) and as a JSON
// object (json); both "" / "{}" when nothing was skipped.
static void format_skips(const struct coordinator *c, char *text, size_t text_size, char *json,
                         size_t json_size) {
    struct skip_row total[MAX_SKIP_REASONS];
    int n = 0;
    for (int w = 0; w < c->run->nworkers; w++)
        for (int i = 0; i < c->workers[w].nskips; i++) {
            const struct skip_row *r = &c->workers[w].skips[i];
            int j = 0;
            while (j < n && strcmp(total[j].reason, r->reason) != 0) j++;
            if (j == n) {
                if (n == MAX_SKIP_REASONS) continue;
                total[n++] = *r;
            } else {
                total[j].count += r->count;
            }
        }
    size_t t = 0, k = (size_t)snprintf(json, json_size, "{");
    text[0] = '\0';
    for (int j = 0; j < n; j++) {
        t += (size_t)snprintf(text + t, t < text_size ? text_size - t : 0, "%s%s=%llu",
                              j ? " " : "", total[j].reason, (unsigned long long)total[j].count);
        k += (size_t)snprintf(json + k, k < json_size ? json_size - k : 0, "%s\"%s\": %llu",
                              j ? ", " : "", total[j].reason, (unsigned long long)total[j].count);
    }
    snprintf(json + k, k < json_size ? json_size - k : 0, "}");
}

static void log_interval(struct coordinator *c, const Catlip__Progress *p) {
    const struct run *run = c->run;
    double now = time_now();
    const int64_t G = run->cfg.train.global_batch;
    double ips = c->interval_steps * G / (now - c->interval_start);
    double loss = c->interval_loss / (double)c->interval_steps;
    char eta[32];
    format_duration(eta, sizeof eta, ips > 0 ? (double)(run->total_steps - p->step) * G / ips : 0);
    int64_t epoch = run->steps_per_epoch > 0 ? (p->step - 1) / run->steps_per_epoch : 0;
    char skips[512], skips_json[768];
    format_skips(c, skips, sizeof skips, skips_json, sizeof skips_json);
    log_info("step %lld/%lld  epoch %lld  loss %.4f  lr %.3g  grad_norm %.3f  %.1f img/s  ETA %s%s%s",
             (long long)p->step, (long long)run->total_steps, (long long)epoch, loss, p->lr,
             p->grad_norm, ips, eta, skips[0] ? "  skipped " : "", skips);
    fprintf(c->metrics,
            "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6g, "
            "\"images_per_second\": %.3f, \"samples\": %lld, \"time\": %.3f, \"skipped\": %s}\n",
            (long long)p->step, (long long)epoch, loss, p->lr, p->grad_norm, ips,
            (long long)(p->step * G), time_unix(), skips_json);
    fflush(c->metrics);
    c->interval_start = now;
    c->interval_steps = 0;
    c->interval_loss = 0.0;
    c->last_logged_step = p->step;
}

static void on_progress(struct coordinator *c, const Catlip__Progress *p) {
    if (p->worker < 0 || p->worker >= c->run->nworkers) {
        log_warn("progress from unknown worker %d ignored", p->worker);
        return;
    }
    struct worker_row *row = &c->workers[p->worker];
    row->step = p->step;
    row->images_per_second = p->images_per_second;
    double total = p->data_wait_seconds + p->compute_seconds + p->allreduce_seconds;
    row->data_wait_ratio = total > 0 ? p->data_wait_seconds / total : 0.0;
    row->last_seen = time_now();
    row->nskips = 0;
    for (size_t i = 0; i < p->n_skipped && row->nskips < MAX_SKIP_REASONS; i++) {
        struct skip_row *r = &row->skips[row->nskips++];
        snprintf(r->reason, sizeof r->reason, "%s", p->skipped[i]->reason ? p->skipped[i]->reason : "?");
        r->count = p->skipped[i]->count;
    }
    if (p->worker != 0) return;  // the loss is global: worker 0's report carries it
    c->interval_steps++;
    c->interval_loss += p->loss;
    if (p->step % c->run->cfg.log.every_steps == 0 || p->step == c->run->total_steps)
        log_interval(c, p);
}

void coordinator_on_progress_packed(struct coordinator *c, const uint8_t *data, size_t len) {
    Catlip__Progress *p = catlip__progress__unpack(NULL, len, data);
    if (!p) {
        log_warn("unreadable progress message (%zu bytes) ignored", len);
        return;
    }
    on_progress(c, p);
    catlip__progress__free_unpacked(p, NULL);
}

// ---------------------------------------------------------------------------------------
// checkpoints

void coordinator_on_checkpoint_begin(struct coordinator *c, const uint8_t *data, size_t len) {
    if (c->ckpt) ckpt_writer_abort(c->ckpt);
    c->ckpt = NULL;
    Catlip__CheckpointHeader *h = catlip__checkpoint_header__unpack(NULL, len, data);
    if (!h) {
        log_error("checkpoint not written: unreadable header from worker 0 (%zu bytes)", len);
        c->exit_status = 1;
        return;
    }
    c->ckpt_step = h->position ? h->position->step : 0;
    char dir[CONFIG_STRING_MAX + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", c->run->cfg.run_dir);
    c->ckpt_start = time_now();
    if (ckpt_writer_open(&c->ckpt, dir, c->ckpt_step) != 0 || ckpt_writer_header(c->ckpt, h) != 0) {
        log_error("checkpoint at step %lld not written: %s", (long long)c->ckpt_step,
                  catlip_error());
        if (c->ckpt) ckpt_writer_abort(c->ckpt);
        c->ckpt = NULL;
        c->exit_status = 1;
    }
    catlip__checkpoint_header__free_unpacked(h, NULL);
}

void coordinator_on_checkpoint_record(struct coordinator *c, const uint8_t *data, size_t len) {
    if (!c->ckpt) return;
    if (ckpt_writer_record(c->ckpt, data, len) != 0) {
        log_error("checkpoint at step %lld not written: %s", (long long)c->ckpt_step,
                  catlip_error());
        ckpt_writer_abort(c->ckpt);
        c->ckpt = NULL;
        c->exit_status = 1;
    }
}

void coordinator_on_checkpoint_end(struct coordinator *c, int64_t step) {
    if (!c->ckpt) return;
    char path[CONFIG_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s", ckpt_writer_path(c->ckpt));
    if (step != c->ckpt_step) {
        log_error("checkpoint at step %lld not written: worker 0 ended it as step %lld",
                  (long long)c->ckpt_step, (long long)step);
        ckpt_writer_abort(c->ckpt);
        c->exit_status = 1;
    } else if (ckpt_writer_commit(c->ckpt, (int)c->run->cfg.checkpoint.keep) != 0) {
        log_error("checkpoint at step %lld not written: %s", (long long)step, catlip_error());
        c->exit_status = 1;
    } else {
        log_info("checkpoint %s (step %lld, %.2f s)", path, (long long)step,
                 time_now() - c->ckpt_start);
        snprintf(c->last_checkpoint, sizeof c->last_checkpoint, "%s", path);
        c->last_checkpoint_step = step;
    }
    c->ckpt = NULL;
}

int coordinator_pending_command(struct coordinator *c) { return c->pending_command; }

// ---------------------------------------------------------------------------------------
// the launched-job loop

static void request_command(struct coordinator *c, int kind) {
    if (kind > c->pending_command) c->pending_command = kind;
    if (c->run->single_process) return;
    Catlip__Command cmd = CATLIP__COMMAND__INIT;
    cmd.kind = (Catlip__Command__Kind)c->pending_command;
    uint8_t buf[64];
    size_t len = catlip__command__pack(&cmd, buf);
    for (int r = 1; r < c->run->world_size; r++)
        MPI_Send(buf, (int)len, MPI_BYTE, r, TAG_COMMAND, MPI_COMM_WORLD);
}

static void on_signal(uv_signal_t *handle, int signum) {
    struct coordinator *c = handle->data;
    if (signum == SIGINT && ++c->interrupts >= 2) {
        log_error("second interrupt: aborting without a checkpoint");
        MPI_Abort(MPI_COMM_WORLD, 130);
    }
    log_warn("%s: checkpointing at the next step boundary, then stopping", strsignal(signum));
    request_command(c, CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP);
}

static const uint8_t *receive(struct coordinator *c, const MPI_Status *st, int *len) {
    MPI_Get_count(st, MPI_BYTE, len);
    if ((size_t)*len + 1 > c->recv_capacity) {
        c->recv_capacity = (size_t)*len + 1;
        c->recv_buffer = xrealloc(c->recv_buffer, c->recv_capacity);
    }
    MPI_Recv(c->recv_buffer, *len, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    return c->recv_buffer;
}

static void drain_mpi(struct coordinator *c) {
    for (;;) {
        int flag, len;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (!flag) return;
        const uint8_t *data = receive(c, &st, &len);
        int64_t step;
        switch (st.MPI_TAG) {
        case TAG_PROGRESS: coordinator_on_progress_packed(c, data, (size_t)len); break;
        case TAG_CKPT_BEGIN: coordinator_on_checkpoint_begin(c, data, (size_t)len); break;
        case TAG_CKPT_RECORD: coordinator_on_checkpoint_record(c, data, (size_t)len); break;
        case TAG_CKPT_END:
            memcpy(&step, data, sizeof step);
            coordinator_on_checkpoint_end(c, step);
            break;
        case TAG_DONE: {
            int status;
            memcpy(&status, data, sizeof status);
            c->workers[st.MPI_SOURCE - 1].done = 1;
            c->workers_done++;
            if (status != 0) c->exit_status = status;
            break;
        }
        default: log_warn("unexpected message tag %d from rank %d", st.MPI_TAG, st.MPI_SOURCE);
        }
    }
}

static void on_poll(uv_timer_t *timer) {
    struct coordinator *c = timer->data;
    drain_mpi(c);
    if (c->workers_done == c->run->nworkers) {
        uv_stop(&c->loop);
        return;
    }
    // A worker that stops reporting (hung, or its node gone) must not hang the job.
    double now = time_now();
    for (int i = 0; i < c->run->nworkers; i++) {
        struct worker_row *row = &c->workers[i];
        if (!row->done && !c->ckpt && now - row->last_seen > c->run->cfg.train.worker_timeout) {
            log_error("worker on rank %d sent no progress for %.0f s (train.worker_timeout): "
                      "aborting the job", i + 1, now - row->last_seen);
            MPI_Abort(MPI_COMM_WORLD, 4);
        }
    }
}

int coordinator_serve(struct coordinator *c) {
    uv_loop_init(&c->loop);
    uv_timer_init(&c->loop, &c->poll_timer);
    c->poll_timer.data = c;
    uv_timer_start(&c->poll_timer, on_poll, 0, MPI_POLL_MS);
    uv_signal_t *sigs[] = {&c->sig_term, &c->sig_usr1, &c->sig_int};
    int signums[] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&c->loop, sigs[i]);
        sigs[i]->data = c;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&c->poll_timer);
    for (int i = 0; i < 3; i++) uv_signal_stop(sigs[i]);
    uv_close((uv_handle_t *)&c->poll_timer, NULL);
    for (int i = 0; i < 3; i++) uv_close((uv_handle_t *)sigs[i], NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    return c->exit_status;
}
