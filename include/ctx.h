/*
 * ctx.h: Go's context for C (polyctx). Cancellation trees, deadlines,
 * causes and request-scoped values, shared with polyctx's Rust, Python and
 * Node bindings in the same process.
 *
 * Build:  cc app.c $(pkg-config --cflags --libs ctx)
 *
 * THE MODEL. A context (ctx_t) is a node in a tree rooted at
 * ctx_background(). Deriving a child (ctx_with_cancel, ctx_with_timeout,
 * ctx_with_deadline, ...) also gives a cancel handle (ctx_cancel_t). When a
 * context is canceled or its deadline passes it becomes done, and so does
 * every context derived from it; never its parent. Whoever receives a
 * ctx_t can watch it (ctx_is_done, ctx_err, ctx_wait, ctx_done_fd,
 * ctx_after_func) but not cancel it: only the holder of the ctx_cancel_t
 * can, as in Go.
 *
 * OWNERSHIP. A pointer a function gives you (by out-parameter or return
 * value) is yours: release it exactly once with the matching call
 * (ctx_release, ctx_cancel_release, ctx_key_release, ctx_fd_close,
 * ctx_after_func_release, ctx_wire_policy_release, ctx_baggage_release,
 * ctx_tracestate_release, ctx_headers_release). Pointers you pass in are
 * borrowed for the call; the library keeps its own reference where it
 * needs one. Every release function ignores NULL. ctx_background() and
 * ctx_todo() are immortal: releasing them is optional and harmless.
 * Releasing a context or a cancel handle never cancels it: Go's `defer
 * cancel()` is ctx_cancel_and_release(ctx, cancel), which cancels, then
 * releases both (ctx_cancel_t says what each release leaves alive).
 * Foreign data handed over with a function to free it (ctx_with_value's
 * dtor, ctx_after_func's finalizer) is freed exactly once, by that
 * function.
 *
 * THREADS. Every function may be called from any thread, concurrently on the
 * same handles, except releasing a handle while another thread still uses
 * that same reference, and changing a ctx_baggage_t or ctx_wire_policy_t
 * while another thread uses it. Callbacks (value destructors,
 * ctx_after_func functions, the ctx_wire_* carriers) state on which thread
 * they run; they may call back into the library.
 *
 * TIME. Nanoseconds as int64_t on CLOCK_MONOTONIC, the clock ctx_now_ns()
 * reads. Timeouts of zero or less give a context that is already done;
 * times too large to represent saturate to about 292 years after boot.
 *
 * PLATFORMS. Linux, where it is tested; other Unix systems with
 * CLOCK_MONOTONIC should work (ctx_done_fd uses a pipe there instead of an
 * eventfd, and the tests run that path on Linux too).
 *
 * ERRORS. Fallible functions return ctx_status_t: CTX_OK (0) or an error code
 * whose number is never reused (ctx_strerror describes it). The errors a
 * context can have (ctx_err_t, from ctx_err) are numbered 100 and up, apart
 * from the status codes (CTX_ERR_NONE is 0), and ctx_err_string describes
 * them in Go's words. Out-parameters are written only on CTX_OK, except
 * where a function says otherwise (functions that write text report the
 * length needed; ctx_wire_extract names a malformed header). A NULL
 * required pointer gives CTX_EINVAL; functions that return something else
 * say what they return for NULL. A panic inside the library returns
 * CTX_EPANIC (or the documented fallback) and never unwinds into C. Passing
 * a pointer that is not a live handle of the right type is undefined
 * behaviour.
 *
 * ACROSS SERVICES. Deadlines travel between services as relative timeouts
 * (grpc-timeout, connect-timeout-ms, request-timeout-ms) and are re-created
 * on receipt from the moment the headers arrived, so each hop's budget
 * shrinks by the time it spent; W3C traceparent, tracestate and baggage
 * travel as values of the context. ctx_wire_extract* makes a request's
 * context from inbound headers under a trust policy (ctx_wire_policy_t);
 * ctx_wire_inject* writes what a context carries into an outbound call's
 * headers, or fails locally when no time is left; ctx_cancel_reason and
 * ctx_end_reason say why a request ended, mapped to gRPC, Connect and HTTP
 * codes by ctx_end_reason_info. The codecs (ctx_grpc_timeout_*,
 * ctx_timeout_ms_*, ctx_traceparent_*, ctx_tracestate_*, ctx_baggage_*)
 * are the same rules, one value at a time. Headers are what a sender
 * claims, never an identity or authorization input.
 *
 * ONE CORE PER PROCESS. Contexts cross between languages only within one
 * copy of the core. In a Python process, polyctx's extension module
 * (polyctx._native) contains the core and exports every ctx_* function of
 * this header, so a C library or extension module used from Python must
 * use those, not a libctx of its own (which would be a second core, whose
 * handles are not the first's): build it with this header but without
 * -lctx, leaving the ctx_* symbols undefined, and have Python call
 * polyctx.c_library() before loading it; that makes the module's symbols
 * global (RTLD_GLOBAL) so the loader binds yours to them. A Rust crate in
 * such a process converts handles with the polyctx-ffi-c crate's `handle`
 * module.
 */

#ifndef CTX_H
#define CTX_H

/* Generated with cbindgen:0.29.4 */

/* Generated by ffi-c/gen-header from ffi-c/src; do not edit. Regenerate with `make header-c`. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* This header's version, "MAJOR.MINOR.PATCH", and its parts for #if. ctx_version()
 * is the library's; the two are equal when header and library come from one release. */
#define CTX_VERSION "0.1.0"
#define CTX_VERSION_MAJOR 0
#define CTX_VERSION_MINOR 1
#define CTX_VERSION_PATCH 0
/* Records the calling file and line as where `ctx` was made, for
 * ctx_debug_snapshot (when tracking is on): ctx_debug_set_site(ctx,
 * __FILE__, __LINE__). Returns its ctx_status_t. */
#define CTX_DEBUG_SITE(ctx) ctx_debug_set_site((ctx), __FILE__, __LINE__)

/**
 * The sampled trace flag: the caller may have recorded its span.
 */
#define CTX_TRACE_FLAG_SAMPLED 1

/**
 * Trace Context level 2's random trace flag: the trace id's right 7 bytes
 * are random.
 */
#define CTX_TRACE_FLAG_RANDOM 2

/**
 * The length of a `traceparent` value polyctx writes (version 00), without
 * the NUL: `char buf[CTX_TRACEPARENT_LEN + 1]` always suffices.
 */
#define CTX_TRACEPARENT_LEN 55

/**
 * The longest timeout value polyctx writes (`ctx_grpc_timeout_format`,
 * `ctx_timeout_ms_format`), without the NUL: `char buf[CTX_TIMEOUT_MAX_LEN + 1]`
 * always suffices.
 */
#define CTX_TIMEOUT_MAX_LEN 10

/**
 * The result of a fallible call. `CTX_OK` is 0; every other value is an
 * error whose number is never reused for another meaning. Out-parameters are
 * written only when a call returns `CTX_OK`. `ctx_strerror` describes each.
 *
 * Status codes are below 100 and context errors (`ctx_err_t`) 100 and up,
 * so one can never be mistaken for the other: `ctx_strerror` describes
 * both, and `ctx_err_string` describes a `ctx_err_t` in Go's words.
 */
typedef enum {
    /**
     * Success. For `ctx_wait` and `ctx_wait_until`: the context is done.
     */
    CTX_OK = 0,
    /**
     * A required pointer argument is NULL, or an argument is malformed.
     */
    CTX_EINVAL = 1,
    /**
     * The handle is of the wrong kind: `ctx_cancel_cause` on a cancel handle
     * that cannot record a cause (from `ctx_with_cancel`, `ctx_with_timeout`
     * or `ctx_with_deadline`, as Go's `CancelFunc` takes no cause).
     */
    CTX_EKIND = 2,
    /**
     * `ctx_wait`, `ctx_wait_until`: the time ran out before the context was done.
     */
    CTX_ETIMEDOUT = 3,
    /**
     * A size is too large to be represented (`ctx_with_value_bytes`, the
     * counts of the wire functions), or an index is past the end of a list
     * (`ctx_tracestate_get`, `ctx_baggage_get`).
     */
    CTX_ERANGE = 4,
    /**
     * A bug in polyctx panicked inside the call. The panic was stopped at the
     * boundary (never unwinding into C) and reported on stderr; contexts
     * stay usable.
     */
    CTX_EPANIC = 5,
    /**
     * A system call failed (`ctx_done_fd`: no file descriptor could be
     * created); `errno` says why.
     */
    CTX_ESYS = 6,
    /**
     * `ctx_value`: no value is stored under the key in the context or its
     * ancestors. Likewise `ctx_wire_trace_context` and `ctx_wire_trace_link`
     * (the context carries none) and the `ctx_baggage_*` lookups (no such key).
     */
    CTX_ENOTFOUND = 7,
    /**
     * `ctx_deadline`: the context has no deadline.
     */
    CTX_ENODEADLINE = 8,
    /**
     * `ctx_cause`, `ctx_end_reason`: the context is not done, so it has no
     * cause yet.
     */
    CTX_ENOTDONE = 9,
    /**
     * A header value (or a part of one given to a `ctx_baggage_*` or
     * `ctx_wire_policy_*` setter) breaks its grammar: a malformed timeout
     * (for `ctx_wire_extract*`, of the protocol's own timeout header, which
     * the call names), a `tracestate` that must be dropped whole, a baggage
     * key that is not an HTTP token, a trace context with an all-zero id.
     */
    CTX_EMALFORMED = 10,
    /**
     * The buffer is too small for the value, which is never truncated: the
     * buffer holds the empty string (if `buf_len > 0`) and `*len` the
     * value's length, so a buffer of `*len + 1` bytes will do.
     */
    CTX_ENOBUFS = 11,
    /**
     * Nothing there: a parsed header is absent or empty (an invalid or
     * conflicting `traceparent` counts as absent, as W3C says), or a format
     * call has nothing to send (no time left, no members). Leave the header
     * out.
     */
    CTX_EABSENT = 12,
    /**
     * The context is canceled. `ctx_wire_inject*`: the call would fail
     * anyway, and nothing was written: fail the call locally. `ctx_sleep`,
     * `ctx_backoff_next`, `ctx_retry`: the wait or the retries stopped
     * (`ctx_cause` says why).
     */
    CTX_ECANCELED = 13,
    /**
     * The context has no time left. `ctx_wire_inject*`: its deadline has
     * passed (even if the timer has not fired yet) and nothing was written:
     * fail the call locally with a deadline error. `ctx_sleep`: the
     * deadline ended the sleep. `ctx_backoff_next`, `ctx_retry`: the
     * deadline passed, or what is left of it cannot fit another attempt.
     */
    CTX_EDEADLINE = 14,
    /**
     * `ctx_backoff_next`, `ctx_retry`: `max_attempts` attempts failed.
     */
    CTX_EATTEMPTS = 15,
    /**
     * `ctx_group_run`: a task failed (returned non-zero); `ctx_retry`: an
     * attempt failed in a way not worth retrying.
     */
    CTX_ETASK = 16,
} ctx_status_t;

