/* The article's leaky fan-out, fixed: a request with a 150 ms budget calls
 * five backends at once, one thread each (ctx_group_run, Go's errgroup).
 * The fast ones answer; when the budget is spent every slow one stops at
 * once, and the call returns with no thread, timer or context left behind.
 * One backend waits the event-loop way: poll() on its socket and on the
 * request's ctx_done_fd together.
 *
 *   cc fanout.c $(pkg-config --cflags --libs ctx) -o fanout */
#define _GNU_SOURCE
#include <ctx.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#define MS (1000 * 1000LL)

typedef struct {
    const char *name;
    int64_t takes_ns; /* how long the backend needs to answer */
    int use_poll;
    int answered;
} backend_t;

static int64_t start_ns;

/* Waits for the "answer" (a pipe that stays silent) or the context's end. */
static ctx_status_t call_polling(const ctx_t *ctx, const backend_t *b) {
    int sock[2];
    ctx_fd_t *done;
    if (pipe(sock) != 0 || ctx_done_fd(ctx, &done) != CTX_OK) return CTX_ESYS;
    struct pollfd fds[2] = {{.fd = sock[0], .events = POLLIN}, {.fd = ctx_fd_get(done), .events = POLLIN}};
    int ready = poll(fds, 2, (int)(b->takes_ns / MS));
    ctx_fd_close(done);
    close(sock[0]);
    close(sock[1]);
    if (ready == 0) return CTX_OK; /* the time it takes passed: its answer */
    return ctx_err(ctx) == CTX_ERR_DEADLINE_EXCEEDED ? CTX_EDEADLINE : CTX_ECANCELED;
}

/* A task of the group: a downstream call that listens to its context. */
static int call(const ctx_t *ctx, void *userdata) {
    backend_t *b = userdata;
    ctx_status_t s = b->use_poll ? call_polling(ctx, b) : ctx_sleep(ctx, b->takes_ns);
    long long at = (long long)((ctx_now_ns() - start_ns) / MS);
    if (s == CTX_OK) {
        b->answered = 1;
        printf("%4lld ms  %-8s answered (needed %lld ms)\n", at, b->name, (long long)(b->takes_ns / MS));
        return 0;
    }
    char why[80];
    ctx_cause(ctx, why, sizeof why, NULL, NULL);
    printf("%4lld ms  %-8s stopped: %s (%s)\n", at, b->name, ctx_err_string(ctx_err(ctx)), why);
    return 0; /* a partial answer is not a failure: the request returns what it has */
}

int main(void) {
    backend_t backends[] = {
        {"auth", 20 * MS, 0, 0},  {"profile", 60 * MS, 0, 0}, {"search", 400 * MS, 0, 0},
        {"ads", 2000 * MS, 1, 0}, {"recs", 5000 * MS, 0, 0},
    };
    enum { N = sizeof backends / sizeof backends[0] };
    ctx_task_t tasks[N];
    for (int i = 0; i < N; i++) tasks[i] = (ctx_task_t){call, &backends[i]};

    ctx_debug_track(true); /* list every context made from here on */
    start_ns = ctx_now_ns();
    ctx_t *request;
    ctx_cancel_t *cancel;
    if (ctx_with_timeout_cause(ctx_background(), 150 * MS, "request budget of 150 ms spent", 504, &request,
                               &cancel) != CTX_OK)
        return 1;
    CTX_DEBUG_SITE(request);
    printf("c: a request fans out to %d backend threads under a 150 ms deadline\n", N);
    ctx_status_t s = ctx_group_run(request, tasks, N, 0, NULL); /* returns once every task has */
    ctx_cancel_and_release(request, cancel);                   /* Go's `defer cancel()` */

    int answered = 0;
    for (int i = 0; i < N; i++) answered += backends[i].answered;
    printf("%4lld ms  %d of %d answered; contexts left: %zu, lost cancels: %llu\n",
           (long long)((ctx_now_ns() - start_ns) / MS), answered, N, ctx_debug_live_contexts(),
           (unsigned long long)ctx_lost_cancels());
    return s == CTX_OK && ctx_debug_live_contexts() == 0 ? 0 : 1; /* nothing left running */
}
