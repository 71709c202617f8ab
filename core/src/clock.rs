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
    fn absurd_timeouts_saturate() {
        assert_eq!(deadline_after(Duration::MAX), MAX_DEADLINE_NS);
        let far = to_instant(MAX_DEADLINE_NS);
        assert!(far > Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    }
}
