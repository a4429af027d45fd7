"""The JSON control API under /simulator/_control/ and the catch-all error envelopes."""

from __future__ import annotations

import threading
import time

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


def test_outcome_by_scenario_name(slow, receiver, wait_until):
    checkout = slow.pushed()
    response = slow.control(
        "POST", f"pushes/{checkout}/outcome", {"scenario": "insufficient-funds"}
    )
    assert response.status_code == 200
    assert (response.get_json()["result_code"], response.get_json()["answered_by"]) == (
        1,
        "control",
    )
    assert slow.final_query(checkout)["ResultDesc"] == (
        "The balance is insufficient for the transaction."
    )
    assert wait_until(lambda: receiver.for_checkout(checkout))


def test_outcome_by_scenario_keeps_its_callback_mode_unless_overridden(slow, receiver, wait_until):
    lost = slow.pushed()
    slow.control("POST", f"pushes/{lost}/outcome", {"scenario": "success-callback-lost"})
    other = slow.pushed(PhoneNumber="254711000003", PartyA="254711000003")
    slow.control(
        "POST",
        f"pushes/{other}/outcome",
        {"scenario": "success-callback-lost", "callback": "send"},
    )
    assert wait_until(lambda: receiver.for_checkout(other))
    assert receiver.for_checkout(lost) == []


def test_outcome_refuses_scenarios_that_act_on_the_push_answer(slow):
    checkout = slow.pushed()
    for name in ("slow-response", "system-busy", "callback-before-response"):
        response = slow.control("POST", f"pushes/{checkout}/outcome", {"scenario": name})
        assert response.status_code == 400
        assert "_control/next" in response.get_json()["error"]
    assert (
        slow.control("POST", f"pushes/{checkout}/outcome", {"scenario": "nope"}).status_code == 400
    )
    assert slow.control("GET", "pushes").get_json()[0]["state"] == "pending"


def test_outcome_with_a_text_result_code(slow, receiver, wait_until):
    checkout = slow.pushed()
    response = slow.control("POST", f"pushes/{checkout}/outcome", {"result_code": "SFC_IC0003"})
    assert response.status_code == 200
    assert slow.final_query(checkout)["ResultCode"] == "SFC_IC0003"
    assert wait_until(lambda: receiver.for_checkout(checkout))
    [cb] = [b["Body"]["stkCallback"] for b in receiver.for_checkout(checkout)]
    assert (cb["ResultCode"], cb["ResultDesc"]) == ("SFC_IC0003", "The operator does not exist.")


def test_outcome_with_copies(slow, receiver, wait_until):
    checkout = slow.pushed()
    body = {"callback": "duplicate", "copies": 4}
    assert slow.control("POST", f"pushes/{checkout}/outcome", body).status_code == 200
    assert wait_until(lambda: len(receiver.for_checkout(checkout)) == 4)


@pytest.mark.parametrize(
    ("callback", "order"), [("conflict", [0, 1032]), ("conflict-first", [1032, 0])]
)
def test_outcome_with_a_conflicting_callback(slow, receiver, wait_until, callback, order):
    checkout = slow.pushed()
    body = {"result_code": 0, "callback": callback, "conflict_code": 1032}
    assert slow.control("POST", f"pushes/{checkout}/outcome", body).status_code == 200
    assert slow.final_query(checkout)["ResultCode"] == "0"  # the query tells the truth
    assert wait_until(lambda: len(receiver.for_checkout(checkout)) == 2)
    codes = [b["Body"]["stkCallback"]["ResultCode"] for b in receiver.for_checkout(checkout)]
    assert codes == order


def test_a_lying_success_callback_carries_a_receipt(slow, receiver, wait_until):
    checkout = slow.pushed()
    body = {"result_code": 1037, "callback": "conflict", "conflict_code": 0}
    assert slow.control("POST", f"pushes/{checkout}/outcome", body).status_code == 200
    assert wait_until(lambda: len(receiver.for_checkout(checkout)) == 2)
    second = receiver.for_checkout(checkout)[1]["Body"]["stkCallback"]
    items = {i["Name"]: i.get("Value") for i in second["CallbackMetadata"]["Item"]}
    assert second["ResultCode"] == 0 and items["MpesaReceiptNumber"]


