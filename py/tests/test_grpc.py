"""The grpcio interceptors, sync and asyncio, client and server, on real
channels and servers on loopback (the standard health service: generated
code without protoc)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import pytest

pytest.importorskip("grpc")
pytest.importorskip("grpc_health")

import grpc
import grpc.aio
from _servers import Events
from grpc_health.v1 import health_pb2, health_pb2_grpc

import polyctx
from polyctx import wire
from polyctx.grpc import (
    AioClientInterceptor,
    AioServerInterceptor,
    ClientInterceptor,
    RequestCounters,
    ServerInterceptor,
)

INTERNAL = wire.Policy.internal()
SERVING = health_pb2.HealthCheckResponse.SERVING


def report(events: Events, name: str) -> None:
    ctx = polyctx.current()
    deadline = ctx.deadline()
    trace = wire.trace_context(ctx)
    events.set(
        name,
        {
            "ms": None if deadline is None else (deadline - time.monotonic()) * 1000,
            "trace_id": trace and trace.trace_id,
            "baggage": {k: e.value for k, e in wire.baggage(ctx).items()},
        },
    )


class Health(health_pb2_grpc.HealthServicer):
    """Check reports the call's context; Check("spend") lets the budget run
    out and the error escape; Watch streams until its context ends."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def Check(self, request: Any, context: Any) -> Any:
        report(self.events, "check")
        if request.service == "spend":
            polyctx.current().wait()
            raise polyctx.current().err() or AssertionError
        return health_pb2.HealthCheckResponse(status=SERVING)

    def Watch(self, request: Any, context: Any) -> Iterator[Any]:
        ctx = polyctx.current()
        yield health_pb2.HealthCheckResponse(status=SERVING)
        self.events.set("watch.started")
        ctx.wait(30)
        self.events.set("watch.ended", wire.EndReason.of(ctx))


class AioHealth(health_pb2_grpc.HealthServicer):
    def __init__(self, events: Events) -> None:
        self.events = events

    async def Check(self, request: Any, context: Any) -> Any:
        report(self.events, "check")
        return health_pb2.HealthCheckResponse(status=SERVING)

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        ctx = polyctx.current()
        yield health_pb2.HealthCheckResponse(status=SERVING)
        self.events.set("watch.started")
        try:
            await ctx.done()
        finally:  # grpc.aio cancels this task first, then the context ends
            self.events.set("watch.ended", ctx)


def traced(seconds: float) -> polyctx.CancelPair:
    ctx = wire.with_trace_context(polyctx.background(), wire.TraceContext.new_root())
    ctx = wire.with_baggage(ctx, {"tenant": "acme"})
    return polyctx.with_timeout(ctx, seconds)


@pytest.fixture
def sync_server() -> Iterator[tuple[str, Events, RequestCounters]]:
    events, counters = Events(), RequestCounters("grpc")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[ServerInterceptor(policy=INTERNAL, counters=counters)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(Health(events), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", events, counters
    finally:
        server.stop(None).wait(10)


def test_sync_budget_trace_and_baggage_arrive(sync_server: tuple[str, Events, RequestCounters]):
    target, events, counters = sync_server
    with grpc.intercept_channel(grpc.insecure_channel(target), ClientInterceptor(policy=INTERNAL)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with polyctx.use(traced(1.0)) as ctx:
            assert stub.Check(health_pb2.HealthCheckRequest()).status == SERVING
            # A shorter timeout of the call's own wins.
            stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
    got = events.values["check"]
    # grpcio's own encoding of the call's timeout rounds it up a little.
    assert 100 < got["ms"] <= 505
    trace = wire.trace_context(ctx)
    assert trace is not None and got["trace_id"] == trace.trace_id and got["baggage"] == {"tenant": "acme"}
    assert counters.wait_idle(10) and counters.ended() == {"request_finished": 2}


def test_sync_no_time_left_sends_nothing(sync_server: tuple[str, Events, RequestCounters]):
    target, _, counters = sync_server
    with grpc.intercept_channel(grpc.insecure_channel(target), ClientInterceptor(policy=INTERNAL)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with polyctx.use(polyctx.with_timeout(polyctx.background(), 0)), pytest.raises(polyctx.DeadlineExceeded):
            stub.Check(health_pb2.HealthCheckRequest())
    assert counters.started == 0


def test_sync_escaping_deadline_is_the_status(sync_server: tuple[str, Events, RequestCounters]):
    target, _, counters = sync_server
    with grpc.intercept_channel(grpc.insecure_channel(target), ClientInterceptor(policy=INTERNAL)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with polyctx.use(polyctx.with_timeout(polyctx.background(), 0.2)), pytest.raises(grpc.RpcError) as e:
            stub.Check(health_pb2.HealthCheckRequest(service="spend"))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert counters.wait_idle(10) and counters.ended() == {"deadline_exceeded": 1}


def test_sync_cancel_reaches_the_server_as_peer_canceled(sync_server: tuple[str, Events, RequestCounters]):
    target, events, counters = sync_server
    with grpc.intercept_channel(grpc.insecure_channel(target), ClientInterceptor(policy=INTERNAL)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        ctx, cancel = polyctx.with_cancel(polyctx.background())
        with polyctx.use(ctx):
            stream = stub.Watch(health_pb2.HealthCheckRequest())
        assert next(stream).status == SERVING
        events.wait("watch.started")
        cancel()
        assert events.wait("watch.ended") is wire.EndReason.PEER_CANCELED
        with pytest.raises(grpc.RpcError) as e:
            next(stream)
        assert e.value.code() == grpc.StatusCode.CANCELLED
    assert counters.wait_idle(10) and counters.ended() == {"peer_canceled": 1}


def test_aio_client_and_server():
    events, counters = Events(), RequestCounters()

    async def main() -> None:
        server = grpc.aio.server(interceptors=[AioServerInterceptor(policy=INTERNAL, counters=counters)])
        health_pb2_grpc.add_HealthServicer_to_server(AioHealth(events), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            interceptors = AioClientInterceptor.all(policy=INTERNAL)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=interceptors) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                with polyctx.use(traced(1.0)):
                    await asyncio.sleep(0.1)
                    assert (await stub.Check(health_pb2.HealthCheckRequest())).status == SERVING
                got = events.values["check"]
                assert 500 < got["ms"] <= 900 and got["baggage"] == {"tenant": "acme"}

                with (
                    polyctx.use(polyctx.with_timeout(polyctx.background(), 0)),
                    pytest.raises(polyctx.DeadlineExceeded),
                ):
                    await stub.Check(health_pb2.HealthCheckRequest())

                ctx, cancel = polyctx.with_cancel(polyctx.background())
                with polyctx.use(ctx):
                    call = stub.Watch(health_pb2.HealthCheckRequest())
                    assert (await call.read()).status == SERVING
                await asyncio.to_thread(events.wait, "watch.started")
                cancel()
                ended = await asyncio.to_thread(events.wait, "watch.ended")
                assert await asyncio.to_thread(counters.wait_idle, 10)
                assert wire.EndReason.of(ended) is wire.EndReason.PEER_CANCELED
        finally:
            await server.stop(None)

    asyncio.run(main())
    assert counters.wait_idle(10) and counters.ended() == {"request_finished": 1, "peer_canceled": 1}
