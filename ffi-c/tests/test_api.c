/* Every function of ctx.h, one behaviour at a time, and every documented
 * answer to bad input. Single-threaded except where a callback has its own
 * thread. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdint.h>
#include <sys/stat.h>

#include "check.h"
#include "signal.h"

/* A context that can be canceled, with its handle. */
typedef struct {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
} pair_t;

static pair_t with_cancel(const ctx_t *parent) {
    pair_t p;
    REQUIRE_OK(ctx_with_cancel(parent, &p.ctx, &p.cancel));
    return p;
}

static pair_t with_cancel_cause(const ctx_t *parent) {
    pair_t p;
    REQUIRE_OK(ctx_with_cancel_cause(parent, &p.ctx, &p.cancel));
    return p;
}

static void drop(pair_t p) {
    ctx_cancel(p.cancel);
    ctx_cancel_release(p.cancel);
    ctx_release(p.ctx);
}

/* The cause's text, or "(live)". */
static const char *cause_of(const ctx_t *ctx, int64_t *code) {
    static char buf[256];
    int s = ctx_cause(ctx, buf, sizeof buf, code, NULL);
    return s == CTX_OK ? buf : s == CTX_ENOTDONE ? "(live)" : "(error)";
}

static bool is_fifo(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static bool readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void test_roots(void) {
    ctx_t *roots[] = {ctx_background(), ctx_todo()};
    CHECK(roots[0] != NULL && roots[1] != NULL && roots[0] != roots[1]);
    for (int i = 0; i < 2; i++) {
        ctx_t *r = roots[i];
        CHECK(!ctx_is_done(r));
        CHECK(ctx_err(r) == CTX_ERR_NONE);
        int64_t dl = 42;
        CHECK_STATUS(ctx_deadline(r, &dl), CTX_ENODEADLINE);
        CHECK(dl == 42);
        CHECK_STATUS(ctx_cause(r, NULL, 0, NULL, NULL), CTX_ENOTDONE);
        CHECK_STATUS(ctx_wait(r, 0), CTX_ETIMEDOUT);
        CHECK_STATUS(ctx_wait(r, 20 * MS), CTX_ETIMEDOUT);
        int64_t before = ctx_now_ns();
        CHECK_STATUS(ctx_wait(r, 1), CTX_ETIMEDOUT);
        CHECK(ctx_now_ns() - before < 5 * SEC);
        /* Immortal: retain gives itself, releasing any number of times is harmless. */
        CHECK(ctx_retain(r) == r);
        for (int j = 0; j < 5; j++) ctx_release(r);
        CHECK(ctx_background() == roots[0] && ctx_todo() == roots[1]);
        pair_t c = with_cancel(r);
        CHECK(!ctx_is_done(c.ctx));
        drop(c);
        CHECK(!ctx_is_done(r));
    }
}

static void test_cancel_tree(void) {
    pair_t parent = with_cancel(ctx_background());
    pair_t child = with_cancel(parent.ctx);
    pair_t sibling = with_cancel(parent.ctx);
    pair_t grandchild = with_cancel(child.ctx);

    CHECK_OK(ctx_cancel(child.cancel));
    CHECK(ctx_err(child.ctx) == CTX_ERR_CANCELED && ctx_is_done(child.ctx));
    CHECK(ctx_err(grandchild.ctx) == CTX_ERR_CANCELED);
    CHECK(!ctx_is_done(parent.ctx) && !ctx_is_done(sibling.ctx)); /* never upwards */
    CHECK_STR(cause_of(grandchild.ctx, NULL), "context canceled");

    CHECK_OK(ctx_cancel(parent.cancel));
    CHECK_OK(ctx_cancel(parent.cancel)); /* idempotent */
    CHECK(ctx_err(parent.ctx) == CTX_ERR_CANCELED && ctx_err(sibling.ctx) == CTX_ERR_CANCELED);
    CHECK_OK(ctx_wait(sibling.ctx, 0));
    CHECK_OK(ctx_wait(sibling.ctx, -1));
    CHECK_OK(ctx_wait(sibling.ctx, INT64_MIN)); /* negative: no timeout, and done */
    CHECK_OK(ctx_wait(sibling.ctx, INT64_MAX));

    /* A child of a done parent is done at birth, with the parent's cause. */
    pair_t late = with_cancel(parent.ctx);
    CHECK(ctx_err(late.ctx) == CTX_ERR_CANCELED);

    /* Releasing a parent first is fine: children keep what they need. */
    ctx_release(parent.ctx);
    ctx_cancel_release(parent.cancel);
    drop(late);
    drop(grandchild);
    drop(sibling);
    drop(child);
}

static void test_retain_release(void) {
    pair_t p = with_cancel(ctx_background());
    ctx_t *again = ctx_retain(p.ctx);
    CHECK(again == p.ctx);
    ctx_cancel_t *cancel2 = ctx_cancel_retain(p.cancel);
    CHECK(cancel2 == p.cancel);
    ctx_release(p.ctx);
    ctx_cancel_release(p.cancel);
    /* Still one reference of each. */
    CHECK(!ctx_is_done(again));
    CHECK_OK(ctx_cancel(cancel2));
    CHECK(ctx_is_done(again));
    ctx_cancel_release(cancel2);
    ctx_release(again);

    /* Releasing a cancel handle does not cancel (Go's semantics). */
    pair_t q = with_cancel(ctx_background());
    pair_t child = with_cancel(q.ctx);
    ctx_cancel_release(q.cancel);
    CHECK(!ctx_is_done(q.ctx));
    drop(child);
    ctx_release(q.ctx);
}

/* Go's `defer cancel()` in one call, and what each release leaves alive. */
static void test_cancel_and_release(void) {
    pair_t p = with_cancel(ctx_background());
    pair_t child = with_cancel(p.ctx);
    ctx_t *watch = ctx_retain(p.ctx);
    ctx_cancel_and_release(p.ctx, p.cancel);
    CHECK(ctx_err(watch) == CTX_ERR_CANCELED);
    CHECK(ctx_err(child.ctx) == CTX_ERR_CANCELED); /* descendants too */
    ctx_release(watch);
    drop(child);

    /* Both NULL (a failed derive leaves them so): nothing happens. */
    ctx_t *c = NULL;
    ctx_cancel_t *k = NULL;
    CHECK_STATUS(ctx_with_cancel(NULL, &c, &k), CTX_EINVAL);
    ctx_cancel_and_release(c, k);
    /* Only the cancel handle: cancels and releases it. */
    pair_t q = with_cancel(ctx_background());
    ctx_cancel_and_release(NULL, q.cancel);
    CHECK(ctx_is_done(q.ctx));
    ctx_cancel_and_release(q.ctx, NULL);

    /* Releasing both handles without cancelling leaves a child that someone
     * holds live, deadline and all, until the deadline passes. */
    pair_t t;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 3600 * SEC, &t.ctx, &t.cancel));
    pair_t held = with_cancel(t.ctx);
    ctx_cancel_release(t.cancel);
    ctx_release(t.ctx);
    int64_t dl = 0;
    CHECK(!ctx_is_done(held.ctx));
    CHECK_OK(ctx_deadline(held.ctx, &dl));
    CHECK(dl > ctx_now_ns() + 3000 * SEC);
    drop(held);
}

