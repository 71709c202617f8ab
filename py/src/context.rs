//! `Context`, `Key`, and the functions that derive contexts.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use polyctx::clock;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyFloat;

use crate::cabi::{self, CKey};
use crate::cancel::{self, CancelCauseFunc, CancelFunc, CancelPair};
use crate::cause::{cause_from_py, cause_to_py, err_of};

/// A request's cancellation signal, deadline and values (Go's `context.Context`).
///
/// Immutable and safe to share between threads and tasks; derive children
/// with the `with_*` functions.
#[pyclass(frozen, weakref, module = "polyctx", name = "Context")]
pub(crate) struct Context {
    pub(crate) inner: polyctx::Context,
}

/// A key for `with_value`, unique by identity: two keys never collide, even
/// with the same name.
#[pyclass(frozen, module = "polyctx", name = "Key")]
pub(crate) struct Key {
    inner: CKey,
    name: String,
}

#[pymethods]
impl Key {
    #[new]
    fn new(name: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name: String = name
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("Key name must be a str, not {}", type_name(name))))?;
        Ok(Key {
            inner: CKey::new(&name),
            name,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The key's `ctx_key_t*`, borrowed: valid while this Key lives.
    fn to_c(&self) -> usize {
        self.inner.to_c()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let name = pyo3::types::PyString::new(py, &self.name).repr()?;
        Ok(format!("Key({name})"))
    }
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// `obj` as a context, or a TypeError naming `what` it was meant to be.
pub(crate) fn expect_context<'a, 'py>(obj: &'a Bound<'py, PyAny>, what: &str) -> PyResult<&'a Bound<'py, Context>> {
    obj.cast::<Context>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a polyctx.Context, not {}", type_name(obj))))
}

static DONE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

#[pymethods]
impl Context {
    /// None while the context is live; once it is done, a new `Canceled` or
    /// `DeadlineExceeded` whose `__cause__` is the context's cause, if one
    /// was given.
    fn err<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        err_of(py, &self.inner)
    }

    /// True once the context is done (canceled or past its deadline).
    fn is_done(&self) -> bool {
        self.inner.is_done()
    }

    /// When the context will be done by itself, in `time.monotonic()`
    /// seconds, or None.
    fn deadline(&self) -> Option<f64> {
        self.inner.deadline_ns().map(|ns| ns as f64 / 1e9)
    }

    /// The value stored under `key` by the nearest `with_value` ancestor, or None.
    fn value(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let key = key
            .cast::<Key>()
            .map_err(|_| PyTypeError::new_err(format!("key must be a polyctx.Key, not {}", type_name(key))))?;
        cabi::value(py, &self.inner, &key.get().inner)
    }

    /// An asyncio future that completes when the context is done (never, for
    /// a context that cannot be canceled). Needs a running event loop.
    fn done<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let done = DONE.get_or_try_init(py, || -> PyResult<_> {
            Ok(py.import("polyctx._asyncio")?.getattr("_done_future")?.unbind())
        })?;
        done.bind(py).call1((slf,))
    }

    /// Blocks the thread until the context is done or `timeout` seconds pass
    /// (forever if None); true if it is done. Releases the GIL while waiting.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
        let until = match timeout.filter(|t| !t.is_none()) {
            None => None,
            Some(t) => {
                let secs = seconds(t, "timeout")?;
                Some(Instant::now() + Duration::from_secs_f64(secs.clamp(0.0, MAX_WAIT_SECONDS)))
            }
        };
        // Waits in slices so that Ctrl-C (signal handlers) still runs.
        const SLICE: Duration = Duration::from_millis(100);
        loop {
            if self.inner.is_done() {
                return Ok(true);
            }
            let now = Instant::now();
            let slice = match until {
                Some(u) if u <= now => return Ok(false),
                Some(u) => (u - now).min(SLICE),
                None => SLICE,
            };
            let ctx = self.inner.clone();
            if py.detach(move || ctx.wait_timeout(slice)) {
                return Ok(true);
            }
            py.check_signals()?;
        }
    }

    fn __repr__(&self) -> String {
        self.repr()
    }

    /// A new `ctx_t*` for C code, owning one reference: C releases it with
    /// `ctx_release`.
    fn to_c(&self) -> usize {
        cabi::context_to_c(&self.inner)
    }

    /// The context behind a live `ctx_t*`, as a new reference that Python
    /// owns; the caller's reference stays the caller's to release.
    #[staticmethod]
    fn from_c(ptr: usize) -> PyResult<Context> {
        Ok(Context {
            inner: cabi::context_from_c(ptr)?,
        })
    }

    fn __eq__(&self, other: &Bound<'_, Context>) -> bool {
        self.inner.same(&other.get().inner)
    }

    fn __hash__(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let raw = self.inner.clone().into_raw();
        raw.hash(&mut h);
        // SAFETY: taken back at once, from `into_raw` just above.
        drop(unsafe { polyctx::Context::from_raw(raw) });
        h.finish()
    }
}

