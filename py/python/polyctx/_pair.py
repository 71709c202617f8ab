"""The `(ctx, cancel)` pairs the `with_*` functions return: real tuples, so
that `ctx, cancel = with_timeout(...)` unpacks them with their types, and
context managers that cancel when the block exits (Go's `defer cancel()`).

The native module makes them (without calling `__new__`); there is one
class per kind of cancel function, so each pair's `cancel` has its type."""

from __future__ import annotations

from ._native import CancelCauseFunc, CancelFunc, Context

__all__ = ["CancelCausePair", "CancelPair"]


class CancelPair(tuple[Context, CancelFunc]):
    """`(ctx, cancel)` from `with_cancel`, `with_timeout` and `with_deadline`."""

    __slots__ = ()

    @property
    def context(self) -> Context:
        return self[0]

    @property
    def cancel(self) -> CancelFunc:
        return self[1]

    def __enter__(self) -> CancelPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self[1]()

    def __repr__(self) -> str:
        return f"CancelPair({self[0]!r}, {self[1]!r})"


class CancelCausePair(tuple[Context, CancelCauseFunc]):
    """`(ctx, cancel)` from `with_cancel_cause`: `cancel(cause)` records why."""

    __slots__ = ()

    @property
    def context(self) -> Context:
        return self[0]

    @property
    def cancel(self) -> CancelCauseFunc:
        return self[1]

    def __enter__(self) -> CancelCausePair:
        return self

    def __exit__(self, *exc: object) -> None:
        self[1]()

    def __repr__(self) -> str:
        return f"CancelCausePair({self[0]!r}, {self[1]!r})"
