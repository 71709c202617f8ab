"""The C ABI of the core this module runs on, for ctypes.

polyctx's native module exports the C ABI of `include/ctx.h` (`ctx_*`), so
C code in this process shares Python's core: a `ctx_t*` from
`Context.to_c()` is a context C can derive from, wait on and cancel, and
`Context.from_c()` brings a C context into Python.
"""

from __future__ import annotations

import ctypes
import functools

from . import _native

__all__ = ["c_library"]


@functools.cache
def c_library() -> ctypes.CDLL:
    """A ctypes handle on the `ctx_*` functions of this process's polyctx core
    (the native module itself: no second copy of the core is loaded). Set
    each function's `argtypes`/`restype` from `ctx.h` before calling it."""
    return ctypes.CDLL(_native.__file__)
