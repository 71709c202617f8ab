/* What only a C program shows: 10,000 after-funcs on one context, and how
 * late a C thread waiting on a deadline runs (blocked in ctx_wait, or in
 * poll() on ctx_done_fd). The per-call overhead of the C ABI over the core
 * is timed by bench/rust, which calls ctx_* beside the core in one process.
 * Prints one JSON line per result, the format every bench program shares
 * (bench/run.py reads them):
 *
 *   {"area":"c","op":"<name>","impl":"polyctx","unit":"ns_per_op","value":<median>,"p99":<p99>}
 *
 *   bench [--quick] [--lateness idle|loaded]
 *
 * Build against a release libctx (`make bench-c`). */
#define _GNU_SOURCE
#include <ctx.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 7

static int64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank q-quantile of n sorted values, as bench/rust takes it. */
static double quantile(const double *sorted, int n, double q) {
    return sorted[(int)((n - 1) * q + 0.5)];
}

static void emit(const char *op, double *samples, int n) {
    qsort(samples, (size_t)n, sizeof samples[0], cmp);
    printf("{\"area\":\"c\",\"op\":\"%s\",\"impl\":\"polyctx\",\"unit\":\"ns_per_op\",\"value\":%.3f,"
           "\"p99\":%.3f}\n",
           op, quantile(samples, n, 0.5), quantile(samples, n, 0.99));
}

/* 10,000 after-funcs on one context, then one cancel: when the cancel
 * returns and when the last function has run, as bench/rust reports them. */
#define AFTER_FUNCS 10000

typedef struct {
    atomic_int ran;
    pthread_mutex_t lock;
    pthread_cond_t all_ran;
} after_count_t;

static void count_one(void *arg) {
    after_count_t *a = arg;
    if (atomic_fetch_add(&a->ran, 1) + 1 == AFTER_FUNCS) {
        pthread_mutex_lock(&a->lock);
        pthread_cond_signal(&a->all_ran);
        pthread_mutex_unlock(&a->lock);
    }
}

static void after_funcs(void) {
    double returned[RUNS], all_ran[RUNS];
    static ctx_after_func_t *handles[AFTER_FUNCS];
    for (int r = 0; r < RUNS; r++) {
        after_count_t a = {.lock = PTHREAD_MUTEX_INITIALIZER, .all_ran = PTHREAD_COND_INITIALIZER};
        atomic_init(&a.ran, 0);
        ctx_t *c;
        ctx_cancel_t *k;
        ctx_with_cancel(ctx_background(), &c, &k);
        for (int i = 0; i < AFTER_FUNCS; i++) ctx_after_func(c, count_one, &a, NULL, &handles[i]);
        int64_t t = now();
        ctx_cancel(k);
        returned[r] = (double)(now() - t);
        pthread_mutex_lock(&a.lock);
        while (atomic_load(&a.ran) < AFTER_FUNCS) pthread_cond_wait(&a.all_ran, &a.lock);
        pthread_mutex_unlock(&a.lock);
        all_ran[r] = (double)(now() - t);
        for (int i = 0; i < AFTER_FUNCS; i++) ctx_after_func_release(handles[i]);
        ctx_cancel_and_release(c, k);
    }
    emit("10k after-funcs: cancel returns", returned, RUNS);
    emit("10k after-funcs: all have run", all_ran, RUNS);
}

/* From a deadline to a C thread waiting on it running again, p50/p99/max
 * over `count` deadlines 2 to 3.8 ms ahead: blocked in ctx_wait (which fires
 * the deadline itself when it wakes first), and in poll() on ctx_done_fd
 * (woken by polyctx's timer thread), beside the floor: clock_nanosleep to
 * the same instant. bench/run.py runs this idle and under bench/load.py. */
static void emit_lateness(const char *op, const char *impl, const char *load, double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], cmp);
    printf("{\"area\":\"lateness\",\"op\":\"%s\",\"impl\":\"%s\",\"unit\":\"ns_per_op\",\"load\":\"%s\","
           "\"value\":%.0f,\"p99\":%.0f,\"max\":%.0f}\n",
           op, impl, load, quantile(v, n, 0.5), quantile(v, n, 0.99), v[n - 1]);
}

static void lateness(const char *load, int count) {
    double *waited = calloc((size_t)count, sizeof(double)), *polled = calloc((size_t)count, sizeof(double)),
           *slept = calloc((size_t)count, sizeof(double));
    if (waited == NULL || polled == NULL || slept == NULL) exit(1);
    for (int i = 0; i < count; i++) {
        int64_t ahead = (2000 + (i % 7) * 300) * 1000LL, deadline;
        ctx_t *c;
        ctx_cancel_t *k;
        ctx_with_timeout(ctx_background(), ahead, &c, &k);
        ctx_deadline(c, &deadline);
        ctx_wait(c, -1);
        waited[i] = (double)(ctx_now_ns() - deadline);
        ctx_cancel_and_release(c, k);

        ctx_with_timeout(ctx_background(), ahead, &c, &k);
        ctx_deadline(c, &deadline);
        ctx_fd_t *fd;
        if (ctx_done_fd(c, &fd) != CTX_OK) exit(1);
        struct pollfd p = {.fd = ctx_fd_get(fd), .events = POLLIN};
        while (poll(&p, 1, -1) != 1) {
        }
        polled[i] = (double)(ctx_now_ns() - deadline);
        ctx_fd_close(fd);
        ctx_cancel_and_release(c, k);

        deadline = ctx_now_ns() + ahead;
        struct timespec until = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0) {
        }
        slept[i] = (double)(ctx_now_ns() - deadline);
    }
    emit_lateness("c: thread blocked in ctx_wait", "polyctx", load, waited, count);
    emit_lateness("c: thread blocked in ctx_wait", "clock_nanosleep", load, slept, count);
    emit_lateness("c: thread in poll() on ctx_done_fd", "polyctx", load, polled, count);
    free(waited);
    free(polled);
    free(slept);
}

int main(int argc, char **argv) {
    int quick = 0;
    const char *load = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        if (strcmp(argv[i], "--lateness") == 0 && i + 1 < argc) load = argv[++i];
    }
    if (load != NULL) {
        lateness(load, quick ? 50 : 300);
        return 0;
    }
    after_funcs();
    return 0;
}
