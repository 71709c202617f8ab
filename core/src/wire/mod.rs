//! What crosses between services: deadlines (as timeouts, shrinking by the
//! time each hop spends), W3C trace context and baggage, in the headers
//! that gRPC, Connect, W3C and OpenTelemetry already define, so a polyctx
//! service talks to Go, gRPC and OpenTelemetry services it did not build.
//!
//! ```
//! use polyctx::wire::{extract, inject, Policy, Protocol};
//! use polyctx::Context;
//!
//! // A request arrives with 1.5 s left and a trace id.
//! let inbound = [
//!     ("Request-Timeout-Ms", "1500"),
//!     ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
//! ];
//! let (ctx, cancel) = extract(&Context::background(), &inbound[..], &Policy::internal(), Protocol::Http).unwrap();
//! let _cancel = cancel.guard();
//!
//! // The downstream call carries the rest of the budget and the same trace.
//! let mut outbound: Vec<(String, String)> = Vec::new();
//! inject(&ctx, &mut outbound, &Policy::internal(), Protocol::Grpc).unwrap();
//! assert!(outbound.iter().any(|(k, v)| k == "grpc-timeout" && v.ends_with('u')));
//! assert!(outbound.iter().any(|(k, v)| k == "traceparent" && v.contains("4bf92f3577b34da6a3ce929d0e0e4736")));
//! ```
//!
//! Inbound metadata is never an identity or authorization input: a header
//! says what its sender claims, nothing more. polyctx offers no "principal
//! from header" helper, and its external trust policy (the default for a
//! listener) bounds what an untrusted caller can make a service do.

mod baggage;
mod reason;
mod timeout;
mod trace;

use std::sync::LazyLock;
use std::time::Duration;

pub use baggage::{format_baggage, is_token, parse_baggage, Baggage, BaggageEntry, InvalidKey};
pub use reason::{EndReason, END_REASONS};
pub use timeout::{
    format_grpc_timeout, format_timeout_ms, parse_grpc_timeout, parse_timeout_ms, Malformed, MAX_OUTBOUND_NS,
};
pub use trace::{format_tracestate, parse_traceparent, parse_tracestate, TraceContext, FLAG_RANDOM, FLAG_SAMPLED};

use crate::{clock, with_cancel_cause, with_deadline_ns, with_value, CancelCauseFunc, Context, Error, Key};

/// The header names polyctx reads and writes, lowercase.
pub mod header {
    pub const GRPC_TIMEOUT: &str = "grpc-timeout";
    pub const CONNECT_TIMEOUT_MS: &str = "connect-timeout-ms";
    pub const REQUEST_TIMEOUT_MS: &str = "request-timeout-ms";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
    pub const BAGGAGE: &str = "baggage";

    /// Every field `extract` reads: a binding that copies inbound headers
    /// for it need copy only these.
    pub const READ: [&str; 6] = [
        GRPC_TIMEOUT,
        CONNECT_TIMEOUT_MS,
        REQUEST_TIMEOUT_MS,
        TRACEPARENT,
        TRACESTATE,
        BAGGAGE,
    ];
}

/// Which protocol a request speaks: decides the timeout header polyctx
/// sends, and which inbound timeout header is the protocol's own (a
/// malformed one of those is an error; the others are only hints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// gRPC over HTTP/2: `grpc-timeout`. A malformed one is `INTERNAL`.
    Grpc,
    /// Connect: `connect-timeout-ms`. A malformed one is `invalid_argument`.
    Connect,
    /// Plain HTTP: `request-timeout-ms`. A malformed one is a 400.
    Http,
}

impl Protocol {
    fn timeout_header(self) -> &'static str {
        match self {
            Protocol::Grpc => header::GRPC_TIMEOUT,
            Protocol::Connect => header::CONNECT_TIMEOUT_MS,
            Protocol::Http => header::REQUEST_TIMEOUT_MS,
        }
    }
}

/// How much a listener trusts its callers, or a client its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trust {
    /// Peers inside the same system: budgets, traces and baggage flow as sent.
    Internal,
    /// Anyone: budgets are clamped, traces restart (the caller's kept as a
    /// link), inbound baggage is dropped but for an allow-list, and nothing
    /// but the budget and `traceparent` is sent out.
    External,
}

/// A trust policy, per listener and per client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub trust: Trust,
    /// Inbound budgets longer than this are cut to it.
    pub max_timeout: Option<Duration>,
    /// The budget of a request that sent none.
    pub default_timeout: Option<Duration>,
    /// Inbound baggage keys kept under [`Trust::External`].
    pub baggage_allow: Vec<String>,
    /// Whether polyctx reads and writes `traceparent`, `tracestate` and
    /// `baggage` at all. Turn it off where OpenTelemetry owns those headers:
    /// two writers of `traceparent` break traces.
    pub propagate_trace: bool,
}

