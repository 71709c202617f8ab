//! Raw handles for foreign-function bindings: a context or cancel function
//! as one pointer, whose ownership is one reference count, like
//! `Arc::into_raw`. This is how the C ABI's `ctx_t*` costs no allocation of
//! its own, and how a context crosses between bindings in one process.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::node::{Node, NodeRef};
use crate::{AnyCancelFunc, CancelCauseFunc, CancelFunc, Context};

fn into_raw(node: NodeRef) -> *const c_void {
    node.into_ptr().as_ptr().cast_const().cast()
}

/// # Safety
/// `ptr` must come from `into_raw` and own the count being taken over.
unsafe fn from_raw(ptr: *const c_void) -> NodeRef {
    // SAFETY: `into_raw` never gives out null, and the caller hands over
    // the count that pointer owns.
    unsafe { NodeRef::from_raw(NonNull::new_unchecked(ptr.cast_mut().cast::<Node>())) }
}

impl Context {
    /// Gives up this handle as a pointer that owns one reference. Never null;
    /// at least 8-aligned, so bindings may use the low bits as tags.
    pub fn into_raw(self) -> *const c_void {
        into_raw(self.node)
    }

    /// Takes back a handle from [`Context::into_raw`].
    ///
    /// # Safety
    /// `ptr` must come from `Context::into_raw` and not have been taken back
    /// already: this consumes the reference it owns.
    pub unsafe fn from_raw(ptr: *const c_void) -> Context {
        Context {
            // SAFETY: as the caller promises.
            node: unsafe { from_raw(ptr) },
        }
    }

    /// A new handle to the context behind `ptr`, leaving `ptr`'s own
    /// reference in place.
    ///
    /// # Safety
    /// `ptr` must come from `Context::into_raw` and still own its reference.
    pub unsafe fn clone_raw(ptr: *const c_void) -> Context {
        // SAFETY: as the caller promises; `ManuallyDrop` leaves the
        // pointer's own count in place.
        let borrowed = ManuallyDrop::new(unsafe { Context::from_raw(ptr) });
        Context::clone(&borrowed)
    }
}

impl CancelFunc {
    /// Gives up this handle as a pointer owning one reference (see [`Context::into_raw`]).
    pub fn into_raw(self) -> *const c_void {
        into_raw(self.node)
    }

    /// Takes back a handle from [`CancelFunc::into_raw`].
    ///
    /// # Safety
    /// As for [`Context::from_raw`], with a pointer from `CancelFunc::into_raw`.
    pub unsafe fn from_raw(ptr: *const c_void) -> CancelFunc {
        CancelFunc {
            // SAFETY: as the caller promises.
            node: unsafe { from_raw(ptr) },
        }
    }
}

impl CancelCauseFunc {
    /// Gives up this handle as a pointer owning one reference (see [`Context::into_raw`]).
    pub fn into_raw(self) -> *const c_void {
        into_raw(self.node)
    }

    /// Takes back a handle from [`CancelCauseFunc::into_raw`].
    ///
    /// # Safety
    /// As for [`Context::from_raw`], with a pointer from `CancelCauseFunc::into_raw`.
    pub unsafe fn from_raw(ptr: *const c_void) -> CancelCauseFunc {
        CancelCauseFunc {
            // SAFETY: as the caller promises.
            node: unsafe { from_raw(ptr) },
        }
    }
}

/// Set in the pointer of an [`AnyCancelFunc::Cause`]: node pointers are at
/// least 8-aligned, so the low bit is free.
const CAUSE_TAG: usize = 1;

impl AnyCancelFunc {
    /// Gives up this handle as one pointer owning one reference, with its
    /// kind in the low bit (so a C `ctx_cancel_t *` needs no allocation).
    pub fn into_raw(self) -> *const c_void {
        let (node, tag) = match self {
            AnyCancelFunc::Plain(f) => (f.node, 0),
            AnyCancelFunc::Cause(f) => (f.node, CAUSE_TAG),
        };
        let ptr = into_raw(node);
        debug_assert_eq!(ptr.addr() & CAUSE_TAG, 0, "nodes are aligned");
        ptr.map_addr(|a| a | tag)
    }

    /// Takes back a handle from [`AnyCancelFunc::into_raw`].
    ///
    /// # Safety
    /// `ptr` must come from `AnyCancelFunc::into_raw` and not have been taken
    /// back already: this consumes the reference it owns.
    pub unsafe fn from_raw(ptr: *const c_void) -> AnyCancelFunc {
        let untagged = ptr.map_addr(|a| a & !CAUSE_TAG);
        // SAFETY: the untagged pointer is what `into_raw` made of a node
        // reference, and the caller hands over its count.
        let node = unsafe { from_raw(untagged) };
        if ptr.addr() & CAUSE_TAG != 0 {
            AnyCancelFunc::Cause(CancelCauseFunc { node })
        } else {
            AnyCancelFunc::Plain(CancelFunc { node })
        }
    }

    /// The handle behind `ptr` for the length of a call, leaving `ptr`'s
    /// reference in place.
    ///
    /// # Safety
    /// `ptr` must come from `AnyCancelFunc::into_raw` and still own its
    /// reference for as long as the result is used.
    pub unsafe fn borrow_raw(ptr: *const c_void) -> ManuallyDrop<AnyCancelFunc> {
        // SAFETY: as the caller promises; `ManuallyDrop` leaves the count alone.
        ManuallyDrop::new(unsafe { AnyCancelFunc::from_raw(ptr) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{stats, with_cancel, with_cancel_cause, Cause};

    #[test]
    fn raw_round_trips_keep_counts() {
        let (parent, _keep) = with_cancel(&Context::background());
        let (ctx, cancel) = with_cancel_cause(&parent);
        let raw_ctx = ctx.into_raw();
        let raw_cancel = cancel.into_raw();
        // SAFETY: pointers from into_raw, each taken back exactly once.
        let again = unsafe { Context::clone_raw(raw_ctx) };
        // SAFETY: as above.
        unsafe { CancelCauseFunc::from_raw(raw_cancel) }.cancel(Some(Cause::msg("raw")));
        assert!(again.is_done());
        drop(again);
        // SAFETY: as above.
        drop(unsafe { Context::from_raw(raw_ctx) });
        assert_eq!(stats::children(&parent), 0);
        let bg = Context::background().into_raw();
        // SAFETY: as above; statics ignore counts.
        assert!(unsafe { Context::from_raw(bg) }.same(&Context::background()));
    }

    #[test]
    fn any_cancel_func_keeps_its_kind_through_a_pointer() {
        let (ctx, f) = with_cancel(&Context::background());
        let raw = AnyCancelFunc::from(f).into_raw();
        // SAFETY: from into_raw; borrowed, then taken back once.
        let borrowed = unsafe { AnyCancelFunc::borrow_raw(raw) };
        assert!(!borrowed.takes_cause());
        assert!(borrowed.cancel_with_cause(Some(Cause::msg("no"))).is_err());
        assert!(!ctx.is_done(), "a refused cause does not cancel");
        // SAFETY: as above.
        unsafe { AnyCancelFunc::from_raw(raw) }.cancel();
        assert!(ctx.is_done());

        let (ctx, f) = with_cancel_cause(&Context::background());
        let raw = AnyCancelFunc::from(f).into_raw();
        // SAFETY: as above.
        let f = unsafe { AnyCancelFunc::from_raw(raw) };
        assert!(f.takes_cause() && f.context().same(&ctx));
        f.cancel_with_cause(Some(Cause::msg("why"))).unwrap();
        assert_eq!(crate::cause(&ctx).unwrap().to_string(), "why");
    }
}
