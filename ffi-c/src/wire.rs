//! Across services from C: trust policies, extract and inject over a header
//! carrier (a callback or a name/value array), trace context and baggage on
//! contexts, and why a request ended. The rules are `polyctx::wire`'s; this
//! module converts types, errors and ownership.
// A C signature has the arguments C callers need, however many.
#![allow(clippy::too_many_arguments)]

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;
use std::sync::LazyLock;
use std::time::Duration;

use polyctx::clock;
use polyctx::wire::{self, EndReason, HeaderSink, HeaderSource, Policy, Protocol};

use crate::codec::{c_slice, c_text, ctx_trace_context_t, trace_from_c, BaggageList, NulStr, Tracestate};
use crate::handle::{
    self, ctx_baggage_t, ctx_cancel_t, ctx_headers_t, ctx_t, ctx_tracestate_t, ctx_wire_policy_t, ctx_wire_values_t,
};
use crate::status::{arg, boundary, ctx_status_t, put};

/// Which protocol a request speaks: decides the timeout header polyctx
/// sends, and which inbound timeout header is the protocol's own (a
/// malformed one of those is an error; the others are only hints). Passed
/// as an `int`, so that any number is safe: others give `CTX_EINVAL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_wire_protocol_t {
    /// gRPC over HTTP/2: `grpc-timeout`. A malformed one is `INTERNAL`.
    CTX_PROTOCOL_GRPC = 1,
    /// Connect: `connect-timeout-ms`. A malformed one is `invalid_argument`.
    CTX_PROTOCOL_CONNECT = 2,
    /// Plain HTTP: `request-timeout-ms`. A malformed one is a 400.
    CTX_PROTOCOL_HTTP = 3,
}

/// The two starting points of a `ctx_wire_policy_t`. Passed as an `int`;
/// other numbers give `CTX_EINVAL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_wire_trust_t {
    /// Peers inside the same system: budgets, traces and baggage flow as
    /// sent; no maximum, no default timeout.
    CTX_TRUST_INTERNAL = 1,
    /// Anyone (the safe default for a listener): inbound budgets clamped to
    /// 300 s, 30 s when none is sent; the trace restarts, keeping the
    /// caller's as a link (`ctx_wire_trace_link`); inbound baggage dropped
    /// but for an allow-list; nothing but the budget and `traceparent` sent.
    CTX_TRUST_EXTERNAL = 2,
}

/// Why a request's context ended, the same in every language, each mapped
/// once to a gRPC code, a Connect code and an HTTP status
/// (`ctx_end_reason_info`). Passed as an `int`; other numbers give
/// `CTX_EINVAL`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ctx_end_reason_t {
    /// Canceled by its own code (Go's `Canceled`): gRPC 1, "canceled", 499.
    CTX_END_CANCELED = 1,
    /// The budget ran out (Go's `DeadlineExceeded`): gRPC 4,
    /// "deadline_exceeded", 504.
    CTX_END_DEADLINE_EXCEEDED = 2,
    /// The client went away before the response was complete: gRPC 1,
    /// "canceled", 499.
    CTX_END_CLIENT_DISCONNECTED = 3,
    /// The peer canceled the call (a gRPC `RST_STREAM` with `CANCEL`, say):
    /// gRPC 1, "canceled", 499.
    CTX_END_PEER_CANCELED = 4,
    /// The server is shutting down: gRPC 14, "unavailable", 503.
    CTX_END_SERVER_SHUTDOWN = 5,
    /// The response is complete; nothing more will be done for it: gRPC 1,
    /// "canceled", 499.
    CTX_END_REQUEST_FINISHED = 6,
}

/// An end reason's names and codes, from the one table every language uses.
/// The strings are static: never free them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ctx_end_reason_info_t {
    /// A stable lowercase name, the same in every language ("client_disconnected").
    pub name: *const c_char,
    /// The cause's text, as `ctx_cause` reports it ("client disconnected").
    pub message: *const c_char,
    /// The gRPC status code (`CANCELLED` 1, `DEADLINE_EXCEEDED` 4, `UNAVAILABLE` 14).
    pub grpc_code: u32,
    /// The Connect error code ("canceled", "deadline_exceeded", "unavailable").
    pub connect_code: *const c_char,
    /// The HTTP status: 504 for a spent budget, 503 for shutdown, and the
    /// de facto 499 ("client closed request") for the rest.
    pub http_status: u16,
}

/// One header: a name (compared case-insensitively) and a value, both
/// NUL-terminated. `ctx_wire_extract` reads an array of them;
/// `ctx_headers_items` returns one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ctx_header_t {
    /// The field name, such as "grpc-timeout".
    pub name: *const c_char,
    /// One field value, as received or to send.
    pub value: *const c_char,
}

/// The extract callback: put every value of the header `name` (lowercase,
/// NUL-terminated; compare it case-insensitively with yours) into `values`,
/// in the order received, with `ctx_wire_values_add`; add nothing if there
/// is none. Called on the thread calling `ctx_wire_extract_cb*`, before it
/// returns, once for each header polyctx reads. It may call ctx_ functions
/// but must not keep `values` or `name`.
pub type ctx_wire_get_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, name: *const c_char, values: *mut ctx_wire_values_t)>;

