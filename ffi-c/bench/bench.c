/* The cost of the C calls, to set beside the Rust numbers of bench/rust
 * (same operations, same names). Prints one JSON line per operation, the
 * format every bench program shares (bench/run.py reads them):
 *
 *   {"area":"c","op":"<name>","impl":"polyctx","unit":"ns_per_op","value":<median>}
 *
 * Build against a release libctx (`make bench-c`). */
#define _GNU_SOURCE
#include <ctx.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HOUR (3600LL * 1000 * 1000 * 1000)
#define RUNS 7

static volatile int sink;

static int64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef void (*op_fn)(void *arg, long n);

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of RUNS timings of n calls, n chosen so that a run takes ~50 ms. */
static void bench(const char *name, op_fn op, void *arg) {
    long n = 1000;
    for (;;) {
        int64_t t = now();
        op(arg, n);
        if (now() - t > 20 * 1000 * 1000 || n > (1L << 30)) break;
        n *= 2;
    }
    n *= 2;
    double ns[RUNS];
    for (int r = 0; r < RUNS; r++) {
        int64_t t = now();
        op(arg, n);
        ns[r] = (double)(now() - t) / (double)n;
    }
    qsort(ns, RUNS, sizeof ns[0], cmp);
    printf("{\"area\":\"c\",\"op\":\"%s\",\"impl\":\"polyctx\",\"unit\":\"ns_per_op\",\"value\":%.3f}\n", name,
           ns[RUNS / 2]);
}

static void derive_cancel(void *parent, long n) {
    for (long i = 0; i < n; i++) {
        ctx_t *c;
        ctx_cancel_t *k;
        ctx_with_cancel(parent, &c, &k);
        ctx_cancel(k);
        ctx_cancel_release(k);
        ctx_release(c);
    }
}

static void derive_cancel_deadline(void *parent, long n) {
    for (long i = 0; i < n; i++) {
        ctx_t *c;
        ctx_cancel_t *k;
        ctx_with_timeout(parent, HOUR, &c, &k);
        ctx_cancel(k);
        ctx_cancel_release(k);
        ctx_release(c);
    }
}

static void is_done(void *ctx, long n) {
    int done = 0;
    for (long i = 0; i < n; i++) done += ctx_is_done(ctx);
    sink = done;
}

static void err(void *ctx, long n) {
    int e = 0;
    for (long i = 0; i < n; i++) e += (int)ctx_err(ctx);
    sink = e;
}

typedef struct {
    ctx_t *leaf;
    ctx_key_t *key;
} lookup_t;

static void value_lookup(void *arg, long n) {
    lookup_t *l = arg;
    int found = 0;
    for (long i = 0; i < n; i++) {
        const void *data;
        found += ctx_value(l->leaf, l->key, &data, NULL, NULL) == CTX_OK;
    }
    sink = found;
}

/* A chain of `depth` value contexts, the wanted key at the top, as in bench/rust. */
static lookup_t value_chain(int depth, ctx_key_t **others) {
    lookup_t l;
    ctx_key_new("wanted", &l.key);
    ctx_with_value_bytes(ctx_background(), l.key, "1", 1, &l.leaf);
    for (int i = 1; i < depth; i++) {
        ctx_key_new("other", &others[i]);
        ctx_t *next;
        ctx_with_value_bytes(l.leaf, others[i], "x", 1, &next);
        ctx_release(l.leaf);
        l.leaf = next;
    }
    return l;
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
    qsort(returned, RUNS, sizeof returned[0], cmp);
    qsort(all_ran, RUNS, sizeof all_ran[0], cmp);
    printf("{\"area\":\"c\",\"op\":\"10k after-funcs: cancel returns\",\"impl\":\"polyctx\",\"unit\":"
           "\"ns_per_op\",\"value\":%.3f}\n",
           returned[RUNS / 2]);
    printf("{\"area\":\"c\",\"op\":\"10k after-funcs: all have run\",\"impl\":\"polyctx\",\"unit\":"
           "\"ns_per_op\",\"value\":%.3f}\n",
           all_ran[RUNS / 2]);
}

int main(void) {
    ctx_t *parent, *live;
    ctx_cancel_t *keep, *keep_live;
    ctx_with_cancel(ctx_background(), &parent, &keep);
    ctx_with_cancel(parent, &live, &keep_live);

    bench("derive+cancel", derive_cancel, parent);
    bench("derive+cancel with deadline", derive_cancel_deadline, parent);
    bench("is_done", is_done, live);
    bench("err", err, live);
    int depths[] = {10, 100};
    for (int d = 0; d < 2; d++) {
        ctx_key_t *others[100];
        lookup_t l = value_chain(depths[d], others);
        char name[64];
        snprintf(name, sizeof name, "value lookup depth %d", depths[d]);
        bench(name, value_lookup, &l);
        ctx_release(l.leaf);
        ctx_key_release(l.key);
        for (int i = 1; i < depths[d]; i++) ctx_key_release(others[i]);
    }
    after_funcs();

    ctx_cancel(keep);
    ctx_cancel_release(keep_live);
    ctx_cancel_release(keep);
    ctx_release(live);
    ctx_release(parent);
    return 0;
}