/**
 * Why a context is done, as returned by `ctx_err`. Zero while it is not,
 * so `if (ctx_err(ctx))` reads "if done". The other values start at 100,
 * apart from every `ctx_status_t`. (Early builds numbered them 1, 2 and 3,
 * which were status codes too: rebuild code compiled against such a ctx.h.)
 * `ctx_err_string` gives Go's text for each.
 */
typedef enum {
    /**
     * The context is not done.
     */
    CTX_ERR_NONE = 0,
    /**
     * Canceled: by its cancel handle or an ancestor's (Go's `context.Canceled`).
     */
    CTX_ERR_CANCELED = 100,
    /**
     * Its deadline, or an ancestor's, passed (Go's `context.DeadlineExceeded`).
     */
    CTX_ERR_DEADLINE_EXCEEDED = 101,
    /**
     * `ctx_err` was given NULL (or panicked). Not zero, so code that tests
     * `ctx_err(ctx) != CTX_ERR_NONE` stops its work rather than run on.
     */
    CTX_ERR_INVALID = 102,
} ctx_err_t;

/**
 * What `ctx_value` found: which of the two ways the value was stored.
 */
typedef enum {
    /**
     * Bytes copied by `ctx_with_value_bytes` (possibly none).
     */
    CTX_VALUE_BYTES = 1,
    /**
     * A pointer stored by `ctx_with_value` (possibly NULL), or by another
     * language through the same key (Python stores its objects' `PyObject *`).
     */
    CTX_VALUE_POINTER = 2,
} ctx_value_kind_t;

/**
 * Why a request's context ended, the same in every language, each mapped
 * once to a gRPC code, a Connect code and an HTTP status
 * (`ctx_end_reason_info`). Passed as an `int`; other numbers give
 * `CTX_EINVAL`.
 */
typedef enum {
    /**
     * Canceled by its own code (Go's `Canceled`): gRPC 1, "canceled", 499.
     */
    CTX_END_CANCELED = 1,
    /**
     * The budget ran out (Go's `DeadlineExceeded`): gRPC 4,
     * "deadline_exceeded", 504.
     */
    CTX_END_DEADLINE_EXCEEDED = 2,
    /**
     * The client went away before the response was complete: gRPC 1,
     * "canceled", 499.
     */
    CTX_END_CLIENT_DISCONNECTED = 3,
    /**
     * The peer canceled the call (a gRPC `RST_STREAM` with `CANCEL`, say):
     * gRPC 1, "canceled", 499.
     */
    CTX_END_PEER_CANCELED = 4,
    /**
     * The server is shutting down: gRPC 14, "unavailable", 503.
     */
    CTX_END_SERVER_SHUTDOWN = 5,
    /**
     * The response is complete; nothing more will be done for it: gRPC 1,
     * "canceled", 499.
     */
    CTX_END_REQUEST_FINISHED = 6,
} ctx_end_reason_t;

/**
 * Which protocol a request speaks: decides the timeout header polyctx
 * sends, and which inbound timeout header is the protocol's own (a
 * malformed one of those is an error; the others are only hints). Passed
 * as an `int`, so that any number is safe: others give `CTX_EINVAL`.
 */
typedef enum {
    /**
     * gRPC over HTTP/2: `grpc-timeout`. A malformed one is `INTERNAL`.
     */
    CTX_PROTOCOL_GRPC = 1,
    /**
     * Connect: `connect-timeout-ms`. A malformed one is `invalid_argument`.
     */
    CTX_PROTOCOL_CONNECT = 2,
    /**
     * Plain HTTP: `request-timeout-ms`. A malformed one is a 400.
     */
    CTX_PROTOCOL_HTTP = 3,
} ctx_wire_protocol_t;

/**
 * The two starting points of a `ctx_wire_policy_t`. Passed as an `int`;
 * other numbers give `CTX_EINVAL`.
 */
typedef enum {
    /**
     * Peers inside the same system: budgets, traces and baggage flow as
     * sent; no maximum, no default timeout.
     */
    CTX_TRUST_INTERNAL = 1,
    /**
     * Anyone (the safe default for a listener): inbound budgets clamped to
     * 300 s, 30 s when none is sent; the trace restarts, keeping the
     * caller's as a link (`ctx_wire_trace_link`); inbound baggage dropped
     * but for an allow-list; nothing but the budget and `traceparent` sent.
     */
    CTX_TRUST_EXTERNAL = 2,
} ctx_wire_trust_t;

/**
 * What an attempt of `ctx_retry` returns.
 */
typedef enum {
    /**
     * It succeeded: `ctx_retry` returns `CTX_OK`.
     */
    CTX_ATTEMPT_OK = 0,
    /**
     * It failed in a way worth retrying (a timeout, a 503, a reset connection).
     */
    CTX_ATTEMPT_RETRY = 1,
    /**
     * It failed in a way not worth retrying (a 400, a bad password):
     * `ctx_retry` returns `CTX_ETASK` at once. So does any other number.
     */
    CTX_ATTEMPT_FATAL = 2,
} ctx_attempt_t;

/**
 * A function scheduled by `ctx_after_func` to run when a context is done.
 *
 * Ownership: release exactly once with `ctx_after_func_release`, which does
 * not stop the function (use `ctx_after_func_stop` first for that).
 * Threads: `ctx_after_func_stop` from any thread, any number of times.
 */
typedef struct ctx_after_func_t ctx_after_func_t;

/**
 * W3C baggage: a list of members, each a key (an HTTP token), a value (any
 * text; stored decoded, sent percent-encoded) and properties, in the order
 * they were first seen. Made by `ctx_baggage_new`, `ctx_baggage_parse` or
 * `ctx_wire_baggage`.
 *
 * Ownership: release exactly once with `ctx_baggage_release`. Strings it
 * hands out are borrowed from it: valid until it is changed or released.
 * Threads: like a plain C struct: reads from any number of threads at once,
 * a change (`ctx_baggage_set`, `_add_property`, `_remove`) from one thread
 * with no reader meanwhile.
 */
typedef struct ctx_baggage_t ctx_baggage_t;

/**
 * The capability to cancel one context (Go's `CancelFunc` or
 * `CancelCauseFunc`), returned beside the context by the `ctx_with_*`
 * functions that make cancelable contexts.
 *
 * Ownership: release exactly once; `ctx_cancel_retain` makes another
 * reference. The handle keeps its context alive. Go's `defer cancel()` is
 * `ctx_cancel_and_release(ctx, cancel)`, once the work the context was
 * made for is over. What each way of letting go leaves alive:
 *
 * - `ctx_cancel_and_release(ctx, cancel)` (or `ctx_cancel`, then both
 *   releases): the context and every context derived from it are done;
 *   its timer is disarmed and its after-funcs start. Its memory goes once
 *   no reference is left (children, retained copies, fds, after-funcs).
 * - `ctx_cancel_release(cancel)` alone **does not cancel**. If nothing else
 *   refers to the context (no `ctx_t *`, live child, `ctx_fd_t` or pending
 *   after-func), it is freed at once and its timer disarmed. If something
 *   does, the context stays live, with its deadline timer armed, until an
 *   ancestor is canceled or the deadline passes: with no deadline and no
 *   cancelable ancestor, that is for ever, and so is the work waiting on
 *   it. Nobody can cancel it any more.
 * - `ctx_release(ctx)` alone gives up that reference only; whoever holds
 *   the cancel handle can still cancel.
 *
 * Threads: any thread may cancel, any number of times, concurrently.
 */
typedef struct ctx_cancel_t ctx_cancel_t;

/**
 * A file descriptor that becomes readable when a context is done, made by
 * `ctx_done_fd`. Owns the descriptor and its registration with the context.
 *
 * Ownership: close exactly once with `ctx_fd_close`, never with `close(2)`.
 * Threads: `ctx_fd_get` from any thread; `ctx_fd_close` once, when no other
 * thread uses the handle.
 */
typedef struct ctx_fd_t ctx_fd_t;

/**
 * The headers `ctx_wire_inject` wrote: a `ctx_header_t` array that
 * `ctx_headers_items` returns.
 *
 * Ownership: release exactly once with `ctx_headers_release`, which frees
 * the array and its strings. Threads: any, at once.
 */
typedef struct ctx_headers_t ctx_headers_t;

/**
 * A key for values stored in contexts, unique by identity: two keys never
 * match each other, even with the same name (Go's unexported key type).
 *
 * Ownership: made by `ctx_key_new`, released once with `ctx_key_release`.
 * Contexts holding values under a key keep what they need; after the key
 * is released nobody can look those values up any more, but they are still
 * destroyed with their contexts. Typically one key per kind of value, made
 * at startup and never released.
 *
 * Threads: any thread may use a key at once, but not while another thread
 * releases it.
 */
typedef struct ctx_key_t ctx_key_t;

/**
 * A context: a cancellation signal, maybe a deadline, and values (Go's
 * `context.Context`). Opaque; one pointer is one reference.
 *
 * Ownership: every function that gives you a `ctx_t *` (an out-parameter, or
 * `ctx_retain`) gives you one reference, which you release exactly once with
 * `ctx_release`. `ctx_background()` and `ctx_todo()` are the exceptions:
 * they are immortal, so releasing them is optional and harmless. A child
 * keeps its parent alive, so you may release a parent before its children.
 *
 * Threads: a context is immutable except for becoming done, and every
 * function taking a `const ctx_t *` may be called from any thread at once.
 * A `ctx_t *` cannot cancel its context; only its `ctx_cancel_t *` can.
 */
typedef struct ctx_t ctx_t;

/**
 * A W3C `tracestate`: vendor key/value members, in order. Made by
 * `ctx_tracestate_parse` or `ctx_wire_tracestate`; read-only.
 *
 * Ownership: release exactly once with `ctx_tracestate_release`; the
 * strings it hands out are valid until then. Threads: any, at once.
 */
typedef struct ctx_tracestate_t ctx_tracestate_t;

/**
 * A trust policy for `ctx_wire_extract*` and `ctx_wire_inject*`: how much
 * a listener trusts its callers, or a client its destination. Made by
 * `ctx_wire_policy_new` from one of the two starting points
 * (`CTX_TRUST_INTERNAL`, `CTX_TRUST_EXTERNAL`), then adjusted with the
 * `ctx_wire_policy_set_*` calls.
 *
 * Ownership: release exactly once with `ctx_wire_policy_release`; the
 * contexts made with it keep nothing of it. Threads: configure it first,
 * then share it: any number of threads may pass it to `ctx_wire_extract*`
 * and `ctx_wire_inject*` at once, but no setter may run meanwhile.
 */
