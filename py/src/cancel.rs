//! Cancel functions, and the runtime lostcancel check: a cancel function
//! garbage-collected without having been called warns, naming where its
//! context was created. The `(ctx, cancel)` pairs are tuples (`_pair.py`).

use std::ffi::{c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyResourceWarning, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::cabi;
use crate::cause::cause_from_py;
use crate::context::{not_copyable, Context};

/// Where a context was created: the caller's code object and line.
pub(crate) struct Origin {
    code: Py<PyAny>,
    line: c_int,
}

extern "C" {
    // In the C API since 3.9 (the limited API lists it from 3.10 on); it is
    // what `frame.f_code` reads, without an attribute lookup.
    fn PyFrame_GetCode(frame: *mut ffi::PyFrameObject) -> *mut ffi::PyObject;
}

/// Whether cancel functions record where their context was created (on by
/// default; the benchmarks turn it off to measure what it costs).
static TRACK_ORIGINS: AtomicBool = AtomicBool::new(true);

/// `_native._track_origins(on)`: the lostcancel check's switch; returns the old setting.
#[pyfunction]
pub(crate) fn _track_origins(on: bool) -> bool {
    TRACK_ORIGINS.swap(on, Ordering::Relaxed)
}

impl Origin {
    /// The innermost Python frame, if the caller is Python code. Costs a
    /// reference count and a line-number lookup, no allocation.
    pub(crate) fn capture(py: Python<'_>) -> Option<Origin> {
        if !TRACK_ORIGINS.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: attached to the interpreter; the frame is borrowed and used
        // before anything can run that would free it.
        unsafe {
            let frame = ffi::PyEval_GetFrame();
            if frame.is_null() {
                return None;
            }
            let code = Bound::from_owned_ptr_or_opt(py, PyFrame_GetCode(frame))?;
            Some(Origin {
                code: code.unbind(),
                line: ffi::PyFrame_GetLineNumber(frame),
            })
        }
    }

    fn filename(&self, py: Python<'_>) -> String {
        self.code
            .bind(py)
            .getattr(pyo3::intern!(py, "co_filename"))
            .and_then(|f| f.extract::<String>())
            .unwrap_or_else(|_| "<unknown>".into())
    }
}

/// State shared by both cancel function classes.
pub(crate) struct Cancel {
    /// Made in Python, or adopted from C with `from_c`.
    func: polyctx::AnyCancelFunc,
    called: AtomicBool,
    origin: Option<Origin>,
    /// The context this cancels, as its owning wrapper, so that the garbage
    /// collector reaches the cause it will hold through this function (see
    /// `gc`). None for a C handle.
    context: Option<Py<Context>>,
}

impl Cancel {
    /// The cancel function of `context`, made by a `with_*` function called
    /// from Python code (whose line the lostcancel warning names).
    pub(crate) fn new(py: Python<'_>, func: polyctx::AnyCancelFunc, context: Py<Context>) -> Cancel {
        Cancel {
            func,
            called: AtomicBool::new(false),
            origin: Origin::capture(py),
            context: Some(context),
        }
    }

    pub(crate) fn cancel(&self, cause: Option<polyctx::Cause>) -> PyResult<()> {
        self.called.store(true, Ordering::Relaxed);
        match cause {
            None => self.func.cancel(),
            // Only a handle adopted from C can be of the kind that takes no
            // cause under a `CancelCauseFunc`.
            cause => self
                .func
                .cancel_with_cause(cause)
                .map_err(|e| PyTypeError::new_err(e.to_string()))?,
        }
        Ok(())
    }

    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.context)?;
        if let Some(origin) = &self.origin {
            visit.call(&origin.code)?;
        }
        Ok(())
    }

    /// Adopts a live `ctx_cancel_t*` (the caller's promise, documented).
    fn from_c(ptr: usize) -> PyResult<Cancel> {
        Ok(Cancel {
            func: cabi::cancel_from_c(ptr)?,
            called: AtomicBool::new(false),
            origin: None, // C code owns the duty to cancel
            context: None,
        })
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        if self.called.load(Ordering::Relaxed) {
            return;
        }
        let Some(origin) = &self.origin else { return };
        // SAFETY: pyclass values are dropped in `tp_dealloc`, attached.
        let py = unsafe { Python::assume_attached() };
        warn_lost(py, origin);
    }
}

#[cold]
fn warn_lost(py: Python<'_>, origin: &Origin) {
    // A deallocation can happen while an exception is being raised: keep it.
    let pending = PyErr::take(py);
    let file = origin.filename(py);
    let text = format!(
        "cancel function of the context created at {file}:{} was garbage-collected without being called; \
         call it when the work is done (Go's `defer cancel()`), or use `with polyctx.with_...(...) as (ctx, cancel):`",
        origin.line
    );
    let category = py.get_type::<PyResourceWarning>();
    if let (Ok(text), Ok(file)) = (CString::new(text), CString::new(file)) {
        if let Err(e) = PyErr::warn_explicit(py, category.as_any(), &text, &file, origin.line, None, None) {
            e.write_unraisable(py, None);
        }
    }
    if let Some(e) = pending {
        e.restore(py);
    }
}

/// Cancels its context: `cancel()`. Calling it again does nothing more.
#[pyclass(frozen, module = "polyctx", name = "CancelFunc")]
pub(crate) struct CancelFunc(pub(crate) Cancel);

#[pymethods]
impl CancelFunc {
    fn __call__(&self) -> PyResult<()> {
        self.0.cancel(None)
    }

    /// Adopts a C cancel handle (`ctx_cancel_t*`): a new reference that
    /// Python releases; the caller keeps its own.
    #[staticmethod]
    fn from_c(ptr: usize) -> PyResult<Self> {
        Ok(CancelFunc(Cancel::from_c(ptr)?))
    }

    fn __repr__(&self) -> String {
        repr("CancelFunc", &self.0)
    }

    /// What `pickle` and `copy` call: they refuse, saying why.
    fn __reduce__(&self) -> PyResult<()> {
        Err(not_copyable("CancelFunc"))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.0.traverse(&visit)
    }
}

/// Cancels its context with an optional cause: `cancel(cause)`.
#[pyclass(frozen, module = "polyctx", name = "CancelCauseFunc")]
pub(crate) struct CancelCauseFunc(pub(crate) Cancel);

#[pymethods]
impl CancelCauseFunc {
    #[pyo3(signature = (cause = None, /))]
    fn __call__(&self, cause: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.0.cancel(cause_from_py(cause)?)
    }

    /// Adopts a C cancel handle from `ctx_with_cancel_cause`; a cause given
    /// to it reaches C as its message.
    #[staticmethod]
    fn from_c(ptr: usize) -> PyResult<Self> {
        Ok(CancelCauseFunc(Cancel::from_c(ptr)?))
    }

    fn __repr__(&self) -> String {
        repr("CancelCauseFunc", &self.0)
    }

    /// What `pickle` and `copy` call: they refuse, saying why.
    fn __reduce__(&self) -> PyResult<()> {
        Err(not_copyable("CancelCauseFunc"))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.0.traverse(&visit)
    }
}

fn repr(class: &str, c: &Cancel) -> String {
    let called = if c.called.load(Ordering::Relaxed) {
        " called"
    } else {
        ""
    };
    format!("<polyctx.{class}{called}>")
}
