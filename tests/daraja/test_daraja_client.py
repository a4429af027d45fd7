"""DarajaClient against a scripted fake Daraja over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from app.daraja import (
    CachedToken,
    DarajaAuthError,
    DarajaBadRequest,
    DarajaClient,
    DarajaConnectionError,
    DarajaError,
    DarajaInvalidToken,
    DarajaMerchantNotFound,
    DarajaSubscriberLocked,
    DarajaSystemBusy,
    DarajaThrottled,
    DarajaTimeout,
    DarajaUnexpectedResponse,
    DarajaWrongCredentials,
    MemoryTokenStore,
    StkPushAccepted,
    StkPushRequest,
)
from app.daraja.client import OAUTH_PATH, STK_PUSH_PATH, STK_QUERY_PATH

if TYPE_CHECKING:
    from conftest import CountingNow, FakeClock, FakeDaraja

MakeClient = Callable[..., DarajaClient]

PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
PUSH_KEYS = {
    "BusinessShortCode", "Password", "Timestamp", "TransactionType", "Amount", "PartyA",
    "PartyB", "PhoneNumber", "CallBackURL", "AccountReference", "TransactionDesc",
}  # fmt: skip

ACCEPTED = {
    "MerchantRequestID": "29115-34620561-1",
    "CheckoutRequestID": "ws_CO_191220191020363925",
    "ResponseCode": "0",
    "ResponseDescription": "Success. Request accepted for processing",
    "CustomerMessage": "Success. Request accepted for processing",
}


def oauth(token: str = "tok-1", expires_in: Any = "3599") -> dict[str, Any]:  # noqa: S107
    return {"access_token": token, "expires_in": expires_in}


def envelope(code: str, message: str) -> dict[str, str]:
    return {"requestId": "req-1", "errorCode": code, "errorMessage": message}


def push_request(**changes: Any) -> StkPushRequest:
    fields: dict[str, Any] = {
        "business_short_code": "174379",
        "passkey": PASSKEY,
        "transaction_type": "CustomerPayBillOnline",
        "amount": 150,
        "party_a": "254708374149",
        "party_b": "174379",
        "phone_number": "254708374149",
        "callback_url": "https://shop.example/payments/stk/cb/secret",
        "account_reference": "INV001",
        "transaction_desc": "Groceries",
    }
    fields.update(changes)
    return StkPushRequest(**fields)


def bearer(seen: Any) -> str:
    return seen.headers["Authorization"]


# ------------------------------------------------------------------ token


def test_oauth_request_uses_basic_auth_and_grant_type(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1"))
    assert make_client().get_token() == "tok-1"
    (req,) = fake_daraja.seen(OAUTH_PATH)
    assert req.method == "GET"
    assert req.query == "grant_type=client_credentials"
    assert (
        req.headers["Authorization"]
        == "Basic " + base64.b64encode(b"test-key:test-secret").decode()
    )


def test_token_is_reused_across_pushes(fake_daraja: FakeDaraja, make_client: MakeClient) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(STK_PUSH_PATH, 200, ACCEPTED)
    client = make_client()
    for _ in range(3):
        assert isinstance(client.stk_push(push_request()), StkPushAccepted)
    assert len(fake_daraja.seen(OAUTH_PATH)) == 1
    pushes = fake_daraja.seen(STK_PUSH_PATH)
    assert [bearer(p) for p in pushes] == ["Bearer tok-1"] * 3


def test_token_refreshed_60s_before_expiry(
    fake_daraja: FakeDaraja, make_client: MakeClient, clock: FakeClock
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(OAUTH_PATH, 200, oauth("tok-2"))
    client = make_client()
    start = clock.t
    assert client.get_token() == "tok-1"
    clock.t = start + 3599 - 61  # 61 s left: still good
    assert client.get_token() == "tok-1"
    assert len(fake_daraja.seen(OAUTH_PATH)) == 1
    clock.t = start + 3599 - 59  # inside the 60 s margin: refresh
    assert client.get_token() == "tok-2"
    assert len(fake_daraja.seen(OAUTH_PATH)) == 2


@pytest.mark.parametrize("expires_in", ["3599", 3599, 3599.0])
def test_expires_in_as_text_or_number(
    fake_daraja: FakeDaraja, make_client: MakeClient, clock: FakeClock, expires_in: Any
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1", expires_in))
    store = MemoryTokenStore()
    make_client(token_store=store).get_token()
    token = store.get()
    assert token is not None
    assert token.expires_at == clock.t + 3599


@pytest.mark.parametrize("body", [{"access_token": "t"}, {"expires_in": "3599"}, "not json"])
def test_unusable_oauth_answer(fake_daraja: FakeDaraja, make_client: MakeClient, body: Any) -> None:
    fake_daraja.on(OAUTH_PATH, 200, body)
    with pytest.raises(DarajaUnexpectedResponse) as info:
        make_client().get_token()
    assert info.value.body is None  # a 200 OAuth body may hold a token: never kept


def test_concurrent_get_token_makes_one_oauth_request(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    # The slow answer keeps the refresh in flight while all 20 threads ask.
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1"), delay=0.2)
    client = make_client()
    barrier = threading.Barrier(20)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(client.get_token())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert errors == []
    assert results == ["tok-1"] * 20
    assert len(fake_daraja.seen(OAUTH_PATH)) == 1


def test_force_fetches_a_new_token(fake_daraja: FakeDaraja, make_client: MakeClient) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(OAUTH_PATH, 200, oauth("tok-2"))
    client = make_client()
    assert client.get_token() == "tok-1"
    assert client.get_token(force=True) == "tok-2"
    assert len(fake_daraja.seen(OAUTH_PATH)) == 2


def test_invalidate_only_clears_the_named_token() -> None:
    store = MemoryTokenStore()
    store.put(CachedToken("fresh", 10.0))
    store.invalidate("stale")  # someone else already replaced it: keep the fresh one
    assert store.get() == CachedToken("fresh", 10.0)
    store.invalidate("fresh")
    assert store.get() is None


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "404.001.03"), (400, "400.003.01"), (401, "401.002.01"), (500, "401.003.01")],
)
def test_invalid_token_refreshes_once_and_retries_once(
    fake_daraja: FakeDaraja, make_client: MakeClient, now: CountingNow, status: int, code: str
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(OAUTH_PATH, 200, oauth("tok-2"))
    fake_daraja.on(STK_PUSH_PATH, status, envelope(code, "Invalid Access Token"))
    fake_daraja.on(STK_PUSH_PATH, 200, ACCEPTED)
    result = make_client().stk_push(push_request())
    assert result.checkout_request_id == ACCEPTED["CheckoutRequestID"]
    assert len(fake_daraja.seen(OAUTH_PATH)) == 2
    first, second = fake_daraja.seen(STK_PUSH_PATH)
    assert (bearer(first), bearer(second)) == ("Bearer tok-1", "Bearer tok-2")
    # The retry re-sends the same body: one instant, one Password/Timestamp per push.
    assert first.json == second.json
    assert now.calls == 1


def test_invalid_token_twice_raises(fake_daraja: FakeDaraja, make_client: MakeClient) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(OAUTH_PATH, 200, oauth("tok-2"))
    fake_daraja.on(STK_PUSH_PATH, 404, envelope("404.001.03", "Invalid Access Token"))
    with pytest.raises(DarajaInvalidToken) as info:
        make_client().stk_push(push_request())
    assert info.value.error_code == "404.001.03"
    assert info.value.may_have_been_processed is False
    assert len(fake_daraja.seen(OAUTH_PATH)) == 2
    assert len(fake_daraja.seen(STK_PUSH_PATH)) == 2


def test_wrong_consumer_secret(fake_daraja: FakeDaraja, make_client: MakeClient) -> None:
    fake_daraja.on(OAUTH_PATH, 400, None)  # Daraja: HTTP 400 with an empty body
    with pytest.raises(DarajaAuthError, match="wrong consumer key or secret") as info:
        make_client().stk_push(push_request())
    assert info.value.http_status == 400
    assert fake_daraja.seen(STK_PUSH_PATH) == []


def test_invalid_grant_type(fake_daraja: FakeDaraja, make_client: MakeClient) -> None:
    fake_daraja.on(OAUTH_PATH, 400, envelope("400.008.02", "Invalid grant type passed"))
    with pytest.raises(DarajaAuthError, match="grant type") as info:
        make_client().get_token()
    assert info.value.error_code == "400.008.02"


# ------------------------------------------------------------------ push


def test_push_body_has_exactly_the_documented_keys(
    fake_daraja: FakeDaraja, make_client: MakeClient, now: CountingNow
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, 200, ACCEPTED)
    accepted = make_client().stk_push(push_request())
    (req,) = fake_daraja.seen(STK_PUSH_PATH)
    body = req.json
    assert set(body) == PUSH_KEYS
    assert req.method == "POST"
    assert req.headers["Content-Type"] == "application/json"
    assert body["Timestamp"] == "20250101101530"  # 07:15:30 UTC → 10:15:30 EAT
    decoded = base64.b64decode(body["Password"], validate=True).decode()
    assert decoded == body["BusinessShortCode"] + PASSKEY + body["Timestamp"]
    assert body["Amount"] == 150
    assert isinstance(body["Amount"], int)
    assert (body["PartyA"], body["PartyB"], body["PhoneNumber"]) == (
        "254708374149",
        "174379",
        "254708374149",
    )
    assert accepted == StkPushAccepted(
        merchant_request_id="29115-34620561-1",
        checkout_request_id="ws_CO_191220191020363925",
        response_code="0",
        response_description="Success. Request accepted for processing",
        customer_message="Success. Request accepted for processing",
    )


def test_now_is_read_once_per_push(
    fake_daraja: FakeDaraja, make_client: MakeClient, now: CountingNow
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, 200, ACCEPTED)
    client = make_client()
    client.stk_push(push_request())
    client.stk_push(push_request())
    assert now.calls == 2


def test_response_code_as_number_is_accepted(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, 200, {**ACCEPTED, "ResponseCode": 0})
    assert make_client().stk_push(push_request()).response_code == "0"


PUSH_ERRORS = [
    (400, "400.002.02", "Bad Request - Invalid Amount", DarajaBadRequest, "Amount"),
    (400, "400.002.02", "Bad Request - Invalid Timestamp", DarajaBadRequest, "Timestamp"),
    (400, "400.002.02", "Bad Request - Invalid PhoneNumber", DarajaBadRequest, "PhoneNumber"),
    (400, "400.002.05", "Invalid Request Payload", DarajaBadRequest, None),
    (404, "404.001.01", "Resource not found", DarajaBadRequest, None),
    (500, "500.001.1001", "Merchant does not exist", DarajaMerchantNotFound, None),
    (500, "500.001.1001", "[MerchantValidate] - Wrong credentials", DarajaWrongCredentials, None),
    (500, "500.001.1001", "Unable to lock subscriber, a transaction is already in process for "
     "the current subscriber", DarajaSubscriberLocked, None),
    (500, "500.003.02", "Error Occurred: Spike Arrest Violation", DarajaThrottled, None),
    (500, "500.003.03", "Quota Violation", DarajaThrottled, None),
    (500, "500.003.02", "System is busy. Please try again in few minutes.", DarajaSystemBusy, None),
    (500, "500.003.1001", "Internal Server Error", DarajaSystemBusy, None),
    (429, "429.000.01", "Too Many Requests", DarajaThrottled, None),
    (500, "500.001.1001", "The transaction is being processed", DarajaUnexpectedResponse, None),
    (500, "599.999.99", "Something new", DarajaUnexpectedResponse, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "code", "message", "exc_type", "field"),
    PUSH_ERRORS,
    ids=[f"{c}-{m[:24]}" for _, c, m, _, _ in PUSH_ERRORS],
)
def test_push_error_envelopes(
    fake_daraja: FakeDaraja,
    make_client: MakeClient,
    status: int,
    code: str,
    message: str,
    exc_type: type[DarajaError],
    field: str | None,
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, status, envelope(code, message))
    with pytest.raises(DarajaError) as info:
        make_client().stk_push(push_request())
    err = info.value
    assert type(err) is exc_type
    assert (err.http_status, err.error_code, err.error_message, err.request_id) == (
        status,
        code,
        message,
        "req-1",
    )
    # An error envelope means Daraja refused it: no prompt, safe to fix and re-send.
    assert err.may_have_been_processed is False
    assert getattr(err, "field", None) == field
    assert code in (err.body or "")
    assert len(fake_daraja.seen(STK_PUSH_PATH)) == 1  # errors are never retried


@pytest.mark.parametrize(
    ("status", "body", "exc_type", "maybe"),
    [
        (503, "<html>Service Unavailable</html>", DarajaSystemBusy, True),
        (502, None, DarajaSystemBusy, True),
        (429, "Too Many Requests", DarajaThrottled, False),
        (200, "<html>ok</html>", DarajaUnexpectedResponse, True),
        (404, "<html>Not Found</html>", DarajaUnexpectedResponse, False),
        (200, {**ACCEPTED, "ResponseCode": "1"}, DarajaUnexpectedResponse, False),
        (200, {"ResponseCode": "0"}, DarajaUnexpectedResponse, True),  # accepted, no IDs
    ],
)
def test_push_answers_without_envelope(
    fake_daraja: FakeDaraja,
    make_client: MakeClient,
    status: int,
    body: Any,
    exc_type: type[DarajaError],
    maybe: bool,
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, status, body)
    with pytest.raises(DarajaError) as info:
        make_client().stk_push(push_request())
    assert type(info.value) is exc_type
    assert info.value.http_status == status
    assert info.value.may_have_been_processed is maybe


def test_read_timeout_on_push_is_not_resent(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, 200, ACCEPTED, delay=3)
    client = make_client(read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(DarajaTimeout) as info:
        client.stk_push(push_request())
    assert time.monotonic() - started < 1.5
    assert info.value.may_have_been_processed is True
    time.sleep(0.1)  # give a (wrong) re-send the chance to arrive
    assert len(fake_daraja.seen(STK_PUSH_PATH)) == 1


def test_connection_dropped_after_sending_may_have_been_processed(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_PUSH_PATH, drop=True)
    with pytest.raises(DarajaConnectionError) as info:
        make_client().stk_push(push_request())
    assert info.value.may_have_been_processed is True
    assert len(fake_daraja.seen(STK_PUSH_PATH)) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_was_not_processed(make_client: MakeClient, clock: FakeClock) -> None:
    store = MemoryTokenStore()
    store.put(CachedToken("tok-1", clock.t + 3600))  # go straight to the push
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}", token_store=store)
    with pytest.raises(DarajaConnectionError) as info:
        client.stk_push(push_request())
    assert info.value.may_have_been_processed is False


def test_logs_carry_no_secrets(
    fake_daraja: FakeDaraja, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-SECRET-1")).on(OAUTH_PATH, 200, oauth("tok-2"))
    fake_daraja.on(STK_PUSH_PATH, 404, envelope("404.001.03", "Invalid Access Token"))
    fake_daraja.on(STK_PUSH_PATH, 200, ACCEPTED)
    caplog.set_level(logging.DEBUG)
    client = make_client(consumer_secret="very-secret-value")
    client.stk_push(push_request())
    password = fake_daraja.seen(STK_PUSH_PATH)[0].json["Password"]
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app.daraja"))
    assert STK_PUSH_PATH in text
    assert "404.001.03" in text
    for secret in ("very-secret-value", "tok-SECRET-1", "tok-2", PASSKEY, password):
        assert secret not in text
    assert "very-secret-value" not in repr(client)


# ------------------------------------------------------------------ query


def test_query_body_and_fresh_timestamp(
    fake_daraja: FakeDaraja, make_client: MakeClient, now: CountingNow
) -> None:
    final = {**ACCEPTED, "ResultCode": "0", "ResultDesc": "processed successfully"}
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_QUERY_PATH, 200, final)
    make_client().stk_query("174379", PASSKEY, "ws_CO_1")
    (req,) = fake_daraja.seen(STK_QUERY_PATH)
    assert set(req.json) == {"BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID"}
    assert req.json["CheckoutRequestID"] == "ws_CO_1"
    decoded = base64.b64decode(req.json["Password"]).decode()
    assert decoded == "174379" + PASSKEY + req.json["Timestamp"]
    assert now.calls == 1


@pytest.mark.parametrize("status", [500, 400, 200])
def test_query_being_processed_is_pending(
    fake_daraja: FakeDaraja, make_client: MakeClient, status: int
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth())
    fake_daraja.on(
        STK_QUERY_PATH, status, envelope("500.001.1001", "The transaction is being processed")
    )
    result = make_client().stk_query("174379", PASSKEY, "ws_CO_1")
    assert result.pending is True
    assert result.result_code is None
    assert result.checkout_request_id == "ws_CO_1"
    assert len(fake_daraja.seen(STK_QUERY_PATH)) == 1


@pytest.mark.parametrize(("raw_code", "expected"), [("1032", "1032"), (0, "0"), ("0", "0")])
def test_query_final_result_code_is_text(
    fake_daraja: FakeDaraja, make_client: MakeClient, raw_code: Any, expected: str
) -> None:
    final = {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successsfully",
        "MerchantRequestID": "22205-34066-1",
        "CheckoutRequestID": "ws_CO_13012021093521236557",
        "ResultCode": raw_code,
        "ResultDesc": "Request cancelled by user",
    }
    fake_daraja.on(OAUTH_PATH, 200, oauth()).on(STK_QUERY_PATH, 200, final)
    result = make_client().stk_query("174379", PASSKEY, "ws_CO_13012021093521236557")
    assert result.pending is False
    assert result.result_code == expected
    assert result.result_desc == "Request cancelled by user"
    assert result.merchant_request_id == "22205-34066-1"
    assert result.raw["ResultCode"] == raw_code


def test_query_errors_are_raised_not_retried(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth())
    fake_daraja.on(STK_QUERY_PATH, 500, envelope("500.003.02", "Spike Arrest Violation"))
    with pytest.raises(DarajaThrottled):
        make_client().stk_query("174379", PASSKEY, "ws_CO_1")
    assert len(fake_daraja.seen(STK_QUERY_PATH)) == 1


def test_query_invalid_token_is_retried_once(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(OAUTH_PATH, 200, oauth("tok-2"))
    fake_daraja.on(STK_QUERY_PATH, 404, envelope("404.001.03", "Invalid Access Token"))
    fake_daraja.on(
        STK_QUERY_PATH, 500, envelope("500.001.1001", "The transaction is being processed")
    )
    assert make_client().stk_query("174379", PASSKEY, "ws_CO_1").pending is True
    assert [bearer(r) for r in fake_daraja.seen(STK_QUERY_PATH)] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, ""),
        (200, {"access_token": "t"}),
        (500, envelope("500.003.1001", "Internal Server Error")),
    ],
)
def test_a_failed_token_fetch_before_a_push_means_nothing_was_sent(
    fake_daraja: FakeDaraja, make_client: MakeClient, status: int, body: Any
) -> None:
    """However OAuth failed, the push POST never left: it must not look 'maybe sent'."""
    fake_daraja.on(OAUTH_PATH, status, body)
    with pytest.raises(DarajaError) as info:
        make_client().stk_push(push_request())
    assert info.value.may_have_been_processed is False
    assert fake_daraja.seen(STK_PUSH_PATH) == []


def test_a_failed_refresh_after_an_invalid_token_means_the_retry_was_not_sent(
    fake_daraja: FakeDaraja, make_client: MakeClient
) -> None:
    fake_daraja.on(OAUTH_PATH, 200, oauth("tok-1")).on(OAUTH_PATH, 503, "")
    fake_daraja.on(STK_PUSH_PATH, 404, envelope("404.001.03", "Invalid Access Token"))
    with pytest.raises(DarajaError) as info:
        make_client().stk_push(push_request())
    assert info.value.may_have_been_processed is False
    assert len(fake_daraja.seen(STK_PUSH_PATH)) == 1  # the refused one only
