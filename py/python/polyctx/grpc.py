"""grpcio integration: client interceptors that carry the current context
(its budget as the call's timeout, so grpcio sends `grpc-timeout`; its trace
context and baggage as metadata), and server interceptors that give each
handler a context made from the call (its deadline, metadata and
cancellation) and map a context error the handler lets escape back to a
status. grpcio does not propagate deadlines by itself; this does.

    channel = grpc.intercept_channel(grpc.insecure_channel(target), ClientInterceptor(policy=Policy.internal()))
    server = grpc.server(pool, interceptors=[ServerInterceptor()])
    # asyncio: grpc.aio.insecure_channel(target, interceptors=AioClientInterceptor.all())
    #          grpc.aio.server(interceptors=[AioServerInterceptor()])

In a handler, `polyctx.current()` is the call's context: done when the
deadline passes, when the client cancels (`PeerCanceled`), and when the
handler returns (`RequestFinished`). (`grpc.aio` itself cancels a handler
whose client cancels; its context is `PeerCanceled` from then on.) A handler that lets `DeadlineExceeded`
or `Canceled` of its call's context escape ends the call with the code the
core's table gives (`DEADLINE_EXCEEDED`, `CANCELLED`, `UNAVAILABLE`).

Clients: a call with no time left is never sent (its context's error is
raised at once). Cancelling the context cancels streaming calls, `.future()`
calls and every aio call at once; a blocking unary call is bounded by the
budget (grpcio gives an interceptor no handle on it until it returns).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc
import grpc.aio

from ._asyncio import current, use
from ._counters import RequestCounters
from ._errors import ContextError, PeerCanceled, RequestFinished
from ._native import CancelCauseFunc, Context, after_func, background, loop_after_func
from ._otelmode import policy_for_now
from .wire import EndReason, Policy, extract, format_grpc_timeout, inject, parse_grpc_timeout

__all__ = [
    "AioClientInterceptor",
    "AioServerInterceptor",
    "ClientInterceptor",
    "RequestCounters",
    "ServerInterceptor",
    "status_code",
]


def status_code(reason: EndReason) -> grpc.StatusCode:
    """The `grpc.StatusCode` of an end reason, by the core's table."""
    return _CODES[reason.grpc_code]


_CODES = {code.value[0]: code for code in grpc.StatusCode}


# -- clients -------------------------------------------------------------------


def _outbound(
    ctx: Context, metadata: Sequence[tuple[str, str | bytes]] | None, timeout: float | None, policy: Policy
) -> tuple[list[tuple[str, str | bytes]], float | None]:
    """The call's metadata with the context's trace and baggage, and its
    timeout cut to the budget. Raises the context's error when no time is left."""
    pairs: list[tuple[str, str | bytes]] = list(metadata or ())
    headers: list[tuple[str, str]] = []
    inject(ctx, headers, policy_for_now(policy, policy.with_propagate_trace(False)), protocol="grpc")
    for name, value in headers:
        if name == "grpc-timeout":  # the call's timeout: grpcio sends it itself
            budget = (parse_grpc_timeout(value) or 0) / 1e9
            timeout = budget if timeout is None else min(timeout, budget)
        else:
            pairs = [(k, v) for k, v in pairs if k.lower() != name]
            pairs.append((name, value))
    return pairs, timeout


