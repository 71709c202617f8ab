"""polyctx.otel: the deadline propagator and the adapters with the
OpenTelemetry API alone, then the API and SDK with OpenTelemetry's own httpx
and ASGI instrumentation on real servers, asserting exactly one
`traceparent` on the wire. The SDK runs in a subprocess: a process sets
its tracer provider once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry")

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.composite import CompositePropagator

import polyctx
from polyctx import otel, wire

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_propagator_carries_the_budget():
    prop = otel.DeadlinePropagator()
    assert prop.fields == {"request-timeout-ms"}
    carrier: dict[str, str] = {}
    with polyctx.use(polyctx.with_timeout(polyctx.background(), 2)):
        prop.inject(carrier)
    assert list(carrier) == ["request-timeout-ms"] and 1000 < int(carrier["request-timeout-ms"]) <= 2000
    got = otel.deadline(prop.extract(carrier))
    assert got is not None and 1 < got - time.monotonic() <= 2
    assert otel.deadline(prop.extract({"request-timeout-ms": "soon"})) is None, "malformed: ignored"
    assert otel.deadline(prop.extract({})) is None
    with polyctx.use(polyctx.with_timeout(polyctx.background(), 0)), pytest.raises(polyctx.DeadlineExceeded):
        prop.inject(carrier)
    grpc = otel.DeadlinePropagator("grpc")
    out: dict[str, str] = {}
    with polyctx.use(polyctx.with_timeout(polyctx.background(), 1)):
        CompositePropagator([get_global_textmap(), grpc]).inject(out)
    assert "grpc-timeout" in out


def test_entry_point_is_installed():
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="opentelemetry_propagator") if ep.name == "polyctx_deadline"]
    assert found and found[0].load() is otel.DeadlinePropagator


def test_adapters_round_trip():
    ctx = wire.with_trace_context(polyctx.background(), wire.parse_traceparent(TP) or wire.TraceContext.new_root())
    ctx = wire.with_baggage(ctx, {"tenant": "acme"})
    with polyctx.with_timeout(ctx, 5) as (ctx, _):
        o = otel.to_otel(ctx)
        assert otel.trace_context_of(o) == wire.parse_traceparent(TP)
        assert otel_baggage.get_baggage("tenant", o) == "acme"
        token = otel_context.attach(o)
        try:
            with otel.from_otel(polyctx.background()) as (back, _):
                assert wire.trace_context(back) == wire.parse_traceparent(TP)
                assert wire.baggage(back)["tenant"].value == "acme"
                assert back.deadline() == ctx.deadline()
        finally:
            otel_context.detach(token)
    assert otel.trace_context_of() is None and not otel.otel_owns_trace()


def test_works_with_the_api_alone():
    """No SDK importable: the propagator and adapters still work, and polyctx
    keeps writing traceparent (nothing else would)."""
    code = """
import sys
sys.modules["opentelemetry.sdk"] = None  # as if only opentelemetry-api were installed
import polyctx
from polyctx import otel, wire
from polyctx._otelmode import policy_for_now
carrier = {}
with polyctx.use(polyctx.with_timeout(polyctx.background(), 1)):
    otel.DeadlinePropagator().inject(carrier)
p = wire.Policy.internal()
assert policy_for_now(p, p.with_propagate_trace(False)) is p
print(sorted(carrier))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['request-timeout-ms']"


def test_one_traceparent_on_the_wire_with_the_sdk():
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.instrumentation.httpx")
    pytest.importorskip("opentelemetry.instrumentation.asgi")
    pytest.importorskip("uvicorn")
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "sdk"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["traceparents"] == 1, got
    assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736", "the gateway continued the caller's trace"
    assert got["owns"] is True
    assert 0 < got["budget_ms"] <= 1000, "the budget still travels"
    assert got["polyctx_trace"] is None, "polyctx left the trace to OpenTelemetry"
    assert got["via_otel"] == got["trace_id"]


def sdk_scenario() -> dict[str, Any]:
    """client -> gateway (OTel ASGI middleware + polyctx middleware; httpx with
    polyctx's transport, instrumented by OTel) -> backend that records the
    raw headers it got."""
    import httpx
    from _servers import serve
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from polyctx.asgi import PolyctxMiddleware
    from polyctx.httpx import AsyncTransport

    trace.set_tracer_provider(TracerProvider())
    seen: dict[str, Any] = {}

    async def backend(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen["headers"] = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with serve(backend) as backend_url:

        async def search(request: Request) -> Response:
            seen["polyctx_trace"] = str(wire.trace_context(polyctx.current()) or "") or None
            tc = otel.trace_context_of()
            seen["via_otel"] = tc and tc.trace_id
            client = httpx.AsyncClient(transport=AsyncTransport(policy=wire.Policy.internal()))
            HTTPXClientInstrumentor().instrument_client(client)
            async with client:
                await client.get(backend_url)
            return JSONResponse({})

        gateway = Starlette(
            routes=[Route("/", search)],
            middleware=[
                Middleware(OpenTelemetryMiddleware),
                Middleware(PolyctxMiddleware, policy=wire.Policy.internal()),
            ],
        )
        with serve(gateway) as gateway_url:
            asyncio.run(_get(gateway_url))
    parents = [v for k, v in seen["headers"] if k == "traceparent"]
    budget = [int(v) for k, v in seen["headers"] if k == "request-timeout-ms"]
    return {
        "traceparents": len(parents),
        "trace_id": parents[0].split("-")[1] if parents else None,
        "budget_ms": budget[0] if budget else None,
        "owns": otel.otel_owns_trace(),
        "polyctx_trace": seen["polyctx_trace"],
        "via_otel": seen["via_otel"],
    }


async def _get(url: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        r = await client.get(url, headers={"traceparent": TP, "request-timeout-ms": "1000"})
        r.raise_for_status()


if __name__ == "__main__" and sys.argv[1:] == ["sdk"]:
    print(json.dumps(sdk_scenario()))
