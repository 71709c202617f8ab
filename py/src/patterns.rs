//! `Backoff`: the core's retry rules (`polyctx::patterns::Backoff`) for the
//! asyncio retry loop in `python/polyctx/_patterns.py`, which sleeps on the
//! event loop as long as `Backoff.next` says.

use std::time::Duration;

use polyctx::patterns::{self, GiveUp, Next};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyFloat;

use crate::context::{duration_ns, expect_context};

/// How to space the attempts of `polyctx.retry`: waits growing by
/// `multiplier` from `initial` to at most `max` seconds, each shortened by
/// up to `jitter` (0 to 1) at random; at most `max_attempts` attempts; and,
/// given `attempt_time` (how long one attempt is expected to take), never an
/// attempt that the context's remaining time cannot fit.
#[pyclass(frozen, module = "polyctx", name = "Backoff")]
pub(crate) struct Backoff(patterns::Backoff);

fn seconds(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let ns = duration_ns(obj, what)?;
    u64::try_from(ns)
        .map(Duration::from_nanos)
        .map_err(|_| PyValueError::new_err(format!("{what} must not be negative")))
}

fn optional_seconds(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Duration>> {
    obj.filter(|o| !o.is_none()).map(|o| seconds(o, what)).transpose()
}

fn to_seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[pymethods]
impl Backoff {
    #[new]
    #[pyo3(signature = (*, initial = None, max = None, multiplier = 2.0, jitter = 0.2, max_attempts = None, attempt_time = None))]
    fn new(
        initial: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
        multiplier: f64,
        jitter: f64,
        max_attempts: Option<i64>,
        attempt_time: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let defaults = patterns::Backoff::default();
        let max_attempts = max_attempts
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    PyValueError::new_err(format!(
                        "max_attempts must be at least 1 (or None, for no limit), not {n}"
                    ))
                })
            })
            .transpose()?;
        let backoff = patterns::Backoff {
            initial: optional_seconds(initial, "initial")?.unwrap_or(defaults.initial),
            max: optional_seconds(max, "max")?.unwrap_or(defaults.max),
            multiplier,
            jitter,
            max_attempts,
            attempt_time: optional_seconds(attempt_time, "attempt_time")?,
        };
        backoff.check().map_err(PyValueError::new_err)?;
        Ok(Backoff(backoff))
    }

    /// The wait after the first failure, in seconds.
    #[getter]
    fn initial(&self) -> f64 {
        to_seconds(self.0.initial)
    }

    /// The longest wait, in seconds.
    #[getter]
    fn max(&self) -> f64 {
        to_seconds(self.0.max)
    }

    #[getter]
    fn multiplier(&self) -> f64 {
        self.0.multiplier
    }

    #[getter]
    fn jitter(&self) -> f64 {
        self.0.jitter
    }

    #[getter]
    fn max_attempts(&self) -> Option<u32> {
        self.0.max_attempts
    }

    /// How long one attempt is expected to take, in seconds, or None.
    #[getter]
    fn attempt_time(&self) -> Option<f64> {
        self.0.attempt_time.map(to_seconds)
    }

    /// The decision after `attempts` failed attempts (0: before the first):
    /// the seconds to wait before the next attempt, or why to give up:
    /// `"attempts"`, `"deadline"` (the time is spent, or what is left cannot
    /// fit another attempt) or `"canceled"` (`polyctx.cause(ctx)` says why).
    /// `random`, uniform in [0, 1), replaces the random draw (for tests).
    #[pyo3(signature = (ctx, attempts, random = None))]
    fn next<'py>(&self, ctx: &Bound<'py, PyAny>, attempts: i64, random: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let py = ctx.py();
        let ctx = &expect_context(ctx, "ctx")?.get().inner;
        let attempts = u32::try_from(attempts)
            .map_err(|_| PyValueError::new_err(format!("attempts must be from 0 to 2**32 - 1, not {attempts}")))?;
        let next = match random {
            None => self.0.next(ctx, attempts),
            Some(r) if (0.0..1.0).contains(&r) => self.0.next_with(ctx, attempts, r),
            Some(r) => return Err(PyValueError::new_err(format!("random must be in [0, 1), not {r}"))),
        };
        Ok(match next {
            Next::Wait(d) => PyFloat::new(py, to_seconds(d)).into_any(),
            Next::GiveUp(why) => pyo3::types::PyString::new(py, give_up_name(&why)).into_any(),
        })
    }

    fn __repr__(&self) -> String {
        let b = &self.0;
        let opt = |d: Option<Duration>| d.map_or("None".to_string(), |d| format!("{}", to_seconds(d)));
        format!(
            "Backoff(initial={}, max={}, multiplier={}, jitter={}, max_attempts={}, attempt_time={})",
            to_seconds(b.initial),
            to_seconds(b.max),
            b.multiplier,
            b.jitter,
            b.max_attempts.map_or("None".to_string(), |n| n.to_string()),
            opt(b.attempt_time),
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Backoff>().is_ok_and(|o| o.get().0 == self.0)
    }
}

/// The name of a reason to give up, the same in every language.
pub(crate) fn give_up_name(why: &GiveUp) -> &'static str {
    match why {
        GiveUp::Attempts => "attempts",
        GiveUp::Deadline => "deadline",
        GiveUp::Canceled(_) => "canceled",
    }
}