static void test_cause(void) {
    pair_t p = with_cancel_cause(ctx_background());
    pair_t child = with_cancel(p.ctx);
    int64_t code = -1;
    CHECK_STATUS(ctx_cause(p.ctx, NULL, 0, &code, NULL), CTX_ENOTDONE);
    CHECK(code == -1);

    CHECK_OK(ctx_cancel_cause(p.cancel, "upstream closed", 104));
    CHECK_OK(ctx_cancel_cause(p.cancel, "second", 2)); /* first cause wins */
    CHECK_OK(ctx_cancel(p.cancel));
    CHECK(ctx_err(p.ctx) == CTX_ERR_CANCELED);
    CHECK_STR(cause_of(p.ctx, &code), "upstream closed");
    CHECK(code == 104);
    CHECK_STR(cause_of(child.ctx, &code), "upstream closed"); /* flows down */
    CHECK(code == 104);

    /* snprintf semantics. */
    size_t n = 0;
    CHECK_OK(ctx_cause(p.ctx, NULL, 0, NULL, &n));
    CHECK(n == strlen("upstream closed"));
    char small[5];
    memset(small, 'x', sizeof small);
    CHECK_OK(ctx_cause(p.ctx, small, sizeof small, NULL, &n));
    CHECK(memcmp(small, "upst", 5) == 0); /* 4 bytes and a NUL */
    CHECK(n == 15 && n >= sizeof small);
    char exact[16];
    CHECK_OK(ctx_cause(p.ctx, exact, sizeof exact, NULL, &n));
    CHECK_STR(exact, "upstream closed");
    CHECK(n < sizeof exact);
    char one[1] = {'x'};
    CHECK_OK(ctx_cause(p.ctx, one, 1, NULL, NULL));
    CHECK(one[0] == '\0');
    drop(child);
    drop(p);

    /* ctx_cancel on a cause handle is Go's cancel(nil). */
    pair_t nil = with_cancel_cause(ctx_background());
    CHECK_OK(ctx_cancel(nil.cancel));
    CHECK_STR(cause_of(nil.ctx, &code), "context canceled");
    CHECK(code == 0);
    drop(nil);

    /* Code 0 means "no code"; non-UTF-8 is replaced, not refused. */
    pair_t odd = with_cancel_cause(ctx_background());
    CHECK_OK(ctx_cancel_cause(odd.cancel, "bad \xff byte", 0));
    CHECK_STR(cause_of(odd.ctx, &code), "bad \xef\xbf\xbd byte");
    CHECK(code == 0);
    drop(odd);

    /* A plain cancel handle cannot record a cause, and cancels nothing. */
    pair_t plain = with_cancel(ctx_background());
    CHECK_STATUS(ctx_cancel_cause(plain.cancel, "why", 1), CTX_EKIND);
    CHECK(!ctx_is_done(plain.ctx));
    drop(plain);
    pair_t timed;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 3600 * SEC, &timed.ctx, &timed.cancel));
    CHECK_STATUS(ctx_cancel_cause(timed.cancel, "why", 1), CTX_EKIND);
    CHECK(!ctx_is_done(timed.ctx));
    drop(timed);
}