typedef struct ctx_wire_policy_t ctx_wire_policy_t;

/**
 * Where a `ctx_wire_get_fn` callback puts the values of the header asked
 * for, with `ctx_wire_values_add`. Borrowed: valid only during that call of
 * the callback, on its thread.
 */
typedef struct ctx_wire_values_t ctx_wire_values_t;

/**
 * One hop of a distributed trace (W3C Trace Context), as plain bytes: the
 * trace it belongs to, the span that is the parent of the next hop's work,
 * and the trace flags (`CTX_TRACE_FLAG_*`; others are kept but never sent).
 * Neither id may be all zero: calls given such a one return
 * `CTX_EMALFORMED`. A value type: copy it freely.
 */
typedef struct {
    /**
     * 16 bytes, never all zero.
     */
    uint8_t trace_id[16];
    /**
     * 8 bytes, never all zero.
     */
    uint8_t span_id[8];
    /**
     * `CTX_TRACE_FLAG_SAMPLED`, `CTX_TRACE_FLAG_RANDOM`, or others received.
     */
    uint8_t flags;
} ctx_trace_context_t;

/**
 * One header: a name (compared case-insensitively) and a value, both
 * NUL-terminated. `ctx_wire_extract` reads an array of them;
 * `ctx_headers_items` returns one.
 */
typedef struct {
    /**
     * The field name, such as "grpc-timeout".
     */
    const char *name;
    /**
     * One field value, as received or to send.
     */
    const char *value;
} ctx_header_t;

/**
 * The extract callback: put every value of the header `name` (lowercase,
 * NUL-terminated; compare it case-insensitively with yours) into `values`,
 * in the order received, with `ctx_wire_values_add`; add nothing if there
 * is none. Called on the thread calling `ctx_wire_extract_cb*`, before it
 * returns, once for each header polyctx reads. It may call ctx_ functions
 * but must not keep `values` or `name`.
 */
typedef void (*ctx_wire_get_fn)(void *userdata, const char *name, ctx_wire_values_t *values);

/**
 * The inject callback: set the header `name` (lowercase) to `value`,
 * replacing any value it had; both are NUL-terminated and valid only during
 * the call (copy them). Called on the thread calling `ctx_wire_inject_cb`,
 * before it returns. If it cannot store the header, it should note that in
 * `userdata` and the request not be sent. It may call ctx_ functions.
 */
typedef void (*ctx_wire_set_fn)(void *userdata, const char *name, const char *value);

/**
 * An end reason's names and codes, from the one table every language uses.
 * The strings are static: never free them.
 */
typedef struct {
    /**
     * A stable lowercase name, the same in every language ("client_disconnected").
     */
    const char *name;
    /**
     * The cause's text, as `ctx_cause` reports it ("client disconnected").
     */
    const char *message;
    /**
     * The gRPC status code (`CANCELLED` 1, `DEADLINE_EXCEEDED` 4, `UNAVAILABLE` 14).
     */
    uint32_t grpc_code;
    /**
     * The Connect error code ("canceled", "deadline_exceeded", "unavailable").
     */
    const char *connect_code;
    /**
     * The HTTP status: 504 for a spent budget, 503 for shutdown, and the
     * de facto 499 ("client closed request") for the rest.
     */
    uint16_t http_status;
} ctx_end_reason_info_t;

/**
 * The function of a `ctx_task_t`: given the group's context (borrowed for
 * the call) and the task's `userdata`, it returns 0 for success, anything
 * else for failure (the first failure's number becomes the code of the
 * group's cause).
 */
typedef int (*ctx_task_fn)(const ctx_t *ctx, void *userdata);

/**
 * A task of `ctx_group_run`: `fn(ctx, userdata)`, run on a thread of its own.
 */
typedef struct {
    ctx_task_fn fn;
    void *userdata;
} ctx_task_t;

/**
 * How to space the attempts of a retry loop: the core's rules, whose
 * decisions `ctx_backoff_next` gives and `ctx_retry` follows. Start from
 * `ctx_backoff_default` and change what you need.
 */
typedef struct {
    /**
     * The wait after the first failure, in nanoseconds (default 100 ms).
     */
    int64_t initial_ns;
    /**
     * The longest wait (default 10 s).
     */
    int64_t max_ns;
    /**
     * Each wait is this many times the previous one, before jitter; at least 1 (default 2).
     */
    double multiplier;
    /**
     * How much of each wait is random, 0 to 1 (default 0.2): a wait of d
     * becomes a uniform pick in [d * (1 - jitter), d], so that clients that
     * failed together do not retry together.
     */
    double jitter;
    /**
     * Give up after this many attempts; 0 for no limit but the context's
     * time (the default).
     */
    uint32_t max_attempts;
    /**
     * How long one attempt is expected to take, or 0 if unknown (the
     * default): an attempt that the context's remaining time cannot fit is
     * never started.
     */
    int64_t attempt_ns;
} ctx_backoff_t;

/**
 * An attempt of `ctx_retry`: given the context (borrowed), the attempt's
 * number (from 1) and the `userdata` given to `ctx_retry`, it returns a
 * `ctx_attempt_t`.
 */
typedef int (*ctx_attempt_fn)(const ctx_t *ctx, uint32_t attempt, void *userdata);

/**
 * A lost-cancel hook: called with the hook's `userdata`, the context as
 * `ctx_describe` names it, and where it was made (NULL unless it was
 * tracked, see `ctx_debug_track`). Both strings are borrowed for the call.
 */
typedef void (*ctx_lost_cancel_fn)(void *userdata, const char *context, const char *site);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The root of every context tree: never done, no deadline, no values (Go's
 * `context.Background()`). Use it in `main`, at the top of a request, and
 * in tests.
 *
 * Returns: never NULL. The background context is immortal: you need not
 * release it, and `ctx_release`/`ctx_retain` on it are harmless no-ops.
 * Threads: any.
 */
ctx_t *ctx_background(void);

/**
 * A placeholder root for code not yet given a context (Go's
 * `context.TODO()`); behaves exactly like `ctx_background()`, immortal too.
 */
ctx_t *ctx_todo(void);

/**
 * Another reference to `ctx`, to hand to code that will release it on its
 * own (another thread, a struct that outlives this call). Not `const`: it
 * makes a reference that must be released, which only an owner may do.
 *
 * Returns: `ctx` itself (a handle is its context's address), now owning one
 * more reference, to be released once with `ctx_release`. NULL if `ctx` is
 * NULL. Allocates nothing. Threads: any.
 */
ctx_t *ctx_retain(ctx_t *ctx);

/**
 * Releases one reference to `ctx`. The context is freed when its last
 * reference (including those held by its children, its cancel handle,
 * pending `ctx_after_func`s and `ctx_fd_t`s) is gone; values' destructors
 * run then. Releasing does not cancel anything: whoever holds the cancel
 * handle still can (see `ctx_cancel_t` for what stays alive).
 *
 * NULL is ignored, as is `ctx_background()`/`ctx_todo()`. Releasing the same
 * reference twice is undefined behaviour. Threads: any.
 */
void ctx_release(ctx_t *ctx);

/**
 * Derives a child of `parent` that is canceled when `ctx_cancel` is called
 * on `*cancel_out`, or when `parent` is done, whichever comes first (Go's
 * `WithCancel`). Cancellation flows down the tree, never up.
 *
 * On `CTX_OK`, `*ctx_out` and `*cancel_out` each own one reference (release
 * them with `ctx_release` and `ctx_cancel_release`). `parent` stays yours;
 * the child keeps what it needs of it.
 *
 * Errors: `CTX_EINVAL` if any pointer is NULL. Threads: any.
 */
ctx_status_t ctx_with_cancel(const ctx_t *parent, ctx_t **ctx_out, ctx_cancel_t **cancel_out);

/**
 * Like `ctx_with_cancel`, but the cancel handle can also record why, with
 * `ctx_cancel_cause`, which `ctx_cause` then reports (Go's
 * `WithCancelCause`). `ctx_cancel` on this handle cancels without a cause.
 */
ctx_status_t ctx_with_cancel_cause(const ctx_t *parent, ctx_t **ctx_out, ctx_cancel_t **cancel_out);

/**
 * Derives a child of `parent` that is also done `timeout_ns` nanoseconds
 * from now, with `CTX_ERR_DEADLINE_EXCEEDED` (Go's `WithTimeout`); its
 * deadline is `ctx_now_ns() + timeout_ns`. A timeout of zero or less makes
 * a child that is done at once, as in Go. A timeout too large to represent
 * saturates to a deadline about 292 years after boot. If `parent`'s
 * deadline is earlier, the child keeps the parent's.
 *
 * Ownership and errors as for `ctx_with_cancel`. Canceling early (then
 * releasing the handle) frees the timer at once; do it when the work is done.
 */
ctx_status_t ctx_with_timeout(const ctx_t *parent,
                              int64_t timeout_ns,
                              ctx_t **ctx_out,
                              ctx_cancel_t **cancel_out);

/**
 * Like `ctx_with_timeout`, and when the timeout expires (not when the
 * context is canceled) its cause becomes the message `msg` with the integer
 * `code` (Go's `WithTimeoutCause`; see `ctx_cancel_cause` for `msg` and
 * `code`). Errors: `CTX_EINVAL` also if `msg` is NULL.
 */
ctx_status_t ctx_with_timeout_cause(const ctx_t *parent,
                                    int64_t timeout_ns,
                                    const char *msg,
                                    int64_t code,
                                    ctx_t **ctx_out,
                                    ctx_cancel_t **cancel_out);

/**
 * Derives a child of `parent` that is also done at `deadline_ns`, a time on
 * the clock `ctx_now_ns` reads (Go's `WithDeadline`). A deadline not after
 * now (including any negative one) makes a child that is done at once;
 * deadlines beyond about 292 years after boot saturate there. If `parent`'s
 * deadline is earlier, the child keeps the parent's.
 *
 * Ownership and errors as for `ctx_with_cancel`.
 */
ctx_status_t ctx_with_deadline(const ctx_t *parent,
                               int64_t deadline_ns,
                               ctx_t **ctx_out,
                               ctx_cancel_t **cancel_out);

/**
 * Like `ctx_with_deadline`, and when the deadline passes (not when the
 * context is canceled) its cause becomes `msg` with `code` (Go's
 * `WithDeadlineCause`). Errors: `CTX_EINVAL` also if `msg` is NULL.
 */