/// The inject callback: set the header `name` (lowercase) to `value`,
/// replacing any value it had; both are NUL-terminated and valid only during
/// the call (copy them). Called on the thread calling `ctx_wire_inject_cb`,
/// before it returns. If it cannot store the header, it should note that in
/// `userdata` and the request not be sent. It may call ctx_ functions.
pub type ctx_wire_set_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, name: *const c_char, value: *const c_char)>;

fn protocol_from_c(protocol: c_int) -> Option<Protocol> {
    use ctx_wire_protocol_t::*;
    [
        (CTX_PROTOCOL_GRPC, Protocol::Grpc),
        (CTX_PROTOCOL_CONNECT, Protocol::Connect),
        (CTX_PROTOCOL_HTTP, Protocol::Http),
    ]
    .into_iter()
    .find(|(c, _)| *c as c_int == protocol)
    .map(|(_, p)| p)
}

fn reason_to_c(reason: EndReason) -> ctx_end_reason_t {
    use ctx_end_reason_t::*;
    match reason {
        EndReason::Canceled => CTX_END_CANCELED,
        EndReason::DeadlineExceeded => CTX_END_DEADLINE_EXCEEDED,
        EndReason::ClientDisconnected => CTX_END_CLIENT_DISCONNECTED,
        EndReason::PeerCanceled => CTX_END_PEER_CANCELED,
        EndReason::ServerShutdown => CTX_END_SERVER_SHUTDOWN,
        EndReason::RequestFinished => CTX_END_REQUEST_FINISHED,
    }
}

fn reason_from_c(reason: c_int) -> Option<EndReason> {
    wire::END_REASONS
        .into_iter()
        .find(|&r| reason_to_c(r) as c_int == reason)
}

/// The header names polyctx reads and writes (the core's `header::READ`,
/// which are also every name it writes), as static C strings.
static HEADER_NAMES: LazyLock<Vec<CString>> = LazyLock::new(|| {
    wire::header::READ
        .into_iter()
        .map(|name| CString::new(name).expect("header names have no NUL"))
        .collect()
});

/// `name` as a static C string, if it is one of the core's header names.
fn static_header_name(name: &str) -> Option<&'static CStr> {
    HEADER_NAMES
        .iter()
        .find(|n| n.as_bytes() == name.as_bytes())
        .map(CString::as_c_str)
}

/// `name` as a C string: static for the core's names, else a new one.
fn header_name(name: &str) -> Cow<'static, CStr> {
    match static_header_name(name) {
        Some(n) => n.into(),
        None => CString::new(name).unwrap_or_default().into(),
    }
}

// Policies ------------------------------------------------------------------

/// Makes a policy at `*out` from one of the two starting points (a
/// `ctx_wire_trust_t`): `CTX_TRUST_INTERNAL` (no maximum, no default
/// timeout) or `CTX_TRUST_EXTERNAL` (maximum 300 s, default 30 s, no inbound
/// baggage); both propagate trace context. Adjust it with the
/// `ctx_wire_policy_*` setters before sharing it.
///
/// Inbound headers are never an identity or authorization input: a header
/// says what its sender claims, nothing more. An external policy bounds what
/// an untrusted caller can make a service do; use it for every listener
/// that strangers reach.
///
/// On `CTX_OK`, release `*out` with `ctx_wire_policy_release`. Errors:
/// `CTX_EINVAL` if `out` is NULL or `trust` is not a `ctx_wire_trust_t`.
/// Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_policy_new(trust: c_int, out: *mut *mut ctx_wire_policy_t) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        let policy = match trust {
            t if t == ctx_wire_trust_t::CTX_TRUST_INTERNAL as c_int => Policy::internal(),
            t if t == ctx_wire_trust_t::CTX_TRUST_EXTERNAL as c_int => Policy::external(),
            _ => return ctx_status_t::CTX_EINVAL,
        };
        put(out, handle::box_into_raw(policy));
        ctx_status_t::CTX_OK
    })
}

/// A policy to change: the setters' shared body.
fn with_policy(policy: *mut ctx_wire_policy_t, change: impl FnOnce(&mut Policy) -> ctx_status_t) -> ctx_status_t {
    let policy = arg!(policy);
    // SAFETY: the caller owns `policy` and nobody uses it meanwhile (header contract).
    change(unsafe { handle::box_borrow_mut(policy) })
}

/// A policy's duration from C: negative is none.
fn duration_from_c(ns: i64) -> Option<Duration> {
    u64::try_from(ns).ok().map(Duration::from_nanos)
}

