"""The exceptions a done context reports. No imports of the native module:
it imports these lazily."""

from __future__ import annotations

__all__ = ["Canceled", "ContextError", "DeadlineExceeded", "ForeignCause"]


class ContextError(Exception):
    """Why a context is done: `Canceled` or `DeadlineExceeded`."""


class Canceled(ContextError):
    """The context was canceled (Go's `context.Canceled`)."""

    # No __init__ of its own: contexts make these by the thousand, in C.
    def __str__(self) -> str:
        return super().__str__() if self.args else "context canceled"


class DeadlineExceeded(ContextError, TimeoutError):
    """The context's deadline passed (Go's `context.DeadlineExceeded`); a
    `TimeoutError`, like the error of `asyncio.timeout`."""

    def __str__(self) -> str:
        return super().__str__() if self.args else "context deadline exceeded"


class ForeignCause(Exception):
    """A cause set outside Python (by C, Rust or Node code): its message and
    optional integer code. `str(e)` is the message."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        if self.code is None:
            return f"ForeignCause({self.message!r})"
        return f"ForeignCause({self.message!r}, code={self.code})"
