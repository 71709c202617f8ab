"""polyctx for Python, side by side with asyncio and anyio (`make bench-py`).

Every figure is the median of several repetitions (p99: the nearest-rank
99th percentile of them), the candidates of each comparison interleaved so
that machine noise hits them alike. Targets from issue 4 are printed beside
the results.

    bench.py [--json] [--quick]
    bench.py --lateness LABEL      deadline-to-code lateness only (bench/run.py)
    bench.py --memory-of KIND N    one memory row, in a process of its own
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import anyio

import polyctx
from polyctx import _native, background, current, scope, with_cancel, with_timeout

# `--json`: JSON lines on stdout for bench/run.py (the human report goes to stderr).
JSON = "--json" in sys.argv
QUICK = "--quick" in sys.argv
REPS = 3 if QUICK else 7
SCALE = 5 if QUICK else 1  # fewer iterations per sample when quick
AREA = "python"


def say(*args: object) -> None:
    print(*args, file=sys.stderr if JSON else sys.stdout)


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank quantile, as bench/rust's harness takes it."""
    ordered = sorted(samples)
    return ordered[round((len(ordered) - 1) * q)]


def emit(op: str, impl: str, samples: list[float], unit: str = "ns_per_op") -> None:
    """One result line for bench/run.py's table: the median and p99 of
    `samples` (seconds per operation, or bytes)."""
    if JSON:
        scale = 1e9 if unit == "ns_per_op" else 1
        row = {
            "area": AREA,
            "op": op,
            "impl": impl,
            "unit": unit,
            "value": round(statistics.median(samples) * scale, 3),
            "p99": round(percentile(samples, 0.99) * scale, 3),
        }
        print(json.dumps(row, ensure_ascii=False))


def median_us(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e6:8.3f} µs"


def per_op(fn: Callable[[int], None], n: int) -> float:
    t = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t) / n


async def per_op_async(fn: Callable[[int], Awaitable[None]], n: int) -> float:
    t = time.perf_counter()
    await fn(n)
    return (time.perf_counter() - t) / n


def interleave(cases: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPS):
        for name, case in cases.items():
            results[name].append(case())
    return results


# -- scope enter/exit --------------------------------------------------------


# Each loop lets the event loop turn every TURN scopes, as a server's loop
# turns between requests: asyncio.timeout and anyio leave a cancelled timer
# handle in the loop's heap per scope, which only a turn of the loop clears,
# and a loop that never turns would charge them a heap ever deeper.
TURN = 100


async def scope_with_timeout(n: int) -> None:
    for i in range(n):
        async with scope(with_timeout(current(), 3600)):
            pass
        if i % TURN == TURN - 1:
            await asyncio.sleep(0)


async def asyncio_timeout(n: int) -> None:
    for i in range(n):
        async with asyncio.timeout(3600):
            pass
        if i % TURN == TURN - 1:
            await asyncio.sleep(0)


async def anyio_fail_after(n: int) -> None:
    for i in range(n):
        with anyio.fail_after(3600):
            pass
        if i % TURN == TURN - 1:
            await asyncio.sleep(0)


async def bench_scopes() -> None:
    n = 20_000 // SCALE
    cases = {
        "polyctx scope(with_timeout(current(), 3600))": scope_with_timeout,
        "anyio fail_after(3600)": anyio_fail_after,
    }
    if sys.version_info >= (3, 11):
        cases["asyncio.timeout(3600)"] = asyncio_timeout
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPS):
        for name, fn in cases.items():
            results[name].append(await per_op_async(fn, n))
    say(f"async with ... enter + exit (deadline an hour away; the loop turns every {TURN}):")
    impls = {"polyctx scope(with_timeout(current(), 3600))": "polyctx", "anyio fail_after(3600)": "anyio fail_after"}
    impls["asyncio.timeout(3600)"] = "asyncio.timeout"
    for name, samples in results.items():
        say(f"  {name:<46} {median_us(samples)}")
        emit("scope with a deadline, enter+exit", impls[name], samples)
    if "asyncio.timeout(3600)" in results:
        ours = statistics.median(results["polyctx scope(with_timeout(current(), 3600))"])
        theirs = statistics.median(results["asyncio.timeout(3600)"])
        say(f"  -> {theirs / ours:.2f}x asyncio.timeout (target: >= 2x, <= 1.9 µs on the issue's machine)")


