//! The native half of `polyctx.wire`: the core's header codecs, trust
//! policies, extract/inject and end reasons (`polyctx::wire`), translated to
//! Python types and errors. Only conversions live here; every rule (what is
//! malformed, what a policy drops, how budgets shrink) is the core's.
//!
//! Header values arrive as `str` or `bytes`; bytes are read as Latin-1, as
//! HTTP and ASGI define them, so a non-ASCII byte stays a non-ASCII
//! character and the core's strict grammars refuse it.

use std::borrow::Cow;
use std::time::Duration;

use polyctx::clock;
use polyctx::wire::{self as core, header, EndReason, Protocol, Trust, END_REASONS};
use polyctx::Cause;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use crate::cause::{context_error_of, error_object, exception_of};
use crate::context::{cause_pair, derived, duration_ns, expect_context, type_name, Context};

// -- conversions -------------------------------------------------------------

/// A header name or value: a `str`, or `bytes` read as Latin-1.
fn text<'a>(obj: &'a Bound<'_, PyAny>, what: &str) -> PyResult<Cow<'a, str>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Cow::Owned(s.to_string_lossy().into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Owned(b.as_bytes().iter().map(|&c| char::from(c)).collect()));
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be str or bytes, not {}",
        type_name(obj)
    )))
}

/// The field values given: one `str`/`bytes`, a sequence of them, or None
/// (absent).
fn field_values(values: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if values.is_none() {
        return Ok(Vec::new());
    }
    if values.is_instance_of::<PyString>() || values.is_instance_of::<PyBytes>() {
        return Ok(vec![text(values, "a header value")?.into_owned()]);
    }
    let iter = values.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "header values must be a str, bytes or a sequence of them, not {}",
            type_name(values)
        ))
    })?;
    iter.map(|v| Ok(text(&v?, "a header value")?.into_owned())).collect()
}

/// The header names the core reads.
const READ: [&str; 6] = header::READ;

fn read_name(name: &Bound<'_, PyAny>) -> PyResult<Option<&'static str>> {
    let bytes: Cow<'_, [u8]> = if let Ok(s) = name.cast::<PyString>() {
        Cow::Owned(s.to_string_lossy().into_owned().into_bytes())
    } else if let Ok(b) = name.cast::<PyBytes>() {
        Cow::Owned(b.as_bytes().to_vec())
    } else {
        return Err(PyTypeError::new_err(format!(
            "header names must be str or bytes, not {}",
            type_name(name)
        )));
    };
    Ok(READ.iter().copied().find(|n| n.as_bytes().eq_ignore_ascii_case(&bytes)))
}

/// The inbound headers the core reads, in order: from a mapping (its
/// `items()`; a multi-valued mapping gives each field line) or from
/// `(name, value)` pairs, names and values `str` or `bytes`.
fn inbound(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    let mut take = |name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>| -> PyResult<()> {
        if let Some(n) = read_name(name)? {
            out.push((n, text(value, "header values")?.into_owned()));
        }
        Ok(())
    };
    if let Ok(d) = headers.cast::<PyDict>() {
        for (k, v) in d.iter() {
            take(&k, &v)?;
        }
        return Ok(out);
    }
    let pairs = if headers.hasattr(pyo3::intern!(headers.py(), "items"))? {
        headers.call_method0(pyo3::intern!(headers.py(), "items"))?
    } else {
        headers.clone()
    };
    let not_headers = || {
        PyTypeError::new_err(format!(
            "headers must be a mapping or an iterable of (name, value) pairs, not {}",
            type_name(headers)
        ))
    };
    for pair in pairs.try_iter().map_err(|_| not_headers())? {
        let pair = pair?;
        let is_text = pair.is_instance_of::<PyString>() || pair.is_instance_of::<PyBytes>();
        if is_text || !pair.len().is_ok_and(|n| n == 2) {
            return Err(not_headers());
        }
        take(&pair.get_item(0)?, &pair.get_item(1)?)?;
    }
    Ok(out)
}

