//! `polyctx.scope`: runs an `async with` block as part of a context's work.
//!
//! Native because it sits on the hot path of every request (one per
//! deadline): entering and leaving it costs no coroutine objects, since the
//! scope is its own awaitable. The logic is asyncio's own `Timeout`'s: cancel
//! the task when the context is done, and at exit turn that `CancelledError`
//! into the context's error only if `Task.uncancel()` shows no other
//! cancellation is pending. Like `Timeout`, a scope whose context is already
//! done when it is entered cancels the task from a `loop.call_soon`
//! callback, so a block that never suspends is never interrupted and leaves
//! no cancellation pending (`task.cancel()` on the running task would be
//! delivered at its next `await`, after the scope, on 3.9-3.12).
//!
//! The innermost scope of a task decides whether it is cancelled: a scope
//! whose context is done while a scope nested in it (in the same task) runs
//! on a context that is not done defers its cancellation until that scope
//! exits. So `scope(without_cancel(current()))` shields its block, like
//! anyio's `CancelScope(shield=True)`. Each entered scope links to the
//! enclosing one of its task, found in `INNERMOST`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::{PyGeneratorExit, PyRuntimeError, PyStopIteration, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple, PyType, PyWeakrefReference};
use pyo3::{PyTraverseError, PyVisit};

use crate::call::method;
use crate::cancel::CancelFunc;
use crate::cause::err_of;
use crate::context::{as_pair, type_name, Context};
use crate::waker::Waker;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Enter,
    Exit,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Entered,
    Fired,
    Exited,
}

/// `async with scope(ctx):` runs its block as part of `ctx`'s work: while it
/// runs, `current()` is `ctx`; when `ctx` is done the task is cancelled, and
/// at exit that `CancelledError` becomes `ctx.err()` raised from its cause.
/// Given the `(ctx, cancel)` pair of a `with_*` function, it also cancels
/// that at exit.
#[pyclass(module = "polyctx", name = "scope", weakref)]
pub(crate) struct Scope {
    ctx: Py<Context>,
    cancel: Option<Py<PyAny>>,
    state: State,
    task: Option<Py<PyAny>>,
    cancelling: isize,
    token: Option<Py<PyAny>>,
    /// This scope's entry in `INNERMOST`: (its task's address, its own).
    registered: Option<(usize, usize)>,
    waker: Option<Py<Waker>>,
    id: u64,
    /// What awaiting this object returns, once: the context after
    /// `__aenter__`, None after `__aexit__`; awaiting it otherwise is an error.
    awaiting: Awaiting,
    /// A `loop.call_soon` handle that will fire this scope.
    handle: Option<Py<PyAny>>,
    /// The enclosing scope of the same task, and the one nested in this.
    outer: Option<Py<Scope>>,
    inner: Option<Py<Scope>>,
    /// The context is done, but a nested scope on a live context shields the block.
    deferred: bool,
}

pub(crate) struct Asyncio {
    asyncio: Py<PyAny>,
    /// Where `current_task(loop)` is read: `asyncio.current_task` in C
    /// (3.12+), or `asyncio.tasks._current_tasks.get` before.
    current_task_in: Py<PyAny>,
    current_task_name: &'static str,
    cancelled_error: Py<PyAny>,
    current: Py<PyAny>,
    glue: Py<PyAny>,
    has_uncancel: bool,
}

static ASYNCIO: PyOnceLock<Asyncio> = PyOnceLock::new();

pub(crate) fn asyncio(py: Python<'_>) -> PyResult<&Asyncio> {
    ASYNCIO.get_or_try_init(py, || {
        let asyncio = py.import("asyncio")?;
        let version = py.version_info();
        let (current_task_in, current_task_name) = if (version.major, version.minor) >= (3, 12) {
            (asyncio.clone().into_any(), "current_task")
        } else {
            (py.import("asyncio.tasks")?.getattr("_current_tasks")?, "get")
        };
        let glue = py.import("polyctx._asyncio")?;
        Ok(Asyncio {
            cancelled_error: asyncio.getattr("CancelledError")?.unbind(),
            asyncio: asyncio.into_any().unbind(),
            current_task_in: current_task_in.unbind(),
            current_task_name,
            current: glue.getattr("_current")?.unbind(),
            glue: glue.into_any().unbind(),
            has_uncancel: (version.major, version.minor) >= (3, 11),
        })
    })
}

