//! The C handle types, and every conversion between them and Rust values:
//! the one place that turns a handle pointer into a Rust handle and back.
//! Public, so that other crates that cross into C in the same process (the
//! Python extension, the Node addon) call it as Rust rather than re-declaring
//! `ctx_*` functions by hand: a `ctx_t *` they hand to C code, or take from
//! it, is then the same object on both sides, checked by the compiler.
//!
//! - `ctx_t *` is `Context::into_raw`: the pointer *is* one reference count on
//!   the context, so creating, retaining and releasing a handle allocate
//!   nothing of their own.
//! - `ctx_cancel_t *` is `AnyCancelFunc::into_raw` (the same node as its
//!   context, a distinct C type, with the kind in the pointer's low bit).
//! - `ctx_key_t *` is a boxed `Key<ForeignValue>`: the values stored through
//!   C's keys are the core's foreign values, whoever stores them.
//! - `ctx_fd_t *` and `ctx_after_func_t *` are boxes private to this crate,
//!   and so are the wire handles: `ctx_wire_policy_t *` (a boxed
//!   `wire::Policy`), `ctx_baggage_t *`, `ctx_tracestate_t *` and
//!   `ctx_headers_t *`. A `ctx_wire_values_t *` is borrowed: it points to a
//!   Rust value on the stack of the call that hands it to a callback.
//!
//! Functions taking a pointer are `unsafe`: the pointer must be a live
//! handle of the named type, as the header requires of C callers.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use polyctx::{AfterFunc, AnyCancelFunc, Context, ForeignValue, Key};

use crate::codec::{BaggageList, Tracestate};
use crate::notify::DoneFd;
use crate::wire::{HeaderList, Values};

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
/// Ownership: release exactly once; `ctx_cancel_retain` makes another
/// reference. The handle keeps its context alive. Go's `defer cancel()` is
/// `ctx_cancel_and_release(ctx, cancel)`, once the work the context was
/// made for is over. What each way of letting go leaves alive:
///
/// - `ctx_cancel_and_release(ctx, cancel)` (or `ctx_cancel`, then both
///   releases): the context and every context derived from it are done;
///   its timer is disarmed and its after-funcs start. Its memory goes once
///   no reference is left (children, retained copies, fds, after-funcs).
/// - `ctx_cancel_release(cancel)` alone **does not cancel**. If nothing else
///   refers to the context (no `ctx_t *`, live child, `ctx_fd_t` or pending
///   after-func), it is freed at once and its timer disarmed. If something
///   does, the context stays live, with its deadline timer armed, until an
///   ancestor is canceled or the deadline passes: with no deadline and no
///   cancelable ancestor, that is for ever, and so is the work waiting on
///   it. Nobody can cancel it any more.
/// - `ctx_release(ctx)` alone gives up that reference only; whoever holds
///   the cancel handle can still cancel.
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

/// A trust policy for `ctx_wire_extract*` and `ctx_wire_inject*`: how much
/// a listener trusts its callers, or a client its destination. Made by
/// `ctx_wire_policy_new` from one of the two starting points
/// (`CTX_TRUST_INTERNAL`, `CTX_TRUST_EXTERNAL`), then adjusted with the
/// `ctx_wire_policy_set_*` calls.
///
/// Ownership: release exactly once with `ctx_wire_policy_release`; the
/// contexts made with it keep nothing of it. Threads: configure it first,
/// then share it: any number of threads may pass it to `ctx_wire_extract*`
/// and `ctx_wire_inject*` at once, but no setter may run meanwhile.
pub struct ctx_wire_policy_t {
    _opaque: [u8; 0],
}

/// W3C baggage: a list of members, each a key (an HTTP token), a value (any
/// text; stored decoded, sent percent-encoded) and properties, in the order
/// they were first seen. Made by `ctx_baggage_new`, `ctx_baggage_parse` or
/// `ctx_wire_baggage`.
///
/// Ownership: release exactly once with `ctx_baggage_release`. Strings it
/// hands out are borrowed from it: valid until it is changed or released.
/// Threads: like a plain C struct: reads from any number of threads at once,
/// a change (`ctx_baggage_set`, `_add_property`, `_remove`) from one thread
/// with no reader meanwhile.
pub struct ctx_baggage_t {
    _opaque: [u8; 0],
}

