//! The core's wire model (`polyctx::wire`) for the JS layer's `wire`
//! module (`node/wire.js`): codecs, extract/inject, trace context, baggage
//! and end reasons. Only conversions live here; every rule is the core's.
//!
//! Conventions: nanoseconds are BigInts; a malformed value comes back as a
//! [`Malformed`] object (the JS layer throws `MalformedHeader`); header
//! fields cross as flat `[name, value, name, value, ...]` string arrays.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use polyctx::clock;
use polyctx::wire::{
    self, header, BaggageEntry, EndReason, Malformed as CoreMalformed, Policy, Protocol, TraceContext, Trust,
    END_REASONS,
};

use crate::events;
use crate::handle::{entry, Entry};
use crate::protocol::NO_HANDLE;

/// A header value that does not follow its grammar, and the error it is
/// in each protocol.
#[napi(object)]
pub struct Malformed {
    pub header: String,
    pub value: String,
    pub message: String,
    pub grpc_code: u32,
    pub connect_code: String,
    pub http_status: u32,
}

impl From<CoreMalformed> for Malformed {
    fn from(m: CoreMalformed) -> Malformed {
        Malformed {
            message: m.to_string(),
            grpc_code: m.grpc_code(),
            connect_code: m.connect_code().to_owned(),
            http_status: m.http_status().into(),
            header: m.header.to_owned(),
            value: m.value,
        }
    }
}

/// A trace context as the JS layer holds it.
#[napi(object)]
pub struct TraceParts {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub flags: u32,
    /// The `traceparent` value.
    pub header: String,
}

impl From<TraceContext> for TraceParts {
    fn from(tc: TraceContext) -> TraceParts {
        TraceParts {
            trace_id: tc.trace_id_hex(),
            span_id: tc.span_id_hex(),
            flags: tc.flags.into(),
            header: tc.to_header(),
        }
    }
}

/// One baggage member.
#[napi(object)]
pub struct BaggageMember {
    pub key: String,
    pub value: String,
    /// `[name, value or null]` pairs.
    pub properties: Vec<Vec<Option<String>>>,
}

fn members(baggage: &[(String, BaggageEntry)]) -> Vec<BaggageMember> {
    baggage
        .iter()
        .map(|(key, e)| BaggageMember {
            key: key.clone(),
            value: e.value.clone(),
            properties: e
                .properties
                .iter()
                .map(|(k, v)| vec![Some(k.clone()), v.clone()])
                .collect(),
        })
        .collect()
}

fn entries(members: Vec<BaggageMember>) -> Vec<(String, BaggageEntry)> {
    members
        .into_iter()
        .map(|m| {
            let properties = m
                .properties
                .into_iter()
                .map(|p| {
                    let mut p = p.into_iter();
                    (p.next().flatten().unwrap_or_default(), p.next().flatten())
                })
                .collect();
            (
                m.key,
                BaggageEntry {
                    value: m.value,
                    properties,
                },
            )
        })
        .collect()
}

