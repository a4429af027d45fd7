"""The Daraja client (app.daraja) against every scenario of the catalogue, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from app.config import SANDBOX_PASSKEY
from app.daraja import DarajaClient, StkPushRequest
from app.daraja.errors import (
    DarajaError,
    DarajaSubscriberLocked,
    DarajaSystemBusy,
    DarajaThrottled,
    DarajaTimeout,
)
from app.simulator.scenarios import (
    CATALOGUE,
    INTERNAL_ERROR,
    QUOTA_VIOLATION,
    SPIKE_ARREST,
    SUBSCRIBER_LOCKED,
    SYSTEM_BUSY,
    Scenario,
)
from app.simulator.server import RunningServer, create_simulator_app, serve_in_thread
from app.simulator.settings import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, SANDBOX_SHORTCODE
from app.simulator.state import get_state
from tests.simulator.support import wait_until

pytestmark = pytest.mark.http

ORDINARY_PHONE = "254711222333"
ORDINARY_AMOUNT = 150
READ_TIMEOUT = 0.8
TIMING = {
    "SIMULATOR_CALLBACK_DELAY": 0.05,
    "SIMULATOR_LATE_CALLBACK_DELAY": 0.4,
    "SIMULATOR_DELAYED_CALLBACK_DELAY": 0.4,
    "SIMULATOR_DUPLICATE_CALLBACKS": 3,
    "SIMULATOR_SECOND_CALLBACK_GAP": 0.02,
    "SIMULATOR_SLOW_RESPONSE_DELAY": 0.3,
    "SIMULATOR_TIMEOUT_RESPONSE_DELAY": READ_TIMEOUT + 0.4,
}
# What the client must raise for each gateway refusal: the class a caller acts on.
REFUSAL_ERRORS = {
    SYSTEM_BUSY: DarajaSystemBusy,
    SPIKE_ARREST: DarajaThrottled,
    QUOTA_VIOLATION: DarajaThrottled,
    INTERNAL_ERROR: DarajaSystemBusy,
    SUBSCRIBER_LOCKED: DarajaSubscriberLocked,
}


def catalogue_triggers() -> list:
    cases = []
    for s in CATALOGUE:
        for trigger in ("phone", "amount"):
            if getattr(s, trigger) is not None:
                cases.append(pytest.param(s, trigger, id=f"{s.name}-by-{trigger}"))
        if s.amount is None and s.phone is None:
            cases.append(pytest.param(s, "default", id=s.name))
    return cases


def callback_codes(s: Scenario) -> list:
    if s.response == "refused" or s.callback == "drop":
        return []
    if s.callback == "duplicate":
        return [s.result_code] * TIMING["SIMULATOR_DUPLICATE_CALLBACKS"]
    if s.callback == "conflict":
        return [s.result_code, s.conflict_code]
    if s.callback == "conflict-first":
        return [s.conflict_code, s.result_code]
    return [s.result_code]


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningServer]:
    app = create_simulator_app(TIMING)
    with serve_in_thread(app) as running:
        yield running


@pytest.fixture
def client(simulator: RunningServer) -> Iterator[DarajaClient]:
    get_state(simulator.server.app).reset()
    daraja = DarajaClient(
        simulator.base_url, DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET, read_timeout=READ_TIMEOUT
    )
    yield daraja
    daraja.close()
    get_state(simulator.server.app).reset()  # wake a held answer, cancel pending callbacks


def _request(phone: str, amount: int, callback_url: str) -> StkPushRequest:
    return StkPushRequest(
        business_short_code=SANDBOX_SHORTCODE,
        passkey=SANDBOX_PASSKEY,
        transaction_type="CustomerPayBillOnline",
        amount=amount,
        party_a=phone,
        party_b=SANDBOX_SHORTCODE,
        phone_number=phone,
        callback_url=callback_url,
        account_reference="Sale",
        transaction_desc="Payment",
    )


def _final(client: DarajaClient, checkout: str):
    def attempt():
        result = client.stk_query(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, checkout)
        return None if result.pending else result

    result = wait_until(attempt)
    assert result is not None, "the query never became final"
    return result


@pytest.mark.parametrize(("scenario", "trigger"), catalogue_triggers())
def test_client_against_scenario(simulator, client, receiver, scenario, trigger):
    phone = scenario.phone if trigger == "phone" else ORDINARY_PHONE
    amount = scenario.amount if trigger == "amount" else ORDINARY_AMOUNT
    request = _request(phone, amount, receiver.url)
    codes = callback_codes(scenario)

    if scenario.response == "refused":
        with pytest.raises(DarajaError) as caught:
            client.stk_push(request)
        err = caught.value
        assert isinstance(err, REFUSAL_ERRORS[scenario.refusal])
        assert (err.error_code, err.error_message) == (
            scenario.refusal.code,
            scenario.refusal.message,
        )
        assert err.may_have_been_processed is False  # an explicit refusal: no prompt was sent
        return

    if scenario.response == "timeout":
        seen = len(receiver.received())
        with pytest.raises(DarajaTimeout) as caught:
            client.stk_push(request)
        assert caught.value.may_have_been_processed is True  # query, never re-push
        # The prompt went out anyway: its callback names a CheckoutRequestID we never saw.
        assert wait_until(lambda: _for_phone(receiver.received()[seen:], phone))
        checkout = _for_phone(receiver.received()[seen:], phone)[0]["CheckoutRequestID"]
    else:
        started = time.monotonic()
        accepted = client.stk_push(request)
        took = time.monotonic() - started
        checkout = accepted.checkout_request_id
        assert accepted.response_code == "0"
        if scenario.response == "slow":
            assert TIMING["SIMULATOR_SLOW_RESPONSE_DELAY"] <= took < READ_TIMEOUT
        if scenario.response == "after-callback":
            assert len(receiver.for_checkout(checkout)) == len(codes)
        if scenario.callback == "delayed":
            pending = client.stk_query(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, checkout)
            assert pending.pending is True

    result = _final(client, checkout)
    assert result.result_code == str(scenario.result_code)
    # The client reports the id the answer names; comparing it is the caller's job.
    if scenario.query == "other-id":
        assert result.checkout_request_id not in (None, checkout)
    else:
        assert result.checkout_request_id == checkout
    if scenario.callback == "late":
        assert receiver.for_checkout(checkout) == []  # query final, callback still coming
    if codes:
        assert wait_until(lambda: len(receiver.for_checkout(checkout)) >= len(codes))
    else:
        assert not wait_until(lambda: receiver.for_checkout(checkout), timeout=0.4)
    got = [b["Body"]["stkCallback"]["ResultCode"] for b in receiver.for_checkout(checkout)]
    assert got == codes


def _for_phone(bodies: list[dict], phone: str) -> list[dict]:
    return [
        b["Body"]["stkCallback"]
        for b in bodies
        if any(
            item.get("Name") == "PhoneNumber" and str(item.get("Value")) == phone
            for item in b["Body"]["stkCallback"].get("CallbackMetadata", {}).get("Item", [])
        )
    ]
