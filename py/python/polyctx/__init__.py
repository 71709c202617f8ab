"""Go's `context` for Python: cancellation trees, deadlines, causes and
request-scoped values, shared with Rust, C and Node code in the same process.

    ctx, cancel = polyctx.with_timeout(polyctx.current(), 2.0)
    async with polyctx.scope(ctx):   # cancels this task when ctx is done
        ...

The model lives in the Rust core (`polyctx._native`); this package adds the
asyncio glue (`scope`, `current`, `use`, `await ctx.done()`), the article's
patterns on asyncio (`Group`, `retry`, `sleep`, `wait_for`) and
`polyctx.debug` (lost cancels, live contexts).
"""

from __future__ import annotations

# `polyctx.wire` needs only the core; the integrations (polyctx.asgi,
# .httpx, .grpc, .otel) are imported by name, each needing its library.
from . import debug, wire
from ._asyncio import current, use
from ._c import CALLBACK, CLibrary, c_library
from ._errors import Canceled, ContextError, DeadlineExceeded, ForeignCause
from ._native import (
    CancelCauseFunc,
    CancelFunc,
    Context,
    Key,
    StopFunc,
    __version__,
    after_func,
    background,
    cause,
    loop_after_func,
    scope,
    todo,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_timeout,
    with_value,
    without_cancel,
)
from ._pair import CancelCausePair, CancelPair
from ._patterns import Backoff, Group, RetryError, retry, sleep, wait_for

__all__ = [
    "CALLBACK",
    "Backoff",
    "CLibrary",
    "CancelCauseFunc",
    "CancelCausePair",
    "CancelFunc",
    "CancelPair",
    "Canceled",
    "Context",
    "ContextError",
    "DeadlineExceeded",
    "ForeignCause",
    "Group",
    "Key",
    "RetryError",
    "StopFunc",
    "__version__",
    "after_func",
    "background",
    "c_library",
    "cause",
    "current",
    "debug",
    "loop_after_func",
    "retry",
    "scope",
    "sleep",
    "todo",
    "use",
    "wait_for",
    "wire",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_timeout",
    "with_value",
    "without_cancel",
]
