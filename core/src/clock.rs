//! The one clock every language agrees on: `CLOCK_MONOTONIC` in nanoseconds.
//!
//! It is the clock of C's `ctx_now_ns`, Python's `time.monotonic()` (and so
//! asyncio's `loop.time()`), and Rust's [`Instant`] on Linux. Deadlines are
//! stored as nanoseconds on it; conversions to [`Instant`] go through one
//! anchor pair, so `to_instant(from_instant(i)) == i` exactly.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// No deadline.
pub(crate) const NEVER: u64 = u64::MAX;

/// The latest deadline polyctx stores (about 292 years of uptime); later
/// ones, including `Duration::MAX` timeouts, saturate to it. Still a deadline
/// that `Instant` can represent.
pub const MAX_DEADLINE_NS: u64 = u64::MAX / 2;

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always
    // supported, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `now + timeout` as a deadline, saturating at [`MAX_DEADLINE_NS`].
pub fn deadline_after(timeout: Duration) -> u64 {
    add(now_ns(), timeout)
}

/// `at + d`, saturating at [`MAX_DEADLINE_NS`].
pub(crate) fn add(at: u64, d: Duration) -> u64 {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    at.saturating_add(ns).min(MAX_DEADLINE_NS)
}

/// `now + timeout_ns` for a signed timeout, saturating into
/// `0..=MAX_DEADLINE_NS`. A negative timeout gives a deadline already past,
/// as Go's `WithTimeout` does: every binding converts through here, so a
/// negative timeout means the same thing in every language.
pub fn deadline_in(now: u64, timeout_ns: i64) -> u64 {
    let magnitude = timeout_ns.unsigned_abs();
    if timeout_ns >= 0 {
        now.saturating_add(magnitude).min(MAX_DEADLINE_NS)
    } else {
        now.saturating_sub(magnitude)
    }
}

/// A deadline given as signed nanoseconds on this clock (C's `int64_t`):
/// negative ones are long past, later ones saturate at [`MAX_DEADLINE_NS`].
pub fn from_signed(deadline_ns: i64) -> u64 {
    u64::try_from(deadline_ns).unwrap_or(0).min(MAX_DEADLINE_NS)
}

/// Why a number given by a binding cannot be a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// NaN.
    NotANumber,
    /// Infinite, or beyond what signed 64-bit nanoseconds hold (about 292 years).
    OutOfRange,
}

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DurationError::NotANumber => "a duration cannot be NaN",
            DurationError::OutOfRange => "a duration must be finite and within about 292 years (2**63 - 1 nanoseconds)",
        })
    }
}

impl std::error::Error for DurationError {}

/// A duration given as a float count of a unit (Python's seconds: `1e9`;
/// JavaScript's milliseconds: `1e6`) as signed nanoseconds, rounded to the
/// nearest. The one rule for every binding: NaN and infinities are errors,
/// so is anything beyond `i64` nanoseconds; negatives are kept (and mean
/// "already past" to [`deadline_in`]).
pub fn nanos_from_f64(value: f64, unit_ns: f64) -> Result<i64, DurationError> {
    if value.is_nan() {
        return Err(DurationError::NotANumber);
    }
    let ns = (value * unit_ns).round();
    // `i64::MAX as f64` rounds up to 2**63, which is already out of range.
    if !ns.is_finite() || ns >= i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(DurationError::OutOfRange);
    }
    Ok(ns as i64)
}

struct Anchor {
    instant: Instant,
    ns: u64,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| Anchor {
    instant: Instant::now(),
    ns: now_ns(),
});

/// The deadline in nanoseconds for an `Instant`, saturating into `0..=MAX_DEADLINE_NS`.
pub fn from_instant(instant: Instant) -> u64 {
    let a = &*ANCHOR;
    let ns = if instant >= a.instant {
        let ahead = u64::try_from((instant - a.instant).as_nanos()).unwrap_or(u64::MAX);
        a.ns.saturating_add(ahead)
    } else {
        let behind = u64::try_from((a.instant - instant).as_nanos()).unwrap_or(u64::MAX);
        a.ns.saturating_sub(behind)
    };
    ns.min(MAX_DEADLINE_NS)
}

/// The `Instant` for a deadline in nanoseconds.
pub fn to_instant(ns: u64) -> Instant {
    let a = &*ANCHOR;
    let ns = ns.min(MAX_DEADLINE_NS);
    if ns >= a.ns {
        a.instant + Duration::from_nanos(ns - a.ns)
    } else {
        // Before the anchor: `Instant` cannot go below the clock's zero, which
        // is boot time, and neither can `ns`.
        a.instant
            .checked_sub(Duration::from_nanos(a.ns - ns))
            .unwrap_or(a.instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_round_trips_exactly() {
        let now = Instant::now();
        for i in [now, now + Duration::from_secs(3600), now + Duration::from_nanos(1)] {
            assert_eq!(to_instant(from_instant(i)), i);
        }
    }

    #[test]
    fn now_ns_agrees_with_instant() {
        let before = from_instant(Instant::now());
        let ns = now_ns();
        let after = from_instant(Instant::now());
        // The anchor pair is read back to back, so allow a generous skew.
        assert!(ns + 1_000_000 >= before && ns <= after + 1_000_000);
    }

    #[test]
    fn signed_timeouts_follow_go() {
        assert_eq!(deadline_in(1_000, -400), 600, "negative: already past");
        assert_eq!(deadline_in(1_000, i64::MIN), 0);
        assert_eq!(deadline_in(1_000, i64::MAX), MAX_DEADLINE_NS);
        assert_eq!(deadline_in(1_000, 0), 1_000);
        assert_eq!(from_signed(-5), 0);
        assert_eq!(from_signed(i64::MAX), MAX_DEADLINE_NS);
    }

    #[test]
    fn float_durations_have_one_rule() {
        assert_eq!(nanos_from_f64(1.5, 1e9), Ok(1_500_000_000));
        assert_eq!(nanos_from_f64(-0.25, 1e3), Ok(-250));
        assert_eq!(nanos_from_f64(f64::NAN, 1e9), Err(DurationError::NotANumber));
        assert_eq!(nanos_from_f64(f64::INFINITY, 1e6), Err(DurationError::OutOfRange));
        assert_eq!(nanos_from_f64(f64::NEG_INFINITY, 1e6), Err(DurationError::OutOfRange));
        assert_eq!(nanos_from_f64(1e300, 1e9), Err(DurationError::OutOfRange));
        assert_eq!(
            nanos_from_f64(9.3e9, 1e9),
            Err(DurationError::OutOfRange),
            "past 2**63 ns"
        );
        assert!(nanos_from_f64(9.2e9, 1e6).is_ok(), "9.2e9 ms is about 106 days");
    }

    #[test]
    fn absurd_timeouts_saturate() {
        assert_eq!(deadline_after(Duration::MAX), MAX_DEADLINE_NS);
        let far = to_instant(MAX_DEADLINE_NS);
        assert!(far > Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    }
}
