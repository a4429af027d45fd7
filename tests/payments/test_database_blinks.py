"""No evidence is lost when the database blinks: callbacks, push answers, connections, clocks.

Each fault is made to happen at one exact point (a failing save, a killed connection), never
by waiting for a timing window.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from app.callbacks import inbox
from app.extensions import db
from app.jobs import JOBS
from app.jobs.poll import expire_stale
from app.jobs.recovery import replay_push_journal, sweep_inbox
from app.models import Payment, RawCallback, User
from app.models.types import utcnow
from app.payments import journal, service
from app.payments.states import Event
from app.simulator.state import get_state
from tests.helpers import post_json, success_callback


def _reload(pid):
    return db.session.get(Payment, pid, populate_existing=True)


def _cashier():
    return db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()


def _database_goes_away(backend: str) -> None:
    """The connection in use dies now: on PostgreSQL the server really terminates it."""
    if backend == "postgresql":
        db.session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
    raise OperationalError("UPDATE", {}, Exception("database is unavailable"))


def test_callback_stored_but_not_applied_is_503_then_applied_by_the_sweep(
    app, backend, till, make_payment, monkeypatch
):
    pid = make_payment(amount=150, checkout="ws_CO_BLINK1").id
    real_apply = inbox._apply
    calls = {"n": 0}

    def apply_then_lose_the_database(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            _database_goes_away(backend)
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(inbox, "_apply", apply_then_lose_the_database)
    client = app.test_client()
    r = post_json(client, f"/cb/stk/{till.callback_token}", success_callback("ws_CO_BLINK1"))
    assert r.status_code == 503 and r.get_json()["ResultCode"] != 0
    db.session.remove()
    [raw] = db.session.execute(sa.select(RawCallback)).scalars().all()
    assert raw.outcome == "received"  # stored, untouched: the evidence is there
    assert _reload(pid).status == "pending"
    # Not yet a minute: the sweep leaves it to a callback still being processed.
    assert sweep_inbox()["retried"] == 0
    counts = sweep_inbox(now=utcnow() + timedelta(seconds=61))
    assert counts["retried"] == 1
    db.session.expire_all()
    assert db.session.get(RawCallback, raw.id).outcome == "applied"
    assert _reload(pid).status == "paid"


def test_push_answer_that_cannot_be_saved_is_kept_and_attached_later(
    live_app, till, monkeypatch, caplog
):
    real = service.apply_event

    def lose_the_database_on_the_answer(payment_id, outcome, **kwargs):
        if outcome.event is Event.PUSH_ACCEPTED:
            raise OperationalError("UPDATE", {}, Exception("database is unavailable"))
        return real(payment_id, outcome, **kwargs)

    monkeypatch.setattr(service, "apply_event", lose_the_database_on_the_answer)
    caplog.set_level(logging.ERROR, logger="app.payments.journal")
    with pytest.raises(service.PushNotRecorded) as caught:
        service.initiate_payment(
            till, _cashier(), phone="0708374149", amount=4040, reference=None,
            idempotency_key=uuid.uuid4().hex,
        )  # fmt: skip
    checkout = caught.value.checkout_request_id
    assert checkout and checkout.startswith("ws_CO_")
    assert checkout in caplog.text  # the log holds it too
    [entry] = journal.entries()
    assert (entry["checkout_request_id"], entry["event"]) == (checkout, "push_accepted")
    pid = entry["payment_id"]
    assert _reload(pid).status == "initiating" and _reload(pid).checkout_request_id is None

    monkeypatch.setattr(service, "apply_event", real)
    assert replay_push_journal() == {"replayed": 1, "kept": 0}
    assert journal.entries() == []
    p = _reload(pid)
    assert p.status == "pending" and p.checkout_request_id == checkout
    assert [e.source for e in p.events][-1] == "journal"
    # KES 4040 drops its callback: the poller, now able to ask, finds the payment paid.
    push = get_state(live_app).get_push(checkout)
    push.delivered.wait(5)
    from app.jobs.poll import poll_payments

    poll_payments(now=utcnow() + timedelta(seconds=60))
    assert _reload(pid).status == "paid"


def test_cashier_is_told_not_to_send_again_when_the_answer_was_not_saved(live_app, monkeypatch):
    from tests.helpers import login

    real = service.apply_event

    def lose_the_database_on_the_answer(payment_id, outcome, **kwargs):
        if outcome.event is Event.PUSH_ACCEPTED:
            raise OperationalError("UPDATE", {}, Exception("database is unavailable"))
        return real(payment_id, outcome, **kwargs)

    monkeypatch.setattr(service, "apply_event", lose_the_database_on_the_answer)
    client = live_app.test_client()
    login(client, "cashier")
    key = uuid.uuid4().hex
    form = {"phone": "0708374149", "amount": "25", "reference": "", "idempotency_key": key}
    hx = {"HX-Request": "true"}
    saved = client.post("/cashier/payments", data=form, headers=hx).get_data(as_text=True)
    payment_id = re.search(r'id="payment-(\d+)"', saved).group(1)
    r = client.post(f"/cashier/payments/{payment_id}/send", headers=hx)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "do not send again" in html
    # Asking again (the row's button, a reload, Enter on the same form) sends nothing twice.
    client.post(f"/cashier/payments/{payment_id}/send", headers=hx)
    client.post("/cashier/payments", data=form, headers=hx)
    assert len(get_state(live_app).list_pushes()) == 1
    # Without JavaScript the same failure keeps what was typed in the form.
    plain = client.post(
        "/cashier/payments", data={**form, "idempotency_key": "b" * 32, "phone": "0711222333"}
    )
    page = plain.get_data(as_text=True)
    assert plain.status_code == 422 and "do not send again" in page
    assert 'value="0711222333"' in page and 'value="25"' in page
    assert len(get_state(live_app).list_pushes()) == 2


def test_journal_entry_for_a_payment_that_moved_on_is_harmless(app, make_payment):
    p = make_payment(status="paid", checkout="ws_CO_DONE")
    journal.keep(
        {"payment_id": p.id, "event": "push_accepted", "checkout_request_id": "ws_CO_DONE",
         "merchant_request_id": "m", "error_code": None, "error_message": None, "at": "x"}
    )  # fmt: skip
    assert replay_push_journal() == {"replayed": 1, "kept": 0}
    assert _reload(p.id).status == "paid"


def test_journal_keeps_what_still_cannot_be_applied(app, monkeypatch):
    journal.keep({"payment_id": 999_999, "event": "push_accepted", "at": "x"})
    assert replay_push_journal() == {"replayed": 0, "kept": 1}  # no such payment (yet)
    assert len(journal.entries()) == 1
    journal.path().unlink()


def test_every_recovery_job_is_in_the_table():
    ids = {job.id for job in JOBS}
    assert {"inbox-sweep", "push-journal"} <= ids


# SQLite has no server to restart: this one is about PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgresql"])
def test_first_request_after_a_database_restart_is_not_an_error(app, backend, pg_database):
    """Pooled connections die with the server; pool_pre_ping replaces them before use."""
    from tests.helpers import login

    client = app.test_client()
    login(client, "owner")
    assert client.get("/owner/report").status_code == 200
    db.session.remove()  # the request is over: its connection goes back to the pool
    admin = sa.create_engine(
        "postgresql+psycopg://" + pg_database.split("://", 1)[1], isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    assert killed >= 1
    assert client.get("/owner/report").status_code == 200


def test_scheduler_clock_ahead_does_not_give_up_a_live_push(app, till, monkeypatch):
    """A scheduler host whose clock runs 10 minutes ahead must not declare a push sent a
    second ago unconfirmed: give-up compares times on the database's clock."""
    from app.payments.service import Outcome, apply_event
    from app.payments.states import Source

    p = Payment(
        till_id=till.id, idempotency_key=uuid.uuid4().hex, phone="254708374149",
        amount_kes=10, account_reference="Sale", transaction_desc="Payment",
        status="initiating",
    )  # fmt: skip
    db.session.add(p)
    db.session.commit()
    apply_event(p.id, Outcome(Event.PUSH_ACCEPTED, Source.PUSH, checkout_request_id="ws_CO_CLK"))
    assert _reload(p.id).status == "pending"

    ahead = utcnow() + timedelta(minutes=10)
    import app.jobs.poll as poll
    import app.models.types as types
    import app.payments.service as service_module

    for module in (poll, types, service_module):
        monkeypatch.setattr(module, "utcnow", lambda: ahead)
    assert expire_stale() == {"given_up": 0}
    assert _reload(p.id).status == "pending"
    # The database's own clock still decides once the time has really passed.
    monkeypatch.undo()
    assert expire_stale(now=utcnow() + timedelta(minutes=10)) == {"given_up": 1}
