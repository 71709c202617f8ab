//! Extract and inject together: budgets shrinking hop by hop, the trust
//! policy, failing locally. The codecs' vectors are in tests/wire/, shared
//! by every language.

use std::time::Duration;

use super::*;
use crate::{with_timeout, Context};

const MS: u64 = 1_000_000;
const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn outbound(ctx: &Context, policy: &Policy, protocol: Protocol) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    inject(ctx, &mut headers, policy, protocol).unwrap();
    headers
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn budget_ms(ctx: &Context, now: u64) -> u64 {
    (ctx.deadline_ns().unwrap() - now) / MS
}

#[test]
fn budgets_shrink_by_the_time_each_hop_spends() {
    // Hop 1 receives 1,000 ms; the headers arrived 120 ms before it extracts.
    let now = clock::now_ns();
    let hop1_arrived = now - 120 * MS;
    let inbound = [("request-timeout-ms", "1000")];
    let (hop1, _c1) = extract_at(
        &Context::background(),
        &inbound[..],
        &Policy::internal(),
        Protocol::Http,
        hop1_arrived,
    )
    .unwrap();
    assert_eq!(budget_ms(&hop1, now), 880, "1000 ms minus the 120 ms already spent");

    // Hop 1 calls hop 2 over gRPC; hop 2 arrives 50 ms later.
    let sent = outbound(&hop1, &Policy::internal(), Protocol::Grpc);
    let grpc = get(&sent, "grpc-timeout").unwrap();
    let sent_ns = parse_grpc_timeout(grpc).unwrap().unwrap();
    // Generous below: Miri runs this too, and is slow.
    assert!(sent_ns <= 880 * MS && sent_ns > 500 * MS, "sent {grpc}");
    let (hop2, _c2) = extract_at(
        &Context::background(),
        &sent[..],
        &Policy::internal(),
        Protocol::Grpc,
        now + 50 * MS,
    )
    .unwrap();
    assert_eq!(
        hop2.deadline_ns(),
        Some(now + 50 * MS + sent_ns),
        "hop 2's budget counts from when its headers arrived"
    );

    // Hop 3, through Connect, keeps shrinking, and the trace stays one trace.
    let (hop2b, _c) = extract_at(
        &Context::background(),
        &[("connect-timeout-ms", "30000"), ("traceparent", TP)][..],
        &Policy::internal(),
        Protocol::Connect,
        now,
    )
    .unwrap();
    let sent = outbound(&hop2b, &Policy::internal(), Protocol::Connect);
    let ms: u64 = get(&sent, "connect-timeout-ms").unwrap().parse().unwrap();
    assert!(ms <= 30_000 && ms > 10_000);
    let hop3_trace = propagation(&hop2b).unwrap().trace.unwrap();
    assert_eq!(hop3_trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(
        hop3_trace.span_id_hex(),
        "00f067aa0ba902b7",
        "this hop's span is a new one"
    );
    assert!(get(&sent, "traceparent").unwrap().contains(&hop3_trace.span_id_hex()));
}

#[test]
fn inbound_budgets_only_shorten() {
    let (parent, _c) = with_timeout(&Context::background(), Duration::from_millis(100));
    let (ctx, _c) = extract(
        &parent,
        &[("request-timeout-ms", "60000")][..],
        &Policy::internal(),
        Protocol::Http,
    )
    .unwrap();
    assert_eq!(ctx.deadline_ns(), parent.deadline_ns());
}

#[test]
fn several_timeout_headers_take_the_shortest_valid_one() {
    let headers = [
        ("grpc-timeout", "5S"),
        ("connect-timeout-ms", "garbage"),
        ("Request-Timeout-Ms", "2000"),
    ];
    let now = clock::now_ns();
    let (ctx, _c) = extract_at(
        &Context::background(),
        &headers[..],
        &Policy::internal(),
        Protocol::Grpc,
        now,
    )
    .unwrap();
    assert_eq!(budget_ms(&ctx, now), 2000);
    // The protocol's own header malformed: an error.
    let err = extract(
        &Context::background(),
        &headers[..],
        &Policy::internal(),
        Protocol::Connect,
    )
    .unwrap_err();
    assert_eq!(err.header, "connect-timeout-ms");
    // Two field lines of one timeout header combine into a malformed one.
    let twice = [("grpc-timeout", "1S"), ("grpc-timeout", "2S")];
    assert!(extract(&Context::background(), &twice[..], &Policy::internal(), Protocol::Grpc).is_err());
}

#[test]
fn external_policy_clamps_defaults_and_restarts_the_trace() {
    let now = clock::now_ns();
    let huge = [
        ("request-timeout-ms", "9999999999"),
        ("traceparent", TP),
        ("baggage", "tenant=a,user=bob"),
        ("tracestate", "x=1"),
    ];
    let mut policy = Policy::external();
    policy.baggage_allow = vec!["tenant".into()];
    let (ctx, _c) = extract_at(&Context::background(), &huge[..], &policy, Protocol::Http, now).unwrap();
    assert_eq!(budget_ms(&ctx, now), 300_000, "clamped to 300 s");
    let p = propagation(&ctx).unwrap();
    assert_eq!(
        p.link.map(|l| l.trace_id_hex()).as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_ne!(p.trace.unwrap().trace_id, p.link.unwrap().trace_id, "a new trace");
    assert!(p.tracestate.is_empty());
    assert_eq!(
        p.baggage.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["tenant"]
    );

    let (quiet, _c) = extract_at(
        &Context::background(),
        &[] as &[(&str, &str)],
        &policy,
        Protocol::Http,
        now,
    )
    .unwrap();
    assert_eq!(budget_ms(&quiet, now), 30_000, "30 s when none is sent");

    // Sending to an external destination: no baggage, no tracestate.
    let (internal, _c) = extract(&Context::background(), &huge[..], &Policy::internal(), Protocol::Http).unwrap();
    let sent = outbound(&internal, &Policy::external(), Protocol::Http);
    assert!(get(&sent, "traceparent").is_some());
    assert!(get(&sent, "baggage").is_none() && get(&sent, "tracestate").is_none());
    let sent = outbound(&internal, &Policy::internal(), Protocol::Http);
    assert_eq!(get(&sent, "baggage"), Some("tenant=a,user=bob"));
    assert_eq!(get(&sent, "tracestate"), Some("x=1"));
}

#[test]
fn inject_fails_locally_when_nothing_is_left() {
    let (spent, _c) = with_timeout(&Context::background(), Duration::ZERO);
    let mut headers: Vec<(String, String)> = Vec::new();
    assert_eq!(
        inject(&spent, &mut headers, &Policy::internal(), Protocol::Grpc),
        Err(Error::DeadlineExceeded)
    );
    assert!(headers.is_empty(), "nothing is sent");
    // Past the deadline, before the timer has fired: the same.
    let (ctx, _c) = extract_at(
        &Context::background(),
        &[("grpc-timeout", "1m")][..],
        &Policy::internal(),
        Protocol::Grpc,
        clock::now_ns() - 10 * MS,
    )
    .unwrap();
    assert_eq!(
        inject(&ctx, &mut headers, &Policy::internal(), Protocol::Grpc),
        Err(Error::DeadlineExceeded)
    );
    assert!(headers.is_empty());
    // An inbound 0 is a budget already spent.
    let (zero, _c) = extract(
        &Context::background(),
        &[("grpc-timeout", "0n")][..],
        &Policy::internal(),
        Protocol::Grpc,
    )
    .unwrap();
    assert_eq!(zero.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn trace_emission_can_be_turned_off() {
    let mut quiet = Policy::internal();
    quiet.propagate_trace = false;
    let (ctx, _c) = extract(
        &Context::background(),
        &[("traceparent", TP), ("request-timeout-ms", "500")][..],
        &quiet,
        Protocol::Http,
    )
    .unwrap();
    assert!(propagation(&ctx).is_none(), "not read");
    let (traced, _c) = extract(
        &Context::background(),
        &[("traceparent", TP)][..],
        &Policy::internal(),
        Protocol::Http,
    )
    .unwrap();
    let sent = outbound(&traced, &quiet, Protocol::Http);
    assert!(get(&sent, "traceparent").is_none(), "not written");
    assert!(get(&outbound(&ctx, &quiet, Protocol::Http), "request-timeout-ms").is_some());
}

#[test]
fn values_can_be_set_and_derived() {
    let tc = TraceContext::new_root();
    let ctx = with_trace_context(&Context::background(), tc);
    let ctx = with_baggage(&ctx, vec![("k".into(), BaggageEntry::new("v w"))]);
    let p = propagation(&ctx).unwrap();
    assert_eq!(p.trace, Some(tc), "setting baggage keeps the trace");
    let sent = outbound(&ctx, &Policy::internal(), Protocol::Http);
    assert_eq!(get(&sent, "baggage"), Some("k=v%20w"));
    assert_eq!(get(&sent, "traceparent"), Some(tc.to_header().as_str()));
}

#[test]
fn a_server_ends_a_request_saying_why() {
    for headers in [&[("grpc-timeout", "5S")][..], &[][..]] {
        let (ctx, cancel) = extract(&Context::background(), headers, &Policy::internal(), Protocol::Grpc).unwrap();
        cancel.cancel(Some(EndReason::ClientDisconnected.cause()));
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(EndReason::of(&ctx), Some(EndReason::ClientDisconnected), "{headers:?}");
        assert_eq!(EndReason::of(&ctx).map(EndReason::http_status), Some(499));
    }
}
