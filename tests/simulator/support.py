"""Helpers for simulator tests (also used by tests/scenarios): Daraja speaker, callback receiver."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.simulator.ids import daraja_timestamp
from app.simulator.settings import (
    DEMO_CONSUMER_KEY,
    DEMO_CONSUMER_SECRET,
    SANDBOX_MSISDN,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
)

# Small but not tiny: a test must be able to see the prompt "live" before it ends.
FAST_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SIMULATOR_CALLBACK_DELAY": 0.3,
    "SIMULATOR_LATE_CALLBACK_DELAY": 0.6,
    "SIMULATOR_DELAYED_CALLBACK_DELAY": 0.6,
    "SIMULATOR_SECOND_CALLBACK_GAP": 0.05,
    "SIMULATOR_SLOW_RESPONSE_DELAY": 0.3,
    "SIMULATOR_TIMEOUT_RESPONSE_DELAY": 0.6,
    "SIMULATOR_PROMPT_TIMEOUT": 2.0,
}
WAIT_S = 5.0


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll predicate until it is truthy or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.02)


def password(short_code: str, timestamp: str, passkey: str = SANDBOX_PASSKEY) -> str:
    return base64.b64encode(f"{short_code}{passkey}{timestamp}".encode()).decode()


def basic(key: str = DEMO_CONSUMER_KEY, secret: str = DEMO_CONSUMER_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


DROP = object()  # marker: leave this key out of the body


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                with outer._lock:
                    outer.bodies.append(json.loads(raw))
                    outer.paths.append(self.path)
                reply = b'{"ResultCode": 0, "ResultDesc": "Accepted"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Short poll interval: shutdown() waits up to one interval, once per test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/payments/stk/cb/s3cr3t"

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.bodies)

    def for_checkout(self, checkout_id: str) -> list[dict[str, Any]]:
        return [
            body
            for body in self.received()
            if body["Body"]["stkCallback"]["CheckoutRequestID"] == checkout_id
        ]

    def path_of(self, checkout_id: str) -> str:
        with self._lock:
            for body, path in zip(self.bodies, self.paths, strict=True):
                if body["Body"]["stkCallback"]["CheckoutRequestID"] == checkout_id:
                    return path
        raise LookupError(checkout_id)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Daraja:
    """Speaks Daraja to a simulator through any requests-like `call(method, path, ...)`."""

    def __init__(
        self, call: Callable[..., Any], callback_url: str, json_of: Callable[[Any], Any]
    ) -> None:
        self._call = call
        self.callback_url = callback_url
        self.json_of = json_of
        self._token: str | None = None

    def oauth(self, auth: str | None = None, query: str = "grant_type=client_credentials") -> Any:
        headers = {"Authorization": auth if auth is not None else basic()}
        return self._call("GET", f"/simulator/oauth/v1/generate?{query}", headers=headers)

    def token(self, fresh: bool = False) -> str:
        if fresh or self._token is None:
            self._token = self.json_of(self.oauth())["access_token"]
        return self._token

    def push_body(self, **overrides: Any) -> dict[str, Any]:
        ts = daraja_timestamp()
        body: dict[str, Any] = {
            "BusinessShortCode": SANDBOX_SHORTCODE,
            "Password": password(SANDBOX_SHORTCODE, ts),
            "Timestamp": ts,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": 1,
            "PartyA": SANDBOX_MSISDN,
            "PartyB": SANDBOX_SHORTCODE,
            "PhoneNumber": SANDBOX_MSISDN,
            "CallBackURL": self.callback_url,
            "AccountReference": "INV-0001",
            "TransactionDesc": "Payment",
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not DROP}

    def query_body(self, checkout_id: str, **overrides: Any) -> dict[str, Any]:
        ts = daraja_timestamp()
        body: dict[str, Any] = {
            "BusinessShortCode": SANDBOX_SHORTCODE,
            "Password": password(SANDBOX_SHORTCODE, ts),
            "Timestamp": ts,
            "CheckoutRequestID": checkout_id,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not DROP}

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token()}"}

    def push(self, token: str | None = None, **overrides: Any) -> Any:
        return self._call(
            "POST",
            "/simulator/mpesa/stkpush/v1/processrequest",
            json=self.push_body(**overrides),
            headers=self.bearer(token),
        )

    def query(self, checkout_id: str, token: str | None = None, **overrides: Any) -> Any:
        return self._call(
            "POST",
            "/simulator/mpesa/stkpushquery/v1/query",
            json=self.query_body(checkout_id, **overrides),
            headers=self.bearer(token),
        )

    def pushed(self, **overrides: Any) -> str:
        """Push that must be accepted; returns its CheckoutRequestID."""
        response = self.push(**overrides)
        body = self.json_of(response)
        assert body["ResponseCode"] == "0", body
        return body["CheckoutRequestID"]

    def final_query(self, checkout_id: str) -> dict[str, Any]:
        """Query until the outcome is final (bounded)."""

        def attempt() -> dict[str, Any] | None:
            body = self.json_of(self.query(checkout_id))
            return body if "ResultCode" in body else None

        body = wait_until(attempt)
        assert body, "query never became final"
        return body

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/simulator/_control/{path}", json=body)
