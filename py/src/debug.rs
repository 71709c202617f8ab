//! The core's diagnostics (`polyctx::debug`) for `polyctx.debug`: lost
//! cancels (the count, and a Python hook), live-context tracking with
//! Python creation sites, and the counts of what is pending.
//!
//! The hook. The core calls its hook on whichever thread frees a live
//! context, with no polyctx lock held: a Python thread (holding the GIL, in
//! a deallocation), or a C thread of the process. The Python callable lives
//! here, not in the core's hook slot, so that replacing it never drops a
//! Python object under the core's lock; it is called with the GIL taken (or
//! not at all while the interpreter shuts down).

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, PoisonError};

use polyctx::debug::{self, LostCancel};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use crate::context::expect_context;

static HOOK: Mutex<Option<Py<PyAny>>> = Mutex::new(None);

fn slot() -> MutexGuard<'static, Option<Py<PyAny>>> {
    HOOK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many cancelable contexts have been freed while still live, process-wide.
#[pyfunction]
pub(crate) fn lost_cancels() -> u64 {
    debug::lost_cancels()
}

/// Calls `hook(context, site)` for every lost cancel from now on (None
/// removes it); see the module docs. The core has one hook per process:
/// this replaces one set from C. The hook may call this (to replace or
/// remove itself); a context it frees is counted, not reported.
#[pyfunction]
#[pyo3(signature = (hook, /))]
pub(crate) fn set_lost_cancel_hook(hook: Option<Bound<'_, PyAny>>) -> PyResult<()> {
    if let Some(f) = &hook {
        if !f.is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "hook must be callable or None, not {}",
                crate::context::type_name(f)
            )));
        }
    }
    let installed = hook.is_some();
    let old = std::mem::replace(&mut *slot(), hook.map(Bound::unbind));
    debug::set_lost_cancel_hook(installed.then(|| Box::new(report) as Box<dyn Fn(&LostCancel) + Send + Sync>));
    drop(old); // with the GIL, and no lock held
    Ok(())
}

thread_local! {
    /// This thread is running the hook: a context it frees is not reported
    /// to it again (which could recurse without end).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

fn report(lost: &LostCancel) {
    if IN_HOOK.with(|h| h.replace(true)) {
        return; // a context the hook itself freed: counted, not reported
    }
    Python::try_attach(|py| {
        let Some(f) = slot().as_ref().map(|f| f.clone_ref(py)) else {
            return;
        };
        // A deallocation may run while an exception is being raised: keep it.
        let pending = PyErr::take(py);
        if let Err(e) = f.call1(py, (lost.context.as_str(), lost.site.as_deref())) {
            e.write_unraisable(py, Some(f.bind(py)));
        }
        if let Some(e) = pending {
            e.restore(py);
        }
    });
    IN_HOOK.with(|h| h.set(false));
}

/// Turns tracking of live contexts on or off (contexts made while it is on
/// are listed by `snapshot` until they are freed).
#[pyfunction]
pub(crate) fn track(on: bool) {
    debug::track(on);
}

#[pyfunction]
pub(crate) fn is_tracking() -> bool {
    debug::is_tracking()
}

/// Records where `ctx` was made (if it is tracked).
#[pyfunction]
pub(crate) fn set_site(ctx: &Bound<'_, PyAny>, site: &str) -> PyResult<()> {
    debug::set_site(&expect_context(ctx, "ctx")?.get().inner, site);
    Ok(())
}

static CALLER_SITE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// With tracking on, records the Python line that made `ctx`: the innermost
/// frame outside the polyctx package (`_sites.caller_site`).
pub(crate) fn record_site(py: Python<'_>, ctx: &polyctx::Context) {
    if !debug::is_tracking() {
        return;
    }
    let site = CALLER_SITE
        .import(py, "polyctx._sites", "caller_site")
        .and_then(|f| f.call0())
        .and_then(|s| s.extract::<Option<String>>());
    match site {
        Ok(Some(site)) => debug::set_site(ctx, site),
        Ok(None) => {}
        Err(e) => e.write_unraisable(py, None),
    }
}

/// The tracked live contexts: a tuple per context, `(id, parent id or None,
/// kind, age in seconds, seconds to its deadline (negative: past) or None,
/// error name or None, site or None)`, oldest first, and the core's tree
/// dump of them.
#[pyfunction]
pub(crate) fn snapshot<'py>(py: Python<'py>) -> PyResult<(Vec<Bound<'py, PyTuple>>, String)> {
    let snap = debug::snapshot();
    let rows = snap
        .contexts
        .iter()
        .map(|t| {
            let deadline = t.deadline_in.map(|d| {
                if t.deadline_past {
                    -d.as_secs_f64()
                } else {
                    d.as_secs_f64()
                }
            });
            (
                t.id,
                t.parent,
                t.kind,
                t.age.as_secs_f64(),
                deadline,
                t.err.map(|e| e.to_string()),
                t.site.as_deref(),
            )
                .into_pyobject(py)
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((rows, snap.to_string()))
}

/// Deadlines armed in the core's timer, process-wide.
#[pyfunction]
pub(crate) fn live_timers() -> usize {
    polyctx::stats::pending_deadlines()
}

/// After-funcs registered and not yet started, process-wide: `after_func`s
/// (and C's `ctx_after_func`s) and `loop_after_func`s.
#[pyfunction]
pub(crate) fn pending_after_funcs() -> usize {
    polyctx::stats::pending_after_funcs() + crate::waker::pending_callbacks()
}
