"""Checked, not run: `make lint-py` type-checks this file with mypy --strict
and pyright, each failing on an unneeded `ignore` comment, so the lines
marked as errors must stay errors and the rest must stay precisely typed."""

from __future__ import annotations

import asyncio
import time
from asyncio import Future
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Union

from typing_extensions import assert_type

import polyctx
from polyctx import CancelCauseFunc, CancelCausePair, CancelFunc, CancelPair, Context, Key, StopFunc

REQUEST_ID = Key[str]("request-id")
ANY_KEY = Key("anything")


def pairs() -> None:
    ctx, cancel = polyctx.with_timeout(polyctx.background(), 2.0)
    assert_type(ctx, Context)
    assert_type(cancel, CancelFunc)
    ctx2, cancel2 = polyctx.with_cancel_cause(ctx)
    assert_type(cancel2, CancelCauseFunc)
    cancel2(ValueError("why"))
    cancel2()
    cancel(ValueError("no cause here"))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    assert_type(polyctx.with_cancel(ctx), CancelPair)
    assert_type(polyctx.with_deadline(ctx, time.monotonic() + 1), CancelPair)
    assert_type(polyctx.with_deadline(ctx, datetime.now(timezone.utc)), CancelPair)
    assert_type(polyctx.with_timeout(ctx, timedelta(seconds=1)), CancelPair)
    assert_type(polyctx.with_cancel_cause(ctx), CancelCausePair)
    assert_type(polyctx.with_cancel_cause(ctx).cancel, CancelCauseFunc)
    assert_type(polyctx.with_cancel(ctx).context, Context)
    del ctx2
    polyctx.with_timeout(ctx, "1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def with_block_returns() -> int:
    # __exit__ returns None: the block cannot swallow the return below.
    with polyctx.with_timeout(polyctx.background(), 2.0) as (ctx, cancel):
        assert_type(ctx, Context)
        assert_type(cancel, CancelFunc)
        return 1


def values() -> None:
    ctx = polyctx.with_value(polyctx.background(), REQUEST_ID, "r-1")
    assert_type(ctx.value(REQUEST_ID), "str | None")
    assert_type(ANY_KEY, Key[Any])
    polyctx.with_value(ctx, REQUEST_ID, 42)  # type: ignore[misc]  # pyright: ignore[reportArgumentType]


async def scopes() -> None:
    async with polyctx.scope(polyctx.with_timeout(polyctx.current(), 2.0)) as ctx:
        assert_type(ctx, Context)
    async with polyctx.scope(polyctx.with_cancel_cause(polyctx.current())) as ctx:
        assert_type(ctx, Context)
    await polyctx.scope(polyctx.current())  # type: ignore[misc]  # pyright: ignore[reportGeneralTypeIssues]
    with polyctx.use(polyctx.with_timeout(polyctx.current(), 1)) as used:
        assert_type(used, Context)
    assert_type(polyctx.current().done(), Future[None])
    assert_type(polyctx.loop_after_func(polyctx.current(), lambda: None), StopFunc)
    assert_type(polyctx.cause(polyctx.current()), "BaseException | None")
    assert_type(polyctx.__version__, str)


async def patterns() -> None:
    async def fetch(ctx: Context, url: str) -> bytes:
        return url.encode()

    async with polyctx.Group(polyctx.current(), limit=2) as g:
        assert_type(g.spawn(fetch, "/a"), asyncio.Task[bytes])
        assert_type(g.context, Context)

    async def flaky() -> int:
        return 1

    assert_type(await polyctx.retry(polyctx.current(), flaky, retry_on=ConnectionError), int)
    backoff = polyctx.Backoff(initial=0.1, max_attempts=3)
    assert_type(backoff.next(polyctx.current(), 1), Union[float, Literal["attempts", "deadline", "canceled"]])
    await polyctx.sleep(polyctx.current(), 0.5)
    assert_type(await polyctx.wait_for(polyctx.current(), flaky()), int)
    await polyctx.retry(polyctx.current(), flaky)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


def debugging() -> None:
    snap = polyctx.debug.snapshot()
    assert_type(snap.running, "tuple[polyctx.debug.TrackedContext, ...]")
    assert_type(polyctx.debug.lost_cancels(), int)
    polyctx.debug.set_lost_cancel_hook(lambda lost: print(lost.context, lost.site))