static void test_deadlines(void) {
    int64_t start = ctx_now_ns(), dl = 0;
    CHECK(start > 0);
    pair_t t;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 50 * MS, &t.ctx, &t.cancel));
    CHECK_OK(ctx_deadline(t.ctx, &dl));
    CHECK(dl >= start + 50 * MS && dl <= ctx_now_ns() + 50 * MS);
    CHECK_OK(ctx_wait(t.ctx, 10 * SEC));
    CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    CHECK(ctx_now_ns() >= dl);
    CHECK_STR(cause_of(t.ctx, NULL), "context deadline exceeded");
    drop(t);

    /* Zero and negative timeouts, and past deadlines: done at once. */
    int64_t past[] = {0, -1, INT64_MIN};
    for (int i = 0; i < 3; i++) {
        REQUIRE_OK(ctx_with_timeout(ctx_background(), past[i], &t.ctx, &t.cancel));
        CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
        drop(t);
        REQUIRE_OK(ctx_with_deadline(ctx_background(), past[i], &t.ctx, &t.cancel));
        CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
        drop(t);
    }
    REQUIRE_OK(ctx_with_deadline(ctx_background(), ctx_now_ns(), &t.ctx, &t.cancel));
    CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    drop(t);

    /* Huge ones saturate centuries away and stay live. */
    int64_t century = 100LL * 365 * 86400 * SEC;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), INT64_MAX, &t.ctx, &t.cancel));
    CHECK(!ctx_is_done(t.ctx));
    CHECK_OK(ctx_deadline(t.ctx, &dl));
    CHECK(dl > ctx_now_ns() + century);
    pair_t d;
    REQUIRE_OK(ctx_with_deadline(ctx_background(), INT64_MAX, &d.ctx, &d.cancel));
    int64_t dl2 = 0;
    CHECK_OK(ctx_deadline(d.ctx, &dl2));
    CHECK(dl2 == dl); /* both saturate to the same latest deadline */
    drop(d);
    drop(t);

    /* Exact deadlines come back exactly; a later child keeps its parent's. */
    int64_t at = ctx_now_ns() + 3600 * SEC;
    REQUIRE_OK(ctx_with_deadline(ctx_background(), at, &t.ctx, &t.cancel));
    CHECK_OK(ctx_deadline(t.ctx, &dl));
    CHECK(dl == at);
    REQUIRE_OK(ctx_with_deadline(t.ctx, at + SEC, &d.ctx, &d.cancel));
    CHECK_OK(ctx_deadline(d.ctx, &dl));
    CHECK(dl == at);
    pair_t c = with_cancel(d.ctx);
    CHECK_OK(ctx_deadline(c.ctx, &dl));
    CHECK(dl == at);
    /* Canceling first: canceled, not deadline exceeded. */
    CHECK_OK(ctx_cancel(t.cancel));
    CHECK(ctx_err(c.ctx) == CTX_ERR_CANCELED);
    drop(c);
    drop(d);
    drop(t);

    /* Deadline causes apply when the deadline passes... */
    int64_t code = 0;
    REQUIRE_OK(ctx_with_timeout_cause(ctx_background(), 20 * MS, "slow backend", 504, &t.ctx, &t.cancel));
    CHECK_OK(ctx_wait(t.ctx, 10 * SEC));
    CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    CHECK_STR(cause_of(t.ctx, &code), "slow backend");
    CHECK(code == 504);
    drop(t);
    REQUIRE_OK(ctx_with_deadline_cause(ctx_background(), ctx_now_ns() - 1, "too late", 7, &t.ctx, &t.cancel));
    CHECK_STR(cause_of(t.ctx, &code), "too late");
    CHECK(code == 7);
    drop(t);
    /* ...not when the context is canceled first. */
    REQUIRE_OK(ctx_with_deadline_cause(ctx_background(), ctx_now_ns() + 3600 * SEC, "never", 1, &t.ctx,
                                       &t.cancel));
    CHECK_OK(ctx_cancel(t.cancel));
    CHECK_STR(cause_of(t.ctx, &code), "context canceled");
    CHECK(code == 0);
    drop(t);
}

