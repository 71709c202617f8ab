/* The C conformance runner: executes scenarios (../FORMAT.md) through the
 * C ABI in ctx.h and prints what Go's runner prints.
 *
 *   runner SCENARIO.ctx...
 *
 * This runner hosts only C, so it performs `@c`, `@py` and `@node` steps
 * itself. Values are stored as bytes; keys are ctx_key_t objects, one per
 * key name per scenario. */
#define _GNU_SOURCE
#include <ctx.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOKENS 16

/* Scenario state ---------------------------------------------------------- */

typedef struct {
    char *name;
    ctx_t *ctx;
    ctx_cancel_t *cancel; /* NULL if the context has no cancel function */
} node_t;

typedef struct {
    char *name;
    ctx_key_t *key;
} key_entry_t;

/* An after-func: f bumps `runs` and signals; `ran` waits on it. */
typedef struct {
    char *name;
    ctx_after_func_t *handle;
    pthread_mutex_t mu;
    pthread_cond_t changed;
    int runs;
    bool stopped; /* a stop returned true: f will never run */
} after_t;

typedef struct {
    const char *file; /* scenario name, for output */
    int64_t t0;
    node_t *nodes;
    size_t n_nodes;
    key_entry_t *keys;
    size_t n_keys;
    after_t **afters;
    size_t n_afters;
    ctx_cancel_t **extra; /* cancel functions of unnamed chain links, and rejected nodes */
    size_t n_extra;
    char err[256]; /* why the current step failed */
} scenario_t;

static void *grow(void *array, size_t count, size_t size) {
    void *p = realloc(array, (count + 1) * size);
    if (!p) {
        perror("realloc");
        exit(2);
    }
    return p;
}

static char *dup_str(const char *s) {
    char *d = strdup(s);
    if (!d) {
        perror("strdup");
        exit(2);
    }
    return d;
}

/* Records why a step failed; steps return false right after. */
static bool fail(scenario_t *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_ident(const char *t) {
    if (!*t) return false;
    for (; *t; t++) {
        char c = *t;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

static node_t *find_node(scenario_t *s, const char *name) {
    for (size_t i = 0; i < s->n_nodes; i++)
        if (strcmp(s->nodes[i].name, name) == 0) return &s->nodes[i];
    fail(s, "unknown context %s", name);
    return NULL;
}

static after_t *find_after(scenario_t *s, const char *name) {
    for (size_t i = 0; i < s->n_afters; i++)
        if (strcmp(s->afters[i]->name, name) == 0) return s->afters[i];
    fail(s, "unknown after-func %s", name);
    return NULL;
}

static void keep_cancel(scenario_t *s, ctx_cancel_t *cancel) {
    if (!cancel) return;
    s->extra = grow(s->extra, s->n_extra, sizeof *s->extra);
    s->extra[s->n_extra++] = cancel;
}

/* Names a new context; takes over both references whatever happens. */
static bool define(scenario_t *s, const char *name, ctx_t *ctx, ctx_cancel_t *cancel) {
    bool taken = false;
    for (size_t i = 0; i < s->n_nodes; i++) taken |= strcmp(s->nodes[i].name, name) == 0;
    if (!is_ident(name) || taken) {
        keep_cancel(s, cancel); /* released at the end like any other */
        ctx_release(ctx);
        return is_ident(name) ? fail(s, "context %s already exists", name) : fail(s, "bad name \"%s\"", name);
    }
    s->nodes = grow(s->nodes, s->n_nodes, sizeof *s->nodes);
    s->nodes[s->n_nodes++] = (node_t){dup_str(name), ctx, cancel};
    return true;
}

static ctx_key_t *find_key(scenario_t *s, const char *name) {
    if (!is_ident(name)) {
        fail(s, "bad key \"%s\"", name);
        return NULL;
    }
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].name, name) == 0) return s->keys[i].key;
    ctx_key_t *key;
    if (ctx_key_new(name, &key) != CTX_OK) {
        fail(s, "ctx_key_new failed");
        return NULL;
    }
    s->keys = grow(s->keys, s->n_keys, sizeof *s->keys);
    s->keys[s->n_keys++] = (key_entry_t){dup_str(name), key};
    return key;
}

