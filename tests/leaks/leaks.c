/* Leak check for C: ITERATIONS rounds of what a C program does with
 * contexts, then proof that nothing stayed behind.
 *
 *   leaks [ITERATIONS] [--expect-leak]
 *
 * Each round puts a value (with a destructor that counts) at the top of a
 * chain of contexts: with_value, with_cancel_cause under it, with_timeout
 * under that; every context of the round keeps the value alive, so the
 * destructor runs only once every one of them is freed. The round opens a
 * ctx_done_fd (one round in ten), registers an after-func with a finalizer,
 * cancels with a cause and releases everything. Every 1,000 rounds, four
 * threads block on a context (three in ctx_wait, one in poll() on its
 * ctx_done_fd) until it is canceled, and are joined: thread churn. At the end:
 *
 * - every value destructor and after-func finalizer has run exactly once,
 *   and every after-func too (live contexts: none of the rounds' is left);
 * - glibc's bytes in use have not grown by more than 512 KiB plus one byte
 *   per round since a checkpoint after the first tenth.
 *
 * `--expect-leak` leaves one round in 100 unreleased: the run must then
 * fail, which shows that it can. */
#define _GNU_SOURCE
#include <ctx.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_long values_made, values_freed, after_ran, after_finalized, after_made;

static void free_value(void *p) {
    free(p);
    atomic_fetch_add(&values_freed, 1);
}

static void after(void *p) {
    (void)p;
    atomic_fetch_add(&after_ran, 1);
}

static void finalize(void *p) {
    (void)p;
    atomic_fetch_add(&after_finalized, 1);
}

static long native_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return (long)(m.uordblks + m.hblkhd);
}

static void check(ctx_status_t s, const char *what) {
    if (s != CTX_OK) {
        fprintf(stderr, "c: %s: %s\n", what, ctx_strerror(s));
        exit(2);
    }
}

/* One round; returns the context it leaves unreleased, or NULL. */
static ctx_t *one_round(const ctx_t *parent, ctx_key_t *key, long i, int leak) {
    long *value = malloc(sizeof *value);
    if (value == NULL) exit(2);
    *value = i;
    atomic_fetch_add(&values_made, 1);
    ctx_t *valued, *ctx, *timed;
    ctx_cancel_t *cancel, *cancel_timed;
    check(ctx_with_value(parent, key, value, free_value, &valued), "ctx_with_value");
    check(ctx_with_cancel_cause(valued, &ctx, &cancel), "ctx_with_cancel_cause");
    check(ctx_with_timeout(ctx, 3600LL * 1000 * 1000 * 1000, &timed, &cancel_timed), "ctx_with_timeout");
    ctx_release(valued);
    ctx_fd_t *fd = NULL;
    if (i % 10 == 0) check(ctx_done_fd(timed, &fd), "ctx_done_fd");
    ctx_after_func_t *af;
    check(ctx_after_func(timed, after, NULL, finalize, &af), "ctx_after_func");
    atomic_fetch_add(&after_made, 1);
    ctx_after_func_release(af);
    check(ctx_cancel_cause(cancel, "client went away", 499), "ctx_cancel_cause");
    ctx_fd_close(fd);
    ctx_cancel_and_release(ctx, cancel);
    if (leak && i % 100 == 0) {
        ctx_cancel(cancel_timed);
        ctx_cancel_release(cancel_timed);
        return timed; /* kept on purpose */
    }
    ctx_cancel_and_release(timed, cancel_timed);
    return NULL;
}

static void *wait_thread(void *arg) {
    ctx_t *ctx = arg;
    if (ctx_wait(ctx, 10LL * 1000 * 1000 * 1000) != CTX_OK) {
        fprintf(stderr, "c: a thread in ctx_wait was not woken by cancel\n");
        exit(2);
    }
    ctx_release(ctx);
    return NULL;
}

static void *poll_thread(void *arg) {
    ctx_t *ctx = arg;
    ctx_fd_t *fd;
    check(ctx_done_fd(ctx, &fd), "ctx_done_fd");
    struct pollfd p = {.fd = ctx_fd_get(fd), .events = POLLIN};
    if (poll(&p, 1, 10 * 1000) != 1) {
        fprintf(stderr, "c: a thread in poll() on ctx_done_fd was not woken by cancel\n");
        exit(2);
    }
    ctx_fd_close(fd);
    ctx_release(ctx);
    return NULL;
}

static void churn(const ctx_t *parent) {
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    check(ctx_with_cancel(parent, &ctx, &cancel), "ctx_with_cancel");
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, i == 3 ? poll_thread : wait_thread, ctx_retain(ctx));
    ctx_cancel_and_release(ctx, cancel);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
}

int main(int argc, char **argv) {
    long iterations = 1000000;
    int leak = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect-leak") == 0)
            leak = 1;
        else
            iterations = atol(argv[i]);
    }
    ctx_key_t *key;
    check(ctx_key_new("leak-check", &key), "ctx_key_new");
    ctx_t *parent; /* a server-lifetime context */
    ctx_cancel_t *end;
    check(ctx_with_cancel(ctx_background(), &parent, &end), "ctx_with_cancel");
    long checkpoint = iterations / 10, base = 0, kept_n = 0;
    ctx_t **kept = calloc((size_t)(iterations / 100 + 1), sizeof *kept);
    if (kept == NULL) return 2;
    int64_t started = ctx_now_ns();
    for (long i = 0; i < iterations; i++) {
        ctx_t *k = one_round(parent, key, i, leak);
        if (k != NULL) kept[kept_n++] = k;
        if (i % 1000 == 999) churn(parent);
        if (i == checkpoint) base = native_in_use();
    }
    ctx_cancel_and_release(parent, end);
    ctx_key_release(key);
    /* After-funcs run on polyctx's pool: wait (boundedly) for the last ones. */
    for (int i = 0; i < 1000 && atomic_load(&after_finalized) < atomic_load(&after_made); i++) {
        struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    long grown = native_in_use() - base, rounds = iterations - checkpoint;
    long allowed = 512 * 1024 + rounds;
    long values_alive = atomic_load(&values_made) - atomic_load(&values_freed);
    long pending = atomic_load(&after_made) - atomic_load(&after_finalized);
    long not_run = atomic_load(&after_made) - atomic_load(&after_ran);
    printf("c: %ld rounds and %ld thread churns in %.1f s; values alive %ld of %ld, after-funcs not finalized %ld, "
           "not run %ld; native memory grown since round %ld: %+ld B (%+.3f B/round)\n",
           iterations, iterations / 1000, (double)(ctx_now_ns() - started) / 1e9, values_alive,
           atomic_load(&values_made), pending, not_run, checkpoint, grown, (double)grown / (double)rounds);
    int failed = 0;
    if (values_alive != 0) failed = printf("c: LEAK: %ld contexts never freed (their values live)\n", values_alive);
    if (pending != 0) failed = printf("c: LEAK: %ld after-func finalizers never ran\n", pending);
    if (not_run != 0) failed = printf("c: LEAK: %ld after-funcs of canceled contexts never ran\n", not_run);
    if (grown > allowed) failed = printf("c: LEAK: native memory grew by %ld B (allowed %ld)\n", grown, allowed);
    for (long i = 0; i < kept_n; i++) ctx_release(kept[i]);
    free(kept);
    if (leak) {
        if (!failed) {
            printf("c: --expect-leak: the leak kept on purpose went unseen\n");
            return 1;
        }
        printf("c: --expect-leak: seen, as it must be\n");
        return 0;
    }
    return failed ? 1 : 0;
}
