//! Being told when a context is done without blocking a thread on it: a file
//! descriptor for event loops, and Go's `AfterFunc`.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use polyctx::{ForeignPtr, Registration, WakeFd};

use crate::handle::{self, ctx_after_func_t, ctx_fd_t, ctx_t};
use crate::status::{arg, boundary, ctx_status_t, put};

/// What a `ctx_fd_t` owns. The on-done callback holds its own reference to
/// the descriptor, so that a callback running while `ctx_fd_close` runs
/// writes to this descriptor and never to a reused number.
pub(crate) struct DoneFd {
    fd: Arc<WakeFd>,
    registration: Registration,
}

/// Makes a file descriptor that becomes readable when `ctx` is done, and
/// stays readable (level-triggered), so that an event loop (`poll`, `epoll`,
/// kqueue, libuv...) can wait for cancellation and its sockets together. It
/// is an `eventfd` on Linux and the read end of a non-blocking pipe on other
/// Unix systems (and on Linux in a build with the core's `pipe-wake`
/// feature, which the tests use to check that path). Either way: add it for
/// `POLLIN`/`EPOLLIN`; **never read from it** (that would consume the
/// notification) nor close it yourself. Once it is readable, `ctx_err` and
/// `ctx_cause` say why.
///
/// On `CTX_OK`, `*out` owns the descriptor: get its number with
/// `ctx_fd_get` and close it with `ctx_fd_close`. If `ctx` is already done
/// the descriptor is readable at once; if `ctx` can never be done (as
/// `ctx_background()`), it never becomes readable. Until it is closed, the
/// handle keeps the part of `ctx` that signals done alive.
///
/// It is made readable on the thread that cancels `ctx` (inside
/// `ctx_cancel`, or on polyctx's timer thread for a deadline), a single
/// 8-byte `write`. Errors: `CTX_EINVAL` if a pointer is NULL; `CTX_ESYS`
/// (with `errno` set by `eventfd` or `pipe`, e.g. `EMFILE`) if no descriptor
/// could be made. Threads: any; each call makes a new descriptor.
#[no_mangle]
pub extern "C" fn ctx_done_fd(ctx: *const ctx_t, out: *mut *mut ctx_fd_t) -> ctx_status_t {
    boundary(|| {
        let (ctx, out) = (arg!(ctx), arg!(out));
        // The OS error stays in errno for the caller.
        let Ok(fd) = WakeFd::new() else {
            return ctx_status_t::CTX_ESYS;
        };
        let fd = Arc::new(fd);
        let theirs = fd.clone();
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        let registration = ctx.on_done(move || theirs.signal());
        put(out, handle::box_into_raw(DoneFd { fd, registration }));
        ctx_status_t::CTX_OK
    })
}

/// The descriptor number of a `ctx_fd_t`, or -1 if `fd` is NULL. The number
/// belongs to the handle: valid until `ctx_fd_close`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_fd_get(fd: *const ctx_fd_t) -> c_int {
    boundary(|| {
        let fd = arg!(fd);
        // SAFETY: the caller owns `fd`.
        unsafe { handle::box_borrow(fd) }.fd.raw_fd()
    })
}

/// Unregisters the descriptor from its context and closes it. If the context
/// is being canceled on another thread at this very moment, the descriptor is
/// closed when that thread's notification finishes, just after this returns;
/// its number is not reused before then. NULL is ignored. Closing twice is
/// undefined behaviour. Threads: any, once, when no other thread uses `fd`.
#[no_mangle]
pub extern "C" fn ctx_fd_close(fd: *mut ctx_fd_t) {
    boundary(|| {
        let fd = arg!(fd);
        // SAFETY: the caller gives up the handle it owns.
        let done_fd = unsafe { handle::box_from_raw(fd) };
        done_fd.registration.stop();
    })
}

/// A C function and its argument, sent to the thread that will call it. The
/// argument's finalizer runs when this is dropped: after `f`, or, if `f`
/// never runs, wherever the pending call is dropped.
struct Call {
    f: unsafe extern "C" fn(*mut c_void),
    userdata: ForeignPtr,
}

impl Call {
    fn run(self) {
        // SAFETY: the caller of `ctx_after_func` asked for exactly this call.
        unsafe { (self.f)(self.userdata.as_ptr()) }
    }
}