ctx_status_t ctx_with_deadline_cause(const ctx_t *parent,
                                     int64_t deadline_ns,
                                     const char *msg,
                                     int64_t code,
                                     ctx_t **ctx_out,
                                     ctx_cancel_t **cancel_out);

/**
 * Derives a child of `parent` that keeps its values but is never done: no
 * deadline, no error, no cause, whatever happens to `parent` (Go's
 * `WithoutCancel`). For work that must outlive the request, such as a final
 * audit write.
 *
 * On `CTX_OK`, `*out` owns one reference. Errors: `CTX_EINVAL` if a pointer
 * is NULL. Threads: any.
 */
ctx_status_t ctx_without_cancel(const ctx_t *parent, ctx_t **out);

/**
 * Why `ctx` is done: `CTX_ERR_NONE` while it is live, then
 * `CTX_ERR_CANCELED` or `CTX_ERR_DEADLINE_EXCEEDED` for ever (Go's `Err`).
 * One atomic load; never blocks. `CTX_ERR_INVALID` if `ctx` is NULL.
 * Threads: any.
 */
ctx_err_t ctx_err(const ctx_t *ctx);

/**
 * True once `ctx` is done (canceled or past its deadline); exactly when
 * `ctx_err` stops returning `CTX_ERR_NONE`. One atomic load; never blocks.
 * Threads: any.
 *
 * True also if `ctx` is NULL. A `bool` cannot carry a status, and of its
 * two answers "done" is the safe one: `while (!ctx_is_done(ctx))` given NULL
 * stops instead of running unchecked for ever. To tell a NULL handle from a
 * done context, use `ctx_err`, which returns `CTX_ERR_INVALID` for NULL.
 */
bool ctx_is_done(const ctx_t *ctx);

/**
 * When `ctx` will be done by itself, on the `ctx_now_ns` clock (Go's
 * `Deadline`): its own deadline or the earliest of its ancestors'.
 *
 * Returns `CTX_OK` and writes `*out`, or `CTX_ENODEADLINE` (leaving `*out`
 * alone) if it has none. Errors: `CTX_EINVAL` if a pointer is NULL.
 * Threads: any.
 */
ctx_status_t ctx_deadline(const ctx_t *ctx, int64_t *out);

/**
 * Why `ctx` is done, in words (Go's `context.Cause`): the cause given to
 * the first cancellation of `ctx` or an ancestor (`ctx_cancel_cause`, or a
 * `*_cause` deadline that passed), or else the error's own text,
 * "context canceled" or "context deadline exceeded". A cause set from
 * another language (Rust, Python, Node) reads as its display text.
 *
 * Writes like `snprintf`: if `buf_len > 0`, copies the first
 * `min(n, buf_len - 1)` bytes of the n-byte message to `buf` and a NUL after
 * them (truncation may split a multi-byte UTF-8 character); `buf` may be
 * NULL only when `buf_len` is 0. Sets `*msg_len` to n (the full length
 * without the NUL, so `n >= buf_len` means it was truncated) and `*code` to
 * the cause's integer code (0 when it has none); either may be NULL.
 *
 * Returns `CTX_OK`, or `CTX_ENOTDONE` (writing nothing) while `ctx` is live.
 * Errors: `CTX_EINVAL` if `ctx` is NULL, or `buf` is NULL with `buf_len > 0`.
 * Threads: any.
 */
ctx_status_t ctx_cause(const ctx_t *ctx, char *buf, size_t buf_len, int64_t *code, size_t *msg_len);

/**
 * Blocks the calling thread until `ctx` is done or `timeout_ns` nanoseconds
 * pass. A negative timeout waits for ever (on a context that can never be
 * done, such as `ctx_background()`, that is for ever); 0 only looks.
 *
 * Returns `CTX_OK` if `ctx` is done (at once if it already was),
 * `CTX_ETIMEDOUT` if the time ran out first. Errors: `CTX_EINVAL` if `ctx`
 * is NULL. Threads: any number may wait on one context at once; all wake
 * when it is done. For waiting on sockets too, see `ctx_done_fd`.
 */
ctx_status_t ctx_wait(const ctx_t *ctx, int64_t timeout_ns);

/**
 * Blocks the calling thread until `ctx` is done or the clock `ctx_now_ns`
 * reads reaches `deadline_ns`, whichever comes first: `ctx_wait` with an
 * absolute time, so that a loop of waits keeps one deadline however often
 * it wakes. A deadline not after now only looks; `INT64_MAX` waits for
 * (practically) ever.
 *
 * Returns `CTX_OK` if `ctx` is done (at once if it already was),
 * `CTX_ETIMEDOUT` if `deadline_ns` came first. Errors: `CTX_EINVAL` if
 * `ctx` is NULL. Threads: as for `ctx_wait`.
 */
ctx_status_t ctx_wait_until(const ctx_t *ctx, int64_t deadline_ns);

/**
 * Names `ctx` for debugging, as Go's `String()` does: its chain from the
 * root, such as
 * `context.Background.WithCancel.WithDeadline([1.5s]).WithValue(trace-id, req-42)`
 * (a deadline shows the time left then; a value shows as its text if it is
 * UTF-8 bytes, `<bytes>` if not, `<value>` for a pointer or another
 * language's object). For logs and debuggers, not for parsing.
 *
 * Writes like `ctx_cause`: if `buf_len > 0`, the first `min(n, buf_len - 1)`
 * bytes of the n-byte text and a NUL; `buf` may be NULL only when `buf_len`
 * is 0. Sets `*len` to n unless `len` is NULL, so a first call with
 * `buf_len` 0 gives the size to allocate (n + 1).
 *
 * Errors: `CTX_EINVAL` if `ctx` is NULL, or `buf` is NULL with
 * `buf_len > 0`. Takes time and memory in proportion to the chain's depth.
 * Threads: any.
 */
ctx_status_t ctx_describe(const ctx_t *ctx, char *buf, size_t buf_len, size_t *len);

/**
 * Now, in nanoseconds on `CLOCK_MONOTONIC`: the clock of every deadline
 * (shared with Python's `time.monotonic_ns()` and Rust's `Instant`).
 * Threads: any.
 */
int64_t ctx_now_ns(void);

/**
 * Cancels the context and all its descendants with `CTX_ERR_CANCELED`,
 * without a cause (Go's `cancel()`, or `cancel(nil)` for a handle from
 * `ctx_with_cancel_cause`). Does nothing if the context is already done:
 * only the first cancellation counts.
 *
 * Every thread blocked in `ctx_wait` on it wakes, every `ctx_done_fd` of it
 * becomes readable, and its `ctx_after_func` functions are started, before
 * this returns. Does not release `cancel` (`ctx_cancel_and_release` does).
 *
 * Errors: `CTX_EINVAL` if `cancel` is NULL. Threads: any, concurrently.
 */
ctx_status_t ctx_cancel(ctx_cancel_t *cancel);

/**
 * Cancels like `ctx_cancel`, recording why: unless the context was already
 * done, `ctx_cause` on it and on its descendants reports `msg` (copied;
 * invalid UTF-8 is replaced by U+FFFD) and `code`, an integer of your
 * choosing where 0 means "no code" (Go's `cancel(errors.New(msg))`). Other
 * languages read the cause as the text `msg`.
 *
 * Errors: `CTX_EINVAL` if a pointer is NULL; `CTX_EKIND` (canceling
 * nothing) if `cancel` came from `ctx_with_cancel`, `ctx_with_timeout` or
 * `ctx_with_deadline`, whose cancel takes no cause in Go either; use
 * `ctx_with_cancel_cause`. Threads: any, concurrently.
 */
ctx_status_t ctx_cancel_cause(ctx_cancel_t *cancel, const char *msg, int64_t code);

/**
 * Another reference to the cancel handle, for a second owner (another
 * thread) to release on its own. Not `const`: it makes a reference that
 * must be released, which only an owner may do.
 *
 * Returns: `cancel` itself, owning one more reference, to be released with
 * `ctx_cancel_release`; NULL if `cancel` is NULL. Threads: any.
 */
ctx_cancel_t *ctx_cancel_retain(ctx_cancel_t *cancel);

/**
 * Releases one reference to the cancel handle. **Does not cancel**: see
 * `ctx_cancel_t` for what stays alive; to end work as Go's
 * `defer cancel()` does, call `ctx_cancel_and_release` instead.
 *
 * NULL is ignored. Releasing the same reference twice is undefined
 * behaviour. Threads: any.
 */
void ctx_cancel_release(ctx_cancel_t *cancel);

/**
 * Go's `defer cancel()` in one call, for the end of the work a context was
 * made for: cancels `cancel`'s context (as `ctx_cancel`: it and every
 * descendant become done, its timer is disarmed, its `ctx_after_func`
 * functions start), then releases `cancel` and `ctx`. The pair is usually
 * the two out-parameters of one `ctx_with_*` call, but `ctx` may be any
 * reference you own.
 *
 * Either may be NULL, and is then skipped, so a cleanup path can call it
 * whether or not the `ctx_with_*` call succeeded (set both to NULL first).
 * Releasing either twice is undefined behaviour. Threads: any.
 */
void ctx_cancel_and_release(ctx_t *ctx, ctx_cancel_t *cancel);

/**
 * Makes a new key, distinct from every other key whatever its name. `name`
 * (copied; invalid UTF-8 becomes U+FFFD) is only for display.
 *
 * On `CTX_OK`, `*out` owns the key; release it with `ctx_key_release`.
 * Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_key_new(const char *name, ctx_key_t **out);

/**
 * Releases a key. Values stored under it stay in their contexts (and are
 * destroyed with them) but can no longer be looked up. NULL is ignored.
 * No other thread may be using the key. Releasing twice is undefined
 * behaviour.
 */
void ctx_key_release(ctx_key_t *key);

/**
 * Derives a child of `parent` carrying a copy of the `len` bytes at `data`
 * under `key` (Go's `WithValue`), shadowing any value an ancestor stored
 * under the same key. Use values for request-scoped data that crosses API
 * boundaries (trace ids, auth principals), not for optional parameters.
 *
 * `data` may be NULL only when `len` is 0. The copy is freed with the
 * context. On `CTX_OK`, `*out` owns one reference.
 *
 * Errors: `CTX_EINVAL` if a required pointer is NULL; `CTX_ERANGE` if `len`
 * exceeds `PTRDIFF_MAX`. Threads: any.
 */
ctx_status_t ctx_with_value_bytes(const ctx_t *parent,
                                  const ctx_key_t *key,
                                  const void *data,
                                  size_t len,
                                  ctx_t **out);

