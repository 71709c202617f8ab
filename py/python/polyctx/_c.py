"""The C ABI of the core this module runs on, for ctypes.

polyctx's native module exports the C ABI of `include/ctx.h` (`ctx_*`), so
C code in this process shares Python's core: a `ctx_t*` from
`Context.to_c()` is a context C can derive from, wait on and cancel, and
`Context.from_c()` brings a C context into Python.

`c_library()` is that ABI with every prototype declared, once, here; a test
checks them (and the constants) against ctx.h. The structs ctx.h defines
are `TraceContext`, `Header`, `EndReasonInfo`, `Task` and `Backoff` here,
and its callback types `CALLBACK`, `WIRE_GET_FN`, `WIRE_SET_FN`, `TASK_FN`,
`ATTEMPT_FN` and `LOST_CANCEL_FN`.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

from . import _native

__all__ = [
    "ATTEMPT_FN",
    "CALLBACK",
    "LOST_CANCEL_FN",
    "TASK_FN",
    "WIRE_GET_FN",
    "WIRE_SET_FN",
    "Backoff",
    "CLibrary",
    "EndReasonInfo",
    "Header",
    "Task",
    "TraceContext",
    "c_library",
]

#: `void (*)(void *)`: the type of `ctx_after_func`'s `fn` and `finalizer`
#: and of `ctx_with_value`'s `dtor`. Keep the object alive while C may call it.
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class TraceContext(ctypes.Structure):
    """`ctx_trace_context_t`: one hop of a W3C trace, as plain bytes."""

    _fields_ = [("trace_id", ctypes.c_uint8 * 16), ("span_id", ctypes.c_uint8 * 8), ("flags", ctypes.c_uint8)]


class Header(ctypes.Structure):
    """`ctx_header_t`: one header field, name and value (NUL-terminated)."""

    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class EndReasonInfo(ctypes.Structure):
    """`ctx_end_reason_info_t`: an end reason in the core's one table."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("message", ctypes.c_char_p),
        ("grpc_code", ctypes.c_uint32),
        ("connect_code", ctypes.c_char_p),
        ("http_status", ctypes.c_uint16),
    ]


#: `ctx_task_fn`: `int (*)(const ctx_t *ctx, void *userdata)`, a task of `ctx_group_run`.
TASK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
#: `ctx_attempt_fn`: `int (*)(const ctx_t *ctx, uint32_t attempt, void *userdata)`, an attempt of `ctx_retry`.
ATTEMPT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
#: `ctx_lost_cancel_fn`: `void (*)(void *userdata, const char *context, const char *site)`.
LOST_CANCEL_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)


class Task(ctypes.Structure):
    """`ctx_task_t`: a task of `ctx_group_run`, `fn(ctx, userdata)`."""

    _fields_ = [("fn", TASK_FN), ("userdata", ctypes.c_void_p)]


class Backoff(ctypes.Structure):
    """`ctx_backoff_t`: how `ctx_backoff_next` and `ctx_retry` space attempts (nanoseconds)."""

    _fields_ = [
        ("initial_ns", ctypes.c_int64),
        ("max_ns", ctypes.c_int64),
        ("multiplier", ctypes.c_double),
        ("jitter", ctypes.c_double),
        ("max_attempts", ctypes.c_uint32),
        ("attempt_ns", ctypes.c_int64),
    ]


#: `ctx_wire_get_fn`: `void (*)(void *userdata, const char *name, ctx_wire_values_t *values)`.
WIRE_GET_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
#: `ctx_wire_set_fn`: `void (*)(void *userdata, const char *name, const char *value)`.
WIRE_SET_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)

