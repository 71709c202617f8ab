"""The demo's Python gateway: FastAPI on uvicorn with polyctx's ASGI
middleware. `/search?q=...` takes the budget its client sent (2 s if none),
starts a trace, and fans out to three backends at once with polyctx's httpx
transport, which sends each the budget that is left and the same trace id,
and stops every call the moment the request's context is done. It answers
with what arrived in time. It prints its timeline as JSON lines and serves
/stats (requests and backend calls in flight, asyncio tasks, threads).

    python gateway.py NODE_URL GO_URL RUST_URL
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI, Request

import polyctx
from polyctx import wire
from polyctx.asgi import PolyctxMiddleware, RequestCounters
from polyctx.httpx import AsyncTransport
from polyctx.wire import Policy

BACKENDS = dict(zip(("node", "go", "rust"), sys.argv[1:4]))
requests = RequestCounters("gateway requests")
calls = RequestCounters("gateway backend calls")


def emit(**fields: object) -> None:
    print(json.dumps({"hop": "python", **fields}), flush=True)


app = FastAPI()
# Our clients are outside: at most 10 s, 2 s when they send nothing.
app.add_middleware(PolyctxMiddleware, policy=Policy.external(max_timeout=10, default_timeout=2), counters=requests)
# Our backends are inside: they get the budget, the trace and the baggage.
client = httpx.AsyncClient(transport=AsyncTransport(policy=Policy.internal(), counters=calls))


@app.get("/search")
async def search(q: str, slow: str = "") -> dict[str, object]:
    ctx = polyctx.current()
    trace = wire.trace_context(ctx)
    trace_id = trace.trace_id if trace else ""
    deadline = ctx.deadline()
    emit(event="start", budget_ms=round((deadline - time.monotonic()) * 1000) if deadline else -1, trace=trace_id)
    started = time.monotonic()

    async def ask(name: str, url: str) -> str:
        try:
            reply = await client.get(f"{url}/search", params={"q": q, "slow": slow})
            emit(event="answer", backend=name, status=reply.status_code, trace=trace_id)
            return reply.text.strip() if reply.status_code == 200 else ""
        except (polyctx.ContextError, httpx.HTTPError) as e:
            emit(event="call stopped", backend=name, why=str(polyctx.cause(ctx) or e), trace=trace_id)
            return ""

    answers = await asyncio.gather(*(ask(n, u) for n, u in BACKENDS.items()))
    results = [a for a in answers if a]
    elapsed = round((time.monotonic() - started) * 1000)
    emit(event="reply", results=len(results), partial=len(results) < len(BACKENDS), elapsed_ms=elapsed, trace=trace_id)
    return {"results": results, "partial": len(results) < len(BACKENDS), "trace": trace_id}


@app.get("/stats")
async def stats(request: Request) -> dict[str, object]:
    return {
        # This /stats request is itself in flight.
        "in_flight": requests.in_flight - 1,
        "calls_in_flight": calls.in_flight,
        "tasks": len(asyncio.all_tasks()) - 1,
        "threads": threading.active_count(),
        "ended": requests.ended(),
    }


class Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the demo stops us with SIGTERM
        pass


async def main() -> None:
    # Bound here, so that the port is known before uvicorn starts serving it.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    emit(event="listening", port=sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    await Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
