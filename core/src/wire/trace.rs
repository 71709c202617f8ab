//! W3C Trace Context (level 2): the `traceparent` and `tracestate` headers.
//!
//! An invalid `traceparent` is as good as none: the receiver starts a new
//! trace and ignores `tracestate`. A `tracestate` with more than 32 members,
//! any invalid member or a duplicated key is dropped whole (the spec forbids
//! propagating part of one).

use std::fmt;

use super::timeout::is_ows;

/// The longest `traceparent` or `tracestate` field polyctx reads; longer
/// ones are dropped before parsing (32 members of at most 513 bytes, and
/// separators, fit).
const MAX_FIELD_BYTES: usize = 32 * 514;

/// The sampled flag: the caller may have recorded its span.
pub const FLAG_SAMPLED: u8 = 0x01;
/// Level 2's random flag: the trace id's right 7 bytes are random.
pub const FLAG_RANDOM: u8 = 0x02;

/// One hop of a distributed trace: the trace it belongs to, the span that
/// is the parent of the next hop's work, and the trace flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// Trace flags; only [`FLAG_SAMPLED`] and [`FLAG_RANDOM`] are sent.
    pub flags: u8,
}

impl TraceContext {
    /// A new trace, with random ids, sampled.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: random_id(),
            span_id: random_id(),
            flags: FLAG_SAMPLED | FLAG_RANDOM,
        }
    }

    /// The next hop of the same trace: a new span id, the same trace id and
    /// flags.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: random_id(),
            ..*self
        }
    }

    /// Whether neither id is all zero, as W3C requires (a `TraceContext`
    /// built from another language's bytes may not be; parsed and generated
    /// ones always are).
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The `traceparent` value: version 00, lowercase, flags masked to the
    /// two that version 00 defines.
    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags & (FLAG_SAMPLED | FLAG_RANDOM)
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({})", self.to_header())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

/// Parses the `traceparent` field values received. `None` when absent,
/// invalid, or when several values disagree.
pub fn parse_traceparent<S: AsRef<str>>(values: &[S]) -> Option<TraceContext> {
    if values.iter().map(|v| v.as_ref().len()).sum::<usize>() > MAX_FIELD_BYTES {
        return None;
    }
    let mut found: Option<&str> = None;
    for part in values.iter().flat_map(|v| v.as_ref().split(',')) {
        let part = part.trim_matches(is_ows);
        if part.is_empty() {
            continue;
        }
        match found {
            Some(seen) if seen != part => return None,
            _ => found = Some(part),
        }
    }
    parse_one(found?)
}

fn parse_one(v: &str) -> Option<TraceContext> {
    let b = v.as_bytes();
    if b.len() < 55 {
        return None;
    }
    let version = lower_hex_byte(&b[0..2])?;
    // Version ff is invalid; 00 is exactly 55 bytes; a later version may
    // append fields after a dash, which this reader ignores.
    let length_ok = match version {
        0xff => false,
        0x00 => b.len() == 55,
        _ => b.len() == 55 || b[55] == b'-',
    };
    if !length_ok || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    for (i, byte) in trace_id.iter_mut().enumerate() {
        *byte = lower_hex_byte(&b[3 + 2 * i..5 + 2 * i])?;
    }
    for (i, byte) in span_id.iter_mut().enumerate() {
        *byte = lower_hex_byte(&b[36 + 2 * i..38 + 2 * i])?;
    }
    let flags = lower_hex_byte(&b[53..55])?;
    Some(TraceContext {
        trace_id,
        span_id,
        flags,
    })
    .filter(TraceContext::is_valid)
}

/// Parses the `tracestate` field values (combined in order). `None` when
/// the whole header must be dropped; an absent or empty header is `Some`
/// of an empty list.
pub fn parse_tracestate<S: AsRef<str>>(values: &[S]) -> Option<Vec<(String, String)>> {
    if values.iter().map(|v| v.as_ref().len()).sum::<usize>() > MAX_FIELD_BYTES {
        return None;
    }
    let mut members: Vec<(String, String)> = Vec::new();
    for member in values.iter().flat_map(|v| v.as_ref().split(',')) {
        let member = member.trim_matches(is_ows);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) || members.iter().any(|(k, _)| k == key) {
            return None;
        }
        members.push((key.to_owned(), value.to_owned()));
        if members.len() > 32 {
            return None;
        }
    }
    Some(members)
}