/// A W3C `tracestate`: vendor key/value members, in order. Made by
/// `ctx_tracestate_parse` or `ctx_wire_tracestate`; read-only.
///
/// Ownership: release exactly once with `ctx_tracestate_release`; the
/// strings it hands out are valid until then. Threads: any, at once.
pub struct ctx_tracestate_t {
    _opaque: [u8; 0],
}

/// The headers `ctx_wire_inject` wrote: a `ctx_header_t` array that
/// `ctx_headers_items` returns.
///
/// Ownership: release exactly once with `ctx_headers_release`, which frees
/// the array and its strings. Threads: any, at once.
pub struct ctx_headers_t {
    _opaque: [u8; 0],
}

/// Where a `ctx_wire_get_fn` callback puts the values of the header asked
/// for, with `ctx_wire_values_add`. Borrowed: valid only during that call of
/// the callback, on its thread.
pub struct ctx_wire_values_t {
    _opaque: [u8; 0],
}

/// A Rust handle borrowed from a C handle for the length of one call: the C
/// side still owns the reference, so this one is never dropped.
pub struct Borrowed<T>(ManuallyDrop<T>);

impl<T: Clone> Borrowed<T> {
    /// A reference of one's own to the same object, as `ctx_retain` makes.
    pub fn retain(&self) -> T {
        T::clone(&self.0)
    }
}

impl<T> Deref for Borrowed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

// Contexts ----------------------------------------------------------------

/// A new `ctx_t *` owning `ctx`'s reference (Python's `Context.to_c()`).
pub fn ctx_into_raw(ctx: Context) -> *mut ctx_t {
    ctx.into_raw().cast_mut().cast()
}

/// The context behind a live `ctx_t *`, leaving its reference in place;
/// [`Borrowed::retain`] gives a reference of one's own.
///
/// # Safety
/// `p` must be a `ctx_t *` that the caller still owns (not yet released),
/// and must stay so while the result is used.
pub unsafe fn ctx_borrow(p: NonNull<ctx_t>) -> Borrowed<Context> {
    // SAFETY: `p` came from `ctx_into_raw`, and ManuallyDrop leaves its count alone.
    Borrowed(ManuallyDrop::new(unsafe {
        Context::from_raw(p.as_ptr().cast_const().cast())
    }))
}

/// Takes back the reference a `ctx_t *` owns.
///
/// # Safety
/// `p` must be a live `ctx_t *`; it is dead afterwards.
pub unsafe fn ctx_from_raw(p: NonNull<ctx_t>) -> Context {
    // SAFETY: as the caller promises.
    unsafe { Context::from_raw(p.as_ptr().cast_const().cast()) }
}

// Cancel handles ----------------------------------------------------------

/// A new `ctx_cancel_t *` owning `cancel`'s reference.
pub fn cancel_into_raw(cancel: AnyCancelFunc) -> *mut ctx_cancel_t {
    cancel.into_raw().cast_mut().cast()
}

/// The cancel function behind a live `ctx_cancel_t *`, leaving its
/// reference in place; [`Borrowed::retain`] gives one of one's own.
///
/// # Safety
/// `p` must be a `ctx_cancel_t *` that the caller still owns, and must stay
/// so while the result is used.
pub unsafe fn cancel_borrow(p: NonNull<ctx_cancel_t>) -> Borrowed<AnyCancelFunc> {
    // SAFETY: `p` came from `cancel_into_raw`, as the caller promises.
    Borrowed(unsafe { AnyCancelFunc::borrow_raw(p.as_ptr().cast_const().cast()) })
}

