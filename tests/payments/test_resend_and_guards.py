"""Resend links attempts of one sale; M-Pesa's refusal windows are checked before a push."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Payment, PaymentEvent, User
from app.models.types import utcnow
from app.payments import guards, service


def _cashier():
    return db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()


def test_live_prompt_blocks_a_second_push_to_the_phone(app, make_payment):
    now = utcnow()
    make_payment(status="pending", amount=100, pushed_at=now - timedelta(seconds=20))
    wait = guards.wait_before_push("254708374149", 250, now)
    assert wait.reason == "live_prompt" and 39 <= wait.seconds <= 41


def test_same_amount_within_two_minutes_is_refused_before_sending(app, till, make_payment):
    now = utcnow()
    make_payment(status="failed", amount=100, pushed_at=now - timedelta(seconds=90))
    with pytest.raises(guards.TryLater) as exc:
        service.initiate_payment(
            till,
            _cashier(),
            phone="0708374149",
            amount="100",
            reference=None,
            idempotency_key="k1",
            now=now,
        )
    assert 29 <= exc.value.seconds <= 31 and "2 minutes" in str(exc.value)
    assert db.session.execute(sa.select(sa.func.count(Payment.id))).scalar_one() == 1
    # Another amount, or after the window, is fine as far as the guard goes.
    assert guards.wait_before_push("254708374149", 101, now) is None
    assert guards.wait_before_push("254708374149", 100, now + timedelta(seconds=31)) is None


def test_refused_pushes_do_not_count(app, make_payment):
    now = utcnow()
    make_payment(status="rejected", amount=100, pushed_at=now - timedelta(seconds=10))
    assert guards.wait_before_push("254708374149", 100, now) is None


def test_prompt_limit_per_phone_per_minute(app, make_payment):
    app.config["PROMPTS_PER_PHONE_PER_MINUTE"] = 2
    now = utcnow()
    make_payment(status="failed", amount=10, pushed_at=now - timedelta(seconds=50))
    make_payment(status="failed", amount=11, pushed_at=now - timedelta(seconds=30))
    wait = guards.wait_before_push("254708374149", 12, now)
    # The oldest of the two leaves the one-minute window in 10 s.
    assert wait.reason == "prompt_limit" and 9 <= wait.seconds <= 11


def test_resend_creates_a_linked_attempt(live_app, till, make_payment):
    old = make_payment(
        status="failed", amount=77, result_code="1032", pushed_at=utcnow() - timedelta(minutes=5)
    )
    new, created = service.resend_payment(old, _cashier(), idempotency_key="resend-1")
    assert created and new.id != old.id
    assert new.sale_ref == old.sale_ref and new.resend_of_id == old.id
    assert new.status == "pending" and new.amount_kes == 77
    again, created = service.resend_payment(old, _cashier(), idempotency_key="resend-1")
    assert not created and again.id == new.id


@pytest.mark.parametrize("status", ["unknown", "unconfirmed", "pending", "paid"])
def test_no_resend_when_money_may_have_moved(app, make_payment, status):
    p = make_payment(status=status)
    with pytest.raises(service.CannotResend):
        service.resend_payment(p, _cashier(), idempotency_key="r")


def test_no_resend_when_another_attempt_of_the_sale_is_paid(app, make_payment):
    first = make_payment(status="failed")
    make_payment(status="paid", sale_ref=first.sale_ref, receipt_number="PAIDONCE01")
    with pytest.raises(service.CannotResend, match="already paid"):
        service.resend_payment(first, _cashier(), idempotency_key="r")


def test_cancel_locally_keeps_status_and_a_late_success_still_pays(app, make_payment, client, till):
    from tests.helpers import post_json, success_callback

    p = make_payment(status="pending")
    assert service.cancel_locally(p, _cashier()) is True
    assert service.cancel_locally(p, _cashier()) is False  # once
    p = db.session.get(Payment, p.id, populate_existing=True)
    assert p.status == "pending" and p.cancelled_at is not None
    post_json(client, f"/cb/stk/{till.callback_token}", success_callback(p.checkout_request_id))
    p = db.session.get(Payment, p.id, populate_existing=True)
    assert p.status == "paid" and p.cancelled_at is not None  # "paid after cancel"
    kinds = (
        db.session.execute(
            sa.select(PaymentEvent.kind)
            .where(PaymentEvent.payment_id == p.id)
            .order_by(PaymentEvent.id)
        )
        .scalars()
        .all()
    )
    assert kinds == ["cancel_local", "success"]


@pytest.mark.parametrize("status", ["initiating", "unknown"])
def test_a_push_in_flight_or_timed_out_blocks_the_phone(app, make_payment, status):
    now = utcnow()
    make_payment(status=status, amount=100, checkout=None, pushed_at=now - timedelta(seconds=5))
    wait = guards.wait_before_push("254708374149", 100, now)
    assert wait is not None and wait.seconds >= 55


def test_a_timed_out_push_blocks_an_immediate_second_push(live_app, till):
    """After a push timed out (unknown), sending the same sale again must wait."""
    import requests

    sim = live_app.config["SIMULATOR_URL"]
    live_app.config["DARAJA_READ_TIMEOUT"] = 0.5
    live_app.config["SIMULATOR_TIMEOUT_RESPONSE_DELAY"] = 1.5
    from app.payments import tills

    tills.reset_clients()
    requests.post(f"{sim}/_control/next", json={"scenario": "response-timeout"}, timeout=5)
    first, _ = service.initiate_payment(
        till,
        _cashier(),
        phone="0708374149",
        amount="300",
        reference=None,
        idempotency_key="timeout-1",
    )
    assert db.session.get(Payment, first.id, populate_existing=True).status == "unknown"
    with pytest.raises(guards.TryLater):
        service.initiate_payment(
            till,
            _cashier(),
            phone="0708374149",
            amount="300",
            reference=None,
            idempotency_key="timeout-2",
        )
    rows = requests.get(f"{sim}/_control/pushes", timeout=5).json()
    assert len(rows if isinstance(rows, list) else rows["pushes"]) == 1


@pytest.mark.parametrize("code", ["8006", "2028", "SFC_IC0003", "3"])
def test_no_resend_when_a_new_prompt_cannot_succeed(app, make_payment, code):
    p = make_payment(status="failed", result_code=code)
    with pytest.raises(service.CannotResend, match="new prompt would fail"):
        service.resend_payment(p, _cashier(), idempotency_key="r-code")


def test_a_spent_budget_leaves_no_query_in_the_log(live_app, till, make_payment):
    from app.models import PaymentQuery, Till

    make_payment(next_query_at=utcnow() - timedelta(seconds=1))
    db.session.execute(sa.update(Till).values(query_slot_at=utcnow() + timedelta(seconds=60)))
    db.session.commit()
    from app.jobs.poll import poll_payments

    assert poll_payments()["queried"] == 0
    assert db.session.execute(sa.select(sa.func.count(PaymentQuery.id))).scalar_one() == 0


@pytest.mark.parametrize(
    ("kind", "seconds_ago", "left"),
    [
        # Daraja said "a prompt is open for this phone": M-Pesa's lock lasts about a minute.
        ({"status": "rejected", "push_error_code": "DarajaSubscriberLocked"}, 15, 45),
        # Result code 17 ("rule limited") advises two minutes; 1001 a minute.
        ({"status": "failed", "result_code": "1001"}, 20, 40),
    ],
)
def test_a_resend_during_its_countdown_is_refused_by_the_service(
    app, make_payment, kind, seconds_ago, left
):
    """The counter disables Resend and counts down; posting it anyway is refused too, by the
    same rule (app.payments.resend), with the time left."""
    from app.payments.resend import resend_state

    now = utcnow()
    at = now - timedelta(seconds=seconds_ago)
    # Another amount than any recent push, so only the attempt's own answer asks for a wait.
    original = make_payment(amount=333, pushed_at=at - timedelta(seconds=200), final_at=at, **kind)
    state = resend_state(original, now)
    assert state.allowed and left - 1 <= state.wait <= left + 1
    with pytest.raises(guards.TryLater) as refused:
        service.resend_payment(original, _cashier(), idempotency_key="r-1", now=now)
    assert left - 1 <= refused.value.seconds <= left + 1
    assert db.session.execute(sa.select(sa.func.count(Payment.id))).scalar_one() == 1
    # Once the window has passed, the same resend is accepted (saved; the row sends it).
    later = now + timedelta(seconds=left + 2)
    new, created = service.resend_payment(
        original, _cashier(), idempotency_key="r-2", now=later, send=False
    )
    assert created and new.resend_of_id == original.id and new.status == "initiating"


def test_resend_rule_is_one_rule_for_the_row_and_the_service(app, make_payment):
    """What the row shows (can resend, how long to wait) is what the service enforces."""
    from app.cashier.live import row_views
    from app.payments.resend import resend_state

    now = utcnow()
    rows = [
        make_payment(status="failed", result_code="1032", amount=201, phone="254711000001"),
        make_payment(status="failed", result_code="8006", amount=202, phone="254711000002"),
        make_payment(status="unknown", amount=203, phone="254711000003"),
        make_payment(status="rejected", push_error_code="DarajaSystemBusy", amount=204,
                     phone="254711000004", final_at=now),
    ]  # fmt: skip
    with app.test_request_context():
        views = {v.p.id: v for v in row_views(rows, now)}
    for p in rows:
        state = resend_state(p, now)
        assert views[p.id].can_resend is state.allowed
        assert views[p.id].resend_wait == (state.wait if state.allowed else None)
    assert [views[p.id].can_resend for p in rows] == [True, False, False, True]
    assert 29 <= views[rows[3].id].resend_wait <= 30
