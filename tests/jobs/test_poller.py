"""The status poller against the simulator over real HTTP: lost callbacks, pending, give-up."""

import time
from datetime import timedelta

import requests
import sqlalchemy as sa

from app.extensions import db
from app.jobs.poll import _claim_due, _log_query, poll_payments
from app.models import Payment, PaymentEvent, PaymentQuery, Till, User
from app.models.types import utcnow
from app.payments import service
from app.payments.states import Status
from tests.helpers import post_json, success_callback, wait_for


def _send(till, amount, key):
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    payment, created = service.initiate_payment(
        till, cashier, phone="0708374149", amount=str(amount), reference=None, idempotency_key=key
    )
    assert created and payment.status == "pending"
    return payment.id


def _reload(payment_id):
    return db.session.get(Payment, payment_id, populate_existing=True)


def _sources(payment_id):
    return db.session.execute(
        sa.select(PaymentEvent.source, PaymentEvent.to_status)
        .where(PaymentEvent.payment_id == payment_id)
        .order_by(PaymentEvent.id)
    ).all()


def _decided(live_app, checkout_id):
    pushes = requests.get(f"{live_app.config['SIMULATOR_URL']}/_control/pushes", timeout=5).json()
    rows = pushes if isinstance(pushes, list) else pushes["pushes"]
    return any(r["checkout_request_id"] == checkout_id and r["state"] != "pending" for r in rows)


def test_lost_success_callback_is_found_by_query(live_app, till):
    pid = _send(till, 4040, "lost-ok")
    checkout = _reload(pid).checkout_request_id
    wait_for(lambda: _decided(live_app, checkout))
    time.sleep(0.3)
    assert _reload(pid).status == "pending"  # no callback came
    counts = poll_payments(now=utcnow() + timedelta(seconds=30))
    assert counts["queried"] == 1 and counts["settled"] == 1
    p = _reload(pid)
    assert p.status == "paid" and p.receipt_number is None and p.result_code == "0"
    assert _sources(pid)[-1] == ("query", "paid")
    # A late callback then brings the receipt, without a second "paid" transition.
    post_json(
        live_app.test_client(),
        f"/cb/stk/{till.callback_token}",
        success_callback(checkout, amount=4040, receipt="LATE123ABC"),
    )
    p = _reload(pid)
    assert p.status == "paid" and p.receipt_number == "LATE123ABC"
    assert [s for s in _sources(pid) if s[1] == "paid"] == [("query", "paid"), ("callback", "paid")]


def test_lost_cancel_callback_fails_by_query(live_app, till):
    pid = _send(till, 4032, "lost-cancel")
    wait_for(lambda: _decided(live_app, _reload(pid).checkout_request_id))
    poll_payments(now=utcnow() + timedelta(seconds=30))
    p = _reload(pid)
    assert p.status == "failed" and p.result_code == "1032"


def test_query_not_due_yet_is_not_sent(live_app, till):
    pid = _send(till, 4040, "not-due")
    counts = poll_payments(now=utcnow())
    assert counts["queried"] == 0
    assert _reload(pid).query_count == 0


