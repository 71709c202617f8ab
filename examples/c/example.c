/* A request with a 2-second budget and a trace id, handed to a worker
 * thread that stops the moment the request is canceled.
 *
 *   cc example.c $(pkg-config --cflags --libs ctx) -o example */
#include <ctx.h>
#include <pthread.h>
#include <stdio.h>

static ctx_key_t *trace_key; /* one key per kind of value, made once */

static void *worker(void *arg) {
    ctx_t *ctx = arg; /* this thread owns one reference */
    const void *trace = NULL;
    ctx_value(ctx, trace_key, &trace, NULL, NULL);
    /* Block until the request is done (or an hour passes). */
    if (ctx_wait(ctx, 3600LL * 1000 * 1000 * 1000) == CTX_OK) {
        char why[64];
        int64_t code = 0;
        ctx_cause(ctx, why, sizeof why, &code, NULL);
        printf("worker [%s]: stopped (%s, code %lld)\n", (const char *)trace, why, (long long)code);
    }
    ctx_release(ctx);
    return NULL;
}

int main(void) {
    if (ctx_key_new("trace-id", &trace_key) != CTX_OK) return 1;

    /* A request context: a cause-carrying cancel, a deadline, a value. */
    ctx_t *conn, *timed, *request;
    ctx_cancel_t *close_conn, *cancel_timeout;
    ctx_status_t s = ctx_with_cancel_cause(ctx_background(), &conn, &close_conn);
    if (s != CTX_OK) {
        fprintf(stderr, "ctx_with_cancel_cause: %s\n", ctx_strerror(s));
        return 1;
    }
    ctx_with_timeout(conn, 2LL * 1000 * 1000 * 1000, &timed, &cancel_timeout);
    ctx_with_value_bytes(timed, trace_key, "req-42", 6, &request);

    pthread_t t;
    pthread_create(&t, NULL, worker, ctx_retain(request));

    /* The client goes away: cancel with a reason, and the worker wakes. */
    ctx_cancel_cause(close_conn, "client disconnected", 499);
    pthread_join(t, NULL);
    int canceled = ctx_err(request) == CTX_ERR_CANCELED;
    char name[160];
    ctx_describe(request, name, sizeof name, NULL); /* Go's String(), for logs */
    printf("main: %s: %s\n", name, ctx_err_string(ctx_err(request)));

    /* Go's `defer cancel()` (cancel, then release both), and the rest. */
    ctx_cancel_and_release(timed, cancel_timeout);
    ctx_cancel_and_release(conn, close_conn);
    ctx_release(request);
    ctx_key_release(trace_key);
    return canceled ? 0 : 1;
}