impl Policy {
    /// For peers inside the same system: no clamp, no default budget.
    pub fn internal() -> Policy {
        Policy {
            trust: Trust::Internal,
            max_timeout: None,
            default_timeout: None,
            baggage_allow: Vec::new(),
            propagate_trace: true,
        }
    }

    /// For the world outside (the safe default for a listener): budgets
    /// clamped to 300 s, 30 s when none is sent, no inbound baggage.
    pub fn external() -> Policy {
        Policy {
            trust: Trust::External,
            max_timeout: Some(Duration::from_secs(300)),
            default_timeout: Some(Duration::from_secs(30)),
            baggage_allow: Vec::new(),
            propagate_trace: true,
        }
    }
}

/// Inbound headers: every value of a field, in the order received, found
/// by a case-insensitive name.
pub trait HeaderSource {
    /// The values of the field `name` (given lowercase).
    fn values(&self, name: &str) -> Vec<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn values(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
            .collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn values(&self, name: &str) -> Vec<&str> {
        self.as_slice().values(name)
    }
}

/// Outbound headers: `set` replaces any value the field had.
pub trait HeaderSink {
    /// Sets the field `name` (lowercase) to `value`.
    fn set(&mut self, name: &str, value: String);
}

impl HeaderSink for Vec<(String, String)> {
    fn set(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value));
    }
}

/// What a request carries besides its deadline: trace context and baggage.
/// Stored in the context as one value; read it with [`propagation`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Propagation {
    /// This hop's trace context: the trace, and the span that is the parent
    /// of the work this hop sends on.
    pub trace: Option<TraceContext>,
    /// `tracestate`, sent on only to internal destinations.
    pub tracestate: Vec<(String, String)>,
    /// The caller's trace context when an external listener restarted the
    /// trace (keep it as a span link).
    pub link: Option<TraceContext>,
    /// Baggage, sent on only to internal destinations.
    pub baggage: Baggage,
}

static PROPAGATION: LazyLock<Key<Propagation>> = LazyLock::new(|| Key::new("polyctx.wire"));

/// The trace context and baggage `ctx` carries, if any.
pub fn propagation(ctx: &Context) -> Option<&Propagation> {
    ctx.value(&PROPAGATION)
}

/// A child of `ctx` carrying `propagation`.
pub fn with_propagation(ctx: &Context, propagation: Propagation) -> Context {
    with_value(ctx, &PROPAGATION, propagation)
}

/// A child of `ctx` whose trace context is `trace` (baggage kept).
pub fn with_trace_context(ctx: &Context, trace: TraceContext) -> Context {
    let mut p = propagation(ctx).cloned().unwrap_or_default();
    p.trace = Some(trace);
    with_propagation(ctx, p)
}

/// A child of `ctx` whose baggage is `baggage` (trace context kept).
pub fn with_baggage(ctx: &Context, baggage: Baggage) -> Context {
    let mut p = propagation(ctx).cloned().unwrap_or_default();
    p.baggage = baggage;
    with_propagation(ctx, p)
}

/// The request context for inbound `headers`, derived from `parent`, with
/// the budget counted from now. See [`extract_at`].
pub fn extract<H: HeaderSource + ?Sized>(
    parent: &Context,
    headers: &H,
    policy: &Policy,
    protocol: Protocol,
) -> Result<(Context, CancelCauseFunc), Malformed> {
    extract_at(parent, headers, policy, protocol, clock::now_ns())
}