/**
 * Derives a child of `parent` carrying the pointer `ptr` under `key` (Go's
 * `WithValue` with a pointer). polyctx never dereferences `ptr`; it may be
 * NULL.
 *
 * On `CTX_OK` the value is the context's: `dtor` (if not NULL) is called
 * with `ptr` exactly once, when the last context holding the value is
 * freed, which is when the last reference to it or to any context derived
 * from it is gone. It runs on the thread that drops that reference: usually
 * one calling `ctx_release`, but it can be any thread inside a ctx_ call
 * that gives up a reference (releasing or closing a handle, cancelling), or
 * polyctx's timer thread after a deadline. `dtor` should be quick and must
 * not block; it may call ctx_ functions. On any other status nothing was
 * stored and `dtor` is not called: `ptr` is still yours.
 *
 * Whatever `ptr` points to must be safe to read from several threads at
 * once, as any thread holding the context may look it up.
 *
 * On `CTX_OK`, `*out` owns one reference. Errors: `CTX_EINVAL` if `parent`,
 * `key` or `out` is NULL. Threads: any.
 */
ctx_status_t ctx_with_value(const ctx_t *parent,
                            const ctx_key_t *key,
                            void *ptr,
                            void (*dtor)(void*),
                            ctx_t **out);

/**
 * Looks up the value stored under `key` by `ctx` or its nearest ancestor
 * that has one (Go's `Value`). Walks up the tree; never blocks.
 *
 * On `CTX_OK`, `*data` is borrowed from the context, valid while you hold a
 * reference to `ctx`, and `*kind` (unless `kind` is NULL) says which it is:
 * - `CTX_VALUE_BYTES`: a pointer to the copy, followed by a NUL that `*len`
 *   does not count (so a stored string is a C string); never NULL, even
 *   for an empty value.
 * - `CTX_VALUE_POINTER`: the pointer itself (maybe NULL), `*len` set to 0.
 *   A value Python stored under the key (a `polyctx.Key` is a `ctx_key_t *`)
 *   reads as its `PyObject *`, borrowed from the context.
 *
 * `len` may be NULL. Returns `CTX_ENOTFOUND` (writing nothing) if no value
 * is stored under `key`.
 *
 * Errors: `CTX_EINVAL` if `ctx`, `key` or `data` is NULL. Threads: any.
 */
ctx_status_t ctx_value(const ctx_t *ctx,
                       const ctx_key_t *key,
                       const void **data,
                       size_t *len,
                       ctx_value_kind_t *kind);

/**
 * Makes a file descriptor that becomes readable when `ctx` is done, and
 * stays readable (level-triggered), so that an event loop (`poll`, `epoll`,
 * kqueue, libuv...) can wait for cancellation and its sockets together. It
 * is an `eventfd` on Linux and the read end of a non-blocking pipe on other
 * Unix systems (and on Linux in a build with the core's `pipe-wake`
 * feature, which the tests use to check that path). Either way: add it for
 * `POLLIN`/`EPOLLIN`; **never read from it** (that would consume the
 * notification) nor close it yourself. Once it is readable, `ctx_err` and
 * `ctx_cause` say why.
 *
 * On `CTX_OK`, `*out` owns the descriptor: get its number with
 * `ctx_fd_get` and close it with `ctx_fd_close`. If `ctx` is already done
 * the descriptor is readable at once; if `ctx` can never be done (as
 * `ctx_background()`), it never becomes readable. Until it is closed, the
 * handle keeps the part of `ctx` that signals done alive.
 *
 * It is made readable on the thread that cancels `ctx` (inside
 * `ctx_cancel`, or on polyctx's timer thread for a deadline), a single
 * 8-byte `write`. Errors: `CTX_EINVAL` if a pointer is NULL; `CTX_ESYS`
 * (with `errno` set by `eventfd` or `pipe`, e.g. `EMFILE`) if no descriptor
 * could be made. Threads: any; each call makes a new descriptor.
 */
ctx_status_t ctx_done_fd(const ctx_t *ctx, ctx_fd_t **out);

/**
 * The descriptor number of a `ctx_fd_t`, or -1 if `fd` is NULL. The number
 * belongs to the handle: valid until `ctx_fd_close`. Threads: any.
 */
int ctx_fd_get(const ctx_fd_t *fd);

/**
 * Unregisters the descriptor from its context and closes it. If the context
 * is being canceled on another thread at this very moment, the descriptor is
 * closed when that thread's notification finishes, just after this returns;
 * its number is not reused before then. NULL is ignored. Closing twice is
 * undefined behaviour. Threads: any, once, when no other thread uses `fd`.
 */
void ctx_fd_close(ctx_fd_t *fd);

/**
 * Arranges for `fn(userdata)` to be called once, on polyctx's after-func
 * thread pool, after `ctx` is done (Go's `AfterFunc`); if `ctx` is already
 * done, it is queued at once. Each call is independent. `fn` may block and
 * may call any ctx_ function: the pool adds a thread whenever all of its
 * threads have been stuck for about a millisecond, so a blocking `fn`
 * holds up the others only that long, and 10,000 quick ones run on a few
 * threads. If no thread can be started at all, `fn` runs on the thread
 * that cancels `ctx` instead.
 *
 * `userdata` is passed along untouched. `finalizer`, if not NULL, is called
 * with `userdata` exactly once, whatever happens:
 * - `fn` ran: right after `fn` returns, on `fn`'s thread;
 * - `ctx_after_func_stop` kept `fn` from running: inside that call, before
 *   it returns;
 * - `ctx` can never be done (it descends from `ctx_background()` through
 *   no cancelable context, or through `ctx_without_cancel`): `fn` never
 *   runs, and the finalizer runs in `ctx_after_func_release`.
 *
 * So with a finalizer, free `userdata` there and nowhere else. Without one,
 * `userdata` is `fn`'s to free once it runs, and yours again if
 * `ctx_after_func_stop` reports that it stopped `fn`.
 *
 * Releasing the handle does not stop a pending `fn` (as in Go): it runs,
 * then the finalizer, when `ctx` is done. A pending `fn` keeps the part of
 * `ctx` that signals done alive until it runs or is stopped, so a context
 * that is never canceled and has no deadline keeps it, and `userdata`, for
 * ever: if the context may not be canceled, stop `fn` before releasing.
 *
 * On `CTX_OK`, `*out` owns the handle; release it with
 * `ctx_after_func_release`. On any other status nothing was registered and
 * neither `fn` nor `finalizer` is called: `userdata` is still yours.
 * Errors: `CTX_EINVAL` if `ctx`, `fn` or `out` is NULL (`userdata` and
 * `finalizer` may be NULL). Threads: any.
 */
ctx_status_t ctx_after_func(const ctx_t *ctx,
                            void (*fn)(void*),
                            void *userdata,
                            void (*finalizer)(void*),
                            ctx_after_func_t **out);

/**
 * Stops `fn` from running (Go's `stop`). Sets `*stopped` to true if this
 * call kept `fn` from being started (the finalizer has then run, or, with
 * none, `userdata` is yours again); false if `fn` has already been started
 * (it may still be running: this does not wait for it) or was stopped
 * before. Releases nothing.
 *
 * Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any, concurrently.
 */
ctx_status_t ctx_after_func_stop(ctx_after_func_t *after, bool *stopped);

/**
 * Releases the handle. **Does not stop `fn`**: it still runs when the
 * context is done, as in Go, where dropping `stop` changes nothing (see
 * `ctx_after_func` for when the finalizer runs). NULL is ignored.
 * Releasing twice is undefined behaviour. Threads: any, once.
 */
void ctx_after_func_release(ctx_after_func_t *after);

/**
 * Parses a `grpc-timeout` value (gRPC's PROTOCOL-HTTP2.md: 1 to 8 ASCII
 * digits and a unit, `H M S m u n`) into `*ns_out` nanoseconds. Strict:
 * spaces and tabs around it are trimmed; anything else off the grammar
 * (signs, inner spaces, a ninth digit, `1s`, two values joined by a comma)
 * is malformed. `0n` is a budget already spent (0); values saturate at
 * `INT64_MAX`.
 *
 * Returns `CTX_OK`, `CTX_EABSENT` (empty or blank: no timeout was sent) or
 * `CTX_EMALFORMED`, writing `*ns_out` only on `CTX_OK`. Errors:
 * `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_grpc_timeout_parse(const char *value, int64_t *ns_out);

/**
 * Parses a `connect-timeout-ms` or `request-timeout-ms` value (1 to 10
 * ASCII digits of milliseconds) into `*ns_out` nanoseconds, with the rules
 * and results of `ctx_grpc_timeout_parse`.
 */
ctx_status_t ctx_timeout_ms_parse(const char *value, int64_t *ns_out);

/**
 * Formats a remaining budget of `remaining_ns` nanoseconds as a
 * `grpc-timeout` value: the finest unit whose count, rounded up, fits in 8
 * digits (a budget is never sent shorter than it is), capped at 2,147,483
 * seconds (what a grpc-js server can represent).
 *
 * Writes the value whole or not at all: with its NUL into `buf` if it fits
 * in `buf_len` bytes, and its length into `*len` (unless `len` is NULL), so
 * a first call with `buf_len` 0 gives the size to allocate; at most
 * `CTX_TIMEOUT_MAX_LEN` bytes. `buf` may be NULL only when `buf_len` is 0.
 *
 * Returns `CTX_OK`; `CTX_EABSENT` when `remaining_ns <= 0` (nothing to
 * send: the call should fail locally); `CTX_ENOBUFS` if it does not fit
 * (`buf` then holds "", `*len` the length needed). Errors: `CTX_EINVAL` if
 * `buf` is NULL with `buf_len > 0`. Threads: any.
 */
ctx_status_t ctx_grpc_timeout_format(int64_t remaining_ns, char *buf, size_t buf_len, size_t *len);

/**
 * Formats a remaining budget as a `connect-timeout-ms` or
 * `request-timeout-ms` value: whole milliseconds, rounded up (so anything
 * under a millisecond is "1"), capped as `ctx_grpc_timeout_format` caps.
 * Writes and returns as `ctx_grpc_timeout_format` does.
 */
ctx_status_t ctx_timeout_ms_format(int64_t remaining_ns, char *buf, size_t buf_len, size_t *len);

/**
 * Parses the `traceparent` field values received (`n_values` C strings,
 * in order; `values` may be NULL when `n_values` is 0) into `*out`.
 *
 * Returns `CTX_OK`, or `CTX_EABSENT` (writing nothing) when there is no
 * usable one: absent, empty, invalid (uppercase hex, version ff, an
 * all-zero id, version 00 with extra fields...), or several differing
 * values. W3C treats all of these alike: start a new trace, ignore
 * `tracestate`. Errors: `CTX_EINVAL` if `out` or one of the strings is
 * NULL; `CTX_ERANGE` for an impossible `n_values`. Threads: any.
 */
