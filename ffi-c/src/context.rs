//! Contexts: the roots, deriving children, and asking a context about itself.

use std::ffi::{c_char, CStr};
use std::ptr::NonNull;
use std::time::Duration;

use polyctx::{clock, AnyCancelFunc, Cause, Context};

use crate::handle::{self, ctx_cancel_t, ctx_t};
use crate::status::{arg, boundary, ctx_err_t, ctx_status_t, put, text_buffer};

/// The root of every context tree: never done, no deadline, no values (Go's
/// `context.Background()`). Use it in `main`, at the top of a request, and
/// in tests.
///
/// Returns: never NULL. The background context is immortal: you need not
/// release it, and `ctx_release`/`ctx_retain` on it are harmless no-ops.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_background() -> *mut ctx_t {
    boundary(|| handle::ctx_into_raw(Context::background()))
}

/// A placeholder root for code not yet given a context (Go's
/// `context.TODO()`); behaves exactly like `ctx_background()`, immortal too.
#[no_mangle]
pub extern "C" fn ctx_todo() -> *mut ctx_t {
    boundary(|| handle::ctx_into_raw(Context::todo()))
}

/// Another reference to `ctx`, to hand to code that will release it on its
/// own (another thread, a struct that outlives this call). Not `const`: it
/// makes a reference that must be released, which only an owner may do.
///
/// Returns: `ctx` itself (a handle is its context's address), now owning one
/// more reference, to be released once with `ctx_release`. NULL if `ctx` is
/// NULL. Allocates nothing. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_retain(ctx: *mut ctx_t) -> *mut ctx_t {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller owns `ctx` (header contract).
        handle::ctx_into_raw(unsafe { handle::ctx_borrow(ctx) }.retain())
    })
}

/// Releases one reference to `ctx`. The context is freed when its last
/// reference (including those held by its children, its cancel handle,
/// pending `ctx_after_func`s and `ctx_fd_t`s) is gone; values' destructors
/// run then. Releasing does not cancel anything: whoever holds the cancel
/// handle still can (see `ctx_cancel_t` for what stays alive).
///
/// NULL is ignored, as is `ctx_background()`/`ctx_todo()`. Releasing the same
/// reference twice is undefined behaviour. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_release(ctx: *mut ctx_t) {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller gives up the reference it owns (header contract).
        drop(unsafe { handle::ctx_from_raw(ctx) });
    })
}

/// Derives a child of `parent` that is canceled when `ctx_cancel` is called
/// on `*cancel_out`, or when `parent` is done, whichever comes first (Go's
/// `WithCancel`). Cancellation flows down the tree, never up.
///
/// On `CTX_OK`, `*ctx_out` and `*cancel_out` each own one reference (release
/// them with `ctx_release` and `ctx_cancel_release`). `parent` stays yours;
/// the child keeps what it needs of it.
///
/// Errors: `CTX_EINVAL` if any pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_with_cancel(
    parent: *const ctx_t,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
) -> ctx_status_t {
    boundary(|| derive(parent, ctx_out, cancel_out, |p| plain(polyctx::with_cancel(p))))
}

/// Like `ctx_with_cancel`, but the cancel handle can also record why, with
/// `ctx_cancel_cause`, which `ctx_cause` then reports (Go's
/// `WithCancelCause`). `ctx_cancel` on this handle cancels without a cause.
#[no_mangle]
pub extern "C" fn ctx_with_cancel_cause(
    parent: *const ctx_t,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
) -> ctx_status_t {
    boundary(|| {
        derive(parent, ctx_out, cancel_out, |p| {
            let (ctx, cancel) = polyctx::with_cancel_cause(p);
            (ctx, cancel.into())
        })
    })
}

/// Derives a child of `parent` that is also done `timeout_ns` nanoseconds
/// from now, with `CTX_ERR_DEADLINE_EXCEEDED` (Go's `WithTimeout`); its
/// deadline is `ctx_now_ns() + timeout_ns`. A timeout of zero or less makes
/// a child that is done at once, as in Go. A timeout too large to represent
/// saturates to a deadline about 292 years after boot. If `parent`'s
/// deadline is earlier, the child keeps the parent's.
///
/// Ownership and errors as for `ctx_with_cancel`. Canceling early (then
/// releasing the handle) frees the timer at once; do it when the work is done.
#[no_mangle]
pub extern "C" fn ctx_with_timeout(
    parent: *const ctx_t,
    timeout_ns: i64,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
) -> ctx_status_t {
    boundary(|| {
        derive(parent, ctx_out, cancel_out, |p| {
            plain(polyctx::with_timeout_ns(p, timeout_ns, None))
        })
    })
}

