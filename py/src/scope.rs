//! `polyctx.scope`: runs an `async with` block as part of a context's work.
//!
//! Native because it sits on the hot path of every request (one per
//! deadline): entering and leaving it costs no coroutine objects, since the
//! scope is its own awaitable. The logic is asyncio's own `Timeout`'s: cancel
//! the task when the context is done, and at exit turn that `CancelledError`
//! into the context's error only if `Task.uncancel()` shows no other
//! cancellation is pending.

use pyo3::exceptions::{PyRuntimeError, PyStopIteration, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple, PyType};

use crate::call::method;
use crate::cancel::{CancelFunc, CancelPair};
use crate::cause::err_of;
use crate::context::{type_name, Context};
use crate::waker::Waker;

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
    waker: Option<Py<Waker>>,
    id: u64,
    /// What awaiting this object returns: the context after `__aenter__`,
    /// None after `__aexit__`.
    entering: bool,
}

struct Asyncio {
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

fn asyncio(py: Python<'_>) -> PyResult<&Asyncio> {
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
    /// The running loop's waker: `_asyncio._last` when it is that loop's,
    /// else `_asyncio._waker(loop)`.
    fn waker<'py>(&self, py: Python<'py>, event_loop: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Waker>> {
        let glue = self.glue.bind(py);
        let last = glue.getattr(pyo3::intern!(py, "_last"))?;
        let last = last.cast::<PyTuple>()?;
        if last.len() == 2 && last.get_item(0)?.is(event_loop) {
            if let Ok(waker) = last.get_item(1)?.cast_into::<Waker>() {
                return Ok(waker);
            }
        }
        Ok(method(glue, pyo3::intern!(py, "_waker"), &[event_loop])?.cast_into::<Waker>()?)
    }
}

#[pymethods]
impl Scope {
    #[new]
    fn new(py: Python<'_>, ctx: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (ctx, cancel) = if let Ok(pair) = ctx.cast::<CancelPair>() {
            let pair = pair.get();
            (pair.context.clone_ref(py), Some(pair.cancel.clone_ref(py)))
        } else if let Ok(ctx) = ctx.cast::<Context>() {
            (ctx.clone().unbind(), None)
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
            waker: None,
            id: 0,
            entering: true,
        })
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let a = asyncio(py)?;
        let mut this = slf.borrow_mut();
        if this.state != State::Created {
            return Err(PyRuntimeError::new_err("a scope can be entered only once"));
        }
        let event_loop = method(a.asyncio.bind(py), pyo3::intern!(py, "get_running_loop"), &[])?;
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
        this.task = Some(task.unbind());
        this.state = State::Entered;
        this.entering = true;
        let waker = a.waker(py, &event_loop)?;
        match waker
            .get()
            .watch_scope(&ctx.get().inner, slf.clone().into_any().unbind())
        {
            Some(id) => {
                this.id = id;
                this.waker = Some(waker.unbind());
            }
            None => this.fire(py)?, // already done
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
        if let Some(token) = this.token.take() {
            method(a.current.bind(py), pyo3::intern!(py, "reset"), &[token.bind(py)])?;
        }
        let state = this.state;
        this.state = State::Exited;
        this.entering = false;
        if let Some(waker) = this.waker.take() {
            waker.get().unwatch(this.id);
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

    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Completes at once: with the context after `__aenter__`, None after `__aexit__`.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.entering {
            return Err(PyStopIteration::new_err((self.ctx.clone_ref(py),)));
        }
        Ok(None)
    }

    fn __repr__(&self) -> String {
        let state = match self.state {
            State::Created => "created",
            State::Entered => "entered",
            State::Fired => "fired",
            State::Exited => "exited",
        };
        format!("<polyctx.scope {state} {}>", self.ctx.get().repr())
    }
}

impl Scope {
    /// Cancels the task, once, if the block is still running.
    pub(crate) fn fire(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.state != State::Entered {
            return Ok(());
        }
        self.state = State::Fired;
        if let Some(task) = &self.task {
            method(task.bind(py), pyo3::intern!(py, "cancel"), &[])?;
        }
        Ok(())
    }
}
