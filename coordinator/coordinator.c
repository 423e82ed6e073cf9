#include "coordinator/coordinator.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <string.h>
#include <uv.h>

#include "catlip.pb-c.h"
#include "coordinator/status_server.h"
#include "core/check.h"
#include "core/log.h"
#include "io/checkpoint.h"
#include "train/link.h"

// The loop polls the link (MPI) for worker messages: every LINK_POLL_MIN_MS while messages arrive,
// backing off to LINK_POLL_MAX_MS when none do (a step of a real model takes far longer, and
// a worker never waits on a small message), so an idle coordinator wakes ~60 times a second.
enum { LINK_POLL_MIN_MS = 1, LINK_POLL_MAX_MS = 16 };

enum { MAX_SKIP_REASONS = 32 };

struct skip_row {
    char reason[32];
    uint64_t count;
};

// The least time a worker gets to send its first message (start-up), whatever
// train.worker_timeout says.
#define STARTUP_GRACE_S 300.0

struct worker_row {
    int64_t step;
    double images_per_second, data_wait_ratio, last_seen;
    int done;
    int heard;  // a message arrived: start-up is over, worker_timeout applies
    struct skip_row skips[MAX_SKIP_REASONS];  // cumulative, as the worker last reported
    int nskips;
    // totals over the steps this worker reported (for the end-of-run summary)
    double data_s, compute_s, allreduce_s;
    int64_t steps, images;
};

struct coordinator {
    struct run *run;
    struct link *link;  // to the workers
    uv_loop_t loop;
    uv_timer_t poll_timer;
    int poll_ms;  // current link poll interval
    uv_signal_t sig_term, sig_usr1, sig_int;
    int interrupts;
    atomic_int pending_command;  // highest Catlip__Command__Kind a signal or a client requested
    pthread_mutex_t lock;        // guards what status clients read (single-process mode)
    pthread_t loop_thread;
    int loop_thread_running;
    uv_async_t stop_async;
    int state;                   // Catlip__StatusReply__State
    double last_loss, last_lr, last_ips, last_grad_norm;
    int64_t last_step;
    // logged intervals, a ring of COORDINATOR_HISTORY
    int64_t hist_step[COORDINATOR_HISTORY];
    double hist_loss[COORDINATOR_HISTORY], hist_lr[COORDINATOR_HISTORY], hist_ips[COORDINATOR_HISTORY];
    int hist_count, hist_next;
    // storage behind coordinator_fill_status's reply
    Catlip__WorkerStatus *status_workers;
    Catlip__WorkerStatus **status_worker_ptrs;
    Catlip__SkipCount *status_skips;
    Catlip__SkipCount **status_skip_ptrs;
    Catlip__SkipCount *status_worker_skips;        // (nworkers, MAX_SKIP_REASONS)
    Catlip__SkipCount **status_worker_skip_ptrs;   // (nworkers, MAX_SKIP_REASONS)
    struct worker_row *status_rows;  // copies taken under the lock: the reply points into them,
    char status_last_checkpoint[CONFIG_STRING_MAX + 64];  // never into what workers update
    char status_config[CONFIG_STRING_MAX + 512];
    int command_sent;
    FILE *metrics;
    struct worker_row *workers;
    int workers_done, exit_status;
    double start_time, interval_start;
    int64_t interval_steps, last_logged_step;
    double interval_loss;
    struct ckpt_writer *ckpt;
    int64_t ckpt_step;
    double ckpt_start, ckpt_cpu_start;
    double ckpt_cpu;                 // CPU seconds spent writing checkpoints
    double cpu_at_serve, wall_at_serve;  // when the loop started (after MPI and planning)
    char last_checkpoint[CONFIG_STRING_MAX + 64];
    int64_t last_checkpoint_step;
    struct status_server *status;
};

static double process_cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + 1e-6 * usage.ru_utime.tv_usec + usage.ru_stime.tv_sec +
           1e-6 * usage.ru_stime.tv_usec;
}

static void format_duration(char *out, size_t n, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, n, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else snprintf(out, n, "%lds", s);
}

static void on_message(void *ctx, int worker, int kind, const uint8_t *data, size_t len);

