//! `Context`, `Key`, and the functions that derive contexts.
//!
//! Every `Context` a `with_*` function returns owns the Python references its
//! node holds, for the garbage collector: see `gc` for the rule.

use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use polyctx::clock::{self, DurationError};
use polyctx::Cause;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyInt, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use crate::cabi::{self, CKey};
use crate::cancel::{Cancel, CancelCauseFunc, CancelFunc};
use crate::cause::{cause_from_py, cause_to_py, err_of, exception_of};
use crate::gc;

/// A request's cancellation signal, deadline and values (Go's `context.Context`).
///
/// Immutable and safe to share between threads and tasks; derive children
/// with the `with_*` functions.
#[pyclass(frozen, weakref, module = "polyctx", name = "Context")]
pub(crate) struct Context {
    pub(crate) inner: polyctx::Context,
    owned: Mutex<Owned>,
}

/// The Python references a context owns and visits (see `gc`). Only read and
/// written with the GIL held, so the lock is never contended.
#[derive(Default)]
struct Owned {
    /// This wrapper was made with its node, by a `with_*` function.
    owner: bool,
    /// The node, or a descendant, was handed to C: stop visiting what the
    /// node holds (rule 4).
    exported: bool,
    parent: Option<Py<Context>>,
    /// `with_value`'s value: this reference is the wrapper's own; the node
    /// holds another.
    value: Option<Py<PyAny>>,
    /// A clone of the cause given for the deadline.
    deadline_cause: Option<Cause>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(parent) = self.parent.take() {
            gc::release(parent.into_any());
        }
    }
}

impl Context {
    /// A wrapper that owns nothing: the roots, and contexts from C.
    pub(crate) fn foreign(inner: polyctx::Context) -> Context {
        Context {
            inner,
            owned: Mutex::default(),
        }
    }

    /// The one owner of a node just derived from `parent`.
    fn owner(
        inner: polyctx::Context,
        parent: &Bound<'_, Context>,
        value: Option<Py<PyAny>>,
        deadline_cause: Option<Cause>,
    ) -> Context {
        crate::debug::record_site(parent.py(), &inner);
        Context {
            inner,
            owned: Mutex::new(Owned {
                owner: true,
                exported: false,
                parent: Some(parent.clone().unbind()),
                value,
                deadline_cause,
            }),
        }
    }

    fn owned(&self) -> MutexGuard<'_, Owned> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rule 4: C may hold this node and so its ancestors; their owners stop
    /// visiting what the nodes hold. Marks up the chain to the first context
    /// already marked (whose ancestors are).
    fn mark_exported(slf: &Bound<'_, Self>) {
        let mut at = slf.clone();
        loop {
            let parent = {
                let mut owned = at.get().owned();
                if owned.exported {
                    return;
                }
                owned.exported = true;
                owned.parent.as_ref().map(|p| p.bind(slf.py()).clone())
            };
            match parent {
                Some(p) => at = p,
                None => return,
            }
        }
    }
}

/// A key for `with_value`, unique by identity: two keys never collide, even
/// with the same name.
#[pyclass(frozen, module = "polyctx", name = "Key")]
pub(crate) struct Key {
    inner: CKey,
    name: String,
}

static GENERIC_ALIAS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

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

    /// `Key[T]`, for type annotations: keys are generic in their value's type.
    #[classmethod]
    fn __class_getitem__<'py>(cls: &Bound<'py, PyType>, item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        GENERIC_ALIAS
            .import(cls.py(), "types", "GenericAlias")?
            .call1((cls, item))
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

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "cannot pickle polyctx.Key: a key is unique by identity, so a copy in another process would find nothing",
        ))
    }

    /// A key names an identity, like a class: copies are the key itself.
    fn __copy__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: PyRef<'py, Self>, _memo: &Bound<'py, PyAny>) -> PyRef<'py, Self> {
        slf
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