/// Takes back the reference a `ctx_cancel_t *` owns.
///
/// # Safety
/// `p` must be a live `ctx_cancel_t *`; it is dead afterwards.
pub unsafe fn cancel_from_raw(p: NonNull<ctx_cancel_t>) -> AnyCancelFunc {
    // SAFETY: as the caller promises.
    unsafe { AnyCancelFunc::from_raw(p.as_ptr().cast_const().cast()) }
}

// Keys ----------------------------------------------------------------------

/// A new `ctx_key_t *` owning `key` (released with `ctx_key_release` or
/// [`key_from_raw`]).
pub fn key_into_raw(key: Key<ForeignValue>) -> *mut ctx_key_t {
    box_into_raw(key)
}

/// The key behind a live `ctx_key_t *`.
///
/// # Safety
/// `p` must be a live `ctx_key_t *`, not released before `'a` ends.
pub unsafe fn key_borrow<'a>(p: NonNull<ctx_key_t>) -> &'a Key<ForeignValue> {
    // SAFETY: as the caller promises.
    unsafe { box_borrow(p) }
}

/// Takes back the key a `ctx_key_t *` owns.
///
/// # Safety
/// `p` must be a live `ctx_key_t *`; it is dead afterwards.
pub unsafe fn key_from_raw(p: NonNull<ctx_key_t>) -> Key<ForeignValue> {
    // SAFETY: as the caller promises.
    unsafe { box_from_raw(p) }
}

// Boxed handles -----------------------------------------------------------

/// A handle type that is a `Box` of a Rust value.
pub(crate) trait Boxed {
    type Target;
}

impl Boxed for ctx_key_t {
    type Target = Key<ForeignValue>;
}

impl Boxed for ctx_fd_t {
    type Target = DoneFd;
}

impl Boxed for ctx_after_func_t {
    type Target = AfterFunc;
}

impl Boxed for ctx_wire_policy_t {
    type Target = polyctx::wire::Policy;
}

impl Boxed for ctx_baggage_t {
    type Target = BaggageList;
}

impl Boxed for ctx_tracestate_t {
    type Target = Tracestate;
}

impl Boxed for ctx_headers_t {
    type Target = HeaderList;
}

impl Boxed for ctx_wire_values_t {
    type Target = Values;
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
/// `p` must be a live handle from [`box_into_raw`] or [`borrow_into_raw`],
/// not used by anyone else before `'a` ends.
pub(crate) unsafe fn box_borrow_mut<'a, H: Boxed>(p: NonNull<H>) -> &'a mut H::Target {
    // SAFETY: the value is alive and unshared for as long as the caller promises.
    unsafe { p.cast::<H::Target>().as_mut() }
}

/// A handle that borrows `value` (never released: `value` stays the
/// caller's), for a callback to use during one call.
pub(crate) fn borrow_into_raw<H: Boxed>(value: &mut H::Target) -> *mut H {
    std::ptr::from_mut(value).cast()
}

/// # Safety
/// `p` must be a live handle from [`box_into_raw`]; it is dead afterwards.
pub(crate) unsafe fn box_from_raw<H: Boxed>(p: NonNull<H>) -> H::Target {
    // SAFETY: `p` is the pointer `Box::into_raw` returned, taken back once.
    *unsafe { Box::from_raw(p.cast::<H::Target>().as_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_through_pointers() {
        let (ctx, cancel) = polyctx::with_cancel_cause(&Context::background());
        let c = NonNull::new(ctx_into_raw(ctx.clone())).unwrap();
        let k = NonNull::new(cancel_into_raw(cancel.into())).unwrap();
        // SAFETY: live handles made just above, each taken back once.
        unsafe {
            assert!(ctx_borrow(c).same(&ctx));
            assert!(cancel_borrow(k).takes_cause());
            cancel_from_raw(k).cancel();
            assert!(ctx_from_raw(c).is_done());
        }
        let key = Key::new("k");
        let raw = NonNull::new(key_into_raw(key.clone())).unwrap();
        // SAFETY: as above.
        unsafe {
            assert!(*key_borrow(raw) == key);
            assert!(key_from_raw(raw) == key);
        }
    }
}
