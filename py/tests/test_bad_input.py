"""Bad input raises TypeError or ValueError with a clear message; never a crash or hang."""

from __future__ import annotations

import math

import pytest

import polyctx
from polyctx import Key, after_func, background, cause, with_cancel, with_cancel_cause, with_deadline, with_timeout

NOT_CONTEXTS = [None, 1, "ctx", object(), polyctx.background]


@pytest.mark.parametrize("parent", NOT_CONTEXTS)
def test_parents_must_be_contexts(parent):
    for make in (
        polyctx.with_cancel,
        polyctx.with_cancel_cause,
        polyctx.without_cancel,
        lambda p: polyctx.with_timeout(p, 1),
        lambda p: polyctx.with_deadline(p, 1),
        lambda p: polyctx.with_value(p, Key("k"), 1),
    ):
        with pytest.raises(TypeError, match=r"parent must be a polyctx\.Context"):
            make(parent)
    with pytest.raises(TypeError, match=r"ctx must be a polyctx\.Context"):
        cause(parent)
    with pytest.raises(TypeError, match=r"ctx must be a polyctx\.Context"):
        after_func(parent, lambda: None)


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf])
def test_durations_must_be_finite(seconds):
    with pytest.raises(ValueError, match="seconds must be"):
        with_timeout(background(), seconds)
    with pytest.raises(ValueError, match="when must be"):
        with_deadline(background(), seconds)
    ctx, cancel = with_cancel(background())
    with pytest.raises(ValueError, match="timeout must be"):
        ctx.wait(seconds)
    cancel()


@pytest.mark.parametrize("seconds", ["1", b"1", None, [1], 1j])
def test_durations_must_be_numbers(seconds):
    with pytest.raises(TypeError, match="must be a number of seconds"):
        with_timeout(background(), seconds)
    with pytest.raises(TypeError, match="must be a number of seconds"):
        with_deadline(background(), seconds)


def test_numbers_of_any_real_type_are_durations():
    from datetime import timedelta
    from decimal import Decimal
    from fractions import Fraction

    for seconds in (1, 1.5, True, Fraction(1, 2), Decimal("0.5"), timedelta(milliseconds=500), 10**9, -(10**9)):
        _ctx, cancel = with_timeout(background(), seconds)
        cancel()


@pytest.mark.parametrize("seconds", [10**30, -(10**30), 1e300, 9.3e9])
def test_durations_beyond_292_years_are_errors(seconds):
    # The core's one rule for every binding: beyond 2**63 - 1 nanoseconds.
    with pytest.raises(ValueError, match=r"seconds must be finite and within about 292 years .*use with_cancel"):
        with_timeout(background(), seconds)
    ctx, cancel = with_cancel(background())
    with pytest.raises(ValueError, match="timeout must be finite"):
        ctx.wait(seconds)
    cancel()


def test_causes_must_be_exception_instances():
    ctx, cancel = with_cancel_cause(background())
    with pytest.raises(TypeError, match="exception class; pass an instance"):
        cancel(ValueError)
    with pytest.raises(TypeError, match="cause must be an exception instance or None, not str"):
        cancel("why")
    with pytest.raises(TypeError, match="cause must be an exception"):
        with_timeout(background(), 1, cause=42)
    assert not ctx.is_done()
    cancel(KeyboardInterrupt())  # any BaseException will do
    assert isinstance(cause(ctx), KeyboardInterrupt)


def test_plain_cancel_takes_no_cause():
    _ctx, cancel = with_cancel(background())
    with pytest.raises(TypeError):
        cancel(ValueError("x"))
    cancel()


def test_keys_and_values():
    with pytest.raises(TypeError, match="Key name must be a str"):
        Key(1)
    with pytest.raises(TypeError, match=r"key must be a polyctx\.Key"):
        background().value("k")
    with pytest.raises(TypeError, match=r"key must be a polyctx\.Key"):
        polyctx.with_value(background(), "k", 1)


def test_after_func_needs_a_callable():
    with pytest.raises(TypeError, match="fn must be callable"):
        after_func(background(), 42)


def test_contexts_cannot_be_made_or_subclassed_directly():
    with pytest.raises(TypeError):
        polyctx.Context()
    with pytest.raises(TypeError):

        class Mine(polyctx.Context):  # type: ignore[misc]
            pass


def test_a_wall_clock_timestamp_is_not_a_deadline():
    import time

    # time.time() is decades ahead of time.monotonic(), whose clock starts at boot.
    with pytest.raises(ValueError, match=r"time\.monotonic\(\) reading.*looks like a time\.time\(\)") as info:
        with_deadline(background(), time.time() + 1)
    assert "aware datetime" in str(info.value) and "with_timeout" in str(info.value)
    ctx, cancel = with_deadline(background(), time.monotonic() + 5 * 365 * 86400)  # far, but a monotonic reading
    assert not ctx.is_done()
    cancel()


def test_deadlines_as_datetimes():
    import time
    from datetime import datetime, timedelta, timezone

    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    ctx, cancel = with_deadline(background(), soon)
    assert ctx.deadline() == pytest.approx(time.monotonic() + 3600, abs=5)
    cancel()
    past = datetime.now(timezone(timedelta(hours=-7))) - timedelta(seconds=1)
    ctx, cancel = with_deadline(background(), past)
    assert isinstance(ctx.err(), polyctx.DeadlineExceeded)
    cancel()
    with pytest.raises(ValueError, match=r"naive datetime.*time zone"):
        with_deadline(background(), datetime.now())
    with pytest.raises(TypeError, match="not a timedelta; for a duration, use with_timeout"):
        with_deadline(background(), timedelta(seconds=1))
    with pytest.raises(TypeError, match="seconds must be a number of seconds, not datetime"):
        with_timeout(background(), soon)
