"""The `(ctx, cancel)` pairs the `with_*` functions return: real tuples, so
that `ctx, cancel = with_timeout(...)` unpacks them with their types, and
context managers that cancel when the block exits (Go's `defer cancel()`).

The native module makes them (without calling `__new__`); there is one
class per kind of cancel function, so each pair's `cancel` has its type."""

from __future__ import annotations

from typing import TypeVar

from ._native import CancelCauseFunc, CancelFunc, Context

__all__ = ["CancelCausePair", "CancelPair"]

_F = TypeVar("_F", bound="CancelFunc | CancelCauseFunc")


class _Pair(tuple[Context, _F]):
    __slots__ = ()

    @property
    def context(self) -> Context:
        return self[0]

    @property
    def cancel(self) -> _F:
        return self[1]

    def __enter__(self) -> tuple[Context, _F]:
        return self

    def __exit__(self, *exc: object) -> None:
        self[1]()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self[0]!r}, {self[1]!r})"


class CancelPair(_Pair[CancelFunc]):
    """`(ctx, cancel)` from `with_cancel`, `with_timeout` and `with_deadline`."""

    __slots__ = ()


class CancelCausePair(_Pair[CancelCauseFunc]):
    """`(ctx, cancel)` from `with_cancel_cause`: `cancel(cause)` records why."""

    __slots__ = ()
