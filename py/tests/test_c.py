"""One core per process: C code (through ctypes, on the symbols the native
module exports) and Python share contexts, cancellation, causes and values."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import gc
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import weakref
from pathlib import Path

import pytest

import polyctx
from polyctx import CancelCauseFunc, Canceled, CancelFunc, Context, DeadlineExceeded, ForeignCause, Key

LONG = 10.0
C = polyctx.CLibrary
HEADER = Path(__file__).resolve().parents[2] / "include" / "ctx.h"


@pytest.fixture(scope="module")
def c():
    return polyctx.c_library()


def c_with_cancel(c, parent: Context, cause: bool = False) -> tuple[int, int]:
    parent_ptr = parent.to_c()
    ctx, cancel = ctypes.c_void_p(), ctypes.c_void_p()
    fn = c.ctx_with_cancel_cause if cause else c.ctx_with_cancel
    assert fn(parent_ptr, ctypes.byref(ctx), ctypes.byref(cancel)) == C.CTX_OK
    c.ctx_release(parent_ptr)
    return ctx.value, cancel.value


def c_cause(c, ptr: int) -> tuple[str, int]:
    buf, code, n = ctypes.create_string_buffer(128), ctypes.c_int64(), ctypes.c_size_t()
    assert c.ctx_cause(ptr, buf, len(buf), ctypes.byref(code), ctypes.byref(n)) == C.CTX_OK
    return buf.value.decode(), code.value


def test_the_extension_exports_the_whole_c_abi():
    out = subprocess.run(
        ["nm", "-D", "--defined-only", polyctx._native.__file__], capture_output=True, text=True, check=True
    )
    exported = {line.split()[-1] for line in out.stdout.splitlines()}
    declared = set(re.findall(r"\b(ctx_[a-z_]+)\(", HEADER.read_text()))
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
    assert c.ctx_err(ptr) == C.CTX_ERR_NONE
    # Cancelled in Python: C sees it, with the Python cause's message.
    cancel_parent(ConnectionResetError("client went away"))
    assert c.ctx_is_done(ptr)
    assert c.ctx_err(ptr) == C.CTX_ERR_CANCELED
    assert c.ctx_err_string(c.ctx_err(ptr)) == b"context canceled"
    assert c_cause(c, ptr) == ("client went away", 0)
    c.ctx_release(ptr)
    assert isinstance(child.err(), Canceled)
    assert isinstance(polyctx.cause(child), ConnectionResetError)
    c.ctx_cancel_release(cancel_ptr)


def test_c_context_cancelled_in_c_is_seen_in_python(c):
    ptr, cancel_ptr = c_with_cancel(c, polyctx.background(), cause=True)
    ctx = Context.from_c(ptr)
    child, cancel_child = polyctx.with_cancel(ctx)
    assert c.ctx_cancel_cause(cancel_ptr, b"shutting down", 42) == C.CTX_OK
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
    assert c.ctx_deadline(ptr, ctypes.byref(out)) == C.CTX_OK
    assert out.value / 1e9 == pytest.approx(ctx.deadline(), abs=1e-6)
    child, cancel_child = ctypes.c_void_p(), ctypes.c_void_p()
    assert (
        c.ctx_with_timeout_cause(ptr, 20_000_000, b"slow in C", 7, ctypes.byref(child), ctypes.byref(cancel_child))
        == C.CTX_OK
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
    data, n, kind = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_int()
    assert c.ctx_value(ptr, key.to_c(), ctypes.byref(data), ctypes.byref(n), ctypes.byref(kind)) == C.CTX_OK
    assert kind.value == C.CTX_VALUE_POINTER
    assert ctypes.cast(data, ctypes.py_object).value is payload  # a PyObject*, borrowed
    child = ctypes.c_void_p()
    assert c.ctx_with_value_bytes(ptr, key.to_c(), b"4bf92f35", 8, ctypes.byref(child)) == C.CTX_OK
    shadowed = Context.from_c(child.value)
    assert shadowed.value(key) == b"4bf92f35"  # C's bytes shadow Python's value
    assert ctx.value(key) is payload
    assert shadowed.value(Key("trace-id")) is None
    assert c.ctx_value(child.value, Key("other").to_c(), ctypes.byref(data), None, None) == C.CTX_ENOTFOUND
    for h in (ptr, child.value):
        c.ctx_release(h)


def test_c_values_read_in_python_by_kind(c):
    key = Key("k")
    ptr = polyctx.background().to_c()
    empty, pointer, null = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert c.ctx_with_value_bytes(ptr, key.to_c(), None, 0, ctypes.byref(empty)) == C.CTX_OK
    target = ctypes.c_int(7)
    assert c.ctx_with_value(ptr, key.to_c(), ctypes.byref(target), None, ctypes.byref(pointer)) == C.CTX_OK
    assert c.ctx_with_value(ptr, key.to_c(), None, None, ctypes.byref(null)) == C.CTX_OK
    # Empty bytes, a pointer and NULL: three different things, in C and in Python.
    assert Context.from_c(empty.value).value(key) == b""
    assert Context.from_c(pointer.value).value(key) == ctypes.addressof(target)
    assert Context.from_c(null.value).value(key) == 0
    kinds = []
    for h in (empty, pointer, null):
        data, n, kind = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_int()
        assert c.ctx_value(h, key.to_c(), ctypes.byref(data), ctypes.byref(n), ctypes.byref(kind)) == C.CTX_OK
        kinds.append(kind.value)
    assert kinds == [C.CTX_VALUE_BYTES, C.CTX_VALUE_POINTER, C.CTX_VALUE_POINTER]
    # A context names itself the same way from both sides (Go's String()).
    repr_ = repr(Context.from_c(pointer.value))
    buf, n = ctypes.create_string_buffer(256), ctypes.c_size_t()
    assert c.ctx_describe(pointer, buf, len(buf), ctypes.byref(n)) == C.CTX_OK
    assert repr_ == f"<polyctx.Context {buf.value.decode()}>"
    assert repr_ == "<polyctx.Context context.Background.WithValue(k, <value>)>"
    nested = polyctx.with_value(Context.from_c(empty.value), key, "py")
    assert repr(nested).endswith(".WithValue(k, ).WithValue(k, <value>)>")
    for h in (ptr, empty.value, pointer.value, null.value):
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
    assert c.ctx_wait(ptr, 10_000_000_000) == C.CTX_OK  # GIL released by ctypes
    assert c.ctx_err(ptr) == C.CTX_ERR_DEADLINE_EXCEEDED
    c.ctx_release(ptr)
    cancel()


def test_c_after_func_on_a_python_context(c):
    ctx, cancel = polyctx.with_cancel(polyctx.background())
    ran, finalized = threading.Event(), threading.Event()
    callback = polyctx.CALLBACK(lambda _: ran.set())
    finalizer = polyctx.CALLBACK(lambda _: finalized.set() if ran.is_set() else None)
    handle = ctypes.c_void_p()
    ptr = ctx.to_c()
    assert c.ctx_after_func(ptr, callback, None, finalizer, ctypes.byref(handle)) == C.CTX_OK
    cancel()
    assert ran.wait(LONG) and finalized.wait(LONG)
    c.ctx_after_func_release(handle)
    c.ctx_release(ptr)


def test_c_group_runs_python_tasks_and_the_first_failure_cancels_the_rest(c):
    seen = []

    @polyctx._c.TASK_FN
    def task(ctx_ptr, userdata):
        ctx = polyctx.Context.from_c(ctx_ptr)  # borrowed by C for the call: a reference of Python's own
        if userdata == 1:
            return 7  # fails: the group's context is canceled, cause "task 1 failed", code 7
        ctx.wait(60)  # the others wait for the group to end (releasing the GIL)
        seen.append(str(polyctx.cause(ctx)))
        return 0

    tasks = (polyctx._c.Task * 3)(*[polyctx._c.Task(task, i) for i in range(3)])
    failed = ctypes.c_size_t(99)
    parent = polyctx.background().to_c()
    assert c.ctx_group_run(parent, tasks, 3, 0, ctypes.byref(failed)) == c.CTX_ETASK
    c.ctx_release(parent)
    assert failed.value == 1 and seen == ["task 1 failed"] * 2


def test_c_backoff_is_the_same_rules_as_pythons(c):
    b = polyctx._c.Backoff()
    assert c.ctx_backoff_default(ctypes.byref(b)) == c.CTX_OK
    assert (b.initial_ns, b.max_ns, b.multiplier, b.jitter, b.max_attempts, b.attempt_ns) == (
        100_000_000,
        10_000_000_000,
        2.0,
        0.2,
        0,
        0,
    )
    b.jitter, b.max_attempts = 0.0, 4
    py = polyctx.Backoff(initial=0.1, jitter=0, max_attempts=4)
    bg = polyctx.background().to_c()
    wait = ctypes.c_int64()
    for n in range(4):
        assert c.ctx_backoff_next(bg, ctypes.byref(b), n, ctypes.byref(wait)) == c.CTX_OK
        assert wait.value / 1e9 == pytest.approx(py.next(polyctx.background(), n))
    assert c.ctx_backoff_next(bg, ctypes.byref(b), 4, ctypes.byref(wait)) == c.CTX_EATTEMPTS
    assert py.next(polyctx.background(), 4) == "attempts"
    c.ctx_release(bg)


def test_c_and_python_see_one_lost_cancel_count_and_one_tracking_switch(c):
    assert c.ctx_lost_cancels() == polyctx.debug.lost_cancels()
    polyctx.debug.track(True)
    try:
        assert c.ctx_debug_is_tracking()
        live = c.ctx_debug_live_contexts()
        _ctx, cancel = polyctx.with_cancel(polyctx.background())
        assert c.ctx_debug_live_contexts() == live + 1 == len(polyctx.debug.snapshot())
        cancel()
    finally:
        polyctx.debug.track(False)
    assert not c.ctx_debug_is_tracking()
    assert c.ctx_debug_live_timers() == polyctx.debug.live_timers()


# --- polyctx.c_library() against ctx.h ------------------------------------

_HANDLES = {
    "void",
    "ctx_t",
    "ctx_cancel_t",
    "ctx_key_t",
    "ctx_fd_t",
    "ctx_after_func_t",
    "ctx_baggage_t",
    "ctx_headers_t",
    "ctx_tracestate_t",
    "ctx_wire_policy_t",
    "ctx_wire_values_t",
}
# Structs the header defines, passed by pointer.
_STRUCTS = {
    "ctx_header_t": polyctx._c.Header,
    "ctx_trace_context_t": polyctx._c.TraceContext,
    "ctx_end_reason_info_t": polyctx._c.EndReasonInfo,
    "ctx_task_t": polyctx._c.Task,
    "ctx_backoff_t": polyctx._c.Backoff,
}
# Function-pointer typedefs: declared as plain pointers, like every callback.
_FN_TYPEDEFS = {"ctx_wire_get_fn", "ctx_wire_set_fn", "ctx_attempt_fn", "ctx_lost_cancel_fn"}
_SCALARS = {
    "int": ctypes.c_int,
    "ctx_status_t": ctypes.c_int,
    "ctx_err_t": ctypes.c_int,
    "ctx_value_kind_t": ctypes.c_int,
    "ctx_end_reason_t": ctypes.c_int,
    "int64_t": ctypes.c_int64,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "bool": ctypes.c_bool,
}


def _ctype(decl: str):
    """The ctypes type for a C type as ctx.h spells it (without a name)."""
    if "(*" in decl:  # a function pointer
        return ctypes.c_void_p
    stars = decl.count("*")
    base = decl.replace("*", " ").replace("const", " ").split()
    assert len(base) == 1, decl
    (base,) = base
    if base == "void" and stars == 0:
        return None
    if base in _FN_TYPEDEFS:
        return ctypes.c_void_p
    if base == "char":
        return {1: ctypes.c_char_p, 2: ctypes.POINTER(ctypes.c_char_p)}[stars]
    if base in _STRUCTS:
        return ctypes.POINTER(_STRUCTS[base])
    if base in _HANDLES:
        return {1: ctypes.c_void_p, 2: ctypes.POINTER(ctypes.c_void_p)}[stars]
    scalar = _SCALARS[base]
    return {0: scalar, 1: ctypes.POINTER(scalar)}[stars]


def _header_prototypes() -> dict[str, tuple[object, list[object]]]:
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    found = {}
    for ret, name, params in re.findall(r"^([A-Za-z_][\w \*]*?)\s*\b(ctx_\w+)\(([^;]*)\);", text, re.M):
        args = []
        for param in [] if params.strip() == "void" else params.split(","):
            param = " ".join(param.split())
            # Drop the parameter's name: `const ctx_t *parent` -> `const ctx_t *`.
            args.append(_ctype(param if "(*" in param else re.fullmatch(r"(.*?)\s*\w+", param).group(1)))
        found[name] = (_ctype(ret), args)
    return found


def test_c_library_prototypes_are_ctx_h():
    declared = _header_prototypes()
    assert len(declared) >= 38
    assert list(declared) == list(polyctx._c.PROTOTYPES)  # the same functions, in order
    for name, (restype, argtypes) in declared.items():
        assert polyctx._c.PROTOTYPES[name] == (restype, argtypes), name
        fn = getattr(polyctx.c_library(), name)
        assert (fn.restype, tuple(fn.argtypes)) == (restype, tuple(argtypes)), name


def test_c_library_constants_are_ctx_h():
    enums = re.findall(r"typedef enum \{(.*?)\} (\w+);", HEADER.read_text(), re.S)
    assert {name for _, name in enums} == {
        "ctx_status_t",
        "ctx_err_t",
        "ctx_value_kind_t",
        "ctx_end_reason_t",
        "ctx_wire_protocol_t",
        "ctx_wire_trust_t",
        "ctx_attempt_t",
    }
    declared = {k: int(v) for body, _ in enums for k, v in re.findall(r"^\s*(CTX_\w+) = (-?\d+),", body, re.M)}
    shipped = {k: getattr(C, k) for k in dir(C) if k.startswith("CTX_")}
    assert declared == shipped


# --- one core per process: a C extension joins the one in polyctx ----------

EXTENSION = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ctx.h>

/* derive(ptr): a child of the ctx_t* given, cancelable from here; returns the
 * child's ctx_t* (a reference for the caller). */
static ctx_cancel_t *cancel;

static PyObject *derive(PyObject *self, PyObject *arg) {
    (void)self;
    ctx_t *parent = PyLong_AsVoidPtr(arg), *child;
    if (PyErr_Occurred()) return NULL;
    if (ctx_with_cancel(parent, &child, &cancel) != CTX_OK) return PyErr_Format(PyExc_RuntimeError, "ctx_with_cancel");
    return PyLong_FromVoidPtr(child);
}

static PyObject *cancel_it(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    ctx_cancel(cancel);
    ctx_cancel_release(cancel);
    Py_RETURN_NONE;
}

static PyObject *background(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    return PyLong_FromVoidPtr(ctx_background());
}

static PyMethodDef methods[] = {
    {"derive", derive, METH_O, NULL},
    {"cancel", cancel_it, METH_NOARGS, NULL},
    {"background", background, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "ctxext", NULL, -1, methods, NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit_ctxext(void) { return PyModule_Create(&module); }
"""

