"""Where Python code made a context, for `polyctx.debug`'s tracking: the
native `with_*` functions call `caller_site()` when tracking is on."""

from __future__ import annotations

import os
import sys
from types import FrameType

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def caller_site() -> str | None:
    """`file:line` of the innermost frame outside this package (the native
    function that asks adds no frame, so frame 1 is whoever called it)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"