/// Writes `out` into a list of pairs (replacing same-named entries, of
/// either case; names and values as bytes if the list's names are) or into
/// a mutable mapping (a `dict`'s differently-cased keys are replaced too;
/// other mappings are expected to compare names case-insensitively, as
/// httpx's and Starlette's do).
fn write(headers: &Bound<'_, PyAny>, out: Vec<(String, String)>) -> PyResult<()> {
    let py = headers.py();
    if let Ok(list) = headers.cast::<PyList>() {
        let as_bytes = match list.iter().next() {
            Some(first) => first.get_item(0).is_ok_and(|n| n.is_instance_of::<PyBytes>()),
            None => false,
        };
        for (name, value) in out {
            let mut i = 0;
            while i < list.len() {
                let same = list
                    .get_item(i)?
                    .get_item(0)
                    .ok()
                    .map(|n| read_name_eq(&n, &name))
                    .unwrap_or(false);
                if same {
                    list.del_item(i)?;
                } else {
                    i += 1;
                }
            }
            let pair = if as_bytes {
                PyTuple::new(
                    py,
                    [PyBytes::new(py, name.as_bytes()), PyBytes::new(py, value.as_bytes())],
                )?
            } else {
                PyTuple::new(py, [name, value])?
            };
            list.append(pair)?;
        }
        return Ok(());
    }
    if let Ok(d) = headers.cast::<PyDict>() {
        for (name, value) in out {
            let stale: Vec<_> = d.keys().iter().filter(|k| read_name_eq(k, &name)).collect();
            for k in stale {
                d.del_item(k)?;
            }
            d.set_item(name, value)?;
        }
        return Ok(());
    }
    if !headers.hasattr(pyo3::intern!(py, "__setitem__"))? {
        return Err(PyTypeError::new_err(format!(
            "headers must be a mutable mapping or a list of (name, value) pairs, not {}",
            type_name(headers)
        )));
    }
    for (name, value) in out {
        headers.set_item(name, value)?;
    }
    Ok(())
}

fn read_name_eq(obj: &Bound<'_, PyAny>, name: &str) -> bool {
    text(obj, "a header name").is_ok_and(|n| n.eq_ignore_ascii_case(name))
}

fn protocol(name: &str) -> PyResult<Protocol> {
    match name {
        "http" => Ok(Protocol::Http),
        "grpc" => Ok(Protocol::Grpc),
        "connect" => Ok(Protocol::Connect),
        _ => Err(PyValueError::new_err(format!(
            "protocol must be 'http', 'grpc' or 'connect', not {name:?}"
        ))),
    }
}

/// A Python int of nanoseconds as an i64, saturating (the formatters cap
/// long budgets and send nothing for spent ones, so only the sign matters
/// past the range).
fn nanos(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    if !obj.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "remaining_ns must be an int of nanoseconds, not {}",
            type_name(obj)
        )));
    }
    match obj.extract::<i64>() {
        Ok(ns) => Ok(ns),
        Err(_) if obj.gt(0)? => Ok(i64::MAX),
        Err(_) => Ok(i64::MIN),
    }
}

// -- errors ------------------------------------------------------------------