/// Inbound budgets longer than `max_ns` nanoseconds are cut to it; a
/// negative `max_ns` removes the maximum (0 makes every request arrive
/// already expired). Errors: `CTX_EINVAL` if `policy` is NULL. Threads: no
/// other use of `policy` meanwhile.
#[no_mangle]
pub extern "C" fn ctx_wire_policy_set_max_timeout(policy: *mut ctx_wire_policy_t, max_ns: i64) -> ctx_status_t {
    boundary(|| {
        with_policy(policy, |p| {
            p.max_timeout = duration_from_c(max_ns);
            ctx_status_t::CTX_OK
        })
    })
}

/// The budget of a request that sent none, in nanoseconds (the maximum
/// still applies); negative: none, so such a request has only its parent's
/// deadline. Errors and threads as `ctx_wire_policy_set_max_timeout`.
#[no_mangle]
pub extern "C" fn ctx_wire_policy_set_default_timeout(policy: *mut ctx_wire_policy_t, default_ns: i64) -> ctx_status_t {
    boundary(|| {
        with_policy(policy, |p| {
            p.default_timeout = duration_from_c(default_ns);
            ctx_status_t::CTX_OK
        })
    })
}

/// Adds `key` (copied; compared exactly) to the inbound baggage keys an
/// external policy keeps; internal policies keep all. Errors:
/// `CTX_EMALFORMED` if `key` is not an HTTP token (no baggage key could
/// match it); `CTX_EINVAL` if a pointer is NULL. Threads: no other use of
/// `policy` meanwhile.
#[no_mangle]
pub extern "C" fn ctx_wire_policy_allow_baggage(policy: *mut ctx_wire_policy_t, key: *const c_char) -> ctx_status_t {
    boundary(|| {
        let key = arg!(key);
        with_policy(policy, |p| {
            // SAFETY: `key` is a C string (header contract).
            let key = unsafe { c_text(key) };
            if !wire::is_token(&key) {
                return ctx_status_t::CTX_EMALFORMED;
            }
            p.baggage_allow.push(key.into_owned());
            ctx_status_t::CTX_OK
        })
    })
}

/// Whether extract and inject read and write `traceparent`, `tracestate`
/// and `baggage` at all (on by default). Turn it off where OpenTelemetry
/// owns those headers: two writers of `traceparent` break traces. Budgets
/// flow either way. Errors and threads as `ctx_wire_policy_set_max_timeout`.
#[no_mangle]
pub extern "C" fn ctx_wire_policy_set_propagate_trace(policy: *mut ctx_wire_policy_t, on: bool) -> ctx_status_t {
    boundary(|| {
        with_policy(policy, |p| {
            p.propagate_trace = on;
            ctx_status_t::CTX_OK
        })
    })
}

/// Frees `policy`. NULL is ignored; releasing twice is undefined behaviour.
/// Threads: any, once no other thread uses it.
#[no_mangle]
pub extern "C" fn ctx_wire_policy_release(policy: *mut ctx_wire_policy_t) {
    boundary(|| {
        let policy = arg!(policy);
        // SAFETY: the caller gives up the policy it owns.
        drop(unsafe { handle::box_from_raw(policy) });
    })
}

// Extract -------------------------------------------------------------------

/// What a `ctx_wire_values_t` collects: the values of one header.
pub(crate) struct Values(Vec<String>);

/// Inbound headers read through a `ctx_wire_get_fn`, asked for lazily (only
/// the headers the core reads) and kept until the extract returns.
struct CallbackSource {
    get: unsafe extern "C" fn(*mut c_void, *const c_char, *mut ctx_wire_values_t),
    userdata: *mut c_void,
    // Only ever pushed to, so the text of each box stays put while `&self`
    // lives, whatever the vector does.
    kept: RefCell<Vec<Box<str>>>,
}

impl HeaderSource for CallbackSource {
    fn values(&self, name: &str) -> Vec<&str> {
        let mut got = Values(Vec::new());
        let name = header_name(name);
        // SAFETY: the header's contract for `get` and `userdata`; `got`
        // outlives the call, and the callback does not keep it.
        unsafe { (self.get)(self.userdata, name.as_ptr(), handle::borrow_into_raw(&mut got)) };
        let mut kept = self.kept.borrow_mut();
        let first = kept.len();
        kept.extend(got.0.into_iter().map(String::into_boxed_str));
        kept[first..]
            .iter()
            .map(|text| {
                let text: *const str = &**text;
                // SAFETY: boxes in `kept` are never dropped, moved out or
                // changed before `self` is, so their text outlives `&self`.
                unsafe { &*text }
            })
            .collect()
    }
}

