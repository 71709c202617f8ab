//! traceparent and tracestate never panic, and what parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyctx::wire::{format_tracestate, parse_traceparent, parse_tracestate, TraceContext};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    if let Some(tc) = parse_traceparent(&values) {
        let sent = TraceContext {
            flags: tc.flags & 0x03,
            ..tc
        };
        assert_eq!(parse_traceparent(&[tc.to_header()]), Some(sent));
    }
    if let Some(members) = parse_tracestate(&values) {
        assert!(members.len() <= 32);
        if let Some(text) = format_tracestate(&members) {
            assert_eq!(parse_tracestate(&[text]), Some(members));
        }
    }
});
