#include "worker/contrastive_sync.h"

#include <string.h>

#include "core/check.h"
#include "core/log.h"
#include "nn/contrastive.h"

void contrastive_sync_init(struct contrastive_sync *s, MPI_Comm comm, int max_rows, int dim,
                           struct heartbeat *heartbeat) {
    memset(s, 0, sizeof *s);
    s->comm = comm;
    s->heartbeat = heartbeat;
    s->rank = 0, s->size = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &s->rank);
        MPI_Comm_size(comm, &s->size);
    }
    s->max_rows = max_rows;
    s->dim = dim;
    const size_t D = (size_t)dim, rows = (size_t)max_rows, all = (size_t)s->size * rows;
    s->counts = xcalloc((size_t)s->size, sizeof *s->counts);
    s->displs = xcalloc((size_t)s->size, sizeof *s->displs);
    s->rows = xcalloc((size_t)s->size, sizeof *s->rows);
    s->image_norm = xaligned_alloc(rows * D * sizeof(float));
    s->text_norm = xaligned_alloc(rows * D * sizeof(float));
    s->image_norms = xaligned_alloc(rows * sizeof(float));
    s->text_norms = xaligned_alloc(rows * sizeof(float));
    s->image_all = xaligned_alloc(all * D * sizeof(float));
    s->text_all = xaligned_alloc(all * D * sizeof(float));
    s->dimage_all = xaligned_alloc(all * D * sizeof(float));
    s->dtext_all = xaligned_alloc(all * D * sizeof(float));
    s->scratch = xaligned_alloc(rows * all * sizeof(float));
}

void contrastive_sync_free(struct contrastive_sync *s) {
    free(s->counts);
    free(s->displs);
    free(s->rows);
    free(s->image_norm);
    free(s->text_norm);
    free(s->image_norms);
    free(s->text_norms);
    free(s->image_all);
    free(s->text_all);
    free(s->dimage_all);
    free(s->dtext_all);
    free(s->scratch);
    memset(s, 0, sizeof *s);
}

// Waits for the requests (through the heartbeat when there is one); an MPI error is fatal.
static void wait_all(struct contrastive_sync *s, int n, MPI_Request *requests, const char *what) {
    int rc = s->heartbeat ? heartbeat_waitall(s->heartbeat, n, requests)
                          : MPI_Waitall(n, requests, MPI_STATUSES_IGNORE);
    if (rc != MPI_SUCCESS) catlip_die("contrastive loss: %s failed (MPI error %d)", what, rc);
}

double contrastive_sync_step(struct contrastive_sync *s, struct pool *pool,
                             const struct kernels *k, float *dimage, float *dtext,
                             float *dlog_scale, const float *image, const float *text, int rows,
                             float log_scale) {
    const int D = s->dim;
    CATLIP_ASSERT(rows >= 0 && rows <= s->max_rows);
    double t0 = time_now();
    l2_normalize_forward(s->image_norm, s->image_norms, image, rows, D);
    l2_normalize_forward(s->text_norm, s->text_norms, text, rows, D);

    if (s->comm == MPI_COMM_NULL) {
        // One worker without MPI: the whole batch is this worker's rows.
        double t1 = time_now();
        memset(s->dimage_all, 0, (size_t)rows * D * sizeof(float));
        memset(s->dtext_all, 0, (size_t)rows * D * sizeof(float));
        double loss = rows == 0 ? 0.0
                                : contrastive_loss_rows(pool, k, s->dimage_all, s->dtext_all,
                                                        dlog_scale, s->scratch, s->image_norm,
                                                        s->text_norm, rows, D, 0, rows, log_scale);
        double t2 = time_now();
        l2_normalize_backward(dimage, s->dimage_all, s->image_norm, s->image_norms, rows, D);
        l2_normalize_backward(dtext, s->dtext_all, s->text_norm, s->text_norms, rows, D);
        s->gather_seconds = t1 - t0, s->loss_seconds = t2 - t1, s->scatter_seconds = time_now() - t2;
        return loss;
    }
    // Who holds how many rows this step, then every worker's rows in worker order.
    MPI_Request req[2];
    MPI_Iallgather(&rows, 1, MPI_INT, s->rows, 1, MPI_INT, s->comm, &req[0]);
    wait_all(s, 1, req, "gathering the row counts");
    int N = 0, begin = 0;
    for (int w = 0; w < s->size; w++) {
        if (s->rows[w] < 0 || s->rows[w] > s->max_rows)
            catlip_die("contrastive loss: worker %d holds %d rows, more than the %d sized for", w,
                       s->rows[w], s->max_rows);
        if (w == s->rank) begin = N;
        s->displs[w] = N * D;
        s->counts[w] = s->rows[w] * D;
        N += s->rows[w];
    }
    MPI_Iallgatherv(s->image_norm, rows * D, MPI_FLOAT, s->image_all, s->counts, s->displs,
                    MPI_FLOAT, s->comm, &req[0]);
    MPI_Iallgatherv(s->text_norm, rows * D, MPI_FLOAT, s->text_all, s->counts, s->displs,
                    MPI_FLOAT, s->comm, &req[1]);
    wait_all(s, 2, req, "gathering the embeddings");

    double t1 = time_now();
    memset(s->dimage_all, 0, (size_t)N * D * sizeof(float));
    memset(s->dtext_all, 0, (size_t)N * D * sizeof(float));
    double share = N == 0 ? 0.0
                          : contrastive_loss_rows(pool, k, s->dimage_all, s->dtext_all,
                                                  dlog_scale, s->scratch, s->image_all,
                                                  s->text_all, N, D, begin, rows, log_scale);

    // Each worker's rows of the summed gathered gradients go back to it.
    double t2 = time_now();
    MPI_Ireduce_scatter(s->dimage_all, dimage, s->counts, MPI_FLOAT, MPI_SUM, s->comm, &req[0]);
    MPI_Ireduce_scatter(s->dtext_all, dtext, s->counts, MPI_FLOAT, MPI_SUM, s->comm, &req[1]);
    wait_all(s, 2, req, "returning the embedding gradients");
    l2_normalize_backward(dimage, dimage, s->image_norm, s->image_norms, rows, D);
    l2_normalize_backward(dtext, dtext, s->text_norm, s->text_norms, rows, D);

    double loss = 0.0;
    MPI_Iallreduce(&share, &loss, 1, MPI_DOUBLE, MPI_SUM, s->comm, &req[0]);
    wait_all(s, 1, req, "summing the loss");
    s->gather_seconds = t1 - t0, s->loss_seconds = t2 - t1, s->scatter_seconds = time_now() - t2;
    return loss;
}
