"""Transport failures → DarajaTimeout / DarajaConnectionError and may_have_been_processed."""

from __future__ import annotations

import http.client
import ssl
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from urllib3.connection import HTTPConnection
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from app.daraja import (
    CachedToken,
    DarajaClient,
    DarajaConnectionError,
    DarajaError,
    DarajaTimeout,
    MemoryTokenStore,
    StkPushRequest,
)

URL = "https://sandbox.safaricom.co.ke/mpesa/stkpush/v1/processrequest"


class RaisingSession(requests.Session):
    """A Session whose every request raises a given exception; counts attempts."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls += 1
        assert kwargs["timeout"] == (5.0, 30.0)  # explicit (connect, read) on every call
        raise self.exc


def _conn() -> HTTPConnection:
    return HTTPConnection("sandbox.safaricom.co.ke", 443)


def _refused() -> BaseException:
    reason = NewConnectionError(_conn(), "Failed to establish a new connection: refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason))  # type: ignore[arg-type]


def _dns() -> BaseException:
    reason = NameResolutionError("sandbox.safaricom.co.ke", _conn(), OSError("no such host"))
    return requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason))  # type: ignore[arg-type]


def _dropped() -> BaseException:
    reason = http.client.RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", reason))


def _reset() -> BaseException:
    reason = ConnectionResetError(104, "Connection reset by peer")
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", reason))


def _cert() -> BaseException:
    inner = SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    return requests.exceptions.SSLError(MaxRetryError(None, URL, inner))  # type: ignore[arg-type]


def _body_read_timeout() -> BaseException:
    # requests raises ConnectionError (not ReadTimeout) when the timeout hits mid-body.
    return requests.exceptions.ConnectionError(ReadTimeoutError(None, URL, "Read timed out."))  # type: ignore[arg-type]


CASES = [
    ("connect timeout", lambda: requests.exceptions.ConnectTimeout("connect timed out"),
     DarajaTimeout, False),
    ("read timeout", lambda: requests.exceptions.ReadTimeout("read timed out"),
     DarajaTimeout, True),
    ("read timeout in body", _body_read_timeout, DarajaTimeout, True),
    ("refused", _refused, DarajaConnectionError, False),
    ("dns", _dns, DarajaConnectionError, False),
    ("certificate", _cert, DarajaConnectionError, False),
    ("dropped after send", _dropped, DarajaConnectionError, True),
    ("reset after send", _reset, DarajaConnectionError, True),
    ("unknown connection error", lambda: requests.exceptions.ConnectionError("??"),
     DarajaConnectionError, True),
    ("chunked body broken", lambda: requests.exceptions.ChunkedEncodingError("broken"),
     DarajaConnectionError, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "make_exc", "exc_type", "maybe"), CASES, ids=[c[0] for c in CASES]
)
def test_push_transport_failures(
    label: str, make_exc: Any, exc_type: type[DarajaError], maybe: bool
) -> None:
    session = RaisingSession(make_exc())
    store = MemoryTokenStore()
    store.put(CachedToken("tok", 2_000_000_000.0))
    client = DarajaClient(
        "https://sandbox.safaricom.co.ke",
        "key",
        "secret",
        session=session,
        token_store=store,
        clock=lambda: 1_700_000_000.0,
        now=lambda: datetime(2025, 1, 1, tzinfo=UTC),
    )
    request = StkPushRequest(
        business_short_code="174379",
        passkey="pk",
        transaction_type="CustomerPayBillOnline",
        amount=1,
        party_a="254708374149",
        party_b="174379",
        phone_number="254708374149",
        callback_url="https://shop.example/cb",
        account_reference="A1",
        transaction_desc="x",
    )
    with pytest.raises(DarajaError) as info:
        client.stk_push(request)
    assert type(info.value) is exc_type, label
    assert info.value.may_have_been_processed is maybe
    assert session.calls == 1  # never re-sent
    session.close()
