/* The article's patterns (shared/reference/go-context-article.txt), in C:
 * a fan-out whose workers all stop when the parent is canceled, and a retry
 * loop whose backoff sleep is cut short by cancellation. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"
#include "signal.h"

/* Fan-out ---------------------------------------------------------------- */

enum { WORKERS = 8 };

typedef struct {
    const ctx_t *request; /* borrowed from the handler */
    ctx_key_t *trace_key;
    signal_t *started;
    int64_t work_ns;      /* how long this "service" takes */
    ctx_err_t stopped_by; /* CTX_ERR_NONE if it finished its work */
    char trace[32];
} fetch_t;

/* A downstream call: works in slices, and between slices checks the
 * context, as a worker would between reads of a socket. */
static void *fetch(void *arg) {
    fetch_t *f = arg;
    const void *trace;
    if (ctx_value(f->request, f->trace_key, &trace, NULL, NULL) == CTX_OK) {
        snprintf(f->trace, sizeof f->trace, "%s", (const char *)trace);
    }
    /* Each call gets its own timeout below the request's. */
    ctx_t *call;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(f->request, 3600 * SEC, &call, &cancel));
    signal_bump(f->started);
    int64_t until = ctx_now_ns() + f->work_ns;
    f->stopped_by = CTX_ERR_NONE;
    for (;;) {
        int64_t left = until - ctx_now_ns();
        if (left <= 0) break;
        /* "Work" until the slice ends, or stop the moment the call is done. */
        if (ctx_wait(call, left < 5 * MS ? left : 5 * MS) == CTX_OK) {
            f->stopped_by = ctx_err(call);
            break;
        }
    }
    ctx_cancel(cancel); /* defer cancel() */
    ctx_cancel_release(cancel);
    ctx_release(call);
    return NULL;
}

static void test_fan_out_stops_on_cancel(void) {
    ctx_key_t *trace_key;
    REQUIRE_OK(ctx_key_new("trace-id", &trace_key));
    ctx_t *conn, *request;
    ctx_cancel_t *disconnect;
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &conn, &disconnect));
    REQUIRE_OK(ctx_with_value_bytes(conn, trace_key, "req-42", 6, &request));

    signal_t started;
    signal_init(&started);
    fetch_t f[WORKERS];
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        /* Two fast services, the rest would take an hour. */
        f[i] = (fetch_t){.request = request, .trace_key = trace_key, .started = &started,
                         .work_ns = i < 2 ? 1 * MS : 3600 * SEC};
        pthread_create(&t[i], NULL, fetch, &f[i]);
    }
    CHECK(signal_wait(&started, WORKERS, 30 * SEC));
    int64_t before = ctx_now_ns();
    CHECK_OK(ctx_cancel(disconnect)); /* the client went away */
    for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
    int64_t took = ctx_now_ns() - before;
    CHECK(took < 5 * SEC); /* every slow worker stopped at once, none ran its hour */
    for (int i = 0; i < WORKERS; i++) {
        CHECK_STR(f[i].trace, "req-42");
        if (i >= 2) CHECK(f[i].stopped_by == CTX_ERR_CANCELED);
    }
    signal_destroy(&started);
    ctx_release(request);
    ctx_cancel_release(disconnect);
    ctx_release(conn);
    ctx_key_release(trace_key);
}

static void test_fan_out_stops_at_deadline(void) {
    ctx_key_t *trace_key;
    REQUIRE_OK(ctx_key_new("trace-id", &trace_key));
    ctx_t *request;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 100 * MS, &request, &cancel));
    signal_t started;
    signal_init(&started);
    fetch_t f[WORKERS];
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        f[i] = (fetch_t){.request = request, .trace_key = trace_key, .started = &started,
                         .work_ns = 3600 * SEC};
        pthread_create(&t[i], NULL, fetch, &f[i]);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(t[i], NULL);
        CHECK(f[i].stopped_by == CTX_ERR_DEADLINE_EXCEEDED);
        CHECK_STR(f[i].trace, ""); /* no trace id on this request */
    }
    signal_destroy(&started);
    ctx_cancel(cancel);
    ctx_cancel_release(cancel);
    ctx_release(request);
    ctx_key_release(trace_key);
}

