"""Leak check for Python: ITERATIONS rounds of everything a Python program
does with contexts, then proof that nothing stayed behind.

    python tests/leaks/leaks.py [ITERATIONS] [--expect-leak]

Each round derives (cancel, cause, deadline, value), hands a context to C
and takes it back (`to_c`/`from_c`, C's calls through ctypes), registers an
after-func, cancels with a cause and drops everything. Every 1,000 rounds a
fresh event loop runs scopes and `ctx.done()` waits (some cancelled, some
left pending when the loop closes), and threads block in `ctx.wait()` until
cancelled: loop and thread churn. At the end, with everything dropped:

- every value and cause handed to polyctx is freed (each counts itself
  while alive) and so is every event loop and its waker;
- Python's traced memory (tracemalloc) and glibc's bytes in use (the core's
  nodes, the binding's tables) have not grown by more than 1 MiB plus one
  byte per round, measured from a checkpoint after the first tenth (caches
  and pools full);
- no thread is left but the after-func pool's and the timer's.

`--expect-leak` keeps one context in 100 alive (its value, cause and
after-func with it): the run must then fail, which shows that it can.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import sys
import threading
import time
import tracemalloc
import weakref

import polyctx
from polyctx import Context, background, with_cancel, with_cancel_cause, with_timeout, with_value

KEY: polyctx.Key[object] = polyctx.Key("leak-check")


class Value:
    """A request value, counted while alive."""

    alive = 0

    def __init__(self) -> None:
        Value.alive += 1

    def __del__(self) -> None:
        Value.alive -= 1


class Why(Exception):
    """A cancel cause, counted while alive."""

    alive = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        Why.alive += 1

    def __del__(self) -> None:
        Why.alive -= 1


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


_libc = ctypes.CDLL(None)
_libc.mallinfo2.restype = MallInfo2


def native_in_use() -> int:
    info = _libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def one_round(c: polyctx.CLibrary, parent: Context, keep: list[object] | None, i: int) -> None:
    value, why = Value(), Why("client went away")
    ctx, cancel = with_cancel_cause(parent)
    timed, cancel_timed = with_timeout(ctx, 3600)
    valued = with_value(timed, KEY, value)
    ran: list[bool] = []
    stop = polyctx.after_func(valued, lambda: ran.append(True))
    ptr = valued.to_c()  # Python -> C
    back = Context.from_c(ptr)  # C -> Python
    c.ctx_release(ptr)
    assert back.value(KEY) is value
    cancel(why)
    cancel_timed()
    if keep is not None and i % 100 == 0:
        keep.append((valued, stop))
    del value, why, ctx, timed, valued, back, stop


async def loop_work(parent: Context) -> None:
    """Scopes and done() waits on one loop: half cancelled, half left
    pending when the loop closes."""
    ctx, cancel = with_cancel(parent)
    pending, _never = with_cancel(parent)

    async def in_scope(c: Context) -> None:
        try:
            async with polyctx.scope(c):
                await asyncio.sleep(3600)
        except polyctx.Canceled:
            pass

    # The task left pending is destroyed with its loop, as it should be: quietly.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    tasks = [asyncio.ensure_future(in_scope(ctx)) for _ in range(5)]
    waits = [ctx.done() for _ in range(5)]
    left = asyncio.ensure_future(in_scope(pending))  # still waiting when the loop closes
    pending.done()
    await asyncio.sleep(0)
    cancel()
    await asyncio.gather(*tasks, *waits)
    assert not left.done()


class Loops:
    """Event loops made and not yet freed."""

    made = 0
    freed = 0

    @staticmethod
    def freed_one() -> None:
        Loops.freed += 1


def churn(parent: Context) -> None:
    loop = asyncio.new_event_loop()
    Loops.made += 1
    weakref.finalize(loop, Loops.freed_one)
    try:
        loop.run_until_complete(loop_work(parent))
    finally:
        loop.close()
    ctx, cancel = with_cancel(parent)
    threads = [threading.Thread(target=ctx.wait) for _ in range(3)]
    for t in threads:
        t.start()
    cancel()
    for t in threads:
        t.join(10)
        assert not t.is_alive(), "a thread in ctx.wait() was not woken by cancel"


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    iterations = int(args[0]) if args else 1_000_000
    keep: list[object] | None = [] if "--expect-leak" in sys.argv else None
    c = polyctx.c_library()
    parent, end = with_cancel(background())  # a server-lifetime context
    threads_before = threading.active_count()
    tracemalloc.start()
    started = time.monotonic()
    checkpoint = iterations // 10
    base_py = base_native = 0
    for i in range(iterations):
        one_round(c, parent, keep, i)
        if i % 1000 == 999:
            churn(parent)
        if i == checkpoint:
            gc.collect()
            base_py = tracemalloc.get_traced_memory()[0]
            # tracemalloc's own tables are in glibc's count too: not ours.
            base_native = native_in_use() - tracemalloc.get_tracemalloc_memory()
    end()
    del parent
    gc.collect()
    time.sleep(0.05)  # after-funcs queued by the last cancels finish on the pool
    gc.collect()
    grown_py = tracemalloc.get_traced_memory()[0] - base_py
    grown_native = native_in_use() - tracemalloc.get_tracemalloc_memory() - base_native
    tracemalloc.stop()
    alive = Value.alive + Why.alive
    loops_alive = Loops.made - Loops.freed
    # Threads the process keeps by design: polyctx's timer and after-func pool.
    extra_threads = threading.active_count() - threads_before
    # glibc keeps some memory in per-thread caches and arenas as threads come
    # and go (a step of about 220 KB once in a million rounds), and an event
    # loop may keep a 200 KB buffer; a leak of one context a round would be
    # hundreds of bytes a round.
    allowed = 1024 * 1024 + (iterations - checkpoint)
    rounds = iterations - checkpoint
    seconds = time.monotonic() - started
    print(
        f"python: {iterations:,} rounds and {iterations // 1000:,} loop/thread churns in {seconds:.1f} s;"
        f" values and causes alive {alive} of {2 * iterations:,}, loops alive {loops_alive} of {Loops.made};"
        f" grown since round {checkpoint:,}: Python {grown_py:+,} B ({grown_py / rounds:+.3f} B/round),"
        f" native {grown_native:+,} B ({grown_native / rounds:+.3f} B/round); threads {extra_threads:+d}"
    )
    failures = []
    if alive:
        failures.append(f"{alive} values or causes were never freed")
    if loops_alive:
        failures.append(f"{loops_alive} closed event loops were never freed")
    if grown_py > allowed:
        failures.append(f"Python memory grew by {grown_py:,} B (allowed {allowed:,})")
    if grown_native > allowed:
        failures.append(f"native memory grew by {grown_native:,} B (allowed {allowed:,})")
    if extra_threads > 0:
        failures.append(f"{extra_threads} Python threads left running")
    for f in failures:
        print(f"python: LEAK: {f}")
    if keep is not None:
        keep.clear()
        if not failures:
            print("python: --expect-leak: the leak kept on purpose went unseen")
            return 1
        print("python: --expect-leak: seen, as it must be")
        return 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
