"""The article's patterns as helpers, on asyncio: a group of tasks under one
context (Go's errgroup), retry with backoff under one budget, and sleeping or
waiting as long as a context allows.

The rules are the core's: `Backoff.next` (native) decides after each failed
attempt whether to try again and after how long; this module only sleeps on
the event loop as told. Cancellation is `scope`'s: each task of a group and
each attempt of a retry runs in `scope(ctx)`, so plain asyncio code in them
stops when the context is done.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from ._errors import ContextError
from ._native import Backoff, CancelCauseFunc, CancelFunc, Context, cause, scope, with_cancel_cause
from ._pair import CancelCausePair, CancelPair

__all__ = ["Backoff", "Group", "RetryError", "retry", "sleep", "wait_for"]

T = TypeVar("T")


def _check_context(ctx: object, fn: str) -> None:
    if not isinstance(ctx, Context):
        raise TypeError(f"{fn}() takes a polyctx.Context, not {type(ctx).__name__}")


async def sleep(ctx: Context, seconds: float) -> None:
    """Sleeps `seconds`, or until `ctx` is done, whichever is first; raises
    `ctx.err()` (chained to its cause) if the context ended the sleep. In a
    scope whose context ends with it (a group's task), that scope reports
    the end, as an outer `asyncio.timeout` would."""
    _check_context(ctx, "sleep")
    async with scope(ctx):
        await asyncio.sleep(seconds)


async def wait_for(ctx: Context, aw: Awaitable[T]) -> T:
    """Awaits `aw` (a coroutine, task, future, `event.wait()`...) until it
    completes or `ctx` is done, whichever is first: `asyncio.wait_for` with a
    context instead of a timeout. If the context ends it, `aw` is cancelled
    and `ctx.err()` raised (or, as for `sleep`, reported by an enclosing
    scope of a context that ends with it)."""
    _check_context(ctx, "wait_for")
    async with scope(ctx):
        return await aw


class Group:
    """A group of tasks under one context (Go's `errgroup.WithContext`):

        async with polyctx.Group(ctx, limit=10) as g:
            for url in urls:
                g.spawn(fetch, url)     # runs fetch(g.context, url)

    Each task runs in `scope(g.context)`, a child of `ctx`. The first task
    to fail cancels that context, with its exception as the cause, so the
    others stop; so does an exception that escapes the block (and, as with
    `asyncio.TaskGroup`, the block is cancelled when a task fails first).
    Leaving the block waits for every task, cancels the group's context,
    and raises the first exception, as is. Nothing the group started
    survives it. `limit` bounds how many tasks run at once (the others wait
    their turn, and never start if the context is done first).

    `spawn` returns the `asyncio.Task`, whose result each successful task
    keeps. Built on `asyncio.TaskGroup` where there is one (3.11+).
    """

    __slots__ = ("_cancel", "_cancel_parent", "_ctx", "_error", "_limit", "_parent", "_sem", "_state", "_tasks")
    _ctx: Context
    _cancel: CancelCauseFunc
    _tasks: Any  # asyncio.TaskGroup, or _Tasks before 3.11

    def __init__(self, parent: Context | CancelPair | CancelCausePair, *, limit: int | None = None) -> None:
        self._cancel_parent: CancelFunc | CancelCauseFunc | None = None
        if isinstance(parent, (CancelPair, CancelCausePair)):
            parent, self._cancel_parent = parent
        elif not isinstance(parent, Context):  # pyright: ignore[reportUnnecessaryIsInstance] (bad input)
            raise TypeError(f"Group() takes a polyctx.Context or a with_* pair, not {type(parent).__name__}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"limit must be a positive int or None, not {limit!r}")
        self._parent: Context = parent
        self._limit = limit
        self._state = "new"
        self._error: BaseException | None = None
        self._sem: asyncio.Semaphore | None = None

    @property
    def context(self) -> Context:
        """The group's context: done when the parent is, at the first failure, or when the group ends."""
        if self._state == "new":
            raise RuntimeError("the group's context exists once the group is entered (async with)")
        return self._ctx

    async def __aenter__(self) -> Group:
        if self._state != "new":
            raise RuntimeError("a Group is entered once")
        self._state = "running"
        self._ctx, self._cancel = with_cancel_cause(self._parent)
        if self._limit is not None:
            self._sem = asyncio.Semaphore(self._limit)
        task_group: Any = getattr(asyncio, "TaskGroup", _Tasks)
        self._tasks = task_group()
        await self._tasks.__aenter__()
        return self

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any) -> asyncio.Task[T]:
        """Starts `fn(self.context, *args)` as a task of the group."""
        if self._state != "running":
            raise RuntimeError("spawn() is for a Group inside its async with block")
        if not callable(fn):
            raise TypeError(f"fn must be an async function, not {type(fn).__name__}")
        task: asyncio.Task[T] = self._tasks.create_task(self._run(fn, args))
        return task

    async def _run(self, fn: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> T:
        try:
            async with scope(self._ctx):
                if self._sem is None:
                    return await fn(self._ctx, *args)
                async with self._sem:
                    return await fn(self._ctx, *args)
        except asyncio.CancelledError:
            raise  # cancelled from outside the group, or by the TaskGroup's own abort
        except BaseException as e:
            self._fail(e)
            raise

    def _fail(self, e: BaseException) -> None:
        if self._error is None:
            self._error = e
            self._cancel(e)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            self._fail(exc)
        self._state = "exiting"
        try:
            await self._tasks.__aexit__(exc_type, exc, tb)
        except BaseException as e:
            if not isinstance(e, _TASKS_FAILED) or self._error is None:
                raise  # the block's cancellation, KeyboardInterrupt, SystemExit
        finally:
            self._state = "done"
            self._cancel()
            if self._cancel_parent is not None:
                self._cancel_parent()
        first = self._error
        if first is None or first is exc:
            return False  # nothing failed, or the block's own exception propagates
        raise first


class _Tasks:
    """What `Group` needs of `asyncio.TaskGroup`, before 3.11: create tasks,
    cancel the rest (and the block) at the first failure, wait for all.
    Errors are the group's to report; this only says there were some."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failed = False
        self._aborting = False
        self._exiting = False
        self._parent_cancel_requested = False
        self._waiter: asyncio.Future[None] | None = None

    async def __aenter__(self) -> _Tasks:
        self._loop = asyncio.get_running_loop()
        self._parent = asyncio.current_task()
        return self

    def create_task(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._on_done)
        return task

    def _abort(self) -> None:
        self._aborting = True
        for t in self._tasks:
            if not t.done():
                t.cancel()

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if task.cancelled() or task.exception() is None:  # exception() also marks it retrieved
            return
        self._failed = True
        if not self._aborting:
            self._abort()
        if not self._exiting and not self._parent_cancel_requested and self._parent is not None:
            # As TaskGroup does: the block stops at its next await.
            self._parent_cancel_requested = True
            self._parent.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exiting = True
        propagate: BaseException | None = None
        if isinstance(exc, asyncio.CancelledError) and not self._parent_cancel_requested:
            propagate = exc  # cancelled from outside: pass it on once all tasks are done
        if exc is not None and not self._aborting:
            self._abort()
        while self._tasks:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            except asyncio.CancelledError as e:
                if not self._parent_cancel_requested:
                    propagate = e
                if not self._aborting:
                    self._abort()
            self._waiter = None
        if propagate is not None and not self._failed:
            raise propagate
        if self._failed:
            raise _Failed


class _Failed(Exception):
    """A task failed (before 3.11, in place of TaskGroup's exception group)."""


# What the group's tasks raise at exit when one failed: asyncio.TaskGroup's
# BaseExceptionGroup (3.11+), or `_Tasks`'s `_Failed`.
def _tasks_failed() -> tuple[type[BaseException], ...]:
    group: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)
    return (_Failed,) if group is None else (_Failed, group)


_TASKS_FAILED = _tasks_failed()


if TYPE_CHECKING:
    from typing import Union

    # What `retry` retries: an exception class, a tuple of them, or a function of the exception.
    RetryOn = Union[type[BaseException], tuple[type[BaseException], ...], Callable[[BaseException], bool]]

GiveUp = Literal["attempts", "deadline", "canceled"]


class RetryError(Exception):
    """`retry` gave up. `reason` says why: `"attempts"` (`max_attempts`
    attempts failed), `"deadline"` (the context's time ran out, or what is
    left cannot fit another attempt) or `"canceled"`. `attempts` is how many
    ran, `last` the last attempt's exception (None if none ran), and
    `cause` (also `__cause__`) what made it give up: the cancellation's
    cause, the context's `DeadlineExceeded`, or else the last exception."""

    def __init__(
        self,
        reason: GiveUp,
        attempts: int,
        last: BaseException | None,
        cause: BaseException | None,
    ) -> None:
        super().__init__(reason, attempts, last, cause)
        self.reason = reason
        self.attempts = attempts
        self.last = last
        self.cause = cause
        self.__cause__ = cause

    def __str__(self) -> str:
        why = {
            "attempts": "gave up: out of attempts",
            "deadline": "gave up: out of time",
            "canceled": f"gave up: canceled ({self.cause})",
        }[self.reason]
        text = f"{why} after {self.attempts} attempt(s)"
        return text if self.last is None else f"{text}; last error: {self.last!r}"


def _retryable(retry_on: RetryOn) -> Callable[[BaseException], bool]:
    given = cast(object, retry_on)  # checked as any object: bad input gets a clear error
    if not isinstance(given, (type, tuple)):
        if callable(given):
            return cast("Callable[[BaseException], bool]", given)
    else:
        classes = cast("tuple[object, ...]", given if isinstance(given, tuple) else (given,))
        if all(isinstance(c, type) and issubclass(c, BaseException) for c in classes):
            exceptions = cast("tuple[type[BaseException], ...]", classes)
            return lambda e: isinstance(e, exceptions)
    raise TypeError(
        "retry_on must be an exception class, a tuple of them, or a function of the exception, "
        f"not {type(retry_on).__name__}"
    )


_DEFAULT_BACKOFF = Backoff()


async def retry(
    ctx: Context,
    fn: Callable[..., Awaitable[T]],
    /,
    *args: Any,
    retry_on: RetryOn,
    backoff: Backoff | None = None,
) -> T:
    """Awaits `fn(*args)` until it succeeds, raises an exception that
    `retry_on` does not mark retryable (raised as is), or `backoff` gives up
    (`RetryError`). `retry_on` is an exception class, a tuple of them, or a
    function of the exception. One budget, `ctx`'s, covers every attempt and
    wait: each attempt runs in `scope(ctx)`, and the wait between attempts
    ends the moment `ctx` is done."""
    _check_context(ctx, "retry")
    if not callable(fn):
        raise TypeError(f"fn must be an async function, not {type(fn).__name__}")
    retryable = _retryable(retry_on)
    rules = _DEFAULT_BACKOFF if backoff is None else backoff
    if not isinstance(rules, Backoff):  # pyright: ignore[reportUnnecessaryIsInstance] (bad input)
        raise TypeError(f"backoff must be a polyctx.Backoff or None, not {type(rules).__name__}")
    attempts = 0
    last: BaseException | None = None
    while True:
        decision = rules.next(ctx, attempts)
        if isinstance(decision, str):
            raise _give_up(ctx, decision, attempts, last)
        if decision > 0:
            try:
                await sleep(ctx, decision)
            except ContextError:
                continue  # done while waiting: `next` says why
        attempts += 1
        try:
            async with scope(ctx):
                return await fn(*args)
        except Exception as e:
            if isinstance(e, ContextError) and ctx.is_done():
                continue  # the context ended the attempt
            if not retryable(e):
                raise
            last = e


def _give_up(ctx: Context, reason: GiveUp, attempts: int, last: BaseException | None) -> RetryError:
    if reason == "canceled":
        return RetryError(reason, attempts, last, cause(ctx))
    if reason == "deadline" and ctx.is_done():
        return RetryError(reason, attempts, last, ctx.err())
    return RetryError(reason, attempts, last, last)
