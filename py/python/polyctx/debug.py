"""Diagnostics Go never had: the classic context bugs, visible at run time.

- **Lost cancels.** A cancelable context freed while still live was never
  canceled and never reached its deadline: its cancel function was dropped
  uncalled. `lost_cancels()` counts them process-wide (every language's, at
  no cost), and `set_lost_cancel_hook(fn)` reports each one. (Independently,
  a cancel function collected uncalled emits a `ResourceWarning` naming the
  line that made its context.)
- **Live contexts.** After `track()`, every context made is listed by
  `snapshot()` until it is freed, with its kind, age, deadline, error and
  the Python line that made it: for tests that check that nothing is left
  running, and for a debug endpoint (`str(snapshot())` is the tree).
  Off by default; off, it costs nothing measurable.
- **What is pending:** `live_timers()` (deadlines armed in the core's timer)
  and `pending_after_funcs()` (after-funcs not yet started).

Every count is process-wide: C, Rust and Node code in the process count too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from . import _native
from ._native import Context

__all__ = [
    "LostCancel",
    "Snapshot",
    "TrackedContext",
    "is_tracking",
    "live_timers",
    "lost_cancels",
    "pending_after_funcs",
    "set_lost_cancel_hook",
    "set_site",
    "snapshot",
    "track",
]


class LostCancel(NamedTuple):
    """What a lost-cancel hook is told."""

    #: The context as Go's `String()` prints it, e.g. `context.Background.WithCancel`.
    context: str
    #: Where it was made (`file:line`), if it was tracked.
    site: str | None


class TrackedContext(NamedTuple):
    """One tracked live context."""

    id: int
    #: The id of its parent, if the parent is tracked too.
    parent: int | None
    #: `"WithCancel"`, `"WithDeadline"`, `"WithValue"` or `"WithoutCancel"`.
    kind: str
    #: Seconds since it was made.
    age: float
    #: Seconds until its deadline (negative: past), or None.
    deadline_in: float | None
    #: Go's text of its error (`"context canceled"`), or None while it is not done.
    err: str | None
    #: Where it was made: `file:line` of Python code, or what another language recorded.
    site: str | None


_CANCELABLE = ("WithCancel", "WithDeadline")


class Snapshot:
    """The tracked contexts alive at one instant, oldest first. `str()` is
    the tree, one line per context:
    `#3 WithDeadline age 1.2ms, deadline 1.99s, made at app.py:14`."""

    __slots__ = ("_text", "contexts")

    def __init__(self, contexts: tuple[TrackedContext, ...], text: str) -> None:
        self.contexts = contexts
        self._text = text

    @property
    def running(self) -> tuple[TrackedContext, ...]:
        """The cancelable contexts (`WithCancel`, `WithDeadline`) not yet
        done: what a test expects none of once its work is over. (A
        `WithValue` or `WithoutCancel` context is done only through its
        parent, which is listed if it is one of these.)"""
        return tuple(c for c in self.contexts if c.err is None and c.kind in _CANCELABLE)

    def __len__(self) -> int:
        return len(self.contexts)

    def __iter__(self) -> Iterator[TrackedContext]:
        return iter(self.contexts)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"<polyctx.debug.Snapshot of {len(self.contexts)} contexts ({len(self.running)} running)>"


def snapshot() -> Snapshot:
    """The tracked contexts alive now (see `track`)."""
    rows, text = _native.snapshot()
    return Snapshot(tuple(TrackedContext(*row) for row in rows), text)


def track(on: bool = True) -> None:
    """Turns tracking of live contexts on (or off): contexts made while it
    is on are listed by `snapshot()` until they are freed."""
    _native.track(bool(on))


def is_tracking() -> bool:
    """Whether contexts made now are tracked."""
    return _native.is_tracking()


def set_site(ctx: Context, site: str) -> None:
    """Records where `ctx` was made, if it is tracked (Python's own contexts
    get their `file:line` by themselves)."""
    _native.set_site(ctx, site)


def lost_cancels() -> int:
    """How many cancelable contexts have been freed while still live, process-wide."""
    return _native.lost_cancels()


def set_lost_cancel_hook(hook: Callable[[LostCancel], object] | None) -> None:
    """Calls `hook(LostCancel(context, site))` for every lost cancel from
    now on; None removes it. It runs where the context is freed (during a
    deallocation, or on a C thread of the process, with the GIL taken), so
    it should be quick; what it raises is reported as unraisable. The
    process has one such hook, shared with C's `ctx_set_lost_cancel_hook`:
    the last one set wins."""
    if hook is None:
        _native.set_lost_cancel_hook(None)
        return
    if not callable(hook):
        raise TypeError(f"hook must be callable or None, not {type(hook).__name__}")
    user = hook

    def report(context: str, site: str | None) -> None:
        user(LostCancel(context, site))

    _native.set_lost_cancel_hook(report)


def live_timers() -> int:
    """Deadlines armed in the core's timer, process-wide."""
    return _native.live_timers()


def pending_after_funcs() -> int:
    """After-funcs registered and not yet started, process-wide
    (`after_func`, `loop_after_func`, and C's `ctx_after_func`)."""
    return _native.pending_after_funcs()