static void test_without_cancel(void) {
    ctx_key_t *key;
    REQUIRE_OK(ctx_key_new("k", &key));
    pair_t p;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 3600 * SEC, &p.ctx, &p.cancel));
    ctx_t *v;
    REQUIRE_OK(ctx_with_value_bytes(p.ctx, key, "val", 3, &v));
    ctx_t *w;
    CHECK_OK(ctx_without_cancel(v, &w));
    CHECK_OK(ctx_cancel(p.cancel));
    CHECK(ctx_is_done(v) && !ctx_is_done(w));
    CHECK(ctx_err(w) == CTX_ERR_NONE);
    int64_t dl;
    CHECK_STATUS(ctx_deadline(w, &dl), CTX_ENODEADLINE);
    CHECK_STATUS(ctx_cause(w, NULL, 0, NULL, NULL), CTX_ENOTDONE);
    const void *data = NULL;
    CHECK_OK(ctx_value(w, key, &data, NULL, NULL));
    CHECK_STR((const char *)data, "val");
    ctx_release(w);
    ctx_release(v);
    drop(p);
    ctx_key_release(key);
}

static atomic_int dtor_calls;
static void *dtor_last;
static void count_dtor(void *p) {
    atomic_fetch_add(&dtor_calls, 1);
    dtor_last = p;
}

static void test_values(void) {
    ctx_key_t *trace, *user, *twin;
    REQUIRE_OK(ctx_key_new("trace", &trace));
    REQUIRE_OK(ctx_key_new("user", &user));
    REQUIRE_OK(ctx_key_new("trace", &twin)); /* same name, different key */

    ctx_t *a;
    CHECK_OK(ctx_with_value_bytes(ctx_background(), trace, "abc-123", 7, &a));
    pair_t c = with_cancel(a);
    ctx_t *b;
    CHECK_OK(ctx_with_value_bytes(c.ctx, trace, "shadow\0x", 8, &b));

    const void *data = NULL;
    size_t len = 0;
    ctx_value_kind_t kind = 0;
    CHECK_OK(ctx_value(c.ctx, trace, &data, &len, &kind)); /* through a cancel node */
    CHECK(len == 7 && kind == CTX_VALUE_BYTES);
    CHECK_STR((const char *)data, "abc-123");       /* NUL-terminated copy */
    CHECK_OK(ctx_value(b, trace, &data, &len, NULL));
    CHECK(len == 8 && memcmp(data, "shadow\0x", 9) == 0); /* binary, then the NUL */
    const void *untouched = &len;
    data = untouched;
    kind = 0;
    CHECK_STATUS(ctx_value(b, user, &data, &len, &kind), CTX_ENOTFOUND);
    CHECK_STATUS(ctx_value(b, twin, &data, &len, &kind), CTX_ENOTFOUND);
    CHECK(data == untouched && kind == 0);
    CHECK_STATUS(ctx_value(ctx_background(), trace, &data, NULL, NULL), CTX_ENOTFOUND);

    /* Empty values: NULL data is fine when len is 0. */
    ctx_t *e;
    CHECK_OK(ctx_with_value_bytes(b, user, NULL, 0, &e));
    CHECK_OK(ctx_value(e, user, &data, &len, &kind));
    CHECK(len == 0 && kind == CTX_VALUE_BYTES && ((const char *)data)[0] == '\0');
    ctx_release(e);
    CHECK_STATUS(ctx_with_value_bytes(b, user, NULL, 1, &e), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value_bytes(b, user, "x", (size_t)PTRDIFF_MAX + 1, &e), CTX_ERANGE);

    /* Pointer values: the destructor runs once, when the last holder goes. */
    static int principal = 7;
    ctx_t *p;
    atomic_store(&dtor_calls, 0);
    CHECK_OK(ctx_with_value(b, user, &principal, count_dtor, &p));
    pair_t below = with_cancel(p);
    CHECK_OK(ctx_value(below.ctx, user, &data, &len, &kind));
    CHECK(data == &principal && len == 0 && kind == CTX_VALUE_POINTER);
    ctx_release(p);
    CHECK(atomic_load(&dtor_calls) == 0); /* `below` still holds it */
    drop(below);
    CHECK(atomic_load(&dtor_calls) == 1 && dtor_last == &principal);
    /* No destructor, NULL pointer: both allowed. */
    CHECK_OK(ctx_with_value(b, user, NULL, NULL, &p));
    CHECK_OK(ctx_value(p, user, &data, &len, &kind));
    CHECK(data == NULL && len == 0 && kind == CTX_VALUE_POINTER); /* not an empty string */
    ctx_release(p);
    /* A failed call stores nothing and never calls the destructor. */
    CHECK_STATUS(ctx_with_value(b, NULL, &principal, count_dtor, &p), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value(b, user, &principal, count_dtor, NULL), CTX_EINVAL);
    CHECK(atomic_load(&dtor_calls) == 1);
    /* Releasing the key first: the value is still destroyed with its context. */
    ctx_key_t *temp;
    REQUIRE_OK(ctx_key_new("temp", &temp));
    CHECK_OK(ctx_with_value(ctx_background(), temp, &principal, count_dtor, &p));
    ctx_key_release(temp);
    CHECK(atomic_load(&dtor_calls) == 1);
    ctx_release(p);
    CHECK(atomic_load(&dtor_calls) == 2);

    ctx_release(b);
    drop(c);
    ctx_release(a);
    ctx_key_release(trace);
    ctx_key_release(user);
    ctx_key_release(twin);
}