class _SyncDetails(grpc.ClientCallDetails):
    def __init__(self, details: Any, timeout: float | None, metadata: list[tuple[str, str | bytes]]) -> None:
        self.method = details.method
        self.timeout = timeout
        self.metadata = tuple(metadata)
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class ClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Carries `polyctx.current()` on every call of a channel
    (`grpc.intercept_channel(channel, ClientInterceptor(...))`). `policy`:
    how much the server is trusted (`Policy.external()` by default: only the
    budget and `traceparent` are sent)."""

    def __init__(self, *, policy: Policy | None = None) -> None:
        self.policy = Policy.external() if policy is None else policy

    def _details(self, details: Any) -> tuple[Context, _SyncDetails]:
        ctx = current()
        metadata, timeout = _outbound(ctx, details.metadata, details.timeout, self.policy)
        return ctx, _SyncDetails(details, timeout, metadata)

    def _call(self, ctx: Context, call: Any) -> Any:
        # Streaming and `.future()` calls come back in flight: cancel them
        # with the context. (A blocking unary call is already over here.)
        if hasattr(call, "cancel") and hasattr(call, "add_done_callback") and not call.done():
            stop = after_func(ctx, call.cancel)

            def done(_: object) -> None:
                stop()

            call.add_done_callback(done)
        return call

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return self._call(ctx, continuation(details, request))

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return self._call(ctx, continuation(details, request))

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return self._call(ctx, continuation(details, request_iterator))

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return self._call(ctx, continuation(details, request_iterator))


class AioClientInterceptor:
    """The asyncio client interceptors (`grpc.aio` takes one object per
    kind of call): `grpc.aio.insecure_channel(target,
    interceptors=AioClientInterceptor.all(policy=...))`."""

    def __init__(self, *, policy: Policy | None = None) -> None:
        self.policy = Policy.external() if policy is None else policy

    @classmethod
    def all(cls, *, policy: Policy | None = None) -> list[grpc.aio.ClientInterceptor]:
        """One interceptor for each kind of call, sharing `policy`."""
        return [
            _AioUnaryUnary(policy=policy),
            _AioUnaryStream(policy=policy),
            _AioStreamUnary(policy=policy),
            _AioStreamStream(policy=policy),
        ]

    def _details(self, details: Any) -> tuple[Context, grpc.aio.ClientCallDetails]:
        ctx = current()
        metadata = [(k, v) for k, v in details.metadata] if details.metadata else None
        pairs, timeout = _outbound(ctx, metadata, details.timeout, self.policy)
        new = grpc.aio.ClientCallDetails(
            details.method, timeout, grpc.aio.Metadata(*pairs), details.credentials, details.wait_for_ready
        )
        return ctx, new

    async def _call(self, ctx: Context, call: Any) -> Any:
        stop = loop_after_func(ctx, call.cancel)

        def done(_: object) -> None:
            stop()

        call.add_done_callback(done)
        return call


class _AioUnaryUnary(AioClientInterceptor, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return await self._call(ctx, await continuation(details, request))


class _AioUnaryStream(AioClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return await self._call(ctx, await continuation(details, request))


class _AioStreamUnary(AioClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return await self._call(ctx, await continuation(details, request_iterator))


class _AioStreamStream(AioClientInterceptor, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        ctx, details = self._details(client_call_details)
        return await self._call(ctx, await continuation(details, request_iterator))


# -- servers -------------------------------------------------------------------


class _Call:
    """One call's context, made from what grpcio tells the handler, and its end."""

    __slots__ = ("_cancel", "_counters", "_finished", "ctx")

    def __init__(self, parent: Context, context: Any, policy: Policy, counters: RequestCounters) -> None:
        headers: list[tuple[str, str | bytes]] = list(context.invocation_metadata() or ())
        remaining = context.time_remaining()
        if remaining is not None:
            # grpcio keeps `grpc-timeout` to itself: give it back, as the
            # budget left now, so the core applies the policy to it.
            headers.append(("grpc-timeout", format_grpc_timeout(int(remaining * 1e9)) or "0n"))
        self.ctx: Context
        self._cancel: CancelCauseFunc
        policy = policy_for_now(policy, policy.with_propagate_trace(False))
        self.ctx, self._cancel = extract(parent, headers, policy, protocol="grpc")
        self._finished = False
        self._counters = counters
        counters.begin()

    def terminated(self) -> None:
        """grpcio's callback when the call ends, on its thread: before the
        handler returns, the client canceled (or the deadline passed, which
        the context's own deadline reports)."""
        if not self._finished and not self.ctx.is_done():
            deadline = self.ctx.deadline()
            if deadline is None or time.monotonic() < deadline:
                self._cancel(PeerCanceled())

    def on_done(self, _: object) -> None:
        self.terminated()

    def error(self, e: ContextError) -> tuple[grpc.StatusCode, str] | None:
        """The status to end the call with, if `e` is this call's end."""
        reason = EndReason.of(self.ctx)
        return None if reason is None else (status_code(reason), str(e))

    def finish(self) -> None:
        self._finished = True
        reason = EndReason.of(self.ctx)
        self._cancel(RequestFinished())
        self._counters.end("request_finished" if reason is None else reason.value)