/// The error for pickling or copying a live handle.
pub(crate) fn not_copyable(class: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "cannot pickle or copy polyctx.{class}: it is a live handle on this process's cancellation tree \
         (cancel functions, deadline timers and waiters live here); share the object itself, \
         it is immutable and thread-safe, or send another process what it needs (a deadline, values)"
    ))
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
                let ns = duration_ns(t, "timeout")?;
                let wait = Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
                Some(
                    Instant::now()
                        .checked_add(wait)
                        .unwrap_or_else(|| clock::to_instant(clock::MAX_DEADLINE_NS)),
                )
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
    /// `ctx_release`. From then on, cycles through this context and its
    /// ancestors are left to C's reference (see `gc`, rule 4).
    fn to_c(slf: &Bound<'_, Self>) -> usize {
        Context::mark_exported(slf);
        cabi::context_to_c(&slf.get().inner)
    }

    /// The context behind a live `ctx_t*`, as a new reference that Python
    /// owns; the caller's reference stays the caller's to release.
    #[staticmethod]
    fn from_c(ptr: usize) -> PyResult<Context> {
        Ok(Context::foreign(cabi::context_from_c(ptr)?))
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

    /// What `pickle` and `copy` call: they refuse, saying why.
    fn __reduce__(&self) -> PyResult<()> {
        Err(not_copyable("Context"))
    }

    /// Visits the references this context owns, each once (see `gc`).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Never contended: the collector holds the GIL, and so does every
        // other user of the lock.
        let Ok(owned) = self.owned.try_lock() else {
            return Ok(());
        };
        if !owned.owner {
            return Ok(());
        }
        visit.call(&owned.parent)?;
        visit.call(&owned.value)?;
        if owned.exported {
            return Ok(());
        }
        visit.call(&owned.value)?; // the node's reference
        let deadline_cause = owned.deadline_cause.as_ref();
        if let Some(exc) = deadline_cause.and_then(exception_of) {
            visit.call(exc)?;
        }
        if let Some(cause) = polyctx::cause(&self.inner) {
            let known = deadline_cause.is_some_and(|d| d.ptr_eq(&cause));
            let inherited = owned
                .parent
                .as_ref()
                .and_then(|p| polyctx::cause(&p.get().inner))
                .is_some_and(|p| p.ptr_eq(&cause));
            if !known && !inherited {
                if let Some(exc) = exception_of(&cause) {
                    visit.call(exc)?;
                }
            }
        }
        Ok(())
    }

    /// Drops the Python references this context owns. The node stays: the
    /// context keeps working, and the node's payloads are freed with it.
    fn __clear__(&self) {
        let taken = std::mem::take(&mut *self.owned());
        drop(taken);
    }
}

impl Context {
    pub(crate) fn repr(&self) -> String {
        format!("<polyctx.Context {}>", self.inner)
    }
}

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A number of seconds: an int, a float, a `timedelta`, or any real number.
fn seconds(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(f.value());
    }
    let py = obj.py();
    let not_seconds = || PyTypeError::new_err(format!("{what} must be a number of seconds, not {}", type_name(obj)));
    if obj.is_instance_of::<PyInt>() {
        return obj.extract().map_err(|_| not_seconds());
    }
    if obj.is_instance(TIMEDELTA.import(py, "datetime", "timedelta")?)? {
        return obj.call_method0(pyo3::intern!(py, "total_seconds"))?.extract();
    }
    if obj.is_instance_of::<pyo3::types::PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(not_seconds());
    }
    obj.extract().map_err(|_| not_seconds())
}

/// `obj` seconds as signed nanoseconds, by the core's one rule for every
/// binding (`clock::nanos_from_f64`): NaN, infinities and anything beyond
/// about 292 years are errors; negatives stay negative.
pub(crate) fn duration_ns(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    let secs = seconds(obj, what)?;
    clock::nanos_from_f64(secs, 1e9).map_err(|e| match e {
        DurationError::NotANumber => PyValueError::new_err(format!("{what} must be a number of seconds, not NaN")),
        DurationError::OutOfRange => PyValueError::new_err(format!(
            "{what} must be finite and within about 292 years (2**63 - 1 nanoseconds), not {}; \
             for no deadline, use with_cancel",
            obj.repr().map_or_else(|_| secs.to_string(), |r| r.to_string())
        )),
    })
}

/// How far ahead of `time.monotonic()` a deadline may be: `time.time()` is
/// more than 50 years ahead of it (the clock starts at boot), and no machine
/// stays up ten years.
const MAX_AHEAD_NS: i64 = 10 * 365 * 86_400 * 1_000_000_000;