static MALFORMED: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn malformed_error(py: Python<'_>, message: String, header: &str, value: &str) -> PyErr {
    match MALFORMED.import(py, "polyctx._errors", "MalformedHeader") {
        Ok(ty) => match ty.call1((message, header, value)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        Err(e) => e,
    }
}

fn malformed(py: Python<'_>, e: core::Malformed) -> PyErr {
    malformed_error(py, e.to_string(), e.header, &e.value)
}

// -- codecs ------------------------------------------------------------------

/// Parses a `grpc-timeout` value into nanoseconds; None when absent.
#[pyfunction]
pub(crate) fn parse_grpc_timeout(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    core::parse_grpc_timeout(&text(value, "value")?).map_err(|e| malformed(py, e))
}

/// The `grpc-timeout` value for a remaining budget; None when nothing is left.
#[pyfunction]
pub(crate) fn format_grpc_timeout(remaining_ns: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    Ok(core::format_grpc_timeout(nanos(remaining_ns)?))
}

/// Parses a `request-timeout-ms` or `connect-timeout-ms` value into
/// nanoseconds; None when absent.
#[pyfunction]
#[pyo3(signature = (value, *, header = "request-timeout-ms"))]
pub(crate) fn parse_timeout_ms(py: Python<'_>, value: &Bound<'_, PyAny>, header: &str) -> PyResult<Option<u64>> {
    let name = match header.to_ascii_lowercase().as_str() {
        header::CONNECT_TIMEOUT_MS => header::CONNECT_TIMEOUT_MS,
        header::REQUEST_TIMEOUT_MS => header::REQUEST_TIMEOUT_MS,
        _ => {
            return Err(PyValueError::new_err(format!(
                "header must be 'request-timeout-ms' or 'connect-timeout-ms', not {header:?}"
            )))
        }
    };
    core::parse_timeout_ms(name, &text(value, "value")?).map_err(|e| malformed(py, e))
}

/// The millisecond timeout value for a remaining budget, rounded up; None
/// when nothing is left.
#[pyfunction]
pub(crate) fn format_timeout_ms(remaining_ns: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    Ok(core::format_timeout_ms(nanos(remaining_ns)?))
}

/// One hop of a distributed trace (W3C `traceparent`): immutable, hashable.
#[pyclass(frozen, eq, hash, module = "polyctx.wire", name = "TraceContext")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TraceContext(pub(crate) core::TraceContext);

#[pymethods]
impl TraceContext {
    /// A trace context from its ids, as lowercase hex (32 and 16 digits,
    /// not all zero), and its flags (0-255; `to_header()` sends the two
    /// that version 00 defines).
    #[new]
    #[pyo3(signature = (trace_id, span_id, flags = 1))]
    fn new(trace_id: &str, span_id: &str, flags: i64) -> PyResult<Self> {
        let flags =
            u8::try_from(flags).map_err(|_| PyValueError::new_err(format!("flags must be 0-255, not {flags}")))?;
        // The core's parser is the one judge of a valid id.
        let header = format!("00-{trace_id}-{span_id}-{flags:02x}");
        core::parse_traceparent(&[header]).map(TraceContext).ok_or_else(|| {
            PyValueError::new_err(format!(
                "not a valid trace context: trace_id must be 32 and span_id 16 lowercase hex digits, \
                 neither all zero (got {trace_id:?}, {span_id:?})"
            ))
        })
    }

    /// A new trace: random ids, sampled.
    #[staticmethod]
    fn new_root() -> Self {
        TraceContext(core::TraceContext::new_root())
    }

    /// The next hop of this trace: the same trace id and flags, a new span id.
    fn child(&self) -> Self {
        TraceContext(self.0.child())
    }

    #[getter]
    fn trace_id(&self) -> String {
        self.0.trace_id_hex()
    }

    #[getter]
    fn span_id(&self) -> String {
        self.0.span_id_hex()
    }

    #[getter]
    fn flags(&self) -> u8 {
        self.0.flags
    }

    #[getter]
    fn sampled(&self) -> bool {
        self.0.sampled()
    }

    /// The `traceparent` value: version 00, lowercase, flags masked to 0x03.
    fn to_header(&self) -> String {
        self.0.to_header()
    }

    fn __str__(&self) -> String {
        self.0.to_header()
    }

    fn __repr__(&self) -> String {
        format!(
            "TraceContext(trace_id='{}', span_id='{}', flags={})",
            self.0.trace_id_hex(),
            self.0.span_id_hex(),
            self.0.flags
        )
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, (String, String, u8))> {
        let tc = slf.get().0;
        Ok((slf.get_type(), (tc.trace_id_hex(), tc.span_id_hex(), tc.flags)))
    }
}

/// Parses the `traceparent` field values; None when absent, invalid, or
/// when several values differ.
#[pyfunction]
pub(crate) fn parse_traceparent(values: &Bound<'_, PyAny>) -> PyResult<Option<TraceContext>> {
    Ok(core::parse_traceparent(&field_values(values)?).map(TraceContext))
}

/// Parses the `tracestate` field values; None when the header is dropped whole.
#[pyfunction]
pub(crate) fn parse_tracestate(values: &Bound<'_, PyAny>) -> PyResult<Option<Vec<(String, String)>>> {
    Ok(core::parse_tracestate(&field_values(values)?))
}

static BAGGAGE_ENTRY: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn baggage_to_py<'py>(py: Python<'py>, baggage: &core::Baggage) -> PyResult<Bound<'py, PyDict>> {
    let entry = BAGGAGE_ENTRY.import(py, "polyctx._wiretypes", "BaggageEntry")?;
    let dict = PyDict::new(py);
    for (key, e) in baggage {
        let properties = PyTuple::new(py, e.properties.iter().map(|(k, v)| (k.as_str(), v.as_deref())))?;
        dict.set_item(key, entry.call1((e.value.as_str(), properties))?)?;
    }
    Ok(dict)
}