/* `-?<digits><ns|us|ms|s|m|h>`, in nanoseconds. */
static bool parse_duration(scenario_t *s, const char *tok, int64_t *out) {
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000}, {"h", 3600000000000}};
    const char *p = tok;
    bool neg = *p == '-';
    if (neg) p++;
    const char *digits = p;
    while (*p >= '0' && *p <= '9') p++;
    size_t n_digits = (size_t)(p - digits);
    int64_t unit = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].unit) == 0) unit = units[i].ns;
    if (n_digits == 0 || unit == 0) return fail(s, "bad duration \"%s\"", tok);
    int64_t n = 0;
    for (const char *d = digits; d < p; d++) {
        if (n > (INT64_MAX - (*d - '0')) / 10) return fail(s, "duration out of range \"%s\"", tok);
        n = n * 10 + (*d - '0');
    }
    if (n > INT64_MAX / unit) return fail(s, "duration out of range \"%s\"", tok);
    *out = neg ? -(n * unit) : n * unit;
    return true;
}

/* Creating contexts --------------------------------------------------------- */

typedef bool (*step_fn)(scenario_t *s, char **a, char *result, size_t result_len);

static bool status_ok(scenario_t *s, ctx_status_t st, const char *what) {
    return st == CTX_OK ? true : fail(s, "%s: %s", what, ctx_strerror(st));
}

static bool op_root(scenario_t *s, char **a, ctx_t *root) { return define(s, a[0], root, NULL); }
static bool op_background(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    return op_root(s, a, ctx_background());
}
static bool op_todo(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    return op_root(s, a, ctx_todo());
}

static bool op_with_cancel(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *p = find_node(s, a[1]);
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    if (!p || !status_ok(s, ctx_with_cancel(p->ctx, &ctx, &cancel), "ctx_with_cancel")) return false;
    return define(s, a[0], ctx, cancel);
}

static bool op_with_cancel_cause(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *p = find_node(s, a[1]);
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    if (!p || !status_ok(s, ctx_with_cancel_cause(p->ctx, &ctx, &cancel), "ctx_with_cancel_cause")) return false;
    return define(s, a[0], ctx, cancel);
}

static bool op_with_timeout(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *p = find_node(s, a[1]);
    int64_t d;
    if (!p || !parse_duration(s, a[2], &d)) return false;
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    ctx_status_t st = a[3] ? ctx_with_timeout_cause(p->ctx, d, a[3], 0, &ctx, &cancel)
                           : ctx_with_timeout(p->ctx, d, &ctx, &cancel);
    return status_ok(s, st, "ctx_with_timeout") && define(s, a[0], ctx, cancel);
}

static bool op_with_deadline(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *p = find_node(s, a[1]);
    int64_t off;
    if (!p || !parse_duration(s, a[2], &off)) return false;
    ctx_t *ctx;
    ctx_cancel_t *cancel;
    int64_t at = s->t0 + off;
    ctx_status_t st = a[3] ? ctx_with_deadline_cause(p->ctx, at, a[3], 0, &ctx, &cancel)
                           : ctx_with_deadline(p->ctx, at, &ctx, &cancel);
    return status_ok(s, st, "ctx_with_deadline") && define(s, a[0], ctx, cancel);
}

static bool op_with_value(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *p = find_node(s, a[1]);
    if (!p) return false;
    ctx_key_t *key = find_key(s, a[2]);
    if (!key) return false;
    if (strcmp(a[3], "nil") == 0) return fail(s, "value nil is reserved");
    ctx_t *ctx;
    if (!status_ok(s, ctx_with_value_bytes(p->ctx, key, a[3], strlen(a[3]), &ctx), "ctx_with_value_bytes"))
        return false;
    return define(s, a[0], ctx, NULL);
}

static bool op_without_cancel(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *p = find_node(s, a[1]);
    ctx_t *ctx;
    if (!p || !status_ok(s, ctx_without_cancel(p->ctx, &ctx), "ctx_without_cancel")) return false;
    return define(s, a[0], ctx, NULL);
}

/* `chain NAME PARENT KIND N`: N links, the first `value_links` of them
 * WithValue(KEY, VALUE), the rest WithCancel; only the deepest is named. */
