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

mod events;
mod handle;
mod held;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use polyctx::{Cause, Context, Key};

use crate::handle::{entry, key, Cancel, Entry};
use crate::held::{JsCause, JsValue};

/// Sets up this JS environment (the main thread or a worker): `drain`
/// writes into `buffer`, and `dispatch()` is called on the JS thread when
/// other threads have queued events (see `events`). Called once by the JS
/// layer when it loads.
#[napi]
pub fn init(env: Env, dispatch: Function<'_>, buffer: Unknown<'_>) -> Result<()> {
    events::init(&env, &dispatch, &buffer)
}

#[napi]
pub fn background() -> f64 {
    Entry::plain(Context::background())
}

#[napi]
pub fn todo() -> f64 {
    Entry::plain(Context::todo())
}

#[napi]
pub fn with_cancel(parent: f64) -> f64 {
    let (ctx, cancel) = polyctx::with_cancel(&entry(parent).ctx);
    Entry::into_handle(ctx, Cancel::Plain(cancel))
}

#[napi]
pub fn with_cancel_cause(parent: f64) -> f64 {
    let (ctx, cancel) = polyctx::with_cancel_cause(&entry(parent).ctx);
    Entry::into_handle(ctx, Cancel::Cause(cancel))
}

/// `ms` is finite and non-negative (checked in JS). `cause` is a held-table
/// id (0 for none) and `text` its description for other languages.
#[napi]
pub fn with_timeout(parent: f64, ms: f64, cause: f64, text: Option<String>) -> f64 {
    let parent = &entry(parent).ctx;
    let timeout = Duration::try_from_secs_f64(ms / 1e3).unwrap_or(Duration::MAX);
    let (ctx, cancel) = match js_cause(cause, text) {
        Some(c) => polyctx::with_timeout_cause(parent, timeout, c),
        None => polyctx::with_timeout(parent, timeout),
    };
    Entry::into_handle(ctx, Cancel::Plain(cancel))
}

/// `epoch_ms` is a finite wall-clock time in milliseconds (checked in JS).
#[napi]
pub fn with_deadline(parent: f64, epoch_ms: f64, cause: f64, text: Option<String>) -> f64 {
    let parent = &entry(parent).ctx;
    let at = wall::to_instant(epoch_ms);
    let (ctx, cancel) = match js_cause(cause, text) {
        Some(c) => polyctx::with_deadline_cause(parent, at, c),
        None => polyctx::with_deadline(parent, at),
    };
    Entry::into_handle(ctx, Cancel::Plain(cancel))
}

#[napi]
pub fn with_value(parent: f64, key_handle: f64, value: f64) -> f64 {
    let ctx = polyctx::with_value(&entry(parent).ctx, key(key_handle), JsValue::new(value));
    Entry::plain(ctx)
}

#[napi]
pub fn without_cancel(parent: f64) -> f64 {
    Entry::plain(polyctx::without_cancel(&entry(parent).ctx))
}

/// Frees a context handle whose JS wrapper was collected; never cancels.
/// Returns the id of the watch the wrapper's signal had, if it is still
/// registered (it outlives the wrapper while the signal is reachable), else 0.
#[napi]
pub fn release(h: f64) -> f64 {
    // SAFETY: the JS layer calls this once per handle, from its finalizer.
    let entry = unsafe { Entry::from_raw(h) };
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
    match &entry(h).cancel {
        Cancel::Plain(f) => f.cancel(),
        Cancel::Cause(f) => f.cancel(None),
        Cancel::None => {}
    }
    events::drain()
}

/// Cancels with a cause from the held table (0 for none, Go's `cancel(nil)`);
/// returns as `cancel` does. Only for contexts from `withCancelCause`.
#[napi]
pub fn cancel_cause(h: f64, cause: f64, text: Option<String>) -> u32 {
    if let Cancel::Cause(f) = &entry(h).cancel {
        f.cancel(js_cause(cause, text));
    }
    events::drain()
}

/// 0 while live, 1 canceled, 2 deadline exceeded.
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
    entry(h).ctx.deadline().map(wall::from_instant)
}

/// The deadline in nanoseconds on the core's monotonic clock, or null: for
/// exact comparisons (the conformance runner).
#[napi]
pub fn deadline_ns(h: f64) -> Option<f64> {
    entry(h).ctx.deadline_ns().map(|ns| ns as f64)
}

/// Now, in nanoseconds on the core's monotonic clock.
#[napi]
pub fn now_ns() -> f64 {
    polyctx::clock::now_ns() as f64
}

/// The cause: null while live, else see `events::Cause`.
#[napi]
pub fn cause(h: f64) -> Option<Either<f64, String>> {
    polyctx::cause(&entry(h).ctx).map(|c| events::describe_cause(&c))
}

/// Go's `String()` of the context.
#[napi]
pub fn describe(h: f64) -> String {
    entry(h).ctx.to_string()
}

#[napi]
pub fn same(a: f64, b: f64) -> bool {
    entry(a).ctx.same(&entry(b).ctx)
}

/// The held-table id of the value under `key`, or 0.
#[napi]
pub fn value(h: f64, key_handle: f64) -> f64 {
    entry(h).ctx.value(key(key_handle)).map_or(0.0, JsValue::id)
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

/// See `events::hold_loop`.
#[napi]
pub fn hold_loop(env: Env, delta: i32) -> Result<()> {
    events::hold_loop(&env, delta)
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
    let cancel = match &entry(h).cancel {
        Cancel::Plain(f) => Cancel::Plain(f.clone()),
        Cancel::Cause(f) => Cancel::Cause(f.clone()),
        Cancel::None => return false,
    };
    std::thread::spawn(move || match cancel {
        Cancel::Plain(f) => f.cancel(),
        Cancel::Cause(f) => f.cancel(cause.map(Cause::msg)),
        Cancel::None => {}
    });
    true
}

fn js_cause(id: f64, text: Option<String>) -> Option<Cause> {
    (id != 0.0).then(|| Cause::with_payload(text.unwrap_or_default(), JsCause::new(id)))
}

/// Wall-clock milliseconds (what `Date` holds) to and from the core's
/// monotonic deadlines, through one anchor pair taken once per process, so
/// that equal deadlines convert to equal times and back.
mod wall {
    use super::*;
    use std::sync::LazyLock;

    static ANCHOR: LazyLock<(Instant, f64)> = LazyLock::new(|| {
        let now = Instant::now();
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3);
        (now, ms)
    });

    pub(crate) fn to_instant(epoch_ms: f64) -> Instant {
        let (anchor, anchor_ms) = *ANCHOR;
        let delta = (epoch_ms - anchor_ms) / 1e3;
        if delta >= 0.0 {
            let ahead = Duration::try_from_secs_f64(delta).unwrap_or(Duration::MAX);
            anchor
                .checked_add(ahead)
                .unwrap_or_else(|| polyctx::clock::to_instant(polyctx::clock::MAX_DEADLINE_NS))
        } else {
            let behind = Duration::try_from_secs_f64(-delta).unwrap_or(Duration::MAX);
            // Before the clock's zero (boot) is as past as any other past time.
            anchor
                .checked_sub(behind)
                .unwrap_or_else(|| polyctx::clock::to_instant(0))
        }
    }

    pub(crate) fn from_instant(at: Instant) -> f64 {
        let (anchor, anchor_ms) = *ANCHOR;
        if at >= anchor {
            anchor_ms + (at - anchor).as_secs_f64() * 1e3
        } else {
            anchor_ms - (anchor - at).as_secs_f64() * 1e3
        }
    }
}
