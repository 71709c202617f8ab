//! Extract and inject never panic, whatever headers arrive, under every
//! policy and protocol; an injected budget is never longer than the context's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyctx::wire::{extract, inject, parse_timeout_ms, Policy, Protocol};
use polyctx::Context;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let headers: Vec<(&str, &str)> = text.split('\n').filter_map(|line| line.split_once(':')).collect();
    for policy in [Policy::internal(), Policy::external()] {
        for protocol in [Protocol::Grpc, Protocol::Connect, Protocol::Http] {
            let Ok((ctx, cancel)) = extract(&Context::background(), &headers[..], &policy, protocol) else {
                continue;
            };
            let mut out: Vec<(String, String)> = Vec::new();
            // Read before inject: the budget only shrinks from here.
            let left = ctx.deadline_ns().map(|d| d.saturating_sub(polyctx::clock::now_ns()));
            if inject(&ctx, &mut out, &policy, Protocol::Http).is_ok() {
                if let (Some(left), Some((_, v))) = (left, out.iter().find(|(k, _)| k == "request-timeout-ms")) {
                    let sent = parse_timeout_ms("request-timeout-ms", v).unwrap().unwrap();
                    assert!(
                        sent <= left.div_ceil(1_000_000) * 1_000_000,
                        "sent {sent} ns with {left} ns left"
                    );
                }
            }
            cancel.cancel(None);
        }
    }
});
