"""Whether OpenTelemetry owns the trace headers in this process, asked
without importing it: the integrations then leave `traceparent`,
`tracestate` and `baggage` to it (two writers of `traceparent` break
traces) and carry only the budget."""

from __future__ import annotations

import sys

from ._native import Policy

__all__ = ["policy_for_now"]


def otel_owns_trace() -> bool:
    """True once an OpenTelemetry SDK (any real tracer provider) is set up:
    with only the API, nothing would write `traceparent` but polyctx."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def policy_for_now(policy: Policy, quiet: Policy) -> Policy:
    """`policy`, or `quiet` (the same without trace propagation) while
    OpenTelemetry owns the trace headers."""
    return quiet if policy.propagate_trace and otel_owns_trace() else policy
