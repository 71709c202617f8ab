"""The Python examples of the README, the Python guide (docs/python.md) and
the PyPI page (py/README.md), and the demo, run here, so they never rot; the
cause table of docs/wire.md is checked against the core's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "python.md"
PACKAGE_README = ROOT / "py" / "README.md"
# The README's "## Python" section (up to the next "## " heading), and the
# guide and the package page whole.
SOURCES = {
    README: re.search(r"^## Python\n(.*?)(?=^## |\Z)", README.read_text(), re.S | re.M).group(1),
    GUIDE: GUIDE.read_text(),
    PACKAGE_README: PACKAGE_README.read_text(),
}
# Each example once, wherever it is shown; ORIGIN names where for tracebacks.
ORIGIN = {}
for path, text in SOURCES.items():
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        ORIGIN.setdefault(block, path)
BLOCKS = list(ORIGIN)


def test_readme_has_examples():
    counts = {path.name: len(re.findall(r"```python\n", text)) for path, text in SOURCES.items()}
    assert counts["python.md"] >= 5 and counts["README.md"] >= 1, counts
    assert len(re.findall(r"```python\n", SOURCES[PACKAGE_README])) == 1


# The integrations' libraries are not installed everywhere the suite runs (3.9).
OPTIONAL = ("fastapi", "httpx", "uvicorn", "starlette", "grpc", "opentelemetry")


def run_block(code):
    namespace = {"__name__": "readme"}
    try:
        exec(compile(code, str(ORIGIN.get(code, README)), "exec"), namespace)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"{e.name} is not installed")
        raise
    return namespace


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example(code):
    run_block(code)


def test_fastapi_fanout_example():
    """The README's FastAPI gateway, end to end on uvicorn against three real
    backends: partial results at the deadline, then a client that hangs up."""
    (code,) = [b for b in BLOCKS if "FastAPI()" in b]
    assert len([line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]) < 20
    gateway = run_block(code)
    from _servers import Events, raw_request, read_response, serve
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    import polyctx
    from polyctx import wire
    from polyctx.asgi import PolyctxMiddleware, RequestCounters

    events, counters = Events(), RequestCounters("backends")

    def backend(name, seconds):
        async def search(request):
            ctx = polyctx.current()
            events.set(f"{name}.started")
            try:
                async with polyctx.scope(ctx):
                    await asyncio.sleep(seconds)
            finally:
                events.set(f"{name}.ended", wire.EndReason.of(ctx))
            return JSONResponse({"backend": name, "q": request.query_params["q"]})

        routes = [Route("/search", search)]
        policy = wire.Policy.internal()
        return Starlette(routes=routes, middleware=[Middleware(PolyctxMiddleware, policy=policy, counters=counters)])

    import asyncio
    import contextlib
    import json
    import time

    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(serve(backend(n, s))) for n, s in (("a", 0.01), ("b", 0.02), ("slow", 30))]
        gateway["BACKENDS"][:] = urls
        url = stack.enter_context(serve(gateway["app"]))

        # Partial results at the deadline: the slow backend's call is cut at 300 ms.
        sock = raw_request(url, "/search?q=polyctx", {"request-timeout-ms": "300", "Connection": "close"})
        began = time.monotonic()
        status, body = read_response(sock)
        sock.close()
        took = time.monotonic() - began
        got = json.loads(body)
        assert status == 200 and got["partial"] is True, got
        assert sorted(r["backend"] for r in got["results"]) == ["a", "b"]
        assert 0.25 < took < 5, took
        assert events.wait("slow.ended") in (wire.EndReason.DEADLINE_EXCEEDED, wire.EndReason.CLIENT_DISCONNECTED)
        assert counters.wait_idle(10)

        # The client hangs up at 200 ms: the slow backend's request ends at once.
        for name in ("a", "b", "slow"):
            events.event(f"{name}.started").clear()
            events.event(f"{name}.ended").clear()
        sock = raw_request(url, "/search?q=polyctx", {"request-timeout-ms": "5000"})
        events.wait("slow.started")
        sock.close()
        hung_up = time.monotonic()
        assert events.wait("slow.ended") is wire.EndReason.CLIENT_DISCONNECTED
        assert events.values["slow.ended.at"] - hung_up < 1.0
        assert counters.wait_idle(10) and counters.in_flight == 0


def test_fanout_demo():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "fanout.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.count(" answered for 4bf92f3577b34da6 ") == 2
    assert out.count(" stopped: request budget of 150ms spent, would have needed ") == 3
    assert "the group ended: context deadline exceeded (request budget of 150ms spent)" in out
    assert out.rstrip().endswith("tasks still running: 0, contexts still running: 0")


def test_polyglot_demo():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "polyglot.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "python fast call answered ok" in out
    assert "C backend        stopped by the Python deadline: request budget of 150ms spent" in out
    assert "python slow call stopped: request budget of 150ms spent" in out
    assert out.rstrip().endswith("still running: 0")


def test_wire_cause_table():
    """docs/wire.md's cause table is the core's: every reason, its text and codes."""
    import polyctx
    from polyctx import wire

    table = (ROOT / "docs" / "wire.md").read_text().split("## The cause table", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \| (\d+) `\w+` \| `(\w+)` \| (\d+) \|$", table, re.M)
    assert sorted(r[0] for r in rows) == sorted(r.value for r in wire.EndReason)
    for name, text, grpc, connect, http in rows:
        reason = wire.EndReason(name)
        assert (int(grpc), connect, int(http)) == (reason.grpc_code, reason.connect_code, reason.http_status), name
        ctx, cancel = polyctx.with_cancel_cause(polyctx.background())
        cancel(reason.cause())
        assert wire.EndReason.of(ctx) is reason
        assert str(polyctx.cause(ctx)) == text.strip(), name