/// `when` as a deadline on the core's clock: a `time.monotonic()` reading in
/// seconds, or an aware `datetime` (a wall-clock instant).
fn deadline_ns(when: &Bound<'_, PyAny>) -> PyResult<u64> {
    let py = when.py();
    let now = clock::now_ns();
    if !when.is_instance_of::<PyFloat>() && when.is_instance(DATETIME.import(py, "datetime", "datetime")?)? {
        if when.call_method0(pyo3::intern!(py, "utcoffset"))?.is_none() {
            return Err(PyValueError::new_err(
                "when is a naive datetime, which names no instant: give it a time zone, \
                 e.g. datetime.now(timezone.utc) + timedelta(seconds=5)",
            ));
        }
        let wall = duration_ns(&when.call_method0(pyo3::intern!(py, "timestamp"))?, "when")?;
        let wall_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        return Ok(clock::deadline_in(now, wall.saturating_sub(wall_now)));
    }
    if when.is_instance(TIMEDELTA.import(py, "datetime", "timedelta")?)? {
        return Err(PyTypeError::new_err(
            "when must be a time.monotonic() reading or an aware datetime, not a timedelta; \
             for a duration, use with_timeout",
        ));
    }
    let ns = duration_ns(when, "when")?;
    if ns.saturating_sub(now as i64) > MAX_AHEAD_NS {
        let secs = ns as f64 / 1e9;
        return Err(PyValueError::new_err(format!(
            "when={secs} is {years:.0} years after time.monotonic() (now {mono:.3}): with_deadline takes a \
             time.monotonic() reading (asyncio's loop.time()), and this looks like a time.time() wall-clock \
             timestamp; for a wall-clock deadline pass an aware datetime, e.g. \
             datetime.now(timezone.utc) + timedelta(seconds=5), and for a duration use with_timeout",
            years = (ns - now as i64) as f64 / 1e9 / (365.0 * 86_400.0),
            mono = now as f64 / 1e9,
        )));
    }
    Ok(clock::from_signed(ns))
}

pub(crate) fn parent_of<'a, 'py>(parent: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, Context>> {
    expect_context(parent, "parent")
}

/// The pair types, `polyctx.CancelPair` and `polyctx.CancelCausePair`:
/// tuple subclasses written in Python (`_pair.py`), so that type checkers
/// unpack them as the tuples they are.
struct PairTypes {
    plain: Py<PyType>,
    cause: Py<PyType>,
}

static PAIR_TYPES: PyOnceLock<PairTypes> = PyOnceLock::new();

fn pair_types(py: Python<'_>) -> PyResult<&PairTypes> {
    PAIR_TYPES.get_or_try_init(py, || {
        let module = py.import("polyctx._pair")?;
        Ok(PairTypes {
            plain: module.getattr("CancelPair")?.cast_into::<PyType>()?.unbind(),
            cause: module.getattr("CancelCausePair")?.cast_into::<PyType>()?.unbind(),
        })
    })
}

/// `obj`'s context and cancel function if it is one of the pairs.
pub(crate) fn as_pair<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<(Bound<'py, Context>, Bound<'py, PyAny>)>> {
    let types = pair_types(obj.py())?;
    let ty = obj.get_type();
    if !ty.is(&types.plain) && !ty.is(&types.cause) {
        return Ok(None);
    }
    let pair = obj.cast::<PyTuple>()?;
    if pair.len() != 2 {
        return Err(PyTypeError::new_err(
            "a polyctx pair holds a context and its cancel function",
        ));
    }
    let ctx = pair.get_item(0)?.cast_into::<Context>().map_err(PyErr::from)?;
    Ok(Some((ctx, pair.get_item(1)?)))
}

/// A new `(ctx, cancel)` pair of type `ty`, made as `tuple.__new__` would,
/// without a Python-level call.
fn new_pair<'py>(py: Python<'py>, ty: &Py<PyType>, ctx: Py<Context>, cancel: Py<PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `ty` is a subclass of tuple; `PyType_GenericAlloc` makes an
    // instance with room for two items (size set, items NULL), which
    // `PyTuple_SetItem` fills while this is its only reference; each call
    // steals the item's reference, even on failure.
    unsafe {
        let obj = Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(ty.as_ptr().cast(), 2))?;
        for (i, item) in [ctx.into_any(), cancel].into_iter().enumerate() {
            if ffi::PyTuple_SetItem(obj.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(obj)
    }
}

/// The pair for a node derived from `parent` with its cancel function.
fn pair<'py>(
    parent: &Bound<'py, Context>,
    (ctx, func): (polyctx::Context, polyctx::AnyCancelFunc),
    deadline_cause: Option<Cause>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = parent.py();
    let context = Py::new(py, Context::owner(ctx, parent, None, deadline_cause))?;
    let types = pair_types(py)?;
    let takes_cause = func.takes_cause();
    let cancel = Cancel::new(py, func, context.clone_ref(py));
    if takes_cause {
        let cancel = Py::new(py, CancelCauseFunc(cancel))?.into_any();
        new_pair(py, &types.cause, context, cancel)
    } else {
        let cancel = Py::new(py, CancelFunc(cancel))?.into_any();
        new_pair(py, &types.plain, context, cancel)
    }
}

