"""asyncio glue: one waker per event loop, `scope`, and `current()`.

A context is done on whatever thread cancels it (or on the core's timer
thread, for deadlines). Each event loop gets one `Waker`: an fd watched with
`loop.add_reader` and a queue that on-done callbacks push integer ids to,
without the GIL. When the loop drains it, it resolves the futures of
`ctx.done()` and cancels the tasks of the scopes whose context is done.
"""

from __future__ import annotations

import os
import sys
import weakref
from asyncio import AbstractEventLoop, CancelledError, Future, get_running_loop
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING

from ._native import CancelPair, Context, Waker, background

if TYPE_CHECKING:
    from asyncio import Task

    from ._native import CancelCauseFunc, CancelFunc

__all__ = ["current", "scope"]

_wakers: weakref.WeakKeyDictionary[AbstractEventLoop, Waker] = weakref.WeakKeyDictionary()
# The last loop and its waker, read and written as one tuple so threads
# running loops of their own never see a torn pair.
_last: tuple[AbstractEventLoop | None, Waker | None] = (None, None)


def _waker(loop: AbstractEventLoop) -> Waker:
    global _last
    last_loop, waker = _last
    if loop is last_loop and waker is not None:
        return waker
    waker = _wakers.get(loop)
    if waker is None:
        waker = Waker()
        loop.add_reader(waker.fd, waker.drain)
        _wakers[loop] = waker
        # When the loop is collected its selector is gone; release the waits.
        weakref.finalize(loop, waker.close)
    _last = (loop, waker)
    return waker


def _forget_wakers() -> None:
    # A forked child must not share its parent's fds and queues.
    global _last
    _wakers.clear()
    _last = (None, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_wakers)


def _done_future(ctx: Context) -> Future[None]:
    loop = get_running_loop()
    return _waker(loop).future(loop, ctx)


# Contexts are immutable, so a shared default is safe.
_current: ContextVar[Context] = ContextVar("polyctx.current", default=background())  # noqa: B039


def current() -> Context:
    """The context of the innermost `scope` around this code (a contextvar,
    so tasks inherit it); `background()` outside any scope."""
    return _current.get()


_HAS_UNCANCEL = sys.version_info >= (3, 11)

if sys.version_info >= (3, 12):
    from asyncio import current_task as _current_task_of  # in C since 3.12
else:
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]

    # What asyncio.current_task(loop) does, without its Python-level call.
    _current_task_of = _current_tasks.get

# Scope states.
_CREATED, _ENTERED, _FIRED, _EXITED = range(4)


class scope:
    """`async with scope(ctx):` runs its block as part of `ctx`'s work.

    While the block runs, `current()` is `ctx`; when `ctx` is done the current
    task is cancelled, and at exit that `CancelledError` becomes `ctx.err()`
    (`Canceled`, or `DeadlineExceeded`, a `TimeoutError`) raised from the
    context's cause. It nests with `asyncio.timeout`, `TaskGroup` and other
    scopes as they expect (`Task.uncancel`); a cancellation from anywhere else
    propagates untouched.

    `ctx` may also be the `(ctx, cancel)` pair a `with_*` function returns:
    the scope then cancels it at exit, so `async with
    scope(with_timeout(current(), 2)) as ctx:` is a complete deadline.
    """

    __slots__ = ("__weakref__", "_cancel", "_cancelling", "_ctx", "_id", "_state", "_task", "_token", "_waker")

    def __init__(self, ctx: Context | CancelPair) -> None:
        if type(ctx) is CancelPair:
            self._ctx: Context = ctx.context
            self._cancel: CancelFunc | CancelCauseFunc | None = ctx.cancel
        elif isinstance(ctx, Context):
            self._ctx = ctx
            self._cancel = None
        else:
            raise TypeError(f"scope() takes a polyctx.Context or a with_* pair, not {type(ctx).__name__}")
        self._state = _CREATED

    async def __aenter__(self) -> Context:
        if self._state is not _CREATED:
            raise RuntimeError("a scope can be entered only once")
        loop = get_running_loop()
        task = _current_task_of(loop)
        if task is None:
            raise RuntimeError("polyctx.scope() must be used inside an asyncio task")
        self._task: Task[object] = task
        if _HAS_UNCANCEL:
            self._cancelling = task.cancelling()
        ctx = self._ctx
        self._token: Token[Context] = _current.set(ctx)
        self._state = _ENTERED
        last_loop, waker = _last
        if last_loop is not loop or waker is None:
            waker = _waker(loop)
        self._waker = waker
        watch = waker.watch(ctx, self)
        if watch is None:
            self._fire()  # already done
        else:
            self._id = watch
        return ctx

    def _fire(self) -> None:
        if self._state is _ENTERED:
            self._state = _FIRED
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.reset(self._token)
        state = self._state
        self._state = _EXITED
        if state is _ENTERED:
            self._waker.unwatch(self._id)
        if self._cancel is not None:
            self._cancel()
        if state is not _FIRED:
            return
        if _HAS_UNCANCEL:
            if self._task.uncancel() > self._cancelling:
                return  # someone else cancelled the task too: theirs to handle
        if exc_type is None or not issubclass(exc_type, CancelledError):
            return
        ctx = self._ctx
        error = ctx.err()
        assert error is not None
        if error.__cause__ is None:
            raise error from exc
        raise error from error.__cause__

    def __repr__(self) -> str:
        state = ("created", "entered", "fired", "exited")[self._state]
        return f"<polyctx.scope {state} {self._ctx!r}>"
