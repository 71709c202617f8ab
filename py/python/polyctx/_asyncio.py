"""asyncio glue: one waker per event loop, `current()` and `use()`. `scope`
is native (`_native.scope`), for speed; it uses `_current`, `_last` and
`_waker` here.

A context is done on whatever thread cancels it (or on the core's timer
thread, for deadlines). Each event loop gets one `Waker`: an fd watched with
`loop.add_reader` and a queue that on-done callbacks push integer ids to,
without the GIL. When the loop drains it, it resolves the futures of
`ctx.done()` and cancels the tasks of the scopes whose context is done.

Only the loop holds its waker (through the reader callback); this module
keeps weak references. So a loop closed with waits still pending, its waker
and their futures and tasks form a cycle that the garbage collector frees,
fd included, and nothing here keeps the last loop alive.
"""

from __future__ import annotations

import os
import weakref
from asyncio import AbstractEventLoop, Future, get_running_loop
from contextvars import ContextVar, Token
from types import TracebackType

from ._native import CancelCauseFunc, CancelFunc, Context, Waker, background
from ._pair import CancelCausePair, CancelPair

__all__ = ["current", "use"]

_wakers: weakref.WeakKeyDictionary[AbstractEventLoop, weakref.ref[Waker]] = weakref.WeakKeyDictionary()
# The last loop and its waker, weakly, read and written as one tuple so
# threads running loops of their own never see a torn pair.
_last: tuple[weakref.ref[AbstractEventLoop], weakref.ref[Waker]] | None = None


def _waker(loop: AbstractEventLoop) -> Waker:
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        waker = last[1]()
        if waker is not None:
            return waker
    ref = _wakers.get(loop)
    waker = ref() if ref is not None else None
    if waker is None:
        waker = Waker()
        loop.add_reader(waker.fd, waker.drain)
        _wakers[loop] = weakref.ref(waker)
    _last = (weakref.ref(loop), weakref.ref(waker))
    return waker


def _forget_wakers() -> None:
    # A forked child must not share its parent's fds and queues.
    global _last
    _wakers.clear()
    _last = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_wakers)


def _done_future(ctx: Context) -> Future[None]:  # pyright: ignore[reportUnusedFunction] (Context.done)
    loop = get_running_loop()
    return _waker(loop).future(loop, ctx)


# Contexts are immutable, so a shared default is safe.
_current: ContextVar[Context] = ContextVar("polyctx.current", default=background())  # noqa: B039


def current() -> Context:
    """The context of the innermost `scope` or `use` around this code (a
    contextvar, so tasks inherit it); `background()` outside any."""
    return _current.get()


class use:
    """`with polyctx.use(ctx):` makes `ctx` the `current()` context for the
    block, in sync or async code, and cancels nothing: code that wants what
    it has when `ctx` is done watches `ctx` itself (`ctx.done()`,
    `ctx.is_done()`), and tasks started in the block inherit it. Given the
    pair of a `with_*` function, it also cancels that at exit."""

    __slots__ = ("_cancel", "_ctx", "_token")

    def __init__(self, ctx: Context | CancelPair | CancelCausePair) -> None:
        cancel: CancelFunc | CancelCauseFunc | None = None
        if isinstance(ctx, (CancelPair, CancelCausePair)):
            ctx, cancel = ctx
        elif not isinstance(ctx, Context):  # pyright: ignore[reportUnnecessaryIsInstance] (bad input)
            raise TypeError(f"use() takes a polyctx.Context or a with_* pair, not {type(ctx).__name__}")
        self._ctx: Context = ctx
        self._cancel = cancel
        self._token: Token[Context] | None = None

    def __enter__(self) -> Context:
        if self._token is not None:
            raise RuntimeError("a use() is entered only once at a time")
        self._token = _current.set(self._ctx)
        return self._ctx

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            raise RuntimeError("use() exited without being entered")
        _current.reset(token)
        if self._cancel is not None:
            self._cancel()
