/* The article's patterns (shared/reference/go-context-article.txt) as the
 * library's helpers, in C: the fan-out as ctx_group_run (Go's errgroup), the
 * retry loop as ctx_retry and ctx_backoff_next (the core's rules), and
 * ctx_sleep; each cut short in the middle by a cancellation or a deadline. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"
#include "signal.h"

/* Fan-out: ctx_group_run ------------------------------------------------- */

enum { WORKERS = 8 };

typedef struct {
    ctx_key_t *trace_key;
    signal_t *started;
    int64_t work_ns;      /* how long this "service" takes */
    int fail_with;        /* returned after the work, 0 for success */
    ctx_status_t slept;   /* what ctx_sleep said */
    char trace[32];
    char cause[64];
    int64_t cause_code;
} fetch_t;

/* A downstream call: sleeps through its work, or stops the moment the
 * group's context is done, as a worker between reads of a socket would. */
static int fetch(const ctx_t *ctx, void *userdata) {
    fetch_t *f = userdata;
    const void *trace;
    if (ctx_value(ctx, f->trace_key, &trace, NULL, NULL) == CTX_OK) {
        snprintf(f->trace, sizeof f->trace, "%s", (const char *)trace);
    }
    signal_bump(f->started);
    f->slept = ctx_sleep(ctx, f->work_ns);
    if (f->slept == CTX_OK) signal_bump(f->started); /* bumped once more by each that answered */
    if (f->slept != CTX_OK) {
        ctx_cause(ctx, f->cause, sizeof f->cause, &f->cause_code, NULL);
        return (int)ctx_err(ctx);
    }
    return f->fail_with;
}

typedef struct {
    ctx_cancel_t *cancel;
    signal_t *started;
    int wait_for;
} canceller_t;

static void *cancel_once_started(void *arg) {
    canceller_t *c = arg;
    signal_wait(c->started, c->wait_for, 60 * SEC);
    CHECK_OK(ctx_cancel_cause(c->cancel, "client disconnected", 499));
    return NULL;
}

static void fan_out(ctx_key_t *key, fetch_t *f, ctx_task_t *tasks, signal_t *started) {
    for (int i = 0; i < WORKERS; i++) {
        /* Two fast services, the rest would take an hour. */
        f[i] = (fetch_t){.trace_key = key, .started = started, .work_ns = i < 2 ? 1 * MS : 3600 * SEC};
        tasks[i] = (ctx_task_t){.fn = fetch, .userdata = &f[i]};
    }
}

static void test_fan_out_stops_on_cancel(void) {
    ctx_key_t *trace_key;
    REQUIRE_OK(ctx_key_new("trace-id", &trace_key));
    ctx_t *conn, *request;
    ctx_cancel_t *disconnect;
    REQUIRE_OK(ctx_with_cancel_cause(ctx_background(), &conn, &disconnect));
    REQUIRE_OK(ctx_with_value_bytes(conn, trace_key, "req-42", 6, &request));

    signal_t started;
    signal_init(&started);
    fetch_t f[WORKERS];
    ctx_task_t tasks[WORKERS];
    fan_out(trace_key, f, tasks, &started);
    /* The client goes away mid-flight: every call started, the two fast ones answered. */
    canceller_t c = {.cancel = disconnect, .started = &started, .wait_for = WORKERS + 2};
    pthread_t t;
    pthread_create(&t, NULL, cancel_once_started, &c);
    int64_t before = ctx_now_ns();
    size_t failed = 99;
    CHECK_STATUS(ctx_group_run(request, tasks, WORKERS, 0, &failed), CTX_ETASK);
    pthread_join(t, NULL);
    CHECK(ctx_now_ns() - before < 30 * SEC); /* every slow worker stopped at once, none ran its hour */
    CHECK(failed >= 2 && failed < WORKERS);   /* a slow one, stopped by the cancellation */
    for (int i = 0; i < WORKERS; i++) {
        CHECK_STR(f[i].trace, "req-42");
        if (i < 2) CHECK_OK(f[i].slept);
        if (i >= 2) {
            CHECK_STATUS(f[i].slept, CTX_ECANCELED);
            CHECK_STR(f[i].cause, "client disconnected");
            CHECK(f[i].cause_code == 499);
        }
    }
    signal_destroy(&started);
    ctx_release(request);
    ctx_cancel_and_release(conn, disconnect);
    ctx_key_release(trace_key);
}

