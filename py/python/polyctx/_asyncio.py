"""asyncio glue: one waker per event loop, and `current()`. `scope` is
native (`_native.scope`), for speed; it uses `_current` and `_waker` here.

A context is done on whatever thread cancels it (or on the core's timer
thread, for deadlines). Each event loop gets one `Waker`: an fd watched with
`loop.add_reader` and a queue that on-done callbacks push integer ids to,
without the GIL. When the loop drains it, it resolves the futures of
`ctx.done()` and cancels the tasks of the scopes whose context is done.
"""

from __future__ import annotations

import os
import weakref
from asyncio import AbstractEventLoop, Future, get_running_loop
from contextvars import ContextVar

from ._native import Context, Waker, background

__all__ = ["current"]

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
