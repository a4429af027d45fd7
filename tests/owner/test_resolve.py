"""An admin settles an unknown or unconfirmed payment by hand, from the M-PESA statement."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Payment, PaymentEvent


def _reload(p):
    return db.session.get(Payment, p.id, populate_existing=True)


def test_unknown_push_resolved_as_not_paid_can_be_resent(admin_client, make_payment):
    p = make_payment(status="unknown", checkout=None)
    r = admin_client.post(
        f"/owner/payments/{p.id}/resolve",
        data={"outcome": "not_paid", "note": "not on the statement"},
    )
    assert r.status_code == 302
    p = _reload(p)
    assert p.status == "failed" and p.result_code == "manual"
    event = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == p.id)
    ).scalar_one()
    assert event.source == "manual" and "admin" in event.note and "statement" in event.note


def test_unconfirmed_resolved_as_paid_needs_a_receipt(admin_client, make_payment):
    p = make_payment(status="unconfirmed")
    admin_client.post(
        f"/owner/payments/{p.id}/resolve",
        data={"outcome": "paid", "receipt": "", "note": "statement"},
    )
    assert _reload(p).status == "unconfirmed"
    admin_client.post(
        f"/owner/payments/{p.id}/resolve",
        data={"outcome": "paid", "receipt": "qk12abcd9z", "note": "statement"},
    )
    p = _reload(p)
    assert p.status == "paid" and p.receipt_number == "QK12ABCD9Z"


@pytest.mark.parametrize("status", ["paid", "failed", "pending"])
def test_only_unresolved_payments_can_be_resolved(admin_client, make_payment, status):
    p = make_payment(status=status)
    admin_client.post(f"/owner/payments/{p.id}/resolve", data={"outcome": "not_paid", "note": "x"})
    assert _reload(p).status == status


def test_a_note_is_required(admin_client, make_payment):
    p = make_payment(status="unknown")
    r = admin_client.post(f"/owner/payments/{p.id}/resolve", data={"outcome": "not_paid"})
    assert r.status_code == 302 and _reload(p).status == "unknown"


def test_owners_see_but_cannot_resolve(owner_client, make_payment):
    p = make_payment(status="unknown")
    assert b'id="resolve"' not in owner_client.get(f"/owner/payments/{p.id}").data
    assert (
        owner_client.post(
            f"/owner/payments/{p.id}/resolve", data={"outcome": "not_paid", "note": "x"}
        ).status_code
        == 403
    )


def _flashes(client) -> str:
    with client.session_transaction() as session:
        return " ".join(str(m) for _c, m in session.get("_flashes", []))


def test_resolved_is_said_only_when_the_status_changed(admin_client, make_payment):
    p = make_payment(status="unknown", checkout=None)
    admin_client.post(
        f"/owner/payments/{p.id}/resolve", data={"outcome": "not_paid", "note": "statement"}
    )
    assert "Payment resolved: now Failed." in _flashes(admin_client)


def test_resolution_that_loses_a_race_says_nothing_changed(admin_client, make_payment, monkeypatch):
    """A callback pays the payment between the admin's read and the write: the table ignores
    the manual failure, and the admin is told so instead of "resolved"."""
    from app.payments import service
    from app.payments.service import Outcome
    from app.payments.states import Event, Source

    p = make_payment(status="unknown", amount=150)
    real = service.apply_event

    def callback_first(payment_id, outcome, **kwargs):
        real(payment_id, Outcome(Event.SUCCESS, Source.CALLBACK, result_code="0",
                                 receipt_number="RACE12AAAA", data={"amount": 150}))  # fmt: skip
        return real(payment_id, outcome, **kwargs)

    monkeypatch.setattr(service, "apply_event", callback_first)
    admin_client.post(
        f"/owner/payments/{p.id}/resolve", data={"outcome": "not_paid", "note": "statement"}
    )
    flashes = _flashes(admin_client)
    assert "resolved" not in flashes and "Nothing changed: the payment is Paid" in flashes
    assert _reload(p).status == "paid"


def test_a_receipt_of_another_payment_is_refused_with_its_link(admin_client, make_payment):
    owner_of_receipt = make_payment(status="paid", receipt_number="TAKEN12345")
    p = make_payment(status="unknown")
    admin_client.post(
        f"/owner/payments/{p.id}/resolve",
        data={"outcome": "paid", "receipt": "taken12345", "note": "statement"},
    )
    assert _reload(p).status == "unknown"
    page = admin_client.get(f"/owner/payments/{p.id}").get_data(as_text=True)
    assert f"already belongs to payment {owner_of_receipt.id}" in page
    assert f'href="/owner/payments/{owner_of_receipt.id}"' in page
    assert "Payment resolved" not in page


def test_admin_attaches_the_receipt_of_a_query_only_success(admin_client, make_payment):
    p = make_payment(status="paid")  # paid by query: no receipt
    page = admin_client.get(f"/owner/payments/{p.id}").get_data(as_text=True)
    assert 'id="attach-receipt"' in page and "receipt pending" in page
    admin_client.post(
        f"/owner/payments/{p.id}/receipt", data={"receipt": "ua7k2m9qxz", "note": "SMS"}
    )
    p = _reload(p)
    assert p.receipt_number == "UA7K2M9QXZ" and p.status == "paid"
    event = db.session.execute(
        sa.select(PaymentEvent).where(PaymentEvent.payment_id == p.id)
    ).scalar_one()
    assert (event.kind, event.source) == ("receipt_attached", "manual") and "SMS" in event.note
    assert "Receipt attached." in _flashes(admin_client)
    # Once it has one, the form is gone and another attach is refused.
    assert 'id="attach-receipt"' not in admin_client.get(f"/owner/payments/{p.id}").data.decode()
    admin_client.post(
        f"/owner/payments/{p.id}/receipt", data={"receipt": "OTHER12345", "note": "SMS"}
    )
    assert _reload(p).receipt_number == "UA7K2M9QXZ"


def test_attaching_a_receipt_that_belongs_to_another_payment_is_refused(admin_client, make_payment):
    holder = make_payment(status="paid", receipt_number="HELD123456")
    p = make_payment(status="paid")
    admin_client.post(
        f"/owner/payments/{p.id}/receipt", data={"receipt": "HELD123456", "note": "x"}
    )
    assert _reload(p).receipt_number is None
    page = admin_client.get(f"/owner/payments/{p.id}").get_data(as_text=True)
    assert f'href="/owner/payments/{holder.id}"' in page


@pytest.mark.parametrize("status", ["pending", "failed", "unknown"])
def test_receipts_are_attached_only_to_paid_payments(admin_client, make_payment, status):
    p = make_payment(status=status)
    admin_client.post(
        f"/owner/payments/{p.id}/receipt", data={"receipt": "ABCD123456", "note": "x"}
    )
    assert _reload(p).receipt_number is None


def test_owners_cannot_attach_receipts(owner_client, make_payment):
    p = make_payment(status="paid")
    assert 'id="attach-receipt"' not in owner_client.get(f"/owner/payments/{p.id}").data.decode()
    r = owner_client.post(f"/owner/payments/{p.id}/receipt", data={"receipt": "ABCD123456"})
    assert r.status_code == 403