static void test_fan_out_stops_at_deadline_and_nothing_is_left(void) {
    ctx_key_t *trace_key;
    REQUIRE_OK(ctx_key_new("trace-id", &trace_key));
    ctx_t *request;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout_cause(ctx_background(), 100 * MS, "request budget spent", 504, &request, &cancel));
    signal_t started;
    signal_init(&started);
    fetch_t f[WORKERS];
    ctx_task_t tasks[WORKERS];
    fan_out(trace_key, f, tasks, &started);
    size_t timers = ctx_debug_live_timers();
    CHECK_STATUS(ctx_group_run(request, tasks, WORKERS, 0, NULL), CTX_ETASK);
    for (int i = 2; i < WORKERS; i++) {
        CHECK_STATUS(f[i].slept, CTX_EDEADLINE);
        CHECK_STR(f[i].cause, "request budget spent");
        CHECK(f[i].cause_code == 504);
        CHECK_STR(f[i].trace, ""); /* no trace id on this request */
    }
    CHECK(ctx_debug_live_timers() <= timers); /* the sleeps' timers are gone */
    signal_destroy(&started);
    ctx_cancel_and_release(request, cancel);
    ctx_key_release(trace_key);
}

/* The first failure cancels the rest, and is the group's cause with its code. */
static void test_first_failure_cancels_the_rest(void) {
    signal_t started;
    signal_init(&started);
    fetch_t f[3] = {
        {.started = &started, .work_ns = 3600 * SEC},
        {.started = &started, .work_ns = 1 * MS, .fail_with = 503},
        {.started = &started, .work_ns = 3600 * SEC},
    };
    ctx_key_t *key;
    REQUIRE_OK(ctx_key_new("unused", &key));
    ctx_task_t tasks[3];
    for (int i = 0; i < 3; i++) {
        f[i].trace_key = key;
        tasks[i] = (ctx_task_t){fetch, &f[i]};
    }
    size_t failed = 99;
    CHECK_STATUS(ctx_group_run(ctx_background(), tasks, 3, 0, &failed), CTX_ETASK);
    CHECK(failed == 1);
    CHECK_STATUS(f[0].slept, CTX_ECANCELED);
    CHECK_STR(f[0].cause, "task 1 failed");
    CHECK(f[0].cause_code == 503);
    CHECK_STATUS(f[2].slept, CTX_ECANCELED);
    /* All succeed: CTX_OK, and `failed` is left alone. */
    for (int i = 0; i < 3; i++) f[i] = (fetch_t){.trace_key = key, .started = &started, .work_ns = 1 * MS};
    failed = 99;
    CHECK_OK(ctx_group_run(ctx_background(), tasks, 3, 0, &failed));
    CHECK(failed == 99);
    CHECK_OK(ctx_group_run(ctx_background(), NULL, 0, 0, NULL)); /* nothing to run */
    signal_destroy(&started);
    ctx_key_release(key);
}

typedef struct {
    pthread_mutex_t mu;
    int running, most;
} gauge_t;

