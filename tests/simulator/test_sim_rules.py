"""Stateful rules: ResultCode 17 for the same amount, the subscriber lock, spike arrest."""

from __future__ import annotations

import time

import pytest

from app.simulator.settings import SANDBOX_MSISDN
from tests.simulator.support import basic

OTHER = "254722000111"


def _final_code(daraja, checkout: str) -> str:
    return daraja.final_query(checkout)["ResultCode"]


def test_same_amount_to_the_same_phone_within_the_window_fails_with_17(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05))
    first = daraja.pushed(Amount=150)
    assert _final_code(daraja, first) == "0"
    second = daraja.pushed(Amount=150)  # accepted: 17 comes in the callback, as on Daraja
    assert _final_code(daraja, second) == "17"
    assert daraja.final_query(second)["ResultDesc"] == "Rule limited."
    rows = {r["checkout_request_id"]: r for r in daraja.control("GET", "pushes").get_json()}
    assert rows[second]["scenario"] == "same-amount-within-window"
    # Another amount, or the same amount to another phone, is not limited.
    assert _final_code(daraja, daraja.pushed(Amount=151)) == "0"
    assert _final_code(daraja, daraja.pushed(Amount=150, PhoneNumber=OTHER, PartyA=OTHER)) == "0"


def test_rule_17_window_is_configurable_and_can_be_switched_off(make_app, daraja_for):
    short = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05, SIMULATOR_SAME_AMOUNT_WINDOW=0.3))
    _final_code(short, short.pushed(Amount=150))
    time.sleep(0.35)
    assert _final_code(short, short.pushed(Amount=150)) == "0"  # outside the window
    off = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05, SIMULATOR_SAME_AMOUNT_WINDOW=0))
    _final_code(off, off.pushed(Amount=150))
    assert _final_code(off, off.pushed(Amount=150)) == "0"


def test_refused_pushes_do_not_count_for_rule_17(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05))
    daraja.control("POST", "next", {"scenario": "system-busy"})
    assert daraja.push(Amount=150).status_code == 500  # refused: never reached M-Pesa
    assert _final_code(daraja, daraja.pushed(Amount=150)) == "0"


def test_an_armed_scenario_skips_rule_17(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05))
    _final_code(daraja, daraja.pushed(Amount=150))
    daraja.control("POST", "next", {"scenario": "cancelled"})
    assert _final_code(daraja, daraja.pushed(Amount=150)) == "1032"


def test_lock_window_is_configurable(make_app, daraja_for):
    # A long prompt, a short lock: after the window a second prompt is allowed.
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=30, SIMULATOR_LOCK_WINDOW=0.3))
    daraja.pushed(Amount=10)
    locked = daraja.push(Amount=11)
    assert locked.status_code == 500
    assert locked.get_json()["errorMessage"].startswith("Unable to lock subscriber")
    time.sleep(0.35)
    assert daraja.push(Amount=12).status_code == 200


def test_lock_can_be_switched_off(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=30, SIMULATOR_LOCK_WINDOW=0))
    daraja.pushed(Amount=10)
    assert daraja.push(Amount=11).status_code == 200


def test_default_lock_lasts_while_the_prompt_is_live(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.2))
    daraja.pushed(Amount=10)
    assert daraja.push(Amount=11).status_code == 500
    time.sleep(0.25)
    assert daraja.push(Amount=12).status_code == 200  # the prompt ended: the phone is free


def test_spike_arrest_is_off_by_default(daraja):
    checkout = daraja.pushed()
    assert all(daraja.query(checkout).status_code == 500 for _ in range(5))  # being processed
    assert daraja.query(checkout).get_json()["errorCode"] == "500.001.1001"


def _spike(response) -> bool:
    body = response.get_json()
    return response.status_code == 500 and body == {
        "requestId": body["requestId"],
        "errorCode": "500.003.02",
        "errorMessage": "Error Occurred: Spike Arrest Violation",
    }


def test_spike_arrest_refuses_calls_faster_than_the_rate(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_SPIKE_ARREST_RPS=2, SIMULATOR_CALLBACK_DELAY=30))
    checkout = daraja.pushed()
    assert _spike(daraja.query(checkout))  # right after the push: too soon
    time.sleep(0.55)
    assert daraja.query(checkout).get_json()["errorCode"] == "500.001.1001"  # allowed again
    assert _spike(daraja.push(PhoneNumber=OTHER, PartyA=OTHER))  # pushes share the rate
    assert len(daraja.control("GET", "pushes").get_json()) == 1  # the refused push left nothing


@pytest.mark.parametrize(
    ("scope", "other_key_limited"), [("consumer_key", False), ("global", True)]
)
def test_spike_arrest_scope(make_app, daraja_for, scope, other_key_limited):
    app = make_app(
        SIMULATOR_SPIKE_ARREST_RPS=1,
        SIMULATOR_SPIKE_ARREST_SCOPE=scope,
        SIMULATOR_SINGLE_TOKEN=False,
        SIMULATOR_CREDENTIALS=[("key-a", "secret-a"), ("key-b", "secret-b")],
    )
    first, second = daraja_for(app), daraja_for(app)
    first._token = first.json_of(first.oauth(basic("key-a", "secret-a")))["access_token"]
    second._token = second.json_of(second.oauth(basic("key-b", "secret-b")))["access_token"]
    assert first.push().status_code == 200
    assert _spike(second.push(PhoneNumber=OTHER, PartyA=OTHER)) is other_key_limited


def test_oauth_is_not_rate_limited(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_SPIKE_ARREST_RPS=1, SIMULATOR_SINGLE_TOKEN=False))
    assert all(daraja.oauth().status_code == 200 for _ in range(3))


def test_the_sandbox_number_is_an_ordinary_phone(make_app, daraja_for):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05))
    checkout = daraja.pushed(PhoneNumber=SANDBOX_MSISDN, PartyA=SANDBOX_MSISDN, Amount=1)
    assert _final_code(daraja, checkout) == "0"
