//! The core's retry rules (`polyctx::patterns::Backoff`) for the JS layer's
//! `retry`, which sleeps on Node's timers as long as `backoff_next` says.
//! Durations are milliseconds.

use std::time::Duration;

use napi_derive::napi;
use polyctx::clock;
use polyctx::patterns::{Backoff, GiveUp, Next};

use crate::handle::entry;
use crate::protocol::{GIVE_UP_ATTEMPTS, GIVE_UP_CANCELED, GIVE_UP_DEADLINE};

/// The settings of a `Backoff`, from JS.
#[napi(object)]
pub struct BackoffSettings {
    pub initial: f64,
    pub max: f64,
    pub multiplier: f64,
    pub jitter: f64,
    pub max_attempts: Option<f64>,
    pub attempt_time: Option<f64>,
}

fn millis(ms: f64, what: &str) -> Result<Duration, String> {
    match clock::nanos_from_f64(ms, 1e6) {
        Ok(ns) => u64::try_from(ns)
            .map(Duration::from_nanos)
            .map_err(|_| format!("{what} must not be negative, got {ms}")),
        Err(e) => Err(format!(
            "{what} must be a valid duration in milliseconds, got {ms} ({e})"
        )),
    }
}

fn backoff(s: &BackoffSettings) -> Result<Backoff, String> {
    let max_attempts = match s.max_attempts {
        None => None,
        Some(n) if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) => Some(n as u32),
        Some(n) => {
            return Err(format!(
                "maxAttempts must be an integer of at least 1 (or null), got {n}"
            ))
        }
    };
    let b = Backoff {
        initial: millis(s.initial, "initial")?,
        max: millis(s.max, "max")?,
        multiplier: s.multiplier,
        jitter: s.jitter,
        max_attempts,
        attempt_time: s.attempt_time.map(|t| millis(t, "attemptTime")).transpose()?,
    };
    b.check().map_err(|e| e.replace("max_attempts", "maxAttempts"))?;
    Ok(b)
}

/// Why `settings` are refused, in the core's words; null if they are fine.
#[napi]
pub fn backoff_check(settings: BackoffSettings) -> Option<String> {
    backoff(&settings).err()
}

/// The core's decision after `attempts` failures, for the context behind
/// `h`: the wait in milliseconds (>= 0), or a `GIVE_UP_*` code (< 0).
/// `random` in [0, 1) replaces the random draw. The settings are checked
/// (`backoff_check`) when the JS `Backoff` is made.
#[napi]
pub fn backoff_next(h: f64, settings: BackoffSettings, attempts: u32, random: Option<f64>) -> f64 {
    let Ok(b) = backoff(&settings) else {
        return f64::from(GIVE_UP_ATTEMPTS);
    };
    let ctx = &entry(h).ctx;
    let next = match random {
        Some(r) => b.next_with(ctx, attempts, r),
        None => b.next(ctx, attempts),
    };
    match next {
        Next::Wait(d) => d.as_secs_f64() * 1e3,
        Next::GiveUp(GiveUp::Attempts) => f64::from(GIVE_UP_ATTEMPTS),
        Next::GiveUp(GiveUp::Deadline) => f64::from(GIVE_UP_DEADLINE),
        Next::GiveUp(GiveUp::Canceled(_)) => f64::from(GIVE_UP_CANCELED),
    }
}
