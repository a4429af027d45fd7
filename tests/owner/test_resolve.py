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
