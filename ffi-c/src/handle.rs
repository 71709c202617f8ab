//! The C handle types, and every conversion between them and Rust values.
//! No other module casts a handle pointer.
//!
//! - `ctx_t*` is `Context::into_raw`: the pointer *is* one reference count on
//!   the context, so creating, retaining and releasing a handle allocate
//!   nothing of their own.
//! - `ctx_cancel_t*` is `CancelFunc::into_raw` or `CancelCauseFunc::into_raw`
//!   (the same node, a distinct C type), with the low bit set for a
//!   `CancelCauseFunc`. The core guarantees these pointers are 8-aligned.
//! - `ctx_key_t*`, `ctx_fd_t*` and `ctx_after_func_t*` are boxes.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use polyctx::{AfterFunc, CancelCauseFunc, CancelFunc, Context, Key};

use crate::notify::DoneFd;
use crate::value::CValue;

/// A context: a cancellation signal, maybe a deadline, and values (Go's
/// `context.Context`). Opaque; one pointer is one reference.
///
/// Ownership: every function that gives you a `ctx_t *` (an out-parameter, or
/// `ctx_retain`) gives you one reference, which you release exactly once with
/// `ctx_release`. `ctx_background()` and `ctx_todo()` are the exceptions:
/// they are immortal, so releasing them is optional and harmless. A child
/// keeps its parent alive, so you may release a parent before its children.
///
/// Threads: a context is immutable except for becoming done, and every
/// function taking a `const ctx_t *` may be called from any thread at once.
/// A `ctx_t *` cannot cancel its context; only its `ctx_cancel_t *` can.
pub struct ctx_t {
    _opaque: [u8; 0],
}

/// The capability to cancel one context (Go's `CancelFunc` or
/// `CancelCauseFunc`), returned beside the context by the `ctx_with_*`
/// functions that make cancelable contexts.
///
/// Ownership: release exactly once with `ctx_cancel_release` (which does not
/// cancel); `ctx_cancel_retain` makes another reference. The handle keeps
/// its context alive. **Releasing it without calling `ctx_cancel` does not
/// cancel the context**, as in Go: it stays live until an ancestor is
/// canceled or its deadline passes. The usual pattern is Go's
/// `defer cancel()`: call `ctx_cancel` then `ctx_cancel_release` when the
/// work is over.
///
/// Threads: any thread may cancel, any number of times, concurrently.
pub struct ctx_cancel_t {
    _opaque: [u8; 0],
}

/// A key for values stored in contexts, unique by identity: two keys never
/// match each other, even with the same name (Go's unexported key type).
///
/// Ownership: made by `ctx_key_new`, released once with `ctx_key_release`.
/// Contexts holding values under a key keep what they need; after the key
/// is released nobody can look those values up any more, but they are still
/// destroyed with their contexts. Typically one key per kind of value, made
/// at startup and never released.
///
/// Threads: any thread may use a key at once, but not while another thread
/// releases it.
pub struct ctx_key_t {
    _opaque: [u8; 0],
}

/// A file descriptor that becomes readable when a context is done, made by
/// `ctx_done_fd`. Owns the descriptor and its registration with the context.
///
/// Ownership: close exactly once with `ctx_fd_close`, never with `close(2)`.
/// Threads: `ctx_fd_get` from any thread; `ctx_fd_close` once, when no other
/// thread uses the handle.
pub struct ctx_fd_t {
    _opaque: [u8; 0],
}

/// A function scheduled by `ctx_after_func` to run when a context is done.
///
/// Ownership: release exactly once with `ctx_after_func_release`, which does
/// not stop the function (use `ctx_after_func_stop` first for that).
/// Threads: `ctx_after_func_stop` from any thread, any number of times.
pub struct ctx_after_func_t {
    _opaque: [u8; 0],
}

/// A Rust value borrowed from a handle for the length of one call: it must not
/// be dropped, since the handle still owns it.
pub(crate) struct Borrowed<T>(ManuallyDrop<T>);

impl<T> Deref for Borrowed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// Contexts ----------------------------------------------------------------

/// A new `ctx_t *` owning `ctx`'s reference.
pub(crate) fn ctx_into_raw(ctx: Context) -> *mut ctx_t {
    ctx.into_raw().cast_mut().cast()
}

