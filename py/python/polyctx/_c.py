"""The C ABI of the core this module runs on, for ctypes.

polyctx's native module exports the C ABI of `include/ctx.h` (`ctx_*`), so
C code in this process shares Python's core: a `ctx_t*` from
`Context.to_c()` is a context C can derive from, wait on and cancel, and
`Context.from_c()` brings a C context into Python.

`c_library()` is that ABI with every prototype declared, once, here; a test
checks them (and the constants) against ctx.h.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from . import _native

__all__ = ["CALLBACK", "CLibrary", "c_library"]

#: `void (*)(void *)`: the type of `ctx_after_func`'s `fn` and `finalizer`
#: and of `ctx_with_value`'s `dtor`. Keep the object alive while C may call it.
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

_p = ctypes.c_void_p  # any handle (ctx_t*, ctx_cancel_t*, ...), data pointer, or function pointer
_pp = ctypes.POINTER(ctypes.c_void_p)  # an out-parameter for a handle or pointer
_i64 = ctypes.c_int64
_size = ctypes.c_size_t
_int = ctypes.c_int  # also ctx_status_t, ctx_err_t and ctx_value_kind_t
_str = ctypes.c_char_p

#: name -> (restype, argtypes), in the order of ctx.h.
PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "ctx_background": (_p, []),
    "ctx_todo": (_p, []),
    "ctx_retain": (_p, [_p]),
    "ctx_release": (None, [_p]),
    "ctx_with_cancel": (_int, [_p, _pp, _pp]),
    "ctx_with_cancel_cause": (_int, [_p, _pp, _pp]),
    "ctx_with_timeout": (_int, [_p, _i64, _pp, _pp]),
    "ctx_with_timeout_cause": (_int, [_p, _i64, _str, _i64, _pp, _pp]),
    "ctx_with_deadline": (_int, [_p, _i64, _pp, _pp]),
    "ctx_with_deadline_cause": (_int, [_p, _i64, _str, _i64, _pp, _pp]),
    "ctx_without_cancel": (_int, [_p, _pp]),
    "ctx_err": (_int, [_p]),
    "ctx_is_done": (ctypes.c_bool, [_p]),
    "ctx_deadline": (_int, [_p, ctypes.POINTER(_i64)]),
    "ctx_cause": (_int, [_p, _str, _size, ctypes.POINTER(_i64), ctypes.POINTER(_size)]),
    "ctx_wait": (_int, [_p, _i64]),
    "ctx_wait_until": (_int, [_p, _i64]),
    "ctx_describe": (_int, [_p, _str, _size, ctypes.POINTER(_size)]),
    "ctx_now_ns": (_i64, []),
    "ctx_cancel": (_int, [_p]),
    "ctx_cancel_cause": (_int, [_p, _str, _i64]),
    "ctx_cancel_retain": (_p, [_p]),
    "ctx_cancel_release": (None, [_p]),
    "ctx_cancel_and_release": (None, [_p, _p]),
    "ctx_key_new": (_int, [_str, _pp]),
    "ctx_key_release": (None, [_p]),
    "ctx_with_value_bytes": (_int, [_p, _p, _p, _size, _pp]),
    "ctx_with_value": (_int, [_p, _p, _p, _p, _pp]),
    "ctx_value": (_int, [_p, _p, _pp, ctypes.POINTER(_size), ctypes.POINTER(_int)]),
    "ctx_done_fd": (_int, [_p, _pp]),
    "ctx_fd_get": (_int, [_p]),
    "ctx_fd_close": (None, [_p]),
    "ctx_after_func": (_int, [_p, _p, _p, _p, _pp]),
    "ctx_after_func_stop": (_int, [_p, ctypes.POINTER(ctypes.c_bool)]),
    "ctx_after_func_release": (None, [_p]),
    "ctx_strerror": (_str, [_int]),
    "ctx_err_string": (_str, [_int]),
    "ctx_version": (_str, []),
}


class CLibrary(ctypes.CDLL):
    """`ctypes.CDLL` on the `ctx_*` functions of this process's polyctx core,
    with `argtypes`/`restype` set from ctx.h and its constants as attributes.
    Handles are `c_void_p` (ints in Python, None for NULL); function pointers
    are `CALLBACK` objects (or None)."""

    # ctx_status_t
    CTX_OK = 0
    CTX_EINVAL = 1
    CTX_EKIND = 2
    CTX_ETIMEDOUT = 3
    CTX_ERANGE = 4
    CTX_EPANIC = 5
    CTX_ESYS = 6
    CTX_ENOTFOUND = 7
    CTX_ENODEADLINE = 8
    CTX_ENOTDONE = 9
    # ctx_err_t
    CTX_ERR_NONE = 0
    CTX_ERR_CANCELED = 100
    CTX_ERR_DEADLINE_EXCEEDED = 101
    CTX_ERR_INVALID = 102
    # ctx_value_kind_t
    CTX_VALUE_BYTES = 1
    CTX_VALUE_POINTER = 2


@functools.cache
def c_library() -> CLibrary:
    """The C ABI of this process's polyctx core (the native module itself:
    no second copy of the core is loaded), ready to call.

    It also makes the module's `ctx_*` symbols global (`RTLD_GLOBAL`), so a
    C library or extension module loaded after this call that uses ctx.h
    without linking libctx binds to this core: the way C code joins the
    one core of a Python process."""
    lib = CLibrary(_native.__file__, mode=ctypes.RTLD_GLOBAL)
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib
