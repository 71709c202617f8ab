"""The ASGI middleware on real uvicorn servers (both HTTP parsers), under
Starlette (with BaseHTTPMiddleware, StreamingResponse, background tasks)
and FastAPI. Disconnects come from real sockets closing: httpx's
ASGITransport only reports one after the response."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from _servers import Events, raw_request, read_response, serve
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import polyctx
from polyctx import wire
from polyctx.asgi import PolyctxMiddleware, RequestCounters

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def remaining_ms() -> float | None:
    deadline = polyctx.current().deadline()
    return None if deadline is None else (deadline - time.monotonic()) * 1000


def make_app(events: Events, counters: RequestCounters, *, inner_base_http: bool = False, **options: Any) -> Starlette:
    async def budget(request: Request) -> Response:
        trace = wire.trace_context(polyctx.current())
        return JSONResponse({"ms": remaining_ms(), "trace_id": trace and trace.trace_id})

    async def wait(request: Request) -> Response:
        """Waits for its context to end, and reports when and why."""
        ctx = polyctx.current()
        events.set("wait.started")
        await ctx.done()
        reason = wire.EndReason.of(ctx)
        events.set("wait.ended", reason)
        return PlainTextResponse(str(reason))

    async def partial(request: Request) -> Response:
        """Two calls, one too slow for the budget: returns what it has."""

        async def call(name: str, seconds: float) -> str:
            async with polyctx.scope(polyctx.current()):
                await asyncio.sleep(seconds)
                return name

        results = await asyncio.gather(call("fast", 0.01), call("slow", 30), return_exceptions=True)
        return JSONResponse([r if isinstance(r, str) else type(r).__name__ for r in results])

    async def escape(request: Request) -> Response:
        async with polyctx.scope(polyctx.current()):
            await asyncio.sleep(30)
        return PlainTextResponse("unreachable")

    async def stream(request: Request) -> Response:
        ctx = polyctx.current()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async with polyctx.scope(ctx):
                    for i in range(1000):
                        yield b"chunk %d\n" % i
                        if i == 0:
                            events.set("stream.started")
                        await asyncio.sleep(0.01)
            finally:
                events.set("stream.ended", wire.EndReason.of(ctx))

        return StreamingResponse(chunks())

    async def background(request: Request) -> Response:
        ctx = polyctx.current()

        async def later() -> None:
            events.set("background.ran", (ctx.is_done(), remaining_ms() is not None))

        def after_app() -> None:
            events.set("background.after", wire.EndReason.of(ctx))

        polyctx.after_func(ctx, after_app)
        return PlainTextResponse("ok", background=BackgroundTask(later))

    class Noop(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: Any) -> Response:
            response: Response = await call_next(request)
            response.headers["x-noop"] = "1"
            return response

    routes = [
        Route("/budget", budget),
        Route("/wait", wait),
        Route("/partial", partial),
        Route("/escape", escape),
        Route("/stream", stream),
        Route("/background", background),
    ]
    mine = Middleware(PolyctxMiddleware, counters=counters, **options)
    # Starlette runs the first middleware listed outermost.
    middleware = [Middleware(Noop), mine] if inner_base_http else [mine, Middleware(Noop)]
    return Starlette(routes=routes, middleware=middleware)


@pytest.fixture(params=["h11", "httptools"])
def parser(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["outside", "inside"])
def order(request: pytest.FixtureRequest) -> str:
    """Our middleware outside or inside Starlette's BaseHTTPMiddleware."""
    return str(request.param)


@pytest.fixture
def server(parser: str, order: str) -> Iterator[tuple[str, Events, RequestCounters]]:
    events, counters = Events(), RequestCounters("gateway")
    app = make_app(events, counters, inner_base_http=order == "inside", policy=wire.Policy.internal())
    with serve(app, http=parser) as url:
        yield url, events, counters


def get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    sock = raw_request(url, path, {"Connection": "close", **(headers or {})})
    try:
        return read_response(sock)
    finally:
        sock.close()


