"""The article's leaky fan-out, fixed with polyctx in asyncio: one request
deadline, five downstream calls in a `polyctx.Group`, and every slow call
stops the moment the deadline passes, leaving no task or context behind.

Run with `make demo` (or `python examples/python/fanout.py` once polyctx is
installed).
"""

from __future__ import annotations

import asyncio
import time

import polyctx
from polyctx import debug

TRACE_ID = polyctx.Key("trace-id")
SERVICES = [("auth", 20), ("profile", 60), ("search", 400), ("ads", 900), ("recommend", 2000)]


async def main() -> None:
    start = time.monotonic()

    def at() -> str:
        return f"[{(time.monotonic() - start) * 1000:>4.0f} ms]"

    async def fetch(ctx: polyctx.Context, name: str, ms: int) -> None:
        """A downstream call. It needs no deadline logic of its own: the
        group's scope around it cancels it when the request's context is done."""
        try:
            await asyncio.sleep(ms / 1000)
            print(f"{at()} {name:<9} answered for {ctx.value(TRACE_ID)} (needed {ms} ms)")
        except asyncio.CancelledError:
            print(f"{at()} {name:<9} stopped: {polyctx.cause(ctx)}, would have needed {ms} ms")
            raise

    debug.track()  # every context made from here on is listed until it is freed
    request = polyctx.with_value(polyctx.background(), TRACE_ID, "4bf92f3577b34da6")
    budget = TimeoutError("request budget of 150ms spent")
    with polyctx.with_timeout(request, 0.150, cause=budget) as (ctx, _cancel):  # cancels on exit
        print(f"python: request {ctx.value(TRACE_ID)} fans out to 5 services under a 150 ms deadline")
        try:
            async with polyctx.Group(ctx) as g:
                for name, ms in SERVICES:
                    g.spawn(fetch, name, ms)
        except polyctx.DeadlineExceeded as e:
            print(f"{at()} the group ended: {e} ({e.__cause__})")
    still_running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print(f"{at()} tasks still running: {len(still_running)}, contexts still running: {len(debug.snapshot().running)}")


if __name__ == "__main__":
    asyncio.run(main())
