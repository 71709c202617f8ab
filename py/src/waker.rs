//! Waking an asyncio event loop when contexts are done.
//!
//! One `Waker` per event loop: a `polyctx::WakeFd` that the loop
//! watches with `add_reader`, and a queue of integer ids. A context's on-done
//! callback runs on whichever thread cancels it (any thread, C code, or the
//! core's timer thread); it only pushes its id and, if the queue was empty,
//! writes the fd. It touches no Python object and never takes the GIL. On the
//! loop's thread, `drain` reads the fd, takes the queue, and resolves the
//! futures or fires the scopes those ids name.
//!
//! Ids carry a generation, so an id that arrives after its entry was removed
//! (a scope that exited while its context was being canceled) finds nothing.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use polyctx::{Registration, WakeFd};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{PyTraverseError, PyVisit};

use crate::call::method;
use crate::context::Context;
use crate::scope::Scope;

struct Shared {
    fd: WakeFd,
    queue: Mutex<Vec<u64>>,
    /// When the fd was last written (clock ns), for the latency benchmark.
    signaled_at: AtomicU64,
}

impl Shared {
    fn new() -> PyResult<Shared> {
        Ok(Shared {
            fd: WakeFd::new().map_err(|e| PyOSError::new_err(e.to_string()))?,
            queue: Mutex::new(Vec::new()),
            signaled_at: AtomicU64::new(0),
        })
    }

    fn queue(&self) -> MutexGuard<'_, Vec<u64>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called on any thread, without the GIL.
    fn push(&self, id: u64) {
        let was_empty = {
            let mut q = self.queue();
            q.push(id);
            q.len() == 1
        };
        // Only the first id after a drain writes: the loop reads the fd before
        // taking the queue, so it never misses one.
        if was_empty {
            self.signaled_at.store(polyctx::clock::now_ns(), Ordering::Relaxed);
            self.fd.signal();
        }
    }
}

enum Kind {
    /// An asyncio future to resolve with None, and its done-callback that
    /// forgets the wait if the future is cancelled first.
    Future(Py<PyAny>),
    /// A `polyctx.scope`, whose task to cancel.
    Scope,
    /// A function of `loop_after_func`, to hand to this loop's `call_soon`
    /// in the `contextvars.Context` it was registered in.
    Callback {
        event_loop: Py<PyAny>,
        context: Py<PyAny>,
        _pending: PendingCallback,
    },
}

/// `loop_after_func`s registered and not yet handed to their loops (or
/// stopped, or dropped with their loops), process-wide: counted by the
/// entries' lifetimes, for `polyctx.debug.pending_after_funcs()`.
static PENDING_CALLBACKS: AtomicUsize = AtomicUsize::new(0);

struct PendingCallback;

impl PendingCallback {
    fn new() -> PendingCallback {
        PENDING_CALLBACKS.fetch_add(1, Ordering::Relaxed);
        PendingCallback
    }
}