ctx_status_t ctx_traceparent_parse(const char *const *values,
                                   size_t n_values,
                                   ctx_trace_context_t *out);

/**
 * Formats `*tc` as a `traceparent` value: version 00, lowercase hex, the
 * flags masked to the two version 00 defines; always `CTX_TRACEPARENT_LEN`
 * bytes. Writes and returns as `ctx_grpc_timeout_format` does (never
 * `CTX_EABSENT`). Errors: `CTX_EMALFORMED` (writing nothing) if an id is
 * all zero; `CTX_EINVAL` if `tc` is NULL, or `buf` is NULL with
 * `buf_len > 0`. Threads: any.
 */
ctx_status_t ctx_traceparent_format(const ctx_trace_context_t *tc,
                                    char *buf,
                                    size_t buf_len,
                                    size_t *len);

/**
 * Starts a new trace: random ids (from the kernel, so a forked child never
 * repeats its parent's), flags sampled and random. Errors: `CTX_EINVAL`
 * if `out` is NULL. Threads: any.
 */
ctx_status_t ctx_trace_context_new_root(ctx_trace_context_t *out);

/**
 * The next hop of `*tc`'s trace: the same trace id and flags, a new random
 * span id. `out` may equal `tc`. Errors: `CTX_EMALFORMED` if an id of `*tc`
 * is all zero; `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_trace_context_child(const ctx_trace_context_t *tc, ctx_trace_context_t *out);

/**
 * Parses the `tracestate` field values (combined in order; `values` may be
 * NULL when `n_values` is 0) into a new list at `*out`: empty when the
 * header is absent or blank.
 *
 * Returns `CTX_OK`, or `CTX_EMALFORMED` (writing nothing) when the header
 * must be dropped whole, as W3C requires: more than 32 members, any
 * invalid member, a repeated key, or longer than polyctx reads. Only use a
 * `tracestate` that came with a valid `traceparent`. Errors: `CTX_EINVAL`
 * if `out` or one of the strings is NULL; `CTX_ERANGE` for an impossible
 * `n_values`. On `CTX_OK`, release `*out` with `ctx_tracestate_release`.
 * Threads: any.
 */
ctx_status_t ctx_tracestate_parse(const char *const *values,
                                  size_t n_values,
                                  ctx_tracestate_t **out);

/**
 * The number of members; 0 if `ts` is NULL. Threads: any.
 */
size_t ctx_tracestate_len(const ctx_tracestate_t *ts);

/**
 * Member `index` (0 first): its key into `*key` and value into `*value`,
 * NUL-terminated strings borrowed from `ts` (valid until it is released);
 * either out-pointer may be NULL. Errors: `CTX_ERANGE` if `index` is not
 * below `ctx_tracestate_len(ts)`; `CTX_EINVAL` if `ts` is NULL.
 * Threads: any.
 */
ctx_status_t ctx_tracestate_get(const ctx_tracestate_t *ts,
                                size_t index,
                                const char **key,
                                const char **value);

/**
 * Formats `ts` as a `tracestate` value, members in order. Writes and
 * returns as `ctx_grpc_timeout_format` does: `CTX_EABSENT` when it has no
 * members (send no `tracestate`). Errors: `CTX_EINVAL` if `ts` is NULL, or
 * `buf` is NULL with `buf_len > 0`. Threads: any.
 */
ctx_status_t ctx_tracestate_format(const ctx_tracestate_t *ts,
                                   char *buf,
                                   size_t buf_len,
                                   size_t *len);

/**
 * Frees `ts` and its strings. NULL is ignored; releasing twice is
 * undefined behaviour. Threads: any, once no other thread uses `ts`.
 */
void ctx_tracestate_release(ctx_tracestate_t *ts);

/**
 * A new, empty baggage list at `*out`, to fill with `ctx_baggage_set` and
 * send with `ctx_wire_with_baggage` or `ctx_baggage_format`. Release it with
 * `ctx_baggage_release`. Errors: `CTX_EINVAL` if `out` is NULL. Threads: any.
 */
ctx_status_t ctx_baggage_new(ctx_baggage_t **out);

/**
 * Parses the `baggage` field values (combined in order; `values` may be
 * NULL when `n_values` is 0) into a new list at `*out`. Never fails on
 * content: a header over 8,192 bytes is dropped whole (an empty list),
 * members past the 64th are dropped, an invalid member is dropped alone, a
 * repeated key keeps its last value in its first place, values are
 * percent-decoded (bytes that are not UTF-8 become U+FFFD; `%00` gives a
 * NUL, hence the lengths `ctx_baggage_get` reports).
 *
 * Errors: `CTX_EINVAL` if `out` or one of the strings is NULL; `CTX_ERANGE`
 * for an impossible `n_values`. On `CTX_OK`, release `*out` with
 * `ctx_baggage_release`. Threads: any.
 */
ctx_status_t ctx_baggage_parse(const char *const *values, size_t n_values, ctx_baggage_t **out);

/**
 * The number of members; 0 if `b` is NULL. Threads: as `ctx_baggage_t` says.
 */
size_t ctx_baggage_len(const ctx_baggage_t *b);

/**
 * Member `index` (0 first): `*key`, `*value` (NUL-terminated, borrowed
 * from `b` until it is changed or released), `*value_len` (the value's
 * bytes, which may include a NUL from `%00`) and `*n_properties`. Any
 * out-pointer may be NULL. Errors: `CTX_ERANGE` if `index` is not below
 * `ctx_baggage_len(b)`; `CTX_EINVAL` if `b` is NULL. Threads: as
 * `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_get(const ctx_baggage_t *b,
                             size_t index,
                             const char **key,
                             const char **value,
                             size_t *value_len,
                             size_t *n_properties);

/**
 * Property `prop` of member `index` (`;key` or `;key=value`): `*key`, and
 * `*value` and `*value_len`, or NULL and 0 for a property without a value;
 * borrowed as in `ctx_baggage_get`; any out-pointer may be NULL. Errors:
 * `CTX_ERANGE` if either index is out of range; `CTX_EINVAL` if `b` is
 * NULL. Threads: as `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_property(const ctx_baggage_t *b,
                                  size_t index,
                                  size_t prop,
                                  const char **key,
                                  const char **value,
                                  size_t *value_len);

/**
 * The value of the member `key` (compared exactly: baggage keys are case
 * sensitive) into `*value` and `*value_len`, borrowed as in
 * `ctx_baggage_get`; either may be NULL. Returns `CTX_OK` or
 * `CTX_ENOTFOUND`. Errors: `CTX_EINVAL` if `b` or `key` is NULL.
 * Threads: as `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_find(const ctx_baggage_t *b,
                              const char *key,
                              const char **value,
                              size_t *value_len);

/**
 * Sets the member `key` to `value` (both copied; `value` is any text, sent
 * percent-encoded), without properties: in its place if `b` has it, else
 * last. Invalidates strings borrowed from `b`. Limits apply when sending:
 * members past the 64th or the 8,192nd byte are left out then.
 *
 * Errors: `CTX_EMALFORMED` (changing nothing) if `key` is not an HTTP token
 * (letters, digits and ``!#$%&'*+-.^_`|~``, at least one); `CTX_EINVAL` if
 * a pointer is NULL. Threads: as `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_set(ctx_baggage_t *b, const char *key, const char *value);

/**
 * Adds a property to the member `key`: `;prop_key=prop_value`, or
 * `;prop_key` when `prop_value` is NULL (both copied). Invalidates strings
 * borrowed from `b`. Returns `CTX_OK` or `CTX_ENOTFOUND` (no member `key`).
 * Errors: `CTX_EMALFORMED` if `prop_key` is not an HTTP token; `CTX_EINVAL`
 * if `b`, `key` or `prop_key` is NULL. Threads: as `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_add_property(ctx_baggage_t *b,
                                      const char *key,
                                      const char *prop_key,
                                      const char *prop_value);

/**
 * Removes the member `key`. Invalidates strings borrowed from `b`. Returns
 * `CTX_OK` or `CTX_ENOTFOUND`. Errors: `CTX_EINVAL` if a pointer is NULL.
 * Threads: as `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_remove(ctx_baggage_t *b, const char *key);

/**
 * Formats `b` as a `baggage` value: values percent-encoded, at most 64
 * members and 8,192 bytes (members that would go past either are left
 * out). Writes and returns as `ctx_grpc_timeout_format` does:
 * `CTX_EABSENT` when there is nothing to send. Errors: `CTX_EINVAL` if `b`
 * is NULL, or `buf` is NULL with `buf_len > 0`. Threads: as
 * `ctx_baggage_t` says.
 */
ctx_status_t ctx_baggage_format(const ctx_baggage_t *b, char *buf, size_t buf_len, size_t *len);

/**
 * Frees `b` and its strings. NULL is ignored; releasing twice is undefined
 * behaviour. Threads: any, once no other thread uses `b`.
 */
void ctx_baggage_release(ctx_baggage_t *b);

/**
 * Makes a policy at `*out` from one of the two starting points (a
 * `ctx_wire_trust_t`): `CTX_TRUST_INTERNAL` (no maximum, no default
 * timeout) or `CTX_TRUST_EXTERNAL` (maximum 300 s, default 30 s, no inbound
 * baggage); both propagate trace context. Adjust it with the
 * `ctx_wire_policy_*` setters before sharing it.
 *
 * Inbound headers are never an identity or authorization input: a header
 * says what its sender claims, nothing more. An external policy bounds what
 * an untrusted caller can make a service do; use it for every listener
 * that strangers reach.
 *
 * On `CTX_OK`, release `*out` with `ctx_wire_policy_release`. Errors:
 * `CTX_EINVAL` if `out` is NULL or `trust` is not a `ctx_wire_trust_t`.
 * Threads: any.
 */
ctx_status_t ctx_wire_policy_new(int trust, ctx_wire_policy_t **out);

/**
 * Inbound budgets longer than `max_ns` nanoseconds are cut to it; a
 * negative `max_ns` removes the maximum (0 makes every request arrive
 * already expired). Errors: `CTX_EINVAL` if `policy` is NULL. Threads: no
 * other use of `policy` meanwhile.
 */
ctx_status_t ctx_wire_policy_set_max_timeout(ctx_wire_policy_t *policy, int64_t max_ns);

/**
 * The budget of a request that sent none, in nanoseconds (the maximum
 * still applies); negative: none, so such a request has only its parent's
 * deadline. Errors and threads as `ctx_wire_policy_set_max_timeout`.
 */
ctx_status_t ctx_wire_policy_set_default_timeout(ctx_wire_policy_t *policy, int64_t default_ns);