/// Adds one value (the `len` bytes at `value`, copied; invalid UTF-8 becomes
/// U+FFFD, which no header grammar allows) to the header a `ctx_wire_get_fn`
/// was asked for. `value` need not be NUL-terminated, and may be NULL only
/// when `len` is 0. Call it once per field line, in the order received.
///
/// Errors: `CTX_EINVAL` if `values` is NULL, or `value` is NULL with
/// `len > 0`; `CTX_ERANGE` if `len` exceeds `PTRDIFF_MAX`. Threads: only
/// inside the callback, on its thread.
#[no_mangle]
pub extern "C" fn ctx_wire_values_add(
    values: *mut ctx_wire_values_t,
    value: *const c_char,
    len: usize,
) -> ctx_status_t {
    boundary(|| {
        let values = arg!(values);
        // SAFETY: `value` holds `len` readable bytes (header contract).
        let bytes = match unsafe { c_slice(value.cast::<u8>(), len) } {
            Ok(b) => b,
            Err(status) => return status,
        };
        // SAFETY: `values` is the live collector handed to the callback.
        unsafe { handle::box_borrow_mut(values) }
            .0
            .push(String::from_utf8_lossy(bytes).into_owned());
        ctx_status_t::CTX_OK
    })
}

/// The pointer arguments every extract checks, checked.
struct ExtractOut {
    ctx: NonNull<*mut ctx_t>,
    cancel: NonNull<*mut ctx_cancel_t>,
    bad_header: *mut *const c_char,
}

/// The shared body of the extracts, once every argument is checked.
fn extract<H: HeaderSource + ?Sized>(
    parent: NonNull<ctx_t>,
    headers: &H,
    policy: NonNull<ctx_wire_policy_t>,
    protocol: Protocol,
    arrived_ns: Option<i64>,
    out: ExtractOut,
) -> ctx_status_t {
    // SAFETY: the caller owns `parent` and `policy` (header contract).
    let (parent, policy) = unsafe { (handle::ctx_borrow(parent), handle::box_borrow(policy)) };
    let result = match arrived_ns {
        None => wire::extract(&parent, headers, policy, protocol),
        Some(ns) => wire::extract_at(&parent, headers, policy, protocol, clock::from_signed(ns)),
    };
    match result {
        Ok((ctx, cancel)) => {
            put(out.ctx, crate::debug::new_c_context(ctx));
            put(out.cancel, handle::cancel_into_raw(cancel.into()));
            ctx_status_t::CTX_OK
        }
        Err(malformed) => {
            if let Some(bad) = NonNull::new(out.bad_header) {
                // The core names one of its own timeout headers.
                put(bad, static_header_name(malformed.header).unwrap_or(c"").as_ptr());
            }
            ctx_status_t::CTX_EMALFORMED
        }
    }
}

/// Checks the pointer arguments of an extract and runs it over an array.
fn extract_array(
    parent: *const ctx_t,
    headers: *const ctx_header_t,
    n_headers: usize,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    arrived_ns: Option<i64>,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    bad_header: *mut *const c_char,
) -> ctx_status_t {
    let (parent, policy, ctx_out, cancel_out) = (arg!(parent), arg!(policy), arg!(ctx_out), arg!(cancel_out));
    let Some(protocol) = protocol_from_c(protocol) else {
        return ctx_status_t::CTX_EINVAL;
    };
    // SAFETY: `headers` holds `n_headers` headers (header contract).
    let headers = match unsafe { c_slice(headers, n_headers) } {
        Ok(h) => h,
        Err(status) => return status,
    };
    let mut pairs = Vec::with_capacity(headers.len());
    for h in headers {
        let (Some(name), Some(value)) = (NonNull::new(h.name.cast_mut()), NonNull::new(h.value.cast_mut())) else {
            return ctx_status_t::CTX_EINVAL;
        };
        // SAFETY: both are C strings that outlive this call (header contract).
        pairs.push(unsafe { (c_text(name), c_text(value)) });
    }
    let out = ExtractOut {
        ctx: ctx_out,
        cancel: cancel_out,
        bad_header,
    };
    extract(parent, &pairs[..], policy, protocol, arrived_ns, out)
}

/// Checks the pointer arguments of an extract and runs it over a callback.
fn extract_callback(
    parent: *const ctx_t,
    get: ctx_wire_get_fn,
    userdata: *mut c_void,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    arrived_ns: Option<i64>,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    bad_header: *mut *const c_char,
) -> ctx_status_t {
    let (parent, get, policy) = (arg!(parent), arg!(get), arg!(policy));
    let (ctx_out, cancel_out) = (arg!(ctx_out), arg!(cancel_out));
    let Some(protocol) = protocol_from_c(protocol) else {
        return ctx_status_t::CTX_EINVAL;
    };
    let source = CallbackSource {
        get,
        userdata,
        kept: RefCell::new(Vec::new()),
    };
    let out = ExtractOut {
        ctx: ctx_out,
        cancel: cancel_out,
        bad_header,
    };
    extract(parent, &source, policy, protocol, arrived_ns, out)
}

