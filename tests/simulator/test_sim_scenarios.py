"""The scenario catalogue (by phone and by amount), end to end through push, query and callback."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from app.simulator.scenarios import (
    CATALOGUE,
    DEFAULT_SCENARIO,
    OFFICIAL_FAILURE_CODES,
    RESULT_DESCRIPTIONS,
    SCENARIOS,
    Scenario,
    choose_scenario,
    phone_for_code,
    result_desc,
    scenario_for_amount,
    scenario_for_phone,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
ORDINARY_PHONE = "254711222333"
ORDINARY_AMOUNT = 150
# Small delays so every scenario, held answers included, finishes in well under a second.
QUICK = {
    "SIMULATOR_CALLBACK_DELAY": 0.05,
    "SIMULATOR_LATE_CALLBACK_DELAY": 0.3,
    "SIMULATOR_DELAYED_CALLBACK_DELAY": 0.3,
    "SIMULATOR_SECOND_CALLBACK_GAP": 0.02,
    "SIMULATOR_SLOW_RESPONSE_DELAY": 0.2,
    "SIMULATOR_TIMEOUT_RESPONSE_DELAY": 0.4,
    "SIMULATOR_DUPLICATE_CALLBACKS": 3,
}


def triggers() -> list:
    """(scenario, how to reach it) for every way every catalogue row can be chosen."""
    cases = []
    for s in CATALOGUE:
        if s.amount is None and s.phone is None:
            cases.append(pytest.param(s, "default", id=s.name))
        if s.phone is not None:
            cases.append(pytest.param(s, "phone", id=f"{s.name}-by-phone"))
        if s.amount is not None:
            cases.append(pytest.param(s, "amount", id=f"{s.name}-by-amount"))
    return cases


def expected_codes(s: Scenario, duplicates: int) -> list:
    """The ResultCode of each callback the scenario sends, in order."""
    if s.response == "refused" or s.callback == "drop":
        return []
    if s.callback == "duplicate":
        return [s.result_code] * duplicates
    if s.callback == "conflict":
        return [s.result_code, s.conflict_code]
    if s.callback == "conflict-first":
        return [s.conflict_code, s.result_code]
    return [s.result_code]


@pytest.mark.parametrize("amount", [1, 2, 3, 4, 8, 17, 26, 100, 1000, 9999, 250000])
def test_common_amounts_succeed(amount):
    assert scenario_for_amount(amount) is DEFAULT_SCENARIO
    assert choose_scenario(ORDINARY_PHONE, amount) is DEFAULT_SCENARIO
    assert DEFAULT_SCENARIO.result_code == 0


@pytest.mark.parametrize("code", OFFICIAL_FAILURE_CODES, ids=str)
def test_every_official_failure_code_has_a_test_phone(code):
    phone = phone_for_code(code)
    assert re.fullmatch(r"2547\d{8}", phone)
    assert scenario_for_phone(phone).result_code == code
    # The phone wins whatever the amount, KES 1 included.
    assert choose_scenario(phone, 1).result_code == code
    assert result_desc(code) == RESULT_DESCRIPTIONS[code]


def test_test_phones_follow_the_documented_pattern():
    assert phone_for_code(1) == "254700000001"
    assert phone_for_code(1032) == "254700001032"
    assert phone_for_code("SFC_IC0003") == "254700010003"
    assert scenario_for_phone("254708374149") is None  # the sandbox MSISDN is ordinary


@pytest.mark.parametrize("code", [1001, 1019, 1025, 1032, 1037, 2001, 2028, 8006])
def test_four_digit_codes_are_also_reached_by_amount(code):
    scenario = scenario_for_amount(code)
    assert scenario.result_code == code
    assert scenario.callback == "send"


def test_phone_wins_over_amount():
    assert choose_scenario(phone_for_code(1), 4040).result_code == 1
    assert choose_scenario(ORDINARY_PHONE, 4040).name == "success-callback-lost"


def test_every_result_code_has_catalogue_wording():
    for scenario in SCENARIOS:
        if scenario.result_code is not None:
            assert scenario.result_code in RESULT_DESCRIPTIONS
        if scenario.conflict_code is not None:
            assert scenario.conflict_code in RESULT_DESCRIPTIONS
    assert result_desc(4242) == "Simulated result 4242."


def test_bad_rows_fail_at_construction():
    with pytest.raises(ValueError, match="refusal"):
        Scenario("x", None, amount=1, response="refused")
    with pytest.raises(ValueError, match="conflict_code"):
        Scenario("x", 0, amount=1, callback="conflict")
    with pytest.raises(ValueError, match="bad mode"):
        Scenario("x", 0, amount=1, callback="sometimes")  # type: ignore[arg-type]


def _cell(text: str) -> str | None:
    return None if text == "—" else text


def test_docs_table_matches_the_catalogue():
    rows = re.findall(
        r"^\|\s*(\d+|—)\s*\|\s*(\d{12}|—)\s*\|\s*`([a-z0-9-]+)`\s*\|\s*([A-Z0-9_]+|—)\s*\|"
        r"\s*([a-z-]+|—)\s*\|\s*([a-z-]+)\s*\|",
        DOCS.read_text(),
        re.M,
    )
    documented = {
        (_cell(a), _cell(p), name, _cell(code), _cell(cb), resp)
        for a, p, name, code, cb, resp in rows
    }
    actual = {
        (
            None if s.amount is None else str(s.amount),
            s.phone,
            s.name,
            None if s.result_code is None else str(s.result_code),
            None if s.response == "refused" else s.callback,
            s.response,
        )
        for s in CATALOGUE
    }
    assert documented == actual


def test_docs_describe_every_refusal_envelope():
    text = DOCS.read_text()
    for s in SCENARIOS:
        if s.refusal is not None:
            assert f'`{s.refusal.code}` "{s.refusal.message[:20]}' in text, s.name


@pytest.mark.parametrize(("scenario", "trigger"), triggers())
def test_scenario_end_to_end(make_app, daraja_for, receiver, wait_until, scenario, trigger):
    app = make_app(**QUICK)
    daraja = daraja_for(app)
    phone = scenario.phone if trigger == "phone" else ORDINARY_PHONE
    amount = scenario.amount if trigger == "amount" else ORDINARY_AMOUNT
    started = time.monotonic()
    response = daraja.push(PhoneNumber=phone, PartyA=phone, Amount=amount)
    took = time.monotonic() - started
    body = response.get_json()
    pushes = daraja.control("GET", "pushes").get_json()

    if scenario.response == "refused":
        assert response.status_code == scenario.refusal.status
        assert (body["errorCode"], body["errorMessage"]) == (
            scenario.refusal.code,
            scenario.refusal.message,
        )
        assert pushes == []  # nothing recorded: no prompt, no callback
        return

    assert response.status_code == 200, body
    checkout = body["CheckoutRequestID"]
    assert [p["scenario"] for p in pushes] == [scenario.name]
    codes = expected_codes(scenario, QUICK["SIMULATOR_DUPLICATE_CALLBACKS"])
    if scenario.response == "after-callback":
        # The merchant already holds the callback when the push is answered.
        assert len(receiver.for_checkout(checkout)) == len(codes)
    if scenario.response == "slow":
        assert QUICK["SIMULATOR_SLOW_RESPONSE_DELAY"] <= took < 2
    if scenario.response == "timeout":
        assert took >= QUICK["SIMULATOR_TIMEOUT_RESPONSE_DELAY"]
    if scenario.callback == "delayed":
        # Still on the customer's phone well after an ordinary prompt would have ended.
        time.sleep(QUICK["SIMULATOR_CALLBACK_DELAY"] * 2)
        assert daraja.query(checkout).get_json()["errorMessage"] == (
            "The transaction is being processed"
        )

    final = daraja.final_query(checkout)
    assert final["ResultCode"] == str(scenario.result_code)
    named = final["CheckoutRequestID"]
    assert (named != checkout) is (scenario.query == "other-id")
    assert final["ResultDesc"] == RESULT_DESCRIPTIONS[scenario.result_code]
    if scenario.callback == "late":
        # The query is final while the callback is still on its way.
        assert receiver.for_checkout(checkout) == []
    if codes:
        assert wait_until(lambda: len(receiver.for_checkout(checkout)) >= len(codes))
    else:
        # Nothing may arrive even after well beyond the (tiny) configured delays.
        assert not wait_until(lambda: receiver.for_checkout(checkout), timeout=0.5)
    bodies = [b["Body"]["stkCallback"] for b in receiver.for_checkout(checkout)]
    assert [b["ResultCode"] for b in bodies] == codes
    for cb in bodies:
        assert cb["ResultDesc"] == RESULT_DESCRIPTIONS[cb["ResultCode"]]
        assert ("CallbackMetadata" in cb) is (cb["ResultCode"] == 0)
    receipts = {
        item["Value"]
        for cb in bodies
        if cb["ResultCode"] == 0
        for item in cb["CallbackMetadata"]["Item"]
        if item["Name"] == "MpesaReceiptNumber"
    }
    assert len(receipts) <= 1  # duplicates and conflicts repeat the one receipt