/**
 * Adds `key` (copied; compared exactly) to the inbound baggage keys an
 * external policy keeps; internal policies keep all. Errors:
 * `CTX_EMALFORMED` if `key` is not an HTTP token (no baggage key could
 * match it); `CTX_EINVAL` if a pointer is NULL. Threads: no other use of
 * `policy` meanwhile.
 */
ctx_status_t ctx_wire_policy_allow_baggage(ctx_wire_policy_t *policy, const char *key);

/**
 * Whether extract and inject read and write `traceparent`, `tracestate`
 * and `baggage` at all (on by default). Turn it off where OpenTelemetry
 * owns those headers: two writers of `traceparent` break traces. Budgets
 * flow either way. Errors and threads as `ctx_wire_policy_set_max_timeout`.
 */
ctx_status_t ctx_wire_policy_set_propagate_trace(ctx_wire_policy_t *policy, bool on);

/**
 * Frees `policy`. NULL is ignored; releasing twice is undefined behaviour.
 * Threads: any, once no other thread uses it.
 */
void ctx_wire_policy_release(ctx_wire_policy_t *policy);

/**
 * Adds one value (the `len` bytes at `value`, copied; invalid UTF-8 becomes
 * U+FFFD, which no header grammar allows) to the header a `ctx_wire_get_fn`
 * was asked for. `value` need not be NUL-terminated, and may be NULL only
 * when `len` is 0. Call it once per field line, in the order received.
 *
 * Errors: `CTX_EINVAL` if `values` is NULL, or `value` is NULL with
 * `len > 0`; `CTX_ERANGE` if `len` exceeds `PTRDIFF_MAX`. Threads: only
 * inside the callback, on its thread.
 */
ctx_status_t ctx_wire_values_add(ctx_wire_values_t *values, const char *value, size_t len);

/**
 * The request context for inbound headers: a child of `parent` (a
 * connection's or server's context, or `ctx_background()`) that is done
 * when `parent` is, when its cancel handle is used, or when the budget the
 * caller sent runs out, counted from now. Use `ctx_wire_extract_at` to
 * count from the moment the headers arrived, so that the time this hop
 * spent before the call comes off the budget too.
 *
 * `headers` is an array of `n_headers` name/value pairs (names compared
 * case-insensitively; the values of a name repeated are combined in
 * order); it may be NULL when `n_headers` is 0. What `policy` and the
 * `protocol` (a `ctx_wire_protocol_t`) decide:
 * - The budget: the shortest valid one of `grpc-timeout`,
 *   `connect-timeout-ms` and `request-timeout-ms`, else the policy's
 *   default; cut to the policy's maximum; it only ever shortens `parent`'s.
 *   0 (`0n`) gives a context already done with `CTX_ERR_DEADLINE_EXCEEDED`.
 * - A malformed timeout header of the protocol's own is an error (answer
 *   gRPC `INTERNAL`, Connect `invalid_argument`, HTTP 400); one of another
 *   protocol is ignored.
 * - Unless the policy turned trace propagation off: `traceparent`,
 *   `tracestate` and `baggage`, read with `ctx_wire_trace_context`,
 *   `ctx_wire_tracestate` and `ctx_wire_baggage`. An internal policy keeps
 *   the caller's trace (this hop gets a new span id); an external one
 *   starts a new trace, keeping the caller's as `ctx_wire_trace_link`, and
 *   only the allowed baggage.
 *
 * Headers are claims of the sender, never identity or authorization.
 *
 * On `CTX_OK`, `*ctx_out` and `*cancel_out` each own one reference, as
 * from `ctx_with_cancel_cause`: release them with
 * `ctx_cancel_and_release` when the request is over. The cancel handle
 * takes a reason (`ctx_cancel_reason`) or a cause.
 *
 * Returns `CTX_EMALFORMED` (writing neither) for a malformed timeout
 * header of the protocol's own, and then sets `*bad_header` (unless it is
 * NULL) to its name, a static lowercase string. Errors: `CTX_EINVAL` if
 * `parent`, `policy`, `ctx_out`, `cancel_out` or a name or value is NULL,
 * or `protocol` is not a `ctx_wire_protocol_t`; `CTX_ERANGE` for an
 * impossible `n_headers`. Threads: any.
 */
ctx_status_t ctx_wire_extract(const ctx_t *parent,
                              const ctx_header_t *headers,
                              size_t n_headers,
                              const ctx_wire_policy_t *policy,
                              int protocol,
                              ctx_t **ctx_out,
                              ctx_cancel_t **cancel_out,
                              const char **bad_header);

/**
 * `ctx_wire_extract`, with the budget counted from `arrived_ns`, the
 * `ctx_now_ns()` time the headers arrived (read it as the request comes
 * in): a caller that sent 1000 ms, extracted 120 ms after arrival, leaves
 * 880 ms. Negative times count as 0 (long past).
 */
ctx_status_t ctx_wire_extract_at(const ctx_t *parent,
                                 const ctx_header_t *headers,
                                 size_t n_headers,
                                 const ctx_wire_policy_t *policy,
                                 int protocol,
                                 int64_t arrived_ns,
                                 ctx_t **ctx_out,
                                 ctx_cancel_t **cancel_out,
                                 const char **bad_header);

/**
 * `ctx_wire_extract` over a callback carrier: polyctx asks `get` for each
 * header it reads (see `ctx_wire_get_fn`), passing `userdata` through, so
 * that headers stay in your own structure (an HTTP parser's, a gRPC
 * library's metadata). Errors: `CTX_EINVAL` also if `get` is NULL;
 * `userdata` may be anything.
 */
ctx_status_t ctx_wire_extract_cb(const ctx_t *parent,
                                 ctx_wire_get_fn get,
                                 void *userdata,
                                 const ctx_wire_policy_t *policy,
                                 int protocol,
                                 ctx_t **ctx_out,
                                 ctx_cancel_t **cancel_out,
                                 const char **bad_header);

/**
 * `ctx_wire_extract_cb` with the budget counted from `arrived_ns`, as
 * `ctx_wire_extract_at` counts it.
 */
ctx_status_t ctx_wire_extract_cb_at(const ctx_t *parent,
                                    ctx_wire_get_fn get,
                                    void *userdata,
                                    const ctx_wire_policy_t *policy,
                                    int protocol,
                                    int64_t arrived_ns,
                                    ctx_t **ctx_out,
                                    ctx_cancel_t **cancel_out,
                                    const char **bad_header);

/**
 * Writes what `ctx` carries into the headers of an outbound call to a
 * destination trusted as `policy` says, into a new list at `*out`: the
 * remaining budget in the `protocol`'s timeout header (rounded up, capped
 * at 2,147,483 s; none if `ctx` has no deadline), and unless the policy
 * turned trace propagation off, `traceparent` (and, for internal
 * destinations only, `tracestate` and `baggage`). Read the list with
 * `ctx_headers_items`; release it with `ctx_headers_release`.
 *
 * Fails locally, writing nothing, when the call would fail anyway:
 * `CTX_EDEADLINE` when no time is left (even if the deadline's timer has
 * not fired yet), `CTX_ECANCELED` when `ctx` is canceled. Answer those as
 * the call's own failure (deadline exceeded, canceled); send nothing.
 *
 * Errors: `CTX_EINVAL` if a pointer is NULL or `protocol` is not a
 * `ctx_wire_protocol_t`. Threads: any.
 */
ctx_status_t ctx_wire_inject(const ctx_t *ctx,
                             const ctx_wire_policy_t *policy,
                             int protocol,
                             ctx_headers_t **out);

/**
 * `ctx_wire_inject` over a callback carrier: each header is given to `set`
 * (see `ctx_wire_set_fn`) with `userdata`, straight into your own
 * structure. On `CTX_EDEADLINE` and `CTX_ECANCELED`, `set` was not called.
 * Errors: `CTX_EINVAL` also if `set` is NULL.
 */
ctx_status_t ctx_wire_inject_cb(const ctx_t *ctx,
                                const ctx_wire_policy_t *policy,
                                int protocol,
                                ctx_wire_set_fn set,
                                void *userdata);

/**
 * The headers of `headers` as an array of `*n` (unless `n` is NULL)
 * name/value pairs, followed by one whose `name` is NULL; both strings
 * NUL-terminated. Borrowed from `headers`: valid until it is released.
 * Returns NULL if `headers` is NULL. Threads: any.
 */
const ctx_header_t *ctx_headers_items(const ctx_headers_t *headers, size_t *n);

/**
 * Frees `headers` and its strings. NULL is ignored; releasing twice is
 * undefined behaviour. Threads: any, once no other thread uses it.
 */
void ctx_headers_release(ctx_headers_t *headers);

/**
 * The trace context `ctx` carries (from `ctx_wire_extract*` or
 * `ctx_wire_with_trace_context`): this hop's span, the parent of the work
 * it sends on. Returns `CTX_OK`, or `CTX_ENOTFOUND` (writing nothing) if it
 * carries none. Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_wire_trace_context(const ctx_t *ctx, ctx_trace_context_t *out);

/**
 * The caller's trace context when an external policy restarted the trace
 * on extract (record it as a span link). Returns and errors as
 * `ctx_wire_trace_context`.
 */
ctx_status_t ctx_wire_trace_link(const ctx_t *ctx, ctx_trace_context_t *out);

/**
 * The `tracestate` `ctx` carries, as a new list at `*out` (empty if none).
 * Release it with `ctx_tracestate_release`. Errors: `CTX_EINVAL` if a
 * pointer is NULL. Threads: any.
 */
ctx_status_t ctx_wire_tracestate(const ctx_t *ctx, ctx_tracestate_t **out);

/**
 * The baggage `ctx` carries, copied into a new list at `*out` (empty if
 * none). Release it with `ctx_baggage_release`. Errors: `CTX_EINVAL` if a
 * pointer is NULL. Threads: any.
 */
ctx_status_t ctx_wire_baggage(const ctx_t *ctx, ctx_baggage_t **out);

/**
 * Derives a child of `parent` whose trace context is `*tc` (copied),
 * keeping the baggage and `tracestate` it carries: start a trace with
 * `ctx_trace_context_new_root`, or record your own span. On `CTX_OK`,
 * `*out` owns one reference. Errors: `CTX_EMALFORMED` if an id of `*tc` is
 * all zero; `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_wire_with_trace_context(const ctx_t *parent,
                                         const ctx_trace_context_t *tc,
                                         ctx_t **out);

/**
 * Derives a child of `parent` whose baggage is a copy of `b` (replacing
 * any it carried; trace context kept): what `ctx_wire_inject*` sends to
 * internal destinations. On `CTX_OK`, `*out` owns one reference; `b` stays
 * yours. Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_wire_with_baggage(const ctx_t *parent, const ctx_baggage_t *b, ctx_t **out);

/**
 * Cancels like `ctx_cancel_cause`, with an end reason (a `ctx_end_reason_t`)
 * as the cause: `ctx_end_reason` then reports it for the context and its
 * descendants, and `ctx_cause` its message ("client disconnected"). For the
 * handle `ctx_wire_extract*` gave, or one from `ctx_with_cancel_cause`.
 * Only the first cancellation counts.
 *
 * Errors: `CTX_EINVAL` if `cancel` is NULL or `reason` is not a
 * `ctx_end_reason_t`; `CTX_EKIND` (canceling nothing) for a handle that
 * takes no cause (from `ctx_with_cancel`, `_timeout` or `_deadline`).
 * Threads: any, concurrently.
 */