@pytest.mark.parametrize(
    "body",
    [
        {"callback": "conflict"},
        {"callback": "conflict", "conflict_code": 0},
        {"callback": "duplicate", "copies": 0},
        {"callback": "duplicate", "copies": 99},
        {"result_code": "sfc_lower"},
    ],
)
def test_outcome_rejects_bad_conflicts_and_copies(slow, body):
    checkout = slow.pushed()
    assert slow.control("POST", f"pushes/{checkout}/outcome", body).status_code == 400


def test_next_arms_a_scenario_for_the_next_push(slow):
    armed = slow.control("POST", "next", {"scenario": "slow-response"}).get_json()
    assert armed == {"armed": [{"phone": None, "scenario": "slow-response"}]}
    assert slow.control("GET", "next").get_json()["armed"][0]["scenario"] == "slow-response"
    started = time.monotonic()
    assert slow.push().status_code == 200
    assert time.monotonic() - started >= 0.3  # FAST_CONFIG's slow answer
    assert slow.control("GET", "next").get_json() == {"armed": []}  # used once
    assert slow.control("GET", "pushes").get_json()[0]["scenario"] == "slow-response"


def test_next_for_one_phone_waits_for_that_phone(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05))
    daraja.control("POST", "next", {"scenario": "internal-error", "phone": "0722 000 444"})
    assert daraja.push().status_code == 200  # another phone: not for it
    refused = daraja.push(PhoneNumber="254722000444", PartyA="254722000444")
    assert refused.status_code == 500
    assert refused.get_json()["errorCode"] == "500.003.1001"


def test_next_survives_a_push_refused_by_the_lock(slow):
    slow.pushed()
    slow.control("POST", "next", {"scenario": "cancelled"})
    assert slow.push(Amount=2).status_code == 500  # locked: the armed scenario stays
    assert slow.control("GET", "next").get_json()["armed"] == [
        {"phone": None, "scenario": "cancelled"}
    ]


@pytest.mark.parametrize(
    "body", [{}, {"scenario": "nope"}, {"scenario": "cancelled", "phone": "12345"}]
)
def test_next_rejects_bad_bodies(slow, body):
    response = slow.control("POST", "next", body)
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_reset_forgets_armed_scenarios_and_wakes_held_answers(make_app, daraja_for):
    app = make_app(SIMULATOR_TIMEOUT_RESPONSE_DELAY=30)
    daraja = daraja_for(app)
    daraja.control("POST", "next", {"scenario": "response-timeout"})
    token = daraja.token()
    done: list[float] = []

    def held() -> None:
        started = time.monotonic()
        daraja_for(app).push(token=token)
        done.append(time.monotonic() - started)

    thread = threading.Thread(target=held)
    thread.start()
    time.sleep(0.2)
    daraja.control("POST", "next", {"scenario": "cancelled"})
    daraja.control("POST", "reset")
    thread.join(timeout=5)
    assert done and done[0] < 5  # woken long before the 30 s hold
    assert daraja.control("GET", "next").get_json() == {"armed": []}


def test_stats_count_tokens_pushes_and_queries_per_checkout(slow):
    first = slow.pushed()
    second = slow.pushed(PhoneNumber="254711000004", PartyA="254711000004")
    for _ in range(3):
        slow.query(first)
    slow.query(second)
    slow.query("ws_CO_unknown")  # well-formed, so counted, though unknown
    slow.query(first, Password="bad")  # refused before the lookup: not counted
    stats = slow.control("GET", "stats").get_json()
    assert stats["tokens_issued"] == 1
    assert (stats["pushes"], stats["pending"]) == (2, 2)
    assert stats["queries_by_checkout"] == {first: 3, second: 1, "ws_CO_unknown": 1}
    assert stats["queries"] == 5
    slow.control("POST", "reset")
    after = slow.control("GET", "stats").get_json()
    assert (after["queries"], after["pushes"], after["tokens_issued"]) == (0, 0, 1)
