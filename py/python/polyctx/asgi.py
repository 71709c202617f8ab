"""ASGI middleware: each HTTP request runs with a context built from its
headers (its budget, trace and baggage, under a trust policy), which is
`polyctx.current()` in the app and every task it starts, and which ends the
moment the request does:

- the budget runs out: `DeadlineExceeded` (an app that lets it escape
  before responding gets a 504);
- the client goes away before the response is complete: canceled with
  `polyctx.wire.ClientDisconnected`;
- the app returns: canceled with `polyctx.wire.RequestFinished`, so work
  still tied to the request (fire-and-forget calls) stops;
- the server shuts down (ASGI lifespan shutdown, or `shutdown()`): canceled
  with `polyctx.wire.ServerShutdown`.

Pure ASGI, so it works under any server and framework, outside or inside
Starlette's `BaseHTTPMiddleware`:

    app.add_middleware(PolyctxMiddleware, policy=polyctx.wire.Policy.external())

By default the handler is not cancelled when its context ends, so it can
return what it has at the deadline (each call it makes stops on its own:
the httpx transport, `polyctx.scope`); `cancel_handler=True` cancels it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal

from ._asyncio import use
from ._counters import RequestCounters
from ._errors import ClientDisconnected, ContextError, MalformedHeader, RequestFinished, ServerShutdown
from ._native import CancelCauseFunc, Context, background, with_cancel_cause
from ._native import scope as task_scope
from ._otelmode import policy_for_now
from .wire import EndReason, Policy, extract

__all__ = ["PolyctxMiddleware", "RequestCounters"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class PolyctxMiddleware:
    """Gives each HTTP request of `app` its context; see the module's doc.

    - `policy`: how much the callers are trusted (`Policy.external()` by
      default: budgets clamped to 300 s, 30 s when none is sent). Once an
      OpenTelemetry SDK is set up, trace context and baggage are left to it.
    - `protocol`: which timeout header is the callers' own ("http":
      `request-timeout-ms`; "connect": `connect-timeout-ms`); a malformed
      one is answered with 400.
    - `parent`: the context requests derive from (`background()`).
    - `cancel_handler`: cancel the handler task when its context ends.
    - `counters`: a `RequestCounters` to count requests in (one is made
      otherwise); `middleware.counters` either way.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy | None = None,
        protocol: Literal["http", "grpc", "connect"] = "http",
        parent: Context | None = None,
        cancel_handler: bool = False,
        counters: RequestCounters | None = None,
    ) -> None:
        self.app = app
        self.policy = Policy.external() if policy is None else policy
        self._quiet = self.policy.with_propagate_trace(False)
        self.protocol: Literal["http", "grpc", "connect"] = protocol
        self.cancel_handler = cancel_handler
        self.counters = RequestCounters() if counters is None else counters
        self._server: Context
        self._shutdown: CancelCauseFunc
        self._server, self._shutdown = with_cancel_cause(background() if parent is None else parent)

    def __del__(self) -> None:
        # The server context lives as long as the middleware.
        shutdown = getattr(self, "_shutdown", None)
        if shutdown is not None:
            shutdown(ServerShutdown())

    def shutdown(self) -> None:
        """Ends every request in flight, and every later one, with `ServerShutdown`."""
        self._shutdown(ServerShutdown())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._request(scope, receive, send)
        elif kind == "lifespan":
            await self.app(scope, self._lifespan(receive), send)
        else:
            await self.app(scope, receive, send)

    def _lifespan(self, receive: Receive) -> Receive:
        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.shutdown()
            return message

        return lifespan_receive

    async def _request(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = time.monotonic_ns()
        try:
            ctx, cancel = extract(
                self._server,
                scope["headers"],
                policy_for_now(self.policy, self._quiet),
                protocol=self.protocol,
                arrived_ns=arrived,
            )
        except MalformedHeader as e:
            await _respond(send, 400, str(e))
            return
        request = _Request(receive, send, cancel)
        self.counters.begin()
        pump = asyncio.get_running_loop().create_task(request.pump())
        try:
            with use(ctx):
                if self.cancel_handler:
                    async with task_scope(ctx):
                        await self.app(scope, request.receive, request.send)
                else:
                    await self.app(scope, request.receive, request.send)
        except ContextError:
            reason = EndReason.of(ctx)
            if reason is None:
                raise  # not this request's end
            if not request.started:
                await _respond(request.send, reason.http_status, str(ctx.err()))
            elif reason is not EndReason.CLIENT_DISCONNECTED:
                raise  # too late to say so: the server cuts the response short
            # else the client is gone: nobody to tell, nothing went wrong here.
        finally:
            reason = EndReason.of(ctx)
            cancel(RequestFinished())
            pump.cancel()
            self.counters.end("request_finished" if reason is None else reason.value)


class _Request:
    """One request's `receive` and `send`: a pump reads the server's
    messages one ahead of the app, so that a disconnect is seen the moment
    it happens, not when the app next reads."""

    __slots__ = ("_cancel", "_messages", "_receive", "_send", "_waiters", "complete", "started")

    def __init__(self, receive: Receive, send: Send, cancel: CancelCauseFunc) -> None:
        self._receive = receive
        self._send = send
        self._cancel = cancel
        self._messages: deque[Message] = deque()
        # Who waits: the app's receivers for a message, or the pump for the
        # app to take the one it holds (never both). Made only when needed.
        self._waiters: list[asyncio.Future[None]] = []
        self.started = False
        self.complete = False

    def _wake(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def pump(self) -> None:
        while True:
            message = await self._receive()
            self._messages.append(message)
            self._wake()
            if message["type"] == "http.disconnect":
                # A server reports a finished response and shutdown this way too.
                if not self.complete:
                    self._cancel(ClientDisconnected())
                return
            # One ahead, no more: a body the app does not read stays unread.
            while message.get("more_body", False) and self._messages:
                await self._wait()

    async def receive(self) -> Message:
        while not self._messages:
            await self._wait()
        message = self._messages[0]
        if message["type"] != "http.disconnect":  # repeated to every later call
            self._messages.popleft()
            self._wake()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self._send(message)


async def _respond(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
