"""One core per process: C code (through ctypes, on the symbols the native
module exports) and Python share contexts, cancellation, causes and values."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import re
import subprocess
import threading
import weakref
from pathlib import Path

import pytest

import polyctx
from polyctx import CancelCauseFunc, Canceled, CancelFunc, Context, DeadlineExceeded, ForeignCause, Key

LONG = 10.0
OK, EKIND, ENOTFOUND, ENOTDONE, ETIMEDOUT = 0, 2, 7, 9, 3
p, pp, i64 = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int64
AFTER_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


@pytest.fixture(scope="module")
def c():
    lib = polyctx.c_library()
    for name, args, res in [
        ("ctx_release", [p], None),
        ("ctx_cancel_release", [p], None),
        ("ctx_background", [], p),
        ("ctx_with_cancel", [p, pp, pp], ctypes.c_int),
        ("ctx_with_cancel_cause", [p, pp, pp], ctypes.c_int),
        ("ctx_with_timeout_cause", [p, i64, ctypes.c_char_p, i64, pp, pp], ctypes.c_int),
        ("ctx_with_value_bytes", [p, p, ctypes.c_char_p, ctypes.c_size_t, pp], ctypes.c_int),
        ("ctx_err", [p], ctypes.c_int),
        ("ctx_is_done", [p], ctypes.c_bool),
        ("ctx_deadline", [p, ctypes.POINTER(i64)], ctypes.c_int),
        (
            "ctx_cause",
            [p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(i64), ctypes.POINTER(ctypes.c_size_t)],
            ctypes.c_int,
        ),
        ("ctx_wait", [p, i64], ctypes.c_int),
        ("ctx_now_ns", [], i64),
        ("ctx_cancel", [p], ctypes.c_int),
        ("ctx_cancel_cause", [p, ctypes.c_char_p, i64], ctypes.c_int),
        ("ctx_value", [p, p, pp, ctypes.POINTER(ctypes.c_size_t)], ctypes.c_int),
        ("ctx_after_func", [p, AFTER_FUNC, p, pp], ctypes.c_int),
        ("ctx_after_func_release", [p], None),
    ]:
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def c_with_cancel(c, parent: Context, cause: bool = False) -> tuple[int, int]:
    parent_ptr = parent.to_c()
    ctx, cancel = ctypes.c_void_p(), ctypes.c_void_p()
    fn = c.ctx_with_cancel_cause if cause else c.ctx_with_cancel
    assert fn(parent_ptr, ctypes.byref(ctx), ctypes.byref(cancel)) == OK
    c.ctx_release(parent_ptr)
    return ctx.value, cancel.value


def c_cause(c, ptr: int) -> tuple[str, int]:
    buf, code, n = ctypes.create_string_buffer(128), ctypes.c_int64(), ctypes.c_size_t()
    assert c.ctx_cause(ptr, buf, len(buf), ctypes.byref(code), ctypes.byref(n)) == OK
    return buf.value.decode(), code.value


def test_the_extension_exports_the_whole_c_abi():
    out = subprocess.run(
        ["nm", "-D", "--defined-only", polyctx._native.__file__], capture_output=True, text=True, check=True
    )
    exported = {line.split()[-1] for line in out.stdout.splitlines()}
    header = (Path(__file__).resolve().parents[2] / "include" / "ctx.h").read_text()
    declared = set(re.findall(r"\b(ctx_[a-z_]+)\(", header))
    assert len(declared) >= 30
    assert declared <= exported, sorted(declared - exported)


def test_background_is_the_same_object_on_both_sides(c):
    assert Context.from_c(c.ctx_background()) == polyctx.background()
    assert polyctx.background().to_c() == c.ctx_background()


def test_python_context_derived_and_cancelled_in_c(c):
    parent, cancel_parent = polyctx.with_cancel_cause(polyctx.background())
    child_ptr, cancel_ptr = c_with_cancel(c, parent)
    child = Context.from_c(child_ptr)
    c.ctx_release(child_ptr)
    ptr = child.to_c()
    assert c.ctx_err(ptr) == 0
    # Cancelled in Python: C sees it, with the Python cause's message.
    cancel_parent(ConnectionResetError("client went away"))
    assert c.ctx_is_done(ptr)
    assert c.ctx_err(ptr) == 1
    assert c_cause(c, ptr) == ("client went away", 0)
    c.ctx_release(ptr)
    assert isinstance(child.err(), Canceled)
    assert isinstance(polyctx.cause(child), ConnectionResetError)
    c.ctx_cancel_release(cancel_ptr)


def test_c_context_cancelled_in_c_is_seen_in_python(c):
    ptr, cancel_ptr = c_with_cancel(c, polyctx.background(), cause=True)
    ctx = Context.from_c(ptr)
    child, cancel_child = polyctx.with_cancel(ctx)
    assert c.ctx_cancel_cause(cancel_ptr, b"shutting down", 42) == OK
    assert isinstance(child.err(), Canceled)
    why = polyctx.cause(child)
    assert isinstance(why, ForeignCause)
    assert (why.message, why.code, str(why)) == ("shutting down", 42, "shutting down")
    assert child.err().__cause__.message == "shutting down"
    cancel_child()
    c.ctx_release(ptr)
    c.ctx_cancel_release(cancel_ptr)


def test_c_cancel_handles_adopted_by_python(c):
    ptr, cancel_ptr = c_with_cancel(c, polyctx.background(), cause=True)
    ctx = Context.from_c(ptr)
    cancel = CancelCauseFunc.from_c(cancel_ptr)
    c.ctx_cancel_release(cancel_ptr)  # Python holds its own reference
    c.ctx_release(ptr)
    cancel(ValueError("from Python"))
    assert isinstance(ctx.err(), Canceled)
    assert str(polyctx.cause(ctx)) == "from Python"

    plain_ptr, plain_cancel_ptr = c_with_cancel(c, polyctx.background())
    plain = CancelCauseFunc.from_c(plain_cancel_ptr)
    with pytest.raises(TypeError, match="takes no cause"):
        plain(ValueError("x"))
    CancelFunc.from_c(plain_cancel_ptr)()
    assert c.ctx_is_done(plain_ptr)
    c.ctx_release(plain_ptr)
    c.ctx_cancel_release(plain_cancel_ptr)
    with pytest.raises(ValueError, match="NULL"):
        CancelFunc.from_c(0)
    with pytest.raises(ValueError, match="NULL"):
        Context.from_c(0)


def test_deadlines_cross_on_one_clock(c):
    ctx, cancel = polyctx.with_timeout(polyctx.background(), 60)
    ptr = ctx.to_c()
    out = ctypes.c_int64()
    assert c.ctx_deadline(ptr, ctypes.byref(out)) == OK
    assert out.value / 1e9 == pytest.approx(ctx.deadline(), abs=1e-6)
    child, cancel_child = ctypes.c_void_p(), ctypes.c_void_p()
    assert (
        c.ctx_with_timeout_cause(ptr, 20_000_000, b"slow in C", 7, ctypes.byref(child), ctypes.byref(cancel_child)) == 0
    )
    timed = Context.from_c(child.value)
    assert timed.wait(LONG)
    assert isinstance(timed.err(), DeadlineExceeded)
    assert (polyctx.cause(timed).message, polyctx.cause(timed).code) == ("slow in C", 7)
    for h in (ptr, child.value):
        c.ctx_release(h)
    c.ctx_cancel_release(cancel_child.value)
    cancel()


def test_values_cross_both_ways_with_one_key(c):
    key = Key("trace-id")
    payload = {"from": "python"}
    ctx = polyctx.with_value(polyctx.background(), key, payload)
    ptr = ctx.to_c()
    data, n = ctypes.c_void_p(), ctypes.c_size_t()
    assert c.ctx_value(ptr, key.to_c(), ctypes.byref(data), ctypes.byref(n)) == OK
    assert ctypes.cast(data, ctypes.py_object).value is payload  # a PyObject*, borrowed
    assert polyctx.value_from_c(data.value, n.value) is payload
    child = ctypes.c_void_p()
    assert c.ctx_with_value_bytes(ptr, key.to_c(), b"4bf92f35", 8, ctypes.byref(child)) == OK
    shadowed = Context.from_c(child.value)
    assert shadowed.value(key) == b"4bf92f35"  # C's bytes shadow Python's value
    assert ctx.value(key) is payload
    assert shadowed.value(Key("trace-id")) is None
    assert c.ctx_value(child.value, Key("other").to_c(), ctypes.byref(data), None) == ENOTFOUND
    for h in (ptr, child.value):
        c.ctx_release(h)


def test_python_values_are_released_when_c_drops_the_last_reference(c):
    class Obj:
        pass

    obj = Obj()
    ref = weakref.ref(obj)
    ptr = polyctx.with_value(polyctx.background(), Key("k"), obj).to_c()
    del obj
    gc.collect()
    assert ref() is not None  # C holds the context
    threading.Thread(target=c.ctx_release, args=(ptr,)).start()  # released off the Python thread
    for _ in range(1000):
        polyctx.background()  # flushes decrefs deferred by other threads
        gc.collect()
        if ref() is None:
            break
        threading.Event().wait(0.01)
    assert ref() is None


def test_c_thread_cancel_wakes_asyncio(c):
    async def main():
        ptr, cancel_ptr = c_with_cancel(c, polyctx.background())
        ctx = Context.from_c(ptr)
        c.ctx_release(ptr)
        # ctypes releases the GIL around the call: the cancel runs with no Python at all.
        threading.Thread(target=c.ctx_cancel, args=(cancel_ptr,)).start()
        with pytest.raises(Canceled):
            async with polyctx.scope(ctx):
                await asyncio.sleep(LONG)
        c.ctx_cancel_release(cancel_ptr)

    asyncio.run(main())


def test_c_waits_on_a_python_deadline(c):
    ctx, cancel = polyctx.with_timeout(polyctx.background(), 0.02)
    ptr = ctx.to_c()
    assert c.ctx_wait(ptr, 10_000_000_000) == OK  # GIL released by ctypes
    assert c.ctx_err(ptr) == 2
    c.ctx_release(ptr)
    cancel()


def test_c_after_func_on_a_python_context(c):
    ctx, cancel = polyctx.with_cancel(polyctx.background())
    ran = threading.Event()
    callback = AFTER_FUNC(lambda _: ran.set())
    handle = ctypes.c_void_p()
    ptr = ctx.to_c()
    assert c.ctx_after_func(ptr, callback, None, ctypes.byref(handle)) == OK
    cancel()
    assert ran.wait(LONG)
    c.ctx_after_func_release(handle)
    c.ctx_release(ptr)
