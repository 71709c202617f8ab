//! The native half of the `polyctx` npm package: polyctx's core exposed to
//! the hand-written JS layer (`node/index.js`) as plain functions on numbers.
//!
//! Nothing here is public API. The JS layer owns every handle, validates
//! every argument, and keeps the JS values (request values, causes) in its
//! own table; the core stores only their ids. The model itself — the tree,
//! cancellation, deadlines, causes, values — is entirely the core's.
//!
//! - A context handle is a `Box<Entry>` pointer carried as a JS number,
//!   freed by a `FinalizationRegistry` when its JS wrapper is collected.
//!   Plain functions on numbers are the cheapest napi calls there are; a
//!   napi class instance per context would cost more than the whole
//!   derive-and-cancel budget.
//! - How cancellation reaches JS (abort signals, after-funcs) and how JS
//!   values are released is in `events`.

// `pub` like the functions at the root, whose registration napi generates
// outside test builds: so that `cargo test` does not see them as unused.
pub mod cabi;
pub mod debug;
mod events;
mod handle;
mod held;
pub mod patterns;
mod protocol;
pub mod wire;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use polyctx::clock::{self, DurationError};
use polyctx::{Cause, Context, Key};

use crate::handle::{entry, key, Entry};
use crate::held::JsCause;
use crate::protocol::NO_HANDLE;

/// Sets up this JS environment (the main thread or a worker): `drain`
/// writes into `buffer`, and `dispatch()` is called on the JS thread when
/// other threads have queued events (see `events`). Called once by the JS
/// layer when it loads.
#[napi]
pub fn init(env: Env, dispatch: Function<'_>, buffer: Unknown<'_>) -> Result<()> {
    events::init(&env, &dispatch, &buffer)
}

/// The process is exiting: see `events::process_exiting`. The JS layer
/// calls it from the main thread's `'exit'` event.
#[napi]
pub fn process_exiting() {
    events::process_exiting();
}

#[napi]
pub fn background() -> f64 {
    Entry::into_handle(Context::background(), None, f64::NAN)
}

#[napi]
pub fn todo() -> f64 {
    Entry::into_handle(Context::todo(), None, f64::NAN)
}

#[napi]
pub fn with_cancel(parent: f64) -> f64 {
    let parent = entry(parent);
    let (ctx, cancel) = polyctx::with_cancel(&parent.ctx);
    Entry::into_handle(ctx, Some(cancel.into()), parent.early_deadline)
}

#[napi]
pub fn with_cancel_cause(parent: f64) -> f64 {
    let parent = entry(parent);
    let (ctx, cancel) = polyctx::with_cancel_cause(&parent.ctx);
    Entry::into_handle(ctx, Some(cancel.into()), parent.early_deadline)
}

/// A child done `ms` milliseconds from now (negative: already done), by
/// the core's rule for durations; `NO_HANDLE` if `ms` is NaN, infinite or
/// beyond it (`duration_error` says why). `cause` is a held-table id (0 for
/// none) and `text` its description for other languages.
#[napi]
pub fn with_timeout(parent: f64, ms: f64, cause: f64, text: Option<String>) -> f64 {
    let Ok(timeout_ns) = clock::nanos_from_f64(ms, 1e6) else {
        return NO_HANDLE.into();
    };
    let parent = entry(parent);
    let (ctx, cancel) = polyctx::with_timeout_ns(&parent.ctx, timeout_ns, js_cause(cause, text));
    let early = wall::early_deadline(&ctx, parent, || wall::now_ms() + ms);
    Entry::into_handle(ctx, Some(cancel.into()), early)
}

/// A child done at `epoch_ms`, a finite wall-clock time in milliseconds
/// (checked in JS): any time in the past is already past; `NO_HANDLE` for
/// one further ahead than the core's rule for durations allows.
#[napi]
pub fn with_deadline(parent: f64, epoch_ms: f64, cause: f64, text: Option<String>) -> f64 {
    let Some(at) = wall::to_ns(epoch_ms) else {
        return NO_HANDLE.into();
    };
    let parent = entry(parent);
    let (ctx, cancel) = polyctx::with_deadline_ns(&parent.ctx, at, js_cause(cause, text));
    let early = wall::early_deadline(&ctx, parent, || epoch_ms);
    Entry::into_handle(ctx, Some(cancel.into()), early)
}

/// Why `ms` milliseconds is not a duration, in the core's words; null if it is one.
#[napi]
pub fn duration_error(ms: f64) -> Option<String> {
    clock::nanos_from_f64(ms, 1e6)
        .err()
        .as_ref()
        .map(DurationError::to_string)
}