/// Arranges for `fn(userdata)` to be called once, on polyctx's after-func
/// thread pool, after `ctx` is done (Go's `AfterFunc`); if `ctx` is already
/// done, it is queued at once. Each call is independent. `fn` may block and
/// may call any ctx_ function: the pool adds a thread whenever all of its
/// threads have been stuck for about a millisecond, so a blocking `fn`
/// holds up the others only that long, and 10,000 quick ones run on a few
/// threads. If no thread can be started at all, `fn` runs on the thread
/// that cancels `ctx` instead.
///
/// `userdata` is passed along untouched. `finalizer`, if not NULL, is called
/// with `userdata` exactly once, whatever happens:
/// - `fn` ran: right after `fn` returns, on `fn`'s thread;
/// - `ctx_after_func_stop` kept `fn` from running: inside that call, before
///   it returns;
/// - `ctx` can never be done (it descends from `ctx_background()` through
///   no cancelable context, or through `ctx_without_cancel`): `fn` never
///   runs, and the finalizer runs in `ctx_after_func_release`.
///
/// So with a finalizer, free `userdata` there and nowhere else. Without one,
/// `userdata` is `fn`'s to free once it runs, and yours again if
/// `ctx_after_func_stop` reports that it stopped `fn`.
///
/// Releasing the handle does not stop a pending `fn` (as in Go): it runs,
/// then the finalizer, when `ctx` is done. A pending `fn` keeps the part of
/// `ctx` that signals done alive until it runs or is stopped, so a context
/// that is never canceled and has no deadline keeps it, and `userdata`, for
/// ever: if the context may not be canceled, stop `fn` before releasing.
///
/// On `CTX_OK`, `*out` owns the handle; release it with
/// `ctx_after_func_release`. On any other status nothing was registered and
/// neither `fn` nor `finalizer` is called: `userdata` is still yours.
/// Errors: `CTX_EINVAL` if `ctx`, `fn` or `out` is NULL (`userdata` and
/// `finalizer` may be NULL). Threads: any.
#[no_mangle]
// `userdata` is never dereferenced here: it is kept and handed back to C's
// own `fn` and `finalizer`.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn ctx_after_func(
    ctx: *const ctx_t,
    r#fn: Option<unsafe extern "C" fn(*mut c_void)>,
    userdata: *mut c_void,
    finalizer: Option<unsafe extern "C" fn(*mut c_void)>,
    out: *mut *mut ctx_after_func_t,
) -> ctx_status_t {
    boundary(|| {
        let (ctx, f, out) = (arg!(ctx), arg!(r#fn), arg!(out));
        let call = Call {
            f,
            // SAFETY: the header's contract: `finalizer(userdata)` may be
            // called once from any thread, and `userdata` may be used on
            // `fn`'s thread.
            userdata: unsafe { ForeignPtr::new(userdata, finalizer) },
        };
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        let after = polyctx::after_func(&ctx, move || call.run());
        put(out, handle::box_into_raw(after));
        ctx_status_t::CTX_OK
    })
}

/// Stops `fn` from running (Go's `stop`). Sets `*stopped` to true if this
/// call kept `fn` from being started (the finalizer has then run, or, with
/// none, `userdata` is yours again); false if `fn` has already been started
/// (it may still be running: this does not wait for it) or was stopped
/// before. Releases nothing.
///
/// Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any, concurrently.
#[no_mangle]
pub extern "C" fn ctx_after_func_stop(after: *mut ctx_after_func_t, stopped: *mut bool) -> ctx_status_t {
    boundary(|| {
        let (after, stopped) = (arg!(after), arg!(stopped));
        // SAFETY: the caller owns `after`.
        let kept_from_running = unsafe { handle::box_borrow(after) }.stop();
        put(stopped, kept_from_running);
        ctx_status_t::CTX_OK
    })
}

/// Releases the handle. **Does not stop `fn`**: it still runs when the
/// context is done, as in Go, where dropping `stop` changes nothing (see
/// `ctx_after_func` for when the finalizer runs). NULL is ignored.
/// Releasing twice is undefined behaviour. Threads: any, once.
#[no_mangle]
pub extern "C" fn ctx_after_func_release(after: *mut ctx_after_func_t) {
    boundary(|| {
        let after = arg!(after);
        // SAFETY: the caller gives up the handle it owns.
        drop(unsafe { handle::box_from_raw(after) });
    })
}