/// Like `ctx_with_timeout`, and when the timeout expires (not when the
/// context is canceled) its cause becomes the message `msg` with the integer
/// `code` (Go's `WithTimeoutCause`; see `ctx_cancel_cause` for `msg` and
/// `code`). Errors: `CTX_EINVAL` also if `msg` is NULL.
#[no_mangle]
pub extern "C" fn ctx_with_timeout_cause(
    parent: *const ctx_t,
    timeout_ns: i64,
    msg: *const c_char,
    code: i64,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
) -> ctx_status_t {
    boundary(|| {
        let cause = cause_from_c(arg!(msg), code);
        derive(parent, ctx_out, cancel_out, |p| {
            plain(polyctx::with_timeout_ns(p, timeout_ns, Some(cause)))
        })
    })
}

/// Derives a child of `parent` that is also done at `deadline_ns`, a time on
/// the clock `ctx_now_ns` reads (Go's `WithDeadline`). A deadline not after
/// now (including any negative one) makes a child that is done at once;
/// deadlines beyond about 292 years after boot saturate there. If `parent`'s
/// deadline is earlier, the child keeps the parent's.
///
/// Ownership and errors as for `ctx_with_cancel`.
#[no_mangle]
pub extern "C" fn ctx_with_deadline(
    parent: *const ctx_t,
    deadline_ns: i64,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
) -> ctx_status_t {
    boundary(|| {
        derive(parent, ctx_out, cancel_out, |p| {
            plain(polyctx::with_deadline_ns(p, clock::from_signed(deadline_ns), None))
        })
    })
}

/// Like `ctx_with_deadline`, and when the deadline passes (not when the
/// context is canceled) its cause becomes `msg` with `code` (Go's
/// `WithDeadlineCause`). Errors: `CTX_EINVAL` also if `msg` is NULL.
#[no_mangle]
pub extern "C" fn ctx_with_deadline_cause(
    parent: *const ctx_t,
    deadline_ns: i64,
    msg: *const c_char,
    code: i64,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
) -> ctx_status_t {
    boundary(|| {
        let cause = cause_from_c(arg!(msg), code);
        derive(parent, ctx_out, cancel_out, |p| {
            plain(polyctx::with_deadline_ns(
                p,
                clock::from_signed(deadline_ns),
                Some(cause),
            ))
        })
    })
}

/// Derives a child of `parent` that keeps its values but is never done: no
/// deadline, no error, no cause, whatever happens to `parent` (Go's
/// `WithoutCancel`). For work that must outlive the request, such as a final
/// audit write.
///
/// On `CTX_OK`, `*out` owns one reference. Errors: `CTX_EINVAL` if a pointer
/// is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_without_cancel(parent: *const ctx_t, out: *mut *mut ctx_t) -> ctx_status_t {
    boundary(|| {
        let (parent, out) = (arg!(parent), arg!(out));
        // SAFETY: the caller owns `parent`.
        let parent = unsafe { handle::ctx_borrow(parent) };
        put(out, crate::debug::new_c_context(polyctx::without_cancel(&parent)));
        ctx_status_t::CTX_OK
    })
}

/// Why `ctx` is done: `CTX_ERR_NONE` while it is live, then
/// `CTX_ERR_CANCELED` or `CTX_ERR_DEADLINE_EXCEEDED` for ever (Go's `Err`).
/// One atomic load; never blocks. `CTX_ERR_INVALID` if `ctx` is NULL.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_err(ctx: *const ctx_t) -> ctx_err_t {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller owns `ctx`.
        unsafe { handle::ctx_borrow(ctx) }.err().into()
    })
}

/// True once `ctx` is done (canceled or past its deadline); exactly when
/// `ctx_err` stops returning `CTX_ERR_NONE`. One atomic load; never blocks.
/// Threads: any.
///
/// True also if `ctx` is NULL. A `bool` cannot carry a status, and of its
/// two answers "done" is the safe one: `while (!ctx_is_done(ctx))` given NULL
/// stops instead of running unchecked for ever. To tell a NULL handle from a
/// done context, use `ctx_err`, which returns `CTX_ERR_INVALID` for NULL.
#[no_mangle]
pub extern "C" fn ctx_is_done(ctx: *const ctx_t) -> bool {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller owns `ctx`.
        unsafe { handle::ctx_borrow(ctx) }.is_done()
    })
}