/// Baggage from Python: a mapping of key to a `str` value or a
/// `BaggageEntry` (or any `(value, properties)` pair), or `(key, value)` pairs.
fn baggage_from_py(entries: &Bound<'_, PyAny>) -> PyResult<core::Baggage> {
    let py = entries.py();
    let items = if entries.hasattr(pyo3::intern!(py, "items"))? {
        entries.call_method0(pyo3::intern!(py, "items"))?
    } else {
        entries.clone()
    };
    let bad = |what: &Bound<'_, PyAny>| {
        PyTypeError::new_err(format!(
            "baggage must map keys to a str or a BaggageEntry, not {}",
            type_name(what)
        ))
    };
    let mut out = core::Baggage::new();
    for item in items.try_iter().map_err(|_| bad(entries))? {
        let item = item?;
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract().map_err(|_| bad(&item))?;
        let key: String = key.extract().map_err(|_| bad(&key))?;
        let entry = if let Ok(s) = value.cast::<PyString>() {
            core::BaggageEntry::new(s.to_string_lossy())
        } else {
            let (v, props): (String, Vec<(String, Option<String>)>) = value.extract().map_err(|_| bad(&value))?;
            core::BaggageEntry {
                value: v,
                properties: props,
            }
        };
        out.push((key, entry));
    }
    Ok(out)
}

/// Parses the `baggage` field values into `{key: BaggageEntry}`, in order.
#[pyfunction]
pub(crate) fn parse_baggage<'py>(values: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    baggage_to_py(values.py(), &core::parse_baggage(&field_values(values)?))
}

/// The `baggage` value for `entries` (values percent-encoded, within the
/// limits); "" when there is nothing to send. An invalid key raises
/// `MalformedHeader`.
#[pyfunction]
pub(crate) fn format_baggage(py: Python<'_>, entries: &Bound<'_, PyAny>) -> PyResult<String> {
    let b = baggage_from_py(entries)?;
    match core::format_baggage(b.iter().map(|(k, e)| (k.as_str(), e))) {
        Ok(text) => Ok(text.unwrap_or_default()),
        Err(e) => Err(malformed_error(py, e.to_string(), header::BAGGAGE, &e.0)),
    }
}

// -- policies ----------------------------------------------------------------

/// A timeout argument in seconds: None, or a non-negative number or `timedelta`.
struct Seconds(Option<Duration>);

impl<'a, 'py> FromPyObject<'a, 'py> for Seconds {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(Seconds(None));
        }
        let ns = duration_ns(&obj, "a timeout")?;
        let ns = u64::try_from(ns).map_err(|_| PyValueError::new_err("a timeout must not be negative"))?;
        Ok(Seconds(Some(Duration::from_nanos(ns))))
    }
}

const fn secs_default(s: u64) -> Seconds {
    Seconds(Some(Duration::from_secs(s)))
}

/// How much a listener trusts its callers, or a client its destination:
/// `Policy.internal()` for peers inside the same system, `Policy.external()`
/// (the safe default) for anyone.
#[pyclass(frozen, eq, module = "polyctx.wire", name = "Policy")]
#[derive(Clone, PartialEq)]
pub(crate) struct Policy(pub(crate) core::Policy);

