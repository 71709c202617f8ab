//! Cancel handles: the capability to cancel, kept apart from the context.

use std::ffi::c_char;

use crate::context::cause_from_c;
use crate::handle::{self, ctx_cancel_t, ctx_t};
use crate::status::{arg, boundary, ctx_status_t};

/// Cancels the context and all its descendants with `CTX_ERR_CANCELED`,
/// without a cause (Go's `cancel()`, or `cancel(nil)` for a handle from
/// `ctx_with_cancel_cause`). Does nothing if the context is already done:
/// only the first cancellation counts.
///
/// Every thread blocked in `ctx_wait` on it wakes, every `ctx_done_fd` of it
/// becomes readable, and its `ctx_after_func` functions are started, before
/// this returns. Does not release `cancel` (`ctx_cancel_and_release` does).
///
/// Errors: `CTX_EINVAL` if `cancel` is NULL. Threads: any, concurrently.
#[no_mangle]
pub extern "C" fn ctx_cancel(cancel: *mut ctx_cancel_t) -> ctx_status_t {
    boundary(|| {
        let cancel = arg!(cancel);
        // SAFETY: the caller owns `cancel` (header contract).
        unsafe { handle::cancel_borrow(cancel) }.cancel();
        ctx_status_t::CTX_OK
    })
}

/// Cancels like `ctx_cancel`, recording why: unless the context was already
/// done, `ctx_cause` on it and on its descendants reports `msg` (copied;
/// invalid UTF-8 is replaced by U+FFFD) and `code`, an integer of your
/// choosing where 0 means "no code" (Go's `cancel(errors.New(msg))`). Other
/// languages read the cause as the text `msg`.
///
/// Errors: `CTX_EINVAL` if a pointer is NULL; `CTX_EKIND` (canceling
/// nothing) if `cancel` came from `ctx_with_cancel`, `ctx_with_timeout` or
/// `ctx_with_deadline`, whose cancel takes no cause in Go either; use
/// `ctx_with_cancel_cause`. Threads: any, concurrently.
#[no_mangle]
pub extern "C" fn ctx_cancel_cause(cancel: *mut ctx_cancel_t, msg: *const c_char, code: i64) -> ctx_status_t {
    boundary(|| {
        let (cancel, msg) = (arg!(cancel), arg!(msg));
        // SAFETY: the caller owns `cancel`.
        let cancel = unsafe { handle::cancel_borrow(cancel) };
        match cancel.cancel_with_cause(Some(cause_from_c(msg, code))) {
            Ok(()) => ctx_status_t::CTX_OK,
            Err(_) => ctx_status_t::CTX_EKIND,
        }
    })
}

/// Another reference to the cancel handle, for a second owner (another
/// thread) to release on its own. Not `const`: it makes a reference that
/// must be released, which only an owner may do.
///
/// Returns: `cancel` itself, owning one more reference, to be released with
/// `ctx_cancel_release`; NULL if `cancel` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_cancel_retain(cancel: *mut ctx_cancel_t) -> *mut ctx_cancel_t {
    boundary(|| {
        let cancel = arg!(cancel);
        // SAFETY: the caller owns `cancel`.
        handle::cancel_into_raw(unsafe { handle::cancel_borrow(cancel) }.retain())
    })
}

/// Releases one reference to the cancel handle. **Does not cancel**: see
/// `ctx_cancel_t` for what stays alive; to end work as Go's
/// `defer cancel()` does, call `ctx_cancel_and_release` instead.
///
/// NULL is ignored. Releasing the same reference twice is undefined
/// behaviour. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_cancel_release(cancel: *mut ctx_cancel_t) {
    boundary(|| {
        let cancel = arg!(cancel);
        // SAFETY: the caller gives up the reference it owns.
        drop(unsafe { handle::cancel_from_raw(cancel) });
    })
}

/// Go's `defer cancel()` in one call, for the end of the work a context was
/// made for: cancels `cancel`'s context (as `ctx_cancel`: it and every
/// descendant become done, its timer is disarmed, its `ctx_after_func`
/// functions start), then releases `cancel` and `ctx`. The pair is usually
/// the two out-parameters of one `ctx_with_*` call, but `ctx` may be any
/// reference you own.
///
/// Either may be NULL, and is then skipped, so a cleanup path can call it
/// whether or not the `ctx_with_*` call succeeded (set both to NULL first).
/// Releasing either twice is undefined behaviour. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_cancel_and_release(ctx: *mut ctx_t, cancel: *mut ctx_cancel_t) {
    boundary(|| {
        if let Some(cancel) = std::ptr::NonNull::new(cancel) {
            // SAFETY: the caller gives up the reference it owns.
            let cancel = unsafe { handle::cancel_from_raw(cancel) };
            cancel.cancel();
        }
        if let Some(ctx) = std::ptr::NonNull::new(ctx) {
            // SAFETY: as above.
            drop(unsafe { handle::ctx_from_raw(ctx) });
        }
    })
}
