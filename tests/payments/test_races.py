"""Races over real HTTP on SQLite and PostgreSQL: duplicates, callback vs poller, conflicts."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
import sqlalchemy as sa

from app.extensions import db
from app.jobs.poll import poll_payments
from app.models import Payment, PaymentEvent, RawCallback, User
from app.models.types import utcnow
from app.payments import service
from tests.helpers import failure_callback, success_callback, wait_for


def _events(payment_id):
    db.session.expire_all()
    return (
        db.session.execute(
            sa.select(PaymentEvent)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
        .scalars()
        .all()
    )


def _post_all(url, bodies, workers=16):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda b: requests.post(url, json=b, timeout=30), bodies))


def test_fifty_identical_success_callbacks_pay_once(live_app, till, make_payment):
    p = make_payment(amount=150)
    url = f"{live_app.config['BASE_URL']}/cb/stk/{till.callback_token}"
    answers = _post_all(url, [success_callback(p.checkout_request_id, receipt="RACE000001")] * 50)
    assert [a.status_code for a in answers] == [200] * 50
    assert all(a.json()["ResultCode"] == 0 for a in answers)
    events = _events(p.id)
    assert [(e.kind, e.to_status) for e in events] == [("success", "paid")]
    paid = db.session.get(Payment, p.id, populate_existing=True)
    assert paid.status == "paid" and paid.receipt_number == "RACE000001"
    outcomes = db.session.execute(sa.select(RawCallback.outcome)).scalars().all()
    assert len(outcomes) == 50
    assert sorted(set(outcomes)) == ["applied", "duplicate"] and outcomes.count("applied") == 1


def test_conflicting_callbacks_racing_end_paid_with_the_conflict_recorded(
    live_app, till, make_payment
):
    p = make_payment(amount=150)
    url = f"{live_app.config['BASE_URL']}/cb/stk/{till.callback_token}"
    bodies = [
        success_callback(p.checkout_request_id, receipt="RACE000002")
        if i % 2
        else failure_callback(p.checkout_request_id, 1032)
        for i in range(20)
    ]
    assert {a.status_code for a in _post_all(url, bodies)} == {200}
    paid = db.session.get(Payment, p.id, populate_existing=True)
    assert paid.status == "paid" and paid.receipt_number == "RACE000002"
    events = _events(p.id)
    assert sum(e.to_status == "paid" and e.from_status != "paid" for e in events) == 1
    # Whichever came first, the contradiction is on record for a human.
    assert any(e.conflict for e in events)


def _cashier():
    return db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()


def test_callback_racing_the_pollers_final_answer_gives_one_final_event(live_app, till):
    payment, _ = service.initiate_payment(
        till,
        _cashier(),
        phone="0708374149",
        amount="4040",
        reference=None,
        idempotency_key="race-poll",
    )
    checkout = payment.checkout_request_id
    sim = live_app.config["SIMULATOR_URL"]

    def decided():
        rows = requests.get(f"{sim}/_control/pushes", timeout=5).json()
        rows = rows if isinstance(rows, list) else rows["pushes"]
        return any(r["checkout_request_id"] == checkout and r["state"] != "pending" for r in rows)

    wait_for(decided)
    url = f"{live_app.config['BASE_URL']}/cb/stk/{till.callback_token}"
    barrier = threading.Barrier(2)

    def poller():
        with live_app.app_context():
            barrier.wait()
            poll_payments(now=utcnow() + timedelta(seconds=60))
            db.session.remove()

    def callback():
        barrier.wait()
        requests.post(
            url, json=success_callback(checkout, amount=4040, receipt="RACE000003"), timeout=30
        )

    threads = [threading.Thread(target=poller), threading.Thread(target=callback)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    events = _events(payment.id)
    finals = [e for e in events if e.to_status == "paid" and e.from_status != "paid"]
    assert len(finals) == 1
    paid = db.session.get(Payment, payment.id, populate_existing=True)
    assert paid.status == "paid" and paid.receipt_number == "RACE000003"


def test_double_submit_from_two_threads_sends_one_push(live_app, till):
    barrier = threading.Barrier(2)
    results = []

    def submit():
        with live_app.app_context():
            cashier = _cashier()
            from app.models import Till

            t = db.session.get(Till, till.id)
            barrier.wait()
            payment, created = service.initiate_payment(
                t,
                cashier,
                phone="0708374149",
                amount="99",
                reference=None,
                idempotency_key="same-key-2",
            )
            results.append((payment.id, created))
            db.session.remove()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len({pid for pid, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, True]
    rows = requests.get(f"{live_app.config['SIMULATOR_URL']}/_control/pushes", timeout=5).json()
    rows = rows if isinstance(rows, list) else rows["pushes"]
    assert len(rows) == 1