ctx_status_t ctx_cancel_reason(ctx_cancel_t *cancel, int reason);

/**
 * Why `ctx` ended, into `*out`: the reason it (or an ancestor) was canceled
 * with by `ctx_cancel_reason` or another language's equivalent; else
 * `CTX_END_DEADLINE_EXCEEDED` if its deadline passed, `CTX_END_CANCELED`
 * if it was canceled any other way. Map it to a response with
 * `ctx_end_reason_info`.
 *
 * Returns `CTX_OK`, or `CTX_ENOTDONE` (writing nothing) while `ctx` is
 * live. Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
 */
ctx_status_t ctx_end_reason(const ctx_t *ctx, ctx_end_reason_t *out);

/**
 * The names and codes of `reason` (a `ctx_end_reason_t`) into `*out`: what
 * a server answers when a request's context ended that way, from the one
 * table every language uses.
 *
 * Errors: `CTX_EINVAL` if `out` is NULL or `reason` is not a
 * `ctx_end_reason_t`. Threads: any.
 */
ctx_status_t ctx_end_reason_info(int reason, ctx_end_reason_info_t *out);

/**
 * Runs `n` tasks, each on a thread of its own, under one context derived
 * from `parent` (Go's `errgroup.WithContext`), and returns once every one
 * has returned. The first task to fail (return non-zero) cancels the
 * group's context, so that the others can stop early: its cause is
 * "task I failed" with the number the task returned as its code
 * (`ctx_cause`). With `limit` > 0, at most `limit` tasks run at once; the
 * others start as running ones return, and a task whose turn comes after
 * the group's context is done still starts (and should return at once,
 * seeing it done). No thread outlives the call.
 *
 * Each task gets the group's context borrowed for the call (retain it to
 * keep it longer); it is done when `parent` is, at the first failure, and
 * once the call returns. Tasks run on threads this call starts, and must
 * return (not `longjmp` out); `userdata` is passed along untouched.
 *
 * Returns `CTX_OK` when every task returned 0; `CTX_ETASK` when one
 * failed, and then, unless `failed` is NULL, `*failed` is the index of the
 * first task to fail. `CTX_ESYS` if a thread could not be started: the
 * tasks already started were canceled (cause "could not start a thread")
 * and waited for, and the rest never ran.
 *
 * Errors: `CTX_EINVAL` if `parent` is NULL, `tasks` is NULL with `n > 0`,
 * or a task's `fn` is NULL (then no task runs). Threads: any; blocks until
 * every task has returned.
 */
ctx_status_t ctx_group_run(const ctx_t *parent,
                           const ctx_task_t *tasks,
                           size_t n,
                           size_t limit,
                           size_t *failed);

/**
 * Fills `*out` with the default backoff: 100 ms doubling to at most 10 s,
 * 20% jitter, no attempt limit, no expected attempt time.
 *
 * Errors: `CTX_EINVAL` if `out` is NULL. Threads: any.
 */
ctx_status_t ctx_backoff_default(ctx_backoff_t *out);

/**
 * The decision after `attempts` failed attempts (0: before the first):
 * `CTX_OK` with `*wait_ns` set to how long to wait before the next
 * attempt (wait with `ctx_sleep`, which ends early if `ctx` is done), or
 * why to give up: `CTX_EATTEMPTS` (`max_attempts` attempts failed),
 * `CTX_EDEADLINE` (the deadline passed, or what is left of it cannot fit
 * the wait and another attempt) or `CTX_ECANCELED` (`ctx_cause` says why).
 * The rules are the core's, the same in every language.
 *
 * Errors: `CTX_EINVAL` if a pointer is NULL or `b` makes no sense (a
 * negative time, a multiplier below 1 or not a number, a jitter outside 0
 * to 1). Threads: any.
 */
ctx_status_t ctx_backoff_next(const ctx_t *ctx,
                              const ctx_backoff_t *b,
                              uint32_t attempts,
                              int64_t *wait_ns);

/**
 * Calls `fn(ctx, attempt, userdata)` (`attempt` from 1) until it returns
 * `CTX_ATTEMPT_OK`, returns anything but `CTX_ATTEMPT_RETRY`, or the
 * backoff gives up, waiting between attempts as `ctx_backoff_next` says.
 * One budget, `ctx`'s, covers every attempt and wait; a wait ends the
 * moment `ctx` is done. `fn` runs on the calling thread.
 *
 * Returns `CTX_OK` (an attempt succeeded), `CTX_ETASK` (an attempt failed
 * in a way not worth retrying), or why it gave up: `CTX_EATTEMPTS`,
 * `CTX_EDEADLINE` or `CTX_ECANCELED`. Unless `attempts` is NULL, sets
 * `*attempts` to how many attempts ran, whatever the result (but
 * `CTX_EINVAL`). Keep what an attempt needs to report (its last error) in
 * `userdata`.
 *
 * Errors: `CTX_EINVAL` if `ctx`, `b` or `fn` is NULL, or `b` makes no
 * sense (see `ctx_backoff_next`). Threads: any; blocks.
 */
ctx_status_t ctx_retry(const ctx_t *ctx,
                       const ctx_backoff_t *b,
                       ctx_attempt_fn fn,
                       void *userdata,
                       uint32_t *attempts);

/**
 * Sleeps `ns` nanoseconds (zero or less: not at all), or until `ctx` is
 * done, whichever is first. Returns `CTX_OK` if it slept the whole time,
 * `CTX_ECANCELED` or `CTX_EDEADLINE` if `ctx` was or became done first
 * (canceled, or past its deadline). The inverse of `ctx_wait`'s view.
 *
 * Errors: `CTX_EINVAL` if `ctx` is NULL. Threads: any; blocks.
 */
ctx_status_t ctx_sleep(const ctx_t *ctx, int64_t ns);

/**
 * How many cancelable contexts have been freed while still live (never
 * canceled, never past their deadline: their cancel handle was released
 * without `ctx_cancel`), process-wide and in every language. Counted
 * always, at no cost on the hot path. Threads: any.
 */
uint64_t ctx_lost_cancels(void);

/**
 * Calls `fn(userdata, context, site)` for every lost cancel from now on
 * (see `ctx_lost_cancels`); a NULL `fn` removes the hook. `fn` runs on the
 * thread that freed the context (the one releasing its last reference),
 * with no polyctx lock held of the context's; it should be quick. It may
 * call this function (to replace or remove itself); a context it frees is
 * counted, not reported. A call already under way on another thread when
 * the hook is replaced may still finish with the old one.
 *
 * The process has one hook, shared by every language (Python's
 * `polyctx.debug.set_lost_cancel_hook`, Node's `debug.onLostCancel`): the
 * last one set wins. `userdata` stays yours. Threads: any.
 */
void ctx_set_lost_cancel_hook(ctx_lost_cancel_fn fn, void *userdata);

/**
 * Turns tracking of live contexts on (true) or off, process-wide: every
 * context made while it is on (in any language) is listed by
 * `ctx_debug_snapshot` until it is freed, with its kind, age, deadline,
 * error and creation site. Off by default; off, it costs about 9 of 600
 * instructions per derive and cancel. Threads: any.
 */
void ctx_debug_track(bool on);

/**
 * Whether contexts made now are tracked. Threads: any.
 */
bool ctx_debug_is_tracking(void);

/**
 * Records where `ctx` was made, as `file:line`, if it is tracked (else
 * does nothing): call it right after deriving, or use `CTX_DEBUG_SITE(ctx)`,
 * which passes `__FILE__` and `__LINE__`. Without it a context made by a
 * C call is listed as made by "C code". `file` is copied.
 *
 * Errors: `CTX_EINVAL` if `ctx` or `file` is NULL. Threads: any.
 */
ctx_status_t ctx_debug_set_site(const ctx_t *ctx, const char *file, int line);

/**
 * How many tracked contexts are alive now. Threads: any.
 */
size_t ctx_debug_live_contexts(void);

/**
 * How many deadlines the core's timer has armed, process-wide. Threads: any.
 */
size_t ctx_debug_live_timers(void);

/**
 * How many `ctx_after_func` functions (and the other languages' after-funcs
 * that run on the core's pool) are registered and not yet started,
 * process-wide. Threads: any.
 */
size_t ctx_debug_pending_after_funcs(void);

/**
 * The tracked live contexts as a tree, one line each, oldest first:
 * `#3 WithDeadline age 1.2ms, deadline 1.99s, made at server.c:42`
 * (children indented under their parents), for a debug endpoint or a
 * test's failure message. Empty when nothing tracked is alive.
 *
 * Writes like `ctx_describe`: if `buf_len > 0`, the first
 * `min(n, buf_len - 1)` bytes of the n-byte text and a NUL; sets `*len` to
 * n unless `len` is NULL, so a first call with `buf_len` 0 gives the size.
 *
 * Errors: `CTX_EINVAL` if `buf` is NULL with `buf_len > 0`. Threads: any.
 */
ctx_status_t ctx_debug_snapshot(char *buf, size_t buf_len, size_t *len);

/**
 * A static, NUL-terminated description of a `ctx_status_t`, for messages;
 * "unknown ctx status" for a number that is not one. Given a `ctx_err_t`
 * (a number of its own, 100 or more), it describes that as
 * `ctx_err_string` does, so `ctx_strerror(ctx_err(c))` is not misleading;
 * but 0 reads as "success" either way. Never NULL; never free it.
 * Threads: any.
 */
const char *ctx_strerror(int status);

/**
 * Go's text for a `ctx_err_t` (its `Error()`): "context canceled" or
 * "context deadline exceeded"; "the context is not done" for
 * `CTX_ERR_NONE`, "invalid context (NULL)" for `CTX_ERR_INVALID`, and
 * "unknown ctx error" for a number that is none of them (a status code,
 * say). A static string: never NULL, never free it. `err` is an `int` so
 * that any number is safe to pass. Threads: any.
 */
const char *ctx_err_string(int err);

/**
 * The library's version, "MAJOR.MINOR.PATCH": a static string, never NULL.
 * The major version is the one in the soname (`libctx.so.MAJOR`).
 * Threads: any.
 */
const char *ctx_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CTX_H */
