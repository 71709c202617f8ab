//! Errors and causes between Python and the core.
//!
//! A Python exception given as a cause travels through the core as a cause
//! with a payload (`Cause::with_payload`): the exception object itself (so
//! `cause()` returns that very object) beside its message, computed once
//! while the GIL is held, so that other languages can read it on any thread
//! without taking the GIL. A cause set in another language reads in Python
//! as `polyctx.ForeignCause`.

use polyctx::{Cause, Context, Error};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

/// The payload of a cause given from Python.
struct PyException(Py<PyAny>);

static CANCELED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DEADLINE_EXCEEDED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static FOREIGN_CAUSE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn error_type(py: Python<'_>, error: Error) -> PyResult<&Bound<'_, PyType>> {
    match error {
        Error::Canceled => CANCELED.import(py, "polyctx._errors", "Canceled"),
        Error::DeadlineExceeded => DEADLINE_EXCEEDED.import(py, "polyctx._errors", "DeadlineExceeded"),
    }
}

/// The context error a Python exception is an instance of, if any.
pub(crate) fn context_error_of(exc: &Bound<'_, PyAny>) -> PyResult<Option<Error>> {
    for error in [Error::DeadlineExceeded, Error::Canceled] {
        if exc.is_instance(error_type(exc.py(), error)?)? {
            return Ok(Some(error));
        }
    }
    Ok(None)
}

/// A new `Canceled` or `DeadlineExceeded` instance, with Go's message.
pub(crate) fn error_object(py: Python<'_>, error: Error) -> PyResult<Bound<'_, PyAny>> {
    let message = match error {
        Error::Canceled => pyo3::intern!(py, "context canceled"),
        Error::DeadlineExceeded => pyo3::intern!(py, "context deadline exceeded"),
    };
    error_type(py, error)?.call1((message,))
}

/// The cause argument of a cancel function, as a core cause.
pub(crate) fn cause_from_py(cause: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Cause>> {
    let Some(exc) = cause.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    if !exc.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        let what = if exc.is_instance_of::<PyType>() {
            "an exception class; pass an instance, e.g. ValueError(\"why\")".to_string()
        } else {
            format!("{}", exc.get_type().name()?)
        };
        return Err(PyTypeError::new_err(format!(
            "cause must be an exception instance or None, not {what}"
        )));
    }
    if let Some(reason) = crate::wire::reason_cause(exc)? {
        return Ok(Some(reason));
    }
    Ok(Some(Cause::with_payload(
        message_of(exc),
        PyException(exc.clone().unbind()),
    )))
}

/// The Python exception a cause carries, if it was given from Python.
pub(crate) fn exception_of(cause: &Cause) -> Option<&Py<PyAny>> {
    cause.payload::<PyException>().map(|PyException(exc)| exc)
}

/// What other languages see of a Python exception: `str(exc)`, or the type's
/// name when that is empty or fails.
fn message_of(exc: &Bound<'_, PyAny>) -> String {
    match exc.str() {
        Ok(s) if !s.to_string_lossy().is_empty() => s.to_string_lossy().into_owned(),
        _ => exc
            .get_type()
            .qualname()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "exception".into()),
    }
}

/// A core cause as a Python exception: the original object for a Python
/// cause, a fresh `Canceled`/`DeadlineExceeded` for a context error, and a
/// `ForeignCause` carrying the message (and code) for anything else.
pub(crate) fn cause_to_py<'py>(py: Python<'py>, cause: &Cause) -> PyResult<Bound<'py, PyAny>> {
    if let Some(exc) = exception_of(cause) {
        return Ok(exc.bind(py).clone());
    }
    if let Some(e) = cause.as_context_error() {
        return error_object(py, e);
    }
    if let Some(exc) = crate::wire::reason_exception(py, cause)? {
        return Ok(exc);
    }
    let ty = FOREIGN_CAUSE.import(py, "polyctx._errors", "ForeignCause")?;
    ty.call1((PyString::new(py, &cause.to_string()), cause.code()))
}

/// `ctx.err()` as Python sees it: `None`, or a fresh error whose `__cause__`
/// is the context's cause when one was given.
pub(crate) fn err_of<'py>(py: Python<'py>, ctx: &Context) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(error) = ctx.err() else { return Ok(None) };
    let obj = error_object(py, error)?;
    if let Some(cause) = polyctx::cause(ctx) {
        if cause.as_context_error().is_none() {
            let cause = cause_to_py(py, &cause)?;
            obj.setattr(pyo3::intern!(py, "__cause__"), cause)?;
        }
    }
    Ok(Some(obj))
}
