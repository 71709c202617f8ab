/* The fan-out demo: one request with a 150 ms budget calls five backends in
 * parallel threads. The fast ones finish; when the budget is spent, every
 * slow one stops at once, and none is left running.
 *
 * One backend is waited for the event-loop way: poll() on its socket and on
 * the request's ctx_done_fd together. */
#define _GNU_SOURCE
#include <ctx.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define MS (1000 * 1000LL)

typedef struct {
    const char *name;
    int64_t takes_ns; /* how long the backend needs to answer */
    bool use_poll;
} backend_t;

static const backend_t backends[] = {
    {"auth", 20 * MS, false},  {"profile", 60 * MS, false}, {"search", 400 * MS, false},
    {"ads", 2000 * MS, true},  {"recs", 5000 * MS, false},
};
enum { N = sizeof backends / sizeof backends[0] };

static int64_t start_ns;
static atomic_int running;
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    const backend_t *backend;
    const ctx_t *request; /* borrowed: main holds it until every worker is joined */
} call_t;

static void report(const backend_t *b, const ctx_t *request, bool finished) {
    int64_t at = (ctx_now_ns() - start_ns) / MS;
    pthread_mutex_lock(&print_mu);
    if (finished) {
        printf("%4lld ms  %-8s finished (needed %lld ms)\n", (long long)at, b->name, (long long)(b->takes_ns / MS));
    } else {
        char cause[80];
        ctx_cause(request, cause, sizeof cause, NULL, NULL);
        const char *err = ctx_err(request) == CTX_ERR_DEADLINE_EXCEEDED ? "deadline exceeded" : "canceled";
        printf("%4lld ms  %-8s stopped: %s (%s)\n", (long long)at, b->name, err, cause);
    }
    pthread_mutex_unlock(&print_mu);
}

/* Waits for the backend's answer or the request's end, whichever is first. */
static bool call_blocking(const call_t *c) {
    return ctx_wait(c->request, c->backend->takes_ns) == CTX_ETIMEDOUT;
}

static bool call_polling(const call_t *c) {
    int sock[2]; /* stands for a socket whose answer never comes in time */
    ctx_fd_t *done;
    if (pipe(sock) != 0 || ctx_done_fd(c->request, &done) != CTX_OK) return false;
    struct pollfd fds[2] = {{.fd = sock[0], .events = POLLIN}, {.fd = ctx_fd_get(done), .events = POLLIN}};
    int ready = poll(fds, 2, (int)(c->backend->takes_ns / MS));
    bool answered = ready == 0 || (fds[0].revents & POLLIN); /* timeout: the "answer" */
    ctx_fd_close(done);
    close(sock[0]);
    close(sock[1]);
    return answered && !(fds[1].revents & POLLIN);
}

static void *worker(void *arg) {
    const call_t *c = arg;
    bool finished = c->backend->use_poll ? call_polling(c) : call_blocking(c);
    report(c->backend, c->request, finished);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

int main(void) {
    start_ns = ctx_now_ns();
    ctx_t *request;
    ctx_cancel_t *cancel;
    if (ctx_with_timeout_cause(ctx_background(), 150 * MS, "request budget of 150 ms spent", 504, &request,
                               &cancel) != CTX_OK)
        return 1;
    printf("c: a request fans out to %d backend threads under a 150 ms deadline\n", N);

    pthread_t threads[N];
    call_t calls[N];
    for (int i = 0; i < N; i++) {
        calls[i] = (call_t){&backends[i], request};
        atomic_fetch_add(&running, 1);
        pthread_create(&threads[i], NULL, worker, &calls[i]);
    }
    for (int i = 0; i < N; i++) pthread_join(threads[i], NULL);
    printf("%4lld ms  all joined; workers still running: %d\n", (long long)((ctx_now_ns() - start_ns) / MS),
           atomic_load(&running));

    ctx_cancel(cancel); /* defer cancel() */
    ctx_cancel_release(cancel);
    ctx_release(request);
    return atomic_load(&running) == 0 ? 0 : 1;
}