static bool op_chain(scenario_t *s, char **a, char *r, size_t n_) {
    (void)r, (void)n_;
    node_t *p = find_node(s, a[1]);
    if (!p) return false;
    char *end;
    errno = 0;
    long n = strtol(a[3], &end, 10);
    if (errno || *end || end == a[3] || n < 1 || n > 1000000) return fail(s, "bad chain length \"%s\"", a[3]);
    long value_links = 0;
    const char *key_name = NULL, *value = NULL;
    char kind[256];
    snprintf(kind, sizeof kind, "%s", a[2]);
    if (strcmp(kind, "cancel") != 0) {
        char *c1 = strchr(kind, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 && strcmp(c2 + 1, "nil") == 0) return fail(s, "value nil is reserved");
        if (!c2 || c2[1] == '\0') return fail(s, "bad chain kind \"%s\"", a[2]);
        *c1 = *c2 = '\0';
        if (strcmp(kind, "value") == 0) {
            value_links = n;
        } else if (strcmp(kind, "value_top") == 0) {
            value_links = 1;
        } else {
            return fail(s, "bad chain kind \"%s\"", a[2]);
        }
        key_name = c1 + 1;
        value = c2 + 1;
    }
    ctx_key_t *key = NULL;
    if (value_links > 0 && !(key = find_key(s, key_name))) return false;
    ctx_t *leaf = ctx_retain(p->ctx);
    ctx_cancel_t *leaf_cancel = NULL;
    for (long i = 0; i < n; i++) {
        ctx_t *next;
        ctx_cancel_t *next_cancel = NULL;
        ctx_status_t st = i < value_links ? ctx_with_value_bytes(leaf, key, value, strlen(value), &next)
                                          : ctx_with_cancel(leaf, &next, &next_cancel);
        ctx_release(leaf); /* the child holds its parent */
        keep_cancel(s, leaf_cancel);
        if (st != CTX_OK) return fail(s, "chain link %ld: %s", i, ctx_strerror(st));
        leaf = next;
        leaf_cancel = next_cancel;
    }
    return define(s, a[0], leaf, leaf_cancel);
}

/* Actions ------------------------------------------------------------------- */

static bool op_cancel(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    if (!node->cancel) return fail(s, "context %s has no cancel function", a[0]);
    return status_ok(s, ctx_cancel(node->cancel), "ctx_cancel");
}

static bool op_cancel_cause(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    ctx_status_t st = node->cancel ? ctx_cancel_cause(node->cancel, a[1], 0) : CTX_EKIND;
    if (st == CTX_EKIND) return fail(s, "context %s has no cancel-cause function", a[0]);
    return status_ok(s, st, "ctx_cancel_cause");
}

static void after_run(void *userdata) {
    after_t *f = userdata;
    pthread_mutex_lock(&f->mu);
    f->runs++;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->mu);
}

static bool op_after_func(scenario_t *s, char **a, char *r, size_t n) {
    (void)r, (void)n;
    if (!is_ident(a[0])) return fail(s, "bad name \"%s\"", a[0]);
    for (size_t i = 0; i < s->n_afters; i++)
        if (strcmp(s->afters[i]->name, a[0]) == 0) return fail(s, "after-func %s already exists", a[0]);
    node_t *node = find_node(s, a[1]);
    if (!node) return false;
    after_t *f = calloc(1, sizeof *f);
    if (!f) return fail(s, "out of memory");
    f->name = dup_str(a[0]);
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->changed, &attr);
    pthread_condattr_destroy(&attr);
    /* Listed before registering: on a done context f may run at once. */
    s->afters = grow(s->afters, s->n_afters, sizeof *s->afters);
    s->afters[s->n_afters++] = f;
    return status_ok(s, ctx_after_func(node->ctx, after_run, f, NULL, &f->handle), "ctx_after_func");
}

/* Observations -------------------------------------------------------------- */

static const char *bool_str(bool b) { return b ? "true" : "false"; }

static bool op_err(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    switch (ctx_err(node->ctx)) {
        case CTX_ERR_NONE: snprintf(r, n, "nil"); return true;
        case CTX_ERR_CANCELED: snprintf(r, n, "canceled"); return true;
        case CTX_ERR_DEADLINE_EXCEEDED: snprintf(r, n, "deadline_exceeded"); return true;
        default: return fail(s, "ctx_err: invalid");
    }
}

static bool op_cause(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    char buf[512];
    int64_t code;
    size_t len;
    ctx_status_t st = ctx_cause(node->ctx, buf, sizeof buf, &code, &len);
    if (st == CTX_ENOTDONE) {
        snprintf(r, n, "nil");
        return true;
    }
    if (st != CTX_OK) return status_ok(s, st, "ctx_cause");
    if (len >= sizeof buf) return fail(s, "cause longer than %zu bytes", sizeof buf);
    /* A context done without a cause reports its error's text with no code;
     * a scenario's MSG is one token, so it can never be that text. */
    if (code == 0 && strcmp(buf, "context canceled") == 0) {
        snprintf(r, n, "canceled");
    } else if (code == 0 && strcmp(buf, "context deadline exceeded") == 0) {
        snprintf(r, n, "deadline_exceeded");
    } else {
        snprintf(r, n, "msg:%s", buf);
    }
    return true;
}

static bool op_done(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    snprintf(r, n, "%s", bool_str(ctx_is_done(node->ctx)));
    return true;
}