/// When `ctx` will be done by itself, on the `ctx_now_ns` clock (Go's
/// `Deadline`): its own deadline or the earliest of its ancestors'.
///
/// Returns `CTX_OK` and writes `*out`, or `CTX_ENODEADLINE` (leaving `*out`
/// alone) if it has none. Errors: `CTX_EINVAL` if a pointer is NULL.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_deadline(ctx: *const ctx_t, out: *mut i64) -> ctx_status_t {
    boundary(|| {
        let (ctx, out) = (arg!(ctx), arg!(out));
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        match ctx.deadline_ns() {
            Some(ns) => {
                put(out, i64::try_from(ns).unwrap_or(i64::MAX));
                ctx_status_t::CTX_OK
            }
            None => ctx_status_t::CTX_ENODEADLINE,
        }
    })
}

/// Why `ctx` is done, in words (Go's `context.Cause`): the cause given to
/// the first cancellation of `ctx` or an ancestor (`ctx_cancel_cause`, or a
/// `*_cause` deadline that passed), or else the error's own text,
/// "context canceled" or "context deadline exceeded". A cause set from
/// another language (Rust, Python, Node) reads as its display text.
///
/// Writes like `snprintf`: if `buf_len > 0`, copies the first
/// `min(n, buf_len - 1)` bytes of the n-byte message to `buf` and a NUL after
/// them (truncation may split a multi-byte UTF-8 character); `buf` may be
/// NULL only when `buf_len` is 0. Sets `*msg_len` to n (the full length
/// without the NUL, so `n >= buf_len` means it was truncated) and `*code` to
/// the cause's integer code (0 when it has none); either may be NULL.
///
/// Returns `CTX_OK`, or `CTX_ENOTDONE` (writing nothing) while `ctx` is live.
/// Errors: `CTX_EINVAL` if `ctx` is NULL, or `buf` is NULL with `buf_len > 0`.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_cause(
    ctx: *const ctx_t,
    buf: *mut c_char,
    buf_len: usize,
    code: *mut i64,
    msg_len: *mut usize,
) -> ctx_status_t {
    boundary(|| {
        let ctx = arg!(ctx);
        let buf = text_buffer!(buf, buf_len);
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        let Some(cause) = polyctx::cause(&ctx) else {
            return ctx_status_t::CTX_ENOTDONE;
        };
        let text = match cause.downcast_ref::<polyctx::Message>() {
            Some(m) => std::borrow::Cow::Borrowed(m.text()),
            None => std::borrow::Cow::Owned(cause.to_string()),
        };
        write_text(text.as_bytes(), buf, buf_len, msg_len);
        if let Some(code) = NonNull::new(code) {
            put(code, cause.code().unwrap_or(0));
        }
        ctx_status_t::CTX_OK
    })
}

/// Blocks the calling thread until `ctx` is done or `timeout_ns` nanoseconds
/// pass. A negative timeout waits for ever (on a context that can never be
/// done, such as `ctx_background()`, that is for ever); 0 only looks.
///
/// Returns `CTX_OK` if `ctx` is done (at once if it already was),
/// `CTX_ETIMEDOUT` if the time ran out first. Errors: `CTX_EINVAL` if `ctx`
/// is NULL. Threads: any number may wait on one context at once; all wake
/// when it is done. For waiting on sockets too, see `ctx_done_fd`.
#[no_mangle]
pub extern "C" fn ctx_wait(ctx: *const ctx_t, timeout_ns: i64) -> ctx_status_t {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        let done = match u64::try_from(timeout_ns) {
            Err(_) => {
                ctx.wait();
                true
            }
            Ok(ns) => ctx.wait_timeout(Duration::from_nanos(ns)),
        };
        if done {
            ctx_status_t::CTX_OK
        } else {
            ctx_status_t::CTX_ETIMEDOUT
        }
    })
}