/// The request context for inbound headers: a child of `parent` (a
/// connection's or server's context, or `ctx_background()`) that is done
/// when `parent` is, when its cancel handle is used, or when the budget the
/// caller sent runs out, counted from now. Use `ctx_wire_extract_at` to
/// count from the moment the headers arrived, so that the time this hop
/// spent before the call comes off the budget too.
///
/// `headers` is an array of `n_headers` name/value pairs (names compared
/// case-insensitively; the values of a name repeated are combined in
/// order); it may be NULL when `n_headers` is 0. What `policy` and the
/// `protocol` (a `ctx_wire_protocol_t`) decide:
/// - The budget: the shortest valid one of `grpc-timeout`,
///   `connect-timeout-ms` and `request-timeout-ms`, else the policy's
///   default; cut to the policy's maximum; it only ever shortens `parent`'s.
///   0 (`0n`) gives a context already done with `CTX_ERR_DEADLINE_EXCEEDED`.
/// - A malformed timeout header of the protocol's own is an error (answer
///   gRPC `INTERNAL`, Connect `invalid_argument`, HTTP 400); one of another
///   protocol is ignored.
/// - Unless the policy turned trace propagation off: `traceparent`,
///   `tracestate` and `baggage`, read with `ctx_wire_trace_context`,
///   `ctx_wire_tracestate` and `ctx_wire_baggage`. An internal policy keeps
///   the caller's trace (this hop gets a new span id); an external one
///   starts a new trace, keeping the caller's as `ctx_wire_trace_link`, and
///   only the allowed baggage.
///
/// Headers are claims of the sender, never identity or authorization.
///
/// On `CTX_OK`, `*ctx_out` and `*cancel_out` each own one reference, as
/// from `ctx_with_cancel_cause`: release them with
/// `ctx_cancel_and_release` when the request is over. The cancel handle
/// takes a reason (`ctx_cancel_reason`) or a cause.
///
/// Returns `CTX_EMALFORMED` (writing neither) for a malformed timeout
/// header of the protocol's own, and then sets `*bad_header` (unless it is
/// NULL) to its name, a static lowercase string. Errors: `CTX_EINVAL` if
/// `parent`, `policy`, `ctx_out`, `cancel_out` or a name or value is NULL,
/// or `protocol` is not a `ctx_wire_protocol_t`; `CTX_ERANGE` for an
/// impossible `n_headers`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_extract(
    parent: *const ctx_t,
    headers: *const ctx_header_t,
    n_headers: usize,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    bad_header: *mut *const c_char,
) -> ctx_status_t {
    boundary(|| {
        extract_array(
            parent, headers, n_headers, policy, protocol, None, ctx_out, cancel_out, bad_header,
        )
    })
}

/// `ctx_wire_extract`, with the budget counted from `arrived_ns`, the
/// `ctx_now_ns()` time the headers arrived (read it as the request comes
/// in): a caller that sent 1000 ms, extracted 120 ms after arrival, leaves
/// 880 ms. Negative times count as 0 (long past).
#[no_mangle]
pub extern "C" fn ctx_wire_extract_at(
    parent: *const ctx_t,
    headers: *const ctx_header_t,
    n_headers: usize,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    arrived_ns: i64,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    bad_header: *mut *const c_char,
) -> ctx_status_t {
    boundary(|| {
        extract_array(
            parent,
            headers,
            n_headers,
            policy,
            protocol,
            Some(arrived_ns),
            ctx_out,
            cancel_out,
            bad_header,
        )
    })
}

/// `ctx_wire_extract` over a callback carrier: polyctx asks `get` for each
/// header it reads (see `ctx_wire_get_fn`), passing `userdata` through, so
/// that headers stay in your own structure (an HTTP parser's, a gRPC
/// library's metadata). Errors: `CTX_EINVAL` also if `get` is NULL;
/// `userdata` may be anything.
#[no_mangle]
pub extern "C" fn ctx_wire_extract_cb(
    parent: *const ctx_t,
    get: ctx_wire_get_fn,
    userdata: *mut c_void,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    bad_header: *mut *const c_char,
) -> ctx_status_t {
    boundary(|| {
        extract_callback(
            parent, get, userdata, policy, protocol, None, ctx_out, cancel_out, bad_header,
        )
    })
}

/// `ctx_wire_extract_cb` with the budget counted from `arrived_ns`, as
/// `ctx_wire_extract_at` counts it.
#[no_mangle]
pub extern "C" fn ctx_wire_extract_cb_at(
    parent: *const ctx_t,
    get: ctx_wire_get_fn,
    userdata: *mut c_void,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    arrived_ns: i64,
    ctx_out: *mut *mut ctx_t,
    cancel_out: *mut *mut ctx_cancel_t,
    bad_header: *mut *const c_char,
) -> ctx_status_t {
    boundary(|| {
        extract_callback(
            parent,
            get,
            userdata,
            policy,
            protocol,
            Some(arrived_ns),
            ctx_out,
            cancel_out,
            bad_header,
        )
    })
}

// Inject --------------------------------------------------------------------

/// What a `ctx_headers_t` owns: the array C reads, NULL-terminated, and the
/// strings it points to.
pub(crate) struct HeaderList {
    items: Vec<ctx_header_t>,
    _text: Vec<NulStr>,
}

