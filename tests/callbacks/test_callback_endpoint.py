"""The callback URL: secret token, raw body stored first, idempotent, paid never downgraded."""

import json

import sqlalchemy as sa

from app.extensions import db
from app.models import Payment, PaymentEvent, RawCallback
from tests.helpers import failure_callback, post_json, success_callback


def _url(till):
    return f"/cb/stk/{till.callback_token}"


def _events(payment_id):
    return (
        db.session.execute(
            sa.select(PaymentEvent)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
        .scalars()
        .all()
    )


def _reload(payment):
    return db.session.get(Payment, payment.id, populate_existing=True)


def test_url_has_no_mpesa_word(app, till):
    from app.payments.tills import callback_url

    url = callback_url(till)
    assert "mpesa" not in url.lower() and till.callback_token in url


def test_success_marks_paid_and_acknowledges(client, till, make_payment):
    p = make_payment()
    r = post_json(client, _url(till), success_callback(p.checkout_request_id))
    assert r.status_code == 200
    assert r.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    p = _reload(p)
    assert p.status == "paid"
    assert p.receipt_number == "TST1ABC2DE"
    assert p.mpesa_transaction_date == "20261129101531"
    assert p.next_query_at is None
    kinds = [(e.source, e.kind, e.to_status) for e in _events(p.id)]
    assert kinds == [("callback", "success", "paid")]
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.outcome == "applied" and json.loads(raw.body)["Body"]["stkCallback"]


def test_second_identical_callback_changes_nothing(client, till, make_payment):
    p = make_payment()
    body = success_callback(p.checkout_request_id)
    assert post_json(client, _url(till), body).status_code == 200
    before = _reload(p)
    version = before.version
    r = post_json(client, _url(till), body)
    assert r.status_code == 200 and r.get_json()["ResultCode"] == 0
    after = _reload(p)
    assert after.version == version
    assert len(_events(p.id)) == 1
    outcomes = (
        db.session.execute(sa.select(RawCallback.outcome).order_by(RawCallback.id)).scalars().all()
    )
    assert outcomes == ["applied", "duplicate"]


def test_wrong_token_is_403_and_stores_nothing(client, till, make_payment):
    p = make_payment()
    r = post_json(client, "/cb/stk/not-the-token", success_callback(p.checkout_request_id))
    assert r.status_code == 403
    assert _reload(p).status == "pending"
    assert db.session.execute(sa.select(sa.func.count(RawCallback.id))).scalar_one() == 0


def test_unparseable_body_is_stored_and_refused(client, till, make_payment):
    p = make_payment()
    r = client.post(_url(till), data=b"{not json", content_type="application/json")
    assert r.status_code == 400
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.body == b"{not json" and raw.outcome == "invalid"
    assert _reload(p).status == "pending"
    assert _events(p.id) == []


def test_failure_then_late_success_ends_paid(client, till, make_payment):
    p = make_payment()
    post_json(client, _url(till), failure_callback(p.checkout_request_id, 1037))
    assert _reload(p).status == "failed"
    post_json(client, _url(till), success_callback(p.checkout_request_id))
    p = _reload(p)
    assert p.status == "paid" and p.receipt_number == "TST1ABC2DE"
    events = _events(p.id)
    assert [e.to_status for e in events] == ["failed", "paid"]
    assert events[-1].conflict is True


def test_failure_after_paid_is_recorded_but_never_downgrades(client, till, make_payment):
    p = make_payment()
    post_json(client, _url(till), success_callback(p.checkout_request_id))
    r = post_json(client, _url(till), failure_callback(p.checkout_request_id, 1032))
    assert r.status_code == 200
    p = _reload(p)
    assert p.status == "paid"
    flagged = [e for e in _events(p.id) if e.conflict]
    assert len(flagged) == 1 and flagged[0].to_status == "paid" and flagged[0].result_code == "1032"
    last = (
        db.session.execute(sa.select(RawCallback).order_by(RawCallback.id.desc())).scalars().first()
    )
    assert last.outcome == "conflict"


def test_success_for_another_amount_is_not_paid(client, till, make_payment):
    p = make_payment(amount=150)
    post_json(client, _url(till), success_callback(p.checkout_request_id, amount=1))
    p = _reload(p)
    assert p.status == "pending"
    assert [e.conflict for e in _events(p.id)] == [True]


def test_amount_as_decimal_and_result_code_as_string_are_accepted(client, till, make_payment):
    p = make_payment(amount=150)
    body = success_callback(p.checkout_request_id, amount=150.0)
    body["Body"]["stkCallback"]["ResultCode"] = "0"
    assert post_json(client, _url(till), body).status_code == 200
    assert _reload(p).status == "paid"


def test_unknown_checkout_is_kept_as_orphan(client, till):
    r = post_json(client, _url(till), success_callback("ws_CO_NEVER_SEEN"))
    assert r.status_code == 200
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.outcome == "orphan" and raw.checkout_request_id == "ws_CO_NEVER_SEEN"


def test_receipt_number_cannot_pay_two_payments(client, till, make_payment):
    a = make_payment()
    b = make_payment()
    post_json(client, _url(till), success_callback(a.checkout_request_id, receipt="SAME123456"))
    post_json(client, _url(till), success_callback(b.checkout_request_id, receipt="SAME123456"))
    assert _reload(a).status == "paid"
    b = _reload(b)
    assert b.status == "pending" and b.receipt_number is None
    assert any(e.conflict for e in _events(b.id))


def test_body_over_limit_is_413(app, client, till, make_payment):
    app.config["CALLBACK_MAX_BYTES"] = 1000
    p = make_payment()
    body = success_callback(p.checkout_request_id)
    body["padding"] = "x" * 2000
    r = post_json(client, _url(till), body)
    assert r.status_code == 413
    assert _reload(p).status == "pending"


def test_reprocess_from_cli_is_idempotent(app, client, till, make_payment):
    p = make_payment()
    post_json(client, _url(till), success_callback(p.checkout_request_id))
    raw_id = db.session.execute(sa.select(RawCallback.id)).scalar_one()
    result = app.test_cli_runner().invoke(args=["callbacks", "reprocess", str(raw_id)])
    assert result.exit_code == 0, result.output
    assert "duplicate" in result.output
    assert len(_events(p.id)) == 1


def test_inbox_row_keeps_what_the_callback_claimed(client, till):
    post_json(
        client, _url(till), success_callback("ws_CO_ORPHAN", amount=321, receipt="ORPH123456")
    )
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert (raw.outcome, raw.result_code, raw.amount, raw.phone, raw.receipt_number) == (
        "orphan",
        "0",
        321,
        "254708374149",
        "ORPH123456",
    )


def test_callback_for_a_lost_push_is_a_candidate_not_a_payment(client, till, make_payment):
    lost = make_payment(status="unknown", amount=500, checkout=None)
    db.session.execute(
        sa.update(Payment).where(Payment.id == lost.id).values(checkout_request_id=None)
    )
    db.session.commit()
    other_amount = make_payment(status="unknown", amount=501)
    r = post_json(client, _url(till), success_callback("ws_CO_LOST1", amount=500))
    assert r.status_code == 200
    p = _reload(lost)
    # Matched by phone, amount and time only: recorded, queried, not believed yet.
    assert p.status == "unknown" and p.checkout_request_id is None
    assert p.candidate_checkout_id == "ws_CO_LOST1" and p.next_query_at is not None
    assert [e.kind for e in _events(p.id)] == ["candidate"]
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert (raw.outcome, raw.payment_id) == ("candidate", p.id)
    assert _reload(other_amount).status == "unknown"


def test_two_candidate_unknown_pushes_are_not_guessed(client, till, make_payment):
    for _ in range(2):
        p = make_payment(status="unknown", amount=500)
        db.session.execute(
            sa.update(Payment).where(Payment.id == p.id).values(checkout_request_id=None)
        )
    db.session.commit()
    post_json(client, _url(till), success_callback("ws_CO_AMBIG", amount=500))
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.outcome == "orphan"
    statuses = db.session.execute(sa.select(Payment.status)).scalars().all()
    assert statuses == ["unknown", "unknown"]


def test_callback_before_the_push_answer_is_applied_by_the_sweep(client, till, make_payment):
    """A callback that arrives before the push answer is saved waits; once the answer names
    its CheckoutRequestID, the inbox sweep (a job, not a side effect of the push) applies it."""
    from app.callbacks import inbox

    p = make_payment(status="initiating", amount=150)
    db.session.execute(
        sa.update(Payment).where(Payment.id == p.id).values(checkout_request_id=None)
    )
    db.session.commit()
    post_json(client, _url(till), success_callback("ws_CO_EARLY1", amount=150))
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.outcome == "candidate" and _reload(p).status == "initiating"
    assert inbox.sweep() == {"retried": 0, "matched": 0}  # nothing to do while in flight

    from app.payments.service import Outcome, apply_event
    from app.payments.states import Event, Source

    apply_event(
        p.id,
        Outcome(Event.PUSH_ACCEPTED, Source.PUSH, checkout_request_id="ws_CO_EARLY1"),
    )
    assert _reload(p).status == "pending"
    assert inbox.sweep() == {"retried": 0, "matched": 1}
    db.session.expire_all()
    assert db.session.get(RawCallback, raw.id).outcome == "applied"
    assert _reload(p).status == "paid" and _reload(p).receipt_number == "TST1ABC2DE"
