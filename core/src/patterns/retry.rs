//! Retry with backoff under one budget. The rules live here once:
//! [`Backoff::next`] decides, after each failed attempt, whether to try again
//! and after how long; bindings drive their own sleeps (asyncio, promises)
//! with it, and [`retry`] is the blocking loop for threads.

use std::fmt;
use std::time::Duration;

use crate::{cause, clock, Cause, Context, Error};

/// How to space attempts: exponential, capped, with jitter, within the
/// context's budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Each wait is this many times the previous one (before jitter).
    pub multiplier: f64,
    /// How much of each wait is random, 0 to 1: a wait of `d` becomes a
    /// uniform pick in `[d * (1 - jitter), d]`, so that clients that failed
    /// together do not retry together.
    pub jitter: f64,
    /// Give up after this many attempts (`None`: only the budget limits).
    pub max_attempts: Option<u32>,
    /// How long one attempt is expected to take: an attempt that the
    /// remaining budget cannot fit is never started.
    pub attempt_time: Option<Duration>,
}

impl Default for Backoff {
    /// 100 ms, doubling to at most 10 s, 20% jitter, no attempt limit.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: None,
            attempt_time: None,
        }
    }
}

/// Why a retry loop gave up.
#[derive(Clone, Debug)]
pub enum GiveUp {
    /// `max_attempts` attempts failed.
    Attempts,
    /// The budget ran out, or what is left of it cannot fit another attempt.
    Deadline,
    /// The context was canceled, with this cause.
    Canceled(Cause),
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Attempts => f.write_str("gave up: out of attempts"),
            GiveUp::Deadline => f.write_str("gave up: out of time"),
            GiveUp::Canceled(cause) => write!(f, "gave up: canceled ({cause})"),
        }
    }
}

/// What to do after `attempts` failed attempts.
#[derive(Clone, Debug)]
pub enum Next {
    /// Wait this long, then try again.
    Wait(Duration),
    /// Stop.
    GiveUp(GiveUp),
}

impl Backoff {
    /// The decision after `attempts` failures (0: before the first attempt,
    /// where the answer is to wait 0 or give up). `random` is uniform in
    /// `[0, 1)`; [`Backoff::next`] draws it.
    pub fn next_with(&self, ctx: &Context, attempts: u32, random: f64) -> Next {
        if let Some(err) = ctx.err() {
            return Next::GiveUp(match err {
                Error::DeadlineExceeded => GiveUp::Deadline,
                Error::Canceled => GiveUp::Canceled(cause(ctx).unwrap_or_else(|| Cause::from(err))),
            });
        }
        if self.max_attempts.is_some_and(|max| attempts >= max) {
            return Next::GiveUp(GiveUp::Attempts);
        }
        let wait = if attempts == 0 {
            Duration::ZERO
        } else {
            self.wait(attempts, random)
        };
        if let Some(deadline) = ctx.deadline_ns() {
            let left = Duration::from_nanos(deadline.saturating_sub(clock::now_ns()));
            let needed = wait + self.attempt_time.unwrap_or(Duration::ZERO);
            // An attempt that would start at or after the deadline, or not
            // finish before it, is not worth starting.
            if needed >= left && (wait > Duration::ZERO || self.attempt_time.is_some()) {
                return Next::GiveUp(GiveUp::Deadline);
            }
        }
        Next::Wait(wait)
    }

    /// Whether the settings make sense: `multiplier` a finite number of at
    /// least 1, `jitter` from 0 to 1, `max_attempts` at least 1. Bindings
    /// check what their callers give them with this, so that every language
    /// refuses the same settings with the same words. [`Backoff::next`]
    /// does not need it: it reads a NaN as the nearest sensible value.
    pub fn check(&self) -> Result<(), &'static str> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err("multiplier must be a finite number of at least 1");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("jitter must be a number from 0 to 1");
        }
        if self.max_attempts == Some(0) {
            return Err("max_attempts must be at least 1 (or none, for no limit)");
        }
        Ok(())
    }

    /// [`Backoff::next_with`], with fresh randomness.
    pub fn next(&self, ctx: &Context, attempts: u32) -> Next {
        self.next_with(ctx, attempts, crate::rand::unit())
    }

    /// The wait after the `attempts`-th failure, jitter applied.
    fn wait(&self, attempts: u32, random: f64) -> Duration {
        let exponent = i32::try_from(attempts - 1).unwrap_or(i32::MAX);
        let full = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        // 0 times an infinite growth is NaN: no initial wait, no wait.
        let capped = if full.is_nan() {
            0.0
        } else {
            full.min(self.max.as_secs_f64())
        };
        // NaN (which `clamp` keeps) reads as 0: no jitter, no randomness.
        let unit = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
        Duration::from_secs_f64(capped * (1.0 - unit(self.jitter) * unit(random)))
    }
}

/// An attempt's failure: worth retrying, or not.
#[derive(Debug)]
pub enum Failure<E> {
    /// Try again (a timeout, a 503, a reset connection...).
    Retry(E),
    /// Stop now (a 400, a bad password...).
    Fatal(E),
}

/// Why [`retry`] failed: the attempt's own error, or that it gave up (with
/// the last attempt's error, if any attempt ran).
#[derive(Debug)]
pub enum RetryError<E> {
    /// An attempt failed with an error not worth retrying.
    Fatal(E),
    /// It gave up after `attempts` attempts.
    GaveUp {
        why: GiveUp,
        attempts: u32,
        last: Option<E>,
    },
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::Fatal(e) => write!(f, "{e}"),
            RetryError::GaveUp { why, attempts, last } => {
                write!(f, "{why} after {attempts} attempt(s)")?;
                match last {
                    Some(e) => write!(f, "; last error: {e}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RetryError<E> {}

/// Calls `attempt` (with its number, from 1) until it succeeds, fails
/// fatally, or [`Backoff::next`] gives up. The wait between attempts ends
/// the moment `ctx` is done. One budget, `ctx`'s, covers every attempt.
pub fn retry<T, E>(
    ctx: &Context,
    backoff: &Backoff,
    mut attempt: impl FnMut(u32) -> Result<T, Failure<E>>,
) -> Result<T, RetryError<E>> {
    let mut last = None;
    let mut attempts = 0;
    loop {
        match backoff.next(ctx, attempts) {
            Next::GiveUp(why) => return Err(RetryError::GaveUp { why, attempts, last }),
            Next::Wait(wait) => {
                if !wait.is_zero() && ctx.wait_timeout(wait) {
                    continue; // done while waiting: `next` says why
                }
            }
        }
        attempts += 1;
        match attempt(attempts) {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(RetryError::Fatal(e)),
            Err(Failure::Retry(e)) => last = Some(e),
        }
    }
}