static void test_done_fd(void) {
    pair_t p = with_cancel(ctx_background());
    ctx_fd_t *fd, *fd2;
    CHECK_OK(ctx_done_fd(p.ctx, &fd));
    CHECK_OK(ctx_done_fd(p.ctx, &fd2));
    CHECK(ctx_fd_get(fd) >= 0 && ctx_fd_get(fd) != ctx_fd_get(fd2));
#ifdef CTX_TEST_PIPE_WAKE
    CHECK(is_fifo(ctx_fd_get(fd))); /* the path other systems take */
#elif defined(__linux__)
    CHECK(!is_fifo(ctx_fd_get(fd))); /* an eventfd */
#endif
    CHECK(!readable(ctx_fd_get(fd), 0));
    CHECK(!readable(ctx_fd_get(fd), 20));
    CHECK_OK(ctx_cancel(p.cancel));
    CHECK(readable(ctx_fd_get(fd), 0)); /* ready before ctx_cancel returned */
    CHECK(readable(ctx_fd_get(fd), 0)); /* level-triggered: still ready */
    CHECK(readable(ctx_fd_get(fd2), 0));
    ctx_fd_close(fd);
    ctx_fd_close(fd2);

    /* Already done: readable at once. */
    CHECK_OK(ctx_done_fd(p.ctx, &fd));
    CHECK(readable(ctx_fd_get(fd), 0));
    ctx_fd_close(fd);
    drop(p);

    /* Never done: never readable; closing unregisters. */
    CHECK_OK(ctx_done_fd(ctx_background(), &fd));
    CHECK(!readable(ctx_fd_get(fd), 20));
    ctx_fd_close(fd);
    pair_t q = with_cancel(ctx_background());
    CHECK_OK(ctx_done_fd(q.ctx, &fd));
    ctx_fd_close(fd);
    drop(q); /* cancel after close: no write to a closed descriptor */

    /* Deadlines make it readable from the timer thread. */
    pair_t t;
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 30 * MS, &t.ctx, &t.cancel));
    CHECK_OK(ctx_done_fd(t.ctx, &fd));
    CHECK(readable(ctx_fd_get(fd), 10000));
    CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    ctx_fd_close(fd);
    drop(t);
}

typedef struct {
    signal_t ran;
    ctx_t *ctx; /* checked from inside the function */
    bool saw_done;
} after_state_t;

static void after_fn(void *userdata) {
    after_state_t *s = userdata;
    s->saw_done = ctx_is_done(s->ctx); /* calling back into the library */
    signal_bump(&s->ran);
}

static void test_after_func(void) {
    after_state_t s;
    signal_init(&s.ran);
    pair_t p = with_cancel(ctx_background());
    s.ctx = p.ctx;
    s.saw_done = false;

    /* Runs once, after the context is done; stop then reports false. */
    ctx_after_func_t *a;
    CHECK_OK(ctx_after_func(p.ctx, after_fn, &s, NULL, &a));
    CHECK(signal_count(&s.ran) == 0);
    CHECK_OK(ctx_cancel(p.cancel));
    CHECK(signal_wait(&s.ran, 1, 10 * SEC));
    CHECK(s.saw_done);
    bool stopped = true;
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(!stopped);
    ctx_after_func_release(a);

    /* On a done context it starts at once. */
    CHECK_OK(ctx_after_func(p.ctx, after_fn, &s, NULL, &a));
    CHECK(signal_wait(&s.ran, 2, 10 * SEC));
    ctx_after_func_release(a);
    drop(p);

    /* Stopped before the context is done: never runs. */
    pair_t q = with_cancel(ctx_background());
    s.ctx = q.ctx;
    CHECK_OK(ctx_after_func(q.ctx, after_fn, &s, NULL, &a));
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(stopped);
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(!stopped); /* already stopped */
    ctx_after_func_release(a);
    /* Released without stopping: still runs. */
    CHECK_OK(ctx_after_func(q.ctx, after_fn, &s, NULL, &a));
    ctx_after_func_release(a);
    CHECK_OK(ctx_cancel(q.cancel));
    CHECK(signal_wait(&s.ran, 3, 10 * SEC));
    CHECK(!signal_wait(&s.ran, 4, 50 * MS)); /* and the stopped one did not */
    drop(q);

    /* On a context that is never done, stop reports it kept fn from running. */
    CHECK_OK(ctx_after_func(ctx_background(), after_fn, &s, NULL, &a));
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(stopped);
    ctx_after_func_release(a);
    signal_destroy(&s.ran);
}

/* after-func userdata with a finalizer: each is a malloc'd block that only
 * the finalizer frees, so a missed call leaks (valgrind fails the run) and a
 * second one is a double free (ASan does). */
static signal_t fin_ran, fin_finalized;
static atomic_int fin_after_run;

typedef struct {
    atomic_bool ran;
} tracked_t;

