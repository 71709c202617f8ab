"""OpenTelemetry and polyctx side by side (needs only `opentelemetry-api`).

- `DeadlinePropagator`: a `TextMapPropagator` that carries the budget of
  `polyctx.current()` (`request-timeout-ms`, or the protocol's own header),
  so clients OpenTelemetry instruments carry it for free. Install it beside
  OpenTelemetry's own: `OTEL_PROPAGATORS=tracecontext,baggage,polyctx_deadline`
  (an entry point), or in a `CompositePropagator`. On the way in it keeps the
  deadline in OpenTelemetry's context (`deadline()`, `from_otel()`).
- Once an OpenTelemetry SDK is set up, polyctx's integrations (ASGI, httpx,
  gRPC) never read or write `traceparent`, `tracestate` or `baggage`: they
  are OpenTelemetry's, and two writers of `traceparent` break traces.
  polyctx then reads trace context through OpenTelemetry: `trace_context()`.
- Adapters: `from_otel()` makes a polyctx context from OpenTelemetry's
  current one (deadline, span context, baggage); `to_otel()` the other way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from ._asyncio import current
from ._errors import MalformedHeader
from ._native import Context, background, with_cancel, with_deadline
from ._otelmode import otel_owns_trace
from ._pair import CancelPair
from .wire import Policy, TraceContext, baggage, extract, inject, trace_context, with_baggage, with_trace_context

__all__ = [
    "DeadlinePropagator",
    "deadline",
    "from_otel",
    "otel_owns_trace",
    "to_otel",
    "trace_context_of",
]

_DEADLINE = otel_context.create_key("polyctx-deadline")
_BUDGET_ONLY = Policy.internal(propagate_trace=False)
_HEADERS = {"http": "request-timeout-ms", "grpc": "grpc-timeout", "connect": "connect-timeout-ms"}


class DeadlinePropagator(TextMapPropagator):
    """Carries the budget of `polyctx.current()` in `protocol`'s timeout
    header. `inject` with no time left raises the context's error (the call
    would fail anyway: it is never sent); `extract` ignores a malformed value
    and keeps the deadline, counted from now, in the returned context."""

    def __init__(self, protocol: Literal["http", "grpc", "connect"] = "http") -> None:
        self.protocol: Literal["http", "grpc", "connect"] = protocol

    def inject(
        self, carrier: CarrierT, context: OtelContext | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        headers: list[tuple[str, str]] = []
        inject(current(), headers, _BUDGET_ONLY, protocol=self.protocol)
        for name, value in headers:
            setter.set(carrier, name, value)

    def extract(
        self, carrier: CarrierT, context: OtelContext | None = None, getter: Getter[CarrierT] = default_getter
    ) -> OtelContext:
        if context is None:
            context = otel_context.get_current()
        headers = [(name, v) for name in _HEADERS.values() for v in getter.get(carrier, name) or ()]
        if not headers:
            return context
        try:
            ctx, cancel = extract(background(), headers, _BUDGET_ONLY, protocol=self.protocol)
        except MalformedHeader:
            return context
        at = ctx.deadline()
        cancel()
        return context if at is None else otel_context.set_value(_DEADLINE, at, context)

    @property
    def fields(self) -> set[str]:
        return {_HEADERS[self.protocol]}


def deadline(context: OtelContext | None = None) -> float | None:
    """The deadline `DeadlinePropagator.extract` kept in `context` (the
    current one by default), in `time.monotonic()` seconds."""
    at = otel_context.get_value(_DEADLINE, context)
    return at if isinstance(at, float) else None


def trace_context_of(context: OtelContext | None = None) -> TraceContext | None:
    """OpenTelemetry's current span context (of `context`), as a polyctx `TraceContext`."""
    sc = trace.get_current_span(context).get_span_context()
    if not sc.is_valid:
        return None
    return TraceContext(format(sc.trace_id, "032x"), format(sc.span_id, "016x"), int(sc.trace_flags))


def from_otel(parent: Context | None = None, context: OtelContext | None = None) -> CancelPair:
    """A child of `parent` (`polyctx.current()`) carrying what OpenTelemetry's
    context holds: the deadline `DeadlinePropagator` extracted, the current
    span context and the baggage. Cancel it when the work is done."""
    ctx = current() if parent is None else parent
    tc = trace_context_of(context)
    if tc is not None:
        ctx = with_trace_context(ctx, tc)
    entries: Mapping[str, object] = otel_baggage.get_all(context)
    if entries:
        ctx = with_baggage(ctx, {k: str(v) for k, v in entries.items()})
    at = deadline(context)
    return with_cancel(ctx) if at is None else with_deadline(ctx, at)


def to_otel(ctx: Context | None = None, context: OtelContext | None = None) -> OtelContext:
    """OpenTelemetry's `context` (the current one) with `ctx`'s
    (`polyctx.current()`'s) trace context as the current span (remote,
    non-recording), its baggage, and its deadline."""
    ctx = current() if ctx is None else ctx
    out = otel_context.get_current() if context is None else context
    tc = trace_context(ctx)
    if tc is not None:
        sc = trace.SpanContext(
            int(tc.trace_id, 16), int(tc.span_id, 16), is_remote=True, trace_flags=trace.TraceFlags(tc.flags & 0xFF)
        )
        out = trace.set_span_in_context(trace.NonRecordingSpan(sc), out)
    for key, entry in baggage(ctx).items():
        out = otel_baggage.set_baggage(key, entry.value, out)
    at = ctx.deadline()
    if at is not None:
        out = otel_context.set_value(_DEADLINE, at, out)
    return out
