"""What only the Python API has: its clock, its objects, threads and the
GIL, pairs, repr, pickling and types. Go's semantics themselves are tested
once, against Go, by tests/conformance (the Python runner performs every
scenario through this API)."""

from __future__ import annotations

import copy
import pickle
import re
import threading
import time

import pytest

import polyctx
from polyctx import (
    Canceled,
    Key,
    after_func,
    background,
    cause,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_timeout,
    with_value,
)

# Generous: the suite runs on loaded 2-core machines. Waits return as soon as
# the context is done, so a long limit costs nothing when things work.
LONG = 10.0


def test_first_cause_wins_and_is_the_same_object():
    ctx, cancel = with_cancel_cause(background())
    first, second = ValueError("first"), ValueError("second")
    cancel(first)
    cancel(second)
    assert cause(ctx) is first
    err = ctx.err()
    assert isinstance(err, Canceled)
    assert err.__cause__ is first


def test_deadline_uses_time_monotonic():
    when = time.monotonic() + 3600
    ctx, cancel = with_deadline(background(), when)
    assert ctx.deadline() == pytest.approx(when, abs=1e-6)
    timed, cancel_timed = with_timeout(background(), 60)
    before = time.monotonic()
    assert before + 59 < timed.deadline() <= before + 60
    cancel()
    cancel_timed()


def test_long_timeouts_are_far_away():
    ctx, cancel = with_timeout(background(), 200 * 365 * 86400)
    assert ctx.deadline() > time.monotonic() + 100 * 365 * 86400
    assert not ctx.is_done()
    cancel()


def test_values_are_the_stored_objects():
    key = Key("obj")
    obj = object()
    assert with_value(background(), key, obj).value(key) is obj
    assert with_value(background(), key, None).value(key) is None


def test_after_func_runs_once_on_its_own_thread():
    ctx, cancel = with_cancel(background())
    ran = []
    done = threading.Event()

    def f():
        ran.append(threading.get_ident())
        done.set()

    stop = after_func(ctx, f)
    assert not done.wait(0.01)
    cancel()
    cancel()
    assert done.wait(LONG)
    assert ran == [ran[0]] and ran[0] != threading.get_ident()
    assert stop() is False


def test_after_funcs_that_wait_for_each_other_all_run():
    """Python after-funcs run in batches under one GIL hold; one that blocks
    (releasing the GIL) must not hold up those queued behind it."""
    ctx, cancel = with_cancel(background())
    last = threading.Event()
    finished = []
    all_done = threading.Event()

    def note(what):
        finished.append(what)
        if len(finished) == 52:
            all_done.set()

    after_func(ctx, lambda: note(("first", last.wait(LONG))))
    for i in range(50):
        after_func(ctx, lambda i=i: note(i))
    after_func(ctx, lambda: (last.set(), note("last")))
    cancel()
    assert all_done.wait(LONG)
    assert ("first", True) in finished


def test_after_func_exception_is_reported_not_lost():
    ctx, cancel = with_cancel(background())
    seen = []
    reported = threading.Event()

    def hook(unraisable):
        seen.append(unraisable.exc_value)
        reported.set()

    old = __import__("sys").unraisablehook
    __import__("sys").unraisablehook = hook
    try:

        def boom():
            raise ValueError("in after_func")

        after_func(ctx, boom)
        cancel()
        assert reported.wait(LONG)
    finally:
        __import__("sys").unraisablehook = old
    assert isinstance(seen[0], ValueError)


def test_wait_blocks_until_done_from_another_thread():
    ctx, cancel = with_cancel(background())
    threading.Timer(0.02, cancel).start()
    assert ctx.wait() is True
    assert ctx.wait(0) is True


def test_wait_times_out_on_live_context():
    ctx, cancel = with_cancel(background())
    assert ctx.wait(0.01) is False
    assert ctx.wait(-1) is False
    cancel()


def test_wait_releases_the_gil():
    ctx, cancel = with_cancel(background())
    counted = []

    def spin():
        n = 0
        while not ctx.is_done():
            n += 1
        counted.append(n)

    t = threading.Thread(target=spin)
    t.start()
    assert not ctx.wait(0.1)  # the spinning thread runs meanwhile
    cancel()
    t.join()
    assert counted[0] > 0