struct coordinator *coordinator_create(struct run *run, struct link *link) {
    struct coordinator *c = xcalloc(1, sizeof *c);
    c->run = run;
    c->link = link;
    link_set_receiver(link, on_message, c);
    c->workers = xcalloc((size_t)run->nworkers, sizeof *c->workers);
    char path[CONFIG_STRING_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->cfg.run_dir);
    c->metrics = fopen(path, "a");
    if (!c->metrics) catlip_die("cannot open %s: %s", path, strerror(errno));
    c->start_time = c->interval_start = time_now();
    c->last_logged_step = run->start_step;
    for (int i = 0; i < run->nworkers; i++) c->workers[i].last_seen = c->start_time;
    pthread_mutex_init(&c->lock, NULL);
    atomic_init(&c->pending_command, 0);
    uv_loop_init(&c->loop);
    c->state = CATLIP__STATUS_REPLY__STATE__STARTING;
    c->last_step = run->start_step;
    c->status_workers = xcalloc((size_t)run->nworkers, sizeof *c->status_workers);
    c->status_worker_ptrs = xcalloc((size_t)run->nworkers, sizeof *c->status_worker_ptrs);
    c->status_skips = xcalloc((size_t)run->nworkers * MAX_SKIP_REASONS, sizeof *c->status_skips);
    c->status_skip_ptrs = xcalloc((size_t)run->nworkers * MAX_SKIP_REASONS, sizeof *c->status_skip_ptrs);
    c->status_worker_skips = xcalloc((size_t)run->nworkers * MAX_SKIP_REASONS, sizeof *c->status_worker_skips);
    c->status_worker_skip_ptrs = xcalloc((size_t)run->nworkers * MAX_SKIP_REASONS, sizeof *c->status_worker_skip_ptrs);
    c->status_rows = xcalloc((size_t)run->nworkers, sizeof *c->status_rows);
    char head[128];  // what the image tower feeds: the synset head, or CLIP's projection
    if (run->model.clip)
        snprintf(head, sizeof head, "objective clip, embeddings %d, text %s width %d depth %d",
                 run->model.num_classes, run->cfg.model.text, run->model.text.width,
                 run->model.text.depth);
    else
        snprintf(head, sizeof head, "%d classes", run->model.num_classes);
    snprintf(c->status_config, sizeof c->status_config,
             "%s dim %d depth %d heads %d, image %d patch %d, %s; %d worker%s, global "
             "batch %lld, lr %g, data %s", run->cfg.model.name, run->model.dim, run->model.depth,
             run->model.heads, run->model.image_size, run->model.patch_size, head,
             run->nworkers, run->nworkers == 1 ? "" : "s",
             (long long)run->cfg.train.global_batch, run->cfg.optim.lr, run->cfg.data.train);
    return c;
}

static int start_status_server(struct coordinator *c) {
    const struct config *cfg = &c->run->cfg;
    struct status_options o = {.host = cfg->status.host,
                               .port = (int)cfg->status.port,
                               .http_port = (int)cfg->status.http_port,
                               .run_dir = cfg->run_dir,
                               .run_id = c->run->run_id};
    return status_server_start(&c->status, c, &o);
}

static void on_stop_async(uv_async_t *handle) { uv_stop(handle->loop); }