/// A BigInt as the core's signed nanoseconds, saturating.
fn nanos(ns: BigInt) -> i64 {
    let (value, _) = ns.get_i128();
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

fn timeout_result(parsed: std::result::Result<Option<u64>, CoreMalformed>) -> Either<Option<BigInt>, Malformed> {
    match parsed {
        Ok(ns) => Either::A(ns.map(BigInt::from)),
        Err(e) => Either::B(e.into()),
    }
}

#[napi]
pub fn parse_grpc_timeout(value: String) -> Either<Option<BigInt>, Malformed> {
    timeout_result(wire::parse_grpc_timeout(&value))
}

#[napi]
pub fn format_grpc_timeout(remaining_ns: BigInt) -> Option<String> {
    wire::format_grpc_timeout(nanos(remaining_ns))
}

/// `header` names the field in errors: `connect-timeout-ms`, else `request-timeout-ms`.
#[napi]
pub fn parse_timeout_ms(header: String, value: String) -> Either<Option<BigInt>, Malformed> {
    let name = if header.eq_ignore_ascii_case(header::CONNECT_TIMEOUT_MS) {
        header::CONNECT_TIMEOUT_MS
    } else {
        header::REQUEST_TIMEOUT_MS
    };
    timeout_result(wire::parse_timeout_ms(name, &value))
}

#[napi]
pub fn format_timeout_ms(remaining_ns: BigInt) -> Option<String> {
    wire::format_timeout_ms(nanos(remaining_ns))
}

#[napi]
pub fn parse_traceparent(values: Vec<String>) -> Option<TraceParts> {
    wire::parse_traceparent(&values).map(TraceParts::from)
}

/// The trace context with these parts, if they make a valid one (lowercase
/// hex of the right lengths, neither id all zero, flags a byte), as the
/// core's parser judges the `traceparent` they spell.
#[napi]
pub fn trace_context(trace_id: String, span_id: String, flags: u32) -> Option<TraceParts> {
    let flags = u8::try_from(flags).ok()?;
    wire::parse_traceparent(&[format!("00-{trace_id}-{span_id}-{flags:02x}")]).map(TraceParts::from)
}

/// A new trace (random ids, sampled).
#[napi]
pub fn new_trace() -> TraceParts {
    TraceContext::new_root().into()
}

#[napi]
pub fn parse_tracestate(values: Vec<String>) -> Option<Vec<Vec<String>>> {
    wire::parse_tracestate(&values).map(|members| members.into_iter().map(|(k, v)| vec![k, v]).collect())
}

#[napi]
pub fn parse_baggage(values: Vec<String>) -> Vec<BaggageMember> {
    members(&wire::parse_baggage(&values))
}

/// The header value (null when empty), or the error for an invalid key.
#[napi]
pub fn format_baggage(members: Vec<BaggageMember>) -> Either<Option<String>, Malformed> {
    let entries = entries(members);
    match wire::format_baggage(entries.iter().map(|(k, e)| (k.as_str(), e))) {
        Ok(text) => Either::A(text),
        Err(e) => Either::B(Malformed {
            header: header::BAGGAGE.to_owned(),
            message: e.to_string(),
            grpc_code: 13,
            connect_code: "invalid_argument".to_owned(),
            http_status: 400,
            value: e.0,
        }),
    }
}

/// The header names the core reads, lowercase: the JS layer passes only
/// these fields to `extract`.
#[napi]
pub fn header_names() -> Vec<&'static str> {
    header::READ.to_vec()
}

/// A trust policy (`wire::Policy`), made once and used for many requests.
#[napi]
pub struct WirePolicy {
    inner: Policy,
}

#[napi]
impl WirePolicy {
    /// Durations are milliseconds (null: none), checked by the JS layer to
    /// be finite and not negative.
    #[napi(constructor)]
    pub fn new(
        internal: bool,
        max_timeout_ms: Option<f64>,
        default_timeout_ms: Option<f64>,
        baggage_allow: Vec<String>,
        propagate_trace: bool,
    ) -> Result<WirePolicy> {
        let duration = |ms: Option<f64>| -> Result<Option<Duration>> {
            let Some(ms) = ms else { return Ok(None) };
            let ns = clock::nanos_from_f64(ms, 1e6).map_err(|e| Error::from_reason(e.to_string()))?;
            let ns = u64::try_from(ns).map_err(|_| Error::from_reason("must not be negative"))?;
            Ok(Some(Duration::from_nanos(ns)))
        };
        Ok(WirePolicy {
            inner: Policy {
                trust: if internal { Trust::Internal } else { Trust::External },
                max_timeout: duration(max_timeout_ms)?,
                default_timeout: duration(default_timeout_ms)?,
                baggage_allow,
                propagate_trace,
            },
        })
    }
}

fn protocol(name: &str) -> Result<Protocol> {
    match name {
        "http" => Ok(Protocol::Http),
        "grpc" => Ok(Protocol::Grpc),
        "connect" => Ok(Protocol::Connect),
        other => Err(Error::from_reason(format!("unknown protocol {other:?}"))),
    }
}

/// The request context for inbound `fields` (flat name/value pairs), a
/// handle whose cancel function takes a cause; or why the protocol's own
/// timeout header is malformed. `arrived_ns` (the core's clock, as
/// `clock_ns` gives it) is when the headers arrived; null for now.
#[napi]
pub fn extract(
    parent: f64,
    fields: Vec<String>,
    policy: &WirePolicy,
    protocol_name: String,
    arrived_ns: Option<BigInt>,
) -> Result<Either<f64, Malformed>> {
    let protocol = protocol(&protocol_name)?;
    let pairs: Vec<(&str, &str)> = fields.chunks_exact(2).map(|p| (p[0].as_str(), p[1].as_str())).collect();
    let arrived = arrived_ns.map_or_else(clock::now_ns, |ns| clock::from_signed(nanos(ns)));
    let parent = entry(parent);
    Ok(
        match wire::extract_at(&parent.ctx, &pairs[..], &policy.inner, protocol, arrived) {
            Ok((ctx, cancel)) => Either::A(Entry::into_handle(ctx, Some(cancel.into()), parent.early_deadline)),
            Err(e) => Either::B(e.into()),
        },
    )
}