static bool op_deadline(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    int64_t dl;
    snprintf(r, n, "%s", ctx_deadline(node->ctx, &dl) == CTX_OK ? "set" : "none");
    return true;
}

static bool op_deadline_cmp(scenario_t *s, char **a, char *r, size_t n) {
    node_t *x = find_node(s, a[0]);
    if (!x) return false;
    node_t *y = find_node(s, a[1]);
    if (!y) return false;
    int64_t dx, dy;
    if (ctx_deadline(x->ctx, &dx) != CTX_OK || ctx_deadline(y->ctx, &dy) != CTX_OK) {
        snprintf(r, n, "none");
    } else {
        snprintf(r, n, "%s", dx < dy ? "before" : dx == dy ? "equal" : "after");
    }
    return true;
}

static bool op_deadline_within(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    int64_t d, dl;
    if (!node || !parse_duration(s, a[1], &d)) return false;
    bool has = ctx_deadline(node->ctx, &dl) == CTX_OK;
    snprintf(r, n, "%s", bool_str(has && dl <= ctx_now_ns() + d));
    return true;
}

static bool op_value(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    if (!node) return false;
    ctx_key_t *key = find_key(s, a[1]);
    if (!key) return false;
    const void *data;
    ctx_status_t st = ctx_value(node->ctx, key, &data, NULL, NULL);
    if (st == CTX_ENOTFOUND) {
        snprintf(r, n, "nil");
        return true;
    }
    if (st != CTX_OK) return status_ok(s, st, "ctx_value");
    snprintf(r, n, "%s", (const char *)data);
    return true;
}

static bool op_wait(scenario_t *s, char **a, char *r, size_t n) {
    node_t *node = find_node(s, a[0]);
    int64_t d;
    if (!node || !parse_duration(s, a[1], &d)) return false;
    /* ctx_wait looks before it waits; a non-positive DURATION only looks. */
    ctx_status_t st = ctx_wait(node->ctx, d > 0 ? d : 0);
    if (st != CTX_OK && st != CTX_ETIMEDOUT) return status_ok(s, st, "ctx_wait");
    snprintf(r, n, "%s", bool_str(st == CTX_OK));
    return true;
}

static bool op_stop(scenario_t *s, char **a, char *r, size_t n) {
    after_t *f = find_after(s, a[0]);
    bool stopped;
    if (!f || !status_ok(s, ctx_after_func_stop(f->handle, &stopped), "ctx_after_func_stop")) return false;
    f->stopped |= stopped;
    snprintf(r, n, "%s", bool_str(stopped));
    return true;
}

/* Waits up to `d` (if positive) for f to have run at least once. */
static bool has_run(after_t *f, int64_t d) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (d > 0) {
        until.tv_sec += (time_t)(d / 1000000000);
        until.tv_nsec += (long)(d % 1000000000);
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&f->mu);
    int rc = 0;
    while (f->runs == 0 && d > 0 && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&f->changed, &f->mu, &until);
    bool ran = f->runs > 0;
    pthread_mutex_unlock(&f->mu);
    return ran;
}

static bool op_ran(scenario_t *s, char **a, char *r, size_t n) {
    after_t *f = find_after(s, a[0]);
    int64_t d;
    if (!f || !parse_duration(s, a[1], &d)) return false;
    snprintf(r, n, "%s", bool_str(has_run(f, d)));
    return true;
}

static bool op_runs(scenario_t *s, char **a, char *r, size_t n) {
    after_t *f = find_after(s, a[0]);
    if (!f) return false;
    pthread_mutex_lock(&f->mu);
    snprintf(r, n, "%d", f->runs);
    pthread_mutex_unlock(&f->mu);
    return true;
}