impl Asyncio {
    pub(crate) fn running_loop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        method(self.asyncio.bind(py), pyo3::intern!(py, "get_running_loop"), &[])
    }

    /// The running loop's waker: `_asyncio._last` (weak references to a
    /// loop and its waker) when it is that loop's, else `_asyncio._waker(loop)`.
    pub(crate) fn waker<'py>(&self, py: Python<'py>, event_loop: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Waker>> {
        let glue = self.glue.bind(py);
        let last = glue.getattr(pyo3::intern!(py, "_last"))?;
        if let Ok(last) = last.cast::<PyTuple>() {
            if last.len() == 2 {
                let upgrade = |i| -> PyResult<Option<Bound<'py, PyAny>>> {
                    Ok(last
                        .get_item(i)?
                        .cast_into::<PyWeakrefReference>()
                        .ok()
                        .and_then(|r| r.upgrade()))
                };
                if upgrade(0)?.is_some_and(|l| l.is(event_loop)) {
                    if let Some(waker) = upgrade(1)?.and_then(|w| w.cast_into::<Waker>().ok()) {
                        return Ok(waker);
                    }
                }
            }
        }
        Ok(method(glue, pyo3::intern!(py, "_waker"), &[event_loop])?.cast_into::<Waker>()?)
    }
}

#[pymethods]
impl Scope {
    #[new]
    fn new(ctx: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (ctx, cancel) = if let Ok(ctx) = ctx.cast::<Context>() {
            (ctx.clone().unbind(), None)
        } else if let Some((ctx, cancel)) = as_pair(ctx)? {
            (ctx.unbind(), Some(cancel.unbind()))
        } else {
            return Err(PyTypeError::new_err(format!(
                "scope() takes a polyctx.Context or a with_* pair, not {}",
                type_name(ctx)
            )));
        };
        Ok(Scope {
            ctx,
            cancel,
            state: State::Created,
            task: None,
            cancelling: 0,
            token: None,
            registered: None,
            waker: None,
            id: 0,
            awaiting: Awaiting::Nothing,
            handle: None,
            outer: None,
            inner: None,
            deferred: false,
        })
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let a = asyncio(py)?;
        let mut this = slf.borrow_mut();
        if this.state != State::Created {
            return Err(PyRuntimeError::new_err("a scope can be entered only once"));
        }
        let event_loop = a.running_loop(py)?;
        let name = PyString::intern(py, a.current_task_name);
        let task = method(a.current_task_in.bind(py), &name, &[&event_loop])?;
        if task.is_none() {
            return Err(PyRuntimeError::new_err(
                "polyctx.scope() must be used inside an asyncio task",
            ));
        }
        if a.has_uncancel {
            this.cancelling = method(&task, pyo3::intern!(py, "cancelling"), &[])?.extract()?;
        }
        let ctx = this.ctx.clone_ref(py).into_bound(py);
        this.token = Some(method(a.current.bind(py), pyo3::intern!(py, "set"), &[ctx.as_any()])?.unbind());
        let registered = (task.as_ptr() as usize, slf.as_ptr() as usize);
        let outer = innermost().insert(registered.0, registered.1);
        this.registered = Some(registered);
        if let Some(outer) = outer {
            // SAFETY: `INNERMOST` points only at live scopes (see there).
            let outer = unsafe { Bound::from_borrowed_ptr(py, outer as *mut ffi::PyObject) }.cast_into::<Scope>()?;
            if let Ok(mut o) = outer.try_borrow_mut() {
                o.inner = Some(slf.clone().unbind());
                drop(o);
                this.outer = Some(outer.unbind());
            }
        }
        this.task = Some(task.unbind());
        this.state = State::Entered;
        this.awaiting = Awaiting::Enter;
        let waker = a.waker(py, &event_loop)?;
        match waker
            .get()
            .watch_scope(&ctx.get().inner, slf.clone().into_any().unbind())
        {
            Some(id) => {
                this.id = id;
                this.waker = Some(waker.unbind());
            }
            None => {
                // Already done: cancel from the loop, as asyncio.timeout does.
                drop(this);
                schedule_fire(slf, &event_loop)?;
            }
        }
        Ok(slf.clone())
    }