static int measured(const ctx_t *ctx, void *userdata) {
    gauge_t *g = userdata;
    pthread_mutex_lock(&g->mu);
    if (++g->running > g->most) g->most = g->running;
    pthread_mutex_unlock(&g->mu);
    ctx_sleep(ctx, 2 * MS);
    pthread_mutex_lock(&g->mu);
    g->running--;
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void test_limit_bounds_how_many_run_at_once(void) {
    gauge_t g = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ctx_task_t tasks[10];
    for (int i = 0; i < 10; i++) tasks[i] = (ctx_task_t){measured, &g};
    CHECK_OK(ctx_group_run(ctx_background(), tasks, 10, 3, NULL));
    CHECK(g.most >= 1 && g.most <= 3);
    CHECK(g.running == 0);
}

static void test_group_bad_input(void) {
    ctx_task_t tasks[2] = {{measured, NULL}, {NULL, NULL}};
    CHECK_STATUS(ctx_group_run(NULL, tasks, 1, 0, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_group_run(ctx_background(), NULL, 1, 0, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_group_run(ctx_background(), tasks, 2, 0, NULL), CTX_EINVAL); /* no task ran */
}

/* Retry: ctx_retry and ctx_backoff_next ------------------------------------ */

typedef struct {
    int attempts, succeed_on; /* succeed_on 0: never */
    int fatal_on;
    signal_t *attempted;
} flaky_t;

static int try_once(const ctx_t *ctx, uint32_t attempt, void *userdata) {
    flaky_t *f = userdata;
    (void)ctx;
    f->attempts++;
    CHECK(attempt == (uint32_t)f->attempts);
    if (f->attempted) signal_bump(f->attempted);
    if (f->succeed_on != 0 && f->attempts >= f->succeed_on) return CTX_ATTEMPT_OK;
    if (f->fatal_on != 0 && f->attempts >= f->fatal_on) return CTX_ATTEMPT_FATAL;
    return CTX_ATTEMPT_RETRY;
}

static ctx_backoff_t quick(void) {
    ctx_backoff_t b;
    REQUIRE_OK(ctx_backoff_default(&b));
    b.initial_ns = 1 * MS;
    b.max_ns = 2 * MS;
    b.jitter = 0;
    return b;
}

static void test_retry_succeeds_fails_fatally_or_runs_out(void) {
    ctx_backoff_t b = quick();
    flaky_t ok = {.succeed_on = 3};
    uint32_t attempts = 0;
    CHECK_OK(ctx_retry(ctx_background(), &b, try_once, &ok, &attempts));
    CHECK(ok.attempts == 3 && attempts == 3);
    flaky_t fatal = {.fatal_on = 2};
    CHECK_STATUS(ctx_retry(ctx_background(), &b, try_once, &fatal, &attempts), CTX_ETASK);
    CHECK(attempts == 2);
    b.max_attempts = 3;
    flaky_t never = {0};
    CHECK_STATUS(ctx_retry(ctx_background(), &b, try_once, &never, &attempts), CTX_EATTEMPTS);
    CHECK(never.attempts == 3 && attempts == 3);
}

static void test_retry_backoff_cut_short_by_cancel(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_cancel_cause(ctx_background(), &ctx, &cancel));
    signal_t attempted;
    signal_init(&attempted);
    flaky_t f = {.attempted = &attempted};
    canceller_t c = {.cancel = cancel, .started = &attempted, .wait_for = 1};
    pthread_t t;
    pthread_create(&t, NULL, cancel_once_started, &c);
    ctx_backoff_t b = quick();
    b.initial_ns = b.max_ns = 60 * SEC; /* a one-minute backoff that must not be slept through */
    int64_t start = ctx_now_ns();
    uint32_t attempts = 0;
    CHECK_STATUS(ctx_retry(ctx, &b, try_once, &f, &attempts), CTX_ECANCELED);
    pthread_join(t, NULL);
    CHECK(attempts == 1);
    CHECK(ctx_now_ns() - start < 30 * SEC);
    char why[64];
    CHECK_OK(ctx_cause(ctx, why, sizeof why, NULL, NULL));
    CHECK_STR(why, "client disconnected");
    signal_destroy(&attempted);
    ctx_cancel_and_release(ctx, cancel);
}

static void test_retry_never_starts_an_attempt_the_budget_cannot_fit(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 500 * MS, &ctx, &cancel));
    ctx_backoff_t b = quick();
    b.attempt_ns = 1 * SEC; /* an attempt takes a second; half a second holds none */
    flaky_t f = {0};
    uint32_t attempts = 99;
    CHECK_STATUS(ctx_retry(ctx, &b, try_once, &f, &attempts), CTX_EDEADLINE);
    CHECK(attempts == 0 && f.attempts == 0);
    CHECK(!ctx_is_done(ctx)); /* gave up at once, without waiting out the budget */
    int64_t wait = -1;
    CHECK_STATUS(ctx_backoff_next(ctx, &b, 0, &wait), CTX_EDEADLINE);
    b.attempt_ns = 0;
    CHECK_OK(ctx_backoff_next(ctx, &b, 0, &wait));
    CHECK(wait == 0);
    CHECK_OK(ctx_backoff_next(ctx, &b, 1, &wait));
    CHECK(wait == 1 * MS);
    ctx_cancel_and_release(ctx, cancel);
    CHECK_STATUS(ctx_backoff_next(ctx_background(), NULL, 0, &wait), CTX_EINVAL);
    b.jitter = 2;
    CHECK_STATUS(ctx_backoff_next(ctx_background(), &b, 0, &wait), CTX_EINVAL);
    b = quick();
    b.multiplier = 0.5;
    CHECK_STATUS(ctx_retry(ctx_background(), &b, try_once, &f, NULL), CTX_EINVAL);
    b = quick();
    b.initial_ns = -1;
    CHECK_STATUS(ctx_backoff_next(ctx_background(), &b, 1, &wait), CTX_EINVAL);
    CHECK_STATUS(ctx_retry(ctx_background(), &b, NULL, NULL, NULL), CTX_EINVAL);
}

