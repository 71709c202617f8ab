"""The article's patterns as polyctx's asyncio helpers, on asyncio's loop and
uvloop: `Group` (the fan-out, Go's errgroup), `retry` with the core's
`Backoff`, `sleep` and `wait_for`; each cancelled in the middle."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time

import pytest

import polyctx
from polyctx import (
    Backoff,
    Canceled,
    DeadlineExceeded,
    Group,
    RetryError,
    background,
    current,
    debug,
    retry,
    scope,
    with_cancel,
    with_cancel_cause,
    with_timeout,
)

LONG = 10.0  # "never", for a test: what would run this long must be stopped


@pytest.fixture(params=["TaskGroup", "own"] if sys.version_info >= (3, 11) else ["own"])
def backend(request, monkeypatch):
    """Each Group test runs on asyncio.TaskGroup (3.11+) and on the group's own code for 3.9 and 3.10."""
    if request.param == "own":
        monkeypatch.delattr(asyncio, "TaskGroup", raising=False)
    return request.param


@pytest.fixture
def tracked():
    """Tracks the contexts the test makes; afterwards, none may be left running."""
    debug.track(True)
    try:
        yield
    finally:
        debug.track(False)
    gc.collect()
    left = debug.snapshot().running
    assert not left, f"contexts left running:\n{debug.snapshot()}"


def nothing_else_running():
    return asyncio.all_tasks() == {asyncio.current_task()}


# -- Group ----------------------------------------------------------------------------


def test_the_articles_fan_out_stops_every_slow_call_at_the_deadline(run, backend, tracked):
    async def fetch(ctx, seconds):
        await asyncio.sleep(seconds)  # plain asyncio: the task's scope stops it
        return "ok"

    async def main():
        budget = TimeoutError("request budget spent")
        started = time.monotonic()
        with with_timeout(background(), 0.05, cause=budget) as (ctx, _):
            with pytest.raises(DeadlineExceeded) as info:
                async with Group(ctx) as g:
                    tasks = [g.spawn(fetch, s) for s in (0.001, 0.002, LONG, LONG * 2)]
        assert time.monotonic() - started < LONG / 2
        assert info.value.__cause__ is budget  # the first error, as the task raised it
        assert [t.result() for t in tasks[:2]] == ["ok", "ok"]  # what came in time
        assert all(t.done() for t in tasks) and nothing_else_running()
        assert g.context.is_done()

    run(main())


def test_the_first_error_cancels_the_rest_with_itself_as_the_cause(run, backend, tracked):
    seen = []

    async def call(ctx, i):
        if i == 0:
            await asyncio.sleep(0.001)
            raise ConnectionResetError("backend 0 hung up")
        try:
            await asyncio.sleep(LONG)
        finally:
            seen.append(polyctx.cause(ctx))

    async def main():
        with pytest.raises(ConnectionResetError, match="backend 0 hung up") as info:
            async with Group(background()) as g:
                for i in range(4):
                    g.spawn(call, i)
                await asyncio.sleep(LONG)  # the block, too, is cancelled at the first error
        assert seen == [info.value] * 3
        assert isinstance(g.context.err(), Canceled) and g.context.err().__cause__ is info.value
        assert nothing_else_running()

    run(main())


def test_a_group_cancelled_from_its_parent_midway(run, backend, tracked):
    started = []

    async def call(ctx, i):
        started.append(i)
        await asyncio.sleep(LONG)

    async def main():
        parent, cancel = with_cancel_cause(background())
        why = ConnectionAbortedError("client went away")
        with pytest.raises(Canceled) as info:
            async with Group(parent) as g:
                for i in range(3):
                    g.spawn(call, i)
                await asyncio.sleep(0.01)
                asyncio.get_running_loop().call_soon(cancel, why)
        assert sorted(started) == [0, 1, 2]
        assert info.value.__cause__ is why and polyctx.cause(g.context) is why
        assert nothing_else_running()

    run(main())


