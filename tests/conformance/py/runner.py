"""The Python conformance runner: executes scenario files (FORMAT.md) with the
polyctx Python API and prints one line per observation, for check.py to
compare with what Go's own context printed.

Steps prefixed `@c` go through the C ABI, called with ctypes on the symbols
that polyctx's native module exports (one core in the process): contexts,
keys and cancel handles cross between the two sides in both directions.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

import polyctx
from polyctx import CancelCauseFunc, Canceled, CancelFunc, Context, DeadlineExceeded, Key

PREFIXES = ("@c", "@py", "@node")
UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


class StepError(Exception):
    """A step that cannot be performed; reported as `=> error:<message>`."""


def duration_ns(tok: str) -> int:
    body = tok[1:] if tok.startswith("-") else tok
    digits = body.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = body[len(digits) :]
    if not digits.isdigit() or unit not in UNITS:
        raise StepError(f"bad duration {tok}")
    ns = int(digits) * UNITS[unit]
    return -ns if tok.startswith("-") else ns


def err_name(err: BaseException | None) -> str:
    if err is None:
        return "nil"
    if isinstance(err, DeadlineExceeded):
        return "deadline_exceeded"
    if isinstance(err, Canceled):
        return "canceled"
    raise StepError(f"unexpected error {err!r}")


def cause_name(cause: BaseException | None) -> str:
    if cause is None:
        return "nil"
    if isinstance(cause, (Canceled, DeadlineExceeded)):
        return err_name(cause)
    return f"msg:{cause}"


def yes_no(b: bool) -> str:
    return "true" if b else "false"


# --- the C side, through ctypes ----------------------------------------------

C = polyctx.CLibrary
ERR_NAMES = {C.CTX_ERR_NONE: "nil", C.CTX_ERR_CANCELED: "canceled", C.CTX_ERR_DEADLINE_EXCEEDED: "deadline_exceeded"}


class CHandle:
    """A C handle owned by the runner, released with the scenario."""

    def __init__(self, ptr: int, release: Callable[[int], None]) -> None:
        self.ptr, self._release = ptr, release

    def close(self) -> None:
        if self.ptr:
            self._release(self.ptr)
            self.ptr = 0


class Runs:
    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def bump(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()


Cancel = Union[CancelFunc, CancelCauseFunc]


class Scenario:
    def __init__(self, c: polyctx.CLibrary) -> None:
        self.c = c
        self.t0_ns = time.monotonic_ns()
        self.ctxs: dict[str, Context] = {}
        self.cancels: dict[str, Cancel] = {}
        self.c_cancels: dict[str, int] = {}  # C cancel handles of contexts made by C
        self.keys: dict[str, Key] = {}
        # after-func name -> (stop, runs); stop is a StopFunc or a C handle
        self.afters: dict[str, tuple[Any, Runs]] = {}
        self.owned: list[CHandle] = []
        self.last_c_cancel = 0
        self.callbacks: list[Any] = []  # ctypes callbacks must outlive their use

    # -- helpers
    def ctx(self, name: str) -> Context:
        try:
            return self.ctxs[name]
        except KeyError:
            raise StepError(f"unknown context {name}") from None

    def key(self, name: str) -> Key:
        if name not in self.keys:
            self.keys[name] = Key(name)
        return self.keys[name]

    def add(self, name: str, ctx: Context, cancel: Cancel | None = None) -> None:
        if name in self.ctxs:
            raise StepError(f"context {name} already exists")
        self.ctxs[name] = ctx
        if cancel is not None:
            self.cancels[name] = cancel
            if self.last_c_cancel:
                self.c_cancels[name] = self.last_c_cancel
        self.last_c_cancel = 0

    def c_ctx(self, name: str) -> int:
        """A C reference to a context, released with the scenario."""
        h = CHandle(self.ctx(name).to_c(), self.c.ctx_release)
        self.owned.append(h)
        return h.ptr

    def from_c(self, ctx_ptr: int, cancel_ptr: int | None, cause_kind: bool) -> tuple[Context, Cancel | None]:
        """Adopts a context made in C, and its cancel handle, which the runner keeps."""
        ctx = Context.from_c(ctx_ptr)
        self.c.ctx_release(ctx_ptr)
        if cancel_ptr is None:
            return ctx, None
        self.owned.append(CHandle(cancel_ptr, self.c.ctx_cancel_release))
        self.last_c_cancel = cancel_ptr
        return ctx, (CancelCauseFunc if cause_kind else CancelFunc).from_c(cancel_ptr)

    def check(self, status: int, what: str) -> None:
        if status != C.CTX_OK:
            raise StepError(f"{what}: {self.c.ctx_strerror(status).decode()}")

    def release(self) -> None:
        for cancel in self.cancels.values():
            cancel()
        for h in self.owned:
            h.close()
        for stop, _ in self.afters.values():
            if isinstance(stop, CHandle):
                stop.close()

    # -- steps
    def step(self, toks: list[str], lang: str | None) -> str | None:
        op, args = toks[0], toks[1:]
        on_c = lang == "@c"

        def arity(*n: int) -> None:
            if len(args) not in n:
                raise StepError(f"{op} wants {' or '.join(map(str, n))} arguments")

        if op in ("background", "todo"):
            arity(1)
            if on_c:
                self.add(args[0], Context.from_c(self.c.ctx_background() if op == "background" else self.c.ctx_todo()))
            else:
                self.add(args[0], polyctx.background() if op == "background" else polyctx.todo())
        elif op in ("with_cancel", "with_cancel_cause"):
            arity(2)
            parent = self.ctx(args[1])
            if on_c:
                out, cancel = ctypes.c_void_p(), ctypes.c_void_p()
                fn = self.c.ctx_with_cancel if op == "with_cancel" else self.c.ctx_with_cancel_cause
                self.check(fn(self.c_ctx(args[1]), ctypes.byref(out), ctypes.byref(cancel)), op)
                self.add(args[0], *self.from_c(out.value, cancel.value, op == "with_cancel_cause"))
            else:
                fn = polyctx.with_cancel if op == "with_cancel" else polyctx.with_cancel_cause
                ctx, cancel_fn = fn(parent)
                self.add(args[0], ctx, cancel_fn)
        elif op in ("with_timeout", "with_deadline"):
            arity(3, 4)
            self.ctx(args[1])
            ns = duration_ns(args[2])
            msg = args[3] if len(args) == 4 else None
            if on_c:
                out, cancel = ctypes.c_void_p(), ctypes.c_void_p()
                parent = self.c_ctx(args[1])
                at = ns if op == "with_timeout" else self.t0_ns + ns
                if msg is None:
                    fn = self.c.ctx_with_timeout if op == "with_timeout" else self.c.ctx_with_deadline
                    status = fn(parent, at, ctypes.byref(out), ctypes.byref(cancel))
                else:
                    fn = self.c.ctx_with_timeout_cause if op == "with_timeout" else self.c.ctx_with_deadline_cause
                    status = fn(parent, at, msg.encode(), 0, ctypes.byref(out), ctypes.byref(cancel))
                self.check(status, op)
                self.add(args[0], *self.from_c(out.value, cancel.value, False))
            else:
                cause = Exception(msg) if msg is not None else None
                if op == "with_timeout":
                    ctx, cancel_fn = polyctx.with_timeout(self.ctx(args[1]), ns / 1e9, cause)
                else:
                    ctx, cancel_fn = polyctx.with_deadline(self.ctx(args[1]), (self.t0_ns + ns) / 1e9, cause)
                self.add(args[0], ctx, cancel_fn)
        elif op == "with_value":
            arity(4)
            if args[3] == "nil":
                raise StepError("a value cannot be nil")
            self.add(args[0], self.with_value(self.ctx(args[1]), args[2], args[3], on_c))
        elif op == "without_cancel":
            arity(2)
            if on_c:
                out = ctypes.c_void_p()
                self.check(self.c.ctx_without_cancel(self.c_ctx(args[1]), ctypes.byref(out)), op)
                self.add(args[0], self.from_c(out.value, None, False)[0])
            else:
                self.add(args[0], polyctx.without_cancel(self.ctx(args[1])))
        elif op == "chain":
            arity(4)
            self.chain(args, on_c)
        elif op == "cancel":
            arity(1)
            cancel = self.cancel_of(args[0])
            if on_c:
                self.check(self.c.ctx_cancel(self.c_cancel_of(args[0])), op)
            else:
                cancel()
        elif op == "cancel_cause":
            arity(2)
            cancel = self.cancel_of(args[0])
            if not isinstance(cancel, CancelCauseFunc):
                raise StepError(f"{args[0]} has no cancel-cause function")
            if on_c:
                self.check(self.c.ctx_cancel_cause(self.c_cancel_of(args[0]), args[1].encode(), 0), op)
            else:
                cancel(Exception(args[1]))
        elif op == "after_func":
            arity(2)
            self.after_func(args[0], args[1], on_c)
        else:
            return self.observe(op, args, on_c)
        return None

    def cancel_of(self, name: str) -> Cancel:
        try:
            return self.cancels[name]
        except KeyError:
            raise StepError(f"{name} has no cancel function") from None

    def c_cancel_of(self, name: str) -> int:
        try:
            return self.c_cancels[name]
        except KeyError:
            raise StepError(f"{name} was not made in C, so C has no cancel handle for it") from None

    def with_value(self, parent: Context, key: str, value: str, on_c: bool) -> Context:
        if not on_c:
            return polyctx.with_value(parent, self.key(key), value)
        out = ctypes.c_void_p()
        data = value.encode()
        parent_ptr = CHandle(parent.to_c(), self.c.ctx_release)
        try:
            self.check(
                self.c.ctx_with_value_bytes(parent_ptr.ptr, self.key(key).to_c(), data, len(data), ctypes.byref(out)),
                "with_value",
            )
        finally:
            parent_ptr.close()
        return self.from_c(out.value, None, False)[0]

    def chain(self, args: list[str], on_c: bool) -> None:
        name, parent, kind, n_tok = args
        if not n_tok.isdigit() or int(n_tok) < 1:
            raise StepError("bad chain length")
        n = int(n_tok)
        every = top = None
        if kind != "cancel":
            head, _, rest = kind.partition(":")
            k, sep, v = rest.partition(":")
            if head not in ("value", "value_top") or not sep:
                raise StepError(f"bad chain kind {kind}")
            every, top = ((k, v), None) if head == "value" else (None, (k, v))
        ctx = self.ctx(parent)
        last_cancel: Cancel | None = None
        for i in range(n):
            spec = every or (top if i == 0 else None)
            if spec is not None:
                ctx = self.with_value(ctx, spec[0], spec[1], on_c)
                last_cancel = None
            elif on_c:
                out, cancel = ctypes.c_void_p(), ctypes.c_void_p()
                parent_ptr = CHandle(ctx.to_c(), self.c.ctx_release)
                try:
                    self.check(self.c.ctx_with_cancel(parent_ptr.ptr, ctypes.byref(out), ctypes.byref(cancel)), "chain")
                finally:
                    parent_ptr.close()
                ctx, last_cancel = self.from_c(out.value, cancel.value, False)
            else:
                ctx, last_cancel = polyctx.with_cancel(ctx)
        self.add(name, ctx, last_cancel)

    def after_func(self, name: str, ctx_name: str, on_c: bool) -> None:
        if name in self.afters:
            raise StepError(f"after-func {name} already exists")
        runs = Runs()
        ctx = self.ctx(ctx_name)
        if on_c:
            callback = polyctx.CALLBACK(lambda _userdata: runs.bump())
            self.callbacks.append(callback)
            out = ctypes.c_void_p()
            self.check(
                self.c.ctx_after_func(self.c_ctx(ctx_name), callback, None, None, ctypes.byref(out)), "after_func"
            )
            self.afters[name] = (CHandle(out.value, self.c.ctx_after_func_release), runs)
        else:
            self.afters[name] = (polyctx.after_func(ctx, runs.bump), runs)

    def observe(self, op: str, args: list[str], on_c: bool) -> str:
        def want(n: int) -> None:
            if len(args) != n:
                raise StepError(f"{op} wants {n} arguments")

        if op == "err":
            want(1)
            if on_c:
                return ERR_NAMES[self.c.ctx_err(self.c_ctx(args[0]))]
            return err_name(self.ctx(args[0]).err())
        if op == "cause":
            want(1)
            if on_c:
                return self.c_cause(self.c_ctx(args[0]))
            return cause_name(polyctx.cause(self.ctx(args[0])))
        if op == "done":
            want(1)
            if on_c:
                return yes_no(self.c.ctx_is_done(self.c_ctx(args[0])))
            return yes_no(self.ctx(args[0]).is_done())
        if op == "deadline":
            want(1)
            return "none" if self.deadline_ns(args[0], on_c) is None else "set"
        if op == "deadline_cmp":
            want(2)
            a, b = self.deadline_ns(args[0], on_c), self.deadline_ns(args[1], on_c)
            if a is None or b is None:
                return "none"
            return "before" if a < b else "equal" if a == b else "after"
        if op == "deadline_within":
            want(2)
            limit = duration_ns(args[1])
            d = self.deadline_ns(args[0], on_c)
            now = self.c.ctx_now_ns() if on_c else time.monotonic_ns()
            return yes_no(d is not None and d <= now + limit)
        if op == "value":
            want(2)
            if on_c:
                return self.c_value(self.c_ctx(args[0]), args[1])
            value = self.ctx(args[0]).value(self.key(args[1]))
            if isinstance(value, bytes):  # stored from C
                value = value.decode()
            return "nil" if value is None else str(value)
        if op == "wait":
            want(2)
            ns = duration_ns(args[1])
            if on_c:
                ptr = self.c_ctx(args[0])
                return yes_no(self.c.ctx_is_done(ptr) or (ns > 0 and self.c.ctx_wait(ptr, ns) == C.CTX_OK))
            ctx = self.ctx(args[0])
            return yes_no(ctx.is_done() or (ns > 0 and ctx.wait(ns / 1e9)))
        if op == "stop":
            want(1)
            stop, _ = self.after_of(args[0])
            if isinstance(stop, CHandle):
                stopped = ctypes.c_bool()
                self.check(self.c.ctx_after_func_stop(stop.ptr, ctypes.byref(stopped)), op)
                return yes_no(stopped.value)
            return yes_no(stop())
        if op in ("ran", "runs"):
            want(2 if op == "ran" else 1)
            _, runs = self.after_of(args[0])
            if op == "runs":
                with runs.changed:
                    return str(runs.count)
            timeout = max(duration_ns(args[1]), 0) / 1e9
            with runs.changed:
                return yes_no(runs.changed.wait_for(lambda: runs.count > 0, timeout))
        raise StepError(f"unknown operation {op}")

    def after_of(self, name: str) -> tuple[Any, Runs]:
        try:
            return self.afters[name]
        except KeyError:
            raise StepError(f"unknown after-func {name}") from None

    def deadline_ns(self, name: str, on_c: bool) -> int | None:
        if on_c:
            out = ctypes.c_int64()
            status = self.c.ctx_deadline(self.c_ctx(name), ctypes.byref(out))
            return None if status == C.CTX_ENODEADLINE else out.value
        d = self.ctx(name).deadline()
        return None if d is None else round(d * 1e9)

    def c_cause(self, ptr: int) -> str:
        buf = ctypes.create_string_buffer(256)
        code, n = ctypes.c_int64(), ctypes.c_size_t()
        status = self.c.ctx_cause(ptr, buf, len(buf), ctypes.byref(code), ctypes.byref(n))
        if status == C.CTX_ENOTDONE:
            return "nil"
        self.check(status, "cause")
        text = buf.value.decode()
        err = self.c.ctx_err(ptr)
        if err != C.CTX_ERR_NONE and code.value == 0 and text.encode() == self.c.ctx_err_string(err):
            return ERR_NAMES[err]
        return f"msg:{text}"

    def c_value(self, ptr: int, key: str) -> str:
        data, n, kind = ctypes.c_void_p(), ctypes.c_size_t(), ctypes.c_int()
        status = self.c.ctx_value(ptr, self.key(key).to_c(), ctypes.byref(data), ctypes.byref(n), ctypes.byref(kind))
        if status == C.CTX_ENOTFOUND:
            return "nil"
        self.check(status, "value")
        if kind.value == C.CTX_VALUE_BYTES:  # stored from C
            return ctypes.string_at(data.value, n.value).decode()
        # Scenarios store pointers only from Python: a PyObject*, borrowed.
        return str(ctypes.cast(data, ctypes.py_object).value)


def run(name: str, source: str, c: polyctx.CLibrary) -> list[str]:
    s = Scenario(c)
    out = []
    try:
        for number, line in enumerate(source.splitlines(), 1):
            toks = line.split()
            if not toks or toks[0].startswith("#"):
                continue
            lang = toks.pop(0) if toks[0].startswith("@") else None
            head = f"{name}:{number} {' '.join(toks)}"
            try:
                if lang is not None and lang not in PREFIXES:
                    raise StepError(f"unknown prefix {lang}")
                if not toks:
                    raise StepError("no operation")
                result = s.step(toks, lang)
            except StepError as e:
                out.append(f"{head} => error:{e}")
                break
            if result is not None:
                out.append(f"{head} => {result}")
    finally:
        s.release()
    return out


def main(paths: list[str]) -> int:
    c = polyctx.c_library()
    for path in paths:
        try:
            source = Path(path).read_text()
        except OSError as e:
            print(f"runner.py: cannot read {path}: {e}", file=sys.stderr)
            return 1
        for line in run(Path(path).stem, source, c):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