/// The outbound fields for `h` (flat name/value pairs), or the error code
/// (`ERR_CANCELED`, `ERR_DEADLINE_EXCEEDED`) when it must not be sent.
#[napi]
pub fn inject(h: f64, policy: &WirePolicy, protocol_name: String) -> Result<Either<Vec<String>, u32>> {
    let protocol = protocol(&protocol_name)?;
    let mut out: Vec<(String, String)> = Vec::new();
    Ok(match wire::inject(&entry(h).ctx, &mut out, &policy.inner, protocol) {
        Ok(()) => Either::A(out.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Err(polyctx::Error::Canceled) => Either::B(crate::protocol::ERR_CANCELED),
        Err(polyctx::Error::DeadlineExceeded) => Either::B(crate::protocol::ERR_DEADLINE_EXCEEDED),
    })
}

/// Now on the core's clock, for `extract`'s `arrived_ns`.
#[napi]
pub fn clock_ns() -> BigInt {
    BigInt::from(clock::now_ns())
}

/// This hop's trace context.
#[napi]
pub fn ctx_trace_context(h: f64) -> Option<TraceParts> {
    wire::propagation(&entry(h).ctx)?.trace.map(TraceParts::from)
}

/// The caller's trace context, when an external listener restarted the trace.
#[napi]
pub fn ctx_trace_link(h: f64) -> Option<TraceParts> {
    wire::propagation(&entry(h).ctx)?.link.map(TraceParts::from)
}

#[napi]
pub fn ctx_baggage(h: f64) -> Vec<BaggageMember> {
    wire::propagation(&entry(h).ctx).map_or_else(Vec::new, |p| members(&p.baggage))
}

/// A child of `h` whose trace context is the one these parts spell;
/// `NO_HANDLE` if they spell none.
#[napi]
pub fn with_trace_context(h: f64, trace_id: String, span_id: String, flags: u32) -> f64 {
    let Some(tc) = u8::try_from(flags)
        .ok()
        .and_then(|f| wire::parse_traceparent(&[format!("00-{trace_id}-{span_id}-{f:02x}")]))
    else {
        return NO_HANDLE.into();
    };
    let parent = entry(h);
    Entry::into_handle(wire::with_trace_context(&parent.ctx, tc), None, parent.early_deadline)
}

/// A child of `h` with this baggage (keys checked by the JS layer with
/// `format_baggage`).
#[napi]
pub fn with_baggage(h: f64, members: Vec<BaggageMember>) -> f64 {
    let parent = entry(h);
    Entry::into_handle(
        wire::with_baggage(&parent.ctx, entries(members)),
        None,
        parent.early_deadline,
    )
}

/// One row of the core's end-reason table.
#[napi(object)]
pub struct EndReasonRow {
    /// The stable lowercase name, the same in every language.
    pub name: String,
    /// What the reason says as a cause.
    pub message: String,
    pub grpc_code: u32,
    pub connect_code: String,
    pub http_status: u32,
}

/// The core's table, in its order (the index is what `CAUSE_REASON`,
/// `end_reason` and `cancel_reason` use).
#[napi]
pub fn end_reasons() -> Vec<EndReasonRow> {
    END_REASONS
        .iter()
        .map(|r| EndReasonRow {
            name: r.name().to_owned(),
            message: r.to_string(),
            grpc_code: r.grpc_code(),
            connect_code: r.connect_code().to_owned(),
            http_status: r.http_status().into(),
        })
        .collect()
}

/// Why `h` ended, as an index into `end_reasons`; null while live.
#[napi]
pub fn end_reason(h: f64) -> Option<u32> {
    let reason = EndReason::of(&entry(h).ctx)?;
    END_REASONS.iter().position(|&r| r == reason).map(|i| i as u32)
}

/// Cancels `h` with the end reason at `index` as its cause; returns as
/// `cancel` does. Only for contexts whose cancel function takes a cause.
#[napi]
pub fn cancel_reason(h: f64, index: u32) -> u32 {
    let _call = events::DrainingCall::enter();
    if let (Some(f), Some(reason)) = (&entry(h).cancel, END_REASONS.get(index as usize)) {
        let _ = f.cancel_with_cause(Some(reason.cause()));
    }
    events::drain()
}
