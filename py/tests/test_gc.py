"""The cycle collector sees the Python objects the core holds (values,
causes), through exactly one owner each (see py/src/gc.rs): cycles through
contexts are freed, and objects still in use are never cleared."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import subprocess
import sys
import textwrap
import weakref

import pytest

import polyctx
from polyctx import (
    CancelCauseFunc,
    CancelFunc,
    Context,
    Key,
    background,
    cause,
    with_cancel,
    with_cancel_cause,
    with_timeout,
    with_value,
)

N = 2_000
KEY = Key("obj")
# Cycles that keep a cancel function are freed without it being called.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Marker:
    pass


def alive(refs: list[weakref.ref[Marker]]) -> int:
    gc.collect()
    polyctx.background()  # any call into the native module flushes deferred decrefs
    gc.collect()
    return sum(r() is not None for r in refs)


def test_a_cause_caught_in_the_frame_that_holds_the_context_is_freed():
    def handler() -> weakref.ref[Marker]:
        marker = Marker()  # stands for the frame's locals (a request, buffers)
        ctx, cancel = with_cancel_cause(background())
        try:
            raise ValueError("failed")
        except Exception as e:
            cancel(e)  # e.__traceback__ -> this frame -> ctx -> e
        assert cause(ctx) is not None
        return weakref.ref(marker)

    assert alive([handler() for _ in range(N)]) == 0


def test_a_cause_caught_in_a_frame_that_holds_only_the_cancel_function_is_freed():
    def handler(ctx_and_cancel: tuple[Context, CancelCauseFunc]) -> weakref.ref[Marker]:
        marker = Marker()
        cancel = ctx_and_cancel[1]
        del ctx_and_cancel
        try:
            raise ValueError("failed")
        except Exception as e:
            cancel(e)
        return weakref.ref(marker)

    assert alive([handler(with_cancel_cause(background())) for _ in range(N)]) == 0


def test_a_value_that_refers_to_its_own_context_is_freed():
    def make() -> weakref.ref[Marker]:
        obj = Marker()
        obj.ctx = with_value(background(), KEY, obj)  # type: ignore[attr-defined]
        return weakref.ref(obj)

    assert alive([make() for _ in range(N)]) == 0


def test_a_value_that_refers_to_a_descendant_context_is_freed():
    def make() -> weakref.ref[Marker]:
        obj = Marker()
        obj.ctx, obj.cancel = with_cancel(with_value(background(), KEY, obj))  # type: ignore[attr-defined]
        obj.grandchild = with_value(obj.ctx, Key("other"), 1)  # type: ignore[attr-defined]
        return weakref.ref(obj)

    assert alive([make() for _ in range(N)]) == 0


def test_a_deadline_cause_that_refers_to_its_context_is_freed():
    def make(fire: bool) -> weakref.ref[Marker]:
        why = TimeoutError("budget")
        why.marker = Marker()  # type: ignore[attr-defined]
        why.ctx, why.cancel = with_timeout(background(), -1 if fire else 3600, cause=why)  # type: ignore[attr-defined]
        if not fire:
            why.cancel()  # type: ignore[attr-defined]
        return weakref.ref(why.marker)  # type: ignore[attr-defined]

    assert alive([make(fire=i % 2 == 0) for i in range(N)]) == 0


def test_an_inherited_cause_that_refers_to_a_child_is_freed():
    def make() -> weakref.ref[Marker]:
        parent, cancel = with_cancel_cause(background())
        child, cancel_child = with_cancel(parent)
        why = ValueError("shutdown")
        why.marker = Marker()  # type: ignore[attr-defined]
        why.child, why.cancel_child = child, cancel_child  # type: ignore[attr-defined]
        cancel(why)
        assert cause(child) is why
        return weakref.ref(why.marker)  # type: ignore[attr-defined]

    assert alive([make() for _ in range(N)]) == 0


def test_handlers_that_record_a_failure_as_the_cause_are_freed():
    async def handler(refs: list[weakref.ref[Marker]]) -> None:
        request = Marker()
        refs.append(weakref.ref(request))
        ctx, cancel = with_cancel_cause(polyctx.current())
        async with polyctx.scope(with_timeout(ctx, 30)):
            try:
                raise ConnectionError("backend failed")
            except Exception as e:
                cancel(e)

    async def main() -> list[weakref.ref[Marker]]:
        refs: list[weakref.ref[Marker]] = []
        for _ in range(N // 4):
            await handler(refs)
        return refs

    assert alive(asyncio.run(main())) == 0


def referents(obj: object) -> list[object]:
    """What `obj`'s tp_traverse visits, less its (heap) type."""
    return [r for r in gc.get_referents(obj) if r is not type(obj)]