/// The request context for inbound `headers`: done when `parent` is, or
/// when the budget the caller sent runs out, counted from `arrived_ns` (the
/// `clock` time the headers arrived), so the time spent in this hop before
/// the call comes off the budget too. Inbound budgets only ever shorten
/// `parent`'s. Several timeout headers: the shortest valid one. A malformed
/// timeout header of `protocol`'s own is an error (gRPC `INTERNAL`, Connect
/// `invalid_argument`, HTTP 400); a malformed one of another protocol is
/// ignored. The trace context, `tracestate` and baggage are kept as the
/// context's [`Propagation`], under `policy`.
///
/// The cancel function records a cause, so that a server ends the request
/// saying why: `cancel.cancel(Some(EndReason::ClientDisconnected.cause()))`.
pub fn extract_at<H: HeaderSource + ?Sized>(
    parent: &Context,
    headers: &H,
    policy: &Policy,
    protocol: Protocol,
    arrived_ns: u64,
) -> Result<(Context, CancelCauseFunc), Malformed> {
    let mut budget: Option<u64> = None;
    for name in [
        header::GRPC_TIMEOUT,
        header::CONNECT_TIMEOUT_MS,
        header::REQUEST_TIMEOUT_MS,
    ] {
        let values = headers.values(name);
        if values.is_empty() {
            continue;
        }
        let combined = values.join(",");
        let parsed = match name {
            header::GRPC_TIMEOUT => parse_grpc_timeout(&combined),
            _ => parse_timeout_ms(name, &combined),
        };
        match parsed {
            Ok(Some(ns)) => budget = Some(budget.map_or(ns, |b| b.min(ns))),
            Ok(None) => {}
            Err(e) if name == protocol.timeout_header() => return Err(e),
            Err(_) => {}
        }
    }
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    if budget.is_none() {
        budget = policy.default_timeout.map(nanos);
    }
    if let (Some(b), Some(max)) = (budget, policy.max_timeout) {
        budget = Some(b.min(nanos(max)));
    }
    let (ctx, cancel) = match budget {
        Some(b) => {
            let (ctx, cancel) = with_deadline_ns(parent, arrived_ns.saturating_add(b), None);
            // Any node takes a cause; Go's types only hide it for deadlines.
            (ctx, CancelCauseFunc { node: cancel.node })
        }
        None => with_cancel_cause(parent),
    };
    if !policy.propagate_trace {
        return Ok((ctx, cancel));
    }
    Ok((with_propagation(&ctx, inbound_propagation(headers, policy)), cancel))
}

fn inbound_propagation<H: HeaderSource + ?Sized>(headers: &H, policy: &Policy) -> Propagation {
    let inbound = parse_traceparent(&headers.values(header::TRACEPARENT));
    let mut baggage = parse_baggage(&headers.values(header::BAGGAGE));
    match (inbound, policy.trust) {
        (Some(caller), Trust::Internal) => Propagation {
            trace: Some(caller.child()),
            tracestate: parse_tracestate(&headers.values(header::TRACESTATE)).unwrap_or_default(),
            link: None,
            baggage,
        },
        (caller, trust) => {
            if trust == Trust::External {
                baggage.retain(|(k, _)| policy.baggage_allow.iter().any(|a| a == k));
            }
            Propagation {
                trace: Some(TraceContext::new_root()),
                tracestate: Vec::new(),
                link: caller,
                baggage,
            }
        }
    }
}

/// Writes what `ctx` carries into outbound `headers` for a call to a
/// destination trusted as `policy` says: the remaining budget (rounded up,
/// capped at [`MAX_OUTBOUND_NS`]) in `protocol`'s timeout header, and, when
/// `policy.propagate_trace`, `traceparent` (and, for internal destinations
/// only, `tracestate` and `baggage`).
///
/// A context already done, or with no time left, fails here with its error
/// (a spent budget is [`Error::DeadlineExceeded`]) and writes nothing: the
/// call would fail anyway, so it is never sent.
pub fn inject<S: HeaderSink + ?Sized>(
    ctx: &Context,
    headers: &mut S,
    policy: &Policy,
    protocol: Protocol,
) -> Result<(), Error> {
    if let Some(err) = ctx.err() {
        return Err(err);
    }
    let timeout = match ctx.deadline_ns() {
        None => None,
        Some(deadline) => {
            let remaining = deadline.saturating_sub(clock::now_ns());
            let remaining = i64::try_from(remaining).unwrap_or(i64::MAX);
            let formatted = match protocol {
                Protocol::Grpc => format_grpc_timeout(remaining),
                _ => format_timeout_ms(remaining),
            };
            Some(formatted.ok_or(Error::DeadlineExceeded)?)
        }
    };
    if let Some(value) = timeout {
        headers.set(protocol.timeout_header(), value);
    }
    if !policy.propagate_trace {
        return Ok(());
    }
    let Some(p) = propagation(ctx) else { return Ok(()) };
    if let Some(trace) = &p.trace {
        headers.set(header::TRACEPARENT, trace.to_header());
    }
    if policy.trust == Trust::Internal {
        if let Some(state) = format_tracestate(&p.tracestate) {
            headers.set(header::TRACESTATE, state);
        }
        // Keys in a `Propagation` came through `parse_baggage` or a
        // binding's checked setter; an invalid one is left out, not sent.
        let valid = p
            .baggage
            .iter()
            .filter(|(k, _)| is_token(k))
            .map(|(k, e)| (k.as_str(), e));
        if let Ok(Some(text)) = format_baggage(valid) {
            headers.set(header::BAGGAGE, text);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