def test_tasks_run_in_the_groups_context_and_keep_their_results(run, backend, tracked):
    async def call(ctx, i):
        assert current() is ctx
        await asyncio.sleep(0)
        return i * i

    async def main():
        async with Group(background()) as g:
            tasks = [g.spawn(call, i) for i in range(5)]
            assert not g.context.is_done()
        assert [t.result() for t in tasks] == [0, 1, 4, 9, 16]
        assert isinstance(g.context.err(), Canceled)  # the group's context ends with it

    run(main())


def test_a_limit_bounds_how_many_run_at_once_and_queued_tasks_never_start_once_done(run, backend, tracked):
    running, most, started = 0, 0, []

    async def call(ctx, i):
        nonlocal running, most
        started.append(i)
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.005 if i < 4 else LONG)
        finally:
            running -= 1

    async def main():
        with pytest.raises(DeadlineExceeded):
            async with Group(with_timeout(background(), 0.2), limit=2) as g:
                for i in range(8):
                    g.spawn(call, i)
        assert most == 2
        assert started[:4] == [0, 1, 2, 3] and len(started) == 6  # 4, 5 blocked; 6, 7 never started
        assert nothing_else_running()

    run(main())


def test_an_exception_in_the_block_cancels_the_tasks_and_propagates_as_is(run, backend, tracked):
    async def call(ctx):
        await asyncio.sleep(LONG)

    async def main():
        with pytest.raises(KeyError) as info:
            async with Group(background()) as g:
                task = g.spawn(call)
                await asyncio.sleep(0)
                raise KeyError("bad request")
        assert task.cancelled() or isinstance(task.exception(), Canceled)
        assert polyctx.cause(g.context) is info.value
        assert nothing_else_running()

    run(main())


def test_cancelling_the_task_that_waits_for_a_group_cancels_its_tasks(run, backend, tracked):
    stopped = []

    async def call(ctx):
        try:
            await asyncio.sleep(LONG)
        finally:
            stopped.append(True)

    async def handler():
        async with Group(background()) as g:
            g.spawn(call)
            g.spawn(call)

    async def main():
        outer = asyncio.create_task(handler())
        await asyncio.sleep(0.01)
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert stopped == [True, True] and nothing_else_running()

    run(main())


def test_group_bad_input(run, backend):
    with pytest.raises(TypeError, match="Group"):
        Group("ctx")  # type: ignore[arg-type]
    for limit in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            Group(background(), limit=limit)  # type: ignore[arg-type]
    g = Group(background())
    with pytest.raises(RuntimeError):
        g.spawn(asyncio.sleep)
    with pytest.raises(RuntimeError):
        g.context  # noqa: B018

    async def main():
        async with Group(background()) as g:
            with pytest.raises(TypeError, match="async function"):
                g.spawn(42)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            g.spawn(asyncio.sleep)

    run(main())


def test_a_group_given_a_pair_cancels_it_at_exit(run, backend):
    async def main():
        pair = with_timeout(background(), 3600)
        async with Group(pair) as g:
            pass
        assert isinstance(pair[0].err(), Canceled) and g.context.is_done()

    run(main())


# -- retry ----------------------------------------------------------------------------

QUICK = Backoff(initial=0.001, max=0.002, jitter=0)


def test_retry_until_success_retrying_only_what_is_marked_retryable(run, tracked):
    async def main():
        calls = []

        async def flaky(answer):
            calls.append(len(calls))
            if len(calls) < 3:
                raise ConnectionError("503")
            return answer

        assert await retry(background(), flaky, 42, retry_on=ConnectionError, backoff=QUICK) == 42
        assert calls == [0, 1, 2]

        async def bad_request():
            calls.append("fatal")
            raise ValueError("400")

        with pytest.raises(ValueError, match="400"):  # not retryable: raised at once, as is
            await retry(background(), bad_request, retry_on=(ConnectionError, TimeoutError), backoff=QUICK)
        assert calls.count("fatal") == 1

        def only_503(e):
            return str(e) == "503"

        async def down():
            raise ConnectionError("503")

        with pytest.raises(RetryError) as info:
            await retry(background(), down, retry_on=only_503, backoff=Backoff(initial=0.001, max_attempts=2))
        assert info.value.reason == "attempts" and info.value.attempts == 2
        assert str(info.value.last) == "503" and info.value.__cause__ is info.value.last
        assert str(info.value) == "gave up: out of attempts after 2 attempt(s); last error: ConnectionError('503')"

    run(main())


