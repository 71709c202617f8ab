//! `after_func` (Go's `AfterFunc`, running a Python callable on its own
//! thread) and `loop_after_func` (the same, on the calling event loop).

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{PyTraverseError, PyVisit};

use crate::context::{expect_context, not_copyable, type_name};
use crate::scope::asyncio;
use crate::waker::Waker;

enum Stop {
    Thread(polyctx::AfterFunc),
    /// A wait on a loop's waker.
    Loop {
        waker: Py<Waker>,
        id: u64,
    },
}

/// Stops an `after_func` or `loop_after_func`: `stop()` is true if it kept
/// the function from being started.
#[pyclass(frozen, module = "polyctx", name = "StopFunc")]
pub(crate) struct StopFunc(Stop);

#[pymethods]
impl StopFunc {
    fn __call__(&self) -> bool {
        match &self.0 {
            Stop::Thread(f) => f.stop(),
            Stop::Loop { waker, id } => waker.get().unwatch(*id),
        }
    }

    fn __repr__(&self) -> String {
        "<polyctx.StopFunc>".into()
    }

    /// What `pickle` and `copy` call: they refuse, saying why.
    fn __reduce__(&self) -> PyResult<()> {
        Err(not_copyable("StopFunc"))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.0 {
            Stop::Thread(_) => Ok(()),
            Stop::Loop { waker, .. } => visit.call(waker),
        }
    }
}

fn check_callable(f: &Bound<'_, PyAny>) -> PyResult<()> {
    if f.is_callable() {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "fn must be callable, not {}",
        type_name(f)
    )))
}

/// Calls `fn()` on a new thread once `ctx` is done (at once if it already
/// is). An exception it raises is reported like one in `__del__`.
#[pyfunction]
#[pyo3(name = "after_func")]
pub(crate) fn after_func(ctx: &Bound<'_, PyAny>, r#fn: &Bound<'_, PyAny>) -> PyResult<StopFunc> {
    let ctx = &expect_context(ctx, "ctx")?.get().inner;
    check_callable(r#fn)?;
    let f = r#fn.clone().unbind();
    Ok(StopFunc(Stop::Thread(polyctx::after_func(ctx, move || {
        batch::run(f);
    }))))
}

/// Python after-funcs, run in batches. The core runs each after-func on a
/// pool thread; a Python function also needs the GIL, and when each pool
/// thread took it for one call, 10,000 functions meant 10,000 hand-offs of
/// the GIL between threads (the switch interval, 5 ms, whenever the holder
/// took it back first), and a cancel's functions took 50 to 300 ms to run.
/// Here a pool thread that holds the GIL runs every function queued, in
/// order, until its own has run; a thread whose function another one ran
/// returns without the GIL.
///
/// The pool's guarantee stays: a pool thread returns only once its own
/// function has finished, and while it has not, the thread runs what is
/// queued (with the GIL) or waits without the GIL; so a function that
/// blocks (releasing the GIL) holds up nothing queued behind it while any
/// other pool thread has a function not yet finished, and the pool adds
/// threads for it as for any blocked after-func.
///
/// Lock order: `QUEUE` is never held while Python code runs or the GIL is taken.
mod batch {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

    use pyo3::prelude::*;

    struct Item {
        /// Taken by the thread that runs it, and dropped with the GIL held.
        f: Mutex<Option<Py<PyAny>>>,
        done: AtomicBool,
    }

    static QUEUE: Mutex<VecDeque<Arc<Item>>> = Mutex::new(VecDeque::new());
    /// Signalled when a function finishes or one is queued.
    static CHANGED: Condvar = Condvar::new();

    fn queue() -> MutexGuard<'static, VecDeque<Arc<Item>>> {
        QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn run(f: Py<PyAny>) {
        let mine = Arc::new(Item {
            f: Mutex::new(Some(f)),
            done: AtomicBool::new(false),
        });
        queue().push_back(mine.clone());
        CHANGED.notify_all();
        loop {
            if mine.done.load(Ordering::Acquire) {
                return;
            }
            let q = queue();
            if q.is_empty() {
                // Another thread is running it: wait without the GIL.
                let _q = CHANGED
                    .wait_while(q, |q| q.is_empty() && !mine.done.load(Ordering::Acquire))
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            drop(q);
            // Skipped (and so never run) if the interpreter is gone.
            let attached = Python::try_attach(|py| {
                while !mine.done.load(Ordering::Acquire) {
                    let Some(item) = queue().pop_front() else { break };
                    let f = item.f.lock().unwrap_or_else(PoisonError::into_inner).take();
                    if let Some(f) = f {
                        let f = f.bind(py);
                        if let Err(e) = f.call0() {
                            e.write_unraisable(py, Some(f));
                        }
                    }
                    item.done.store(true, Ordering::Release);
                    drop(queue());
                    CHANGED.notify_all();
                }
            });
            if attached.is_none() {
                return;
            }
        }
    }
}

static COPY_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Calls `fn()` on the running event loop once `ctx` is done (soon, if it
/// already is), as a loop callback (`loop.call_soon`) in a copy of the
/// caller's contextvars: for asyncio objects, which are not thread-safe.
#[pyfunction]
#[pyo3(name = "loop_after_func")]
pub(crate) fn loop_after_func(ctx: &Bound<'_, PyAny>, r#fn: &Bound<'_, PyAny>) -> PyResult<StopFunc> {
    let py = ctx.py();
    let ctx = &expect_context(ctx, "ctx")?.get().inner;
    check_callable(r#fn)?;
    let a = asyncio(py)?;
    let event_loop = a.running_loop(py).map_err(|_| {
        PyRuntimeError::new_err(
            "loop_after_func needs a running event loop (call it from a coroutine or loop callback); \
             from a thread without one, use after_func",
        )
    })?;
    let waker = a.waker(py, &event_loop)?;
    let context = COPY_CONTEXT.import(py, "contextvars", "copy_context")?.call0()?;
    let id = waker
        .get()
        .watch_callback(ctx, r#fn.clone().unbind(), event_loop.unbind(), context.unbind());
    Ok(StopFunc(Stop::Loop {
        waker: waker.unbind(),
        id,
    }))
}
