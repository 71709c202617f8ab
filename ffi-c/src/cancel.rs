//! Cancel handles: the capability to cancel, kept apart from the context.

use std::ffi::c_char;

use crate::context::cause_from_c;
use crate::handle::{self, ctx_cancel_t, Cancel};
use crate::status::{arg, boundary, ctx_status_t};

/// Cancels the context and all its descendants with `CTX_ERR_CANCELED`,
/// without a cause (Go's `cancel()`, or `cancel(nil)` for a handle from
/// `ctx_with_cancel_cause`). Does nothing if the context is already done:
/// only the first cancellation counts.
///
/// Every thread blocked in `ctx_wait` on it wakes, every `ctx_done_fd` of it
/// becomes readable, and its `ctx_after_func` functions are started, before
/// this returns. Does not release `cancel`.
///
/// Errors: `CTX_EINVAL` if `cancel` is NULL. Threads: any, concurrently.
#[no_mangle]
pub extern "C" fn ctx_cancel(cancel: *mut ctx_cancel_t) -> ctx_status_t {
    boundary(|| {
        let cancel = arg!(cancel);
        // SAFETY: the caller owns `cancel` (header contract).
        match &*unsafe { handle::cancel_borrow(cancel) } {
            Cancel::Plain(f) => f.cancel(),
            Cancel::Cause(f) => f.cancel(None),
        }
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
        match &*unsafe { handle::cancel_borrow(cancel) } {
            Cancel::Plain(_) => ctx_status_t::CTX_EKIND,
            Cancel::Cause(f) => {
                f.cancel(Some(cause_from_c(msg, code)));
                ctx_status_t::CTX_OK
            }
        }
    })
}

/// Another reference to the cancel handle, for a second owner (another
/// thread) to release on its own.
///
/// Returns: `cancel` itself, owning one more reference, to be released with
/// `ctx_cancel_release`; NULL if `cancel` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_cancel_retain(cancel: *const ctx_cancel_t) -> *mut ctx_cancel_t {
    boundary(|| {
        let cancel = arg!(cancel);
        // SAFETY: the caller owns `cancel`.
        let again = match &*unsafe { handle::cancel_borrow(cancel) } {
            Cancel::Plain(f) => Cancel::Plain(f.clone()),
            Cancel::Cause(f) => Cancel::Cause(f.clone()),
        };
        handle::cancel_into_raw(again)
    })
}

/// Releases one reference to the cancel handle. **Does not cancel**: call
/// `ctx_cancel` first when the work is over (Go's `defer cancel()`), or the
/// context stays live until an ancestor is canceled or its deadline passes.
/// Its memory is freed either way once no handle or child refers to it.
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
