#include "train/link.h"

#include <stdlib.h>

void link_destroy(struct link *l) {
    if (l) l->ops->destroy(l);
}

void link_send(struct link *l, int worker, int kind, const void *data, size_t len) {
    l->ops->send(l, worker, kind, data, len);
}

void link_send_step(struct link *l, int worker, int kind, int64_t step) {
    l->ops->send(l, worker, kind, &step, sizeof step);
}

void link_send_status(struct link *l, int worker, int status) {
    int32_t s = status;
    l->ops->send(l, worker, LINK_DONE, &s, sizeof s);
}

int link_poll_command(struct link *l) {
    return l->ops->poll_command(l);
}

void link_set_receiver(struct link *l, link_receive_fn receive, void *ctx) {
    l->receive = receive;
    l->receive_ctx = ctx;
}

int link_poll(struct link *l) {
    return l->ops->poll(l);
}

void link_send_command(struct link *l, int kind) {
    l->ops->send_command(l, kind);
}

void link_abort(struct link *l, int status) {
    l->ops->abort(l, status);
    exit(status);  // an implementation that returns: this process at least ends
}
