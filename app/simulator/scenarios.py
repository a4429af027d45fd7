"""Scenario catalogue: which outcome a simulated STK push gets, chosen by its amount."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CallbackMode = Literal["send", "drop", "duplicate"]
CALLBACK_MODES: tuple[CallbackMode, ...] = ("send", "drop", "duplicate")

SUCCESS = 0

# ResultDesc wording as catalogued in daraja.md §7 (callback and query share it).  Codes whose
# wording §7 only gives truncated ("…") are left out rather than invented, except 1001, which
# reuses the full text of the synchronous lock error it mirrors.
RESULT_DESCRIPTIONS: dict[int, str] = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2: "Declined due to limit rule.",
    17: "Rule limited.",
    1001: (
        "Unable to lock subscriber, a transaction is already in process for the current subscriber"
    ),
    1019: "Transaction has expired.",
    1025: "An error occurred while sending a push request.",
    1032: "Request cancelled by user.",
    1037: "DS timeout user cannot be reached.",
    2001: "The initiator information is invalid.",
    2028: "The request is not permitted according to product assignment.",
    8006: "The security credential is locked.",
}


def result_desc(code: int) -> str:
    """ResultDesc for a code; unknown codes (control API only) get a neutral wording."""
    return RESULT_DESCRIPTIONS.get(code, f"Simulated result {code}.")


@dataclass(frozen=True)
class Scenario:
    """One row of the catalogue: what happens to a push whose Amount matches."""

    name: str
    amount: int | None  # None = not selectable by amount (default / rule-driven rows)
    result_code: int
    callback: CallbackMode = "send"
    # True: the callback goes out SIMULATOR_LATE_CALLBACK_DELAY seconds *after* the outcome is
    # decided, so an STK query already sees the final result while the callback is in flight.
    late: bool = False
    summary: str = ""


DEFAULT_SCENARIO = Scenario(
    "success", None, SUCCESS, summary="Any amount not listed (KES 1 included): paid."
)

# Chosen when TransactionType is CustomerPayBillOnline but PartyB != BusinessShortCode:
# Daraja accepts such a push and fails it in the callback with 2028 (daraja.md §3.1, §3.3).
PRODUCT_MISMATCH_SCENARIO = Scenario(
    "product-assignment",
    None,
    2028,
    summary="Paybill push whose PartyB differs from BusinessShortCode (any amount).",
)

# Amounts equal to a failure code fail with that code (like card-network test numbers); the
# 4-digit x0x0 / 40xx amounts are reserved for delivery faults.  Small amounts (1, 2, 17, …)
# deliberately succeed: KES 1 is everybody's test amount.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("subscriber-busy", 1001, 1001, summary="Customer has another session open."),
    Scenario("expired", 1019, 1019, summary="Prompt ignored until it expired."),
    Scenario("push-error", 1025, 1025, summary="Prompt could not be sent."),
    Scenario("cancelled", 1032, 1032, summary="Customer cancelled on the phone."),
    Scenario("unreachable", 1037, 1037, summary="Handset could not be reached."),
    Scenario("wrong-pin", 2001, 2001, summary="Customer entered a wrong M-PESA PIN."),
    Scenario("not-permitted", 2028, 2028, summary="Product assignment error."),
    Scenario("pin-locked", 8006, 8006, summary="Customer's PIN is locked."),
    Scenario(
        "duplicate-callback",
        2020,
        SUCCESS,
        callback="duplicate",
        summary="Paid; the identical callback is POSTed twice.",
    ),
    Scenario(
        "late-callback",
        3030,
        SUCCESS,
        late=True,
        summary="Paid; query is final at once, callback arrives late.",
    ),
    Scenario(
        "cancelled-callback-lost",
        4032,
        1032,
        callback="drop",
        summary="Cancelled; no callback is ever sent, only the query knows.",
    ),
    Scenario(
        "success-callback-lost",
        4040,
        SUCCESS,
        callback="drop",
        summary="Paid; no callback is ever sent, only the query knows.",
    ),
)

_BY_AMOUNT: dict[int, Scenario] = {}
for _scenario in SCENARIOS:
    # A clash would make the documented table lie; fail at import rather than at demo time.
    if _scenario.amount is None or _scenario.amount in _BY_AMOUNT:
        raise RuntimeError(f"bad scenario amount: {_scenario}")
    _BY_AMOUNT[_scenario.amount] = _scenario


def scenario_for_amount(amount: int) -> Scenario:
    """The scenario a push of this amount triggers (the default is success)."""
    return _BY_AMOUNT.get(amount, DEFAULT_SCENARIO)