/* Retry with backoff ------------------------------------------------------ */

typedef struct {
    int attempts, succeed_on; /* succeed_on 0: always fail */
    signal_t *attempted;
} flaky_t;

static bool try_once(flaky_t *f) {
    f->attempts++;
    signal_bump(f->attempted);
    return f->succeed_on != 0 && f->attempts >= f->succeed_on;
}

/* Go's retryWithBackoff: the backoff sleep is a wait on the context, so a
 * cancellation or deadline cuts through it at once. Returns CTX_ERR_NONE on
 * success, the context's error if it stopped the retries, -1 if it gave up. */
static int retry_with_backoff(const ctx_t *ctx, int max_retries, int64_t backoff_ns, flaky_t *f) {
    for (int i = 0; i < max_retries; i++) {
        if (try_once(f)) return CTX_ERR_NONE;
        if (ctx_wait(ctx, backoff_ns << i) == CTX_OK) return ctx_err(ctx);
    }
    return -1;
}

typedef struct {
    ctx_cancel_t *cancel;
    signal_t *attempted;
} canceller_t;

static void *cancel_after_first_attempt(void *arg) {
    canceller_t *c = arg;
    signal_wait(c->attempted, 1, 60 * SEC);
    CHECK_OK(ctx_cancel(c->cancel));
    return NULL;
}

static void test_retry_backoff_cut_short_by_cancel(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &ctx, &cancel));
    signal_t attempted;
    signal_init(&attempted);
    flaky_t f = {.attempted = &attempted};
    canceller_t c = {.cancel = cancel, .attempted = &attempted};
    pthread_t t;
    pthread_create(&t, NULL, cancel_after_first_attempt, &c);
    int64_t start = ctx_now_ns();
    /* A one-minute backoff that must not be slept through. */
    int r = retry_with_backoff(ctx, 5, 60 * SEC, &f);
    int64_t took = ctx_now_ns() - start;
    pthread_join(t, NULL);
    CHECK(r == CTX_ERR_CANCELED);
    CHECK(f.attempts == 1);
    CHECK(took < 10 * SEC);
    signal_destroy(&attempted);
    ctx_cancel_release(cancel);
    ctx_release(ctx);
}

static void test_retry_backoff_cut_short_by_deadline(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 100 * MS, &ctx, &cancel));
    signal_t attempted;
    signal_init(&attempted);
    flaky_t f = {.attempted = &attempted};
    int64_t start = ctx_now_ns();
    int r = retry_with_backoff(ctx, 5, 60 * SEC, &f);
    CHECK(r == CTX_ERR_DEADLINE_EXCEEDED);
    CHECK(f.attempts == 1);
    CHECK(ctx_now_ns() - start < 10 * SEC);
    signal_destroy(&attempted);
    ctx_cancel(cancel);
    ctx_cancel_release(cancel);
    ctx_release(ctx);
}

static void test_retry_succeeds_and_gives_up(void) {
    signal_t attempted;
    signal_init(&attempted);
    flaky_t ok = {.succeed_on = 3, .attempted = &attempted};
    CHECK(retry_with_backoff(ctx_background(), 5, 1 * MS, &ok) == CTX_ERR_NONE);
    CHECK(ok.attempts == 3);
    flaky_t never = {.attempted = &attempted};
    CHECK(retry_with_backoff(ctx_background(), 3, 1 * MS, &never) == -1);
    CHECK(never.attempts == 3);
    signal_destroy(&attempted);
}

int main(void) {
    test_fan_out_stops_on_cancel();
    test_fan_out_stops_at_deadline();
    test_retry_backoff_cut_short_by_cancel();
    test_retry_backoff_cut_short_by_deadline();
    test_retry_succeeds_and_gives_up();
    return check_summary("test_patterns");
}
