//! The core's diagnostics (`polyctx::debug`) for the JS layer's `debug`:
//! lost cancels (the count, and reports for this thread's environment),
//! live-context tracking with JS creation sites, and what is pending.
//!
//! Reports. The core calls its one hook on whichever thread frees a live
//! context. A JS context is freed on its environment's thread (its
//! wrapper's finalizer calls `release`), so the hook queues the report on
//! that thread when its environment asked for reports, and the JS layer
//! takes them (`take_lost_cancels`) after the release, in JS. Frees on any
//! other thread (C code holding the last reference) are counted only. The
//! hook is installed while at least one environment wants reports.

use std::cell::{Cell, RefCell};
use std::sync::{Mutex, PoisonError};

use napi_derive::napi;
use polyctx::debug::{self, LostCancel};

use crate::handle::entry;

thread_local! {
    /// This thread's environment wants reports.
    static REPORTING: Cell<bool> = const { Cell::new(false) };
    /// Reports not yet taken: `[context, site]`.
    static LOST: RefCell<Vec<(String, Option<String>)>> = const { RefCell::new(Vec::new()) };
}

/// Environments that want reports, process-wide; the hook is installed while
/// there are any. Changed under the lock, so that installing and removing
/// never race.
static REPORTERS: Mutex<usize> = Mutex::new(0);

fn hook(lost: &LostCancel) {
    let _ = REPORTING.try_with(|on| {
        if on.get() {
            let _ = LOST.try_with(|q| q.borrow_mut().push((lost.context.clone(), lost.site.clone())));
        }
    });
}

/// How many cancelable contexts have been freed while still live, process-wide.
#[napi]
pub fn lost_cancels() -> f64 {
    debug::lost_cancels() as f64
}

/// Starts or stops queueing this environment's lost cancels for
/// `take_lost_cancels`.
#[napi]
pub fn report_lost_cancels(on: bool) {
    if REPORTING.with(Cell::get) == on {
        return;
    }
    REPORTING.with(|r| r.set(on));
    let mut reporters = REPORTERS.lock().unwrap_or_else(PoisonError::into_inner);
    if on {
        *reporters += 1;
        if *reporters == 1 {
            debug::set_lost_cancel_hook(Some(Box::new(hook)));
        }
    } else {
        *reporters -= 1;
        if *reporters == 0 {
            debug::set_lost_cancel_hook(None);
        }
        LOST.with(|q| q.borrow_mut().clear());
    }
}

/// The environment is shutting down (`events::shutdown`): it reports no more.
pub(crate) fn shutdown() {
    report_lost_cancels(false);
}

/// The reports queued on this thread since the last call, as `[context,
/// site or null]` pairs.
#[napi]
pub fn take_lost_cancels() -> Vec<Vec<Option<String>>> {
    LOST.with(|q| std::mem::take(&mut *q.borrow_mut()))
        .into_iter()
        .map(|(context, site)| vec![Some(context), site])
        .collect()
}

/// Turns tracking of live contexts on or off, process-wide.
#[napi]
pub fn track(on: bool) {
    debug::track(on);
}

#[napi]
pub fn is_tracking() -> bool {
    debug::is_tracking()
}

/// Records where the context behind `h` was made (if it is tracked).
#[napi]
pub fn set_site(h: f64, site: String) {
    debug::set_site(&entry(h).ctx, site);
}

/// One tracked live context.
#[napi(object)]
pub struct Tracked {
    pub id: f64,
    pub parent: Option<f64>,
    pub kind: String,
    pub age_ms: f64,
    /// Milliseconds to its deadline (negative: past), or null.
    pub deadline_in_ms: Option<f64>,
    /// Go's text of its error, or null while it is not done.
    pub err: Option<String>,
    pub site: Option<String>,
}

#[napi(object)]
pub struct Snapshot {
    pub contexts: Vec<Tracked>,
    /// The core's tree dump.
    pub text: String,
}

/// The tracked contexts alive now, oldest first, and their tree.
#[napi]
pub fn snapshot() -> Snapshot {
    let snap = debug::snapshot();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let contexts = snap
        .contexts
        .iter()
        .map(|t| Tracked {
            id: t.id as f64,
            parent: t.parent.map(|p| p as f64),
            kind: t.kind.to_string(),
            age_ms: ms(t.age),
            deadline_in_ms: t.deadline_in.map(|d| if t.deadline_past { -ms(d) } else { ms(d) }),
            err: t.err.map(|e| e.to_string()),
            site: t.site.clone(),
        })
        .collect();
    Snapshot {
        contexts,
        text: snap.to_string(),
    }
}

/// Deadlines armed in the core's timer, process-wide.
#[napi]
pub fn live_timers() -> u32 {
    count(polyctx::stats::pending_deadlines())
}

/// The core's after-funcs not yet started, process-wide (C's
/// `ctx_after_func`s; the JS layer counts its own).
#[napi]
pub fn pending_after_funcs() -> u32 {
    count(polyctx::stats::pending_after_funcs())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