/// A child with the held value `value` under the key.
#[napi]
pub fn with_value(parent: f64, key_handle: f64, value: f64) -> f64 {
    let parent = entry(parent);
    let ctx = polyctx::with_value(&parent.ctx, key(key_handle), held::value_of_id(value));
    Entry::into_handle(ctx, None, parent.early_deadline)
}

/// A child with a string under the key, stored as UTF-8 (C reads it too).
#[napi]
pub fn with_value_text(parent: f64, key_handle: f64, text: String) -> f64 {
    let parent = entry(parent);
    let ctx = polyctx::with_value(&parent.ctx, key(key_handle), held::value_of_text(&text));
    Entry::into_handle(ctx, None, parent.early_deadline)
}

#[napi]
pub fn without_cancel(parent: f64) -> f64 {
    Entry::into_handle(polyctx::without_cancel(&entry(parent).ctx), None, f64::NAN)
}

/// A second handle on the context and cancel function behind `h`, for JS
/// objects that must cancel a context without keeping its wrapper alive
/// (`fromSignal`'s links). Freed like any handle.
#[napi]
pub fn duplicate(h: f64) -> f64 {
    let entry = entry(h);
    Entry::into_handle(entry.ctx.clone(), entry.cancel.clone(), entry.early_deadline)
}

/// Frees a context handle whose JS wrapper was collected; never cancels.
/// Returns the id of the watch the wrapper's signal had, if it is still
/// registered (it outlives the wrapper while the signal is reachable), else 0.
#[napi]
pub fn release(h: f64) -> f64 {
    // SAFETY: the JS layer calls this once per handle, from its finalizer.
    let Some(entry) = (unsafe { Entry::from_raw(h) }) else {
        return 0.0;
    };
    let watch = entry.watch.get();
    if watch != 0.0 && events::is_watched(watch) {
        watch
    } else {
        0.0
    }
}

/// Cancels without a cause. Returns how many events `drain` wrote: the
/// signals and after-funcs this reached, for the JS layer to dispatch
/// before it returns. The JS layer calls it only for contexts with a cancel function.
#[napi]
pub fn cancel(h: f64) -> u32 {
    let _call = events::DrainingCall::enter();
    if let Some(f) = &entry(h).cancel {
        f.cancel();
    }
    events::drain()
}

/// Cancels with a cause from the held table (0 for none, Go's `cancel(nil)`);
/// returns as `cancel` does. Only for contexts from `withCancelCause`.
#[napi]
pub fn cancel_cause(h: f64, cause: f64, text: Option<String>) -> u32 {
    let _call = events::DrainingCall::enter();
    if let Some(f) = &entry(h).cancel {
        // A plain cancel function refuses a cause; the JS layer never gives it one.
        let _ = f.cancel_with_cause(js_cause(cause, text));
    }
    events::drain()
}

/// `ERR_NONE` while live, else `ERR_CANCELED` or `ERR_DEADLINE_EXCEEDED`.
#[napi]
pub fn err(h: f64) -> u32 {
    events::err_code(&entry(h).ctx)
}

#[napi]
pub fn is_done(h: f64) -> bool {
    entry(h).ctx.is_done()
}

/// The deadline in epoch milliseconds, or null.
#[napi]
pub fn deadline(h: f64) -> Option<f64> {
    let entry = entry(h);
    if entry.early_deadline.is_nan() {
        entry.ctx.deadline_ns().map(wall::from_ns)
    } else {
        Some(entry.early_deadline)
    }
}

/// The cause: null while live, else see `events::describe_cause`.
#[napi]
pub fn cause(h: f64) -> Option<Either<f64, String>> {
    let ctx = &entry(h).ctx;
    polyctx::cause(ctx).map(|c| events::describe_cause(&c, ctx))
}

/// Go's `String()` of the context.
#[napi]
pub fn describe(h: f64) -> String {
    entry(h).ctx.to_string()
}

/// The value under `key` as `held::read` gives it, or 0 if none.
#[napi]
pub fn value(h: f64, key_handle: f64) -> held::JsRead {
    entry(h).ctx.value(key(key_handle)).map_or(Either4::A(0.0), held::read)
}

#[napi]
pub fn create_key(name: String) -> f64 {
    handle::key_into_raw(Key::new(name))
}

#[napi]
pub fn release_key(k: f64) {
    // SAFETY: the JS layer calls this once per key, from its finalizer.
    drop(unsafe { handle::key_from_raw(k) });
}

/// Watches `h` under the JS-chosen `id`: when the context is done, `id`
/// is drained on this thread. `signal` marks the watch of the wrapper's
/// signal (see `release`). Returns what `drain` wrote: the watch itself, if
/// the context is already done.
#[napi]
pub fn watch(h: f64, id: f64, signal: bool) -> u32 {
    let _call = events::DrainingCall::enter();
    let entry = entry(h);
    if signal {
        entry.watch.set(id);
    }
    events::watch(&entry.ctx, id);
    events::drain()
}