# -- nested scopes -------------------------------------------------------------


async def nested(depth: int, make: Callable[[], contextlib.AbstractAsyncContextManager[object]]) -> float:
    t = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(depth):
            await stack.enter_async_context(make())
    return time.perf_counter() - t


async def bench_nested() -> None:
    say("nested deadline scopes (enter all, then exit all):")
    kinds: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[object]]] = {
        "polyctx scope": lambda: scope(with_timeout(current(), 3600)),
    }
    if sys.version_info >= (3, 11):
        kinds["asyncio.timeout"] = lambda: asyncio.timeout(3600)
    for name, make in kinds.items():
        per_scope = {}
        for depth in (1_000, 10_000) if QUICK else (1_000, 10_000, 100_000):
            samples = [await nested(depth, make) for _ in range(3 if depth == 100_000 else REPS)]
            total = statistics.median(samples)
            per_scope[depth] = total / depth
            say(f"  {name:<16} {depth:>7} {total * 1e3:9.1f} ms  ({total / depth * 1e6:.2f} µs per scope)")
            impl = "polyctx" if name == "polyctx scope" else name
            emit(f"nested deadline scopes at depth {depth}, per scope", impl, [t / depth for t in samples])
        growth = per_scope[max(per_scope)] / per_scope[1_000]
        say(f"  -> {name}: per-scope cost grows {growth:.2f}x from 10^3 to {max(per_scope):,} (linear: ~1x)")


# -- waking many tasks ---------------------------------------------------------


async def wake_done(n: int) -> float:
    ctx, cancel = with_cancel(background())
    tasks = [asyncio.create_task(_await(ctx.done())) for _ in range(n)]
    await asyncio.sleep(0)
    t = time.perf_counter()
    cancel()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t


async def _await(fut: Awaitable[None]) -> None:
    await fut


async def wake_scopes(n: int) -> float:
    ctx, cancel = with_cancel(background())

    async def body() -> None:
        try:
            async with scope(ctx):
                await asyncio.sleep(3600)
        except polyctx.Canceled:
            pass

    tasks = [asyncio.create_task(body()) for _ in range(n)]
    await asyncio.sleep(0)
    t = time.perf_counter()
    cancel()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t


async def wake_event(n: int) -> float:
    """The like-for-like peer of awaiting ctx.done(): tasks awaiting one
    asyncio.Event, then one set()."""
    event = asyncio.Event()
    tasks = [asyncio.create_task(event.wait()) for _ in range(n)]
    await asyncio.sleep(0)
    t = time.perf_counter()
    event.set()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t


async def cancel_each(n: int) -> float:
    async def body() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

    tasks = [asyncio.create_task(body()) for _ in range(n)]
    await asyncio.sleep(0)
    t = time.perf_counter()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks)
    return time.perf_counter() - t


