"""asyncio: `await ctx.done()`, `scope`, `current()`, on asyncio's loop and uvloop."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

import polyctx
from polyctx import (
    Canceled,
    DeadlineExceeded,
    Key,
    background,
    cause,
    current,
    scope,
    with_cancel,
    with_cancel_cause,
    with_timeout,
    with_value,
)
from polyctx._asyncio import _waker

LONG = 10.0  # a limit that only a bug reaches
needs_uncancel = pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.uncancel() is 3.11+")


def pending_waits() -> int:
    return len(_waker(asyncio.get_running_loop()))


def test_done_resolves_on_cancel_in_the_loop(run):
    async def main():
        ctx, cancel = with_cancel(background())
        fut = ctx.done()
        assert not fut.done()
        cancel()
        await asyncio.wait_for(fut, LONG)
        assert pending_waits() == 0

    run(main())


def test_done_resolves_on_cancel_from_another_thread(run):
    async def main():
        ctx, cancel = with_cancel_cause(background())
        threading.Thread(target=cancel, args=(ValueError("from a thread"),)).start()
        await asyncio.wait_for(ctx.done(), LONG)
        assert str(cause(ctx)) == "from a thread"

    run(main())


def test_done_resolves_on_deadline_from_the_timer_thread(run):
    async def main():
        ctx, cancel = with_timeout(background(), 0.02)
        await asyncio.wait_for(ctx.done(), LONG)
        assert isinstance(ctx.err(), DeadlineExceeded)
        cancel()

    run(main())


def test_done_of_a_done_context_is_done(run):
    async def main():
        ctx, cancel = with_cancel(background())
        cancel()
        assert ctx.done().done()
        await ctx.done()

    run(main())


def test_abandoned_done_releases_its_registration(run):
    async def main():
        ctx, cancel = with_cancel(background())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ctx.done(), 0.01)
        await asyncio.sleep(0)
        assert pending_waits() == 0
        assert polyctx._native.Waker  # the class stays private
        cancel()

    run(main())


def test_done_of_background_never_resolves(run):
    async def main():
        done, _ = await asyncio.wait([background().done()], timeout=0.01)
        assert not done

    run(main())


def test_many_waiters_on_one_context(run):
    async def main():
        ctx, cancel = with_cancel(background())
        woken = []

        async def waiter(i):
            await ctx.done()
            woken.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(1000)]
        await asyncio.sleep(0)
        threading.Thread(target=cancel).start()
        await asyncio.wait_for(asyncio.gather(*tasks), LONG)
        assert sorted(woken) == list(range(1000))

    run(main())


def test_scope_deadline_raises_deadline_exceeded_chained(run):
    async def main():
        with pytest.raises(DeadlineExceeded) as info:
            async with scope(with_timeout(current(), 0.02)) as ctx:
                assert current() is ctx
                await asyncio.sleep(LONG)
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert current() is background()
        assert ctx.is_done()

    run(main())


def test_scope_error_is_chained_to_the_cause(run):
    async def main():
        why = ConnectionResetError("client went away")
        ctx, cancel = with_cancel_cause(background())
        asyncio.get_running_loop().call_later(0.01, cancel, why)
        with pytest.raises(Canceled) as info:
            async with scope(ctx):
                await asyncio.sleep(LONG)
        assert info.value.__cause__ is why

        slow = TimeoutError("backend slow")
        with pytest.raises(DeadlineExceeded) as info:
            async with scope(with_timeout(current(), 0.01, cause=slow)):
                await asyncio.sleep(LONG)
        assert info.value.__cause__ is slow

    run(main())


def test_scope_cancels_its_pair_on_exit(run):
    async def main():
        async with scope(with_timeout(current(), 3600)) as ctx:
            pass
        assert isinstance(ctx.err(), Canceled)
        assert pending_waits() == 0

    run(main())


def test_scope_of_a_plain_context_leaves_it_alone(run):
    async def main():
        ctx, cancel = with_cancel(background())
        async with scope(ctx) as got:
            assert got is ctx
        assert not ctx.is_done()
        cancel()

    run(main())


def test_scope_entered_with_a_done_context_cancels_at_the_first_await(run):
    async def main():
        ctx, cancel = with_cancel(background())
        cancel()
        reached = []
        with pytest.raises(Canceled):
            async with scope(ctx):
                reached.append(1)
                await asyncio.sleep(LONG)
        assert reached == [1]

    run(main())


def test_scope_cancelled_from_another_thread(run):
    async def main():
        ctx, cancel = with_cancel(background())
        threading.Timer(0.01, cancel).start()
        with pytest.raises(Canceled):
            async with scope(ctx):
                await asyncio.sleep(LONG)

    run(main())


def test_current_is_inherited_by_tasks_and_restored(run):
    key = Key("request")

    async def child():
        return current().value(key)

    async def main():
        assert current() is background()
        ctx = with_value(background(), key, "r-1")
        async with scope(ctx):
            assert await asyncio.create_task(child()) == "r-1"
            async with scope(with_timeout(current(), 60)) as inner:
                assert current() is inner and inner.value(key) == "r-1"
                assert current().deadline() is not None
            assert current() is ctx
        assert current() is background()

    run(main())


def test_current_deadline_is_the_effective_deadline(run):
    async def main():
        async with scope(with_timeout(current(), 30)) as outer:
            async with scope(with_timeout(current(), 3600)):
                assert current().deadline() == outer.deadline()
            async with scope(with_timeout(current(), 1)) as inner:
                assert current().deadline() == inner.deadline() < outer.deadline()

    run(main())


@pytest.mark.parametrize("shielded", [False, True], ids=["plain", "shielded"])
def test_foreign_cancel_propagates_untouched(run, shielded):
    # A scope on without_cancel() shields only from enclosing scopes.
    async def main():
        ctx, cancel = with_cancel(background())
        entered = asyncio.Event()

        async def body():
            async with scope(polyctx.without_cancel(ctx) if shielded else ctx):
                entered.set()
                await asyncio.sleep(LONG)

        task = asyncio.create_task(body())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not ctx.is_done()
        assert pending_waits() == 0
        cancel()

    run(main())


@needs_uncancel
def test_foreign_cancel_together_with_the_context_is_not_swallowed(run):
    async def main():
        ctx, cancel = with_cancel(background())
        entered = asyncio.Event()

        async def body():
            async with scope(ctx):
                entered.set()
                await asyncio.sleep(LONG)

        task = asyncio.create_task(body())
        await entered.wait()
        cancel()  # the scope's cancellation arrives on the next loop turn
        task.cancel()  # and so does this one
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


@needs_uncancel
def test_scope_inside_asyncio_timeout_that_fires_first(run):
    async def main():
        with pytest.raises(TimeoutError) as info:
            async with asyncio.timeout(0.02):
                async with scope(with_timeout(current(), 3600)):
                    await asyncio.sleep(LONG)
        assert not isinstance(info.value, DeadlineExceeded)  # asyncio's own

    run(main())


@needs_uncancel
def test_asyncio_timeout_inside_a_scope_that_fires_first(run):
    async def main():
        with pytest.raises(DeadlineExceeded):
            async with scope(with_timeout(current(), 0.02)):
                async with asyncio.timeout(3600):
                    await asyncio.sleep(LONG)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0

    run(main())


@needs_uncancel
def test_asyncio_timeout_firing_inside_a_scope_is_asyncios(run):
    async def main():
        async with scope(with_timeout(current(), 3600)) as ctx:
            with pytest.raises(TimeoutError) as info:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(LONG)
            assert not isinstance(info.value, DeadlineExceeded)
            assert not ctx.is_done()
            await asyncio.sleep(0)  # the scope did not cancel the task

    run(main())


@needs_uncancel
def test_nested_scopes_outer_fires_and_reports(run):
    async def main():
        outer_ctx, cancel = with_cancel_cause(background())
        why = RuntimeError("shutdown")
        asyncio.get_running_loop().call_later(0.01, cancel, why)
        with pytest.raises(Canceled) as info:
            async with scope(outer_ctx):
                async with scope(with_timeout(current(), 3600)):
                    await asyncio.sleep(LONG)
        assert info.value.__cause__ is why
        assert asyncio.current_task().cancelling() == 0

    run(main())


@needs_uncancel
def test_nested_scopes_inner_fires_alone(run):
    async def main():
        async with scope(with_timeout(current(), 3600)) as outer:
            with pytest.raises(DeadlineExceeded):
                async with scope(with_timeout(current(), 0.01)):
                    await asyncio.sleep(LONG)
            assert not outer.is_done()
            await asyncio.sleep(0)
        assert asyncio.current_task().cancelling() == 0

    run(main())


@needs_uncancel
def test_task_group_inside_a_scope_stops_every_child(run):
    async def main():
        started = []
        finished = []

        async def child(i):
            started.append(i)
            try:
                await asyncio.sleep(LONG)
            finally:
                finished.append(i)

        with pytest.raises(DeadlineExceeded):
            async with scope(with_timeout(current(), 0.02)):
                async with asyncio.TaskGroup() as tg:
                    for i in range(5):
                        tg.create_task(child(i))
        assert sorted(finished) == sorted(started) == list(range(5))
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(main())


@needs_uncancel
def test_scopes_inside_task_group_children(run):
    async def main():
        results = {}

        async def child(i, seconds):
            try:
                async with scope(with_timeout(current(), seconds)):
                    await asyncio.sleep(0.001 if i == 0 else LONG)
                results[i] = "ok"
            except DeadlineExceeded:
                results[i] = "deadline"

        async with asyncio.TaskGroup() as tg:
            tg.create_task(child(0, 3600))
            tg.create_task(child(1, 0.01))
        assert results == {0: "ok", 1: "deadline"}

    run(main())


def test_swallowed_cancellation_still_shows_in_the_context(run):
    async def main():
        async with scope(with_timeout(current(), 0.01)) as ctx:
            try:
                await asyncio.sleep(LONG)
            except asyncio.CancelledError:
                pass  # bad manners, but the context still says why
            assert isinstance(current().err(), DeadlineExceeded)
        assert ctx.is_done()
        if sys.version_info >= (3, 11):
            assert asyncio.current_task().cancelling() == 0

    run(main())


def test_scope_bad_uses(run):
    with pytest.raises(TypeError, match="Context or a with_"):
        scope(42)

    async def main():
        s = scope(background())
        async with s:
            pass
        with pytest.raises(RuntimeError, match="only once"):
            async with s:
                pass

    run(main())


def test_scope_outside_a_task():
    async def enter():
        await scope(background()).__aenter__()

    coro = enter()
    with pytest.raises(RuntimeError, match=r"no running event loop|inside an asyncio task"):
        coro.send(None)


def test_one_waker_per_loop_and_loops_in_threads(run):
    results = []

    def in_thread():
        async def main():
            ctx, cancel = with_cancel(background())
            asyncio.get_running_loop().call_later(0.01, cancel)
            await asyncio.wait_for(ctx.done(), LONG)
            results.append(_waker(asyncio.get_running_loop()))

        asyncio.run(main())

    async def main():
        threads = [threading.Thread(target=in_thread) for _ in range(3)]
        for t in threads:
            t.start()
        mine = _waker(asyncio.get_running_loop())
        assert _waker(asyncio.get_running_loop()) is mine
        await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join() for t in threads])
        assert len({id(w) for w in results}) == 3 and mine not in results

    run(main())


# -- a scope entered on a context that is already done ---------------------------


def test_a_done_scope_whose_block_does_not_suspend_leaves_no_cancellation_pending(run):
    # An expired request and a cache hit: as asyncio.timeout(-1), the block
    # runs to its end, and the next unrelated await is not cancelled.
    async def main():
        ctx, cancel = with_timeout(background(), -1)
        async with scope(ctx):
            hit = "cached"
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        if sys.version_info >= (3, 11):
            assert asyncio.current_task().cancelling() == 0
        assert pending_waits() == 0
        cancel()
        return hit

    assert run(main()) == "cached"


def test_a_done_scope_cancels_at_its_first_await_like_asyncio_timeout(run):
    async def main():
        ctx, cancel = with_timeout(background(), -1)
        with pytest.raises(DeadlineExceeded):
            async with scope(ctx):
                await asyncio.sleep(0)
        cancel()
        await asyncio.sleep(0)
        if sys.version_info >= (3, 11):  # the reference behaviour, on the same loop
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(-1):
                    await asyncio.sleep(0)
            async with asyncio.timeout(-1):
                pass
            await asyncio.sleep(0)

    run(main())


# -- shielding: the innermost scope decides ---------------------------------------


def test_a_scope_on_without_cancel_shields_its_block_until_it_exits(run):
    async def main():
        steps = []
        with pytest.raises(DeadlineExceeded):
            async with scope(with_timeout(current(), 0.02)) as request:
                async with scope(polyctx.without_cancel(current())) as cleanup:
                    await asyncio.wait_for(request.done(), LONG)  # the request's deadline passes here
                    await asyncio.sleep(0.01)
                    assert current() is cleanup and cleanup.err() is None
                    steps.append("cleanup finished")
                steps.append("after the shield")
                await asyncio.sleep(LONG)  # cancelled here: the request is done
        assert steps == ["cleanup finished", "after the shield"]
        if sys.version_info >= (3, 11):
            assert asyncio.current_task().cancelling() == 0

    run(main())


def test_shielding_does_what_anyio_cancel_scope_shield_does():
    # anyio's CancelScope(shield=True) is the reference: the shielded block
    # finishes, and the outer cancellation lands at the next await after it.
    anyio = pytest.importorskip("anyio")

    async def with_anyio(steps):
        with anyio.move_on_after(0.02) as outer:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)
                steps.append("cleanup finished")
            steps.append("after the shield")
            await anyio.sleep(LONG)
            steps.append("not reached")
        steps.append(("outer cancelled", outer.cancelled_caught))

    async def with_polyctx(steps):
        try:
            async with scope(with_timeout(current(), 0.02)):
                async with scope(polyctx.without_cancel(current())):
                    await asyncio.sleep(0.05)
                    steps.append("cleanup finished")
                steps.append("after the shield")
                await asyncio.sleep(LONG)
                steps.append("not reached")
        except DeadlineExceeded:
            steps.append(("outer cancelled", True))

    theirs, ours = [], []
    asyncio.run(with_anyio(theirs))
    asyncio.run(with_polyctx(ours))
    assert ours == theirs == ["cleanup finished", "after the shield", ("outer cancelled", True)]


def test_a_shielded_block_keeps_its_own_deadline(run):
    async def main():
        async with scope(with_timeout(current(), 3600)) as outer:
            with pytest.raises(DeadlineExceeded):
                async with scope(with_timeout(polyctx.without_cancel(current()), 0.01)):
                    await asyncio.sleep(LONG)
            assert not outer.is_done()

    run(main())


def test_a_shield_that_exits_without_awaiting_lets_the_outer_block_finish(run):
    async def main():
        ctx, cancel = with_cancel(background())
        async with scope(ctx):
            async with scope(polyctx.without_cancel(current())):
                cancel()
                await asyncio.sleep(0.01)  # the outer scope fires here, and waits
            result = "finished"  # no await after the shield: nothing interrupts
        await asyncio.sleep(0)
        if sys.version_info >= (3, 11):
            assert asyncio.current_task().cancelling() == 0
        return result

    assert run(main()) == "finished"


def test_shielding_defers_every_enclosing_scope_and_the_outermost_reports(run):
    async def main():
        outer_ctx, cancel = with_cancel_cause(background())
        why = RuntimeError("shutdown")
        with pytest.raises(Canceled) as info:
            async with scope(outer_ctx):
                async with scope(with_timeout(current(), 3600)):
                    async with scope(polyctx.without_cancel(current())):
                        cancel(why)
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(LONG)
        if sys.version_info >= (3, 11):
            assert info.value.__cause__ is why  # the outermost scope whose context was done
            assert asyncio.current_task().cancelling() == 0

    run(main())


def test_a_child_task_is_not_shielded_by_its_parents_scope(run):
    async def main():
        async def child():
            async with scope(with_timeout(current(), 0.01)):
                await asyncio.sleep(LONG)

        async with scope(polyctx.without_cancel(current())):
            with pytest.raises(DeadlineExceeded):
                await asyncio.create_task(child())

    run(main())


def test_scopes_that_exit_out_of_order_keep_working(run):
    # An async generator's scope can exit while a scope its consumer entered
    # later is still open: the chain of scopes is mended, nothing breaks.
    async def gen(ctx):
        async with scope(ctx):
            yield

    async def main():
        ctx, cancel = with_cancel(background())
        g = gen(ctx)
        await g.__anext__()
        async with scope(with_timeout(background(), 3600)):
            await g.aclose()
            await asyncio.sleep(0)
        cancel()
        with pytest.raises(DeadlineExceeded):
            async with scope(with_timeout(background(), 0.01)):
                await asyncio.sleep(LONG)

    run(main())


# -- use(): current() without a scope ----------------------------------------------


def test_use_makes_a_context_current_without_cancelling_the_task(run):
    async def main():
        ctx, cancel = with_cancel(background())
        with polyctx.use(ctx) as got:
            assert got is ctx and current() is ctx
            cancel()
            await asyncio.sleep(0.01)  # not cancelled: this code watches ctx itself
            assert current().is_done()
            assert await asyncio.create_task(asyncio.sleep(0, result=current())) is ctx
        assert current() is background()

    run(main())


def test_use_a_pair_cancels_it_at_exit_and_bad_input():
    with polyctx.use(with_timeout(background(), 3600)) as ctx:
        assert current() is ctx and not ctx.is_done()
    assert isinstance(ctx.err(), Canceled) and current() is background()
    with pytest.raises(TypeError, match=r"use\(\) takes a polyctx\.Context"):
        polyctx.use(42)  # type: ignore[arg-type]


def test_partial_results_at_the_deadline(run):
    # The README's pattern: the handler is not cancelled; each call is, in
    # its own scope of the request's context, and the handler keeps what came.
    async def fetch(name, seconds):
        async with scope(current()):
            await asyncio.sleep(seconds)
            return name

    async def handler():
        with polyctx.use(with_timeout(current(), 0.05)):
            calls = [fetch("a", 0.001), fetch("b", 0.002), fetch("slow", LONG)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        return [r for r in results if not isinstance(r, DeadlineExceeded)]

    assert run(handler()) == ["a", "b"]


# -- loop_after_func: callbacks on the loop that registered them ----------------------


def test_loop_after_func_runs_on_the_loop_in_the_registering_context(run):
    var = __import__("contextvars").ContextVar("var", default="unset")

    async def main():
        ctx, cancel = with_cancel(background())
        ran = []
        event = asyncio.Event()

        def on_done():
            ran.append((threading.get_ident(), var.get()))
            event.set()  # an asyncio object: safe here, on its own loop

        var.set("registering task")
        polyctx.loop_after_func(ctx, on_done)
        var.set("changed later")
        threading.Thread(target=cancel).start()
        await asyncio.wait_for(event.wait(), LONG)
        assert ran == [(threading.get_ident(), "registering task")]

    run(main())


def test_loop_after_func_stop_and_done_contexts(run):
    async def main():
        ctx, cancel = with_cancel(background())
        ran = []
        stop = polyctx.loop_after_func(ctx, lambda: ran.append("stopped"))
        assert stop() is True and stop() is False
        cancel()
        done = asyncio.Event()
        stop_late = polyctx.loop_after_func(ctx, done.set)  # already done: soon, on the loop
        await asyncio.wait_for(done.wait(), LONG)
        assert stop_late() is False and ran == []
        assert pending_waits() == 0

    run(main())


def test_loop_after_func_errors_go_to_the_loop_exception_handler(run):
    async def main():
        seen = asyncio.Event()
        errors = []

        def handler(loop, context):
            errors.append(context.get("exception"))
            seen.set()

        asyncio.get_running_loop().set_exception_handler(handler)
        ctx, cancel = with_cancel(background())

        def boom():
            raise ValueError("in loop_after_func")

        polyctx.loop_after_func(ctx, boom)
        cancel()
        await asyncio.wait_for(seen.wait(), LONG)
        assert isinstance(errors[0], ValueError)

    run(main())


def test_loop_after_func_needs_a_running_loop():
    with pytest.raises(RuntimeError, match=r"needs a running event loop.*use after_func"):
        polyctx.loop_after_func(background(), lambda: None)
    with pytest.raises(TypeError, match="fn must be callable"):
        polyctx.loop_after_func(background(), 42)  # type: ignore[arg-type]


# -- awaiting a scope --------------------------------------------------------------------


def test_awaiting_a_scope_is_an_error(run):
    async def main():
        ctx = background()
        with pytest.raises(TypeError, match=r"not awaitable.*async with polyctx\.scope"):
            await scope(ctx)  # type: ignore[misc]
        async with scope(ctx) as s:
            assert s is ctx

    run(main())
