//! Diagnostics: the core's lost-cancel count and a hook for C, and
//! live-context tracking with C creation sites (`polyctx::debug`).

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Mutex, PoisonError};

use polyctx::debug::{self, LostCancel};
use polyctx::Context;

use crate::context::write_text;
use crate::handle::{self, ctx_t};
use crate::status::{arg, boundary, ctx_status_t, text_buffer};

/// How many cancelable contexts have been freed while still live (never
/// canceled, never past their deadline: their cancel handle was released
/// without `ctx_cancel`), process-wide and in every language. Counted
/// always, at no cost on the hot path. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_lost_cancels() -> u64 {
    boundary(debug::lost_cancels)
}

/// A lost-cancel hook: called with the hook's `userdata`, the context as
/// `ctx_describe` names it, and where it was made (NULL unless it was
/// tracked, see `ctx_debug_track`). Both strings are borrowed for the call.
pub type ctx_lost_cancel_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, context: *const c_char, site: *const c_char)>;

/// The hook C set, and its userdata (an address, to be `Send`).
static HOOK: Mutex<Option<(unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char), usize)>> = Mutex::new(None);

thread_local! {
    /// This thread is running the hook: a context it frees is not reported
    /// to it again (which could recurse without end).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

fn report(lost: &LostCancel) {
    let Some((f, userdata)) = *HOOK.lock().unwrap_or_else(PoisonError::into_inner) else {
        return;
    };
    if IN_HOOK.with(|h| h.replace(true)) {
        return; // a context the hook itself freed: counted, not reported
    }
    let text = |s: &str| CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default();
    let context = text(&lost.context);
    let site = lost.site.as_deref().map(text);
    // SAFETY: the header's contract for the hook: any thread, these arguments.
    unsafe {
        f(
            userdata as *mut c_void,
            context.as_ptr(),
            site.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
        );
    }
    IN_HOOK.with(|h| h.set(false));
}

/// Calls `fn(userdata, context, site)` for every lost cancel from now on
/// (see `ctx_lost_cancels`); a NULL `fn` removes the hook. `fn` runs on the
/// thread that freed the context (the one releasing its last reference),
/// with no polyctx lock held of the context's; it should be quick. It may
/// call this function (to replace or remove itself); a context it frees is
/// counted, not reported. A call already under way on another thread when
/// the hook is replaced may still finish with the old one.
///
/// The process has one hook, shared by every language (Python's
/// `polyctx.debug.set_lost_cancel_hook`, Node's `debug.onLostCancel`): the
/// last one set wins. `userdata` stays yours. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_set_lost_cancel_hook(r#fn: ctx_lost_cancel_fn, userdata: *mut c_void) {
    boundary(|| {
        *HOOK.lock().unwrap_or_else(PoisonError::into_inner) = r#fn.map(|f| (f, userdata as usize));
        debug::set_lost_cancel_hook(r#fn.map(|_| Box::new(report) as Box<dyn Fn(&LostCancel) + Send + Sync>));
    })
}

/// Turns tracking of live contexts on (true) or off, process-wide: every
/// context made while it is on (in any language) is listed by
/// `ctx_debug_snapshot` until it is freed, with its kind, age, deadline,
/// error and creation site. Off by default; off, it costs about 9 of 600
/// instructions per derive and cancel. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_track(on: bool) {
    boundary(|| debug::track(on))
}

/// Whether contexts made now are tracked. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_is_tracking() -> bool {
    boundary(debug::is_tracking)
}

/// Records where `ctx` was made, as `file:line`, if it is tracked (else
/// does nothing): call it right after deriving, or use `CTX_DEBUG_SITE(ctx)`,
/// which passes `__FILE__` and `__LINE__`. Without it a context made by a
/// C call is listed as made by "C code". `file` is copied.
///
/// Errors: `CTX_EINVAL` if `ctx` or `file` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_set_site(ctx: *const ctx_t, file: *const c_char, line: c_int) -> ctx_status_t {
    boundary(|| {
        let (ctx, file) = (arg!(ctx), arg!(file));
        // SAFETY: `file` is a NUL-terminated string (header contract).
        let file = unsafe { CStr::from_ptr(file.as_ptr()) }.to_string_lossy();
        // SAFETY: the caller owns `ctx`.
        debug::set_site(&*unsafe { handle::ctx_borrow(ctx) }, format!("{file}:{line}"));
        ctx_status_t::CTX_OK
    })
}

/// How many tracked contexts are alive now. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_live_contexts() -> usize {
    boundary(|| debug::snapshot().len())
}

/// How many deadlines the core's timer has armed, process-wide. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_live_timers() -> usize {
    boundary(polyctx::stats::pending_deadlines)
}

/// How many `ctx_after_func` functions (and the other languages' after-funcs
/// that run on the core's pool) are registered and not yet started,
/// process-wide. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_pending_after_funcs() -> usize {
    boundary(polyctx::stats::pending_after_funcs)
}

/// The tracked live contexts as a tree, one line each, oldest first:
/// `#3 WithDeadline age 1.2ms, deadline 1.99s, made at server.c:42`
/// (children indented under their parents), for a debug endpoint or a
/// test's failure message. Empty when nothing tracked is alive.
///
/// Writes like `ctx_describe`: if `buf_len > 0`, the first
/// `min(n, buf_len - 1)` bytes of the n-byte text and a NUL; sets `*len` to
/// n unless `len` is NULL, so a first call with `buf_len` 0 gives the size.
///
/// Errors: `CTX_EINVAL` if `buf` is NULL with `buf_len > 0`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_debug_snapshot(buf: *mut c_char, buf_len: usize, len: *mut usize) -> ctx_status_t {
    boundary(|| {
        let buf = text_buffer!(buf, buf_len);
        write_text(debug::snapshot().to_string().as_bytes(), buf, buf_len, len);
        ctx_status_t::CTX_OK
    })
}

/// What a context made by a C call is listed with until `ctx_debug_set_site`
/// names its line: the core would list the line of this library that made it.
const MADE_IN_C: &str = "C code (CTX_DEBUG_SITE(ctx) records the line)";

/// A new `ctx_t *` for a context a C call just made (not one handed over
/// from another language, which keeps its own site).
pub(crate) fn new_c_context(ctx: Context) -> *mut ctx_t {
    if debug::is_tracking() {
        debug::set_site(&ctx, MADE_IN_C);
    }
    handle::ctx_into_raw(ctx)
}