JOIN = """
import sys
import polyctx
if sys.argv[1] == "join":
    polyctx.c_library()  # makes the core's ctx_* symbols global first
import ctxext

assert ctxext.background() == polyctx.background().to_c()  # the same core's statics
parent, cancel_parent = polyctx.with_cancel(polyctx.background())
child = polyctx.Context.from_c(ctxext.derive(parent.to_c()))
cancel_parent()
assert isinstance(child.err(), polyctx.Canceled)  # derived in C, canceled from Python
ctxext.cancel()
print("one core")
"""


def test_a_c_extension_module_joins_the_one_core(tmp_path):
    """A C extension built against ctx.h without -lctx binds to the core in
    polyctx's extension once polyctx.c_library() has made it global; without
    that call it does not load at all (rather than load a second core)."""
    cc = shutil.which("cc")
    include = sysconfig.get_paths()["include"]
    if cc is None or not (Path(include) / "Python.h").exists():
        pytest.skip("needs a C compiler and Python's headers")
    (tmp_path / "ctxext.c").write_text(EXTENSION)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    subprocess.run(
        [
            cc,
            "-shared",
            "-fPIC",
            "-Wall",
            "-Werror",
            f"-I{include}",
            f"-I{HEADER.parent}",
            "ctxext.c",
            "-o",
            "ctxext" + suffix,
        ],
        cwd=tmp_path,
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, timeout=60)
    joined = run([sys.executable, "-c", JOIN, "join"])
    assert joined.returncode == 0 and joined.stdout == "one core\n", joined.stderr
    alone = run([sys.executable, "-c", JOIN, "alone"])
    assert alone.returncode != 0 and "undefined symbol: ctx_" in alone.stderr, alone.stderr
