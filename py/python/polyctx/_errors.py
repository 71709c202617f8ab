"""The exceptions a done context reports. No imports of the native module:
it imports these lazily."""

from __future__ import annotations

__all__ = [
    "Canceled",
    "ClientDisconnected",
    "ContextError",
    "DeadlineExceeded",
    "ForeignCause",
    "MalformedHeader",
    "PeerCanceled",
    "RequestEnded",
    "RequestFinished",
    "ServerShutdown",
]


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


class MalformedHeader(ValueError):
    """A header value that is present but breaks its grammar (`polyctx.wire`):
    `.header` names the header (lowercase), `.value` is what was received
    (shortened for display)."""

    def __init__(self, message: str, header: str = "", value: str = "") -> None:
        super().__init__(message)
        self.header = header
        self.value = value


class RequestEnded(Exception):
    """Why a request ended, besides `Canceled` and `DeadlineExceeded`: the
    causes a server cancels a request's context with. Each maps to one gRPC
    code, Connect code and HTTP status (`polyctx.wire.EndReason`), and reads
    the same in every language: cancel with an instance of exactly one of
    these classes and C, Rust and Node code see the reason, not a message."""

    def __str__(self) -> str:
        if self.args:
            return super().__str__()
        # Here, not at the top: the native module imports this one.
        from ._native import end_reason_message

        return end_reason_message(_REASON_NAMES[type(self).__name__])


class ClientDisconnected(RequestEnded):
    """The client went away before the response was complete (HTTP 499)."""


class PeerCanceled(RequestEnded):
    """The peer canceled the call, e.g. a gRPC `RST_STREAM` (gRPC `CANCELLED`)."""


class ServerShutdown(RequestEnded):
    """The server is shutting down (HTTP 503, gRPC `UNAVAILABLE`)."""


class RequestFinished(RequestEnded):
    """The response is complete; nothing more will be done for the request."""


_REASON_NAMES = {
    "ClientDisconnected": "client_disconnected",
    "PeerCanceled": "peer_canceled",
    "ServerShutdown": "server_shutdown",
    "RequestFinished": "request_finished",
}