static tracked_t *tracked_new(void) {
    tracked_t *t = malloc(sizeof *t);
    if (!t) abort();
    atomic_init(&t->ran, false);
    return t;
}

static void tracked_fn(void *userdata) {
    tracked_t *t = userdata;
    atomic_store(&t->ran, true);
    signal_bump(&fin_ran);
}

static void tracked_finalize(void *userdata) {
    tracked_t *t = userdata;
    if (atomic_load(&t->ran)) atomic_fetch_add(&fin_after_run, 1);
    free(t);
    signal_bump(&fin_finalized);
}

static void test_after_func_finalizer(void) {
    signal_init(&fin_ran);
    signal_init(&fin_finalized);
    ctx_after_func_t *a;
    bool stopped;

    /* It ran: finalized right after, on its thread. */
    pair_t p = with_cancel(ctx_background());
    CHECK_OK(ctx_after_func(p.ctx, tracked_fn, tracked_new(), tracked_finalize, &a));
    CHECK(signal_count(&fin_finalized) == 0);
    CHECK_OK(ctx_cancel(p.cancel));
    CHECK(signal_wait(&fin_finalized, 1, 10 * SEC));
    CHECK(signal_count(&fin_ran) == 1 && atomic_load(&fin_after_run) == 1);
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(!stopped);
    ctx_after_func_release(a);

    /* Already done: runs at once, then finalized. */
    CHECK_OK(ctx_after_func(p.ctx, tracked_fn, tracked_new(), tracked_finalize, &a));
    ctx_after_func_release(a);
    CHECK(signal_wait(&fin_finalized, 2, 10 * SEC));
    CHECK(atomic_load(&fin_after_run) == 2);
    drop(p);

    /* Stopped: finalized inside ctx_after_func_stop, never run. */
    pair_t q = with_cancel(ctx_background());
    CHECK_OK(ctx_after_func(q.ctx, tracked_fn, tracked_new(), tracked_finalize, &a));
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(stopped && signal_count(&fin_finalized) == 3);
    CHECK_OK(ctx_after_func_stop(a, &stopped));
    CHECK(!stopped);
    ctx_after_func_release(a);

    /* Released while pending: still runs when the context is done, then
     * finalized; not before. */
    CHECK_OK(ctx_after_func(q.ctx, tracked_fn, tracked_new(), tracked_finalize, &a));
    ctx_after_func_release(a);
    CHECK(signal_count(&fin_finalized) == 3);
    ctx_cancel_and_release(q.ctx, q.cancel);
    CHECK(signal_wait(&fin_finalized, 4, 10 * SEC));
    CHECK(signal_count(&fin_ran) == 3 && atomic_load(&fin_after_run) == 3);

    /* A context that can never be done: released, finalized at once. */
    ctx_t *never;
    REQUIRE_OK(ctx_without_cancel(ctx_background(), &never));
    ctx_t *roots[] = {ctx_background(), never};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(ctx_after_func(roots[i], tracked_fn, tracked_new(), tracked_finalize, &a));
        CHECK(signal_count(&fin_finalized) == 4 + i);
        ctx_after_func_release(a);
        CHECK(signal_count(&fin_finalized) == 5 + i);
    }
    ctx_release(never);

    /* A failed call keeps nothing and calls nothing: userdata is still ours. */
    tracked_t *mine = tracked_new();
    CHECK_STATUS(ctx_after_func(ctx_background(), tracked_fn, mine, tracked_finalize, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_after_func(NULL, tracked_fn, mine, tracked_finalize, &a), CTX_EINVAL);
    free(mine);

    /* Never twice. */
    CHECK(!signal_wait(&fin_finalized, 7, 50 * MS));
    CHECK(signal_count(&fin_ran) == 3 && atomic_load(&fin_after_run) == 3);
    signal_destroy(&fin_ran);
    signal_destroy(&fin_finalized);
}

static void test_wait_until(void) {
    ctx_t *bg = ctx_background();
    int64_t deadline = ctx_now_ns() + 20 * MS;
    CHECK_STATUS(ctx_wait_until(bg, deadline), CTX_ETIMEDOUT);
    CHECK(ctx_now_ns() >= deadline - MS); /* did not return early */
    CHECK_STATUS(ctx_wait_until(bg, 0), CTX_ETIMEDOUT); /* past: only looks */
    CHECK_STATUS(ctx_wait_until(bg, INT64_MIN), CTX_ETIMEDOUT);

    /* Woken by the timer thread at the context's own deadline, well before ours. */
    pair_t t;
    REQUIRE_OK(ctx_with_timeout(bg, 20 * MS, &t.ctx, &t.cancel));
    CHECK_OK(ctx_wait_until(t.ctx, ctx_now_ns() + 3600 * SEC));
    CHECK(ctx_err(t.ctx) == CTX_ERR_DEADLINE_EXCEEDED);
    CHECK_OK(ctx_wait_until(t.ctx, INT64_MIN)); /* done: OK even with a past deadline */
    drop(t);
    CHECK_STATUS(ctx_wait_until(NULL, 0), CTX_EINVAL);
}

