"""Outages: OAuth refused or unreachable, and Daraja down: a clear message, nothing re-sent."""

import sqlalchemy as sa

from app.crypto import encrypt
from app.extensions import db
from app.models import Payment, User
from app.payments import service, tills
from app.payments.messages import cashier_message as _message


def _send(till, key):
    cashier = db.session.execute(sa.select(User).where(User.username == "cashier")).scalar_one()
    payment, _ = service.initiate_payment(
        till, cashier, phone="0708374149", amount="20", reference=None, idempotency_key=key
    )
    return db.session.get(Payment, payment.id, populate_existing=True)


def cashier_message(p):
    from flask import current_app

    with current_app.test_request_context():  # messages are translated per request
        return _message(p)


def _pushes(live_app):
    import requests

    rows = requests.get(f"{live_app.config['SIMULATOR_URL']}/_control/pushes", timeout=5).json()
    return rows if isinstance(rows, list) else rows["pushes"]


def test_wrong_consumer_secret_is_rejected_with_a_message(live_app, till):
    till.consumer_secret_enc = encrypt("not-the-secret")
    db.session.commit()
    tills.reset_clients()
    p = _send(till, "oauth-wrong")
    assert p.status == "rejected" and p.push_error_code == "DarajaAuthError"
    assert "consumer key or secret is wrong" in cashier_message(p)
    assert _pushes(live_app) == []


def test_daraja_unreachable_is_rejected_and_nothing_was_sent(app, till):
    from tests.conftest import free_port

    app.config["SIMULATOR_URL"] = f"http://127.0.0.1:{free_port()}/simulator"  # nobody there
    tills.reset_clients()
    p = _send(till, "oauth-down")
    assert p.status == "rejected" and p.push_error_code == "DarajaConnectionError"
    assert "Nothing was sent" in cashier_message(p)
    assert p.next_query_at is None


def test_busy_daraja_is_rejected_once_without_a_retry(live_app, till):
    import requests

    requests.post(
        f"{live_app.config['SIMULATOR_URL']}/_control/next",
        json={"scenario": "system-busy"},
        timeout=5,
    ).raise_for_status()
    p = _send(till, "busy")
    assert p.status == "rejected" and p.push_error_code == "DarajaSystemBusy"
    assert "busy" in cashier_message(p).lower()
    assert _pushes(live_app) == []  # refused at the gateway; we did not try again