/* Dispatch ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int min_args, max_args;
    bool observe;
    step_fn run;
} ops[] = {
    {"background", 1, 1, false, op_background},
    {"todo", 1, 1, false, op_todo},
    {"with_cancel", 2, 2, false, op_with_cancel},
    {"with_cancel_cause", 2, 2, false, op_with_cancel_cause},
    {"with_timeout", 3, 4, false, op_with_timeout},
    {"with_deadline", 3, 4, false, op_with_deadline},
    {"with_value", 4, 4, false, op_with_value},
    {"without_cancel", 2, 2, false, op_without_cancel},
    {"chain", 4, 4, false, op_chain},
    {"cancel", 1, 1, false, op_cancel},
    {"cancel_cause", 2, 2, false, op_cancel_cause},
    {"after_func", 2, 2, false, op_after_func},
    {"err", 1, 1, true, op_err},
    {"cause", 1, 1, true, op_cause},
    {"done", 1, 1, true, op_done},
    {"deadline", 1, 1, true, op_deadline},
    {"deadline_cmp", 2, 2, true, op_deadline_cmp},
    {"deadline_within", 2, 2, true, op_deadline_within},
    {"value", 2, 2, true, op_value},
    {"wait", 2, 2, true, op_wait},
    {"stop", 1, 1, true, op_stop},
    {"ran", 2, 2, true, op_ran},
    {"runs", 1, 1, true, op_runs},
};

/* Performs one step; `*observed` says whether `result` is to be printed. */
static bool step(scenario_t *s, char **toks, int n, char *result, size_t result_len, bool *observed) {
    *observed = false;
    if (n == 0) return fail(s, "missing operation");
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, toks[0]) != 0) continue;
        int args = n - 1;
        if (args < ops[i].min_args || args > ops[i].max_args)
            return fail(s, "%s takes %d to %d arguments", toks[0], ops[i].min_args, ops[i].max_args);
        char *a[MAX_TOKENS + 1] = {0}; /* a[args] is NULL: optional arguments test for it */
        for (int j = 0; j < args; j++) a[j] = toks[j + 1];
        *observed = ops[i].observe;
        return ops[i].run(s, a, result, result_len);
    }
    return fail(s, "unknown operation %s", toks[0]);
}

/* Releases everything; cancelling now is fine, nothing is observed again. */
static void finish(scenario_t *s) {
    for (size_t i = 0; i < s->n_afters; i++) {
        after_t *f = s->afters[i];
        bool stopped = false;
        if (f->handle && !f->stopped) ctx_after_func_stop(f->handle, &stopped);
        /* Not stopped now or before: f has been started, so wait until it has
         * run before freeing what it uses. */
        if (f->handle && !f->stopped && !stopped && !has_run(f, 60LL * 1000000000)) {
            fprintf(stderr, "%s: after-func %s never ran; leaking it\n", s->file, f->name);
            continue;
        }
        ctx_after_func_release(f->handle);
        pthread_cond_destroy(&f->changed);
        pthread_mutex_destroy(&f->mu);
        free(f->name);
        free(f);
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].cancel) {
            ctx_cancel(s->nodes[i].cancel);
            ctx_cancel_release(s->nodes[i].cancel);
        }
        ctx_release(s->nodes[i].ctx);
        free(s->nodes[i].name);
    }
    for (size_t i = 0; i < s->n_extra; i++) {
        ctx_cancel(s->extra[i]);
        ctx_cancel_release(s->extra[i]);
    }
    for (size_t i = 0; i < s->n_keys; i++) {
        ctx_key_release(s->keys[i].key);
        free(s->keys[i].name);
    }
    free(s->afters);
    free(s->nodes);
    free(s->extra);
    free(s->keys);
}

static void run(const char *name, char *src) {
    scenario_t s = {.file = name, .t0 = ctx_now_ns()};
    int line_no = 0;
    for (char *line = src; line; ) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *toks[MAX_TOKENS + 2];
        int n = 0;
        for (char *t = strtok(line, " \t\r"); t; t = strtok(NULL, " \t\r")) {
            if (n == MAX_TOKENS + 1) break; /* more than any step takes: the arity check fails */
            toks[n++] = t;
        }
        line = next;
        if (n == 0 || toks[0][0] == '#') continue;
        char **op = toks;
        int n_op = n;
        bool ok = true;
        s.err[0] = '\0';
        if (toks[0][0] == '@') {
            op++, n_op--;
            if (strcmp(toks[0], "@c") != 0 && strcmp(toks[0], "@py") != 0 && strcmp(toks[0], "@node") != 0)
                ok = fail(&s, "unknown prefix %s", toks[0]);
        }
        char result[1024] = "";
        bool observed = false;
        if (ok) ok = step(&s, op, n_op, result, sizeof result, &observed);
        if (!ok || observed) {
            printf("%s:%d", name, line_no);
            for (int i = 0; i < n_op; i++) printf(" %s", op[i]);
            printf(ok ? " => %s\n" : " => error:%s\n", ok ? result : s.err);
        }
        if (!ok) break;
    }
    finish(&s);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0; ) {
        len += got;
        if (len + 1 == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (!bigger) free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

int main(int argc, char **argv) {
    int status = 0;
    for (int i = 1; i < argc; i++) {
        char *src = read_file(argv[i]);
        if (!src) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        const char *base = strrchr(argv[i], '/');
        char name[256];
        snprintf(name, sizeof name, "%s", base ? base + 1 : argv[i]);
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".ctx") == 0) name[len - 4] = '\0';
        run(name, src);
        free(src);
        fflush(stdout); /* per scenario, so a hang still shows how far it got */
    }
    return status;
}