/// Blocks the calling thread until `ctx` is done or the clock `ctx_now_ns`
/// reads reaches `deadline_ns`, whichever comes first: `ctx_wait` with an
/// absolute time, so that a loop of waits keeps one deadline however often
/// it wakes. A deadline not after now only looks; `INT64_MAX` waits for
/// (practically) ever.
///
/// Returns `CTX_OK` if `ctx` is done (at once if it already was),
/// `CTX_ETIMEDOUT` if `deadline_ns` came first. Errors: `CTX_EINVAL` if
/// `ctx` is NULL. Threads: as for `ctx_wait`.
#[no_mangle]
pub extern "C" fn ctx_wait_until(ctx: *const ctx_t, deadline_ns: i64) -> ctx_status_t {
    boundary(|| {
        let ctx = arg!(ctx);
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        let deadline = clock::to_instant(clock::from_signed(deadline_ns));
        if ctx.wait_deadline(deadline) {
            ctx_status_t::CTX_OK
        } else {
            ctx_status_t::CTX_ETIMEDOUT
        }
    })
}

/// Names `ctx` for debugging, as Go's `String()` does: its chain from the
/// root, such as
/// `context.Background.WithCancel.WithDeadline([1.5s]).WithValue(trace-id, req-42)`
/// (a deadline shows the time left then; a value shows as its text if it is
/// UTF-8 bytes, `<bytes>` if not, `<value>` for a pointer or another
/// language's object). For logs and debuggers, not for parsing.
///
/// Writes like `ctx_cause`: if `buf_len > 0`, the first `min(n, buf_len - 1)`
/// bytes of the n-byte text and a NUL; `buf` may be NULL only when `buf_len`
/// is 0. Sets `*len` to n unless `len` is NULL, so a first call with
/// `buf_len` 0 gives the size to allocate (n + 1).
///
/// Errors: `CTX_EINVAL` if `ctx` is NULL, or `buf` is NULL with
/// `buf_len > 0`. Takes time and memory in proportion to the chain's depth.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_describe(ctx: *const ctx_t, buf: *mut c_char, buf_len: usize, len: *mut usize) -> ctx_status_t {
    boundary(|| {
        let ctx = arg!(ctx);
        let buf = text_buffer!(buf, buf_len);
        // SAFETY: the caller owns `ctx`.
        let text = unsafe { handle::ctx_borrow(ctx) }.to_string();
        write_text(text.as_bytes(), buf, buf_len, len);
        ctx_status_t::CTX_OK
    })
}

/// Now, in nanoseconds on `CLOCK_MONOTONIC`: the clock of every deadline
/// (shared with Python's `time.monotonic_ns()` and Rust's `Instant`).
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_now_ns() -> i64 {
    boundary(|| i64::try_from(clock::now_ns()).unwrap_or(i64::MAX))
}

/// The shared body of the `ctx_with_*` functions that return a context and
/// its cancel handle: check the pointers, derive, hand both out.
fn derive(
    parent: *const ctx_t,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    make: impl FnOnce(&Context) -> (Context, AnyCancelFunc),
) -> ctx_status_t {
    let (parent, ctx_out, cancel_out) = (arg!(parent), arg!(ctx_out), arg!(cancel_out));
    // SAFETY: the caller owns `parent` (header contract).
    let parent = unsafe { handle::ctx_borrow(parent) };
    let (ctx, cancel) = make(&parent);
    put(ctx_out, crate::debug::new_c_context(ctx));
    put(cancel_out, handle::cancel_into_raw(cancel));
    ctx_status_t::CTX_OK
}

fn plain((ctx, cancel): (Context, polyctx::CancelFunc)) -> (Context, AnyCancelFunc) {
    (ctx, cancel.into())
}

/// Writes `text` as `snprintf` would: its first `min(n, buf_len - 1)` bytes
/// and a NUL into `buf` (if any), and its full length n into `*len` (if
/// `len` is not NULL).
pub(crate) fn write_text(text: &[u8], buf: Option<NonNull<c_char>>, buf_len: usize, len: *mut usize) {
    if let Some(buf) = buf {
        let n = text.len().min(buf_len - 1);
        // SAFETY: `buf` points to `buf_len` writable bytes (header contract)
        // and `n < buf_len`; the source is a separate Rust string.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.as_ptr().cast::<u8>(), n);
            buf.as_ptr().add(n).write(0);
        }
    }
    if let Some(len) = NonNull::new(len) {
        put(len, text.len());
    }
}

/// A cause from C: `code` 0 means none, so that what `ctx_cause` reports
/// round-trips. Invalid UTF-8 becomes U+FFFD rather than fail a cancel.
pub(crate) fn cause_from_c(msg: NonNull<c_char>, code: i64) -> Cause {
    // SAFETY: `msg` is a NUL-terminated string (header contract), read only
    // during this call.
    let text = unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy().into_owned();
    match code {
        0 => Cause::msg(text),
        _ => Cause::with_code(text, code),
    }
}
