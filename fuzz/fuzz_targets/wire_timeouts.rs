//! The timeout codecs never panic, and what they format parses back to a
//! budget no shorter than the one formatted (rounded up), unless capped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyctx::wire::{format_grpc_timeout, format_timeout_ms, parse_grpc_timeout, parse_timeout_ms, MAX_OUTBOUND_NS};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for parsed in [parse_grpc_timeout(&text), parse_timeout_ms("request-timeout-ms", &text)] {
        if let Ok(Some(ns)) = parsed {
            let ns = i64::try_from(ns).unwrap();
            let want = (ns as u64).min(MAX_OUTBOUND_NS);
            if let Some(g) = format_grpc_timeout(ns) {
                let back = parse_grpc_timeout(&g).unwrap().unwrap();
                assert!(back >= want, "{g} is shorter than {ns} ns");
            }
            if let Some(m) = format_timeout_ms(ns) {
                let back = parse_timeout_ms("request-timeout-ms", &m).unwrap().unwrap();
                assert!(back >= want, "{m} ms is shorter than {ns} ns");
            }
        }
    }
    if data.len() >= 8 {
        let ns = i64::from_le_bytes(data[..8].try_into().unwrap());
        let _ = (format_grpc_timeout(ns), format_timeout_ms(ns));
    }
});
