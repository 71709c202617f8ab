"""The article's leaky fan-out, fixed with polyctx in asyncio: one request
deadline, five downstream calls, and every slow call stops the moment it
passes.

Run with `make demo` (or `python examples/python/fanout.py` once polyctx is
installed).
"""

from __future__ import annotations

import asyncio
import time

import polyctx

TRACE_ID = polyctx.Key("trace-id")
SERVICES = [("auth", 20), ("profile", 60), ("search", 400), ("ads", 900), ("recommend", 2000)]


async def fetch(name: str, ms: int) -> str:
    """A downstream call. It needs no deadline logic of its own: the scope
    around it cancels it when the request's context is done."""
    await asyncio.sleep(ms / 1000)
    return "ok"


async def main() -> None:
    start = time.monotonic()

    def at() -> str:
        return f"[{(time.monotonic() - start) * 1000:>4.0f} ms]"

    async def call(ctx: polyctx.Context, name: str, ms: int) -> None:
        try:
            async with polyctx.scope(ctx):  # this task is now part of the request
                answer = await fetch(name, ms)
            print(f"{at()} {name:<9} answered {answer} (needed {ms} ms)")
        except polyctx.DeadlineExceeded as e:
            print(f"{at()} {name:<9} stopped: {e} ({e.__cause__}), would have needed {ms} ms")

    request = polyctx.with_value(polyctx.background(), TRACE_ID, "4bf92f3577b34da6")
    budget = TimeoutError("request budget of 150ms spent")
    with polyctx.with_timeout(request, 0.150, cause=budget) as (ctx, _cancel):  # cancels on exit
        print(f"python: request {ctx.value(TRACE_ID)} fans out to 5 services under a 150 ms deadline")
        await asyncio.gather(*(call(ctx, name, ms) for name, ms in SERVICES))
    still_running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    print(f"{at()} tasks still running: {len(still_running)}")


if __name__ == "__main__":
    asyncio.run(main())
