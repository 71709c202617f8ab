//! Method calls without a bound method or an argument tuple.
//!
//! Under the stable ABI for 3.9, PyO3 calls a method by looking up a bound
//! method and packing a tuple: two allocations per call, which dominate the
//! cost of entering a scope. `PyObject_VectorcallMethod` has been a real
//! exported function since CPython 3.9 (in the limited API since 3.12) and its
//! signature has never changed, so it is declared here and used on every
//! version this module supports.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

extern "C" {
    fn PyObject_VectorcallMethod(
        name: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: usize,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
}

/// `obj.name(*args)`.
pub(crate) fn method<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    args: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let mut argv: [*mut ffi::PyObject; 3] = [obj.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut()];
    assert!(args.len() <= 2, "at most two arguments");
    for (slot, arg) in argv[1..].iter_mut().zip(args) {
        *slot = arg.as_ptr();
    }
    // SAFETY: attached; `argv` holds borrowed references that outlive the call.
    unsafe {
        let result = PyObject_VectorcallMethod(name.as_ptr(), argv.as_ptr(), 1 + args.len(), std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, result)
    }
}
