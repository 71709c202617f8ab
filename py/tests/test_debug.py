"""polyctx.debug: live-context tracking with Python creation sites, the
core's lost-cancel count and hook, and what is pending (timers, after-funcs)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import warnings

import pytest

import polyctx
from polyctx import Group, Key, after_func, background, debug, with_cancel, with_timeout, with_value


@pytest.fixture
def tracking():
    debug.track(True)
    try:
        yield
    finally:
        debug.track(False)


def line_of(marker: str) -> int:
    """The line of this file holding `marker` (a comment)."""
    with open(__file__) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith(f"# {marker}"):
                return n
    raise AssertionError(marker)


def ours(snap):
    return [c for c in snap if c.site and c.site.startswith(__file__)]


def test_tracked_contexts_are_listed_as_a_tree_with_their_python_lines(tracking):
    request, cancel = with_timeout(background(), 3600)  # made-request
    traced = with_value(request, Key("trace-id"), "4bf92f35")  # made-traced
    call, cancel_call = with_cancel(traced)  # made-call
    snap = debug.snapshot()
    mine = ours(snap)
    assert [c.kind for c in mine] == ["WithDeadline", "WithValue", "WithCancel"]
    assert [c.site for c in mine] == [f"{__file__}:{line_of(m)}" for m in ("made-request", "made-traced", "made-call")]
    assert mine[1].parent == mine[0].id and mine[2].parent == mine[1].id and mine[0].parent is None
    assert 3500 < mine[0].deadline_in <= 3600 and mine[2].deadline_in is not None  # inherited
    assert all(c.err is None and c.age >= 0 for c in mine) and len(snap.running) >= 2
    text = str(snap)
    assert "WithDeadline age " in text and f"made at {__file__}:{line_of('made-call')}" in text
    assert text.index("WithValue") < text.index("WithCancel")
    cancel_call()
    assert [c.err for c in ours(debug.snapshot())] == [None, None, "context canceled"]
    cancel()
    del request, traced, call, cancel, cancel_call
    gc.collect()
    assert ours(debug.snapshot()) == []  # freed: no longer listed


def test_tracking_off_lists_nothing_new_and_sites_skip_polyctx_itself(run):
    debug.track(False)
    _ctx, cancel = with_cancel(background())  # untracked
    assert not any(c.site == f"{__file__}:{line_of('untracked')}" for c in debug.snapshot())
    cancel()

    async def call(ctx):
        return [c for c in debug.snapshot().running if c.kind == "WithCancel"]

    async def main():
        debug.track(True)
        try:
            async with Group(background()) as g:  # group-line
                task = g.spawn(call)
        finally:
            debug.track(False)
        return task.result()

    listed = run(main())
    assert [c.site for c in listed if c.site and c.site.startswith(__file__)] == [f"{__file__}:{line_of('group-line')}"]


def test_set_site_names_a_context_made_elsewhere(tracking):
    inner, cancel = with_cancel(background())
    debug.set_site(inner, "worker.c:42")  # as C code would, whose line Python cannot see
    assert any(c.site == "worker.c:42" for c in debug.snapshot())
    cancel()
    with pytest.raises(TypeError):
        debug.set_site("ctx", "x")  # type: ignore[arg-type]


def forget(make):
    ctx, _cancel = make(background())  # forgotten here
    return ctx


def test_lost_cancels_are_counted_and_reported_with_the_site(tracking):
    reports = []
    debug.set_lost_cancel_hook(reports.append)
    try:
        before = debug.lost_cancels()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            forget(with_cancel)
            gc.collect()
            # Canceled, past its deadline, or never cancelable: not lost.
            ctx, cancel = with_cancel(background())
            cancel()
            del ctx, cancel
            forget(lambda p: with_timeout(p, -1))
            with_value(background(), Key("k"), 1)
            gc.collect()
        assert debug.lost_cancels() - before == 1
        assert reports == [debug.LostCancel("context.Background.WithCancel", f"{__file__}:{line_of('forgotten here')}")]
    finally:
        debug.set_lost_cancel_hook(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        forget(with_cancel)
        gc.collect()
    assert len(reports) == 1  # the hook is gone


def test_the_resource_warning_and_the_core_see_the_same_forgotten_cancel():
    before = debug.lost_cancels()
    with pytest.warns(ResourceWarning, match="forgotten|without being called") as record:
        forget(lambda p: with_timeout(p, 3600))
        gc.collect()
    assert len(record) == 1 and debug.lost_cancels() == before + 1


def test_a_failing_hook_is_reported_not_raised_and_pending_exceptions_survive():
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)

    def hook(lost):
        raise RuntimeError("hook failed")

    debug.set_lost_cancel_hook(hook)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            with pytest.raises(KeyError):
                try:
                    raise KeyError("in flight")
                finally:
                    forget(with_cancel)
                    gc.collect()
    finally:
        debug.set_lost_cancel_hook(None)
        sys.unraisablehook = old
    assert any(isinstance(e, RuntimeError) and str(e) == "hook failed" for e in seen)
    with pytest.raises(TypeError, match="callable"):
        debug.set_lost_cancel_hook(42)  # type: ignore[arg-type]


def test_a_hook_may_remove_itself_and_free_contexts():
    calls = []

    def hook(lost):
        calls.append(lost)
        debug.set_lost_cancel_hook(None)  # from inside the hook: no deadlock
        forget(with_cancel)  # a context the hook frees: counted, not reported
        gc.collect()

    before = debug.lost_cancels()
    debug.set_lost_cancel_hook(hook)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        forget(with_cancel)
        gc.collect()
        forget(with_cancel)
        gc.collect()
    assert len(calls) == 1 and debug.lost_cancels() == before + 3


def test_the_hook_runs_on_the_thread_that_frees_the_context():
    threads = []
    debug.set_lost_cancel_hook(lambda lost: threads.append(threading.get_ident()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            t = threading.Thread(target=lambda: (forget(with_cancel), gc.collect()))
            t.start()
            t.join(30)
    finally:
        debug.set_lost_cancel_hook(None)
    assert threads == [t.ident]


def test_live_timers_and_pending_after_funcs(run):
    gc.collect()
    timers, pending = debug.live_timers(), debug.pending_after_funcs()
    ctx, cancel = with_timeout(background(), 3600)
    ran = threading.Event()
    after_func(ctx, ran.set)
    assert debug.live_timers() == timers + 1 and debug.pending_after_funcs() == pending + 1

    async def main():
        polyctx.loop_after_func(ctx, lambda: None)
        assert debug.pending_after_funcs() == pending + 2
        cancel()
        assert ran.wait(30)
        for _ in range(1000):  # the loop hands its callback over on its next turns
            if debug.pending_after_funcs() == pending:
                break
            await asyncio.sleep(0.001)

    run(main())
    assert debug.live_timers() == timers and debug.pending_after_funcs() == pending
