"""Counters of in-flight work for the integrations (ASGI, httpx, gRPC), so
that a service can show, and a test can assert, that nothing is left
running after a deadline or a disconnect."""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["RequestCounters"]


class RequestCounters:
    """How many requests an integration has in flight, how many it started,
    and how they ended, by end reason name (`"request_finished"` for a
    request that completed, `"deadline_exceeded"`, `"client_disconnected"`,
    ...). Thread-safe; one object may be shared by several integrations.

    `wait_idle(timeout)` blocks until nothing is in flight: the way to
    assert quiescence without sleeping."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._started = 0
        self._ended: Counter[str] = Counter()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def started(self) -> int:
        return self._started

    def ended(self) -> dict[str, int]:
        """How many requests ended, by reason."""
        with self._lock:
            return dict(self._ended)

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._started += 1

    def end(self, reason: str) -> None:
        with self._lock:
            self._in_flight -= 1
            self._ended[reason] += 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Blocks until nothing is in flight (True), or `timeout` seconds pass (False)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def snapshot(self) -> dict[str, object]:
        """`{"name", "in_flight", "started", "ended"}`, read at one instant."""
        with self._lock:
            return {
                "name": self.name,
                "in_flight": self._in_flight,
                "started": self._started,
                "ended": dict(self._ended),
            }

    def __repr__(self) -> str:
        s = self.snapshot()
        return f"<RequestCounters {self.name!r} in_flight={s['in_flight']} started={s['started']} ended={s['ended']}>"