def test_pair_unpacks_indexes_and_cancels_on_exit():
    pair = with_cancel(background())
    ctx, cancel = pair
    assert pair[0] is ctx and pair[1] is cancel and pair[-1] is cancel and len(pair) == 2
    assert pair.context is ctx and pair.cancel is cancel
    with pytest.raises(IndexError):
        pair[2]
    with with_timeout(background(), 3600) as (inner, _inner_cancel):
        assert not inner.is_done()
    assert isinstance(inner.err(), Canceled)
    with pytest.raises(KeyError):
        with with_cancel(background()) as (raised, _):
            raise KeyError("x")
    assert raised.is_done()
    cancel()


def test_repr_shows_the_chain():
    ctx, cancel = with_cancel(background())
    assert repr(ctx) == "<polyctx.Context context.Background.WithCancel>"
    timed, cancel_timed = with_timeout(ctx, 3600)
    assert ".WithCancel.WithDeadline(" in repr(timed)
    assert repr(with_value(ctx, Key("k"), "v")).endswith(".WithValue(k, <value>)>")
    assert "without" not in repr(ctx)
    cancel()
    cancel_timed()


def test_context_equality_and_hash_follow_identity():
    ctx, cancel = with_cancel(background())
    same = polyctx.with_value(ctx, Key("k"), 1)
    assert ctx == ctx and ctx != same
    assert hash(ctx) == hash(ctx)
    assert {ctx: 1}[ctx] == 1
    cancel()


def test_many_threads_cancel_and_wait_at_once():
    root, cancel_root = with_cancel(background())
    children = [with_cancel(root) for _ in range(50)]
    woke = []
    threads = [threading.Thread(target=lambda c=c: woke.append(c.wait(LONG))) for c, _ in children]
    for t in threads:
        t.start()
    cancel_root()
    for t in threads:
        t.join()
    assert woke == [True] * 50
    for _, cancel in children:
        cancel()


def test_version():
    from importlib.metadata import version

    assert polyctx.__version__ == version("polyctx")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", polyctx.__version__)


def test_live_handles_cannot_be_pickled_or_copied_and_say_why():
    ctx, cancel = with_cancel(background())
    _, cancel_cause = with_cancel_cause(ctx)
    for obj, name in ((ctx, "Context"), (cancel, "CancelFunc"), (cancel_cause, "CancelCauseFunc")):
        for how in (pickle.dumps, copy.copy, copy.deepcopy):
            with pytest.raises(TypeError, match=rf"cannot pickle or copy polyctx\.{name}: it is a live handle"):
                how(obj)
    with pytest.raises(TypeError, match=r"cannot pickle or copy polyctx\.Context"), with_cancel(ctx) as pair:
        pickle.dumps(pair)
    cancel_cause()
    with pytest.raises(TypeError, match=r"cannot pickle or copy polyctx\.StopFunc"):
        pickle.dumps(after_func(ctx, lambda: None))
    key = Key("k")
    with pytest.raises(TypeError, match=r"cannot pickle polyctx\.Key: a key is unique by identity"):
        pickle.dumps(key)
    assert copy.copy(key) is key and copy.deepcopy({"k": key})["k"] is key
    cancel()


def test_pairs_are_tuples_with_their_kind_of_cancel_function():
    pair = with_timeout(background(), 3600)
    assert isinstance(pair, tuple) and isinstance(pair, polyctx.CancelPair) and len(pair) == 2
    assert type(pair.cancel) is polyctx.CancelFunc and pair == (pair.context, pair.cancel)
    cause_pair = with_cancel_cause(background())
    assert isinstance(cause_pair, polyctx.CancelCausePair) and type(cause_pair[1]) is polyctx.CancelCauseFunc
    assert repr(cause_pair).startswith("CancelCausePair(<polyctx.Context context.Background.WithCancel>")
    for p in (pair, cause_pair):
        p.cancel()


def test_keys_are_generic_for_type_checkers():
    key = Key[int]("count")
    assert type(key) is Key and key.name == "count"
    assert with_value(background(), key, 3).value(key) == 3