static void test_describe(void) {
    char buf[256];
    size_t n = 0;
    CHECK_OK(ctx_describe(ctx_background(), buf, sizeof buf, &n));
    CHECK_STR(buf, "context.Background");
    CHECK(n == strlen("context.Background"));

    ctx_key_t *trace, *user;
    REQUIRE_OK(ctx_key_new("trace-id", &trace));
    REQUIRE_OK(ctx_key_new("user", &user));
    pair_t c = with_cancel(ctx_todo());
    ctx_t *v, *w, *x;
    REQUIRE_OK(ctx_with_value_bytes(c.ctx, trace, "req-42", 6, &v));
    REQUIRE_OK(ctx_with_value(v, user, buf, NULL, &w));
    REQUIRE_OK(ctx_with_value_bytes(w, trace, "\xff", 1, &x));
    const char *want = "context.TODO.WithCancel.WithValue(trace-id, req-42).WithValue(user, <value>)"
                       ".WithValue(trace-id, <bytes>)";
    char small[8];
    CHECK_OK(ctx_describe(x, small, sizeof small, &n)); /* truncated like snprintf */
    CHECK_STR(small, "context");
    CHECK(n == strlen(want));
    CHECK_OK(ctx_describe(x, NULL, 0, &n)); /* asking for the size */
    CHECK(n == strlen(want));
    CHECK_OK(ctx_describe(x, buf, sizeof buf, NULL));
    CHECK_STR(buf, want);

    pair_t t;
    REQUIRE_OK(ctx_with_timeout(x, 3600 * SEC, &t.ctx, &t.cancel));
    CHECK_OK(ctx_describe(t.ctx, buf, sizeof buf, NULL));
    CHECK(strncmp(buf, want, strlen(want)) == 0 && strstr(buf, ".WithDeadline([") != NULL);

    CHECK_STATUS(ctx_describe(NULL, buf, sizeof buf, &n), CTX_EINVAL);
    CHECK_STATUS(ctx_describe(x, NULL, 1, &n), CTX_EINVAL);
    drop(t);
    ctx_release(x);
    ctx_release(w);
    ctx_release(v);
    drop(c);
    ctx_key_release(trace);
    ctx_key_release(user);
}

