"""Scenario catalogue: what happens to a simulated STK push, chosen by its phone or amount."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ResultCode = int | str  # M-Pesa's codes are numbers, except SFC_IC0003

# How the final result travels back (see docs/simulator.md, "Scenario catalogue"):
#   send       one callback when the prompt ends
#   drop       no callback ever; only the query knows
#   duplicate  SIMULATOR_DUPLICATE_CALLBACKS identical callbacks
#   late       one callback SIMULATOR_LATE_CALLBACK_DELAY s after the query turned final
#   delayed    the prompt stays live SIMULATOR_DELAYED_CALLBACK_DELAY s, then one callback
#   conflict   the true callback, then one with conflict_code
#   conflict-first  a callback with conflict_code, then the true one
CallbackMode = Literal["send", "drop", "duplicate", "late", "delayed", "conflict", "conflict-first"]
# How the synchronous push answer behaves:
#   normal          answered at once
#   after-callback  decided at once; answered only after the callback was delivered
#   slow            answered after SIMULATOR_SLOW_RESPONSE_DELAY s (under a sane read timeout)
#   timeout         prompt recorded, answer held SIMULATOR_TIMEOUT_RESPONSE_DELAY s (beyond it)
#   refused         a gateway error envelope; nothing is recorded, no prompt, no callback
ResponseMode = Literal["normal", "after-callback", "slow", "timeout", "refused"]
# How the STK query answers once the push is final:
#   normal    about the CheckoutRequestID asked
#   other-id  about another CheckoutRequestID (a faulty gateway or look-alike does this)
QueryMode = Literal["normal", "other-id"]

CALLBACK_MODES: tuple[CallbackMode, ...] = (
    "send",
    "drop",
    "duplicate",
    "late",
    "delayed",
    "conflict",
    "conflict-first",
)
RESPONSE_MODES: tuple[ResponseMode, ...] = (
    "normal",
    "after-callback",
    "slow",
    "timeout",
    "refused",
)
QUERY_MODES: tuple[QueryMode, ...] = ("normal", "other-id")

SUCCESS = 0

# ResultDesc wording as catalogued in docs/daraja.md §7 (callback and query share it).  For 3,
# 4 and 8 §7 only gives the end of the sentence ("…greater than the maximum transaction
# amount."); the simulator completes it with a neutral opening (choice; never match on text).
# 1001 reuses the full text of the synchronous lock error it mirrors.
RESULT_DESCRIPTIONS: dict[ResultCode, str] = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2: "Declined due to limit rule.",
    3: "Declined: the amount is greater than the maximum transaction amount.",
    4: "Declined: the amount would exceed daily transfer limit.",
    8: "Declined: the amount would exceed the maximum balance.",
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
    "SFC_IC0003": "The operator does not exist.",
}

# The STK failure codes docs/daraja.md §7 marks "Official", plus 1001 (the callback form of the
# subscriber lock, third-party sources only); each has a dedicated test phone.
OFFICIAL_FAILURE_CODES: tuple[ResultCode, ...] = (
    1,
    2,
    3,
    4,
    8,
    17,
    1001,
    1019,
    1025,
    1032,
    1037,
    2001,
    2028,
    8006,
    "SFC_IC0003",
)


def result_desc(code: ResultCode) -> str:
    """ResultDesc for a code; unknown codes (control API only) get a neutral wording."""
    return RESULT_DESCRIPTIONS.get(code, f"Simulated result {code}.")


def phone_for_code(code: ResultCode) -> str:
    """The dedicated test MSISDN of a failure code: 25470000 + the code on four digits.

    SFC_IC0003 is not a number: it lives in the 25470001NNNN block, as 254700010003.
    """
    if isinstance(code, str):
        return "25470001" + code[-4:]
    return f"25470000{code:04d}"


@dataclass(frozen=True)
class Refusal:
    """A synchronous gateway error envelope for the push (HTTP status, errorCode, message)."""

    status: int
    code: str
    message: str


SYSTEM_BUSY = Refusal(500, "500.003.02", "System is busy. Please try again in few minutes.")
SPIKE_ARREST = Refusal(500, "500.003.02", "Error Occurred: Spike Arrest Violation")
QUOTA_VIOLATION = Refusal(500, "500.003.03", "Quota Violation")
INTERNAL_ERROR = Refusal(500, "500.003.1001", "Internal Server Error")
SUBSCRIBER_LOCKED = Refusal(
    500,
    "500.001.1001",
    "Unable to lock subscriber, a transaction is already in process for the current subscriber",
)


@dataclass(frozen=True)
class Scenario:
    """One row of the catalogue: what happens to a push whose phone or amount matches."""

    name: str
    result_code: ResultCode | None  # the truth the query reports; None when refused
    amount: int | None = None  # None = not selectable by amount
    phone: str | None = None  # None = not selectable by phone
    callback: CallbackMode = "send"
    response: ResponseMode = "normal"
    conflict_code: ResultCode | None = None  # the contradicting callback (conflict modes)
    refusal: Refusal | None = None  # the envelope when response == "refused"
    query: QueryMode = "normal"
    summary: str = ""

    def __post_init__(self) -> None:
        # A row that cannot behave as documented must fail at import, not in a demo.
        if (
            self.callback not in CALLBACK_MODES
            or self.response not in RESPONSE_MODES
            or self.query not in QUERY_MODES
        ):
            raise ValueError(f"bad mode in scenario {self.name}")
        if (self.response == "refused") != (self.refusal is not None):
            raise ValueError(f"scenario {self.name}: refusal iff response == 'refused'")
        if (self.response == "refused") != (self.result_code is None):
            raise ValueError(f"scenario {self.name}: a refused push has no result code")
        if self.callback.startswith("conflict") != (self.conflict_code is not None):
            raise ValueError(f"scenario {self.name}: conflict_code iff a conflict mode")


DEFAULT_SCENARIO = Scenario(
    "success", SUCCESS, summary="Any other phone and amount (KES 1 included): paid."
)

# Chosen when TransactionType is CustomerPayBillOnline but PartyB != BusinessShortCode:
# Daraja accepts such a push and fails it in the callback with 2028 (docs/daraja.md §3.1, §3.3).
PRODUCT_MISMATCH_SCENARIO = Scenario(
    "product-assignment",
    2028,
    summary="Paybill push whose PartyB differs from BusinessShortCode (any amount).",
)

# Daraja's own duplicate guard: the same amount to the same phone within two minutes is
# accepted and then fails with ResultCode 17 (docs/daraja.md §3.4).
SAME_AMOUNT_SCENARIO = Scenario(
    "same-amount-within-window",
    17,
    summary="Same amount to the same phone within SIMULATOR_SAME_AMOUNT_WINDOW s.",
)

# A customer who answers the virtual phone: the scenario's own outcome after a correct PIN,
# these for the other answers (docs/daraja.md §7, §12: 1037 when the prompt is never answered).
WRONG_PIN_CODE = 2001
CANCELLED_CODE = 1032
IGNORED_CODE = 1037

_FAILURES: tuple[tuple[ResultCode, str, str], ...] = (
    (1, "insufficient-funds", "Customer's balance is too low."),
    (2, "below-minimum", "Declined by a limit rule (below the minimum)."),
    (3, "above-maximum", "Above the per-transaction maximum."),
    (4, "daily-limit", "Customer's daily transfer limit reached."),
    (8, "balance-ceiling", "Shop's account would exceed its maximum balance."),
    (17, "rule-limited", "Rule limited (M-Pesa's duplicate guard)."),
    (1001, "subscriber-busy", "Customer has another session open."),
    (1019, "expired", "Prompt ignored until it expired."),
    (1025, "push-error", "Prompt could not be sent."),
    (1032, "cancelled", "Customer cancelled on the phone."),
    (1037, "unreachable", "Handset could not be reached."),
    (2001, "wrong-pin", "Customer entered a wrong M-PESA PIN."),
    (2028, "not-permitted", "Product assignment (configuration) error."),
    (8006, "pin-locked", "Customer's PIN is locked."),
    ("SFC_IC0003", "operator-missing", "Operator does not exist (configuration error)."),
)

# Codes below 1000 collide with everyday amounts (KES 1 is everybody's test amount), so they
# are reached by phone only; the four-digit codes by phone and by an equal amount.
FAILURE_SCENARIOS: tuple[Scenario, ...] = tuple(
    Scenario(
        name,
        code,
        amount=code if isinstance(code, int) and code >= 1000 else None,
        phone=phone_for_code(code),
        summary=summary,
    )
    for code, name, summary in _FAILURES
)

# Delivery and response faults, by amount: 2020-6037 callbacks, 7070-7072 the push answer,
# 9001-9005 gateway refusals.
FAULT_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "duplicate-callback",
        SUCCESS,
        amount=2020,
        callback="duplicate",
        summary="Paid; the identical callback is POSTed N times.",
    ),
    Scenario(
        "late-callback",
        SUCCESS,
        amount=3030,
        callback="late",
        summary="Paid; the query is final at once, the callback arrives late.",
    ),
    Scenario(
        "cancelled-callback-lost",
        1032,
        amount=4032,
        callback="drop",
        summary="Cancelled; no callback is ever sent, only the query knows.",
    ),
    Scenario(
        "success-callback-lost",
        SUCCESS,
        amount=4040,
        callback="drop",
        summary="Paid; no callback is ever sent, only the query knows.",
    ),
    Scenario(
        "query-names-other-id",
        SUCCESS,
        amount=4041,
        callback="drop",
        query="other-id",
        summary="Paid; no callback, and every query answer names another CheckoutRequestID.",
    ),
    Scenario(
        "delayed-callback",
        SUCCESS,
        amount=5050,
        callback="delayed",
        summary="Paid; the customer takes long, the query says 'being processed' meanwhile.",
    ),
    Scenario(
        "paid-then-cancelled-callback",
        SUCCESS,
        amount=6032,
        callback="conflict",
        conflict_code=1032,
        summary="Paid; a contradicting 1032 callback follows the success.",
    ),
    Scenario(
        "timeout-then-paid-callback",
        SUCCESS,
        amount=6037,
        callback="conflict-first",
        conflict_code=1037,
        summary="Paid; a 1037 callback comes first, then the success.",
    ),
    Scenario(
        "callback-before-response",
        SUCCESS,
        amount=7070,
        response="after-callback",
        summary="Paid; the callback is delivered before the push is answered.",
    ),
    Scenario(
        "slow-response",
        SUCCESS,
        amount=7071,
        response="slow",
        summary="Paid; the push answer takes a few seconds.",
    ),
    Scenario(
        "response-timeout",
        SUCCESS,
        amount=7072,
        response="timeout",
        summary="Paid; the prompt went out but the push answer never comes in time.",
    ),
    Scenario(
        "system-busy",
        None,
        amount=9001,
        response="refused",
        refusal=SYSTEM_BUSY,
        summary="Gateway: System is busy.",
    ),
    Scenario(
        "spike-arrest",
        None,
        amount=9002,
        response="refused",
        refusal=SPIKE_ARREST,
        summary="Gateway: Spike Arrest Violation (also by rate, see config).",
    ),
    Scenario(
        "quota-violation",
        None,
        amount=9003,
        response="refused",
        refusal=QUOTA_VIOLATION,
        summary="Gateway: Quota Violation.",
    ),
    Scenario(
        "internal-error",
        None,
        amount=9004,
        response="refused",
        refusal=INTERNAL_ERROR,
        summary="Gateway: 500.003.1001 Internal Server Error.",
    ),
    Scenario(
        "subscriber-locked",
        None,
        amount=9005,
        response="refused",
        refusal=SUBSCRIBER_LOCKED,
        summary="Unable to lock subscriber, whatever the phone's state.",
    ),
)

SCENARIOS: tuple[Scenario, ...] = FAILURE_SCENARIOS + FAULT_SCENARIOS
#: Everything a push can get without the control API, for tests parametrised over it all.
CATALOGUE: tuple[Scenario, ...] = (DEFAULT_SCENARIO, *SCENARIOS)
#: Rows chosen by a rule rather than a phone or an amount.
RULE_SCENARIOS: tuple[Scenario, ...] = (PRODUCT_MISMATCH_SCENARIO, SAME_AMOUNT_SCENARIO)


def _index(key: str) -> dict[object, Scenario]:
    table: dict[object, Scenario] = {}
    for scenario in SCENARIOS:
        value = getattr(scenario, key)
        if value is None:
            continue
        # A clash would make the documented table lie; fail at import rather than at demo time.
        if value in table:
            raise RuntimeError(f"two scenarios share {key} {value!r}")
        table[value] = scenario
    return table


_BY_AMOUNT = _index("amount")
_BY_PHONE = _index("phone")
BY_NAME: dict[str, Scenario] = {s.name: s for s in (*CATALOGUE, *RULE_SCENARIOS)}
if len(BY_NAME) != len(CATALOGUE) + len(RULE_SCENARIOS):
    raise RuntimeError("scenario names must be unique")
if {s.result_code for s in FAILURE_SCENARIOS} != set(OFFICIAL_FAILURE_CODES):
    raise RuntimeError("every official failure code needs its scenario")


def scenario_for_amount(amount: int) -> Scenario:
    """The scenario a push of this amount triggers (the default is success)."""
    return _BY_AMOUNT.get(amount, DEFAULT_SCENARIO)


def scenario_for_phone(phone: str) -> Scenario | None:
    """The scenario a dedicated test phone triggers, or None for an ordinary number."""
    return _BY_PHONE.get(phone)


def choose_scenario(phone: str, amount: int) -> Scenario:
    """A dedicated test phone wins over the amount; otherwise the amount decides."""
    return scenario_for_phone(phone) or scenario_for_amount(amount)
