"""Event loops and their wakers: a loop closed with waits pending is freed
with its fd, and nothing keeps the last loop alive."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref

import pytest

import polyctx
from polyctx import background, scope, with_cancel

LOOPS = 50


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def collect() -> None:
    for _ in range(3):
        gc.collect()
        polyctx.background()  # flushes deferred decrefs


@pytest.mark.parametrize("wait", ["done", "scope"])
def test_closing_loops_with_pending_waits_frees_them_and_their_fds(loop_factory, wait):
    async def waiting(ctx):
        if wait == "done":
            await ctx.done()
        else:
            async with scope(ctx):
                await asyncio.sleep(3600)

    collect()
    before = open_fds()
    loops, cancels = [], []
    for _ in range(LOOPS):
        loop = loop_factory()
        ctx, cancel = with_cancel(background())
        cancels.append(cancel)  # the contexts stay live: only the loops go
        task = loop.create_task(waiting(ctx))
        loop.run_until_complete(asyncio.sleep(0.001))
        assert not task.done()
        loop.close()
        loops.append(weakref.ref(loop))
        del loop, task
    # Pending tasks destroyed with their loop log an error: expected here.
    collect()
    assert sum(r() is not None for r in loops) == 0
    assert open_fds() <= before + 2  # not one per loop
    for cancel in cancels:
        cancel()


def test_the_last_loop_is_not_kept_after_asyncio_run():
    async def main():
        ctx, cancel = with_cancel(background())
        cancel()
        await ctx.done()
        async with scope(ctx):
            pass
        return weakref.ref(asyncio.get_running_loop())

    collect()
    before = open_fds()
    ref = asyncio.run(main())
    collect()
    assert ref() is None
    assert open_fds() == before


def test_a_loop_keeps_its_waker_while_it_runs(loop_factory):
    async def main():
        from polyctx._asyncio import _waker

        waker = _waker(asyncio.get_running_loop())
        ref = weakref.ref(waker)
        del waker
        collect()  # only the loop holds it now
        assert ref() is not None
        ctx, cancel = with_cancel(background())
        asyncio.get_running_loop().call_later(0.01, cancel)
        await asyncio.wait_for(ctx.done(), 10)
        assert _waker(asyncio.get_running_loop()) is ref()

    loop = loop_factory()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
