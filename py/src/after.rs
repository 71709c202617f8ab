//! `after_func` (Go's `AfterFunc`, running a Python callable on its own
//! thread) and `loop_after_func` (the same, on the calling event loop).

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{PyTraverseError, PyVisit};

use crate::context::{expect_context, not_copyable, type_name};
use crate::scope::asyncio;
use crate::waker::Waker;

enum Stop {
    Thread(polyctx::AfterFunc),
    /// A wait on a loop's waker.
    Loop {
        waker: Py<Waker>,
        id: u64,
    },
}

/// Stops an `after_func` or `loop_after_func`: `stop()` is true if it kept
/// the function from being started.
#[pyclass(frozen, module = "polyctx", name = "StopFunc")]
pub(crate) struct StopFunc(Stop);

#[pymethods]
impl StopFunc {
    fn __call__(&self) -> bool {
        match &self.0 {
            Stop::Thread(f) => f.stop(),
            Stop::Loop { waker, id } => waker.get().unwatch(*id),
        }
    }

    fn __repr__(&self) -> String {
        "<polyctx.StopFunc>".into()
    }

    /// What `pickle` and `copy` call: they refuse, saying why.
    fn __reduce__(&self) -> PyResult<()> {
        Err(not_copyable("StopFunc"))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.0 {
            Stop::Thread(_) => Ok(()),
            Stop::Loop { waker, .. } => visit.call(waker),
        }
    }
}

fn check_callable(f: &Bound<'_, PyAny>) -> PyResult<()> {
    if f.is_callable() {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "fn must be callable, not {}",
        type_name(f)
    )))
}

/// Calls `fn()` on a new thread once `ctx` is done (at once if it already
/// is). An exception it raises is reported like one in `__del__`.
#[pyfunction]
#[pyo3(name = "after_func")]
pub(crate) fn after_func(ctx: &Bound<'_, PyAny>, r#fn: &Bound<'_, PyAny>) -> PyResult<StopFunc> {
    let ctx = &expect_context(ctx, "ctx")?.get().inner;
    check_callable(r#fn)?;
    let f = r#fn.clone().unbind();
    Ok(StopFunc(Stop::Thread(polyctx::after_func(ctx, move || {
        // A thread of its own, started by the core: it may block on the GIL
        // without holding up anything else. Skipped if the interpreter is gone.
        Python::try_attach(|py| {
            let f = f.bind(py);
            if let Err(e) = f.call0() {
                e.write_unraisable(py, Some(f));
            }
        });
    }))))
}

static COPY_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Calls `fn()` on the running event loop once `ctx` is done (soon, if it
/// already is), as a loop callback (`loop.call_soon`) in a copy of the
/// caller's contextvars: for asyncio objects, which are not thread-safe.
#[pyfunction]
#[pyo3(name = "loop_after_func")]
pub(crate) fn loop_after_func(ctx: &Bound<'_, PyAny>, r#fn: &Bound<'_, PyAny>) -> PyResult<StopFunc> {
    let py = ctx.py();
    let ctx = &expect_context(ctx, "ctx")?.get().inner;
    check_callable(r#fn)?;
    let a = asyncio(py)?;
    let event_loop = a.running_loop(py).map_err(|_| {
        PyRuntimeError::new_err(
            "loop_after_func needs a running event loop (call it from a coroutine or loop callback); \
             from a thread without one, use after_func",
        )
    })?;
    let waker = a.waker(py, &event_loop)?;
    let context = COPY_CONTEXT.import(py, "contextvars", "copy_context")?.call0()?;
    let id = waker
        .get()
        .watch_callback(ctx, r#fn.clone().unbind(), event_loop.unbind(), context.unbind());
    Ok(StopFunc(Stop::Loop {
        waker: waker.unbind(),
        id,
    }))
}