static void test_bad_input(void) {
    ctx_t *bg = ctx_background(), *c = NULL;
    ctx_cancel_t *k = NULL;
    ctx_key_t *key;
    REQUIRE_OK(ctx_key_new("k", &key));
    pair_t p = with_cancel_cause(bg);
    int64_t i64;
    size_t sz;
    const void *data;
    ctx_fd_t *fd;
    ctx_after_func_t *af;
    bool b;
    char buf[8];

    CHECK(ctx_retain(NULL) == NULL);
    ctx_release(NULL);
    ctx_cancel_release(NULL);
    ctx_key_release(NULL);
    ctx_fd_close(NULL);
    ctx_after_func_release(NULL);

    CHECK_STATUS(ctx_with_cancel(NULL, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_cancel(bg, NULL, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_cancel(bg, &c, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_with_cancel_cause(NULL, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_cancel_cause(bg, NULL, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_cancel_cause(bg, &c, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout(NULL, SEC, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout(bg, SEC, NULL, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout(bg, SEC, &c, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout_cause(NULL, SEC, "m", 0, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout_cause(bg, SEC, NULL, 0, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout_cause(bg, SEC, "m", 0, NULL, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_timeout_cause(bg, SEC, "m", 0, &c, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline(NULL, 0, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline(bg, 0, NULL, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline(bg, 0, &c, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline_cause(NULL, 0, "m", 0, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline_cause(bg, 0, NULL, 0, &c, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline_cause(bg, 0, "m", 0, NULL, &k), CTX_EINVAL);
    CHECK_STATUS(ctx_with_deadline_cause(bg, 0, "m", 0, &c, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_without_cancel(NULL, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_without_cancel(bg, NULL), CTX_EINVAL);
    CHECK(c == NULL && k == NULL); /* no out-parameter written on error */

    CHECK(ctx_err(NULL) == CTX_ERR_INVALID);
    CHECK(ctx_is_done(NULL));
    CHECK_STATUS(ctx_deadline(NULL, &i64), CTX_EINVAL);
    CHECK_STATUS(ctx_deadline(bg, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_cause(NULL, buf, sizeof buf, &i64, &sz), CTX_EINVAL);
    CHECK_STATUS(ctx_cause(p.ctx, NULL, 1, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_wait(NULL, 0), CTX_EINVAL);
    CHECK_STATUS(ctx_wait(NULL, -1), CTX_EINVAL);

    CHECK_STATUS(ctx_cancel(NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_cancel_cause(NULL, "m", 1), CTX_EINVAL);
    CHECK_STATUS(ctx_cancel_cause(p.cancel, NULL, 1), CTX_EINVAL);
    CHECK(!ctx_is_done(p.ctx)); /* the rejected cancel did nothing */
    CHECK(ctx_cancel_retain(NULL) == NULL);

    ctx_key_t *k2 = NULL;
    CHECK_STATUS(ctx_key_new(NULL, &k2), CTX_EINVAL);
    CHECK_STATUS(ctx_key_new("k", NULL), CTX_EINVAL);
    CHECK(k2 == NULL);
    CHECK_STATUS(ctx_with_value_bytes(NULL, key, "v", 1, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value_bytes(bg, NULL, "v", 1, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value_bytes(bg, key, NULL, 1, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value_bytes(bg, key, "v", 1, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value(NULL, key, buf, NULL, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value(bg, NULL, buf, NULL, &c), CTX_EINVAL);
    CHECK_STATUS(ctx_with_value(bg, key, buf, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_value(NULL, key, &data, &sz, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_value(bg, NULL, &data, &sz, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_value(bg, key, NULL, &sz, NULL), CTX_EINVAL);

    CHECK_STATUS(ctx_done_fd(NULL, &fd), CTX_EINVAL);
    CHECK_STATUS(ctx_done_fd(bg, NULL), CTX_EINVAL);
    CHECK(ctx_fd_get(NULL) == -1);
    CHECK_STATUS(ctx_after_func(NULL, after_fn, NULL, NULL, &af), CTX_EINVAL);
    CHECK_STATUS(ctx_after_func(bg, NULL, NULL, NULL, &af), CTX_EINVAL);
    CHECK_STATUS(ctx_after_func(bg, after_fn, NULL, NULL, NULL), CTX_EINVAL);
    CHECK_STATUS(ctx_after_func_stop(NULL, &b), CTX_EINVAL);
    REQUIRE_OK(ctx_after_func(bg, after_fn, NULL, NULL, &af));
    CHECK_STATUS(ctx_after_func_stop(af, NULL), CTX_EINVAL);
    CHECK_OK(ctx_after_func_stop(af, &b));
    ctx_after_func_release(af);

    drop(p);
    ctx_key_release(key);
}

static void test_info(void) {
    int codes[] = {CTX_OK,         CTX_EINVAL,  CTX_EKIND,   CTX_ETIMEDOUT, CTX_ERANGE,
                   CTX_EPANIC,     CTX_ESYS,    CTX_ENOTFOUND, CTX_ENODEADLINE, CTX_ENOTDONE,
                   CTX_EMALFORMED, CTX_ENOBUFS, CTX_EABSENT, CTX_ECANCELED, CTX_EDEADLINE,
                   CTX_EATTEMPTS,  CTX_ETASK};
    int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++) {
        CHECK(codes[i] == i); /* numbers are part of the ABI */
        const char *s = ctx_strerror(codes[i]);
        CHECK(s != NULL && s[0] != '\0' && strcmp(s, "unknown ctx status") != 0);
        for (int j = 0; j < i; j++) CHECK(strcmp(s, ctx_strerror(codes[j])) != 0);
    }
    CHECK_STR(ctx_strerror(-1), "unknown ctx status");
    CHECK_STR(ctx_strerror(n), "unknown ctx status");

    /* Context errors have numbers of their own, so that passing one to
     * ctx_strerror (an easy slip: both are ints) still says the right thing. */
    int errs[] = {CTX_ERR_CANCELED, CTX_ERR_DEADLINE_EXCEEDED, CTX_ERR_INVALID};
    for (int i = 0; i < 3; i++) {
        CHECK(errs[i] >= 100);
        for (int j = 0; j < n; j++) CHECK(errs[i] != codes[j]);
    }
    CHECK(CTX_ERR_NONE == 0);
    pair_t p = with_cancel(ctx_background());
    ctx_cancel(p.cancel);
    CHECK_STR(ctx_strerror(ctx_err(p.ctx)), "context canceled");
    CHECK_STR(ctx_err_string(ctx_err(p.ctx)), "context canceled");
    drop(p);
    CHECK_STR(ctx_err_string(CTX_ERR_DEADLINE_EXCEEDED), "context deadline exceeded");
    CHECK_STR(ctx_err_string(CTX_ERR_NONE), "the context is not done");
    CHECK_STR(ctx_err_string(CTX_ERR_INVALID), "invalid context (NULL)");
    CHECK_STR(ctx_err_string(CTX_EINVAL), "unknown ctx error");
    CHECK_STR(ctx_version(), CTX_TEST_VERSION);
    int64_t a = ctx_now_ns(), b = ctx_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t mono = (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
    CHECK(a > 0 && b >= a && mono >= b && mono - b < SEC); /* the same clock */
}

int main(void) {
    test_roots();
    test_cancel_tree();
    test_retain_release();
    test_cancel_and_release();
    test_cause();
    test_deadlines();
    test_without_cancel();
    test_values();
    test_done_fd();
    test_after_func();
    test_after_func_finalizer();
    test_wait_until();
    test_describe();
    test_bad_input();
    test_info();
    return check_summary("test_api");
}