impl Context {
    pub(crate) fn repr(&self) -> String {
        format!("<polyctx.Context {}>", self.inner)
    }
}

/// One second short of the clock's far end, so `now + timeout` never overflows.
const MAX_WAIT_SECONDS: f64 = 1e9;

/// A number of seconds: an int or float, neither NaN nor infinite.
pub(crate) fn seconds(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a number of seconds, not {}",
            type_name(obj)
        )));
    }
    let secs: f64 = if let Ok(f) = obj.cast::<PyFloat>() {
        f.value()
    } else {
        obj.extract()
            .map_err(|_| PyTypeError::new_err(format!("{what} must be a number of seconds, not {}", type_name(obj))))?
    };
    if secs.is_nan() {
        return Err(PyValueError::new_err(format!(
            "{what} must be a number of seconds, not NaN"
        )));
    }
    if secs.is_infinite() {
        return Err(PyValueError::new_err(format!(
            "{what} must be finite, not {secs}; for no deadline, use with_cancel"
        )));
    }
    Ok(secs)
}

/// Seconds on `time.monotonic()`'s clock as clock nanoseconds, saturating.
fn monotonic_ns(secs: f64) -> u64 {
    let ns = (secs * 1e9).round();
    if ns <= 0.0 {
        0
    } else if ns >= clock::MAX_DEADLINE_NS as f64 {
        clock::MAX_DEADLINE_NS
    } else {
        ns as u64
    }
}

pub(crate) fn parent_of<'a, 'py>(parent: &'a Bound<'py, PyAny>) -> PyResult<&'a polyctx::Context> {
    Ok(&expect_context(parent, "parent")?.get().inner)
}

fn pair(py: Python<'_>, ctx: polyctx::Context, cancel: Py<PyAny>) -> PyResult<CancelPair> {
    Ok(CancelPair {
        context: Py::new(py, Context { inner: ctx })?,
        cancel,
    })
}

fn plain_pair(py: Python<'_>, (ctx, cancel): (polyctx::Context, polyctx::CancelFunc)) -> PyResult<CancelPair> {
    let cancel = Py::new(py, CancelFunc(cancel::plain(py, cancel)))?.into_any();
    pair(py, ctx, cancel)
}

static BACKGROUND: PyOnceLock<Py<Context>> = PyOnceLock::new();
static TODO: PyOnceLock<Py<Context>> = PyOnceLock::new();

/// The root of every tree: never done, no deadline, no values.
#[pyfunction]
pub(crate) fn background(py: Python<'_>) -> Py<Context> {
    BACKGROUND
        .get_or_init(py, || {
            Py::new(
                py,
                Context {
                    inner: polyctx::Context::background(),
                },
            )
            .expect("allocating a Context")
        })
        .clone_ref(py)
}

/// A placeholder root for code not yet given a context; like `background()`.
#[pyfunction]
pub(crate) fn todo(py: Python<'_>) -> Py<Context> {
    TODO.get_or_init(py, || {
        Py::new(
            py,
            Context {
                inner: polyctx::Context::todo(),
            },
        )
        .expect("allocating a Context")
    })
    .clone_ref(py)
}

