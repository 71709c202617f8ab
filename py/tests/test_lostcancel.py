"""Runtime lostcancel: a cancel function collected without being called warns
with a ResourceWarning that points at where its context was created."""

from __future__ import annotations

import asyncio
import gc
import sys
import warnings

import pytest

import polyctx
from polyctx import background, with_cancel, with_cancel_cause, with_timeout


def forget_a_cancel():
    ctx, _cancel = with_timeout(background(), 3600)  # the line the warning names
    return ctx


CREATED_AT = forget_a_cancel.__code__.co_firstlineno + 1


def test_forgotten_cancel_warns_naming_the_creation_line():
    with pytest.warns(ResourceWarning) as record:
        forget_a_cancel()
        gc.collect()
    assert len(record) == 1
    w = record[0]
    assert w.filename == __file__ and w.lineno == CREATED_AT
    assert f"{__file__}:{CREATED_AT}" in str(w.message)
    assert "never" in str(w.message) or "without being called" in str(w.message)


@pytest.mark.parametrize("make", [with_cancel, with_cancel_cause])
def test_every_kind_of_cancel_function_warns(make):
    with pytest.warns(ResourceWarning):
        make(background())
        gc.collect()


def test_called_cancel_functions_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        ctx, cancel = with_cancel(background())
        cancel()
        del ctx, cancel
        with with_timeout(background(), 3600) as (ctx, _):
            pass
        del ctx, _

        async def main():
            async with polyctx.scope(with_timeout(polyctx.current(), 3600)):
                pass

        asyncio.run(main())
        gc.collect()


def test_warning_as_error_is_reported_not_raised():
    seen = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            forget_a_cancel()
            gc.collect()
    finally:
        sys.unraisablehook = old
    assert len(seen) == 1 and isinstance(seen[0], ResourceWarning)


def test_pending_exception_survives_the_warning():
    with pytest.warns(ResourceWarning), pytest.raises(KeyError):
        try:
            raise KeyError("in flight")
        finally:
            forget_a_cancel()
