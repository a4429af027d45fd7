"""Fixtures for the Daraja client tests: a scriptable fake Daraja on 127.0.0.1 and a fake clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.daraja import DarajaClient


@dataclass
class Reply:
    """One scripted answer. ``body``: dict/list → JSON, str/bytes → sent as is, None → empty."""

    status: int = 200
    body: Any = None
    delay: float = 0.0
    #: Read the request, then close the socket without answering (connection dropped).
    drop: bool = False


@dataclass
class Seen:
    """One request as the fake server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes
    json: Any


@dataclass
class FakeDaraja:
    """Answers each path from a per-test script; the last reply for a path repeats."""

    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    #: Set at teardown so delayed replies stop waiting at once.
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str, status: int = 200, body: Any = None, **kw: Any) -> FakeDaraja:
        """Append a reply for ``path`` (query string ignored)."""
        with self.lock:
            self.scripts.setdefault(urlsplit(path).path, []).append(Reply(status, body, **kw))
        return self

    def seen(self, path: str) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.path == urlsplit(path).path]

    def _next_reply(self, path: str) -> Reply:
        with self.lock:
            queue = self.scripts.get(path)
            if not queue:
                return Reply(501, {"error": f"unscripted path {path}"})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        with self.lock:
            self.requests.append(
                Seen(handler.command, parts.path, parts.query, dict(handler.headers), raw, parsed)
            )
        reply = self._next_reply(parts.path)
        if reply.delay:
            self.release.wait(reply.delay)
        if reply.drop:
            handler.close_connection = True
            return
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (read timeout tests); nothing to answer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.fake.handle(self)

    def do_POST(self) -> None:
        self.server.fake.handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeDaraja

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is expected in timeout tests


@pytest.fixture
def fake_daraja() -> Iterator[FakeDaraja]:
    """A fake Daraja over real HTTP on 127.0.0.1 (free port), torn down after the test."""
    server = _Server(("127.0.0.1", 0), _Handler)
    fake = FakeDaraja(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.fake = fake
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


class FakeClock:
    """A settable epoch-seconds clock for token expiry."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class CountingNow:
    """A fixed instant that counts how often the client asked for the time."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return self.instant


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def now() -> CountingNow:
    # 2025-01-01 07:15:30 UTC = 10:15:30 in Nairobi.
    return CountingNow(datetime(2025, 1, 1, 7, 15, 30, tzinfo=UTC))


@pytest.fixture
def make_client(
    fake_daraja: FakeDaraja, clock: FakeClock, now: CountingNow
) -> Iterator[Callable[..., DarajaClient]]:
    """Build DarajaClients pointed at the fake server; all are closed at teardown."""
    made: list[DarajaClient] = []

    def make(**kw: Any) -> DarajaClient:
        kw.setdefault("base_url", fake_daraja.url)
        kw.setdefault("consumer_key", "test-key")
        kw.setdefault("consumer_secret", "test-secret")
        kw.setdefault("connect_timeout", 1.0)
        kw.setdefault("read_timeout", 2.0)
        kw.setdefault("clock", clock)
        kw.setdefault("now", now)
        client = DarajaClient(
            kw.pop("base_url"), kw.pop("consumer_key"), kw.pop("consumer_secret"), **kw
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
