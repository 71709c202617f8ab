"""Values, causes, callbacks and waits are released: checked with weakref."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import polyctx
from polyctx import Key, after_func, background, cause, with_cancel, with_cancel_cause, with_value


class Obj:
    pass


class Boom(Exception):
    pass


def collected(ref: weakref.ref) -> bool:
    gc.collect()
    polyctx.background()  # any call into the native module flushes deferred decrefs
    gc.collect()
    return ref() is None


def test_values_are_released_with_their_contexts():
    key, obj = Key("k"), Obj()
    ref = weakref.ref(obj)
    ctx = with_value(background(), key, obj)
    child, cancel = with_cancel(ctx)
    del obj, ctx
    assert not collected(ref)  # the child keeps its parent's value alive
    assert child.value(key) is ref()
    cancel()
    del child, cancel
    assert collected(ref)


def test_shadowed_and_chained_values_are_released():
    key = Key("k")
    objs = [Obj() for _ in range(100)]
    refs = [weakref.ref(o) for o in objs]
    ctx = background()
    for o in objs:
        ctx = with_value(ctx, key, o)
    del objs, o
    assert ctx.value(key) is refs[-1]()
    del ctx
    assert all(collected(r) for r in refs)


def test_causes_are_released_with_their_contexts():
    ctx, cancel = with_cancel_cause(background())
    why = Boom("x")
    ref = weakref.ref(why)
    cancel(why)
    assert cause(ctx) is why
    del why
    assert not collected(ref)
    del ctx, cancel
    assert collected(ref)


def test_after_func_is_released_when_stopped_or_run():
    ctx, cancel = with_cancel(background())
    ran = threading.Event()

    class Fn:
        def __call__(self):
            ran.set()

    stopped_fn, run_fn = Fn(), Fn()
    stopped_ref, run_ref = weakref.ref(stopped_fn), weakref.ref(run_fn)
    stop = after_func(ctx, stopped_fn)
    after_func(ctx, run_fn)
    del stopped_fn, run_fn
    assert stop()
    assert collected(stopped_ref)
    cancel()
    assert ran.wait(10)
    for _ in range(1000):
        if collected(run_ref):
            break
        threading.Event().wait(0.01)
    assert run_ref() is None


def test_waits_and_scopes_are_released():
    async def main():
        ctx, cancel = with_cancel(background())
        fut = ctx.done()
        fut_ref = weakref.ref(fut)
        scope = polyctx.scope(ctx)
        scope_ref = weakref.ref(scope)
        async with scope:
            pass
        cancel()
        await fut
        del fut, scope
        await asyncio.sleep(0)
        assert collected(fut_ref) and collected(scope_ref)

    asyncio.run(main())


def test_contexts_do_not_leak_under_churn():
    key = Key("k")
    obj = Obj()
    ref = weakref.ref(obj)
    root, cancel_root = with_cancel(background())
    for _ in range(10_000):
        ctx, cancel = with_cancel(with_value(root, key, obj))
        cancel()
    del ctx, cancel, obj
    cancel_root()
    assert collected(ref)


def test_a_caught_exception_as_cause_without_its_traceback_is_released():
    # No cycle here, so reference counting alone frees it (test_gc.py has the cycles).
    def handler():
        obj = Obj()
        ctx, cancel = with_cancel_cause(with_value(background(), Key("k"), obj))
        try:
            raise ValueError("failed")
        except ValueError as e:
            cancel(e.with_traceback(None))
        assert isinstance(cause(ctx), ValueError)
        return weakref.ref(obj)

    assert collected(handler())