impl Policy {
    fn make(trust: Trust, max: Seconds, default: Seconds, allow: Vec<String>, propagate_trace: bool) -> Policy {
        Policy(core::Policy {
            trust,
            max_timeout: max.0,
            default_timeout: default.0,
            baggage_allow: allow,
            propagate_trace,
        })
    }
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

#[pymethods]
impl Policy {
    /// Peers inside the same system: budgets, traces and baggage flow as
    /// sent; optionally a clamp and a default budget (seconds).
    #[staticmethod]
    #[pyo3(
        signature = (max_timeout = Seconds(None), default_timeout = Seconds(None), *, propagate_trace = true),
        text_signature = "(max_timeout=None, default_timeout=None, *, propagate_trace=True)"
    )]
    fn internal(max_timeout: Seconds, default_timeout: Seconds, propagate_trace: bool) -> Policy {
        Policy::make(
            Trust::Internal,
            max_timeout,
            default_timeout,
            Vec::new(),
            propagate_trace,
        )
    }

    /// Anyone: inbound budgets clamped to `max_timeout` seconds,
    /// `default_timeout` when none is sent, inbound baggage dropped but for
    /// `baggage_allow`, the trace restarted (the caller's kept as a link);
    /// only the budget and `traceparent` are sent out.
    #[staticmethod]
    #[pyo3(
        signature = (max_timeout = secs_default(300), default_timeout = secs_default(30), baggage_allow = Vec::new(), *, propagate_trace = true),
        text_signature = "(max_timeout=300, default_timeout=30, baggage_allow=(), *, propagate_trace=True)"
    )]
    fn external(
        max_timeout: Seconds,
        default_timeout: Seconds,
        baggage_allow: Vec<String>,
        propagate_trace: bool,
    ) -> Policy {
        Policy::make(
            Trust::External,
            max_timeout,
            default_timeout,
            baggage_allow,
            propagate_trace,
        )
    }

    /// "internal" or "external".
    #[getter]
    fn trust(&self) -> &'static str {
        match self.0.trust {
            Trust::Internal => "internal",
            Trust::External => "external",
        }
    }

    #[getter]
    fn max_timeout(&self) -> Option<f64> {
        secs(self.0.max_timeout)
    }

    #[getter]
    fn default_timeout(&self) -> Option<f64> {
        secs(self.0.default_timeout)
    }

    #[getter]
    fn baggage_allow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.0.baggage_allow)
    }

    /// Whether polyctx reads and writes `traceparent`, `tracestate` and
    /// `baggage` (off where OpenTelemetry owns them).
    #[getter]
    fn propagate_trace(&self) -> bool {
        self.0.propagate_trace
    }

    /// This policy with trace propagation turned on or off.
    fn with_propagate_trace(&self, on: bool) -> Policy {
        let mut p = self.0.clone();
        p.propagate_trace = on;
        Policy(p)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let opt = |d: Option<Duration>| d.map_or("None".to_string(), |d| format!("{}", d.as_secs_f64()));
        let mut s = format!(
            "Policy.{}(max_timeout={}, default_timeout={}",
            self.trust(),
            opt(self.0.max_timeout),
            opt(self.0.default_timeout)
        );
        if self.0.trust == Trust::External {
            s.push_str(&format!(", baggage_allow={}", self.baggage_allow(py)?.repr()?));
        }
        if !self.0.propagate_trace {
            s.push_str(", propagate_trace=False");
        }
        s.push(')');
        Ok(s)
    }
}

fn policy_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<&'a Policy> {
    obj.cast::<Policy>()
        .map(|p| p.get())
        .map_err(|_| PyTypeError::new_err(format!("policy must be a polyctx.wire.Policy, not {}", type_name(obj))))
}

// -- extract / inject --------------------------------------------------------

