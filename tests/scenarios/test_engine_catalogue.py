"""The engine (push, callbacks, poller) against every catalogue scenario, on both databases."""

# Parametrised over the catalogue itself, with expectations derived from each row's attributes,
# so a scenario added to app/simulator/scenarios.py is covered here without touching this file.

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.callbacks import inbox
from app.extensions import db
from app.jobs.poll import poll_payments
from app.models import Payment, PaymentEvent, RawCallback, User
from app.models.types import utcnow
from app.payments import service
from app.simulator.scenarios import CATALOGUE, SUCCESS, Scenario
from app.simulator.state import Push, get_state
from tests.helpers import wait_for
from tests.scenarios.conftest import ENGINE_TIMING

ORDINARY_PHONE = "254711222333"
ORDINARY_AMOUNT = 150


def _trigger(s: Scenario) -> tuple[str, int]:
    """Phone and amount that select the scenario (a test phone wins, so use it when there)."""
    return s.phone or ORDINARY_PHONE, s.amount if s.phone is None and s.amount else ORDINARY_AMOUNT


def callback_codes(s: Scenario) -> list[str]:
    """ResultCodes (as the engine stores them) of the callbacks the scenario sends, in order."""
    if s.response == "refused" or s.callback == "drop":
        return []
    if s.callback == "duplicate":
        return [str(s.result_code)] * ENGINE_TIMING["SIMULATOR_DUPLICATE_CALLBACKS"]
    if s.callback == "conflict":
        return [str(s.result_code), str(s.conflict_code)]
    if s.callback == "conflict-first":
        return [str(s.conflict_code), str(s.result_code)]
    return [str(s.result_code)]


def _cashier() -> User:
    return db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()


def _reload(payment_id: int) -> Payment:
    return db.session.get(Payment, payment_id, populate_existing=True)


def _events(payment_id: int) -> list[PaymentEvent]:
    rows = db.session.execute(
        sa.select(PaymentEvent)
        .where(PaymentEvent.payment_id == payment_id)
        .order_by(PaymentEvent.id)
    )
    return list(rows.scalars())


def _raw_callbacks() -> list[RawCallback]:
    db.session.expire_all()
    return list(db.session.execute(sa.select(RawCallback).order_by(RawCallback.id)).scalars())


def _only_push(app) -> Push | None:
    pushes = get_state(app).list_pushes()
    return get_state(app).get_push(pushes[0]["checkout_request_id"]) if pushes else None


def _later() -> object:
    """An instant at which every pending payment is due for a status query."""
    return utcnow() + timedelta(seconds=120)