static void *loop_thread_main(void *arg) {
    struct coordinator *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

int coordinator_start_loop_thread(struct coordinator *c) {
    if (start_status_server(c) != 0) return -1;
    uv_async_init(&c->loop, &c->stop_async, on_stop_async);
    if (pthread_create(&c->loop_thread, NULL, loop_thread_main, c) != 0)
        return catlip_error_set("cannot start the coordinator's status thread");
    c->loop_thread_running = 1;
    return 0;
}

static void close_handle(uv_handle_t *handle, void *arg) {
    if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

void coordinator_destroy(struct coordinator *c) {
    if (!c) return;
    if (c->loop_thread_running) {
        uv_async_send(&c->stop_async);
        pthread_join(c->loop_thread, NULL);
    }
    // STATUS_SERVER_STOP: status listeners close here (before the loop's handles).
    status_server_stop(c->status);
    c->status = NULL;
    uv_walk(&c->loop, close_handle, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    pthread_mutex_destroy(&c->lock);
    free(c->status_workers);
    free(c->status_worker_ptrs);
    free(c->status_skips);
    free(c->status_skip_ptrs);
    free(c->status_worker_skips);
    free(c->status_worker_skip_ptrs);
    free(c->status_rows);
    if (c->ckpt) ckpt_writer_abort(c->ckpt);
    if (c->metrics) fclose(c->metrics);
    free(c->workers);
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
    c->hist_step[c->hist_next] = p->step;
    c->hist_loss[c->hist_next] = loss;
    c->hist_lr[c->hist_next] = p->lr;
    c->hist_ips[c->hist_next] = ips;
    c->hist_next = (c->hist_next + 1) % COORDINATOR_HISTORY;
    if (c->hist_count < COORDINATOR_HISTORY) c->hist_count++;
    c->last_loss = loss;
    c->last_ips = ips;
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
    if (c->state == CATLIP__STATUS_REPLY__STATE__STARTING) c->state = CATLIP__STATUS_REPLY__STATE__TRAINING;
    if (p->worker == 0) {
        c->last_step = p->step;
        c->last_lr = p->lr;
        c->last_grad_norm = p->grad_norm;
    }
    struct worker_row *row = &c->workers[p->worker];
    row->step = p->step;
    row->images_per_second = p->images_per_second;
    double total = p->data_wait_seconds + p->compute_seconds + p->allreduce_seconds;
    row->data_wait_ratio = total > 0 ? p->data_wait_seconds / total : 0.0;
    row->last_seen = time_now();
    if (row->images > 0) {  // each worker's first step (warm-up, page faults) is left out
        row->data_s += p->data_wait_seconds;
        row->compute_s += p->compute_seconds;
        row->allreduce_s += p->allreduce_seconds;
        row->steps++;
    }
    row->images = p->samples;
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

static void on_progress_packed(struct coordinator *c, const uint8_t *data, size_t len) {
    Catlip__Progress *p = catlip__progress__unpack(NULL, len, data);
    if (!p) {
        log_warn("unreadable progress message (%zu bytes) ignored", len);
        return;
    }
    pthread_mutex_lock(&c->lock);
    on_progress(c, p);
    pthread_mutex_unlock(&c->lock);
    catlip__progress__free_unpacked(p, NULL);
}

// ---------------------------------------------------------------------------------------
// checkpoints

static void on_checkpoint_begin(struct coordinator *c, const uint8_t *data, size_t len) {
    if (c->ckpt) ckpt_writer_abort(c->ckpt);
    c->ckpt = NULL;
    Catlip__CheckpointHeader *h = catlip__checkpoint_header__unpack(NULL, len, data);
    if (!h) {
        log_error("checkpoint not written: unreadable header from worker 0 (%zu bytes)", len);
        c->exit_status = 1;
        return;
    }
    c->ckpt_step = h->position ? h->position->step : 0;
    pthread_mutex_lock(&c->lock);
    c->state = CATLIP__STATUS_REPLY__STATE__CHECKPOINTING;
    pthread_mutex_unlock(&c->lock);
    char dir[CONFIG_STRING_MAX + 32];
    snprintf(dir, sizeof dir, "%s/checkpoints", c->run->cfg.run_dir);
    c->ckpt_start = time_now();
    c->ckpt_cpu_start = process_cpu_seconds();
    if (ckpt_writer_open(&c->ckpt, dir, c->ckpt_step) != 0 || ckpt_writer_header(c->ckpt, h) != 0) {
        log_error("checkpoint at step %lld not written: %s", (long long)c->ckpt_step,
                  catlip_error());
        if (c->ckpt) ckpt_writer_abort(c->ckpt);
        c->ckpt = NULL;
        c->exit_status = 1;
    }
    catlip__checkpoint_header__free_unpacked(h, NULL);
}

static void on_checkpoint_record(struct coordinator *c, const uint8_t *data, size_t len) {
    if (!c->ckpt) return;
    if (ckpt_writer_record(c->ckpt, data, len) != 0) {
        log_error("checkpoint at step %lld not written: %s", (long long)c->ckpt_step,
                  catlip_error());
        ckpt_writer_abort(c->ckpt);
        c->ckpt = NULL;
        c->exit_status = 1;
    }
}

static void on_checkpoint_end(struct coordinator *c, int64_t step) {
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
        pthread_mutex_lock(&c->lock);
        snprintf(c->last_checkpoint, sizeof c->last_checkpoint, "%s", path);
        c->last_checkpoint_step = step;
        pthread_mutex_unlock(&c->lock);
    }
    c->ckpt_cpu += process_cpu_seconds() - c->ckpt_cpu_start;
    pthread_mutex_lock(&c->lock);
    c->state = step >= c->run->total_steps ? CATLIP__STATUS_REPLY__STATE__FINISHED
                                           : CATLIP__STATUS_REPLY__STATE__TRAINING;
    if (c->exit_status) c->state = CATLIP__STATUS_REPLY__STATE__FAILED;
    pthread_mutex_unlock(&c->lock);
    c->ckpt = NULL;
}

static void on_done(struct coordinator *c, int worker, int status) {
    pthread_mutex_lock(&c->lock);
    if (!c->workers[worker].done) {
        c->workers[worker].done = 1;
        c->workers_done++;
    }
    if (status != 0) {
        log_error("worker %d ended with status %d", worker, status);
        c->exit_status = status;
    }
    pthread_mutex_unlock(&c->lock);
}

// Every message from a worker, whichever link carried it. Lengths are checked here: a
// message is outside input to the coordinator.
static void on_message(void *ctx, int worker, int kind, const uint8_t *data, size_t len) {
    struct coordinator *c = ctx;
    if (worker < 0 || worker >= c->run->nworkers) {
        log_warn("message (kind %d) from unknown worker %d ignored", kind, worker);
        return;
    }
    if ((kind == LINK_CKPT_END && len != sizeof(int64_t)) ||
        (kind == LINK_DONE && len != sizeof(int32_t))) {
        log_warn("malformed message (tag %d, %zu bytes) from rank %d ignored", kind, len,
                 worker + 1);
        return;
    }
    c->workers[worker].last_seen = time_now();  // any message shows the worker is alive
    c->workers[worker].heard = 1;
    int64_t step;
    int32_t status;
    switch (kind) {
    case LINK_HEARTBEAT: break;
    case LINK_PROGRESS: on_progress_packed(c, data, len); break;
    case LINK_CKPT_BEGIN: on_checkpoint_begin(c, data, len); break;
    case LINK_CKPT_RECORD: on_checkpoint_record(c, data, len); break;
    case LINK_CKPT_END:
        memcpy(&step, data, sizeof step);
        on_checkpoint_end(c, step);
        break;
    case LINK_DONE:
        memcpy(&status, data, sizeof status);
        on_done(c, worker, status);
        break;
    default: log_warn("unexpected message tag %d from rank %d", kind, worker + 1);
    }
}

int coordinator_exit_status(struct coordinator *c) {
    pthread_mutex_lock(&c->lock);
    int status = c->exit_status;
    pthread_mutex_unlock(&c->lock);
    return status;
}

int coordinator_workers_done(struct coordinator *c) {
    pthread_mutex_lock(&c->lock);
    int done = c->workers_done;
    pthread_mutex_unlock(&c->lock);
    return done;
}

struct uv_loop_s *coordinator_loop(struct coordinator *c) { return &c->loop; }

int coordinator_history(struct coordinator *c, int64_t *steps, double *loss, double *lr,
                        double *ips, int max) {
    pthread_mutex_lock(&c->lock);
    int n = c->hist_count < max ? c->hist_count : max;
    int first = (c->hist_next - n + COORDINATOR_HISTORY) % COORDINATOR_HISTORY;
    for (int i = 0; i < n; i++) {
        int j = (first + i) % COORDINATOR_HISTORY;
        steps[i] = c->hist_step[j];
        loss[i] = c->hist_loss[j];
        lr[i] = c->hist_lr[j];
        ips[i] = c->hist_ips[j];
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

void coordinator_fill_status(struct coordinator *c, Catlip__StatusReply *r, int include_workers) {
    const struct run *run = c->run;
    pthread_mutex_lock(&c->lock);
    r->run_id = (char *)run->run_id;
    r->state = (Catlip__StatusReply__State)c->state;
    r->step = c->last_step;
    r->total_steps = run->total_steps;
    r->epoch = run->steps_per_epoch > 0 ? c->last_step / run->steps_per_epoch : 0;
    r->samples_seen = c->last_step * run->cfg.train.global_batch;
    r->loss = c->last_loss;
    r->learning_rate = c->last_lr;
    r->images_per_second = c->last_ips;
    r->eta_seconds = c->last_ips > 0 ? (double)(run->total_steps - c->last_step) *
                                           run->cfg.train.global_batch / c->last_ips : 0.0;
    // Copies, so that the reply stays intact while it is encoded after the lock is released
    // (in single-process mode the worker thread keeps updating the originals).
    memcpy(c->status_last_checkpoint, c->last_checkpoint, sizeof c->status_last_checkpoint);
    memcpy(c->status_rows, c->workers, (size_t)run->nworkers * sizeof *c->status_rows);
    r->last_checkpoint_path = c->status_last_checkpoint;
    r->last_checkpoint_step = c->last_checkpoint_step;
    r->start_unix_time = time_unix() - (time_now() - c->start_time);
    r->config_summary = c->status_config;
    // Skips summed over workers, and the per-worker rows.
    size_t nskips = 0;
    for (int w = 0; w < run->nworkers; w++) {
        const struct worker_row *row = &c->status_rows[w];
        for (int i = 0; i < row->nskips; i++) {
            size_t j = 0;
            while (j < nskips && strcmp(c->status_skips[j].reason, row->skips[i].reason) != 0) j++;
            if (j == nskips) {
                catlip__skip_count__init(&c->status_skips[j]);
                c->status_skips[j].reason = (char *)row->skips[i].reason;
                c->status_skip_ptrs[j] = &c->status_skips[j];
                nskips++;
            }
            c->status_skips[j].count += row->skips[i].count;
        }
    }
    r->n_skipped = nskips;
    r->skipped = c->status_skip_ptrs;
    r->n_workers = 0;
    if (include_workers) {
        for (int w = 0; w < run->nworkers; w++) {
            Catlip__WorkerStatus *ws = &c->status_workers[w];
            catlip__worker_status__init(ws);
            const struct worker_row *row = &c->status_rows[w];
            ws->worker = w;
            ws->step = row->step;
            ws->images_per_second = row->images_per_second;
            ws->data_wait_ratio = row->data_wait_ratio;
            Catlip__SkipCount *skips = c->status_worker_skips + (size_t)w * MAX_SKIP_REASONS;
            Catlip__SkipCount **ptrs = c->status_worker_skip_ptrs + (size_t)w * MAX_SKIP_REASONS;
            for (int i = 0; i < row->nskips; i++) {
                catlip__skip_count__init(&skips[i]);
                skips[i].reason = (char *)row->skips[i].reason;
                skips[i].count = row->skips[i].count;
                ptrs[i] = &skips[i];
            }
            ws->n_skipped = (size_t)row->nskips;
            ws->skipped = ptrs;
            c->status_worker_ptrs[w] = ws;
        }
        r->n_workers = (size_t)run->nworkers;
        r->workers = c->status_worker_ptrs;
    }
    pthread_mutex_unlock(&c->lock);
}

// ---------------------------------------------------------------------------------------
// the launched-job loop

static void request_command(struct coordinator *c, int kind) {
    int now = atomic_load(&c->pending_command);
    while (kind > now && !atomic_compare_exchange_weak(&c->pending_command, &now, kind)) {
    }
    link_send_command(c->link, atomic_load(&c->pending_command));
}

static void on_signal(uv_signal_t *handle, int signum) {
    struct coordinator *c = handle->data;
    if (signum == SIGINT && ++c->interrupts >= 2) {
        log_error("second interrupt: aborting without a checkpoint");
        link_abort(c->link, 130);
    }
    log_warn("%s: checkpointing at the next step boundary, then stopping", strsignal(signum));
    request_command(c, CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP);
}

// One line per worker at the end: where its time went. Compute excludes time blocked on the
// gradient allreduce; data wait is time the trainer waited for its next batch.
static void log_worker_summary(struct coordinator *c) {
    double cpu = process_cpu_seconds(), wall = time_now() - c->start_time;
    double serving = cpu - c->cpu_at_serve - c->ckpt_cpu;
    double serving_wall = time_now() - c->wall_at_serve;
    log_info("coordinator: %.2f s of CPU over %.1f s (%.2f%% of a core): %.2f s starting up, "
             "%.2f s writing checkpoints, %.2f s coordinating (%.2f%% of a core)", cpu, wall,
             100.0 * cpu / wall, c->cpu_at_serve, c->ckpt_cpu, serving,
             serving_wall > 0 ? 100.0 * serving / serving_wall : 0.0);
    for (int w = 0; w < c->run->nworkers; w++) {
        const struct worker_row *r = &c->workers[w];
        double total = r->data_s + r->compute_s + r->allreduce_s;
        if (r->steps == 0 || total <= 0) continue;
        log_info("worker %d summary: %lld steps, %.2f s/step, %.2f img/s, data wait %.1f%%, "
                 "compute %.1f%%, allreduce wait %.1f%%", w, (long long)r->steps,
                 total / r->steps, c->run->cfg.train.global_batch / (double)c->run->nworkers *
                 r->steps / total, 100 * r->data_s / total, 100 * r->compute_s / total,
                 100 * r->allreduce_s / total);
    }
}

static void on_poll(uv_timer_t *timer) {
    struct coordinator *c = timer->data;
    c->poll_ms = link_poll(c->link) > 0 ? LINK_POLL_MIN_MS
                                  : (c->poll_ms * 2 < LINK_POLL_MAX_MS ? c->poll_ms * 2 : LINK_POLL_MAX_MS);
    uv_timer_start(&c->poll_timer, on_poll, (uint64_t)c->poll_ms, 0);
    if (c->workers_done == c->run->nworkers) {
        pthread_mutex_lock(&c->lock);
        c->state = c->exit_status ? CATLIP__STATUS_REPLY__STATE__FAILED
                                  : CATLIP__STATUS_REPLY__STATE__FINISHED;
        pthread_mutex_unlock(&c->lock);
        log_worker_summary(c);
        uv_stop(&c->loop);
        return;
    }
    // A worker that falls silent (hung, or its host gone) must not hang the job. Workers send
    // heartbeats while they wait in a collective (worker/heartbeat.h), so the silent ones are
    // the lost ones, not the ones waiting for them: name them all, with their hosts. The
    // workers of a dead host fall silent together, but their last messages may be a compute
    // phase apart, so when one passes the timeout the others may not have yet: the abort
    // also names every worker silent for more than half the timeout (a live worker waiting
    // in a collective heartbeats every second at most).
    double now = time_now(), timeout = c->run->cfg.train.worker_timeout;
    struct silent_workers {
        char text[512];
        size_t used;
        int count;
    } named[2] = {0};  // [1]: past the timeout (lost), [0]: past half of it
    for (int i = 0; i < c->run->nworkers; i++) {
        struct worker_row *row = &c->workers[i];
        // Before its first message a worker is starting up (building the model, reading a
        // checkpoint, opening shards), which may outlast a timeout set for steps: it gets
        // at least STARTUP_GRACE_S.
        double limit = row->heard || timeout >= STARTUP_GRACE_S ? timeout : STARTUP_GRACE_S;
        double silent = now - row->last_seen;
        if (row->done || silent <= limit / 2) continue;
        struct silent_workers *list = &named[silent > limit];
        list->count++;
        if (list->used < sizeof list->text) {
            const char *host = c->run->hosts ? c->run->hosts[i + 1] : "?";
            int n = snprintf(list->text + list->used, sizeof list->text - list->used,
                             "%srank %d (host %s, silent %.0f s)", list->used ? ", " : "", i + 1,
                             host, silent);
            list->used += n > 0 ? (size_t)n : 0;
        }
    }
    if (named[1].count > 0) {
        log_error("lost %d worker%s: %s%s%s; no message within train.worker_timeout (%.0f s; "
                  "%.0f s before a worker's first): aborting the job",
                  named[1].count, named[1].count == 1 ? "" : "s", named[1].text,
                  named[0].count ? "; silent for over half the timeout too: " : "", named[0].text,
                  timeout, timeout >= STARTUP_GRACE_S ? timeout : STARTUP_GRACE_S);
        link_abort(c->link, 4);
    }
}

void coordinator_control(struct coordinator *c, int stop) {
    log_info("status client: %s", stop ? "checkpoint and stop" : "checkpoint now");
    request_command(c, stop ? CATLIP__COMMAND__KIND__CHECKPOINT_AND_STOP
                            : CATLIP__COMMAND__KIND__CHECKPOINT);
}

int coordinator_serve(struct coordinator *c) {
    uv_timer_init(&c->loop, &c->poll_timer);
    c->poll_timer.data = c;
    c->poll_ms = LINK_POLL_MIN_MS;
    uv_timer_start(&c->poll_timer, on_poll, 0, 0);
    c->cpu_at_serve = process_cpu_seconds();
    c->wall_at_serve = time_now();
    uv_signal_t *sigs[] = {&c->sig_term, &c->sig_usr1, &c->sig_int};
    int signums[] = {SIGTERM, SIGUSR1, SIGINT};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&c->loop, sigs[i]);
        sigs[i]->data = c;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    if (start_status_server(c) != 0) {
        catlip_error_print();
        link_abort(c->link, 2);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&c->poll_timer);
    for (int i = 0; i < 3; i++) uv_signal_stop(sigs[i]);
    return c->exit_status;
}