/// The pair for a request node derived (through the core) from `parent`,
/// whose cancel function takes a cause.
pub(crate) fn cause_pair<'py>(
    parent: &Bound<'py, Context>,
    ctx: polyctx::Context,
    cancel: polyctx::CancelCauseFunc,
) -> PyResult<Bound<'py, PyAny>> {
    pair(parent, (ctx, cancel.into()), None)
}

/// The owner of a node that holds no Python object, derived from `parent`.
pub(crate) fn derived(parent: &Bound<'_, Context>, inner: polyctx::Context) -> Context {
    Context::owner(inner, parent, None, None)
}

static BACKGROUND: PyOnceLock<Py<Context>> = PyOnceLock::new();
static TODO: PyOnceLock<Py<Context>> = PyOnceLock::new();

/// The root of every tree: never done, no deadline, no values.
#[pyfunction]
pub(crate) fn background(py: Python<'_>) -> Py<Context> {
    BACKGROUND
        .get_or_init(py, || {
            Py::new(py, Context::foreign(polyctx::Context::background())).expect("allocating a Context")
        })
        .clone_ref(py)
}

/// A placeholder root for code not yet given a context; like `background()`.
#[pyfunction]
pub(crate) fn todo(py: Python<'_>) -> Py<Context> {
    TODO.get_or_init(py, || {
        Py::new(py, Context::foreign(polyctx::Context::todo())).expect("allocating a Context")
    })
    .clone_ref(py)
}

/// A child canceled by its cancel function or when `parent` is done.
#[pyfunction]
pub(crate) fn with_cancel<'py>(parent: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let parent = parent_of(parent)?;
    let (ctx, cancel) = polyctx::with_cancel(&parent.get().inner);
    pair(parent, (ctx, cancel.into()), None)
}

/// Like `with_cancel`, but `cancel(cause)` records why.
#[pyfunction]
pub(crate) fn with_cancel_cause<'py>(parent: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let parent = parent_of(parent)?;
    let (ctx, cancel) = polyctx::with_cancel_cause(&parent.get().inner);
    pair(parent, (ctx, cancel.into()), None)
}

/// A child that is also done `seconds` from now (zero or negative: already
/// done, as in Go). `seconds` may be a `timedelta`.
#[pyfunction]
#[pyo3(signature = (parent, seconds, cause = None))]
pub(crate) fn with_timeout<'py>(
    parent: &Bound<'py, PyAny>,
    seconds: &Bound<'py, PyAny>,
    cause: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let parent = parent_of(parent)?;
    let ns = duration_ns(seconds, "seconds")?;
    let cause = cause_from_py(cause)?;
    let (ctx, cancel) = polyctx::with_timeout_ns(&parent.get().inner, ns, cause.clone());
    pair(parent, (ctx, cancel.into()), cause)
}

/// A child that is also done at `when`: a `time.monotonic()` reading
/// (asyncio's `loop.time()`), or an aware `datetime`.
#[pyfunction]
#[pyo3(signature = (parent, when, cause = None))]
pub(crate) fn with_deadline<'py>(
    parent: &Bound<'py, PyAny>,
    when: &Bound<'py, PyAny>,
    cause: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let parent = parent_of(parent)?;
    let at = deadline_ns(when)?;
    let cause = cause_from_py(cause)?;
    let (ctx, cancel) = polyctx::with_deadline_ns(&parent.get().inner, at, cause.clone());
    pair(parent, (ctx, cancel.into()), cause)
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
    let inner = cabi::with_value(&parent.get().inner, &key.get().inner, value);
    Ok(Context::owner(inner, parent, Some(value.clone().unbind()), None))
}

/// A child that keeps `parent`'s values but is never canceled.
#[pyfunction]
pub(crate) fn without_cancel(parent: &Bound<'_, PyAny>) -> PyResult<Context> {
    let parent = parent_of(parent)?;
    Ok(Context::owner(
        polyctx::without_cancel(&parent.get().inner),
        parent,
        None,
        None,
    ))
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