_p = ctypes.c_void_p  # any handle (ctx_t*, ctx_cancel_t*, ...), data pointer, or function pointer
_pp = ctypes.POINTER(ctypes.c_void_p)  # an out-parameter for a handle or pointer
_i64 = ctypes.c_int64
_u32 = ctypes.c_uint32
_size = ctypes.c_size_t
_int = ctypes.c_int  # also ctx_status_t, ctx_err_t, ctx_value_kind_t and the wire enums
_str = ctypes.c_char_p
# Out-parameters and arrays of those.
_pstr = ctypes.POINTER(_str)
_psize = ctypes.POINTER(_size)
_pi64 = ctypes.POINTER(_i64)
_pint = ctypes.POINTER(_int)
_pbool = ctypes.POINTER(ctypes.c_bool)

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
    "ctx_deadline": (_int, [_p, _pi64]),
    "ctx_cause": (_int, [_p, _str, _size, _pi64, _psize]),
    "ctx_wait": (_int, [_p, _i64]),
    "ctx_wait_until": (_int, [_p, _i64]),
    "ctx_describe": (_int, [_p, _str, _size, _psize]),
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
    "ctx_value": (_int, [_p, _p, _pp, _psize, _pint]),
    "ctx_done_fd": (_int, [_p, _pp]),
    "ctx_fd_get": (_int, [_p]),
    "ctx_fd_close": (None, [_p]),
    "ctx_after_func": (_int, [_p, _p, _p, _p, _pp]),
    "ctx_after_func_stop": (_int, [_p, _pbool]),
    "ctx_after_func_release": (None, [_p]),
    "ctx_grpc_timeout_parse": (_int, [_str, _pi64]),
    "ctx_timeout_ms_parse": (_int, [_str, _pi64]),
    "ctx_grpc_timeout_format": (_int, [_i64, _str, _size, _psize]),
    "ctx_timeout_ms_format": (_int, [_i64, _str, _size, _psize]),
    "ctx_traceparent_parse": (_int, [_pstr, _size, ctypes.POINTER(TraceContext)]),
    "ctx_traceparent_format": (_int, [ctypes.POINTER(TraceContext), _str, _size, _psize]),
    "ctx_trace_context_new_root": (_int, [ctypes.POINTER(TraceContext)]),
    "ctx_trace_context_child": (_int, [ctypes.POINTER(TraceContext), ctypes.POINTER(TraceContext)]),
    "ctx_tracestate_parse": (_int, [_pstr, _size, _pp]),
    "ctx_tracestate_len": (_size, [_p]),
    "ctx_tracestate_get": (_int, [_p, _size, _pstr, _pstr]),
    "ctx_tracestate_format": (_int, [_p, _str, _size, _psize]),
    "ctx_tracestate_release": (None, [_p]),
    "ctx_baggage_new": (_int, [_pp]),
    "ctx_baggage_parse": (_int, [_pstr, _size, _pp]),
    "ctx_baggage_len": (_size, [_p]),
    "ctx_baggage_get": (_int, [_p, _size, _pstr, _pstr, _psize, _psize]),
    "ctx_baggage_property": (_int, [_p, _size, _size, _pstr, _pstr, _psize]),
    "ctx_baggage_find": (_int, [_p, _str, _pstr, _psize]),
    "ctx_baggage_set": (_int, [_p, _str, _str]),
    "ctx_baggage_add_property": (_int, [_p, _str, _str, _str]),
    "ctx_baggage_remove": (_int, [_p, _str]),
    "ctx_baggage_format": (_int, [_p, _str, _size, _psize]),
    "ctx_baggage_release": (None, [_p]),
    "ctx_wire_policy_new": (_int, [_int, _pp]),
    "ctx_wire_policy_set_max_timeout": (_int, [_p, _i64]),
    "ctx_wire_policy_set_default_timeout": (_int, [_p, _i64]),
    "ctx_wire_policy_allow_baggage": (_int, [_p, _str]),
    "ctx_wire_policy_set_propagate_trace": (_int, [_p, ctypes.c_bool]),
    "ctx_wire_policy_release": (None, [_p]),
    "ctx_wire_values_add": (_int, [_p, _str, _size]),
    "ctx_wire_extract": (_int, [_p, ctypes.POINTER(Header), _size, _p, _int, _pp, _pp, _pstr]),
    "ctx_wire_extract_at": (_int, [_p, ctypes.POINTER(Header), _size, _p, _int, _i64, _pp, _pp, _pstr]),
    "ctx_wire_extract_cb": (_int, [_p, _p, _p, _p, _int, _pp, _pp, _pstr]),
    "ctx_wire_extract_cb_at": (_int, [_p, _p, _p, _p, _int, _i64, _pp, _pp, _pstr]),
    "ctx_wire_inject": (_int, [_p, _p, _int, _pp]),
    "ctx_wire_inject_cb": (_int, [_p, _p, _int, _p, _p]),
    "ctx_headers_items": (ctypes.POINTER(Header), [_p, _psize]),
    "ctx_headers_release": (None, [_p]),
    "ctx_wire_trace_context": (_int, [_p, ctypes.POINTER(TraceContext)]),
    "ctx_wire_trace_link": (_int, [_p, ctypes.POINTER(TraceContext)]),
    "ctx_wire_tracestate": (_int, [_p, _pp]),
    "ctx_wire_baggage": (_int, [_p, _pp]),
    "ctx_wire_with_trace_context": (_int, [_p, ctypes.POINTER(TraceContext), _pp]),
    "ctx_wire_with_baggage": (_int, [_p, _p, _pp]),
    "ctx_cancel_reason": (_int, [_p, _int]),
    "ctx_end_reason": (_int, [_p, _pint]),
    "ctx_end_reason_info": (_int, [_int, ctypes.POINTER(EndReasonInfo)]),
    "ctx_group_run": (_int, [_p, ctypes.POINTER(Task), _size, _size, _psize]),
    "ctx_backoff_default": (_int, [ctypes.POINTER(Backoff)]),
    "ctx_backoff_next": (_int, [_p, ctypes.POINTER(Backoff), _u32, _pi64]),
    "ctx_retry": (_int, [_p, ctypes.POINTER(Backoff), _p, _p, ctypes.POINTER(_u32)]),
    "ctx_sleep": (_int, [_p, _i64]),
    "ctx_lost_cancels": (ctypes.c_uint64, []),
    "ctx_set_lost_cancel_hook": (None, [_p, _p]),
    "ctx_debug_track": (None, [ctypes.c_bool]),
    "ctx_debug_is_tracking": (ctypes.c_bool, []),
    "ctx_debug_set_site": (_int, [_p, _str, _int]),
    "ctx_debug_live_contexts": (_size, []),
    "ctx_debug_live_timers": (_size, []),
    "ctx_debug_pending_after_funcs": (_size, []),
    "ctx_debug_snapshot": (_int, [_str, _size, _psize]),
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
    CTX_EMALFORMED = 10
    CTX_ENOBUFS = 11
    CTX_EABSENT = 12
    CTX_ECANCELED = 13
    CTX_EDEADLINE = 14
    CTX_EATTEMPTS = 15
    CTX_ETASK = 16
    # ctx_err_t
    CTX_ERR_NONE = 0
    CTX_ERR_CANCELED = 100
    CTX_ERR_DEADLINE_EXCEEDED = 101
    CTX_ERR_INVALID = 102
    # ctx_value_kind_t
    CTX_VALUE_BYTES = 1
    CTX_VALUE_POINTER = 2
    # ctx_end_reason_t
    CTX_END_CANCELED = 1
    CTX_END_DEADLINE_EXCEEDED = 2
    CTX_END_CLIENT_DISCONNECTED = 3
    CTX_END_PEER_CANCELED = 4
    CTX_END_SERVER_SHUTDOWN = 5
    CTX_END_REQUEST_FINISHED = 6
    # ctx_wire_protocol_t
    CTX_PROTOCOL_GRPC = 1
    CTX_PROTOCOL_CONNECT = 2
    CTX_PROTOCOL_HTTP = 3
    # ctx_wire_trust_t
    CTX_TRUST_INTERNAL = 1
    CTX_TRUST_EXTERNAL = 2
    # ctx_attempt_t
    CTX_ATTEMPT_OK = 0
    CTX_ATTEMPT_RETRY = 1
    CTX_ATTEMPT_FATAL = 2


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
