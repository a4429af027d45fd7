"""Forged callbacks never mark a sale paid; a genuine lost-push callback settles after a query.

Callbacks are unsigned and CheckoutRequestIDs are guessable, so whoever learns a till's
callback URL can post any body. These tests are that attacker, on both databases.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from app.callbacks import inbox
from app.extensions import db
from app.jobs.poll import poll_payments, poll_pending
from app.models import Payment, PaymentEvent, RawCallback, User
from app.models.types import utcnow
from app.payments import service, tills
from app.payments.service import Outcome, apply_event
from app.payments.states import Event, Source
from app.simulator.state import get_state
from tests.helpers import failure_callback, post_json, success_callback, wait_for

FORGED_ID = "ws_CO_02122026101500123708374149"  # well-formed, never issued by anyone


def _url(till):
    return f"/cb/stk/{till.callback_token}"


def _reload(payment_or_id):
    pid = getattr(payment_or_id, "id", payment_or_id)
    return db.session.get(Payment, pid, populate_existing=True)


def _kinds(payment_id):
    return (
        db.session.execute(
            sa.select(PaymentEvent.kind)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
        .scalars()
        .all()
    )


def _raws():
    db.session.expire_all()
    return db.session.execute(sa.select(RawCallback).order_by(RawCallback.id)).scalars().all()


def _without_checkout(make_payment, status, amount=500):
    p = make_payment(status=status, amount=amount)
    db.session.execute(
        sa.update(Payment).where(Payment.id == p.id).values(checkout_request_id=None)
    )
    db.session.commit()
    return _reload(p)


def test_forged_success_at_an_initiating_payment_pays_nothing(client, till, make_payment):
    """The push is in flight (no CheckoutRequestID yet); the forger posts phone + amount."""
    p = _without_checkout(make_payment, "initiating")
    r = post_json(client, _url(till), success_callback(FORGED_ID, amount=500, receipt="FAKE1234XY"))
    assert r.status_code == 200  # acknowledged: the body is stored as evidence
    p = _reload(p)
    assert p.status == "initiating" and p.receipt_number is None
    assert p.candidate_checkout_id == FORGED_ID  # a claim, not a fact
    # Daraja's real answer names another id: the claim is refuted and the sale goes on.
    apply_event(
        p.id, Outcome(Event.PUSH_ACCEPTED, Source.PUSH, checkout_request_id="ws_CO_REAL0001")
    )
    p = _reload(p)
    assert p.status == "pending" and p.candidate_checkout_id is None
    assert _kinds(p.id) == ["candidate", "push_accepted", "candidate_refuted"]
    inbox.sweep()
    [raw] = _raws()
    assert raw.outcome == "orphan"  # belongs to no payment of ours
    assert _reload(p).status == "pending"
    # The genuine callback, for the id Daraja gave us, still pays.
    post_json(client, _url(till), success_callback("ws_CO_REAL0001", amount=500))
    assert _reload(p).status == "paid" and _reload(p).receipt_number == "TST1ABC2DE"


def test_forged_success_at_an_unknown_payment_is_refuted_by_the_query(live_app, till, make_payment):
    """The push timed out (unknown). The forged id is queried on our shortcode: Daraja (here
    the simulator) does not know it, so nothing is paid and the claim is refuted."""
    p = _without_checkout(make_payment, "unknown")
    client = live_app.test_client()
    post_json(client, _url(till), success_callback(FORGED_ID, amount=500))
    p = _reload(p)
    assert p.status == "unknown" and p.candidate_checkout_id == FORGED_ID
    assert p.next_query_at is not None  # asked about at once
    counts = poll_payments(now=utcnow() + timedelta(seconds=5))
    assert counts == {"given_up": 0, "queried": 1, "settled": 0}
    p = _reload(p)
    assert p.status == "unknown" and p.receipt_number is None
    assert p.candidate_checkout_id is None and p.checkout_request_id is None
    assert _kinds(p.id) == ["candidate", "candidate_refuted"]
    [raw] = _raws()
    assert raw.outcome == "refuted" and "does not know" in raw.message
    # Posting it again, or an admin reprocessing it, changes nothing and costs no query.
    assert inbox.process(raw) == "refuted"
    post_json(client, _url(till), success_callback(FORGED_ID, amount=500))
    assert _raws()[-1].outcome == "refuted"
    assert poll_payments(now=utcnow() + timedelta(seconds=10))["queried"] == 0
    assert _reload(p).status == "unknown"


def test_forged_body_reusing_another_payments_id_pays_neither(client, till, make_payment):
    paid = make_payment(status="pending", amount=150, checkout="ws_CO_PAIDONE")
    post_json(
        client, _url(till), success_callback("ws_CO_PAIDONE", amount=150, receipt="GOOD11AAAA")
    )
    target = _without_checkout(make_payment, "unknown", amount=500)
    # The forger names the paid payment's id with the target's amount...
    post_json(
        client, _url(till), success_callback("ws_CO_PAIDONE", amount=500, receipt="FORG11AAAA")
    )
    # ...and with its own amount but another receipt.
    post_json(
        client, _url(till), success_callback("ws_CO_PAIDONE", amount=150, receipt="FORG22BBBB")
    )
    assert _reload(target).status == "unknown" and _reload(target).candidate_checkout_id is None
    assert _reload(paid).receipt_number == "GOOD11AAAA"
    assert [r.outcome for r in _raws()] == ["applied", "conflict", "conflict"]
    flagged = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == paid.id, PaymentEvent.conflict)
    ).scalars()
    assert len(list(flagged)) == 2  # both forgeries are on the paid payment's timeline


def test_replayed_receipt_pays_nothing(client, till, make_payment):
    first = make_payment(status="pending", amount=150, checkout="ws_CO_FIRST")
    post_json(client, _url(till), success_callback("ws_CO_FIRST", amount=150, receipt="REPL12AAAA"))
    other = make_payment(status="pending", amount=150, checkout="ws_CO_OTHER")
    post_json(client, _url(till), success_callback("ws_CO_OTHER", amount=150, receipt="REPL12AAAA"))
    other = _reload(other)
    assert other.status == "pending" and other.receipt_number is None
    [flag] = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == other.id)
    ).scalars()
    assert flag.conflict and f"payment {first.id}" in flag.note
    assert [r.outcome for r in _raws()] == ["applied", "conflict"]


def test_a_candidate_the_query_contradicts_is_refuted(live_app, till):
    """The forger guessed the real id of a lost push whose customer cancelled: the query on
    our shortcode says 1032, so the payment fails and the success claim is refuted."""
    sim = get_state(live_app)
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    live_app.config.update(DARAJA_READ_TIMEOUT=0.4, SIMULATOR_TIMEOUT_RESPONSE_DELAY=1.0)
    tills.reset_clients()
    requests.post(
        f"{live_app.config['SIMULATOR_URL']}/_control/next",
        json={"scenario": "response-timeout"},
        timeout=5,
    ).raise_for_status()
    p, _ = service.initiate_payment(
        till, cashier, phone="0708374149", amount=500, reference=None,
        idempotency_key=uuid.uuid4().hex,
    )  # fmt: skip
    assert _reload(p).status == "unknown"
    checkout = wait_for(lambda: sim.list_pushes())[0]["checkout_request_id"]
    sim.decide(checkout, result_code=1032, callback="drop", delay_s=0.0)
    post_json(live_app.test_client(), _url(till), success_callback(checkout, amount=500))
    assert _reload(p).candidate_checkout_id == checkout
    poll_payments(now=utcnow() + timedelta(seconds=5))
    p = _reload(p)
    assert p.status == "failed" and p.result_code == "1032" and p.checkout_request_id == checkout
    [raw] = _raws()
    assert raw.outcome == "refuted" and "1032" in raw.message
    assert inbox.process(raw) == "refuted" and _reload(p).status == "failed"


def test_genuine_lost_push_callback_settles_after_the_confirming_query(live_app, till):
    """The push answer is lost (read timeout) but the prompt went out and the customer paid:
    the callback is a candidate, the query confirms it, and it brings the receipt."""
    sim = get_state(live_app)
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    live_app.config.update(DARAJA_READ_TIMEOUT=0.4, SIMULATOR_TIMEOUT_RESPONSE_DELAY=1.0)
    tills.reset_clients()
    p, _ = service.initiate_payment(
        till, cashier, phone="0708374149", amount=7072, reference=None,
        idempotency_key=uuid.uuid4().hex,
    )  # fmt: skip
    assert _reload(p).status == "unknown" and _reload(p).checkout_request_id is None
    push = sim.get_push(wait_for(lambda: sim.list_pushes())[0]["checkout_request_id"])
    assert push.delivered.wait(10)
    [raw] = _raws()
    assert raw.outcome == "candidate" and _reload(p).status == "unknown"
    # The quick poller (every few seconds, like a pending row) asks: a cashier is waiting.
    counts = poll_pending(now=utcnow() + timedelta(seconds=5))
    assert counts == {"queried": 1, "settled": 1}
    p = _reload(p)
    assert p.status == "paid" and p.receipt_number == push.receipt
    assert p.checkout_request_id == push.checkout_request_id
    assert _kinds(p.id) == [
        "created",
        "push_unknown",
        "candidate",
        "candidate_confirmed",
        "success",  # the query's answer decides
        "success",  # the callback brings the receipt
    ]
    assert [r.outcome for r in _raws()] == ["applied"]


def test_query_answer_about_another_checkout_settles_nothing(live_app, till):
    """KES 4041: every query answer names another CheckoutRequestID (a faulty look-alike)."""
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    p, _ = service.initiate_payment(
        till, cashier, phone="0708374149", amount=4041, reference=None,
        idempotency_key=uuid.uuid4().hex,
    )  # fmt: skip
    sim = get_state(live_app)
    push = sim.get_push(_reload(p).checkout_request_id)
    wait_for(lambda: push.state == "completed", timeout=5)
    poll_payments(now=utcnow() + timedelta(seconds=60))
    p = _reload(p)
    assert p.status == "pending" and p.result_code is None
    mismatch = db.session.execute(
        sa.select(PaymentEvent).where(
            PaymentEvent.payment_id == p.id, PaymentEvent.kind == "query_mismatch"
        )
    ).scalar_one()
    assert mismatch.conflict
    assert mismatch.data["asked"] == push.checkout_request_id
    assert mismatch.data["named"] not in (None, push.checkout_request_id)
    assert mismatch.data["result_code"] == "0"
    assert p.next_query_at is not None  # asked again later


@pytest.mark.parametrize("code", [1032, 1037])
def test_forged_failure_for_an_unknown_push_is_an_orphan(client, till, make_payment, code):
    """A failure names no phone or amount: it cannot even be a candidate."""
    p = _without_checkout(make_payment, "unknown")
    post_json(client, _url(till), failure_callback(FORGED_ID, code=code))
    assert _reload(p).status == "unknown" and _reload(p).candidate_checkout_id is None
    assert [r.outcome for r in _raws()] == ["orphan"]


def test_a_forger_racing_the_genuine_callback_delays_it_but_cannot_win(live_app, till):
    """The forged claim arrives first and is queried first; once refuted, the genuine
    callback's claim is queried and pays. A replay of the refuted id is not queried again."""
    sim = get_state(live_app)
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    live_app.config.update(DARAJA_READ_TIMEOUT=0.4, SIMULATOR_TIMEOUT_RESPONSE_DELAY=1.0)
    tills.reset_clients()
    p, _ = service.initiate_payment(
        till, cashier, phone="0708374149", amount=7072, reference=None,
        idempotency_key=uuid.uuid4().hex,
    )  # fmt: skip
    client = live_app.test_client()
    post_json(client, _url(till), success_callback(FORGED_ID, amount=7072))
    push = sim.get_push(wait_for(lambda: sim.list_pushes())[0]["checkout_request_id"])
    assert push.delivered.wait(10)  # the genuine callback is in, waiting behind the forgery
    assert _reload(p).candidate_checkout_id == FORGED_ID
    assert [r.outcome for r in _raws()] == ["candidate", "candidate"]

    later = utcnow() + timedelta(seconds=5)
    assert poll_pending(now=later) == {"queried": 1, "settled": 0}  # the forgery: refuted
    assert inbox.sweep()["matched"] == 1  # the genuine claim is next in line
    assert _reload(p).candidate_checkout_id == push.checkout_request_id
    assert poll_pending(now=later) == {"queried": 1, "settled": 1}
    p = _reload(p)
    assert p.status == "paid" and p.receipt_number == push.receipt
    assert [r.outcome for r in _raws()] == ["refuted", "applied"]

    # The forger replays the refuted body: refuted at once, no query spent on it.
    post_json(client, _url(till), success_callback(FORGED_ID, amount=7072))
    assert _raws()[-1].outcome == "orphan"  # the payment has its id now: nothing to match