def test_budget_and_trace_arrive(server: tuple[str, Events, RequestCounters]):
    url, _, counters = server
    import json

    status, body = get(url, "/budget", {"Request-Timeout-Ms": "1500", "traceparent": TP})
    got = json.loads(body)
    assert status == 200 and 1000 < got["ms"] <= 1500
    assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert counters.wait_idle(10) and counters.ended() == {"request_finished": 1}


def test_client_disconnect_cancels_at_once(server: tuple[str, Events, RequestCounters]):
    url, events, counters = server
    sock = raw_request(url, "/wait")
    events.wait("wait.started")
    hung_up = time.monotonic()
    sock.close()
    assert events.wait("wait.ended") is wire.EndReason.CLIENT_DISCONNECTED
    latency = events.values["wait.ended.at"] - hung_up
    assert latency < 1.0, f"{latency * 1000:.1f} ms"
    assert counters.wait_idle(10) and counters.ended() == {"client_disconnected": 1}


def test_partial_results_at_the_deadline(server: tuple[str, Events, RequestCounters]):
    url, _, counters = server
    t = time.monotonic()
    status, body = get(url, "/partial", {"request-timeout-ms": "200"})
    assert status == 200 and body == b'["fast","DeadlineExceeded"]'
    assert time.monotonic() - t < 10
    assert counters.wait_idle(10)


def test_deadline_escaping_is_a_504(server: tuple[str, Events, RequestCounters]):
    url, _, counters = server
    status, body = get(url, "/escape", {"request-timeout-ms": "100"})
    assert (status, body) == (504, b"context deadline exceeded")
    assert counters.wait_idle(10) and counters.ended() == {"deadline_exceeded": 1}


def test_malformed_budget_is_a_400(server: tuple[str, Events, RequestCounters]):
    url, _, counters = server
    status, body = get(url, "/budget", {"request-timeout-ms": "soon"})
    assert status == 400 and b"request-timeout-ms" in body
    assert counters.started == 0


def test_streaming_response_stops_when_the_client_goes(server: tuple[str, Events, RequestCounters]):
    url, events, counters = server
    sock = raw_request(url, "/stream")
    events.wait("stream.started")
    sock.close()
    assert events.wait("stream.ended") is wire.EndReason.CLIENT_DISCONNECTED
    assert counters.wait_idle(10)


def test_background_tasks_run_in_the_live_request(server: tuple[str, Events, RequestCounters]):
    url, events, counters = server
    status, _ = get(url, "/background", {"request-timeout-ms": "5000"})
    assert status == 200
    assert events.wait("background.ran") == (False, True), "the request's context is live in its background task"
    assert events.wait("background.after") is wire.EndReason.REQUEST_FINISHED
    assert counters.wait_idle(10)


def test_cancel_handler_option(parser: str):
    events, counters = Events(), RequestCounters()

    async def slow(request: Request) -> Response:
        events.set("slow.started")
        try:
            await asyncio.sleep(30)
        finally:
            events.set("slow.ended")
        return PlainTextResponse("unreachable")

    app = Starlette(
        routes=[Route("/slow", slow)],
        middleware=[Middleware(PolyctxMiddleware, cancel_handler=True, counters=counters)],
    )
    with serve(app, http=parser) as url:
        status, body = get(url, "/slow", {"request-timeout-ms": "100"})
        assert (status, body) == (504, b"context deadline exceeded")
        events.wait("slow.ended")
        events.event("slow.started").clear()
        events.event("slow.ended").clear()
        sock = raw_request(url, "/slow")
        events.wait("slow.started")
        sock.close()
        events.wait("slow.ended")
        assert counters.wait_idle(10)
    assert counters.ended() == {"deadline_exceeded": 1, "client_disconnected": 1}


