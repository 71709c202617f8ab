//! How Python's contexts, cancel functions, keys and values cross the C ABI.
//!
//! This extension links polyctx's C ABI crate, so its `ctx_*` symbols are
//! exported from `_native*.so`: C code in the process uses the same core as
//! Python (`polyctx.c_library()` makes those symbols global for C libraries
//! loaded later). Handles cross through that crate's `handle` module, called
//! here as Rust: a `ctx_t*` is the core's raw context handle, as
//! `Context.to_c()`/`Context.from_c()` make.
//!
//! Values: a `polyctx.Key` owns a C key (`ctx_key_t*`), whose values are the
//! core's foreign values. A Python value is stored as a foreign pointer to
//! its `PyObject*`, owning one reference, with [`release_value`] as its
//! finalizer; that finalizer is how this module tells its own values from
//! those C stored. So one key finds values stored from either side, with
//! Go's shadowing, and C reads a Python value as its `PyObject*`.

use std::ffi::c_void;
use std::ptr::NonNull;

use ctx::handle::{self, ctx_cancel_t, ctx_key_t, ctx_t};
use polyctx::{AnyCancelFunc, ForeignPtr, ForeignValue, Key};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::IntoPyObjectExt;

/// The finalizer of a Python value: runs on whatever thread frees the
/// context (maybe the core's timer thread, or C code's), so it never takes
/// the GIL; PyO3 defers the decref to the next time Python runs PyO3 code
/// unless this thread is already inside it.
unsafe extern "C" fn release_value(p: *mut c_void) {
    // SAFETY: `p` owns the reference `with_value` gave the context. The token
    // is only used to wrap the pointer; `Py`'s drop checks for itself whether
    // this thread is attached, and defers the decref if it is not.
    let obj = unsafe { Bound::from_owned_ptr(Python::assume_attached(), p.cast()) }.unbind();
    drop(obj);
}

/// A key: a C key owned by this object (released with it).
pub(crate) struct CKey(NonNull<ctx_key_t>);

// SAFETY: C keys may be used from any thread (ctx.h); this one is released
// only when its owner is dropped, when no other thread uses it.
unsafe impl Send for CKey {}
// SAFETY: as for `Send`.
unsafe impl Sync for CKey {}

impl CKey {
    pub(crate) fn new(name: &str) -> CKey {
        let raw = handle::key_into_raw(Key::new(name.to_owned()));
        CKey(NonNull::new(raw).expect("a box is never null"))
    }

    /// The `ctx_key_t*` as an int for ctypes, borrowed: valid while this key lives.
    pub(crate) fn to_c(&self) -> usize {
        self.0.as_ptr().expose_provenance()
    }

    fn key(&self) -> &Key<ForeignValue> {
        // SAFETY: owned by `self`, released only in `drop`.
        unsafe { handle::key_borrow(self.0) }
    }
}

impl Drop for CKey {
    fn drop(&mut self) {
        // SAFETY: owned, released once.
        drop(unsafe { handle::key_from_raw(self.0) });
    }
}

/// Marks the values Python stores, so it finds its own objects again.
static PYTHON: polyctx::Owner = polyctx::Owner { name: "python" };

/// `with_value` for a Python object.
pub(crate) fn with_value(parent: &polyctx::Context, key: &CKey, value: &Bound<'_, PyAny>) -> polyctx::Context {
    let obj = value.clone().into_ptr();
    // SAFETY: `obj` owns a reference that `release_value` gives back once,
    // from any thread (see there); a `PyObject*` may be read anywhere, and
    // C may only use it as the header says, under the GIL.
    let value = ForeignValue::Pointer(unsafe { ForeignPtr::owned(obj.cast(), Some(release_value), &PYTHON) });
    polyctx::with_value(parent, key.key(), value)
}

/// The value under `key`: a Python object, `bytes` stored by C, the address
/// (an int) of a pointer stored by C, or None.
pub(crate) fn value(py: Python<'_>, ctx: &polyctx::Context, key: &CKey) -> PyResult<Py<PyAny>> {
    Ok(match ctx.value(key.key()) {
        None => py.None(),
        Some(ForeignValue::Bytes(b)) => PyBytes::new(py, b.as_bytes()).into_any().unbind(),
        Some(ForeignValue::Pointer(p)) if p.is_owned_by(&PYTHON) => {
            // SAFETY: a live Python object: the context, which the caller
            // holds, owns a reference to it.
            unsafe { Bound::from_borrowed_ptr(py, p.as_ptr().cast()) }.unbind()
        }
        Some(ForeignValue::Pointer(p)) => p.as_ptr().expose_provenance().into_py_any(py)?,
    })
}

/// `Context.to_c`: a new `ctx_t*` owning one reference, for C to release.
pub(crate) fn context_to_c(ctx: &polyctx::Context) -> usize {
    handle::ctx_into_raw(ctx.clone()).expose_provenance()
}

/// `Context.from_c`: a new Python reference to the context behind `ptr`.
pub(crate) fn context_from_c(ptr: usize) -> PyResult<polyctx::Context> {
    let ptr = NonNull::new(std::ptr::with_exposed_provenance_mut::<ctx_t>(ptr))
        .ok_or_else(|| PyValueError::new_err("a ctx_t* must not be NULL"))?;
    // SAFETY: the caller promises a live `ctx_t*` (documented).
    Ok(unsafe { handle::ctx_borrow(ptr) }.retain())
}

/// `CancelFunc.from_c`: a new reference to the cancel function behind `ptr`.
pub(crate) fn cancel_from_c(ptr: usize) -> PyResult<AnyCancelFunc> {
    let ptr = NonNull::new(std::ptr::with_exposed_provenance_mut::<ctx_cancel_t>(ptr))
        .ok_or_else(|| PyValueError::new_err("a ctx_cancel_t* must not be NULL"))?;
    // SAFETY: the caller promises a live `ctx_cancel_t*` (documented).
    Ok(unsafe { handle::cancel_borrow(ptr) }.retain())
}