def test_retry_cancelled_during_the_backoff_stops_at_once(run, tracked):
    async def main():
        ctx, cancel = with_cancel_cause(background())
        why = ConnectionResetError("client went away")
        attempts = 0

        async def flaky():
            nonlocal attempts
            attempts += 1
            # The client goes away during the wait after this attempt, an hour long.
            asyncio.get_running_loop().call_later(0.01, cancel, why)
            raise ConnectionError("503")

        started = time.monotonic()
        with pytest.raises(RetryError) as info:
            await retry(ctx, flaky, retry_on=ConnectionError, backoff=Backoff(initial=3600, max=3600, jitter=0))
        assert time.monotonic() - started < LONG
        assert info.value.reason == "canceled" and info.value.cause is why and info.value.__cause__ is why
        assert info.value.attempts == 1 and str(info.value.last) == "503"
        assert str(info.value).startswith("gave up: canceled (client went away) after 1 attempt(s)")

    run(main())


def test_retry_cancelled_during_an_attempt_stops_the_attempt(run, tracked):
    async def main():
        ctx, cancel = with_cancel_cause(background())
        why = ConnectionResetError("client went away")

        async def slow():
            asyncio.get_running_loop().call_later(0.01, cancel, why)
            await asyncio.sleep(LONG)  # plain asyncio: the attempt's scope stops it

        with pytest.raises(RetryError) as info:
            await asyncio.wait_for(retry(ctx, slow, retry_on=Exception, backoff=QUICK), LONG)
        assert info.value.reason == "canceled" and info.value.cause is why
        assert info.value.attempts == 1 and info.value.last is None  # the context ended it, not a failure

    run(main())


def test_retry_never_starts_an_attempt_the_budget_cannot_fit(run, tracked):
    async def main():
        attempts = 0

        async def call():
            nonlocal attempts
            attempts += 1
            raise ConnectionError("503")

        # One attempt takes about a second; half a second holds none.
        with with_timeout(background(), 0.5) as (ctx, _):
            with pytest.raises(RetryError) as info:
                await retry(ctx, call, retry_on=ConnectionError, backoff=Backoff(attempt_time=1))
            assert info.value.reason == "deadline" and info.value.attempts == attempts == 0
            assert info.value.last is None and info.value.cause is None and not ctx.is_done()

        # A few fit, then the waits grow until the next one would end past the deadline:
        # it gives up then, without waiting out the budget.
        with with_timeout(background(), LONG) as (ctx, _):
            # Waits of 1 ms, 100 ms, then 10 s: the third attempt is the last that fits.
            backoff = Backoff(initial=0.001, multiplier=100, jitter=0, attempt_time=LONG / 2)
            with pytest.raises(RetryError) as info:
                await retry(ctx, call, retry_on=ConnectionError, backoff=backoff)
            assert info.value.reason == "deadline" and attempts == 3 and not ctx.is_done()
            assert isinstance(info.value.cause, ConnectionError) and info.value.cause is info.value.last

    run(main())


def test_retry_ended_by_the_deadline_during_an_attempt(run, tracked):
    async def main():
        async def slow():
            await asyncio.sleep(LONG)

        with with_timeout(background(), 0.02, cause=TimeoutError("budget")) as (ctx, _):
            with pytest.raises(RetryError) as info:
                await retry(ctx, slow, retry_on=Exception, backoff=QUICK)
        assert info.value.reason == "deadline" and info.value.attempts == 1
        assert isinstance(info.value.cause, DeadlineExceeded) and str(info.value.cause.__cause__) == "budget"

    run(main())


