/*
 * The demo's C worker: a native library inside the Node backend, doing
 * blocking work through libctx on the request's own context. Node hands it
 * the context with ctx.toC(); the work blocks a libuv worker thread in
 * ctx_wait, and stops the moment the context is done, whoever ends it
 * (the deadline, a client that went away, the gateway).
 *
 * Built by the demo with `cc -shared` against include/ctx.h and Node's
 * node_api.h, with the ctx_* symbols left undefined: they bind to the
 * polyctx addon already loaded (polyctx.cLibrary() makes them global), so C
 * and JS share one core.
 *
 *   search(ctx, workMs) -> Promise<{finished, waitedMs, cause}>
 *       takes over the ctx_t* reference `ctx` (a BigInt from ctx.toC()).
 *   inFlight() -> number of searches blocked in C right now.
 */
#include <ctx.h>
#include <node_api.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static atomic_int in_flight;

typedef struct {
    napi_async_work work;
    napi_deferred deferred;
    ctx_t *ctx; /* owned: released when the search completes */
    int64_t work_ns;
    ctx_status_t status;
    int64_t waited_ns;
    char cause[256];
} Search;

/* On a libuv worker thread: the "work" is a wait that the context cuts short. */
static void execute(napi_env env, void *data) {
    (void)env;
    Search *s = data;
    atomic_fetch_add(&in_flight, 1);
    int64_t start = ctx_now_ns();
    s->status = ctx_wait(s->ctx, s->work_ns);
    s->waited_ns = ctx_now_ns() - start;
    if (ctx_cause(s->ctx, s->cause, sizeof s->cause, NULL, NULL) != CTX_OK) s->cause[0] = '\0';
    atomic_fetch_sub(&in_flight, 1);
}

static void complete(napi_env env, napi_status status, void *data) {
    (void)status;
    Search *s = data;
    napi_value out, v;
    napi_create_object(env, &out);
    napi_get_boolean(env, s->status == CTX_ETIMEDOUT, &v); /* the whole wait: the work finished */
    napi_set_named_property(env, out, "finished", v);
    napi_create_double(env, (double)s->waited_ns / 1e6, &v);
    napi_set_named_property(env, out, "waitedMs", v);
    napi_create_string_utf8(env, s->cause, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, out, "cause", v);
    napi_resolve_deferred(env, s->deferred, out);
    ctx_release(s->ctx);
    napi_delete_async_work(env, s->work);
    free(s);
}

static napi_value search(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2], promise, name;
    uint64_t ptr = 0;
    bool lossless = false;
    double work_ms = 0;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    Search *s = calloc(1, sizeof *s);
    if (argc < 2 || s == NULL || napi_get_value_bigint_uint64(env, argv[0], &ptr, &lossless) != napi_ok || ptr == 0 ||
        napi_get_value_double(env, argv[1], &work_ms) != napi_ok) {
        free(s);
        napi_throw_type_error(env, NULL, "c_worker.search(ctx, workMs): ctx from ctx.toC(), workMs a number");
        return NULL;
    }
    s->ctx = (ctx_t *)(uintptr_t)ptr;
    s->work_ns = (int64_t)(work_ms * 1e6);
    napi_create_promise(env, &s->deferred, &promise);
    napi_create_string_utf8(env, "c_worker.search", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, NULL, name, execute, complete, s, &s->work);
    napi_queue_async_work(env, s->work);
    return promise;
}

static napi_value in_flight_count(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value v;
    napi_create_int32(env, atomic_load(&in_flight), &v);
    return v;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
    napi_value fn;
    napi_create_function(env, "search", NAPI_AUTO_LENGTH, search, NULL, &fn);
    napi_set_named_property(env, exports, "search", fn);
    napi_create_function(env, "inFlight", NAPI_AUTO_LENGTH, in_flight_count, NULL, &fn);
    napi_set_named_property(env, exports, "inFlight", fn);
    return exports;
}