    #[pyo3(signature = (exc_type, exc, _tb))]
    fn __aexit__<'py>(
        slf: &Bound<'py, Self>,
        exc_type: &Bound<'py, PyAny>,
        exc: &Bound<'py, PyAny>,
        _tb: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = &mut *slf.borrow_mut();
        if this.state == State::Created || this.state == State::Exited {
            return Err(PyRuntimeError::new_err("scope exited without being entered"));
        }
        let a = asyncio(py)?;
        // A coroutine closed by the garbage collector (its loop closed with
        // it pending) exits outside its task's contextvars: nothing to reset.
        let closing = exc_type.is(py.get_type::<PyGeneratorExit>());
        if let Some(token) = this.token.take() {
            match method(a.current.bind(py), pyo3::intern!(py, "reset"), &[token.bind(py)]) {
                Err(_) if closing => {}
                result => drop(result?),
            }
        }
        let state = this.state;
        this.state = State::Exited;
        this.awaiting = Awaiting::Exit;
        this.deferred = false;
        if let Some(waker) = this.waker.take() {
            waker.get().unwatch(this.id);
        }
        if let Some(handle) = this.handle.take() {
            method(handle.bind(py), pyo3::intern!(py, "cancel"), &[])?;
        }
        this.unregister();
        // Unlink; a scope nested in this one that is still entered (exits out
        // of order, as async generators allow) takes its place.
        let (inner, outer) = (this.inner.take(), this.outer.take());
        if let Some(Ok(mut i)) = inner.as_ref().map(|i| i.bind(py).try_borrow_mut()) {
            i.outer = outer.as_ref().map(|o| o.clone_ref(py));
        }
        if let Some(outer) = &outer {
            if let Ok(mut o) = outer.bind(py).try_borrow_mut() {
                o.inner = inner;
            }
            if !closing {
                fire_deferred(outer.bind(py), a)?;
            }
        }
        if let Some(cancel) = &this.cancel {
            match cancel.bind(py).cast::<CancelFunc>() {
                Ok(f) => f.get().0.cancel(None)?,
                Err(_) => drop(cancel.bind(py).call0()?),
            }
        }
        let task = this.task.take();
        if state != State::Fired {
            return Ok(slf.clone());
        }
        if a.has_uncancel {
            let task = task.expect("entered").into_bound(py);
            let left: isize = method(&task, pyo3::intern!(py, "uncancel"), &[])?.extract()?;
            if left > this.cancelling {
                return Ok(slf.clone()); // someone else cancelled the task too: theirs to handle
            }
        }
        let cancelled = a.cancelled_error.bind(py);
        if exc_type.is_none() || !exc_type.cast::<PyType>()?.is_subclass(cancelled)? {
            return Ok(slf.clone());
        }
        let error = err_of(py, &this.ctx.get().inner)?.expect("a fired scope's context is done");
        let err = PyErr::from_value(error);
        if err.cause(py).is_none() {
            err.set_cause(py, Some(PyErr::from_value(exc.clone())));
        }
        Err(err)
    }

    /// Only `async with` awaits a scope (the result of its `__aenter__` and
    /// `__aexit__`); `await scope(ctx)` alone would do nothing.
    fn __await__(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        if slf.awaiting == Awaiting::Nothing {
            return Err(PyTypeError::new_err(
                "polyctx.scope is not awaitable: use it as `async with polyctx.scope(ctx):`",
            ));
        }
        Ok(slf)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Completes at once: with the context after `__aenter__`, None after
    /// `__aexit__` (no StopIteration object needed for that).
    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match std::mem::replace(&mut self.awaiting, Awaiting::Nothing) {
            Awaiting::Enter => Err(PyStopIteration::new_err((self.ctx.clone_ref(py),))),
            Awaiting::Exit | Awaiting::Nothing => Ok(None),
        }
    }

    /// Fires the scope from a `loop.call_soon` callback.
    fn _fire(slf: &Bound<'_, Self>) -> PyResult<()> {
        slf.borrow_mut().handle = None;
        Scope::fire(slf)
    }

    fn __repr__(&self) -> String {
        let state = match self.state {
            State::Created => "created",
            State::Entered if self.deferred => "deferred",
            State::Entered => "entered",
            State::Fired => "fired",
            State::Exited => "exited",
        };
        format!("<polyctx.scope {state} {}>", self.ctx.get().repr())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.ctx)?;
        visit.call(&self.cancel)?;
        visit.call(&self.task)?;
        visit.call(&self.token)?;
        visit.call(&self.waker)?;
        visit.call(&self.handle)?;
        visit.call(&self.outer)?;
        visit.call(&self.inner)?;
        Ok(())
    }

    fn __clear__(&mut self) {
        self.cancel = None;
        self.task = None;
        self.token = None;
        self.waker = None;
        self.handle = None;
        self.outer = None;
        self.inner = None;
    }
}

