//! Deadlines on the wire, as relative timeouts: gRPC's `grpc-timeout`
//! (PROTOCOL-HTTP2.md: 1 to 8 ASCII digits and a unit, `H M S m u n`) and
//! the millisecond form that Connect's `connect-timeout-ms` and plain
//! HTTP's `request-timeout-ms` share (1 to 10 ASCII digits).
//!
//! One defined result for every input: surrounding whitespace is trimmed;
//! an empty value is absent (`Ok(None)`); anything else that does not match
//! the grammar exactly (signs, spaces inside, more digits than allowed, an
//! unknown unit) is [`Malformed`]; `0` is a budget already spent; values
//! saturate at `i64::MAX` nanoseconds. Outbound timeouts are rounded up (a
//! budget is never sent shorter than it is) and capped at
//! [`MAX_OUTBOUND_NS`].

use std::fmt;

/// The longest timeout polyctx sends: 2,147,483 s (about 24.8 days), the
/// most a grpc-js server can represent (its timers take signed 32-bit
/// milliseconds). Longer budgets are sent as this.
pub const MAX_OUTBOUND_NS: u64 = 2_147_483 * 1_000_000_000;

/// A header value that is present but does not follow its grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The header's name, lowercase.
    pub header: &'static str,
    /// The offending value, as received (possibly truncated for display).
    pub value: String,
}

impl Malformed {
    pub(crate) fn new(header: &'static str, value: &str) -> Malformed {
        let value = match value.char_indices().nth(64) {
            Some((cut, _)) => format!("{}…", &value[..cut]),
            None => value.to_owned(),
        };
        Malformed { header, value }
    }
}

impl Malformed {
    /// The gRPC status a malformed `grpc-timeout` fails the call with: `INTERNAL`.
    pub fn grpc_code(&self) -> u32 {
        13
    }

    /// The Connect error code a malformed `connect-timeout-ms` fails with.
    pub fn connect_code(&self) -> &'static str {
        "invalid_argument"
    }

    /// The HTTP status a malformed `request-timeout-ms` fails with.
    pub fn http_status(&self) -> u16 {
        400
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {} header: {:?}", self.header, self.value)
    }
}

impl std::error::Error for Malformed {}

/// The units of `grpc-timeout`, finest first, with their length in ns.
const GRPC_UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// Parses a `grpc-timeout` value into nanoseconds.
pub fn parse_grpc_timeout(value: &str) -> Result<Option<u64>, Malformed> {
    let v = value.trim_matches(is_ows);
    if v.is_empty() {
        return Ok(None);
    }
    let malformed = || Malformed::new("grpc-timeout", value);
    let unit = v.as_bytes()[v.len() - 1];
    let unit_ns = GRPC_UNITS
        .iter()
        .find(|&&(u, _)| u == unit)
        .map(|&(_, ns)| ns)
        .ok_or_else(malformed)?;
    // The unit is ASCII, so this cut is on a character boundary.
    let count = digits_value(&v[..v.len() - 1], 8).ok_or_else(malformed)?;
    Ok(Some(saturate(u128::from(count) * u128::from(unit_ns))))
}

/// Formats a remaining budget as a `grpc-timeout` value: the finest unit
/// whose rounded-up count fits in 8 digits. `None` when nothing is left.
pub fn format_grpc_timeout(remaining_ns: i64) -> Option<String> {
    let ns = outbound(remaining_ns)?;
    for (unit, unit_ns) in GRPC_UNITS {
        let count = ns.div_ceil(unit_ns);
        if count <= 99_999_999 {
            return Some(format!("{count}{}", unit as char));
        }
    }
    unreachable!("MAX_OUTBOUND_NS fits in 8 digits of minutes")
}

/// Parses a `connect-timeout-ms` or `request-timeout-ms` value into
/// nanoseconds. `header` names it in the error.
pub fn parse_timeout_ms(header: &'static str, value: &str) -> Result<Option<u64>, Malformed> {
    let v = value.trim_matches(is_ows);
    if v.is_empty() {
        return Ok(None);
    }
    let ms = digits_value(v, 10).ok_or_else(|| Malformed::new(header, value))?;
    Ok(Some(saturate(u128::from(ms) * 1_000_000)))
}