/// A child canceled by its cancel function or when `parent` is done.
#[pyfunction]
pub(crate) fn with_cancel(py: Python<'_>, parent: &Bound<'_, PyAny>) -> PyResult<CancelPair> {
    plain_pair(py, polyctx::with_cancel(parent_of(parent)?))
}

/// Like `with_cancel`, but `cancel(cause)` records why.
#[pyfunction]
pub(crate) fn with_cancel_cause(py: Python<'_>, parent: &Bound<'_, PyAny>) -> PyResult<CancelPair> {
    let (ctx, cancel) = polyctx::with_cancel_cause(parent_of(parent)?);
    let cancel = Py::new(py, CancelCauseFunc(cancel::with_cause(py, cancel)))?.into_any();
    pair(py, ctx, cancel)
}

fn deadline_pair(
    py: Python<'_>,
    parent: &polyctx::Context,
    at: Instant,
    cause: Option<&Bound<'_, PyAny>>,
) -> PyResult<CancelPair> {
    match cause_from_py(cause)? {
        Some(c) => plain_pair(py, polyctx::with_deadline_cause(parent, at, c)),
        None => plain_pair(py, polyctx::with_deadline(parent, at)),
    }
}

/// A child that is also done `seconds` from now (negative: already done).
#[pyfunction]
#[pyo3(signature = (parent, seconds, cause = None))]
pub(crate) fn with_timeout(
    py: Python<'_>,
    parent: &Bound<'_, PyAny>,
    seconds: &Bound<'_, PyAny>,
    cause: Option<&Bound<'_, PyAny>>,
) -> PyResult<CancelPair> {
    let parent = parent_of(parent)?;
    let secs = self::seconds(seconds, "seconds")?;
    let now = clock::now_ns();
    let at = if secs >= 0.0 {
        now.saturating_add(monotonic_ns(secs)).min(clock::MAX_DEADLINE_NS)
    } else {
        now.saturating_sub(monotonic_ns(-secs))
    };
    deadline_pair(py, parent, clock::to_instant(at), cause)
}

/// A child that is also done at `when`, in `time.monotonic()` seconds
/// (asyncio's `loop.time()`).
#[pyfunction]
#[pyo3(signature = (parent, when, cause = None))]
pub(crate) fn with_deadline(
    py: Python<'_>,
    parent: &Bound<'_, PyAny>,
    when: &Bound<'_, PyAny>,
    cause: Option<&Bound<'_, PyAny>>,
) -> PyResult<CancelPair> {
    let parent = parent_of(parent)?;
    let at = monotonic_ns(seconds(when, "when")?);
    deadline_pair(py, parent, clock::to_instant(at), cause)
}

/// A child carrying `value` under `key`, shadowing any ancestor's.
#[pyfunction]
pub(crate) fn with_value(
    parent: &Bound<'_, PyAny>,
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<Context> {
    let parent = parent_of(parent)?;
    let key = key
        .cast::<Key>()
        .map_err(|_| PyTypeError::new_err(format!("key must be a polyctx.Key, not {}", type_name(key))))?;
    Ok(Context {
        inner: cabi::with_value(parent, &key.get().inner, value),
    })
}

/// A child that keeps `parent`'s values but is never canceled.
#[pyfunction]
pub(crate) fn without_cancel(parent: &Bound<'_, PyAny>) -> PyResult<Context> {
    Ok(Context {
        inner: polyctx::without_cancel(parent_of(parent)?),
    })
}

/// Why `ctx` is done: the exception given to the first cancellation (the same
/// object), else its error; None while it is live.
#[pyfunction]
pub(crate) fn cause<'py>(py: Python<'py>, ctx: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let ctx = expect_context(ctx, "ctx")?;
    polyctx::cause(&ctx.get().inner)
        .map(|c| cause_to_py(py, &c))
        .transpose()
}