/// The request context for inbound `headers`, derived from `parent`, as a
/// `(ctx, cancel)` pair whose `cancel(cause)` records why the request ended.
/// The budget counts from `arrived_ns` (`time.monotonic_ns()` when the
/// headers arrived; now by default). A malformed timeout header of
/// `protocol`'s own raises `MalformedHeader`.
#[pyfunction]
#[pyo3(signature = (parent, headers, policy, *, protocol = "http", arrived_ns = None))]
pub(crate) fn extract<'py>(
    parent: &Bound<'py, PyAny>,
    headers: &Bound<'py, PyAny>,
    policy: &Bound<'py, PyAny>,
    protocol: &str,
    arrived_ns: Option<u64>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = parent.py();
    let parent = expect_context(parent, "parent")?;
    let policy = policy_of(policy)?;
    let protocol = self::protocol(protocol)?;
    let headers = inbound(headers)?;
    // A cause-taking node above the core's request node, so that the
    // request can end with a reason (client disconnected, ...).
    let (request, cancel) = polyctx::with_cancel_cause(&parent.get().inner);
    let arrived = arrived_ns.unwrap_or_else(clock::now_ns);
    let (ctx, _done_with_request) =
        core::extract_at(&request, &headers[..], &policy.0, protocol, arrived).map_err(|e| {
            cancel.cancel(None);
            malformed(py, e)
        })?;
    cause_pair(parent, ctx, cancel)
}

/// Writes the budget left in `ctx` (in `protocol`'s timeout header) and,
/// as `policy` allows, its trace context and baggage into `headers`. A
/// context already done or out of time raises its error and writes nothing.
#[pyfunction]
#[pyo3(signature = (ctx, headers, policy, *, protocol = "http"))]
pub(crate) fn inject(
    ctx: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    policy: &Bound<'_, PyAny>,
    protocol: &str,
) -> PyResult<()> {
    let py = ctx.py();
    let inner = &expect_context(ctx, "ctx")?.get().inner;
    let policy = policy_of(policy)?;
    let protocol = self::protocol(protocol)?;
    let mut out: Vec<(String, String)> = Vec::new();
    if let Err(e) = core::inject(inner, &mut out, &policy.0, protocol) {
        // The context's own error, with its cause; a deadline passed before
        // the timer fired is a plain DeadlineExceeded.
        let err = match crate::cause::err_of(py, inner)? {
            Some(err) => err,
            None => error_object(py, e)?,
        };
        return Err(PyErr::from_value(err));
    }
    write(headers, out)
}

/// The trace context `ctx` carries, if any.
#[pyfunction]
pub(crate) fn trace_context(ctx: &Bound<'_, PyAny>) -> PyResult<Option<TraceContext>> {
    let inner = &expect_context(ctx, "ctx")?.get().inner;
    Ok(core::propagation(inner).and_then(|p| p.trace).map(TraceContext))
}

/// The caller's trace context when an external listener restarted the trace.
#[pyfunction]
pub(crate) fn trace_link(ctx: &Bound<'_, PyAny>) -> PyResult<Option<TraceContext>> {
    let inner = &expect_context(ctx, "ctx")?.get().inner;
    Ok(core::propagation(inner).and_then(|p| p.link).map(TraceContext))
}

/// The `tracestate` members `ctx` carries.
#[pyfunction]
pub(crate) fn tracestate(ctx: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let inner = &expect_context(ctx, "ctx")?.get().inner;
    Ok(core::propagation(inner)
        .map(|p| p.tracestate.clone())
        .unwrap_or_default())
}

/// The baggage `ctx` carries, as `{key: BaggageEntry}`.
#[pyfunction]
pub(crate) fn baggage<'py>(ctx: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let inner = &expect_context(ctx, "ctx")?.get().inner;
    let empty = core::Baggage::new();
    baggage_to_py(ctx.py(), core::propagation(inner).map_or(&empty, |p| &p.baggage))
}

/// A child of `ctx` whose trace context is `trace` (baggage kept).
#[pyfunction]
pub(crate) fn with_trace_context(ctx: &Bound<'_, PyAny>, trace: &Bound<'_, PyAny>) -> PyResult<Context> {
    let parent = expect_context(ctx, "ctx")?;
    let trace = trace.cast::<TraceContext>().map_err(|_| {
        PyTypeError::new_err(format!(
            "trace must be a polyctx.wire.TraceContext, not {}",
            type_name(trace)
        ))
    })?;
    Ok(derived(
        parent,
        core::with_trace_context(&parent.get().inner, trace.get().0),
    ))
}

