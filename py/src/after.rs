//! `after_func`: Go's `AfterFunc`, running a Python callable on its own thread.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::context::{expect_context, type_name};

/// Stops an `after_func`: `stop()` is true if it kept the function from
/// being started.
#[pyclass(frozen, module = "polyctx", name = "StopFunc")]
pub(crate) struct StopFunc(polyctx::AfterFunc);

#[pymethods]
impl StopFunc {
    fn __call__(&self) -> bool {
        self.0.stop()
    }

    fn __repr__(&self) -> String {
        "<polyctx.StopFunc>".into()
    }
}

/// Calls `fn()` on a new thread once `ctx` is done (at once if it already
/// is). An exception it raises is reported like one in `__del__`.
#[pyfunction]
#[pyo3(name = "after_func")]
pub(crate) fn after_func(ctx: &Bound<'_, PyAny>, r#fn: &Bound<'_, PyAny>) -> PyResult<StopFunc> {
    let ctx = &expect_context(ctx, "ctx")?.get().inner;
    if !r#fn.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "fn must be callable, not {}",
            type_name(r#fn)
        )));
    }
    let f = r#fn.clone().unbind();
    Ok(StopFunc(polyctx::after_func(ctx, move || {
        // A thread of its own, started by the core: it may block on the GIL
        // without holding up anything else. Skipped if the interpreter is gone.
        Python::try_attach(|py| {
            let f = f.bind(py);
            if let Err(e) = f.call0() {
                e.write_unraisable(py, Some(f));
            }
        });
    })))
}
