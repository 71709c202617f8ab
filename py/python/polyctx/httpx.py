"""httpx transports that carry the current context to the server: each
request sends the budget left in `polyctx.current()` (as
`request-timeout-ms`, or the protocol's own header) and, as the trust policy
allows, its trace context and baggage; a request with no time left is never
sent (its context's error is raised at once); and a request is aborted the
moment its context is done, raising the context's error (`DeadlineExceeded`,
or `Canceled` with the cause, e.g. `ClientDisconnected`).

    client = httpx.AsyncClient(transport=polyctx.httpx.AsyncTransport(policy=Policy.internal()))

A request's context is `polyctx.current()`, or the one given as
`extensions={"polyctx.context": ctx}`.

`AsyncTransport` aborts at once, in any phase (connecting, waiting for the
response, reading its body). The sync `Transport` bounds every socket wait by
the budget, so a deadline aborts it at once too; a cancellation reaches a
request in flight by shutting its socket down, on a connection opened for it
or while its body is read (a request waiting on a pooled connection for the
response headers notices at its deadline).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import httpx

from ._asyncio import current
from ._counters import RequestCounters
from ._errors import DeadlineExceeded
from ._native import Context, after_func
from ._native import scope as task_scope
from ._otelmode import policy_for_now
from .wire import EndReason, Policy, inject

__all__ = ["AsyncTransport", "RequestCounters", "Transport"]

CONTEXT = "polyctx.context"


class _Base:
    def __init__(
        self,
        *,
        policy: Policy | None,
        protocol: Literal["http", "grpc", "connect"],
        counters: RequestCounters | None,
    ) -> None:
        self.policy = Policy.external() if policy is None else policy
        self._quiet = self.policy.with_propagate_trace(False)
        self.protocol: Literal["http", "grpc", "connect"] = protocol
        self.counters = RequestCounters() if counters is None else counters

    def _begin(self, request: httpx.Request) -> Context:
        ctx = request.extensions.get(CONTEXT)
        if ctx is None:
            ctx = current()
        elif not isinstance(ctx, Context):
            raise TypeError(f'extensions["{CONTEXT}"] must be a polyctx.Context, not {type(ctx).__name__}')
        inject(
            ctx, request.headers, policy_for_now(self.policy, self._quiet), protocol=self.protocol
        )  # raises when no time is left
        self.counters.begin()
        return ctx

    def _end(self, ctx: Context, failed: bool) -> None:
        reason = EndReason.of(ctx)
        self.counters.end(reason.value if reason is not None else "error" if failed else "request_finished")


def _error(ctx: Context) -> BaseException:
    """`ctx`'s error, or DeadlineExceeded for a deadline that passed before its timer fired."""
    return ctx.err() or DeadlineExceeded()


def _out_of_time(ctx: Context) -> bool:
    deadline = ctx.deadline()
    return ctx.is_done() or (deadline is not None and time.monotonic() >= deadline)


class AsyncTransport(_Base, httpx.AsyncBaseTransport):
    """Wraps `transport` (an `httpx.AsyncHTTPTransport()` by default).
    `policy`: how much the destinations are trusted (`Policy.external()` by
    default: only the budget and `traceparent` are sent); `counters`: a
    `RequestCounters` (requests count as in flight until their body is closed)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        policy: Policy | None = None,
        protocol: Literal["http", "grpc", "connect"] = "http",
        counters: RequestCounters | None = None,
    ) -> None:
        super().__init__(policy=policy, protocol=protocol, counters=counters)
        self._transport = httpx.AsyncHTTPTransport() if transport is None else transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ctx = self._begin(request)
        try:
            async with task_scope(ctx):
                response = await self._transport.handle_async_request(request)
        except BaseException:
            self._end(ctx, failed=True)
            raise
        stream = _AsyncStream(response.stream, ctx, self)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=stream, extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self._transport.aclose()


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream | Any, ctx: Context, owner: _Base) -> None:
        self._stream = stream
        self._ctx = ctx
        self._owner: _Base | None = owner
        self._failed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._stream.__aiter__()
        while True:
            try:
                async with task_scope(self._ctx):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except BaseException:
                self._failed = True
                raise
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            owner, self._owner = self._owner, None
            if owner is not None:
                owner._end(self._ctx, self._failed)


class Transport(_Base, httpx.BaseTransport):
    """The sync transport: wraps `transport` (an `httpx.HTTPTransport()` by
    default); the arguments are `AsyncTransport`'s."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        policy: Policy | None = None,
        protocol: Literal["http", "grpc", "connect"] = "http",
        counters: RequestCounters | None = None,
    ) -> None:
        super().__init__(policy=policy, protocol=protocol, counters=counters)
        self._transport = httpx.HTTPTransport() if transport is None else transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        ctx = self._begin(request)
        _bound_timeouts(request, ctx)
        abort = _Abort()
        abort.watch(request)
        stop = after_func(ctx, abort)
        try:
            response = self._transport.handle_request(request)
        except Exception:
            stop()
            self._end(ctx, failed=True)
            if _out_of_time(ctx):
                raise _error(ctx)  # noqa: B904 (its cause is the context's; the transport error is its __context__)
            raise
        abort.add(response.extensions.get("network_stream"))
        stream = _SyncStream(response.stream, ctx, self, stop)
        return httpx.Response(
            response.status_code, headers=response.headers, stream=stream, extensions=response.extensions
        )

    def close(self) -> None:
        self._transport.close()


def _bound_timeouts(request: httpx.Request, ctx: Context) -> None:
    deadline = ctx.deadline()
    if deadline is None:
        return
    left = max(deadline - time.monotonic(), 0.0)
    timeouts: dict[str, float | None] = dict(request.extensions.get("timeout", {}))
    for phase in ("connect", "read", "write", "pool"):
        t = timeouts.get(phase)
        timeouts[phase] = left if t is None else min(t, left)
    request.extensions["timeout"] = timeouts


class _Abort:
    """Shuts down the sockets of one request when its context is done (on
    the after-func thread), which wakes the request's blocked socket call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self._fired = False

    def watch(self, request: httpx.Request) -> None:
        chained = request.extensions.get("trace")

        def trace(event: str, info: dict[str, Any]) -> None:
            if event == "connection.connect_tcp.complete":
                self.add(info.get("return_value"))
            if chained is not None:
                chained(event, info)

        request.extensions["trace"] = trace

    def add(self, stream: Any) -> None:
        if stream is None:
            return
        with self._lock:
            self._streams.append(stream)
            fired = self._fired
        if fired:
            _shut(stream)

    def __call__(self) -> None:
        with self._lock:
            self._fired = True
            streams = list(self._streams)
        for stream in streams:
            _shut(stream)


def _shut(stream: Any) -> None:
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _SyncStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream | Any, ctx: Context, owner: _Base, stop: Any) -> None:
        self._stream = stream
        self._ctx = ctx
        self._owner: _Base | None = owner
        self._stop = stop
        self._failed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception:
            self._failed = True
            if _out_of_time(self._ctx):
                raise _error(self._ctx)  # noqa: B904 (its cause is the context's; the transport error is its __context__)
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._stop()
            owner, self._owner = self._owner, None
            if owner is not None:
                owner._end(self._ctx, self._failed)