/// Formats a remaining budget in whole milliseconds, rounded up (so a
/// budget under a millisecond is sent as `1`). `None` when nothing is left.
pub fn format_timeout_ms(remaining_ns: i64) -> Option<String> {
    Some(outbound(remaining_ns)?.div_ceil(1_000_000).to_string())
}

/// The budget to send: `None` when spent, capped at [`MAX_OUTBOUND_NS`].
fn outbound(remaining_ns: i64) -> Option<u64> {
    let ns = u64::try_from(remaining_ns).ok().filter(|&ns| ns > 0)?;
    Some(ns.min(MAX_OUTBOUND_NS))
}

/// The value of 1 to `max` ASCII digits, nothing else allowed.
fn digits_value(digits: &str, max: usize) -> Option<u64> {
    let ok = !digits.is_empty() && digits.len() <= max && digits.bytes().all(|b| b.is_ascii_digit());
    // At most 10 digits: always fits in a u64.
    ok.then(|| digits.parse().expect("checked digits"))
}

fn saturate(ns: u128) -> u64 {
    u64::try_from(ns).unwrap_or(u64::MAX).min(i64::MAX as u64)
}

/// Optional whitespace as HTTP defines it (space and horizontal tab).
pub(crate) fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_strictly() {
        assert_eq!(parse_grpc_timeout("1S"), Ok(Some(1_000_000_000)));
        assert_eq!(parse_grpc_timeout(" 250m\t"), Ok(Some(250_000_000)));
        assert_eq!(parse_grpc_timeout("0n"), Ok(Some(0)));
        assert_eq!(parse_grpc_timeout(""), Ok(None));
        assert_eq!(parse_grpc_timeout("  "), Ok(None));
        assert_eq!(parse_grpc_timeout("99999999H"), Ok(Some(i64::MAX as u64)), "saturates");
        for bad in [
            "123456789S",
            "1s",
            "S",
            "-1S",
            "+1S",
            "1 S",
            "1.5S",
            "1",
            "１S",
            "1SS",
            "1é",
        ] {
            assert!(parse_grpc_timeout(bad).is_err(), "{bad:?} must be malformed");
        }
    }

    #[test]
    fn grpc_timeouts_format_in_the_finest_unit_rounded_up() {
        assert_eq!(format_grpc_timeout(1).as_deref(), Some("1n"));
        assert_eq!(format_grpc_timeout(99_999_999).as_deref(), Some("99999999n"));
        assert_eq!(format_grpc_timeout(100_000_000).as_deref(), Some("100000u"));
        assert_eq!(
            format_grpc_timeout(100_000_001).as_deref(),
            Some("100001u"),
            "rounded up"
        );
        assert_eq!(format_grpc_timeout(3_000_000_000_000).as_deref(), Some("3000000m"));
        assert_eq!(format_grpc_timeout(i64::MAX).as_deref(), Some("2147483S"), "capped");
        assert_eq!(format_grpc_timeout(0), None);
        assert_eq!(format_grpc_timeout(-5), None);
    }

    #[test]
    fn malformed_maps_to_each_protocols_error() {
        let e = parse_grpc_timeout("1x").unwrap_err();
        assert_eq!(
            (e.grpc_code(), e.connect_code(), e.http_status()),
            (13, "invalid_argument", 400)
        );
    }

    #[test]
    fn millisecond_timeouts() {
        assert_eq!(parse_timeout_ms("connect-timeout-ms", "1500"), Ok(Some(1_500_000_000)));
        assert_eq!(
            parse_timeout_ms("request-timeout-ms", "9999999999"),
            Ok(Some(9_999_999_999_000_000))
        );
        assert!(
            parse_timeout_ms("connect-timeout-ms", "12345678901").is_err(),
            "11 digits"
        );
        assert!(parse_timeout_ms("connect-timeout-ms", "1.5").is_err());
        assert_eq!(format_timeout_ms(1).as_deref(), Some("1"));
        assert_eq!(format_timeout_ms(1_000_001).as_deref(), Some("2"));
        assert_eq!(format_timeout_ms(i64::MAX).as_deref(), Some("2147483000"));
        assert_eq!(format_timeout_ms(0), None);
    }
}