/// The innermost entered scope of each task: task address to scope address.
/// A scope's entry is replaced by its enclosing scope's (or removed) when it
/// exits, or when it is freed without exiting, so every address in it is a
/// live scope; and a scope holds its task, so task addresses are not reused
/// meanwhile. Touched only with the GIL held.
static INNERMOST: LazyLock<Mutex<HashMap<usize, usize>>> = LazyLock::new(Mutex::default);

fn innermost() -> MutexGuard<'static, HashMap<usize, usize>> {
    INNERMOST.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Scope {
    /// Gives this scope's place in `INNERMOST` back to the enclosing scope.
    fn unregister(&mut self) {
        let Some((task, me)) = self.registered.take() else {
            return;
        };
        let mut map = innermost();
        if map.get(&task) == Some(&me) {
            match &self.outer {
                Some(outer) => map.insert(task, outer.as_ptr() as usize),
                None => map.remove(&task),
            };
        }
    }

    /// Cancels the task, once, if the block is still running and no scope
    /// nested in it runs on a context that is not done.
    pub(crate) fn fire(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        if this.state != State::Entered {
            return Ok(());
        }
        if let Some(inner) = &this.inner {
            if !innermost_is_done(inner.bind(py)) {
                this.deferred = true;
                return Ok(());
            }
        }
        this.deferred = false;
        this.state = State::Fired;
        let outer = this.outer.as_ref().map(|o| o.bind(py).clone());
        let task = this.task.as_ref().map(|t| t.bind(py).clone());
        drop(this);
        // Enclosing scopes this one deferred fire first, so that the
        // outermost one whose context is done reports it.
        if let Some(outer) = outer {
            fire_deferred(&outer, asyncio(py)?)?;
        }
        if let Some(task) = task {
            method(&task, pyo3::intern!(py, "cancel"), &[])?;
        }
        Ok(())
    }
}

/// Whether the innermost scope of the chain from `scope` down runs on a done context.
fn innermost_is_done(scope: &Bound<'_, Scope>) -> bool {
    let mut at = scope.clone();
    loop {
        let Ok(s) = at.try_borrow() else { return true };
        let next = s.inner.as_ref().map(|i| i.bind(scope.py()).clone());
        let done = s.ctx.get().inner.is_done();
        drop(s);
        match next {
            Some(n) => at = n,
            None => return done,
        }
    }
}

/// Schedules `_fire` on the loop (replacing a pending one).
fn schedule_fire(slf: &Bound<'_, Scope>, event_loop: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = slf.py();
    let fire = slf.getattr(pyo3::intern!(py, "_fire"))?;
    let handle = method(event_loop, pyo3::intern!(py, "call_soon"), &[&fire])?;
    if let Some(old) = slf.borrow_mut().handle.replace(handle.unbind()) {
        method(old.bind(py), pyo3::intern!(py, "cancel"), &[])?;
    }
    Ok(())
}

/// A nested scope exited or fired: the enclosing scopes it shielded (the
/// deferred ones right above it) fire now, from the loop, innermost first.
/// Stops at the first scope that is not deferred, so that entering and
/// leaving nested scopes stays O(1) a scope.
fn fire_deferred(outer: &Bound<'_, Scope>, a: &Asyncio) -> PyResult<()> {
    let py = outer.py();
    let mut at = Some(outer.clone());
    while let Some(scope) = at {
        let Ok(mut s) = scope.try_borrow_mut() else { break };
        if !std::mem::replace(&mut s.deferred, false) {
            break;
        }
        at = s.outer.as_ref().map(|o| o.bind(py).clone());
        drop(s);
        schedule_fire(&scope, &a.running_loop(py)?)?;
    }
    Ok(())
}