def test_being_processed_means_pending_then_unconfirmed_then_paid(live_app, till):
    live_app.config["SIMULATOR_CALLBACK_DELAY"] = 600  # the customer never answers
    pid = _send(till, 4040, "slow")
    p = _reload(pid)
    counts = poll_payments(now=utcnow() + timedelta(seconds=30))
    assert counts["queried"] == 1 and counts["settled"] == 0
    p = _reload(pid)
    assert p.status == "pending" and p.query_count == 1
    assert p.next_query_at > utcnow() + timedelta(seconds=30)

    # Past the give-up time with no answer: unconfirmed, never failed.
    later = p.pushed_at + timedelta(seconds=live_app.config["GIVE_UP_AFTER"] + 1)
    counts = poll_payments(now=later)
    p = _reload(pid)
    assert counts["given_up"] == 1 and p.status == "unconfirmed"
    assert p.next_query_at is not None  # reconciliation keeps asking

    # The customer finally pays: the simulator decides, the callback is lost, a query finds it.
    r = requests.post(
        f"{live_app.config['SIMULATOR_URL']}/_control/pushes/{p.checkout_request_id}/outcome",
        json={"result_code": 0, "callback": "drop"},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    poll_payments(now=p.next_query_at + timedelta(seconds=1))
    p = _reload(pid)
    assert p.status == "paid"
    assert [s[1] for s in _sources(pid)] == ["initiating", "pending", "unconfirmed", "paid"]


def test_a_slot_is_claimed_once(app, make_payment):
    p = make_payment(next_query_at=utcnow() - timedelta(seconds=1))
    now = utcnow()
    assert [pid for pid, _ in _claim_due([Status.PENDING], now)] == [p.id]
    assert _claim_due([Status.PENDING], now) == []  # a second process finds nothing due
    p = db.session.get(Payment, p.id, populate_existing=True)
    assert p.lease_owner and p.next_query_at > now
    assert db.session.execute(sa.select(sa.func.count(PaymentQuery.id))).scalar_one() == 1


def test_query_log_refuses_a_second_query_for_the_same_slot(app, make_payment):
    p = make_payment()
    slot = p.next_query_at
    assert _log_query(p.id, slot) is True
    db.session.commit()
    assert _log_query(p.id, slot) is False


def test_concurrent_pollers_claim_each_payment_once(app, make_payment):
    import threading

    due = utcnow() - timedelta(seconds=1)
    ids = {make_payment(next_query_at=due).id for _ in range(20)}
    now = utcnow()
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker():
        with app.app_context():
            barrier.wait()
            got = [pid for pid, _ in _claim_due([Status.PENDING], now)]
            db.session.remove()
        with lock:
            claimed.extend(got)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(claimed) == sorted(ids)  # every payment claimed, none twice


def test_throttled_till_is_skipped(app, till, make_payment):
    make_payment(next_query_at=utcnow() - timedelta(seconds=1))
    db.session.execute(sa.update(Till).values(backoff_until=utcnow() + timedelta(seconds=30)))
    db.session.commit()
    assert _claim_due([Status.PENDING], utcnow()) == []


def test_spent_budget_releases_the_payment_unqueried(live_app, till, make_payment):
    p = make_payment(next_query_at=utcnow() - timedelta(seconds=1))
    db.session.execute(sa.update(Till).values(query_slot_at=utcnow() + timedelta(seconds=60)))
    db.session.commit()
    counts = poll_payments()
    p = db.session.get(Payment, p.id, populate_existing=True)
    assert counts["queried"] == 0 and p.query_count == 0 and p.lease_owner is None


def test_initiating_left_by_a_crash_becomes_unknown(app, make_payment):
    """The push was claimed (it may have left) and never answered: money may have moved."""
    an_hour_ago = utcnow() - timedelta(hours=1)
    p = make_payment(status="initiating", checkout=None)
    db.session.execute(
        sa.update(Payment)
        .where(Payment.id == p.id)
        .values(created_at=an_hour_ago, push_started_at=an_hour_ago)
    )
    db.session.commit()
    counts = poll_payments()
    assert counts["given_up"] == 1
    assert _reload(p.id).status == "unknown"


def test_a_push_never_claimed_is_refused_as_not_sent(app, make_payment):
    """Saved, but the counter's page never asked for the push (closed, offline): nothing
    left, so it is honestly "not sent", and a late request can no longer send it."""
    from app.payments import service

    p = make_payment(status="initiating", checkout=None, push_started_at=None)
    assert poll_payments()["given_up"] == 0  # the row may still be about to send it
    db.session.execute(
        sa.update(Payment)
        .where(Payment.id == p.id)
        .values(created_at=utcnow() - timedelta(seconds=service.UNSENT_GRACE + 5))
    )
    db.session.commit()
    assert poll_payments()["given_up"] == 1
    p = _reload(p.id)
    assert (p.status, p.push_error_code) == ("rejected", "not_sent")
    assert p.next_query_at is None
    assert service.send_push(p.id) is False  # too late: claimed by the expiry


def test_jobs_are_registered_from_one_table(app):
    from apscheduler.schedulers.background import BackgroundScheduler

    from app.jobs import JOBS, add_jobs

    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(app, scheduler)
    jobs = {j.id: j for j in scheduler.get_jobs()}
    assert (
        set(jobs)
        == {j.id for j in JOBS}
        == {
            "expire-stale",
            "poll-pending",
            "reconcile",
            "inbox-sweep",
            "purge-callbacks",
            "push-journal",
        }
    )
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
    assert jobs["poll-pending"].trigger.interval == timedelta(seconds=app.config["POLL_INTERVAL"])
    assert jobs["reconcile"].trigger.interval == timedelta(
        seconds=app.config["RECONCILE_JOB_INTERVAL"]
    )


def test_a_push_answered_after_give_up_is_followed_again(app, make_payment):
    """give_up_stale made a slow push unknown; Daraja's late acceptance must not be lost."""
    from app.payments.service import Outcome, apply_event
    from app.payments.states import Event, Source

    an_hour_ago = utcnow() - timedelta(hours=1)
    p = make_payment(status="initiating", checkout=None)
    db.session.execute(
        sa.update(Payment)
        .where(Payment.id == p.id)
        .values(checkout_request_id=None, created_at=an_hour_ago, push_started_at=an_hour_ago)
    )
    db.session.commit()
    assert poll_payments()["given_up"] == 1
    assert _reload(p.id).status == "unknown"
    apply_event(
        p.id,
        Outcome(
            Event.PUSH_ACCEPTED,
            Source.PUSH,
            merchant_request_id="m-1",
            checkout_request_id="ws_CO_LATE_ANSWER",
        ),
    )
    p = _reload(p.id)
    assert p.status == "pending" and p.checkout_request_id == "ws_CO_LATE_ANSWER"
    assert p.next_query_at is not None  # the poller will ask about it