def test_backoff_is_the_cores_rules():
    b = Backoff(initial=0.01, max=0.05, multiplier=2, jitter=0.5, max_attempts=5)
    bg = background()
    assert [b.next(bg, n, random=0.0) for n in range(5)] == [0.0, 0.01, 0.02, 0.04, 0.05]
    assert 0.004 < b.next(bg, 1, random=0.999) < 0.006  # jitter takes up to half
    assert b.next(bg, 5) == "attempts"
    ctx, cancel = with_cancel(bg)
    cancel()
    assert b.next(ctx, 1) == "canceled"
    with with_timeout(bg, -1) as (expired, _):
        assert b.next(expired, 1) == "deadline"
    assert b == Backoff(initial=0.01, max=0.05, jitter=0.5, max_attempts=5) and b != Backoff()
    assert repr(Backoff(max_attempts=3)).startswith("Backoff(initial=0.1, max=10, multiplier=2, jitter=0.2")
    assert b.initial == 0.01 and b.max == 0.05 and b.max_attempts == 5 and b.attempt_time is None


def test_retry_and_backoff_bad_input(run):
    for kwargs, match in [
        ({"multiplier": 0.5}, "multiplier"),
        ({"multiplier": float("nan")}, "multiplier"),
        ({"jitter": 2}, "jitter"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -3}, "max_attempts"),
        ({"initial": -1}, "initial must not be negative"),
        ({"max": float("inf")}, "max must be finite"),
        ({"attempt_time": "1s"}, "attempt_time must be a number of seconds"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            Backoff(**kwargs)
    with pytest.raises(ValueError, match="random"):
        Backoff().next(background(), 1, random=1.0)
    with pytest.raises(ValueError, match="attempts"):
        Backoff().next(background(), -1)
    with pytest.raises(TypeError, match=r"ctx must be a polyctx\.Context"):
        Backoff().next(None, 0)  # type: ignore[arg-type]

    async def main():
        async def ok():
            return 1

        with pytest.raises(TypeError, match="retry_on"):
            await retry(background(), ok, retry_on="ConnectionError")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await retry(background(), ok)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="fn must be an async function"):
            await retry(background(), "ok", retry_on=Exception)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"backoff must be a polyctx\.Backoff"):
            await retry(background(), ok, retry_on=Exception, backoff={"initial": 1})  # type: ignore[arg-type]
        pair = with_timeout(background(), 3600)
        fut = asyncio.get_running_loop().create_future()
        for helper in (polyctx.sleep(pair, 0), polyctx.wait_for(pair, fut), retry(pair, ok, retry_on=Exception)):  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"takes a polyctx\.Context, not CancelPair"):
                await helper
        assert not pair[0].is_done()  # not taken for a scope's pair, which it would cancel
        pair[1]()

    run(main())


# -- sleep and wait_for ---------------------------------------------------------------


def test_sleep_runs_its_course_or_ends_with_the_context(run, tracked):
    async def main():
        await polyctx.sleep(background(), 0.001)
        ctx, cancel = with_cancel_cause(background())
        why = ConnectionResetError("client went away")
        asyncio.get_running_loop().call_later(0.01, cancel, why)
        started = time.monotonic()
        with pytest.raises(Canceled) as info:
            await polyctx.sleep(ctx, LONG)
        assert time.monotonic() - started < LONG / 2 and info.value.__cause__ is why
        with pytest.raises(Canceled):  # already done: at once
            await polyctx.sleep(ctx, LONG)
        with with_timeout(background(), 0.01) as (timed, _), pytest.raises(DeadlineExceeded):
            await polyctx.sleep(timed, LONG)
        assert nothing_else_running()

    run(main())


def test_wait_for_completes_or_is_cancelled_with_the_context(run, tracked):
    async def main():
        assert await polyctx.wait_for(background(), asyncio.sleep(0, "value")) == "value"
        ctx, cancel = with_cancel(background())
        event = asyncio.Event()
        waiter = asyncio.ensure_future(polyctx.wait_for(ctx, event.wait()))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        cancel()
        with pytest.raises(Canceled):
            await waiter
        # A future given to wait_for is cancelled with it, as asyncio.wait_for does.
        fut = asyncio.get_running_loop().create_future()
        with pytest.raises(Canceled):
            await polyctx.wait_for(ctx, fut)
        assert fut.cancelled() and nothing_else_running()

    run(main())


# -- what only the asyncio side has ---------------------------------------------------


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


def test_polyctx_reexports_are_the_native_ones():
    assert polyctx.scope is polyctx._native.scope
    assert polyctx.Backoff is polyctx._native.Backoff
