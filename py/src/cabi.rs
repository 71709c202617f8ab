//! The C ABI in this module, and how Python values and keys cross it.
//!
//! This extension links polyctx's C ABI crate, so its `ctx_*` symbols are
//! exported from `_native*.so`: C code loaded in the process (through ctypes
//! or an extension) uses the same core as Python, and a `ctx_t*` is the
//! core's raw context handle, as `Context.to_c()`/`Context.from_c()` make.
//!
//! Values: a `polyctx.Key` is a C key (`ctx_key_t*`), and a Python value is
//! stored through `ctx_with_value` as a `PyObject*` that the context owns
//! one reference to. So one key finds values stored from either side, with
//! Go's shadowing. To tell its own values from C's when reading, this module
//! counts the live `PyObject*` values it stored: a pointer in that table is
//! a live Python object; anything else was stored by C (bytes).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

// Linked for its exported `ctx_*` symbols, which are called below by name,
// exactly as C code calls them.
use ctx as _;

/// How the core's `Display` names a value stored through the C ABI (Python
/// values included); `Context.__repr__` shows it as `<value>`.
pub(crate) const VALUE_TYPE_NAME: &str = "ctx::value::CValue";

#[allow(non_camel_case_types)]
type ctx_status_t = c_int;
const CTX_OK: ctx_status_t = 0;
const CTX_EKIND: ctx_status_t = 2;
const CTX_ENOTFOUND: ctx_status_t = 7;

extern "C" {
    fn ctx_key_new(name: *const c_char, out: *mut *mut c_void) -> ctx_status_t;
    fn ctx_key_release(key: *mut c_void);
    fn ctx_with_value(
        parent: *const c_void,
        key: *const c_void,
        ptr: *mut c_void,
        dtor: Option<unsafe extern "C" fn(*mut c_void)>,
        out: *mut *mut c_void,
    ) -> ctx_status_t;
    fn ctx_value(ctx: *const c_void, key: *const c_void, data: *mut *const c_void, len: *mut usize) -> ctx_status_t;
    fn ctx_cancel(cancel: *mut c_void) -> ctx_status_t;
    fn ctx_cancel_cause(cancel: *mut c_void, msg: *const c_char, code: i64) -> ctx_status_t;
    fn ctx_cancel_retain(cancel: *const c_void) -> *mut c_void;
    fn ctx_cancel_release(cancel: *mut c_void);
    fn ctx_strerror(status: c_int) -> *const c_char;
}

fn check(status: ctx_status_t, what: &str) -> PyResult<()> {
    if status == CTX_OK {
        return Ok(());
    }
    // SAFETY: ctx_strerror returns a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(ctx_strerror(status)) }.to_string_lossy();
    Err(PyRuntimeError::new_err(format!("{what}: {text}")))
}

/// Live `PyObject*` values stored by this module, with how many contexts
/// hold each.
static STORED: Mutex<Option<HashMap<usize, usize>>> = Mutex::new(None);

fn stored() -> MutexGuard<'static, Option<HashMap<usize, usize>>> {
    STORED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The destructor of a Python value: runs on whatever thread frees the
/// context (maybe the core's timer thread, or C code's), so it never takes
/// the GIL; PyO3 defers the decref to the next time Python runs PyO3 code
/// unless this thread is already inside it.
unsafe extern "C" fn release_value(p: *mut c_void) {
    {
        let mut table = stored();
        if let Some(map) = table.as_mut() {
            if let Some(n) = map.get_mut(&(p as usize)) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&(p as usize));
                }
            }
        }
    }
    // SAFETY: `p` owns the reference `with_value` gave the context. The token
    // is only used to wrap the pointer; `Py`'s drop checks for itself whether
    // this thread is attached, and defers the decref if it is not.
    let obj = unsafe { Bound::from_owned_ptr(Python::assume_attached(), p.cast()) }.unbind();
    drop(obj);
}

/// A key: a C key owned by this object (released with it).
pub(crate) struct CKey(*mut c_void);

// SAFETY: C keys may be used from any thread (ctx.h); this one is released
// only when its owner is dropped, when no other thread uses it.
unsafe impl Send for CKey {}
// SAFETY: as for `Send`.
unsafe impl Sync for CKey {}

impl CKey {
    pub(crate) fn new(name: &str) -> PyResult<CKey> {
        let name = CString::new(name).map_err(|_| PyValueError::new_err("Key name must not contain NUL"))?;
        let mut out = ptr::null_mut();
        // SAFETY: valid C string and out-pointer.
        check(unsafe { ctx_key_new(name.as_ptr(), &mut out) }, "ctx_key_new")?;
        Ok(CKey(out))
    }

    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.0
    }
}

impl Drop for CKey {
    fn drop(&mut self) {
        // SAFETY: owned, released once.
        unsafe { ctx_key_release(self.0) }
    }
}

/// Calls `f` with a borrowed `ctx_t*` for `ctx`.
fn with_raw<R>(ctx: &polyctx::Context, f: impl FnOnce(*const c_void) -> R) -> R {
    let raw = ctx.clone().into_raw();
    let r = f(raw);
    // SAFETY: taken back once, from `into_raw` above.
    drop(unsafe { polyctx::Context::from_raw(raw) });
    r
}