impl HeaderList {
    fn new(pairs: Vec<(String, String)>) -> HeaderList {
        let text: Vec<NulStr> = pairs
            .iter()
            .flat_map(|(name, value)| [NulStr::new(name), NulStr::new(value)])
            .collect();
        // The strings' bytes stay where they are when `text` moves.
        let mut items: Vec<ctx_header_t> = text
            .chunks(2)
            .map(|pair| ctx_header_t {
                name: pair[0].as_ptr(),
                value: pair[1].as_ptr(),
            })
            .collect();
        items.push(ctx_header_t {
            name: std::ptr::null(),
            value: std::ptr::null(),
        });
        HeaderList { items, _text: text }
    }
}

/// Outbound headers written through a `ctx_wire_set_fn`.
struct CallbackSink {
    set: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char),
    userdata: *mut c_void,
}

impl HeaderSink for CallbackSink {
    fn set(&mut self, name: &str, value: String) {
        let name = header_name(name);
        // Every value polyctx sends is encoded text without a NUL.
        let value = CString::new(value).expect("header values have no NUL");
        // SAFETY: the header's contract for `set` and `userdata`; both
        // strings outlive the call.
        unsafe { (self.set)(self.userdata, name.as_ptr(), value.as_ptr()) };
    }
}

fn inject<S: HeaderSink + ?Sized>(
    ctx: NonNull<ctx_t>,
    policy: NonNull<ctx_wire_policy_t>,
    protocol: c_int,
    headers: &mut S,
) -> ctx_status_t {
    let Some(protocol) = protocol_from_c(protocol) else {
        return ctx_status_t::CTX_EINVAL;
    };
    // SAFETY: the caller owns `ctx` and `policy` (header contract).
    let (ctx, policy) = unsafe { (handle::ctx_borrow(ctx), handle::box_borrow(policy)) };
    match wire::inject(&ctx, headers, policy, protocol) {
        Ok(()) => ctx_status_t::CTX_OK,
        Err(polyctx::Error::Canceled) => ctx_status_t::CTX_ECANCELED,
        Err(polyctx::Error::DeadlineExceeded) => ctx_status_t::CTX_EDEADLINE,
    }
}

/// Writes what `ctx` carries into the headers of an outbound call to a
/// destination trusted as `policy` says, into a new list at `*out`: the
/// remaining budget in the `protocol`'s timeout header (rounded up, capped
/// at 2,147,483 s; none if `ctx` has no deadline), and unless the policy
/// turned trace propagation off, `traceparent` (and, for internal
/// destinations only, `tracestate` and `baggage`). Read the list with
/// `ctx_headers_items`; release it with `ctx_headers_release`.
///
/// Fails locally, writing nothing, when the call would fail anyway:
/// `CTX_EDEADLINE` when no time is left (even if the deadline's timer has
/// not fired yet), `CTX_ECANCELED` when `ctx` is canceled. Answer those as
/// the call's own failure (deadline exceeded, canceled); send nothing.
///
/// Errors: `CTX_EINVAL` if a pointer is NULL or `protocol` is not a
/// `ctx_wire_protocol_t`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_inject(
    ctx: *const ctx_t,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    out: *mut *mut ctx_headers_t,
) -> ctx_status_t {
    boundary(|| {
        let (ctx, policy, out) = (arg!(ctx), arg!(policy), arg!(out));
        let mut pairs: Vec<(String, String)> = Vec::new();
        let status = inject(ctx, policy, protocol, &mut pairs);
        if status == ctx_status_t::CTX_OK {
            put(out, handle::box_into_raw(HeaderList::new(pairs)));
        }
        status
    })
}

/// `ctx_wire_inject` over a callback carrier: each header is given to `set`
/// (see `ctx_wire_set_fn`) with `userdata`, straight into your own
/// structure. On `CTX_EDEADLINE` and `CTX_ECANCELED`, `set` was not called.
/// Errors: `CTX_EINVAL` also if `set` is NULL.
#[no_mangle]
pub extern "C" fn ctx_wire_inject_cb(
    ctx: *const ctx_t,
    policy: *const ctx_wire_policy_t,
    protocol: c_int,
    set: ctx_wire_set_fn,
    userdata: *mut c_void,
) -> ctx_status_t {
    boundary(|| {
        let (ctx, policy, set) = (arg!(ctx), arg!(policy), arg!(set));
        inject(ctx, policy, protocol, &mut CallbackSink { set, userdata })
    })
}

/// The headers of `headers` as an array of `*n` (unless `n` is NULL)
/// name/value pairs, followed by one whose `name` is NULL; both strings
/// NUL-terminated. Borrowed from `headers`: valid until it is released.
/// Returns NULL if `headers` is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_headers_items(headers: *const ctx_headers_t, n: *mut usize) -> *const ctx_header_t {
    boundary(|| {
        let headers = arg!(headers);
        // SAFETY: the caller owns `headers`.
        let items = &unsafe { handle::box_borrow(headers) }.items;
        if let Some(n) = NonNull::new(n) {
            put(n, items.len() - 1);
        }
        items.as_ptr()
    })
}

