"""The article's patterns in asyncio, on asyncio's loop and uvloop: fan-out
under one deadline, and retry with backoff cut short by cancellation."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

import polyctx
from polyctx import Canceled, DeadlineExceeded, background, current, scope, with_cancel_cause, with_timeout

LONG = 10.0


def test_fan_out_under_one_deadline_leaves_nothing_running(run):
    async def fetch(ctx, seconds):
        async with scope(ctx):
            await asyncio.sleep(seconds)
            return "ok"

    async def main():
        budget = TimeoutError("request budget spent")
        with with_timeout(background(), 0.05, cause=budget) as (ctx, _):
            results = await asyncio.gather(
                *(fetch(ctx, s) for s in (0.001, 0.002, LONG, LONG * 2)), return_exceptions=True
            )
        assert results[:2] == ["ok", "ok"]
        for r in results[2:]:
            assert isinstance(r, DeadlineExceeded) and r.__cause__ is budget
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(main())


def test_retry_with_backoff_is_cut_short(run):
    def backoff(attempt):
        return 0.001 * 2**attempt if attempt < 2 else 3600.0  # the third would take an hour

    async def retry_with_backoff(ctx, max_retries, fn):
        for attempt in range(max_retries):
            if await fn():
                return "done"
            try:
                await asyncio.wait_for(ctx.done(), timeout=backoff(attempt))
            except asyncio.TimeoutError:
                continue
            raise ctx.err()
        raise RuntimeError("max retries exceeded")

    async def main():
        ctx, cancel = with_cancel_cause(background())
        calls = 0

        async def flaky():
            nonlocal calls
            calls += 1
            if calls == 3:  # e.g. the client goes away during the third attempt
                asyncio.get_running_loop().call_soon(cancel, ConnectionResetError("client went away"))
            return False

        with pytest.raises(Canceled) as info:
            await asyncio.wait_for(retry_with_backoff(ctx, 100, flaky), LONG)
        assert calls == 3
        assert isinstance(info.value.__cause__, ConnectionResetError)

    run(main())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_deadlines_and_scopes_work_in_a_forked_child():
    async def main():
        with pytest.raises(DeadlineExceeded):
            async with scope(with_timeout(current(), 0.01)):
                await asyncio.sleep(LONG)

    asyncio.run(main())  # the parent has a waker and a timer thread already
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            asyncio.run(main())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TaskGroup is 3.11+")
def test_fan_out_with_a_task_group(run):
    async def main():
        finished = []

        async def call(i):
            await asyncio.sleep(0.001 if i < 2 else LONG)
            finished.append(i)

        with pytest.raises(DeadlineExceeded):
            async with scope(with_timeout(current(), 0.05)):
                async with asyncio.TaskGroup() as tg:
                    for i in range(5):
                        tg.create_task(call(i))
        assert sorted(finished) == [0, 1]
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(main())


def test_polyctx_reexports_are_the_native_ones():
    assert polyctx.scope is polyctx._native.scope