/// Stops a watch. True if this kept it from firing; false if it has fired
/// (its event is then drained or on its way) or was already stopped.
#[napi]
pub fn unwatch(id: f64) -> bool {
    events::unwatch(id)
}

/// See `events::drain`.
#[napi]
pub fn drain() -> u32 {
    events::drain()
}

/// See `events::drain`.
#[napi]
pub fn cause_text(k: u32) -> Option<String> {
    events::cause_text(k)
}

/// Test support: cancels the context from a new native thread, as a
/// deadline or C code would, and returns at once.
#[napi]
pub fn cancel_from_thread(h: f64, cause: Option<String>) -> bool {
    let Some(cancel) = entry(h).cancel.clone() else {
        return false;
    };
    std::thread::spawn(move || {
        if cancel.cancel_with_cause(cause.map(Cause::msg)).is_err() {
            cancel.cancel();
        }
    });
    true
}

/// Test support: what is live natively, process-wide (every JS environment).
#[napi(object)]
pub struct LiveCounts {
    /// Context handles: one per JS `Context` wrapper not yet collected.
    pub contexts: u32,
    /// Key handles: one per JS `Key` not yet collected.
    pub keys: u32,
    /// Watches: a context's signal, or an after-func, waiting for it to be done.
    pub watches: u32,
    /// Deadlines armed in the core's timer.
    pub deadlines: u32,
}

/// See [`LiveCounts`].
#[napi]
pub fn live_counts() -> LiveCounts {
    let (contexts, keys) = handle::live_counts();
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    LiveCounts {
        contexts: count(contexts),
        keys: count(keys),
        watches: count(events::watch_count()),
        deadlines: count(polyctx::stats::pending_deadlines()),
    }
}

fn js_cause(id: f64, text: Option<String>) -> Option<Cause> {
    (id != 0.0).then(|| Cause::with_payload(text.unwrap_or_default(), JsCause::new(id)))
}

/// Wall-clock milliseconds (what `Date` holds) to and from the core's clock,
/// through one anchor pair taken once per process, so that equal deadlines
/// convert to equal times and back. The anchor is a whole millisecond, so
/// whole-millisecond deadlines round-trip exactly.
mod wall {
    use super::*;
    use std::sync::LazyLock;
    use std::time::{SystemTime, UNIX_EPOCH};

    struct Anchor {
        /// On the core's clock.
        ns: i128,
        /// The same instant in epoch milliseconds, a whole number.
        ms: f64,
    }

    static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| {
        let ns = clock::now_ns();
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let sub_ms = i128::from(since_epoch.subsec_nanos() % 1_000_000);
        Anchor {
            ns: i128::from(ns) - sub_ms,
            ms: (since_epoch.as_millis() as f64).floor(),
        }
    });

    /// Now, in epoch milliseconds on this anchor.
    pub(crate) fn now_ms() -> f64 {
        from_ns(clock::now_ns())
    }

    /// A deadline on the core's clock in epoch milliseconds (rounded to the
    /// microsecond, so that `Date`'s truncation keeps a whole millisecond).
    pub(crate) fn from_ns(ns: u64) -> f64 {
        let a = &*ANCHOR;
        let ms = a.ms + (i128::from(ns) - a.ns) as f64 / 1e6;
        (ms * 1e3).round() / 1e3
    }

    /// An epoch-millisecond deadline on the core's clock: the distance from
    /// the anchor follows the core's rule for durations, except that any
    /// past is past (clamped at the clock's zero). `None` if too far ahead.
    pub(crate) fn to_ns(epoch_ms: f64) -> Option<u64> {
        let a = &*ANCHOR;
        let delta = epoch_ms - a.ms;
        match clock::nanos_from_f64(delta, 1e6) {
            Ok(ns) => Some(clock::from_signed(
                i64::try_from(a.ns + i128::from(ns)).unwrap_or(i64::MAX),
            )),
            Err(_) if delta < 0.0 => Some(0),
            Err(_) => None,
        }
    }

    /// The deadline to report for `ctx`, just made from `parent` with a
    /// deadline requested at `requested()` (epoch ms), when the core holds it
    /// clamped at its clock's zero; else NaN (`Entry::early_deadline`).
    /// Then the earlier of the two applies, as in Go.
    pub(crate) fn early_deadline(ctx: &Context, parent: &Entry, requested: impl FnOnce() -> f64) -> f64 {
        if ctx.deadline_ns() != Some(0) {
            return f64::NAN;
        }
        let inherited = if parent.early_deadline.is_nan() {
            parent.ctx.deadline_ns().map_or(f64::INFINITY, from_ns)
        } else {
            parent.early_deadline
        };
        requested().min(inherited)
    }
}
