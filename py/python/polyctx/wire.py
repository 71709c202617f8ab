"""What crosses between services: deadlines as shrinking budgets, W3C trace
context and baggage, in the headers gRPC, Connect, W3C and OpenTelemetry
define, so a polyctx service talks to Go, gRPC and OpenTelemetry services it
did not build.

    ctx, cancel = wire.extract(polyctx.background(), request_headers, wire.Policy.external())
    ...
    wire.inject(ctx, outbound_headers, wire.Policy.internal())

The codecs, the trust policies and extract/inject are the Rust core's
(`polyctx::wire`), the same in every language; this module gives them
Python's types. Nanoseconds are ints; timeouts in policies are seconds.

Inbound metadata is never an identity or authorization input: a header says
what its sender claims, nothing more. polyctx offers no "principal from
header" helper, and the external policy (the default for a listener) bounds
what an untrusted caller can make a service do.
"""

from __future__ import annotations

import enum

from . import _native
from ._errors import (
    Canceled,
    ClientDisconnected,
    DeadlineExceeded,
    MalformedHeader,
    PeerCanceled,
    RequestEnded,
    RequestFinished,
    ServerShutdown,
)
from ._native import (
    Context,
    Policy,
    TraceContext,
    baggage,
    extract,
    format_baggage,
    format_grpc_timeout,
    format_timeout_ms,
    inject,
    parse_baggage,
    parse_grpc_timeout,
    parse_timeout_ms,
    parse_traceparent,
    parse_tracestate,
    trace_context,
    trace_link,
    tracestate,
    with_baggage,
    with_trace_context,
)
from ._wiretypes import BaggageEntry

__all__ = [
    "BaggageEntry",
    "ClientDisconnected",
    "EndReason",
    "MalformedHeader",
    "PeerCanceled",
    "Policy",
    "RequestEnded",
    "RequestFinished",
    "ServerShutdown",
    "TraceContext",
    "baggage",
    "end_reason",
    "extract",
    "format_baggage",
    "format_grpc_timeout",
    "format_timeout_ms",
    "inject",
    "parse_baggage",
    "parse_grpc_timeout",
    "parse_timeout_ms",
    "parse_traceparent",
    "parse_tracestate",
    "trace_context",
    "trace_link",
    "tracestate",
    "with_baggage",
    "with_trace_context",
]


class EndReason(enum.Enum):
    """Why a request's context ended, with the gRPC code, Connect code and
    HTTP status the core's one table maps it to (the same in every
    language). `EndReason.of(ctx)` reads it; `reason.cause()` is the
    exception to cancel a request with."""

    CANCELED = "canceled"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CLIENT_DISCONNECTED = "client_disconnected"
    PEER_CANCELED = "peer_canceled"
    SERVER_SHUTDOWN = "server_shutdown"
    REQUEST_FINISHED = "request_finished"

    @property
    def grpc_code(self) -> int:
        """The gRPC status code (`CANCELLED` 1, `DEADLINE_EXCEEDED` 4, `UNAVAILABLE` 14)."""
        return _TABLE[self.value][0]

    @property
    def connect_code(self) -> str:
        """The Connect error code, e.g. "deadline_exceeded"."""
        return _TABLE[self.value][1]

    @property
    def http_status(self) -> int:
        """The HTTP status: 504 for a spent budget, 503 for shutdown, 499 otherwise."""
        return _TABLE[self.value][2]

    def cause(self) -> BaseException:
        """A new exception to cancel a request's context with for this reason."""
        return _CAUSES[self.value]()

    @classmethod
    def of(cls, ctx: Context) -> EndReason | None:
        """Why `ctx` ended: its cause when that is an end reason (set in any
        language), else its error; None while it is live."""
        name = _native.end_reason(ctx)
        return None if name is None else _BY_NAME[name]


def end_reason(ctx: Context) -> EndReason | None:
    """`EndReason.of(ctx)`."""
    return EndReason.of(ctx)


_TABLE: dict[str, tuple[int, str, int]] = {
    name: (grpc, connect, http) for name, grpc, connect, http in _native.end_reasons()
}
if set(_TABLE) != {r.value for r in EndReason}:  # pragma: no cover - the core's table changed
    raise ImportError(f"polyctx.wire.EndReason does not match the core's end reasons {sorted(_TABLE)}")

_BY_NAME: dict[str, EndReason] = {r.value: r for r in EndReason}

_CAUSES: dict[str, type[BaseException]] = {
    "canceled": Canceled,
    "deadline_exceeded": DeadlineExceeded,
    "client_disconnected": ClientDisconnected,
    "peer_canceled": PeerCanceled,
    "server_shutdown": ServerShutdown,
    "request_finished": RequestFinished,
}
