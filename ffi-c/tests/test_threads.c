/* Threads: one thread cancels while others block in ctx_wait and in poll()
 * on ctx_done_fd; the timer thread does the same for deadlines; many
 * threads derive, cancel and release at once. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>

#include "check.h"
#include "signal.h"

enum { WAITERS = 4, POLLERS = 4 };

typedef struct {
    const ctx_t *ctx;
    signal_t *ready;    /* bumped just before blocking */
    int status;         /* what ctx_wait returned, or 1 if poll saw the fd */
    ctx_err_t err;      /* ctx_err right after waking */
    int64_t woke_ns;
    ctx_fd_t *fd;       /* pollers: their own descriptor */
} waiter_t;

static void *wait_thread(void *arg) {
    waiter_t *w = arg;
    signal_bump(w->ready);
    w->status = ctx_wait(w->ctx, -1);
    w->woke_ns = ctx_now_ns();
    w->err = ctx_err(w->ctx);
    return NULL;
}

static void *poll_thread(void *arg) {
    waiter_t *w = arg;
    struct pollfd p = {.fd = ctx_fd_get(w->fd), .events = POLLIN};
    signal_bump(w->ready);
    /* A generous bound, so that a lost wake-up fails instead of hanging. */
    w->status = poll(&p, 1, 60 * 1000) == 1 && (p.revents & POLLIN);
    w->woke_ns = ctx_now_ns();
    w->err = ctx_err(w->ctx);
    return NULL;
}

/* Starts the waiters and pollers on `ctx`, calls `trigger` once they are all
 * about to block, and checks that every one wakes with `want`. */
static void wake_everyone(const ctx_t *ctx, void (*trigger)(void *), void *arg, ctx_err_t want) {
    signal_t ready;
    signal_init(&ready);
    waiter_t w[WAITERS + POLLERS];
    pthread_t t[WAITERS + POLLERS];
    for (int i = 0; i < WAITERS + POLLERS; i++) {
        w[i] = (waiter_t){.ctx = ctx, .ready = &ready, .status = -1};
        if (i < WAITERS) {
            pthread_create(&t[i], NULL, wait_thread, &w[i]);
        } else {
            REQUIRE_OK(ctx_done_fd(ctx, &w[i].fd));
            pthread_create(&t[i], NULL, poll_thread, &w[i]);
        }
    }
    CHECK(signal_wait(&ready, WAITERS + POLLERS, 30 * SEC));
    int64_t triggered = ctx_now_ns();
    trigger(arg);
    for (int i = 0; i < WAITERS + POLLERS; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].status == (i < WAITERS ? CTX_OK : 1));
        CHECK(w[i].err == want);
        /* Woken promptly: not by some timeout (the box may be loaded). */
        CHECK(w[i].woke_ns - triggered < 5 * SEC);
        if (i >= WAITERS) ctx_fd_close(w[i].fd);
    }
    signal_destroy(&ready);
}

static void cancel_it(void *cancel) { CHECK_OK(ctx_cancel(cancel)); }

static void test_cancel_wakes_waiters_and_pollers(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &ctx, &cancel));
    ctx_t *child;
    ctx_cancel_t *child_cancel;
    REQUIRE_OK(ctx_with_cancel(ctx, &child, &child_cancel));
    /* Waiting on a descendant: the parent's cancel reaches it. */
    wake_everyone(child, cancel_it, cancel, CTX_ERR_CANCELED);
    ctx_cancel_release(child_cancel);
    ctx_release(child);
    ctx_cancel_release(cancel);
    ctx_release(ctx);
}

static void nothing(void *arg) { (void)arg; }

static void test_deadline_wakes_waiters_and_pollers(void) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    /* Long enough that everyone is blocked before it fires, most of the time;
     * correct either way. */
    REQUIRE_OK(ctx_with_timeout(ctx_background(), 200 * MS, &ctx, &cancel));
    wake_everyone(ctx, nothing, NULL, CTX_ERR_DEADLINE_EXCEEDED);
    ctx_cancel(cancel);
    ctx_cancel_release(cancel);
    ctx_release(ctx);
}

