"""The JSON control API under /simulator/_control/ and the catch-all error envelopes."""

from __future__ import annotations

import pytest


@pytest.fixture
def slow(make_app, daraja_for):
    """A simulator whose prompts stay live long enough for the control API to decide them."""
    return daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=30))


def test_list_pushes_shows_pending_then_completed(slow):
    checkout = slow.pushed(Amount=150, AccountReference="INV-42")
    [row] = slow.control("GET", "pushes").get_json()
    assert row["checkout_request_id"] == checkout
    assert row["merchant_request_id"]
    assert (row["phone"], row["amount"], row["account_reference"]) == (
        "254708374149",
        150,
        "INV-42",
    )
    assert row["callback_url"] == slow.callback_url
    assert (row["state"], row["result_code"]) == ("pending", None)
    slow.control("POST", f"pushes/{checkout}/outcome", {"result_code": 2001})
    [row] = slow.control("GET", "pushes").get_json()
    assert (row["state"], row["result_code"]) == ("completed", 2001)


def test_outcome_decides_now_and_sends_the_callback(slow, receiver, wait_until):
    checkout = slow.pushed()
    response = slow.control("POST", f"pushes/{checkout}/outcome", {"result_code": "1037"})
    assert response.status_code == 200
    assert response.get_json()["result_code"] == 1037
    assert slow.final_query(checkout)["ResultDesc"] == "DS timeout user cannot be reached."
    assert wait_until(lambda: receiver.for_checkout(checkout))
    assert receiver.for_checkout(checkout)[0]["Body"]["stkCallback"]["ResultCode"] == 1037


def test_outcome_with_duplicate_and_delay(slow, receiver, wait_until):
    checkout = slow.pushed()
    slow.control(
        "POST",
        f"pushes/{checkout}/outcome",
        {"result_code": 0, "callback": "duplicate", "delay_s": 0.5},
    )
    # The query is final at once; the callbacks follow after delay_s.
    assert slow.query(checkout).get_json()["ResultCode"] == "0"
    assert receiver.for_checkout(checkout) == []
    assert wait_until(lambda: len(receiver.for_checkout(checkout)) == 2)
    first, second = receiver.for_checkout(checkout)
    assert first == second


def test_outcome_with_drop_sends_nothing(slow, receiver, wait_until):
    checkout = slow.pushed()
    slow.control("POST", f"pushes/{checkout}/outcome", {"result_code": 1032, "callback": "drop"})
    assert slow.query(checkout).get_json()["ResultCode"] == "1032"
    assert not wait_until(lambda: receiver.for_checkout(checkout), timeout=0.3)


def test_outcome_accepts_custom_code_and_description(slow):
    checkout = slow.pushed()
    slow.control("POST", f"pushes/{checkout}/outcome", {"result_code": 1, "callback": "drop"})
    assert slow.query(checkout).get_json()["ResultDesc"] == (
        "The balance is insufficient for the transaction."
    )
    other = slow.pushed(PhoneNumber="254711000002", PartyA="254711000002")
    slow.control(
        "POST",
        f"pushes/{other}/outcome",
        {"result_code": 9999, "result_desc": "Custom text", "callback": "drop"},
    )
    assert slow.query(other).get_json()["ResultDesc"] == "Custom text"


@pytest.mark.parametrize(
    "body",
    [
        {"result_code": -1},
        {"result_code": "abc"},
        {"result_code": True},
        {"callback": "later"},
        {"delay_s": "soon"},
        {"delay_s": -1},
        {"delay_s": 99999},
        {"result_desc": 5},
    ],
)
def test_outcome_rejects_bad_bodies(slow, body):
    checkout = slow.pushed()
    response = slow.control("POST", f"pushes/{checkout}/outcome", body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert slow.control("GET", "pushes").get_json()[0]["state"] == "pending"


def test_outcome_rejects_non_object_json(slow):
    checkout = slow.pushed()
    response = slow.control("POST", f"pushes/{checkout}/outcome", ["x"])
    assert response.status_code == 400


def test_outcome_for_unknown_or_completed_push(slow):
    assert slow.control("POST", "pushes/ws_CO_nope/outcome", {}).status_code == 404
    checkout = slow.pushed()
    assert slow.control("POST", f"pushes/{checkout}/outcome", {}).status_code == 200
    conflict = slow.control("POST", f"pushes/{checkout}/outcome", {})
    assert conflict.status_code == 409
    assert conflict.get_json() == {"error": "push already completed"}


def test_outcome_without_body_defaults_to_success(slow):
    checkout = slow.pushed()
    response = slow._call("POST", f"/simulator/_control/pushes/{checkout}/outcome")
    assert response.status_code == 200
    assert slow.query(checkout).get_json()["ResultCode"] == "0"


def test_resend_callback(slow, receiver, wait_until):
    checkout = slow.pushed()
    assert slow.control("POST", f"pushes/{checkout}/callback").status_code == 409
    slow.control("POST", f"pushes/{checkout}/outcome", {"callback": "drop"})
    assert slow.control("POST", f"pushes/{checkout}/callback").status_code == 200
    assert wait_until(lambda: receiver.for_checkout(checkout))
    assert receiver.for_checkout(checkout)[0]["Body"]["stkCallback"]["ResultCode"] == 0
    row = slow.control("GET", "pushes").get_json()[0]
    assert row["callbacks_sent"] == 1
    assert row["callback_attempts"][0]["status"] == 200
    assert slow.control("POST", "pushes/ws_CO_nope/callback").status_code == 404


def test_reset_forgets_pushes_and_cancels_callbacks(make_app, daraja_for, receiver, wait_until):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.2))
    checkout = daraja.pushed()
    assert daraja.control("POST", "reset").get_json() == {"reset": True}
    assert daraja.control("GET", "pushes").get_json() == []
    assert daraja.query(checkout).get_json()["errorMessage"] == (
        "Bad Request - Invalid CheckoutRequestID"
    )
    # The phone is free again and the cancelled prompt never calls back.
    assert daraja.push().status_code == 200
    assert not wait_until(lambda: receiver.for_checkout(checkout), timeout=0.5)


def test_scenarios_endpoint_lists_the_catalogue(client):
    rows = client.get("/simulator/_control/scenarios").get_json()
    by_amount = {row["amount"]: row for row in rows}
    assert by_amount[1032]["result_code"] == 1032
    assert (by_amount[4040]["result_code"], by_amount[4040]["callback"]) == (0, "drop")
    assert by_amount[3030]["late"] is True


def test_index_and_unknown_paths(client):
    assert client.get("/simulator/").get_json()["service"] == "PesaDesk Daraja simulator"
    response = client.post("/simulator/mpesa/b2c/v1/paymentrequest", json={})
    assert response.status_code == 404
    assert response.get_json()["errorCode"] == "404.001.01"
    assert response.get_json()["errorMessage"] == "Resource not found"