def test_external_policy_is_the_default(parser: str):
    counters = RequestCounters()

    async def budget(request: Request) -> Response:
        return JSONResponse({"ms": remaining_ms(), "link": str(wire.trace_link(polyctx.current()))})

    app = Starlette(routes=[Route("/", budget)], middleware=[Middleware(PolyctxMiddleware, counters=counters)])
    import json

    with serve(app, http=parser) as url:
        got = json.loads(get(url, "/", {"traceparent": TP})[1])
        assert 29_000 < got["ms"] <= 30_000 and got["link"] == TP
        got = json.loads(get(url, "/", {"request-timeout-ms": "999999999"})[1])
        assert 299_000 < got["ms"] <= 300_000


def test_shutdown_ends_requests_with_server_shutdown():
    events, counters = Events(), RequestCounters()

    async def wait(request: Request) -> Response:
        ctx = polyctx.current()
        events.set("wait.started")
        await ctx.done()
        events.set("wait.ended", wire.EndReason.of(ctx))
        raise ctx.err() or AssertionError

    # Inside Starlette's error middleware, as `middleware=[...]` puts it: a
    # middleware outside it would find the error already turned into a 500.
    middleware = PolyctxMiddleware(Starlette(routes=[Route("/", wait)]).router, counters=counters)
    with serve(Starlette(routes=[], middleware=[Middleware(_Fixed, app=middleware)])) as url:
        sock = raw_request(url, "/")
        events.wait("wait.started")
        middleware.shutdown()
        assert events.wait("wait.ended") is wire.EndReason.SERVER_SHUTDOWN
        assert read_response(sock)[0] == 503
        sock.close()
        assert counters.wait_idle(10)


class _Fixed:
    """A Starlette middleware entry that is a given ASGI app."""

    def __init__(self, _next: Any, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def test_lifespan_shutdown_cancels_the_server_context():
    middleware = PolyctxMiddleware(Starlette())
    with serve(middleware, lifespan="on"):
        assert not middleware._server.is_done()
    assert wire.EndReason.of(middleware._server) is wire.EndReason.SERVER_SHUTDOWN


def test_fastapi(parser: str):
    fastapi = pytest.importorskip("fastapi")
    counters = RequestCounters()
    app = fastapi.FastAPI()
    app.add_middleware(PolyctxMiddleware, policy=wire.Policy.internal(), counters=counters)

    @app.get("/budget")
    async def budget() -> dict[str, float | None]:
        return {"ms": remaining_ms()}

    @app.get("/sync")
    def sync_budget() -> dict[str, float | None]:  # runs in a worker thread, with the request's context
        return {"ms": remaining_ms()}

    import json

    with serve(app, http=parser) as url:
        for path in ("/budget", "/sync"):
            status, body = get(url, path, {"request-timeout-ms": "800"})
            assert status == 200 and 500 < json.loads(body)["ms"] <= 800
    assert counters.in_flight == 0 and counters.ended() == {"request_finished": 2}


def test_disconnect_latency_is_under_50ms():
    """Issue 16's bound: from the client's hang-up to the request's context
    being done, on uvicorn, median of several runs (each also bounded)."""
    events, counters = Events(), RequestCounters()

    async def wait(request: Request) -> Response:
        ctx = polyctx.current()
        events.set(f"started.{request.query_params['i']}")
        await ctx.done()
        events.set(f"ended.{request.query_params['i']}")
        return PlainTextResponse("")

    app = Starlette(routes=[Route("/", wait)], middleware=[Middleware(PolyctxMiddleware, counters=counters)])
    samples = []
    with serve(app, http="httptools") as url:
        for i in range(7):
            sock = raw_request(url, f"/?i={i}")
            events.wait(f"started.{i}")
            hung_up = time.monotonic()
            sock.close()
            events.wait(f"ended.{i}")
            samples.append(events.values[f"ended.{i}.at"] - hung_up)
    median_ms = statistics.median(samples) * 1000
    print(f"client disconnect to cancel: median {median_ms:.2f} ms, max {max(samples) * 1000:.2f} ms")
    assert median_ms < 50
