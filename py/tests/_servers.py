"""Real servers on loopback for the integration tests: uvicorn in a thread
of its own, on a port the kernel picks, started and stopped by signals
(never by sleeping)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.loop = asyncio.get_running_loop()
        self.ready.set()


@contextlib.contextmanager
def serve(app: Any, http: str = "h11", **config: Any) -> Iterator[str]:
    """Runs `app` on uvicorn with the `http` parser; yields its base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    cfg = uvicorn.Config(app, http=http, log_level="warning", lifespan=config.pop("lifespan", "off"), **config)
    server = _Server(cfg)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        if not server.ready.wait(30):
            raise RuntimeError("uvicorn did not start in 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def raw_request(url: str, path: str, headers: dict[str, str] | None = None) -> socket.socket:
    """Sends a GET on a fresh connection and returns the socket, unread, so
    that the caller can hang up whenever it likes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Reads a whole response sent with Content-Length (or until close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while length is None or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


class Events:
    """Thread-safe named events and values, for handlers to report to tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self.values: dict[str, Any] = {}

    def event(self, name: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(name, threading.Event())

    def set(self, name: str, value: Any = None) -> None:
        with self._lock:
            self.values[name] = value
            self.values[name + ".at"] = time.monotonic()
        self.event(name).set()

    def wait(self, name: str, timeout: float = 10) -> Any:
        assert self.event(name).wait(timeout), f"{name} did not happen within {timeout} s"
        with self._lock:
            return self.values[name]