/// A child of `ctx` whose baggage is `entries` (trace context kept). Keys
/// must be HTTP tokens.
#[pyfunction]
pub(crate) fn with_baggage(ctx: &Bound<'_, PyAny>, entries: &Bound<'_, PyAny>) -> PyResult<Context> {
    let parent = expect_context(ctx, "ctx")?;
    let b = baggage_from_py(entries)?;
    for (k, e) in &b {
        for name in std::iter::once(k).chain(e.properties.iter().map(|(p, _)| p)) {
            if !core::is_token(name) {
                return Err(PyValueError::new_err(core::InvalidKey(name.clone()).to_string()));
            }
        }
    }
    Ok(derived(parent, core::with_baggage(&parent.get().inner, b)))
}

// -- end reasons ---------------------------------------------------------------

/// The core's table: `(name, grpc code, connect code, http status)` per reason.
#[pyfunction]
pub(crate) fn end_reasons() -> Vec<(&'static str, u32, &'static str, u16)> {
    END_REASONS
        .iter()
        .map(|r| (r.name(), r.grpc_code(), r.connect_code(), r.http_status()))
        .collect()
}

/// The message of the reason named `name`.
#[pyfunction]
pub(crate) fn end_reason_message(name: &str) -> PyResult<String> {
    EndReason::from_name(name)
        .map(|r| r.to_string())
        .ok_or_else(|| PyValueError::new_err(format!("no end reason named {name:?}")))
}

/// Why `ctx` ended, by the reason's name; None while it is live.
#[pyfunction]
pub(crate) fn end_reason(ctx: &Bound<'_, PyAny>) -> PyResult<Option<&'static str>> {
    let inner = &expect_context(ctx, "ctx")?.get().inner;
    let reason = EndReason::of(inner);
    if reason == Some(EndReason::Canceled) {
        // A `DeadlineExceeded()` given from Python is the core's
        // context-error cause in Python's clothes.
        if let Some(exc) = polyctx::cause(inner).as_ref().and_then(exception_of) {
            if let Some(polyctx::Error::DeadlineExceeded) = context_error_of(exc.bind(ctx.py()))? {
                return Ok(Some(EndReason::DeadlineExceeded.name()));
            }
        }
    }
    Ok(reason.map(EndReason::name))
}

/// The exception classes of the reasons that are not context errors, in
/// `polyctx._errors`, by class name.
const REASON_CLASSES: [(EndReason, &str); 4] = [
    (EndReason::ClientDisconnected, "ClientDisconnected"),
    (EndReason::PeerCanceled, "PeerCanceled"),
    (EndReason::ServerShutdown, "ServerShutdown"),
    (EndReason::RequestFinished, "RequestFinished"),
];

static REASON_TYPES: PyOnceLock<[Py<PyType>; 4]> = PyOnceLock::new();

fn reason_types(py: Python<'_>) -> PyResult<&[Py<PyType>; 4]> {
    REASON_TYPES.get_or_try_init(py, || {
        let m = py.import("polyctx._errors")?;
        let get =
            |i: usize| -> PyResult<Py<PyType>> { Ok(m.getattr(REASON_CLASSES[i].1)?.cast_into::<PyType>()?.unbind()) };
        Ok([get(0)?, get(1)?, get(2)?, get(3)?])
    })
}

/// The core's cause for an instance of exactly one of the end-reason
/// classes, so that every language reads the reason (`EndReason::of`).
pub(crate) fn reason_cause(exc: &Bound<'_, PyAny>) -> PyResult<Option<Cause>> {
    let ty = exc.get_type();
    let types = reason_types(exc.py())?;
    Ok(types.iter().position(|t| ty.is(t)).map(|i| REASON_CLASSES[i].0.cause()))
}

/// A new instance of the end-reason class for a core cause that is one.
pub(crate) fn reason_exception<'py>(py: Python<'py>, cause: &Cause) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(reason) = cause.downcast_ref::<EndReason>() else {
        return Ok(None);
    };
    let Some(i) = REASON_CLASSES.iter().position(|(r, _)| r == reason) else {
        return Ok(None);
    };
    Ok(Some(reason_types(py)?[i].bind(py).call0()?))
}