@pytest.mark.parametrize("scenario", CATALOGUE, ids=lambda s: s.name)
def test_engine_against_scenario(sim, till, scenario):
    phone, amount = _trigger(scenario)
    payment, created = service.initiate_payment(
        till,
        _cashier(),
        phone=phone,
        amount=amount,
        reference=None,
        idempotency_key=uuid.uuid4().hex,
    )
    assert created
    pid = payment.id
    codes = callback_codes(scenario)

    if scenario.response == "refused":
        p = _reload(pid)
        assert p.status == "rejected"  # no prompt was sent: the cashier may fix and resend
        assert scenario.refusal.code in (p.push_error_message or "")
        assert [e.to_status for e in _events(pid)] == ["initiating", "rejected"]
        assert get_state(sim).list_pushes() == []
        return

    p = _reload(pid)
    if scenario.response == "timeout":
        # The answer never came in time: money may move, so neither failed nor rejected.
        assert p.status == "unknown" and p.checkout_request_id is None
    elif scenario.response == "after-callback":
        # The callback beat the answer. It waits (a success as a candidate, matched by phone,
        # amount and time; a failure as an orphan) until the answer names its id; the inbox
        # sweep then applies it.
        assert p.status == "pending" and p.checkout_request_id
        assert inbox.sweep()["matched"] == 1
        assert _reload(pid).status == ("paid" if scenario.result_code == SUCCESS else "failed")
    else:
        assert p.status == "pending" and p.checkout_request_id

    push = wait_for(lambda: _only_push(sim), timeout=5)
    if scenario.callback == "delayed":
        # The customer is still on the prompt: a status query must keep it pending.
        counts = poll_payments(now=_later())
        assert counts["queried"] == 1 and counts["settled"] == 0
        assert _reload(pid).status == "pending"
    wait_for(lambda: push.state == "completed", timeout=5)
    if scenario.callback == "late":
        # The query answers before the callback leaves the simulator.
        poll_payments(now=_later())
        p = _reload(pid)
        assert p.status == "paid" and p.receipt_number is None
        assert [e.source for e in _events(pid) if e.to_status == "paid"] == ["query"]
    assert push.delivered.wait(10), "the simulator never finished sending its callbacks"
    inbox.sweep()  # callbacks that came before the push answer
    poll_payments(now=_later())  # the only way to learn a dropped callback's outcome

    if scenario.query == "other-id":
        # Every answer is about another checkout: nothing settles, each distinct wrong answer
        # is on the timeline with both ids, and the payment is asked about again later.
        p = _reload(pid)
        assert p.status == "pending" and p.result_code is None and p.next_query_at is not None
        [mismatch] = [e for e in _events(pid) if e.kind == "query_mismatch"]
        assert mismatch.conflict and mismatch.data["asked"] == push.checkout_request_id
        assert mismatch.data["named"] not in (None, push.checkout_request_id)
        poll_payments(now=_later() + timedelta(seconds=120))
        # Past the give-up time it is unconfirmed, never paid on a claim about another id.
        assert _reload(pid).status == "unconfirmed"
        assert [e.kind for e in _events(pid)].count("query_mismatch") == 1  # same answer again
        return

    p = _reload(pid)
    assert p.status == ("paid" if scenario.result_code == SUCCESS else "failed")
    assert p.result_code == str(scenario.result_code)  # the truth, whatever lies came first
    assert p.checkout_request_id == push.checkout_request_id
    assert (p.receipt_number is not None) is ("0" in codes)
    if p.receipt_number:
        assert p.receipt_number == push.receipt

    events = _events(pid)
    # The status path (repeats folded): how the cashier's screen moved.
    path = [
        e.to_status
        for i, e in enumerate(events)
        if i == 0 or events[i - 1].to_status != e.to_status
    ]
    expected_path = ["initiating", "unknown" if scenario.response == "timeout" else "pending"]
    if scenario.callback == "conflict-first":
        expected_path.append("failed")
    assert path == [*expected_path, p.status]
    moved_to_paid = [e for e in events if e.to_status == "paid" and e.from_status != "paid"]
    assert len(moved_to_paid) == (1 if p.status == "paid" else 0)  # paid once, never twice

    raws = _raw_callbacks()
    assert [r.result_code for r in raws] == codes
    outcomes = [r.outcome for r in raws]
    if scenario.callback == "duplicate":
        assert outcomes.count("applied") == 1 and outcomes.count("duplicate") == len(codes) - 1
    if scenario.callback == "conflict":
        # Paid stays paid; the contradicting failure is kept as evidence for a human.
        assert outcomes == ["applied", "conflict"]
        [flag] = [e for e in events if e.conflict]
        assert (flag.result_code, flag.to_status) == (str(scenario.conflict_code), "paid")
    if scenario.callback == "conflict-first":
        # A late success wins over the failure already shown, and says so.
        assert outcomes == ["applied", "applied"]
        [won] = [e for e in events if e.conflict]
        assert (won.from_status, won.to_status) == ("failed", "paid")
    if scenario.response == "timeout":
        # The lost answer's callback was matched by phone, amount and time, as a candidate;
        # a query on our shortcode confirmed its id before anything moved.
        kinds = [e.kind for e in events]
        assert kinds.count("candidate") == 1 and kinds.count("candidate_confirmed") == 1
        [paid] = [e for e in events if e.to_status == "paid" and e.from_status != "paid"]
        assert paid.source == "query"
    elif scenario.callback != "drop":
        assert "orphan" not in outcomes  # an early callback was applied once the answer came
