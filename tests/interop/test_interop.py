"""Go <-> polyctx (Python) on loopback (issue 15): a Go client's
context.WithTimeout arrives as a shrinking budget in polyctx servers
(net/http and grpc-go clients), and Go servers see the budget polyctx
clients send (httpx and grpcio). The Go side is tests/interop/go, built by
`make test-interop` into build/interop/interop."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py" / "tests"))

import grpc  # noqa: E402
import httpx  # noqa: E402
from _servers import Events, serve  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

import polyctx  # noqa: E402
from polyctx import wire  # noqa: E402
from polyctx.asgi import PolyctxMiddleware, RequestCounters  # noqa: E402
from polyctx.grpc import ClientInterceptor, ServerInterceptor  # noqa: E402
from polyctx.httpx import AsyncTransport  # noqa: E402

GO = Path(os.environ.get("INTEROP_BIN", ROOT / "build" / "interop" / "interop"))
INTERNAL = wire.Policy.internal()


def go(*args: str) -> dict[str, Any]:
    out = subprocess.run([str(GO), *args], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def remaining_ms() -> float | None:
    deadline = polyctx.current().deadline()
    return None if deadline is None else (deadline - time.monotonic()) * 1000


# -- Go clients -> polyctx servers -------------------------------------------------


@pytest.fixture(scope="module")
def py_http() -> Iterator[tuple[str, Events, RequestCounters]]:
    events, counters = Events(), RequestCounters("python http")

    async def budget(request: Request) -> Response:
        events.set("budget", remaining_ms())
        return JSONResponse({"ms": remaining_ms()})

    async def wait(request: Request) -> Response:
        ctx = polyctx.current()
        await ctx.done()
        events.set("wait", wire.EndReason.of(ctx))
        return Response("done")

    async def spend(request: Request) -> Response:
        async with polyctx.scope(polyctx.current()):
            await asyncio.sleep(30)
        return Response("unreachable")

    app = Starlette(
        routes=[Route("/budget", budget), Route("/wait", wait), Route("/grpc.health.v1.Health/Check", spend)],
        middleware=[Middleware(PolyctxMiddleware, policy=INTERNAL, counters=counters)],
    )
    with serve(app, http="httptools") as url:
        yield url, events, counters


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, events: Events) -> None:
        self.events = events

    def Check(self, request: Any, context: Any) -> Any:
        ctx = polyctx.current()
        if request.service == "wait":
            ctx.wait(30)
            self.events.set("wait", wire.EndReason.of(ctx))
            raise ctx.err() or AssertionError  # the call's status, by the core's table
        else:
            self.events.set("budget", remaining_ms())
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="module")
def py_grpc() -> Iterator[tuple[str, Events, RequestCounters]]:
    events, counters = Events(), RequestCounters("python grpc")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), interceptors=[ServerInterceptor(policy=INTERNAL, counters=counters)]
    )
    health_pb2_grpc.add_HealthServicer_to_server(Health(events), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", events, counters
    finally:
        server.stop(None).wait(10)


def test_go_http_client_budget_shrinks_into_polyctx(py_http: tuple[str, Events, RequestCounters]):
    url, events, _ = py_http
    got = go("call-http", f"{url}/budget", "800", "100")
    assert got["status"] == 200
    assert int(got["sent"]) <= 700, "the Go client's 100 ms of work came off"
    seen = events.wait("budget")
    assert 200 < seen <= int(got["sent"])


def test_go_http_client_timeout_ends_the_polyctx_request(py_http: tuple[str, Events, RequestCounters]):
    url, events, counters = py_http
    got = go("call-http", f"{url}/wait", "300", "0")
    # Both ends hold the same deadline: either Go's client gives up first, or
    # the handler, its context ended, answers a moment before. Never a wait
    # beyond the budget: the handler waits for its context and nothing else.
    ended_by_go = got.get("deadline_exceeded", False)
    answered_at_deadline = got.get("status") in (200, 504)
    assert (ended_by_go or answered_at_deadline) and got["elapsed_ms"] < 5000, got
    assert events.wait("wait") in (wire.EndReason.DEADLINE_EXCEEDED, wire.EndReason.CLIENT_DISCONNECTED)
    assert counters.wait_idle(10)


def test_go_grpc_client_budget_shrinks_into_polyctx(py_grpc: tuple[str, Events, RequestCounters]):
    target, events, _ = py_grpc
    got = go("call-grpc", target, "800", "100", "")
    assert got["code"] == "OK"
    assert 200 < events.wait("budget") <= 700


def test_go_grpc_client_timeout_ends_the_polyctx_call(py_grpc: tuple[str, Events, RequestCounters]):
    target, events, counters = py_grpc
    got = go("call-grpc", target, "300", "0", "wait")
    assert got["code"] == "DeadlineExceeded" and got["elapsed_ms"] < 5000
    assert events.wait("wait") in (wire.EndReason.DEADLINE_EXCEEDED, wire.EndReason.PEER_CANCELED)
    assert counters.wait_idle(10)


def test_grpc_go_0n_is_a_spent_budget(
    py_grpc: tuple[str, Events, RequestCounters], py_http: tuple[str, Events, RequestCounters]
):
    """`0n` (grpc-go's encoding of no time left) on a gRPC call and, as a
    hint, on a plain HTTP request: both polyctx servers treat the budget as spent."""
    target, _, _ = py_grpc
    got = go("raw-0n", f"http://{target}", "/grpc.health.v1.Health/Check")
    assert got["grpc_status"] == str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
    url, _, _ = py_http
    with httpx.Client() as client:
        r = client.get(f"{url}/grpc.health.v1.Health/Check", headers={"grpc-timeout": "0n"})
    assert r.status_code == 504


# -- polyctx clients -> Go servers -------------------------------------------------


@pytest.fixture(scope="module")
def go_servers() -> Iterator[tuple[dict[str, str], queue.Queue[dict[str, Any]]]]:
    proc = subprocess.Popen([str(GO), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    lines: queue.Queue[dict[str, Any]] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    try:
        yield lines.get(timeout=30), lines
    finally:
        proc.stdin.close()
        proc.wait(30)
        proc.stdout.close()


def traced() -> polyctx.Context:
    ctx = wire.with_trace_context(polyctx.background(), wire.TraceContext.new_root())
    return wire.with_baggage(ctx, {"tenant": "acme"})


def test_httpx_budget_reaches_a_go_server(go_servers: tuple[dict[str, str], queue.Queue[dict[str, Any]]]):
    addrs, calls = go_servers

    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL)) as client:
            with polyctx.use(polyctx.with_timeout(traced(), 0.8)) as ctx:
                await asyncio.sleep(0.1)
                (await client.get(f"http://{addrs['http']}/budget")).raise_for_status()
                trace = wire.trace_context(ctx)
                assert trace is not None
                seen = calls.get(timeout=10)
                assert seen["kind"] == "http" and int(seen["header"]) <= 700
                assert 200 < seen["remaining_ms"] <= 700, "Go's own context got the shrunk budget"
                assert seen["traceparent"] == [trace.to_header()]

    asyncio.run(main())


def test_grpcio_budget_reaches_a_grpc_go_server(go_servers: tuple[dict[str, str], queue.Queue[dict[str, Any]]]):
    addrs, calls = go_servers
    channel = grpc.intercept_channel(grpc.insecure_channel(addrs["grpc"]), ClientInterceptor(policy=INTERNAL))
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with polyctx.use(polyctx.with_timeout(traced(), 0.8)) as ctx:
            time.sleep(0.1)
            stub.Check(health_pb2.HealthCheckRequest(service="budget"))
            seen = calls.get(timeout=10)
            trace = wire.trace_context(ctx)
            assert (
                trace is not None and seen["traceparent"] == [trace.to_header()] and seen["baggage"] == ["tenant=acme"]
            )
            assert 200 < seen["remaining_ms"] <= 700, "grpc-go's ctx.Deadline() is the shrunk budget"
        # No time left: fails here, as grpc-go does, and nothing reaches Go.
        with polyctx.use(polyctx.with_timeout(polyctx.background(), 0)), pytest.raises(polyctx.DeadlineExceeded):
            stub.Check(health_pb2.HealthCheckRequest(service="spent"))
        stub.Check(health_pb2.HealthCheckRequest(service="after"))
        assert calls.get(timeout=10)["service"] == "after", "the spent call never arrived"