/// The context behind a live `ctx_t *`.
///
/// # Safety
/// `p` must be a `ctx_t *` that the caller still owns (not yet released).
pub(crate) unsafe fn ctx_borrow(p: NonNull<ctx_t>) -> Borrowed<Context> {
    // SAFETY: `p` came from `ctx_into_raw`, and ManuallyDrop leaves its count alone.
    Borrowed(ManuallyDrop::new(unsafe { Context::from_raw(raw(p)) }))
}

/// Takes back the reference a `ctx_t *` owns.
///
/// # Safety
/// `p` must be a live `ctx_t *`; it is dead afterwards.
pub(crate) unsafe fn ctx_from_raw(p: NonNull<ctx_t>) -> Context {
    // SAFETY: as the caller promises.
    unsafe { Context::from_raw(raw(p)) }
}

fn raw<T>(p: NonNull<T>) -> *const c_void {
    p.as_ptr().cast_const().cast()
}

// Cancel handles ----------------------------------------------------------

/// Set in a `ctx_cancel_t *` that holds a `CancelCauseFunc`.
const CAUSE_TAG: usize = 1;

/// What a `ctx_cancel_t *` holds.
pub(crate) enum Cancel {
    Plain(CancelFunc),
    Cause(CancelCauseFunc),
}

pub(crate) fn cancel_into_raw(cancel: Cancel) -> *mut ctx_cancel_t {
    let (ptr, tag) = match cancel {
        Cancel::Plain(f) => (f.into_raw(), 0),
        Cancel::Cause(f) => (f.into_raw(), CAUSE_TAG),
    };
    debug_assert_eq!(ptr.addr() & CAUSE_TAG, 0, "the core's raw pointers are aligned");
    ptr.cast_mut().map_addr(|a| a | tag).cast()
}

/// # Safety
/// `p` must be a `ctx_cancel_t *` the caller owns; with `take`, its
/// reference is taken over and `p` is dead afterwards.
unsafe fn cancel_decode(p: NonNull<ctx_cancel_t>) -> Cancel {
    let tagged = p.as_ptr();
    let untagged = raw(p).map_addr(|a| a & !CAUSE_TAG);
    // SAFETY: the pointer without its tag is what `into_raw` returned for
    // the kind the tag records.
    unsafe {
        if tagged.addr() & CAUSE_TAG != 0 {
            Cancel::Cause(CancelCauseFunc::from_raw(untagged))
        } else {
            Cancel::Plain(CancelFunc::from_raw(untagged))
        }
    }
}

/// # Safety
/// `p` must be a `ctx_cancel_t *` that the caller still owns.
pub(crate) unsafe fn cancel_borrow(p: NonNull<ctx_cancel_t>) -> Borrowed<Cancel> {
    // SAFETY: as the caller promises; ManuallyDrop leaves the count alone.
    Borrowed(ManuallyDrop::new(unsafe { cancel_decode(p) }))
}

/// # Safety
/// `p` must be a live `ctx_cancel_t *`; it is dead afterwards.
pub(crate) unsafe fn cancel_from_raw(p: NonNull<ctx_cancel_t>) -> Cancel {
    // SAFETY: as the caller promises.
    unsafe { cancel_decode(p) }
}

// Boxed handles -----------------------------------------------------------

/// A handle type that is a `Box` of a Rust value.
pub(crate) trait Boxed {
    type Target;
}

impl Boxed for ctx_key_t {
    type Target = Key<CValue>;
}

impl Boxed for ctx_fd_t {
    type Target = DoneFd;
}

impl Boxed for ctx_after_func_t {
    type Target = AfterFunc;
}

pub(crate) fn box_into_raw<H: Boxed>(value: H::Target) -> *mut H {
    Box::into_raw(Box::new(value)).cast()
}

/// # Safety
/// `p` must be a live handle from [`box_into_raw`], not released before `'a` ends.
pub(crate) unsafe fn box_borrow<'a, H: Boxed>(p: NonNull<H>) -> &'a H::Target {
    // SAFETY: the box is alive for as long as the caller promises.
    unsafe { p.cast::<H::Target>().as_ref() }
}

/// # Safety
/// `p` must be a live handle from [`box_into_raw`]; it is dead afterwards.
pub(crate) unsafe fn box_from_raw<H: Boxed>(p: NonNull<H>) -> H::Target {
    // SAFETY: `p` is the pointer `Box::into_raw` returned, taken back once.
    *unsafe { Box::from_raw(p.cast::<H::Target>().as_ptr()) }
}