async def bench_wake() -> None:
    n = 10_000
    cases = {
        "await ctx.done() x10,000, one cancel()": wake_done,
        "await event.wait() x10,000, one set()": wake_event,
        "scope(ctx) x10,000, one cancel()": wake_scopes,
        "task.cancel() each of 10,000": cancel_each,
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(REPS):
        for name, fn in cases.items():
            results[name].append(await fn(n))
    say("waking 10,000 waiting tasks (cancel until every task has finished):")
    for name, samples in results.items():
        say(f"  {name:<46} {statistics.median(samples) * 1e3:8.2f} ms")
    say("  -> target: <= 40 ms; scope(ctx) at least as fast as task.cancel() each")
    emit("wake 10,000 tasks awaiting ctx.done()", "polyctx", results["await ctx.done() x10,000, one cancel()"])
    emit("wake 10,000 tasks awaiting ctx.done()", "asyncio.Event", results["await event.wait() x10,000, one set()"])
    emit("wake 10,000 tasks in scope(ctx)", "polyctx", results["scope(ctx) x10,000, one cancel()"])
    emit("wake 10,000 tasks in scope(ctx)", "task.cancel() each", results["task.cancel() each of 10,000"])


# -- thread to loop --------------------------------------------------------------


async def thread_wake_latency(samples: int, use_polyctx: bool) -> list[float]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(samples):
        stamp = [0.0]
        if use_polyctx:
            ctx, cancel = with_cancel(background())
            waiting = ctx.done()

            def fire(cancel: Callable[[], None] = cancel, stamp: list[float] = stamp) -> None:
                stamp[0] = time.perf_counter()
                cancel()

        else:
            waiting = loop.create_future()

            def fire(fut: asyncio.Future[None] = waiting, stamp: list[float] = stamp) -> None:
                stamp[0] = time.perf_counter()
                loop.call_soon_threadsafe(fut.set_result, None)

        t = threading.Thread(target=fire)
        t.start()
        await waiting
        out.append(time.perf_counter() - stamp[0])
        t.join()
    return out


async def c_thread_wake_latency(samples: int) -> list[float]:
    """A thread that does not hold the GIL cancels (ctypes releases it around
    C calls): the latency of the mechanism itself, eventfd to resumed task."""
    import ctypes

    c = polyctx.c_library()
    out = []
    for _ in range(samples):
        ptr, cancel_ptr = ctypes.c_void_p(), ctypes.c_void_p()
        c.ctx_with_cancel(c.ctx_background(), ctypes.byref(ptr), ctypes.byref(cancel_ptr))
        ctx = polyctx.Context.from_c(ptr.value)
        waiting = ctx.done()
        stamp = [0]

        def fire(cancel_ptr: int = cancel_ptr.value, stamp: list[int] = stamp) -> None:
            stamp[0] = time.monotonic_ns()
            c.ctx_cancel(cancel_ptr)

        t = threading.Thread(target=fire)
        t.start()
        await waiting
        out.append((time.monotonic_ns() - stamp[0]) / 1e9)
        t.join()
        c.ctx_release(ptr)
        c.ctx_cancel_release(cancel_ptr)
    return out


async def timer_thread_wake_latency(samples: int) -> list[float]:
    """Deadlines fire on the core's timer thread, which never holds the GIL:
    from its write to the loop's fd until the awaiting task runs."""
    from polyctx._asyncio import _waker

    waker = _waker(asyncio.get_running_loop())
    out = []
    for _ in range(samples):
        ctx, cancel = with_timeout(background(), 0.0005)
        await ctx.done()
        out.append((time.monotonic_ns() - waker.signaled_at_ns) / 1e9)
        cancel()
    return out


async def bench_thread_wake() -> None:
    say("thread-to-loop wake latency (a thread cancels; the awaiting task resumes):")
    count = 500 // SCALE
    samples = await timer_thread_wake_latency(count)
    say(f"  {'timer thread (deadline) -> await ctx.done()':<46} {median_us(samples)}")
    emit("wake the loop from the timer thread", "polyctx", samples)
    if hasattr(polyctx, "c_library"):
        samples = await c_thread_wake_latency(count)
        say(f"  {'C thread ctx_cancel() -> await ctx.done()':<46} {median_us(samples)}")
        emit("wake the loop from a C thread (ctypes)", "polyctx", samples)
    for name, flag in (
        ("Python thread cancel() -> await ctx.done()", True),
        ("call_soon_threadsafe(fut.set_result)", False),
    ):
        samples = await thread_wake_latency(count, flag)
        say(f"  {name:<46} {median_us(samples)}")
        emit("wake the loop from a Python thread", "polyctx" if flag else "call_soon_threadsafe", samples)
    say("  -> target: <= 10 µs (a Python thread also waits for the GIL, whichever way it wakes the loop)")


# -- synchronous costs -----------------------------------------------------------


def derive_cancel(n: int) -> None:
    bg = background()
    for _ in range(n):
        _ctx, cancel = with_cancel(bg)
        cancel()


def derive_timeout_cancel(n: int) -> None:
    bg = background()
    for _ in range(n):
        _ctx, cancel = with_timeout(bg, 3600)
        cancel()


def err_live(n: int) -> None:
    ctx, cancel = with_cancel(background())
    err = ctx.err
    for _ in range(n):
        err()
    cancel()


def is_done(n: int) -> None:
    ctx, cancel = with_cancel(background())
    done = ctx.is_done
    for _ in range(n):
        done()
    cancel()


def untracked(fn: Callable[[int], None]) -> Callable[[int], None]:
    def run(n: int) -> None:
        _native._track_origins(False)
        try:
            fn(n)
        finally:
            _native._track_origins(True)

    return run


def bench_sync() -> None:
    n = 200_000 // SCALE
    results = interleave(
        {
            "with_cancel + cancel()": lambda: per_op(derive_cancel, n),
            "with_cancel + cancel(), no lostcancel origin": lambda: per_op(untracked(derive_cancel), n),
            "with_timeout(3600) + cancel()": lambda: per_op(derive_timeout_cancel, n),
            "ctx.err() (live)": lambda: per_op(err_live, n),
            "ctx.is_done()": lambda: per_op(is_done, n),
        }
    )
    say("synchronous calls:")
    for name, samples in results.items():
        say(f"  {name:<46} {median_us(samples)}")
    tracked = statistics.median(results["with_cancel + cancel()"])
    bare = statistics.median(results["with_cancel + cancel(), no lostcancel origin"])
    say(f"  -> lostcancel origin tracking costs {(tracked - bare) * 1e9:.0f} ns per cancel function")
    for op, name in (
        ("derive+cancel", "with_cancel + cancel()"),
        ("derive+cancel, lostcancel tracking off", "with_cancel + cancel(), no lostcancel origin"),
        ("derive+cancel with deadline", "with_timeout(3600) + cancel()"),
        ("err", "ctx.err() (live)"),
        ("is_done", "ctx.is_done()"),
    ):
        emit(op, "polyctx", results[name])


# -- after-funcs at scale -------------------------------------------------------


def after_funcs_once(count: int) -> tuple[float, float]:
    """`count` after_funcs on one context, one cancel: (when the cancel
    returned, when every function had run), in seconds from the cancel."""
    ctx, cancel = with_cancel(background())
    ran = [0]
    all_ran = threading.Event()
    lock = threading.Lock()

    def fn() -> None:
        with lock:
            ran[0] += 1
            if ran[0] == count:
                all_ran.set()

    stops = [polyctx.after_func(ctx, fn) for _ in range(count)]
    began = time.perf_counter()
    cancel()
    returned = time.perf_counter() - began
    if not all_ran.wait(60):
        raise RuntimeError(f"only {ran[0]} of {count} after-funcs ran within a minute")
    finished = time.perf_counter() - began
    del stops
    return returned, finished


def bench_after_funcs() -> None:
    count = 10_000
    samples = [after_funcs_once(count) for _ in range(REPS)]
    returned = statistics.median(s[0] for s in samples)
    ran = statistics.median(s[1] for s in samples)
    say(f"{count:,} after-funcs on one context (each a Python call on a pool thread):")
    say(f"  {'cancel returns':<46} {returned * 1e3:8.2f} ms")
    say(f"  {'all have run':<46} {ran * 1e3:8.2f} ms   (target: <= 200 ms)")
    say(f"  {'worst run, all have run':<46} {max(s[1] for s in samples) * 1e3:8.2f} ms")
    emit("10k after-funcs: cancel returns", "polyctx", [s[0] for s in samples])
    emit("10k after-funcs: all have run", "polyctx", [s[1] for s in samples])


# -- per-request overhead in a real server --------------------------------------


async def _plain_app(
    scope: dict[str, object], receive: Callable[[], Awaitable[object]], send: Callable[[object], Awaitable[None]]
) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _serve(kind: str) -> None:
    """The server process of the overhead bench: uvicorn (httptools) on a
    port the kernel picks, printed on stdout; runs until killed."""
    import socket

    import uvicorn

    from polyctx.asgi import PolyctxMiddleware

    app = PolyctxMiddleware(_plain_app) if kind == "polyctx" else _plain_app
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn is up
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, http="httptools", log_level="warning", lifespan="off")).run(sockets=[sock])


