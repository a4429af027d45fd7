"""The amount-driven scenario catalogue, end to end through push, query and callback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.simulator.scenarios import (
    DEFAULT_SCENARIO,
    RESULT_DESCRIPTIONS,
    SCENARIOS,
    result_desc,
    scenario_for_amount,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


@pytest.mark.parametrize("amount", [1, 2, 3, 4, 8, 17, 26, 100, 1000, 9999, 250000])
def test_common_amounts_succeed(amount):
    assert scenario_for_amount(amount) is DEFAULT_SCENARIO
    assert DEFAULT_SCENARIO.result_code == 0


@pytest.mark.parametrize("code", [1001, 1019, 1025, 1032, 1037, 2001])
def test_amount_equal_to_a_failure_code_produces_it(code):
    scenario = scenario_for_amount(code)
    assert scenario.result_code == code
    assert scenario.callback == "send"


def test_delivery_fault_rules_exist():
    by_name = {s.name: s for s in SCENARIOS}
    assert (
        by_name["success-callback-lost"].result_code,
        by_name["success-callback-lost"].callback,
    ) == (0, "drop")
    assert (
        by_name["cancelled-callback-lost"].result_code,
        by_name["cancelled-callback-lost"].callback,
    ) == (1032, "drop")
    assert by_name["duplicate-callback"].callback == "duplicate"
    assert by_name["late-callback"].late


def test_every_scenario_code_has_catalogue_wording():
    for scenario in SCENARIOS:
        assert scenario.result_code in RESULT_DESCRIPTIONS
    assert result_desc(4242) == "Simulated result 4242."


def test_docs_table_matches_the_catalogue():
    rows = re.findall(
        r"^\|\s*(\d+)\s*\|\s*`([a-z-]+)`\s*\|\s*(\d+)\s*\|\s*([a-z]+)", DOCS.read_text(), re.M
    )
    documented = {(int(a), name, int(code), cb) for a, name, code, cb in rows}
    actual = {
        (s.amount, s.name, s.result_code, "late" if s.late else s.callback) for s in SCENARIOS
    }
    assert documented == actual


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.amount}-{s.name}")
def test_scenario_end_to_end(make_app, daraja_for, receiver, wait_until, scenario):
    daraja = daraja_for(make_app(SIMULATOR_CALLBACK_DELAY=0.05, SIMULATOR_LATE_CALLBACK_DELAY=0.3))
    checkout = daraja.pushed(Amount=scenario.amount)
    final = daraja.final_query(checkout)
    assert final["ResultCode"] == str(scenario.result_code)
    assert final["ResultDesc"] == RESULT_DESCRIPTIONS[scenario.result_code]
    expected = {"send": 1, "duplicate": 2, "drop": 0}[scenario.callback]
    if expected:
        assert wait_until(lambda: len(receiver.for_checkout(checkout)) >= expected)
    else:
        # Nothing may arrive even after well beyond the (tiny) configured delays.
        assert not wait_until(lambda: receiver.for_checkout(checkout), timeout=0.5)
    bodies = receiver.for_checkout(checkout)
    assert len(bodies) == expected
    for body in bodies:
        assert body["Body"]["stkCallback"]["ResultCode"] == scenario.result_code