class _ServerBase:
    def __init__(
        self, *, policy: Policy | None = None, parent: Context | None = None, counters: RequestCounters | None = None
    ) -> None:
        self.policy = Policy.external() if policy is None else policy
        self.parent = background() if parent is None else parent
        self.counters = RequestCounters() if counters is None else counters


def _rewrap(handler: Any, wrap: Callable[[Any, bool], Any]) -> Any:
    """`handler` with its behaviour wrapped (`wrap(behaviour, streaming_response)`)."""
    kinds = {
        (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
        (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
        (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
        (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
    }
    attr, make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return make(
        wrap(getattr(handler, attr), bool(handler.response_streaming)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class ServerInterceptor(_ServerBase, grpc.ServerInterceptor):
    """Gives each handler of a sync `grpc.server` its call's context
    (`server = grpc.server(pool, interceptors=[ServerInterceptor(...)])`).
    `policy`: how much callers are trusted (`Policy.external()` by default);
    `parent`: what calls derive from; `counters`: a `RequestCounters`."""

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        return None if handler is None else _rewrap(handler, self._wrap)

    def _wrap(self, behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
        def unary(request: Any, context: Any) -> Any:
            call = _Call(self.parent, context, self.policy, self.counters)
            context.add_callback(call.terminated)
            try:
                with use(call.ctx):
                    return behaviour(request, context)
            except ContextError as e:
                status = call.error(e)
                if status is None:
                    raise
                context.abort(*status)
            finally:
                call.finish()

        def stream(request: Any, context: Any) -> Iterator[Any]:
            call = _Call(self.parent, context, self.policy, self.counters)
            context.add_callback(call.terminated)
            try:
                with use(call.ctx):
                    yield from behaviour(request, context)
            except ContextError as e:
                status = call.error(e)
                if status is None:
                    raise
                context.abort(*status)
            finally:
                call.finish()

        return stream if streaming else unary


class AioServerInterceptor(_ServerBase, grpc.aio.ServerInterceptor):
    """`ServerInterceptor` for `grpc.aio.server(interceptors=[AioServerInterceptor(...)])`."""

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        return None if handler is None else _rewrap(handler, self._wrap)

    def _wrap(self, behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
        async def unary(request: Any, context: Any) -> Any:
            call = _Call(self.parent, context, self.policy, self.counters)
            context.add_done_callback(call.on_done)
            try:
                with use(call.ctx):
                    result = behaviour(request, context)
                    return (await result) if inspect.isawaitable(result) else result
            except asyncio.CancelledError:
                call.terminated()  # grpc.aio cancels the handler when the peer does
                raise
            except ContextError as e:
                status = call.error(e)
                if status is None:
                    raise
                await context.abort(*status)
            finally:
                call.finish()

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            call = _Call(self.parent, context, self.policy, self.counters)
            context.add_done_callback(call.on_done)
            try:
                with use(call.ctx):
                    result = behaviour(request, context)
                    if inspect.isawaitable(result):  # a handler that writes with context.write
                        await result
                    else:
                        async for item in result:
                            yield item
            except asyncio.CancelledError:
                call.terminated()
                raise
            except ContextError as e:
                status = call.error(e)
                if status is None:
                    raise
                await context.abort(*status)
            finally:
                call.finish()

        return stream if streaming else unary
