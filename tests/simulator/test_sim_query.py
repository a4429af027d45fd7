"""STK query: pending while the prompt is live, final afterwards (docs/daraja.md §5)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest

from app.simulator.ids import NAIROBI, daraja_timestamp
from app.simulator.state import SimulatorState


def _being_processed(response) -> bool:
    body = response.get_json()
    return (
        response.status_code == 500
        and body["errorCode"] == "500.001.1001"
        and body["errorMessage"] == "The transaction is being processed"
        and bool(body["requestId"])
    )


def test_query_is_pending_then_final(daraja):
    checkout = daraja.pushed()
    assert _being_processed(daraja.query(checkout))
    final = daraja.final_query(checkout)
    push = daraja.control("GET", "pushes").get_json()[0]
    assert final == {
        "ResponseCode": "0",
        "ResponseDescription": "The service request has been accepted successfully",
        "MerchantRequestID": push["merchant_request_id"],
        "CheckoutRequestID": checkout,
        "ResultCode": "0",  # a string in the query
        "ResultDesc": "The service request is processed successfully.",
    }


def test_query_result_code_is_a_string_for_failures_too(daraja):
    checkout = daraja.pushed(Amount=1032)
    final = daraja.final_query(checkout)
    assert final["ResultCode"] == "1032"
    assert final["ResultDesc"] == "Request cancelled by user."


def test_query_accepts_a_fresh_timestamp(daraja):
    checkout = daraja.pushed()
    daraja.control("POST", f"pushes/{checkout}/outcome", {"result_code": 0})
    # Any timestamp within the skew works, not only the one the push used.
    ts = daraja_timestamp(datetime.now(NAIROBI) - timedelta(seconds=90))
    password = base64.b64encode(
        f"174379bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919{ts}".encode()
    ).decode()
    assert daraja.query(checkout, Timestamp=ts, Password=password).get_json()["ResultCode"] == "0"


@pytest.mark.parametrize("checkout", ["ws_CO_01012025101500123708374149", "nope"])
def test_unknown_checkout_is_invalid(daraja, checkout):
    response = daraja.query(checkout)
    assert response.status_code == 400
    body = response.get_json()
    assert body["errorCode"] == "400.002.02"
    assert body["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"


def test_checkout_of_another_shortcode_is_invalid(make_app, daraja_for):
    passkeys = {
        "174379": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        "600100": "other",
    }
    daraja = daraja_for(make_app(SIMULATOR_PASSKEYS=passkeys))
    checkout = daraja.pushed()
    ts = daraja_timestamp()
    password = base64.b64encode(f"600100other{ts}".encode()).decode()
    response = daraja.query(checkout, BusinessShortCode="600100", Timestamp=ts, Password=password)
    assert response.get_json()["errorMessage"] == "Bad Request - Invalid CheckoutRequestID"


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"Password": "d3Jvbmc="}, 500, "[MerchantValidate] - Wrong credentials"),
        ({"BusinessShortCode": "600999"}, 500, "Merchant does not exist"),
        ({"Timestamp": "20200101000000"}, 400, "Bad Request - Invalid Timestamp"),
        ({"BusinessShortCode": "abc"}, 400, "Bad Request - Invalid BusinessShortCode"),
        ({"CheckoutRequestID": 12}, 400, "Bad Request - Invalid CheckoutRequestID"),
    ],
)
def test_query_is_validated_like_the_push(daraja, overrides, status, message):
    checkout = daraja.pushed()
    response = daraja.query(checkout, **overrides)
    assert response.status_code == status
    assert response.get_json()["errorMessage"] == message


@pytest.mark.parametrize(
    "field", ["BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID"]
)
def test_query_fields_are_required(daraja, drop, field):
    response = daraja.query("ws_CO_x", **{field: drop})
    assert response.get_json()["errorMessage"] == f"Bad Request - Invalid {field}"


def test_query_is_post_only(client, daraja):
    response = client.get("/simulator/mpesa/stkpushquery/v1/query", headers=daraja.bearer())
    assert response.status_code == 405
    assert response.get_json()["errorCode"] == "405.001"


def test_outcome_is_decided_lazily_without_the_timer(monkeypatch, daraja, receiver, wait_until):
    # Simulate a starved timer thread: the deadline must still be honoured by the query,
    # and the callback must still be delivered from a background thread.
    monkeypatch.setattr(SimulatorState, "_arm_deadline", lambda self, cid, delay: None)
    checkout = daraja.pushed()
    assert _being_processed(daraja.query(checkout))
    assert daraja.final_query(checkout)["ResultCode"] == "0"
    assert wait_until(lambda: receiver.for_checkout(checkout))
    assert len(receiver.for_checkout(checkout)) == 1
