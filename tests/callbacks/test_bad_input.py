"""Bad input at the callback URL: each has a documented answer, and none is ever a 500."""

import json

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Payment, RawCallback
from tests.helpers import success_callback

CHECKOUT = "ws_CO_BADINPUT000001"


def _ok_with(mutate):
    body = success_callback(CHECKOUT, amount=150)
    mutate(body["Body"]["stkCallback"])
    return json.dumps(body).encode()


def _items(cb):
    return cb["CallbackMetadata"]["Item"]


# (name, raw body, expected HTTP status, expected inbox outcome, expected payment status)
CASES = [
    ("non-json", b"<xml>hello</xml>", 400, "invalid", "pending"),
    ("empty body", b"", 400, "invalid", "pending"),
    ("json but not an object", b"[1, 2, 3]", 400, "invalid", "pending"),
    ("missing Body", b'{"stkCallback": {}}', 400, "invalid", "pending"),
    ("missing stkCallback", b'{"Body": {}}', 400, "invalid", "pending"),
    ("wrong types", _ok_with(lambda cb: cb.update(ResultCode=[0])), 400, "invalid", "pending"),
    (
        "CheckoutRequestID as a number",
        _ok_with(lambda cb: cb.update(CheckoutRequestID=12)),
        400,
        "invalid",
        "pending",
    ),
    (
        "success without CallbackMetadata",
        _ok_with(lambda cb: cb.pop("CallbackMetadata")),
        200,
        "conflict",
        "pending",
    ),
    (
        "Amount as 1.0-style decimal",
        _ok_with(lambda cb: _items(cb)[0].update(Value=150.0)),
        200,
        "applied",
        "paid",
    ),
    (
        "ResultCode as a string",
        _ok_with(lambda cb: cb.update(ResultCode="0")),
        200,
        "applied",
        "paid",
    ),
    ("Balance without Value", _ok_with(lambda cb: None), 200, "applied", "paid"),
    ("items in another order", _ok_with(lambda cb: _items(cb).reverse()), 200, "applied", "paid"),
    (
        "unknown extra fields",
        _ok_with(
            lambda cb: (cb.update(Extra={"x": 1}), _items(cb).append({"Name": "New", "Value": 1}))
        ),
        200,
        "applied",
        "paid",
    ),
    (
        "amount that is not a whole number",
        _ok_with(lambda cb: _items(cb)[0].update(Value=150.5)),
        400,
        "invalid",
        "pending",
    ),
    # What look-alikes of Daraja send: still applied by the CheckoutRequestID.
    ("no MerchantRequestID",
     _ok_with(lambda cb: cb.pop("MerchantRequestID")), 200, "applied", "paid"),
    ("TransactionDate as text of another shape",
     _ok_with(lambda cb: _items(cb)[3].update(Value="2023-04-26 12:30:00")), 200, "applied",
     "paid"),
    ("TransactionDate as a string of digits",
     _ok_with(lambda cb: _items(cb)[3].update(Value="20261129101531")), 200, "applied", "paid"),
    ("TransactionDate missing", _ok_with(lambda cb: _items(cb).pop(3)), 200, "applied", "paid"),
    ("masked PhoneNumber",
     _ok_with(lambda cb: _items(cb)[4].update(Value="2547 ***** 149")), 200, "applied", "paid"),
    ("PhoneNumber missing", _ok_with(lambda cb: _items(cb).pop(4)), 200, "applied", "paid"),
    # Values that would not fit PesaDesk's columns: refused, never stored as "error" + 200.
    ("receipt over 20 characters",
     _ok_with(lambda cb: _items(cb)[1].update(Value="R" * 21)), 400, "invalid", "pending"),
    ("CheckoutRequestID over 64 characters",
     _ok_with(lambda cb: cb.update(CheckoutRequestID="ws_CO_" + "9" * 59)), 400, "invalid",
     "pending"),
    ("MerchantRequestID over 64 characters",
     _ok_with(lambda cb: cb.update(MerchantRequestID="m" * 65)), 400, "invalid", "pending"),
    ("amount of 2^31", _ok_with(lambda cb: _items(cb)[0].update(Value=2**31)), 400, "invalid",
     "pending"),
    ("ResultCode over 16 characters", _ok_with(lambda cb: cb.update(ResultCode="1" * 17)), 400,
     "invalid", "pending"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "body", "status", "outcome", "payment_status"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_has_a_documented_answer(
    client, till, make_payment, name, body, status, outcome, payment_status
):
    p = make_payment(amount=150, checkout=CHECKOUT)
    r = client.post(f"/cb/stk/{till.callback_token}", data=body, content_type="application/json")
    assert r.status_code == status, r.data
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.body == body  # stored verbatim, whatever it was
    assert raw.outcome == outcome
    assert db.session.get(Payment, p.id, populate_existing=True).status == payment_status


def test_odd_values_are_kept_as_sent(client, till, make_payment):
    from app.models import PaymentEvent

    p = make_payment(amount=150, checkout=CHECKOUT)

    def odd(cb):
        _items(cb)[3].update(Value="2023-04-26 12:30:00")
        _items(cb)[4].update(Value="2547 ***** 149")

    r = client.post(
        f"/cb/stk/{till.callback_token}", data=_ok_with(odd), content_type="application/json"
    )
    assert r.status_code == 200
    p = db.session.get(Payment, p.id, populate_existing=True)
    assert p.mpesa_transaction_date == "2023-04-26 12:30:00"
    event = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == p.id)
    ).scalar_one()
    assert event.data["phone_as_sent"] == "2547 ***** 149" and event.data["phone"] is None
    raw = db.session.execute(sa.select(RawCallback)).scalar_one()
    assert raw.phone is None  # not a number we can use; the body keeps what was sent


def test_success_without_metadata_asks_daraja_now(client, till, make_payment):
    from app.models.types import utcnow

    p = make_payment(amount=150, checkout=CHECKOUT)
    assert p.next_query_at > utcnow()
    client.post(
        f"/cb/stk/{till.callback_token}",
        data=_ok_with(lambda cb: cb.pop("CallbackMetadata")),
        content_type="application/json",
    )
    p = db.session.get(Payment, p.id, populate_existing=True)
    assert p.next_query_at <= utcnow()


def test_body_over_the_limit_is_413_and_not_stored(app, client, till, make_payment):
    make_payment(amount=150, checkout=CHECKOUT)
    body = b"{" + b" " * (app.config["CALLBACK_MAX_BYTES"] + 10) + b"}"
    r = client.post(f"/cb/stk/{till.callback_token}", data=body, content_type="application/json")
    assert r.status_code == 413
    assert db.session.execute(sa.select(sa.func.count(RawCallback.id))).scalar_one() == 0


def test_database_down_answers_503_never_200(app, till, monkeypatch):
    """If the body cannot be stored, Safaricom must not be told it was accepted."""
    from sqlalchemy.exc import OperationalError

    def broken_commit():
        raise OperationalError("INSERT", {}, Exception("database is unavailable"))

    monkeypatch.setattr(db.session, "commit", broken_commit)
    r = app.test_client().post(f"/cb/stk/{till.callback_token}", json=success_callback(CHECKOUT))
    assert r.status_code == 503
    assert r.get_json()["ResultCode"] != 0