def test_each_held_reference_is_visited_by_one_owner():
    value = Marker()
    parent = with_value(background(), KEY, value)
    assert [r for r in referents(parent) if r is value] == [value, value]  # the node's and its own
    assert referents(parent)[0] is background()  # its parent, which owns nothing
    assert referents(background()) == []
    child, cancel = with_cancel_cause(parent)
    assert value not in referents(child) and parent in referents(child)
    assert child in referents(cancel)
    assert referents(with_value(child, Key("k"), 1)).count(child) == 1

    why = ValueError("why")
    cancel(why)
    assert referents(child).count(why) == 1  # given here
    grandchild, cancel_grandchild = with_cancel(child)
    assert why not in referents(grandchild)  # inherited: its owner is `child`
    cancel_grandchild()

    deadline_cause = TimeoutError("budget")
    timed, cancel_timed = with_timeout(background(), -1, cause=deadline_cause)
    assert cause(timed) is deadline_cause
    assert referents(timed).count(deadline_cause) == 1
    cancel_timed()


def test_contexts_handed_to_c_stop_visiting_what_their_nodes_hold():
    lib = polyctx.c_library()
    lib.ctx_release.argtypes = [ctypes.c_void_p]
    value = Marker()
    parent = with_value(background(), KEY, value)
    child = with_value(parent, Key("k"), 1)
    ptr = child.to_c()  # C may keep child, and so parent, past Python's references
    assert referents(parent).count(value) == 1  # its own reference only
    again = Context.from_c(ptr)
    assert again == child and referents(again) == []  # not an owner
    lib.ctx_release(ptr)


def counts(objs: tuple[object, ...]) -> list[int]:
    return [sys.getrefcount(objs[i]) for i in range(len(objs))]


def visits(payload: object) -> int:
    kinds = (Context, CancelFunc, CancelCauseFunc)
    return sum(r is payload for o in gc.get_objects() if isinstance(o, kinds) for r in gc.get_referents(o))


def test_visits_match_the_references_polyctx_holds():
    # The collector subtracts one per visit: more visits than references would
    # make a live object look like garbage.
    payloads = value, why, deadline_cause = Marker(), ValueError("why"), TimeoutError("late")
    baselines = counts(payloads)
    keep = []
    root, cancel_root = with_cancel_cause(background())
    for i in range(20):
        ctx = with_value(root, Key(f"k{i}"), value)
        child, cancel = with_cancel(ctx)
        timed, cancel_timed = with_timeout(child, 3600, cause=deadline_cause)
        keep += [ctx, child, cancel, timed, cancel_timed, polyctx.without_cancel(timed)]
    cancel_root(why)  # inherited by every descendant
    held = [now - before for now, before in zip(counts(payloads), baselines)]
    assert [visits(obj) for obj in payloads] == held
    assert min(held) > 0
    del keep, ctx, child, cancel, timed, cancel_timed
    cancel_root()


def test_objects_in_use_are_never_cleared_by_the_collector():
    value = Marker()
    value.data = [1, 2, 3]  # type: ignore[attr-defined]
    why = ValueError("kept")
    why.data = [4]  # type: ignore[attr-defined]
    root, cancel_root = with_cancel_cause(background())
    contexts = []
    for i in range(50):
        ctx = with_value(root, Key(f"k{i}"), value)
        contexts.append(with_cancel(ctx))
        contexts.append(with_timeout(ctx, 3600, cause=why))
    cancel_root(why)
    for _ in range(5):
        gc.collect()
    assert value.data == [1, 2, 3] and why.data == [4]  # type: ignore[attr-defined]
    assert all(c.value(Key("x")) is None and cause(c) is why for c, _ in contexts)
    for _, cancel in contexts:
        cancel()


def test_freeing_a_very_long_chain_does_not_recurse():
    # Each context holds its parent: freeing the last handle of a chain frees
    # them all, iteratively (a recursive free overflows the C stack).
    code = textwrap.dedent(
        """
        import polyctx
        key = polyctx.Key("k")
        ctx = polyctx.background()
        for i in range(300_000):
            ctx = polyctx.with_value(ctx, key, i)
        assert ctx.value(key) == 299_999
        del ctx
        print("freed")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "freed", out.stderr[-2000:]
