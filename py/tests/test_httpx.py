"""The httpx transports against a real slow server (uvicorn, with the ASGI
middleware, so each test also sees what the server side makes of it)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _servers import Events, serve  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

import polyctx  # noqa: E402
from polyctx import wire  # noqa: E402
from polyctx.asgi import PolyctxMiddleware  # noqa: E402
from polyctx.httpx import AsyncTransport, RequestCounters, Transport  # noqa: E402

INTERNAL = wire.Policy.internal()


def server_app(events: Events, counters: RequestCounters) -> Starlette:
    async def echo(request: Request) -> Response:
        ctx = polyctx.current()
        deadline = ctx.deadline()
        trace = wire.trace_context(ctx)
        return JSONResponse(
            {
                "headers": {k: v for k, v in request.headers.items() if k in ("request-timeout-ms", "baggage")},
                "ms": None if deadline is None else (deadline - time.monotonic()) * 1000,
                "trace_id": trace and trace.trace_id,
                "baggage": {k: e.value for k, e in wire.baggage(ctx).items()},
            }
        )

    async def slow(request: Request) -> Response:
        """Answers nothing until the client hangs up, whatever its budget."""
        ctx = polyctx.current()
        events.set("slow.started")
        while (await request.receive())["type"] != "http.disconnect":
            pass
        events.set("slow.ended", wire.EndReason.of(ctx))
        return Response("late")

    async def drip(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            events.set("drip.started")
            await polyctx.current().done()
            yield b"never sent"

        return StreamingResponse(chunks())

    return Starlette(
        routes=[Route("/echo", echo), Route("/slow", slow), Route("/drip", drip)],
        middleware=[Middleware(PolyctxMiddleware, policy=INTERNAL, counters=counters)],
    )


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[str, Events, RequestCounters]]:
    events, counters = Events(), RequestCounters("backend")
    with serve(server_app(events, counters), http="httptools") as url:
        yield url, events, counters


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_sends_the_shrinking_budget_trace_and_baggage(backend: tuple[str, Events, RequestCounters]):
    url, _, _ = backend

    async def main() -> Any:
        ctx = wire.with_trace_context(polyctx.background(), wire.TraceContext.new_root())
        ctx = wire.with_baggage(ctx, {"tenant": "acme"})
        async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL)) as client:
            with polyctx.use(polyctx.with_timeout(ctx, 1.0)):
                await asyncio.sleep(0.1)  # time spent in this hop comes off the budget
                r = await client.get(f"{url}/echo")
                return r.json(), wire.trace_context(ctx)

    got, trace = run(main())
    assert 500 < int(got["headers"]["request-timeout-ms"]) <= 900
    assert 400 < got["ms"] <= 900
    assert got["trace_id"] == trace.trace_id and got["baggage"] == {"tenant": "acme"}


def test_external_destinations_get_no_baggage(backend: tuple[str, Events, RequestCounters]):
    url, _, _ = backend

    async def main() -> Any:
        ctx = wire.with_baggage(polyctx.background(), {"tenant": "acme"})
        async with httpx.AsyncClient(transport=AsyncTransport()) as client:
            return (await client.get(f"{url}/echo", extensions={"polyctx.context": ctx})).json()

    got = run(main())
    assert got["headers"] == {} and got["baggage"] == {} and got["ms"] is None


def test_async_aborts_at_the_deadline(backend: tuple[str, Events, RequestCounters]):
    url, events, server = backend
    counters = RequestCounters()

    async def main() -> float:
        async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL, counters=counters)) as client:
            t = time.monotonic()
            with polyctx.use(polyctx.with_timeout(polyctx.background(), 0.2)):
                with pytest.raises(polyctx.DeadlineExceeded):
                    await client.get(f"{url}/slow")
            return time.monotonic() - t

    took = run(main())
    assert took < 5
    assert events.wait("slow.ended") in (wire.EndReason.DEADLINE_EXCEEDED, wire.EndReason.CLIENT_DISCONNECTED)
    assert counters.in_flight == 0 and counters.ended() == {"deadline_exceeded": 1}
    assert server.wait_idle(10)


def test_async_cancel_aborts_with_the_cause(backend: tuple[str, Events, RequestCounters]):
    url, events, server = backend

    async def main() -> BaseException:
        ctx, cancel = polyctx.with_cancel_cause(polyctx.background())
        async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL)) as client:
            call = asyncio.ensure_future(client.get(f"{url}/slow", extensions={"polyctx.context": ctx}))
            await asyncio.to_thread(events.wait, "slow.started")
            cancel(wire.ClientDisconnected())
            with pytest.raises(polyctx.Canceled) as e:
                await call
            return e.value

    events.event("slow.started").clear()
    err = run(main())
    assert isinstance(err.__cause__, wire.ClientDisconnected)
    assert server.wait_idle(10)


def test_async_aborts_a_body_in_flight(backend: tuple[str, Events, RequestCounters]):
    url, _, server = backend
    counters = RequestCounters()

    async def main() -> list[bytes]:
        got: list[bytes] = []
        async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL, counters=counters)) as client:
            with polyctx.use(polyctx.with_timeout(polyctx.background(), 0.3)):
                async with client.stream("GET", f"{url}/drip") as r:
                    with pytest.raises(polyctx.DeadlineExceeded):
                        async for chunk in r.aiter_raw():
                            got.append(chunk)
        return got

    assert run(main()) == [b"first\n"]
    assert counters.in_flight == 0 and counters.ended() == {"deadline_exceeded": 1}
    assert server.wait_idle(10)


def test_no_time_left_sends_nothing(backend: tuple[str, Events, RequestCounters]):
    url, _, server = backend
    before = server.started

    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL)) as client:
            with polyctx.use(polyctx.with_timeout(polyctx.background(), 0)):
                with pytest.raises(polyctx.DeadlineExceeded):
                    await client.get(f"{url}/echo")

    run(main())
    with httpx.Client(transport=Transport(policy=INTERNAL)) as client:
        ctx, cancel = polyctx.with_cancel(polyctx.background())
        cancel()
        with pytest.raises(polyctx.Canceled):
            client.get(f"{url}/echo", extensions={"polyctx.context": ctx})
    assert server.started == before


def test_sync_sends_the_budget(backend: tuple[str, Events, RequestCounters]):
    url, _, _ = backend
    with httpx.Client(transport=Transport(policy=INTERNAL)) as client:
        with polyctx.use(polyctx.with_timeout(polyctx.background(), 2)):
            got = client.get(f"{url}/echo").json()
    assert 1000 < int(got["headers"]["request-timeout-ms"]) <= 2000


def test_sync_aborts_at_the_deadline(backend: tuple[str, Events, RequestCounters]):
    url, _, server = backend
    counters = RequestCounters()
    with httpx.Client(transport=Transport(policy=INTERNAL, counters=counters)) as client:
        for _ in range(2):  # a new connection, then a pooled one
            t = time.monotonic()
            with polyctx.use(polyctx.with_timeout(polyctx.background(), 0.2)):
                with pytest.raises(polyctx.DeadlineExceeded):
                    client.get(f"{url}/slow")
            assert time.monotonic() - t < 5
            client.get(f"{url}/echo")
    assert counters.in_flight == 0
    assert server.wait_idle(10)


def test_sync_cancel_aborts_a_request_in_flight(backend: tuple[str, Events, RequestCounters]):
    url, events, server = backend
    events.event("slow.started").clear()
    ctx, cancel = polyctx.with_cancel_cause(polyctx.background())

    def cancel_when_started() -> None:
        events.wait("slow.started")
        cancel(wire.ClientDisconnected())

    thread = threading.Thread(target=cancel_when_started)
    thread.start()
    with httpx.Client(transport=Transport(policy=INTERNAL)) as client:
        with pytest.raises(polyctx.Canceled) as e:
            client.get(f"{url}/slow", extensions={"polyctx.context": ctx})
    thread.join(10)
    assert isinstance(e.value.__cause__, wire.ClientDisconnected)
    assert server.wait_idle(10)


def test_bad_context_extension(backend: tuple[str, Events, RequestCounters]):
    url, _, _ = backend
    with httpx.Client(transport=Transport()) as client, pytest.raises(TypeError, match=r"polyctx\.Context"):
        client.get(f"{url}/echo", extensions={"polyctx.context": "nope"})


def test_budget_shrinks_across_two_hops():
    """client -> gateway (httpx inside a handler) -> backend: each hop's
    budget is the previous one's less the time spent."""
    events, counters = Events(), RequestCounters()
    with serve(server_app(events, counters)) as backend_url:

        async def hop(request: Request) -> Response:
            await asyncio.sleep(0.1)
            mine = polyctx.current().deadline()
            async with httpx.AsyncClient(transport=AsyncTransport(policy=INTERNAL)) as client:
                r = await client.get(f"{backend_url}/echo")
            return JSONResponse({"gateway_ms": (mine or 0) - time.monotonic(), "backend": r.json()})

        gateway = Starlette(routes=[Route("/", hop)], middleware=[Middleware(PolyctxMiddleware, policy=INTERNAL)])
        with serve(gateway) as gateway_url:
            r = httpx.get(gateway_url, headers={"request-timeout-ms": "1000"}, timeout=10)
        got = r.json()
        sent = int(got["backend"]["headers"]["request-timeout-ms"])
        assert sent <= 900, "the gateway's 100 ms came off"
        assert got["backend"]["ms"] <= sent
    assert json.dumps(got)