static void test_retry_cut_short_by_deadline(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 100 * MS, &ctx, &cancel));
    ctx_backoff_t b = quick();
    b.initial_ns = 50 * MS;
    b.max_ns = 60 * SEC;
    b.multiplier = 10; /* the second wait, half a second, goes past the deadline */
    flaky_t f = {0};
    int64_t start = ctx_now_ns();
    CHECK_STATUS(ctx_retry(ctx, &b, try_once, &f, NULL), CTX_EDEADLINE);
    CHECK(f.attempts >= 1 && f.attempts <= 2);
    CHECK(ctx_now_ns() - start < 30 * SEC);
    ctx_cancel_and_release(ctx, cancel);
}

/* ctx_sleep ----------------------------------------------------------------- */

static void test_sleep(void) {
    CHECK_OK(ctx_sleep(ctx_background(), 1 * MS));
    CHECK_OK(ctx_sleep(ctx_background(), -5));
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 20 * MS, &ctx, &cancel));
    int64_t start = ctx_now_ns();
    CHECK_STATUS(ctx_sleep(ctx, 3600 * SEC), CTX_EDEADLINE);
    CHECK(ctx_now_ns() - start < 30 * SEC);
    CHECK_STATUS(ctx_sleep(ctx, 0), CTX_EDEADLINE); /* already done */
    ctx_cancel_and_release(ctx, cancel);
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &ctx, &cancel));
    ctx_cancel(cancel);
    CHECK_STATUS(ctx_sleep(ctx, 3600 * SEC), CTX_ECANCELED);
    ctx_cancel_and_release(ctx, cancel);
    CHECK_STATUS(ctx_sleep(NULL, 1), CTX_EINVAL);
}

int main(void) {
    test_fan_out_stops_on_cancel();
    test_fan_out_stops_at_deadline_and_nothing_is_left();
    test_first_failure_cancels_the_rest();
    test_limit_bounds_how_many_run_at_once();
    test_group_bad_input();
    test_retry_succeeds_fails_fatally_or_runs_out();
    test_retry_backoff_cut_short_by_cancel();
    test_retry_never_starts_an_attempt_the_budget_cannot_fit();
    test_retry_cut_short_by_deadline();
    test_sleep();
    return check_summary("test_patterns");
}