/// The `tracestate` value for `members`, or `None` when there are none.
pub fn format_tracestate(members: &[(String, String)]) -> Option<String> {
    if members.is_empty() {
        return None;
    }
    let parts: Vec<String> = members.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(parts.join(","))
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` or `tenant@system`, as level 2 defines them.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    match key.split_once('@') {
        None => (1..=256).contains(&b.len()) && b[0].is_ascii_lowercase() && b.iter().all(|&c| key_char(c)),
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&c| key_char(c))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&c| key_char(c))
        }
    }
}

/// 1 to 256 printable ASCII characters other than `,` and `=`, not ending
/// in a space.
fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    (1..=256).contains(&b.len())
        && b.iter().all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b[b.len() - 1] != b' '
}

fn lower_hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(two[0])? << 4 | digit(two[1])?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random id, never all zero: from the kernel's `getrandom`, so that a
/// forked child never repeats its parent's ids.
fn random_id<const N: usize>() -> [u8; N] {
    let mut id = [0u8; N];
    loop {
        fill_random(&mut id);
        if id != [0; N] {
            return id;
        }
    }
}

fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // No getrandom (very old kernels): the clock and a counter,
            // mixed. Unique enough for trace ids, which are not secrets.
            fallback_random(rest);
            return;
        }
    }
}

fn fallback_random(buf: &mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut x = crate::clock::now_ns()
            ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            ^ u64::from(std::process::id()) << 32;
        // splitmix64's finaliser.
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips() {
        let tc = parse_traceparent(&[TP]).unwrap();
        assert_eq!(tc.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tc.span_id_hex(), "00f067aa0ba902b7");
        assert!(tc.sampled());
        assert_eq!(tc.to_header(), TP);
        assert_eq!(parse_traceparent(&[TP, TP]), Some(tc), "identical repeats are fine");
    }

    #[test]
    fn invalid_traceparents_are_none() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        assert!(
            parse_traceparent(&[later]).is_some(),
            "a later version's extra fields are ignored"
        );
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(&[bad]), None, "{bad:?}");
        }
        let other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01";
        assert_eq!(parse_traceparent(&[TP, other]), None, "differing values");
    }

    #[test]
    fn tracestate_is_all_or_nothing() {
        let ts = parse_tracestate(&["rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", "", "tenant@sys=x"]).unwrap();
        assert_eq!(ts.len(), 3);
        assert_eq!(
            format_tracestate(&ts).unwrap(),
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@sys=x"
        );
        assert_eq!(parse_tracestate::<&str>(&[]), Some(vec![]));
        assert_eq!(parse_tracestate(&["a=1,a=2"]), None, "duplicate key");
        assert_eq!(parse_tracestate(&["Upper=1"]), None, "invalid key");
        assert_eq!(parse_tracestate(&["a=x=y"]), None, "invalid value");
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parse_tracestate(&[many.join(",")]), None, "33 members");
        assert_eq!(parse_tracestate(&[many[..32].join(",")]).map(|v| v.len()), Some(32));
    }

    #[test]
    fn random_ids_differ_and_are_never_zero() {
        let a = TraceContext::new_root();
        let b = a.child();
        assert_eq!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
        assert_ne!(TraceContext::new_root().trace_id, a.trace_id);
        assert!(a.is_valid() && b.is_valid());
        assert!(!TraceContext { span_id: [0; 8], ..a }.is_valid());
        assert!(!TraceContext { trace_id: [0; 16], ..a }.is_valid());
        let mut buf = [0u8; 16];
        fallback_random(&mut buf);
        assert_ne!(buf, [0; 16]);
    }
}