/// Frees `headers` and its strings. NULL is ignored; releasing twice is
/// undefined behaviour. Threads: any, once no other thread uses it.
#[no_mangle]
pub extern "C" fn ctx_headers_release(headers: *mut ctx_headers_t) {
    boundary(|| {
        let headers = arg!(headers);
        // SAFETY: the caller gives up the list it owns.
        drop(unsafe { handle::box_from_raw(headers) });
    })
}

// Trace context and baggage on contexts -------------------------------------

/// A context's propagation, borrowed.
fn propagation_of<T>(ctx: NonNull<ctx_t>, read: impl FnOnce(Option<&wire::Propagation>) -> T) -> T {
    // SAFETY: the caller owns `ctx` (header contract).
    let ctx = unsafe { handle::ctx_borrow(ctx) };
    read(wire::propagation(&ctx))
}

fn read_trace(
    ctx: *const ctx_t,
    out: *mut ctx_trace_context_t,
    pick: impl FnOnce(&wire::Propagation) -> Option<wire::TraceContext>,
) -> ctx_status_t {
    let (ctx, out) = (arg!(ctx), arg!(out));
    match propagation_of(ctx, |p| p.and_then(pick)) {
        Some(tc) => {
            put(out, tc.into());
            ctx_status_t::CTX_OK
        }
        None => ctx_status_t::CTX_ENOTFOUND,
    }
}

/// The trace context `ctx` carries (from `ctx_wire_extract*` or
/// `ctx_wire_with_trace_context`): this hop's span, the parent of the work
/// it sends on. Returns `CTX_OK`, or `CTX_ENOTFOUND` (writing nothing) if it
/// carries none. Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_trace_context(ctx: *const ctx_t, out: *mut ctx_trace_context_t) -> ctx_status_t {
    boundary(|| read_trace(ctx, out, |p| p.trace))
}

/// The caller's trace context when an external policy restarted the trace
/// on extract (record it as a span link). Returns and errors as
/// `ctx_wire_trace_context`.
#[no_mangle]
pub extern "C" fn ctx_wire_trace_link(ctx: *const ctx_t, out: *mut ctx_trace_context_t) -> ctx_status_t {
    boundary(|| read_trace(ctx, out, |p| p.link))
}

/// The `tracestate` `ctx` carries, as a new list at `*out` (empty if none).
/// Release it with `ctx_tracestate_release`. Errors: `CTX_EINVAL` if a
/// pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_tracestate(ctx: *const ctx_t, out: *mut *mut ctx_tracestate_t) -> ctx_status_t {
    boundary(|| {
        let (ctx, out) = (arg!(ctx), arg!(out));
        let state = propagation_of(ctx, |p| Tracestate::new(p.map_or(&[], |p| &p.tracestate)));
        put(out, handle::box_into_raw(state));
        ctx_status_t::CTX_OK
    })
}

/// The baggage `ctx` carries, copied into a new list at `*out` (empty if
/// none). Release it with `ctx_baggage_release`. Errors: `CTX_EINVAL` if a
/// pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_baggage(ctx: *const ctx_t, out: *mut *mut ctx_baggage_t) -> ctx_status_t {
    boundary(|| {
        let (ctx, out) = (arg!(ctx), arg!(out));
        let list = propagation_of(ctx, |p| BaggageList::new(p.map_or(&Vec::new(), |p| &p.baggage)));
        put(out, handle::box_into_raw(list));
        ctx_status_t::CTX_OK
    })
}

/// Derives a child of `parent` whose trace context is `*tc` (copied),
/// keeping the baggage and `tracestate` it carries: start a trace with
/// `ctx_trace_context_new_root`, or record your own span. On `CTX_OK`,
/// `*out` owns one reference. Errors: `CTX_EMALFORMED` if an id of `*tc` is
/// all zero; `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_with_trace_context(
    parent: *const ctx_t,
    tc: *const ctx_trace_context_t,
    out: *mut *mut ctx_t,
) -> ctx_status_t {
    boundary(|| {
        let (parent, tc, out) = (arg!(parent), arg!(tc), arg!(out));
        // SAFETY: `tc` points to a trace context (header contract).
        let Some(tc) = trace_from_c(unsafe { tc.as_ref() }) else {
            return ctx_status_t::CTX_EMALFORMED;
        };
        // SAFETY: the caller owns `parent`.
        let parent = unsafe { handle::ctx_borrow(parent) };
        put(out, crate::debug::new_c_context(wire::with_trace_context(&parent, tc)));
        ctx_status_t::CTX_OK
    })
}

/// Derives a child of `parent` whose baggage is a copy of `b` (replacing
/// any it carried; trace context kept): what `ctx_wire_inject*` sends to
/// internal destinations. On `CTX_OK`, `*out` owns one reference; `b` stays
/// yours. Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_wire_with_baggage(
    parent: *const ctx_t,
    b: *const ctx_baggage_t,
    out: *mut *mut ctx_t,
) -> ctx_status_t {
    boundary(|| {
        let (parent, b, out) = (arg!(parent), arg!(b), arg!(out));
        // SAFETY: the caller owns `parent` and `b`.
        let (parent, b) = unsafe { (handle::ctx_borrow(parent), handle::box_borrow(b)) };
        put(
            out,
            crate::debug::new_c_context(wire::with_baggage(&parent, b.to_core())),
        );
        ctx_status_t::CTX_OK
    })
}