def _requests(port: int, n: int) -> float:
    """`n` keep-alive GETs one after another; seconds per request."""
    import socket

    request = b"GET / HTTP/1.1\r\nHost: bench\r\nRequest-Timeout-Ms: 5000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        began = time.perf_counter()
        for _ in range(n):
            sock.sendall(request)
            data = b""
            while not data.endswith(b"ok"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                data += chunk
        return (time.perf_counter() - began) / n


def bench_asgi_overhead() -> None:
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        say("per-request overhead: skipped (uvicorn is not installed)")
        return
    import subprocess

    servers = {}
    try:
        for kind in ("plain", "polyctx"):
            proc = subprocess.Popen([sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            servers[kind] = (proc, int(proc.stdout.readline()))
        n = 2_000 // SCALE
        for port in (p for _, p in servers.values()):
            _requests(port, 200)  # warm up
        results = interleave({kind: (lambda port=port: _requests(port, n)) for kind, (_, port) in servers.items()})
    finally:
        for proc, _ in servers.values():
            proc.kill()
            proc.wait()
    plain, mine = statistics.median(results["plain"]), statistics.median(results["polyctx"])
    say("per-request overhead, uvicorn (httptools) + a trivial ASGI app, sequential keep-alive requests:")
    say(f"  {'without the middleware':<46} {plain * 1e6:8.1f} µs per request")
    say(f"  {'with PolyctxMiddleware (budget header sent)':<46} {mine * 1e6:8.1f} µs per request")
    say(f"  -> the middleware adds {(mine - plain) * 1e6:.1f} µs per request ({mine / plain:.2f}x)")
    emit("per-request, uvicorn + ASGI app", "polyctx", results["polyctx"])
    emit("per-request, uvicorn + ASGI app", "without middleware", results["plain"])


# -- crossing languages ------------------------------------------------------------


def bench_crossing() -> None:
    """A context handed between Python and C code in the same process, per
    operation: C calls made through ctypes, as a Python program drives a C
    library. The floor is what any handoff through ctypes costs: two calls."""
    c = polyctx.c_library()
    ctx, cancel = with_cancel(background())
    from_c = polyctx.Context.from_c
    n = 100_000 // SCALE

    def to_c(n: int) -> None:
        release = c.ctx_release
        for _ in range(n):
            release(ctx.to_c())

    def ptr_from_c(n: int) -> None:
        ptr = ctx.to_c()
        for _ in range(n):
            from_c(ptr)
        c.ctx_release(ptr)

    def round_trip(n: int) -> None:
        release = c.ctx_release
        for _ in range(n):
            ptr = ctx.to_c()
            from_c(ptr)
            release(ptr)

    def floor(n: int) -> None:
        ptr = ctx.to_c()
        retain, release = c.ctx_retain, c.ctx_release
        for _ in range(n):
            release(retain(ptr))
        release(ptr)

    results = interleave(
        {
            "Python -> C: ctx.to_c(), C's ctx_release": lambda: per_op(to_c, n),
            "C -> Python: Context.from_c(ptr)": lambda: per_op(ptr_from_c, n),
            "round trip: to_c, from_c, ctx_release": lambda: per_op(round_trip, n),
            "floor: ctx_retain + ctx_release through ctypes": lambda: per_op(floor, n),
        }
    )
    cancel()
    say("a context crossing between Python and C (ctypes) in one process:")
    for name, samples in results.items():
        say(f"  {name:<46} {median_us(samples)}")
    peer = results["floor: ctx_retain + ctx_release through ctypes"]
    for op, name in (
        ("hand a context to C (to_c + C's release)", "Python -> C: ctx.to_c(), C's ctx_release"),
        ("take a context from C (from_c)", "C -> Python: Context.from_c(ptr)"),
        ("C <-> Python round trip (to_c, from_c, release)", "round trip: to_c, from_c, ctx_release"),
    ):
        emit(op, "polyctx", results[name])
    emit("hand a context to C (to_c + C's release)", "two ctypes calls (retain + release)", peer)


# -- memory per context --------------------------------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def _heap_in_use() -> int:
    """glibc's bytes in use, chunk headers included (small chunks and mapped blocks)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


MEMORY_KINDS = {
    # kind: (operation, implementation)
    "context": ("bytes per live context (Python + native)", "polyctx"),
    "event": ("bytes per live context (Python + native)", "asyncio.Event()"),
    "deadline": ("bytes per live deadline context (Python + native)", "polyctx"),
    "call_later": ("bytes per live deadline context (Python + native)", "loop.call_later handle"),
    "value": ("bytes per live value context (Python + native)", "polyctx"),
}


def memory_of(kind: str, count: int) -> None:
    """In a process of its own, run with PYTHONMALLOC=malloc so that Python's
    objects and the native core's allocations are both in glibc's count:
    bytes per live object of one kind, `count` of them (each context with
    its cancel function, as a request holds them)."""
    key: polyctx.Key[int] = polyctx.Key("k")
    loop = asyncio.new_event_loop()
    parent, keep = with_cancel(background())
    make: Callable[[], object] = {
        "context": lambda: with_cancel(parent),
        "event": asyncio.Event,
        "deadline": lambda: with_timeout(parent, 3600),
        "call_later": lambda: loop.call_later(3600, int),
        "value": lambda: polyctx.with_value(parent, key, 7),
    }[kind]
    live: list[object] = [None] * count
    make()  # first-use allocations (the timer's heap, caches) are not per object
    gc.collect()
    before = _heap_in_use()
    for i in range(count):
        live[i] = make()
    gc.collect()
    after = _heap_in_use()
    op, impl = MEMORY_KINDS[kind]
    emit(op, impl, [(after - before) / count], unit="bytes")
    del live
    keep()
    loop.close()


def bench_memory() -> None:
    count = 200_000 // SCALE
    say(f"bytes per live object ({count:,} alive; glibc heap with PYTHONMALLOC=malloc, so Python objects count too):")
    env = dict(os.environ, PYTHONMALLOC="malloc")
    for kind, (op, impl) in MEMORY_KINDS.items():
        args = [sys.executable, __file__, "--memory-of", kind, str(count), "--json"]
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                say(f"  {op:<52} {impl:<24} {row['value']:8.0f} B")
                if JSON:
                    print(line)


# -- deadline lateness ---------------------------------------------------------------


def lateness(label: str) -> None:
    """From a context's deadline to the code waiting on it running again,
    p50/p99/max over deadlines 2 to 3.8 ms ahead, each beside its floor: the
    same loop's own timer (asyncio), or the same thread sleeping (threads).
    bench/run.py runs this idle and under bench/load.py's load."""
    count = 50 if QUICK else 300
    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    scope_op = "python (asyncio): task in scope(ctx), cancelled at the deadline"
    done_op = "python (asyncio): task awaiting ctx.done()"
    timer_op = "python (asyncio): of which the timer thread signalling the loop"
    thread_op = "python: thread blocked in ctx.wait()"

    async def run() -> None:
        from polyctx._asyncio import _waker

        loop = asyncio.get_running_loop()
        waker = _waker(loop)
        for i in range(count):
            ahead = 0.002 + (i % 7) * 0.0003
            ctx, cancel = with_timeout(background(), ahead)
            deadline = ctx.deadline()
            assert deadline is not None
            try:
                async with scope(ctx):
                    await asyncio.sleep(3600)
            except polyctx.DeadlineExceeded:
                pass
            rows[scope_op, "polyctx"].append(time.monotonic() - deadline)
            rows[timer_op, "polyctx"].append(waker.signaled_at_ns / 1e9 - deadline)
            cancel()
            if sys.version_info >= (3, 11):
                deadline = loop.time() + ahead
                try:
                    async with asyncio.timeout_at(deadline):
                        await asyncio.sleep(3600)
                except TimeoutError:
                    pass
                rows[scope_op, "asyncio.timeout_at"].append(time.monotonic() - deadline)

            ctx, cancel = with_timeout(background(), ahead)
            deadline = ctx.deadline()
            assert deadline is not None
            await ctx.done()
            rows[done_op, "polyctx"].append(time.monotonic() - deadline)
            cancel()
            deadline = loop.time() + ahead
            await asyncio.sleep(deadline - loop.time())
            rows[done_op, "asyncio.sleep"].append(time.monotonic() - deadline)

            ctx, cancel = with_timeout(background(), ahead)
            deadline = ctx.deadline()
            assert deadline is not None
            ctx.wait()
            rows[thread_op, "polyctx"].append(time.monotonic() - deadline)
            cancel()
            deadline = time.monotonic() + ahead
            time.sleep(deadline - time.monotonic())
            rows[thread_op, "time.sleep"].append(time.monotonic() - deadline)

    asyncio.run(run())
    for (op, impl), samples in rows.items():
        samples = [max(0.0, x) for x in samples]
        row = {
            "area": "lateness",
            "op": op,
            "impl": impl,
            "unit": "ns_per_op",
            "load": label,
            "value": round(percentile(samples, 0.5) * 1e9),
            "p99": round(percentile(samples, 0.99) * 1e9),
            "max": round(max(samples) * 1e9),
        }
        if JSON:
            print(json.dumps(row))
        else:
            p50, p99, most = (row[k] / 1e3 for k in ("value", "p99", "max"))
            say(f"{op:<66} {impl:<20} p50 {p50:8.0f} µs  p99 {p99:8.0f}  max {most:8.0f}")


def main() -> None:
    global AREA
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2])
        return
    if "--lateness" in sys.argv:
        lateness(sys.argv[sys.argv.index("--lateness") + 1])
        return
    if sys.argv[1:2] == ["--memory-of"]:
        memory_of(sys.argv[2], int(sys.argv[3]))
        return
    say(f"polyctx bench: Python {sys.version.split()[0]}, medians of {REPS} interleaved runs")
    bench_sync()
    bench_crossing()
    bench_memory()
    bench_after_funcs()
    bench_asgi_overhead()
    for loop_name, factory in [("asyncio", asyncio.new_event_loop), ("uvloop", _uvloop_factory())]:
        if factory is None:
            continue
        AREA = "python" if loop_name == "asyncio" else "python (uvloop)"
        say(f"--- event loop: {loop_name}")
        loop = factory()
        try:
            loop.run_until_complete(_async_main())
        finally:
            loop.close()


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _async_main() -> None:
    await bench_scopes()
    await bench_wake()
    await bench_thread_wake()
    await bench_nested()


if __name__ == "__main__":
    main()