/* Several threads derive from one parent while another cancels it: every
 * grandchild ends up done, whether it was made before or after the cancel. */
typedef struct {
    ctx_t *parent;
    signal_t *go;
    int made, done;
} deriver_t;

static void *derive_thread(void *arg) {
    deriver_t *d = arg;
    signal_wait(d->go, 1, 30 * SEC);
    for (int i = 0; i < 2000; i++) {
        ctx_t *c;
        ctx_cancel_t *k;
        if (ctx_with_cancel(d->parent, &c, &k) != CTX_OK) continue;
        ctx_t *t;
        ctx_cancel_t *tk;
        REQUIRE_OK(ctx_with_timeout(c, 3600 * SEC, &t, &tk));
        d->made++;
        /* Made before the cancel: woken by it; made after: done at birth. */
        d->done += ctx_wait(t, 30 * SEC) == CTX_OK && ctx_err(t) == CTX_ERR_CANCELED;
        ctx_cancel(tk);
        ctx_cancel_release(tk);
        ctx_release(t);
        ctx_cancel_release(k);
        ctx_release(c);
    }
    return NULL;
}

static void test_concurrent_derive_and_cancel(void) {
    enum { N = 4 };
    ctx_t *parent;
    ctx_cancel_t *cancel;
    REQUIRE_OK(ctx_with_cancel(ctx_background(), &parent, &cancel));
    signal_t go;
    signal_init(&go);
    deriver_t d[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        d[i] = (deriver_t){.parent = parent, .go = &go};
        pthread_create(&t[i], NULL, derive_thread, &d[i]);
    }
    signal_bump(&go);
    CHECK_OK(ctx_cancel(cancel));
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(d[i].made == 2000 && d[i].done == 2000);
    }
    ctx_cancel_release(cancel);
    ctx_release(parent);
    signal_destroy(&go);
}

/* Racing cancels with causes: exactly one cause wins, everyone agrees. */
typedef struct {
    ctx_cancel_t *cancel;
    signal_t *go;
    char msg[24];
} causer_t;

static void *cause_thread(void *arg) {
    causer_t *c = arg;
    signal_wait(c->go, 1, 30 * SEC);
    CHECK_OK(ctx_cancel_cause(c->cancel, c->msg, 1));
    return NULL;
}

static void test_racing_causes(void) {
    enum { N = 6 };
    for (int round = 0; round < 20; round++) {
        ctx_t *ctx;
        ctx_cancel_t *cancel;
        REQUIRE_OK(ctx_with_cancel_cause(ctx_background(), &ctx, &cancel));
        ctx_t *child;
        ctx_cancel_t *child_cancel;
        REQUIRE_OK(ctx_with_cancel(ctx, &child, &child_cancel));
        signal_t go;
        signal_init(&go);
        causer_t c[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
            c[i].cancel = ctx_cancel_retain(cancel); /* each thread owns one */
            c[i].go = &go;
            snprintf(c[i].msg, sizeof c[i].msg, "thread-%d", i);
            pthread_create(&t[i], NULL, cause_thread, &c[i]);
        }
        signal_bump(&go);
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            ctx_cancel_release(c[i].cancel);
        }
        char a[32], b[32];
        CHECK_OK(ctx_cause(ctx, a, sizeof a, NULL, NULL));
        CHECK_OK(ctx_cause(child, b, sizeof b, NULL, NULL));
        CHECK(strncmp(a, "thread-", 7) == 0);
        CHECK_STR(b, a);
        ctx_cancel_release(child_cancel);
        ctx_release(child);
        ctx_cancel_release(cancel);
        ctx_release(ctx);
        signal_destroy(&go);
    }
}

int main(void) {
    test_cancel_wakes_waiters_and_pollers();
    test_deadline_wakes_waiters_and_pollers();
    test_concurrent_derive_and_cancel();
    test_racing_causes();
    return check_summary("test_threads");
}