impl Drop for PendingCallback {
    fn drop(&mut self) {
        PENDING_CALLBACKS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// See [`PENDING_CALLBACKS`].
pub(crate) fn pending_callbacks() -> usize {
    PENDING_CALLBACKS.load(Ordering::Relaxed)
}

struct Entry {
    kind: Kind,
    target: Py<PyAny>,
    registration: Option<Registration>,
}

#[derive(Default)]
struct Slab {
    slots: Vec<(u32, Option<Entry>)>,
    free: Vec<u32>,
}

impl Slab {
    fn insert(&mut self, entry: Entry) -> u64 {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.1 = Some(entry);
        (u64::from(slot.0) << 32) | u64::from(index)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Entry> {
        let slot = self.slots.get_mut((id & 0xffff_ffff) as usize)?;
        if u64::from(slot.0) != id >> 32 {
            return None;
        }
        slot.1.as_mut()
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let index = (id & 0xffff_ffff) as u32;
        let slot = self.slots.get_mut(index as usize)?;
        if u64::from(slot.0) != id >> 32 || slot.1.is_none() {
            return None;
        }
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(index);
        slot.1.take()
    }
}

/// Wakes one event loop for contexts done on any thread (see the module docs).
#[pyclass(frozen, weakref, module = "polyctx._native")]
pub(crate) struct Waker {
    shared: Arc<Shared>,
    slab: Mutex<Slab>,
}

impl Waker {
    /// Calls `f` on `event_loop` (this waker's loop), in `context`, once
    /// `ctx` is done; returns the id for `unwatch`.
    pub(crate) fn watch_callback(
        &self,
        ctx: &polyctx::Context,
        f: Py<PyAny>,
        event_loop: Py<PyAny>,
        context: Py<PyAny>,
    ) -> u64 {
        let kind = Kind::Callback {
            event_loop,
            context,
            _pending: PendingCallback::new(),
        };
        self.add(ctx, kind, f)
    }

    pub(crate) fn watch_scope(&self, ctx: &polyctx::Context, scope: Py<PyAny>) -> Option<u64> {
        if ctx.is_done() {
            return None;
        }
        Some(self.add(ctx, Kind::Scope, scope))
    }

    fn slab(&self) -> MutexGuard<'_, Slab> {
        self.slab.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, ctx: &polyctx::Context, kind: Kind, target: Py<PyAny>) -> u64 {
        let id = self.slab().insert(Entry {
            kind,
            target,
            registration: None,
        });
        let shared = self.shared.clone();
        // If `ctx` is already done this runs at once, queueing `id` for the
        // next drain.
        let registration = ctx.on_done(move || shared.push(id));
        if let Some(entry) = self.slab().get_mut(id) {
            entry.registration = Some(registration);
        }
        id
    }
}

#[pymethods]
impl Waker {
    #[new]
    fn new() -> PyResult<Self> {
        Ok(Waker {
            shared: Arc::new(Shared::new()?),
            slab: Mutex::new(Slab::default()),
        })
    }

    /// The fd to watch with `loop.add_reader(fd, waker.drain)`.
    #[getter]
    fn fd(&self) -> c_int {
        self.shared.fd.raw_fd()
    }

    /// A future of `loop` resolved when `ctx` is done.
    fn future<'py>(
        slf: &Bound<'py, Self>,
        event_loop: &Bound<'py, PyAny>,
        ctx: &Bound<'py, Context>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let fut = method(event_loop, pyo3::intern!(py, "create_future"), &[])?;
        let ctx = &ctx.get().inner;
        if ctx.is_done() {
            fut.call_method1(pyo3::intern!(py, "set_result"), (py.None(),))?;
            return Ok(fut);
        }
        // The id is known only once the entry is in, so the entry starts
        // without its done-callback.
        let id = slf.get().add(ctx, Kind::Future(py.None()), fut.clone().unbind());
        let forget = Bound::new(
            py,
            Forget {
                waker: slf.clone().unbind(),
                id,
            },
        )?
        .into_any();
        if let Some(entry) = slf.get().slab().get_mut(id) {
            entry.kind = Kind::Future(forget.clone().unbind());
        }
        method(&fut, pyo3::intern!(py, "add_done_callback"), &[&forget])?;
        Ok(fut)
    }

    /// Fires `scope` (cancels its task) on the loop once `ctx` is done, and returns an
    /// id for `unwatch`; returns None, watching nothing, if `ctx` is done already.
    fn watch(&self, ctx: &Bound<'_, Context>, scope: Py<PyAny>) -> Option<u64> {
        self.watch_scope(&ctx.get().inner, scope)
    }

    /// Forgets a wait; true if it had not fired yet (its context may be done
    /// and its id queued, but this loop has not acted on it).
    pub(crate) fn unwatch(&self, id: u64) -> bool {
        let entry = self.slab().remove(id);
        match entry {
            Some(e) => {
                if let Some(r) = &e.registration {
                    r.stop();
                }
                true
            }
            None => false,
        }
    }

    /// Resolves what the contexts done since the last drain are waited on by.
    fn drain(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.fd.clear();
        let ids = std::mem::take(&mut *self.shared.queue());
        let mut first_error = None;
        for id in ids {
            let entry = self.slab().remove(id);
            let Some(entry) = entry else { continue };
            if let Err(e) = fire(py, &entry) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drops every pending wait: the loop is gone.
    fn close(&self) {
        self.release();
    }

    /// When a context done on some thread last signalled this loop, in
    /// `time.monotonic_ns()` nanoseconds (for the latency benchmark).
    #[getter]
    fn signaled_at_ns(&self) -> u64 {
        self.shared.signaled_at.load(Ordering::Relaxed)
    }

    /// How many futures and scopes wait (for tests).
    fn __len__(&self) -> usize {
        self.slab().slots.iter().filter(|(_, e)| e.is_some()).count()
    }

    /// Visits what the waits hold: the loop's futures, scopes and callbacks.
    /// The waker is reachable from its loop (its `add_reader` handle), so a
    /// loop closed with waits pending is a cycle the collector frees.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // Never contended: every user of the slab holds the GIL.
        let Ok(slab) = self.slab.try_lock() else {
            return Ok(());
        };
        for entry in slab.slots.iter().filter_map(|(_, e)| e.as_ref()) {
            visit.call(&entry.target)?;
            match &entry.kind {
                Kind::Future(forget) => visit.call(forget)?,
                Kind::Scope => {}
                Kind::Callback {
                    event_loop, context, ..
                } => {
                    visit.call(event_loop)?;
                    visit.call(context)?;
                }
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        self.release();
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // Stopping the registrations drops their closures, and with the last
        // one the eventfd.
        self.release();
    }
}

impl Waker {
    /// Stops and drops every pending wait.
    fn release(&self) {
        let entries: Vec<Entry> = {
            let mut slab = self.slab();
            let slab = &mut *slab;
            let mut entries = Vec::new();
            for (i, (generation, entry)) in slab.slots.iter_mut().enumerate() {
                if let Some(e) = entry.take() {
                    // As `Slab::remove`: an id queued meanwhile finds nothing.
                    *generation = generation.wrapping_add(1);
                    slab.free.push(i as u32);
                    entries.push(e);
                }
            }
            entries
        };
        for e in &entries {
            if let Some(r) = &e.registration {
                r.stop();
            }
        }
        drop(entries);
    }
}

fn fire(py: Python<'_>, entry: &Entry) -> PyResult<()> {
    let target = entry.target.bind(py);
    match &entry.kind {
        Kind::Future(forget) => {
            // Resolved here, so the done-callback has nothing left to do:
            // spare the loop from scheduling it.
            method(target, pyo3::intern!(py, "remove_done_callback"), &[forget.bind(py)])?;
            if !method(target, pyo3::intern!(py, "done"), &[])?.is_truthy()? {
                method(target, pyo3::intern!(py, "set_result"), &[&py.None().into_bound(py)])?;
            }
        }
        Kind::Scope => {
            if let Ok(scope) = target.cast::<Scope>() {
                Scope::fire(scope)?;
            }
        }
        Kind::Callback {
            event_loop, context, ..
        } => {
            let kwargs = PyDict::new(py);
            kwargs.set_item(pyo3::intern!(py, "context"), context)?;
            event_loop
                .bind(py)
                .call_method(pyo3::intern!(py, "call_soon"), (target,), Some(&kwargs))?;
        }
    }
    Ok(())
}

/// A future's done-callback that forgets its wait (when the future was
/// cancelled, so its context's callback is not kept alive for nothing).
#[pyclass(frozen, module = "polyctx._native")]
struct Forget {
    waker: Py<Waker>,
    id: u64,
}

#[pymethods]
impl Forget {
    fn __call__(&self, _fut: &Bound<'_, PyAny>) {
        self.waker.get().unwatch(self.id);
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.waker)
    }
}
