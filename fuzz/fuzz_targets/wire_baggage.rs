//! Baggage never panics, stays within its limits, and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polyctx::wire::{format_baggage, parse_baggage};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    let baggage = parse_baggage(&values);
    assert!(baggage.len() <= 64);
    let formatted = format_baggage(baggage.iter().map(|(k, e)| (k.as_str(), e))).unwrap();
    if let Some(text) = formatted {
        assert!(text.len() <= 8192);
        // Every member sent comes back as it was (members that would not
        // fit the limits once encoded are left out).
        for (key, entry) in parse_baggage(&[text.as_str()]) {
            assert!(baggage.iter().any(|(k, e)| *k == key && *e == entry), "{key} changed");
        }
    }
});
