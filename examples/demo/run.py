"""polyctx's demo: one request path across four languages and five
services' worth of code, on loopback.

    client ──▶ Python gateway (FastAPI + polyctx's ASGI middleware)
                 │  fans out with polyctx's httpx transport, all at once:
                 ├──▶ Node backend (Express + polyctx) ──▶ C worker in the same process (libctx)
                 ├──▶ Go backend (net/http + Go's own context)
                 └──▶ Rust backend (std sockets + the polyctx core)

Every hop gets the budget that is left (request-timeout-ms, counted from
when its request arrived) and the same trace id (traceparent). Three
requests show the model: a normal one; one where a backend is too slow for
the budget, answered on time with partial results while the slow work stops
at every hop; and a client that hangs up after 200 ms, after which every
hop's work stops within milliseconds and nothing is left in flight.

    python run.py --gateway-python PY --go-backend BIN --rust-backend BIN \\
                  --node NODE --node-backend MJS --c-worker SO [--check]

`make demo` builds everything and runs it; `--check` (what `make test`
runs) asserts the outcomes from each service's own counters and exits
non-zero if one is wrong. Every process is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATIENCE = 20.0  # seconds before anything the demo waits for counts as broken

# How long each backend's work takes; a "slow" backend takes 5 s.
WORK_MS = {"node": 500, "go": 600, "rust": 400}
LANG = {"python": "Python", "node": "Node", "c": "C", "go": "Go", "rust": "Rust"}


@dataclass
class Event:
    at: float
    hop: str
    fields: dict


@dataclass
class Service:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    port: int = 0
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    log: list[Event] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_event(PATIENCE)
        if first is None or first.fields.get("event") != "listening":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise SystemExit(f"demo: {self.name} did not start: {first and first.fields}{err}")
        self.port = first.fields["port"]

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            event = Event(time.monotonic(), fields.pop("hop", self.name), fields)
            self.events.put(event)

    def next_event(self, timeout: float) -> Event | None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        self.log.append(event)
        return event

    def drain(self) -> None:
        while self.next_event(0) is not None:
            pass

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=PATIENCE) as reply:
            return json.load(reply)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)


@dataclass
class Reply:
    status: int | None
    body: str
    started: float
    ended: float


def get(url: str, path: str, headers: dict[str, str] | None = None, hang_up_after: float | None = None) -> Reply:
    """A GET over a plain socket, so that the client can hang up mid-request."""
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock = socket.create_connection((host, int(port)), timeout=PATIENCE)
    started = time.monotonic()
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n".encode())
    if hang_up_after is not None:
        time.sleep(hang_up_after)  # the point of this request: a client that gives up
        sock.close()
        return Reply(None, "", started, time.monotonic())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    if "transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return Reply(int(head.split()[1]), body, started, time.monotonic())


def dechunk(body: str) -> str:
    out, rest = "", body
    while rest:
        size, _, rest = rest.partition("\r\n")
        n = int(size or "0", 16)
        if n == 0:
            break
        out, rest = out + rest[:n], rest[n + 2 :]
    return out


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.check = args.check
        self.failures: list[str] = []
        self.backends = {
            "node": Service("node", [args.node, args.node_backend, args.c_worker, str(WORK_MS["node"])]),
            "go": Service("go", [args.go_backend, "-work", f"{WORK_MS['go']}ms"]),
            "rust": Service("rust", [args.rust_backend, "0", str(WORK_MS["rust"])]),
        }
        self.gateway: Service | None = None
        self.gateway_python = args.gateway_python
        self.idle: dict[str, dict] = {}

    @property
    def services(self) -> list[Service]:
        return [s for s in [self.gateway, *self.backends.values()] if s is not None]

    def start(self) -> None:
        for s in self.backends.values():
            s.start()
        gw = [self.gateway_python, str(HERE / "gateway.py"), *(s.url for s in self.backends.values())]
        self.gateway = Service("python", gw)
        self.gateway.start()
        # What each service holds at rest: the server's own tasks and threads.
        self.idle = {s.name: s.stats() for s in self.services}

    def stop(self) -> None:
        for s in self.services:
            s.stop()

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)
            print(f"  !! {what}")

    # -- one request, its timeline ----------------------------------------

    def events_until_quiet(self, quiet: float = 0.25) -> list[Event]:
        """Every event up to the moment no service has said anything for
        `quiet` seconds (bounded by PATIENCE)."""
        found: list[Event] = []
        deadline = time.monotonic() + PATIENCE
        last = time.monotonic()
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            got = False
            for s in self.services:
                e = s.next_event(0.01)
                if e is not None:
                    found.append(e)
                    got, last = True, time.monotonic()
            if not got:
                time.sleep(0.005)  # nothing new from any process: poll again
        return sorted(found, key=lambda e: e.at)

    def show(self, title: str, reply: Reply, events: list[Event]) -> None:
        print(f"\n━━ {title}")
        print(f"   {'time':>8}  {'hop':<7} {'event':<13} {'budget left':>11}  {'trace':<10} detail")
        for e in events:
            f = e.fields
            if f.get("event") == "listening":
                continue
            t = (e.at - reply.started) * 1000
            budget = f"{f['budget_ms']} ms" if isinstance(f.get("budget_ms"), int) and f["budget_ms"] >= 0 else ""
            trace = (f.get("trace") or "")[:8]
            detail = {k: v for k, v in f.items() if k not in ("event", "budget_ms", "trace", "has_budget")}
            hop = LANG.get(e.hop, e.hop) + ("+C" if f.get("in") == "c" else "")
            detail.pop("in", None)
            text = ", ".join(f"{k}={v}" for k, v in detail.items())
            print(f"   {t:>5.0f} ms  {hop:<7} {f.get('event', ''):<13} {budget:>11}  {trace:<10} {text}")
        took = (reply.ended - reply.started) * 1000
        if reply.status is None:
            print(f"   → the client hung up after {took:.0f} ms")
        else:
            try:
                body = json.loads(reply.body)
                summary = f"results {body['results']}, partial: {body['partial']}"
            except (ValueError, KeyError, TypeError):
                summary = reply.body.strip()[:100]
            print(f"   → {reply.status} after {took:.0f} ms: {summary}")

    def starts(self, events: list[Event]) -> dict[str, dict]:
        return {e.hop: e.fields for e in events if e.fields.get("event") == "start"}

    def one_trace(self, events: list[Event]) -> None:
        traces = {e.fields.get("trace") for e in events if e.fields.get("event") == "start"}
        self.expect(len(traces) == 1 and "" not in traces, f"one trace id at every hop, got {traces}")

    def budgets_shrink(self, events: list[Event]) -> None:
        s = self.starts(events)
        gw = s.get("python", {}).get("budget_ms", -1)
        # Budgets cross in whole milliseconds, rounded up so that rounding
        # never cuts a budget short: a hop may see up to 1 ms more than the
        # gateway's truncated figure, never more than that.
        for hop in ("node", "go", "rust"):
            b = s.get(hop, {}).get("budget_ms", -1)
            self.expect(
                0 < b <= gw + 1,
                f"{hop}'s budget ({b} ms) is what the gateway had left ({gw} ms, +1 ms of rounding) or less",
            )

    # -- the three requests ----------------------------------------------

    def normal(self) -> None:
        reply = get(self.gateway.url, "/search?q=polyctx")
        events = self.events_until_quiet()
        title = "1. A normal search: no budget sent, so the gateway gives it 2 s; every backend answers"
        self.show(title, reply, events)
        body = json.loads(reply.body or "{}")
        self.expect(reply.status == 200 and body.get("partial") is False, "all three backends answered")
        self.one_trace(events)
        self.budgets_shrink(events)

    def slow(self) -> None:
        reply = get(self.gateway.url, "/search?q=polyctx&slow=go", {"request-timeout-ms": "1500"})
        events = self.events_until_quiet()
        self.show(
            "2. The Go backend is too slow for the client's 1.5 s budget: partial results, on time; its work stops",
            reply,
            events,
        )
        body = json.loads(reply.body or "{}")
        took = reply.ended - reply.started
        self.expect(reply.status == 200 and body.get("partial") is True, "partial results")
        self.expect(1.4 < took < 2.5, f"answered at the deadline (1.5 s), took {took:.2f} s")
        stopped = [e for e in events if e.hop == "go" and e.fields.get("event") == "stopped"]
        self.expect(bool(stopped), "the Go backend's own context ended its work")
        if stopped:
            self.expect(stopped[0].at - reply.started < 2.0, "the Go work stopped at the deadline, not after 5 s")
        self.one_trace(events)
        self.budgets_shrink(events)

    def hang_up(self) -> None:
        before: dict[str, dict] = {}

        def look_while_running() -> None:
            time.sleep(0.12)  # the requests are in flight at every hop by now
            for s in self.services:
                before[s.name] = s.stats()

        looker = threading.Thread(target=look_while_running)
        looker.start()
        reply = get(self.gateway.url, "/search?q=polyctx", hang_up_after=0.2)
        looker.join()
        events = self.events_until_quiet()
        self.show("3. The client hangs up after 200 ms: every hop stops within milliseconds", reply, events)
        hung_up = reply.ended
        for hop in ("python", "node", "go", "rust"):
            ends = [e for e in events if e.hop == hop and e.fields.get("event") in ("stopped", "call stopped", "reply")]
            lag = (ends[0].at - hung_up) * 1000 if ends else None
            self.expect(lag is not None and lag < 100, f"{hop} stopped within 100 ms of the hang-up ({lag} ms)")
        after = {s.name: self.settled(s) for s in self.services}
        print("\n   work in flight at each hop, while the request ran → after the hang-up (at rest):")
        for name, b in before.items():
            a, rest = after[name], self.idle[name]
            keys = in_flight_keys(a) + [k for k in ("tasks", "goroutines", "threads") if k in a]
            pairs = ", ".join(f"{k} {b.get(k)} → {a.get(k)}" + (f" ({rest.get(k)})" if k in rest else "") for k in keys)
            print(f"   {LANG.get(name, name):<7} {pairs}")
            for k in in_flight_keys(a):
                self.expect(a.get(k) == 0, f"{name}: {k} back to 0 after the hang-up (got {a.get(k)})")
            for k in ("tasks", "goroutines", "threads"):
                if k in a:
                    at_rest = rest.get(k, a[k])
                    self.expect(a[k] <= at_rest, f"{name}: {k} back to what it had at rest ({a[k]} vs {at_rest})")
        self.expect(any(b.get(k) for b in before.values() for k in ("in_flight", "inFlight")), "work was in flight")

    def settled(self, s: Service) -> dict:
        """The service's counters once its work has drained (bounded)."""
        deadline = time.monotonic() + PATIENCE
        while True:
            stats = s.stats()
            if all(stats.get(k) == 0 for k in in_flight_keys(stats)) or time.monotonic() > deadline:
                return stats
            time.sleep(0.02)  # counters update as each task unwinds; poll, bounded


def in_flight_keys(stats: dict) -> list[str]:
    """The counters of work in flight, each of which must be back to 0."""
    names = ("in_flight", "inFlight", "calls_in_flight", "c_in_flight", "deadlines", "deadlines_armed", "live_contexts")
    return [k for k in names if k in stats]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("gateway-python", "go-backend", "rust-backend", "node", "node-backend", "c-worker"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--check", action="store_true", help="assert the outcomes; exit 1 if one is wrong")
    args = p.parse_args()

    demo = Demo(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        demo.start()
        print("polyctx demo: a Python gateway fans out to Node (+C), Go and Rust backends, one budget and one trace")
        for s in demo.services:
            print(f"   {LANG.get(s.name, s.name):<7} listening on {s.url}")
        demo.normal()
        demo.slow()
        demo.hang_up()
    except KeyboardInterrupt:
        print("\ndemo: interrupted")
        return 130
    finally:
        demo.stop()
    if demo.failures:
        print(f"\ndemo: {len(demo.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("\nEvery hop kept one budget and one trace, and stopped when the request ended. All services stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