// End reasons ---------------------------------------------------------------

/// Cancels like `ctx_cancel_cause`, with an end reason (a `ctx_end_reason_t`)
/// as the cause: `ctx_end_reason` then reports it for the context and its
/// descendants, and `ctx_cause` its message ("client disconnected"). For the
/// handle `ctx_wire_extract*` gave, or one from `ctx_with_cancel_cause`.
/// Only the first cancellation counts.
///
/// Errors: `CTX_EINVAL` if `cancel` is NULL or `reason` is not a
/// `ctx_end_reason_t`; `CTX_EKIND` (canceling nothing) for a handle that
/// takes no cause (from `ctx_with_cancel`, `_timeout` or `_deadline`).
/// Threads: any, concurrently.
#[no_mangle]
pub extern "C" fn ctx_cancel_reason(cancel: *mut ctx_cancel_t, reason: c_int) -> ctx_status_t {
    boundary(|| {
        let cancel = arg!(cancel);
        let Some(reason) = reason_from_c(reason) else {
            return ctx_status_t::CTX_EINVAL;
        };
        // SAFETY: the caller owns `cancel`.
        match unsafe { handle::cancel_borrow(cancel) }.cancel_with_cause(Some(reason.cause())) {
            Ok(()) => ctx_status_t::CTX_OK,
            Err(_) => ctx_status_t::CTX_EKIND,
        }
    })
}

/// Why `ctx` ended, into `*out`: the reason it (or an ancestor) was canceled
/// with by `ctx_cancel_reason` or another language's equivalent; else
/// `CTX_END_DEADLINE_EXCEEDED` if its deadline passed, `CTX_END_CANCELED`
/// if it was canceled any other way. Map it to a response with
/// `ctx_end_reason_info`.
///
/// Returns `CTX_OK`, or `CTX_ENOTDONE` (writing nothing) while `ctx` is
/// live. Errors: `CTX_EINVAL` if a pointer is NULL. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_end_reason(ctx: *const ctx_t, out: *mut ctx_end_reason_t) -> ctx_status_t {
    boundary(|| {
        let (ctx, out) = (arg!(ctx), arg!(out));
        // SAFETY: the caller owns `ctx`.
        let ctx = unsafe { handle::ctx_borrow(ctx) };
        match EndReason::of(&ctx) {
            Some(reason) => {
                put(out, reason_to_c(reason));
                ctx_status_t::CTX_OK
            }
            None => ctx_status_t::CTX_ENOTDONE,
        }
    })
}

/// The names and codes of each reason, as static C strings.
static REASON_INFO: LazyLock<Vec<(EndReason, [CString; 3])>> = LazyLock::new(|| {
    let c = |s: String| CString::new(s).expect("reason texts have no NUL");
    wire::END_REASONS
        .into_iter()
        .map(|r| {
            let texts = [c(r.name().into()), c(r.to_string()), c(r.connect_code().into())];
            (r, texts)
        })
        .collect()
});

/// The names and codes of `reason` (a `ctx_end_reason_t`) into `*out`: what
/// a server answers when a request's context ended that way, from the one
/// table every language uses.
///
/// Errors: `CTX_EINVAL` if `out` is NULL or `reason` is not a
/// `ctx_end_reason_t`. Threads: any.
#[no_mangle]
pub extern "C" fn ctx_end_reason_info(reason: c_int, out: *mut ctx_end_reason_info_t) -> ctx_status_t {
    boundary(|| {
        let out = arg!(out);
        let Some(reason) = reason_from_c(reason) else {
            return ctx_status_t::CTX_EINVAL;
        };
        let (_, [name, message, connect]) = REASON_INFO
            .iter()
            .find(|(r, _)| *r == reason)
            .expect("every reason is in the table");
        put(
            out,
            ctx_end_reason_info_t {
                name: name.as_ptr(),
                message: message.as_ptr(),
                grpc_code: reason.grpc_code(),
                connect_code: connect.as_ptr(),
                http_status: reason.http_status(),
            },
        );
        ctx_status_t::CTX_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_name_and_reason_converts() {
        use wire::header::*;
        for name in [
            GRPC_TIMEOUT,
            CONNECT_TIMEOUT_MS,
            REQUEST_TIMEOUT_MS,
            TRACEPARENT,
            TRACESTATE,
            BAGGAGE,
        ] {
            assert_eq!(static_header_name(name).unwrap().to_str().unwrap(), name);
        }
        for r in wire::END_REASONS {
            assert_eq!(reason_from_c(reason_to_c(r) as c_int), Some(r));
        }
        assert_eq!(reason_from_c(0), None);
        assert_eq!(protocol_from_c(0), None);
    }
}
