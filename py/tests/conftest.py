from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Coroutine
from typing import Any, Callable, TypeVar

import pytest

T = TypeVar("T")

LOOPS = ["asyncio"]
try:
    import uvloop

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover - uvloop is a pinned test dependency
    uvloop = None


@pytest.fixture(params=LOOPS)
def loop_factory(request: pytest.FixtureRequest) -> Callable[[], asyncio.AbstractEventLoop]:
    """Makes new event loops of each kind."""
    return uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop


@pytest.fixture
def run(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Runs a coroutine to completion on a new loop of each kind."""
    factory = loop_factory

    def run(coro: Coroutine[Any, Any, T]) -> T:
        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=factory) as runner:
                return runner.run(coro)
        loop = factory()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()

    yield run
    gc.collect()
