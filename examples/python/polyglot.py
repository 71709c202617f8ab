"""One request, two languages, one core.

A request arrives in Python with a 150 ms budget. Part of its work runs in
asyncio tasks; part runs in C, through the C ABI (`include/ctx.h`) that
polyctx's native module exports, on a thread of its own, as a C library
linked into the service would. Both halves watch the same context: when the
deadline passes, the slow Python call and the slow C call stop at the same
moment, and C reads the cause that Python set.

Run with `make demo` (or `python examples/python/polyglot.py` once polyctx is
installed).
"""

import asyncio
import ctypes
import sys
import threading
import time

import polyctx

c = polyctx.c_library()  # ctx.h's functions, prototypes declared, and its constants

START = time.monotonic()


def say(who: str, what: str) -> None:
    # One write per line: the C thread and the event loop report at the same moment.
    sys.stdout.write(f"[{(time.monotonic() - START) * 1000:4.0f} ms] {who:<16} {what}\n")


def c_backend(ctx_ptr: int, needs_ms: int) -> None:
    """What a C library does with the ctx_t* it is given: wait for its work
    (here, simply time) or for the request to end, whichever comes first."""
    try:
        if c.ctx_wait(ctx_ptr, needs_ms * 1_000_000) != c.CTX_OK:
            say("C backend", f"answered ok (needed {needs_ms} ms)")
            return
        why = ctypes.create_string_buffer(128)
        c.ctx_cause(ctx_ptr, why, len(why), None, None)
        say("C backend", f"stopped by the Python deadline: {why.value.decode()}")
    finally:
        c.ctx_release(ctx_ptr)  # the thread owned one reference


async def python_call(ctx: polyctx.Context, name: str, needs_ms: int) -> None:
    try:
        async with polyctx.scope(ctx):
            await asyncio.sleep(needs_ms / 1000)
        say(name, f"answered ok (needed {needs_ms} ms)")
    except polyctx.DeadlineExceeded as e:
        say(name, f"stopped: {e.__cause__}")


async def handle_request() -> None:
    budget = TimeoutError("request budget of 150ms spent")
    print("polyglot: one Python request, asyncio tasks and a C thread, one 150 ms deadline")
    with polyctx.with_timeout(polyctx.background(), 0.150, cause=budget) as (ctx, _):
        # C gets its own reference to the very same context.
        worker = threading.Thread(target=c_backend, args=(ctx.to_c(), 5_000))
        worker.start()
        await asyncio.gather(python_call(ctx, "python fast call", 30), python_call(ctx, "python slow call", 3_000))
        await asyncio.to_thread(worker.join)
    running = [t for t in threading.enumerate() if t is worker] + list(asyncio.all_tasks() - {asyncio.current_task()})
    say("request", f"done; still running: {len(running)}")


asyncio.run(handle_request())