/// `with_value` for a Python object.
pub(crate) fn with_value(
    parent: &polyctx::Context,
    key: &CKey,
    value: &Bound<'_, PyAny>,
) -> PyResult<polyctx::Context> {
    let obj = value.clone().into_ptr();
    {
        let mut table = stored();
        *table.get_or_insert_with(HashMap::new).entry(obj as usize).or_insert(0) += 1;
    }
    let mut out = ptr::null_mut();
    // SAFETY: live handles; on CTX_OK the context owns `obj`'s reference.
    let status = with_raw(parent, |p| unsafe {
        ctx_with_value(p, key.as_ptr(), obj.cast(), Some(release_value), &mut out)
    });
    if status != CTX_OK {
        // SAFETY: nothing was stored, so the reference and the count are still ours.
        unsafe { release_value(obj.cast()) };
        check(status, "ctx_with_value")?;
    }
    // SAFETY: `out` owns one reference.
    Ok(unsafe { polyctx::Context::from_raw(out) })
}

/// The value under `key`: a Python object, `bytes` stored by C, or None.
pub(crate) fn value(py: Python<'_>, ctx: &polyctx::Context, key: &CKey) -> PyResult<Py<PyAny>> {
    let (mut data, mut len) = (ptr::null(), 0usize);
    // SAFETY: live handles and valid out-pointers.
    let status = with_raw(ctx, |p| unsafe { ctx_value(p, key.as_ptr(), &mut data, &mut len) });
    if status == CTX_ENOTFOUND {
        return Ok(py.None());
    }
    check(status, "ctx_value")?;
    // The data is borrowed from `ctx`, which the caller holds.
    Ok(from_c(py, data, len))
}

/// What a value found through the C ABI is, in Python: `polyctx.value_from_c`.
#[pyfunction]
#[pyo3(name = "value_from_c")]
pub(crate) fn value_from_c_py(py: Python<'_>, data: usize, length: usize) -> Py<PyAny> {
    from_c(py, data as *const c_void, length)
}

pub(crate) fn from_c(py: Python<'_>, data: *const c_void, len: usize) -> Py<PyAny> {
    if len == 0 && is_python_value(data) {
        // SAFETY: a live Python object: a context holds a reference to it.
        return unsafe { Bound::from_borrowed_ptr(py, data.cast_mut().cast()) }.unbind();
    }
    if data.is_null() {
        return PyBytes::new(py, b"").into_any().unbind();
    }
    // SAFETY: C stored `len` bytes at `data`, borrowed from a live context.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    PyBytes::new(py, bytes).into_any().unbind()
}

fn is_python_value(data: *const c_void) -> bool {
    stored().as_ref().is_some_and(|m| m.contains_key(&(data as usize)))
}

/// A cancel handle adopted from C (`ctx_cancel_t*`, retained).
pub(crate) struct CCancel(*mut c_void);

// SAFETY: cancel handles may be used and released from any thread (ctx.h).
unsafe impl Send for CCancel {}
// SAFETY: as for `Send`.
unsafe impl Sync for CCancel {}

impl CCancel {
    /// # Safety
    /// `ptr` must be a live `ctx_cancel_t*`.
    pub(crate) unsafe fn retain(ptr: usize) -> PyResult<CCancel> {
        if ptr == 0 {
            return Err(PyValueError::new_err("a ctx_cancel_t* must not be NULL"));
        }
        // SAFETY: as the caller promises.
        Ok(CCancel(unsafe { ctx_cancel_retain(ptr as *const c_void) }))
    }

    pub(crate) fn cancel(&self, cause: Option<&polyctx::Cause>) -> PyResult<()> {
        let status = match cause {
            // SAFETY: a live handle.
            None => unsafe { ctx_cancel(self.0) },
            Some(c) => {
                let text = CString::new(c.to_string().replace('\0', "\u{fffd}")).expect("no NUL left");
                // SAFETY: a live handle and a C string.
                unsafe { ctx_cancel_cause(self.0, text.as_ptr(), c.code().unwrap_or(0)) }
            }
        };
        if status == CTX_EKIND {
            return Err(PyTypeError::new_err(
                "this C cancel handle takes no cause (it is not from ctx_with_cancel_cause)",
            ));
        }
        check(status, "ctx_cancel")
    }
}

impl Drop for CCancel {
    fn drop(&mut self) {
        // SAFETY: retained in `retain`, released once.
        unsafe { ctx_cancel_release(self.0) }
    }
}

/// `Context.from_c`: a new Python reference to the context behind `ptr`.
pub(crate) fn context_from_c(ptr: usize) -> PyResult<polyctx::Context> {
    if ptr == 0 {
        return Err(PyValueError::new_err("a ctx_t* must not be NULL"));
    }
    // SAFETY: the caller promises a live `ctx_t*`, which is the core's raw handle.
    Ok(unsafe { polyctx::Context::clone_raw(ptr as *const c_void) })
}
